/**
 * A mesh over three existing clusters in three clouds with the MultiClusterMesh pattern (modules/):
 * each mesh gateway sits behind its cloud's L4 load balancer and is published by external-dns.
 * State goes to Terraform Cloud, one workspace per datacenter stack.
 *
 * Run: CDKTF_OUTDIR=cdktf.out npx tsx examples/multi-cluster/main.ts
 */
import { App, Cloud, MultiClusterMesh, StateBackend } from '../../index';

/** Declares the three-cloud mesh in `app`. */
export function defineMultiClusterMesh(app: App): MultiClusterMesh {
  return new MultiClusterMesh(app, 'payments', {
    primary: 'aws-eu-west',
    backend: StateBackend.terraformCloud({ organization: 'acme', workspacePrefix: 'mesh-' }),
    clusters: [
      {
        name: 'aws-eu-west',
        cloud: Cloud.AWS,
        kubeconfigContext: 'eks-eu-west',
        gatewayHostname: 'mgw.aws-eu-west.payments.example.com',
      },
      {
        name: 'gcp-us-central',
        cloud: Cloud.GOOGLE_CLOUD,
        kubeconfigContext: 'gke-us-central',
        kubernetesApiUrl: 'https://198.51.100.30',
        gatewayHostname: 'mgw.gcp-us-central.payments.example.com',
      },
      {
        name: 'azure-north-europe',
        cloud: Cloud.AZURE,
        kubeconfigContext: 'aks-north-europe',
        kubernetesApiUrl: 'https://payments-aks.hcp.northeurope.azmk8s.io:443',
        gatewayHostname: 'mgw.azure-north-europe.payments.example.com',
      },
    ],
  });
}

if (require.main === module) {
  const app = new App({ stackTraces: false });
  defineMultiClusterMesh(app);
  app.synth();
}
