/**
 * meshform benchmarks (not part of `npm test`: timing there would make tests flaky). Usage:
 *
 *   npm run bench                      the whole scale grid and the Quick start
 *   npm run bench -- --quick           the three smaller rows of the grid and the Quick start (or MESHFORM_BENCH_QUICK=1)
 *   npm run bench -- --grid 100x100,10x50 --runs 3 --no-quickstart --suite
 *
 * Scale grid: each row synthesizes the same mesh (scripts/bench-scale.ts: N Kubernetes datacenters × M services)
 * with meshform and with a plain cdktf app that builds the same resources by hand (provider classes by deep
 * import), in the same run, alternately, each in a child process of its own measured by the kernel
 * (`/usr/bin/time`): wall time, CPU time (user + system) and peak resident memory, and the ratio meshform / plain
 * cdktf per row. Both programs must produce the same resources (counted by type), or the row fails. Each program
 * loads only its own modules; each row also measures each program's fixed cost (`startup-meshform`,
 * `startup-cdktf`: the same process synthesizing an empty app: node, tsx and the program's modules), and reports
 * CPU per resource raw and net of it.
 *
 * Quick start: `npm start` (meshform plan --offline of the default example) in a fresh copy of the project, twice
 * (first and second run), broken down by phase from the time each progress line appears.
 *
 * Suite (`--suite`, opt-in: minutes): `npx vitest run`'s wall and CPU time.
 *
 * Writes bench/results.json and bench/results.md (the README quotes them) unless `--no-write`.
 */
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { performance } from 'node:perf_hooks';

const REPO = path.resolve(__dirname, '..');
const TIME = '/usr/bin/time';
/** From about 100 to about 60,000 resources (resources ≈ 6 per datacenter + 4 per service). */
const FULL_GRID: readonly [number, number][] = [
  [10, 10],
  [10, 100],
  [100, 100],
  [100, 1000],
  [100, 10000],
  [100, 15000],
];
/** The goals of issue 16. */
const GOAL = { ratio: 1.0, largestWallS: 30, largestRssMiB: 1024, quickStartS: 10 };

/** A finished child process as the kernel accounted it. */
interface Measured {
  readonly code: number;
  readonly wallS: number;
  readonly cpuS: number;
  readonly userS: number;
  readonly sysS: number;
  /** Peak resident memory of the largest single process, MiB. */
  readonly rssMiB: number;
  readonly stdout: string;
  readonly stderr: string;
  /** Each line of output with the seconds since the start at which it appeared. */
  readonly lines: readonly { readonly t: number; readonly text: string }[];
}

