import { describe, expect, it } from 'vitest';
import { ingestScenario } from '../../src/ingest/cell.js';
import { ingestConfig } from '../../src/ingest/config.js';
import { ingestContainers } from '../../src/ingest/containers.js';
import { formatInputError } from '../../src/ingest/input-error.js';
import { ingestPolicies } from '../../src/ingest/policies.js';
import { ingestSecurityGroups } from '../../src/ingest/security-groups.js';
import { formatBlock, formatIPv6 } from '../../src/model/address.js';

const group = (extra: object = {}) => ({ guid: 'g1', name: 'sg', rules: '[]', ...extra });

describe('security groups documents', () => {
  it('accepts one page or an array of pages, and names the page in pointers', () => {
    const pages = [
      { next: 2, security_groups: [group()] },
      { next: 0, security_groups: [group({ guid: 'g2', rules: [{ protocol: 'all', destination: '10.0.0.1/33' }] })] },
    ];
    const { groups, errors } = ingestSecurityGroups(pages, 'sg.json');
    expect(groups.map((g) => g.guid)).toEqual(['g1', 'g2']);
    expect(errors).toEqual([
      {
        file: 'sg.json',
        pointer: '/1/security_groups/0/rules/0/destination',
        message: expect.stringContaining('prefix length 33'),
      },
    ]);
  });

  it('reports a rules string that is not JSON where it is', () => {
    const { errors } = ingestSecurityGroups({ security_groups: [group({ rules: '[{"protocol":' })] }, 'sg.json');
    expect(errors).toHaveLength(1);
    expect(errors[0]?.pointer).toBe('/security_groups/0/rules');
    expect(errors[0]?.message).toMatch(/^rules is a string that is not valid JSON/);
  });

  it('refuses a group listed twice, unknown fields and wrong types', () => {
    const { errors } = ingestSecurityGroups(
      { security_groups: [group(), group(), group({ guid: 'g3', extra: 1, running_default: 'yes' })] },
      'sg.json',
    );
    expect(errors.map(formatInputError)).toEqual([
      'sg.json: /security_groups/2/extra: unknown field',
      'sg.json: /security_groups/2/running_default: must be a boolean, not "yes"',
    ]);
    const twice = ingestSecurityGroups({ security_groups: [group(), group()] }, 'sg.json').errors;
    expect(twice.map(formatInputError)).toEqual([
      'sg.json: /security_groups/1/guid: security group g1 is listed twice (first at /security_groups/0)',
    ]);
  });

  it('keeps CF semantics of defaults and spaces', () => {
    const { groups } = ingestSecurityGroups(
      { security_groups: [group({ staging_default: true, running_space_guids: ['s1'] })] },
      'sg.json',
    );
    expect(groups[0]).toMatchObject({
      stagingDefault: true,
      runningDefault: false,
      runningSpaceGuids: ['s1'],
      stagingSpaceGuids: [],
    });
  });
});

describe('policies documents', () => {
  const policy = (ports: object, tag = '0001') => ({
    source: { id: 'app-a', tag },
    destination: { id: 'app-b', tag: '0002', protocol: 'tcp', ports },
  });

  it('reads tags as numbers and port ranges', () => {
    const { policies, errors } = ingestPolicies(
      { total_policies: 1, policies: [policy({ start: 8080, end: 8090 }, 'FFFF')] },
      'p.json',
    );
    expect(errors).toEqual([]);
    expect(policies[0]).toEqual({
      source: { appGuid: 'app-a', tag: 0xffff },
      destination: { appGuid: 'app-b', tag: 2, protocol: 'tcp', ports: { start: 8080, end: 8090 } },
    });
  });

  it('refuses reversed ranges, bad tags, ICMP and an inconsistent total', () => {
    const bad = {
      ...policy({ start: 1, end: 2 }),
      destination: { ...policy({ start: 1, end: 2 }).destination, protocol: 'icmp' },
    };
    const { errors } = ingestPolicies(
      { total_policies: 5, policies: [policy({ start: 9000, end: 8000 }), policy({ start: 1, end: 2 }, 'xyz'), bad] },
      'p.json',
    );
    const text = errors.map(formatInputError);
    expect(text).toContain('p.json: /policies/1/source/tag: must be a tag of 1 to 8 hex digits, not "xyz"');
    expect(text).toContain('p.json: /policies/2/destination/protocol: must be one of "tcp", "udp", not "icmp"');
    const second = ingestPolicies({ total_policies: 5, policies: [policy({ start: 9000, end: 8000 })] }, 'p.json').errors.map(
      formatInputError,
    );
    expect(second).toEqual([
      'p.json: /total_policies: says 5 policies but the document lists 1: it is incomplete or inconsistent',
      'p.json: /policies/0/destination/ports: invalid port range 9000-8000, start must be less than or equal to end',
    ]);
  });
});

