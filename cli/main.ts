#!/usr/bin/env node
/**
 * The meshform command.
 *
 *   meshform synth                synthesize the app of cdktf.json, create the secret store if absent, summarize
 *   meshform secrets env          print `export TF_VAR_...` lines for the mesh's secret variables (eval them)
 *   meshform secrets tfvars       print the secret variables as HCL (for a Terraform Cloud variable set)
 *   meshform secrets show         print where the secrets live and the server CA fingerprint (no secret)
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { MeshformError } from '../constructs/errors';
import { SecretStore } from '../constructs/secret-store';
import { CliError, style } from './output';
import { ownHostSecrets, secretsAsShellExports, secretsAsTfvars } from './secrets';
import { renderSynthSummary, StoreStatus } from './summary';
import { readCdktfConfig, readSynthOutput, synthesize } from './synth';

const USAGE = `Usage: meshform <command> [options]

Commands:
  synth                 Synthesize the app named in cdktf.json into its output directory (default cdktf.out),
                        create the local secret store of each mesh if absent, and print a summary.
  secrets env           Print shell exports (TF_VAR_*) of every mesh's secret variables: eval "$(meshform secrets env)"
  secrets tfvars        Print the secret variables as HCL, for a Terraform Cloud variable set.
  secrets host          Print the secrets file of one of your own hosts (--mesh, --datacenter, --host); pipe it
                        to the host over SSH (see the host's bundle README).
  secrets show          Print where each mesh's secrets live and the server CA fingerprint (prints no secret).
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

export function main(argv: readonly string[]): number {
  const { values, positionals } = parseArgs({
    args: [...argv],
    allowPositionals: true,
    options: {
      project: { type: 'string' },
      'secrets-dir': { type: 'string' },
      mesh: { type: 'string' },
      datacenter: { type: 'string' },
      host: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  const [command, sub] = positionals;
  if (values.help || command === undefined || command === 'help') {
    process.stdout.write(USAGE);
    return command === undefined && !values.help ? 2 : 0;
  }
  const projectDir = path.resolve(values.project ?? '.');
  const store = SecretStore.open({ directory: values['secrets-dir'] });

  switch (command) {
    case 'synth': {
      const config = readCdktfConfig(projectDir);
      const result = synthesize(projectDir, config);
      const stores: StoreStatus[] = result.meshes.map((m) => {
        const { created } = store.ensure(m.mesh);
        return { mesh: m.mesh, created, ...store.info(m.mesh) };
      });
      const manifest = JSON.parse(fs.readFileSync(path.join(result.outdir, 'manifest.json'), 'utf8')) as {
        stacks: { [name: string]: { dependencies: string[] } };
      };
      const deps = Object.fromEntries(Object.entries(manifest.stacks).map(([n, s]) => [n, s.dependencies]));
      const summary = renderSynthSummary(result.meshes, path.relative(projectDir, result.outdir) || '.', stores, deps);
      process.stdout.write(summary.replace(/npm run -s meshform --/g, invocation(projectDir)));
      const others = result.annotations.filter((a) => a.level !== '@cdktf/info' && !a.message.startsWith('[meshform/'));
      for (const a of others) process.stdout.write(`${style.yellow(`${a.stack}: ${a.message}`)}\n`);
      return 0;
    }
    case 'secrets': {
      const outdir = path.resolve(projectDir, readCdktfConfig(projectDir).output);
      const meshes = readSynthOutput(outdir).meshes.filter((m) => values.mesh === undefined || m.mesh === values.mesh);
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
        if (!values.datacenter || !values.host) throw new CliError('secrets host needs --datacenter <name> and --host <name>', 2);
        if (meshes.length !== 1) throw new CliError(`secrets host needs --mesh <name> (meshes: ${meshes.map((m) => m.mesh).join(', ')})`, 2);
        process.stdout.write(ownHostSecrets(store, meshes[0]!, values.datacenter, values.host));
        return 0;
      }
      if (sub === 'show') {
        for (const m of meshes) {
          const { created } = store.ensure(m.mesh);
          const info = store.info(m.mesh);
          process.stdout.write(
            `${m.mesh}: ${info.directory}${created ? ' (created now)' : ''}\n  server CA SHA-256 ${info.serverCaFingerprint}\n` +
              `  variables: ${m.secretVariables.join(', ')}\n`,
          );
        }
        return 0;
      }
      throw new CliError(`unknown secrets command "${sub ?? ''}": use env, tfvars, host or show`, 2);
    }
    default:
      throw new CliError(`unknown command "${command}"\n\n${USAGE}`, 2);
  }
}

if (require.main === module) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (e) {
    if (e instanceof CliError || e instanceof MeshformError) {
      process.stderr.write(`${style.red('meshform: error:')} ${e.message}\n`);
      process.exitCode = e instanceof CliError ? e.exitCode : 1;
    } else {
      throw e;
    }
  }
}
