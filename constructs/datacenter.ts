import { Construct } from 'constructs';
import { errors, MeshformWarning, warnings } from './errors';
import { Mesh } from './mesh';
import { MeshGateway, MeshGatewayOptions } from './mesh-gateway';
import type { CaDatacenter, CaHosting } from './certificate-authority';
import type { ServerCertificateRequest } from './private/ca-material';
import type { FederationLogin } from './private/federation-reach';
import { TerraformStack } from './private/engine';
import { checkedId, checkedProps, checkEnum } from './private/guards';
import { isDatacenterName } from './private/validation';
import { StateBackend, StateLocation } from './state-backend';
import type { MeshStackProps } from '../stacks/mesh-stack';
import type { Service } from './service';

/** Where a datacenter runs (informational: summaries, plans and pictures show it). */
export enum Cloud {
  AWS = 'aws',
  GOOGLE_CLOUD = 'gcp',
  AZURE = 'azure',
  ON_PREMISES = 'on-premises',
  OTHER = 'other',
}

/** The kind of platform a datacenter's Consul runs on. */
export enum Platform {
  KUBERNETES = 'kubernetes',
  VIRTUAL_MACHINES = 'vm',
}

/** Props every kind of datacenter shares. */
export interface DatacenterProps {
  /**
   * Consul datacenter name: an RFC 1123 label (lowercase letters, digits, hyphens; at most 63 characters).
   * @default - the construct id
   */
  readonly name?: string;
  /**
   * Whether this is the mesh's primary datacenter (ACL and CA authority, config entries replicate from it).
   * Exactly one datacenter of a mesh is primary.
   * @default false
   */
  readonly primary?: boolean;
  /**
   * Number of Consul servers.
   * @default 3
   */
  readonly servers?: number;
  /**
   * The datacenter's mesh gateway.
   * @default - a LoadBalancer gateway with 2 replicas on port 443, address assigned by the platform
   */
  readonly meshGateway?: MeshGatewayOptions;
  /**
   * Where this datacenter's stacks keep their Terraform state.
   * @default - the mesh's backend
   */
  readonly backend?: StateBackend;
  /**
   * The cloud (or on-premises) the datacenter runs in.
   * @default Cloud.OTHER
   */
  readonly cloud?: Cloud;
}

/** What a datacenter deploys, for summaries and the topology manifest. */
export interface DatacenterDescription {
  readonly name: string;
  readonly platform: Platform;
  readonly cloud: Cloud;
  readonly primary: boolean;
  readonly servers: number;
  readonly meshGateway: {
    readonly address?: string;
    readonly port: number;
    readonly exposure: string;
    readonly replicas: number;
    /** Who can reach it: anyone on the internet, or only its own network (and peered ones). */
    readonly reach: GatewayReach;
  };
  /** Datacenters whose network this one's is peered with (VM datacenters on AWS). */
  readonly peeredWith?: readonly string[];
  /** The datacenter's stacks in the order they deploy, with where each keeps its state. */
  readonly stacks: readonly { readonly name: string; readonly state: string; readonly location: StateLocation }[];
  /** One line per thing installed. */
  readonly installs: readonly string[];
  /** Services running here. */
  readonly services?: readonly string[];
  /** Your own hosts (VM datacenters on hosts you bring): what the CLI needs to hand each its secrets. */
  readonly ownHosts?: readonly {
    readonly name: string;
    readonly address: string;
    readonly role: string;
    readonly services: readonly string[];
  }[];
}

const DATACENTER_SYMBOL = Symbol.for('meshform.Datacenter');

/** A datacenter's scope: its mesh, refused with a clear error otherwise (checked before constructs sees it). */
function datacenterScope(scope: unknown, id: unknown): Construct {
  if (!Mesh.isMesh(scope)) {
    const where =
      scope instanceof Construct ? `${scope.node.path ? `${scope.node.path}/` : ''}${String(id)}` : String(id);
    throw errors.notInMesh(where);
  }
  return scope;
}

/** Who can reach a mesh gateway. */
export type GatewayReach = 'internet' | 'network';

