import * as fs from 'node:fs';
import * as path from 'node:path';
import { APPLIED_OUTPUT } from '../constructs/private/mesh-manifest';
import { REPO, RUN_TS, runAsync, tempDir } from './support';

/** What makes the synthesized stacks applyable here (see PlanProjectOptions.applyable), appended to app.ts. */
const APPLYABLE = `
import { createHash } from 'node:crypto';
import * as path from 'node:path';
const outdir = process.env.CDKTF_OUTDIR;
for (const name of fs.readdirSync(path.join(outdir, 'stacks'))) {
  const file = path.join(outdir, 'stacks', name, 'cdk.tf.json');
  const stack = JSON.parse(fs.readFileSync(file, 'utf8'));
  const digest = createHash('sha256').update(JSON.stringify([stack.resource ?? {}, stack.data ?? {}])).digest('hex');
  const { required_providers, ...terraform } = stack.terraform;
  const kept = {
    terraform,
    ...(stack.variable ? { variable: stack.variable } : {}),
    resource: { terraform_data: { installed: { input: digest } } },
    ...(stack.output?.meshform_applied ? { output: { meshform_applied: stack.output.meshform_applied } } : {}),
  };
  fs.writeFileSync(file, JSON.stringify(kept, null, 2));
}
`;

/** Knobs of the planned mesh, read by the project's program from topology.json. */
export interface PlanTopology {
  primary?: 'east' | 'west';
  datacenters?: ('east' | 'west' | 'north')[];
  westServers?: number;
  eastGateway?: string;
  root?: string;
  previousRoot?: string;
  allowRotationWithoutCrossSigning?: boolean;
  meshCa?: 'offline' | 'aws-pca';
  /** The CA's key algorithm (e.g. rsa-4096: slow to generate, which widens any race). */
  keyAlgorithm?: string;
  services?: { name: string; port: number; datacenters: string[]; failover?: string[] }[];
  /** Where the stacks keep their state (default local files beside cdktf.out). */
  backend?: 'local' | 's3' | 'cloud';
}

/** Options of a planned project. */
export interface PlanProjectOptions {
  /**
   * Each stack keeps its backend, variables and `meshform_applied` record, but its resources become one
   * `terraform_data` (holding a digest of what it replaces, so a change still plans as an update) and its
   * providers go: real Terraform plans, applies and destroys it here, with no cloud and no provider download.
   */
  readonly applyable?: boolean;
}

/** A project whose app declares a Kubernetes mesh (east, west, north) from topology.json. */
export interface PlanProject {
  readonly dir: string;
  readonly store: string;
  set(t: PlanTopology): void;
  plan(...args: string[]): Promise<{ code: number; stdout: string }>;
  deploy(...args: string[]): Promise<{ code: number; stdout: string }>;
  /** Records in each control-plane stack's local state what it would apply now, as `terraform apply` does. */
  markApplied(only?: string[]): void;
}

export function planProject(topology: PlanTopology = {}, options: PlanProjectOptions = {}): PlanProject {
  const dir = tempDir('meshform-plan-');
  fs.writeFileSync(
    path.join(dir, 'app.ts'),
    `import * as fs from 'node:fs';
import { App, CertificateAuthority, KubernetesCluster, KubernetesDatacenter, Mesh, Service, StateBackend, TerraformCloudExecutionMode } from ${JSON.stringify(path.join(REPO, 'index'))};
const t = JSON.parse(fs.readFileSync('topology.json', 'utf8'));
const backend = t.backend === 's3'
  ? StateBackend.s3({ bucket: 'meshform-test-state', region: 'eu-west-1' })
  : t.backend === 'cloud'
    // runs on the team's own agent, which holds the kubeconfig (a remote run could not reach the clusters)
    ? StateBackend.terraformCloud({ organization: 'acme', workspacePrefix: 'mesh-', executionMode: TerraformCloudExecutionMode.AGENT })
    : undefined;
const options = { root: t.root, previousRoot: t.previousRoot, allowRotationWithoutCrossSigning: t.allowRotationWithoutCrossSigning, ...(t.keyAlgorithm ? { keyAlgorithm: t.keyAlgorithm } : {}) };
const ca = t.meshCa === 'aws-pca'
  ? CertificateAuthority.awsPrivateCa({ ...options, primaryCaArn: 'arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555' })
  : CertificateAuthority.offline(options);
const app = new App({ stackTraces: false });
const mesh = new Mesh(app, 'shop', { certificateAuthority: ca, ...(backend ? { backend } : {}) });
const primary = t.primary ?? 'east';
const dcs = {};
for (const name of t.datacenters ?? ['east', 'west']) {
  const isPrimary = name === primary;
  dcs[name] = new KubernetesDatacenter(mesh, name, {
    primary: isPrimary,
    cluster: KubernetesCluster.fromKubeconfig({ context: name, apiServerUrl: isPrimary ? undefined : 'https://198.51.100.' + name.length }),
    servers: name === 'west' ? t.westServers ?? 3 : 3,
    meshGateway: isPrimary ? { address: name === 'east' ? t.eastGateway ?? 'mgw.east.example.com' : 'mgw.' + name + '.example.com' } : {},
  });
}
for (const s of t.services ?? []) new Service(mesh, s.name, { port: s.port, datacenters: s.datacenters.map((d) => dcs[d]), failover: (s.failover ?? []).map((d) => dcs[d]) });
app.synth();
${options.applyable ? APPLYABLE : ''}`,
  );
  fs.writeFileSync(path.join(dir, 'cdktf.json'), JSON.stringify({ language: 'typescript', app: `${RUN_TS} app.ts` }));
  const set = (t: PlanTopology) => fs.writeFileSync(path.join(dir, 'topology.json'), JSON.stringify(t));
  set(topology);
  const store = path.join(dir, 'store');
  return {
    dir,
    store,
    set,
    plan: (...args: string[]) => runAsync(['plan', '--project', dir, '--secrets-dir', store, ...args]),
    deploy: (...args: string[]) => runAsync(['deploy', '--project', dir, '--secrets-dir', store, ...args]),
    markApplied(only?: string[]) {
      const stacks = path.join(dir, 'cdktf.out', 'stacks');
      for (const name of fs.readdirSync(stacks)) {
        if (only && !only.includes(name)) continue;
        const json = JSON.parse(fs.readFileSync(path.join(stacks, name, 'cdk.tf.json'), 'utf8'));
        const value = json.output?.[APPLIED_OUTPUT]?.value;
        if (typeof value !== 'string') continue;
        const state = path.resolve(stacks, name, json.terraform.backend.local.path);
        fs.writeFileSync(
          state,
          JSON.stringify({
            version: 4,
            terraform_version: '1.11.4',
            serial: 1,
            lineage: `test-${name}`,
            outputs: { [APPLIED_OUTPUT]: { value, type: 'string' } },
            resources: [],
            check_results: null,
          }),
        );
      }
    },
  };
}
