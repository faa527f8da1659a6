import { describe, expect, it } from 'vitest';
import { Cloud, KubernetesCluster, KubernetesDatacenter, Mesh, MeshGatewayServiceType } from '../index';
import type { App } from '../constructs/private/engine';
import { helmValues, onlyResource, resources, synth } from './support';

/** GIVEN helper: a two-datacenter mesh, primary first. */
function twoDatacenters(app: App): Mesh {
  const mesh = new Mesh(app, 'shop');
  new KubernetesDatacenter(mesh, 'east', {
    primary: true,
    cloud: Cloud.AWS,
    cluster: KubernetesCluster.fromKubeconfig({ context: 'eks-east' }),
    meshGateway: { address: 'mgw.east.example.com' },
  });
  new KubernetesDatacenter(mesh, 'west', {
    cloud: Cloud.GOOGLE_CLOUD,
    cluster: KubernetesCluster.fromKubeconfig({
      context: 'gke-west',
      path: '/etc/kube/west.yaml',
      apiServerUrl: 'https://203.0.113.20',
    }),
  });
  return mesh;
}

describe('stacks', () => {
  it('creates one stack per datacenter, the secondary depending on the primary, and the config stack on the primary', () => {
    // GIVEN / WHEN
    const out = synth(twoDatacenters);
    // THEN
    expect(out.stackNames().sort()).toEqual(['shop-east', 'shop-east-config', 'shop-west']);
    expect(out.manifest.stacks['shop-east']!.dependencies).toEqual([]);
    expect(out.manifest.stacks['shop-west']!.dependencies).toEqual(['shop-east']);
    expect(out.manifest.stacks['shop-east-config']!.dependencies).toEqual(['shop-east']);
  });

  it('records the primary first in the deploy order even when it is declared last', () => {
    // GIVEN
    const out = synth((app) => {
      const mesh = new Mesh(app, 'shop');
      new KubernetesDatacenter(mesh, 'a', {
        cluster: KubernetesCluster.fromKubeconfig({ context: 'a', apiServerUrl: 'https://198.51.100.1' }),
      });
      new KubernetesDatacenter(mesh, 'b', {
        cluster: KubernetesCluster.fromKubeconfig({ context: 'b', apiServerUrl: 'https://198.51.100.2' }),
      });
      new KubernetesDatacenter(mesh, 'c', {
        primary: true,
        cluster: KubernetesCluster.fromKubeconfig({ context: 'c' }),
        meshGateway: { address: '198.51.100.3' },
      });
    });
    // THEN
    expect(out.mesh('shop').deployOrder).toEqual(['shop-c', 'shop-c-config', 'shop-a', 'shop-b']);
    expect(out.manifest.stacks['shop-a']!.dependencies).toEqual(['shop-c']);
    expect(out.manifest.stacks['shop-b']!.dependencies).toEqual(['shop-c']);
    expect(out.manifest.stacks['shop-c']!.dependencies).toEqual([]);
  });

  it('reaches each cluster by its own kubeconfig path and context', () => {
    const out = synth(twoDatacenters);
    expect(out.stack('shop-east').provider!.kubernetes).toEqual([
      { config_path: '~/.kube/config', config_context: 'eks-east' },
    ]);
    expect(out.stack('shop-west').provider!.kubernetes).toEqual([
      { config_path: '/etc/kube/west.yaml', config_context: 'gke-west' },
    ]);
    expect(out.stack('shop-west').provider!.helm).toEqual([
      { kubernetes: { config_path: '/etc/kube/west.yaml', config_context: 'gke-west' } },
    ]);
  });

  it('reads no other stack: no remote state data source anywhere', () => {
    const out = synth(twoDatacenters);
    for (const name of out.stackNames()) {
      expect(out.stack(name).data?.terraform_remote_state).toBeUndefined();
      expect(JSON.stringify(out.stack(name))).not.toContain('terraform_remote_state');
    }
  });

  it('keeps local state beside the output directory, by a relative path', () => {
    const out = synth(twoDatacenters);
    expect(out.stack('shop-east').terraform.backend).toEqual({
      local: { path: '../../../terraform.shop-east.tfstate' },
    });
  });
});