/**
 * A Consul datacenter of a mesh. Concrete kinds: `KubernetesDatacenter` (and, on VMs, `VmDatacenter`).
 * A datacenter owns the Terraform stacks that install it: it creates them as its children, with every
 * resource they hold, when it is declared, and adds what later declarations bring (services, peerings, other
 * datacenters) as they are made.
 */
export abstract class Datacenter extends Construct {
  /** True when `x` is a datacenter (of any kind). */
  public static isDatacenter(x: unknown): x is Datacenter {
    return typeof x === 'object' && x !== null && DATACENTER_SYMBOL in x;
  }

  /** The mesh this datacenter belongs to. */
  public readonly mesh: Mesh;
  /** Consul datacenter name. */
  public readonly name: string;
  /** Whether this is the primary datacenter. */
  public readonly isPrimary: boolean;
  /** Number of Consul servers. */
  public readonly servers: number;
  /** The cloud it runs in. */
  public readonly cloud: Cloud;
  /** Where its stacks keep their state. */
  public readonly backend: StateBackend;
  /** The datacenter's mesh gateway. */
  public readonly meshGateway: MeshGateway;
  /** The platform Consul runs on. */
  public abstract readonly platform: Platform;

  /** Where the servers run, for the CA providers (how they authenticate). */
  public abstract get hosting(): CaHosting;

  /** Who can reach this datacenter's mesh gateway. */
  protected abstract get gatewayReach(): GatewayReach;

  /** Where this datacenter's servers find the service mesh CA provider's files. */
  protected abstract get caProviderFileDirectory(): string;

  /** The datacenter as the CA sees it. */
  public get caView(): CaDatacenter {
    return {
      name: this.name,
      hosting: this.hosting,
      primary: this.isPrimary,
      providerFileDirectory: this.caProviderFileDirectory,
    };
  }

  private readonly raised: MeshformWarning[] = [];

  protected constructor(scope: Construct, id: string, props: DatacenterProps, allowedServerCounts: readonly number[]) {
    super(datacenterScope(scope, id), checkedId(scope, id));
    Object.defineProperty(this, DATACENTER_SYMBOL, { value: true });
    this.mesh = scope as Mesh;
    const path = this.node.path;
    props = checkedProps(path, 'datacenter props', props, 'pass the datacenter props object');
    this.name = props.name ?? id;
    if (!isDatacenterName(this.name)) {
      throw errors.invalidName(path, 'datacenter name', this.name, suggestName(this.name));
    }
    this.isPrimary = props.primary ?? false;
    this.servers = props.servers ?? 3;
    if (!allowedServerCounts.includes(this.servers)) {
      throw errors.invalidServerCount(path, this.servers, allowedServerCounts);
    }
    if (this.servers === 1) this.warn(warnings.singleServer(this.name));
    checkEnum(path, 'cloud', props.cloud, Cloud, 'Cloud.AWS, GOOGLE_CLOUD, AZURE, ON_PREMISES or OTHER');
    this.cloud = props.cloud ?? Cloud.OTHER;
    if (props.primary !== undefined && typeof props.primary !== 'boolean')
      throw errors.invalidValue(path, 'primary', props.primary, 'use true or false');
    this.backend = StateBackend._checked(path, props.backend ?? this.mesh.backend);
    this.meshGateway = new MeshGateway(this, 'MeshGateway', props.meshGateway);
  }

  /**
   * Adds the datacenter to its mesh (refusing a duplicate name, a second primary, or a stack name another
   * stack of the app has). Subclasses call it once their own props are checked, before creating the stacks
   * named `stackNames`, so a rejected datacenter is never registered.
   */
  protected register(stackNames: readonly string[]): void {
    this.mesh._addDatacenter(this, () => {
      const taken = new Set(
        this.node.root.node
          .findAll()
          .filter((c) => TerraformStack.isStack(c))
          .map((s) => s.node.id),
      );
      for (const name of stackNames) if (taken.has(name)) throw errors.duplicateStackName(this.node.path, name);
    });
  }

  /** Props every stack of the datacenter takes: its state backend and the mesh's synthesis hooks. */
  protected get stackProps(): MeshStackProps {
    return { backend: this.backend, hooks: this.mesh._stackHooks };
  }

