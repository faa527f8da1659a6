import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { deployProject } from '../cli/deploy';
import { dependencyOrder, type PlanDocument } from '../cli/plan';
import { APPLIED_OUTPUT } from '../constructs/private/mesh-manifest';
import { SecretStore } from '../index';
import { terraformAvailability } from '../cli/terraform';
import { planProject as meshProject } from './plan-support';
import { BIN, REPO, RUN_TS, runAsync, tempDir, until } from './support';

afterEach(() => vi.restoreAllMocks());

const available = terraformAvailability({ offline: false });
if (!available.ok) console.warn(`skipping deploy tests with real Terraform: ${available.reason}`);

/**
 * GIVEN a project of three stacks a → b → c holding only Terraform's built-in terraform_data (no provider,
 * no cloud): a real `terraform apply` runs here. Stack b fails while the file `fail-b` exists, and while the
 * file `slow` exists its apply writes Terraform's pid to `terraform.pid` and waits (to be interrupted). Every
 * marker holds the text of the file `version` (default version-1).
 */
function chainProject(extra = ''): {
  dir: string;
  store: string;
  deploy: (...args: string[]) => Promise<{ code: number; stdout: string }>;
  plan: (...args: string[]) => Promise<{ code: number; stdout: string }>;
  args: (command: string, ...rest: string[]) => string[];
  state: (stack: string) => unknown;
  journal: () => any;
} {
  const dir = tempDir('meshform-deploy-');
  const store = path.join(dir, 'store');
  const marker = path.join(dir, 'fail-b');
  const slow = `if [ -f ${path.join(dir, 'slow')} ]; then echo $PPID > ${path.join(dir, 'terraform.pid')}; exec sleep 300; fi`;
  fs.writeFileSync(
    path.join(dir, 'app.ts'),
    `import * as fs from 'node:fs';
import { App, LocalBackend, TerraformStack } from ${JSON.stringify(path.join(REPO, 'constructs', 'private', 'engine'))};
const version = fs.existsSync('version') ? fs.readFileSync('version', 'utf8').trim() : 'version-1';
const app = new App({ stackTraces: false });
const stacks = {};
for (const name of ['a', 'b', 'c']) {
  const stack = new TerraformStack(app, name);
  new LocalBackend(stack, { path: '../../../terraform.' + name + '.tfstate' });
  stack.addOverride('resource.terraform_data.marker', { input: version });
  stacks[name] = stack;
}
stacks.b.addOverride('resource.terraform_data.check', { input: 'check', provisioner: [{ 'local-exec': { command: ${JSON.stringify(`test ! -f ${marker}`)} } }] });
stacks.b.addOverride('resource.terraform_data.slow', { input: version, provisioner: [{ 'local-exec': { command: ${JSON.stringify(slow)} } }] });
stacks.b.addDependency(stacks.a);
stacks.c.addDependency(stacks.b);
${extra}
app.synth();
`,
  );
  fs.writeFileSync(path.join(dir, 'cdktf.json'), JSON.stringify({ app: `${RUN_TS} app.ts` }));
  const args = (command: string, ...rest: string[]) => [command, '--project', dir, '--secrets-dir', store, ...rest];
  return {
    dir,
    store,
    args,
    deploy: (...rest) => runAsync(args('deploy', ...rest)),
    plan: (...rest) => runAsync(args('plan', ...rest)),
    state: (stack) => {
      const file = path.join(dir, `terraform.${stack}.tfstate`);
      return fs.existsSync(file) ? JSON.parse(fs.readFileSync(file, 'utf8')) : undefined;
    },
    journal: () => JSON.parse(fs.readFileSync(path.join(dir, '.meshform-cache', 'deploy.json'), 'utf8')),
  };
}

function resourcesIn(state: unknown): string[] {
  return ((state as { resources?: { type: string; name: string }[] } | undefined)?.resources ?? [])
    .map((r) => `${r.type}.${r.name}`)
    .sort();
}

/** The input the marker of a stack's state holds (what was applied). */
function markerInput(state: unknown): unknown {
  const resources = (
    state as { resources?: { name: string; instances: { attributes: { input: { value: unknown } } }[] }[] }
  ).resources;
  return resources?.find((r) => r.name === 'marker')?.instances[0]?.attributes.input.value;
}

