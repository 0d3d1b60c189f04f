// asgc review and asgc explain: what a policy change means, and what a container may reach, in
// words a reviewer can check; computed from the rules' meaning (src/check/review.ts).
import { type Command, CommanderError, Option } from 'commander';
import { join } from 'node:path';
import { accessOf, type ContextReview, decideContext, DIRECTIONS, reviewCells, type ReviewSide } from '../check/review.js';
import { contextLines, EXPLAIN_VERBS, groupReviews, groupTitle, rangeToCidrs, renderReview } from '../check/review-text.js';
import { CONNTRACK_STATES } from '../ir/matches.js';
import { FIELD } from '../check/space.js';
import { readTextFile } from '../exec/text-file.js';
import { oneLine } from '../ingest/input-error.js';
import type { IpSet } from '../ir/ipset.js';
import type { Ruleset } from '../ir/ruleset.js';
import { modelledSets } from '../ipset/script.js';
import { rulesetFromSaveText } from '../iptables/saved-ruleset.js';
import { type Family, FAMILIES } from '../model/address.js';
import { type Result, fail, ok } from '../model/result.js';
import { readScenarioAtRevision } from '../scenario/git.js';
import { compileScenario, IPSETS_FILE, RULES_FILE } from '../scenario/pipeline.js';
import { DataplaneError } from '../exec/dataplane-error.js';
import type { Backend } from '../iptables/backend.js';
import { liveRuleset } from '../reconcile/apply.js';
import {
  type CommandContext,
  type DocumentOptions,
  EXIT,
  loadScenario,
  parseBackend,
  reportProblem,
  withOptimizeOption,
} from './common.js';
import { dataplaneFor } from './live-commands.js';

interface ReviewOptions {
  git?: string;
  golden?: string;
  saved?: string;
  netns?: string;
  backend?: Backend;
  markdown?: boolean;
  json?: boolean;
  optimize?: boolean;
}

/** A compiled scenario as a side of a review. */
export function sideOf(compiled: { cell: ReviewSide['rulesets']; policy: ReviewSide['cell'] }): ReviewSide {
  return { rulesets: compiled.cell, cell: compiled.policy };
}

/** Golden files (or a saved cell: the same text) as the "before" side: the rules as text, the cell from the scenario. */
export async function goldenSide(goldenDirectory: string, cell: ReviewSide['cell']): Promise<Result<ReviewSide, string[]>> {
  let sets: IpSet[] = [];
  const setsFile = join(goldenDirectory, IPSETS_FILE);
  const setsText = await readTextFile(setsFile);
  if (setsText.ok) {
    const modelled = modelledSets(setsText.value);
    if (!modelled.ok) return fail([`${oneLine(setsFile)}: ${oneLine(modelled.error)}`]);
    sets = modelled.value.sets;
  }
  const rulesets: Partial<Record<Family, Ruleset>> = {};
  for (const family of FAMILIES) {
    const file = join(goldenDirectory, RULES_FILE[family]);
    const text = await readTextFile(file);
    if (!text.ok) return fail([`${oneLine(file)}: ${text.error.message}`]);
    const read = rulesetFromSaveText(text.value, family, file);
    if (!read.ok) return fail(read.error);
    rulesets[family] = { ...read.value, sets: sets.filter((set) => set.family === family) };
  }
  return ok({ rulesets: rulesets as ReviewSide['rulesets'], cell });
}

/** A box's fields for JSON: the remote addresses as CIDRs, states by name, the rest as "low-high". */
function fieldsOf(family: Family, box: ContextReview['gained'][number]['box']): Record<string, unknown> {
  return Object.fromEntries(
    Object.entries(FIELD).map(([name, index]) => {
      const [low, high] = box.intervals[index] as readonly [bigint, bigint];
      if (name === 'remote') return [name, rangeToCidrs(family, low, high)];
      if (name === 'state') return [name, CONNTRACK_STATES.slice(Number(low), Number(high) + 1)];
      return [name, low === high ? String(low) : `${low}-${high}`];
    }),
  );
}

function jsonOf(reviews: readonly ContextReview[]): unknown {
  const access = (family: Family, entries: ContextReview['gained']) =>
    entries.map((entry) => ({
      ...fieldsOf(family, entry.box),
      ...(entry.box.inInterface !== undefined && { inInterface: entry.box.inInterface }),
      ...(entry.policy !== undefined && { policy: entry.policy }),
      ...(entry.rule !== undefined && { rule: { table: entry.rule.table, chain: entry.rule.chain, index: entry.rule.index } }),
    }));
  return reviews.map((review) => ({
    container: review.container.handle,
    family: review.family,
    direction: review.direction,
    ...(review.unknown !== undefined
      ? { unknown: review.unknown }
      : {
          lines: contextLines(review),
          gained: access(review.family, review.gained),
          lost: access(review.family, review.lost),
        }),
  }));
}

/** Print a review; the exit code says whether access changed. */
export function printReview(context: CommandContext, reviews: readonly ContextReview[], options: ReviewOptions): void {
  const grouped = groupReviews(reviews);
  if (options.json)
    context.io.stdout(
      `${JSON.stringify({ groups: grouped.groups, unknown: grouped.unknown, contexts: jsonOf(reviews) }, null, 2)}\n`,
    );
  else context.io.stdout(renderReview(grouped, options.markdown ?? false));
  context.setExit(reviews.length === 0 ? EXIT.ok : EXIT.pending);
}

