import { Construct } from 'constructs';
import type { Datacenter } from './datacenter';
import { errors } from './errors';
import { AllowOptions, HttpPermission, IntentionAction, IntentionDescription } from './intention';
import { Mesh } from './mesh';
import { isDatacenterName, isPort } from './private/validation';
import type {
  CircuitBreaker,
  RetryPolicy,
  Route,
  ServiceSubset,
  TrafficSplit,
  UpstreamOptions,
} from './traffic-policy';

/** The protocol a service speaks; L7 features (routes, splits, L7 intentions) need an HTTP-family protocol. */
export enum ServiceProtocol {
  TCP = 'tcp',
  HTTP = 'http',
  HTTP2 = 'http2',
  GRPC = 'grpc',
}

/** Props of a Service. */
export interface ServiceProps {
  /**
   * Consul service name (an RFC 1123 label).
   * @default - the construct id
   */
  readonly name?: string;
  /** Port the service listens on, on each of its hosts or pods. */
  readonly port: number;
  /**
   * Protocol the service speaks.
   * @default ServiceProtocol.TCP
   */
  readonly protocol?: ServiceProtocol;
  /**
   * Datacenters the service runs in (more with `runsIn`).
   * @default - none yet
   */
  readonly datacenters?: readonly Datacenter[];
  /**
   * Services this one calls (more, with options, with `addUpstream`).
   * @default - none
   */
  readonly upstreams?: readonly Service[];
  /**
   * Subsets of its instances (versions), for splits and routes (more with `addSubset`).
   * @default - none
   */
  readonly subsets?: readonly ServiceSubset[];
  /**
   * Subset that gets the traffic no split or route sends elsewhere.
   * @default - all instances
   */
  readonly defaultSubset?: string;
  /**
   * Datacenters its traffic fails over to, in order, when no instance is healthy where it was sent.
   * @default - no failover
   */
  readonly failover?: readonly Datacenter[];
  /**
   * Time to establish a connection to an instance, milliseconds.
   * @default 5000
   */
  readonly connectTimeoutMs?: number;
  /**
   * Time a request may take end to end, milliseconds (HTTP-family services).
   * @default - Envoy's default (15 s)
   */
  readonly requestTimeoutMs?: number;
  /**
   * Retries of failed requests (HTTP-family services).
   * @default - no retries
   */
  readonly retries?: RetryPolicy;
  /**
   * Circuit breaking of the calls to this service, applied by every caller's proxy.
   * @default - Envoy's defaults, no outlier detection
   */
  readonly circuitBreaker?: CircuitBreaker;
}

/** An upstream as data. */
export interface UpstreamDescription {
  readonly service: string;
  readonly datacenter?: string;
  readonly localBindPort: number;
}

/** A service as data (mesh manifest, config entries, plans and checks). */
export interface ServiceDescription {
  readonly name: string;
  readonly port: number;
  readonly protocol: ServiceProtocol;
  /** Datacenters it runs in. */
  readonly datacenters: readonly string[];
  /** Services it calls. */
  readonly upstreams?: readonly UpstreamDescription[];
  /** Who may call it (everything else is denied). */
  readonly intentions?: readonly IntentionDescription[];
  readonly subsets?: readonly ServiceSubset[];
  readonly defaultSubset?: string;
  readonly splits?: readonly TrafficSplit[];
  readonly routes?: readonly Route[];
  /** Datacenters its traffic fails over to, in order, when none of its instances is healthy. */
  readonly failover?: readonly string[];
  readonly connectTimeoutMs?: number;
  readonly requestTimeoutMs?: number;
  readonly retries?: RetryPolicy;
  readonly circuitBreaker?: CircuitBreaker;
}

interface Upstream {
  readonly service: Service;
  readonly options: UpstreamOptions;
}

interface Intention {
  readonly source: Service;
  readonly action: IntentionAction;
  readonly permissions?: readonly HttpPermission[];
  readonly description?: string;
}

