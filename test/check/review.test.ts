// asgc review's exactness, as properties. The walker over header space agrees with the
// evaluator (asgc check) on every sampled packet of every bundled scenario; for random (before,
// after) pairs, a packet is listed as gained exactly when the evaluator's verdict went from not
// allowed to allowed, and as lost exactly for the reverse; the optimiser on or off changes no
// access; a rule that cannot be evaluated makes the container unknown.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CellLinks, cellEvaluator } from '../../src/check/cell-links.js';
import {
  type Access,
  decideContext,
  type Direction,
  DIRECTIONS,
  reviewCells,
  reviewContext,
  type ReviewSide,
} from '../../src/check/review.js';
import { type Box, contains, FIELD, type Interval } from '../../src/check/space.js';
import type { Piece } from '../../src/check/space-walk.js';
import { CONNTRACK_STATES } from '../../src/ir/matches.js';
import type { Packet } from '../../src/ir/packet.js';
import { type Family, FAMILIES } from '../../src/model/address.js';
import type { Container } from '../../src/model/cell.js';
import type { ScenarioTexts } from '../../src/ingest/cell.js';
import { compileScenario } from '../../src/scenario/pipeline.js';
import { renderRuleset } from '../../src/render/save-text.js';
import { rulesetFromSaveText } from '../../src/iptables/saved-ruleset.js';

const SCENARIOS = (await readdir('rules')).sort();

async function texts(scenario: string): Promise<Record<string, string>> {
  const files: Record<string, string> = {};
  for (const name of await readdir(join('rules', scenario))) files[name] = await readFile(join('rules', scenario, name), 'utf8');
  return files;
}

const KEYS: Record<string, keyof ScenarioTexts> = {
  'security_groups.json': 'securityGroups',
  'policies.json': 'policies',
  'containers.json': 'containers',
  'endpoints.json': 'endpoints',
  'config.json': 'config',
};

function side(files: Record<string, string>, optimise = true): ReviewSide {
  const scenario: Record<string, { file: string; text: string }> = {};
  for (const [name, text] of Object.entries(files)) scenario[KEYS[name] as string] = { file: name, text };
  const compiled = compileScenario(scenario as ScenarioTexts, { optimise });
  if (!compiled.ok) throw new Error(JSON.stringify(compiled.error));
  return { rulesets: compiled.value.cell, cell: compiled.value.policy };
}

/** A point of the box, chosen by `seed`, whose remote address the box really holds. */
function pointIn(box: Box, seed: readonly bigint[]): bigint[] | undefined {
  const point = box.intervals.map(([low, high]: Interval, index) => low + ((seed[index] as bigint) % (high - low + 1n)));
  if (box.excluded?.has(point[FIELD.remote] as bigint)) return undefined;
  return point;
}

/** The packet of a point, built as the review builds its context. */
function packetOf(
  review: ReviewSide,
  container: Container,
  family: Family,
  direction: Direction,
  box: Box,
  point: readonly bigint[],
): Packet {
  const context = reviewContext(review, container, family, direction);
  if (context === undefined) throw new Error('no context');
  const own = context.view.own;
  const remote = point[FIELD.remote] as bigint;
  const protocol = Number(point[FIELD.protocol]);
  // A box of the cell's containers stands for each sending by its own interface.
  const sender =
    box.representative === undefined
      ? undefined
      : review.cell.containers.find((other) => (family === 4 ? other.ipv4 : other.ipv6) === remote);
  const inInterface =
    sender !== undefined
      ? new CellLinks(review.cell.containers, review.cell.config).interfaceOf(sender)
      : (box.inInterface ?? context.view.inInterface);
  return {
    family,
    source: own.end === 'source' ? own.address : remote,
    destination: own.end === 'destination' ? own.address : remote,
    protocol,
    ...(protocol === 6 || protocol === 17
      ? { sourcePort: Number(point[FIELD.sport]), destinationPort: Number(point[FIELD.dport]) }
      : {}),
    ...(protocol === (family === 4 ? 1 : 58)
      ? { icmpType: Number(point[FIELD.icmpType]), icmpCode: Number(point[FIELD.icmpCode]) }
      : {}),
    state: CONNTRACK_STATES[Number(point[FIELD.state])] as Packet['state'],
    mark: Number(point[FIELD.mark]),
    ...(inInterface !== undefined && { inInterface }),
    ...(context.view.outInterface !== undefined && { outInterface: context.view.outInterface }),
  };
}

