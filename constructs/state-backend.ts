import * as path from 'node:path';
import { errors } from './errors';
import { CloudBackend, LocalBackend, NamedCloudWorkspace, S3Backend, TerraformStack } from './private/engine';

/** Options of a local state backend. */
export interface LocalStateBackendOptions {
  /**
   * Directory of the state files, relative to the directory that holds the synth output (`cdktf.out`).
   * It must be relative so that the synthesized output is the same on every machine.
   * @default "." - the state files sit beside cdktf.out (the project root), one `terraform.<stack>.tfstate` per stack
   */
  readonly directory?: string;
}

/** Options of an S3 state backend. */
export interface S3StateBackendOptions {
  /** Name of the S3 bucket that holds the state. */
  readonly bucket: string;
  /** AWS region of the bucket. */
  readonly region: string;
  /**
   * Prefix of every state object's key; a stack's state is `<keyPrefix>/<stack>.tfstate`.
   * @default "meshform"
   */
  readonly keyPrefix?: string;
  /**
   * DynamoDB table used for state locking.
   * @default - S3's own lock file (`use_lockfile`, Terraform 1.10+)
   */
  readonly dynamodbTable?: string;
  /**
   * KMS key that encrypts the state objects.
   * @default - S3-managed server-side encryption (the state is always encrypted)
   */
  readonly kmsKeyId?: string;
}

/** Where a Terraform Cloud workspace runs plans and applies (the workspace's setting in Terraform Cloud). */
export enum TerraformCloudExecutionMode {
  /** On Terraform Cloud's own runners: nothing of the machine that deploys (kubeconfig, environment) is there. */
  REMOTE = 'remote',
  /** On the machine that runs meshform; Terraform Cloud keeps only the state. */
  LOCAL = 'local',
  /** On your own Terraform Cloud agents. */
  AGENT = 'agent',
}

/** Options of a Terraform Cloud (or Terraform Enterprise) backend. */
export interface TerraformCloudStateBackendOptions {
  /** The organization that owns the workspaces. */
  readonly organization: string;
  /**
   * Prefix of each workspace name: every stack gets its own workspace named `<workspacePrefix><stack>`.
   * @default "" - the workspace is named exactly like the stack
   */
  readonly workspacePrefix?: string;
  /**
   * Project the workspaces belong to.
   * @default - the organization's default project
   */
  readonly project?: string;
  /**
   * Host name of Terraform Cloud or of a Terraform Enterprise installation.
   * @default "app.terraform.io"
   */
  readonly hostname?: string;
  /**
   * The execution mode the workspaces are set to in Terraform Cloud (meshform does not change it: set the
   * workspaces to match). A datacenter whose cluster is reached through a kubeconfig cannot run remotely.
   * @default TerraformCloudExecutionMode.REMOTE - Terraform Cloud's default for new workspaces
   */
  readonly executionMode?: TerraformCloudExecutionMode;
}

/** Where a stack's state is: the backend part of its synthesized `terraform` block. */
export interface StateLocation {
  readonly backend?: {
    readonly local?: { readonly path: string };
    readonly s3?: { readonly bucket: string; readonly key: string; readonly region: string };
  };
  readonly cloud?: {
    readonly hostname?: string;
    readonly organization: string;
    readonly workspaces: { readonly name: string };
  };
}

/**
 * Where a stack keeps its Terraform state. Choose one with a static factory:
 * `StateBackend.local()`, `StateBackend.s3({...})` or `StateBackend.terraformCloud({...})`.
 *
 * The state of a datacenter stack holds the mesh's secrets (they are inputs of Kubernetes secrets), so
 * pick a backend that encrypts at rest and restricts access.
 */
export abstract class StateBackend {
  /** State files on the local disk, with relative paths. */
  public static local(options: LocalStateBackendOptions = {}): StateBackend {
    return new LocalStateBackend(options ?? {});
  }

