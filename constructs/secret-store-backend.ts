import { errors } from './errors';

/** Options of the AWS Secrets Manager store (`SecretStore.awsSecretsManager`). */
export interface AwsSecretsManagerStoreOptions {
  /** AWS region of the secrets, e.g. "eu-west-1". */
  readonly region: string;
  /**
   * Prefix of each mesh's secret name: a mesh's shared secrets are the secret `<prefix><mesh>`.
   * @default "meshform/"
   */
  readonly prefix?: string;
  /**
   * An AWS-compatible endpoint (an emulator such as moto), e.g. "http://127.0.0.1:4566".
   * @default - $MESHFORM_AWS_ENDPOINT when set, else Secrets Manager's regional endpoint
   */
  readonly endpoint?: string;
}

/** Options of the Terraform Cloud store (`SecretStore.terraformCloud`): give `variableSet` or `workspace`. */
export interface TerraformCloudStoreOptions {
  /** The organization that owns the variable set or workspace. */
  readonly organization: string;
  /**
   * Name of the variable set that holds the store (attach it to the mesh's workspaces: its sensitive
   * Terraform variables are what their runs need).
   * @default - none: `workspace` is used
   */
  readonly variableSet?: string;
  /**
   * Name of the workspace whose variables hold the store.
   * @default - none: `variableSet` is used
   */
  readonly workspace?: string;
  /**
   * Host name of Terraform Cloud or of a Terraform Enterprise installation (its token:
   * `TF_TOKEN_<host with dots as underscores>`, or `TFE_TOKEN`).
   * @default "app.terraform.io"
   */
  readonly hostname?: string;
}

/** Where a mesh's shared secrets live, as the mesh manifest records it (no secret). */
export type SecretStoreLocation =
  | { readonly kind: 'local' }
  | {
      readonly kind: 'aws-secrets-manager';
      readonly region: string;
      readonly prefix: string;
      readonly endpoint?: string;
    }
  | {
      readonly kind: 'terraform-cloud';
      readonly organization: string;
      readonly hostname: string;
      readonly variableSet?: string;
      readonly workspace?: string;
    };

/**
 * The backend of a mesh's secret store, chosen with `SecretStore.local()`, `SecretStore.awsSecretsManager()` or
 * `SecretStore.terraformCloud()` (the mesh's `secretStore` prop). The root keys never leave the local store.
 */
export abstract class SecretStoreBackend {
  /** Where the store is, as the mesh manifest records it. */
  public abstract get location(): SecretStoreLocation;

  /** Checks the options; throws a MeshformError naming `constructPath`. */
  public abstract validate(constructPath: string): void;
}

/** @internal */
export class LocalStoreBackend extends SecretStoreBackend {
  public get location(): SecretStoreLocation {
    return { kind: 'local' };
  }

  public validate(): void {}
}

/** @internal */
export class AwsSecretsManagerStoreBackend extends SecretStoreBackend {
  constructor(private readonly options: AwsSecretsManagerStoreOptions) {
    super();
  }

  public get location(): SecretStoreLocation {
    return {
      kind: 'aws-secrets-manager',
      region: this.options.region,
      prefix: this.options.prefix ?? 'meshform/',
      ...(this.options.endpoint ? { endpoint: this.options.endpoint } : {}),
    };
  }

  public validate(constructPath: string): void {
    const { region, prefix = 'meshform/', endpoint } = this.options;
    if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(region))
      throw errors.invalidStoreOption(constructPath, 'region', region, 'give an AWS region such as "eu-west-1"');
    if (!/^[A-Za-z0-9/_+=.@-]{0,400}$/.test(prefix))
      throw errors.invalidStoreOption(
        constructPath,
        'prefix',
        prefix,
        'use letters, digits and /_+=.@- (a Secrets Manager name prefix), e.g. "meshform/"',
      );
    if (endpoint !== undefined && !/^https?:\/\/[^/\s]+\/?$/.test(endpoint))
      throw errors.invalidStoreOption(
        constructPath,
        'endpoint',
        endpoint,
        'give a URL with scheme, host and port only, e.g. "http://127.0.0.1:4566"',
      );
  }
}

/** @internal */
export class TerraformCloudStoreBackend extends SecretStoreBackend {
  constructor(private readonly options: TerraformCloudStoreOptions) {
    super();
  }

  public get location(): SecretStoreLocation {
    return {
      kind: 'terraform-cloud',
      organization: this.options.organization,
      hostname: this.options.hostname ?? 'app.terraform.io',
      ...(this.options.variableSet !== undefined ? { variableSet: this.options.variableSet } : {}),
      ...(this.options.workspace !== undefined ? { workspace: this.options.workspace } : {}),
    };
  }

  public validate(constructPath: string): void {
    const { organization, variableSet, workspace, hostname } = this.options;
    if (!/^[A-Za-z0-9_-]+$/.test(organization))
      throw errors.invalidStoreOption(
        constructPath,
        'organization',
        organization,
        'give a Terraform Cloud organization name (letters, digits, "-" and "_")',
      );
    if ((variableSet === undefined) === (workspace === undefined))
      throw errors.invalidStoreOption(
        constructPath,
        'variableSet / workspace',
        `${variableSet ?? '(none)'} / ${workspace ?? '(none)'}`,
        'give exactly one of variableSet (a variable set name) or workspace (a workspace name)',
      );
    if (workspace !== undefined && !/^[A-Za-z0-9_-]{1,90}$/.test(workspace))
      throw errors.invalidStoreOption(
        constructPath,
        'workspace',
        workspace,
        'give a workspace name: letters, digits, "-" and "_"',
      );
    if (variableSet !== undefined && variableSet.trim() === '')
      throw errors.invalidStoreOption(constructPath, 'variableSet', variableSet, 'give the variable set name');
    if (hostname !== undefined && !/^[A-Za-z0-9.-]+(:\d{1,5})?$/.test(hostname))
      throw errors.invalidStoreOption(
        constructPath,
        'hostname',
        hostname,
        'give a host name (and port) only, e.g. "app.terraform.io"',
      );
  }
}
