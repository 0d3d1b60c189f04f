// Every scenario in rules/ recompiles to its golden files, byte for byte.
import { describe, expect, it } from 'vitest';
import { listScenarios, runGolden } from '../src/scenario/golden.js';

describe('golden files', () => {
  it('has the scenarios the project promises', async () => {
    expect(await listScenarios('rules')).toEqual(
      expect.arrayContaining([
        'cf-defaults-ipv4',
        'dual-stack-cell',
        'lifecycles-two-spaces',
        'deny-networks',
        'icmp-any-type-code',
      ]),
    );
  });

  it('every scenario compiles to exactly its golden files (asgc golden --update rewrites them)', async () => {
    const outcomes = await runGolden('rules', 'golden', false);
    const unexpected = outcomes.filter((outcome) => outcome.status !== 'same');
    expect(unexpected, JSON.stringify(unexpected, null, 2)).toEqual([]);
    expect(outcomes.length).toBeGreaterThanOrEqual(5);
  });
});
