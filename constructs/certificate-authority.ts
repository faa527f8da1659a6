import { X509Certificate } from 'node:crypto';
import { errors, MeshformWarning, warnings } from './errors';
import { checkEnum } from './private/guards';
import { isNonEmptyString, isWholeNumber } from './private/validation';
import type { HclObject } from './private/hcl';

/** Key algorithms of the certificates meshform issues. */
export enum CertificateKeyAlgorithm {
  EC_P256 = 'ec-p256',
  EC_P384 = 'ec-p384',
  RSA_2048 = 'rsa-2048',
  RSA_4096 = 'rsa-4096',
}

/** Options every CA choice shares: the agent TLS hierarchy (offline root, per-datacenter intermediates). */
export interface CertificateAuthorityOptions {
  /**
   * Id of the active root in meshform's store (agent TLS). Changing it is a root rotation.
   * @default "root-1"
   */
  readonly root?: string;
  /**
   * The root being rotated out: trusted beside the new one (and cross-signing it) until every datacenter
   * has the new root. Remove it in a later, separate deploy to retire the old root.
   * @default - none: no rotation in progress
   */
  readonly previousRoot?: string;
  /**
   * Cross-sign the new root with the previous one, so that datacenters still on the old root trust the new
   * chains. Refused when false unless allowRotationWithoutCrossSigning is set.
   * @default true
   */
  readonly crossSign?: boolean;
  /**
   * Accept a root rotation without cross-signing (agents on the old root stop trusting the new chains until
   * they are updated: expect cross-datacenter RPC failures during the deploy).
   * @default false
   */
  readonly allowRotationWithoutCrossSigning?: boolean;
  /**
   * Key algorithm of roots, intermediates and server certificates.
   * @default CertificateKeyAlgorithm.EC_P256
   */
  readonly keyAlgorithm?: CertificateKeyAlgorithm;
  /**
   * Days a new root is valid.
   * @default 3650
   */
  readonly rootValidityDays?: number;
  /**
   * Days a datacenter intermediate is valid.
   * @default 1095
   */
  readonly intermediateValidityDays?: number;
  /**
   * Days a datacenter's server certificate is valid.
   * @default 365
   */
  readonly serverCertificateValidityDays?: number;
  /**
   * Certificates expiring within this many days are renewed (and `meshform ca status` reports them due); a
   * root expiring within it must be rotated.
   * @default 90
   */
  readonly rotationWindowDays?: number;
  /**
   * Lifetime of service mesh (Connect) leaf certificates, hours.
   * @default 72
   */
  readonly meshLeafTtlHours?: number;
  /**
   * Lifetime of service mesh (Connect) intermediates, hours.
   * @default 8760
   */
  readonly meshIntermediateTtlHours?: number;
  /**
   * Lifetime of a service mesh (Connect) root Consul generates (built-in provider), hours.
   * @default 87600
   */
  readonly meshRootTtlHours?: number;
}

/** Longest certificate lifetime meshform issues or configures, days (100 years). */
const MAX_DAYS = 36_500;

/** Options of a Vault auth method. */
export interface VaultAuthOptions {
  /** The Vault role the servers log in as. */
  readonly role: string;
  /**
   * Path the auth method is mounted at.
   * @default - the method's type: "kubernetes" or "aws"
   */
  readonly mountPath?: string;
}

/** Options of a Kubernetes auth method mounted once per cluster. */
export interface VaultPerDatacenterAuthOptions {
  /** The Vault role the servers log in as (the same name in every mount). */
  readonly role: string;
  /**
   * Prefix of each datacenter's mount: `<prefix><datacenter>`.
   * @default "kubernetes-"
   */
  readonly mountPathPrefix?: string;
}

