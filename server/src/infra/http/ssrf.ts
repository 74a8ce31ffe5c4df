import dns from 'node:dns';
import type { LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';

/**
 * The SSRF guard for every request Keel makes to a URL a tenant supplied (webhook endpoints).
 * It resolves the host itself and refuses private, loopback, link-local, cloud-metadata and
 * other non-public addresses, and it is used as the connection's `lookup`, so the address that
 * was checked is the address connected to: a DNS answer that changes between check and connect
 * (rebinding) cannot slip through.
 */

/** ipaddr.js ranges that are public internet. Everything else is refused unless allowlisted. */
const PUBLIC_RANGES = new Set(['unicast']);
/** Cloud metadata services that sit inside otherwise-allowed ranges on some providers. */
const METADATA_ADDRESSES = new Set(['169.254.169.254', 'fd00:ec2::254', '100.100.100.200']);

export interface SsrfPolicy {
  /** Addresses or CIDR ranges the operator allows despite being private (e.g. `10.0.5.0/24`). */
  readonly allow: readonly string[];
}

export class BlockedAddressError extends Error {
  readonly code = 'KEEL_SSRF_BLOCKED';
  constructor(
    readonly host: string,
    readonly address: string,
  ) {
    super(`${host} resolves to ${address}, which is not a public address`);
  }
}

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

function parseAllowlist(allow: readonly string[]): Range[] {
  return allow.map((entry) => {
    if (entry.includes('/')) return ipaddr.parseCIDR(entry);
    const address = ipaddr.parse(entry);
    return [address, address.kind() === 'ipv4' ? 32 : 128];
  });
}

function normalise(address: string): ipaddr.IPv4 | ipaddr.IPv6 {
  const parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) {
    return (parsed as ipaddr.IPv6).toIPv4Address();
  }
  return parsed;
}

export function createSsrfGuard(policy: SsrfPolicy) {
  const allowed = parseAllowlist(policy.allow);
  const isAllowed = (address: string): boolean => {
    const parsed = normalise(address);
    if (allowed.some(([range, bits]) => range.kind() === parsed.kind() && parsed.match(range, bits)))
      return true;
    if (METADATA_ADDRESSES.has(parsed.toString())) return false;
    return PUBLIC_RANGES.has(parsed.range());
  };

  /** A `lookup` for http.request: resolves, then refuses a host with any blocked address. */
  const lookup: LookupFunction = (hostname, options, callback) => {
    dns.lookup(hostname, { ...options, all: true }, (error, addresses) => {
      if (error) return callback(error, '', 0);
      const list = addresses as unknown as dns.LookupAddress[];
      const blocked = list.find((entry) => !isAllowed(entry.address));
      if (blocked) return callback(new BlockedAddressError(hostname, blocked.address), '', 0);
      if ((options as { all?: boolean }).all)
        return (callback as unknown as (e: null, a: dns.LookupAddress[]) => void)(null, list);
      const first = list[0]!;
      callback(null, first.address, first.family);
    });
  };

  /** Checks a URL before it is stored: scheme, no credentials, and a literal IP host is allowed. */
  const checkUrl = (raw: string): { ok: true; url: URL } | { ok: false; reason: string } => {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      return { ok: false, reason: 'is not a URL' };
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:')
      return { ok: false, reason: 'must use https or http' };
    if (url.username || url.password) return { ok: false, reason: 'must not contain credentials' };
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (ipaddr.isValid(host) && !isAllowed(host))
      return { ok: false, reason: `${host} is not a public address` };
    if (host === 'localhost' || host.endsWith('.localhost')) {
      if (!isAllowed('127.0.0.1')) return { ok: false, reason: 'localhost is not a public address' };
    }
    return { ok: true, url };
  };

  return { isAllowed, lookup, checkUrl };
}

export type SsrfGuard = ReturnType<typeof createSsrfGuard>;
