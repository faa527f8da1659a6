import { Construct } from 'constructs';
import { Datacenter } from './datacenter';
import { errors } from './errors';
import { AllowOptions, HttpMatch, HttpPermission, IntentionAction, IntentionDescription } from './intention';
import { Mesh } from './mesh';
import { filterProblem } from './private/bexpr';
import { checkedId, checkedList, checkedProps, checkEnum } from './private/guards';
import { isDatacenterName, isNonEmptyString, isPort, isWholeNumber, re2Problem } from './private/validation';
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
const SERVICE_SYMBOL = Symbol.for('meshform.Service');

/** Largest timeout, milliseconds (2^31 - 1: Envoy's and Consul's durations hold it; about 24.8 days). */
const MAX_TIMEOUT_MS = 2_147_483_647;
/** Largest count of retries, connections, requests (Envoy's uint32 fields, kept within a signed 32-bit int). */
const MAX_COUNT = 2_147_483_647;
/** Methods Consul accepts in a route or permission match (hashicorp/consul agent/structs isValidHTTPMethod). */
const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE'];
/** Longest intention description Consul stores (metaValueMaxLength, config_entry_intentions.go). */
const MAX_DESCRIPTION_BYTES = 512;
/** An HTTP field name: an RFC 9110 token. */
const HEADER_NAME = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

/** A Service's scope: a construct inside a mesh, refused with a clear error otherwise. */
function serviceScope(scope: unknown, id: unknown): Construct {
  if (!(scope instanceof Construct) || !scope.node.scopes.some((s) => Mesh.isMesh(s))) {
    throw errors.invalidScope(
      scope instanceof Construct && scope.node.path ? `${scope.node.path}/${String(id)}` : String(id),
      'a Service',
      scope,
      'create it in its mesh: `new Service(mesh, "api", { port: 8080 })`',
    );
  }
  return scope;
}

/**
 * A service of the mesh, with an Envoy sidecar wherever it runs. On VM datacenters meshform registers it and
 * runs its sidecar on the hosts that carry it; on Kubernetes the connect injector does (annotate the pods).
 *
 * Relations are verbs on the service that is called: `db.allowFrom(api)` lets api call db (everything else
 * is denied), `api.addUpstream(db)` declares that api calls db, `api.splitTraffic(...)` splits api's traffic.
 */