/** How Consul servers authenticate to Vault. */
export abstract class VaultAuth {
  /**
   * Vault's Kubernetes auth method (Kubernetes datacenters): the server pod's service account token, read
   * by Consul from its default path. One mount for every cluster: use it with one Kubernetes datacenter.
   */
  public static kubernetes(options: VaultAuthOptions): VaultAuth {
    const mount = options?.mountPath ?? 'kubernetes';
    return new VaultAuthMethod('kubernetes', () => mount, { role: options?.role });
  }

  /**
   * Vault's Kubernetes auth method mounted once per cluster (each cluster has its own token issuer):
   * datacenter `dc` logs in at `<mountPathPrefix><dc>`.
   */
  public static kubernetesPerDatacenter(options: VaultPerDatacenterAuthOptions): VaultAuth {
    const prefix = options?.mountPathPrefix ?? 'kubernetes-';
    return new VaultAuthMethod('kubernetes', (dc) => `${prefix}${dc}`, { role: options?.role });
  }

  /** Vault's AWS IAM auth method (EC2 datacenters): the instance role. */
  public static aws(options: VaultAuthOptions): VaultAuth {
    const mount = options?.mountPath ?? 'aws';
    return new VaultAuthMethod('aws', () => mount, { type: 'iam', role: options?.role });
  }

  /**
   * The `auth_method` block of Consul's Vault provider for one datacenter.
   * @internal
   */
  public abstract toConfig(datacenter: string): HclObject;

  /** The auth method type. */
  public abstract get type(): string;
}

class VaultAuthMethod extends VaultAuth {
  constructor(
    private readonly kind: string,
    private readonly mountPath: (datacenter: string) => string,
    private readonly params: { [key: string]: string },
  ) {
    super();
  }

  public get type(): string {
    return this.kind;
  }

  /** The role and mount paths are non-empty text. */
  public get valid(): boolean {
    const role = this.params.role;
    const mount = this.mountPath('dc');
    return isNonEmptyString(role) && isNonEmptyString(mount) && !/\s/.test(mount);
  }

  /** @internal */
  public toConfig(datacenter: string): HclObject {
    return { type: this.kind, mount_path: this.mountPath(datacenter), params: { ...this.params } };
  }
}

/** Options of Vault as the service mesh CA. */
export interface VaultCaOptions extends CertificateAuthorityOptions {
  /** Address of Vault, as every datacenter's servers reach it. */
  readonly address: string;
  /** PKI mount of the mesh's root (may hold an intermediate of your offline root: `meshform ca sign-csr`). */
  readonly rootPkiPath: string;
  /**
   * Prefix of each datacenter's intermediate PKI mount: `<prefix><datacenter>`.
   * @default "connect-intermediate-"
   */
  readonly intermediatePkiPathPrefix?: string;
  /**
   * How servers on Kubernetes authenticate (required when the mesh has Kubernetes datacenters).
   * @default - none: a Kubernetes datacenter is refused at synth
   */
  readonly kubernetesAuth?: VaultAuth;
  /**
   * How servers on EC2 authenticate (required when the mesh has EC2 datacenters).
   * @default - none: an EC2 datacenter is refused at synth
   */
  readonly awsAuth?: VaultAuth;
  /**
   * Vault namespace (Vault Enterprise).
   * @default - none
   */
  readonly namespace?: string;
  /**
   * CA certificate(s) of Vault's TLS listener (PEM, public), when Vault's certificate is not publicly
   * trusted: meshform puts it beside every server and points the provider's `ca_file` at it.
   * @default - Vault's certificate is verified against the servers' system trust store
   */
  readonly tlsCaCertificatePem?: string;
}

/** Options of AWS Private CA as the service mesh CA. */
export interface AwsPrivateCaOptions extends CertificateAuthorityOptions {
  /** ARN of the primary datacenter's private CA: a root CA. */
  readonly primaryCaArn: string;
  /**
   * ARNs of secondary datacenters' private CAs (subordinate CAs of the primary's), by datacenter name.
   * @default - Consul creates a subordinate CA per secondary datacenter
   */
  readonly secondaryCaArns?: { readonly [datacenter: string]: string };
}