/** The tsx launcher (what `npm run meshform` ran until now: it starts meshform as a second process). */
const TSX = path.join(REPO, 'node_modules', 'tsx', 'dist', 'cli.mjs');

/** True while a process with this pid exists (and is not a zombie). */
function running(pid: number): boolean {
  try {
    return !/^\d+ \(.*\) [ZX]/.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** The pids whose parent is `pid` (from /proc). */
function childrenOf(pid: number): number[] {
  return fs
    .readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return parentOf(Number(d)) === pid;
      } catch {
        return false;
      }
    })
    .map(Number);
}

/** The parent of a process (from /proc). */
function parentOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/** Every process below `pid` (children, their children...). */
function descendantsOf(pid: number): number[] {
  const children = childrenOf(pid);
  return [...children, ...children.flatMap(descendantsOf)];
}

/** Ends a process this test started, by its id, if it still runs (cleanup after a failed assertion). */
function endIfRunning(pid: number | undefined): void {
  if (pid !== undefined && running(pid)) process.kill(pid, 'SIGKILL');
}

/**
 * Drives a command on a real pseudo-terminal (python3's pty module): answers `answer` (sent as typed, then
 * Enter) once the approval question appears; returns the exit code and everything the terminal showed.
 */
function onTerminal(answer: string, command: string[]): { code: number; output: string } {
  const driver = path.join(tempDir('meshform-pty-'), 'drive.py');
  fs.writeFileSync(
    driver,
    `import os, pty, select, sys
answer, cmd = sys.argv[1], sys.argv[2:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(cmd[0], cmd)
out, sent = b'', False
while True:
    ready, _, _ = select.select([fd], [], [], 300)
    if not ready:
        break
    try:
        data = os.read(fd, 65536)
    except OSError:
        break
    if not data:
        break
    out += data
    if not sent and b'Only "yes" is accepted: ' in out:
        os.write(fd, answer.encode() + (b'' if answer == '\\x03' else b'\\r'))
        sent = True
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode('utf-8', 'replace'))
sys.exit(os.waitstatus_to_exitcode(status) & 0xff)
`,
  );
  const result = spawnSync('python3', [driver, answer, ...command], { encoding: 'utf8', timeout: 600_000 });
  // what the terminal shows, without its control sequences (colours, cursor moves)
  const output = result.stdout.replace(/\r\n/g, '\n').replace(/\u001b\[[0-9;]*[A-Za-z]/g, '');
  return { code: result.status ?? -1, output };
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
        'stopped here; fix the cause and run npx meshform deploy again to continue with the remaining stacks',
      );
      expect(first.stdout).not.toContain('c: applied');
      expect(resourcesIn(p.state('a'))).toEqual(['terraform_data.marker']);
      expect(p.state('c')).toBeUndefined();
      // the run's saved plans (they hold variable values) live in its private directory, none under the synth output
      const run = p.journal().run as string;
      expect(p.journal().failed).toMatchObject({ stack: 'b' });
      expect(p.journal().failed.error).toContain('local-exec provisioner error');
      expect(fs.statSync(path.join(p.dir, '.meshform-cache', 'runs', run, 'plans', 'a.tfplan')).mode & 0o777).toBe(
        0o600,
      );
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
      expect(resourcesIn(p.state('b'))).toEqual([
        'terraform_data.check',
        'terraform_data.marker',
        'terraform_data.slow',
      ]);
      expect(resourcesIn(p.state('c'))).toEqual(['terraform_data.marker']);

      // AND a third run has nothing to apply
      const third = await p.deploy('--auto-approve');
      expect(third.code).toBe(0);
      expect(third.stdout).toContain('nothing to apply: every stack is up to date');
    },
  );

  it.skipIf(!available.ok)(
    "a stack whose terraform init fails makes the plan exit 1, with Terraform's whole error; deploy applies nothing",
    async () => {
      // GIVEN stack c needs a provider that no registry or mirror here can install
      const p = chainProject(
        `stacks.c.addOverride('terraform.required_providers.nothere', { source: 'meshform-test/does-not-exist' });`,
      );
      // WHEN
      const planned = await p.plan('--json');
      const plan = JSON.parse(planned.stdout) as PlanDocument;
      // THEN the plan is incomplete, not "passed"
      expect(planned.code).toBe(1);
      expect(plan.exitCode).toBe(1);
      const c = plan.stacks.find((s) => s.stack === 'c')!;
      expect(c.status).toBe('failed');
      expect(c.reason).toMatch(/^terraform init failed: Error: /);
      // the whole error, not one line of it
      expect(c.error).toContain('meshform-test/does-not-exist');
      expect(c.error!.split('\n').length).toBeGreaterThan(2);
      // AND deploy applies nothing, not even the stacks that could be
      const { code, stdout } = await p.deploy('--auto-approve');
      expect(code).toBe(1);
      expect(stdout).toMatch(
        /deploy refused: the plan is incomplete: cannot plan c \(terraform init failed: .+\)\. Fix what keeps them from planning here/,
      );
      expect(p.state('a')).toBeUndefined();
      expect(p.state('b')).toBeUndefined();
    },
  );

  it.skipIf(!available.ok)('refuses to apply under --auto-approve while a gate is not acknowledged', async () => {
    const p = meshProject({}, { applyable: true });
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

describe.skipIf(!available.ok)('meshform deploy applies exactly what was approved', () => {
  /** WHEN helper: `meshform deploy` of project `p` (in this process), approved by `confirm`. */
  function approvedWith(
    p: ReturnType<typeof chainProject>,
    confirm: (question: string) => Promise<boolean>,
  ): Promise<number> {
    return deployProject({
      projectDir: p.dir,
      store: SecretStore.open({ directory: p.store }),
      parallelism: 2,
      allow: new Set(),
      autoApprove: false,
      write: () => undefined,
      confirm,
    });
  }

  it('a plan started while a deploy waits for approval is refused, naming the deploy; the deploy applies the plan it showed', async () => {
    // GIVEN a deploy of version-1 waiting for approval
    const p = chainProject();
    let concurrent: ReturnType<typeof spawnSync> | undefined;
    let shown = '';
    const code = await approvedWith(p, async (question) => {
      // WHEN meanwhile the app changes to version-2 and someone runs meshform plan on the project
      fs.writeFileSync(path.join(p.dir, 'version'), 'version-2');
      concurrent = spawnSync(process.execPath, [TSX, path.join(REPO, 'cli', 'main.ts'), ...p.args('plan')], {
        encoding: 'utf8',
        timeout: 300_000,
      });
      shown = question;
      return true;
    });
    // THEN the deploy applied what it showed: version-1 everywhere
    expect(code).toBe(0);
    for (const stack of ['a', 'b', 'c']) expect(markerInput(p.state(stack))).toBe('version-1');
    expect(shown).toMatch(
      /^Plan run \d{8}T\d{6}Z-[0-9a-f]{6}:\n  apply {4}a {2}1 to create, 0 to update, 0 to replace, 0 to destroy — plan \.meshform-cache\/runs\/.+\/plans\/a\.tfplan sha256 [0-9a-f]{64}\n/,
    );
    // AND the plan was refused, naming the deploy that holds the project
    expect(concurrent!.status).toBe(1);
    expect(concurrent!.stderr).toContain(
      `meshform: error: another meshform run is using this project: meshform deploy in ${p.dir} (pid ${process.pid} on `,
    );
    expect(concurrent!.stderr).toContain(`remove ${path.join(p.dir, '.meshform-cache', 'meshform.lock')}`);
    // AND once it is done, the project is free again
    expect(fs.existsSync(path.join(p.dir, '.meshform-cache', 'meshform.lock'))).toBe(false);
  });

  it('applies only the saved plans of its own run, each checked against the hash it showed', async () => {
    const p = chainProject();
    let shown = '';
    const code = await approvedWith(p, async (question) => {
      shown = question;
      // WHEN a's saved plan is replaced after it was shown
      const plans = path.join(p.dir, '.meshform-cache', 'runs', question.match(/^Plan run (\S+):/)![1]!, 'plans');
      fs.copyFileSync(path.join(plans, 'c.tfplan'), path.join(plans, 'a.tfplan'));
      return true;
    });
    // THEN nothing is applied from it
    expect(shown).toContain('apply    a');
    expect(code).toBe(1);
    expect(p.journal().failed.reason).toMatch(
      /^its saved plan \.meshform-cache\/runs\/.+\/plans\/a\.tfplan is not the one approved \(sha256 [0-9a-f]{64}\)$/,
    );
    expect(p.state('a')).toBeUndefined();
  });

  it('asks on a real terminal (a pseudo-terminal): "yes" applies, anything else cancels, Ctrl-C interrupts', async () => {
    const p = chainProject();
    // WHEN answered "no"
    const no = onTerminal('no', [process.execPath, BIN, ...p.args('deploy')]);
    // THEN nothing is applied
    expect(no.output).toContain('Apply these 3 plans? Only "yes" is accepted: no');
    expect(no.output).toContain('deploy cancelled: nothing was applied');
    expect(no.code).toBe(1);
    expect(p.state('a')).toBeUndefined();
    // WHEN interrupted with Ctrl-C at the prompt
    const interrupted = onTerminal('\x03', [process.execPath, BIN, ...p.args('deploy')]);
    expect(interrupted.code).toBe(130);
    expect(interrupted.output).toContain('deploy interrupted (received SIGINT) approval');
    expect(p.journal().interrupted).toMatchObject({ signal: 'SIGINT', step: 'approval' });
    expect(p.state('a')).toBeUndefined();
    // WHEN answered "yes"
    const yes = onTerminal('yes', [process.execPath, BIN, ...p.args('deploy')]);
    // THEN the plans it showed, with their hashes, are applied
    expect(yes.output).toMatch(/apply {4}a .* sha256 [0-9a-f]{64}/);
    expect(yes.output).toContain('deploy complete');
    expect(yes.code).toBe(0);
    for (const stack of ['a', 'b', 'c']) expect(markerInput(p.state(stack))).toBe('version-1');
  });
});

describe.skipIf(!available.ok)('an interrupted deploy stops Terraform and says where', () => {
  /** GIVEN a deploy started with `launch`, waiting inside b's terraform apply; returns the pids involved. */
  async function deployInsideApplyOfB(p: ReturnType<typeof chainProject>, launch: string[]) {
    fs.writeFileSync(path.join(p.dir, 'slow'), '');
    const child = spawn(launch[0]!, [...launch.slice(1), ...p.args('deploy', '--auto-approve')], {
      cwd: REPO,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let output = '';
    child.stdout.on('data', (d: Buffer) => (output += d.toString()));
    child.stderr.on('data', (d: Buffer) => (output += d.toString()));
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal })),
    );
    const pidFile = path.join(p.dir, 'terraform.pid');
    try {
      await until(
        'terraform applies b',
        () => fs.existsSync(pidFile) && fs.readFileSync(pidFile, 'utf8').trim() !== '',
      );
    } catch (e) {
      for (const pid of [...descendantsOf(child.pid!), child.pid!]) endIfRunning(pid);
      throw new Error(`${(e as Error).message}; the deploy said: ${output}`);
    }
    const terraform = Number(fs.readFileSync(pidFile, 'utf8').trim());
    return { child, exited, terraform, output: () => output };
  }

  it('SIGTERM: Terraform is stopped gracefully, the journal says where, the next deploy continues', async () => {
    const p = chainProject();
    const { child, exited, terraform, output } = await deployInsideApplyOfB(p, [process.execPath, BIN]);
    const started = descendantsOf(child.pid!);
    try {
      // WHEN
      child.kill('SIGTERM');
      const end = await exited;
      // THEN meshform exits 128 + 15 once Terraform stopped
      expect(end).toEqual({ code: 143, signal: null });
      expect(running(terraform)).toBe(false);
      expect(output()).toContain('meshform: interrupted (received SIGTERM): Terraform is told to stop');
      expect(p.journal().interrupted).toMatchObject({ signal: 'SIGTERM', stack: 'b', step: 'terraform apply' });
      expect(p.journal().interrupted.terraform).toMatch(/^terraform stopped \(exit \d+\) and saved its state/);
      expect(p.journal().stacks).toMatchObject({ a: 'applied', b: 'interrupted', c: 'pending' });
    } finally {
      for (const pid of [child.pid!, ...started, terraform]) endIfRunning(pid);
    }
    // AND the next deploy is not stopped by a state lock: it continues
    fs.rmSync(path.join(p.dir, 'slow'));
    const next = await p.deploy('--auto-approve');
    expect(next.stdout).toContain('resuming: the last deploy was interrupted (received SIGTERM) at b, terraform apply');
    expect(next.code).toBe(0);
    expect(resourcesIn(p.state('c'))).toEqual(['terraform_data.marker']);
  });

  it.each([
    ['the tsx launcher', [process.execPath, TSX, path.join(REPO, 'cli', 'main.ts')]],
    ['npm run', ['npm', '--prefix', REPO, 'run', '-s', 'meshform', '--']],
  ])('killing %s (SIGKILL) leaves neither meshform nor Terraform running', async (_name, launch) => {
    const p = chainProject();
    const { child, exited, terraform } = await deployInsideApplyOfB(p, launch);
    // everything the launcher started, to end whatever a failed assertion would leave behind
    const started = descendantsOf(child.pid!);
    // meshform itself: the process that runs Terraform (the launcher's descendant)
    const worker = parentOf(terraform);
    try {
      expect(worker).not.toBe(child.pid);
      expect(started).toContain(worker);
      // WHEN the launcher is killed outright
      child.kill('SIGKILL');
      await exited;
      // THEN meshform notices, stops Terraform and exits; nothing is left running
      await until('meshform and terraform stop', () => !running(worker) && !running(terraform));
      expect(p.journal().interrupted).toMatchObject({ signal: 'SIGTERM', stack: 'b', step: 'terraform apply' });
      expect(p.journal().interrupted.reason).toMatch(/^its launcher .+ \(pid \d+\) went away$/);
      // (it held the project's lock, and released it)
      expect(fs.existsSync(path.join(p.dir, '.meshform-cache', 'meshform.lock'))).toBe(false);
    } finally {
      for (const pid of [child.pid!, ...started, terraform]) endIfRunning(pid);
    }
    fs.rmSync(path.join(p.dir, 'slow'));
    expect((await p.deploy('--auto-approve')).code).toBe(0);
  });
});

