/**
 * Proof from the consumer's side: what the consul-k8s v2.0.3 chart (charts/consul/templates), its control plane
 * (control-plane/...) and Consul (hashicorp/consul) do with the values meshform emits, for every Kubernetes
 * datacenter of every example. Each test names the upstream fact it rests on; the facts are data in test/fixtures.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { reconcileMeshCa } from '../cli/ca';
import { CertificateAuthority } from '../constructs/certificate-authority';
import { consulHelmValues, ConsulHelmValuesInput } from '../constructs/private/helm-values';
import { splitPem } from '../constructs/private/x509';
import { KubernetesCluster, KubernetesDatacenter, Mesh, SecretStore, VaultAuth } from '../index';
import { issuedMesh, mtls, tlsOf } from './ca-support';
import {
  ACL_REPLICATION,
  CHART_DEFAULTS,
  chartValue,
  componentLogin,
  createdAuthMethods,
  KubernetesDatacenterOutput,
  kubernetesDatacentersOfExamples,
  SECONDARY_INPUT,
  secretData,
  SERVER_NAMES,
  trippedFails,
} from './chart-support';
import { helmValues, REPO, synth, tempDir } from './support';

let datacenters: KubernetesDatacenterOutput[] = [];
const primaries = () => datacenters.filter((d) => d.manifest.primary === d.values.global.datacenter);
const secondaries = () => datacenters.filter((d) => d.manifest.primary !== d.values.global.datacenter);

beforeAll(() => {
  datacenters = kubernetesDatacentersOfExamples();
}, 600_000);

describe('the examples cover both roles', () => {
  it('has Kubernetes primaries and secondaries to check', () => {
    expect(primaries().map((d) => `${d.example}/${d.stackName}`)).toEqual([
      'default/shop-aws-us-east',
      'multi-cluster/payments-aws-eu-west',
      'hybrid/bank-kubernetes',
    ]);
    expect(secondaries().length).toBeGreaterThanOrEqual(3);
  });
});

describe("the chart's fail conditions (consul-k8s v2.0.3 charts/consul/templates, test/fixtures/consul-k8s-2.0.3-chart-fails.json)", () => {
  it('trips none for any Kubernetes datacenter of any example', () => {
    for (const dc of datacenters) expect(trippedFails(dc.values), `${dc.example}/${dc.stackName}`).toEqual([]);
  });

  it('trips none for the shapes a datacenter can take (primary, secondary, NodePort, load balancer, StorageClass)', () => {
    const shapes: ConsulHelmValuesInput[] = [
      SECONDARY_INPUT,
      {
        ...SECONDARY_INPUT,
        primary: true,
        primaryGateways: [],
        kubernetesApiUrl: undefined,
        secrets: { ...SECONDARY_INPUT.secrets, aclReplicationToken: { secretName: 'e', secretKey: 'token' } },
      },
      { ...SECONDARY_INPUT, meshGateway: { ...SECONDARY_INPUT.meshGateway, address: 'mgw.example.com' } },
      {
        ...SECONDARY_INPUT,
        storageClass: 'fast',
        meshGateway: { replicas: 2, serviceType: 'LoadBalancer', port: 443, annotations: { a: 'b' } },
      },
    ];
    for (const input of shapes) expect(trippedFails(consulHelmValues(input))).toEqual([]);
  });

  it('is live: values the chart refuses trip the matching condition', () => {
    expect(
      trippedFails({
        global: { federation: { enabled: true }, tls: { enabled: false } },
        meshGateway: { enabled: true, wanAddress: { source: 'Static', static: '' } },
        server: { replicas: 3, bootstrapExpect: 1, extraConfig: '{"enable_debug":true}' },
        connectInject: { enabled: true },
      }),
    ).toEqual([
      '_helpers.tpl: server.extraConfig sets enable_debug (the chart owns it: server.enableAgentDebug)',
      'server-statefulset.yaml: federation without TLS',
      'server-statefulset.yaml: bootstrapExpect below the number of replicas',
      'mesh-gateway-deployment.yaml: a Static WAN address without the address',
      'gateway-resources-configmap.yaml: a Static WAN address without the address (checked again where gateway resources are rendered)',
    ]);
    expect(
      trippedFails({
        global: { acls: { manageSystemACLs: false, createReplicationToken: true } },
        meshGateway: { enabled: true, service: { type: 'NodePort' } },
        connectInject: { enabled: false },
      }),
    ).toEqual([
      'server-acl-init-job.yaml: createReplicationToken without chart-managed ACLs',
      "mesh-gateway-deployment.yaml: mesh gateways without connect inject (the injector's endpoints controller registers them)",
      'mesh-gateway-deployment.yaml: a Service WAN address on a NodePort Service without its node port',
    ]);
  });

  it('reads the fail conditions against the derived chart defaults (scripts/derive-fixtures.ts from values.yaml)', () => {
    expect(chartValue({}, 'server.limits.requestLimits.mode')).toBe('disabled');
    expect(CHART_DEFAULTS.notInValues).toEqual([
      'global.bootstrapACLs',
      'global.imageK8s',
      'meshGateway.globalMode',
      'server.disableFsGroupSecurityContext',
    ]);
  });
});

describe('server certificate names (consul-k8s v2.0.3 charts/consul/templates/_helpers.tpl consul.serverTLSAltNames)', () => {
  const substitute = (name: string, values: any, namespace: string) =>
    name
      .replace(/\{name\}/g, values.global.name)
      .replace(/\{namespace\}/g, namespace)
      .replace(/\{datacenter\}/g, values.global.datacenter)
      .replace(/\{domain\}/g, values.global.domain)
      .replace(/\{node\}/g, `${values.global.name}-server-0`);

  it("requests every name of the chart's own server certificate, for every Kubernetes datacenter of every example", () => {
    for (const dc of datacenters) {
      const request = dc.manifest.ca.requests.find((r) => r.datacenter === dc.values.global.datacenter)!;
      // every example installs into the default namespace, consul
      const wanted = SERVER_NAMES.serverTLSAltNames.dnsNames.map((n) => substitute(n, dc.values, 'consul'));
      expect(request.dnsNames, `${dc.example}/${dc.stackName}`).toEqual(expect.arrayContaining(wanted));
      expect(request.ipAddresses).toEqual(expect.arrayContaining(SERVER_NAMES.serverTLSAltNames.ipAddresses));
    }
  });

  it("issues certificates that pass the hostname check of every name the chart's components and Consul dial (control-plane/subcommand/flags/consul.go takes the TLS name from -addresses; hashicorp/consul tlsutil/config.go)", () => {
    for (const example of new Set(datacenters.map((d) => d.example))) {
      const dcs = datacenters.filter((d) => d.example === example);
      const store = SecretStore.open({ directory: path.join(tempDir(), 'store') });
      const manifest = dcs[0]!.manifest;
      store.ensure(manifest.mesh);
      reconcileMeshCa(store, manifest, () => undefined);
      for (const dc of dcs) {
        const [leaf] = splitPem(store.ca(manifest.mesh).server(dc.values.global.datacenter)!.chainPem);
        const cert = new X509Certificate(leaf!).toLegacyObject();
        for (const dialed of SERVER_NAMES.dialed) {
          const host = substitute(dialed.name, dc.values, 'consul');
          expect(tls.checkServerIdentity(host, cert), `${example}/${dc.stackName}: ${host} (${dialed.by})`).toBe(
            undefined,
          );
        }
      }
    }
  });

  it('regression: a certificate with the names of the branch point fails the dial of consul-server.<namespace>.svc', () => {
    // test/ca-support's request() is the branch point's list: consul-server and *.consul-server.consul.svc only
    const { ca } = issuedMesh('shop', ['east']);
    const [leaf] = splitPem(ca.server('east')!.chainPem);
    const error = tls.checkServerIdentity('consul-server.consul.svc', new X509Certificate(leaf!).toLegacyObject());
    expect(error?.message).toContain("Host: consul-server.consul.svc. is not in the cert's altnames");
  });

  it('serves consul-server.<namespace>.svc in a real TLS handshake (node:tls, server name checked)', async () => {
    const dc = datacenters.find((d) => d.example === 'default' && d.stackName === 'shop-aws-us-east')!;
    const store = SecretStore.open({ directory: path.join(tempDir(), 'store') });
    store.ensure('shop');
    reconcileMeshCa(store, dc.manifest, () => undefined);
    const own = tlsOf(store.ca('shop'), dc.manifest.ca.plan, 'aws-us-east');
    expect(await mtls(own, own, 'consul-server.consul.svc')).toEqual({ ok: true });
  });

  it("follows the namespace and keeps the chart's full name whatever the release is called (templates/_helpers.tpl consul.fullname: global.name)", () => {
    const out = synth((app) => {
      const mesh = new Mesh(app, 'm');
      new KubernetesDatacenter(mesh, 'k', {
        primary: true,
        cluster: KubernetesCluster.fromKubeconfig({ context: 'k' }),
        namespace: 'mesh-system',
        releaseName: 'mesh',
      });
    });
    const values = helmValues(out.stack('m-k'));
    expect(values.global.name).toBe('consul');
    expect(out.mesh('m').ca.requests.find((r) => r.datacenter === 'k')!.dnsNames).toEqual(
      expect.arrayContaining(SERVER_NAMES.serverTLSAltNames.dnsNames.map((n) => substitute(n, values, 'mesh-system'))),
    );
  });
});

describe('federation (consul-k8s v2.0.3 acceptance/tests/wan-federation/wan_federation_test.go: the primary sets no primaryDatacenter)', () => {
  it('lets the injector and the mesh gateway of every datacenter log in through an auth method server-acl-init creates there (templates/connect-inject-deployment.yaml, mesh-gateway-deployment.yaml; control-plane/subcommand/server-acl-init/command.go; hashicorp/consul agent/config/builder.go)', () => {
    for (const dc of datacenters) {
      expect(createdAuthMethods(dc.values), `${dc.example}/${dc.stackName}`).toContainEqual(componentLogin(dc.values));
    }
  });

  it("regression: with the branch point's primaryDatacenter on the primary, its components log in through an auth method that does not exist", () => {
    for (const dc of primaries()) {
      const before = {
        ...dc.values,
        global: {
          ...dc.values.global,
          federation: { ...dc.values.global.federation, primaryDatacenter: dc.values.global.datacenter },
        },
      };
      expect(createdAuthMethods(before)).not.toContainEqual(componentLogin(before));
    }
  });

  it("points every secondary at the primary's datacenter and its gateway address as the primary registers it (control-plane/connect-inject/controllers/endpoints/endpoints_controller.go reads the wan-address annotations templates/mesh-gateway-deployment.yaml sets from meshGateway.wanAddress)", () => {
    for (const dc of secondaries()) {
      const primary = datacenters.find(
        (p) => p.example === dc.example && p.values.global.datacenter === dc.manifest.primary,
      );
      expect(dc.values.global.federation).toMatchObject({ enabled: true, primaryDatacenter: dc.manifest.primary });
      // every secondary has an auth method host for the primary's servers (server-acl-init -auth-method-host)
      expect(String(dc.values.global.federation.k8sAuthMethodHost)).toMatch(/^(https:\/\/|\$\{)/);
      if (!primary) continue; // a VM primary publishes its gateway itself
      const wan = primary.values.meshGateway.wanAddress;
      expect(wan.source).toBe('Static');
      expect(dc.values.global.federation.primaryGateways).toEqual([`${wan.static}:${wan.port}`]);
    }
  });

  it('never asks the chart to create a federation secret: meshform hands every datacenter its secrets (templates/create-federation-secret-job.yaml)', () => {
    for (const dc of datacenters) expect(dc.values.global.federation.createFederationSecret).toBe(false);
  });
});

describe('the ACL replication token (test/fixtures/consul-k8s-2.0.3-acl-replication.json)', () => {
  it('is created by every primary with the SecretID of the secret its replicationToken names (templates/server-acl-init-job.yaml passes -create-acl-replication-token and -acl-replication-token-file; server-acl-init createACLWithSecretID)', () => {
    for (const dc of primaries()) {
      const acls = dc.values.global.acls;
      expect(acls).toMatchObject({ manageSystemACLs: true, createReplicationToken: true });
      const mesh = dc.manifest.mesh.replace(/-/g, '_');
      expect(secretData(dc.stack, acls.replicationToken.secretName)).toEqual({
        [acls.replicationToken.secretKey]: `\${var.meshform_${mesh}_acl_replication_token}`,
      });
      // the management token is the bootstrap token, in its own secret
      expect(secretData(dc.stack, acls.bootstrapToken.secretName)).toEqual({
        [acls.bootstrapToken.secretKey]: `\${var.meshform_${mesh}_acl_bootstrap_token}`,
      });
    }
  });

  it('is what every Kubernetes secondary replicates with, and never the management token (templates/server-statefulset.yaml makes it their agent and replication token)', () => {
    for (const dc of secondaries()) {
      const acls = dc.values.global.acls;
      expect(acls.createReplicationToken).toBe(false);
      expect(acls.bootstrapToken).toBeUndefined();
      const mesh = dc.manifest.mesh.replace(/-/g, '_');
      expect(secretData(dc.stack, acls.replicationToken.secretName)).toEqual({
        [acls.replicationToken.secretKey]: `\${var.meshform_${mesh}_acl_replication_token}`,
      });
      expect(Object.keys(dc.stack.variable ?? {})).not.toContain(`meshform_${mesh}_acl_bootstrap_token`);
    }
  });

  it("grants everything a secondary's servers (Kubernetes or VM) and a secondary's server-acl-init do with it (control-plane/subcommand/server-acl-init/rules.go aclReplicationRules against hashicorp/consul's checks)", () => {
    const rank = { read: 1, write: 2 } as const;
    for (const need of ACL_REPLICATION.needs) {
      const granted = ACL_REPLICATION.grants.rules[need.permission];
      expect(granted, `${need.who}: ${need.permission}`).toBeDefined();
      expect(rank[granted!], `${need.who}: ${need.permission}:${need.level} (${need.source})`).toBeGreaterThanOrEqual(
        rank[need.level],
      );
    }
  });
});

describe('every other value meshform emits, with the chart fact behind it', () => {
  it('runs the images consul-k8s 2.0.3 ships (values.yaml global.image, global.imageK8S)', () => {
    for (const dc of datacenters) {
      expect(dc.values.global.image).toBe(CHART_DEFAULTS.defaults['global.image']);
      expect(dc.values.global.imageK8S).toBe(CHART_DEFAULTS.defaults['global.imageK8S']);
    }
  });

  it('turns on TLS with verification, HTTPS only and auto-encrypt, trusting only the roots secret (templates/server-config-configmap.yaml tls-config.json: verify sets internal_rpc verify_incoming and verify_server_hostname)', () => {
    for (const dc of datacenters) {
      expect(dc.values.global.tls).toEqual({
        enabled: true,
        enableAutoEncrypt: true,
        verify: true,
        httpsOnly: true,
        caCert: { secretName: 'consul-meshform-ca-bundle', secretKey: 'tls.crt' },
      });
      // the certificate meshform issued: templates/server-statefulset.yaml mounts server.serverCert
      expect(dc.values.server.serverCert).toEqual({ secretName: 'consul-meshform-server-cert' });
      expect(secretData(dc.stack, 'consul-meshform-ca-bundle')).toBeDefined();
    }
  });

  it('loads server.extraConfig as agent configuration the chart renders with tpl (templates/server-tmp-extra-config-configmap.yaml): no template delimiter in it', () => {
    for (const dc of datacenters) {
      expect(dc.values.server.extraConfig).not.toContain('{{');
      expect(JSON.parse(dc.values.server.extraConfig)).toMatchObject({
        acl: { enabled: true, default_policy: 'deny' },
        tls: { internal_rpc: { verify_incoming: true, verify_server_hostname: true } },
      });
    }
  });

  it("mounts the service mesh CA provider's files where the servers' connect config reads them (templates/server-statefulset.yaml mounts server.extraVolumes at /consul/userconfig/<name>; load false keeps them out of the config dirs)", () => {
    // GIVEN Vault as the service mesh CA, with its TLS CA as a file (no example has one)
    const out = synth((app) => {
      const mesh = new Mesh(app, 'shop', {
        certificateAuthority: CertificateAuthority.vault({
          address: 'https://vault.example.com:8200',
          rootPkiPath: 'connect-root',
          kubernetesAuth: VaultAuth.kubernetesPerDatacenter({ role: 'consul-server' }),
          tlsCaCertificatePem: fs.readFileSync(path.join(REPO, 'test', 'fixtures', 'ca', 'vault-tls-ca.pem'), 'utf8'),
        }),
      });
      new KubernetesDatacenter(mesh, 'east', {
        primary: true,
        cluster: KubernetesCluster.fromKubeconfig({ context: 'east' }),
      });
    });
    const values = helmValues(out.stack('shop-east'));
    expect(values.server.extraVolumes).toEqual([{ type: 'secret', name: 'consul-meshform-ca-provider', load: false }]);
    expect(JSON.parse(values.server.extraConfig).connect.ca_config.ca_file).toBe(
      '/consul/userconfig/consul-meshform-ca-provider/vault-ca.pem',
    );
    expect(Object.keys(secretData(out.stack('shop-east'), 'consul-meshform-ca-provider')!)).toEqual(['vault-ca.pem']);
  });

  it("encrypts gossip with meshform's key from its own secret, never a chart-generated one (templates/server-statefulset.yaml reads GOSSIP_KEY from gossipEncryption.secretName/secretKey unless autoGenerate)", () => {
    for (const dc of datacenters) {
      const gossip = dc.values.global.gossipEncryption;
      expect(gossip).toEqual({ autoGenerate: false, secretName: 'consul-meshform-gossip-key', secretKey: 'key' });
      const mesh = dc.manifest.mesh.replace(/-/g, '_');
      expect(secretData(dc.stack, gossip.secretName)).toEqual({ key: `\${var.meshform_${mesh}_gossip_key}` });
    }
  });

  it('runs the declared servers, all expected at bootstrap, with the service mesh on and one server out at a time (templates/server-config-configmap.yaml connect.enabled from server.connect; server-disruptionbudget.yaml)', () => {
    for (const dc of datacenters) {
      const server = dc.values.server;
      const declared = dc.manifest.datacenters.find((d) => d.name === dc.values.global.datacenter)!.servers;
      expect(server).toMatchObject({ enabled: true, replicas: declared, bootstrapExpect: declared, connect: true });
      expect(server.disruptionBudget).toEqual({ enabled: declared > 1, maxUnavailable: 1 });
    }
  });

  it('gives the gateway Service its annotations as the YAML text the chart pastes through tpl (templates/mesh-gateway-service.yaml): every value a string, no template delimiter', () => {
    for (const dc of datacenters) {
      const annotations = dc.values.meshGateway.service.annotations;
      if (annotations === undefined) continue;
      expect(typeof annotations).toBe('string');
      expect(annotations).not.toContain('{{');
      // Terraform resolves its interpolations (e.g. the EKS Elastic IP allocation ids) before Helm reads the text
      const rendered = annotations.replace(/\$\{[^}]*\}/g, 'eipalloc-0123456789abcdef0,eipalloc-0123456789abcdef1');
      for (const value of Object.values(parseYaml(rendered) as object)) expect(typeof value).toBe('string');
    }
  });

  it('keeps injection opt-in and the UI inside the cluster (values.yaml connectInject.default; ui.service.type)', () => {
    expect(CHART_DEFAULTS.defaults['connectInject.default']).toBe(false);
    for (const dc of datacenters) {
      expect(dc.values.connectInject).toEqual({ enabled: true, default: false });
      expect(dc.values.ui).toEqual({ enabled: true, service: { type: 'ClusterIP' } });
    }
  });

  it('exposes agent metrics the chart scrapes (templates/server-config-configmap.yaml telemetry-config.json needs metrics.enabled and enableAgentMetrics)', () => {
    for (const dc of datacenters) {
      expect(dc.values.global.metrics).toEqual({
        enabled: true,
        enableAgentMetrics: true,
        agentMetricsRetentionTime: '1m',
        enableGatewayMetrics: true,
      });
    }
  });

  it('gives the servers a StorageClass only where the cluster has no usable default (templates/server-statefulset.yaml volumeClaimTemplates: storageClassName only when server.storageClass is set)', () => {
    for (const dc of datacenters) {
      const eks = Boolean(dc.stack.data?.aws_eks_cluster);
      expect(chartValue(dc.values, 'server.storageClass'), dc.stackName).toBe(
        eks ? 'meshform-ebs-gp3-encrypted' : null,
      );
    }
  });
});
