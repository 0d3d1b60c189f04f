// Host access and anti-spoofing with real packets, both backends, both families: containers
// linked as silk links them (an `s-` veth each), an outside host behind the uplink. From each
// container's real, link-local and forged addresses to every address of the cell; forged
// sources from a container and from outside toward another container; neighbour discovery,
// router advertisements, multicast listener reports and path MTU discovery on the uplink and
// toward containers. Every probe is also asked of the evaluator (as `asgc check` asks it), whose
// verdict must be the kernel's.
import { type ChildProcess, spawn } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CellLinks, cellEvaluator } from '../../src/check/cell-links.js';
import { type CheckQuestion, packetFor } from '../../src/check/query.js';
import { inNamespace } from '../../src/exec/namespace.js';
import { BACKENDS, type Backend } from '../../src/iptables/backend.js';
import type { Family } from '../../src/model/address.js';
import { applyFamily, hostDataplane } from '../../src/reconcile/apply.js';
import { type CompiledScenario, compileScenario } from '../../src/scenario/pipeline.js';
import { startBatchServer } from '../support/batch-probes.js';
import { countedBy, kernelTestsEnabled, mustRun } from '../support/kernel.js';
import {
  advertisePrefix,
  CELL_LINK,
  connect,
  connectFrom,
  createTopology,
  type HostSpec,
  OUTSIDE,
  icmp,
  inPython,
  pathMtu,
  startServers,
  type Topology,
} from '../support/topology.js';

const enabled = kernelTestsEnabled('host access and anti-spoofing');

const FRONTEND = 'a1f0e2d3-c4b5-4a69-8788-99aabbccdd01';
const BACKEND = 'b2e1f3c4-d5a6-4b7c-8d9e-0f1a2b3c4d02';
const INTRUDER = 'c3d2e4f5-a6b7-4c8d-9e0f-1a2b3c4d5e03';

const HOSTS: HostSpec[] = [
  { name: 'c1', kind: 'container', ipv4: '192.0.2.11', ipv6: '2001:db8:c::11', linkLocal: 'fe80::11' },
  // The cell's side of its link is narrower than the path to it: the cell tells senders so.
  { name: 'c2', kind: 'container', ipv4: '192.0.2.12', ipv6: '2001:db8:c::12', linkLocal: 'fe80::12', mtu: 1280 },
  { name: 'c3', kind: 'container', ipv4: '192.0.2.13', ipv6: '2001:db8:c::13', linkLocal: 'fe80::13' },
  OUTSIDE,
];
const APPS: Record<string, string> = { c1: FRONTEND, c2: BACKEND, c3: INTRUDER };

const FAMILY_ADDRESSES = {
  4: {
    /** The cell's DNS server and host service address (on its loopback). */
    dns: '169.254.0.2',
    /** Every address of the cell: its uplink, its side of the container links, its DNS address. */
    cell: ['203.0.113.1', CELL_LINK.ipv4, '169.254.0.2'],
    /** An unassigned address of the containers' prefix. */
    unassigned: '192.0.2.99',
    /** Beyond the outside host, behind a link of MTU 1280. */
    far: '198.51.100.7',
    farNet: '198.51.100.0/24',
  },
  6: {
    dns: 'fd00:53::53',
    cell: ['2001:db8:e::1', 'fd00:53::53', `${CELL_LINK.ipv6}%eth0`],
    unassigned: '2001:db8:c::99',
    far: '2001:db8:fa::7',
    farNet: '2001:db8:fa::/64',
  },
} as const;

const spec = (name: string) => HOSTS.find((host) => host.name === name) as HostSpec;
const addressOf = (name: string, family: Family) => (family === 4 ? spec(name).ipv4 : spec(name).ipv6);

