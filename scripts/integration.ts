/**
 * `npm run test:integration`: every AWS-only stack of the examples (VM datacenters on EC2, the AWS infra of EKS
 * clusters), synthesized in endpoint mode and run against the AWS-compatible endpoint in MESHFORM_AWS_ENDPOINT:
 * init, apply, an empty plan right after, optionally a second apply that changes nothing (--second-apply),
 * destroy, and nothing left on the endpoint carrying the stack's tags. Without an endpoint it says why it is
 * skipped and exits 0.
 *
 *   MESHFORM_AWS_ENDPOINT=http://localhost:4566 npm run test:integration [-- --second-apply] [-- --parallelism 2]
 *     [-- --only default/shop-aws-vms]   (one stack, <example>/<stack>; repeatable)
 *
 * Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (default "test", which LocalStack accepts). Logs of a
 * failed stack are kept under .meshform-cache/integration/.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { parseArgs } from 'node:util';
import { reconcileMeshCa } from '../cli/ca';
import { taggedResources } from '../cli/aws-sigv4';
import { detectEmulator, EmulatorProfile } from '../cli/emulators';
import { IntegrationStack, renderIntegration, runIntegration } from '../cli/integration';
import { secretVariables } from '../cli/secrets';
import { readSynthOutput } from '../cli/synth';
import { findProviderMirror, stackProviders, TerraformEnvironment, terraformAvailability } from '../cli/terraform';
import { App } from '../constructs/private/engine';
import { SecretStore } from '../constructs/secret-store';
import { EXAMPLES } from '../examples';

const ROOT = path.resolve(__dirname, '..');

/** Why the tier cannot run, or undefined when it can. */
async function unreachable(endpoint: string): Promise<string | undefined> {
  try {
    await fetch(endpoint, { signal: AbortSignal.timeout(5000) });
    return undefined;
  } catch (e) {
    return `${endpoint} does not answer (${(e as Error).cause instanceof Error ? ((e as Error).cause as Error).message : (e as Error).message})`;
  }
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    options: {
      'second-apply': { type: 'boolean' },
      parallelism: { type: 'string' },
      only: { type: 'string', multiple: true },
    },
  });
  const endpoint = process.env.MESHFORM_AWS_ENDPOINT;
  if (!endpoint) {
    process.stdout.write(
      'integration tier skipped: no AWS-compatible endpoint configured. Set MESHFORM_AWS_ENDPOINT (e.g. LocalStack: ' +
        'MESHFORM_AWS_ENDPOINT=http://localhost:4566 npm run test:integration) to apply, re-plan and destroy every AWS stack of the examples.\n',
    );
    return 0;
  }
  const down = await unreachable(endpoint);
  if (down) {
    process.stderr.write(`integration tier: MESHFORM_AWS_ENDPOINT is set but ${down}\n`);
    return 1;
  }
  const terraform = terraformAvailability({ offline: false });
  if (!terraform.ok) {
    process.stderr.write(`integration tier: ${terraform.reason}\n`);
    return 1;
  }
  const mirror = findProviderMirror();
  const env = { ...terraform.env, ...(mirror ? { mirror } : {}) };
  const parallelism = Number(values.parallelism ?? process.env.MESHFORM_INTEGRATION_PARALLELISM ?? 2);
  const work = path.join(ROOT, '.meshform-cache', 'integration');
  fs.rmSync(work, { recursive: true, force: true });
  fs.mkdirSync(work, { recursive: true, mode: 0o700 });
  // a throw-away secret store for this run: it holds CA keys, so it is removed whatever the outcome
  const storeDir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshform-integration-store-'));
  try {
    return await integrate(endpoint, env, work, parallelism, values['second-apply'] === true, storeDir, values.only);
  } finally {
    fs.rmSync(storeDir, { recursive: true, force: true });
  }
}

async function integrate(
  endpoint: string,
  env: TerraformEnvironment,
  work: string,
  parallelism: number,
  secondApply: boolean,
  storeDir: string,
  only: readonly string[] | undefined,
): Promise<number> {
  const store = SecretStore.open({ directory: storeDir });

  const stacks: IntegrationStack[] = [];
  const available: string[] = [];
  for (const example of EXAMPLES) {
    // synthesized in endpoint mode: MESHFORM_AWS_ENDPOINT is read by every mesh (MeshformAws.fromEnvironment)
    const outdir = path.join(work, 'synth', example.name);
    fs.mkdirSync(path.dirname(outdir), { recursive: true });
    const app = new App({ outdir, stackTraces: false });
    example.define(app);
    app.synth();
    const variables: { [name: string]: string } = {};
    for (const mesh of readSynthOutput(outdir).meshes) {
      store.ensure(mesh.mesh);
      reconcileMeshCa(
        store,
        mesh,
        () => undefined,
        undefined,
        () => undefined,
      );
      Object.assign(variables, secretVariables(store, [mesh]));
    }
    for (const stack of fs.readdirSync(path.join(outdir, 'stacks')).sort()) {
      const dir = path.join(outdir, 'stacks', stack);
      const json = JSON.parse(fs.readFileSync(path.join(dir, 'cdk.tf.json'), 'utf8')) as {
        provider?: { [name: string]: unknown };
      };
      const providers = stackProviders(json);
      if (providers.length !== 1 || providers[0] !== 'aws') continue;
      available.push(`${example.name}/${stack}`);
      if (!only || only.includes(`${example.name}/${stack}`))
        stacks.push({ group: example.name, stack, dir, variables });
    }
  }
  const unknown = (only ?? []).filter((o) => !available.includes(o));
  if (unknown.length) {
    process.stderr.write(
      `integration tier: --only ${unknown.join(', ')}: no such AWS stack (they are: ${available.join(', ')})\n`,
    );
    return 1;
  }
  const emulator: EmulatorProfile | undefined = await detectEmulator(endpoint);
  process.stdout.write(
    `integration tier: ${stacks.length} AWS stack${stacks.length === 1 ? '' : 's'} against ${endpoint} (${parallelism} at a time); emulator: ${
      emulator
        ? `${emulator.name} (its missing APIs and quirks are handled as cli/emulators.ts lists them)`
        : 'not recognised (no differences from AWS are filtered)'
    }\n`,
  );
  const credentials = {
    accessKeyId: process.env.AWS_ACCESS_KEY_ID ?? 'test',
    secretAccessKey: process.env.AWS_SECRET_ACCESS_KEY ?? 'test',
  };
  const outcomes = await runIntegration(stacks, {
    env,
    workRoot: work,
    parallelism,
    secondApply,
    leftovers: async (tags, region) =>
      (await taggedResources(tags, { region, endpoint, credentials })).map((r) => r.arn),
    ...(emulator ? { emulator } : {}),
    report: (line) => process.stderr.write(`${line}\n`),
  });
  process.stdout.write(renderIntegration(outcomes, emulator));
  return outcomes.every((o) => o.ok) ? 0 : 1;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    process.stderr.write(`integration tier: ${(e as Error).stack ?? String(e)}\n`);
    process.exit(1);
  },
);