/** Where a datacenter's servers run, as far as the CA providers care (how they authenticate, to what). */
export type CaHosting = 'kubernetes' | 'eks' | 'ec2' | 'own-hosts';

/** A datacenter as the CA sees it. */
export interface CaDatacenter {
  readonly name: string;
  readonly hosting: CaHosting;
  readonly primary: boolean;
  /** Where the datacenter's servers find the CA provider's files (providerFiles). */
  readonly providerFileDirectory: string;
}

/** A file the service mesh CA provider reads on every server (public material only). */
export interface CaProviderFile {
  readonly name: string;
  readonly content: string;
}

/** The certificate authority plan of a mesh, as data (manifest, CLI). */
export interface CaPlan {
  readonly provider: 'consul' | 'vault' | 'aws-pca';
  readonly root: string;
  readonly previousRoot?: string;
  readonly crossSign: boolean;
  readonly keyAlgorithm: CertificateKeyAlgorithm;
  readonly rootValidityDays: number;
  readonly intermediateValidityDays: number;
  readonly serverCertificateValidityDays: number;
  readonly rotationWindowDays: number;
}

/** The service mesh CA of a mesh as data: what a change of it means for trust. */
export interface MeshCaSummary {
  readonly provider: CaPlan['provider'];
  /** The settings that identify the mesh root (Vault address and root mount, the PCA ARN); none for built-in. */
  readonly root: { readonly [key: string]: string };
  /** Whether Consul can cross-sign when it moves away from or to this provider (AWS Private CA cannot). */
  readonly canCrossSign: boolean;
  /** The user accepted a change without cross-signing. */
  readonly allowRotationWithoutCrossSigning: boolean;
}

/**
 * The mesh's certificate authorities. Agent TLS (server RPC, gossip-adjacent TLS) always chains to an
 * offline root in meshform's store, with one intermediate per datacenter and one server certificate per
 * datacenter issued by it; the root key never enters Terraform state or any cluster. The service mesh
 * (Connect) CA is chosen by the factory: `offline()` keeps Consul's built-in provider (it accepts only a
 * self-signed root, so Consul generates it; secondaries get intermediates signed by the primary), `vault()`
 * and `awsPrivateCa()` put the mesh root in Vault or AWS Private CA.
 */
export abstract class CertificateAuthority {
  /** Offline root in meshform's store for agent TLS; Consul's built-in service mesh CA. */
  public static offline(options: CertificateAuthorityOptions = {}): CertificateAuthority {
    return new OfflineCa(options);
  }

  /** Vault PKI as the service mesh CA (its root may chain to your offline root); offline agent TLS root. */
  public static vault(options: VaultCaOptions): CertificateAuthority {
    return new VaultCa(options);
  }

  /** AWS Private CA as the service mesh CA; offline agent TLS root. */
  public static awsPrivateCa(options: AwsPrivateCaOptions): CertificateAuthority {
    return new AwsPrivateCa(options);
  }

  /** The agent TLS plan. */
  public readonly plan: CaPlan;
  /** Service mesh CA lifetimes. */
  public readonly meshTtlHours: { readonly leaf: number; readonly intermediate: number; readonly root: number };
  private readonly options: CertificateAuthorityOptions;

  protected constructor(provider: CaPlan['provider'], given: CertificateAuthorityOptions) {
    const options = given ?? {};
    this.options = options;
    this.plan = {
      provider,
      root: options.root ?? 'root-1',
      ...(options.previousRoot !== undefined ? { previousRoot: options.previousRoot } : {}),
      crossSign: options.crossSign ?? true,
      keyAlgorithm: options.keyAlgorithm ?? CertificateKeyAlgorithm.EC_P256,
      rootValidityDays: options.rootValidityDays ?? 3650,
      intermediateValidityDays: options.intermediateValidityDays ?? 1095,
      serverCertificateValidityDays: options.serverCertificateValidityDays ?? 365,
      rotationWindowDays: options.rotationWindowDays ?? 90,
    };
    this.meshTtlHours = {
      leaf: options.meshLeafTtlHours ?? 72,
      intermediate: options.meshIntermediateTtlHours ?? 8760,
      root: options.meshRootTtlHours ?? 87600,
    };
  }