const L7 = new Set([ServiceProtocol.HTTP, ServiceProtocol.HTTP2, ServiceProtocol.GRPC]);

/**
 * A service of the mesh, with an Envoy sidecar wherever it runs. On VM datacenters meshform registers it and
 * runs its sidecar on the hosts that carry it; on Kubernetes the connect injector does (annotate the pods).
 *
 * Relations are verbs on the service that is called: `db.allowFrom(api)` lets api call db (everything else
 * is denied), `api.addUpstream(db)` declares that api calls db, `api.splitTraffic(...)` splits api's traffic.
 */
export class Service extends Construct {
  /** Consul service name. */
  public readonly name: string;
  /** Listening port. */
  public readonly port: number;
  /** Protocol. */
  public readonly protocol: ServiceProtocol;
  /** The mesh. */
  public readonly mesh: Mesh;
  private readonly dcs: Datacenter[] = [];
  private readonly upstreamList: Upstream[] = [];
  private readonly intentionList: Intention[] = [];
  private readonly subsetList: ServiceSubset[] = [];
  private readonly routeList: Route[] = [];
  private readonly failoverList: Datacenter[] = [];
  private splitList: TrafficSplit[] = [];
  private readonly props: ServiceProps;

  constructor(scope: Mesh, id: string, props: ServiceProps) {
    super(scope, id);
    this.mesh = Mesh.of(this);
    const path = this.node.path;
    this.name = props.name ?? id;
    if (!isDatacenterName(this.name)) throw errors.invalidServiceName(path, this.name);
    if (props.port === undefined || props.port === null || !isPort(props.port))
      throw errors.invalidServicePort(path, this.name, props.port);
    this.port = props.port;
    this.protocol = props.protocol ?? ServiceProtocol.TCP;
    this.props = props;
    this.mesh._addService(this);
    for (const dc of props.datacenters ?? []) this.runsIn(dc);
    for (const upstream of props.upstreams ?? []) this.addUpstream(upstream);
    for (const subset of props.subsets ?? []) this.addSubset(subset);
    if (props.failover) this.failoverTo(...props.failover);
    this.changed();
  }

  /** Brings the mesh's stacks up to date with this service (its hosts, its config entries). */
  private changed(): this {
    this.mesh._changed(this);
    return this;
  }

  /** Declares that the service runs in `datacenter`. */
  public runsIn(datacenter: Datacenter): this {
    if (!this.dcs.includes(datacenter)) {
      this.dcs.push(datacenter);
      this.mesh._placed(this, datacenter);
    }
    return this.changed();
  }

  /** Declares that this service calls `upstream`. */
  public addUpstream(upstream: Service, options: UpstreamOptions = {}): this {
    this.upstreamList.push({ service: upstream, options });
    return this.changed();
  }

  /** Lets `source` call this service: all its requests, or those `options.permissions` allow. */
  public allowFrom(source: Service, options: AllowOptions = {}): this {
    this.intentionList.push({
      source,
      action: IntentionAction.ALLOW,
      ...(options.permissions ? { permissions: options.permissions } : {}),
      ...(options.description ? { description: options.description } : {}),
    });
    return this.changed();
  }

  /** Denies `source` (explicitly, e.g. to document a boundary; no intention denies too). */
  public denyFrom(source: Service, options: { readonly description?: string } = {}): this {
    this.intentionList.push({
      source,
      action: IntentionAction.DENY,
      ...(options.description ? { description: options.description } : {}),
    });
    return this.changed();
  }

  /** Adds a subset of its instances (a version), for splits and routes. */
  public addSubset(subset: ServiceSubset): this {
    if (this.subsetList.some((s) => s.name === subset.name))
      throw errors.duplicateSubset(this.node.path, this.name, subset.name);
    this.subsetList.push(subset);
    return this.changed();
  }

