// Random ASG worlds for end-to-end checks: security groups and deny networks over a small space
// of destinations and ports (so that rules overlap often), probes into that space, the cell's
// documents for them, and Cloud Controller's semantics read directly (ipaddr.js for addresses,
// nothing of asgc's): a probe is allowed iff some ASG that applies to its container allows it
// and no deny network holds its destination.
import { mustRun } from './kernel.js';
import type { Topology } from './topology.js';
import fc from 'fast-check';
import ipaddr from 'ipaddr.js';
import type { Packet } from '../../src/ir/packet.js';
import { silkInterfaceName } from '../../src/check/cell-links.js';
import type { ScenarioTexts } from '../../src/ingest/cell.js';

type Protocol = 'tcp' | 'udp' | 'icmp' | 'icmpv6' | 'all';

export interface RawRule {
  protocol: Protocol;
  destination: string;
  ports?: string;
  type?: number;
  code?: number;
}

export interface RawGroup {
  guid: string;
  name: string;
  rules: RawRule[];
  running_default: boolean;
  staging_default: boolean;
  running_space_guids: string[];
  staging_space_guids: string[];
}

export interface WorldContainer {
  readonly handle: string;
  readonly ip: string;
  readonly ipv6: string;
  readonly space: string;
  readonly workload: 'app' | 'task' | 'staging';
}

export type DenyNetworks = Record<'always' | 'running' | 'staging', string[]>;

export interface Probe {
  container: WorldContainer;
  family: 4 | 6;
  destination: string;
  protocol: 'tcp' | 'udp' | 'icmp';
  port: number;
  icmpType: number;
  icmpCode: number;
}

export const SPACES = ['space-a', 'space-b'];
/** Destinations are the first 32 addresses of these. */
export const DESTINATION_NETS = { 4: '198.51.100.0/27', 6: '2001:db8:ff::/123' } as const;
const destinationAt = (family: 4 | 6, index: number) =>
  family === 4 ? `198.51.100.${index}` : `2001:db8:ff::${index.toString(16)}`;

export interface WorldOptions {
  /** Ports are portBase + 1 .. portBase + 8. */
  readonly portBase: number;
  /** ICMP types the probes send (echo only when a kernel must answer them). */
  readonly icmpTypes: readonly number[];
}

