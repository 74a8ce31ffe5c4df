import ipaddr from 'ipaddr.js';

/** Longest allowlist a key or an org may carry. */
export const MAX_ALLOWLIST_ENTRIES = 100;

type Range = [ipaddr.IPv4 | ipaddr.IPv6, number];

export interface Allowlist {
  /** The entries as written, normalised (`10.0.0.0/8`, `2001:db8::/32`, `203.0.113.7/32`). */
  readonly entries: readonly string[];
  allows(ip: string): boolean;
}

export type ParsedAllowlist = { ok: true; allowlist: Allowlist } | { ok: false; invalid: string[] };

/** Parses one entry: an address (taken as /32 or /128) or a CIDR range. */
function parseEntry(entry: string): Range | undefined {
  const value = entry.trim();
  try {
    if (value.includes('/')) {
      const [address, bits] = ipaddr.parseCIDR(value);
      // Normalise the network address, so 10.1.2.3/8 is stored as 10.0.0.0/8.
      const network =
        address.kind() === 'ipv4'
          ? ipaddr.IPv4.networkAddressFromCIDR(value)
          : ipaddr.IPv6.networkAddressFromCIDR(value);
      return [network, bits];
    }
    const address = ipaddr.parse(value);
    return [address, address.kind() === 'ipv4' ? 32 : 128];
  } catch {
    return undefined;
  }
}

/** IPv4-mapped IPv6 addresses (::ffff:1.2.3.4) are matched as the IPv4 address they carry. */
function normalise(ip: string): ipaddr.IPv4 | ipaddr.IPv6 | undefined {
  try {
    const address = ipaddr.parse(ip);
    if (address.kind() === 'ipv6' && (address as ipaddr.IPv6).isIPv4MappedAddress()) {
      return (address as ipaddr.IPv6).toIPv4Address();
    }
    return address;
  } catch {
    return undefined;
  }
}

/**
 * The address a per-address limit counts: IPv4 addresses as they are, IPv6 addresses by their
 * /64 network, since one client (one home, one cloud VM) routinely holds a whole /64.
 */
export function limitSubject(ip: string): string {
  const address = normalise(ip);
  if (!address) return ip;
  if (address.kind() === 'ipv4') return address.toString();
  const parts = (address as ipaddr.IPv6).parts.slice(0, 4).map((part) => part.toString(16));
  return `${parts.join(':')}::/64`;
}

export function parseAllowlist(entries: readonly string[]): ParsedAllowlist {
  const ranges: Range[] = [];
  const invalid: string[] = [];
  for (const entry of entries) {
    const range = parseEntry(entry);
    if (range) ranges.push(range);
    else invalid.push(entry);
  }
  if (invalid.length > 0) return { ok: false, invalid };
  return {
    ok: true,
    allowlist: {
      entries: ranges.map(([address, bits]) => `${address.toString()}/${bits}`),
      allows: (ip) => {
        const address = normalise(ip);
        if (!address) return false;
        return ranges.some(
          ([network, bits]) => network.kind() === address.kind() && address.match(network, bits),
        );
      },
    },
  };
}

/** For lists already validated on the way in (stored rows, config): a bad entry is a bug. */
export function allowlistOf(entries: readonly string[]): Allowlist {
  const parsed = parseAllowlist(entries);
  if (!parsed.ok) throw new Error(`invalid allowlist entries: ${parsed.invalid.join(', ')}`);
  return parsed.allowlist;
}
