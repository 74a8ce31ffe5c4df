import { defineErrors, type ErrorCodesOf } from '../../infra/http/errors.ts';

/** Usage metering (docs/usage.md). */
export const METERING_ERRORS = defineErrors('metering', {
  METER_NOT_FOUND: { status: 404, title: 'No such meter' },
  METER_EXISTS: { status: 409, title: 'A meter with this name exists with another aggregation' },
  TOO_MANY_METERS: { status: 422, title: 'The org has as many meters as it may define' },
  USAGE_QUERY_TOO_LARGE: { status: 422, title: 'The usage query matches too many rows' },
});

declare module '../../infra/http/errors.ts' {
  interface KeelErrorCodes extends ErrorCodesOf<typeof METERING_ERRORS> {}
}
