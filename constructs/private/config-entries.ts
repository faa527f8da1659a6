/**
 * The mesh's Consul config entries, rendered once from the declared services and mesh settings: as consul-k8s
 * CRDs (camelCase specs) on a Kubernetes primary, or as Consul API bodies (PascalCase) on a VM primary.
 * Config entries are written in the primary datacenter and replicate to every secondary.
 */
import type { ResolvedMeshTraffic } from '../mesh';
import type { HttpMatch, IntentionDescription } from '../intention';
import type { ServiceDescription } from '../service';
import type { CircuitBreaker, RetryPolicy } from '../traffic-policy';

/** The CRD kinds meshform renders. */
export type ConfigEntryKind =
  | 'ProxyDefaults'
  | 'Mesh'
  | 'ServiceDefaults'
  | 'ServiceResolver'
  | 'ServiceSplitter'
  | 'ServiceRouter'
  | 'ServiceIntentions';

/** One config entry: its CRD kind, name, and spec as the CRD spells it. */
export interface ConfigEntry {
  readonly kind: ConfigEntryKind;
  readonly name: string;
  readonly spec: { readonly [key: string]: unknown };
}

/** The order Consul needs: defaults before the L7 entries that depend on the protocol. */
export const ENTRY_ORDER: readonly ConfigEntryKind[] = [
  'ProxyDefaults',
  'Mesh',
  'ServiceDefaults',
  'ServiceResolver',
  'ServiceSplitter',
  'ServiceRouter',
  'ServiceIntentions',
];

/** The kinds of a service's own entries (every kind but the mesh-wide ones). */
export const SERVICE_ENTRY_KINDS: readonly ConfigEntryKind[] = ENTRY_ORDER.filter(
  (kind) => kind !== 'ProxyDefaults' && kind !== 'Mesh',
);

/** Consul's API name of each kind. */
export const API_KIND: { readonly [K in ConfigEntryKind]: string } = {
  ProxyDefaults: 'proxy-defaults',
  Mesh: 'mesh',
  ServiceDefaults: 'service-defaults',
  ServiceResolver: 'service-resolver',
  ServiceSplitter: 'service-splitter',
  ServiceRouter: 'service-router',
  ServiceIntentions: 'service-intentions',
};

const ms = (value: number): string => (value % 1000 === 0 ? `${value / 1000}s` : `${value}ms`);

function httpMatch(match: HttpMatch): { [key: string]: unknown } {
  return {
    ...(match.pathExact !== undefined ? { pathExact: match.pathExact } : {}),
    ...(match.pathPrefix !== undefined ? { pathPrefix: match.pathPrefix } : {}),
    ...(match.pathRegex !== undefined ? { pathRegex: match.pathRegex } : {}),
    ...(match.methods?.length ? { methods: [...match.methods] } : {}),
    ...(match.headers?.length ? { header: match.headers.map((h) => ({ ...h })) } : {}),
  };
}

function retries(policy: RetryPolicy): { [key: string]: unknown } {
  return {
    numRetries: policy.attempts,
    retryOnConnectFailure: policy.onConnectFailure ?? true,
    ...(policy.onStatusCodes?.length ? { retryOnStatusCodes: [...policy.onStatusCodes] } : {}),
  };
}

function intentionSources(intentions: readonly IntentionDescription[]): { [key: string]: unknown }[] {
  return intentions.map((i) => ({
    name: i.source,
    // Consul takes either an action (L4) or permissions (L7), never both.
    ...(i.permissions?.length
      ? { permissions: i.permissions.map((p) => ({ action: p.action, http: httpMatch(p.match) })) }
      : { action: i.action }),
    ...(i.description ? { description: i.description } : {}),
  }));
}

/** Every config entry of a mesh, in the order Consul needs them applied. */
export function meshConfigEntries(
  services: readonly ServiceDescription[],
  traffic: ResolvedMeshTraffic,
): ConfigEntry[] {
  const entries: ConfigEntry[] = [
    {
      kind: 'ProxyDefaults',
      name: 'global',
      spec: {
        config: { envoy_prometheus_bind_addr: traffic.prometheusBindAddress },
        meshGateway: { mode: traffic.meshGatewayMode },
      },
    },
    { kind: 'Mesh', name: 'mesh', spec: { transparentProxy: { meshDestinationsOnly: traffic.meshDestinationsOnly } } },
  ];
  const byName = new Map(services.map((s) => [s.name, s]));
  for (const s of services) entries.push(...serviceConfigEntries(s, (name) => byName.get(name)?.circuitBreaker));
  return [...entries].sort((a, b) => ENTRY_ORDER.indexOf(a.kind) - ENTRY_ORDER.indexOf(b.kind));
}

/**
 * The config entries of one service, in the order Consul needs them applied (that of ENTRY_ORDER). They depend
 * on the service and on the circuit breaker of each service it calls (`circuitBreakerOf`), nothing else.
 */
