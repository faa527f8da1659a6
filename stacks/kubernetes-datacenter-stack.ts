import { Construct } from 'constructs';
import type { KubernetesDatacenter } from '../constructs/kubernetes-datacenter';
import { bindClusterAccess, ClusterAccess, EKS_SERVER_STORAGE_CLASS } from '../constructs/private/kubernetes-access';
import { KubernetesControlPlane } from '../constructs/private/kubernetes-control-plane';
import { SecretVariables } from '../constructs/private/secret-variables';
import { MeshStack } from './mesh-stack';

/** Props of a KubernetesDatacenterStack. */
export interface KubernetesDatacenterStackProps {
  /** The datacenter the stack installs. */
  readonly datacenter: KubernetesDatacenter;
}

/**
 * The Consul stack of one Kubernetes datacenter: Kubernetes and Helm providers for its cluster, the mesh's
 * secrets as sensitive variables, and Consul's control plane. It reads no other stack's state: everything it
 * needs from other datacenters (the primary's name and gateway addresses) is declared in the topology, and a
 * cluster meshform created is looked up by name.
 */
export class KubernetesDatacenterStack extends MeshStack {
  /** Consul's control plane on the cluster. */
  public readonly controlPlane: KubernetesControlPlane;
  /** How the stack reaches the cluster. */
  public readonly access: ClusterAccess;

  constructor(scope: Construct, id: string, props: KubernetesDatacenterStackProps) {
    const dc = props.datacenter;
    super(scope, id, { mesh: dc.mesh, backend: dc.backend });
    this.access = bindClusterAccess(this, dc.cluster, {
      mesh: dc.mesh.name,
      datacenter: dc.name,
      clusterName: dc.stackName,
      awsEndpoint: dc.mesh.aws.url,
      // meshform creates its StorageClass unless the datacenter names another one
      serverStorageClass: dc.serverStorageClass === EKS_SERVER_STORAGE_CLASS,
    });
    const secrets = new SecretVariables(this, 'SecretInputs', dc.mesh.name, dc.name, dc.isPrimary);
    this.controlPlane = new KubernetesControlPlane(this, 'ControlPlane', {
      mesh: dc.mesh.name,
      datacenter: dc.name,
      primary: dc.isPrimary,
      namespace: dc.namespace,
      releaseName: dc.releaseName,
      chartVersion: dc.mesh.chartVersion,
      secrets,
      caProviderFiles: dc.mesh.certificateAuthority.providerFiles(),
      caProviderSecretName: dc.caProviderSecretName,
      renderValues: (refs) => dc.renderHelmValues(refs),
      releaseDependsOn: this.access.serverStorageClass ? [this.access.serverStorageClass] : [],
    });
  }
}
