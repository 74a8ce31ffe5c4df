import { Type } from 'typebox';
import { defineEvent } from '../events/index.ts';

const KeyId = Type.String({ examples: ['key_01jd7x8m3q9f2k5v6w7y8z9a0b'] });
const UserId = Type.String({ examples: ['usr_01jd7x8m3q9f2k5v6w7y8z9a0b'] });
const RoleName = Type.String({ examples: ['developer'] });

export const API_KEY_CREATED = defineEvent({
  type: 'api_key.created',
  version: 1,
  description: 'An API key was created.',
  payload: Type.Object({ keyId: KeyId, name: Type.String(), scopes: Type.Array(Type.String()) }),
});

export const API_KEY_ROLLED = defineEvent({
  type: 'api_key.rolled',
  version: 1,
  description: 'An API key got a new secret; the old one works until `graceEndsAt`.',
  payload: Type.Object({ keyId: KeyId, graceEndsAt: Type.String({ format: 'date-time' }) }),
});

export const API_KEY_REVOKED = defineEvent({
  type: 'api_key.revoked',
  version: 1,
  description: 'An API key was revoked; it stops working on every replica within a second.',
  payload: Type.Object({ keyId: KeyId }),
});

export const MEMBER_JOINED = defineEvent({
  type: 'member.joined',
  version: 1,
  description: 'A user joined the org, by creating it or by accepting an invitation.',
  payload: Type.Object({ userId: UserId, role: RoleName }),
});

export const MEMBER_ROLE_CHANGED = defineEvent({
  type: 'member.role_changed',
  version: 1,
  description: 'A member’s role changed.',
  payload: Type.Object({ userId: UserId, from: RoleName, to: RoleName }),
});

export const MEMBER_REMOVED = defineEvent({
  type: 'member.removed',
  version: 1,
  description: 'A member was removed from the org.',
  payload: Type.Object({ userId: UserId, role: RoleName }),
});

/** Every event this module emits, for its KeelModule vocabulary. */
export const ACCESS_EVENTS = [
  API_KEY_CREATED,
  API_KEY_ROLLED,
  API_KEY_REVOKED,
  MEMBER_JOINED,
  MEMBER_ROLE_CHANGED,
  MEMBER_REMOVED,
];