  /** Checks lifetimes, rotation and provider settings; throws a MeshformError naming `path`. */
  public validate(path: string, datacenters: readonly CaDatacenter[]): void {
    const p = this.plan;
    const id = /^[a-z0-9][a-z0-9-]{0,62}$/;
    for (const [what, value] of [
      ['root', p.root],
      ['previousRoot', p.previousRoot],
    ] as const) {
      if (value !== undefined && (typeof value !== 'string' || !id.test(value)))
        throw errors.invalidRootId(path, what, value);
    }
    if (p.previousRoot !== undefined && p.previousRoot === p.root) throw errors.rotationToSameRoot(path, p.root);
    checkEnum(
      path,
      'keyAlgorithm',
      p.keyAlgorithm,
      CertificateKeyAlgorithm,
      'CertificateKeyAlgorithm.EC_P256, EC_P384, RSA_2048 or RSA_4096',
    );
    for (const [what, value] of [
      ['crossSign', p.crossSign],
      ['allowRotationWithoutCrossSigning', this.options.allowRotationWithoutCrossSigning],
    ] as const) {
      if (value !== undefined && typeof value !== 'boolean')
        throw errors.invalidValue(path, what, value, 'use true or false');
    }
    if (p.previousRoot !== undefined && !p.crossSign && !this.options.allowRotationWithoutCrossSigning) {
      throw errors.rotationWithoutCrossSigning(path, p.previousRoot, p.root);
    }
    // at most 100 years: certificate dates stay within X.509's, and Consul's durations within Go's
    const positive: [string, number, number][] = [
      ['rootValidityDays', p.rootValidityDays, MAX_DAYS],
      ['intermediateValidityDays', p.intermediateValidityDays, MAX_DAYS],
      ['serverCertificateValidityDays', p.serverCertificateValidityDays, MAX_DAYS],
      ['rotationWindowDays', p.rotationWindowDays, MAX_DAYS],
      ['meshLeafTtlHours', this.meshTtlHours.leaf, MAX_DAYS * 24],
      ['meshIntermediateTtlHours', this.meshTtlHours.intermediate, MAX_DAYS * 24],
      ['meshRootTtlHours', this.meshTtlHours.root, MAX_DAYS * 24],
    ];
    for (const [what, value, max] of positive)
      if (!isWholeNumber(value, 1, max)) throw errors.numberOutOfRange(path, what, value, 1, max);
    if (
      !(p.serverCertificateValidityDays < p.intermediateValidityDays && p.intermediateValidityDays < p.rootValidityDays)
    ) {
      throw errors.ttlOrder(
        path,
        'agent TLS',
        `server ${p.serverCertificateValidityDays}d, intermediate ${p.intermediateValidityDays}d, root ${p.rootValidityDays}d`,
      );
    }
    if (
      !(
        this.meshTtlHours.leaf < this.meshTtlHours.intermediate &&
        this.meshTtlHours.intermediate < this.meshTtlHours.root
      )
    ) {
      throw errors.ttlOrder(
        path,
        'service mesh',
        `leaf ${this.meshTtlHours.leaf}h, intermediate ${this.meshTtlHours.intermediate}h, root ${this.meshTtlHours.root}h`,
      );
    }
    if (p.rotationWindowDays >= p.serverCertificateValidityDays) {
      throw errors.rotationWindowTooLong(path, p.rotationWindowDays, p.serverCertificateValidityDays);
    }
    this.validateProvider(path, datacenters);
  }

  /**
   * Files every server needs for the provider (e.g. Vault's TLS CA), placed in `providerFileDirectory`.
   * @internal
   */
  public providerFiles(): CaProviderFile[] {
    return [];
  }