describe('container metadata', () => {
  const entry = (handle: string, extra: object) => ({
    [handle]: { handle, metadata: { space_id: 's1', container_workload: 'app', ports: '8080,2222' }, ...extra },
  });

  it('reads IPv4-only, IPv6-only and dual-stack containers', () => {
    const document = {
      ...entry('a', { ip: '10.255.0.2' }),
      ...entry('b', { ipv6: '2001:DB8:3000:1::A1' }),
      ...entry('c', { ip: '10.255.0.3', ipv6: '2001:db8:3000:1::a3' }),
    };
    const { containers, errors } = ingestContainers(document, 'c.json');
    expect(errors).toEqual([]);
    expect(containers.map((c) => [c.handle, c.ipv4 !== undefined, c.ipv6 === undefined ? '-' : formatIPv6(c.ipv6)])).toEqual([
      ['a', true, '-'],
      ['b', false, '2001:db8:3000:1::a1'],
      ['c', true, '2001:db8:3000:1::a3'],
    ]);
    expect(containers[0]?.ports).toEqual([8080, 2222]);
  });

  it('refuses bad addresses, missing addresses and a handle that differs from its key; reports a shared address and keeps both', () => {
    const document = {
      ...entry('a', { ip: '10.255.0.02' }),
      ...entry('b', { ip: '10.255.0.9' }),
      ...entry('c', { ip: '10.255.0.9' }),
      ...entry('d', {}),
      e: { handle: 'f', ip: '10.255.0.5' },
      ...entry('g', { ipv6: 'fe80::1%eth0' }),
    };
    const ingested = ingestContainers(document, 'c.json');
    // A stale entry left by a failed delete shares its address with a new one: VPA enforces both.
    expect(ingested.containers.map((container) => container.handle)).toEqual(['b', 'c']);
    expect(ingested.warnings.map(formatInputError)).toEqual([
      "c.json: /c/ip: address 10.255.0.9 is also container b's (a stale entry?): both are enforced, the first by handle decides its traffic",
    ]);
    expect(ingested.errors.map(formatInputError)).toEqual([
      'c.json: /a/ip: destination octets cannot contain leading zeros: "10.255.0.02"',
      'c.json: /d: has neither "ip" nor "ipv6": a container needs an address in at least one family',
      'c.json: /e/handle: handle "f" differs from its key "e"',
      'c.json: /g/ipv6: "fe80::1%eth0" carries a zone identifier, which an iptables rule cannot express',
    ]);
  });

  it("reads a container's log_config (Diego's, a JSON string), and reports one it cannot read without stopping", () => {
    const logConfig = JSON.stringify({ guid: 'app-1', index: 2, source_name: 'CELL', tags: { space_name: 'dev', n: 1 } });
    const ingested = ingestContainers(
      {
        a: { handle: 'a', ip: '10.0.0.1', metadata: { log_config: logConfig } },
        b: { handle: 'b', ip: '10.0.0.2', metadata: { log_config: '{not json' } },
      },
      'c.json',
    );
    expect(ingested.containers[0]?.logConfig).toEqual({
      guid: 'app-1',
      index: 2,
      sourceName: 'CELL',
      tags: { space_name: 'dev' },
    });
    expect(ingested.containers[1]?.logConfig).toBeUndefined();
    expect(ingested.warnings.map((warning) => warning.pointer)).toEqual(['/b/metadata/log_config']);
    expect(ingested.errors).toEqual([]);
  });

  it('refuses control characters in handles', () => {
    const errors = ingestContainers({ 'x\ny': { handle: 'x\ny', ip: '10.0.0.1' } }, 'c.json').errors;
    expect(errors[0]?.pointer).toBe('/x\ny/handle');
  });
});

describe('asgc config', () => {
  it('defaults everything', () => {
    expect(ingestConfig({}, 'config.json')).toEqual({
      config: expect.objectContaining({ chainPrefix: 'asgc-', asgLogging: false }),
      errors: [],
    });
  });

  it('splits deny networks by family and refuses bad ones', () => {
    const { config, errors } = ingestConfig(
      { deny_networks: { always: ['10.0.0.0/8', 'fd00::/8', '10.0.0.0/33'] } },
      'config.json',
    );
    expect(config.denyNetworks.always.map(formatBlock)).toEqual(['10.0.0.0/8', 'fd00::/8']);
    expect(errors.map(formatInputError)).toEqual([
      'config.json: /deny_networks/always/2: must be a CIDR or IP address: "10.0.0.0/33" has prefix length 33, over 32 for IPv4',
    ]);
  });

  it('refuses a chain prefix that would not leave room for names', () => {
    const errors = ingestConfig({ chain_prefix: 'a-very-long-prefix-' }, 'config.json').errors.map(formatInputError);
    expect(errors[0]).toMatch(/^config\.json: \/chain_prefix: must start with a letter and have at most 12/);
  });
});

describe('a scenario as a whole', () => {
  it('reports JSON syntax errors with line and column, for every document at once', () => {
    const result = ingestScenario({
      containers: { file: 'c.json', text: '{\n  "a": {\n    "handle": "a",,\n  }\n}' },
      config: { file: 'config.json', text: '' },
    });
    expect(result.ok).toBe(false);
    const text = !result.ok ? result.error.map(formatInputError) : [];
    expect(text[0]).toMatch(/^c\.json: is not valid JSON \(line 3, column 19\)/);
    expect(text[1]).toBe('config.json: is empty, not a JSON document');
  });
});