  /** Splits the service's traffic by weight across subsets (a canary: 90 to v1, 10 to v2). */
  public splitTraffic(splits: readonly TrafficSplit[]): this {
    this.splitList = [...splits];
    return this.changed();
  }

  /** Adds a route: requests that match go to a subset, with their own retries and timeout. */
  public addRoute(route: Route): this {
    this.routeList.push(route);
    return this.changed();
  }

  /** Fails over to these datacenters, in order, when no instance is healthy where the traffic was sent. */
  public failoverTo(...datacenters: Datacenter[]): this {
    for (const dc of datacenters) if (!this.failoverList.includes(dc)) this.failoverList.push(dc);
    return this.changed();
  }

  /** The datacenters the service runs in, in declaration order (read-only: `runsIn` adds one). */
  public get datacenters(): readonly Datacenter[] {
    return this.dcs;
  }

  /** The services it calls. */
  public get upstreams(): readonly Service[] {
    return this.upstreamList.map((u) => u.service);
  }

  /**
   * Circuit breaking of the calls to this service (its callers' config entries carry it).
   * @internal
   */
  public get _circuitBreaker(): CircuitBreaker | undefined {
    return this.props.circuitBreaker;
  }

  /** True for HTTP, HTTP/2 and gRPC: L7 features are available. */
  public get isL7(): boolean {
    return L7.has(this.protocol);
  }

  /** Checks the service against the whole mesh; called by Mesh.prepare. Throws a MeshformError naming the path. */
  public validate(): void {
    const path = this.node.path;
    const p = this.props;
    if (!this.isL7) {
      const l7: [string, boolean][] = [
        ['routes', this.routeList.length > 0],
        ['traffic splits', this.splitList.length > 0],
        ['retries', p.retries !== undefined],
        ['a request timeout', p.requestTimeoutMs !== undefined],
      ];
      for (const [feature, used] of l7) if (used) throw errors.l7OnTcp(path, this.name, this.protocol, feature);
      for (const i of this.intentionList) {
        if (i.permissions?.length)
          throw errors.l7OnTcp(path, this.name, this.protocol, `L7 permissions (from ${i.source.name})`);
      }
    }
    const subsetNames = this.subsetList.map((s) => s.name);
    const referenced = [
      ...(p.defaultSubset ? [p.defaultSubset] : []),
      ...this.splitList.flatMap((s) => (s.subset ? [s.subset] : [])),
      ...this.routeList.flatMap((r) => (r.destination.subset ? [r.destination.subset] : [])),
    ];
    for (const subset of referenced)
      if (!subsetNames.includes(subset)) throw errors.unknownSubset(path, this.name, subset, subsetNames);
    if (this.splitList.length > 0) {
      for (const s of this.splitList)
        if (!(s.weight > 0 && s.weight <= 100)) throw errors.invalidSplitWeight(path, this.name, s.weight);
      const total = this.splitList.reduce((sum, s) => sum + s.weight, 0);
      if (Math.abs(total - 100) > 0.001) throw errors.splitWeightsSum(path, this.name, total);
    }
    for (const dc of this.failoverList) {
      if (dc.mesh !== this.mesh)
        throw errors.unknownDatacenterReference(
          path,
          dc.name,
          this.mesh.datacenters.map((d) => d.name),
        );
      if (!this.dcs.includes(dc))
        throw errors.failoverWhereNotRunning(
          path,
          this.name,
          dc.name,
          this.dcs.map((d) => d.name),
        );
    }
    const ports = new Map<number, string>();
    this.upstreamList.forEach((u, i) => {
      if (u.service.mesh !== this.mesh) throw errors.unknownUpstream(path, this.name, u.service.name);
      if (u.service === this) throw errors.upstreamToItself(path, this.name);
      const port = u.options.localBindPort ?? 10000 + i;
      if (!isPort(port)) throw errors.invalidPort(path, `local bind port of upstream ${u.service.name}`, port);
      const other = ports.get(port);
      if (other) throw errors.localBindPortTaken(path, this.name, port, other, u.service.name);
      ports.set(port, u.service.name);
      const pinned = u.options.datacenter;
      if (pinned !== undefined && !u.service.datacenters.includes(pinned)) {
        throw errors.failoverWhereNotRunning(
          path,
          u.service.name,
          pinned.name,
          u.service.datacenters.map((d) => d.name),
        );
      }
    });
    const bySource = new Map<string, Set<IntentionAction>>();
    for (const i of this.intentionList) {
      if (i.source.mesh !== this.mesh) throw errors.unknownUpstream(path, this.name, i.source.name);
      const actions = bySource.get(i.source.name) ?? new Set();
      if (actions.size > 0) throw errors.intentionConflict(path, i.source.name, this.name, [...actions, i.action]);
      actions.add(i.action);
      bySource.set(i.source.name, actions);
    }
    const positive: [string, number | undefined][] = [
      ['connectTimeoutMs', p.connectTimeoutMs],
      ['requestTimeoutMs', p.requestTimeoutMs],
      ['retries.attempts', p.retries?.attempts],
      ['circuitBreaker.maxConnections', p.circuitBreaker?.maxConnections],
      ['circuitBreaker.maxPendingRequests', p.circuitBreaker?.maxPendingRequests],
      ['circuitBreaker.maxConcurrentRequests', p.circuitBreaker?.maxConcurrentRequests],
      ['circuitBreaker.outlierDetection.consecutive5xx', p.circuitBreaker?.outlierDetection?.consecutive5xx],
    ];
    for (const [what, value] of positive) {
      if (value !== undefined && (!Number.isInteger(value) || value < 1))
        throw errors.invalidCount(path, what, value, 1);
    }
    const percent = p.circuitBreaker?.outlierDetection?.maxEjectionPercent;
    if (percent !== undefined && !(Number.isInteger(percent) && percent >= 0 && percent <= 100)) {
      throw errors.invalidPercent(path, 'circuitBreaker.outlierDetection.maxEjectionPercent', percent);
    }
  }

