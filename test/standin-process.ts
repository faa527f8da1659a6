/**
 * Runs a stand-in API server (test/tfc-standin.ts, test/secrets-manager-standin.ts) in its own process: meshform's
 * store calls are synchronous (constructs/private/sync-http.ts), so a server in the test's own thread could not
 * answer while the CLI (run in-process) waits.
 */
import { ChildProcess, spawn } from 'node:child_process';
import * as path from 'node:path';
/** Root of the repository (test/support.ts imports vitest, which a stand-in process cannot). */
const REPO = path.resolve(__dirname, '..');

/** tsx's loader: the stand-in runs in one node process (tsx's CLI would start a second). */
const TSX_LOADER = path.join(REPO, 'node_modules', 'tsx', 'dist', 'loader.mjs');

/** A running stand-in. */
export interface StandinProcess {
  /** `127.0.0.1:<port>`. */
  readonly host: string;
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** The stand-in's whole state (its test-only endpoint `GET /__standin/state`). */
  state<T>(): Promise<T>;
  stop(): Promise<void>;
}

/** Starts `file` (a stand-in module) with `config`; resolves once it listens. */
export function startStandin(file: string, config: unknown): Promise<StandinProcess> {
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import', TSX_LOADER, path.join(REPO, 'test', file), JSON.stringify(config)],
    {
      stdio: ['ignore', 'pipe', 'inherit'],
    },
  );
  return new Promise((resolve, reject) => {
    let out = '';
    child.once('exit', (code) => reject(new Error(`${file} exited (${code}) before listening: ${out}`)));
    child.stdout!.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      const match = /listening on (\d+)/.exec(out);
      if (!match) return;
      child.removeAllListeners('exit');
      const host = `127.0.0.1:${match[1]}`;
      resolve({
        host,
        url: `http://${host}`,
        // a fresh connection each time: a kept-alive one may be closed by the server just as it is reused
        state: async <T>() =>
          (await (await fetch(`http://${host}/__standin/state`, { headers: { connection: 'close' } })).json()) as T,
        stop: () =>
          new Promise<void>((done) => {
            if (child.exitCode !== null) return done();
            child.once('exit', () => done());
            child.kill('SIGTERM');
          }),
      });
    });
  });
}

/** Reads a request's body. */
export function readBody(request: import('node:http').IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    request.setEncoding('utf8');
    request.on('data', (c: string) => (body += c));
    request.on('end', () => resolve(body));
    request.on('error', reject);
  });
}
