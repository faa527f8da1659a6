/**
 * The only module of meshform that imports the CDK for Terraform core.
 *
 * Everything else imports the engine from here, so that moving to another engine
 * (for example the cdktn fork of cdktf) is a change to this one file.
 * A test fails if any other source file imports `cdktf` directly.
 */
export {
  Annotations,
  App,
  type AppConfig,
  Aspects,
  CloudBackend,
  DISABLE_STACK_TRACE_IN_METADATA,
  Fn,
  type IAspect,
  type ISynthesisSession,
  type ITerraformDependable,
  Lazy,
  LocalBackend,
  Op,
  NamedCloudWorkspace,
  S3Backend,
  TerraformDataSource,
  TerraformLocal,
  TerraformOutput,
  TerraformProvider,
  TerraformResource,
  TerraformStack,
  TerraformVariable,
  Testing,
  DefaultTokenResolver,
  StringConcat,
  Token,
  Tokenization,
} from 'cdktf';

import { DefaultTokenResolver, StringConcat, Token, Tokenization } from 'cdktf';
import type { IConstruct } from 'constructs';

/**
 * Makes literal text safe inside a Terraform string: `${` and `%{` start templates in Terraform, so they are
 * doubled, except where they open a cdktf token (which must stay an interpolation).
 */