describe.skipIf(!available.ok)('a datacenter that leaves the app', () => {
  it('stays "to destroy" until its state is gone; after the acknowledgement deploy really destroys it', async () => {
    // GIVEN east, west and north applied for real (stacks reduced to terraform_data)
    const p = meshProject({ datacenters: ['east', 'west', 'north'] }, { applyable: true });
    const applied = await p.deploy('--auto-approve');
    expect(applied.code).toBe(0);
    const northState = () => JSON.parse(fs.readFileSync(path.join(p.dir, 'terraform.shop-north.tfstate'), 'utf8'));
    expect(Object.keys(northState().outputs)).toEqual([APPLIED_OUTPUT]);
    // WHEN north leaves the app
    p.set({ datacenters: ['east', 'west'] });
    // THEN every plan shows it to destroy, gated
    for (let i = 0; i < 2; i++) {
      const plan = JSON.parse((await p.plan('--json')).stdout) as PlanDocument;
      expect(plan.exitCode).toBe(3);
      expect(plan.meshes[0]!.gates.map((g) => `${g.id} ${g.subject}`)).toEqual(['stateful-destroy datacenter north']);
      expect(plan.stacks.find((s) => s.stack === 'shop-north')).toMatchObject({
        status: 'planned',
        destroy: true,
        summary: { counts: { create: 0, update: 0, replace: 0, delete: 1 } },
      });
    }
    expect((await p.deploy('--auto-approve')).code).toBe(3);
    // WHEN acknowledged
    const destroyed = await p.deploy('--auto-approve', '--allow', 'stateful-destroy');
    // THEN north is destroyed first, then the others record the mesh without it
    expect(destroyed.code).toBe(0);
    expect(destroyed.stdout).toContain('shop-north: destroyed');
    expect(destroyed.stdout.indexOf('shop-north: destroyed')).toBeLessThan(
      destroyed.stdout.indexOf('shop-east: applied'),
    );
    expect(northState().resources).toEqual([]);
    expect(northState().outputs).toEqual({});
    // AND the next plan no longer has it: its state is gone
    const after = JSON.parse((await p.plan('--json')).stdout) as PlanDocument;
    expect(after.exitCode).toBe(0);
    expect(after.stacks.map((s) => s.stack)).toEqual(['shop-east', 'shop-east-config', 'shop-west']);
    expect(after.meshes[0]!.changes).toEqual([]);
    expect(after.meshes[0]!.comparedWith).toBe('applied');
  });
});