function scenario(): CompiledScenario {
  const destinations = ['203.0.113.0/24', '2001:db8:e::/64', '198.51.100.0/24', '2001:db8:fa::/64'].join(',');
  const securityGroups = {
    security_groups: [
      {
        guid: 'egress',
        name: 'egress',
        rules: JSON.stringify([{ protocol: 'udp', destination: destinations, ports: '7000-7100' }]),
        running_default: true,
        staging_default: false,
        running_space_guids: [],
        staging_space_guids: [],
      },
    ],
  };
  const containers = Object.fromEntries(
    HOSTS.filter((host) => host.kind === 'container').map((host) => [
      host.name,
      {
        handle: host.name,
        ip: host.ipv4,
        ipv6: host.ipv6,
        metadata: { policy_group_id: APPS[host.name], space_id: 'space', container_workload: 'app', ports: '8080' },
      },
    ]),
  );
  const policy = (protocol: string, port: number) => ({
    source: { id: FRONTEND, tag: '0001' },
    destination: { id: BACKEND, tag: '0002', protocol, ports: { start: port, end: port } },
  });
  const config = {
    dns_servers: [FAMILY_ADDRESSES[4].dns, FAMILY_ADDRESSES[6].dns],
    host_tcp_services: [`${FAMILY_ADDRESSES[4].dns}:8853`, `[${FAMILY_ADDRESSES[6].dns}]:8853`],
    container_prefixes: ['192.0.2.0/24', '2001:db8:c::/64'],
    anti_spoofing: { ipv4: true, ipv6: true },
  };
  const compiled = compileScenario({
    securityGroups: { file: 'security_groups.json', text: JSON.stringify(securityGroups) },
    containers: { file: 'containers.json', text: JSON.stringify(containers) },
    policies: { file: 'policies.json', text: JSON.stringify({ policies: [policy('tcp', 8080), policy('udp', 7070)] }) },
    config: { file: 'config.json', text: JSON.stringify(config) },
  });
  if (!compiled.ok) throw new Error(JSON.stringify(compiled.error));
  return compiled.value;
}

const VERDICT_OF: Record<string, string> = {
  connected: 'ACCEPT',
  reply: 'ACCEPT',
  refused: 'REJECT',
  prohibited: 'REJECT',
  timeout: 'DROP',
};

