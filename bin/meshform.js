#!/usr/bin/env node
// The meshform command: the compiled CLI when the package is built (dist/), else the TypeScript sources via tsx.
const fs = require('node:fs');
const path = require('node:path');

const compiled = path.join(__dirname, '..', 'dist', 'cli', 'main.js');
let cli;
if (fs.existsSync(compiled)) {
  cli = require(compiled);
} else {
  require('tsx/cjs');
  cli = require(path.join(__dirname, '..', 'cli', 'main.ts'));
}
try {
  process.exitCode = cli.main(process.argv.slice(2));
} catch (e) {
  if (e && typeof e.message === 'string' && (e.name === 'MeshformError' || 'exitCode' in e)) {
    process.stderr.write(`meshform: error: ${e.message}\n`);
    process.exitCode = typeof e.exitCode === 'number' ? e.exitCode : 1;
  } else {
    throw e;
  }
}
