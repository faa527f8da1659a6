/**
 * The embedded default: one mesh over three datacenters in two clouds and two platforms.
 *
 *   aws-us-east      EKS cluster meshform creates (VPC, cluster, nodes) — the primary
 *   gcp-europe-west  an existing GKE cluster, reached by kubeconfig context "gke-europe-west"
 *   aws-vms          Consul on EC2 VMs meshform creates, running the `db` service with an Envoy sidecar
 *
 * and a small app over them: web → api (a v1/v2 canary, failing over to gcp-europe-west) → db on the VMs.
 *
 * The primary's mesh gateway is published at a stable DNS name (point it at the Elastic IPs the infra stack
 * outputs), so the other datacenters are planned and installed without reading the primary's state.
 * `npm start` synthesizes it; `npx cdktf synth` produces the same stacks.
 */
import {
  App,
  CertificateAuthority,
  CertificateKeyAlgorithm,
  Cloud,
  GatewayExposure,
  HttpPermission,
  KubernetesCluster,
  KubernetesDatacenter,
  MachineImage,
  Mesh,
  Service,
  ServiceProtocol,
  VmDatacenter,
  VmHosts,
  VmNetwork,
} from '../../index';

/** Declares the default mesh in `app`. */
export function defineDefaultMesh(app: App): Mesh {
  const mesh = new Mesh(app, 'shop', {
    consulVersion: '2.0.3',
    domain: 'consul',
    // The agent TLS root stays in meshform's local store (never in Terraform state or a cluster); each
    // datacenter gets its own intermediate and server certificate. Consul's built-in CA runs the mesh's mTLS.
    certificateAuthority: CertificateAuthority.offline({
      root: 'root-1',
      keyAlgorithm: CertificateKeyAlgorithm.EC_P256,
      rotationWindowDays: 90,
    }),
  });

  const east = new KubernetesDatacenter(mesh, 'aws-us-east', {
    primary: true,
    cloud: Cloud.AWS,
    cluster: KubernetesCluster.eks({
      region: 'us-east-1',
      vpcCidr: '10.10.0.0/16',
      // Who may reach the cluster's API: the network you deploy from (here a documentation range).
      apiPublicAccessCidrs: ['203.0.113.0/24'],
    }),
    servers: 3,
    meshGateway: { address: 'mgw.aws-us-east.shop.example.com' },
  });

  const west = new KubernetesDatacenter(mesh, 'gcp-europe-west', {
    cloud: Cloud.GOOGLE_CLOUD,
    cluster: KubernetesCluster.fromKubeconfig({
      context: 'gke-europe-west',
      apiServerUrl: 'https://203.0.113.20',
      // The cluster's authorized networks hold aws-us-east's NAT addresses (the egress_addresses output of
      // shop-aws-us-east-infra): aws-us-east's Consul servers call this API for every login of gcp-europe-west.
      apiServerAdmitsPrimary: true,
    }),
    servers: 3,
    meshGateway: { serviceAnnotations: { 'cloud.google.com/l4-rbs': 'enabled' } },
  });

  const vms = new VmDatacenter(mesh, 'aws-vms', {
    cloud: Cloud.AWS,
    servers: 3,
    // A stable name for the gateway load balancer: create this DNS record (a CNAME to the load balancer's
    // name, output as mesh_gateway_wan_address), or give GatewayExposure a Route 53 zone to have it created.
    meshGateway: { address: 'mgw.aws-vms.shop.example.com' },
    hosts: VmHosts.onAws({
      region: 'us-east-1',
      network: VmNetwork.newVpc({ cidr: '10.20.0.0/16' }),
      // Debian 12 (debian-12-amd64-20250316-2053, published by Debian, account 136693071363). AMI ids are per
      // region: use your region's current one, or MachineImage.debian12() to look it up at plan time.
      machineImage: MachineImage.fromId('ami-064cdd2e89aa1b4fb'),
      // The other datacenters are in other networks and clouds: the gateway port faces the internet, on
      // purpose (mTLS end to end; nothing else is exposed).
      gatewayExposure: GatewayExposure.networkLoadBalancer({ internetFacing: true, allowedCidrs: ['0.0.0.0/0'] }),
    }),
  });

  // A small app over the three datacenters: web → api → db. Everything is denied unless allowed below.
  const db = new Service(mesh, 'db', { port: 5432, protocol: ServiceProtocol.TCP, datacenters: [vms] });
  const api = new Service(mesh, 'api', {
    port: 9090,
    protocol: ServiceProtocol.HTTP,
    datacenters: [east, west],
    // two versions, told apart by the pods' `version` metadata; v1 gets what no split or route sends elsewhere
    subsets: [
      { name: 'v1', filter: 'Service.Meta.version == v1', onlyPassing: true },
      { name: 'v2', filter: 'Service.Meta.version == v2', onlyPassing: true },
    ],
    defaultSubset: 'v1',
    // callers in aws-us-east fail over to gcp-europe-west when no api instance is healthy there
    failover: [west],
    connectTimeoutMs: 2000,
    requestTimeoutMs: 3000,
    retries: { attempts: 2, onStatusCodes: [503] },
    circuitBreaker: { maxPendingRequests: 256, outlierDetection: { consecutive5xx: 5 } },
  });
  const web = new Service(mesh, 'web', { port: 8080, protocol: ServiceProtocol.HTTP, datacenters: [east, west] });

  // the canary: 10 % of api's traffic to v2, and testers reach v2 with a header
  api.splitTraffic([
    { subset: 'v1', weight: 90 },
    { subset: 'v2', weight: 10 },
  ]);
  api.addRoute({ match: { headers: [{ name: 'x-canary', exact: 'true' }] }, destination: { subset: 'v2' } });

  web.addUpstream(api);
  api.addUpstream(db, { datacenter: vms });
  api.allowFrom(web, { permissions: [HttpPermission.allow({ pathPrefix: '/api/', methods: ['GET', 'POST'] })] });
  db.allowFrom(api);

  return mesh;
}

if (require.main === module) {
  const app = new App({ stackTraces: false });
  defineDefaultMesh(app);
  app.synth();
}