const hookOf = (direction: Direction) => (direction === 'host' ? 'INPUT' : 'FORWARD');
const seeds = fc.array(fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), { minLength: 8, maxLength: 8 });

describe('the header-space walk agrees with the evaluator', () => {
  it.each(SCENARIOS)(
    '%s: every sampled packet of every container, family and direction gets the same verdict and rule',
    async (scenario) => {
      const review = side(await texts(scenario));
      const samples = fc.sample(fc.tuple(fc.nat(), seeds), { seed: 7, numRuns: 60 });
      let checked = 0;
      for (const container of review.cell.containers)
        for (const family of FAMILIES)
          for (const direction of DIRECTIONS) {
            const pieces = decideContext(review, container, family, direction);
            if (pieces === undefined) continue;
            const evaluator = cellEvaluator(review.rulesets[family], review.cell);
            for (const [which, seed] of samples) {
              const piece = pieces[which % pieces.length] as Piece;
              const point = pointIn(piece.box, seed);
              if (point === undefined) continue;
              // The pieces are disjoint: the point is in this one only.
              expect(
                pieces.filter((other) => contains([other.box], point, piece.box.inInterface ?? other.box.inInterface)).length,
              ).toBe(1);
              const decision = evaluator.evaluate(packetOf(review, container, family, direction, piece.box, point), {
                hook: hookOf(direction),
              });
              expect({ verdict: decision.verdict, chain: decision.decidedBy?.chain, index: decision.decidedBy?.index }).toEqual({
                verdict: piece.verdict,
                chain: piece.decidedBy?.chain,
                index: piece.decidedBy?.index,
              });
              checked++;
            }
          }
      expect(checked).toBeGreaterThan(100);
    },
  );
});

/** A random edit of a scenario's ASGs, c2c policies or deny networks. */
const edit = fc.record({
  scenario: fc.constantFrom(...SCENARIOS),
  group: fc.nat(),
  rule: fc.nat(),
  kind: fc.constantFrom(
    'ports',
    'destination',
    'protocol',
    'delete',
    'add',
    'c2c-ports',
    'deny',
    'add-container',
    'remove-container',
  ),
  port: fc.integer({ min: 1, max: 65535 }),
  width: fc.integer({ min: 0, max: 2000 }),
  octet: fc.integer({ min: 0, max: 255 }),
  prefix: fc.integer({ min: 20, max: 32 }),
});