  /** State in an S3 bucket, encrypted, one object per stack. */
  public static s3(options: S3StateBackendOptions): StateBackend {
    return new S3StateBackend(options ?? ({} as S3StateBackendOptions));
  }

  /** State in Terraform Cloud, one named workspace per stack (`CloudBackend`). */
  public static terraformCloud(options: TerraformCloudStateBackendOptions): StateBackend {
    return new TerraformCloudStateBackend(options ?? ({} as TerraformCloudStateBackendOptions));
  }

  /** A short description for summaries, e.g. `local (terraform.shop-dc1.tfstate)`. */
  public abstract describe(stackName: string): string;

  /**
   * Where a stack's state is, as the stack's `terraform` block says it (a local path relative to the stack's
   * directory in the output): kept in the mesh manifest, so the state of a stack that left the app can be found.
   */
  public abstract location(stackName: string): StateLocation;

  /** Checks the options; throws a MeshformError naming `constructPath`. */
  public abstract validate(constructPath: string): void;

  /**
   * `backend` once it is checked: a StateBackend with valid options, else a MeshformError naming
   * `constructPath`.
   * @internal
   */
  public static _checked(constructPath: string, backend: unknown): StateBackend {
    if (!(backend instanceof StateBackend))
      throw errors.missingValue(
        constructPath,
        'backend',
        backend,
        'use StateBackend.local(), .s3({...}) or .terraformCloud({...})',
      );
    backend.validate(constructPath);
    return backend;
  }

  /**
   * The workspace a stack's runs execute in remotely (on Terraform Cloud's runners, away from the machine that
   * deploys), if they do.
   */
  public remoteWorkspace(_stackName: string): string | undefined {
    return undefined;
  }

  /** Attaches the backend to a stack. */
  public abstract bind(stack: TerraformStack, stackName: string): void;
}

class LocalStateBackend extends StateBackend {
  constructor(private readonly options: LocalStateBackendOptions) {
    super();
  }

  private directory(): string {
    return this.options.directory ?? '.';
  }

  private statePath(stackName: string): string {
    // Terraform runs in <outdir>/stacks/<stack>; three levels up is the directory holding the output.
    return path.posix.join('../../..', this.directory(), `terraform.${stackName}.tfstate`);
  }

  public describe(stackName: string): string {
    return `local (${path.posix.join(this.directory(), `terraform.${stackName}.tfstate`)})`;
  }

  public location(stackName: string): StateLocation {
    return { backend: { local: { path: this.statePath(stackName) } } };
  }

  public validate(constructPath: string): void {
    const dir = this.directory();
    if (typeof dir !== 'string' || dir.trim() === '' || path.isAbsolute(dir) || path.win32.isAbsolute(dir)) {
      throw errors.invalidBackendOption(
        constructPath,
        'directory',
        dir,
        'give a directory relative to the project root, so that the output is the same on every machine',
      );
    }
  }

  public bind(stack: TerraformStack, stackName: string): void {
    new LocalBackend(stack, { path: this.statePath(stackName) });
  }
}

class S3StateBackend extends StateBackend {
  constructor(private readonly options: S3StateBackendOptions) {
    super();
  }

  private key(stackName: string): string {
    return `${this.options.keyPrefix ?? 'meshform'}/${stackName}.tfstate`;
  }

  public describe(stackName: string): string {
    return `s3 (s3://${this.options.bucket}/${this.key(stackName)})`;
  }

  public location(stackName: string): StateLocation {
    return { backend: { s3: { bucket: this.options.bucket, key: this.key(stackName), region: this.options.region } } };
  }

