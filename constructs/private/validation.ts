import { isIP } from 'node:net';

/** An RFC 1123 label that is also a valid Consul datacenter name (`^[a-z0-9_-]+$`): the intersection of both. */
const LABEL = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** True when `name` is an RFC 1123 label and a valid Consul datacenter name. */
export function isDatacenterName(name: unknown): name is string {
  return typeof name === 'string' && LABEL.test(name);
}

/** True when `name` is a DNS name of RFC 1123 labels (no trailing dot), at most 253 characters. */
export function isDnsName(name: unknown): name is string {
  if (typeof name !== 'string' || name.length === 0 || name.length > 253) return false;
  return name.split('.').every((label) => LABEL.test(label));
}

/** True when `address` is an IPv4 or IPv6 address. */
export function isIpAddress(address: unknown): address is string {
  return typeof address === 'string' && isIP(address) !== 0;
}

/** True when `port` is a whole number from 1 to 65535. */
export function isPort(port: unknown): port is number {
  return typeof port === 'number' && Number.isInteger(port) && port >= 1 && port <= 65535;
}

/** True when `url` parses as an absolute https URL. */
export function isHttpsUrl(url: unknown): url is string {
  if (typeof url !== 'string') return false;
  try {
    return new URL(url).protocol === 'https:';
  } catch {
    return false;
  }
}

/** True when `value` is a whole number from `min` to `max` (a finite integer: no NaN, Infinity or fraction). */
export function isWholeNumber(value: unknown, min: number, max = Number.MAX_SAFE_INTEGER): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max;
}

/** True when `value` is a string with something other than whitespace in it. */
export function isNonEmptyString(value: unknown): value is string {
  return typeof value === 'string' && value.trim() !== '';
}

/**
 * Why `regex` is not an RE2 regular expression (what Envoy compiles route and permission regexes with, and Go's
 * regexp, which has RE2's syntax), or undefined when it is one. RE2's syntax (google/re2 doc/syntax.txt) is
 * close to JavaScript's without its extensions: no lookahead or lookbehind, no backreferences; named groups
 * are `(?P<name>...)` or `(?<name>...)`, and flags are set with `(?i)` groups. The expression is compiled as
 * JavaScript after mapping those RE2 forms, so every syntax error (unbalanced parentheses or brackets, a
 * repetition of nothing, a bad range) is caught.
 */
export function re2Problem(regex: string): string | undefined {
  if (/\(\?<?[=!]/.test(regex)) return 'lookahead and lookbehind are not supported by RE2';
  if (/(^|[^\\])(\\\\)*\\[1-9]/.test(regex) || /\\k</.test(regex)) return 'backreferences are not supported by RE2';
  if (/\(\?[imsU-]*\)/.test(regex.replace(/\(\?[imsU]+(-[imsU]+)?\)/g, '')))
    return 'a flag group must name at least one of the flags i, m, s, U';
  for (let i = 0; i < regex.length; i++) {
    if (regex[i] !== '\\') continue;
    const next = regex[++i];
    if (next === undefined) return 'it ends with a lone backslash';
    if (/[A-Za-z]/.test(next) && !'afntrvdDsSwWbBAzxpPQEC'.includes(next)) return `invalid escape sequence \\${next}`;
  }
  const js = regex
    .replace(/\(\?P</g, '(?<')
    .replace(/\(\?[imsU]+(-[imsU]+)?\)/g, '')
    .replace(/\(\?[imsU]+(-[imsU]+)?:/g, '(?:')
    .replace(/\\[zAQE]/g, '')
    .replace(/\\[pP]\{[A-Za-z_]+\}/g, 'a')
    .replace(/\\[pP][A-Z]/g, 'a')
    .replace(/\[\[:[a-z]+:\]\]/g, '[a]')
    .replace(/\[:[a-z]+:\]/g, 'a');
  try {
    new RegExp(js);
    return undefined;
  } catch (e) {
    return (e as Error).message.replace(/^Invalid regular expression: \/.*\/[a-z]*: /s, '');
  }
}

/**
 * True when `key` is a Kubernetes qualified name, as the API server requires of annotation keys
 * (kubernetes/apimachinery pkg/api/validation ValidateAnnotations → IsQualifiedName): an optional prefix that
 * is a DNS subdomain (at most 253 characters) and a `/`, then a name of 1 to 63 characters of letters, digits,
 * `-`, `_` and `.`, starting and ending with a letter or digit.
 */
export function isQualifiedName(key: string): boolean {
  const parts = key.split('/');
  if (parts.length > 2) return false;
  const name = parts[parts.length - 1]!;
  if (!/^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/.test(name)) return false;
  if (parts.length === 2) {
    const prefix = parts[0]!;
    if (prefix.length === 0 || prefix.length > 253) return false;
    return prefix.split('.').every((label) => /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/.test(label));
  }
  return true;
}
