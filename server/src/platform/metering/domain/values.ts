/**
 * Meter values are non-negative decimals carried as strings, so that no float rounding reaches
 * an aggregate: up to 30 integer digits and 18 fractional ones (enough for 18-decimal tokens).
 */
export const DECIMAL_PATTERN = '^(0|[1-9][0-9]{0,29})(\\.[0-9]{1,18})?$';
const DECIMAL = new RegExp(DECIMAL_PATTERN);

export type ValueResult = { ok: true; value: string } | { ok: false; message: string };

/**
 * Normalises a value sent as a JSON number or a decimal string. A number must be one JavaScript
 * represents exactly as written: a safe integer, or a fraction without an exponent.
 */
export function meterValue(input: number | string): ValueResult {
  if (typeof input === 'string') {
    return DECIMAL.test(input)
      ? { ok: true, value: input }
      : { ok: false, message: 'must be a non-negative decimal string such as "12.5"' };
  }
  if (!Number.isFinite(input) || input < 0) return { ok: false, message: 'must not be negative' };
  if (Number.isInteger(input) && !Number.isSafeInteger(input)) {
    return { ok: false, message: 'is too large for a JSON number: send it as a decimal string' };
  }
  const text = String(input);
  return DECIMAL.test(text)
    ? { ok: true, value: text }
    : { ok: false, message: 'cannot be represented exactly: send it as a decimal string' };
}
