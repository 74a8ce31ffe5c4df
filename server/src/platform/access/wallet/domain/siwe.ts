import { type Address, getAddress, isAddress } from 'viem';
import { parseSiweMessage, validateSiweMessage } from 'viem/siwe';

/** A nonce is good for this long after it was issued. */
export const SIWE_NONCE_TTL_MS = 10 * 60 * 1000;
/** Clocks of wallets and server may disagree by this much about Issued At and Not Before. */
export const SIWE_CLOCK_SKEW_MS = 60 * 1000;
/** Longest message accepted; EIP-4361 messages with a statement and a few resources are ~1 KiB. */
export const SIWE_MESSAGE_MAX_LENGTH = 4_096;

export interface SiweFields {
  readonly domain: string;
  readonly address: Address;
  readonly uri: string;
  readonly chainId: number;
  readonly nonce: string;
  readonly issuedAt: Date;
  readonly expirationTime: Date | undefined;
  /** The instant the time fields were checked at, for the on-chain check to use the same. */
  readonly checkedAt: Date;
}

export type SiweCheck = { ok: true; fields: SiweFields } | { ok: false; detail: string };

/**
 * Parses an EIP-4361 message and checks everything that needs no signature and no storage:
 * the fields are present and well formed, the domain is one this Keel serves and the URI is on
 * that origin, the version is 1, and the time fields admit `now`. The nonce and the signature are
 * checked by the caller.
 *
 * `origins` are the web origins a sign-in may come from (`https://keel.example.com`): a message
 * whose `domain` is not the host of one of them was shown by another site, the phishing EIP-4361
 * exists to stop.
 */
export function checkSiweMessage(message: string, origins: readonly string[], now: Date): SiweCheck {
  if (message.length > SIWE_MESSAGE_MAX_LENGTH) {
    return { ok: false, detail: `the message is longer than ${SIWE_MESSAGE_MAX_LENGTH} characters` };
  }
  const parsed = parseSiweMessage(message);
  const missing = (['domain', 'address', 'uri', 'version', 'chainId', 'nonce', 'issuedAt'] as const).filter(
    (field) => parsed[field] === undefined,
  );
  if (missing.length > 0) {
    return { ok: false, detail: `not an EIP-4361 message: missing ${missing.join(', ')}` };
  }
  const { domain, address, uri, version, chainId, nonce, issuedAt } = parsed as Required<typeof parsed>;
  if (version !== '1') return { ok: false, detail: `Version must be 1, got ${version}` };
  if (!isAddress(address, { strict: false })) return { ok: false, detail: 'the address is not valid' };
  if (!Number.isSafeInteger(chainId) || chainId <= 0)
    return { ok: false, detail: 'Chain ID must be positive' };
  for (const [name, value] of [
    ['Issued At', issuedAt],
    ['Expiration Time', parsed.expirationTime],
    ['Not Before', parsed.notBefore],
  ] as const) {
    if (value !== undefined && Number.isNaN(value.getTime())) {
      return { ok: false, detail: `${name} is not an RFC 3339 date-time` };
    }
  }
  const origin = origins.find((candidate) => new URL(candidate).host === domain);
  if (!origin) {
    return { ok: false, detail: `the domain ${domain} is not one this server signs in for` };
  }
  if (parsed.scheme !== undefined && `${parsed.scheme}:` !== new URL(origin).protocol) {
    return { ok: false, detail: `the scheme ${parsed.scheme} does not match ${origin}` };
  }
  let uriOrigin: string;
  try {
    uriOrigin = new URL(uri).origin;
  } catch {
    return { ok: false, detail: 'URI is not a URI' };
  }
  if (uriOrigin !== origin) return { ok: false, detail: `URI must be on ${origin}` };
  const nowMs = now.getTime();
  if (issuedAt.getTime() > nowMs + SIWE_CLOCK_SKEW_MS)
    return { ok: false, detail: 'Issued At is in the future' };
  if (issuedAt.getTime() < nowMs - SIWE_NONCE_TTL_MS - SIWE_CLOCK_SKEW_MS) {
    return { ok: false, detail: 'Issued At is too old: request a new nonce' };
  }
  if (parsed.expirationTime && parsed.expirationTime.getTime() <= nowMs) {
    return { ok: false, detail: 'the message has expired (Expiration Time)' };
  }
  if (parsed.notBefore && parsed.notBefore.getTime() > nowMs + SIWE_CLOCK_SKEW_MS) {
    return { ok: false, detail: 'the message is not valid yet (Not Before)' };
  }
  // The library's own check, as a second opinion on the same fields (at Not Before when that is
  // within the allowed skew ahead of now).
  const time = parsed.notBefore && parsed.notBefore.getTime() > nowMs ? parsed.notBefore : now;
  if (!validateSiweMessage({ message: parsed, domain, nonce, time })) {
    return { ok: false, detail: 'the message is not valid' };
  }
  return {
    ok: true,
    fields: {
      domain,
      address: getAddress(address),
      uri,
      chainId,
      nonce,
      issuedAt,
      expirationTime: parsed.expirationTime,
      checkedAt: time,
    },
  };
}

/** CAIP-10 account id of an EVM address: `eip155:<chain id>:<EIP-55 address>`. */
export function caip10(chainId: number, address: Address): string {
  return `eip155:${chainId}:${getAddress(address)}`;
}