export class Service extends Construct {
  /** True when `x` is a Service. */
  public static isService(x: unknown): x is Service {
    return typeof x === 'object' && x !== null && SERVICE_SYMBOL in x;
  }

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
    super(serviceScope(scope, id), checkedId(scope, id));
    Object.defineProperty(this, SERVICE_SYMBOL, { value: true });
    this.mesh = Mesh.of(this);
    const path = this.node.path;
    props = checkedProps(path, 'service props', props, 'pass the service props, e.g. `{ port: 8080 }`');
    this.name = props.name ?? id;
    if (!isDatacenterName(this.name)) throw errors.invalidServiceName(path, this.name);
    if (props.port === undefined || props.port === null || !isPort(props.port))
      throw errors.invalidServicePort(path, this.name, props.port);
    this.port = props.port;
    checkEnum(path, 'protocol', props.protocol, ServiceProtocol, 'ServiceProtocol.TCP, HTTP, HTTP2 or GRPC');
    this.protocol = props.protocol ?? ServiceProtocol.TCP;
    if (props.defaultSubset !== undefined && typeof props.defaultSubset !== 'string')
      throw errors.invalidValue(path, 'defaultSubset', props.defaultSubset, 'name one of the subsets');
    this.props = props;
    this.mesh._addService(this);
    for (const dc of checkedList(path, 'datacenters', props.datacenters, 'give a list of datacenters')) this.runsIn(dc);
    for (const upstream of checkedList(path, 'upstreams', props.upstreams, 'give a list of services'))
      this.addUpstream(upstream);
    for (const subset of checkedList(path, 'subsets', props.subsets, 'give a list of `{ name, filter }`'))
      this.addSubset(subset);
    this.failoverTo(...checkedList(path, 'failover', props.failover, 'give a list of datacenters'));
    this.changed();
  }

  /** Brings the mesh's stacks up to date with this service (its hosts, its config entries). */
  private changed(): this {
    this.mesh._changed(this);
    return this;
  }

  /** Refuses something that is not a datacenter of this service's mesh. */
  private checkDatacenter(what: string, datacenter: unknown): asserts datacenter is Datacenter {
    const known = this.mesh.datacenters.map((d) => d.name);
    if (!Datacenter.isDatacenter(datacenter)) throw errors.notADatacenter(this.node.path, what, datacenter, known);
    if (datacenter.mesh !== this.mesh)
      throw errors.datacenterOfOtherMesh(this.node.path, this.name, datacenter.name, datacenter.mesh.name, known);
  }

  /** Declares that the service runs in `datacenter`. */
  public runsIn(datacenter: Datacenter): this {
    this.checkDatacenter(`a datacenter "${this.name}" runs in`, datacenter);
    if (!this.dcs.includes(datacenter)) {
      this.dcs.push(datacenter);
      this.mesh._placed(this, datacenter);
    }
    return this.changed();
  }

  /** Declares that this service calls `upstream`. */
  public addUpstream(upstream: Service, options: UpstreamOptions = {}): this {
    if (!Service.isService(upstream))
      throw errors.notAService(this.node.path, `an upstream of "${this.name}"`, upstream);
    options = checkedProps(this.node.path, 'upstream options', options, 'pass `{ datacenter, localBindPort }`');
    if (options.datacenter !== undefined)
      this.checkDatacenter(`the datacenter of upstream "${upstream.name}"`, options.datacenter);
    this.upstreamList.push({ service: upstream, options });
    return this.changed();
  }

  /** Checks the source and options of an intention. */
  private intentionOptions(source: unknown, options: AllowOptions | undefined): AllowOptions {
    const path = this.node.path;
    if (!Service.isService(source))
      throw errors.notAService(path, `the source of an intention to "${this.name}"`, source);
    const checked = checkedProps(path, 'intention options', options, 'pass `{ permissions, description }`');
    for (const permission of checkedList(path, 'permissions', checked.permissions, 'give a list of HttpPermission')) {
      if (!(permission instanceof HttpPermission))
        throw errors.missingValue(
          path,
          `a permission of the intention from "${source.name}"`,
          permission,
          'use HttpPermission.allow({...}) or .deny({...})',
        );
    }
    const description = checked.description;
    if (description !== undefined) {
      if (typeof description !== 'string')
        throw errors.invalidValue(
          path,
          `description of the intention from "${source.name}"`,
          description,
          'give a string',
        );
      if (Buffer.byteLength(description, 'utf8') > MAX_DESCRIPTION_BYTES)
        throw errors.textTooLong(
          path,
          `description of the intention from "${source.name}"`,
          description,
          MAX_DESCRIPTION_BYTES,
        );
    }
    return checked;
  }

  /** Lets `source` call this service: all its requests, or those `options.permissions` allow. */
  public allowFrom(source: Service, options: AllowOptions = {}): this {
    options = this.intentionOptions(source, options);
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
    options = this.intentionOptions(source, { description: options?.description });
    this.intentionList.push({
      source,
      action: IntentionAction.DENY,
      ...(options.description ? { description: options.description } : {}),
    });
    return this.changed();
  }

  /** Adds a subset of its instances (a version), for splits and routes. */
  public addSubset(subset: ServiceSubset): this {
    const path = this.node.path;
    if (typeof subset !== 'object' || subset === null)
      throw errors.missingValue(
        path,
        `a subset of "${this.name}"`,
        subset,
        'give `{ name, filter }`, e.g. `{ name: "v2", filter: "Service.Meta.version == v2" }`',
      );
    if (!isDatacenterName(subset.name)) throw errors.invalidSubsetName(path, this.name, subset.name);
    if (typeof subset.filter !== 'string')
      throw errors.invalidFilter(path, this.name, subset.name, subset.filter, 'it is not a string');
    const problem = filterProblem(subset.filter);
    if (problem) throw errors.invalidFilter(path, this.name, subset.name, subset.filter, problem);
    if (subset.onlyPassing !== undefined && typeof subset.onlyPassing !== 'boolean')
      throw errors.invalidValue(
        path,
        `onlyPassing of subset "${subset.name}"`,
        subset.onlyPassing,
        'use true or false',
      );
    if (this.subsetList.some((s) => s.name === subset.name))
      throw errors.duplicateSubset(this.node.path, this.name, subset.name);
    this.subsetList.push(subset);
    return this.changed();
  }

  /** Splits the service's traffic by weight across subsets (a canary: 90 to v1, 10 to v2). */
  public splitTraffic(splits: readonly TrafficSplit[]): this {
    const path = this.node.path;
    if (!Array.isArray(splits) || splits.length === 0)
      throw errors.missingValue(
        path,
        `the traffic split of "${this.name}"`,
        splits,
        'give a list of `{ weight, subset }` legs',
      );
    for (const leg of splits) {
      if (typeof leg !== 'object' || leg === null)
        throw errors.missingValue(
          path,
          `a leg of the traffic split of "${this.name}"`,
          leg,
          'give `{ weight, subset }`',
        );
      if (leg.subset !== undefined && typeof leg.subset !== 'string')
        throw errors.invalidValue(path, 'subset of a traffic split leg', leg.subset, 'name one of the subsets');
    }
    this.splitList = [...splits];
    return this.changed();
  }

  /** Adds a route: requests that match go to a subset, with their own retries and timeout. */
  public addRoute(route: Route): this {
    const path = this.node.path;
    if (typeof route !== 'object' || route === null)
      throw errors.missingValue(
        path,
        `a route of "${this.name}"`,
        route,
        'give `{ match: {...}, destination: {...} }`',
      );
    checkedProps(
      path,
      `the match of route ${this.routeList.length + 1} of "${this.name}"`,
      route.match,
      'give an HttpMatch',
    );
    if (typeof route.destination !== 'object' || route.destination === null)
      throw errors.missingValue(
        path,
        `the destination of route ${this.routeList.length + 1} of "${this.name}"`,
        route.destination,
        'give `{ subset, requestTimeoutMs, retries, prefixRewrite }`',
      );
    if (route.destination.subset !== undefined && typeof route.destination.subset !== 'string')
      throw errors.invalidValue(
        path,
        'subset of a route destination',
        route.destination.subset,
        'name one of the subsets',
      );
    this.routeList.push(route);
    return this.changed();
  }

  /** Fails over to these datacenters, in order, when no instance is healthy where the traffic was sent. */
  public failoverTo(...datacenters: Datacenter[]): this {
    for (const dc of datacenters) {
      this.checkDatacenter(`a failover datacenter of "${this.name}"`, dc);
      if (!this.failoverList.includes(dc)) this.failoverList.push(dc);
    }
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
      // Consul keeps weights to 0.01 and wants them to add up to exactly 100 at that precision
      // (hashicorp/consul agent/structs/config_entry_discoverychain.go, ServiceSplitterConfigEntry.Validate)
      const scaled = (weight: number) => Math.round(weight * 100);
      for (const s of this.splitList) {
        if (typeof s.weight !== 'number' || !(s.weight > 0 && s.weight <= 100) || scaled(s.weight) < 1)
          throw errors.invalidSplitWeight(path, this.name, s.weight);
      }
      const legs = this.splitList.map((s) => s.subset ?? '');
      const repeated = legs.find((leg, i) => legs.indexOf(leg) !== i);
      if (repeated !== undefined) throw errors.duplicateSplitLeg(path, this.name, repeated || undefined);
      const total = this.splitList.reduce((sum, s) => sum + scaled(s.weight), 0);
      if (total !== 10000) throw errors.splitWeightsSum(path, this.name, total / 100);
    }
    for (const dc of this.failoverList) {
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
      (i.permissions ?? []).forEach((permission, n) =>
        checkHttpMatch(path, `permission ${n + 1} of the intention from "${i.source.name}"`, permission.match, true),
      );
    }
    const cb = checkedProps(
      path,
      'circuitBreaker',
      p.circuitBreaker,
      'pass `{ maxConnections, ..., outlierDetection }`',
    );
    const od = checkedProps(
      path,
      'circuitBreaker.outlierDetection',
      cb.outlierDetection,
      'pass `{ consecutive5xx, ... }`',
    );
    if (cb.outlierDetection !== undefined && od.consecutive5xx === undefined)
      throw errors.numberOutOfRange(
        path,
        'circuitBreaker.outlierDetection.consecutive5xx',
        od.consecutive5xx,
        1,
        MAX_COUNT,
      );
    const counts: [string, unknown, number][] = [
      ['connectTimeoutMs', p.connectTimeoutMs, MAX_TIMEOUT_MS],
      ['requestTimeoutMs', p.requestTimeoutMs, MAX_TIMEOUT_MS],
      ['circuitBreaker.maxConnections', cb.maxConnections, MAX_COUNT],
      ['circuitBreaker.maxPendingRequests', cb.maxPendingRequests, MAX_COUNT],
      ['circuitBreaker.maxConcurrentRequests', cb.maxConcurrentRequests, MAX_COUNT],
      ['circuitBreaker.outlierDetection.consecutive5xx', od.consecutive5xx, MAX_COUNT],
      ['circuitBreaker.outlierDetection.intervalSeconds', od.intervalSeconds, MAX_TIMEOUT_MS / 1000],
      ['circuitBreaker.outlierDetection.baseEjectionSeconds', od.baseEjectionSeconds, MAX_TIMEOUT_MS / 1000],
    ];
    for (const [what, value, max] of counts) {
      if (value !== undefined && !isWholeNumber(value, 1, Math.floor(max)))
        throw errors.numberOutOfRange(path, what, value, 1, Math.floor(max));
    }
    const percent = od.maxEjectionPercent;
    if (percent !== undefined && !isWholeNumber(percent, 0, 100)) {
      throw errors.invalidPercent(path, 'circuitBreaker.outlierDetection.maxEjectionPercent', percent);
    }
    if (p.retries !== undefined) checkRetries(path, 'retries', p.retries);
    this.routeList.forEach((route, n) => {
      const what = `route ${n + 1} of "${this.name}"`;
      checkHttpMatch(path, what, route.match, false);
      const d = route.destination;
      if (d.requestTimeoutMs !== undefined && !isWholeNumber(d.requestTimeoutMs, 1, MAX_TIMEOUT_MS))
        throw errors.numberOutOfRange(path, `requestTimeoutMs of ${what}`, d.requestTimeoutMs, 1, MAX_TIMEOUT_MS);
      if (d.retries !== undefined) checkRetries(path, `retries of ${what}`, d.retries);
      if (d.prefixRewrite !== undefined) {
        if (typeof d.prefixRewrite !== 'string')
          throw errors.invalidValue(path, `prefixRewrite of ${what}`, d.prefixRewrite, 'give a path, e.g. "/"');
        // Consul: "cannot make use of PrefixRewrite without configuring either PathExact or PathPrefix"
        if (!route.match.pathExact && !route.match.pathPrefix)
          throw errors.invalidHttpMatch(
            path,
            what,
            'rewrites the path prefix but matches no pathExact or pathPrefix',
            d.prefixRewrite,
            'match the requests with pathPrefix (or pathExact), or drop prefixRewrite',
          );
      }
    });
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

