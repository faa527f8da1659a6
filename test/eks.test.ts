import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { StackWorkspace, terraformAvailability } from '../cli/terraform';
import type { App } from '../constructs/private/engine';
import { EksClusterOptions, KubernetesCluster, KubernetesDatacenter, Mesh, VmDatacenter } from '../index';
import { awsVmHosts, helmValues, onlyResource, resources, synth, tempDir, thrownMessage } from './support';

const terraform = terraformAvailability({ offline: true });

/** GIVEN helper: mesh `shop` with the primary `addPrimary` declares and an EKS secondary `west` in us-west-2. */
function withEksSecondary(addPrimary: (mesh: Mesh) => void, west: Partial<EksClusterOptions> = {}) {
  return (app: App) => {
    const mesh = new Mesh(app, 'shop');
    addPrimary(mesh);
    new KubernetesDatacenter(mesh, 'west', {
      cluster: KubernetesCluster.eks({
        region: 'us-west-2',
        vpcCidr: '10.11.0.0/16',
        apiPublicAccessCidrs: ['198.51.100.0/24'],
        ...west,
      }),
    });
  };
}

/** GIVEN helper: an EKS primary `east` (created by meshform) and an EKS secondary. */
function eksMesh(primary: Partial<EksClusterOptions> = {}, west: Partial<EksClusterOptions> = {}) {
  return withEksSecondary(
    (mesh) =>
      new KubernetesDatacenter(mesh, 'east', {
        primary: true,
        cluster: KubernetesCluster.eks({ region: 'us-east-1', vpcCidr: '10.10.0.0/16', ...primary }),
        meshGateway: { address: 'mgw.east.example.com' },
      }),
    west,
  );
}

