#!/usr/bin/env node
// The meshform command: runs the compiled CLI (dist/cli/main.js) to its end. Needs no TypeScript runtime.
'use strict';
const path = require('node:path');

const { peerDependencies } = require('../package.json');
const compiled = path.join(__dirname, '..', 'dist', 'cli', 'main.js');

function fail(message) {
  process.stderr.write(`meshform: error: ${message}\n`);
  process.exitCode = 1;
}

let cli;
try {
  cli = require(compiled);
} catch (e) {
  const missing = e && e.code === 'MODULE_NOT_FOUND' ? /Cannot find module '([^']+)'/.exec(e.message) : null;
  const peer = missing && Object.keys(peerDependencies).find((p) => missing[1] === p || missing[1].startsWith(`${p}/`));
  if (missing && missing[1] === compiled) {
    fail(`meshform is not built (${compiled} is missing): run \`npm run build\` in the meshform package`);
  } else if (peer) {
    const install = Object.entries(peerDependencies).map(([name, range]) => `${name}@${range}`);
    fail(`meshform needs its peer dependency ${peer}, which is not installed: npm install ${install.join(' ')}`);
  } else {
    throw e;
  }
}
if (cli) cli.run(process.argv.slice(2));