function editFiles(
  files: Record<string, string>,
  change: { group: number; rule: number; kind: string; port: number; width: number; octet: number; prefix: number },
): Record<string, string> {
  const out = { ...files };
  if (change.kind === 'add-container' || change.kind === 'remove-container') {
    const containers = JSON.parse(out['containers.json'] as string);
    const handles = Object.keys(containers);
    const chosen = handles[change.group % handles.length] as string;
    if (change.kind === 'remove-container' && handles.length > 1) delete containers[chosen];
    else {
      const handle = `f${String(change.octet).padStart(7, '0')}-0000-4000-8000-000000000000`;
      const ip = `10.255.200.${change.octet}`;
      containers[handle] = {
        ...containers[chosen],
        handle,
        ip,
        ...(containers[chosen].ipv6 && { ipv6: `2001:db8:ffee::${change.octet.toString(16)}` }),
      };
    }
    out['containers.json'] = JSON.stringify(containers);
    return out;
  }
  const destination = `203.0.113.${change.octet}${change.prefix === 32 ? '' : `/${Math.max(change.prefix, 24)}`}`;
  const end = Math.min(65535, change.port + change.width);
  const ports = end > change.port ? `${change.port}-${end}` : String(change.port);
  if (change.kind === 'c2c-ports' && out['policies.json'] !== undefined) {
    const document = JSON.parse(out['policies.json']);
    const policy = document.policies[change.group % document.policies.length];
    if (policy !== undefined) policy.destination.ports = { start: change.port, end: Math.min(65535, change.port + change.width) };
    out['policies.json'] = JSON.stringify(document);
    return out;
  }
  if (change.kind === 'deny') {
    const config = out['config.json'] === undefined ? {} : JSON.parse(out['config.json']);
    config.deny_networks = { ...config.deny_networks, running: [...(config.deny_networks?.running ?? []), destination] };
    out['config.json'] = JSON.stringify(config);
    return out;
  }
  const document = JSON.parse(out['security_groups.json'] as string);
  const groups = Array.isArray(document)
    ? document.flatMap((page: { security_groups: unknown[] }) => page.security_groups)
    : document.security_groups;
  const group = groups[change.group % groups.length];
  const rules = typeof group.rules === 'string' ? JSON.parse(group.rules) : group.rules;
  const rule = rules[change.rule % Math.max(rules.length, 1)];
  if (change.kind === 'add' || rule === undefined) rules.push({ protocol: 'tcp', destination, ports });
  else if (change.kind === 'delete') rules.splice(change.rule % rules.length, 1);
  else if (change.kind === 'ports' && (rule.protocol === 'tcp' || rule.protocol === 'udp')) rule.ports = ports;
  else if (change.kind === 'destination') rule.destination = destination;
  else if (change.kind === 'protocol')
    Object.assign(rule, { protocol: change.port % 2 === 0 ? 'udp' : 'tcp', ports, type: undefined, code: undefined });
  group.rules = typeof group.rules === 'string' ? JSON.stringify(rules) : rules;
  out['security_groups.json'] = JSON.stringify(document);
  return out;
}

/**
 * The evaluator's verdict for a point of a context, its packet built as that side builds it
 * ('none': the container is not on that side; undefined: the point is not in that side's
 * context, such as a destination that is one of its containers, reviewed as c2c).
 */
function verdictIn(
  side: ReviewSide,
  container: Container,
  family: Family,
  direction: Direction,
  point: readonly bigint[],
): string | undefined {
  const own = side.cell.containers.find((candidate) => candidate.handle === container.handle);
  const context = own === undefined ? undefined : reviewContext(side, own, family, direction);
  if (own === undefined || context === undefined) return 'none';
  const remote = point[FIELD.remote] as bigint;
  const box = context.space.find((candidate) => contains([candidate], point) && candidate.excluded?.has(remote) !== true);
  if (box === undefined) return undefined;
  const evaluator = cellEvaluator(side.rulesets[family], side.cell);
  return evaluator.evaluate(packetOf(side, own, family, direction, box, point), { hook: hookOf(direction) }).verdict;
}

function inAccess(access: readonly Access[], point: readonly bigint[], inInterface: string | undefined): boolean {
  return access.some((entry) => contains([entry.box], point, inInterface));
}

