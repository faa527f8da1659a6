#!/usr/bin/env node
/**
 * The meshform command: `meshform <command> [options]`, parsed by commander. Every command has `--help`;
 * `meshform --version` prints the package's version. A command line meshform cannot read (an unknown
 * command or option, a missing or invalid value) exits 2 with one line; any other failure meshform reports
 * exits with its code and one `meshform: error:` line, never a stack trace.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { CaMaterialError, MeshformError } from '../constructs/errors';
import { setLockCommand } from '../constructs/private/file-lock';
import { RemoteStoreError } from '../constructs/private/remote-store';
import { TerraformCloudError } from '../constructs/private/terraform-cloud-api';
import type { MeshManifest } from '../constructs/private/mesh-manifest';
import { SecretStore } from '../constructs/secret-store';
import {
  caImport,
  caInit,
  caProtect,
  CaReport,
  caRotateIntermediate,
  caRotateRoot,
  caSignRequest,
  caStatus,
  ROOT_ID,
  UNATTENDED_ROOT_VARIABLE,
  unattendedRootChosen,
} from './ca';
import { checkMeshes, renderCheck } from './check';
import { deployWithResult } from './deploy';
import { fileSystemError } from './fs-errors';
import { GATE_IDS } from './gates';
import { CliError, MESHFORM, style } from './output';
import { planWithSynthesis, Progress } from './plan';
import { renderPlanMarkdown } from './plan-markdown';
import { nextStep, renderPlanText } from './plan-render';
import { ownHostSecrets, secretsAsShellExports, secretsAsTfvars, secretValues, settleSecretsVersions } from './secrets';
import { pushSecrets, renderPushReport } from './secrets-push';
import { renderSynthSummary, synthDocument } from './summary';
import { readCdktfConfig, readSynthOutput } from './synth';
import { synthesizeMeshes } from './synth-meshes';

/** The package's version, from the package.json above this file (cli/ in a checkout, dist/cli/ installed). */
function packageVersion(): string {
  for (let dir = __dirname; ; dir = path.dirname(dir)) {
    try {
      const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (pkg.name === 'meshform' && pkg.version) return pkg.version;
    } catch {
      // not here: look further up
    }
    if (path.dirname(dir) === dir) return 'unknown';
  }
}

/**
 * Progress of long steps on stderr: one updating line on a terminal (with the seconds since the run started), a
 * line per step otherwise.
 */
function terminalProgress(): Progress {
  const tty = Boolean(process.stderr.isTTY);
  const frames = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
  const started = Date.now();
  let message = '';
  let frame = 0;
  let timer: NodeJS.Timeout | undefined;
  const draw = () => {
    const line = `${frames[frame++ % frames.length]} ${Math.floor((Date.now() - started) / 1000)} s  ${message}`;
    // one line: a longer one would wrap, and the next draw would erase only its last row
    const width = process.stderr.columns || 80; // a pseudo-terminal may say 0
    process.stderr.write(`\r\u001b[K${line.length >= width ? `${line.slice(0, width - 2)}…` : line}`);
  };
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

/** The meshes of the project's last synthesis (only `mesh` when given), and where that synthesis is. */
function synthesizedMeshes(projectDir: string, mesh: string | undefined): { outdir: string; meshes: MeshManifest[] } {
  const outdir = path.resolve(projectDir, readCdktfConfig(projectDir).output);
  return { outdir, meshes: readSynthOutput(outdir).meshes.filter((m) => mesh === undefined || m.mesh === mesh) };
}

// ---------------------------------------------------------------------------------------------------------
// Option values: each is checked where it is parsed, so a bad one is a usage error (exit 2, one line).

/** A value that is there: not empty, and not the next option taken as the value (`--project --json`). */
function value(text: string): string {
  if (text.trim() === '') throw new InvalidArgumentError('It is empty.');
  if (text.startsWith('-')) throw new InvalidArgumentError(`It is missing: "${text}" is an option, not a value.`);
  return text;
}

/** A whole number of at least 1. */
function positive(text: string): number {
  const n = Number(value(text));
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('Use a whole number of at least 1.');
  return n;
}

/** A gate id, collected (`--allow` is repeatable). */
function gate(text: string, previous: string[] = []): string[] {
  if (!(GATE_IDS as readonly string[]).includes(text))
    throw new InvalidArgumentError(`Use one of ${GATE_IDS.join(', ')}.`);
  return previous.includes(text) ? previous : [...previous, text];
}

/** A stack name, collected (`--stack` is repeatable). */
function stackName(text: string, previous: string[] = []): string[] {
  const name = value(text);
  return previous.includes(name) ? previous : [...previous, name];
}

/** A name meshform looks up in the synthesized app (mesh, datacenter, host): one plain word, never a path. */
function name(text: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_.-]*$/.test(value(text)) || text.includes('..'))
    throw new InvalidArgumentError('Use letters, digits, ".", "_" and "-" (a name, not a path).');
  return text;
}

