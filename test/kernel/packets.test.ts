// Real packets through a real kernel: a "cell" namespace routes between two container
// namespaces (linked as silk links them), an outside host and an ingress router, with asgc's
// compiled rules loaded on the cell. Every case is bounded in time; REJECTs are seen as refusals, never as timeouts.
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileCell, type CompiledCell } from '../../src/compile/compile.js';
import { applyFamily, hostDataplane } from '../../src/reconcile/apply.js';
import { BACKENDS } from '../../src/iptables/backend.js';
import { inNamespace } from '../../src/exec/namespace.js';
import { parseCidr } from '../../src/model/address.js';
import { cell, container, securityGroup } from '../support/cell.js';
import { kernelTestsEnabled, mustRun } from '../support/kernel.js';
import { connect, createTopology, type HostSpec, OUTSIDE, icmp, startServers, type Topology } from '../support/topology.js';

const enabled = kernelTestsEnabled('packets');

const HOSTS: HostSpec[] = [
  { name: 'c1', kind: 'container', ipv4: '192.0.2.2', ipv6: '2001:db8:c1::2', linkLocal: 'fe80::2' },
  { name: 'c2', kind: 'container', ipv4: '192.0.2.6', ipv6: '2001:db8:c2::2', linkLocal: 'fe80::6' },
  OUTSIDE,
  {
    name: 'router',
    kind: 'network',
    ipv4: '198.51.100.2',
    cellIpv4: '198.51.100.1',
    ipv6: '2001:db8:f::2',
    cellIpv6: '2001:db8:f::1',
  },
];
const address = (host: string, family: 4 | 6) => {
  const spec = HOSTS.find((candidate) => candidate.name === host) as HostSpec;
  return family === 4 ? spec.ipv4 : spec.ipv6;
};

