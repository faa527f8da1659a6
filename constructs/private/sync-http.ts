/**
 * A synchronous HTTP request, for the secret store's remote backends: the store (and every command that uses
 * it) is synchronous, so a request runs `fetch` in a short-lived worker thread while this thread waits on a
 * shared flag (Atomics.wait) and then takes the answer from a message port. Nothing leaves the process.
 *
 * A server that runs in this same thread cannot answer while it waits: serve stand-ins from another process.
 */
import { MessageChannel, receiveMessageOnPort, Worker } from 'node:worker_threads';

/** A request. */
export interface HttpRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: { readonly [name: string]: string };
  readonly body?: string;
}

/** An answer. */
export interface HttpResponse {
  readonly status: number;
  readonly headers: { readonly [name: string]: string };
  readonly body: string;
}

/** The request got no answer (connection refused, DNS, TLS, timeout). */
export class HttpUnreachableError extends Error {
  constructor(
    public readonly url: string,
    detail: string,
  ) {
    super(`${url} did not answer: ${detail}`);
    this.name = 'HttpUnreachableError';
  }
}

const WORKER = `
const { workerData } = require('node:worker_threads');
const { flag, port, request, timeoutMs } = workerData;
const done = (message) => {
  port.postMessage(message);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
};
fetch(request.url, { method: request.method, headers: request.headers, body: request.body, signal: AbortSignal.timeout(timeoutMs), redirect: 'manual' })
  .then(async (r) => done({ response: { status: r.status, headers: Object.fromEntries(r.headers), body: await r.text() } }))
  .catch((e) => done({ error: String((e && e.cause && (e.cause.code || e.cause.message)) || (e && e.name === 'TimeoutError' ? 'timed out after ' + timeoutMs + ' ms' : e && e.message) || e) }));
`;

/** Sends `request` and waits for the answer (at most `timeoutMs`); throws HttpUnreachableError without one. */
export function requestSync(request: HttpRequest, timeoutMs = 60_000): HttpResponse {
  const flag = new Int32Array(new SharedArrayBuffer(4));
  const { port1, port2 } = new MessageChannel();
  const worker = new Worker(WORKER, {
    eval: true,
    workerData: { flag, port: port2, request, timeoutMs },
    transferList: [port2],
  });
  worker.unref();
  try {
    Atomics.wait(flag, 0, 0, timeoutMs + 10_000);
    const received = receiveMessageOnPort(port1)?.message as { response?: HttpResponse; error?: string } | undefined;
    if (!received) throw new HttpUnreachableError(request.url, `no answer within ${timeoutMs} ms`);
    if (received.error !== undefined || !received.response)
      throw new HttpUnreachableError(request.url, received.error ?? 'no answer');
    return received.response;
  } finally {
    port1.close();
    void worker.terminate();
  }
}