  /**
   * Tells the mesh the datacenter and its stacks exist; subclasses call it at the end of their constructor.
   * The mesh then records the deploy order and brings every datacenter's stacks up to date.
   */
  protected declared(): void {
    this.mesh._declared(this);
  }

  /**
   * Brings the datacenter's stacks up to date with the mesh as declared so far (services placed here, other
   * datacenters, peerings); the mesh calls it after each declaration, with the construct the declaration was
   * made on when it was a service's (only that service changed), else undefined (anything may have). Resources
   * that depend on the whole mesh only through their values are Lazy and need nothing here.
   * @internal
   */
  public _meshChanged(_service?: Service): void {}

  /**
   * Called once the mesh is validated, before anything is written: what could not be brought up to date from
   * declarations the mesh had not validated yet is done now.
   * @internal
   */
  public _meshValidated(): void {}

  /** Warnings raised about this datacenter (the mesh reports them on its control-plane stack at synth). */
  public get warnings(): readonly MeshformWarning[] {
    return [...this.raised];
  }

  /** Records a warning about this datacenter. */
  protected warn(warning: MeshformWarning): void {
    if (!this.raised.some((w) => w.message === warning.message)) this.raised.push(warning);
  }

  /**
   * Records a warning raised by the mesh about this datacenter.
   * @internal
   */
  public _warn(warning: MeshformWarning): void {
    this.warn(warning);
  }

  /** Name of the datacenter's stack (or the stem of its stacks' names): `<mesh>-<datacenter>`. */
  public get stackName(): string {
    return `${this.mesh.name}-${this.name}`;
  }

  /** The datacenter's stacks, in the order they deploy. */
  public abstract get stacks(): readonly TerraformStack[];

  /** The stack that installs the Consul control plane; secondaries deploy after the primary's. */
  public abstract get controlPlaneStack(): TerraformStack;

  /** What the datacenter deploys. */
  public abstract describe(): DatacenterDescription;

  /** The description fields every kind shares; `installs` ends with the federation line. */
  protected describeWith(
    installs: readonly string[],
    exposure: string,
    extra: Partial<DatacenterDescription> = {},
  ): DatacenterDescription {
    const gw = this.meshGateway;
    const mesh = this.mesh;
    return {
      name: this.name,
      platform: this.platform,
      cloud: this.cloud,
      primary: this.isPrimary,
      servers: this.servers,
      meshGateway: { address: gw.address, port: gw.wanPort, exposure, replicas: gw.replicas, reach: this.gatewayReach },
      stacks: this.stacks.map((s) => ({
        name: s.node.id,
        state: this.backend.describe(s.node.id),
        location: this.backend.location(s.node.id),
      })),
      installs: [
        ...installs,
        this.isPrimary
          ? 'federation: primary (ACL and CA authority)'
          : `federation: joins ${mesh.primary.name} via ${mesh.federation.primaryGateways.join(', ')}`,
      ],
      ...extra,
    };
  }

  /**
   * The server certificate this datacenter's servers need (names Consul and the platform require).
   * @internal
   */
  public abstract serverCertificateRequest(): ServerCertificateRequest;

  /** Names every server certificate carries: Consul's `server.<dc>.<domain>` (verify_server_hostname) and loopback. */
  protected baseServerNames(): { dnsNames: string[]; ipAddresses: string[] } {
    const domain = this.mesh.domain;
    return {
      dnsNames: [`server.${this.name}.${domain}`, `*.server.${this.name}.${domain}`, 'localhost'],
      ipAddresses: ['127.0.0.1', '::1'],
    };
  }

  /**
   * A secondary whose components log in through an auth method the primary's servers call: how the primary
   * reaches it (Kubernetes secondaries). None by default.
   */
  public federationLogin(): FederationLogin | undefined {
    return undefined;
  }

  /** Checks what needs the whole mesh (e.g. federation inputs); called by Mesh.prepare. Creates nothing. */
  public abstract validateInMesh(): void;
}

/** A best-effort valid name to show in an error message. */
function suggestName(name: string): string {
  const cleaned = name
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/g, '');
  return cleaned.length > 0 ? cleaned : 'dc1';
}
