/**
 * meshform benchmarks: speed and memory targets of synthesis (not part of `npm test`, where timing would
 * make tests flaky). Usage: npm run bench [-- --runs 5]
 *
 * Each case synthesizes into a fresh temporary directory in this process and reports the median and worst
 * wall time and the peak resident memory; a case over its target exits non-zero.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';
import { App } from '../constructs/private/engine';
import { defineDefaultMesh } from '../examples/default/main';
import { KubernetesCluster, KubernetesDatacenter, Mesh } from '../index';

interface Case {
  readonly name: string;
  /** Target for the median, milliseconds. */
  readonly targetMs: number;
  readonly define: (app: App) => void;
}

/** A mesh of `n` Kubernetes datacenters. */
function wideMesh(n: number): (app: App) => void {
  return (app) => {
    const mesh = new Mesh(app, 'wide');
    new KubernetesDatacenter(mesh, 'dc0', {
      primary: true,
      cluster: KubernetesCluster.fromKubeconfig({ context: 'dc0' }),
      meshGateway: { address: 'mgw.dc0.example.com' },
    });
    for (let i = 1; i < n; i++) {
      new KubernetesDatacenter(mesh, `dc${i}`, {
        cluster: KubernetesCluster.fromKubeconfig({ context: `dc${i}`, apiServerUrl: `https://dc${i}.example.com` }),
      });
    }
  };
}

const CASES: Case[] = [
  { name: 'default example (3 datacenters)', targetMs: 500, define: defineDefaultMesh },
  { name: 'wide mesh (30 datacenters)', targetMs: 2000, define: wideMesh(30) },
];

/** Peak resident memory target for the whole run, MiB. */
const RSS_TARGET_MIB = 512;

function main(): number {
  const runsArg = process.argv.indexOf('--runs');
  const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5;
  let failed = 0;
  let peakRss = process.memoryUsage().rss;
  for (const c of CASES) {
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshform-bench-'));
      const started = performance.now();
      const app = new App({ outdir: path.join(dir, 'cdktf.out'), stackTraces: false });
      c.define(app);
      app.synth();
      times.push(performance.now() - started);
      peakRss = Math.max(peakRss, process.memoryUsage().rss);
      fs.rmSync(dir, { recursive: true, force: true });
    }
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)]!;
    const ok = median <= c.targetMs;
    if (!ok) failed++;
    console.log(
      `${ok ? 'ok  ' : 'SLOW'} ${c.name}: median ${median.toFixed(0)} ms, worst ${times[times.length - 1]!.toFixed(0)} ms ` +
        `(target ${c.targetMs} ms, ${runs} runs)`,
    );
  }
  const rssMib = peakRss / 1024 / 1024;
  const rssOk = rssMib <= RSS_TARGET_MIB;
  if (!rssOk) failed++;
  console.log(`${rssOk ? 'ok  ' : 'BIG '} peak RSS ${rssMib.toFixed(0)} MiB (target ${RSS_TARGET_MIB} MiB)`);
  return failed > 0 ? 1 : 0;
}

process.exitCode = main();
