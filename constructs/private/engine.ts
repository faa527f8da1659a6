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
  CloudBackend,
  DISABLE_STACK_TRACE_IN_METADATA,
  Fn,
  type ISynthesisSession,
  Lazy,
  LocalBackend,
  NamedCloudWorkspace,
  S3Backend,
  TerraformOutput,
  TerraformProvider,
  TerraformResource,
  TerraformStack,
  TerraformVariable,
  Token,
} from 'cdktf';
