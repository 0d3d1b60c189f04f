// The host as the evaluator models it (silk's links) and the path of a packet through the raw
// table before filter: spoofed sources are dropped there, link-local ones go to host access.
import { describe, expect, it } from 'vitest';
import { CellLinks, cellEvaluator, silkInterfaceName } from '../../src/check/cell-links.js';
import { Evaluator } from '../../src/check/evaluate.js';
import { compileCell } from '../../src/compile/compile.js';
import type { Packet } from '../../src/ir/packet.js';
import { parseAddress } from '../../src/model/address.js';
import { cell, container, securityGroup } from '../support/cell.js';

function address(text: string): bigint {
  const parsed = parseAddress(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value.value;
}

const web = securityGroup('web', [{ protocol: 'tcp', destination: '203.0.113.0/24,2001:db8:e::/64', ports: '443' }], {
  runningDefault: true,
});
const c1 = container('c1', ['10.255.7.11', '2001:db8:c::11']);
const c2 = container('c2', ['10.255.7.12', '2001:db8:c::12']);
const policy = cell([web], [c1, c2]);
const compiled = compileCell(policy);
if (!compiled.ok) throw new Error('compile failed');
const v6 = cellEvaluator(compiled.value[6], policy);

const packet = (source: string, destination: string, inInterface: string, port = 443): Packet => ({
  family: source.includes(':') ? 6 : 4,
  source: address(source),
  destination: address(destination),
  protocol: 6,
  sourcePort: 40000,
  destinationPort: port,
  state: 'NEW',
  mark: 0,
  inInterface,
});

describe("the cell's links", () => {
  const links = new CellLinks(policy.containers, policy.config);

  it("names a container's interface as silk does, and knows the container behind it", () => {
    expect(silkInterfaceName(address('10.255.7.11'))).toBe('s-010255007011');
    expect(links.interfaceOf(c1)).toBe('s-010255007011');
    expect(links.containerOn('s-010255007012')).toBe(c2);
    expect(links.outsideInterface).toBe('eth0');
    const custom = new CellLinks([c1], { ...policy.config, containerInterfaces: ['veth+'], hostInterfaces: ['bond0'] });
    expect(custom.interfaceOf(c1)).toBe('veth010255007011');
    expect(custom.outsideInterface).toBe('bond0');
  });

  it("routes back to a container only its own addresses, IPv6 link-local and unspecified ones; elsewhere, never a container's", () => {
    const on = (source: string, iface: string) => links.reversePath(packet(source, '2001:db8:e::1', iface));
    expect(on('2001:db8:c::11', 's-010255007011')).toBe(true);
    expect(on('fe80::11', 's-010255007011')).toBe(true);
    expect(on('::', 's-010255007011')).toBe(true);
    expect(on('2001:db8:c::12', 's-010255007011')).toBe(false);
    expect(on('2001:db8:e::1', 's-010255007011')).toBe(false);
    expect(links.reversePath(packet('10.255.7.12', '203.0.113.1', 's-010255007011'))).toBe(false);
    // An interface of the containers' pattern that no container has, or the uplink: it depends on routes.
    expect(on('2001:db8:c::11', 's-010255007099')).toBeUndefined();
    expect(on('2001:db8:c::12', 'eth0')).toBe(false);
    expect(on('2001:db8:99::1', 'eth0')).toBeUndefined();
  });
});

describe('a packet through raw, then filter', () => {
  it('drops a spoofed source in the raw table before any policy, and lets the real one on to filter', () => {
    const real = v6.evaluate(packet('2001:db8:c::11', '2001:db8:e::9', 's-010255007011'), { hook: 'FORWARD' });
    expect(real.verdict).toBe('ACCEPT');
    expect(real.decidedBy?.table).toBe('filter');
    const spoofed = v6.evaluate(packet('2001:db8:c::12', '2001:db8:e::9', 's-010255007011'), { hook: 'FORWARD', trace: true });
    expect(spoofed.verdict).toBe('DROP');
    expect(spoofed.decidedBy).toMatchObject({ table: 'raw', chain: 'asgc-antispoof', index: 1 });
    expect(spoofed.trace.every((step) => step.table === 'raw')).toBe(true);
    const fromOutside = v6.evaluate(packet('2001:db8:c::12', '2001:db8:c::11', 'eth0', 8080), { hook: 'FORWARD' });
    expect(fromOutside).toMatchObject({ verdict: 'DROP', decidedBy: { table: 'raw', chain: 'asgc-antispoof', index: 4 } });
  });

  it('sends a link-local source to host access, not to the policy of INPUT', () => {
    const decision = v6.evaluate(packet('fe80::11', 'fe80::1', 's-010255007011', 22), { hook: 'INPUT' });
    expect(decision.verdict).toBe('REJECT');
    expect(decision.via.map((step) => step.chain)).toEqual(['INPUT', 'asgc-input']);
  });

  it('says unknown, never guesses, where the interface or the reverse path cannot be known', () => {
    const { inInterface: _, ...anywhere } = packet('2001:db8:c::11', '2001:db8:e::9', '');
    expect(v6.evaluate(anywhere, { hook: 'FORWARD' })).toMatchObject({
      verdict: 'unknown',
      reason: expect.stringContaining('matches on an interface the packet does not name'),
    });
    const blind = new Evaluator(compiled.value[6]).evaluate(packet('2001:db8:c::11', '2001:db8:e::9', 's-010255007011'), {
      hook: 'FORWARD',
    });
    expect(blind).toMatchObject({ verdict: 'unknown', reason: expect.stringContaining('-m rpfilter') });
  });
});
