// compile, validate, golden: the commands that never touch the system's firewall.
import { formatInputError } from '../ingest/input-error.js';
import { type Command, CommanderError, Option } from 'commander';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ingestScenario } from '../ingest/cell.js';
import type { Family } from '../model/address.js';
import { FAMILIES } from '../model/address.js';
import { readScenario } from '../scenario/files.js';
import { runGolden } from '../scenario/golden.js';
import { compileScenario, IPSETS_FILE, renderCell, renderCellSets, RULES_FILE } from '../scenario/pipeline.js';
import { reviewCells } from '../check/review.js';
import { groupReviews, renderReview } from '../check/review-text.js';
import { goldenSide, sideOf } from './review-command.js';
import {
  type CommandContext,
  type DocumentOptions,
  EXIT,
  loadScenario,
  location,
  parseFamily,
  reportProblem,
  withDocumentOptions,
  withOptimizeOption,
} from './common.js';

const FAMILY_HEADER: Record<Family, string> = {
  4: '# asgc: iptables ruleset (IPv4), for iptables-restore',
  6: '# asgc: ip6tables ruleset (IPv6), for ip6tables-restore',
};
const IPSETS_HEADER = '# asgc: the ipsets the rules name, for ipset restore (load them first)';

/** What the golden diff of a scenario means for access: the review of golden (before) against rules/ (after). */
async function goldenReview(scenarioDirectory: string, goldenDirectory: string): Promise<string> {
  const texts = await readScenario({ directory: scenarioDirectory, required: ['containers'] });
  const compiled = texts.ok ? compileScenario(texts.value) : undefined;
  if (compiled === undefined || !compiled.ok) return '  (no review: the scenario does not compile)\n';
  const before = await goldenSide(goldenDirectory, compiled.value.policy);
  if (!before.ok) return `  (no review: ${before.error.join('; ')})\n`;
  const review = renderReview(groupReviews(reviewCells(before.value, sideOf(compiled.value))), false);
  return `review (golden -> rules):\n${review.replace(/^/gm, '  ')}`;
}

export function addCompileCommands(program: Command, { io, setExit }: CommandContext): void {
  withOptimizeOption(
    withDocumentOptions(
      program
        .command('compile')
        .description('compile a scenario and print (or write) the iptables-save text of each family')
        .argument('<scenario-dir>', 'directory holding security_groups.json, policies.json, containers.json, config.json'),
    ),
  )
    .addOption(
      new Option('--family <4|6>', 'print only this family, loadable as is by (ip6)iptables-restore').argParser(parseFamily),
    )
    .option('--out <dir>', 'write <dir>/iptables.rules, <dir>/ip6tables.rules (and <dir>/ipsets.rules) instead of printing')
    .action(async (directory: string, options: DocumentOptions & { family?: Family; out?: string }) => {
      const compiled = await loadScenario({ io, setExit }, directory, options);
      if (compiled === undefined) return;
      const rendered = renderCell(compiled.cell);
      const families = options.family === undefined ? FAMILIES : [options.family];
      const sets = renderCellSets(compiled.cell, families);
      if (options.out !== undefined) {
        const outputs = families.map((family) => [RULES_FILE[family], rendered[family]] as const);
        if (sets !== undefined) outputs.push([IPSETS_FILE, sets]);
        await mkdir(options.out, { recursive: true });
        for (const [file, text] of outputs) await writeFile(join(options.out, file), text);
        io.stderr(outputs.map(([file]) => `wrote ${join(options.out as string, file)}\n`).join(''));
      } else if (options.family !== undefined) {
        // Loadable as is by (ip6)iptables-restore: the sets it needs are named in a comment only.
        const needed = compiled.cell[options.family].sets ?? [];
        if (needed.length > 0)
          io.stdout(
            `# asgc: load the ipsets first (asgc compile --out DIR writes them): ${needed.map((set) => set.name).join(' ')}\n`,
          );
        io.stdout(rendered[options.family]);
      } else {
        io.stdout(FAMILIES.map((family) => `${FAMILY_HEADER[family]}\n${rendered[family]}`).join(''));
        if (sets !== undefined) io.stdout(`${IPSETS_HEADER}\n${sets}`);
      }
      setExit(EXIT.ok);
    });

  withDocumentOptions(
    program
      .command('validate')
      .description('check input documents only; any subset of them (e.g. only --security-groups FILE)')
      .argument('[scenario-dir]', 'directory holding the documents'),
  ).action(async (directory: string | undefined, options: DocumentOptions) => {
    const given = location(directory, options, []);
    if (directory === undefined && Object.keys(given.paths ?? {}).length === 0) {
      throw new CommanderError(EXIT.usage, 'asgc.usage', 'error: give a scenario directory or at least one document option');
    }
    const texts = await readScenario(given);
    const cell = texts.ok ? ingestScenario(texts.value) : texts;
    if (!cell.ok) {
      reportProblem(io, options.json, { kind: 'input', errors: cell.error });
      return setExit(EXIT.invalid);
    }
    const documents = texts.ok ? Object.values(texts.value).map((source) => source.file) : [];
    const { cell: policy, warnings } = cell.value;
    for (const warning of warnings) io.stderr(`asgc: warning: ${formatInputError(warning)}\n`);
    const summary = {
      valid: true,
      documents,
      securityGroups: policy.securityGroups.length,
      rules: policy.securityGroups.reduce((sum, group) => sum + group.rules.length, 0),
      policies: policy.policies.length,
      containers: policy.containers.length,
    };
    io.stdout(
      options.json
        ? `${JSON.stringify(summary)}\n`
        : `valid: ${documents.join(', ')} (${summary.securityGroups} security groups, ${summary.rules} rules, ${summary.policies} policies, ${summary.containers} containers)\n`,
    );
    setExit(EXIT.ok);
  });

  program
    .command('golden')
    .description('recompile every scenario in rules/ and compare with golden/ (or rewrite golden/ with --update)')
    .option('--rules <dir>', 'scenario inputs', 'rules')
    .option('--golden <dir>', 'expected outputs', 'golden')
    .option('--update', 'rewrite golden files that differ, remove those without a scenario')
    .action(async (options: { rules: string; golden: string; update?: boolean }) => {
      const outcomes = await runGolden(options.rules, options.golden, options.update ?? false);
      let failed = false;
      for (const outcome of outcomes) {
        io.stdout(`${outcome.status.padEnd(8)} ${outcome.scenario}\n`);
        if (outcome.status === 'differs') {
          failed = true;
          for (const diff of outcome.diffs) io.stdout(`--- ${diff.file}\n${diff.lines.join('\n')}\n`);
          io.stdout(await goldenReview(join(options.rules, outcome.scenario), join(options.golden, outcome.scenario)));
        } else if (outcome.status === 'failed') {
          failed = true;
          io.stdout(outcome.problems.map((line) => `  ${line}\n`).join(''));
        } else if (outcome.status === 'stale') {
          failed = true;
        }
      }
      if (failed) io.stderr('golden files differ from what rules/ compiles to; review, then run: asgc golden --update\n');
      setExit(failed ? EXIT.invalid : EXIT.ok);
    });
}
