// diff, apply and uninstall: compare with (and change) the live tables, or a saved iptables-save file.
import { type Command, CommanderError, Option } from 'commander';
import { describePlan } from '../diff/describe.js';
import { isEmptyPlan, type Plan, planChanges } from '../diff/plan.js';
import { renderPlanScripts } from '../diff/script.js';
import type { SetPlan } from '../diff/sets.js';
import { DataplaneError } from '../exec/dataplane-error.js';
import type { Backend } from '../iptables/backend.js';
import { detectBackend } from '../iptables/dataplane.js';
import { readTextFile } from '../exec/text-file.js';
import { formatSaveErrors, parseSaveText, savedTables } from '../iptables/save-file.js';
import { oneLine } from '../ingest/input-error.js';
import { type Result, fail, ok } from '../model/result.js';
import { applyFamily, hostDataplane, planFamily, planFamilySets, planUninstall, uninstallFamily } from '../reconcile/apply.js';
import type { HostDataplane } from '../reconcile/family.js';
import { describeSetOutcome } from '../reconcile/sets.js';
import { textRuleset } from '../render/save-text.js';
import type { Family } from '../model/address.js';
import { FAMILIES } from '../model/address.js';
import { DEFAULT_CONFIG } from '../model/cell.js';
import type { CompiledScenario } from '../scenario/pipeline.js';
import {
  type CommandContext,
  type DocumentOptions,
  EXIT,
  loadScenario,
  parseBackend,
  parseFamily,
  withDocumentOptions,
  withOptimizeOption,
} from './common.js';

interface LiveOptions extends DocumentOptions {
  family?: Family;
  netns?: string;
  backend?: Backend;
}

function withLiveOptions(command: Command): Command {
  return withOptimizeOption(withDocumentOptions(command))
    .addOption(new Option('--family <4|6>', 'only this family (default: both)').argParser(parseFamily))
    .option('--netns <name>', 'work on the tables of this network namespace')
    .addOption(
      new Option('--backend <nft|legacy>', 'iptables backend (default: the one the rules live in)').argParser(parseBackend),
    );
}

/** The host's (or a namespace's) tables and sets, on the backend given or the one the rules live in. */
export async function dataplaneFor(
  options: Pick<LiveOptions, 'netns' | 'backend'>,
): Promise<HostDataplane & { backend: Backend }> {
  const backend = options.backend ?? (await detectBackend(options.netns));
  return { ...hostDataplane(backend, options.netns === undefined ? {} : { namespace: options.netns }), backend };
}

/** A saved file that cannot be read or parsed is bad input (exit 1), as for `check --saved`. */
async function plansAgainstSavedFile(
  file: string,
  family: Family,
  scenario: CompiledScenario,
): Promise<Result<Plan[], string[]>> {
  const text = await readTextFile(file);
  if (!text.ok) return fail([`${oneLine(file)}: ${text.error.message}`]);
  const parsed = parseSaveText(text.value);
  if (!parsed.ok) return fail(formatSaveErrors(file, parsed.error));
  const live = savedTables(parsed.value);
  return ok(
    textRuleset(scenario.cell[family]).tables.map((table) =>
      planChanges(family, table, live.get(table.name), { prefix: scenario.config.chainPrefix }),
    ),
  );
}

/** Each family's plans (one per table): its changes, or that it is up to date. */
function printPlans(io: CommandContext['io'], plans: readonly Plan[], script: boolean): void {
  const pending = plans.filter((plan) => !isEmptyPlan(plan));
  for (const family of new Set(plans.map((plan) => plan.family))) {
    const changes = pending.filter((plan) => plan.family === family);
    if (script) {
      for (const plan of changes) {
        if (pending.length > 1)
          io.stdout(`# asgc: ip${family === 6 ? '6' : ''}tables-restore --noflush input (IPv${family}, ${plan.table})\n`);
        io.stdout(renderPlanScripts(plan).join(''));
      }
    } else {
      io.stdout(changes.length === 0 ? `IPv${family}: up to date\n` : changes.map(describePlan).join(''));
    }
  }
}

