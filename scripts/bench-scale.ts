/**
 * One case of the scale benchmark, run by scripts/bench.ts in a child process of its own (so its CPU time and
 * peak memory are the whole program's): `node --import tsx scripts/bench-scale.ts
 * <meshform|cdktf|startup-meshform|startup-cdktf> <datacenters> <services> <outdir>`. Prints one JSON line: construction and synthesis milliseconds, resources
 * per type.
 *
 * Both programs declare the same mesh: `datacenters` Kubernetes datacenters reached by kubeconfig (the first is
 * the primary) and `services` HTTP services, service i running in datacenters i and i+1 (mod datacenters),
 * calling service i-1 (which allows it), with a connect timeout and retries. That is, per datacenter: a
 * namespace, 4 secrets (5 on the primary), the consul-k8s Helm release and the secrets' variables; per service
 * on the primary's config stack: service-defaults, service-resolver, service-router and (all but the last)
 * service-intentions custom resources.
 *
 * `meshform` declares it with meshform's constructs. `cdktf` is the same resources written by hand as a plain
 * cdktf app would (provider classes by deep import, the config entries and chart values as literals), without
 * meshform's checks, manifest or plan records: the cost floor meshform is measured against.
 *
 * `startup-meshform` and `startup-cdktf` are each program's fixed cost: the same process (node, tsx, the program's
 * own modules) synthesizing an app that declares nothing (datacenters and services are ignored).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { App, LocalBackend, TerraformStack, TerraformVariable } from '../constructs/private/engine';
import type { KubernetesDatacenter, Service } from '../index';

/**
 * Each program loads only its own modules (as an app of its own would): meshform's constructs, or the provider
 * classes and the YAML library a plain cdktf app imports. Both load the cdktf core (engine.ts imports nothing else).
 */
const meshformModules = () => import('../index');
const cdktfModules = async () => ({
  ...(await import('@cdktf/provider-helm/lib/provider')),
  ...(await import('@cdktf/provider-helm/lib/release')),
  ...(await import('@cdktf/provider-kubernetes/lib/manifest')),
  ...(await import('@cdktf/provider-kubernetes/lib/namespace-v1')),
  ...(await import('@cdktf/provider-kubernetes/lib/provider')),
  ...(await import('@cdktf/provider-kubernetes/lib/secret-v1')),
  ...(await import('yaml')),
});
type MeshformModules = Awaited<ReturnType<typeof meshformModules>>;
type CdktfModules = Awaited<ReturnType<typeof cdktfModules>>;

const MESH = 'scale';
const dcName = (i: number): string => `dc${i}`;
const svcName = (j: number): string => `svc${j}`;
/** The datacenters service j runs in. */
const placement = (j: number, dcs: number): number[] => [...new Set([j % dcs, (j + 1) % dcs])];

function meshformApp(m: MeshformModules, app: App, dcs: number, services: number): void {
  const { KubernetesCluster, KubernetesDatacenter, Mesh, Service, ServiceProtocol } = m;
  const mesh = new Mesh(app, MESH);
  const datacenters: KubernetesDatacenter[] = [];
  for (let i = 0; i < dcs; i++) {
    datacenters.push(
      new KubernetesDatacenter(mesh, dcName(i), {
        primary: i === 0,
        cluster: KubernetesCluster.fromKubeconfig({
          context: dcName(i),
          apiServerUrl: `https://${dcName(i)}.example.com`,
        }),
        meshGateway: { address: `mgw.${dcName(i)}.example.com` },
      }),
    );
  }
  let previous: Service | undefined;
  for (let j = 0; j < services; j++) {
    const service = new Service(mesh, svcName(j), {
      port: 8080,
      protocol: ServiceProtocol.HTTP,
      datacenters: placement(j, dcs).map((i) => datacenters[i]!),
      connectTimeoutMs: 2000,
      retries: { attempts: 2 },
    });
    if (previous) {
      service.addUpstream(previous);
      previous.allowFrom(service);
    }
    previous = service;
  }
}

