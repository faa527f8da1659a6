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

import { DefaultTokenResolver, StringConcat, Tokenization } from 'cdktf';
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
 * because the data stays JSON, never text inside an expression.
 */
export function terraformLiteral<T>(value: T): T {
  if (typeof value === 'string') return escapeTerraformTemplate(value) as T;
  if (Array.isArray(value)) return value.map((v) => terraformLiteral(v)) as T;
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(
      Object.entries(value).map(([k, v]) => [escapeTerraformTemplate(k), terraformLiteral(v)]),
    ) as T;
  }
  return value;
}

/** Resolves the tokens in a value to the Terraform expressions they stand for (as synthesis would). */
export function resolveTokens<T>(scope: IConstruct, value: T): T {
  return Tokenization.resolve(value, { scope, resolver: new DefaultTokenResolver(new StringConcat()) }) as T;
}

/** How many frames a token created under `withShortTokenStacks` keeps. */
const SHORT_STACK_FRAMES = 10;

/** Formats a stack as V8 does, without source maps, keeping the innermost frames. */
function shortStack(error: Error, frames: readonly NodeJS.CallSite[]): string {
  return [String(error), ...frames.slice(0, SHORT_STACK_FRAMES).map((frame) => `    at ${String(frame)}`)].join('\n');
}

/**
 * `Error.captureStackTrace` capped at SHORT_STACK_FRAMES frames: cdktf lifts `Error.stackTraceLimit` to infinity
 * around each capture, so the cap sits in the capture itself.
 */
function captureShortStackTrace(target: object, below?: Parameters<typeof Error.captureStackTrace>[1]): void {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = Math.min(limit, SHORT_STACK_FRAMES);
  try {
    // frames from `below` up are left out (this function among them); without it, from this function up
    originalCaptureStackTrace(target, below ?? captureShortStackTrace);
  } finally {
    Error.stackTraceLimit = limit;
  }
}
const originalCaptureStackTrace = Error.captureStackTrace.bind(Error);

/**
 * Runs `fn` with short stack traces for the cdktf tokens it creates. cdktf records the whole stack of every token
 * it makes (each resource's output references too, five per Kubernetes manifest) only to quote it in an error
 * message; capturing a deep stack and formatting it through source maps (tsx turns them on) costs more than the
 * rest of a resource's creation. Within `fn` a stack is captured to its innermost SHORT_STACK_FRAMES frames and
 * formatted without source maps. The previous capture and formatter are restored after, so an error thrown
 * inside and read later is formatted as usual; synthesized output does not change.
 */
export function withShortTokenStacks<T>(fn: () => T): T {
  const previous = Error.prepareStackTrace;
  if (previous === shortStack) return fn();
  const previousCapture = Error.captureStackTrace;
  Error.prepareStackTrace = shortStack;
  Error.captureStackTrace = captureShortStackTrace;
  try {
    return fn();
  } finally {
    Error.prepareStackTrace = previous;
    Error.captureStackTrace = previousCapture;
  }
}