function printSetPlans(io: CommandContext['io'], plans: readonly SetPlan[], script: boolean): void {
  for (const plan of plans) {
    if (plan.script === '') continue;
    if (script) io.stdout(`# asgc: ipset restore input, run before the rules\n${plan.script}`);
    else {
      const parts = [
        plan.created.length > 0 && `create ${plan.created.join(' ')}`,
        plan.replaced.length > 0 && `rebuild and swap ${plan.replaced.join(' ')}`,
      ];
      io.stdout(`ipsets: ${parts.filter(Boolean).join('; ')}\n`);
    }
  }
}

export function addLiveCommands(program: Command, context: CommandContext): void {
  const { io, setExit } = context;

  const diff = async (directory: string, options: LiveOptions & { saved?: string; script?: boolean }) => {
    if (options.saved !== undefined && options.family === undefined) {
      throw new CommanderError(
        EXIT.usage,
        'asgc.usage',
        "error: --saved holds one family's iptables-save output: say which with --family 4 or --family 6",
      );
    }
    const scenario = await loadScenario(context, directory, options);
    if (scenario === undefined) return;
    const families = options.family === undefined ? FAMILIES : [options.family];
    const plans: Plan[] = [];
    const setPlans: SetPlan[] = [];
    try {
      if (options.saved !== undefined) {
        const saved = await plansAgainstSavedFile(options.saved, options.family as Family, scenario);
        if (!saved.ok) {
          io.stderr(saved.error.map((line) => `${line}\n`).join(''));
          return setExit(EXIT.invalid);
        }
        plans.push(...saved.value);
      } else {
        const dataplane = await dataplaneFor(options);
        for (const family of families) {
          const ownership = { prefix: scenario.config.chainPrefix };
          const sets = await planFamilySets(dataplane, scenario.cell[family], ownership);
          if (sets !== undefined) setPlans.push(sets);
          plans.push(...(await planFamily(dataplane, scenario.cell[family], ownership)));
        }
      }
    } catch (error) {
      if (!(error instanceof DataplaneError)) throw error;
      io.stderr(`asgc: ${error.message}\n`);
      return setExit(EXIT.dataplane);
    }
    printSetPlans(io, setPlans, options.script ?? false);
    printPlans(io, plans, options.script ?? false);
    const setsPending = setPlans.some((plan) => plan.script !== '');
    setExit(plans.every(isEmptyPlan) && !setsPending ? EXIT.ok : EXIT.pending);
  };

  withLiveOptions(
    program
      .command('diff')
      .description('show what apply would change: exit 0 when nothing, 3 when changes are pending')
      .argument('<scenario-dir>', 'directory holding the scenario documents'),
  )
    .option('--saved <file>', 'compare with this iptables-save output instead of the live tables (needs --family)')
    .option('--script', 'print the exact iptables-restore --noflush input instead of a summary')
    .action(diff);

  withLiveOptions(
    program
      .command('apply')
      .description('make the live tables match the scenario, changing only what differs; verify by reading back')
      .argument('<scenario-dir>', 'directory holding the scenario documents'),
  )
    .option('--dry-run', 'only show what would change (same as diff)')
    .action(async (directory: string, options: LiveOptions & { dryRun?: boolean }) => {
      if (options.dryRun) return diff(directory, options);
      const scenario = await loadScenario(context, directory, options);
      if (scenario === undefined) return;
      let failed = false;
      const dataplane = await dataplaneFor(options).catch((error: unknown) => {
        io.stderr(`asgc: ${(error as Error).message}\n`);
        return undefined;
      });
      if (dataplane === undefined) return setExit(EXIT.dataplane);
      // Each family is its own transaction: one failing does not stop the other.
      for (const family of options.family === undefined ? FAMILIES : [options.family]) {
        try {
          const outcome = await applyFamily(dataplane, scenario.cell[family], { prefix: scenario.config.chainPrefix });
          const lines = outcome.scripts.reduce((sum, script) => sum + script.split('\n').length - 3, 0);
          const sets = describeSetOutcome(family, outcome.sets);
          if (sets !== undefined) io.stdout(`${sets}\n`);
          io.stdout(
            outcome.scripts.length === 0
              ? `IPv${family}: up to date\n`
              : `IPv${family}: applied ${lines} lines in ${outcome.scripts.length} transaction(s) on ${dataplane.backend}, verified\n${outcome.plans.map(describePlan).join('')}`,
          );
        } catch (error) {
          if (!(error instanceof DataplaneError)) throw error;
          failed = true;
          io.stderr(`asgc: IPv${family}: ${error.message}\n`);
        }
      }
      setExit(failed ? EXIT.dataplane : EXIT.ok);
    });

  program
    .command('uninstall')
    .description(
      'remove every chain, hook and ipset asgc owns (by its prefix) and nothing else, one transaction per table and family',
    )
    .addOption(new Option('--family <4|6>', 'only this family (default: both)').argParser(parseFamily))
    .option('--netns <name>', 'work on the tables of this network namespace')
    .addOption(
      new Option('--backend <nft|legacy>', 'iptables backend (default: the one the rules live in)').argParser(parseBackend),
    )
    .option('--prefix <prefix>', 'the chain and ipset prefix asgc was configured with', DEFAULT_CONFIG.chainPrefix)
    .option('--dry-run', 'only show what would be removed: exit 0 when nothing, 3 when something')
    .action(async (options: Omit<LiveOptions, keyof DocumentOptions> & { prefix: string; dryRun?: boolean }) => {
      if (options.prefix === '') throw new CommanderError(EXIT.usage, 'asgc.usage', 'error: --prefix must not be empty');
      const dataplane = await dataplaneFor(options).catch((error: unknown) => {
        io.stderr(`asgc: ${(error as Error).message}\n`);
        return undefined;
      });
      if (dataplane === undefined) return setExit(EXIT.dataplane);
      const ownership = { prefix: options.prefix };
      let failed = false;
      let pending = false;
      for (const family of options.family === undefined ? FAMILIES : [options.family]) {
        try {
          if (options.dryRun) {
            const plan = await planUninstall(dataplane, family, ownership);
            const changes = plan.plans.filter((one) => !isEmptyPlan(one));
            if (plan.sets.length > 0) io.stdout(`ipsets: destroy ${plan.sets.join(' ')}\n`);
            io.stdout(changes.length === 0 ? `IPv${family}: nothing of asgc's\n` : changes.map(describePlan).join(''));
            pending ||= changes.length > 0 || plan.sets.length > 0;
            continue;
          }
          const outcome = await uninstallFamily(dataplane, family, ownership);
          if (outcome.destroyed.length > 0) io.stdout(`ipsets: destroyed ${outcome.destroyed.join(' ')}\n`);
          if (outcome.inUse.length > 0)
            io.stderr(`asgc: IPv${family}: ipsets left, a rule outside asgc's chains names them: ${outcome.inUse.join(' ')}\n`);
          io.stdout(
            outcome.rules.scripts.length === 0
              ? `IPv${family}: nothing of asgc's\n`
              : `IPv${family}: removed in ${outcome.rules.scripts.length} transaction(s) on ${dataplane.backend}, verified\n${outcome.rules.plans.map(describePlan).join('')}`,
          );
        } catch (error) {
          if (!(error instanceof DataplaneError)) throw error;
          failed = true;
          io.stderr(`asgc: IPv${family}: ${error.message}\n`);
        }
      }
      setExit(failed ? EXIT.dataplane : pending ? EXIT.pending : EXIT.ok);
    });
}
