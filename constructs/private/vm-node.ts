import * as fs from 'node:fs';
import * as path from 'node:path';
import { stringify } from 'yaml';
import { PinnedArtifact } from './binaries';
import { HclObject, renderHcl } from './hcl';

/** The role of a VM in a datacenter. */
export type NodeRole = 'server' | 'client' | 'mesh-gateway';

/** A service a client host runs, with its sidecar. */
export interface NodeService {
  readonly name: string;
  readonly port: number;
  readonly protocol: string;
  /** Services it calls: its sidecar listens on 127.0.0.1:<localBindPort> for each. */
  readonly upstreams?: readonly {
    readonly service: string;
    readonly localBindPort: number;
    readonly datacenter?: string;
  }[];
}

/** Where Envoy serves Prometheus metrics (the mesh's `prometheusBindAddress`, split). */
export interface MetricsBinding {
  readonly ip: string;
  /** The port of the mesh setting: the first port a host's sidecars take. */
  readonly port: number;
}

/** Where a host reads its secrets at boot. */
export type SecretsSource =
  | { readonly source: 'aws-secretsmanager'; readonly secret_id: string; readonly region: string }
  | { readonly source: 'file'; readonly path: string };

/** A group of identical hosts (EC2) or one own host, with the node spec they run. */
export interface HostGroup {
  /** Group name: `server`, `mesh-gateway`, `service-<name>` (EC2) or the host's name (own hosts). */
  readonly name: string;
  readonly role: NodeRole;
  readonly spec: NodeSpec;
  /** Number of hosts (EC2). */
  readonly count: number;
  /** The host's address (own hosts). */
  readonly address?: string;
}

/** Everything that decides what one kind of host runs. */
export interface NodeSpec {
  readonly mesh: string;
  readonly datacenter: string;
  readonly domain: string;
  readonly primary: boolean;
  readonly primaryDatacenter: string;
  readonly role: NodeRole;
  /** Server count (bootstrap_expect). */
  readonly servers: number;
  /** How agents find the servers (cloud auto-join strings or addresses). */
  readonly retryJoin: readonly string[];
  /** `host:port` of the primary's gateways (secondaries). */
  readonly primaryGateways: readonly string[];
  readonly services: readonly NodeService[];
  readonly artifacts: readonly PinnedArtifact[];
  readonly secrets: SecretsSource;
  /**
   * The host's address, when declared (own hosts): the agent binds and advertises it, and meshform-node
   * writes it to node.env. Else (EC2, one interface) the agent takes `{{ GetPrivateIP }}` and meshform-node
   * reads the instance's address from EC2 metadata.
   */
  readonly address?: string;
  /** Mesh gateway: the address:port other datacenters dial (`-wan-address`). */
  readonly gatewayWanAddress?: string;
  /** The servers' `connect` block: the service mesh CA provider and lifetimes. */
  readonly connectCa: HclObject;
  /** Files the CA provider reads (servers only; public material, e.g. Vault's TLS CA). */
  readonly caProviderFiles: readonly { readonly name: string; readonly content: string }[];
  /** Where sidecars serve Prometheus metrics (each sidecar of a host on its own port, see `sidecarMetricsPorts`). */
  readonly metrics: MetricsBinding;
  /** Extra agent configuration merged by the caller (already checked). */
  readonly agentConfig: HclObject;
}

export const PATHS = {
  nodeScript: '/usr/local/sbin/meshform-node',
  nodeConfig: '/etc/meshform/node.json',
  agentConfig: '/etc/consul.d/consul.hcl',
  agentSecrets: '/etc/consul.d/secrets.json',
  caFile: '/etc/consul.d/tls/ca.pem',
  serverCert: '/etc/consul.d/tls/server.pem',
  serverKey: '/etc/consul.d/tls/server-key.pem',
  clientApiCert: '/etc/consul.d/tls/client-api.pem',
  clientApiKey: '/etc/consul.d/tls/client-api-key.pem',
  tokens: '/etc/meshform/tokens',
  nodeEnv: '/etc/meshform/node.env',
  units: '/etc/systemd/system',
} as const;

