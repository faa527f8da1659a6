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
  TerraformLocal,
  TerraformOutput,
  TerraformProvider,
  TerraformResource,
  TerraformStack,
  TerraformVariable,
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

/** Resolves the tokens in a value to the Terraform expressions they stand for (as synthesis would). */
export function resolveTokens<T>(scope: IConstruct, value: T): T {
  return Tokenization.resolve(value, { scope, resolver: new DefaultTokenResolver(new StringConcat()) }) as T;
}
