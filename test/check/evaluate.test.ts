import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { type Decision, Evaluator } from '../../src/check/evaluate.js';
import type { Packet } from '../../src/ir/packet.js';
import { parseSaveText, savedTables } from '../../src/iptables/save-file.js';
import { parseRuleSpec } from '../../src/iptables/rule-parse.js';
import type { Chain, Ruleset } from '../../src/ir/ruleset.js';
import { type Family, parseAddress } from '../../src/model/address.js';

/** A ruleset from iptables-save text (so the tests read as the kernel would hold the rules). */
function ruleset(family: Family, text: string): Ruleset {
  const parsed = parseSaveText(text);
  if (!parsed.ok) throw new Error(JSON.stringify(parsed.error));
  const table = savedTables(parsed.value).get('filter');
  const names = new Set(table?.chains.keys());
  const chains: Chain[] = [...(table?.chains.values() ?? [])].map((chain) => ({
    name: chain.name,
    ...(chain.policy !== '-' && { policy: chain.policy as 'ACCEPT' | 'DROP' }),
    rules: chain.specs.map((spec) => parseRuleSpec(spec, family, (name) => names.has(name))),
  }));
  return { family, tables: [{ name: 'filter', chains }] };
}

function address(text: string): bigint {
  const parsed = parseAddress(text);
  if (!parsed.ok) throw new Error(parsed.error);
  return parsed.value.value;
}

type PacketFields = Partial<Omit<Packet, 'source' | 'destination'>>;

function packet(fields: PacketFields & { source: string; destination: string }): Packet {
  return {
    family: fields.source.includes(':') ? 6 : 4,
    protocol: 6,
    destinationPort: 443,
    sourcePort: 40000,
    state: 'NEW',
    mark: 0,
    ...fields,
    source: address(fields.source),
    destination: address(fields.destination),
  };
}

const v4 = (rules: string) =>
  new Evaluator(
    ruleset(
      4,
      `*filter\n:INPUT ACCEPT [0:0]\n:FORWARD DROP [0:0]\n:OUTPUT ACCEPT [0:0]\n:c - [0:0]\n:leaf - [0:0]\n${rules}\nCOMMIT\n`,
    ),
  );