describe.skipIf(!enabled).each(BACKENDS)('host access and anti-spoofing, real packets (%s)', (backend: Backend) => {
  let topology: Topology;
  const servers: ChildProcess[] = [];
  const compiled = scenario();
  let outsideLink = '';
  const ns = (host: string) => topology.namespace(host);

  /** What the evaluator says of a question, asked as `asgc check` asks it. */
  function evaluated(question: CheckQuestion, family: Family): string {
    const cellLinks = new CellLinks(compiled.policy.containers, compiled.config);
    const asked = packetFor(question, compiled.policy.containers, cellLinks);
    if (!asked.ok) throw new Error(asked.error);
    return cellEvaluator(compiled.cell[family], compiled.policy).evaluate(asked.value.packet, { hook: asked.value.hook }).verdict;
  }

  /** A probe from a container to the cell itself: the kernel's answer, and the evaluator's verdict for it. */
  async function toCell(host: string, family: Family, to: string, port: number, protocol: 'tcp' | 'udp', source?: string) {
    const result = await connectFrom(ns(host), protocol, to, port, source ?? '');
    const verdict = evaluated(
      {
        container: host,
        to: to.replace(/%.*$/, ''),
        toHost: true,
        protocol,
        port,
        ...(source && { source: source.replace(/%.*$/, '') }),
      },
      family,
    );
    return { result, verdict, agrees: VERDICT_OF[result] === verdict };
  }

  beforeAll(async () => {
    topology = await createTopology(HOSTS);
    outsideLink = topology.link('outside');
    const cell = topology.cell;
    await mustRun(['ip', '-n', cell, 'addr', 'add', `${FAMILY_ADDRESSES[4].dns}/32`, 'dev', 'lo']);
    await mustRun(['ip', '-n', cell, '-6', 'addr', 'add', `${FAMILY_ADDRESSES[6].dns}/128`, 'dev', 'lo']);
    // The outside host routes the far networks over a link of MTU 1280 (where nothing answers).
    const outside = ns('outside');
    await mustRun(['ip', 'netns', 'exec', outside, 'sysctl', '-qw', 'net.ipv4.ip_forward=1', 'net.ipv6.conf.all.forwarding=1']);
    await mustRun([
      'ip',
      '-n',
      outside,
      'link',
      'add',
      'far0',
      'mtu',
      '1280',
      'type',
      'veth',
      'peer',
      'name',
      'far1',
      'mtu',
      '1280',
    ]);
    for (const link of ['far0', 'far1']) await mustRun(['ip', '-n', outside, 'link', 'set', link, 'up']);
    for (const family of [4, 6] as const) {
      const { farNet } = FAMILY_ADDRESSES[family];
      const version = family === 4 ? '-4' : '-6';
      await mustRun(['ip', '-n', outside, version, 'route', 'add', farNet, 'dev', 'far0']);
      await mustRun(['ip', '-n', cell, version, 'route', 'add', farNet, 'via', addressOf('outside', family)]);
    }
    // The cell takes router advertisements on its uplink, and would on a container's link: what
    // stops a container's is the firewall.
    for (const link of [outsideLink, topology.link('c1')])
      await mustRun(['ip', 'netns', 'exec', cell, 'sysctl', '-qw', `net.ipv6.conf.${link}.accept_ra=2`]);
    const dataplane = hostDataplane(backend, { namespace: cell });
    for (const family of [4, 6] as const) await applyFamily(dataplane, compiled.cell[family], { prefix: 'asgc-' });
    // Servers that answer from the address asked (a reply from another would not count).
    servers.push(await startBatchServer(cell, [22, 53, 8853]));
    servers.push(await startServers(ns('c2'), [8080], [7070]));
    // Datagrams that reach c2 on the policy port, counted in its own namespace.
    for (const family of [4, 6] as const)
      await mustRun(
        inNamespace(ns('c2'), [
          `ip${family === 6 ? '6' : ''}tables-${backend}`,
          '-w',
          '-A',
          'INPUT',
          '-p',
          'udp',
          '--dport',
          '7070',
        ]),
      );
  }, 60_000);

  afterAll(async () => {
    for (const server of servers) server.kill();
    await topology?.destroy();
  });

  for (const family of [4, 6] as const) {
    const { dns, cell: cellAddresses, unassigned } = FAMILY_ADDRESSES[family];

    it(`IPv${family}: from a container's own address, DNS and the host services answer; every other port of every cell address is refused`, async () => {
      const probes = [
        await toCell('c1', family, dns, 53, 'udp'),
        await toCell('c1', family, dns, 53, 'tcp'),
        await toCell('c1', family, dns, 8853, 'tcp'),
        ...(await Promise.all(cellAddresses.map((to) => toCell('c1', family, to, 22, 'tcp')))),
      ];
      expect(probes.map(({ result }) => result)).toEqual([
        'reply',
        'connected',
        'connected',
        ...cellAddresses.map(() => 'refused'),
      ]);
      expect(probes.filter((probe) => !probe.agrees)).toEqual([]);
    }, 30_000);

    if (family === 6) {
      it("IPv6: from a container's link-local address, every port of every cell address that is not DNS or a host service is refused", async () => {
        const source = `${(spec('c1') as { linkLocal: string }).linkLocal}%eth0`;
        const probes = await Promise.all(cellAddresses.map((to) => toCell('c1', 6, to, 22, 'tcp', source)));
        expect(probes.map(({ result }) => result)).toEqual(cellAddresses.map(() => 'refused'));
        expect(probes.filter((probe) => !probe.agrees)).toEqual([]);
        // DNS is a host service from any of the container's addresses.
        expect((await toCell('c1', 6, dns, 53, 'udp', source)).result).toBe('reply');
      }, 30_000);
    }

    it(`IPv${family}: a forged source, from a container or from outside, never reaches the cell or another container nor counts on an accept rule; real c2c works`, async () => {
      const c2 = addressOf('c2', family);
      const c1 = addressOf('c1', family);
      const reachedC2 = () =>
        countedBy(ns('c2'), backend, family, 'filter', (rule) => rule.startsWith('-A INPUT') && rule.includes('7070'));
      // c2c accepts: by the source's mark (IPv4) or by its addresses (IPv6); and every accept of host access.
      const accepted = () =>
        countedBy(
          topology.cell,
          backend,
          family,
          'filter',
          (rule) => /^-A asgc-(i-|f-|host)/.test(rule) && rule.endsWith('-j ACCEPT') && !rule.includes('ipv6-icmp'),
        );
      const dropped = () => countedBy(topology.cell, backend, family, 'raw', (rule) => rule.endsWith('-j DROP'));
      const [reachedBefore, acceptedBefore, droppedBefore] = [await reachedC2(), await accepted(), await dropped()];
      const forged: { from: string; source: string; to: string; port: number; what: string }[] = [
        { from: 'c3', source: c1, to: c2, port: 7070, what: 'a container with another local container address' },
        {
          from: 'c3',
          source: unassigned,
          to: c2,
          port: 7070,
          what: "a container with an unassigned address of the containers' prefix",
        },
        { from: 'c3', source: cellAddresses[0], to: dns, port: 53, what: "a container with the cell's own address" },
        { from: 'outside', source: c1, to: c2, port: 7070, what: "the outside with a local container's address" },
        {
          from: 'outside',
          source: unassigned,
          to: c2,
          port: 7070,
          what: "the outside with an address of the containers' prefix",
        },
      ];
      for (const probe of forged) {
        expect(
          await connectFrom(ns(probe.from), 'udp', probe.to, probe.port, probe.source, { forged: true, timeoutMs: 300 }),
          probe.what,
        ).toBe('timeout');
        const question: CheckQuestion =
          probe.from === 'outside'
            ? { container: 'c2', from: probe.source, protocol: 'udp', port: probe.port, inInterface: outsideLink }
            : {
                container: probe.from,
                to: probe.to,
                source: probe.source,
                protocol: 'udp',
                port: probe.port,
                toHost: probe.to === dns,
              };
        expect(evaluated(question, family), probe.what).toBe('DROP');
      }
      expect(await reachedC2()).toBe(reachedBefore);
      expect(await accepted()).toBe(acceptedBefore);
      expect((await dropped()) - droppedBefore).toBeGreaterThanOrEqual(forged.length);
      // The same datagram from the real c1 is answered, and counted where it should be.
      expect(await connect(ns('c1'), 'udp', c2, 7070)).toBe('reply');
      expect(evaluated({ container: 'c1', to: c2, protocol: 'udp', port: 7070 }, family)).toBe('ACCEPT');
      expect(await reachedC2()).toBeGreaterThan(reachedBefore);
      expect(await accepted()).toBeGreaterThan(acceptedBefore);
      expect(await connect(ns('c3'), 'udp', c2, 7070)).toBe(family === 4 ? 'refused' : 'prohibited');
    }, 30_000);

    it(`IPv${family}: path MTU discovery works toward containers (a router beyond the uplink) and from the cell (a narrower container link)`, async () => {
      const { far } = FAMILY_ADDRESSES[family];
      // The outside host's "too big" about c1's datagram crosses the cell back to c1.
      expect(await pathMtu(ns('c1'), far, 7000, 1400)).toBe(1280);
      // The cell's own "too big" about a datagram for c2 reaches the sender outside.
      expect(await pathMtu(ns('outside'), addressOf('c2', family), 7070, 1400)).toBe(1280);
    }, 30_000);
  }

  it('IPv6: neighbour discovery and multicast listener reports from containers reach the cell; their router advertisements do not; advertisements work on the uplink and toward containers', async () => {
    const cell = topology.cell;
    const hostRule = (type: number) => (rule: string) =>
      rule.startsWith('-A asgc-host') && rule.includes(`--icmpv6-type ${type} `);
    const counted = (select: (rule: string) => boolean) => countedBy(cell, backend, 6, 'filter', select);
    // Neighbours forgotten on both sides: the cell asks for c1 (c1's advertisement answers) and
    // c1 asks for the cell (its solicitation).
    await mustRun(['ip', '-n', cell, '-6', 'neigh', 'flush', 'dev', topology.link('c1')]);
    await mustRun(['ip', '-n', ns('c1'), '-6', 'neigh', 'flush', 'all']);
    expect(await icmp(cell, 6, addressOf('c1', 6), 128)).toBe('reply');
    await mustRun(['ip', '-n', ns('c1'), '-6', 'neigh', 'flush', 'all']);
    expect(await connectFrom(ns('c1'), 'udp', FAMILY_ADDRESSES[6].dns, 53, '')).toBe('reply');
    for (const type of [135, 136]) expect(await counted(hostRule(type)), `ICMPv6 type ${type}`).toBeGreaterThan(0);
    // A group joined on c1's link: the report (MLDv2, type 143, to ff02::16) reaches the cell
    // where it listens for reports, as a multicast router does.
    const reports = await counted(hostRule(143));
    const [command, ...args] = inPython(cell, JOIN_GROUP, 'ff02::16', topology.link('c1'), '3') as [string, ...string[]];
    const listening = spawn(command, args);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await mustRun(inPython(ns('c1'), JOIN_GROUP, 'ff02::77', 'eth0', '0.3'));
    listening.kill();
    expect(await counted(hostRule(143))).toBeGreaterThan(reports);
    // Nothing from a container is forwarded: neighbour discovery stays on its link.
    expect(
      await countedBy(cell, backend, 6, 'filter', (rule) => rule.startsWith('-A asgc-forward') && rule.includes('ipv6-icmp')),
    ).toBe(0);

    const addressesOn = async (namespace: string, iface: string) =>
      (await mustRun(['ip', '-n', namespace, '-6', '-o', 'addr', 'show', 'dev', iface])).stdout;
    // On the uplink, the router's advertisement configures the cell.
    await advertisePrefix(ns('outside'), 'eth0', '2001:db8:ad::');
    // Toward a container, the cell's advertisement configures it.
    await advertisePrefix(cell, topology.link('c1'), '2001:db8:c0::');
    // From a container, an advertisement is refused before the cell reads it.
    const rejected = await counted((rule) => rule === '-A asgc-host -j REJECT --reject-with icmp6-port-unreachable');
    await advertisePrefix(ns('c1'), 'eth0', '2001:db8:bad::');
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(await addressesOn(cell, outsideLink)).toContain('2001:db8:ad:');
    expect(await addressesOn(ns('c1'), 'eth0')).toContain('2001:db8:c0:');
    expect(await addressesOn(cell, topology.link('c1'))).not.toContain('2001:db8:bad:');
    expect(await counted((rule) => rule === '-A asgc-host -j REJECT --reject-with icmp6-port-unreachable')).toBeGreaterThan(
      rejected,
    );
    // And the evaluator says the same of each: asked as the container's link-local traffic to all nodes.
    const linkLocal = (spec('c1') as { linkLocal: string }).linkLocal;
    const linkControl = (type: number) =>
      evaluated(
        { container: 'c1', to: 'ff02::1', source: linkLocal, toHost: true, protocol: 'icmpv6', icmp: { type, code: 0 } },
        6,
      );
    expect([linkControl(135), linkControl(143), linkControl(134)]).toEqual(['ACCEPT', 'ACCEPT', 'REJECT']);
  }, 30_000);
});

/** Join a multicast group on an interface for some seconds: the kernel reports it at once. */
const JOIN_GROUP = String.raw`
import socket, struct, sys, time
group, interface, seconds = sys.argv[1], sys.argv[2], float(sys.argv[3])
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
request = socket.inet_pton(socket.AF_INET6, group) + struct.pack('@I', socket.if_nametoindex(interface))
s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_JOIN_GROUP, request)
time.sleep(seconds)
`;
