// The npm package as an operator gets it: packed, installed into a fresh prefix, run. Its output
// must be byte-identical to the repository build's (bin/asgc over dist/, built by `npm test`).
import { execFile } from 'node:child_process';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
let work: string;
let installed: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'asgc-pack-'));
  // --ignore-scripts: prepack's clean build would pull dist/ from under the tests running beside this one.
  await run('npm', ['pack', '--ignore-scripts', '--pack-destination', work], { cwd: process.cwd() });
  const [tarball] = (await readdir(work)).filter((name) => name.endsWith('.tgz'));
  const prefix = join(work, 'prefix');
  await run('npm', [
    'install',
    '-g',
    '--prefix',
    prefix,
    '--prefer-offline',
    '--no-audit',
    '--no-fund',
    join(work, tarball as string),
  ]);
  installed = join(prefix, 'bin', 'asgc');
}, 120_000);

afterAll(async () => {
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe('the packed npm package', () => {
  it('holds the launcher and the compiled CLI, and neither tests nor sources', async () => {
    const { stdout } = await run('tar', [
      'tzf',
      join(work, (await readdir(work)).find((name) => name.endsWith('.tgz')) as string),
    ]);
    const files = stdout.trim().split('\n');
    expect(files).toContain('package/bin/asgc');
    expect(files).toContain('package/dist/src/cli/main.js');
    expect(files.filter((file) => /\/(test|src)\/.*\.ts$|\.map$|^package\/dist\/test\//.test(file))).toEqual([]);
  });

  it('runs --help once installed', async () => {
    const { stdout } = await run(installed, ['--help']);
    expect(stdout).toMatch(/^Usage: asgc /);
    expect(stdout).toContain('compile');
  });

  it('compiles a bundled scenario to the same bytes as the repository build', async () => {
    for (const scenario of ['dual-stack-cell', 'ingress-and-host-access']) {
      const packed = await run(installed, ['compile', join('rules', scenario)], { maxBuffer: 64 * 2 ** 20 });
      const repo = await run('node', ['bin/asgc', 'compile', join('rules', scenario)], { maxBuffer: 64 * 2 ** 20 });
      expect(packed.stdout.length).toBeGreaterThan(1000);
      expect(packed.stdout).toBe(repo.stdout);
    }
  });
});