  /** Provider-specific checks. */
  protected abstract validateProvider(path: string, datacenters: readonly CaDatacenter[]): void;

  /**
   * The `connect` block (provider and ca_config) of a datacenter's servers.
   * @internal
   */
  public connectConfig(datacenter: CaDatacenter): HclObject {
    return {
      enabled: true,
      ca_provider: this.plan.provider,
      ca_config: {
        ...this.providerConfig(datacenter),
        leaf_cert_ttl: `${this.meshTtlHours.leaf}h`,
        intermediate_cert_ttl: `${this.meshTtlHours.intermediate}h`,
        ...(this.plan.provider === 'consul' ? { root_cert_ttl: `${this.meshTtlHours.root}h` } : {}),
        private_key_type: this.plan.keyAlgorithm.startsWith('ec') ? 'ec' : 'rsa',
        private_key_bits: Number(this.plan.keyAlgorithm.replace(/^ec-p|^rsa-/, '')),
      },
    };
  }

  /**
   * Provider settings of a datacenter's `ca_config`.
   * @internal
   */
  protected abstract providerConfig(datacenter: CaDatacenter): HclObject;

  /**
   * The body of Consul's Update CA Configuration API (`consul connect ca set-config -config-file`) for a
   * datacenter: Consul reads `connect.ca_config` from the agent configuration only when the CA is first
   * initialized, so a later change is applied through the API, whose keys are CamelCase.
   */
  public connectCaApiBody(datacenter: CaDatacenter): object {
    const camel: { [key: string]: string } = {
      address: 'Address',
      root_pki_path: 'RootPKIPath',
      intermediate_pki_path: 'IntermediatePKIPath',
      auth_method: 'AuthMethod',
      type: 'Type',
      mount_path: 'MountPath',
      params: 'Params',
      namespace: 'Namespace',
      ca_file: 'CAFile',
      existing_arn: 'ExistingARN',
      leaf_cert_ttl: 'LeafCertTTL',
      intermediate_cert_ttl: 'IntermediateCertTTL',
      root_cert_ttl: 'RootCertTTL',
      private_key_type: 'PrivateKeyType',
      private_key_bits: 'PrivateKeyBits',
    };
    const convert = (value: unknown, depth: number): unknown => {
      if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
      return Object.fromEntries(
        Object.entries(value).map(([k, v]) => [
          depth < 2 && camel[k] ? camel[k] : k,
          k === 'params' ? v : convert(v, depth + 1),
        ]),
      );
    };
    const summary = this.meshCaSummary(datacenter);
    return {
      Provider: this.plan.provider,
      Config: convert(this.connectConfig(datacenter).ca_config, 0),
      ...(!summary.canCrossSign && summary.allowRotationWithoutCrossSigning ? { ForceWithoutCrossSigning: true } : {}),
    };
  }

  /**
   * The service mesh CA as data, from the primary's point of view.
   * @internal
   */
  public meshCaSummary(primary: CaDatacenter): MeshCaSummary {
    const config = this.providerConfig(primary);
    const root: { [key: string]: string } = {};
    for (const key of ['address', 'root_pki_path', 'existing_arn', 'namespace']) {
      if (typeof config[key] === 'string') root[key] = config[key] as string;
    }
    return {
      provider: this.plan.provider,
      root,
      canCrossSign: this.plan.provider !== 'aws-pca',
      allowRotationWithoutCrossSigning: this.options.allowRotationWithoutCrossSigning ?? false,
    };
  }

  /** A one-line description. */
  public abstract describe(): string;
}

class OfflineCa extends CertificateAuthority {
  constructor(options: CertificateAuthorityOptions) {
    super('consul', options);
  }

  protected validateProvider(): void {}

  protected providerConfig(): HclObject {
    return {};
  }

  public describe(): string {
    return `offline root ${this.plan.root} (agent TLS), Consul's built-in service mesh CA`;
  }
}

