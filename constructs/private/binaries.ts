/**
 * The Consul and Envoy builds meshform installs on VMs, pinned with their SHA-256 checksums. A host verifies
 * every download against these values before installing it; a version without an entry cannot be chosen.
 *
 * Consul: the linux zips of releases.hashicorp.com, checksums as published in HashiCorp's SHA256SUMS (as
 * carried by HashiCorp's Homebrew tap formulae). Envoy: the linux binaries of github.com/envoyproxy/envoy
 * releases. Only x86_64 Envoy builds are listed; arm64 hosts need a mirror with your own verified build.
 */
export type CpuArchitecture = 'amd64' | 'arm64';

const CONSUL: { readonly [version: string]: { readonly [arch in CpuArchitecture]: string } } = {
  '2.0.0': {
    amd64: '25fe76d3203529af59834cff4a29a128050b630d62901be7ad850b9991ddf991',
    arm64: 'caea9d634b18ef137b0e62adac5dd14407cd942092c2c6281b70edd90b86d5e2',
  },
  '2.0.1': {
    amd64: 'f8189736b05e3fe42d27dd83dfbd3a6d7e44b5669b2e51684362e9c1639babe0',
    arm64: '06a88f29c408f02a4c6388dccf30c059b8d8ce3778576701603fbb4dfc03b365',
  },
  '2.0.2': {
    amd64: '96e56c9d06b4a15bfa316afa39af926c1b67d189f66388dc1eecbb7c26faeed4',
    arm64: '70c13b33f47da13c7c797b57d6ccc8a738ecf33c8e3aec4c268640dc17ba660c',
  },
  '2.0.3': {
    amd64: '3020eea3fdfd939eb021ecaca105a1513af52b22e76f2ee97ea85acc6ff2f832',
    arm64: '7551d8f07cbfb633d260fe27a9f7144ce08f1cb964e31e15788309dfb6c2fda5',
  },
};

const ENVOY: { readonly [version: string]: { readonly [arch in CpuArchitecture]?: string } } = {
  '1.38.0': { amd64: 'cca312a7c3f91852f2849995c895130c59842e21ba787dc90bafa4026d6c5ecc' },
  '1.38.2': { amd64: '87744a1fc998d677078c9703113a192d0830badc6888662441632847fcb38899' },
  '1.38.4': { amd64: 'c994c452de131f59c9ec9f4a2fffcc65039f250a38b6279870bb95dac21db0fa' },
};

/** The Envoy version installed when a datacenter does not choose one (the 1.38 line the consul-k8s 2.0 chart uses). */
export const DEFAULT_ENVOY_VERSION = '1.38.4';

/** One download a host verifies and installs. */
export interface PinnedArtifact {
  readonly name: 'consul' | 'envoy';
  readonly version: string;
  readonly url: string;
  readonly sha256: string;
  /** `zip`: a zip holding the binary; `binary`: the binary itself. */
  readonly format: 'zip' | 'binary';
}

/** Default download locations; a mirror keeps the same paths below its base URL. */
export const RELEASE_BASES = {
  consul: 'https://releases.hashicorp.com/consul',
  envoy: 'https://github.com/envoyproxy/envoy/releases/download',
} as const;

/** The pinned Consul build, or undefined when the version/architecture has no verified checksum. */
export function consulArtifact(version: string, arch: CpuArchitecture, mirror?: string): PinnedArtifact | undefined {
  const sha256 = CONSUL[version]?.[arch];
  if (!sha256) return undefined;
  const base = mirror ? `${mirror.replace(/\/$/, '')}/consul` : RELEASE_BASES.consul;
  return {
    name: 'consul',
    version,
    url: `${base}/${version}/consul_${version}_linux_${arch}.zip`,
    sha256,
    format: 'zip',
  };
}

/** The pinned Envoy build, or undefined when the version/architecture has no verified checksum. */
export function envoyArtifact(version: string, arch: CpuArchitecture, mirror?: string): PinnedArtifact | undefined {
  const sha256 = ENVOY[version]?.[arch];
  if (!sha256) return undefined;
  const base = mirror ? `${mirror.replace(/\/$/, '')}/envoy` : RELEASE_BASES.envoy;
  const file = `envoy-${version}-linux-${arch === 'amd64' ? 'x86_64' : 'aarch_64'}`;
  return { name: 'envoy', version, url: `${base}/v${version}/${file}`, sha256, format: 'binary' };
}

/** Envoy versions with a verified build for `arch`. */
export function knownEnvoyVersions(arch: CpuArchitecture): string[] {
  return Object.keys(ENVOY).filter((v) => ENVOY[v]![arch] !== undefined);
}

/** The CPU architecture of an EC2 instance type (Graviton families carry a `g` after the generation digit). */
export function instanceArchitecture(instanceType: string): CpuArchitecture {
  const family = instanceType.split('.')[0] ?? '';
  return /^[a-z]+\d+g[a-z]*$/.test(family) ? 'arm64' : 'amd64';
}