describe('asgc review is exact', () => {
  it('a packet is gained iff its verdict went from not allowed to allowed, and lost iff the reverse (property)', async () => {
    const base = new Map(await Promise.all(SCENARIOS.map(async (scenario) => [scenario, await texts(scenario)] as const)));
    let changedPackets = 0;
    await fc.assert(
      fc.asyncProperty(
        edit,
        fc.array(fc.tuple(fc.nat(), fc.boolean(), seeds), { minLength: 40, maxLength: 40 }),
        async (change, samples) => {
          const beforeFiles = base.get(change.scenario) as Record<string, string>;
          const before = side(beforeFiles);
          const after = side(editFiles(beforeFiles, change));
          const reviews = reviewCells(before, after);
          for (const container of after.cell.containers)
            for (const family of FAMILIES)
              for (const direction of DIRECTIONS) {
                const now = decideContext(after, container, family, direction);
                if (now === undefined) continue;
                const old = decideContext(before, container, family, direction) ?? [];
                const review = reviews.find(
                  (one) => one.container.handle === container.handle && one.family === family && one.direction === direction,
                );
                expect(review?.unknown).toBeUndefined();
                for (const [which, fromAfter, seed] of samples) {
                  const pieces = fromAfter || old.length === 0 ? now : old;
                  const point = pointIn((pieces[which % pieces.length] as Piece).box, seed);
                  if (point === undefined) continue;
                  const was = verdictIn(before, container, family, direction, point);
                  const is = verdictIn(after, container, family, direction, point);
                  // A point one side's review leaves to another container's side (c2c) proves nothing here.
                  if (was === undefined || is === undefined) continue;
                  const gained = was !== 'ACCEPT' && is === 'ACCEPT';
                  const lost = was === 'ACCEPT' && is !== 'ACCEPT';
                  if (gained || lost) changedPackets++;
                  expect(inAccess(review?.gained ?? [], point, undefined)).toBe(gained);
                  expect(inAccess(review?.lost ?? [], point, undefined)).toBe(lost);
                }
              }
        },
      ),
      { seed: 20261203, numRuns: 40 },
    );
    // The property was not vacuous: some sampled packets did change.
    expect(changedPackets).toBeGreaterThan(20);
  }, 120_000);

  it.each(SCENARIOS)(
    '%s: the optimiser on or off, or the rules read back from their text, changes no access',
    async (scenario) => {
      const files = await texts(scenario);
      const optimised = side(files);
      expect(reviewCells(side(files, false), optimised)).toEqual([]);
      // Read back from iptables-save text (the rules asgc did not write are compared as text, not here).
      const readBack: ReviewSide = {
        cell: optimised.cell,
        rulesets: Object.fromEntries(
          FAMILIES.map((family) => {
            const text = renderRuleset(optimised.rulesets[family]);
            const read = rulesetFromSaveText(text, family, 'saved');
            if (!read.ok) throw new Error(read.error.join('\n'));
            return [family, { ...read.value, sets: optimised.rulesets[family].sets ?? [] }];
          }),
        ) as unknown as ReviewSide['rulesets'],
      };
      expect(reviewCells(optimised, readBack)).toEqual([]);
    },
  );
});

describe('unknown stays unknown', () => {
  /** The side with its IPv4 rules read back from text after `edit`. */
  function editedIpv4(review: ReviewSide, edit: (lines: string[]) => string[], sets = review.rulesets[4].sets ?? []): ReviewSide {
    const text = edit(renderRuleset(review.rulesets[4]).split('\n')).join('\n');
    const read = rulesetFromSaveText(text, 4, 'edited');
    if (!read.ok) throw new Error(read.error.join('\n'));
    return { ...review, rulesets: { ...review.rulesets, 4: { ...read.value, sets } } };
  }

  it('a rule of a module asgc does not model makes its container unknown, and no other', async () => {
    const before = side(await texts('dual-stack-cell'));
    const chain = renderRuleset(before.rulesets[4])
      .split('\n')
      .find((line) => line.startsWith('-A asgc-forward -s ') && / -j asgc-o-/.test(line))
      ?.split(' -j ')[1];
    expect(chain).toBeDefined();
    const after = editedIpv4(before, (lines) => {
      const at = lines.findIndex((line) => line.startsWith(`-A ${chain} `));
      return [...lines.slice(0, at), `-A ${chain} -m owner --uid-owner 0 -j ACCEPT`, ...lines.slice(at)];
    });
    const reviews = reviewCells(before, after);
    expect(reviews.length).toBeGreaterThan(0);
    for (const review of reviews) {
      expect(review.unknown).toMatch(/cannot be evaluated/);
      expect(review.gained).toEqual([]);
      expect(review.lost).toEqual([]);
      expect(review.family).toBe(4);
      expect(review.direction).toBe('egress');
    }
    // Only the container whose chain holds the rule.
    expect(new Set(reviews.map((review) => review.container.handle)).size).toBe(1);
  });

  it('an ipset whose members are not known makes the containers whose rules name it unknown', async () => {
    const before = side(await texts('partner-list-ipsets'));
    const after = editedIpv4(before, (lines) => lines, []);
    const reviews = reviewCells(before, after);
    expect(reviews.length).toBeGreaterThan(0);
    expect(reviews.every((review) => review.unknown !== undefined && review.gained.length + review.lost.length === 0)).toBe(true);
    // With the members known again, nothing changed.
    expect(
      reviewCells(
        before,
        editedIpv4(before, (lines) => lines),
      ),
    ).toEqual([]);
  });
});