function block(text: string) {
  const parsed = parseCidr(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value;
}

function compiledCell(): CompiledCell {
  const web = securityGroup(
    'web',
    [
      { protocol: 'tcp', destination: '203.0.113.2,2001:db8:e::2', ports: '443' },
      { protocol: 'udp', destination: '203.0.113.2,2001:db8:e::2', ports: '53' },
    ],
    { runningDefault: true },
  );
  const strictIcmp = securityGroup(
    'icmp-echo-only',
    [
      { protocol: 'icmp', destination: '203.0.113.0/24', type: 8, code: -1 },
      { protocol: 'icmpv6', destination: '2001:db8:e::/64', type: 128, code: -1 },
    ],
    { runningSpaceGuids: ['space-1'] },
  );
  const anyIcmp = securityGroup(
    'icmp-any',
    [
      { protocol: 'icmp', destination: '203.0.113.0/24', type: -1, code: -1 },
      { protocol: 'icmpv6', destination: '2001:db8:e::/64', type: -1, code: -1 },
    ],
    { runningSpaceGuids: ['space-2'] },
  );
  const result = compileCell(
    cell(
      [web, strictIcmp, anyIcmp],
      [
        container('c1', [address('c1', 4), address('c1', 6)], { appGuid: 'frontend', spaceGuid: 'space-1', ports: [8080] }),
        container('c2', [address('c2', 4), address('c2', 6)], { appGuid: 'backend', spaceGuid: 'space-2', ports: [8080, 9090] }),
      ],
      { ingressRouters: [block(address('router', 4)), block(address('router', 6))] },
      {
        policies: [
          {
            source: { appGuid: 'frontend', tag: 0x1 },
            destination: { appGuid: 'backend', tag: 0x2, protocol: 'tcp', ports: { start: 8080, end: 8080 } },
          },
        ],
      },
    ),
  );
  if (!result.ok) throw new Error('compile failed');
  return result.value;
}

describe.skipIf(!enabled).each(BACKENDS)('packets through the compiled rules (%s)', (backend) => {
  let topology: Topology;
  const servers: ChildProcess[] = [];
  const ns = (host: string) => topology.namespace(host);

  beforeAll(async () => {
    topology = await createTopology(HOSTS);
    const compiled = compiledCell();
    const dataplane = hostDataplane(backend, { namespace: topology.cell });
    for (const family of [4, 6] as const) await applyFamily(dataplane, compiled[family], { prefix: 'asgc-' });
    servers.push(await startServers(ns('c1'), [8080, 9999], []));
    servers.push(await startServers(ns('c2'), [8080, 9090], []));
    servers.push(await startServers(ns('outside'), [443, 8443], [53, 5353]));
  }, 60_000);

  afterAll(async () => {
    for (const server of servers) server.kill();
    await topology?.destroy();
  });

  for (const family of [4, 6] as const) {
    const refused = family === 4 ? 'refused' : 'prohibited';

    it(`IPv${family}: containers reach what their ASGs allow, and a REJECT refuses the rest`, async () => {
      const outside = address('outside', family);
      expect(await connect(ns('c1'), 'tcp', outside, 443)).toBe('connected');
      expect(await connect(ns('c1'), 'tcp', outside, 8443)).toBe('refused');
      expect(await connect(ns('c1'), 'udp', outside, 53)).toBe('reply');
      expect(await connect(ns('c1'), 'udp', outside, 5353)).toBe('refused');
    }, 30_000);

    it(`IPv${family}: ICMP as the ASGs say: echo only, or any type`, async () => {
      const outside = address('outside', family);
      const echo = family === 4 ? 8 : 128;
      // IPv4: a timestamp request; IPv6: a node information query: neither is an echo.
      const other = family === 4 ? 13 : 139;
      expect(await icmp(ns('c1'), family, outside, echo)).toBe('reply');
      expect(await icmp(ns('c1'), family, outside, other)).toBe(family === 4 ? 'rejected:3/3' : 'rejected:1/4');
      expect(await icmp(ns('c2'), family, outside, echo)).toBe('reply');
      // Allowed through: Linux answers a timestamp request, and does not answer a node information query.
      expect(await icmp(ns('c2'), family, outside, other)).toBe(family === 4 ? 'reply' : 'timeout');
    }, 30_000);

    it(`IPv${family}: the outside cannot open a connection to a container; the ingress router can, on its ports only`, async () => {
      const c1 = address('c1', family);
      expect(await connect(ns('outside'), 'tcp', c1, 8080)).toBe(refused);
      expect(await connect(ns('router'), 'tcp', c1, 8080)).toBe('connected');
      expect(await connect(ns('router'), 'tcp', c1, 9999)).toBe(refused);
      expect(await icmp(ns('outside'), family, c1, family === 4 ? 8 : 128)).toBe(family === 4 ? 'rejected:3/3' : 'rejected:1/1');
    }, 30_000);

    it(`IPv${family}: c2c works exactly for the policy ports, in the policy direction`, async () => {
      expect(await connect(ns('c1'), 'tcp', address('c2', family), 8080)).toBe('connected');
      expect(await connect(ns('c1'), 'tcp', address('c2', family), 9090)).toBe(refused);
      expect(await connect(ns('c2'), 'tcp', address('c1', family), 8080)).toBe(refused);
    }, 30_000);
  }

  it('IPv6 neighbour discovery works through the rules and is never forwarded', async () => {
    const ip6tables = backend === 'nft' ? 'ip6tables-nft' : 'ip6tables-legacy';
    const counters = ['135', '136'].map((type) => ['-p', 'ipv6-icmp', '-m', 'icmp6', '--icmpv6-type', type]);
    for (const chain of ['FORWARD', 'INPUT'])
      for (const match of counters) await mustRun(inNamespace(topology.cell, [ip6tables, '-w', '-I', chain, '1', ...match]));
    for (const host of ['cell', 'c1', 'c2', 'router']) {
      await mustRun(['ip', '-n', host === 'cell' ? topology.cell : ns(host), '-6', 'neigh', 'flush', 'all']);
    }
    expect(await connect(ns('c1'), 'tcp', address('c2', 6), 8080)).toBe('connected');
    expect(await connect(ns('router'), 'tcp', address('c1', 6), 8080)).toBe('connected');
    const listing = await mustRun(inNamespace(topology.cell, [ip6tables, '-w', '-L', '-v', '-x', '-n']));
    const count = (chain: string, type: string) => {
      const section = listing.stdout.split('\n\n').find((part) => part.startsWith(`Chain ${chain} `)) ?? '';
      const line = section.split('\n').find((row) => row.includes(`ipv6-icmptype ${type}`)) ?? '';
      return Number(line.trim().split(/\s+/)[0]);
    };
    expect(count('FORWARD', '135') + count('FORWARD', '136')).toBe(0);
    expect(count('INPUT', '135')).toBeGreaterThan(0);
    expect(count('INPUT', '136')).toBeGreaterThan(0);
  }, 30_000);
});
