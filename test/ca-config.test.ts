import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { App } from '../constructs/private/engine';
import {
  CertificateAuthority,
  HostRole,
  KubernetesCluster,
  KubernetesDatacenter,
  MachineImage,
  Mesh,
  VaultAuth,
  VmDatacenter,
  VmHosts,
  VmNetwork,
} from '../index';
import { helmValues, resources, synth, tempDir, thrownMessage } from './support';

const PCA = 'arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555';
const PCA_WEST = 'arn:aws:acm-pca:us-west-2:123456789012:certificate-authority/66666666-7777-8888-9999-000000000000';

/** A CA certificate (public) as a Vault TLS CA would be. */
const VAULT_TLS_CA = fs.readFileSync(path.join(__dirname, 'fixtures', 'ca', 'vault-tls-ca.pem'), 'utf8');

/** GIVEN helper: a two-datacenter Kubernetes mesh with `ca`, synthesized into a fresh directory. */
function twoClusters(ca: CertificateAuthority, outdir = path.join(tempDir(), 'cdktf.out')) {
  return synth((app) => {
    const mesh = new Mesh(app, 'shop', { certificateAuthority: ca });
    new KubernetesDatacenter(mesh, 'east', {
      primary: true,
      cluster: KubernetesCluster.fromKubeconfig({ context: 'east' }),
      meshGateway: { address: 'mgw.east.example.com' },
    });
    new KubernetesDatacenter(mesh, 'west', {
      cluster: KubernetesCluster.fromKubeconfig({ context: 'west', apiServerUrl: 'https://198.51.100.7' }),
    });
  }, outdir);
}

/** WHEN helper: the error synthesizing `ca` raises; THEN nothing was written. */
function caError(ca: () => CertificateAuthority, extra?: (app: App, mesh: Mesh) => void): string {
  const outdir = path.join(tempDir(), 'cdktf.out');
  const message = thrownMessage(() =>
    synth((app) => {
      const mesh = new Mesh(app, 'shop', { certificateAuthority: ca() });
      new KubernetesDatacenter(mesh, 'east', {
        primary: true,
        cluster: KubernetesCluster.fromKubeconfig({ context: 'east' }),
        meshGateway: { address: 'mgw.east.example.com' },
      });
      extra?.(app, mesh);
    }, outdir),
  );
  expect(fs.existsSync(path.join(outdir, 'manifest.json'))).toBe(false);
  const stacks = path.join(outdir, 'stacks');
  expect(fs.existsSync(stacks) ? fs.readdirSync(stacks) : []).toEqual([]);
  return message;
}