/** Refuses retries Consul or Envoy would: attempts out of range, status codes outside 100-599. */
function checkRetries(path: string, what: string, retries: RetryPolicy): void {
  if (typeof retries !== 'object' || retries === null)
    throw errors.missingValue(path, what, retries, 'give `{ attempts, onConnectFailure, onStatusCodes }`');
  if (!isWholeNumber(retries.attempts, 1, MAX_COUNT))
    throw errors.numberOutOfRange(path, `${what}.attempts`, retries.attempts, 1, MAX_COUNT);
  if (retries.onConnectFailure !== undefined && typeof retries.onConnectFailure !== 'boolean')
    throw errors.invalidValue(path, `${what}.onConnectFailure`, retries.onConnectFailure, 'use true or false');
  for (const code of checkedList(
    path,
    `${what}.onStatusCodes`,
    retries.onStatusCodes,
    'give a list of status codes, e.g. [503]',
  )) {
    if (!isWholeNumber(code, 100, 599)) throw errors.invalidStatusCode(path, `${what}.onStatusCodes`, code);
  }
}

/**
 * Refuses an HTTP match Consul would (hashicorp/consul agent/structs/config_entry_discoverychain.go,
 * ServiceRouterConfigEntry.Validate; config_entry_intentions.go for permissions, which also refuses an empty
 * one) or Envoy could not compile: two path kinds, a path not starting with "/", a regex RE2 refuses, an
 * unknown or repeated method, a header match without a name or without exactly one condition.
 */
