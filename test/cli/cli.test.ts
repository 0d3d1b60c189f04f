import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { asgc } from '../support/cli.js';

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'asgc-cli-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function scenarioWith(files: Record<string, unknown>): Promise<string> {
  const directory = await mkdtemp(join(work, 'scenario-'));
  for (const [name, content] of Object.entries(files)) {
    await writeFile(join(directory, name), typeof content === 'string' ? content : JSON.stringify(content));
  }
  return directory;
}

const containers = { c1: { handle: 'c1', ip: '10.255.0.2', metadata: { space_id: 's', container_workload: 'app' } } };

describe('asgc compile', () => {
  it('prints one family loadable as is, equal to the golden file', async () => {
    const result = await asgc('compile', 'rules/cf-defaults-ipv4', '--family', '4');
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toBe(await readFile('golden/cf-defaults-ipv4/iptables.rules', 'utf8'));
  });

  it('prints both families under header comments without --family', async () => {
    const result = await asgc('compile', 'rules/dual-stack-cell');
    expect(result.code).toBe(0);
    const v4 = await readFile('golden/dual-stack-cell/iptables.rules', 'utf8');
    const v6 = await readFile('golden/dual-stack-cell/ip6tables.rules', 'utf8');
    expect(result.stdout).toBe(
      `# asgc: iptables ruleset (IPv4), for iptables-restore\n${v4}# asgc: ip6tables ruleset (IPv6), for ip6tables-restore\n${v6}`,
    );
  });

  it('writes both files with --out', async () => {
    const out = join(work, 'out');
    const result = await asgc('compile', 'rules/deny-networks', '--out', out);
    expect(result.code).toBe(0);
    expect(await readFile(join(out, 'ip6tables.rules'), 'utf8')).toBe(
      await readFile('golden/deny-networks/ip6tables.rules', 'utf8'),
    );
    expect(await readFile(join(out, 'iptables.rules'), 'utf8')).toBe(
      await readFile('golden/deny-networks/iptables.rules', 'utf8'),
    );
  });

  it('writes and prints the ipsets the rules name, and says which a single family needs', async () => {
    const out = join(work, 'out-ipsets');
    const written = await asgc('compile', 'rules/partner-list-ipsets', '--out', out);
    expect(written.code).toBe(0);
    expect(written.stderr).toContain(`wrote ${join(out, 'ipsets.rules')}`);
    const golden = await readFile('golden/partner-list-ipsets/ipsets.rules', 'utf8');
    expect(await readFile(join(out, 'ipsets.rules'), 'utf8')).toBe(golden);
    const both = await asgc('compile', 'rules/partner-list-ipsets');
    expect(both.stdout.endsWith(`# asgc: the ipsets the rules name, for ipset restore (load them first)\n${golden}`)).toBe(true);
    const v6 = await asgc('compile', 'rules/partner-list-ipsets', '--family', '6');
    expect(v6.stdout).toMatch(
      /^# asgc: load the ipsets first \(asgc compile --out DIR writes them\): asgc-s6-[a-z2-7]{12}\n\*raw\n/,
    );
    const bad = await scenarioWith({ 'containers.json': containers, 'config.json': { ipset_min_destinations: 1 } });
    const refused = await asgc('compile', bad);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain('config.json: /ipset_min_destinations: must be an integer from 2 to 1000000');
  });

  it('takes documents from flags instead of the directory', async () => {
    const directory = await scenarioWith({ 'my-containers.json': containers });
    const result = await asgc(
      'compile',
      work,
      '--containers',
      join(directory, 'my-containers.json'),
      '--security-groups',
      'rules/cf-defaults-ipv4/security_groups.json',
      '--family',
      '4',
    );
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('--comment "public_networks#0"');
  });

  it('on invalid input prints file: pointer: reason to stderr, nothing to stdout, and exits 1', async () => {
    const directory = await scenarioWith({
      'containers.json': containers,
      'security_groups.json': {
        security_groups: [
          {
            guid: 'g',
            name: 'n',
            rules: [
              { protocol: 'tcp', destination: '10.0.0.1', ports: '80,' },
              { protocol: 'tcp', destination: '10.0.0.1', ports: '8080-8080' },
            ],
          },
        ],
      },
    });
    const result = await asgc('compile', directory);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr).toBe(
      `${join(directory, 'security_groups.json')}: /security_groups/0/rules/1/ports: ports must be a valid single port, comma separated list of ports, or range or ports, formatted as a string: in range "8080-8080" the start must be below the end\n`,
    );
  });

  it('reports errors as JSON with --json', async () => {
    const directory = await scenarioWith({ 'containers.json': { c1: { handle: 'c1', ip: '10.255.0.300' } } });
    const result = await asgc('compile', directory, '--json');
    expect(result.code).toBe(1);
    expect(JSON.parse(result.stderr)).toEqual([
      {
        file: join(directory, 'containers.json'),
        pointer: '/c1/ip',
        message: '"10.255.0.300" is not an IPv4 address (octet 300 is over 255)',
      },
    ]);
  });

  it('needs container metadata', async () => {
    const directory = await scenarioWith({});
    const result = await asgc('compile', directory);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(`${join(directory, 'containers.json')}: cannot be read: no such file\n`);
  });

  it('usage errors exit 2', async () => {
    expect((await asgc('compile', 'rules/cf-defaults-ipv4', '--family', '5')).code).toBe(2);
    expect((await asgc('compile')).code).toBe(2);
    expect((await asgc('compile', 'rules/cf-defaults-ipv4', '--bogus')).code).toBe(2);
    expect((await asgc('frobnicate')).code).toBe(2);
    expect((await asgc()).code).toBe(2);
  });

  it('--help works on every command', async () => {
    for (const command of [[], ['compile'], ['validate'], ['golden']]) {
      const result = await asgc(...command, '--help');
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('Usage: asgc');
    }
  });
});

