#!/usr/bin/env node
/**
 * The meshform command.
 *
 *   meshform synth                synthesize the app of cdktf.json, create the secret store if absent, summarize
 *   meshform secrets env          print `export TF_VAR_...` lines for the mesh's secret variables (eval them)
 *   meshform secrets tfvars       print the secret variables as HCL (for a Terraform Cloud variable set)
 *   meshform secrets show         print where the secrets live and the root fingerprints (no secret)
 *   meshform ca ...               the mesh's CA: init, status, rotate, protect, import, sign-csr
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { parseArgs } from 'node:util';
import { CaMaterialError, MeshformError } from '../constructs/errors';
import { setLockCommand } from '../constructs/private/file-lock';
import type { MeshManifest } from '../constructs/private/mesh-manifest';
import { SecretStore } from '../constructs/secret-store';
import { CliError, style } from './output';
import { caImport, caInit, caProtect, caRotateIntermediate, caRotateRoot, caSignRequest, caStatus } from './ca';
import { ownHostSecrets, secretsAsShellExports, secretsAsTfvars } from './secrets';
import { renderSynthSummary } from './summary';
import { readCdktfConfig, readSynthOutput } from './synth';
import { synthesizeMeshes } from './synth-meshes';
import { checkMeshes, renderCheck } from './check';
import { deployProject } from './deploy';
import { GATE_IDS } from './gates';
import { planProject, Progress } from './plan';
import { renderPlanMarkdown, renderPlanText } from './plan-render';

const USAGE = `Usage: meshform <command> [options]

Commands:
  plan                  Synthesize, then show the change in mesh terms against what every datacenter last applied
                        (its record in its Terraform state), a real terraform plan of every stack that can be
                        planned here, risk gates, and an SVG picture. Options: --offline (fake credentials, local
                        provider mirror, local state only), --json, --markdown, --parallelism <n> (default 4),
                        --allow <gate> (repeatable), --no-terraform, --assume-unapplied (a record that cannot be
                        read counts as never applied, and the plan says so), --detailed-exitcode.
                        Exit 0 no change, 2 changes (--detailed-exitcode), 3 a gate blocked, 1 incomplete (a stack
                        not planned, a gate that cannot be evaluated).
  deploy                Plan, ask for approval (each saved plan's sha256 shown), then apply exactly those plans:
                        stacks that left the app are destroyed first, the others applied in dependency order; a
                        re-run continues after a failure or an interruption. --auto-approve (refused while a gate
                        is not acknowledged), --allow <gate>, --assume-unapplied.
  check [--json]        Synthesize, then prove every declared upstream reachable: shared trust, a gateway path, an
                        allowing intention, a protocol fit for the L7 rules, failover targets running the service;
                        and the primary's servers admitted by every Kubernetes secondary's API server.
                        Exit 0 all reachable, 4 a broken or unproven edge (the fix is named).
  synth                 Synthesize the app named in cdktf.json into its output directory (default cdktf.out),
                        create the local secret store of each mesh if absent, and print a summary.
  secrets env           Print shell exports (TF_VAR_*) of every mesh's secret variables: eval "$(meshform secrets env)"
  secrets tfvars        Print the secret variables as HCL, for a Terraform Cloud variable set.
  secrets host          Print the secrets file of one of your own hosts (--mesh, --datacenter, --host); pipe it
                        to the host over SSH (see the host's bundle README).
  secrets show          Print where each mesh's secrets live and the root fingerprints (prints no secret).
  ca init               Create the mesh's root (key encrypted with MESHFORM_CA_PASSPHRASE or a prompted
                        passphrase; --unattended keeps a generated passphrase beside it).
  ca status [--json]    Every certificate: subject, issuer, fingerprint, expiry, state. Exit 0 all valid,
                        10 something due for renewal/rotation, 20 invalid or expired material.
  ca rotate --root [--id <id>] [--no-cross-sign --force]
                        Create a new root cross-signed by the active one; prints the topology change.
  ca rotate --intermediate <datacenter>
                        A new intermediate and server certificate for one datacenter.
  ca protect --root --id <id>
                        Encrypt an unattended root's key with your passphrase and remove the stored one.
  ca import --root --id <id> --cert <file> --key <file>
                        Bring an existing root (e.g. from \`consul tls ca create\`) into the store, after checking
                        it is a valid self-signed CA whose key matches (key passphrase: MESHFORM_IMPORT_KEY_PASSPHRASE).
  ca sign-csr --csr <file> [--days <n>]
                        Sign a CA request (e.g. Vault's service mesh root mount) with the active root; prints the
                        certificate and the root, to give back to Vault (intermediate/set-signed).
  help                  Show this help.

Options:
  --project <dir>       Project directory holding cdktf.json (default: the current directory)
  --secrets-dir <dir>   Secret store directory (default: $MESHFORM_SECRETS_DIR or .meshform)
  --mesh <name>         Only this mesh (secrets commands)
  --datacenter <name>   Datacenter (secrets host)
  --host <name>         Host (secrets host)
`;

/** The command users type to call meshform, for hints. */
function invocation(projectDir: string): string {
  try {
    const pkg = JSON.parse(fs.readFileSync(path.join(projectDir, 'package.json'), 'utf8')) as { name?: string };
    if (pkg.name === 'meshform') return 'npm run -s meshform --';
  } catch {
    // not an npm project: fall through
  }
  return 'npx meshform';
}