describe('secrets', () => {
  it('declares the gossip key, the replication token and its own TLS material as sensitive, non-nullable variables with shape checks; the management token only on the primary', () => {
    const out = synth(twoDatacenters);
    const variables = out.stack('shop-west').variable!;
    // only west's TLS material: no CA key, and nothing of east's; a secondary never holds the management token
    expect(Object.keys(variables).sort()).toEqual([
      'meshform_shop_acl_replication_token',
      'meshform_shop_gossip_key',
      'meshform_shop_west_ca_bundle',
      'meshform_shop_west_secrets_version',
      'meshform_shop_west_server_cert',
      'meshform_shop_west_server_key',
    ]);
    expect(Object.keys(out.stack('shop-east').variable!)).toEqual(
      expect.arrayContaining(['meshform_shop_acl_bootstrap_token', 'meshform_shop_acl_replication_token']),
    );
    for (const [name, v] of Object.entries(variables)) {
      // the secrets version is a number and no secret; every secret is ephemeral (never in a plan or state)
      if (name.endsWith('_secrets_version')) expect(v).toMatchObject({ type: 'number', nullable: false });
      else expect(v).toMatchObject({ type: 'string', sensitive: true, ephemeral: true, nullable: false });
      expect(v.default).toBeUndefined();
    }
    expect(variables.meshform_shop_gossip_key!.validation).toEqual([
      {
        condition: '${can(regex("^[A-Za-z0-9+/]{43}=$", var.meshform_shop_gossip_key))}',
        error_message:
          "meshform_shop_gossip_key must be 32 bytes of base64 (consul keygen): export it from meshform's secret store with `meshform secrets env`.",
      },
    ]);
    expect(variables.meshform_shop_west_ca_bundle!.validation).toEqual([
      {
        condition:
          '${can(regex("^-----BEGIN CERTIFICATE-----", var.meshform_shop_west_ca_bundle)) && !can(regex("PRIVATE KEY", var.meshform_shop_west_ca_bundle))}',
        error_message:
          "meshform_shop_west_ca_bundle must be PEM certificates and no private key: export it from meshform's secret store with `meshform secrets env`.",
      },
    ]);
  });

  it('puts each secret in its own Kubernetes secret in the Consul namespace, from the variables only', () => {
    const out = synth(twoDatacenters);
    const secrets = resources(out.stack('shop-west'), 'kubernetes_secret_v1');
    expect(secrets.map((s) => [(s.metadata as { name: string }).name, s.data_wo])).toEqual(
      expect.arrayContaining([
        ['consul-meshform-ca-bundle', { 'tls.crt': '${var.meshform_shop_west_ca_bundle}' }],
        [
          'consul-meshform-server-cert',
          { 'tls.crt': '${var.meshform_shop_west_server_cert}', 'tls.key': '${var.meshform_shop_west_server_key}' },
        ],
        ['consul-meshform-gossip-key', { key: '${var.meshform_shop_gossip_key}' }],
        ['consul-meshform-acl-token', { token: '${var.meshform_shop_acl_replication_token}' }],
      ]),
    );
    expect(secrets).toHaveLength(4);
    for (const s of secrets) {
      const name = (s.metadata as { name: string }).name;
      // write-only (hashicorp/kubernetes 2.38.0 secret_v1 data_wo), sent again when the store's version changes
      expect(s.data).toBeUndefined();
      expect(s).toMatchObject({
        data_wo_revision: '${var.meshform_shop_west_secrets_version}',
        type: name === 'consul-meshform-server-cert' ? 'kubernetes.io/tls' : 'Opaque',
        metadata: { namespace: '${kubernetes_namespace_v1.ControlPlane_Namespace_B3BD1F0C.metadata[0].name}' },
      });
    }
  });

  it('gives the primary its management token and the replication token it creates, each in its own secret, and no agent config of its own', () => {
    const out = synth(twoDatacenters);
    const secrets = resources(out.stack('shop-east'), 'kubernetes_secret_v1');
    expect(secrets.map((s) => [(s.metadata as { name: string }).name, s.data_wo])).toEqual(
      expect.arrayContaining([
        ['consul-meshform-acl-token', { token: '${var.meshform_shop_acl_bootstrap_token}' }],
        ['consul-meshform-acl-replication-token', { token: '${var.meshform_shop_acl_replication_token}' }],
      ]),
    );
    expect(secrets).toHaveLength(5);
    // consul-k8s v2.0.3 templates/server-statefulset.yaml already passes the bootstrap token secret to the servers
    // as `acl.tokens.initial_management` (-hcl): meshform adds no config file of its own for it
    expect(helmValues(out.stack('shop-east')).server.extraVolumes).toEqual([]);
  });

  it('installs the release only after the secrets exist', () => {
    const out = synth(twoDatacenters);
    const release = onlyResource(out.stack('shop-east'), 'helm_release');
    expect(release.depends_on).toEqual([
      'kubernetes_secret_v1.ControlPlane_CaBundle_5C7C6CBB',
      'kubernetes_secret_v1.ControlPlane_ServerCert_A9A63367',
      'kubernetes_secret_v1.ControlPlane_GossipKey_39402347',
      'kubernetes_secret_v1.ControlPlane_AclToken_E15F9930',
      'kubernetes_secret_v1.ControlPlane_AclReplicationToken_4B95EF98',
    ]);
  });
});

