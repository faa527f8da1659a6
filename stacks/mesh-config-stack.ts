import { Manifest } from '@cdktf/provider-kubernetes/lib/manifest';
import { Construct } from 'constructs';
import { bindClusterAccess, ClusterConnection } from '../constructs/private/kubernetes-access';
import { terraformLiteral, withShortTokenStacks } from '../constructs/private/engine';
import { ResourceSet } from '../constructs/private/resource-set';
import { MeshStack, MeshStackProps } from './mesh-stack';

/** Props of a MeshConfigStack. */
export interface MeshConfigStackProps extends MeshStackProps {
  /** Mesh name (labels). */
  readonly mesh: string;
  /** The primary datacenter's name. */
  readonly datacenter: string;
  /** How the stack reaches the primary's cluster. */
  readonly cluster: ClusterConnection;
  /** Name of the EKS cluster meshform creates (looked up by name); unused for a kubeconfig cluster. */
  readonly clusterName: string;
  /**
   * Where the stack's AWS provider sends its calls (an EKS cluster's lookup).
   * @default - AWS
   */
  readonly awsEndpoint?: string;
}

/** One custom resource of the stack: its id in the stack and the Kubernetes object. */
export interface MeshConfigResource {
  /** Id in the stack (`<Kind>-<name>`), the resource's Terraform logical id. */
  readonly id: string;
  /** The custom resource (apiVersion, kind, metadata, spec). */
  readonly manifest: { readonly [key: string]: unknown };
}

/**
 * The mesh's Consul config entries as consul-k8s custom resources on the primary's cluster (they replicate
 * from the primary to every secondary): proxy defaults, mesh settings, and each service's defaults, resolver,
 * splitter, router and intentions. A stack of its own, deployed after the primary's control plane, because
 * Terraform checks a custom resource against its CRD at plan time and the CRDs come with Consul's chart.
 * Its owner keeps the custom resources equal to the mesh's config entries as services are declared
 * (`setResources`).
 */
export class MeshConfigStack extends MeshStack {
  private readonly entries: ResourceSet<MeshConfigResource>;

  constructor(scope: Construct, id: string, props: MeshConfigStackProps) {
    super(scope, id, props);
    // the tokens cdktf makes for these resources need no creation stack (see withShortTokenStacks)
    withShortTokenStacks(() =>
      bindClusterAccess(
        this,
        props.cluster,
        {
          mesh: props.mesh,
          datacenter: props.datacenter,
          clusterName: props.clusterName,
          awsEndpoint: props.awsEndpoint,
        },
        { helm: false },
      ),
    );
    this.entries = new ResourceSet(this, (scope, resourceId, resource) => {
      new ConfigEntryManifest(scope, resourceId, {
        // the config entries' user text (descriptions, filters, regexes, header values) stays literal data
        manifest: terraformLiteral(resource.manifest),
        // the controller writes status; Terraform owns the spec
        computedFields: ['metadata.annotations', 'metadata.labels', 'status'],
      });
    });
  }

  /** Makes the stack's custom resources exactly `resources` (adding, replacing and removing as needed). */
  public setResources(resources: readonly MeshConfigResource[]): void {
    this.entries.sync(new Map(resources.map((r) => [r.id, r])));
  }

  /**
   * Makes the custom resources among `ids` exactly `resources` (each of them among `ids`), leaving the others:
   * what `setResources` does when only those changed (one service's entries).
   */
  public updateResources(ids: readonly string[], resources: readonly MeshConfigResource[]): void {
    this.entries.update(ids, new Map(resources.map((r) => [r.id, r])));
  }
}

/**
 * A config entry's custom resource: a Manifest (aspects, overrides and escape hatches see one) whose Terraform
 * block, literal data unless something put a token in it, its stack hands cdktf as a placeholder while it is
 * written (`MeshStack._deferLiteralBlock`).
 */
class ConfigEntryManifest extends Manifest {
  public override toTerraform(): any {
    const fragment = super.toTerraform();
    const stack = this.cdktfStack;
    const byId = fragment.resource?.[this.terraformResourceType];
    if (byId?.[this.friendlyUniqueId] !== undefined && stack instanceof MeshStack) {
      const placeholder = stack._deferLiteralBlock(this, byId[this.friendlyUniqueId]);
      if (placeholder !== undefined) byId[this.friendlyUniqueId] = placeholder;
    }
    return fragment;
  }
}
