/**
 * hcl2-parser, loaded on first use: requiring it takes about 0.4 s (a 3.8 MB GopherJS build), and only an agent
 * configuration given as HCL is parsed, which most syntheses never do.
 */
let hcl2: typeof import('hcl2-parser') | undefined;
const hcl2Parser = (): typeof import('hcl2-parser') =>
  (hcl2 ??= require('hcl2-parser') as typeof import('hcl2-parser'));

/** A configuration value: what an agent config (HCL or JSON) is made of. */
export type HclValue = string | number | boolean | HclValue[] | HclObject;
/** A configuration object. */
export interface HclObject {
  [key: string]: HclValue;
}

/** Whether a value is a configuration object (not a list, not a scalar). */
export function isObject(v: unknown): v is HclObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

const IDENTIFIER = /^[A-Za-z_][A-Za-z0-9_-]*$/;

function key(k: string): string {
  return IDENTIFIER.test(k) ? k : JSON.stringify(k);
}

/**
 * A quoted string. Consul reads HCL 1, where `${` and `%{` are literal, while HCL 2 (hcl2-parser, Terraform)
 * reads them as templates; no escaping means the same in both, so such strings are refused.
 */
function quote(s: string): string {
  if (/[$%]\{/.test(s))
    throw new HclSyntaxError(
      `a string with a template sequence cannot be written for both HCL 1 and 2: ${JSON.stringify(s)}`,
    );
  return JSON.stringify(s);
}

function expression(value: HclValue, indent: string): string {
  if (typeof value === 'string') return quote(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (Array.isArray(value)) {
    if (value.every((v) => !isObject(v) && !Array.isArray(v)))
      return `[${value.map((v) => expression(v, indent)).join(', ')}]`;
    const inner = `${indent}  `;
    return `[\n${value.map((v) => `${inner}${expression(v, inner)}`).join(',\n')}\n${indent}]`;
  }
  const inner = `${indent}  `;
  const entries = Object.entries(value).map(([k, v]) => `${inner}${key(k)} = ${expression(v, inner)}`);
  return entries.length === 0 ? '{}' : `{\n${entries.join('\n')}\n${indent}}`;
}

/**
 * Renders a configuration object as HCL: nested objects become blocks, lists of objects become list
 * expressions, scalars attributes. Key order is kept, so the output is deterministic.
 */
export function renderHcl(config: HclObject, indent = ''): string {
  const lines: string[] = [];
  for (const [k, v] of Object.entries(config)) {
    if (isObject(v)) {
      lines.push(`${indent}${key(k)} {`);
      lines.push(renderHcl(v, `${indent}  `).replace(/\n$/, ''));
      lines.push(`${indent}}`);
    } else {
      lines.push(`${indent}${key(k)} = ${expression(v, indent)}`);
    }
  }
  return `${lines.filter((l) => l !== '').join('\n')}\n`;
}

/** Thrown when text is not valid HCL. */
export class HclSyntaxError extends Error {}

/**
 * Parses HCL with hcl2-parser. The parser answers `[null, {}]` instead of raising on bad input, and repeats a
 * block as a one-element list; this wrapper throws HclSyntaxError on bad input and folds block lists back
 * into objects, so the result compares equal to the object that was rendered.
 */
export function parseHcl(text: string): HclObject {
  let result: unknown;
  let failure: unknown;
  try {
    [result, failure] = hcl2Parser().parseToObject(text) as [unknown, unknown];
  } catch (e) {
    throw new HclSyntaxError(`not valid HCL: ${(e as Error).message}`);
  }
  if (result === null || result === undefined || !isObject(result)) {
    const detail =
      failure && typeof failure === 'object' && Object.keys(failure).length > 0 ? `: ${JSON.stringify(failure)}` : '';
    throw new HclSyntaxError(`not valid HCL${detail}`);
  }
  return normalize(result) as HclObject;
}

/** Folds one-element lists of objects into the object (how hcl2-parser returns a block); compare configs through it. */
export function normalize(value: unknown): HclValue {
  if (Array.isArray(value)) {
    // A block is parsed as a list of one object per occurrence; a single block is folded into its object.
    if (value.length === 1 && isObject(value[0])) return normalize(value[0]);
    return value.map(normalize);
  }
  if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, normalize(v)]));
  return value as HclValue;
}
