import { isIP } from 'node:net';

/** An RFC 1123 label that is also a valid Consul datacenter name (`^[a-z0-9_-]+$`): the intersection of both. */
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** True when `name` is an RFC 1123 label and a valid Consul datacenter name. */
export function isDatacenterName(name: string): boolean {
  return LABEL.test(name);
}

/** True when `name` is a DNS name of RFC 1123 labels (no trailing dot), at most 253 characters. */
export function isDnsName(name: string): boolean {
  if (name.length === 0 || name.length > 253) return false;
  return name.split('.').every((label) => LABEL.test(label));
}

/** True when `address` is an IPv4 or IPv6 address. */
export function isIpAddress(address: string): boolean {
  return isIP(address) !== 0;
}

/** True when `port` is a whole number from 1 to 65535. */
export function isPort(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= 65535;
}

/** True when `url` parses as an absolute https URL. */
export function isHttpsUrl(url: string): boolean {
  try {
    return new URL(url).protocol === 'https:';
  } catch {
    return false;
  }
}