/** Where servers find the service mesh CA provider's files. */
export const CA_PROVIDER_DIRECTORY = '/etc/consul.d/ca-provider';

/** Port the mesh gateway listens on, on its host (a load balancer or Elastic IP maps the public port to it). */
export const GATEWAY_LISTEN_PORT = 8443;
/** First port Consul assigns to sidecar public listeners (Consul's sidecar_min_port default). */
export const SIDECAR_PORT_RANGE = { from: 21000, to: 21255 } as const;
/** Envoy admin port of the mesh gateway; sidecar i (0-based) of a host takes the next ones. */
export const ENVOY_ADMIN_PORT = 19000;
/** Ports the Consul agent itself listens on (server RPC, LAN and WAN gossip, HTTP(S), gRPC, DNS). */
const CONSUL_AGENT_PORTS = [8300, 8301, 8302, 8500, 8501, 8502, 8503, 8600];

/**
 * The Prometheus port of each sidecar of a host, in service order: one port each, starting at the mesh's
 * metrics port and skipping every port the host already uses (its services, their upstreams' local bind
 * ports, Consul's ports, Envoy admin ports, the gateway port and the sidecar listener range). Without this,
 * every sidecar of a host would take the same port from proxy-defaults and the second one would fail to bind.
 */
export function sidecarMetricsPorts(services: readonly NodeService[], base: number): number[] {
  const taken = new Set<number>([
    ...CONSUL_AGENT_PORTS,
    GATEWAY_LISTEN_PORT,
    ...services.map((_, i) => ENVOY_ADMIN_PORT + i + 1),
    ...services.map((s) => s.port),
    ...services.flatMap((s) => (s.upstreams ?? []).map((u) => u.localBindPort)),
  ]);
  const inSidecarRange = (p: number) => p >= SIDECAR_PORT_RANGE.from && p <= SIDECAR_PORT_RANGE.to;
  let next = base;
  return services.map(() => {
    while (taken.has(next) || inSidecarRange(next)) next++;
    taken.add(next);
    return next;
  });
}

const NODE_SCRIPT = path.join(__dirname, 'assets', 'meshform-node.py');

let nodeScriptText: string | undefined;

/** The on-host agent script (stdlib Python); read once, every host role of every datacenter embeds it. */
export function nodeScript(): string {
  nodeScriptText ??= fs.readFileSync(NODE_SCRIPT, 'utf8');
  return nodeScriptText;
}

/**
 * The agent configuration of a role, every security setting written out: ACL default deny, TLS verify
 * incoming/outgoing/server hostname, gossip encryption with verify (the key itself is in secrets.json,
 * written at boot), auto-encrypt, mesh-gateway WAN federation, no plain HTTP.
 */