describe('asgc validate', () => {
  it('checks any subset of documents', async () => {
    const result = await asgc('validate', '--security-groups', 'rules/dual-stack-cell/security_groups.json');
    expect(result).toMatchObject({ code: 0, stderr: '' });
    expect(result.stdout).toContain('valid: rules/dual-stack-cell/security_groups.json (3 security groups, 10 rules');
  });

  it('reports invalid documents and exits 1', async () => {
    const directory = await scenarioWith({
      'policies.json': {
        policies: [
          { source: { id: 'a', tag: '01' }, destination: { id: 'b', tag: '02', protocol: 'tcp', ports: { start: 0, end: 80 } } },
        ],
      },
    });
    const result = await asgc('validate', '--policies', join(directory, 'policies.json'));
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `${join(directory, 'policies.json')}: /policies/0/destination/ports/start: must be a port from 1 to 65535, not 0\n`,
    );
  });

  it('is a usage error without any document', async () => {
    expect((await asgc('validate')).code).toBe(2);
  });
});

describe('asgc golden', () => {
  it('reports a changed golden file with a diff and exits 1; --update rewrites it', async () => {
    const rules = join(work, 'rules');
    const golden = join(work, 'golden');
    await cp('rules/cf-defaults-ipv4', join(rules, 'one'), { recursive: true });
    await cp('golden/cf-defaults-ipv4', join(golden, 'one'), { recursive: true });
    const file = join(golden, 'one', 'iptables.rules');
    const original = await readFile(file, 'utf8');
    await writeFile(file, original.replace('--dport 53', '--dport 54'));
    const check = await asgc('golden', '--rules', rules, '--golden', golden);
    expect(check.code).toBe(1);
    expect(check.stdout).toContain('differs  one');
    expect(check.stdout).toMatch(/-.*--dport 54.*\n\+.*--dport 53/);
    expect((await asgc('golden', '--rules', rules, '--golden', golden, '--update')).code).toBe(0);
    expect(await readFile(file, 'utf8')).toBe(original);
    expect((await asgc('golden', '--rules', rules, '--golden', golden)).code).toBe(0);
  });
});

describe('asgc agent --vpa-config', () => {
  it('refuses a bad vxlan-policy-agent.json with the file, the pointer and the reason, and starts nothing', async () => {
    const rendered = JSON.parse(await readFile('test/fixtures/vpa/vxlan-policy-agent.json', 'utf8')) as Record<string, unknown>;
    const file = join(work, 'vxlan-policy-agent.json');
    await writeFile(file, JSON.stringify({ ...rendered, poll_interval: 'five', pol_interval: 5 }));
    const bad = await asgc('agent', '--vpa-config', file, '--once');
    expect(bad.code).toBe(1);
    expect(bad.stderr.split('\n').filter(Boolean)).toEqual([
      `${file}: /pol_interval: unknown field`,
      `${file}: /poll_interval: must be an integer, not "five"`,
    ]);
    // The job's own file, where its certificates are not: each missing one named.
    await writeFile(file, JSON.stringify(rendered));
    const missing = await asgc('agent', '--vpa-config', file, '--once');
    expect(missing.code).toBe(1);
    expect(missing.stderr).toContain(
      `${file}: /ca_cert_file: no such file: /var/vcap/jobs/vxlan-policy-agent/config/certs/ca.crt`,
    );
    const absent = await asgc('agent', '--vpa-config', join(work, 'nothing.json'), '--once');
    expect(absent).toMatchObject({ code: 1, stderr: expect.stringMatching(/nothing\.json: cannot be read: no such file\n$/) });
  });
});

describe('bin/asgc launcher', () => {
  it('runs the built CLI with its exit code', async () => {
    const exec = promisify(execFile);
    const { stdout } = await exec('./bin/asgc', ['compile', 'rules/icmp-any-type-code', '--family', '6']);
    expect(stdout).toBe(await readFile('golden/icmp-any-type-code/ip6tables.rules', 'utf8'));
    await expect(exec('./bin/asgc', ['compile', 'rules/icmp-any-type-code', '--family', '7'])).rejects.toMatchObject({ code: 2 });
  });
});