describe('the evaluator', () => {
  it('takes the first rule that matches, and says which', () => {
    const evaluator = v4(
      [
        '-A FORWARD -s 10.255.0.2/32 -j c',
        '-A c -d 192.0.2.0/24 -p tcp -m tcp --dport 443 -m comment --comment "web#0" -j ACCEPT',
        '-A c -d 192.0.2.0/24 -j REJECT --reject-with icmp-port-unreachable',
      ].join('\n'),
    );
    const allowed = evaluator.evaluate(packet({ source: '10.255.0.2', destination: '192.0.2.9' }), {
      hook: 'FORWARD',
      trace: true,
    });
    expect(allowed.verdict).toBe('ACCEPT');
    expect([allowed.decidedBy?.chain, allowed.decidedBy?.index]).toEqual(['c', 1]);
    expect(allowed.via.map((place) => `${place.chain} ${place.index}`)).toEqual(['FORWARD 1']);
    expect(allowed.trace.map((step) => step.result)).toEqual(['match', 'match']);
    const rejected = evaluator.evaluate(packet({ source: '10.255.0.2', destination: '192.0.2.9', destinationPort: 80 }), {
      hook: 'FORWARD',
    });
    expect([rejected.verdict, rejected.rejectWith, rejected.decidedBy?.index]).toEqual(['REJECT', 'icmp-port-unreachable', 2]);
    // No rule for it: the end of FORWARD, whose policy here is DROP.
    const other = evaluator.evaluate(packet({ source: '10.255.0.3', destination: '192.0.2.9' }), { hook: 'FORWARD' });
    expect([other.verdict, other.decidedBy]).toEqual(['DROP', undefined]);
  });

  it('returns from user chains, goes to others, and follows the marks that rules set', () => {
    const evaluator = v4(
      [
        '-A FORWARD -j MARK --set-xmark 0x5/0xffffffff',
        '-A FORWARD -j c',
        '-A FORWARD -m mark --mark 0x5 -j REJECT --reject-with icmp-host-prohibited',
        '-A c -p udp -j RETURN',
        '-A c -p tcp -g leaf',
        '-A c -j DROP',
        '-A leaf -m tcp -p tcp --dport 22 -j RETURN',
        '-A leaf -j ACCEPT',
      ].join('\n'),
    );
    const at = (fields: PacketFields) =>
      evaluator.evaluate(packet({ source: '10.0.0.1', destination: '10.0.0.2', ...fields }), { hook: 'FORWARD' });
    expect(at({ protocol: 17 }).verdict).toBe('REJECT');
    expect(at({ protocol: 17 }).mark).toBe(5);
    expect(at({ destinationPort: 443 }).verdict).toBe('ACCEPT');
    // RETURN from leaf, reached by goto, goes back past c to FORWARD.
    expect(at({ destinationPort: 22 }).verdict).toBe('REJECT');
    expect(at({ protocol: 1, icmpType: 8, icmpCode: 0 }).verdict).toBe('DROP');
  });

  it('reads ICMP types as the kernel does: 255 is any in IPv4 only, a missing code is every code', () => {
    const evaluator = v4(
      [
        '-A FORWARD -p icmp -m icmp --icmp-type 3 -j ACCEPT',
        '-A FORWARD -p icmp -m icmp --icmp-type 8/0 -j ACCEPT',
        '-A FORWARD -p icmp -m icmp ! --icmp-type 13 -j DROP',
        '-A FORWARD -p icmp -m icmp --icmp-type any -j REJECT --reject-with icmp-port-unreachable',
      ].join('\n'),
    );
    const icmp = (icmpType: number, icmpCode: number) =>
      evaluator.evaluate(packet({ source: '10.0.0.1', destination: '10.0.0.2', protocol: 1, icmpType, icmpCode }), {
        hook: 'FORWARD',
      }).verdict;
    expect([icmp(3, 13), icmp(8, 0), icmp(8, 1), icmp(13, 0)]).toEqual(['ACCEPT', 'ACCEPT', 'DROP', 'REJECT']);
    const v6 = new Evaluator(
      ruleset(6, '*filter\n:FORWARD ACCEPT [0:0]\n-A FORWARD -p ipv6-icmp -m icmp6 --icmpv6-type 255 -j DROP\nCOMMIT\n'),
    );
    const echo = packet({ source: '2001:db8::1', destination: '2001:db8::2', protocol: 58, icmpType: 128, icmpCode: 0 });
    expect(v6.evaluate(echo, { hook: 'FORWARD' }).verdict).toBe('ACCEPT');
  });

  it('matches ranges, multiport lists, states and interfaces', () => {
    const evaluator = v4(
      [
        '-A FORWARD -m state --state RELATED,ESTABLISHED -j ACCEPT',
        '-A FORWARD -o eth9 -j DROP',
        '-A FORWARD -m iprange --dst-range 192.0.2.10-192.0.2.20 -p tcp -m multiport --dports 80,8000:8080 -j ACCEPT',
        '-A FORWARD -j REJECT --reject-with icmp-port-unreachable',
      ].join('\n'),
    );
    const at = (fields: PacketFields & { destination: string }) =>
      evaluator.evaluate(packet({ source: '10.0.0.1', outInterface: 'eth0', ...fields }), { hook: 'FORWARD' }).verdict;
    expect(at({ destination: '192.0.2.15', destinationPort: 8010 })).toBe('ACCEPT');
    expect(at({ destination: '192.0.2.21', destinationPort: 80 })).toBe('REJECT');
    expect(at({ destination: '192.0.2.15', destinationPort: 443 })).toBe('REJECT');
    expect(at({ destination: '192.0.2.15', destinationPort: 443, state: 'ESTABLISHED' })).toBe('ACCEPT');
    expect(at({ destination: '192.0.2.15', outInterface: 'eth9' })).toBe('DROP');
  });

  it('never guesses: a foreign module, or an interface the packet does not name, makes the verdict unknown', () => {
    const foreign = v4('-A FORWARD -m addrtype --dst-type LOCAL -j DROP\n-A FORWARD -j ACCEPT');
    const decision = foreign.evaluate(packet({ source: '10.0.0.1', destination: '10.0.0.2' }), { hook: 'FORWARD' });
    expect(decision.verdict).toBe('unknown');
    expect(decision.reason).toMatch(/FORWARD rule 1 uses what asgc does not model/);
    const byInterface = v4('-A FORWARD -o eth0 -j DROP');
    expect(byInterface.evaluate(packet({ source: '10.0.0.1', destination: '10.0.0.2' }), { hook: 'FORWARD' }).verdict).toBe(
      'unknown',
    );
    // Known rules after the packet's verdict do not matter.
    const after = v4('-A FORWARD -j ACCEPT\n-A FORWARD -m addrtype --dst-type LOCAL -j DROP');
    expect(after.evaluate(packet({ source: '10.0.0.1', destination: '10.0.0.2' }), { hook: 'FORWARD' }).verdict).toBe('ACCEPT');
  });

  it("finds a packet's rule in a long per-address dispatch by index, exactly as the full walk does (property)", () => {
    const pool = Array.from({ length: 12 }, (_, i) => `10.255.0.${i + 1}`);
    // Runs of rules on one field (the dispatch shape), long and short.
    const hostRun = fc
      .tuple(
        fc.constantFrom('-s', '-d'),
        fc.array(
          fc.tuple(fc.constantFrom(...pool), fc.constantFrom('-j c', '-j leaf', '-g c', '-j ACCEPT', '-j DROP', '-j RETURN')),
          { minLength: 1, maxLength: 24 },
        ),
      )
      .map(([field, rules]) => rules.map(([address, target]) => `${field} ${address}/32 ${target}`));
    // Rules that end a run: the index must restart after them.
    const other = fc.constantFrom(
      '-p udp -j DROP',
      '-d 10.255.0.0/28 -p tcp -m tcp --dport 22 -j REJECT --reject-with icmp-port-unreachable',
      '! -d 10.255.0.3/32 -j c',
      '-s 10.255.0.1/32 -p tcp -j leaf',
    );
    const chain = fc
      .array(fc.oneof({ weight: 3, arbitrary: hostRun }, { weight: 1, arbitrary: other.map((spec) => [spec]) }), { maxLength: 6 })
      .map((parts) => parts.flat());
    const probe = fc.record({
      source: fc.constantFrom(...pool, '192.0.2.1'),
      destination: fc.constantFrom(...pool, '192.0.2.1'),
      protocol: fc.constantFrom(6, 17),
      destinationPort: fc.constantFrom(22, 443),
    });
    fc.assert(
      fc.property(chain, fc.array(probe, { minLength: 1, maxLength: 20 }), (rules, probes) => {
        const evaluator = v4(
          [
            ...rules.map((spec) => `-A FORWARD ${spec}`),
            '-A FORWARD -d 10.255.0.5/32 -j ACCEPT',
            '-A c -p tcp -m tcp --dport 443 -j ACCEPT',
            '-A leaf -d 10.255.0.2/32 -j RETURN',
            '-A leaf -j REJECT --reject-with icmp-port-unreachable',
          ].join('\n'),
        );
        for (const fields of probes) {
          const [indexed, walked] = [false, true].map((trace) => evaluator.evaluate(packet(fields), { hook: 'FORWARD', trace }));
          const summary = (decision: Decision) => ({
            verdict: decision.verdict,
            decidedBy: decision.decidedBy && [decision.decidedBy.chain, decision.decidedBy.index],
            via: decision.via.map((step) => [step.chain, step.index]),
          });
          expect(summary(indexed as Decision)).toEqual(summary(walked as Decision));
        }
      }),
      { numRuns: 400 },
    );
  });
});