export function asgWorld({ portBase, icmpTypes }: WorldOptions) {
  const host = (family: 4 | 6) => fc.integer({ min: 0, max: 31 }).map((index) => destinationAt(family, index));
  const element = (family: 4 | 6): fc.Arbitrary<string> => {
    const bits = family === 4 ? 32 : 128;
    return fc.oneof(
      host(family),
      fc.tuple(host(family), fc.integer({ min: 0, max: 4 })).map(([address, size]) => `${address}/${bits - size}`),
      fc
        .tuple(fc.integer({ min: 0, max: 31 }), fc.integer({ min: 0, max: 31 }))
        .map(([a, b]) => `${destinationAt(family, Math.min(a, b))}-${destinationAt(family, Math.max(a, b))}`),
    );
  };
  const port = fc.integer({ min: portBase + 1, max: portBase + 8 });
  const ports = fc.oneof(
    port.map(String),
    fc.uniqueArray(port, { minLength: 2, maxLength: 4 }).map((list) => list.join(',')),
    fc
      .tuple(port, port)
      .filter(([a, b]) => a !== b)
      .map(([a, b]) => `${Math.min(a, b)}-${Math.max(a, b)}`),
  );
  const rule: fc.Arbitrary<RawRule> = fc
    .constantFrom<Protocol>('tcp', 'udp', 'icmp', 'icmpv6', 'all')
    .chain((protocol): fc.Arbitrary<RawRule> => {
      const families = protocol === 'icmp' ? [4 as const] : protocol === 'icmpv6' ? [6 as const] : [4 as const, 6 as const];
      const destination = fc
        .array(fc.constantFrom(...families).chain(element), { minLength: 1, maxLength: 3 })
        .map((list) => list.join(','));
      if (protocol === 'tcp' || protocol === 'udp') return fc.record({ protocol: fc.constant(protocol), destination, ports });
      if (protocol === 'all') return fc.record({ protocol: fc.constant(protocol), destination });
      const types = protocol === 'icmp' ? [-1, 0, 3, 8] : [-1, 1, 128, 129];
      return fc.record({
        protocol: fc.constant(protocol),
        destination,
        type: fc.constantFrom(...types),
        code: fc.constantFrom(-1, 0, 1),
      });
    });
  const groups: fc.Arbitrary<RawGroup[]> = fc
    .array(
      fc.record({
        // Some tcp/udp rules get a twin of the other protocol (same places, same ports): the
        // two must never be taken for one.
        rules: fc
          .array(rule, { minLength: 1, maxLength: 4 })
          .chain((rules) =>
            fc
              .subarray(rules)
              .map((twinned) => [
                ...rules,
                ...twinned.flatMap((raw) =>
                  raw.protocol === 'tcp' || raw.protocol === 'udp'
                    ? [{ ...raw, protocol: raw.protocol === 'tcp' ? ('udp' as const) : ('tcp' as const) }]
                    : [],
                ),
              ]),
          ),
        running_default: fc.boolean(),
        staging_default: fc.boolean(),
        running_space_guids: fc.subarray(SPACES),
        staging_space_guids: fc.subarray(SPACES),
      }),
      { maxLength: 4 },
    )
    .map((list) => list.map((group, i) => ({ guid: `g${i}`, name: `asg-${i}`, ...group })));
  const denyNetworks: fc.Arbitrary<DenyNetworks> = fc.record({
    always: fc.subarray(['198.51.100.8/30', '2001:db8:ff::10/126']),
    running: fc.subarray(['198.51.100.16/29', '2001:db8:ff::/125']),
    staging: fc.subarray(['198.51.100.0/28', '2001:db8:ff::18/125']),
  });
  const probe = (containers: readonly WorldContainer[]): fc.Arbitrary<Probe> =>
    fc
      .record({
        container: fc.constantFrom(...containers),
        family: fc.constantFrom(4 as const, 6 as const),
        index: fc.integer({ min: 0, max: 31 }),
        protocol: fc.constantFrom('tcp' as const, 'udp' as const, 'icmp' as const),
        port: fc.integer({ min: portBase, max: portBase + 9 }),
        icmpType: fc.constantFrom(...icmpTypes),
        icmpCode: fc.constantFrom(0, 1, 2),
      })
      .map(({ index, ...rest }) => ({
        ...rest,
        icmpType: rest.family === 4 ? rest.icmpType : rest.icmpType === 8 ? 128 : rest.icmpType === 0 ? 129 : rest.icmpType,
        icmpCode: icmpTypes.length === 1 ? 0 : rest.icmpCode,
        destination: destinationAt(rest.family, index),
      }));
  return { groups, denyNetworks, probe };
}

// ---- Cloud Controller's reading ----------------------------------------------------------

function contains(element: string, address: ipaddr.IPv4 | ipaddr.IPv6): boolean {
  if (element.includes('-')) {
    const [start, end] = element.split('-').map((text) => ipaddr.parse(text)) as [
      ipaddr.IPv4 | ipaddr.IPv6,
      ipaddr.IPv4 | ipaddr.IPv6,
    ];
    if (start.kind() !== address.kind()) return false;
    const bytes = (value: ipaddr.IPv4 | ipaddr.IPv6) => Buffer.from(value.toByteArray());
    return Buffer.compare(bytes(start), bytes(address)) <= 0 && Buffer.compare(bytes(address), bytes(end)) <= 0;
  }
  const [base, length] = element.includes('/')
    ? ipaddr.parseCIDR(element)
    : [ipaddr.parse(element), address.kind() === 'ipv4' ? 32 : 128];
  return base.kind() === address.kind() && address.match(base, length);
}

function portAllowed(spec: string, port: number): boolean {
  if (spec.includes('-')) {
    const [a, b] = spec.split('-').map(Number) as [number, number];
    return port >= a && port <= b;
  }
  return spec.split(',').map(Number).includes(port);
}

const anyIcmp = (value: number | undefined) => value === undefined || value === -1 || value === 255;

function ruleAllows(rule: RawRule, probe: Probe): boolean {
  const address = ipaddr.parse(probe.destination);
  if (!rule.destination.split(',').some((element) => contains(element, address))) return false;
  switch (rule.protocol) {
    case 'all':
      return true;
    case 'tcp':
    case 'udp':
      return probe.protocol === rule.protocol && portAllowed(rule.ports ?? '', probe.port);
    case 'icmp':
    case 'icmpv6':
      return (
        probe.protocol === 'icmp' &&
        probe.family === (rule.protocol === 'icmp' ? 4 : 6) &&
        // Any type is any message, whatever the code (as the kernel's IPv4 wildcard type does).
        (anyIcmp(rule.type) || (rule.type === probe.icmpType && (anyIcmp(rule.code) || rule.code === probe.icmpCode)))
      );
  }
}

