/**
 * Runs once per `vitest run`, in the main process, before any test file (vitest.config.mts `globalSetup`).
 *
 * One provider plugin cache for every `terraform init` of the suite (TF_PLUGIN_CACHE_DIR, which Terraform reads
 * before its CLI configuration's plugin_cache_dir): the AWS provider of the local mirror is linked into it once,
 * here, so the test files' inits (several at a time, in parallel workers) only read it; Terraform's cache is not
 * safe for concurrent installs of the same provider. Removed after the run (set MESHFORM_KEEP_TEST_DIRS=1 to
 * keep it).
 */
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { findProviderMirror } from '../cli/terraform';

export default function setup(): () => void {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'meshform-suite-'));
  const cache = path.join(root, 'plugins');
  fs.mkdirSync(cache);
  process.env.TF_PLUGIN_CACHE_DIR = cache;
  // Without it, an init whose workspace has no lock file yet (every init of the suite) installs the provider
  // into the cache again, replacing the cache's entry while other inits link to it (seen as an init or a plan
  // failing only when files run side by side). With it, an init links to what the cache holds and writes
  // nothing there. What it may break is a lock file's checksums for other platforms, which an unpacked
  // filesystem mirror does not give anyway (the lock records the h1 checksum of the local package either way).
  process.env.TF_PLUGIN_CACHE_MAY_BREAK_DEPENDENCY_LOCK_FILE = '1';
  const mirror = findProviderMirror();
  const versions = mirror ? path.join(mirror, 'registry.terraform.io', 'hashicorp', 'aws') : undefined;
  if (mirror && versions && fs.existsSync(versions)) {
    // every version the mirror holds, installed into the cache by one init each
    for (const version of fs.readdirSync(versions)) {
      const dir = path.join(root, `warm-aws-${version}`);
      fs.mkdirSync(dir);
      fs.writeFileSync(
        path.join(dir, 'main.tf.json'),
        JSON.stringify({ terraform: { required_providers: { aws: { source: 'hashicorp/aws', version } } } }),
      );
      fs.writeFileSync(
        path.join(dir, '.terraformrc'),
        `provider_installation {\n  filesystem_mirror {\n    path = ${JSON.stringify(mirror)}\n  }\n}\n`,
      );
      // (a failed warm-up is not an error here: the inits of the tests that need the provider say why)
      spawnSync(process.env.MESHFORM_TERRAFORM ?? 'terraform', ['init', '-input=false', '-no-color'], {
        cwd: dir,
        stdio: 'ignore',
        env: { ...process.env, TF_CLI_CONFIG_FILE: path.join(dir, '.terraformrc'), CHECKPOINT_DISABLE: '1' },
      });
    }
  }
  return () => {
    if (!process.env.MESHFORM_KEEP_TEST_DIRS) fs.rmSync(root, { recursive: true, force: true });
  };
}
