import { execFileSync, spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { MeshformError, SecretStore } from '../index';
import { keyMatchesCertificate, readPrivateKey } from '../constructs/private/x509';
import { issuedMesh } from './ca-support';
import { planProject } from './plan-support';
import { BIN, REPO, tempDir, thrownMessage, until } from './support';

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

  it('cleans what interrupted writes left before the store is used: half-swapped roots finished, leftovers removed', () => {
    // GIVEN a store whose last writer was killed at every awkward moment
    const dir = path.join(tempDir(), 'store');
    const store = SecretStore.open({ directory: dir });
    store.ensure('shop');
    const ca = store.ca('shop');
    ca.createRoot('root-1', { keyAlgorithm: 'ec-p256', validityDays: 3650 });
    const certificate = ca.rootCertificate('root-1')!;
    const roots = path.join(dir, 'shop', 'ca', 'roots');
    // a root swap stopped between its two renames: the old set moved aside, the complete new set not yet in place
    fs.renameSync(path.join(roots, 'root-1'), path.join(roots, '.root-1.staging-4242'));
    fs.writeFileSync(path.join(roots, '.root-1.staging-4242', '.complete'), '');
    fs.cpSync(path.join(roots, '.root-1.staging-4242'), path.join(roots, '.root-1.old-4242'), { recursive: true });
    // a root an earlier meshform began writing file by file: a key and no certificate
    fs.mkdirSync(path.join(roots, 'root-2'));
    fs.writeFileSync(path.join(roots, 'root-2', 'key.pem'), 'half');
    // a file written to its temporary name and never renamed, and a mesh entry staged and never moved in
    fs.writeFileSync(path.join(dir, 'shop', 'synthesized.json.tmp-4242'), '{');
    fs.mkdirSync(path.join(dir, '.other.staging-abc123'));
    // WHEN the store is next written to (any write takes the lock and repairs first)
    SecretStore.open({ directory: dir }).ensure('other');
    // THEN the new set is in place, and nothing else is left
    expect(ca.roots()).toEqual(['root-1']);
    expect(ca.rootCertificate('root-1')).toBe(certificate);
    expect(ca.rootKey('root-1', () => undefined)).toBeDefined();
    expect(fs.readdirSync(roots)).toEqual(['root-1']);
    expect(fs.readdirSync(path.join(roots, 'root-1')).sort()).toEqual(['certificate.pem', 'key.pem', 'passphrase']);
    expect(fs.existsSync(path.join(dir, 'shop', 'synthesized.json.tmp-4242'))).toBe(false);
    expect(fs.readdirSync(dir).filter((f) => f.includes('staging'))).toEqual([]);
  });

  it("writes a root as one unit: a reader never sees a key beside another run's certificate", () => {
    // GIVEN an unattended root
    const store = SecretStore.open({ directory: path.join(tempDir(), 'store') });
    store.ensure('shop');
    const ca = store.ca('shop');
    ca.createRoot('root-1', { keyAlgorithm: 'ec-p256', validityDays: 3650 });
    const dir = path.join(store.meshDirectory('shop'), 'ca', 'roots', 'root-1');
    const before = fs.statSync(dir).ino;
    // WHEN its key is protected (re-encrypted, stored passphrase removed)
    ca.protect('root-1', 'a long new passphrase', () => undefined);
    // THEN the directory was replaced as a whole (a new inode), holding the new set only
    expect(fs.statSync(dir).ino).not.toBe(before);
    expect(fs.readdirSync(dir).sort()).toEqual(['certificate.pem', 'key.pem']);
    expect(ca.rootKey('root-1', () => 'a long new passphrase')).toBeDefined();
  });

  describe('a file of the store that cannot be used is refused, naming the file and the fix', () => {
    /** GIVEN a store with mesh shop: its shared secrets, an unattended root and datacenter east's certificates. */
    function issued(): { dir: string; store: SecretStore } {
      const { store } = issuedMesh('shop', ['east']);
      return { dir: store.meshDirectory('shop'), store };
    }
    const restore =
      'Fix: restore the file (or the whole store directory) from your backup; if this mesh was never deployed, delete its directory in the store and run `meshform synth` to create new secrets';

    it.each([
      ['store.json', '{"format": 2, "mes', (s: SecretStore) => s.load('shop'), `is not JSON (`],
      ['acl-bootstrap.token', 'not-a-token\n', (s: SecretStore) => s.load('shop'), 'does not hold a UUID'],
      ['synthesized.json', '{', (s: SecretStore) => s.readJson('shop', 'synthesized.json'), 'is not JSON ('],
    ])('%s', (name, content, use, problem) => {
      const { dir, store } = issued();
      const file = path.join(dir, name);
      fs.writeFileSync(file, content);
      const message = thrownMessage(() => use(store));
      expect(message).toContain(`[${file}] this file of the secret store ${problem}`);
      expect(message).toContain(restore);
    });

    it('a root certificate, a root key that its stored passphrase does not open, a datacenter key', () => {
      const { dir, store } = issued();
      const root = path.join(dir, 'ca', 'roots', 'root-1');
      fs.writeFileSync(
        path.join(root, 'certificate.pem'),
        '-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n',
      );
      expect(thrownMessage(() => store.ca('shop').rootCertificate('root-1'))).toMatch(
        new RegExp(
          `^\\[${root}/certificate\\.pem\\] this file of the secret store does not hold a readable certificate \\(.+\\): .+ Fix: restore the root directory`,
        ),
      );
      const other = issuedMesh('other', ['east']);
      fs.copyFileSync(
        path.join(other.store.meshDirectory('other'), 'ca', 'roots', 'root-1', 'key.pem'),
        path.join(root, 'key.pem'),
      );
      expect(thrownMessage(() => store.ca('shop').rootKey('root-1', () => undefined))).toContain(
        `[${root}/key.pem] this file of the secret store is not decrypted by the passphrase stored beside it`,
      );
      const east = path.join(dir, 'ca', 'datacenters', 'east', 'intermediate-key.pem');
      fs.writeFileSync(east, 'garbage');
      expect(thrownMessage(() => store.ca('shop').intermediate('east'))).toContain(
        `[${east}] this file of the secret store does not hold a readable private key`,
      );
    });

    it('through the command: one line naming the file, exit 1, no stack trace', () => {
      // GIVEN a synthesized project whose store's record of the last synthesis is damaged
      const p = planProject();
      const first = spawnSync(process.execPath, [BIN, 'synth', '--project', p.dir, '--secrets-dir', p.store], {
        encoding: 'utf8',
      });
      expect(first.status, first.stderr).toBe(0);
      const file = path.join(p.store, 'shop', 'synthesized.json');
      fs.writeFileSync(file, '{"format": 4, "mesh": "sh');
      // WHEN
      const run = spawnSync(process.execPath, [BIN, 'synth', '--project', p.dir, '--secrets-dir', p.store], {
        encoding: 'utf8',
      });
      // THEN
      expect(run.status).toBe(1);
      expect(run.stderr).toMatch(
        new RegExp(`^meshform: error: \\[${file}\\] this file of the secret store is not JSON \\(`),
      );
      expect(run.stderr).not.toMatch(/\n\s+at /);
      expect(run.stderr.trim().split('\n')).toHaveLength(1);
    });
  });

  it("counts a datacenter's secrets version: the same values keep it, a changed one bumps it, and it persists", () => {
    // GIVEN a store with a mesh
    const dir = tempDir();
    const store = SecretStore.open({ directory: dir });
    store.ensure('shop');
    // WHEN the versions of two datacenters' secrets are asked for, then again after one value changed
    const first = store.secretsVersion('shop', 'east', ['key', 'cert-1']);
    const again = store.secretsVersion('shop', 'east', ['key', 'cert-1']);
    const other = store.secretsVersion('shop', 'west', ['key', 'cert-9']);
    const renewed = store.secretsVersion('shop', 'east', ['key', 'cert-2']);
    // THEN each starts at 1, stays while nothing changes, and the changed one goes up, also for a new reader
    expect([first, again, other, renewed]).toEqual([1, 1, 1, 2]);
    expect(SecretStore.open({ directory: dir }).secretsVersion('shop', 'east', ['key', 'cert-2'])).toBe(2);
    expect(SecretStore.open({ directory: dir }).secretsVersion('shop', 'west', ['key', 'cert-9'])).toBe(1);
    // and the file records no secret, only a digest of the values
    const versions = fs.readFileSync(path.join(dir, 'shop', 'versions.json'), 'utf8');
    expect(versions).not.toContain('cert-2');
    expect(fs.statSync(path.join(dir, 'shop', 'versions.json')).mode & 0o777).toBe(0o600);
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

describe('two runs at once', () => {
  /** The root's key, decrypted with its stored passphrase, matches its certificate; each intermediate chains to it. */
  function consistent(store: SecretStore, datacenters: readonly string[]): void {
    const ca = store.ca('shop');
    expect(ca.roots()).toEqual(['root-1']);
    const root = ca.rootCertificate('root-1')!;
    const key = ca.rootKey('root-1', () => undefined);
    expect(keyMatchesCertificate(root, key)).toBe(true);
    for (const dc of datacenters) {
      const verified = spawnSync(
        'openssl',
        [
          'verify',
          '-CAfile',
          writeTemp('root.pem', root),
          writeTemp('intermediate.pem', ca.intermediate(dc)!.certificatePem),
        ],
        { encoding: 'utf8' },
      );
      expect(verified.status, verified.stdout + verified.stderr).toBe(0);
    }
  }

  function writeTemp(name: string, content: string): string {
    const file = path.join(tempDir('meshform-pem-'), name);
    fs.writeFileSync(file, content);
    return file;
  }

  /** Starts `meshform <args>` as its own process; resolves with its exit code and output. */
  function start(args: string[], onStderr?: (text: string) => void) {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      onStderr?.(stderr);
    });
    return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
      child.on('close', (code) => resolve({ code, stdout, stderr })),
    );
  }

  it('a write waits while another process holds the store, then builds on what it wrote', async () => {
    // GIVEN another process holding the store's lock (as a first synth does while it creates the root)
    const p = planProject();
    const dir = tempDir('meshform-holder-');
    fs.writeFileSync(
      path.join(dir, 'hold.ts'),
      `import * as fs from 'node:fs';
import { SecretStore } from ${JSON.stringify(path.join(REPO, 'index'))};
import { sleepSync } from ${JSON.stringify(path.join(REPO, 'constructs', 'private', 'file-lock'))};
const store = SecretStore.open({ directory: ${JSON.stringify(p.store)} });
store.withLock(() => {
  fs.writeFileSync(${JSON.stringify(path.join(dir, 'locked'))}, String(process.pid));
  while (!fs.existsSync(${JSON.stringify(path.join(dir, 'release'))})) sleepSync(50);
  store.ensure('shop');
  store.ca('shop').createRoot('root-1', { keyAlgorithm: 'ec-p256', validityDays: 3650 });
});
`,
    );
    const holder = spawn(
      process.execPath,
      [path.join(REPO, 'node_modules', 'tsx', 'dist', 'cli.mjs'), path.join(dir, 'hold.ts')],
      {
        stdio: 'ignore',
      },
    );
    const held = new Promise((resolve) => holder.on('close', resolve));
    try {
      await until('the other process holds the store', () => fs.existsSync(path.join(dir, 'locked')));
      // WHEN a first synth of the project runs meanwhile: once it says it waits, the holder finishes
      const synth = await start(['synth', '--project', p.dir, '--secrets-dir', p.store], (stderr) => {
        if (stderr.includes('waiting for the secret store')) fs.writeFileSync(path.join(dir, 'release'), '');
      });
      fs.writeFileSync(path.join(dir, 'release'), '');
      await held;
      // THEN it waited, naming the holder, and issued under the root the holder created (it made none of its own)
      expect(synth.stderr).toContain(
        `meshform: waiting for the secret store, locked by meshform (pid ${fs.readFileSync(path.join(dir, 'locked'), 'utf8')} on `,
      );
      expect(synth.code, synth.stderr).toBe(0);
      expect(synth.stdout).not.toContain('issued root root-1');
      consistent(SecretStore.open({ directory: p.store }), ['east', 'west']);
    } finally {
      fs.writeFileSync(path.join(dir, 'release'), '');
      if (holder.exitCode === null) holder.kill('SIGKILL');
    }
  });

  it('two first-time synths of one project: the second is refused, naming the first; the root is whole', async () => {
    const p = planProject({ keyAlgorithm: 'rsa-4096', datacenters: ['east', 'west', 'north'] });
    const args = ['synth', '--project', p.dir, '--secrets-dir', p.store];
    const [one, two] = await Promise.all([start(args), start(args)]);
    const refused = [one, two].filter((r) => r.code !== 0);
    expect(refused).toHaveLength(1);
    expect(refused[0]!.stderr).toMatch(
      new RegExp(
        `^meshform: error: another meshform run is using this project: meshform synth in ${p.dir} \\(pid \\d+ on .+, since .+\\)\\. Wait for it to finish`,
      ),
    );
    consistent(SecretStore.open({ directory: p.store }), ['east', 'west', 'north']);
  });

  it('two first-time synths of two projects sharing one store: one root, whole, every intermediate under it', async () => {
    const one = planProject({ keyAlgorithm: 'rsa-4096', datacenters: ['east', 'west', 'north'] });
    const two = planProject({ keyAlgorithm: 'rsa-4096', datacenters: ['east', 'west', 'north'] });
    const results = await Promise.all(
      [one, two].map((p) => start(['synth', '--project', p.dir, '--secrets-dir', one.store])),
    );
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    expect(results.filter((r) => r.stdout.includes('issued root root-1'))).toHaveLength(1);
    consistent(SecretStore.open({ directory: one.store }), ['east', 'west', 'north']);
  });
});