/** Progress of long steps on stderr: one updating line on a terminal, a line per step otherwise. */
function terminalProgress(): Progress {
  const tty = Boolean(process.stderr.isTTY);
  const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
  let message = '';
  let frame = 0;
  let timer: NodeJS.Timeout | undefined;
  const draw = () => process.stderr.write(`\r\u001b[K${frames[frame++ % frames.length]} ${message}`);
  return {
    step(next: string) {
      message = next;
      if (!tty) {
        process.stderr.write(`meshform: ${next}\n`);
        return;
      }
      timer ??= setInterval(draw, 100);
      draw();
    },
    done() {
      if (timer) clearInterval(timer);
      if (tty) process.stderr.write('\r\u001b[K');
    },
  };
}

/**
 * Reads "yes" from the terminal, asynchronously (a synchronous read of a terminal put in non-blocking mode fails
 * with EAGAIN). Ctrl-C at the prompt interrupts the run like a SIGINT; an interruption cancels the prompt.
 */
function confirmOnTerminal(question: string, abort: AbortSignal): Promise<boolean> {
  if (!process.stdin.isTTY) throw new CliError('no terminal to approve on: review the plan and pass --auto-approve', 2);
  return new Promise((resolve) => {
    const rl = readline.createInterface({ input: process.stdin, output: process.stderr, terminal: true });
    let done = false;
    const finish = (answer: boolean) => {
      if (done) return;
      done = true;
      abort.removeEventListener('abort', cancel);
      rl.close();
      process.stdin.pause();
      resolve(answer);
    };
    const cancel = () => {
      process.stderr.write('\n');
      finish(false);
    };
    abort.addEventListener('abort', cancel);
    rl.on('SIGINT', () => process.kill(process.pid, 'SIGINT'));
    rl.on('close', () => finish(false));
    rl.question(question, (answer) => finish(answer.trim() === 'yes'));
  });
}

function planOptions(values: { parallelism?: string; allow?: string[] }): { parallelism: number; allow: Set<string> } {
  const parallelism = values.parallelism === undefined ? 4 : Number(values.parallelism);
  if (!Number.isInteger(parallelism) || parallelism < 1)
    throw new CliError(`--parallelism must be a positive whole number: ${values.parallelism}`, 2);
  const allow = new Set(values.allow ?? []);
  for (const id of allow) {
    if (!(GATE_IDS as readonly string[]).includes(id))
      throw new CliError(`unknown gate "${id}" for --allow: use one of ${GATE_IDS.join(', ')}`, 2);
  }
  return { parallelism, allow };
}

/** The meshes of the project's last synthesis (only `mesh` when given), and where that synthesis is. */
function synthesizedMeshes(projectDir: string, mesh: string | undefined): { outdir: string; meshes: MeshManifest[] } {
  const outdir = path.resolve(projectDir, readCdktfConfig(projectDir).output);
  return { outdir, meshes: readSynthOutput(outdir).meshes.filter((m) => mesh === undefined || m.mesh === mesh) };
}