  public validate(constructPath: string): void {
    if (typeof this.options.bucket !== 'string' || !/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/.test(this.options.bucket)) {
      throw errors.invalidBackendOption(
        constructPath,
        'bucket',
        this.options.bucket,
        'give an S3 bucket name: 3 to 63 lowercase letters, digits, dots and hyphens',
      );
    }
    if (typeof this.options.region !== 'string' || !/^[a-z]{2}(-[a-z]+)+-\d$/.test(this.options.region)) {
      throw errors.invalidBackendOption(
        constructPath,
        'region',
        this.options.region,
        'give an AWS region such as "eu-west-1"',
      );
    }
    for (const [what, value] of [
      ['keyPrefix', this.options.keyPrefix],
      ['dynamodbTable', this.options.dynamodbTable],
      ['kmsKeyId', this.options.kmsKeyId],
    ] as const) {
      if (value !== undefined && (typeof value !== 'string' || value.trim() === '' || /\s/.test(value)))
        throw errors.invalidBackendOption(
          constructPath,
          what,
          value,
          `give ${what} as text without spaces, or leave it out`,
        );
    }
  }

  public bind(stack: TerraformStack, stackName: string): void {
    new S3Backend(stack, {
      bucket: this.options.bucket,
      key: this.key(stackName),
      region: this.options.region,
      encrypt: true,
      ...(this.options.kmsKeyId ? { kmsKeyId: this.options.kmsKeyId } : {}),
      ...(this.options.dynamodbTable ? { dynamodbTable: this.options.dynamodbTable } : {}),
    });
    if (!this.options.dynamodbTable) {
      stack.addOverride('terraform.backend.s3.use_lockfile', true);
    }
  }
}

class TerraformCloudStateBackend extends StateBackend {
  constructor(private readonly options: TerraformCloudStateBackendOptions) {
    super();
  }

  private workspace(stackName: string): string {
    return `${this.options.workspacePrefix ?? ''}${stackName}`;
  }

  public describe(stackName: string): string {
    return `terraform cloud (${this.options.organization}/${this.workspace(stackName)})`;
  }

  public override remoteWorkspace(stackName: string): string | undefined {
    const mode = this.options.executionMode ?? TerraformCloudExecutionMode.REMOTE;
    return mode === TerraformCloudExecutionMode.REMOTE ? this.workspace(stackName) : undefined;
  }

  public location(stackName: string): StateLocation {
    return {
      cloud: {
        ...(this.options.hostname ? { hostname: this.options.hostname } : {}),
        organization: this.options.organization,
        workspaces: { name: this.workspace(stackName) },
      },
    };
  }

  public validate(constructPath: string): void {
    if (typeof this.options.organization !== 'string' || this.options.organization.trim() === '') {
      throw errors.emptyValue(constructPath, 'terraformCloud organization');
    }
    const mode = this.options.executionMode;
    if (mode !== undefined && !Object.values(TerraformCloudExecutionMode).includes(mode)) {
      throw errors.invalidBackendOption(
        constructPath,
        'executionMode',
        String(mode),
        'use TerraformCloudExecutionMode.REMOTE, LOCAL or AGENT',
      );
    }
    for (const [what, value] of [
      ['hostname', this.options.hostname],
      ['project', this.options.project],
    ] as const) {
      if (value !== undefined && (typeof value !== 'string' || value.trim() === ''))
        throw errors.invalidBackendOption(constructPath, what, value, `give ${what} as text, or leave it out`);
    }
    if (
      typeof (this.options.workspacePrefix ?? '') !== 'string' ||
      !/^[A-Za-z0-9_-]*$/.test(this.options.workspacePrefix ?? '')
    ) {
      throw errors.invalidBackendOption(
        constructPath,
        'workspacePrefix',
        this.options.workspacePrefix ?? '',
        'use only letters, digits, "-" and "_" (Terraform Cloud workspace names)',
      );
    }
  }

  public bind(stack: TerraformStack, stackName: string): void {
    new CloudBackend(stack, {
      organization: this.options.organization,
      workspaces: new NamedCloudWorkspace(this.workspace(stackName), this.options.project),
      ...(this.options.hostname ? { hostname: this.options.hostname } : {}),
    });
  }
}
