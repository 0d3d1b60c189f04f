#!/usr/bin/env node
// npm run build:sea -> dist-sea/asgc: one file that runs asgc with no Node.js and no node_modules
// on the host (a Diego cell has neither). esbuild bundles the CLI and its dependencies into one
// CommonJS script (what a Node 20 single executable application runs), Node makes the SEA blob,
// and postject injects it into a copy of this Node binary.
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { inject } from 'postject';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
// The output folder: dist-sea/, or the one given (tests build into a temporary folder).
const out = process.argv[2] ?? join(root, 'dist-sea');
const bundle = join(out, 'asgc.cjs');
const blob = join(out, 'asgc.blob');
const executable = join(out, 'asgc');
// The fuse Node's own SEA loader looks for (Node's documentation, "Single executable applications").
const SEA_FUSE = 'NODE_SEA_FUSE_fce680ab2cc467b6e072b8b5df1996b2';

rmSync(out, { recursive: true, force: true });
mkdirSync(out, { recursive: true });

await build({
  stdin: { contents: "import { main } from './src/cli/main.ts';\nmain();\n", resolveDir: root, loader: 'ts' },
  bundle: true,
  platform: 'node',
  // ESM builds first: jsonc-parser's UMD main hides its requires from the bundler.
  mainFields: ['module', 'main'],
  target: 'node20',
  format: 'cjs',
  outfile: bundle,
  legalComments: 'none',
  logLevel: 'warning',
});

const seaConfig = join(out, 'sea-config.json');
writeFileSync(seaConfig, JSON.stringify({ main: bundle, output: blob, disableExperimentalSEAWarning: true, useCodeCache: true }));
execFileSync(process.execPath, ['--experimental-sea-config', seaConfig], { stdio: 'ignore' });

copyFileSync(process.execPath, executable);
chmodSync(executable, 0o755);
await inject(executable, 'NODE_SEA_BLOB', readFileSync(blob), { sentinelFuse: SEA_FUSE });
rmSync(blob);
rmSync(seaConfig);

const megabytes = (path) => (statSync(path).size / 2 ** 20).toFixed(1);
process.stdout.write(`${executable}: ${megabytes(executable)} MiB (Node ${process.version}; bundle ${megabytes(bundle)} MiB)\n`);
