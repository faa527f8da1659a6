import * as fs from 'node:fs';
import * as path from 'node:path';
import { APPLIED_OUTPUT } from '../constructs/private/mesh-manifest';
import { REPO, runAsync, tempDir } from './support';

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
  services?: { name: string; port: number; datacenters: string[] }[];
}

/** A project whose app declares a Kubernetes mesh (east, west, north) from topology.json. */
export interface PlanProject {
  readonly dir: string;
  readonly store: string;
  set(t: PlanTopology): void;
  plan(...args: string[]): Promise<{ code: number; stdout: string }>;
  /** Records in each control-plane stack's local state what it would apply now, as `terraform apply` does. */
  markApplied(only?: string[]): void;
}

export function planProject(topology: PlanTopology = {}): PlanProject {
  const dir = tempDir('meshform-plan-');
  fs.writeFileSync(
    path.join(dir, 'app.ts'),
    `import * as fs from 'node:fs';
import { App, CertificateAuthority, KubernetesCluster, KubernetesDatacenter, Mesh, Service } from ${JSON.stringify(path.join(REPO, 'index'))};
const t = JSON.parse(fs.readFileSync('topology.json', 'utf8'));
const options = { root: t.root, previousRoot: t.previousRoot, allowRotationWithoutCrossSigning: t.allowRotationWithoutCrossSigning };
const ca = t.meshCa === 'aws-pca'
  ? CertificateAuthority.awsPrivateCa({ ...options, primaryCaArn: 'arn:aws:acm-pca:us-east-1:123456789012:certificate-authority/11111111-2222-3333-4444-555555555555' })
  : CertificateAuthority.offline(options);
const app = new App({ stackTraces: false });
const mesh = new Mesh(app, 'shop', { certificateAuthority: ca });
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
for (const s of t.services ?? []) new Service(mesh, s.name, { port: s.port, datacenters: s.datacenters.map((d) => dcs[d]) });
app.synth();
`,
  );
  const tsx = path.join(REPO, 'node_modules', 'tsx', 'dist', 'cli.mjs');
  fs.writeFileSync(path.join(dir, 'cdktf.json'), JSON.stringify({ language: 'typescript', app: `node ${tsx} app.ts` }));
  const set = (t: PlanTopology) => fs.writeFileSync(path.join(dir, 'topology.json'), JSON.stringify(t));
  set(topology);
  const store = path.join(dir, 'store');
  return {
    dir,
    store,
    set,
    plan: (...args: string[]) => runAsync(['plan', '--project', dir, '--secrets-dir', store, ...args]),
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