/** The secrets' variables of one datacenter's stack, as a hand-written app declares them. */
function secretVariables(stack: TerraformStack, dc: string, primary: boolean): { [kind: string]: string } {
  const uuid = '^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$';
  const pem = '^-----BEGIN CERTIFICATE-----';
  const key = '^-----BEGIN (EC |RSA )?PRIVATE KEY-----';
  const inputs: [string, string, string][] = [
    ...(primary ? [['aclBootstrapToken', `${MESH}_acl_bootstrap_token`, uuid] as [string, string, string]] : []),
    ['aclReplicationToken', `${MESH}_acl_replication_token`, uuid],
    ['caBundle', `${MESH}_${dc}_ca_bundle`, pem],
    ['serverChain', `${MESH}_${dc}_server_cert`, pem],
    ['serverKey', `${MESH}_${dc}_server_key`, key],
    ['gossipKey', `${MESH}_gossip_key`, '^[A-Za-z0-9+/]{43}=$'],
  ];
  const values: { [kind: string]: string } = {};
  for (const [kind, name, regex] of inputs) {
    const variable = new TerraformVariable(stack, `meshform_${name}`, {
      type: 'string',
      sensitive: true,
      nullable: false,
      description: `The ${kind} secret. Export it with \`meshform secrets env\``,
      validation: [
        {
          condition: `\${can(regex("${regex}", var.meshform_${name}))}`,
          errorMessage: `meshform_${name} must match ${regex}.`,
        },
      ],
    });
    values[kind] = variable.stringValue;
  }
  return values;
}

/** consul-k8s values of one datacenter, as a hand-written app would keep them: an object dumped to YAML. */
function chartValues(stringify: CdktfModules['stringify'], dc: string, primary: boolean): string {
  const secret = (name: string, key: string) => ({ secretName: `consul-meshform-${name}`, secretKey: key });
  return stringify({
    global: {
      enabled: true,
      name: 'consul',
      datacenter: dc,
      domain: 'consul',
      image: 'hashicorp/consul:2.0.3',
      imageK8S: 'hashicorp/consul-k8s-control-plane:2.0.3',
      tls: {
        enabled: true,
        enableAutoEncrypt: true,
        verify: true,
        httpsOnly: true,
        caCert: secret('ca-bundle', 'tls.crt'),
      },
      gossipEncryption: { autoGenerate: false, ...secret('gossip-key', 'key') },
      acls: {
        manageSystemACLs: true,
        ...(primary
          ? {
              createReplicationToken: true,
              bootstrapToken: secret('acl-token', 'token'),
              replicationToken: secret('acl-replication-token', 'token'),
            }
          : { replicationToken: secret('acl-token', 'token') }),
      },
      federation: {
        enabled: true,
        createFederationSecret: false,
        ...(primary ? {} : { primaryDatacenter: dcName(0), primaryGateways: [`mgw.${dcName(0)}.example.com:443`] }),
      },
      metrics: { enabled: true, enableAgentMetrics: true, agentMetricsRetentionTime: '1m', enableGatewayMetrics: true },
    },
    server: {
      enabled: true,
      replicas: 3,
      bootstrapExpect: 3,
      connect: true,
      disruptionBudget: { enabled: true, maxUnavailable: 1 },
      serverCert: { secretName: 'consul-meshform-server-cert' },
      extraConfig: JSON.stringify({
        acl: { enabled: true, default_policy: 'deny', down_policy: 'extend-cache', enable_token_persistence: true },
        auto_encrypt: { allow_tls: true },
        encrypt_verify_incoming: true,
        encrypt_verify_outgoing: true,
        tls: {
          defaults: { verify_outgoing: true },
          internal_rpc: { verify_incoming: true, verify_server_hostname: true },
        },
      }),
      extraVolumes: [],
    },
    connectInject: { enabled: true, default: false },
    meshGateway: {
      enabled: true,
      replicas: 2,
      wanAddress: { source: 'Static', static: `mgw.${dc}.example.com`, port: 443 },
      service: { type: 'LoadBalancer', port: 443 },
    },
    ui: { enabled: true, service: { type: 'ClusterIP' } },
  });
}

