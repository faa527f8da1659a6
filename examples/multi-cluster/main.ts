/**
 * A mesh over three existing clusters in three clouds with the MultiClusterMesh pattern (modules/):
 * each mesh gateway sits behind its cloud's L4 load balancer and is published by external-dns.
 * State goes to Terraform Cloud, one workspace per datacenter stack, run locally: each cluster is reached through
 * a kubeconfig context of the machine that deploys, which Terraform Cloud's own runners do not have.
 *
 * Run: CDKTF_OUTDIR=cdktf.out npx tsx examples/multi-cluster/main.ts
 */
import {
  App,
  CertificateAuthority,
  Cloud,
  MultiClusterMesh,
  StateBackend,
  TerraformCloudExecutionMode,
  VaultAuth,
} from '../../index';

/** Declares the three-cloud mesh in `app`. */
export function defineMultiClusterMesh(app: App): MultiClusterMesh {
  return new MultiClusterMesh(app, 'payments', {
    primary: 'aws-eu-west',
    // Set the workspaces' execution mode to Local in Terraform Cloud: it keeps the state, runs happen here.
    backend: StateBackend.terraformCloud({
      organization: 'acme',
      workspacePrefix: 'mesh-',
      executionMode: TerraformCloudExecutionMode.LOCAL,
    }),
    // Vault runs the service mesh CA: its root mount holds an intermediate of the offline root
    // (`meshform ca sign-csr`), each datacenter gets its own intermediate mount, and each cluster's Consul
    // servers log in with their service account at their own Kubernetes auth mount (kubernetes-<datacenter>).
    certificateAuthority: CertificateAuthority.vault({
      address: 'https://vault.payments.example.com:8200',
      rootPkiPath: 'payments-connect-root',
      intermediatePkiPathPrefix: 'payments-connect-',
      kubernetesAuth: VaultAuth.kubernetesPerDatacenter({ role: 'consul-server' }),
    }),
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
        // its authorized networks hold the egress addresses of aws-eu-west's Consul servers
        apiServerAdmitsPrimary: true,
        gatewayHostname: 'mgw.gcp-us-central.payments.example.com',
      },
      {
        name: 'azure-north-europe',
        cloud: Cloud.AZURE,
        kubeconfigContext: 'aks-north-europe',
        kubernetesApiUrl: 'https://payments-aks.hcp.northeurope.azmk8s.io:443',
        // no authorized IP ranges on this API server: it admits any address (authentication still applies)
        apiServerAdmitsPrimary: true,
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