/** A root id: it names a directory in the secret store, so it can never lead out of it. */
function rootId(text: string): string {
  if (!ROOT_ID.test(text))
    throw new InvalidArgumentError(
      'A root id is 1 to 63 lowercase letters, digits and hyphens, starting with a letter or digit (e.g. root-2): it names a directory in the secret store, so no "/", "..", absolute path or other character.',
    );
  return text;
}

// ---------------------------------------------------------------------------------------------------------
// The commands.

/** Options every project command takes. */
interface ProjectOptions {
  readonly project?: string;
  readonly secretsDir?: string;
}

/** Where the command runs: the project directory and the secret store. */
function projectOf(options: ProjectOptions, command: string): { projectDir: string; store: SecretStore } {
  const projectDir = path.resolve(options.project ?? '.');
  setLockCommand(`meshform ${command} in ${projectDir}`);
  return { projectDir, store: SecretStore.open({ directory: options.secretsDir }) };
}

/** The options of a project's commands, shell-quoted as the next command needs them. */
function projectArgs(options: ProjectOptions): string {
  const quote = (v: string) => (/^[\w@%+=:,./-]+$/.test(v) ? v : `'${v.replace(/'/g, `'\\''`)}'`);
  return [
    ...(options.project ? ` --project ${quote(options.project)}` : []),
    ...(options.secretsDir ? ` --secrets-dir ${quote(options.secretsDir)}` : []),
  ].join('');
}

/** Prints `document` as JSON. */
function printJson(document: unknown): void {
  process.stdout.write(`${JSON.stringify(document, null, 2)}\n`);
}

/** Thrown by the parser when it printed help or the version: nothing failed. */
class Shown {
  constructor(public readonly exitCode: number) {}
}

/** The command's name as the user types it (`meshform ca rotate`). */
function commandPath(command: Command): string {
  const names: string[] = [];
  for (let c: Command | null = command; c; c = c.parent) names.unshift(c.name());
  return names.join(' ');
}

/** A parser error as one line: what is wrong, a suggestion when commander has one, and where help is. */
function usageError(error: CommanderError, command: Command): CliError {
  const where = commandPath(command).replace(/^meshform/, MESHFORM);
  let message = error.message
    .replace(/^error: /, '')
    .replace(/\n\(Did you mean (.+)\?\)/, '; did you mean $1?')
    .replace(/'([^']*)'/g, '"$1"')
    .replace(/\s*\n\s*/g, ' ')
    .trim();
  if (error.code === 'commander.unknownCommand') {
    const known = command.commands.map((c) => c.name()).filter((n) => n !== 'help');
    message += ` (commands: ${known.join(', ')})`;
  }
  return new CliError(`${message} (see ${where} --help)`, 2);
}

/**
 * A command with meshform's parser settings: usage errors thrown (not printed, not exiting) as one-line
 * CliErrors, help and version as `Shown`.
 */
function configure(command: Command): Command {
  return command
    .exitOverride((error) => {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') throw new Shown(0);
      // help the parser printed by itself: asked for (`meshform help`), or because a command is missing
      if (error.code === 'commander.help') throw new Shown(error.exitCode === 0 ? 0 : 2);
      throw usageError(error, command);
    })
    .configureOutput({ outputError: () => undefined })
    .showSuggestionAfterError(true)
    .allowExcessArguments(false);
}

/** Adds a subcommand configured as meshform's, with `--help` and the options of every project command. */
function subcommand(parent: Command, name: string, summary: string, description: string): Command {
  const command = configure(parent.command(name).summary(summary).description(description));
  return command
    .option('--project <dir>', 'project directory holding cdktf.json (default: the current directory)', value)
    .option('--secrets-dir <dir>', 'secret store directory (default: $MESHFORM_SECRETS_DIR or .meshform)', value);
}

/** The `--unattended-root` option of the commands that may create a root. */
function unattendedRootOption(command: Command): Command {
  return command.option(
    '--unattended-root',
    `without a passphrase (MESHFORM_CA_PASSPHRASE) and without a terminal to ask for one, create a new root whose generated passphrase is stored beside its key (also: ${UNATTENDED_ROOT_VARIABLE}=1); otherwise that run fails`,
  );
}

const PLAN_EXIT_HELP = `
Exit status:
  0  no change, or changes without --detailed-exitcode
  2  changes (--detailed-exitcode)
  3  a gate blocked
  1  incomplete: a stack was not planned (a failure, or not selected with --stack), or a gate cannot be
     evaluated; also any other error. With --detailed-exitcode a command line meshform cannot read exits 1
     too, so that 2 always means changes (without it, such a command line exits 2).

Examples:
  ${MESHFORM} plan --offline                 no cloud: fake credentials, a local provider mirror, local state
  ${MESHFORM} plan --stack shop-aws-vms      only that stack's Terraform plan (the plan is partial: exit 1)
  ${MESHFORM} plan --json > plan.json        the plan document (docs/plan.schema.json)`;

/** Builds the command line parser; a command's action leaves its exit code (or promise of one) in `outcome`. */
function program(outcome: { result?: number | Promise<number> }, detailedExitCode: boolean): Command {
  const cli = configure(new Command('meshform'))
    .description('Mesh-as-code: synthesize, plan, check and deploy the Consul service mesh your cdktf app describes.')
    .version(packageVersion(), '-v, --version', 'print the version of meshform')
    .helpOption('-h, --help', 'show help (also: meshform help <command>)')
    .addHelpText(
      'after',
      `\nEach command has its own help: ${MESHFORM} <command> --help. Options go after the command.\n` +
        `Passphrases: MESHFORM_CA_PASSPHRASE, or MESHFORM_CA_PASSPHRASE_<ROOT ID>; never passed to Terraform or the app.`,
    );

  // plan
  const plan = unattendedRootOption(
    subcommand(
      cli,
      'plan',
      'the change in mesh terms, the Terraform plans, risk gates and a picture',
      'Synthesize, then show the change in mesh terms against what every datacenter last applied (its record in ' +
        'its Terraform state), a real terraform plan of every stack that can be planned here, the risk gates, and ' +
        'an SVG picture. Ends with the next step to take.',
    ),
  )
    .option('--offline', 'plan without any cloud: fake credentials, the local provider mirror, local state only')
    .addOption(new Option('--json', 'print the plan document (docs/plan.schema.json)').conflicts('markdown'))
    .option(
      '--markdown',
      'print the plan as one pull-request comment (a marker line to update it in place, the gates, a Mermaid topology, each stack collapsed)',
    )
    .addOption(
      new Option(
        '--remote-plan <mode>',
        'how stacks whose workspace runs in Terraform Cloud are planned there: speculative (never applied) or saved (a saved plan run, confirmed in Terraform Cloud)',
      )
        .choices(['speculative', 'saved'])
        .default('speculative'),
    )
    .option('--stack <name>', 'plan only this stack with Terraform (repeatable); the plan is partial', stackName)
    .option('--allow <gate>', `acknowledge a gate (repeatable): ${GATE_IDS.join(', ')}`, gate)
    .option('--parallelism <n>', 'Terraform plans at a time (default 4)', positive)
    .option('--no-terraform', 'skip Terraform: the mesh-level plan and gates only')
    .option('--assume-unapplied', 'a record that cannot be read counts as never applied, and the plan says so')
    .option('--detailed-exitcode', 'exit 2 when something changes')
    .addHelpText('after', PLAN_EXIT_HELP)
    .action((o: PlanCommandOptions) => {
      const { projectDir, store } = projectOf(o, 'plan');
      const planning = planWithSynthesis({
        projectDir,
        store,
        offline: o.offline === true,
        parallelism: o.parallelism ?? 4,
        allow: new Set(o.allow ?? []),
        terraform: o.terraform !== false,
        assumeUnapplied: o.assumeUnapplied === true,
        detailedExitCode: detailedExitCode,
        ...(o.stack ? { stacks: o.stack } : {}),
        ...(o.unattendedRoot ? { unattendedRoot: true } : {}),
        remotePlans: o.remotePlan ?? 'speculative',
        ...(o.json ? {} : { progress: terminalProgress() }),
      });
      outcome.result = planning.then(({ plan: document, synthesis }) => {
        const next = nextStep(document, projectArgs(o));
        if (o.json) printJson(document);
        else
          process.stdout.write(
            o.markdown ? renderPlanMarkdown(document, next, synthesis.result.meshes) : renderPlanText(document, next),
          );
        return document.exitCode;
      });
    });
  void plan;

  // deploy
  unattendedRootOption(
    subcommand(
      cli,
      'deploy',
      'plan, approve, apply exactly the approved plans, stack by stack',
      "Plan, ask for approval (each saved plan's sha256 shown, or its saved run in Terraform Cloud), then apply exactly those plans: stacks that left " +
        'the app are destroyed first, the others applied in dependency order; a re-run continues after a failure ' +
        'or an interruption.',
    ),
  )
    .option('--auto-approve', 'apply without asking (refused while a gate is not acknowledged)')
    .option('--allow <gate>', `acknowledge a gate (repeatable): ${GATE_IDS.join(', ')}`, gate)
    .option('--parallelism <n>', 'Terraform plans at a time (default 4)', positive)
    .option('--assume-unapplied', 'a record that cannot be read counts as never applied, and the plan says so')
    .option('--json', 'print the plan and what the deploy did as JSON (the plan and progress go to stderr)')
    .addOption(new Option('--offline').hideHelp())
    .addHelpText(
      'after',
      '\nExit status: 0 applied or nothing to apply, 3 a gate blocked, 1 refused (an incomplete plan), cancelled or failed, 128+n interrupted by signal n.',
    )
    .action((o: DeployCommandOptions) => {
      if (o.offline) throw new CliError('deploy applies for real: --offline is for plans only', 2);
      const { projectDir, store } = projectOf(o, 'deploy');
      const write = (t: string) => (o.json ? process.stderr : process.stdout).write(t);
      outcome.result = deployWithResult({
        projectDir,
        store,
        parallelism: o.parallelism ?? 4,
        allow: new Set(o.allow ?? []),
        assumeUnapplied: o.assumeUnapplied === true,
        autoApprove: o.autoApprove === true,
        ...(o.unattendedRoot ? { unattendedRoot: true } : {}),
        confirm: confirmOnTerminal,
        write,
        progress: terminalProgress(),
      }).then((result) => {
        if (o.json) printJson(result);
        return result.exitCode;
      });
    });

  // check
  unattendedRootOption(
    subcommand(
      cli,
      'check',
      'prove every declared upstream reachable',
      'Synthesize, then prove every declared upstream reachable: shared trust, a gateway path, an allowing ' +
        "intention, a protocol fit for the L7 rules, failover targets running the service; and the primary's " +
        "servers admitted by every Kubernetes secondary's API server.",
    ),
  )
    .option('--json', 'print the check document')
    .addHelpText('after', '\nExit status: 0 all reachable, 4 a broken or unproven edge (the fix is named), 1 an error.')
    .action((o: JsonOptions & ProjectOptions & { unattendedRoot?: boolean }) => {
      const { projectDir, store } = projectOf(o, 'check');
      const { result } = synthesizeMeshes(projectDir, store, { unattendedRoot: o.unattendedRoot === true });
      const document = checkMeshes(result.meshes, store);
      process.stdout.write(o.json ? `${JSON.stringify(document, null, 2)}\n` : renderCheck(document));
      outcome.result = document.exitCode;
    });

  // synth
  unattendedRootOption(
    subcommand(
      cli,
      'synth',
      'synthesize the app, create the secret store and CA material, summarize',
      'Synthesize the app named in cdktf.json into its output directory (default cdktf.out; replaced only when ' +
        'the synthesis succeeds), create the local secret store of each mesh and its CA material if absent, and ' +
        'print a summary: stacks in deploy order, datacenters, federation, secrets.',
    ),
  )
    .option('--json', 'print what was synthesized as JSON')
    .action((o: JsonOptions & ProjectOptions & { unattendedRoot?: boolean }) => {
      const { projectDir, store } = projectOf(o, 'synth');
      const { result, stores } = synthesizeMeshes(projectDir, store, { unattendedRoot: o.unattendedRoot === true });
      const outdir = path.relative(projectDir, result.outdir) || '.';
      const others = result.annotations.filter((a) => a.level !== '@cdktf/info' && !a.message.startsWith('[meshform/'));
      if (o.json) {
        printJson(synthDocument(result.meshes, outdir, stores, result.dependencies, others));
      } else {
        process.stdout.write(renderSynthSummary(result.meshes, outdir, stores, result.dependencies));
        for (const a of others) process.stdout.write(`${style.yellow(`${a.stack}: ${a.message}`)}\n`);
      }
      outcome.result = 0;
    });

  // secrets
  const secrets = configure(
    cli
      .command('secrets')
      .summary("the mesh's secret variables: env, tfvars, host, show, push")
      .description(
        "The secret variables of the last synthesis' meshes (gossip key, ACL tokens, each datacenter's TLS material), " +
          'from the secret store. Root keys are never among them.',
      ),
  );
  const secretsCommand = (
    sub: string,
    summary: string,
    action: (o: SecretsOptions, meshes: MeshManifest[], store: SecretStore, outdir: string) => void,
  ) =>
    subcommand(secrets, sub, summary, summary)
      .option('--mesh <name>', 'only this mesh', name)
      .action((o: SecretsOptions) => {
        const { projectDir, store } = projectOf(o, `secrets ${sub}`);
        const { outdir, meshes } = synthesizedMeshes(projectDir, o.mesh);
        if (meshes.length === 0)
          throw new CliError(
            o.mesh ? `no mesh named "${o.mesh}" in ${outdir}` : `no mesh in ${outdir}: run ${MESHFORM} synth first`,
          );
        // a pipeline reads the shared store and never writes it
        for (const m of meshes) store.connect(m.mesh, m.secretStore, { writable: false });
        action(o, meshes, store, outdir);
        outcome.result = 0;
      });
  secretsCommand(
    'env',
    `print shell exports (TF_VAR_*) of every secret variable: eval "$(${MESHFORM} secrets env)"`,
    (_o, meshes, store) => process.stdout.write(secretsAsShellExports(store, meshes)),
  );
  secretsCommand(
    'tfvars',
    'print the secret variables as HCL (a Terraform Cloud variable set), or as .tfvars.json',
    (o, meshes, store) =>
      o.json
        ? printJson(Object.fromEntries(meshes.flatMap((m) => secretValues(store, m).map((s) => [s.variable, s.value]))))
        : process.stdout.write(secretsAsTfvars(store, meshes)),
  ).option('--json', 'print a .tfvars.json document (terraform -var-file)');
  secretsCommand(
    'host',
    "print the secrets file of one of your own hosts (pipe it to the host over SSH; see the host's bundle README)",
    (o, meshes, store) => {
      if (meshes.length !== 1)
        throw new CliError(`secrets host needs --mesh <name> (meshes: ${meshes.map((m) => m.mesh).join(', ')})`, 2);
      process.stdout.write(ownHostSecrets(store, meshes[0]!, o.datacenter!, o.host!));
    },
  )
    .requiredOption('--datacenter <name>', 'the datacenter of the host', name)
    .requiredOption('--host <name>', 'the host', name);
  secretsCommand(
    'show',
    "print where each mesh's secrets live and the root fingerprints (no secret)",
    (o, meshes, store) => {
      const shown = meshes.map((m) => {
        const { created } = store.ensure(m.mesh);
        return { mesh: m.mesh, created, ...store.info(m.mesh), variables: m.secretVariables };
      });
      if (o.json) {
        printJson({ meshes: shown });
        return;
      }
      for (const m of shown)
        process.stdout.write(
          `${m.mesh}: ${m.directory}${m.created ? ' (created now)' : ''}\n` +
            m.roots
              .map((r) => `  root ${r.id} SHA-256 ${r.fingerprint}${r.unattended ? ' (unattended)' : ''}\n`)
              .join('') +
            `  variables: ${m.variables.join(', ')}\n`,
        );
    },
  ).option('--json', 'print it as JSON');
  secretsCommand(
    'push',
    "write each stack's secret variables to its Terraform Cloud workspace (or one variable set) as sensitive variables; prints names, never values",
    (o, meshes, store, outdir) => {
      const report = pushSecrets(store, meshes, outdir, {
        ...(o.variableSet !== undefined ? { variableSet: o.variableSet } : {}),
        ...(o.organization !== undefined ? { organization: o.organization } : {}),
        ...(o.hostname !== undefined ? { hostname: o.hostname } : {}),
      });
      if (o.json) printJson(report);
      else process.stdout.write(renderPushReport(report));
    },
  )
    .option(
      '--variable-set <name>',
      "push every stack's variables to this variable set instead of each stack's workspace",
      value,
    )
    .option(
      '--organization <name>',
      "the organization of --variable-set (default: the stacks' Terraform Cloud organization)",
      value,
    )
    .option(
      '--hostname <host>',
      'Terraform Cloud or Enterprise host of --variable-set (default: app.terraform.io)',
      value,
    )
    .option('--json', 'print what changed as JSON (names and actions, never values)')
    .addHelpText(
      'after',
      '\nToken: TF_TOKEN_<host, dots as underscores> (e.g. TF_TOKEN_app_terraform_io) or TFE_TOKEN. A second run with the same ' +
        'values reports every variable unchanged.',
    );

  // ca
  const ca = configure(
    cli
      .command('ca')
      .summary("the mesh's CA: init, status, rotate, protect, import, sign-csr")
      .description(
        "The mesh's certificate authority in the secret store: an offline root (its key encrypted with your " +
          "passphrase), each datacenter's intermediate and server certificate.",
      ),
  );
  const caCommand = (
    sub: string,
    summary: string,
    run: (o: CaOptions, mesh: MeshManifest, store: SecretStore) => CaReport,
  ) =>
    subcommand(ca, sub, summary, summary)
      .option('--mesh <name>', 'the mesh (needed when the app has several)', name)
      .option('--json', 'print what was done as JSON')
      .action((o: CaOptions) => {
        const { projectDir, store } = projectOf(o, `ca ${sub}`);
        const { outdir, meshes } = synthesizedMeshes(projectDir, o.mesh);
        if (meshes.length !== 1)
          throw new CliError(
            meshes.length === 0
              ? o.mesh
                ? `no mesh named "${o.mesh}" in ${outdir}`
                : `no mesh in ${outdir}: run ${MESHFORM} synth first`
              : `ca needs --mesh <name> (meshes: ${meshes.map((m) => m.mesh).join(', ')})`,
            2,
          );
        const mesh = meshes[0]!;
        // the CA commands run where the root key is: each write they make reaches the shared store when it completes
        store.connect(mesh.mesh, mesh.secretStore, { writable: true });
        const report = run(o, mesh, store);
        // a rotation changes what the datacenters hold
        if (sub === 'rotate') settleSecretsVersions(store, mesh);
        if (o.json) printJson(report.json);
        else process.stdout.write(report.text);
        outcome.result = typeof report.json.exitCode === 'number' ? report.json.exitCode : 0;
      });
  unattendedRootOption(
    caCommand(
      'init',
      "create the mesh's first root (when the app was synthesized by cdktf synth, not by meshform)",
      (o, mesh, store) =>
        caInit(store, mesh, { unattended: unattendedRootChosen(o.unattendedRoot === true || o.unattended === true) }),
    ),
  ).addOption(new Option('--unattended', 'the same as --unattended-root').hideHelp());
  caCommand('status', 'every certificate: subject, issuer, fingerprint, expiry, state', (o, mesh, store) => {
    const { output, code } = caStatus(store, mesh, o.json === true);
    return { text: output, json: { ...(o.json ? (JSON.parse(output) as object) : {}), exitCode: code } };
  }).addHelpText(
    'after',
    '\nExit status: 0 all valid, 10 something due for renewal or rotation (or missing), 20 invalid or expired material.',
  );
  unattendedRootOption(
    caCommand(
      'rotate',
      'a new root cross-signed by the active one (--root), or a new intermediate for one datacenter (--intermediate)',
      (o, mesh, store) => {
        if (o.intermediate) return caRotateIntermediate(store, mesh, o.intermediate);
        if (!o.root)
          throw new CliError(
            `ca rotate needs --root or --intermediate <datacenter> (see ${MESHFORM} ca rotate --help)`,
            2,
          );
        return caRotateRoot(store, mesh, {
          ...(o.id ? { id: o.id } : {}),
          crossSign: o.crossSign !== false,
          force: o.force === true,
          unattended: unattendedRootChosen(o.unattendedRoot === true),
        });
      },
    ),
  )
    .addOption(new Option('--root', 'rotate the root').conflicts('intermediate'))
    .option('--intermediate <datacenter>', 'issue a new intermediate and server certificate for this datacenter', name)
    .option('--id <id>', "the new root's id (default: root-<n+1>)", rootId)
    .option('--no-cross-sign', 'do not cross-sign the new root (needs --force: datacenters on the old root reject it)')
    .option('--force', 'with --no-cross-sign: accept that disruption');
  caCommand(
    'protect',
    "encrypt an unattended root's key with your passphrase and remove the stored one",
    (o, mesh, store) => caProtect(store, mesh, o.id!),
  )
    .requiredOption('--id <id>', 'the root', rootId)
    .addOption(new Option('--root').hideHelp());
  caCommand(
    'import',
    'bring an existing root (e.g. from `consul tls ca create`) into the store, after checking it (key passphrase: MESHFORM_IMPORT_KEY_PASSPHRASE)',
    (o, mesh, store) => caImport(store, mesh, { id: o.id!, certificateFile: o.cert!, keyFile: o.key! }),
  )
    .requiredOption('--id <id>', 'the root id to give it', rootId)
    .requiredOption('--cert <file>', 'its certificate (PEM)', value)
    .requiredOption('--key <file>', 'its private key (PEM)', value)
    .addOption(new Option('--root').hideHelp());
  caCommand(
    'sign-csr',
    "sign a CA request (e.g. Vault's service mesh root mount) with the active root; prints the certificate and the root",
    (o, mesh, store) =>
      caSignRequest(store, mesh, { requestFile: o.csr!, ...(o.days ? { validityDays: o.days } : {}) }),
  )
    .requiredOption('--csr <file>', 'the certificate request (PEM)', value)
    .option('--days <n>', 'validity (default: the intermediate validity of the topology)', positive);

  return cli;
}

interface JsonOptions {
  readonly json?: boolean;
}

interface PlanCommandOptions extends ProjectOptions, JsonOptions {
  readonly offline?: boolean;
  readonly markdown?: boolean;
  readonly remotePlan?: 'speculative' | 'saved';
  readonly stack?: string[];
  readonly allow?: string[];
  readonly parallelism?: number;
  readonly terraform?: boolean;
  readonly assumeUnapplied?: boolean;
  readonly unattendedRoot?: boolean;
}

interface DeployCommandOptions extends ProjectOptions, JsonOptions {
  readonly offline?: boolean;
  readonly autoApprove?: boolean;
  readonly allow?: string[];
  readonly parallelism?: number;
  readonly assumeUnapplied?: boolean;
  readonly unattendedRoot?: boolean;
}

interface SecretsOptions extends ProjectOptions, JsonOptions {
  readonly mesh?: string;
  readonly variableSet?: string;
  readonly organization?: string;
  readonly hostname?: string;
  readonly datacenter?: string;
  readonly host?: string;
}

interface CaOptions extends ProjectOptions, JsonOptions {
  readonly mesh?: string;
  readonly unattendedRoot?: boolean;
  readonly unattended?: boolean;
  readonly root?: boolean;
  readonly intermediate?: string;
  readonly id?: string;
  readonly crossSign?: boolean;
  readonly force?: boolean;
  readonly cert?: string;
  readonly key?: string;
  readonly csr?: string;
  readonly days?: number;
}

/**
 * Runs the command line `argv` (without `node meshform`): returns its exit code, or a promise of it for plan
 * and deploy. Throws a CliError (exit code 2 for a command line it cannot read) or a meshform error.
 */
export function main(argv: readonly string[]): number | Promise<number> {
  // with --detailed-exitcode, plan's 2 means "changes": a command line it cannot read exits 1 instead
  const detailedExitCode = argv.includes('--detailed-exitcode');
  const usage = (e: unknown): unknown =>
    detailedExitCode && e instanceof CliError && e.exitCode === 2 ? new CliError(e.message, 1) : e;
  const outcome: { result?: number | Promise<number> } = {};
  // commander's help takes its exit code from process.exitCode (a previous run's, in one process): none here
  const previousExitCode = process.exitCode;
  process.exitCode = undefined;
  try {
    program(outcome, detailedExitCode).parse([...argv], { from: 'user' });
  } catch (e) {
    if (e instanceof Shown) return e.exitCode;
    throw usage(e);
  } finally {
    process.exitCode = previousExitCode;
  }
  const result = outcome.result ?? 0;
  return typeof result === 'number'
    ? result
    : result.catch((e: unknown) => {
        throw usage(e);
      });
}

/**
 * Commands the messages suggest, in the form that runs where the user is: `npx meshform ...` (messages
 * written by the library name them as `meshform ...`, in backticks).
 */
export function withInvocation(message: string): string {
  return message.replace(/`meshform (?=[a-z])/g, `\`${MESHFORM} `);
}

