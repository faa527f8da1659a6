#!/usr/bin/env node
// The meshform command: the compiled CLI when the package is built (dist/), else the TypeScript sources,
// compiled in this same process by tsx's require hook. One process: there is no launcher in front of the
// command that could be killed and leave it (and Terraform) running.
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

/** A meshform error is one message and an exit code; anything else is a bug and keeps its stack trace. */
function report(e) {
  if (e && typeof e.message === 'string' && isMeshform(e)) {
    process.stderr.write(`meshform: error: ${e.message}\n`);
    process.exitCode = typeof e.exitCode === 'number' ? e.exitCode : 1;
  } else {
    throw e;
  }
}

function isMeshform(e) {
  return e.name === 'MeshformError' || e.name === 'CaMaterialError' || 'exitCode' in e;
}

try {
  Promise.resolve(cli.main(process.argv.slice(2))).then((code) => {
    process.exitCode = code;
  }, report);
} catch (e) {
  report(e);
}
