/**
 * A hybrid mesh with the HybridMesh pattern (modules/): an existing Kubernetes cluster as the primary, an
 * AWS VM datacenter running `ledger`, and an on-premises datacenter on your own hosts (install bundles under
 * cdktf.out/bundles/). State in S3, one object per stack.
 *
 * Run: CDKTF_OUTDIR=cdktf.out npx tsx examples/hybrid/main.ts
 */
import { App, HostRole, HybridMesh, KubernetesCluster, MachineImage, ServiceProtocol, StateBackend } from '../../index';

/** Declares the hybrid mesh in `app`. */
export function defineHybridMesh(app: App): HybridMesh {
  const hybrid = new HybridMesh(app, 'bank', {
    backend: StateBackend.s3({ bucket: 'bank-terraform-state', region: 'eu-central-1' }),
    kubernetes: KubernetesCluster.fromKubeconfig({ context: 'aks-west-europe' }),
    primaryGatewayAddress: 'mgw.primary.bank.example.com',
    vmRegion: 'eu-central-1',
    vmCidr: '10.40.0.0/16',
    // Debian 12 (debian-12-amd64-20250316-2053, Debian's account 136693071363); use your region's AMI id.
    vmImage: MachineImage.fromId('ami-064cdd2e89aa1b4fb'),
    vmServices: [{ name: 'ledger', port: 9090, protocol: ServiceProtocol.GRPC }],
    onPremisesHosts: [
      { name: 'consul-1', address: '192.168.50.11', role: HostRole.SERVER },
      { name: 'consul-2', address: '192.168.50.12', role: HostRole.SERVER },
      { name: 'consul-3', address: '192.168.50.13', role: HostRole.SERVER },
      { name: 'gateway-1', address: '192.168.50.20', role: HostRole.MESH_GATEWAY },
      { name: 'mainframe-bridge-1', address: '192.168.50.31', role: HostRole.CLIENT, services: ['mainframe-bridge'] },
    ],
    onPremisesServices: [{ name: 'mainframe-bridge', port: 7000 }],
  });
  return hybrid;
}

if (require.main === module) {
  const app = new App({ stackTraces: false });
  defineHybridMesh(app);
  app.synth();
}