export function agentConfig(spec: NodeSpec): HclObject {
  const server = spec.role === 'server';
  const config: HclObject = {
    datacenter: spec.datacenter,
    primary_datacenter: spec.primaryDatacenter,
    domain: spec.domain,
    data_dir: '/opt/consul/data',
    log_level: 'INFO',
    server,
    ...(server ? { bootstrap_expect: spec.servers } : {}),
    // A declared address (own hosts) is bound as is: go-sockaddr's GetPrivateIP takes the first private
    // address of the default-route interface, which on a host with several is not necessarily the declared one
    // (the address the server certificate names and the other hosts dial).
    bind_addr: spec.address ?? '{{ GetPrivateIP }}',
    advertise_addr: spec.address ?? '{{ GetPrivateIP }}',
    client_addr: '127.0.0.1',
    retry_join: [...spec.retryJoin],
    ...(server && !spec.primary && spec.primaryGateways.length > 0
      ? { primary_gateways: [...spec.primaryGateways] }
      : {}),
    ports: server
      ? { http: -1, https: 8501, grpc: -1, grpc_tls: 8503 }
      : { http: -1, https: 8501, grpc: 8502, grpc_tls: -1 },
    tls: {
      defaults: {
        ca_file: PATHS.caFile,
        ...(server ? { cert_file: PATHS.serverCert, key_file: PATHS.serverKey } : {}),
        verify_incoming: true,
        verify_outgoing: true,
      },
      internal_rpc: { verify_incoming: true, verify_server_hostname: true },
      // API clients (the CLI, envoy bootstrap) authenticate with ACL tokens on the loopback interface. A
      // client agent's HTTPS listener serves this certificate of the mesh (names localhost, 127.0.0.1, ::1):
      // without one it would serve its auto-encrypt certificate, signed by the service mesh CA, which
      // `consul connect envoy -ca-file` and meshform-node (trusting the mesh's roots only) refuse.
      https: server
        ? { verify_incoming: false }
        : { verify_incoming: false, cert_file: PATHS.clientApiCert, key_file: PATHS.clientApiKey },
      grpc: { verify_incoming: false },
    },
    auto_encrypt: server ? { allow_tls: true } : { tls: true },
    encrypt_verify_incoming: true,
    encrypt_verify_outgoing: true,
    acl: {
      enabled: true,
      default_policy: 'deny',
      down_policy: 'extend-cache',
      enable_token_persistence: true,
      ...(server && !spec.primary ? { enable_token_replication: true } : {}),
    },
    connect: server
      ? { ...spec.connectCa, enabled: true, enable_mesh_gateway_wan_federation: true }
      : { enabled: true },
    telemetry: { prometheus_retention_time: '60s', disable_hostname: true },
    leave_on_terminate: !server,
    ...(server
      ? {
          autopilot: { cleanup_dead_servers: true, min_quorum: Math.floor(spec.servers / 2) + 1 },
          performance: { raft_multiplier: 1 },
          ui_config: { enabled: true },
          enable_central_service_config: true,
        }
      : {}),
  };
  return config;
}

/** The settings node.json carries to meshform-node (no secret). */
export function nodeJson(spec: NodeSpec): object {
  const metricsPorts = sidecarMetricsPorts(spec.services, spec.metrics.port);
  return {
    format: 1,
    mesh: spec.mesh,
    datacenter: spec.datacenter,
    domain: spec.domain,
    primary: spec.primary,
    role: spec.role,
    artifacts: spec.artifacts,
    secrets: spec.secrets,
    address: spec.address ? { source: 'static', value: spec.address } : { source: 'imds' },
    services: spec.services.map((s, i) => ({
      ID: s.name,
      Name: s.name,
      Port: s.port,
      Meta: { 'meshform-mesh': spec.mesh, protocol: s.protocol },
      Check: { Name: `${s.name} listening`, TCP: `127.0.0.1:${s.port}`, Interval: '10s', Timeout: '2s' },
      Connect: {
        SidecarService: {
          Proxy: {
            // the registration's value wins over proxy-defaults' (Consul merges the defaults in only where the
            // registration sets nothing), so each sidecar of the host gets its own metrics port
            Config: { envoy_prometheus_bind_addr: `${spec.metrics.ip}:${metricsPorts[i]!}` },
            ...(s.upstreams?.length
              ? {
                  Upstreams: s.upstreams.map((u) => ({
                    DestinationName: u.service,
                    LocalBindPort: u.localBindPort,
                    ...(u.datacenter ? { Datacenter: u.datacenter } : {}),
                  })),
                }
              : {}),
          },
        },
      },
    })),
  };
}

/** One systemd unit. */
export interface Unit {
  readonly name: string;
  readonly content: string;
}

function unit(sections: { [section: string]: readonly (readonly [string, string])[] }): string {
  return (
    Object.entries(sections)
      .map(([name, entries]) => `[${name}]\n${entries.map(([k, v]) => `${k}=${v}`).join('\n')}`)
      .join('\n\n') + '\n'
  );
}

const CONSUL_API = ['-http-addr', 'https://127.0.0.1:8501', '-ca-file', PATHS.caFile];

/**
 * How long the agent may take to start: Consul tells systemd it is ready (Type=notify) only after its first
 * LAN join (hashicorp/consul agent/agent.go, JoinLAN), so a host whose peers boot later waits here. Past it,
 * systemd stops the agent and Restart=on-failure starts it again (a start timeout counts as a failure).
 */
export const CONSUL_START_TIMEOUT = '30min';

