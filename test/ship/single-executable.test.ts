// dist-sea/asgc as a cell gets it: built by scripts/build-sea.mjs, copied alone into an empty
// folder, run with a PATH that holds the network tools and no Node.js, and no node_modules near.
import { execFile } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { kernelTestsEnabled, mustRun, withNamespace } from '../support/kernel.js';

const exec = promisify(execFile);
const kernel = kernelTestsEnabled('single executable');
const SCENARIO = resolve('rules/dual-stack-cell');
let work: string;
let executable: string;
let toolsPath: string;

/** The single executable, from an empty cwd, with only the tools the agent runs on its PATH. */
async function sea(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    execFile(executable, argv, { cwd: work, env: { PATH: toolsPath }, maxBuffer: 64 * 2 ** 20 }, (error, stdout, stderr) =>
      done({ code: error === null ? 0 : Number((error as { code?: number }).code), stdout, stderr }),
    );
  });
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'asgc-sea-'));
  const build = join(work, 'build');
  await exec('node', ['scripts/build-sea.mjs', build], { cwd: process.cwd() });
  executable = join(work, 'asgc');
  await copyFile(join(build, 'asgc'), executable);
  await rm(build, { recursive: true });
  toolsPath = join(work, 'tools');
  await mkdir(toolsPath);
  const tools = ['ip', 'ipset', 'flock'];
  for (const base of ['iptables', 'ip6tables'])
    for (const backend of ['nft', 'legacy']) tools.push(...['', '-save', '-restore'].map((end) => `${base}-${backend}${end}`));
  for (const tool of tools) {
    const { stdout } = await exec('sh', ['-c', `command -v ${tool}`]);
    await symlink(stdout.trim(), join(toolsPath, tool));
  }
}, 180_000);

afterAll(async () => {
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

describe('the single executable', () => {
  it('has no Node.js to lean on: none on its PATH, no node_modules near it', async () => {
    const node = await exec('/bin/sh', ['-c', 'command -v node || echo none'], { env: { PATH: toolsPath } });
    expect(node.stdout.trim()).toBe('none');
    expect((await sea('--help')).stdout).toMatch(/^Usage: asgc /);
  });

  it('compiles a bundled scenario to the same bytes as the repository build', async () => {
    const packed = await sea('compile', SCENARIO);
    const repo = await exec('node', ['bin/asgc', 'compile', SCENARIO], { maxBuffer: 64 * 2 ** 20 });
    expect(packed.code).toBe(0);
    expect(packed.stdout.length).toBeGreaterThan(1000);
    expect(packed.stdout).toBe(repo.stdout);
  });

  it('validates: a good scenario exits 0, a bad one exits 1 with one line naming the file and pointer', async () => {
    expect((await sea('validate', SCENARIO)).code).toBe(0);
    const bad = join(work, 'bad');
    await mkdir(bad);
    await writeFile(join(bad, 'containers.json'), '{"c1": {"ip": "192.0.2.300", "metadata": {}}}');
    const result = await sea('validate', bad);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain(`${join(bad, 'containers.json')}: /c1: `);
  });

  it.runIf(kernel)(
    'runs one agent cycle in a namespace, and the repository build then finds the tables up to date',
    async () => {
      await withNamespace(async (namespace) => {
        const cycle = await sea('agent', '--scenario-dir', SCENARIO, '--netns', namespace, '--backend', 'nft', '--once');
        expect(cycle.stderr).toContain('"status":"applied"');
        expect(cycle.stderr).toContain('"problems":[]');
        expect(cycle.code).toBe(0);
        const diff = await mustRun(['node', 'bin/asgc', 'diff', SCENARIO, '--netns', namespace]);
        expect(diff.stdout).toBe('IPv4: up to date\nIPv6: up to date\n');
      });
    },
    60_000,
  );
});