  /** The service as data. */
  public describe(): ServiceDescription {
    const p = this.props;
    return {
      name: this.name,
      port: this.port,
      protocol: this.protocol,
      datacenters: this.dcs.map((dc) => dc.name),
      ...(this.upstreamList.length
        ? {
            upstreams: this.upstreamList.map((u, i) => ({
              service: u.service.name,
              ...(u.options.datacenter ? { datacenter: u.options.datacenter.name } : {}),
              localBindPort: u.options.localBindPort ?? 10000 + i,
            })),
          }
        : {}),
      ...(this.intentionList.length
        ? {
            intentions: this.intentionList.map((i) => ({
              source: i.source.name,
              action: i.action,
              ...(i.permissions
                ? { permissions: i.permissions.map((perm) => ({ action: perm.action, match: perm.match })) }
                : {}),
              ...(i.description ? { description: i.description } : {}),
            })),
          }
        : {}),
      ...(this.subsetList.length ? { subsets: [...this.subsetList] } : {}),
      ...(p.defaultSubset ? { defaultSubset: p.defaultSubset } : {}),
      ...(this.splitList.length ? { splits: [...this.splitList] } : {}),
      ...(this.routeList.length ? { routes: [...this.routeList] } : {}),
      ...(this.failoverList.length ? { failover: this.failoverList.map((dc) => dc.name) } : {}),
      ...(p.connectTimeoutMs !== undefined ? { connectTimeoutMs: p.connectTimeoutMs } : {}),
      ...(p.requestTimeoutMs !== undefined ? { requestTimeoutMs: p.requestTimeoutMs } : {}),
      ...(p.retries ? { retries: p.retries } : {}),
      ...(p.circuitBreaker ? { circuitBreaker: p.circuitBreaker } : {}),
    };
  }
}
