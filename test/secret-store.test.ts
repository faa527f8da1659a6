import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MeshformError, SecretStore } from '../index';
import { readPrivateKey } from '../constructs/private/x509';
import { tempDir, thrownMessage } from './support';

describe('SecretStore', () => {
  it('creates a complete, private entry on first use and reuses it afterwards', () => {
    // GIVEN an empty directory
    const dir = path.join(tempDir(), 'store');
    const store = SecretStore.open({ directory: dir });
    expect(store.has('shop')).toBe(false);
    // WHEN
    const first = store.ensure('shop');
    const second = SecretStore.open({ directory: dir }).ensure('shop');
    // THEN
    expect(first.created).toBe(true);
    expect(second.created).toBe(false);
    expect(second.secrets).toEqual(first.secrets);
    expect(first.secrets.gossipKey).toMatch(/^[A-Za-z0-9+/]{43}=$/);
    expect(Buffer.from(first.secrets.gossipKey, 'base64')).toHaveLength(32);
    expect(first.secrets.aclBootstrapToken).toMatch(
      /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    expect(fs.statSync(path.join(dir, 'shop')).mode & 0o777).toBe(0o700);
    for (const f of fs.readdirSync(path.join(dir, 'shop'))) {
      expect(fs.statSync(path.join(dir, 'shop', f)).mode & 0o777).toBe(0o600);
    }
    expect(fs.readFileSync(path.join(dir, '.gitignore'), 'utf8')).toContain('*');
    expect(fs.readdirSync(dir).filter((f) => f.includes('staging'))).toEqual([]);
  });

  it('keeps meshes apart', () => {
    const store = SecretStore.open({ directory: path.join(tempDir(), 'store') });
    const a = store.ensure('a').secrets;
    const b = store.ensure('b').secrets;
    expect(a.gossipKey).not.toBe(b.gossipKey);
    expect(a.aclBootstrapToken).not.toBe(b.aclBootstrapToken);
    expect(store.ca('a').roots()).toEqual([]);
  });

  it('refuses an incomplete entry with a clear error instead of recreating it', () => {
    const dir = path.join(tempDir(), 'store');
    const store = SecretStore.open({ directory: dir });
    store.ensure('shop');
    fs.rmSync(path.join(dir, 'shop', 'gossip.key'));
    const message = thrownMessage(() => store.ensure('shop'));
    expect(message).toBe(
      `[${path.join(dir, 'shop')}] the secret store is incomplete or unreadable (gossip.key is missing): ` +
        `${JSON.stringify(path.join(dir, 'shop'))}. Fix: restore the directory from your backup; if this mesh was never deployed, ` +
        'delete the directory and run `meshform synth` to create a new store',
    );
    expect(() => store.ensure('shop')).toThrow(MeshformError);
  });

  describe('upgrade from format 1 (one shared server CA)', () => {
    /** GIVEN a format-1 entry as meshform 0.1 wrote it: an RSA CA made with openssl. */
    function formatOneStore(): { dir: string; certificate: string; keyPem: string } {
      const dir = path.join(tempDir(), 'store');
      const mesh = path.join(dir, 'shop');
      fs.mkdirSync(mesh, { recursive: true, mode: 0o700 });
      execFileSync(
        'openssl',
        [
          'req',
          '-x509',
          '-newkey',
          'rsa:2048',
          '-nodes',
          '-days',
          '1825',
          '-subj',
          '/CN=shop Consul Agent CA/O=meshform',
          '-addext',
          'basicConstraints=critical,CA:TRUE',
          '-addext',
          'keyUsage=critical,digitalSignature,keyCertSign,cRLSign',
          '-keyout',
          path.join(mesh, 'server-ca-key.pem'),
          '-out',
          path.join(mesh, 'server-ca.pem'),
        ],
        { stdio: 'pipe' },
      );
      const certificate = fs.readFileSync(path.join(mesh, 'server-ca.pem'), 'utf8');
      const fingerprint = execFileSync(
        'openssl',
        ['x509', '-in', path.join(mesh, 'server-ca.pem'), '-noout', '-fingerprint', '-sha256'],
        { encoding: 'utf8' },
      )
        .trim()
        .replace(/^sha256 Fingerprint=/i, '');
      fs.writeFileSync(path.join(mesh, 'gossip.key'), `${Buffer.alloc(32, 7).toString('base64')}\n`);
      fs.writeFileSync(path.join(mesh, 'acl-bootstrap.token'), '6f1c33c5-4b59-4e43-9a1f-2b0b4e1f8a10\n');
      fs.writeFileSync(
        path.join(mesh, 'store.json'),
        JSON.stringify({ format: 1, mesh: 'shop', serverCaFingerprint: fingerprint }),
      );
      return { dir, certificate, keyPem: fs.readFileSync(path.join(mesh, 'server-ca-key.pem'), 'utf8') };
    }

    it('turns the shared CA into root-1, its key encrypted, and keeps gossip key and token', () => {
      const { dir, certificate, keyPem } = formatOneStore();
      // WHEN
      const store = SecretStore.open({ directory: dir });
      const secrets = store.load('shop');
      // THEN
      expect(secrets).toEqual({
        gossipKey: Buffer.alloc(32, 7).toString('base64'),
        aclBootstrapToken: '6f1c33c5-4b59-4e43-9a1f-2b0b4e1f8a10',
        // derived from the management token, never equal to it
        aclReplicationToken: expect.stringMatching(
          /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
        ),
      });
      expect(secrets.aclReplicationToken).not.toBe(secrets.aclBootstrapToken);
      const ca = store.ca('shop');
      expect(ca.roots()).toEqual(['root-1']);
      expect(ca.rootCertificate('root-1')).toBe(certificate);
      expect(ca.isUnattended('root-1')).toBe(true);
      const stored = fs.readFileSync(path.join(dir, 'shop', 'ca', 'roots', 'root-1', 'key.pem'), 'utf8');
      expect(stored).toContain('-----BEGIN ENCRYPTED PRIVATE KEY-----');
      const passphrase = fs.readFileSync(path.join(dir, 'shop', 'ca', 'roots', 'root-1', 'passphrase'), 'utf8').trim();
      expect(readPrivateKey(stored, passphrase).export({ format: 'jwk' })).toEqual(
        readPrivateKey(keyPem).export({ format: 'jwk' }),
      );
      expect(fs.existsSync(path.join(dir, 'shop', 'server-ca-key.pem'))).toBe(false);
      expect(JSON.parse(fs.readFileSync(path.join(dir, 'shop', 'store.json'), 'utf8'))).toEqual({
        format: 2,
        mesh: 'shop',
      });
    });

    it('refuses a CA that does not match the recorded fingerprint, changing nothing', () => {
      const { dir } = formatOneStore();
      const other = formatOneStore();
      fs.copyFileSync(path.join(other.dir, 'shop', 'server-ca.pem'), path.join(dir, 'shop', 'server-ca.pem'));
      fs.copyFileSync(path.join(other.dir, 'shop', 'server-ca-key.pem'), path.join(dir, 'shop', 'server-ca-key.pem'));
      expect(thrownMessage(() => SecretStore.open({ directory: dir }).load('shop'))).toContain(
        'the secret store is incomplete or unreadable (server-ca.pem does not match the fingerprint in store.json)',
      );
      expect(fs.existsSync(path.join(dir, 'shop', 'ca'))).toBe(false);
    });
  });

  it('defaults to $MESHFORM_SECRETS_DIR', () => {
    const dir = path.join(tempDir(), 'env-store');
    const before = process.env.MESHFORM_SECRETS_DIR;
    process.env.MESHFORM_SECRETS_DIR = dir;
    try {
      expect(SecretStore.open().directory).toBe(dir);
    } finally {
      if (before === undefined) delete process.env.MESHFORM_SECRETS_DIR;
      else process.env.MESHFORM_SECRETS_DIR = before;
    }
  });
});