/** Prints an error meshform reports, as one `meshform: error:` line, and sets the exit code; rethrows a bug. */
function report(e: unknown): void {
  const fileSystem = fileSystemError(e);
  if (
    fileSystem ||
    e instanceof CliError ||
    e instanceof MeshformError ||
    e instanceof CaMaterialError ||
    e instanceof RemoteStoreError ||
    e instanceof TerraformCloudError
  ) {
    const error = (fileSystem ?? e) as Error;
    process.stderr.write(`${style.red('meshform: error:')} ${withInvocation(error.message)}\n`);
    process.exitCode = error instanceof CliError ? error.exitCode : 1;
  } else {
    throw e;
  }
}

/**
 * Runs one command to its end (awaiting plan and deploy) and sets the process exit code: the command's own,
 * or 1 (a CliError's code) with one `meshform: error:` line for an error meshform reports, including a file
 * system failure (a full disk, a read-only directory: the path and the fix). Any other error is rethrown (a
 * bug: Node prints its stack and exits 1). The `meshform` bin (bin/meshform.js) calls this.
 */
export async function run(argv: readonly string[]): Promise<void> {
  try {
    process.exitCode = await main(argv);
  } catch (e) {
    report(e);
  }
}

if (require.main === module) void run(process.argv.slice(2));
