import { type TSchema, Type } from 'typebox';
import { isId } from '../ids.ts';

/** Largest page a list returns, and the page when `limit` is not given. */
export const MAX_PAGE_SIZE = 100;
export const DEFAULT_PAGE_SIZE = 20;

/** The query of every list: `limit` (1–100, default 20) and the previous page's `nextCursor`. */
export const PageQuerySchema = Type.Object({
  limit: Type.Integer({
    minimum: 1,
    maximum: MAX_PAGE_SIZE,
    default: DEFAULT_PAGE_SIZE,
    description: `Items per page, at most ${MAX_PAGE_SIZE}.`,
  }),
  cursor: Type.Optional(
    Type.String({ minLength: 1, maxLength: 200, description: 'The `nextCursor` of the previous page.' }),
  ),
});

/** The response of every list: `{ data, nextCursor }`, named `id` in the API reference. */
export function pageSchema<T extends TSchema>(item: T, id: string) {
  return Type.Object(
    {
      data: Type.Array(item),
      nextCursor: Type.Union([Type.String(), Type.Null()], {
        description: 'Pass as `cursor` for the next page; null on the last.',
      }),
    },
    { $id: id, title: id },
  );
}

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
