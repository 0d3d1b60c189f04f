// The whole chain, end to end: random ASGs and deny networks through ingest, compile (optimised
// and plain) and the evaluator, against Cloud Controller's semantics read directly.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { cellEvaluator } from '../../src/check/cell-links.js';
import { compileScenario } from '../../src/scenario/pipeline.js';
import {
  allowedByAsgs,
  asgWorld,
  type DenyNetworks,
  packetOf,
  type RawGroup,
  type WorldContainer,
  worldTexts,
} from '../support/asg-world.js';

const CONTAINERS: WorldContainer[] = [
  { handle: 'runner', ip: '10.255.0.2', ipv6: 'fd00:255::2', space: 'space-a', workload: 'app' },
  { handle: 'tasker', ip: '10.255.0.3', ipv6: 'fd00:255::3', space: 'space-b', workload: 'task' },
  { handle: 'stager', ip: '10.255.0.4', ipv6: 'fd00:255::4', space: 'space-a', workload: 'staging' },
];

const world = asgWorld({ portBase: 0, icmpTypes: [0, 3, 8, 1, 128, 129] });

/** Every destination list of two or more addresses becomes an ipset: the most sets possible. */
const IPSETS = { ipset_min_destinations: 2 };

function evaluators(groups: readonly RawGroup[], deny: DenyNetworks, optimise: boolean, config = {}) {
  const compiled = compileScenario(worldTexts(groups, deny, CONTAINERS, config), { optimise });
  if (!compiled.ok) throw new Error(JSON.stringify(compiled.error));
  const { cell, policy } = compiled.value;
  return { 4: cellEvaluator(cell[4], policy), 6: cellEvaluator(cell[6], policy) };
}

describe('ASG semantics, end to end', () => {
  it('the evaluator on the optimised rules (with and without ipsets) = on the plain rules = a direct reading of the ASGs (property)', () => {
    fc.assert(
      fc.property(
        world.groups,
        world.denyNetworks,
        fc.array(world.probe(CONTAINERS), { minLength: 60, maxLength: 60 }),
        (groups, deny, probes) => {
          const [optimised, plain, withSets] = [
            evaluators(groups, deny, true),
            evaluators(groups, deny, false),
            evaluators(groups, deny, true, IPSETS),
          ];
          for (const probe of probes) {
            const packet = packetOf(probe);
            const a = optimised[probe.family].evaluate(packet, { hook: 'FORWARD' });
            const b = plain[probe.family].evaluate(packet, { hook: 'FORWARD' });
            expect({ probe, verdict: a.verdict }).toEqual({
              probe,
              verdict: allowedByAsgs(groups, deny, probe) ? 'ACCEPT' : 'REJECT',
            });
            expect(b.verdict).toBe(a.verdict);
            expect(withSets[probe.family].evaluate(packet, { hook: 'FORWARD' }).verdict).toBe(a.verdict);
          }
        },
      ),
      { numRuns: 150 },
    );
  });
});