export function serviceConfigEntries(
  s: ServiceDescription,
  circuitBreakerOf: (service: string) => CircuitBreaker | undefined,
): ConfigEntry[] {
  const entries: ConfigEntry[] = [];
  // circuit breaking of the calls to each upstream lives in the caller's service-defaults
  const overrides = (s.upstreams ?? []).flatMap((u) => {
    const cb = circuitBreakerOf(u.service);
    if (!cb) return [];
    const od = cb.outlierDetection;
    return [
      {
        name: u.service,
        ...(cb.maxConnections || cb.maxPendingRequests || cb.maxConcurrentRequests
          ? {
              limits: {
                ...(cb.maxConnections ? { maxConnections: cb.maxConnections } : {}),
                ...(cb.maxPendingRequests ? { maxPendingRequests: cb.maxPendingRequests } : {}),
                ...(cb.maxConcurrentRequests ? { maxConcurrentRequests: cb.maxConcurrentRequests } : {}),
              },
            }
          : {}),
        ...(od
          ? {
              passiveHealthCheck: {
                interval: `${od.intervalSeconds ?? 10}s`,
                maxFailures: od.consecutive5xx,
                enforcingConsecutive5xx: 100,
                baseEjectionTime: `${od.baseEjectionSeconds ?? 30}s`,
                maxEjectionPercent: od.maxEjectionPercent ?? 10,
              },
            }
          : {}),
      },
    ];
  });
  entries.push({
    kind: 'ServiceDefaults',
    name: s.name,
    spec: { protocol: s.protocol, ...(overrides.length ? { upstreamConfig: { overrides } } : {}) },
  });

  const resolver = {
    ...(s.connectTimeoutMs !== undefined ? { connectTimeout: ms(s.connectTimeoutMs) } : {}),
    ...(s.requestTimeoutMs !== undefined ? { requestTimeout: ms(s.requestTimeoutMs) } : {}),
    ...(s.defaultSubset ? { defaultSubset: s.defaultSubset } : {}),
    ...(s.subsets?.length
      ? {
          subsets: Object.fromEntries(
            s.subsets.map((sub) => [
              sub.name,
              { filter: sub.filter, ...(sub.onlyPassing ? { onlyPassing: true } : {}) },
            ]),
          ),
        }
      : {}),
    ...(s.failover?.length ? { failover: { '*': { datacenters: [...s.failover] } } } : {}),
  };
  if (Object.keys(resolver).length > 0) entries.push({ kind: 'ServiceResolver', name: s.name, spec: resolver });

  if (s.splits?.length) {
    entries.push({
      kind: 'ServiceSplitter',
      name: s.name,
      spec: {
        splits: s.splits.map((sp) => ({ weight: sp.weight, ...(sp.subset ? { serviceSubset: sp.subset } : {}) })),
      },
    });
  }

  const routes = (s.routes ?? []).map((r) => ({
    match: { http: httpMatch(r.match) },
    destination: {
      ...(r.destination.subset ? { serviceSubset: r.destination.subset } : {}),
      ...(r.destination.prefixRewrite !== undefined ? { prefixRewrite: r.destination.prefixRewrite } : {}),
      ...(r.destination.requestTimeoutMs !== undefined ? { requestTimeout: ms(r.destination.requestTimeoutMs) } : {}),
      ...((r.destination.retries ?? s.retries) ? retries((r.destination.retries ?? s.retries)!) : {}),
    },
  }));
  // retries apply to every request: the requests no route matches get a catch-all route carrying them
  if (s.retries) routes.push({ match: { http: { pathPrefix: '/' } }, destination: retries(s.retries) });
  if (routes.length) entries.push({ kind: 'ServiceRouter', name: s.name, spec: { routes } });

  if (s.intentions?.length) {
    entries.push({
      kind: 'ServiceIntentions',
      name: s.name,
      spec: { destination: { name: s.name }, sources: intentionSources(s.intentions) },
    });
  }
  return entries;
}

/** A config entry as a consul-k8s custom resource. */
export function toCustomResource(
  entry: ConfigEntry,
  namespace: string,
  labels: { readonly [key: string]: string },
): { [key: string]: unknown } {
  return {
    apiVersion: 'consul.hashicorp.com/v1alpha1',
    kind: entry.kind,
    metadata: { name: entry.name, namespace, labels: { ...labels } },
    spec: entry.spec,
  };
}

/** Keys whose values are maps of names (not fields): their keys stay as written. */
const NAME_MAPS = new Set(['subsets', 'failover', 'config', 'add', 'set']);

function pascal(key: string): string {
  return key === 'http' ? 'HTTP' : key.charAt(0).toUpperCase() + key.slice(1);
}

function toApi(value: unknown, nameMap = false): unknown {
  if (Array.isArray(value)) return value.map((v) => toApi(v));
  if (value === null || typeof value !== 'object') return value;
  return Object.fromEntries(
    Object.entries(value as { [key: string]: unknown }).map(([k, v]) => [
      nameMap ? k : pascal(k),
      nameMap ? toApi(v) : toApi(v, NAME_MAPS.has(k)),
    ]),
  );
}

/** A config entry as Consul's HTTP API takes it (`PUT /v1/config`), marked as managed by meshform. */
export function toApiEntry(entry: ConfigEntry): { [key: string]: unknown } {
  // the API names an intention by its destination: the CRD's spec.destination is the entry's Name
  const { destination: _destination, ...spec } = entry.spec as { destination?: unknown };
  return {
    Kind: API_KIND[entry.kind],
    Name: entry.name,
    ...(toApi(entry.kind === 'ServiceIntentions' ? spec : entry.spec) as object),
    Meta: { 'managed-by': 'meshform' },
  };
}