export function allowedByAsgs(groups: readonly RawGroup[], deny: DenyNetworks, probe: Probe): boolean {
  const staging = probe.container.workload === 'staging';
  const applies = (group: RawGroup) =>
    staging
      ? group.staging_default || group.staging_space_guids.includes(probe.container.space)
      : group.running_default || group.running_space_guids.includes(probe.container.space);
  const address = ipaddr.parse(probe.destination);
  const denied = [...deny.always, ...deny[staging ? 'staging' : 'running']].some((net) => contains(net, address));
  return !denied && groups.filter(applies).some((group) => group.rules.some((rule) => ruleAllows(rule, probe)));
}

// ---- the world as asgc's inputs, and a probe as a packet ---------------------------------

export function worldTexts(
  groups: readonly RawGroup[],
  deny: DenyNetworks,
  containers: readonly WorldContainer[],
  /** More config.json keys (e.g. ipset_min_destinations). */
  config: Readonly<Record<string, unknown>> = {},
): ScenarioTexts {
  const securityGroups = { next: 0, security_groups: groups.map((group) => ({ ...group, rules: JSON.stringify(group.rules) })) };
  const metadata = Object.fromEntries(
    containers.map((c) => [
      c.handle,
      { handle: c.handle, ip: c.ip, ipv6: c.ipv6, metadata: { space_id: c.space, container_workload: c.workload } },
    ]),
  );
  return {
    securityGroups: { file: 'security_groups.json', text: JSON.stringify(securityGroups) },
    containers: { file: 'containers.json', text: JSON.stringify(metadata) },
    config: { file: 'config.json', text: JSON.stringify({ ...config, deny_networks: deny }) },
  };
}

const big = (text: string) => BigInt(`0x${Buffer.from(ipaddr.parse(text).toByteArray()).toString('hex')}`);

export function packetOf(probe: Probe): Packet {
  const icmp = probe.protocol === 'icmp';
  return {
    family: probe.family,
    source: big(probe.family === 4 ? probe.container.ip : probe.container.ipv6),
    destination: big(probe.destination),
    state: 'NEW',
    mark: 0,
    inInterface: silkInterfaceName(big(probe.container.ip)),
    ...(icmp
      ? { protocol: probe.family === 4 ? 1 : 58, icmpType: probe.icmpType, icmpCode: probe.icmpCode }
      : { protocol: probe.protocol === 'tcp' ? 6 : 17, sourcePort: 40000, destinationPort: probe.port }),
  };
}

/**
 * The probes' world on a topology: the outside host owns the whole destination range (AnyIP),
 * the cell routes it there and answers every refused probe with its ICMP error (no rate limit).
 */
export async function routeDestinationsOutside(topology: Topology): Promise<void> {
  const outside = topology.namespace('outside');
  await mustRun(['ip', '-n', outside, 'route', 'add', 'local', DESTINATION_NETS[4], 'dev', 'lo']);
  await mustRun(['ip', '-n', outside, '-6', 'route', 'add', 'local', DESTINATION_NETS[6], 'dev', 'lo']);
  // IPv6 checks a reply's source against the addresses on interfaces; AnyIP ones are not.
  await mustRun(['ip', 'netns', 'exec', outside, 'sysctl', '-qw', 'net.ipv6.ip_nonlocal_bind=1']);
  await mustRun(['ip', '-n', topology.cell, 'route', 'add', DESTINATION_NETS[4], 'via', '203.0.113.2']);
  await mustRun(['ip', '-n', topology.cell, '-6', 'route', 'add', DESTINATION_NETS[6], 'via', '2001:db8:e::2']);
  await mustRun([
    'ip',
    'netns',
    'exec',
    topology.cell,
    'sysctl',
    '-qw',
    'net.ipv4.icmp_ratelimit=0',
    'net.ipv6.icmp.ratelimit=0',
    'net.ipv4.icmp_msgs_per_sec=100000',
    'net.ipv4.icmp_msgs_burst=100000',
  ]);
}
