/**
 * The consul-k8s Helm chart versions meshform renders values for, and the Consul versions each supports.
 *
 * consul-k8s versions its chart, control plane and CLI with one semantic version and supports the Consul
 * minor line it was released with (developer.hashicorp.com/consul/docs/k8s/compatibility). A chart is listed
 * here only when its values.yaml has been checked by the contract test (test/fixtures holds its key tree), and
 * the Consul versions are that minor line up to the chart's own appVersion.
 */
export interface ChartRelease {
  /** The chart's version. */
  readonly chart: string;
  /** The Consul version the chart ships as its default image. */
  readonly appVersion: string;
  /** Every Consul version the chart is known to work with. */
  readonly consulVersions: readonly string[];
}

const RELEASES: readonly ChartRelease[] = [
  { chart: '2.0.3', appVersion: '2.0.3', consulVersions: ['2.0.0', '2.0.1', '2.0.2', '2.0.3'] },
];

/** The chart installed when the mesh does not choose one. */
export const DEFAULT_CHART_VERSION = '2.0.3';

/** The Consul version installed when the mesh does not choose one. */
export const DEFAULT_CONSUL_VERSION = '2.0.3';

/** The Helm repository of the official chart. */
export const CHART_REPOSITORY = 'https://helm.releases.hashicorp.com';

/** Every chart version meshform knows. */
export function knownChartVersions(): string[] {
  return RELEASES.map((r) => r.chart);
}

/** The release entry of a chart version, if known. */
export function chartRelease(chart: string): ChartRelease | undefined {
  return RELEASES.find((r) => r.chart === chart);
}
