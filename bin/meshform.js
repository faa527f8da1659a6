#!/usr/bin/env node
// The meshform command, in this one process (no launcher in front of it that could be killed and leave the
// command, and Terraform, running). The installed package runs its compiled CLI (dist/cli/main.js) and needs
// no TypeScript runtime; a development checkout (cli/main.ts beside this file's folder) runs its sources
// through tsx's require hook, so it never runs a stale build.
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const { peerDependencies } = require('../package.json');
const compiled = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
const source = path.join(__dirname, '..', 'cli', 'main.ts');

function fail(message) {
  process.stderr.write(`meshform: error: ${message}\n`);
  process.exitCode = 1;
}

function load() {
  if (fs.existsSync(source)) {
    try {
      require.resolve('tsx/cjs');
    } catch {
      return require(compiled); // a checkout without its dev dependencies: the build, if there is one
    }
    require('tsx/cjs');
    return require(source);
  }
  return require(compiled);
}

function missingPeer(peer) {
  const install = Object.entries(peerDependencies).map(([name, range]) => `${name}@${range}`);
  fail(`meshform needs its peer dependency ${peer}, which is not installed: npm install ${install.join(' ')}`);
}

/**
 * The first peer dependency that cannot be found, looked up without loading it: the CLI itself loads none of
 * them (the app does), but every command needs them installed.
 */
function absentPeer() {
  for (const peer of Object.keys(peerDependencies)) {
    try {
      require.resolve(peer);
    } catch (e) {
      if (e && e.code === 'MODULE_NOT_FOUND') return peer;
    }
  }
  return undefined;
}

let cli;
try {
  cli = load();
} catch (e) {
  const missing = e && e.code === 'MODULE_NOT_FOUND' ? /Cannot find module '([^']+)'/.exec(e.message) : null;
  const peer = missing && Object.keys(peerDependencies).find((p) => missing[1] === p || missing[1].startsWith(`${p}/`));
  if (missing && missing[1] === compiled) {
    fail(`meshform is not built (${compiled} is missing): run \`npm run build\` in the meshform package`);
  } else if (peer) {
    missingPeer(peer);
  } else {
    throw e;
  }
}
const absent = cli && absentPeer();
if (absent) missingPeer(absent);
else if (cli) cli.run(process.argv.slice(2));
