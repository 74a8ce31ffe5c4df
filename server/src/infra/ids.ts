import { TypeID, typeid } from 'typeid-js';

/**
 * Keel's ids are TypeIDs: a prefix naming the kind of thing, then a UUIDv7 in Crockford
 * base32, so they sort by creation time (`org_01jd7x8m3q9f2k5v6w7y8z9a0b`). The prefix list
 * is the single place a new kind of id is declared.
 */
export const ID_PREFIXES = ['req', 'org', 'usr', 'key', 'job', 'evt'] as const;
export type IdPrefix = (typeof ID_PREFIXES)[number] | (string & {});

export type IdGenerator = (prefix: IdPrefix) => string;

export const newId: IdGenerator = (prefix) => typeid(prefix).toString();

/** True when `value` is a well-formed id with the given prefix. */
export function isId(value: string, prefix: IdPrefix): boolean {
  try {
    return TypeID.fromString(value).getType() === prefix;
  } catch {
    return false;
  }
}