describe('certificate authority settings, checked at synth', () => {
  it.each([
    [
      'server outlives its intermediate',
      { serverCertificateValidityDays: 1200 },
      '[shop] agent TLS lifetimes must grow from leaf to intermediate to root: "server 1200d, intermediate 1095d, root 3650d". ' +
        'Fix: make each certificate outlive the ones it issues (leaf < intermediate < root)',
    ],
    [
      'intermediate outlives the root',
      { rootValidityDays: 1000 },
      '[shop] agent TLS lifetimes must grow from leaf to intermediate to root: "server 365d, intermediate 1095d, root 1000d". ' +
        'Fix: make each certificate outlive the ones it issues (leaf < intermediate < root)',
    ],
    [
      'service mesh leaf outlives its intermediate',
      { meshLeafTtlHours: 9000 },
      '[shop] service mesh lifetimes must grow from leaf to intermediate to root: "leaf 9000h, intermediate 8760h, root 87600h". ' +
        'Fix: make each certificate outlive the ones it issues (leaf < intermediate < root)',
    ],
    [
      'rotation window as long as a server certificate',
      { rotationWindowDays: 365 },
      '[shop] the rotation window (365 days) is not shorter than the server certificate lifetime (365 days): every certificate would always be due: 365. ' +
        'Fix: shorten rotationWindowDays or lengthen serverCertificateValidityDays',
    ],
    [
      'a zero lifetime',
      { rootValidityDays: 0 },
      '[shop] rootValidityDays must be a whole number from 1 to 36500: 0. Fix: use a whole number from 1 to 36500',
    ],
    [
      'a root id that is not one',
      { root: 'Root_2' },
      '[shop] root is not a root id: "Root_2". Fix: use lowercase letters, digits and hyphens (e.g. "root-2")',
    ],
    [
      'rotation to the same root',
      { root: 'root-2', previousRoot: 'root-2' },
      '[shop] previousRoot is the active root: "root-2". Fix: set `root` to the new root\'s id and `previousRoot` to the one being retired',
    ],
    [
      'rotation without cross-signing, not forced',
      { root: 'root-2', previousRoot: 'root-1', crossSign: false },
      '[shop] rotating the root from root-1 to root-2 without cross-signing is refused: datacenters still on root-1 would reject the new chains: ' +
        '{"previousRoot":"root-1","root":"root-2","crossSign":false}. ' +
        'Fix: keep `crossSign: true` (the default), or set `allowRotationWithoutCrossSigning: true` to accept the outage',
    ],
  ])('rejects %s, writing nothing', (_what, options, expected) => {
    expect(caError(() => CertificateAuthority.offline(options))).toBe(expected);
  });

  it('accepts a rotation without cross-signing when it is explicitly forced', () => {
    const out = twoClusters(
      CertificateAuthority.offline({
        root: 'root-2',
        previousRoot: 'root-1',
        crossSign: false,
        allowRotationWithoutCrossSigning: true,
      }),
    );
    expect(out.mesh('shop').ca.plan).toMatchObject({ root: 'root-2', previousRoot: 'root-1', crossSign: false });
  });

  describe('Vault', () => {
    const vault = (extra: Partial<Parameters<typeof CertificateAuthority.vault>[0]> = {}) =>
      CertificateAuthority.vault({
        address: 'https://vault.example.com:8200',
        rootPkiPath: 'connect-root',
        kubernetesAuth: VaultAuth.kubernetesPerDatacenter({ role: 'consul-server' }),
        ...extra,
      });

    it("configures each datacenter's servers with its own intermediate mount and auth mount", () => {
      const out = twoClusters(vault({ tlsCaCertificatePem: VAULT_TLS_CA, namespace: 'payments' }));
      for (const dc of ['east', 'west']) {
        const connect = JSON.parse(helmValues(out.stack(`shop-${dc}`)).server.extraConfig).connect;
        expect(connect).toEqual({
          enabled: true,
          ca_provider: 'vault',
          ca_config: {
            address: 'https://vault.example.com:8200',
            root_pki_path: 'connect-root',
            intermediate_pki_path: `connect-intermediate-${dc}`,
            auth_method: { type: 'kubernetes', mount_path: `kubernetes-${dc}`, params: { role: 'consul-server' } },
            namespace: 'payments',
            ca_file: '/consul/userconfig/consul-meshform-ca-provider/vault-ca.pem',
            leaf_cert_ttl: '72h',
            intermediate_cert_ttl: '8760h',
            private_key_type: 'ec',
            private_key_bits: 256,
          },
        });
      }
    });

    it("puts Vault's TLS CA in its own secret, mounted (not loaded) by the servers", () => {
      const out = twoClusters(vault({ tlsCaCertificatePem: VAULT_TLS_CA }));
      const stack = out.stack('shop-west');
      const secret = resources(stack, 'kubernetes_secret_v1').find(
        (s) => (s.metadata as { name: string }).name === 'consul-meshform-ca-provider',
      );
      expect(secret).toMatchObject({ type: 'Opaque', data: { 'vault-ca.pem': VAULT_TLS_CA } });
      expect(helmValues(stack).server.extraVolumes).toEqual([
        { type: 'secret', name: 'consul-meshform-ca-provider', load: false },
      ]);
      expect(resources(stack, 'helm_release')[0]!.depends_on).toContain(
        'kubernetes_secret_v1.ControlPlane_CaProviderFiles_8D07A3F9',
      );
    });

    it("writes the CA configuration as Consul's API takes it, for a change after the first deploy", () => {
      const out = twoClusters(vault({ tlsCaCertificatePem: VAULT_TLS_CA }));
      expect(JSON.parse(fs.readFileSync(path.join(out.outdir, 'meshform', 'connect-ca', 'shop.json'), 'utf8'))).toEqual(
        {
          Provider: 'vault',
          Config: {
            Address: 'https://vault.example.com:8200',
            RootPKIPath: 'connect-root',
            IntermediatePKIPath: 'connect-intermediate-east',
            AuthMethod: { Type: 'kubernetes', MountPath: 'kubernetes-east', Params: { role: 'consul-server' } },
            CAFile: '/consul/userconfig/consul-meshform-ca-provider/vault-ca.pem',
            LeafCertTTL: '72h',
            IntermediateCertTTL: '8760h',
            PrivateKeyType: 'ec',
            PrivateKeyBits: 256,
          },
        },
      );
    });

    it("gives EC2 servers Vault's TLS CA as a file and logs in with their instance role", () => {
      const out = synth((app) => {
        const mesh = new Mesh(app, 'shop', {
          certificateAuthority: vault({
            tlsCaCertificatePem: VAULT_TLS_CA,
            awsAuth: VaultAuth.aws({ role: 'consul-server' }),
          }),
        });
        new KubernetesDatacenter(mesh, 'east', {
          primary: true,
          cluster: KubernetesCluster.fromKubeconfig({ context: 'east' }),
          meshGateway: { address: 'mgw.east.example.com' },
        });
        new VmDatacenter(mesh, 'vms', {
          hosts: VmHosts.onAws({
            region: 'eu-west-1',
            network: VmNetwork.newVpc({ cidr: '10.20.0.0/16' }),
            machineImage: MachineImage.fromId('ami-0123456789abcdef0'),
          }),
        });
      });
      const files = out.files();
      const server = files.get('stacks/shop-vms/hosts/server/cloud-init.yaml')!;
      expect(server).toContain('path: /etc/consul.d/ca-provider/vault-ca.pem');
      expect(files.get('stacks/shop-vms/hosts/mesh-gateway/cloud-init.yaml')).not.toContain('vault-ca.pem');
      expect(server).toContain('ca_file = "/etc/consul.d/ca-provider/vault-ca.pem"');
      expect(server).toMatch(
        /auth_method \{\s+type = "aws"\s+mount_path = "aws"\s+params \{\s+type = "iam"\s+role = "consul-server"/,
      );
    });

    it.each([
      [
        'an http address',
        () => vault({ address: 'http://vault.example.com:8200' }),
        '[shop] Vault address is not an https:// URL: "http://vault.example.com:8200". Fix: give an absolute https:// URL, e.g. "https://203.0.113.10:6443"',
      ],
      [
        'an empty root mount',
        () => vault({ rootPkiPath: ' ' }),
        '[shop] rootPkiPath must not be empty: "". Fix: set rootPkiPath',
      ],
      [
        'no way for Kubernetes servers to log in',
        () => vault({ kubernetesAuth: undefined }),
        '[shop] datacenter "east" has no way to authenticate to Vault: "kubernetesAuth". Fix: set `kubernetesAuth` of CertificateAuthority.vault({...}) (VaultAuth.kubernetes({ role }))',
      ],
      [
        "a private key pasted as Vault's TLS CA",
        () =>
          vault({
            tlsCaCertificatePem: `${VAULT_TLS_CA}-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n`,
          }),
        '[shop] tlsCaCertificatePem must hold PEM CA certificates (CA:TRUE) and nothing else: "(PEM, not shown)". ' +
          "Fix: give the CA certificate that issued Vault's TLS certificate (e.g. `vault read -field=certificate pki/cert/ca`)",
      ],
    ])('rejects %s', (_what, ca, expected) => {
      expect(caError(ca)).toBe(expected);
    });

    it('rejects a datacenter on your own hosts: they have no identity Vault can verify', () => {
      expect(
        caError(
          () => vault(),
          (_app, mesh) =>
            new VmDatacenter(mesh, 'dc2', {
              hosts: VmHosts.existing([
                { name: 's1', address: '10.0.0.1', role: HostRole.SERVER },
                { name: 's2', address: '10.0.0.2', role: HostRole.SERVER },
                { name: 's3', address: '10.0.0.3', role: HostRole.SERVER },
                { name: 'g1', address: '10.0.0.4', role: HostRole.MESH_GATEWAY },
              ]),
            }),
        ),
      ).toBe(
        '[shop] datacenter "dc2" runs on your own hosts, which have no identity Vault can verify (Kubernetes or AWS IAM): "dc2". ' +
          'Fix: use CertificateAuthority.offline() or awsPrivateCa() for this mesh, or run the datacenter on Kubernetes or EC2',
      );
    });
  });

  describe('AWS Private CA', () => {
    it('points each datacenter at its own private CA, and warns where meshform cannot grant credentials', () => {
      const out = twoClusters(
        CertificateAuthority.awsPrivateCa({ primaryCaArn: PCA, secondaryCaArns: { west: PCA_WEST } }),
      );
      expect(JSON.parse(helmValues(out.stack('shop-east')).server.extraConfig).connect.ca_config).toEqual({
        existing_arn: PCA,
        leaf_cert_ttl: '72h',
        intermediate_cert_ttl: '8760h',
        private_key_type: 'ec',
        private_key_bits: 256,
      });
      expect(JSON.parse(helmValues(out.stack('shop-west')).server.extraConfig).connect.ca_config.existing_arn).toBe(
        PCA_WEST,
      );
      expect(out.mesh('shop').warnings.map((w) => `${w.id} ${w.path}`)).toEqual([
        'meshform/aws-pca-credentials shop/east',
        'meshform/aws-pca-credentials shop/west',
      ]);
      expect(out.mesh('shop').ca.meshCa).toEqual({
        provider: 'aws-pca',
        root: { existing_arn: PCA },
        canCrossSign: false,
        allowRotationWithoutCrossSigning: false,
      });
    });

    it('lets the servers use their private CA: EKS pod identity for consul-server, EC2 server instance role; creation rights only without an ARN', () => {
      const out = synth((app) => {
        const mesh = new Mesh(app, 'shop', {
          certificateAuthority: CertificateAuthority.awsPrivateCa({ primaryCaArn: PCA }),
        });
        new KubernetesDatacenter(mesh, 'east', {
          primary: true,
          cluster: KubernetesCluster.eks({
            region: 'us-east-1',
            vpcCidr: '10.10.0.0/16',
            apiPublicAccessCidrs: ['203.0.113.0/24'],
          }),
          meshGateway: { address: 'mgw.east.example.com' },
        });
        new VmDatacenter(mesh, 'vms', {
          hosts: VmHosts.onAws({
            region: 'us-east-1',
            network: VmNetwork.newVpc({ cidr: '10.20.0.0/16' }),
            machineImage: MachineImage.fromId('ami-0123456789abcdef0'),
          }),
        });
      });
      const infra = out.stack('shop-east-infra');
      expect(resources(infra, 'aws_eks_pod_identity_association')).toContainEqual(
        expect.objectContaining({
          namespace: 'consul',
          service_account: 'consul-server',
          role_arn: '${aws_iam_role.ConsulServerRole.arn}',
        }),
      );
      const serverPolicy = resources(infra, 'aws_iam_role_policy').find((p) => p.name === 'meshform-consul-server')!
        .policy as string;
      expect(serverPolicy).toContain(
        '"Action" = ["acm-pca:DescribeCertificateAuthority", "acm-pca:GetCertificate", "acm-pca:GetCertificateAuthorityCertificate", "acm-pca:IssueCertificate"]',
      );
      expect(serverPolicy).toContain(`"Resource" = "${PCA}"`);
      expect(serverPolicy).not.toContain('CreateCertificateAuthority');
      // the EC2 secondary has no ARN: Consul creates its subordinate CA, which IAM cannot scope
      const vmPolicies = resources(out.stack('shop-vms'), 'aws_iam_role_policy').map((p) => JSON.stringify(p.policy));
      const server = vmPolicies.filter((p) => p.includes('ServiceMeshCaSubordinate'));
      expect(server).toHaveLength(1);
      expect(server[0]).toContain('acm-pca:CreateCertificateAuthority');
      expect(vmPolicies.filter((p) => p.includes('acm-pca')).length).toBe(1);
      expect(out.mesh('shop').warnings.map((w) => w.id)).toEqual(['meshform/aws-pca-subordinate-by-consul']);
    });

    it.each([
      [
        'a primary ARN that is not one',
        { primaryCaArn: 'arn:aws:s3:::bucket' },
        '[shop] primaryCaArn is not an AWS Private CA ARN: "arn:aws:s3:::bucket". Fix: give arn:aws:acm-pca:<region>:<account>:certificate-authority/<id>',
      ],
      [
        "a secondary that reuses the primary's root CA (another trust root)",
        { primaryCaArn: PCA, secondaryCaArns: { west: PCA } },
        '[shop] datacenter "west" uses the primary\'s root CA as its subordinate: every datacenter must share the primary\'s trust root: "west". ' +
          'Fix: chain every datacenter to the one mesh root (one root CA in the primary, subordinates elsewhere)',
      ],
      [
        'the primary listed as a secondary',
        { primaryCaArn: PCA, secondaryCaArns: { east: PCA_WEST } },
        '[shop] datacenter "east" is the primary: set its CA with primaryCaArn: every datacenter must share the primary\'s trust root: "east". ' +
          'Fix: chain every datacenter to the one mesh root (one root CA in the primary, subordinates elsewhere)',
      ],
    ])('rejects %s', (_what, options, expected) => {
      expect(
        caError(
          () => CertificateAuthority.awsPrivateCa(options),
          (_app, mesh) =>
            new KubernetesDatacenter(mesh, 'west', {
              cluster: KubernetesCluster.fromKubeconfig({ context: 'west', apiServerUrl: 'https://198.51.100.7' }),
            }),
        ),
      ).toBe(expected);
    });

    it('rejects an ARN for a datacenter the mesh does not have', () => {
      expect(
        caError(() => CertificateAuthority.awsPrivateCa({ primaryCaArn: PCA, secondaryCaArns: { north: PCA_WEST } })),
      ).toBe('[shop] no datacenter of the mesh has this name: "north". Fix: use one of "east"');
    });
  });
});
