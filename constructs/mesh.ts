import * as fs from 'node:fs';
import * as path from 'node:path';
import { Construct, IConstruct } from 'constructs';
import { MeshformAws } from './aws-endpoint';
import { CertificateAuthority, caWarnings } from './certificate-authority';
import type { Datacenter } from './datacenter';
import type { Service } from './service';
import { errors } from './errors';
import { Federation } from './federation';
import {
  Annotations,
  DISABLE_STACK_TRACE_IN_METADATA,
  escapeTerraformTemplate,
  Lazy,
  TerraformOutput,
  TerraformStack,
  withShortTokenStacks,
} from './private/engine';
import {
  APPLIED_OUTPUT,
  APPLIED_RECORD_FORMAT,
  AppliedRecord,
  appliedPeers,
  CONNECT_CA_DIR,
  MESH_MANIFEST_DIR,
  MESH_MANIFEST_FORMAT,
  MeshManifest,
  scopeManifest,
} from './private/mesh-manifest';
import { checkedId, checkedProps, checkedScope, checkEnum } from './private/guards';
import { secretInputs } from './private/secret-inputs';
import { writeToStagedOutput } from './private/synth-output';
import { isDatacenterName, isDnsName, isPort } from './private/validation';
import { chartRelease, DEFAULT_CHART_VERSION, DEFAULT_CONSUL_VERSION, knownChartVersions } from './private/versions';
import { LocalStoreBackend, SecretStoreBackend } from './secret-store-backend';
import { StateBackend } from './state-backend';
import { MeshGatewayMode, MeshTrafficSettings } from './traffic-policy';
import type { MeshStackHooks } from '../stacks/mesh-stack';

/** Props of a Mesh. */
export interface MeshProps {
  /**
   * Mesh name: an RFC 1123 label. It prefixes every stack name (`<mesh>-<datacenter>`) and names the
   * mesh's entry in the secret store and its Terraform variables.
   * @default - the construct id
   */
  readonly name?: string;
  /**
   * Consul version run by every datacenter.
   * @default "2.0.3"
   */
  readonly consulVersion?: string;
  /**
   * Version of the official consul-k8s Helm chart installed on Kubernetes datacenters.
   * @default "2.0.3"
   */
  readonly chartVersion?: string;
  /**
   * Consul's DNS domain.
   * @default "consul"
   */
  readonly domain?: string;
  /**
   * Where every datacenter's stacks keep their Terraform state, unless a datacenter chooses its own.
   * @default StateBackend.local()
   */
  readonly backend?: StateBackend;
  /**
   * The certificate authorities: agent TLS under an offline root with per-datacenter intermediates, and the
   * service mesh CA (Consul's built-in one, Vault or AWS Private CA).
   * @default CertificateAuthority.offline()
   */
  readonly certificateAuthority?: CertificateAuthority;
  /**
   * Mesh-wide traffic settings: how sidecars reach other datacenters, mesh-only destinations, metrics.
   * @default - gateways in local mode, mesh-only destinations, Prometheus metrics on every sidecar
   */
  readonly traffic?: MeshTrafficSettings;
  /**
   * Where the AWS providers of the mesh's stacks send their calls (AWS, or an emulator for integration runs).
   * @default MeshformAws.fromEnvironment() - MESHFORM_AWS_ENDPOINT when set, else AWS
   */
  readonly aws?: MeshformAws;
  /**
   * Where the mesh's shared secrets live (certificates and keys, gossip key, tokens, records; never the root
   * keys): the local store only, or a team store a pipeline reads: `SecretStore.awsSecretsManager({...})`,
   * `SecretStore.terraformCloud({...})`.
   * @default SecretStore.local()
   */
  readonly secretStore?: SecretStoreBackend;
}

/** The mesh-wide traffic settings with their defaults filled in. */
export interface ResolvedMeshTraffic {
  readonly meshGatewayMode: MeshGatewayMode;
  readonly meshDestinationsOnly: boolean;
  readonly prometheusBindAddress: string;
}