/**
 * Every unit keeps retrying instead of failing once: no start rate limit (systemd's default gives up after 5
 * starts in 10 s), and dependencies are `Wants=` + `After=` rather than `Requires=`, so a unit whose
 * dependency failed a first time still starts, then retries on its own until what it needs is there (with
 * `Requires=`, a failed dependency fails the dependent's start job and nothing starts it again).
 */
const NO_START_LIMIT = ['StartLimitIntervalSec', '0'] as const;

function after(...names: string[]): (readonly [string, string])[] {
  return [
    ['Wants', names.join(' ')],
    ['After', names.join(' ')],
  ];
}

/** How an Envoy process (sidecar or gateway) runs: as consul, restarted always, without privileges. */
const ENVOY_SERVICE = {
  user: [
    ['User', 'consul'],
    ['Group', 'consul'],
    ['Environment', 'PATH=/usr/local/bin:/usr/bin:/bin'],
  ] as const,
  // `consul connect envoy` exits while its registration, token or agent is not there yet: retried forever
  restart: [
    ['Restart', 'always'],
    ['RestartSec', '5'],
    ['NoNewPrivileges', 'yes'],
    ['ProtectSystem', 'full'],
    ['PrivateTmp', 'yes'],
  ] as const,
};

/** How long one run of meshform-secrets.service may take before systemd stops it and starts it again. */
export const SECRETS_START_TIMEOUT_MINUTES = 20;
/** The time meshform-node spends retrying AWS calls in one run: well inside the unit's start timeout. */
export const SECRETS_RETRY_SECONDS = 900;

/** A oneshot of meshform-node that retries until it succeeds, each run bounded by `timeout`. */
function retryingOneshot(timeout: string): (readonly [string, string])[] {
  return [
    ['Type', 'oneshot'],
    ['TimeoutStartSec', timeout],
    ['Restart', 'on-failure'],
    ['RestartSec', '30'],
  ];
}

