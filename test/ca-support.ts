import { execFileSync, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { createPrivateKey } from 'node:crypto';
import * as tls from 'node:tls';
import type { AddressInfo } from 'node:net';
import { CertificateAuthority, CertificateAuthorityOptions } from '../constructs/certificate-authority';
import { CaMaterial, datacenterTls, reconcileCa, ServerCertificateRequest } from '../constructs/private/ca-material';
import { splitPem } from '../constructs/private/x509';
import { SecretStore } from '../index';
import { tempDir } from './support';

/**
 * A server certificate request of a Kubernetes-style datacenter `dc` in domain `consul`, with the short name list
 * meshform requested before issue 11 (no consul-server.<namespace>[.svc]): the CA tests only need some names, and
 * the Kubernetes tests use it as the certificate of an existing store. The current names: a KubernetesDatacenter's
 * serverCertificateRequest().
 */
export function request(dc: string, extraIps: string[] = []): ServerCertificateRequest {
  return {
    datacenter: dc,
    dnsNames: [
      `server.${dc}.consul`,
      `*.server.${dc}.consul`,
      'localhost',
      'consul-server',
      '*.consul-server.consul.svc',
    ],
    ipAddresses: ['127.0.0.1', '::1', ...extraIps],
  };
}

/** A fresh store holding mesh `mesh`'s CA material for `datacenters`, issued under `options`. */
export function issuedMesh(
  mesh: string,
  datacenters: readonly string[],
  options: CertificateAuthorityOptions = {},
  now?: Date,
): { store: SecretStore; ca: CaMaterial; plan: CertificateAuthority['plan']; requests: ServerCertificateRequest[] } {
  const store = SecretStore.open({ directory: path.join(tempDir(), 'store') });
  store.ensure(mesh);
  const ca = store.ca(mesh);
  const plan = CertificateAuthority.offline(options).plan;
  const requests = datacenters.map((dc) => request(dc));
  reconcileCa(ca, plan, requests, () => undefined, now);
  return { store, ca, plan, requests };
}

/** What one datacenter's servers hold: trusted roots, their chain and key. */
export interface DatacenterTls {
  readonly caBundle: string;
  readonly serverChain: string;
  readonly serverKey: string;
}

export function tlsOf(ca: CaMaterial, plan: CertificateAuthority['plan'], dc: string): DatacenterTls {
  return datacenterTls(ca, plan, dc);
}

/** Writes `content` to a fresh file and returns its path. */
export function file(name: string, content: string): string {
  const p = path.join(tempDir('meshform-pem-'), name);
  fs.writeFileSync(p, content);
  return p;
}

/**
 * `openssl verify` of a chain as a peer would check it: the first certificate of `chainPem` against only
 * the roots in `bundlePem`, the rest of the chain given as untrusted intermediates. Returns openssl's output.
 */
export function opensslVerify(
  bundlePem: string,
  chainPem: string,
  purpose = 'sslserver',
): { ok: boolean; output: string } {
  const [leaf, ...rest] = splitPem(chainPem);
  const args = ['verify', '-x509_strict', '-purpose', purpose, '-CAfile', file('bundle.pem', bundlePem)];
  if (rest.length > 0) args.push('-untrusted', file('untrusted.pem', rest.join('')));
  args.push(file('leaf.pem', leaf!));
  const run = spawnSync('openssl', args, { encoding: 'utf8' });
  return { ok: run.status === 0, output: `${run.stdout}${run.stderr}`.trim() };
}

/** One text field group of `openssl x509 -text`. */
export function opensslText(pem: string): string {
  return execFileSync('openssl', ['x509', '-noout', '-text', '-in', file('cert.pem', pem)], { encoding: 'utf8' });
}

/** The outcome of a mutual TLS handshake between two datacenters' servers. */
export interface Handshake {
  readonly ok: boolean;
  /** Why the client refused the server (or the connection failed), if it did. */
  readonly clientError?: string;
  /** Why the server refused the client, if it did. */
  readonly serverError?: string;
}

/**
 * A real mutual TLS handshake with node:tls, as Consul's internal RPC does it (verify_incoming,
 * verify_outgoing, verify_server_hostname): `server` listens with its chain and trusts only its bundle and
 * requires a client certificate; `client` presents its chain, trusts only its bundle and checks the
 * server's name (`server.<dc>.consul`). Success means both sides accepted and a byte went through.
 */
export function mtls(client: DatacenterTls, server: DatacenterTls, servername: string): Promise<Handshake> {
  return new Promise((resolve) => {
    let serverError: string | undefined;
    // The server checks the client certificate itself and refuses the connection when it does not verify:
    // node's own rejectUnauthorized would drop it without saying why.
    const listener = tls.createServer(
      {
        key: server.serverKey,
        cert: server.serverChain,
        ca: server.caBundle,
        requestCert: true,
        rejectUnauthorized: false,
        minVersion: 'TLSv1.2',
      },
      (socket) => {
        if (!socket.authorized) {
          serverError = String(socket.authorizationError);
          socket.destroy();
          return;
        }
        socket.end('ok');
      },
    );
    listener.on('tlsClientError', (e: Error & { code?: string }) => {
      serverError ??= e.code ?? e.message;
    });
    listener.listen(0, '127.0.0.1', () => {
      const { port } = listener.address() as AddressInfo;
      let received = '';
      let settled = false;
      const finish = (result: Handshake) => {
        if (settled) return;
        settled = true;
        listener.close();
        // the server's view of a refused client arrives asynchronously
        setTimeout(() => resolve({ ...result, ...(serverError && !result.ok ? { serverError } : {}) }), 50);
      };
      const socket = tls.connect({
        host: '127.0.0.1',
        port,
        servername,
        key: client.serverKey,
        cert: client.serverChain,
        ca: client.caBundle,
        rejectUnauthorized: true,
        minVersion: 'TLSv1.2',
      });
      socket.setEncoding('utf8');
      socket.on('data', (d: string) => {
        received += d;
      });
      socket.on('end', () =>
        finish(received === 'ok' ? { ok: true } : { ok: false, clientError: 'closed by the server' }),
      );
      socket.on('error', (e: Error & { code?: string }) => finish({ ok: false, clientError: e.code ?? e.message }));
      socket.on('close', () => finish(received === 'ok' ? { ok: true } : { ok: false, clientError: 'closed' }));
    });
  });
}

/**
 * True when `text` carries the private part of `keyPem`: the key's secret value (EC scalar or RSA private
 * exponent) inside any PEM block of the text (also JSON-escaped), or its base64/hex form in the clear. Public
 * parts a certificate legitimately shares with its key do not count.
 */
export function holdsPrivateKey(text: string, keyPem: string, passphrase?: string): boolean {
  const jwk = createPrivateKey({ key: keyPem, format: 'pem', ...(passphrase ? { passphrase } : {}) }).export({
    format: 'jwk',
  });
  const secret = Buffer.from(jwk.d!, 'base64url');
  const plain = text.replace(/\\n/g, '\n');
  if (
    plain.includes(jwk.d!) ||
    plain.includes(secret.toString('base64')) ||
    plain.toLowerCase().includes(secret.toString('hex'))
  )
    return true;
  const blocks = plain.match(/-----BEGIN [A-Z ]+-----[\s\S]*?-----END [A-Z ]+-----/g) ?? [];
  return blocks.some((block) =>
    Buffer.from(block.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, ''), 'base64').includes(secret),
  );
}

/** A self-signed certificate and key made by openssl (EC P-256), with or without CA basic constraints. */
export function opensslRoot(options: { ca: boolean; days?: number; subject?: string }): {
  certificate: string;
  key: string;
  certificateFile: string;
  keyFile: string;
} {
  const dir = tempDir('meshform-openssl-');
  const args = [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    String(options.days ?? 3650),
  ];
  args.push(
    '-subj',
    options.subject ?? '/O=Example/CN=Example Consul Agent CA',
    '-keyout',
    path.join(dir, 'key.pem'),
    '-out',
    path.join(dir, 'cert.pem'),
  );
  args.push('-addext', options.ca ? 'basicConstraints=critical,CA:TRUE' : 'basicConstraints=critical,CA:FALSE');
  execFileSync('openssl', args, { stdio: 'pipe' });
  const certificateFile = path.join(dir, 'cert.pem');
  const keyFile = path.join(dir, 'key.pem');
  return {
    certificate: fs.readFileSync(certificateFile, 'utf8'),
    key: fs.readFileSync(keyFile, 'utf8'),
    certificateFile,
    keyFile,
  };
}
