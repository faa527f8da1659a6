/**
 * meshform: mesh-as-code. Public API.
 */
export * from './constructs/errors';
export * from './constructs/state-backend';
export * from './constructs/aws-endpoint';
export * from './constructs/secret-store';
export * from './constructs/secret-store-backend';
export * from './constructs/mesh';
export {
  CertificateAuthority,
  CertificateAuthorityOptions,
  CertificateKeyAlgorithm,
  VaultAuth,
  VaultAuthOptions,
  VaultPerDatacenterAuthOptions,
  VaultCaOptions,
  AwsPrivateCaOptions,
  CaPlan,
  CaHosting,
  CaDatacenter,
} from './constructs/certificate-authority';
export * from './constructs/datacenter';
export * from './constructs/mesh-gateway';
export * from './constructs/federation';
export * from './constructs/kubernetes-cluster';
export * from './constructs/kubernetes-datacenter';
export * from './constructs/service';
export * from './constructs/intention';
export * from './constructs/traffic-policy';
export * from './constructs/vm-hosts';
export * from './constructs/vm-datacenter';
export * from './stacks/mesh-stack';
export * from './stacks/kubernetes-datacenter-stack';
export * from './stacks/eks-cluster-stack';
export * from './stacks/vm-datacenter-stack';
export * from './stacks/own-hosts-stack';
export * from './stacks/mesh-config-stack';
export * from './modules/multi-cluster-mesh';
export * from './modules/hybrid-mesh';
export { App } from './constructs/private/engine';