export function escapeTerraformTemplate(text: string): string {
  return text.replace(/\$\{(?!TfToken\[)/g, '$$${').replace(/%\{/g, '%%{');
}

/**
 * Makes literal data safe as Terraform JSON: every string (and every object key) escaped with
 * `escapeTerraformTemplate`, numbers, booleans and null as they are. The one step for user text that reaches
 * Terraform as data (resource attributes, locals, manifests, chart values): quotes and backslashes stay data
 * because the data stays JSON, never text inside an expression. Each object and array it builds with no token
 * anywhere inside is remembered as such (`isLiteralData` need not walk it again).
 */
export function terraformLiteral<T>(value: T): T {
  if (typeof value === 'string') return escapeTerraformTemplate(value) as T;
  if (Array.isArray(value)) {
    const out = value.map((v) => terraformLiteral(v));
    if (out.every(isLiteralValue)) LITERALS.add(out);
    return out as T;
  }
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    let literal = true;
    const out = Object.fromEntries(
      Object.entries(value).map(([k, v]) => {
        const entry = [escapeTerraformTemplate(k), terraformLiteral(v)] as const;
        literal &&= entry[0] !== '__proto__' && isLiteralString(entry[0]) && isLiteralValue(entry[1]);
        return entry;
      }),
    );
    if (literal) LITERALS.add(out);
    return out as T;
  }
  return value;
}

/** The objects and arrays `terraformLiteral` built with no token inside. */
const LITERALS = new WeakSet<object>();

/**
 * True for a string no token hides in: no token marker, nothing cdktf would read as an encoded number
 * (its pattern: digits, an `e`, digits), not one of the values cdktf refuses in a string. A false negative only
 * costs a resolution.
 */
function isLiteralString(text: string): boolean {
  return (
    !text.includes('TfToken[') &&
    !/[-\d.+]e[-\d.eE+]/.test(text) &&
    text !== Token.STRING_MAP_TOKEN_VALUE &&
    text !== Token.ANY_MAP_TOKEN_VALUE
  );
}

function isLiteralValue(value: unknown): boolean {
  switch (typeof value) {
    case 'string':
      return isLiteralString(value);
    case 'boolean':
      return true;
    case 'number':
      return Number.isFinite(value) && value !== Token.NUMBER_MAP_TOKEN_VALUE && !Token.isUnresolved(value);
    case 'object':
      return value === null || LITERALS.has(value);
    default:
      return false;
  }
}

/**
 * True when `value` is plain JSON data with no token anywhere inside, which cdktf's resolution returns
 * unchanged (a copy, without the object keys whose value is undefined): strings, finite numbers, booleans,
 * null, arrays of them and plain objects of them. The data `terraformLiteral` built is known to be (its
 * objects are not walked again); anything else is walked.
 */
export function isLiteralData(value: unknown): boolean {
  if (isLiteralValue(value)) return true;
  if (Array.isArray(value)) return value.every(isLiteralData);
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    for (const key of Object.keys(value)) {
      const v = (value as { [key: string]: unknown })[key];
      // (`__proto__` would not stay a key through cdktf's resolution)
      if (key === '__proto__' || !isLiteralString(key) || (v !== undefined && !isLiteralData(v))) return false;
    }
    return true;
  }
  return false;
}

/**
 * What cdktf's resolution makes of data `isLiteralData` accepts: a copy (objects and arrays copied, scalars as
 * they are) without the object keys whose value is undefined.
 */
export function copyLiteral<T>(value: T): T {
  if (Array.isArray(value)) return value.map((v) => copyLiteral(v)) as T;
  if (value !== null && typeof value === 'object') {
    const out: { [key: string]: unknown } = {};
    for (const key of Object.keys(value)) {
      const v = (value as { [key: string]: unknown })[key];
      if (v !== undefined) out[key] = copyLiteral(v);
    }
    return out as T;
  }
  return value;
}

/** Resolves the tokens in a value to the Terraform expressions they stand for (as synthesis would). */
export function resolveTokens<T>(scope: IConstruct, value: T): T {
  return Tokenization.resolve(value, { scope, resolver: new DefaultTokenResolver(new StringConcat()) }) as T;
}

/** How many frames a stack formatted under `withShortTokenStacks` keeps. */
const SHORT_STACK_FRAMES = 10;

/** Formats a stack as V8 does, without source maps, keeping the innermost frames. */
function shortStack(error: Error, frames: readonly NodeJS.CallSite[]): string {
  return [String(error), ...frames.slice(0, SHORT_STACK_FRAMES).map((frame) => `    at ${String(frame)}`)].join('\n');
}

/**
 * `Error.captureStackTrace` inside `withShortTokenStacks`: a capture asking for more than SHORT_STACK_FRAMES
 * frames (cdktf lifts `Error.stackTraceLimit` to infinity to record each token's creation stack) records none;
 * any other is left to V8.
 */
function captureTokenStackTrace(target: object, below?: Parameters<typeof Error.captureStackTrace>[1]): void {
  if (Error.stackTraceLimit > SHORT_STACK_FRAMES) return;
  // frames from `below` up are left out (this function among them); without it, from this function up
  originalCaptureStackTrace(target, below ?? captureTokenStackTrace);
}
const originalCaptureStackTrace = Error.captureStackTrace.bind(Error);

/**
 * Runs `fn` without the stack traces cdktf records for the tokens it creates. cdktf records the whole stack of
 * every token it makes (each resource's output references too, five per Kubernetes manifest) only to quote it
 * in an error message, if that token fails to resolve; capturing a deep stack and formatting it through source
 * maps (tsx turns them on) costs more than the rest of a resource's creation, and even ten frames cost as much
 * as the resource. Within `fn` such a capture records no frame (cdktf's message then names the token's path
 * only), and any other stack is formatted without source maps with its innermost SHORT_STACK_FRAMES frames.
 * The previous capture and formatter are restored after, so an error thrown inside and read later is
 * formatted as usual; synthesized output does not change.
 */
export function withShortTokenStacks<T>(fn: () => T): T {
  const previous = Error.prepareStackTrace;
  if (previous === shortStack) return fn();
  const previousCapture = Error.captureStackTrace;
  Error.prepareStackTrace = shortStack;
  Error.captureStackTrace = captureTokenStackTrace;
  try {
    return fn();
  } finally {
    Error.prepareStackTrace = previous;
    Error.captureStackTrace = previousCapture;
  }
}