const VAULT_CA_FILE = 'vault-ca.pem';

class VaultCa extends CertificateAuthority {
  private readonly vault: VaultCaOptions;

  constructor(vault: VaultCaOptions) {
    super('vault', vault);
    this.vault = vault ?? ({} as VaultCaOptions);
  }

  protected validateProvider(path: string, datacenters: readonly CaDatacenter[]): void {
    if (typeof this.vault.address !== 'string' || !/^https:\/\/[^/\s]/.test(this.vault.address))
      throw errors.invalidUrl(path, 'Vault address', this.vault.address);
    if (!isNonEmptyString(this.vault.rootPkiPath)) throw errors.emptyValue(path, 'rootPkiPath');
    for (const [what, value] of [
      ['intermediatePkiPathPrefix', this.vault.intermediatePkiPathPrefix],
      ['namespace', this.vault.namespace],
      ['tlsCaCertificatePem', this.vault.tlsCaCertificatePem],
    ] as const) {
      if (value !== undefined && !isNonEmptyString(value)) throw errors.emptyValue(path, what);
    }
    for (const [what, value] of [
      ['kubernetesAuth', this.vault.kubernetesAuth],
      ['awsAuth', this.vault.awsAuth],
    ] as const) {
      if (value !== undefined && !(value instanceof VaultAuth))
        throw errors.missingValue(
          path,
          what,
          value,
          'use VaultAuth.kubernetes({ role }), .kubernetesPerDatacenter({ role }) or .aws({ role })',
        );
      if (value instanceof VaultAuthMethod && !value.valid)
        throw errors.emptyValue(path, `${what} role and mount path`);
    }
    for (const dc of datacenters) {
      if ((dc.hosting === 'kubernetes' || dc.hosting === 'eks') && !this.vault.kubernetesAuth)
        throw errors.missingVaultAuth(path, dc.name, 'kubernetesAuth');
      if (dc.hosting === 'ec2' && !this.vault.awsAuth) throw errors.missingVaultAuth(path, dc.name, 'awsAuth');
      if (dc.hosting === 'own-hosts') throw errors.vaultOnOwnHosts(path, dc.name);
    }
    const pem = this.vault.tlsCaCertificatePem;
    if (pem !== undefined) {
      const certificates = pem.match(/-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g) ?? [];
      const parses = certificates.every((c) => {
        try {
          return new X509Certificate(c).ca;
        } catch {
          return false;
        }
      });
      if (certificates.length === 0 || !parses || /PRIVATE KEY/.test(pem)) throw errors.invalidVaultCa(path);
    }
  }

  /** @internal */
  public override providerFiles(): CaProviderFile[] {
    return this.vault.tlsCaCertificatePem ? [{ name: VAULT_CA_FILE, content: this.vault.tlsCaCertificatePem }] : [];
  }

  protected providerConfig(dc: CaDatacenter): HclObject {
    const auth = dc.hosting === 'ec2' ? this.vault.awsAuth! : this.vault.kubernetesAuth!;
    return {
      address: this.vault.address,
      root_pki_path: this.vault.rootPkiPath,
      intermediate_pki_path: `${this.vault.intermediatePkiPathPrefix ?? 'connect-intermediate-'}${dc.name}`,
      auth_method: auth.toConfig(dc.name),
      ...(this.vault.namespace ? { namespace: this.vault.namespace } : {}),
      ...(this.vault.tlsCaCertificatePem ? { ca_file: `${dc.providerFileDirectory}/${VAULT_CA_FILE}` } : {}),
    };
  }

  public describe(): string {
    return `offline root ${this.plan.root} (agent TLS), Vault ${this.vault.rootPkiPath} as service mesh CA`;
  }
}

class AwsPrivateCa extends CertificateAuthority {
  private readonly pca: AwsPrivateCaOptions;

  constructor(pca: AwsPrivateCaOptions) {
    super('aws-pca', pca);
    this.pca = pca ?? ({} as AwsPrivateCaOptions);
  }

