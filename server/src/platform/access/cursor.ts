import { isId } from '../../infra/ids.ts';

/** Largest page a list returns, and the page when `limit` is not given. */
export const MAX_PAGE_SIZE = 100;
export const DEFAULT_PAGE_SIZE = 20;

export interface Page<T> {
  readonly items: readonly T[];
  /** Pass back as `cursor` for the next page; null on the last page. */
  readonly nextCursor: string | null;
}

/** Lists page by id: the cursor is the last id of the page, made opaque. */
export function encodeCursor(id: string): string {
  return Buffer.from(id).toString('base64url');
}

/** Undefined when the cursor was not made by `encodeCursor` for an id of this kind. */
export function decodeCursor(cursor: string, prefix: string): string | undefined {
  const id = Buffer.from(cursor, 'base64url').toString();
  return isId(id, prefix) ? id : undefined;
}

/** Rows were read as `limit + 1`: the extra one only says that another page exists. */
export function pageOf<Row, T>(
  rows: readonly Row[],
  limit: number,
  idOf: (row: Row) => string,
  present: (row: Row) => T,
): Page<T> {
  const items = rows.slice(0, limit);
  const last = items.at(-1);
  return {
    items: items.map(present),
    nextCursor: rows.length > limit && last ? encodeCursor(idOf(last)) : null,
  };
}