/** The systemd units of a role. */
export function units(spec: NodeSpec): Unit[] {
  const description = `meshform ${spec.mesh}/${spec.datacenter}`;
  const list: Unit[] = [
    {
      name: 'meshform-secrets.service',
      content: unit({
        Unit: [
          ['Description', `Fetch the Consul secrets of ${description}`],
          ...after('network-online.target'),
          ['Before', 'consul.service'],
          NO_START_LIMIT,
        ],
        // meshform-node retries its AWS calls (IMDS, Secrets Manager) with backoff and jitter for at most
        // SECRETS_RETRY_SECONDS, saying in the journal what failed and when it retries; then it exits non-zero,
        // the unit fails and systemd starts it again after RestartSec, until it succeeds
        Service: [
          ...retryingOneshot(`${SECRETS_START_TIMEOUT_MINUTES}min`),
          ['Environment', `MESHFORM_RETRY_SECONDS=${SECRETS_RETRY_SECONDS}`],
          ['RemainAfterExit', 'yes'],
          ['ExecStart', `${PATHS.nodeScript} secrets`],
        ],
      }),
    },
    {
      name: 'consul.service',
      content: unit({
        Unit: [
          ['Description', `Consul ${spec.role === 'server' ? 'server' : 'client'} of ${description}`],
          ['Documentation', 'https://developer.hashicorp.com/consul/docs'],
          ...after('network-online.target', 'meshform-secrets.service'),
          ['ConditionFileNotEmpty', PATHS.agentConfig],
          NO_START_LIMIT,
        ],
        Service: [
          ['Type', 'notify'],
          ['User', 'consul'],
          ['Group', 'consul'],
          // until meshform-secrets wrote the gossip key and tokens, fail and retry (Restart=on-failure)
          ['ExecStartPre', `/usr/bin/test -s ${PATHS.agentSecrets}`],
          ['ExecStart', '/usr/local/bin/consul agent -config-dir=/etc/consul.d'],
          ['ExecReload', '/bin/kill --signal HUP $MAINPID'],
          ['KillMode', 'process'],
          ['KillSignal', 'SIGTERM'],
          ['TimeoutStartSec', CONSUL_START_TIMEOUT],
          ['Restart', 'on-failure'],
          ['RestartSec', '10'],
          ['LimitNOFILE', '65536'],
          ['NoNewPrivileges', 'yes'],
          ['ProtectSystem', 'full'],
          ['ProtectHome', 'yes'],
          ['PrivateTmp', 'yes'],
          ['PrivateDevices', 'yes'],
          ['ReadWritePaths', '/opt/consul'],
        ],
        Install: [['WantedBy', 'multi-user.target']],
      }),
    },
  ];
  if (spec.role === 'server') {
    // Creates and updates the datacenter's ACL policies and tokens: at boot, then every 5 minutes (rules
    // meshform deploys later travel in the servers' secret, not in the user data).
    list.push({
      name: 'meshform-acl-bootstrap.service',
      content: unit({
        Unit: [
          ['Description', `Create and update the ACL policies and tokens of ${description}`],
          ...after('consul.service'),
          NO_START_LIMIT,
        ],
        // meshform-node waits up to 30 minutes for a leader (a secondary's ACL writes go to the primary)
        Service: [...retryingOneshot('35min'), ['ExecStart', `${PATHS.nodeScript} acl-bootstrap`]],
        Install: [['WantedBy', 'multi-user.target']],
      }),
    });
    list.push({
      name: 'meshform-acl-bootstrap.timer',
      content: unit({
        Unit: [['Description', `Apply changed ACL policies and tokens of ${description}`]],
        Timer: [
          ['OnBootSec', '5min'],
          ['OnUnitInactiveSec', '5min'],
          ['Unit', 'meshform-acl-bootstrap.service'],
        ],
        Install: [['WantedBy', 'timers.target']],
      }),
    });
  }
  if (spec.role === 'server' && spec.primary) {
    // Config entries written in the agent configuration are applied at bootstrap only; these apply every
    // change meshform deploys (the entries travel in the servers' secret) through Consul's API.
    list.push({
      name: 'meshform-config-entries.service',
      content: unit({
        Unit: [
          ['Description', `Apply the config entries of ${description}`],
          ...after('consul.service', 'meshform-acl-bootstrap.service'),
          NO_START_LIMIT,
        ],
        Service: [...retryingOneshot('35min'), ['ExecStart', `${PATHS.nodeScript} config-entries`]],
      }),
    });
    list.push({
      name: 'meshform-config-entries.timer',
      content: unit({
        Unit: [['Description', `Apply changed config entries of ${description}`]],
        Timer: [
          ['OnBootSec', '2min'],
          ['OnUnitActiveSec', '5min'],
          ['Unit', 'meshform-config-entries.service'],
        ],
        Install: [['WantedBy', 'timers.target']],
      }),
    });
  }
  spec.services.forEach((service, i) => {
    const registration = `meshform-service-${service.name}.service`;
    list.push({
      name: registration,
      content: unit({
        Unit: [
          ['Description', `Register ${service.name} with Consul (${description})`],
          ...after('consul.service'),
          NO_START_LIMIT,
        ],
        // meshform-node retries for 10 minutes (until the servers created the service's token), then again
        Service: [
          ...retryingOneshot('15min'),
          ['RemainAfterExit', 'yes'],
          ['ExecStart', `${PATHS.nodeScript} register-service ${service.name}`],
          ['ExecStop', `${PATHS.nodeScript} deregister-service ${service.name}`],
        ],
        Install: [['WantedBy', 'multi-user.target']],
      }),
    });
    list.push({
      name: `envoy-${service.name}.service`,
      content: unit({
        Unit: [
          ['Description', `Envoy sidecar of ${service.name} (${description})`],
          ...after(registration),
          NO_START_LIMIT,
        ],
        Service: [
          ...ENVOY_SERVICE.user,
          [
            'ExecStart',
            [
              '/usr/local/bin/consul connect envoy',
              `-sidecar-for ${service.name}`,
              `-token-file ${PATHS.tokens}/service-${service.name}`,
              ...pairs(CONSUL_API),
              '-grpc-addr 127.0.0.1:8502',
              `-admin-bind 127.0.0.1:${ENVOY_ADMIN_PORT + i + 1}`,
            ].join(' '),
          ],
          ...ENVOY_SERVICE.restart,
        ],
        Install: [['WantedBy', 'multi-user.target']],
      }),
    });
  });
  if (spec.role === 'mesh-gateway') {
    list.push({
      name: 'consul-mesh-gateway.service',
      content: unit({
        Unit: [['Description', `Consul mesh gateway of ${description}`], ...after('consul.service'), NO_START_LIMIT],
        Service: [
          ...ENVOY_SERVICE.user,
          ['EnvironmentFile', PATHS.nodeEnv],
          ['ExecStart', gatewayCommand(spec)],
          ...ENVOY_SERVICE.restart,
        ],
        Install: [['WantedBy', 'multi-user.target']],
      }),
    });
  }
  return list;
}

