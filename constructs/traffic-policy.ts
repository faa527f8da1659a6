/**
 * Traffic policy of a service: subsets (versions), weighted splits, routes, retries, timeouts and circuit
 * breaking. Declared on the Service (`api.splitTraffic(...)`, `api.addRoute(...)`); rendered as Consul's
 * service-resolver, service-splitter, service-router and service-defaults config entries.
 */
import type { Datacenter } from './datacenter';
import type { HttpMatch } from './intention';

/** A subset of a service's instances (e.g. a version), selected by a Consul filter expression. */
export interface ServiceSubset {
  /** Subset name (e.g. "v2"). */
  readonly name: string;
  /** Consul filter over the instances, e.g. `Service.Meta.version == v2`. */
  readonly filter: string;
  /**
   * Only instances whose health checks pass (not warning).
   * @default false
   */
  readonly onlyPassing?: boolean;
}

/** One leg of a weighted traffic split. */
export interface TrafficSplit {
  /** Share of requests, in percent (all legs sum to 100). */
  readonly weight: number;
  /**
   * Subset of the service that receives this share.
   * @default - the service's default subset
   */
  readonly subset?: string;
}

/** Retries of a request (HTTP-family services). */
export interface RetryPolicy {
  /** How many times a failed request is retried. */
  readonly attempts: number;
  /**
   * Retry when the connection fails.
   * @default true
   */
  readonly onConnectFailure?: boolean;
  /**
   * Retry on these response status codes.
   * @default - none (e.g. [503] to retry unavailable answers)
   */
  readonly onStatusCodes?: readonly number[];
}

/** Where a route sends the requests it matches. */
export interface RouteDestination {
  /**
   * Subset of the service.
   * @default - the service's default subset
   */
  readonly subset?: string;
  /**
   * Time a request may take end to end, milliseconds.
   * @default - the service's request timeout
   */
  readonly requestTimeoutMs?: number;
  /**
   * Retries of the matched requests.
   * @default - the service's retries
   */
  readonly retries?: RetryPolicy;
  /**
   * Rewrite the matched path prefix to this.
   * @default - the path is kept
   */
  readonly prefixRewrite?: string;
}

/** A route: requests that match go to a destination (first match wins). */
export interface Route {
  /** The requests it matches. */
  readonly match: HttpMatch;
  /** Where they go. */
  readonly destination: RouteDestination;
}

/** Outlier detection: instances that keep failing are ejected for a while. */
export interface OutlierDetection {
  /** Consecutive 5xx answers (or connection failures) that eject an instance. */
  readonly consecutive5xx: number;
  /**
   * How often instances are evaluated, seconds.
   * @default 10
   */
  readonly intervalSeconds?: number;
  /**
   * How long an ejected instance stays out (multiplied by its number of ejections), seconds.
   * @default 30
   */
  readonly baseEjectionSeconds?: number;
  /**
   * The largest share of instances that may be ejected at once, percent.
   * @default 10
   */
  readonly maxEjectionPercent?: number;
}

/** Circuit breaking of the calls to a service, applied by every service that calls it. */
export interface CircuitBreaker {
  /**
   * Connections a caller's proxy keeps to the service at most.
   * @default - Envoy's default (1024)
   */
  readonly maxConnections?: number;
  /**
   * Requests waiting for a connection at most (HTTP/1.1).
   * @default - Envoy's default (1024)
   */
  readonly maxPendingRequests?: number;
  /**
   * Requests in flight at most (HTTP/2, gRPC).
   * @default - Envoy's default (1024)
   */
  readonly maxConcurrentRequests?: number;
  /**
   * Eject instances that keep failing.
   * @default - no outlier detection
   */
  readonly outlierDetection?: OutlierDetection;
}

/** Options of an upstream (a service this one calls). */
export interface UpstreamOptions {
  /**
   * Pin the calls to this datacenter (one the upstream runs in).
   * @default - the caller's own datacenter, then the upstream's failover order
   */
  readonly datacenter?: Datacenter;
  /**
   * Local port the caller's sidecar listens on for this upstream (VM hosts; Kubernetes pods use transparent
   * proxy or their own annotation).
   * @default - 10000 + the upstream's position among the caller's upstreams
   */
  readonly localBindPort?: number;
}

/** How sidecars reach services in other datacenters. */
export enum MeshGatewayMode {
  /** Through the local datacenter's mesh gateway, then the remote one (works across networks). */
  LOCAL = 'local',
  /** Straight to the remote datacenter's mesh gateway. */
  REMOTE = 'remote',
  /** Straight to the remote instances: only when every datacenter shares one flat network. */
  NONE = 'none',
}

/** Mesh-wide traffic settings (Consul's proxy-defaults and mesh config entries). */
export interface MeshTrafficSettings {
  /**
   * How sidecars reach other datacenters.
   * @default MeshGatewayMode.LOCAL
   */
  readonly meshGatewayMode?: MeshGatewayMode;
  /**
   * Sidecars in transparent proxy mode may only reach services of the mesh (no direct egress).
   * @default true
   */
  readonly meshDestinationsOnly?: boolean;
  /**
   * Address every sidecar serves Prometheus metrics on (`envoy_prometheus_bind_addr`).
   * @default "0.0.0.0:20200"
   */
  readonly prometheusBindAddress?: string;
}
