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
import { parseArgs } from 'node:util';
import { CaMaterialError, MeshformError } from '../constructs/errors';
import { SecretStore } from '../constructs/secret-store';
import { CliError, style } from './output';
import {
  caImport,
  caInit,
  caProtect,
  caRotateIntermediate,
  caRotateRoot,
  caSignRequest,
  caStatus,
  checkRootTransition,
  lastSynthesized,
  reconcileMeshCa,
  recordSynthesized,
} from './ca';
import { ownHostSecrets, secretsAsShellExports, secretsAsTfvars } from './secrets';
import { renderSynthSummary, StoreStatus } from './summary';
import { readCdktfConfig, readSynthOutput, SynthResult, synthesize } from './synth';
import { summarizeMeshChanges } from '../constructs/private/mesh-diff';
import { CONNECT_CA_DIR, MESH_MANIFEST_DIR } from '../constructs/private/mesh-manifest';

const USAGE = `Usage: meshform <command> [options]

Commands:
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

/**
 * A CA rotation step (a new agent TLS root, retiring the previous one, or a new service mesh CA) is refused
 * together with other changes of the mesh: it must be reviewed, planned and deployed on its own. A service
 * mesh CA change Consul cannot cross-sign (AWS Private CA) is refused unless the topology accepts it.
 */
function rotationAlone(previous: SynthResult | undefined, next: SynthResult): Map<string, string[]> {
  const notes = new Map<string, string[]>();
  for (const mesh of next.meshes) {
    const before = previous?.meshes.find((m) => m.mesh === mesh.mesh);
    if (!before || before.format !== mesh.format) continue;
    const changes = summarizeMeshChanges(before, mesh);
    const rotation = changes.rootRotation || changes.meshCaRotation !== undefined;
    if (changes.rootRotation && changes.meshCaRotation) {
      throw new CliError(
        `mesh ${mesh.mesh}: the agent TLS root and the service mesh CA change together; nothing was written. ` +
          'Fix: rotate one, deploy every datacenter, then the other',
      );
    }
    if (rotation && changes.other.length > 0) {
      throw new CliError(
        `mesh ${mesh.mesh}: a ${changes.rootRotation ? 'root rotation' : 'service mesh CA change'} step is refused together with other changes (${changes.other.join('; ')}); nothing was written. ` +
          'Fix: synthesize and deploy the rotation step on its own, then the other changes',
      );
    }
    const meshCa = changes.meshCaRotation;
    if (meshCa?.withoutCrossSigning && !mesh.ca.meshCa.allowRotationWithoutCrossSigning) {
      throw new CliError(
        `mesh ${mesh.mesh}: changing the service mesh CA from ${meshCa.from} to ${meshCa.to} cannot be cross-signed (AWS Private CA does not support it): ` +
          'sidecars reject peers on the other root until every certificate is reissued; nothing was written. ' +
          'Fix: set allowRotationWithoutCrossSigning: true on the certificate authority to accept the disruption',
      );
    }
    const lines: string[] = [];
    if (changes.rootRotation) {
      const plan = mesh.ca.plan;
      lines.push(
        plan.previousRoot
          ? `root rotation step: ${plan.previousRoot} → ${plan.root}${plan.crossSign ? ' (cross-signed)' : ' (NOT cross-signed)'}: deploy every datacenter, then remove previousRoot`
          : `root rotation finished: only ${plan.root} is trusted once every datacenter is deployed`,
      );
    }
    if (meshCa) {
      const file = path.join(
        path.relative(process.cwd(), next.outdir.replace(/\.staging-\d+$/, '')) || '.',
        MESH_MANIFEST_DIR,
        CONNECT_CA_DIR,
        `${mesh.mesh}.json`,
      );
      lines.push(
        `service mesh CA change: ${meshCa.from} → ${meshCa.to}. Consul reads its CA configuration file only at first start: ` +
          `after deploying, apply it on the primary (${mesh.primary}) with \`consul connect ca set-config -config-file ${file}\` (management token)`,
      );
    }
    notes.set(mesh.mesh, lines);
  }
  return notes;
}

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
      // The store is brought in line with the new topology before the output is replaced: when a CA check
      // refuses, the previous output stays as it was.
      const stores: StoreStatus[] = [];
      const result = synthesize(projectDir, config, (previous, next) => {
        // what certificates were last issued for (the store) counts over a cdktf.out that may be stale or absent
        const before: SynthResult = {
          outdir: previous?.outdir ?? path.resolve(projectDir, config.output),
          annotations: [],
          meshes: next.meshes.flatMap((m) => {
            const known =
              (store.has(m.mesh) ? lastSynthesized(store, m.mesh) : undefined) ??
              previous?.meshes.find((p) => p.mesh === m.mesh);
            return known ? [known] : [];
          }),
        };
        const notes = rotationAlone(before, next);
        for (const m of next.meshes) {
          checkRootTransition(
            before.meshes.find((b) => b.mesh === m.mesh),
            m,
          );
          const { created } = store.ensure(m.mesh);
          const certificates = [...(notes.get(m.mesh) ?? []).map((n) => style.yellow(n)), ...reconcileMeshCa(store, m)];
          recordSynthesized(store, m);
          stores.push({ mesh: m.mesh, created, certificates, ...store.info(m.mesh) });
        }
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
      const outdir = path.resolve(projectDir, readCdktfConfig(projectDir).output);
      const meshes = readSynthOutput(outdir).meshes.filter((m) => values.mesh === undefined || m.mesh === values.mesh);
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

if (require.main === module) {
  try {
    process.exitCode = main(process.argv.slice(2));
  } catch (e) {
    if (e instanceof CliError || e instanceof MeshformError || e instanceof CaMaterialError) {
      process.stderr.write(`${style.red('meshform: error:')} ${e.message}\n`);
      process.exitCode = e instanceof CliError ? e.exitCode : 1;
    } else {
      throw e;
    }
  }
}