function cdktfApp(m: CdktfModules, app: App, dcs: number, services: number): void {
  const { HelmProvider, KubernetesProvider, Manifest, NamespaceV1, Release, SecretV1, stringify } = m;
  const labels = (dc: string) => ({
    'app.kubernetes.io/managed-by': 'meshform',
    'meshform.io/mesh': MESH,
    'meshform.io/datacenter': dc,
  });
  const kubeconfig = (dc: string) => ({ configPath: '~/.kube/config', configContext: dc });
  for (let i = 0; i < dcs; i++) {
    const dc = dcName(i);
    const primary = i === 0;
    const stack = new TerraformStack(app, `${MESH}-${dc}`);
    new LocalBackend(stack, { path: `../../../terraform.${MESH}-${dc}.tfstate` });
    new KubernetesProvider(stack, 'kubernetes', kubeconfig(dc));
    new HelmProvider(stack, 'helm', { kubernetes: kubeconfig(dc) });
    const values = secretVariables(stack, dc, primary);
    const namespace = new NamespaceV1(stack, 'Namespace', { metadata: { name: 'consul', labels: labels(dc) } });
    const secret = (id: string, name: string, data: { [key: string]: string }, type = 'Opaque') =>
      new SecretV1(stack, id, {
        metadata: { name: `consul-meshform-${name}`, namespace: namespace.metadata.name, labels: labels(dc) },
        type,
        data,
      });
    const secrets = [
      secret('CaBundle', 'ca-bundle', { 'tls.crt': values.caBundle! }),
      secret(
        'ServerCert',
        'server-cert',
        { 'tls.crt': values.serverChain!, 'tls.key': values.serverKey! },
        'kubernetes.io/tls',
      ),
      secret('GossipKey', 'gossip-key', { key: values.gossipKey! }),
      secret('AclToken', 'acl-token', { token: (primary ? values.aclBootstrapToken : values.aclReplicationToken)! }),
      ...(primary
        ? [secret('AclReplicationToken', 'acl-replication-token', { token: values.aclReplicationToken! })]
        : []),
    ];
    new Release(stack, 'Consul', {
      name: 'consul',
      namespace: namespace.metadata.name,
      repository: 'https://helm.releases.hashicorp.com',
      chart: 'consul',
      version: '2.0.3',
      values: [chartValues(stringify, dc, primary)],
      wait: true,
      waitForJobs: true,
      timeout: 1200,
      atomic: false,
      cleanupOnFail: false,
      maxHistory: 10,
      dependsOn: secrets,
    });
  }

  const config = new TerraformStack(app, `${MESH}-${dcName(0)}-config`);
  new LocalBackend(config, { path: `../../../terraform.${MESH}-${dcName(0)}-config.tfstate` });
  new KubernetesProvider(config, 'kubernetes', kubeconfig(dcName(0)));
  const entry = (kind: string, name: string, spec: object) =>
    new Manifest(config, `${kind}-${name}`, {
      manifest: {
        apiVersion: 'consul.hashicorp.com/v1alpha1',
        kind,
        metadata: {
          name,
          namespace: 'consul',
          labels: { 'app.kubernetes.io/managed-by': 'meshform', 'meshform.io/mesh': MESH },
        },
        spec,
      },
      computedFields: ['metadata.annotations', 'metadata.labels', 'status'],
    });
  entry('ProxyDefaults', 'global', {
    config: { envoy_prometheus_bind_addr: '0.0.0.0:20200' },
    meshGateway: { mode: 'local' },
  });
  entry('Mesh', 'mesh', { transparentProxy: { meshDestinationsOnly: true } });
  const retries = { numRetries: 2, retryOnConnectFailure: true };
  for (let j = 0; j < services; j++) entry('ServiceDefaults', svcName(j), { protocol: 'http' });
  for (let j = 0; j < services; j++) entry('ServiceResolver', svcName(j), { connectTimeout: '2s' });
  for (let j = 0; j < services; j++)
    entry('ServiceRouter', svcName(j), { routes: [{ match: { http: { pathPrefix: '/' } }, destination: retries }] });
  for (let j = 0; j + 1 < services; j++) {
    entry('ServiceIntentions', svcName(j), {
      destination: { name: svcName(j) },
      sources: [{ name: svcName(j + 1), action: 'allow' }],
    });
  }
}

async function main(): Promise<void> {
  const [kind, dcsArg, servicesArg, outdir] = process.argv.slice(2);
  const dcs = Number(dcsArg);
  const services = Number(servicesArg);
  const kinds = ['meshform', 'cdktf', 'startup-meshform', 'startup-cdktf'];
  if (!kinds.includes(kind!) || !(dcs >= 1) || !(services >= 1) || !outdir) {
    throw new Error(`usage: bench-scale.ts <${kinds.join('|')}> <datacenters> <services> <outdir>`);
  }
  const modules = kind!.endsWith('meshform') ? await meshformModules() : await cdktfModules();
  const started = performance.now();
  const app = new App({ outdir, stackTraces: false });
  if (kind === 'meshform') meshformApp(modules as MeshformModules, app, dcs, services);
  if (kind === 'cdktf') cdktfApp(modules as CdktfModules, app, dcs, services);
  const constructed = performance.now();
  app.synth();
  const synthesized = performance.now();
  const resources: { [type: string]: number } = {};
  const stacksDir = path.join(outdir, 'stacks');
  for (const stack of fs.existsSync(stacksDir) ? fs.readdirSync(stacksDir) : []) {
    const json = JSON.parse(fs.readFileSync(path.join(stacksDir, stack, 'cdk.tf.json'), 'utf8')) as {
      resource?: { [type: string]: object };
    };
    for (const [type, byId] of Object.entries(json.resource ?? {}))
      resources[type] = (resources[type] ?? 0) + Object.keys(byId).length;
  }
  console.log(
    JSON.stringify({
      constructMs: Math.round(constructed - started),
      synthMs: Math.round(synthesized - constructed),
      resources,
    }),
  );
}

main().catch((e: unknown) => {
  console.error(e);
  process.exitCode = 1;
});