describe('consul-k8s release', () => {
  it('installs the official chart at the mesh version into the Consul namespace', () => {
    const out = synth(twoDatacenters);
    expect(onlyResource(out.stack('shop-east'), 'helm_release')).toMatchObject({
      name: 'consul',
      chart: 'consul',
      repository: 'https://helm.releases.hashicorp.com',
      version: '2.0.3',
      namespace: '${kubernetes_namespace_v1.ControlPlane_Namespace_B3BD1F0C.metadata[0].name}',
      wait: true,
    });
    expect(onlyResource(out.stack('shop-east'), 'kubernetes_namespace_v1')).toMatchObject({
      metadata: { name: 'consul', labels: { 'app.kubernetes.io/managed-by': 'meshform', 'meshform.io/mesh': 'shop' } },
    });
  });

  it('writes out every security setting in both datacenters', () => {
    const out = synth(twoDatacenters);
    for (const name of ['shop-east', 'shop-west']) {
      const values = helmValues(out.stack(name));
      expect(values.global.tls).toMatchObject({
        enabled: true,
        enableAutoEncrypt: true,
        verify: true,
        httpsOnly: true,
        caCert: { secretName: 'consul-meshform-ca-bundle', secretKey: 'tls.crt' },
      });
      // no CA key enters the cluster: the servers get the certificate meshform issued for their datacenter
      expect(values.global.tls.caKey).toBeUndefined();
      expect(values.server.serverCert).toEqual({ secretName: 'consul-meshform-server-cert' });
      expect(values.global.gossipEncryption).toEqual({
        autoGenerate: false,
        secretName: 'consul-meshform-gossip-key',
        secretKey: 'key',
      });
      // only the primary creates the replication token (consul-k8s v2.0.3 values.yaml global.acls.createReplicationToken)
      expect(values.global.acls).toMatchObject({
        manageSystemACLs: true,
        createReplicationToken: name === 'shop-east',
      });
      expect(JSON.parse(values.server.extraConfig)).toEqual({
        connect: {
          enabled: true,
          ca_provider: 'consul',
          ca_config: {
            leaf_cert_ttl: '72h',
            intermediate_cert_ttl: '8760h',
            root_cert_ttl: '87600h',
            private_key_type: 'ec',
            private_key_bits: 256,
          },
        },
        acl: { enabled: true, default_policy: 'deny', down_policy: 'extend-cache', enable_token_persistence: true },
        auto_encrypt: { allow_tls: true },
        encrypt_verify_incoming: true,
        encrypt_verify_outgoing: true,
        tls: {
          defaults: { verify_outgoing: true },
          internal_rpc: { verify_incoming: true, verify_server_hostname: true },
        },
      });
      expect(values.server).toMatchObject({ enabled: true, replicas: 3, bootstrapExpect: 3, connect: true });
      expect(values.connectInject).toMatchObject({ enabled: true });
      expect(values.meshGateway).toMatchObject({ enabled: true, replicas: 2 });
      expect(values.global.metrics).toEqual({
        enabled: true,
        enableAgentMetrics: true,
        agentMetricsRetentionTime: '1m',
        enableGatewayMetrics: true,
      });
      expect(values.ui.service.type).toBe('ClusterIP');
    }
  });

  it('makes the primary federation-capable with its own bootstrap token, the replication token it creates and a static gateway address', () => {
    const values = helmValues(synth(twoDatacenters).stack('shop-east'));
    expect(values.global.datacenter).toBe('east');
    // no primaryDatacenter on the primary: consul-k8s v2.0.3 acceptance/tests/wan-federation/wan_federation_test.go
    expect(values.global.federation).toEqual({ enabled: true, createFederationSecret: false });
    expect(values.global.acls).toEqual({
      manageSystemACLs: true,
      createReplicationToken: true,
      bootstrapToken: { secretName: 'consul-meshform-acl-token', secretKey: 'token' },
      replicationToken: { secretName: 'consul-meshform-acl-replication-token', secretKey: 'token' },
    });
    expect(values.meshGateway.wanAddress).toEqual({ source: 'Static', static: 'mgw.east.example.com', port: 443 });
  });

  it('points a secondary at the primary datacenter, its gateways and its own API server', () => {
    const values = helmValues(synth(twoDatacenters).stack('shop-west'));
    expect(values.global.datacenter).toBe('west');
    expect(values.global.federation).toEqual({
      enabled: true,
      createFederationSecret: false,
      primaryDatacenter: 'east',
      primaryGateways: ['mgw.east.example.com:443'],
      k8sAuthMethodHost: 'https://203.0.113.20',
    });
    expect(values.global.acls.replicationToken).toEqual({
      secretName: 'consul-meshform-acl-token',
      secretKey: 'token',
    });
    expect(values.global.acls.bootstrapToken).toBeUndefined();
    expect(values.server.extraVolumes).toEqual([]);
    expect(values.meshGateway.wanAddress).toEqual({ source: 'Service', port: 443 });
  });

  it('federates every secondary of a larger mesh with the same primary gateways', () => {
    const out = synth((app) => {
      const mesh = new Mesh(app, 'big');
      new KubernetesDatacenter(mesh, 'p', {
        primary: true,
        cluster: KubernetesCluster.fromKubeconfig({ context: 'p' }),
        meshGateway: { address: '192.0.2.10', port: 8443 },
      });
      for (const n of ['s1', 's2', 's3']) {
        new KubernetesDatacenter(mesh, n, {
          cluster: KubernetesCluster.fromKubeconfig({ context: n, apiServerUrl: `https://${n}.example.com` }),
        });
      }
    });
    for (const n of ['s1', 's2', 's3']) {
      expect(helmValues(out.stack(`big-${n}`)).global.federation.primaryGateways).toEqual(['192.0.2.10:8443']);
      expect(out.manifest.stacks[`big-${n}`]!.dependencies).toEqual(['big-p']);
    }
    expect(out.mesh('big').federation.map((l) => `${l.from}->${l.to}`)).toEqual(['s1->p', 's2->p', 's3->p']);
  });

  it('configures the mesh gateway service type, annotations, port and replicas', () => {
    const out = synth((app) => {
      const mesh = new Mesh(app, 'shop');
      new KubernetesDatacenter(mesh, 'east', {
        primary: true,
        cluster: KubernetesCluster.fromKubeconfig({ context: 'east' }),
        meshGateway: {
          address: 'mgw.example.com',
          serviceType: MeshGatewayServiceType.NODE_PORT,
          nodePort: 30443,
          replicas: 3,
          serviceAnnotations: { 'b.example.com/two': '2', 'a.example.com/one': 'yes' },
        },
      });
    });
    const gw = helmValues(out.stack('shop-east')).meshGateway;
    expect(gw.replicas).toBe(3);
    expect(gw.service).toEqual({
      type: 'NodePort',
      port: 443,
      nodePort: 30443,
      annotations: '"a.example.com/one": "yes"\n"b.example.com/two": "2"\n',
    });
    expect(gw.wanAddress).toEqual({ source: 'Static', static: 'mgw.example.com', port: 30443 });
  });

  it('installs the chosen Consul image and domain', () => {
    const out = synth((app) => {
      const mesh = new Mesh(app, 'shop', { consulVersion: '2.0.2', domain: 'mesh.internal' });
      new KubernetesDatacenter(mesh, 'east', {
        primary: true,
        cluster: KubernetesCluster.fromKubeconfig({ context: 'east' }),
      });
    });
    const values = helmValues(out.stack('shop-east'));
    expect(values.global.image).toBe('hashicorp/consul:2.0.2');
    expect(values.global.domain).toBe('mesh.internal');
  });

  it('accepts a single server with a warning that carries a stable id, and disables the disruption budget', () => {
    const out = synth((app) => {
      const mesh = new Mesh(app, 'lab');
      new KubernetesDatacenter(mesh, 'dev', {
        primary: true,
        cluster: KubernetesCluster.fromKubeconfig({ context: 'kind' }),
        servers: 1,
      });
    });
    const values = helmValues(out.stack('lab-dev'));
    expect(values.server).toMatchObject({ replicas: 1, bootstrapExpect: 1, disruptionBudget: { enabled: false } });
    const expected =
      '[meshform/single-server] datacenter "dev" runs a single Consul server: losing it loses the datacenter\'s state ' +
      'and there is no failover. Use 3 or 5 servers for anything but a throwaway environment.';
    expect(out.manifest.stacks['lab-dev']!.annotations).toEqual([
      expect.objectContaining({ level: '@cdktf/warn', message: `${expected} (lab/dev)` }),
    ]);
    expect(out.mesh('lab').warnings).toEqual([{ id: 'meshform/single-server', path: 'lab/dev', message: expected }]);
  });

  it('runs five servers when asked', () => {
    const out = synth((app) => {
      const mesh = new Mesh(app, 'shop');
      new KubernetesDatacenter(mesh, 'east', {
        primary: true,
        cluster: KubernetesCluster.fromKubeconfig({ context: 'east' }),
        servers: 5,
      });
    });
    expect(helmValues(out.stack('shop-east')).server).toMatchObject({
      replicas: 5,
      bootstrapExpect: 5,
      disruptionBudget: { enabled: true, maxUnavailable: 1 },
    });
  });
});

