// asgc review, explain and check --mark as an operator runs them: scenario directories, a git
// revision, golden files, the PR comment and JSON forms, exit codes.
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asgc } from '../support/cli.js';

const exec = promisify(execFile);
let work: string;

/** rules/dual-stack-cell with one more partner API rule in its web-egress ASG: tcp 443 to 203.0.113.10. */
async function changedScenario(directory: string): Promise<void> {
  await cp('rules/dual-stack-cell', directory, { recursive: true });
  const file = join(directory, 'security_groups.json');
  const document = JSON.parse(await readFile(file, 'utf8'));
  const group = document.security_groups.find((candidate: { name: string }) => candidate.name === 'web-egress');
  const rules = JSON.parse(group.rules);
  rules.push({ protocol: 'tcp', destination: '203.0.113.10', ports: '443', description: 'payments' });
  group.rules = JSON.stringify(rules);
  await writeFile(file, JSON.stringify(document, null, 2));
}

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'asgc-review-'));
  await changedScenario(join(work, 'after'));
});
afterAll(async () => {
  if (work !== undefined) await rm(work, { recursive: true, force: true });
});

const GAIN =
  /IPv4 egress gains tcp 443 \(new connections\) to 203\.0\.113\.10, via ASG "web-egress" \([0-9a-f-]+\) rule #5: payments/;

describe('asgc review', () => {
  it('two scenario directories: the gained access in words, grouped by app, exit 3', async () => {
    const result = await asgc('review', 'rules/dual-stack-cell', join(work, 'after'));
    expect(result.stderr).toBe('');
    expect(result.code).toBe(3);
    expect(result.stdout).toMatch(GAIN);
    expect(result.stdout).toMatch(
      /^app 4a2d3627-7e9a-4cf5-b1b9-2a6f0c3d5e10 \(space 5351a742-1f0d-4b7c-9e2a-6c8d0b4f3a21, running/m,
    );
    // Only the IPv4 containers gain it (the rule names an IPv4 address); nothing is lost.
    expect(result.stdout).not.toMatch(/loses|IPv6/);
  });

  it('no access change: exit 0; the optimiser off, or the same scenario, changes nothing', async () => {
    expect(await asgc('review', 'rules/dual-stack-cell', 'rules/dual-stack-cell')).toEqual({
      code: 0,
      stdout: 'no access change\n',
      stderr: '',
    });
    expect((await asgc('review', 'rules/logging-and-limits', 'rules/logging-and-limits', '--no-optimize')).code).toBe(0);
  });

  it('--markdown is a PR comment, --json lists every change with its fields and policy', async () => {
    const markdown = await asgc('review', 'rules/dual-stack-cell', join(work, 'after'), '--markdown');
    expect(markdown.stdout).toMatch(/^\*\*asgc review:\*\* 3 container\(s\) change access\.\n\n\*\*app /);
    expect(markdown.stdout).toMatch(new RegExp(`^- ${GAIN.source}`, 'm'));
    const json = await asgc('review', 'rules/dual-stack-cell', join(work, 'after'), '--json');
    expect(json.code).toBe(3);
    const parsed = JSON.parse(json.stdout);
    expect(parsed.contexts.length).toBe(3);
    expect(parsed.contexts[0].gained[0]).toMatchObject({
      remote: ['203.0.113.10'],
      state: expect.arrayContaining(['NEW']),
      protocol: '6',
      dport: '443',
      policy: { kind: 'asg', groupName: 'web-egress', ruleIndex: 5 },
    });
  });

  it('--git REV reviews the directory as at a revision, read with git show', async () => {
    const repository = join(work, 'repo');
    await cp('rules/dual-stack-cell', join(repository, 'cell'), { recursive: true });
    const git = (...args: string[]) =>
      exec('git', ['-C', repository, '-c', 'user.email=t@example.com', '-c', 'user.name=t', ...args]);
    await git('init', '-q');
    await git('add', '.');
    await git('commit', '-q', '-m', 'before');
    expect((await asgc('review', '--git', 'HEAD', join(repository, 'cell'))).code).toBe(0);
    await rm(join(repository, 'cell'), { recursive: true });
    await changedScenario(join(repository, 'cell'));
    const result = await asgc('review', '--git', 'HEAD', join(repository, 'cell'));
    expect(result.code).toBe(3);
    expect(result.stdout).toMatch(GAIN);
    const bad = await asgc('review', '--git', 'no-such-revision', join(repository, 'cell'));
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/cell\/security_groups\.json@no-such-revision: cannot be read with git/);
  });

  it('--golden DIR reviews golden files against the scenario; usage errors exit 2', async () => {
    expect((await asgc('review', '--golden', 'golden/dual-stack-cell', 'rules/dual-stack-cell')).code).toBe(0);
    const result = await asgc('review', '--golden', 'golden/dual-stack-cell', join(work, 'after'));
    expect(result.code).toBe(3);
    expect(result.stdout).toMatch(GAIN);
    expect((await asgc('review', 'rules/dual-stack-cell')).code).toBe(2);
    expect((await asgc('review', '--git', 'HEAD', 'a', 'b')).code).toBe(2);
  });

  it('asgc golden prints the review of each changed scenario beside its diff', async () => {
    const rules = join(work, 'golden-rules');
    await cp('rules', rules, { recursive: true });
    await rm(join(rules, 'dual-stack-cell'), { recursive: true });
    await changedScenario(join(rules, 'dual-stack-cell'));
    const result = await asgc('golden', '--rules', rules, '--golden', 'golden');
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^differs +dual-stack-cell$/m);
    expect(result.stdout).toMatch(/^review \(golden -> rules\):$/m);
    expect(result.stdout).toMatch(new RegExp(`^ {4}${GAIN.source}`, 'm'));
  });
});

describe('asgc explain', () => {
  it("lists a container's whole access with the policy behind each entry", async () => {
    const result = await asgc('explain', 'rules/dual-stack-cell', '--container', '8c5b0a4d-2c52-4c1f-6f7a-1a2b');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/IPv4 egress allows udp 53 \(new connections\) to 192\.0\.2\.53, by ASG "dns-dual-stack"/);
    expect(result.stdout).toMatch(
      /IPv6 host allows icmpv6 type 131-133, 135-136, 143 \(new connections\) to the cell at anywhere/,
    );
    expect(result.stdout).not.toMatch(/gains|loses/);
    expect((await asgc('explain', 'rules/dual-stack-cell', '--container', 'nope')).code).toBe(1);
    expect((await asgc('explain', 'rules/dual-stack-cell')).code).toBe(2);
  });
});

describe('asgc check --mark', () => {
  it('takes a tag in hex, as policies.json and iptables write it', async () => {
    const question = [
      'check',
      'rules/logging-and-limits',
      '--container',
      '9c0d1e2f-3a4b-4c5d-8e6f-7a8b9c0d1ec5',
      '--from',
      '10.255.99.9',
      '--port',
      '8080',
    ];
    for (const mark of ['0x1', '1', '0X01']) expect((await asgc(...question, '--mark', mark)).code).toBe(0);
    expect((await asgc(...question, '--mark', '0x2')).code).toBe(5);
    expect((await asgc(...question, '--mark', '5e')).code).toBe(5);
    const bad = await asgc(...question, '--mark', '0xZZ');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/1 to 8 hex digits/);
  });
});
