import { Construct } from 'constructs';
import { Datacenter, DatacenterDescription, DatacenterProps, Platform } from './datacenter';
import { errors } from './errors';
import type { Mesh } from './mesh';
import { MeshGatewayServiceType } from './mesh-gateway';
import type { TerraformStack } from './private/engine';
import {
  ConsulHelmValues,
  ConsulSecretRefs,
  consulHelmValues,
  describeSecurity,
  toValuesYaml,
} from './private/helm-values';
import { isDatacenterName, isHttpsUrl } from './private/validation';
import { KubernetesDatacenterStack } from '../stacks/kubernetes-datacenter-stack';

/** Props of a KubernetesDatacenter. */
export interface KubernetesDatacenterProps extends DatacenterProps {
  /** The kubeconfig context that reaches the cluster (any cloud: EKS, GKE, AKS, on-premises...). */
  readonly kubeconfigContext: string;
  /**
   * Path of the kubeconfig file on the machine that deploys (kept as written, so `~` works everywhere).
   * @default "~/.kube/config"
   */
  readonly kubeconfigPath?: string;
  /**
   * URL of the cluster's Kubernetes API server as the primary datacenter's Consul servers reach it; the
   * chart's `global.federation.k8sAuthMethodHost`, needed by secondaries because ACLs are always on.
   * @default - none; required on every secondary
   */
  readonly kubernetesApiUrl?: string;
  /**
   * Kubernetes namespace Consul is installed into.
   * @default "consul"
   */
  readonly namespace?: string;
  /**
   * Name of the Helm release.
   * @default "consul"
   */
  readonly releaseName?: string;
}

/**
 * A Consul datacenter on an existing Kubernetes cluster, reached by kubeconfig path and context.
 *
 * It installs the official consul-k8s chart with TLS (verify, HTTPS only, auto-encrypt), chart-managed ACLs
 * (default deny), gossip encryption, connect inject, a mesh gateway and metrics, and WAN-federates with the
 * mesh's primary through mesh gateways. Its stack is `<mesh>-<name>`.
 */
export class KubernetesDatacenter extends Datacenter {
  public readonly platform = Platform.KUBERNETES;
  /** kubeconfig path. */
  public readonly kubeconfigPath: string;
  /** kubeconfig context. */
  public readonly kubeconfigContext: string;
  /** API server URL for the ACL auth method (secondaries). */
  public readonly kubernetesApiUrl?: string;
  /** Namespace of Consul. */
  public readonly namespace: string;
  /** Helm release name. */
  public readonly releaseName: string;
  /** The datacenter's stack. */
  public readonly stack: KubernetesDatacenterStack;

  constructor(scope: Mesh, id: string, props: KubernetesDatacenterProps) {
    super(scope as Construct, id, props, [1, 3, 5]);
    const path = this.node.path;
    this.kubeconfigPath = props.kubeconfigPath ?? '~/.kube/config';
    if (this.kubeconfigPath.trim() === '') throw errors.emptyValue(path, 'kubeconfigPath');
    this.kubeconfigContext = props.kubeconfigContext;
    if (this.kubeconfigContext.trim() === '') throw errors.emptyValue(path, 'kubeconfigContext');
    this.namespace = props.namespace ?? 'consul';
    if (!isDatacenterName(this.namespace)) throw errors.invalidKubernetesName(path, 'namespace', this.namespace);
    this.releaseName = props.releaseName ?? 'consul';
    if (!isDatacenterName(this.releaseName) || this.releaseName.length > 53) {
      throw errors.invalidKubernetesName(path, 'Helm release name', this.releaseName);
    }
    if (props.kubernetesApiUrl !== undefined) {
      if (!isHttpsUrl(props.kubernetesApiUrl))
        throw errors.invalidUrl(path, 'kubernetesApiUrl', props.kubernetesApiUrl);
      this.kubernetesApiUrl = props.kubernetesApiUrl;
    }
    if (!this.isPrimary && this.kubernetesApiUrl === undefined) {
      throw errors.missingKubernetesApiUrl(path, this.name);
    }
    this.register();
    this.stack = new KubernetesDatacenterStack(this.stackScope(this.stackName), this.stackName, { datacenter: this });
  }

  public get stacks(): readonly TerraformStack[] {
    return [this.stack];
  }

  public get controlPlaneStack(): TerraformStack {
    return this.stack;
  }

  public validateInMesh(): void {
    // Everything a Kubernetes datacenter needs from the mesh is checked by the mesh and its federation.
  }

  /** The consul-k8s values of this datacenter as YAML (no secret: secrets are referenced by name). */
  public renderHelmValues(secretRefs: ConsulSecretRefs): string {
    return toValuesYaml(this.helmValues(secretRefs));
  }

  /** The consul-k8s values of this datacenter. */
  public helmValues(secretRefs: ConsulSecretRefs = this.stack.controlPlane.secretRefs): ConsulHelmValues {
    const mesh = this.mesh;
    const gw = this.meshGateway;
    return consulHelmValues({
      datacenter: this.name,
      domain: mesh.domain,
      consulImage: `hashicorp/consul:${mesh.consulVersion}`,
      controlPlaneImage: `hashicorp/consul-k8s-control-plane:${mesh.chartVersion}`,
      servers: this.servers,
      primary: this.isPrimary,
      primaryDatacenter: mesh.primary.name,
      primaryGateways: this.isPrimary ? [] : mesh.federation.primaryGateways,
      kubernetesApiUrl: this.kubernetesApiUrl,
      secrets: secretRefs,
      meshGateway: {
        replicas: gw.replicas,
        serviceType: gw.serviceType,
        port: gw.port,
        nodePort: gw.nodePort,
        address: gw.address,
        annotations: gw.serviceAnnotations,
      },
    });
  }

  public describe(): DatacenterDescription {
    const gw = this.meshGateway;
    const exposure =
      gw.serviceType === MeshGatewayServiceType.NODE_PORT ? `NodePort ${gw.nodePort}` : `LoadBalancer :${gw.port}`;
    const mesh = this.mesh;
    const installs = [
      `namespace ${this.namespace} with the mesh's secrets (server CA certificate, server CA key, gossip key, ACL token${
        this.isPrimary ? ', ACL bootstrap config' : ''
      })`,
      `helm release ${this.releaseName}: consul-k8s ${mesh.chartVersion}, Consul ${mesh.consulVersion}, ${this.servers} server${
        this.servers === 1 ? '' : 's'
      }`,
      `security: ${describeSecurity(this.helmValues())}`,
      `connect inject, metrics, mesh gateway (${exposure}, ${gw.replicas} replica${gw.replicas === 1 ? '' : 's'}${
        gw.address ? `, address ${gw.wanEndpoint}` : ''
      })`,
      this.isPrimary
        ? 'federation: primary (ACL and CA authority)'
        : `federation: joins ${mesh.primary.name} via ${mesh.federation.primaryGateways.join(', ')}`,
    ];
    return {
      name: this.name,
      platform: this.platform,
      cloud: this.cloud,
      primary: this.isPrimary,
      servers: this.servers,
      meshGateway: { address: gw.address, port: gw.wanPort, exposure, replicas: gw.replicas },
      stacks: this.stacks.map((s) => ({ name: s.node.id, state: this.backend.describe(s.node.id) })),
      installs,
    };
  }
}
