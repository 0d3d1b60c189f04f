// asgc's command line. Commands only parse options, call the stages and print.
// Exit codes: 0 ok, 1 invalid input (or golden differences), 2 usage error.
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { InputError } from '../ingest/input-error.js';
import { ingestScenario } from '../ingest/cell.js';
import type { Family } from '../model/address.js';
import { FAMILIES } from '../model/address.js';
import { type DocumentName, readScenario, type ScenarioLocation } from '../scenario/files.js';
import { runGolden } from '../scenario/golden.js';
import { compileScenario, describeProblem, renderCell, RULES_FILE, type ScenarioProblem } from '../scenario/pipeline.js';

export const EXIT = { ok: 0, invalid: 1, usage: 2 } as const;

export interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
}

const processIo: Io = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

interface DocumentOptions {
  securityGroups?: string;
  policies?: string;
  containers?: string;
  config?: string;
  json?: boolean;
}

function parseFamily(value: string): Family {
  if (value === '4' || value === '6') return Number(value) as Family;
  throw new InvalidArgumentError('must be 4 or 6');
}

function withDocumentOptions(command: Command): Command {
  return command
    .option('--security-groups <file>', 'policy-server security_groups response (default <dir>/security_groups.json)')
    .option('--policies <file>', 'policy-server policies response (default <dir>/policies.json)')
    .option('--containers <file>', 'container metadata, silk datastore format (default <dir>/containers.json)')
    .option('--config <file>', 'asgc configuration (default <dir>/config.json)')
    .option('--json', 'report errors as a JSON array of {file, pointer, message}');
}

function location(directory: string | undefined, options: DocumentOptions, required: DocumentName[]): ScenarioLocation {
  const paths: Partial<Record<DocumentName, string>> = {};
  for (const name of ['securityGroups', 'policies', 'containers', 'config'] as const) {
    const path = options[name];
    if (path !== undefined) paths[name] = path;
  }
  return { ...(directory !== undefined && { directory }), paths, required };
}

function reportErrors(io: Io, json: boolean | undefined, problem: ScenarioProblem): void {
  if (json) {
    const errors: InputError[] =
      problem.kind === 'input'
        ? [...problem.errors]
        : problem.errors.map((error) => ({ file: '', pointer: '', message: error.message }));
    io.stderr(`${JSON.stringify(errors, null, 2)}\n`);
  } else {
    io.stderr(
      describeProblem(problem)
        .map((line) => `${line}\n`)
        .join(''),
    );
  }
}

const FAMILY_HEADER: Record<Family, string> = {
  4: '# asgc: iptables ruleset (IPv4), for iptables-restore',
  6: '# asgc: ip6tables ruleset (IPv6), for ip6tables-restore',
};

export function buildProgram(io: Io, setExit: (code: number) => void): Command {
  const program = new Command('asgc')
    .description('Compile Cloud Foundry ASGs and c2c policies to canonical iptables and ip6tables rulesets')
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');

  withDocumentOptions(
    program
      .command('compile')
      .description('compile a scenario and print (or write) the iptables-save text of each family')
      .argument('<scenario-dir>', 'directory holding security_groups.json, policies.json, containers.json, config.json'),
  )
    .addOption(
      new Option('--family <4|6>', 'print only this family, loadable as is by (ip6)iptables-restore').argParser(parseFamily),
    )
    .option('--out <dir>', 'write <dir>/iptables.rules and <dir>/ip6tables.rules instead of printing')
    .action(async (directory: string, options: DocumentOptions & { family?: Family; out?: string }) => {
      const texts = await readScenario(location(directory, options, ['containers']));
      if (!texts.ok) {
        reportErrors(io, options.json, { kind: 'input', errors: texts.error });
        return setExit(EXIT.invalid);
      }
      const compiled = compileScenario(texts.value);
      if (!compiled.ok) {
        reportErrors(io, options.json, compiled.error);
        return setExit(EXIT.invalid);
      }
      const rendered = renderCell(compiled.value);
      const families = options.family === undefined ? FAMILIES : [options.family];
      if (options.out !== undefined) {
        await mkdir(options.out, { recursive: true });
        for (const family of families) await writeFile(join(options.out, RULES_FILE[family]), rendered[family]);
        io.stderr(families.map((family) => `wrote ${join(options.out as string, RULES_FILE[family])}\n`).join(''));
      } else if (options.family !== undefined) {
        io.stdout(rendered[options.family]);
      } else {
        io.stdout(FAMILIES.map((family) => `${FAMILY_HEADER[family]}\n${rendered[family]}`).join(''));
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
      reportErrors(io, options.json, { kind: 'input', errors: cell.error });
      return setExit(EXIT.invalid);
    }
    const documents = texts.ok ? Object.values(texts.value).map((source) => source.file) : [];
    const summary = {
      valid: true,
      documents,
      securityGroups: cell.value.securityGroups.length,
      rules: cell.value.securityGroups.reduce((sum, group) => sum + group.rules.length, 0),
      policies: cell.value.policies.length,
      containers: cell.value.containers.length,
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

  return program;
}

/** Run the CLI; resolves to the exit code. */
export async function run(argv: readonly string[], io: Io = processIo): Promise<number> {
  let exitCode: number = EXIT.ok;
  const program = buildProgram(io, (code) => {
    exitCode = code;
  });
  try {
    await program.parseAsync([...argv]);
    return exitCode;
  } catch (error) {
    if (error instanceof CommanderError) {
      if (error.code === 'commander.helpDisplayed' || error.code === 'commander.version') return EXIT.ok;
      if (error.code === 'asgc.usage') io.stderr(`${error.message}\n`);
      return EXIT.usage;
    }
    io.stderr(`asgc: internal error: ${(error as Error).stack ?? String(error)}\n`);
    return EXIT.invalid;
  }
}