  protected validateProvider(path: string, datacenters: readonly CaDatacenter[]): void {
    const arn = /^arn:aws[a-z-]*:acm-pca:[a-z0-9-]+:\d{12}:certificate-authority\/[0-9a-f-]+$/;
    if (typeof this.pca.primaryCaArn !== 'string' || !arn.test(this.pca.primaryCaArn))
      throw errors.invalidArn(path, 'primaryCaArn', this.pca.primaryCaArn);
    const secondaries = this.pca.secondaryCaArns ?? {};
    if (typeof secondaries !== 'object' || Array.isArray(secondaries))
      throw errors.missingValue(path, 'secondaryCaArns', secondaries, 'give an object of datacenter name to ARN');
    for (const [dc, value] of Object.entries(secondaries)) {
      if (typeof value !== 'string' || !arn.test(value)) throw errors.invalidArn(path, `secondaryCaArns.${dc}`, value);
      if (value === this.pca.primaryCaArn)
        throw errors.trustDomainMismatch(path, dc, "uses the primary's root CA as its subordinate");
      const known = datacenters.find((d) => d.name === dc);
      if (!known)
        throw errors.unknownDatacenterReference(
          path,
          dc,
          datacenters.map((d) => d.name),
        );
      if (known.primary) throw errors.trustDomainMismatch(path, dc, 'is the primary: set its CA with primaryCaArn');
    }
  }

  protected providerConfig(dc: CaDatacenter): HclObject {
    const arn = dc.primary ? this.pca.primaryCaArn : this.pca.secondaryCaArns?.[dc.name];
    return arn ? { existing_arn: arn } : {};
  }

  /** The ARN of a datacenter's CA, if declared. */
  public caArnOf(dc: CaDatacenter): string | undefined {
    return dc.primary ? this.pca.primaryCaArn : this.pca.secondaryCaArns?.[dc.name];
  }

  public describe(): string {
    return `offline root ${this.plan.root} (agent TLS), AWS Private CA as service mesh CA`;
  }
}

/**
 * The IAM permissions a datacenter's servers need for AWS Private CA, or none for other providers: read and
 * issue on the datacenter's own CA, and, for a secondary without an ARN (Consul creates its subordinate CA),
 * the creation calls, which IAM cannot scope to a resource.
 */
export function awsPrivateCaPermissions(
  ca: CertificateAuthority,
  dc: CaDatacenter,
): { Sid: string; Effect: 'Allow'; Action: string[]; Resource: string }[] {
  if (!(ca instanceof AwsPrivateCa)) return [];
  const arn = ca.caArnOf(dc);
  const use = [
    'acm-pca:DescribeCertificateAuthority',
    'acm-pca:GetCertificate',
    'acm-pca:GetCertificateAuthorityCertificate',
    'acm-pca:IssueCertificate',
  ];
  if (arn) return [{ Sid: 'ServiceMeshCa', Effect: 'Allow', Action: use, Resource: arn }];
  return [
    {
      Sid: 'ServiceMeshCaSubordinate',
      Effect: 'Allow',
      Action: [
        ...use,
        'acm-pca:CreateCertificateAuthority',
        'acm-pca:GetCertificateAuthorityCsr',
        'acm-pca:ImportCertificateAuthorityCertificate',
      ],
      Resource: '*',
    },
  ];
}

/** Warnings the CA raises about datacenters (stable ids). */
export function caWarnings(ca: CertificateAuthority, dc: CaDatacenter): MeshformWarning[] {
  if (ca instanceof AwsPrivateCa && (dc.hosting === 'kubernetes' || dc.hosting === 'own-hosts'))
    return [warnings.awsPrivateCaCredentials(dc.name)];
  if (ca instanceof AwsPrivateCa && !ca.caArnOf(dc)) return [warnings.awsPrivateCaCreatedByConsul(dc.name)];
  return [];
}