export function addReviewCommands(program: Command, context: CommandContext): void {
  const { io, setExit } = context;
  withOptimizeOption(
    program
      .command('review')
      .description(
        'what a policy change means: for each container, family and direction, the packets newly allowed and newly denied (exit 0: no access change, 3: some)',
      )
      .argument('<before>', 'scenario directory before the change (with --git or --golden: the scenario, after it)')
      .argument('[after]', 'scenario directory after the change'),
  )
    .option('--git <rev>', 'the "before" side is the scenario directory as at this git revision (read with git show)')
    .option('--golden <dir>', 'the "before" side is this folder of golden files (iptables.rules, ip6tables.rules)')
    .option(
      '--saved <dir>',
      'the "before" side is a cell\'s saved state: iptables-save and ip6tables-save output as iptables.rules and ip6tables.rules, ipset save as ipsets.rules',
    )
    .option('--netns <name>', 'the "before" side is what the tables of this network namespace hold now: what apply would change')
    .addOption(
      new Option('--backend <nft|legacy>', 'with --netns: the iptables backend (default: the one the rules live in)').argParser(
        parseBackend,
      ),
    )
    .addOption(new Option('--markdown', 'a pull-request comment').conflicts('json'))
    .option('--json', 'every change as JSON (fields as intervals, the policy behind each)')
    .action(async (first: string, second: string | undefined, options: ReviewOptions) => {
      const sides = [options.git, options.golden, options.saved, options.netns].filter((side) => side !== undefined).length;
      if (sides > 1 || (sides === 1) === (second !== undefined))
        throw new CommanderError(
          EXIT.usage,
          'asgc.usage',
          'error: give two scenario directories, or one with --git REV, --golden DIR, --saved DIR or --netns NAME',
        );
      const documents: DocumentOptions = { optimize: options.optimize !== false, json: false };
      const after = await loadScenario(context, second ?? first, documents, { printed: false });
      if (after === undefined) return;
      let before: ReviewSide;
      if (options.git !== undefined) {
        const texts = await readScenarioAtRevision(options.git, first);
        if (!texts.ok) {
          reportProblem(io, false, { kind: 'input', errors: texts.error });
          return setExit(EXIT.invalid);
        }
        const compiled = compileScenario(texts.value, { optimise: options.optimize !== false });
        if (!compiled.ok) {
          reportProblem(io, false, compiled.error);
          return setExit(EXIT.invalid);
        }
        before = sideOf(compiled.value);
      } else if (options.netns !== undefined) {
        try {
          const dataplane = await dataplaneFor(options);
          const rulesets = { 4: await liveRuleset(dataplane, 4), 6: await liveRuleset(dataplane, 6) };
          before = { rulesets, cell: after.policy };
        } catch (error) {
          if (!(error instanceof DataplaneError)) throw error;
          io.stderr(`asgc: ${oneLine(error.message)}\n`);
          return setExit(EXIT.dataplane);
        }
      } else if (options.golden !== undefined || options.saved !== undefined) {
        const golden = await goldenSide((options.golden ?? options.saved) as string, after.policy);
        if (!golden.ok) {
          io.stderr(golden.error.map((line) => `${line}\n`).join(''));
          return setExit(EXIT.invalid);
        }
        before = golden.value;
      } else {
        const compiled = await loadScenario(context, first, documents, { printed: false });
        if (compiled === undefined) return;
        before = sideOf(compiled);
      }
      printReview(context, reviewCells(before, sideOf(after)), options);
    });

  program
    .command('explain')
    .description("a container's whole effective access, per family and direction, with the policy behind each entry")
    .argument('<scenario-dir>', 'directory holding the scenario documents')
    .option('--container <handle>', 'the container (its handle or one of its addresses)')
    .option('--app <guid>', 'every container of this app (they share lines when their access is the same)')
    .option('--json', 'as JSON')
    .action(async (directory: string, options: { container?: string; app?: string; json?: boolean }) => {
      if ((options.container === undefined) === (options.app === undefined))
        throw new CommanderError(EXIT.usage, 'asgc.usage', 'error: give --container or --app');
      const scenario = await loadScenario(context, directory, { json: false }, { printed: false });
      if (scenario === undefined) return;
      const side = sideOf(scenario);
      const wanted = side.cell.containers.filter((container) =>
        options.app !== undefined
          ? container.appGuid === options.app
          : container.handle === options.container ||
            [container.ipv4, container.ipv6].some((address) => address !== undefined && String(address) === options.container),
      );
      if (wanted.length === 0) {
        io.stderr(`asgc explain: no container ${options.container ?? `of app ${options.app}`} in ${directory}\n`);
        return setExit(EXIT.invalid);
      }
      const reviews: ContextReview[] = [];
      for (const container of wanted)
        for (const family of FAMILIES)
          for (const direction of DIRECTIONS) {
            const pieces = decideContext(side, container, family, direction);
            if (pieces === undefined) continue;
            const unknown = pieces.find((piece) => piece.verdict === 'unknown');
            const allowed = pieces.filter((piece) => piece.verdict === 'ACCEPT');
            reviews.push({
              container,
              family,
              direction,
              gained: allowed.map(accessOf),
              lost: [],
              ...(unknown !== undefined && {
                unknown: `${unknown.decidedBy?.chain ?? 'a chain'} rule ${unknown.decidedBy?.index ?? '?'} cannot be evaluated`,
              }),
            });
          }
      if (options.json) io.stdout(`${JSON.stringify(jsonOf(reviews), null, 2)}\n`);
      else {
        const grouped = groupReviews(reviews, EXPLAIN_VERBS);
        for (const group of grouped.groups) {
          io.stdout(`${groupTitle(group)}\n`);
          io.stdout(group.lines.map((line) => `  ${line}\n`).join(''));
        }
        for (const entry of grouped.unknown) io.stdout(`  IPv${entry.family} ${entry.direction}: unknown: ${entry.reason}\n`);
      }
      setExit(EXIT.ok);
    });
}