const MESH_SYMBOL = Symbol.for('meshform.Mesh');
/** Apps whose validation checks their meshes (once per app). */
const APP_CHECKED = new WeakSet<IConstruct>();
/** Every mesh created in each app (root construct), so that checking whether all are prepared walks no tree. */
const MESHES_OF = new WeakMap<IConstruct, Mesh[]>();

/** A Mesh's scope: a construct (the App), refused with a clear error otherwise. */
function meshScope(scope: unknown, id: unknown): Construct {
  return checkedScope(scope, id, 'a Mesh', 'create the Mesh directly under the App: `new Mesh(app, "shop", { ... })`');
}

/**
 * A Consul service mesh: datacenters on any platform and cloud, WAN-federated through mesh gateways, with
 * one primary. Create it directly under the App and add datacenters to it. Each datacenter creates its own
 * stack(s) below it (`Aspects.of(mesh)` reaches every resource of the mesh); the primary's deploy first.
 * Declare everything before `app.synth()`, which validates the whole mesh before writing anything.
 *
 * @example
 * ```ts
 * const mesh = new Mesh(app, 'shop');
 * new KubernetesDatacenter(mesh, 'aws-east', {
 *   primary: true,
 *   cluster: KubernetesCluster.fromKubeconfig({ context: 'eks' }),
 *   meshGateway: { address: 'mgw.example.com' },
 * });
 * new KubernetesDatacenter(mesh, 'gcp-west', {
 *   cluster: KubernetesCluster.fromKubeconfig({ context: 'gke', apiServerUrl: 'https://203.0.113.10' }),
 * });
 * ```
 */
export class Mesh extends Construct {
  /** True when `x` is a Mesh. */
  public static isMesh(x: unknown): x is Mesh {
    return typeof x === 'object' && x !== null && MESH_SYMBOL in x;
  }

  /** The mesh a construct belongs to. */
  public static of(construct: IConstruct): Mesh {
    const found = construct.node.scopes
      .slice()
      .reverse()
      .find((s) => Mesh.isMesh(s));
    if (!found) throw errors.notInMesh(construct.node.path);
    return found as Mesh;
  }

  /** Mesh name. */
  public readonly name: string;
  /** Consul version of every datacenter. */
  public readonly consulVersion: string;
  /** consul-k8s Helm chart version. */
  public readonly chartVersion: string;
  /** Consul DNS domain. */
  public readonly domain: string;
  /** Default state backend of the mesh's stacks. */
  public readonly backend: StateBackend;
  /** WAN federation of the datacenters. */
  public readonly federation: Federation;
  /** The certificate authorities. */
  public readonly certificateAuthority: CertificateAuthority;
  /** Mesh-wide traffic settings. */
  public readonly traffic: ResolvedMeshTraffic;
  /** Where the mesh's AWS providers send their calls. */
  public readonly aws: MeshformAws;
  /** Where the mesh's shared secrets live. */
  public readonly secretStore: SecretStoreBackend;

  private readonly dcs: Datacenter[] = [];
  /** The datacenters whose stacks exist, in declaration order. */
  private readonly declaredDcs: Datacenter[] = [];
  private readonly svcs: Service[] = [];
  /** The services by name. */
  private readonly svcByName = new Map<string, Service>();
  /** Each service's position in declaration order. */
  private readonly svcIndex = new Map<Service, number>();
  /** The services each datacenter runs, in declaration order. */
  private readonly placements = new Map<Datacenter, Service[]>();
  private prepared = false;
  /** The manifest, once the mesh is prepared (it no longer changes). */
  private preparedManifest?: MeshManifest;

