import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { dependencyOrder } from '../cli/plan';
import { terraformAvailability } from '../cli/terraform';
import { planProject as meshProject } from './plan-support';
import { REPO, runAsync, tempDir } from './support';

afterEach(() => vi.restoreAllMocks());

const available = terraformAvailability({ offline: false });
if (!available.ok) console.warn(`skipping deploy tests with real Terraform: ${available.reason}`);

/**
 * GIVEN a project of three stacks a → b → c holding only Terraform's built-in terraform_data (no provider,
 * no cloud): a real `terraform apply` runs here. Stack b fails while the file `fail-b` exists.
 */
function chainProject(extra = ''): {
  dir: string;
  deploy: (...args: string[]) => Promise<{ code: number; stdout: string }>;
  state: (stack: string) => unknown;
} {
  const dir = tempDir('meshform-deploy-');
  const marker = path.join(dir, 'fail-b');
  fs.writeFileSync(
    path.join(dir, 'app.ts'),
    `import { App, LocalBackend, TerraformStack } from ${JSON.stringify(path.join(REPO, 'constructs', 'private', 'engine'))};
const app = new App({ stackTraces: false });
const stacks = {};
for (const name of ['a', 'b', 'c']) {
  const stack = new TerraformStack(app, name);
  new LocalBackend(stack, { path: '../../../terraform.' + name + '.tfstate' });
  stack.addOverride('resource.terraform_data.marker', { input: 'version-1' });
  stacks[name] = stack;
}
stacks.b.addOverride('resource.terraform_data.check', { input: 'check', provisioner: [{ 'local-exec': { command: ${JSON.stringify(`test ! -f ${marker}`)} } }] });
stacks.b.addDependency(stacks.a);
stacks.c.addDependency(stacks.b);
${extra}
app.synth();
`,
  );
  fs.writeFileSync(
    path.join(dir, 'cdktf.json'),
    JSON.stringify({ app: `node ${path.join(REPO, 'node_modules', 'tsx', 'dist', 'cli.mjs')} app.ts` }),
  );
  return {
    dir,
    deploy: (...args) => runAsync(['deploy', '--project', dir, '--secrets-dir', path.join(dir, 'store'), ...args]),
    state: (stack) => {
      const file = path.join(dir, `terraform.${stack}.tfstate`);
      return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : undefined;
    },
  };
}

function resourcesIn(state: unknown): string[] {
  return ((state as { resources?: { type: string; name: string }[] } | undefined)?.resources ?? [])
    .map((r) => `${r.type}.${r.name}`)
    .sort();
}

describe('meshform deploy', () => {
  it('orders stacks after what they depend on', () => {
    expect(
      dependencyOrder([
        { stack: 'shop-vms', dependsOn: ['shop-east'] },
        { stack: 'shop-east', dependsOn: ['shop-east-infra'] },
        { stack: 'shop-east-infra', dependsOn: [] },
        { stack: 'shop-west', dependsOn: ['shop-east'] },
      ]),
    ).toEqual(['shop-east-infra', 'shop-east', 'shop-vms', 'shop-west']);
    expect(() =>
      dependencyOrder([
        { stack: 'a', dependsOn: ['b'] },
        { stack: 'b', dependsOn: ['a'] },
      ]),
    ).toThrow('the stacks depend on each other in a cycle: a, b');
  });

  it.skipIf(!available.ok)(
    'applies stack by stack; stops at a failure; a re-run continues with what is left',
    async () => {
      // GIVEN a chain whose middle stack fails
      const p = chainProject();
      fs.writeFileSync(path.join(p.dir, 'fail-b'), '');
      // WHEN
      const first = await p.deploy('--auto-approve');
      // THEN a is applied, b failed, c untouched
      expect(first.code).toBe(1);
      expect(first.stdout).toContain('a: applied');
      expect(first.stdout).toContain('b: apply failed');
      expect(first.stdout).toContain(
        'stopped here; fix the cause and run meshform deploy again to continue with the remaining stacks',
      );
      expect(first.stdout).not.toContain('c: applied');
      expect(resourcesIn(p.state('a'))).toEqual(['terraform_data.marker']);
      expect(p.state('c')).toBeUndefined();
      // saved plans (they hold variable values) live in the private cache, none under the synth output
      expect(fs.statSync(path.join(p.dir, '.meshform-cache', 'plans', 'a.tfplan')).mode & 0o777).toBe(0o600);
      expect(
        fs.readdirSync(path.join(p.dir, 'cdktf.out'), { recursive: true }).filter((f) => String(f).endsWith('.tfplan')),
      ).toEqual([]);

      // WHEN the cause is fixed and deploy runs again
      fs.rmSync(path.join(p.dir, 'fail-b'));
      const second = await p.deploy('--auto-approve');
      // THEN it resumes: a has nothing to do, b and c are applied
      expect(second.code).toBe(0);
      expect(second.stdout).toContain('resuming: the last deploy stopped at b');
      expect(second.stdout).toContain('a: no changes');
      expect(second.stdout).toContain('b: applied');
      expect(second.stdout).toContain('c: applied');
      expect(second.stdout).toContain('deploy complete');
      expect(resourcesIn(p.state('b'))).toEqual(['terraform_data.check', 'terraform_data.marker']);
      expect(resourcesIn(p.state('c'))).toEqual(['terraform_data.marker']);

      // AND a third run has nothing to apply
      const third = await p.deploy('--auto-approve');
      expect(third.code).toBe(0);
      expect(third.stdout).toContain('nothing to apply: every stack is up to date');
    },
  );

  it.skipIf(!available.ok)(
    'refuses to apply anything while a stack cannot be planned here, and says which and why',
    async () => {
      // GIVEN stack c needs a provider that no registry or mirror here can install
      const p = chainProject(
        `stacks.c.addOverride('terraform.required_providers.nothere', { source: 'meshform-test/does-not-exist' });`,
      );
      // WHEN
      const { code, stdout } = await p.deploy('--auto-approve');
      // THEN nothing is applied, not even the stacks that could be
      expect(code).toBe(1);
      expect(stdout).toMatch(
        /deploy refused: cannot plan c \(terraform init failed: .+\)\. Fix what keeps them from planning here/,
      );
      expect(p.state('a')).toBeUndefined();
      expect(p.state('b')).toBeUndefined();
    },
  );

  it('refuses to apply under --auto-approve while a gate is not acknowledged', async () => {
    const p = meshProject();
    await p.plan('--json', '--no-terraform');
    p.markApplied();
    p.set({ primary: 'west' });
    const { code, stdout } = await runAsync(['deploy', '--auto-approve', '--project', p.dir, '--secrets-dir', p.store]);
    expect(code).toBe(3);
    expect(stdout).toContain('deploy refused: 1 gate not acknowledged (--allow primary-change)');
  });

  it('refuses --offline: a deploy applies for real', async () => {
    await expect(runAsync(['deploy', '--offline', '--project', tempDir()])).rejects.toThrow(
      'deploy applies for real: --offline is for plans only',
    );
  });

  it.skipIf(!available.ok)('asks for approval without --auto-approve, and needs a terminal for it', async () => {
    const p = chainProject();
    await expect(p.deploy()).rejects.toThrow('no terminal to approve on: review the plan and pass --auto-approve');
  });
});
