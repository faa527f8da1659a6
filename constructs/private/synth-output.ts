import * as fs from 'node:fs';
import * as path from 'node:path';
import type { IConstruct } from 'constructs';
import { errors } from '../errors';
import { App } from './engine';
import { MESHFORM_OUTDIR_ENV } from './synth-environment';

/**
 * Makes an app that names its own output directory (`new App({ outdir })`, which wins over `CDKTF_OUTDIR`)
 * write a `meshform synth` run into the run's staging directory, as an app without one does: the output
 * directory changes only once the whole synthesis succeeded. The app's directory must be the one cdktf.json
 * names (cdktf's CLI reads the output there too); another one is refused, naming both. Outside `meshform
 * synth` (cdktf's CLI, `app.synth()` in a program or a test) nothing changes.
 */
export function writeToStagedOutput(scope: IConstruct): void {
  const configured = process.env[MESHFORM_OUTDIR_ENV];
  const staging = process.env.CDKTF_OUTDIR;
  const app = scope.node.root;
  if (!configured || !staging || !App.isApp(app)) return;
  const outdir = path.resolve(app.outdir);
  if (outdir === path.resolve(staging)) return;
  if (outdir !== path.resolve(configured)) throw errors.outdirMismatch(scope.node.path, app.outdir, configured);
  fs.mkdirSync(path.join(staging, 'stacks'), { recursive: true });
  // cdktf reads both when the app synthesizes: the session's directory and where the manifest goes
  (app as { outdir: string }).outdir = staging;
  (app.manifest as { outdir: string }).outdir = staging;
}