  /**
   * What every stack of the mesh does around its synthesis: the first one prepared validates the whole mesh;
   * the primary's control-plane stack writes the mesh manifest.
   * @internal
   */
  public readonly _stackHooks: MeshStackHooks = {
    // every mesh of the app, not only this one: an invalid mesh anywhere stops synthesis before anything is written
    beforeSynth: () => Mesh.prepareAll(this.node.root),
    afterSynth: (stack, outdir) => {
      if (stack === this.primary.controlPlaneStack) this.writeManifest(outdir);
    },
  };

  constructor(scope: Construct, id: string, props: MeshProps = {}) {
    super(meshScope(scope, id), checkedId(scope, id));
    Object.defineProperty(this, MESH_SYMBOL, { value: true });
    // Warnings raised below the mesh carry no stack trace: synth output stays byte-identical across machines.
    this.node.setContext(DISABLE_STACK_TRACE_IN_METADATA, true);
    const path = this.node.path;
    if (this.node.scopes.some((s) => TerraformStack.isStack(s))) throw errors.meshInsideStack(path);
    props = checkedProps(path, 'mesh props', props, 'pass an object of MeshProps, e.g. `{ consulVersion: "2.0.3" }`');

    this.name = props.name ?? id;
    if (!isDatacenterName(this.name)) throw errors.invalidName(path, 'mesh name', this.name, 'shop');
    this.domain = props.domain ?? 'consul';
    if (!isDnsName(this.domain)) throw errors.invalidDomain(path, this.domain);

    this.chartVersion = props.chartVersion ?? DEFAULT_CHART_VERSION;
    const release = chartRelease(this.chartVersion);
    if (!release) throw errors.unknownChartVersion(path, this.chartVersion, knownChartVersions());
    this.consulVersion = props.consulVersion ?? DEFAULT_CONSUL_VERSION;
    if (!release.consulVersions.includes(this.consulVersion)) {
      throw errors.unknownConsulVersion(path, this.consulVersion, this.chartVersion, release.consulVersions);
    }

    this.backend = StateBackend._checked(path, props.backend ?? StateBackend.local());
    this.certificateAuthority = props.certificateAuthority ?? CertificateAuthority.offline();
    if (!(this.certificateAuthority instanceof CertificateAuthority))
      throw errors.missingValue(
        path,
        'certificateAuthority',
        this.certificateAuthority,
        'use CertificateAuthority.offline(), .vault({...}) or .awsPrivateCa({...})',
      );
    const traffic = checkedProps(path, 'traffic', props.traffic, 'pass an object of MeshTrafficSettings');
    checkEnum(
      path,
      'traffic.meshGatewayMode',
      traffic.meshGatewayMode,
      MeshGatewayMode,
      'MeshGatewayMode.LOCAL, REMOTE or NONE',
    );
    if (traffic.meshDestinationsOnly !== undefined && typeof traffic.meshDestinationsOnly !== 'boolean')
      throw errors.invalidValue(
        path,
        'traffic.meshDestinationsOnly',
        traffic.meshDestinationsOnly,
        'use true or false',
      );
    this.traffic = {
      meshGatewayMode: traffic.meshGatewayMode ?? MeshGatewayMode.LOCAL,
      meshDestinationsOnly: traffic.meshDestinationsOnly ?? true,
      prometheusBindAddress: traffic.prometheusBindAddress ?? '0.0.0.0:20200',
    };
    const bind = /^(\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/.exec(String(this.traffic.prometheusBindAddress));
    if (
      typeof this.traffic.prometheusBindAddress !== 'string' ||
      !bind ||
      !bind[1]!.split('.').every((octet) => Number(octet) <= 255 && !/^0\d/.test(octet)) ||
      !isPort(Number(bind[2]))
    ) {
      throw errors.invalidValue(
        path,
        'traffic.prometheusBindAddress',
        this.traffic.prometheusBindAddress,
        'give an IPv4 address and a port from 1 to 65535, e.g. "0.0.0.0:20200"',
      );
    }
    this.aws = props.aws ?? MeshformAws.fromEnvironment();
    if (!(this.aws instanceof MeshformAws))
      throw errors.missingValue(path, 'aws', this.aws, 'use MeshformAws.standard() or MeshformAws.endpoint(url)');
    this.aws.validate(path);
    this.secretStore = props.secretStore ?? new LocalStoreBackend();
    this.secretStore.validate(path);
    this.federation = new Federation(this, 'Federation');
    writeToStagedOutput(this);
    // An app whose meshes have no stack at all (e.g. a mesh with no datacenter) synthesizes no mesh stack, so
    // nothing else would check them: the app checks them before it writes its manifest.
    const root = this.node.root;
    const meshes = MESHES_OF.get(root) ?? [];
    meshes.push(this);
    MESHES_OF.set(root, meshes);
    if (!APP_CHECKED.has(root)) {
      APP_CHECKED.add(root);
      root.node.addValidation({ validate: () => (Mesh.prepareAll(root), []) });
    }
  }

  /**
   * Validates every mesh of an app (see `prepare`); the first stack the app prepares for synthesis calls it,
   * so that an invalid mesh stops the synthesis of every stack, before anything is written.
   * @internal
   */
  public static prepareAll(root: IConstruct): void {
    // every stack of the app calls this as it is prepared: once every mesh ever created in the app is prepared
    // there is nothing left to find (walking the whole tree once per stack grows with stacks × constructs)
    if ((MESHES_OF.get(root) ?? []).every((mesh) => mesh.prepared)) return;
    for (const mesh of root.node.findAll().filter((c): c is Mesh => Mesh.isMesh(c))) mesh.prepare();
  }

  /** The datacenters, in declaration order. */
  public get datacenters(): readonly Datacenter[] {
    return [...this.dcs];
  }

  /** The primary datacenter; throws unless exactly one datacenter is primary. */
  public get primary(): Datacenter {
    const primaries = this.dcs.filter((dc) => dc.isPrimary);
    if (this.dcs.length === 0) throw errors.emptyMesh(this.node.path);
    if (primaries.length === 0)
      throw errors.noPrimary(
        this.node.path,
        this.dcs.map((dc) => dc.name),
      );
    if (primaries.length > 1)
      throw errors.multiplePrimaries(
        this.node.path,
        primaries.map((dc) => dc.name),
      );
    return primaries[0]!;
  }

  /** The services, in declaration order (read-only: declare one with `new Service`). */
  public get services(): readonly Service[] {
    return this.svcs;
  }

  /** A service by name. */
  public service(name: string): Service | undefined {
    return this.svcByName.get(name);
  }

  /** The services that run in a datacenter, in declaration order. */
  public servicesIn(datacenter: Datacenter): Service[] {
    return [...(this.placements.get(datacenter) ?? [])];
  }

  /**
   * Records that a service runs in a datacenter; called by `Service.runsIn`.
   * @internal
   */
  public _placed(service: Service, datacenter: Datacenter): void {
    const placed = this.placements.get(datacenter) ?? [];
    this.placements.set(datacenter, placed);
    // keep declaration order (a service declared earlier may be placed here later)
    const index = this.svcIndex.get(service)!;
    let at = placed.length;
    while (at > 0 && this.svcIndex.get(placed[at - 1]!)! > index) at--;
    placed.splice(at, 0, service);
  }

  /**
   * Registers a service; called by the Service constructor.
   * @internal
   */
  public _addService(service: Service): void {
    if (this.prepared) throw errors.declaredAfterSynthesis(service.node.path, this.name);
    const existing = this.svcByName.get(service.name);
    if (existing) throw errors.duplicateService(service.node.path, service.name, existing.node.path);
    this.svcIndex.set(service, this.svcs.length);
    this.svcs.push(service);
    this.svcByName.set(service.name, service);
  }

  /** A datacenter by name. */
  public datacenter(name: string): Datacenter | undefined {
    return this.dcs.find((dc) => dc.name === name);
  }

  /**
   * Registers a datacenter; called by the Datacenter constructor. `check` runs after the mesh's own checks,
   * before the datacenter is added.
   * @internal
   */
  public _addDatacenter(dc: Datacenter, check: () => void = () => {}): void {
    if (this.prepared) throw errors.declaredAfterSynthesis(dc.node.path, this.name);
    const existing = this.dcs.find((d) => d.name === dc.name);
    if (existing) throw errors.duplicateDatacenter(dc.node.path, dc.name, existing.node.path);
    if (dc.isPrimary) {
      const other = this.dcs.find((d) => d.isPrimary);
      if (other) throw errors.multiplePrimaries(this.node.path, [other.name, dc.name]);
    }
    check();
    this.dcs.push(dc);
  }

  /**
   * Records that a datacenter and its stacks exist (the datacenter calls it at the end of its constructor):
   * its control-plane stack records the applied mesh and deploys after the primary's, and every datacenter's
   * stacks are brought up to date.
   * @internal
   */
  public _declared(dc: Datacenter): void {
    this.declaredDcs.push(dc);
    this.recordApplied(dc);
    const primary = this._declaredPrimary;
    if (primary === dc) {
      for (const other of this.declaredDcs)
        if (other !== dc) other.controlPlaneStack.addDependency(dc.controlPlaneStack);
    } else if (primary) {
      dc.controlPlaneStack.addDependency(primary.controlPlaneStack);
    }
    this._changed(dc);
  }

  /**
   * Brings the stacks of every datacenter up to date after a declaration (a service, a relation, a peering);
   * refuses one made after the mesh was synthesized.
   * @internal
   */
  public _changed(origin: IConstruct): void {
    if (this.prepared) throw errors.declaredAfterSynthesis(origin.node.path, this.name);
    const service = this.svcIndex.has(origin as Service) ? (origin as Service) : undefined;
    withShortTokenStacks(() => {
      for (const dc of this.declaredDcs) dc._meshChanged(service);
    });
  }

  /**
   * Validates the whole topology before anything is written, and reports each datacenter's warnings on its
   * control-plane stack. Runs automatically when the first stack of the mesh is prepared for synthesis;
   * calling it again does nothing. From then on the mesh takes no more declarations. It creates nothing:
   * every resource exists since its declaration.
   */
  public prepare(): void {
    if (this.prepared) return;
    void this.primary; // exactly one datacenter is primary
    this.federation.validate();
    this.certificateAuthority.validate(
      this.node.path,
      this.dcs.map((dc) => dc.caView),
    );
    for (const dc of this.dcs) for (const w of caWarnings(this.certificateAuthority, dc.caView)) dc._warn(w);
    for (const dc of this.dcs) dc.validateInMesh();
    for (const service of this.svcs) service.validate();
    this.checkStackNames();
    for (const dc of this.dcs) dc._meshValidated();
    for (const dc of this.dcs) {
      // Annotations are collected per stack, so a datacenter's warnings are reported on its stack.
      for (const w of dc.warnings) Annotations.of(dc.controlPlaneStack).addWarning(`${w.message} (${dc.node.path})`);
    }
    this.prepared = true;
  }

  /**
   * The primary datacenter once it is declared (its stacks exist), else undefined.
   * @internal
   */
  public get _declaredPrimary(): Datacenter | undefined {
    return this.declaredDcs.find((dc) => dc.isPrimary);
  }

  /** True once the mesh is validated for synthesis: it takes no more declarations. */
  public get isPrepared(): boolean {
    return this.prepared;
  }

  /** Refuses a stack of the app (declared after the mesh's) with the name of one of the mesh's stacks. */
  private checkStackNames(): void {
    const stacks = this.node.root.node.findAll().filter((c) => TerraformStack.isStack(c));
    for (const dc of this.dcs) {
      for (const stack of dc.stacks) {
        if (stacks.some((s) => s !== stack && s.node.id === stack.node.id))
          throw errors.duplicateStackName(dc.node.path, stack.node.id);
      }
    }
  }

  /**
   * Writes the mesh manifest (`<outdir>/meshform/<mesh>.json`, what the `meshform` command reads) and the
   * body of Consul's CA configuration API for a later service mesh CA change.
   */
  private writeManifest(outdir: string): void {
    const dir = path.join(outdir, MESH_MANIFEST_DIR);
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, `${this.name}.json`), `${JSON.stringify(this.manifest(), null, 2)}\n`);
    // Consul applies a later service mesh CA change only through its API: the body, ready for set-config.
    const connect = path.join(dir, CONNECT_CA_DIR);
    fs.mkdirSync(connect, { recursive: true });
    const body = this.certificateAuthority.connectCaApiBody(this.primary.caView);
    fs.writeFileSync(path.join(connect, `${this.name}.json`), `${JSON.stringify(body, null, 2)}\n`);
  }

  /**
   * Makes the datacenter's control-plane stack record, as a Terraform output, the mesh as that datacenter
   * applies it: `meshform plan` reads it back from the state to compare the next change against.
   */
  private recordApplied(dc: Datacenter): void {
    const stack = dc.controlPlaneStack;
    const output = new TerraformOutput(stack, 'MeshformApplied', {
      description: 'The mesh as this stack applied it (meshform plan compares against it). No secret.',
      value: Lazy.stringValue({
        produce: () => {
          const manifest = this.manifest();
          // the record holds user text (descriptions, filters, paths): literal, never a template
          return escapeTerraformTemplate(
            JSON.stringify({
              format: APPLIED_RECORD_FORMAT,
              mesh: this.name,
              stack: stack.node.id,
              datacenter: dc.name,
              manifest: scopeManifest(manifest, dc.name),
              peers: appliedPeers(manifest),
            } satisfies AppliedRecord),
          );
        },
      }),
    });
    output.overrideLogicalId(APPLIED_OUTPUT);
  }

  /** Names of every stack of the mesh in a safe deploy order: the primary's first, then each secondary's. */
  public get deployOrder(): string[] {
    const primary = this.primary;
    const ordered = [primary, ...this.dcs.filter((dc) => dc !== primary)];
    return ordered.flatMap((dc) => dc.stacks.map((s) => s.node.id));
  }

  /**
   * The mesh as data: what the CLI summarizes and later plans compare. Holds no secret.
   * @internal
   */
  public manifest(): MeshManifest {
    // once prepared the mesh takes no more declarations: every stack's record shares one manifest
    if (this.prepared) return (this.preparedManifest ??= this.buildManifest());
    return this.buildManifest();
  }

  private buildManifest(): MeshManifest {
    const store = this.secretStore.location;
    return {
      format: MESH_MANIFEST_FORMAT,
      mesh: this.name,
      consulVersion: this.consulVersion,
      chartVersion: this.chartVersion,
      domain: this.domain,
      primary: this.primary.name,
      secretVariables: secretInputs(
        this.name,
        this.dcs.map((dc) => ({ name: dc.name, clientApi: dc.serverCertificateRequest().clientApi })),
      ).map((input) => input.variable),
      ca: {
        plan: this.certificateAuthority.plan,
        description: this.certificateAuthority.describe(),
        requests: this.dcs.map((dc) => dc.serverCertificateRequest()),
        meshCa: this.certificateAuthority.meshCaSummary(this.primary.caView),
      },
      deployOrder: this.deployOrder,
      datacenters: this.dcs.map((dc) => dc.describe()),
      federation: this.federation.links,
      services: this.svcs.map((s) => s.describe()),
      traffic: this.traffic,
      warnings: this.dcs.flatMap((dc) =>
        dc.warnings.map((w) => ({ id: w.id, path: dc.node.path, message: w.message })),
      ),
      ...(store.kind === 'local' ? {} : { secretStore: store }),
    };
  }
}