describe('EKS clusters created by meshform', () => {
  it('puts the cluster in an infra stack the Consul stack deploys after', () => {
    const out = synth(eksMesh());
    expect(out.stackNames().sort()).toEqual([
      'shop-east',
      'shop-east-config',
      'shop-east-infra',
      'shop-west',
      'shop-west-infra',
    ]);
    expect(out.manifest.stacks['shop-east']!.dependencies).toEqual(['shop-east-infra']);
    expect(out.manifest.stacks['shop-east-config']!.dependencies).toEqual(['shop-east']);
    expect(out.manifest.stacks['shop-west']!.dependencies.sort()).toEqual(['shop-east', 'shop-west-infra']);
    // the secondary's API admits the primary's NAT addresses, which its lookup finds once the primary's network exists
    expect(out.manifest.stacks['shop-west-infra']!.dependencies).toEqual(['shop-east-infra']);
    expect(out.mesh('shop').deployOrder).toEqual([
      'shop-east-infra',
      'shop-east',
      'shop-east-config',
      'shop-west-infra',
      'shop-west',
    ]);
  });

  it('encrypts Kubernetes secrets with its own KMS key, logs the control plane and keeps the API private by default', () => {
    const infra = synth(eksMesh()).stack('shop-east-infra');
    expect(onlyResource(infra, 'aws_eks_cluster')).toMatchObject({
      name: 'shop-east',
      version: '1.33',
      vpc_config: { endpoint_private_access: true, endpoint_public_access: false },
      encryption_config: { resources: ['secrets'], provider: { key_arn: '${aws_kms_key.SecretsKey.arn}' } },
      enabled_cluster_log_types: ['api', 'audit', 'authenticator', 'controllerManager', 'scheduler'],
      access_config: { authentication_mode: 'API', bootstrap_cluster_creator_admin_permissions: true },
    });
    expect(onlyResource(infra, 'aws_kms_key')).toMatchObject({ enable_key_rotation: true });
    const west = synth(eksMesh()).stack('shop-west-infra');
    expect(onlyResource(west, 'aws_eks_cluster')).toMatchObject({
      vpc_config: {
        endpoint_public_access: true,
        public_access_cidrs:
          '${distinct(concat(["198.51.100.0/24"], formatlist("%s/32", data.aws_eips.PrimaryEgress.public_ips)))}',
      },
    });
  });

  it("admits the primary's NAT addresses to a secondary's API allow-list, found by tag in the primary's region (consul-k8s v2.0.3 templates/server-acl-init-job.yaml: the primary's servers call k8sAuthMethodHost)", () => {
    // GIVEN an EKS primary in us-east-1 and an EKS secondary in us-west-2 (eksMesh)
    const out = synth(eksMesh());
    const west = out.stack('shop-west-infra');
    // THEN the lookup runs through a second provider in the primary's region, on the primary's egress tags
    expect(west.provider!.aws).toEqual([
      expect.objectContaining({ region: 'us-west-2' }),
      expect.objectContaining({ alias: 'egress-us-east-1', region: 'us-east-1' }),
    ]);
    expect(west.data!.aws_eips!.PrimaryEgress).toMatchObject({
      provider: 'aws.egress-us-east-1',
      filter: [
        { name: 'tag:meshform:egress', values: ['nat'] },
        { name: 'tag:meshform:mesh', values: ['shop'] },
        { name: 'tag:meshform:datacenter', values: ['east'] },
        { name: 'tag:managed-by', values: ['meshform'] },
      ],
    });
    // AND every NAT Elastic IP of the primary's network carries those tags (the provider's default tags add mesh,
    // datacenter and managed-by), and the infra stack outputs their addresses
    const east = out.stack('shop-east-infra');
    const nat = resources(east, 'aws_eip').filter((e) => !(e.tags as { [k: string]: string })['meshform:mesh-gateway']);
    expect(nat.length).toBeGreaterThan(0);
    for (const e of nat) expect(e.tags).toMatchObject({ 'meshform:egress': 'nat' });
    expect(east.provider!.aws).toEqual([
      expect.objectContaining({
        default_tags: [{ tags: { 'managed-by': 'meshform', 'meshform:datacenter': 'east', 'meshform:mesh': 'shop' } }],
      }),
    ]);
    // the network's own output (AwsNetwork): the addresses the cluster's nodes and pods leave from
    expect(east.output!.egress_addresses!.value).toEqual(
      expect.arrayContaining([expect.stringMatching(/^\$\{aws_eip\.Network_NatAddress.*\.public_ip\}$/)]),
    );
    expect(out.mesh('shop').federation[0]!.login).toEqual({
      apiServer: 'the EKS API endpoint of shop-west',
      reach: 'meshform',
      note: "meshform adds east's NAT addresses (the Elastic IPs tagged meshform:egress=nat of east in us-east-1) to the API allow-list it manages",
    });
  });

  it("admits the NAT addresses of a VM primary on a new VPC, in the same region through the stack's own provider", () => {
    const out = synth(
      withEksSecondary(
        (mesh) =>
          new VmDatacenter(mesh, 'vms', {
            primary: true,
            meshGateway: { address: 'mgw.vms.example.com' },
            hosts: awsVmHosts({ region: 'us-west-2' }),
          }),
      ),
    );
    const west = out.stack('shop-west-infra');
    expect(west.provider!.aws).toHaveLength(1);
    expect(west.data!.aws_eips!.PrimaryEgress).toMatchObject({
      filter: expect.arrayContaining([{ name: 'tag:meshform:datacenter', values: ['vms'] }]),
    });
    expect(west.data!.aws_eips!.PrimaryEgress!.provider).toBeUndefined();
    expect(out.manifest.stacks['shop-west-infra']!.dependencies).toEqual(['shop-vms']);
    // the VM network is an AwsNetwork too: its NAT addresses carry the tag the lookup filters on
    const nat = resources(out.stack('shop-vms'), 'aws_eip').filter(
      (e) => (e.tags as { [k: string]: string })['meshform:egress'] === 'nat',
    );
    expect(nat.length).toBeGreaterThan(0);
  });

  it.skipIf(!terraform.ok)(
    "passes terraform validate with the primary's egress lookup (a second AWS provider, a data source in the allow-list)",
    async () => {
      if (!terraform.ok) return;
      const out = synth(eksMesh());
      const ws = new StackWorkspace(
        path.join(out.outdir, 'stacks', 'shop-west-infra'),
        terraform.env,
        { offline: true },
        tempDir('meshform-validate-'),
      );
      const init = await ws.run(['init', '-no-color', '-input=false', '-backend=false']);
      expect(init.code, `${init.stdout}${init.stderr}`).toBe(0);
      const validate = await ws.run(['validate', '-no-color']);
      expect(validate.code, `${validate.stdout}${validate.stderr}`).toBe(0);
    },
    600_000,
  );

  it("keeps a secondary's declared allow-list when meshform does not know the primary's egress, and says the logins are unproven", () => {
    const out = synth(
      withEksSecondary(
        (mesh) =>
          new KubernetesDatacenter(mesh, 'east', {
            primary: true,
            cluster: KubernetesCluster.fromKubeconfig({ context: 'east' }),
            meshGateway: { address: 'mgw.east.example.com' },
          }),
      ),
    );
    const west = out.stack('shop-west-infra');
    expect(onlyResource(west, 'aws_eks_cluster')).toMatchObject({
      vpc_config: { public_access_cidrs: ['198.51.100.0/24'] },
    });
    expect(west.data?.aws_eips).toBeUndefined();
    expect(out.manifest.stacks['shop-west-infra']!.dependencies).toEqual([]);
    expect(out.mesh('shop').federation[0]!.login).toEqual({
      apiServer: 'the EKS API endpoint of shop-west',
      reach: 'unproven',
      note:
        "meshform manages this API allow-list but does not know the addresses east's Consul servers leave their network from: " +
        "the primary's logins to this datacenter's auth method are not proven",
      fix:
        "admit the addresses east's Consul servers leave their network from in the API server's allow-list (apiPublicAccessCidrs), " +
        'then declare it with KubernetesCluster.eks({ ..., apiServerAdmitsPrimary: true })',
    });
  });

  it("refuses a secondary whose API endpoint is private: the primary's servers could not log its components in", () => {
    const message = thrownMessage(() => synth(eksMesh({}, { apiPublicAccessCidrs: [] })));
    expect(message).toBe(
      '[shop/west] secondary datacenter "west" keeps its EKS API endpoint private, but east\'s Consul servers call it for every ' +
        'login through its ACL auth method (global.federation.k8sAuthMethodHost), from outside its VPC: []. ' +
        'Fix: set `apiPublicAccessCidrs` in `KubernetesCluster.eks({ ... })` to the networks you deploy from; meshform adds the ' +
        "NAT addresses of east when it creates east's network, else add them yourself and set apiServerAdmitsPrimary: true",
    );
  });

  it("gives the Consul servers an encrypted gp3 StorageClass of the EBS CSI driver: EKS 1.33 has no default class, and the add-on's own (kubernetes-sigs/aws-ebs-csi-driver charts/aws-ebs-csi-driver/templates/ebs-csi-default-sc.yaml) sets no `encrypted` (docs/parameters.md: default false)", () => {
    const consul = synth(eksMesh()).stack('shop-east');
    expect(onlyResource(consul, 'kubernetes_storage_class_v1')).toMatchObject({
      metadata: { name: 'meshform-ebs-gp3-encrypted' },
      storage_provisioner: 'ebs.csi.aws.com',
      parameters: { type: 'gp3', encrypted: 'true', 'csi.storage.k8s.io/fstype': 'ext4' },
      volume_binding_mode: 'WaitForFirstConsumer',
      allow_volume_expansion: true,
    });
    // consul-k8s v2.0.3 templates/server-statefulset.yaml: volumeClaimTemplates take server.storageClass
    expect(helmValues(consul).server.storageClass).toBe('meshform-ebs-gp3-encrypted');
    expect(onlyResource(consul, 'helm_release').depends_on).toContain('kubernetes_storage_class_v1.ServerStorageClass');
  });

  it('uses the StorageClass the datacenter names instead, creating none', () => {
    const consul = synth((app) => {
      const mesh = new Mesh(app, 'shop');
      new KubernetesDatacenter(mesh, 'east', {
        primary: true,
        cluster: KubernetesCluster.eks({ region: 'us-east-1', vpcCidr: '10.10.0.0/16' }),
        serverStorageClass: 'io2-fast',
      });
    }).stack('shop-east');
    expect(consul.resource?.kubernetes_storage_class_v1).toBeUndefined();
    expect(helmValues(consul).server.storageClass).toBe('io2-fast');
  });

  it('runs nodes with IMDSv2 required and encrypted root volumes', () => {
    const infra = synth(eksMesh()).stack('shop-east-infra');
    expect(onlyResource(infra, 'aws_launch_template')).toMatchObject({
      metadata_options: { http_endpoint: 'enabled', http_tokens: 'required', http_put_response_hop_limit: 2 },
      block_device_mappings: [{ device_name: '/dev/xvda', ebs: { encrypted: 'true', volume_type: 'gp3' } }],
    });
    expect(onlyResource(infra, 'aws_eks_node_group')).toMatchObject({
      scaling_config: { desired_size: 3, min_size: 3, max_size: 4 },
      instance_types: ['m6i.large'],
      update_config: { max_unavailable: 1 },
    });
  });

  it('installs the EBS CSI driver with a pod identity, for the Consul servers volumes', () => {
    const infra = synth(eksMesh()).stack('shop-east-infra');
    expect(
      resources(infra, 'aws_eks_addon')
        .map((a) => a.addon_name)
        .sort(),
    ).toEqual(['aws-ebs-csi-driver', 'coredns', 'eks-pod-identity-agent', 'kube-proxy', 'vpc-cni']);
    expect(onlyResource(infra, 'aws_eks_pod_identity_association')).toMatchObject({
      namespace: 'kube-system',
      service_account: 'ebs-csi-controller-sa',
    });
  });

  it('allocates an Elastic IP per zone for the mesh gateway and publishes the declared address when given a zone', () => {
    const infra = synth(eksMesh({ hostedZoneId: 'Z1EXAMPLE' })).stack('shop-east-infra');
    const gatewayIps = resources(infra, 'aws_eip').filter(
      (e) => (e.tags as { [k: string]: string })['meshform:mesh-gateway'],
    );
    expect(gatewayIps).toHaveLength(3);
    expect(onlyResource(infra, 'aws_route53_record')).toMatchObject({
      zone_id: 'Z1EXAMPLE',
      name: 'mgw.east.example.com',
      type: 'A',
      ttl: 60,
    });
  });

  it('reaches the cluster from the Consul stack by name, with aws eks get-token, reading no state', () => {
    const consul = synth(eksMesh()).stack('shop-west');
    expect(consul.data!.aws_eks_cluster!.Cluster).toEqual(expect.objectContaining({ name: 'shop-west' }));
    expect(consul.provider!.kubernetes).toEqual([
      {
        host: '${data.aws_eks_cluster.Cluster.endpoint}',
        cluster_ca_certificate: '${base64decode(data.aws_eks_cluster.Cluster.certificate_authority[0].data)}',
        exec: [
          {
            api_version: 'client.authentication.k8s.io/v1beta1',
            command: 'aws',
            args: ['eks', 'get-token', '--cluster-name', 'shop-west', '--region', 'us-west-2'],
          },
        ],
      },
    ]);
    expect(JSON.stringify(consul)).not.toContain('terraform_remote_state');
    const values = helmValues(consul);
    expect(values.global.federation.k8sAuthMethodHost).toBe('${data.aws_eks_cluster.Cluster.endpoint}');
    expect(values.meshGateway.service.annotations).toBe(
      '"service.beta.kubernetes.io/aws-load-balancer-eip-allocations": "${join(",", data.aws_eips.GatewayAddresses.allocation_ids)}"\n' +
        '"service.beta.kubernetes.io/aws-load-balancer-type": "nlb"\n',
    );
  });

  it('validates the cluster options', () => {
    const error = (options: Partial<EksClusterOptions>, servers = 3) =>
      thrownMessage(() =>
        synth((app) => {
          const mesh = new Mesh(app, 'shop');
          new KubernetesDatacenter(mesh, 'east', {
            primary: true,
            servers,
            cluster: KubernetesCluster.eks({ region: 'us-east-1', vpcCidr: '10.10.0.0/16', ...options }),
          });
        }),
      );
    expect(error({ vpcCidr: '10.10.0.0/22' })).toBe(
      '[shop/east] VPC CIDR has a prefix outside /16-/20: "10.10.0.0/22". Fix: use a block from /16 to /20, so that every zone gets a public and a private subnet',
    );
    expect(error({ nodes: 3 }, 5)).toBe(
      '[shop/east] the cluster has fewer worker nodes than Consul servers (5), which run on distinct nodes: 3. Fix: give the cluster at least 5 nodes',
    );
    expect(error({ region: 'useast' })).toBe(
      '[shop/east] AWS region is not valid: "useast". Fix: give an AWS region such as "us-east-1"',
    );
  });
});