/** Runs a command under /usr/bin/time (CPU includes every child it waited for). */
function measure(command: string, args: readonly string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
  const report = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'meshform-bench-time-')), 'time');
  return new Promise<Measured>((resolve, reject) => {
    const started = performance.now();
    const child = spawn(TIME, ['-o', report, '-f', '%e %U %S %M', command, ...args], {
      cwd: options.cwd ?? REPO,
      env: options.env ?? process.env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    const lines: { t: number; text: string }[] = [];
    const collect = (into: Buffer[]) => (chunk: Buffer) => {
      into.push(chunk);
      const t = (performance.now() - started) / 1000;
      for (const text of chunk.toString('utf8').split('\n')) if (text.trim()) lines.push({ t, text });
    };
    child.stdout.on('data', collect(out));
    child.stderr.on('data', collect(err));
    child.on('error', reject);
    child.on('close', (code) => {
      const fields = fs.readFileSync(report, 'utf8').trim().split('\n').pop()!.split(' ').map(Number);
      fs.rmSync(path.dirname(report), { recursive: true, force: true });
      const [wallS, userS, sysS, rssKiB] = fields as [number, number, number, number];
      resolve({
        code: code ?? 1,
        wallS,
        userS,
        sysS,
        cpuS: userS + sysS,
        rssMiB: rssKiB / 1024,
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
        lines,
      });
    });
  });
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

interface ScaleRun {
  readonly wallS: number;
  readonly cpuS: number;
  readonly rssMiB: number;
  readonly constructMs: number;
  readonly synthMs: number;
}

interface ScaleRow {
  readonly datacenters: number;
  readonly services: number;
  readonly resources: number;
  readonly resourcesByType: { readonly [type: string]: number };
  readonly runs: number;
  /** Medians over the runs. */
  readonly meshform: ScaleRun;
  readonly cdktf: ScaleRun;
  /** Each program's fixed cost: the same process synthesizing an empty app (medians over the runs). */
  readonly startup: { readonly meshform: ScaleRun; readonly cdktf: ScaleRun };
  /** meshform / cdktf, medians of the per-pair ratios. */
  readonly ratio: { readonly wall: number; readonly cpu: number; readonly rss: number };
  /** meshform CPU milliseconds per resource. */
  readonly cpuMsPerResource: number;
  /** meshform CPU milliseconds per resource net of the fixed cost (startup). */
  readonly netCpuMsPerResource: number;
  /** plain cdktf CPU milliseconds per resource, raw and net of the fixed cost. */
  readonly cdktfCpuMsPerResource: number;
  readonly cdktfNetCpuMsPerResource: number;
  /** The machine's 1-minute load average when the row started and when it ended. */
  readonly load: readonly [number, number];
}

async function scaleCase(
  kind: 'meshform' | 'cdktf' | 'startup-meshform' | 'startup-cdktf',
  dcs: number,
  services: number,
) {
  const outdir = fs.mkdtempSync(path.join(os.tmpdir(), `meshform-bench-${kind}-`));
  try {
    const m = await measure(process.execPath, [
      '--import',
      'tsx',
      path.join(REPO, 'scripts', 'bench-scale.ts'),
      kind,
      String(dcs),
      String(services),
      outdir,
    ]);
    if (m.code !== 0) throw new Error(`${kind} ${dcs}×${services} failed (exit ${m.code}):\n${m.stderr}`);
    const report = JSON.parse(m.stdout.trim().split('\n').pop()!) as {
      constructMs: number;
      synthMs: number;
      resources: { [type: string]: number };
    };
    return { measured: m, ...report };
  } finally {
    fs.rmSync(outdir, { recursive: true, force: true });
  }
}

async function scaleRow(dcs: number, services: number, runs: number): Promise<ScaleRow> {
  const loadBefore = os.loadavg()[0]!;
  const pairs: { a: Awaited<ReturnType<typeof scaleCase>>; b: Awaited<ReturnType<typeof scaleCase>> }[] = [];
  const startups: { a: Awaited<ReturnType<typeof scaleCase>>; b: Awaited<ReturnType<typeof scaleCase>> }[] = [];
  for (let i = 0; i < runs; i++) {
    startups.push({
      a: await scaleCase('startup-meshform', dcs, services),
      b: await scaleCase('startup-cdktf', dcs, services),
    });
    // alternate which goes first, so that drift of a shared machine falls on both
    if (i % 2 === 0) {
      const a = await scaleCase('meshform', dcs, services);
      pairs.push({ a, b: await scaleCase('cdktf', dcs, services) });
    } else {
      const b = await scaleCase('cdktf', dcs, services);
      pairs.push({ a: await scaleCase('meshform', dcs, services), b });
    }
  }
  const first = pairs[0]!;
  const same = JSON.stringify(sortKeys(first.a.resources)) === JSON.stringify(sortKeys(first.b.resources));
  if (!same) {
    throw new Error(
      `${dcs}×${services}: the two programs built different resources: meshform ${JSON.stringify(first.a.resources)}, cdktf ${JSON.stringify(first.b.resources)}`,
    );
  }
  const summary = (xs: Awaited<ReturnType<typeof scaleCase>>[]): ScaleRun => ({
    wallS: median(xs.map((x) => x.measured.wallS)),
    cpuS: median(xs.map((x) => x.measured.cpuS)),
    rssMiB: median(xs.map((x) => x.measured.rssMiB)),
    constructMs: median(xs.map((x) => x.constructMs)),
    synthMs: median(xs.map((x) => x.synthMs)),
  });
  const resources = Object.values(first.a.resources).reduce((s, n) => s + n, 0);
  const meshform = summary(pairs.map((p) => p.a));
  const cdktf = summary(pairs.map((p) => p.b));
  const startup = { meshform: summary(startups.map((s) => s.a)), cdktf: summary(startups.map((s) => s.b)) };
  return {
    datacenters: dcs,
    services,
    resources,
    resourcesByType: sortKeys(first.a.resources),
    runs,
    meshform,
    cdktf,
    startup,
    ratio: {
      wall: median(pairs.map((p) => p.a.measured.wallS / p.b.measured.wallS)),
      cpu: median(pairs.map((p) => p.a.measured.cpuS / p.b.measured.cpuS)),
      rss: median(pairs.map((p) => p.a.measured.rssMiB / p.b.measured.rssMiB)),
    },
    cpuMsPerResource: (meshform.cpuS * 1000) / resources,
    netCpuMsPerResource: ((meshform.cpuS - startup.meshform.cpuS) * 1000) / resources,
    cdktfCpuMsPerResource: (cdktf.cpuS * 1000) / resources,
    cdktfNetCpuMsPerResource: ((cdktf.cpuS - startup.cdktf.cpuS) * 1000) / resources,
    load: [loadBefore, os.loadavg()[0]!],
  };
}

function sortKeys<T>(o: { readonly [k: string]: T }): { [k: string]: T } {
  return Object.fromEntries(Object.entries(o).sort(([a], [b]) => a.localeCompare(b)));
}

interface QuickStartRun {
  readonly run: 'first' | 'second';
  readonly exit: number;
  readonly wallS: number;
  readonly cpuS: number;
  readonly rssMiB: number;
  /** Seconds spent in each phase, from when its first progress line appeared to the next phase's. */
  readonly phases: { readonly [phase: string]: number };
  /** The progress lines with their times. */
  readonly progress: readonly string[];
}

/**
 * The phase a progress line starts (the first line of each phase counts; stacks plan in parallel, so a phase
 * ends when the next one first appears: "terraform plan" includes the later stacks' init and meshform reading
 * each saved plan). A second run has no "terraform init" phase: each stack's offline copy stays initialized
 * while what init depends on is unchanged.
 */
function phaseOf(line: string): string | undefined {
  if (/terraform init/.test(line)) return 'terraform init';
  if (/terraform plan/.test(line)) return 'terraform plan';
  if (/^meshform: synthesizing/.test(line)) return 'synth';
  if (/^meshform: secret store/.test(line)) return 'secret store';
  if (/^mesh /.test(line)) return 'report';
  return undefined;
}

function phases(lines: Measured['lines'], wallS: number): { [phase: string]: number } {
  const marks: { phase: string; t: number }[] = [{ phase: 'startup', t: 0 }];
  for (const l of lines) {
    const phase = phaseOf(l.text);
    if (phase && !marks.some((m) => m.phase === phase)) marks.push({ phase, t: l.t });
  }
  marks.sort((a, b) => a.t - b.t);
  const out: { [phase: string]: number } = {};
  marks.forEach((m, i) => (out[m.phase] = (marks[i + 1]?.t ?? wallS) - m.t));
  return out;
}

/** `npm start` twice in a fresh copy of the project (its own store, state and cache). */
async function quickStart(): Promise<QuickStartRun[]> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshform-bench-quickstart-'));
  try {
    const files = (await measure('git', ['ls-files', '-z'])).stdout.split('\0').filter(Boolean);
    for (const f of files) {
      if (!fs.lstatSync(path.join(REPO, f), { throwIfNoEntry: false })?.isFile()) continue;
      fs.mkdirSync(path.dirname(path.join(dir, f)), { recursive: true });
      fs.copyFileSync(path.join(REPO, f), path.join(dir, f));
    }
    fs.symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'));
    const env: NodeJS.ProcessEnv = { ...process.env, MESHFORM_CA_PASSPHRASE: 'meshform-bench-passphrase', CI: '1' };
    delete env.TF_PLUGIN_CACHE_DIR;
    const runs: QuickStartRun[] = [];
    for (const run of ['first', 'second'] as const) {
      const m = await measure('npm', ['start'], { cwd: dir, env });
      runs.push({
        run,
        exit: m.code,
        wallS: m.wallS,
        cpuS: m.cpuS,
        rssMiB: m.rssMiB,
        phases: phases(m.lines, m.wallS),
        progress: m.lines.filter((l) => l.text.startsWith('meshform:')).map((l) => `${l.t.toFixed(1)} s ${l.text}`),
      });
    }
    return runs;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function suite(): Promise<{ wallS: number; cpuS: number; exit: number }> {
  const m = await measure('npx', ['vitest', 'run']);
  return { wallS: m.wallS, cpuS: m.cpuS, exit: m.code };
}

const f1 = (n: number) => n.toFixed(1);
const f2 = (n: number) => n.toFixed(2);
const int = (n: number) => Math.round(n).toLocaleString('en-US');

function markdown(results: Results): string {
  const lines = [
    '# meshform benchmark results',
    '',
    `Written by \`npm run bench\` on ${results.date} (${results.machine}). Median of ${results.grid[0]?.runs ?? 0} run(s)` +
      ' per program and row; each program in a process of its own, timed by the kernel (`/usr/bin/time`). CPU is user +' +
      ' system time. The machine may be shared: compare the ratios (taken pair by pair) rather than absolute times.',
    '',
    '## Scale: meshform vs the same resources in a plain cdktf app',
    '',
    'N Kubernetes datacenters × M HTTP services (scripts/bench-scale.ts): each service runs in two datacenters, calls' +
      ' the previous one (which allows it), with a connect timeout and retries. Each program loads only its own' +
      ' modules. "startup" is each program\'s fixed cost, measured in the same row: the same process synthesizing' +
      ' an empty app (node, tsx, the program\'s modules); "net" CPU per resource leaves it out. Load is the 1-minute load average at the start and end of' +
      ' the row (2 cores: above 2, other work shared them).',
    '',
    '| datacenters × services | resources | meshform wall | meshform CPU | meshform peak RSS | cdktf wall | cdktf CPU | cdktf peak RSS | ratio wall | ratio CPU | ratio RSS | startup CPU meshform / cdktf | meshform CPU ms / resource (net) | cdktf CPU ms / resource (net) | load |',
    '|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|',
    ...results.grid.map(
      (r) =>
        `| ${int(r.datacenters)} × ${int(r.services)} | ${int(r.resources)} | ${f1(r.meshform.wallS)} s | ${f1(r.meshform.cpuS)} s | ` +
        `${int(r.meshform.rssMiB)} MiB | ${f1(r.cdktf.wallS)} s | ${f1(r.cdktf.cpuS)} s | ${int(r.cdktf.rssMiB)} MiB | ` +
        `${f2(r.ratio.wall)} | ${f2(r.ratio.cpu)} | ${f2(r.ratio.rss)} | ${f1(r.startup.meshform.cpuS)} s / ${f1(r.startup.cdktf.cpuS)} s | ` +
        `${f2(r.cpuMsPerResource)} (${f2(r.netCpuMsPerResource)}) | ${f2(r.cdktfCpuMsPerResource)} (${f2(r.cdktfNetCpuMsPerResource)}) | ` +
        `${f1(r.load[0])} → ${f1(r.load[1])} |`,
    ),
    '',
  ];
  if (results.quickStart.length > 0) {
    lines.push(
      '## Quick start: `npm start` (meshform plan --offline of the default example)',
      '',
      '| run | exit | wall | CPU | peak RSS | phases (wall seconds) |',
      '|---|---|---|---|---|---|',
      ...results.quickStart.map(
        (q) =>
          `| ${q.run} | ${q.exit} | ${f1(q.wallS)} s | ${f1(q.cpuS)} s | ${int(q.rssMiB)} MiB | ${Object.entries(
            q.phases,
          )
            .map(([p, s]) => `${p} ${f1(s)}`)
            .join(', ')} |`,
      ),
      '',
    );
  }
  if (results.suite) {
    lines.push(
      '## Test suite',
      '',
      `\`npx vitest run\`: ${f1(results.suite.wallS)} s wall, ${f1(results.suite.cpuS)} s CPU (exit ${results.suite.exit}).`,
      '',
    );
  }
  lines.push(
    '## Goals (issue 16)',
    '',
    ...results.goals.map((g) => `- ${g.met ? 'met' : 'NOT met'}: ${g.goal} (${g.measured})`),
    '',
  );
  return lines.join('\n');
}

interface Results {
  readonly date: string;
  readonly machine: string;
  readonly grid: readonly ScaleRow[];
  readonly quickStart: readonly QuickStartRun[];
  readonly suite?: { wallS: number; cpuS: number; exit: number };
  readonly goals: readonly { goal: string; met: boolean; measured: string }[];
}

function goals(grid: readonly ScaleRow[], quick: readonly QuickStartRun[]): Results['goals'] {
  const out: { goal: string; met: boolean; measured: string }[] = [];
  for (const r of grid) {
    out.push({
      goal: `${r.datacenters} × ${r.services}: CPU ratio to plain cdktf ≤ ${GOAL.ratio}`,
      met: r.ratio.cpu <= GOAL.ratio,
      measured: `${f2(r.ratio.cpu)}`,
    });
  }
  const largest = grid.find((r) => r.datacenters === 100 && r.services === 10000);
  if (largest) {
    out.push({
      goal: `100 × 10,000 in ≤ ${GOAL.largestWallS} s with ≤ ${GOAL.largestRssMiB} MiB peak RSS`,
      met: largest.meshform.wallS <= GOAL.largestWallS && largest.meshform.rssMiB <= GOAL.largestRssMiB,
      measured: `${f1(largest.meshform.wallS)} s wall, ${f1(largest.meshform.cpuS)} s CPU, ${int(largest.meshform.rssMiB)} MiB`,
    });
  }
  if (grid.length >= 2) {
    // flat within ±20 %: every row within 20 % of one middle value, i.e. largest / smallest ≤ 1.2 / 0.8
    const span = `${int(Math.min(...grid.map((r) => r.resources)))} to ${int(Math.max(...grid.map((r) => r.resources)))} resources`;
    for (const [what, per] of [
      ['CPU time per resource', grid.map((r) => r.cpuMsPerResource)],
      ['CPU time per resource net of the fixed startup cost', grid.map((r) => r.netCpuMsPerResource)],
    ] as const) {
      // a value at or below zero (the work of a small row is within the noise of the fixed cost subtracted from
      // it) cannot show flatness: the goal is then not met, and says why
      const measurable = per.every((v) => v > 0);
      const spread = Math.max(...per) / Math.min(...per);
      out.push({
        goal: `${what} flat from ${span} (±20 %: largest / smallest ≤ 1.5)`,
        met: measurable && spread <= 1.2 / 0.8,
        measured: measurable
          ? `${per.map(f2).join(' / ')} ms, largest / smallest ${f2(spread)}`
          : `${per.map(f2).join(' / ')} ms: a row at or below zero (its work is within the noise of the fixed cost), so no spread can be taken`,
      });
    }
  }
  const second = quick.find((q) => q.run === 'second');
  if (second) {
    out.push({
      goal: `Quick start second run ≤ ${GOAL.quickStartS} s wall`,
      met: second.exit === 0 && second.wallS <= GOAL.quickStartS,
      measured: `${f1(second.wallS)} s wall, ${f1(second.cpuS)} s CPU, exit ${second.exit}`,
    });
  }
  return out;
}

function option(name: string): string | undefined {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick') || process.env.MESHFORM_BENCH_QUICK === '1';
  const gridArg = option('--grid') ?? process.env.MESHFORM_BENCH_GRID;
  const grid: [number, number][] = gridArg
    ? gridArg.split(',').map((cell) => {
        const m = /^(\d+)x(\d+)$/.exec(cell.trim());
        if (!m) throw new Error(`--grid takes rows like 100x1000, not ${JSON.stringify(cell)}`);
        return [Number(m[1]), Number(m[2])];
      })
    : quick
      ? FULL_GRID.slice(0, 3)
      : [...FULL_GRID];
  const runs = Number(option('--runs') ?? 1);
  if (!Number.isInteger(runs) || runs < 1) throw new Error('--runs takes a whole number ≥ 1');
  if (!fs.existsSync(TIME))
    throw new Error(`${TIME} is missing (GNU time measures each child): install the time package`);

  const rows: ScaleRow[] = [];
  for (const [dcs, services] of grid) {
    const row = await scaleRow(dcs, services, runs);
    rows.push(row);
    console.log(
      `${dcs} × ${services} (${int(row.resources)} resources): meshform ${f1(row.meshform.wallS)} s wall, ${f1(row.meshform.cpuS)} s CPU, ` +
        `${int(row.meshform.rssMiB)} MiB; cdktf ${f1(row.cdktf.wallS)} s wall, ${f1(row.cdktf.cpuS)} s CPU, ${int(row.cdktf.rssMiB)} MiB; ` +
        `ratio CPU ${f2(row.ratio.cpu)}, wall ${f2(row.ratio.wall)}; startup ${f1(row.startup.meshform.cpuS)} / ${f1(row.startup.cdktf.cpuS)} s CPU; ` +
        `meshform ${f2(row.cpuMsPerResource)} ms / resource (net ${f2(row.netCpuMsPerResource)}); load ${f1(row.load[0])} → ${f1(row.load[1])}`,
    );
  }
  const quickStartRuns = process.argv.includes('--no-quickstart') ? [] : await quickStart();
  for (const q of quickStartRuns) {
    console.log(
      `quick start, ${q.run} run: exit ${q.exit}, ${f1(q.wallS)} s wall, ${f1(q.cpuS)} s CPU; ` +
        Object.entries(q.phases)
          .map(([p, s]) => `${p} ${f1(s)} s`)
          .join(', '),
    );
  }
  const suiteResult = process.argv.includes('--suite') ? await suite() : undefined;
  if (suiteResult)
    console.log(`suite: ${f1(suiteResult.wallS)} s wall, ${f1(suiteResult.cpuS)} s CPU, exit ${suiteResult.exit}`);

  const results: Results = {
    date: new Date().toISOString(),
    machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, node ${process.version}`,
    grid: rows,
    quickStart: quickStartRuns,
    ...(suiteResult ? { suite: suiteResult } : {}),
    goals: goals(rows, quickStartRuns),
  };
  for (const g of results.goals) console.log(`${g.met ? 'met    ' : 'NOT met'} ${g.goal}: ${g.measured}`);
  if (!process.argv.includes('--no-write')) {
    const dir = path.join(REPO, 'bench');
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'results.json'), `${JSON.stringify(results, null, 2)}\n`);
    fs.writeFileSync(path.join(dir, 'results.md'), markdown(results));
    console.log('wrote bench/results.json and bench/results.md');
  }
}

main().catch((e: unknown) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
