/**
 * The embedded default: one mesh, two Kubernetes datacenters in two clouds.
 *
 *   aws-us-east      EKS cluster (primary), reached by kubeconfig context "eks-us-east"
 *   gcp-europe-west  GKE cluster, reached by kubeconfig context "gke-europe-west"
 *
 * The primary's mesh gateway is published at a stable DNS name (external-dns creates the record for the AWS
 * network load balancer), so the GKE datacenter can be planned and installed without reading the EKS
 * stack's state. `npm start` synthesizes it; `npx cdktf synth` produces the same stacks.
 */
import { App, Cloud, KubernetesCluster, KubernetesDatacenter, Mesh } from '../../index';

/** Declares the default mesh in `app`. */
export function defineDefaultMesh(app: App): Mesh {
  const mesh = new Mesh(app, 'shop', {
    consulVersion: '2.0.3',
    domain: 'consul',
  });

  new KubernetesDatacenter(mesh, 'aws-us-east', {
    primary: true,
    cloud: Cloud.AWS,
    cluster: KubernetesCluster.fromKubeconfig({ context: 'eks-us-east' }),
    servers: 3,
    meshGateway: {
      address: 'mgw.aws-us-east.shop.example.com',
      serviceAnnotations: {
        'service.beta.kubernetes.io/aws-load-balancer-type': 'nlb',
        'external-dns.alpha.kubernetes.io/hostname': 'mgw.aws-us-east.shop.example.com',
      },
    },
  });

  new KubernetesDatacenter(mesh, 'gcp-europe-west', {
    cloud: Cloud.GOOGLE_CLOUD,
    cluster: KubernetesCluster.fromKubeconfig({ context: 'gke-europe-west', apiServerUrl: 'https://203.0.113.20' }),
    servers: 3,
    meshGateway: {
      serviceAnnotations: { 'cloud.google.com/l4-rbs': 'enabled' },
    },
  });

  return mesh;
}

if (require.main === module) {
  const app = new App({ stackTraces: false });
  defineDefaultMesh(app);
  app.synth();
}
