import { Manifest } from '@cdktf/provider-kubernetes/lib/manifest';
import { Construct } from 'constructs';
import type { KubernetesDatacenter } from '../constructs/kubernetes-datacenter';
import { meshConfigEntries, toCustomResource } from '../constructs/private/config-entries';
import { bindClusterAccess } from '../constructs/private/kubernetes-access';
import { MeshStack } from './mesh-stack';

/** Props of a MeshConfigStack. */
export interface MeshConfigStackProps {
  /** The primary datacenter, on whose cluster the config entries are created. */
  readonly primary: KubernetesDatacenter;
}

/**
 * The mesh's Consul config entries as consul-k8s custom resources on the primary's cluster (they replicate
 * from the primary to every secondary): proxy defaults, mesh settings, and each service's defaults, resolver,
 * splitter, router and intentions. A stack of its own, deployed after the primary's control plane, because
 * Terraform checks a custom resource against its CRD at plan time and the CRDs come with Consul's chart.
 */
export class MeshConfigStack extends MeshStack {
  private readonly primary: KubernetesDatacenter;
  private built = false;

  constructor(scope: Construct, id: string, props: MeshConfigStackProps) {
    super(scope, id, { mesh: props.primary.mesh, backend: props.primary.backend });
    this.primary = props.primary;
    bindClusterAccess(
      this,
      props.primary.cluster,
      {
        mesh: this.mesh.name,
        datacenter: props.primary.name,
        clusterName: props.primary.stackName,
        awsEndpoint: this.mesh.aws.url,
      },
      { helm: false },
    );
  }

  /** Creates one custom resource per config entry; called once the whole mesh is known. */
  public build(): void {
    if (this.built) return;
    this.built = true;
    const labels = { 'app.kubernetes.io/managed-by': 'meshform', 'meshform.io/mesh': this.mesh.name };
    for (const entry of meshConfigEntries(
      this.mesh.services.map((s) => s.describe()),
      this.mesh.traffic,
    )) {
      new Manifest(this, `${entry.kind}-${entry.name}`, {
        manifest: toCustomResource(entry, this.primary.namespace, labels),
        // the controller writes status; Terraform owns the spec
        computedFields: ['metadata.annotations', 'metadata.labels', 'status'],
      });
    }
  }
}