/**
 * The mesh gateway's command line. `-expose-servers` registers the gateway with the service meta
 * `consul-wan-federation = "1"` (hashicorp/consul command/connect/envoy/envoy.go): only with it do the
 * gateway's proxy config watch the federation states and add the routes to the servers of each datacenter
 * (agent/proxycfg/mesh_gateway.go, agent/xds), so other datacenters' servers reach this datacenter's servers
 * through it. It requires `-register`.
 */
export function gatewayCommand(spec: NodeSpec): string {
  return [
    '/usr/local/bin/consul connect envoy -gateway=mesh -register -expose-servers -service mesh-gateway',
    `-address \${PRIVATE_IP}:${GATEWAY_LISTEN_PORT}`,
    `-wan-address ${spec.gatewayWanAddress ?? `\${PRIVATE_IP}:${GATEWAY_LISTEN_PORT}`}`,
    `-token-file ${PATHS.tokens}/mesh-gateway`,
    ...pairs(CONSUL_API),
    '-grpc-addr 127.0.0.1:8502',
    `-admin-bind 127.0.0.1:${ENVOY_ADMIN_PORT}`,
  ].join(' ');
}

function pairs(flags: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < flags.length; i += 2) out.push(`${flags[i]} ${flags[i + 1]}`);
  return out;
}

/** Every file a host of this role gets, with its mode. */
export interface NodeFile {
  readonly path: string;
  readonly content: string;
  readonly mode: string;
}

/** The files of a role: the agent script, node.json, the agent config and the units. */
export function nodeFiles(spec: NodeSpec): NodeFile[] {
  return [
    { path: PATHS.nodeScript, content: nodeScript(), mode: '0755' },
    { path: PATHS.nodeConfig, content: `${JSON.stringify(nodeJson(spec), null, 2)}\n`, mode: '0644' },
    { path: PATHS.agentConfig, content: renderHcl(spec.agentConfig), mode: '0644' },
    ...spec.caProviderFiles.map((f) => ({
      path: `${CA_PROVIDER_DIRECTORY}/${f.name}`,
      content: f.content,
      mode: '0644',
    })),
    ...units(spec).map((u) => ({ path: `${PATHS.units}/${u.name}`, content: u.content, mode: '0644' })),
  ];
}

/** The units a role enables, in start order. */
export function enabledUnits(spec: NodeSpec): string[] {
  return (
    units(spec)
      .map((u) => u.name)
      // pulled in by consul.service, and started by its timer
      .filter((n) => n !== 'meshform-secrets.service' && n !== 'meshform-config-entries.service')
  );
}

/**
 * The cloud-init document of a role: a `consul` system user, the files, then install (download + checksum),
 * and start. No secret is in it: meshform-node fetches them at boot.
 */
export function cloudInit(spec: NodeSpec): string {
  const files = nodeFiles(spec).map((f) => ({
    path: f.path,
    permissions: f.mode,
    owner: 'root:root',
    content: f.content,
  }));
  const doc = {
    users: [
      'default',
      { name: 'consul', system: true, shell: '/usr/sbin/nologin', homedir: '/opt/consul', no_create_home: true },
    ],
    write_files: files,
    runcmd: [
      [PATHS.nodeScript, 'install'],
      ['systemctl', 'daemon-reload'],
      // --no-block: consul.service is ready only after joining its peers, which may boot later
      ['systemctl', 'enable', '--now', '--no-block', ...enabledUnits(spec)],
    ],
  };
  return `#cloud-config\n${stringify(doc, { lineWidth: 0 })}`;
}
