/**
 * JSON text exactly as cdktf writes a stack (`json-stable-stringify` with two spaces): object keys in sorted
 * order (UTF-16 code units, as `Array.prototype.sort`), keys whose value is undefined left out, an empty object
 * or array opened and closed on two lines. For literal data only (strings, finite numbers, booleans, null, plain
 * objects and arrays): what `isLiteralData` accepts.
 */
export function stableJson(value: unknown, level = 0): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  const indent = `\n${'  '.repeat(level)}`;
  const inner = `${indent}  `;
  if (Array.isArray(value)) {
    let out = '[';
    for (let i = 0; i < value.length; i++) out += `${i ? ',' : ''}${inner}${stableJson(value[i] ?? null, level + 1)}`;
    return `${out}${indent}]`;
  }
  const object = value as { readonly [key: string]: unknown };
  let out = '{';
  let first = true;
  for (const key of Object.keys(object).sort()) {
    if (object[key] === undefined) continue;
    out += `${first ? '' : ','}${inner}${JSON.stringify(key)}: ${stableJson(object[key], level + 1)}`;
    first = false;
  }
  return `${out}${indent}}`;
}