function checkHttpMatch(path: string, what: string, match: HttpMatch, permission: boolean): void {
  if (typeof match !== 'object' || match === null)
    throw errors.missingValue(path, `the match of ${what}`, match, 'give an HttpMatch, e.g. `{ pathPrefix: "/api/" }`');
  const kinds = (['pathExact', 'pathPrefix', 'pathRegex'] as const).filter((k) => match[k] !== undefined);
  if (kinds.length > 1)
    throw errors.invalidHttpMatch(
      path,
      what,
      `sets ${kinds.join(' and ')}: a match takes at most one path kind`,
      Object.fromEntries(kinds.map((k) => [k, match[k]])),
      'keep one of pathExact, pathPrefix or pathRegex',
    );
  for (const kind of kinds) {
    const value = match[kind];
    if (typeof value !== 'string' || value === '')
      throw errors.invalidHttpMatch(
        path,
        what,
        `has an empty or non-text ${kind}`,
        value,
        `give ${kind} a path, e.g. "/api"`,
      );
    if (kind === 'pathRegex') {
      const problem = re2Problem(value);
      if (problem) throw errors.invalidRegex(path, `pathRegex of ${what}`, value, problem);
    } else if (!value.startsWith('/')) {
      throw errors.invalidHttpMatch(
        path,
        what,
        `has a ${kind} that does not start with "/"`,
        value,
        `start it with "/", e.g. "/${value}"`,
      );
    }
  }
  const methods = checkedList(path, `methods of ${what}`, match.methods, 'give a list of methods, e.g. ["GET"]');
  methods.forEach((method, i) => {
    if (typeof method !== 'string' || !HTTP_METHODS.includes(method))
      throw errors.invalidHttpMatch(
        path,
        what,
        'has an unknown HTTP method',
        method,
        `use ${HTTP_METHODS.join(', ')} (in upper case)`,
      );
    if (methods.indexOf(method) !== i)
      throw errors.invalidHttpMatch(path, what, 'lists an HTTP method twice', method, 'list each method once');
  });
  const headers = checkedList(path, `headers of ${what}`, match.headers, 'give a list of header matches');
  for (const header of headers) {
    if (typeof header !== 'object' || header === null)
      throw errors.missingValue(
        path,
        `a header match of ${what}`,
        header,
        'give `{ name, exact | prefix | suffix | regex | present }`',
      );
    if (!isNonEmptyString(header.name) || !HEADER_NAME.test(header.name))
      throw errors.invalidHttpMatch(
        path,
        what,
        'has a header match without a valid header name',
        header.name,
        'set `name` to the header, e.g. "x-canary"',
      );
    for (const key of ['exact', 'prefix', 'suffix', 'regex'] as const) {
      if (header[key] !== undefined && typeof header[key] !== 'string')
        throw errors.invalidValue(path, `${key} of header "${header.name}" of ${what}`, header[key], 'give a string');
    }
    for (const key of ['present', 'invert'] as const) {
      if (header[key] !== undefined && typeof header[key] !== 'boolean')
        throw errors.invalidValue(
          path,
          `${key} of header "${header.name}" of ${what}`,
          header[key],
          'use true or false',
        );
    }
    const conditions =
      [header.exact, header.prefix, header.suffix, header.regex].filter((v) => v !== undefined && v !== '').length +
      (header.present ? 1 : 0);
    if (conditions !== 1)
      throw errors.invalidHttpMatch(
        path,
        what,
        `has a match of header "${header.name}" with ${conditions === 0 ? 'no condition' : `${conditions} conditions`}`,
        header,
        'set exactly one of exact, prefix, suffix, regex (not empty) or present: true',
      );
    if (header.regex) {
      const problem = re2Problem(header.regex);
      if (problem)
        throw errors.invalidRegex(path, `regex of header "${header.name}" of ${what}`, header.regex, problem);
    }
  }
  if (permission && kinds.length === 0 && methods.length === 0 && headers.length === 0)
    throw errors.invalidHttpMatch(
      path,
      what,
      'matches no path, method or header (Consul refuses an empty HTTP permission)',
      match,
      'add pathPrefix, methods or headers, or use allowFrom without permissions to allow every request',
    );
}