export function main(argv: readonly string[]): number | Promise<number> {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      project: { type: 'string' },
      'secrets-dir': { type: 'string' },
      mesh: { type: 'string' },
      datacenter: { type: 'string' },
      host: { type: 'string' },
      json: { type: 'boolean' },
      root: { type: 'boolean' },
      id: { type: 'string' },
      intermediate: { type: 'string' },
      'no-cross-sign': { type: 'boolean' },
      force: { type: 'boolean' },
      unattended: { type: 'boolean' },
      cert: { type: 'string' },
      key: { type: 'string' },
      csr: { type: 'string' },
      days: { type: 'string' },
      offline: { type: 'boolean' },
      markdown: { type: 'boolean' },
      parallelism: { type: 'string' },
      allow: { type: 'string', multiple: true },
      'no-terraform': { type: 'boolean' },
      'auto-approve': { type: 'boolean' },
      'assume-unapplied': { type: 'boolean' },
      'detailed-exitcode': { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, sub] = positionals;
  if (values.help || command === undefined || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined && !values.help ? 2 : 0;
  }
  const projectDir = path.resolve(values.project ?? '.');
  setLockCommand(`meshform ${[command, sub].filter(Boolean).join(' ')} in ${projectDir}`);
  const store = SecretStore.open({ directory: values['secrets-dir'] });

  switch (command) {
    case 'plan': {
      const { parallelism, allow } = planOptions(values);
      return planProject({
        projectDir,
        store,
        offline: values.offline === true,
        parallelism,
        allow,
        terraform: values['no-terraform'] !== true,
        assumeUnapplied: values['assume-unapplied'] === true,
        detailedExitCode: values['detailed-exitcode'] === true,
        ...(values.json ? {} : { progress: terminalProgress() }),
      }).then((plan) => {
        process.stdout.write(
          values.json
            ? `${JSON.stringify(plan, null, 2)}\n`
            : values.markdown
              ? renderPlanMarkdown(plan)
              : renderPlanText(plan),
        );
        return plan.exitCode;
      });
    }
    case 'deploy': {
      if (values.offline) throw new CliError('deploy applies for real: --offline is for plans only', 2);
      const { parallelism, allow } = planOptions(values);
      return deployProject({
        projectDir,
        store,
        parallelism,
        allow,
        assumeUnapplied: values['assume-unapplied'] === true,
        autoApprove: values['auto-approve'] === true,
        confirm: confirmOnTerminal,
        write: (t) => process.stdout.write(t),
        progress: terminalProgress(),
      });
    }
    case 'check': {
      const { result } = synthesizeMeshes(projectDir, store);
      const document = checkMeshes(result.meshes, store);
      process.stdout.write(values.json ? `${JSON.stringify(document, null, 2)}\n` : renderCheck(document));
      return document.exitCode;
    }
    case 'synth': {
      const { result, stores } = synthesizeMeshes(projectDir, store);
      const summary = renderSynthSummary(
        result.meshes,
        path.relative(projectDir, result.outdir) || '.',
        stores,
        result.dependencies,
      );
      process.stdout.write(summary.replace(/npm run -s meshform --/g, invocation(projectDir)));
      const others = result.annotations.filter((a) => a.level !== '@cdktf/info' && !a.message.startsWith('[meshform/'));
      for (const a of others) process.stdout.write(`${style.yellow(`${a.stack}: ${a.message}`)}\n`);
      return 0;
    }
    case 'secrets': {
      const { outdir, meshes } = synthesizedMeshes(projectDir, values.mesh);
      if (meshes.length === 0) {
        throw new CliError(
          values.mesh
            ? `no mesh named "${values.mesh}" in ${outdir}`
            : `no mesh in ${outdir}: run meshform synth first`,
        );
      }
      if (sub === 'env') {
        process.stdout.write(secretsAsShellExports(store, meshes));
        return 0;
      }
      if (sub === 'tfvars') {
        process.stdout.write(secretsAsTfvars(store, meshes));
        return 0;
      }
      if (sub === 'host') {
        if (!values.datacenter || !values.host)
          throw new CliError('secrets host needs --datacenter <name> and --host <name>', 2);
        if (meshes.length !== 1)
          throw new CliError(`secrets host needs --mesh <name> (meshes: ${meshes.map((m) => m.mesh).join(', ')})`, 2);
        process.stdout.write(ownHostSecrets(store, meshes[0]!, values.datacenter, values.host));
        return 0;
      }
      if (sub === 'show') {
        for (const m of meshes) {
          const { created } = store.ensure(m.mesh);
          const info = store.info(m.mesh);
          process.stdout.write(
            `${m.mesh}: ${info.directory}${created ? ' (created now)' : ''}\n` +
              info.roots
                .map((r) => `  root ${r.id} SHA-256 ${r.fingerprint}${r.unattended ? ' (unattended)' : ''}\n`)
                .join('') +
              `  variables: ${m.secretVariables.join(', ')}\n`,
          );
        }
        return 0;
      }
      throw new CliError(`unknown secrets command "${sub ?? ''}": use env, tfvars, host or show`, 2);
    }
    case 'ca': {
      const { outdir, meshes } = synthesizedMeshes(projectDir, values.mesh);
      if (meshes.length !== 1) {
        throw new CliError(
          meshes.length === 0
            ? `no mesh in ${outdir}: run meshform synth first`
            : `ca needs --mesh <name> (meshes: ${meshes.map((m) => m.mesh).join(', ')})`,
          2,
        );
      }
      const mesh = meshes[0]!;
      switch (sub) {
        case 'init':
          process.stdout.write(caInit(store, mesh, { unattended: values.unattended === true }));
          return 0;
        case 'status': {
          const { output, code } = caStatus(store, mesh, values.json === true);
          process.stdout.write(output);
          return code;
        }
        case 'rotate':
          if (values.root) {
            process.stdout.write(
              caRotateRoot(store, mesh, {
                id: values.id,
                crossSign: values['no-cross-sign'] !== true,
                force: values.force === true,
              }),
            );
            return 0;
          }
          if (values.intermediate) {
            process.stdout.write(caRotateIntermediate(store, mesh, values.intermediate));
            return 0;
          }
          throw new CliError('ca rotate needs --root or --intermediate <datacenter>', 2);
        case 'protect':
          if (!values.root || typeof values.id !== 'string')
            throw new CliError('ca protect needs --root --id <root id>', 2);
          process.stdout.write(caProtect(store, mesh, values.id));
          return 0;
        case 'import':
          if (!values.root || !values.id || !values.cert || !values.key)
            throw new CliError('ca import needs --root --id <id> --cert <file> --key <file>', 2);
          process.stdout.write(
            caImport(store, mesh, { id: values.id, certificateFile: values.cert, keyFile: values.key }),
          );
          return 0;
        case 'sign-csr': {
          if (!values.csr) throw new CliError('ca sign-csr needs --csr <file>', 2);
          const days = values.days === undefined ? undefined : Number(values.days);
          if (days !== undefined && (!Number.isInteger(days) || days < 1))
            throw new CliError(`--days must be a positive whole number: ${values.days}`, 2);
          process.stdout.write(
            caSignRequest(store, mesh, { requestFile: values.csr, ...(days ? { validityDays: days } : {}) }),
          );
          return 0;
        }
        default:
          throw new CliError(
            `unknown ca command "${sub ?? ''}": use init, status, rotate, protect, import or sign-csr`,
            2,
          );
      }
    }
    default:
      throw new CliError(`unknown command "${command}"\n\n${USAGE}`, 2);
  }
}

function report(e: unknown): void {
  if (e instanceof CliError || e instanceof MeshformError || e instanceof CaMaterialError) {
    process.stderr.write(`${style.red('meshform: error:')} ${e.message}\n`);
    process.exitCode = e instanceof CliError ? e.exitCode : 1;
  } else {
    throw e;
  }
}

/**
 * Runs one command to its end (awaiting plan and deploy) and sets the process exit code: the command's own,
 * or 1 (a CliError's code) with one `meshform: error:` line for an error meshform reports. Any other error
 * is rethrown (a bug: Node prints its stack and exits 1). The `meshform` bin (bin/meshform.js) calls this.
 */
export async function run(argv: readonly string[]): Promise<void> {
  try {
    process.exitCode = await main(argv);
  } catch (e) {
    report(e);
  }
}

if (require.main === module) void run(process.argv.slice(2));