describe('mesh manifest', () => {
  it('describes datacenters, deploy order and secret variable names, and holds no secret', () => {
    const m = synth(twoDatacenters).mesh('shop');
    expect(m).toMatchObject({
      format: 4,
      mesh: 'shop',
      primary: 'east',
      consulVersion: '2.0.3',
      chartVersion: '2.0.3',
      deployOrder: ['shop-east', 'shop-east-config', 'shop-west'],
      secretVariables: [
        'meshform_shop_gossip_key',
        'meshform_shop_acl_bootstrap_token',
        'meshform_shop_acl_replication_token',
        'meshform_shop_east_ca_bundle',
        'meshform_shop_east_server_cert',
        'meshform_shop_east_server_key',
        'meshform_shop_west_ca_bundle',
        'meshform_shop_west_server_cert',
        'meshform_shop_west_server_key',
      ],
      ca: {
        plan: { provider: 'consul', root: 'root-1', crossSign: true, keyAlgorithm: 'ec-p256', rotationWindowDays: 90 },
        description: "offline root root-1 (agent TLS), Consul's built-in service mesh CA",
      },
    });
    expect(m.ca.requests.find((r) => r.datacenter === 'west')).toEqual({
      datacenter: 'west',
      dnsNames: [
        'server.west.consul',
        '*.server.west.consul',
        'localhost',
        'consul-server',
        '*.consul-server',
        '*.consul-server.consul',
        'consul-server.consul',
        '*.consul-server.consul.svc',
        'consul-server.consul.svc',
      ],
      ipAddresses: ['127.0.0.1', '::1'],
    });
    expect(m.datacenters.map((dc) => [dc.name, dc.primary, dc.cloud, dc.stacks])).toEqual([
      [
        'east',
        true,
        'aws',
        [
          {
            name: 'shop-east',
            state: 'local (terraform.shop-east.tfstate)',
            location: { backend: { local: { path: '../../../terraform.shop-east.tfstate' } } },
          },
          {
            name: 'shop-east-config',
            state: 'local (terraform.shop-east-config.tfstate)',
            location: { backend: { local: { path: '../../../terraform.shop-east-config.tfstate' } } },
          },
        ],
      ],
      [
        'west',
        false,
        'gcp',
        [
          {
            name: 'shop-west',
            state: 'local (terraform.shop-west.tfstate)',
            location: { backend: { local: { path: '../../../terraform.shop-west.tfstate' } } },
          },
        ],
      ],
    ]);
    expect(m.datacenters[0]!.installs).toContain(
      'security: TLS verify, HTTPS only, auto-encrypt, ACLs default deny, gossip encryption with verify',
    );
    expect(m.datacenters[1]!.installs).toContain('federation: joins east via mgw.east.example.com:443');
  });
});
