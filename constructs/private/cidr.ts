/** IPv4 CIDR arithmetic for VPC planning and validation. */

/** A parsed IPv4 CIDR block. */
export interface Cidr {
  /** Network address as an unsigned 32-bit number. */
  readonly network: number;
  /** Prefix length, 0-32. */
  readonly prefix: number;
}

const CIDR_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})\/(\d{1,2})$/;

/** Why a CIDR string is rejected, or the parsed block. */
export type CidrParse = { ok: true; cidr: Cidr } | { ok: false; reason: 'malformed' | 'host-bits'; canonical?: string };

function mask(prefix: number): number {
  return prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
}

/** Formats an address/prefix as `a.b.c.d/p`. */
export function formatCidr(cidr: Cidr): string {
  const n = cidr.network;
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}/${cidr.prefix}`;
}

/** Parses `a.b.c.d/p`; rejects bad octets/prefixes and addresses with host bits set. */
export function parseCidr(text: string): CidrParse {
  const m = CIDR_RE.exec(text);
  if (!m) return { ok: false, reason: 'malformed' };
  const octets = m.slice(1, 5).map(Number);
  const prefix = Number(m[5]);
  if (octets.some((o, i) => o > 255 || (m[i + 1]!.length > 1 && m[i + 1]!.startsWith('0'))) || prefix > 32) {
    return { ok: false, reason: 'malformed' };
  }
  const address = ((octets[0]! << 24) | (octets[1]! << 16) | (octets[2]! << 8) | octets[3]!) >>> 0;
  const network = (address & mask(prefix)) >>> 0;
  if (network !== address) return { ok: false, reason: 'host-bits', canonical: formatCidr({ network, prefix }) };
  return { ok: true, cidr: { network, prefix } };
}

/** True when two blocks share any address. */
export function cidrsOverlap(a: Cidr, b: Cidr): boolean {
  const prefix = Math.min(a.prefix, b.prefix);
  return (a.network & mask(prefix)) >>> 0 === (b.network & mask(prefix)) >>> 0;
}

/** True when `inner` lies entirely inside `outer`. */
export function cidrContains(outer: Cidr, inner: Cidr): boolean {
  return inner.prefix >= outer.prefix && (inner.network & mask(outer.prefix)) >>> 0 === outer.network;
}

/** The `index`-th subnet of `cidr` with `newBits` more prefix bits (Terraform's cidrsubnet). */
export function cidrSubnet(cidr: Cidr, newBits: number, index: number): Cidr {
  const prefix = cidr.prefix + newBits;
  if (prefix > 32 || index < 0 || index >= 2 ** newBits)
    throw new RangeError(`no subnet ${index} of /${prefix} in ${formatCidr(cidr)}`);
  return { network: (cidr.network + index * 2 ** (32 - prefix)) >>> 0, prefix };
}
