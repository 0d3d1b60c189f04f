// What every command shares: output, exit codes, the document options, loading a scenario.
import { type Command, InvalidArgumentError } from 'commander';
import { formatInputError, type InputError } from '../ingest/input-error.js';
import type { Family } from '../model/address.js';
import type { Backend } from '../iptables/backend.js';
import { type DocumentName, readScenario, type ScenarioLocation } from '../scenario/files.js';
import { type CompiledScenario, compileScenario, describeProblem, type ScenarioProblem } from '../scenario/pipeline.js';

/**
 * 0 ok (check: allowed); 1 invalid input (or golden files differ); 2 usage; 3 changes pending
 * (diff); 4 the dataplane failed; 5 check: denied; 6 check: unknown.
 */
export const EXIT = { ok: 0, invalid: 1, usage: 2, pending: 3, dataplane: 4, denied: 5, unknown: 6 } as const;

export interface Io {
  stdout(text: string): void;
  stderr(text: string): void;
}

export interface CommandContext {
  readonly io: Io;
  setExit(code: number): void;
}

export interface DocumentOptions {
  securityGroups?: string;
  policies?: string;
  containers?: string;
  endpoints?: string;
  config?: string;
  json?: boolean;
  /** false with --no-optimize (commands that compile). */
  optimize?: boolean;
}

export function parseFamily(value: string): Family {
  if (value === '4' || value === '6') return Number(value) as Family;
  throw new InvalidArgumentError('must be 4 or 6');
}

export function parseBackend(value: string): Backend {
  if (value === 'nft' || value === 'legacy') return value;
  throw new InvalidArgumentError('must be nft or legacy');
}

export function withDocumentOptions(command: Command): Command {
  return command
    .option('--security-groups <file>', 'policy-server security_groups response (default <dir>/security_groups.json)')
    .option('--policies <file>', 'policy-server policies response (default <dir>/policies.json)')
    .option('--containers <file>', 'container metadata, silk datastore format (default <dir>/containers.json)')
    .option('--endpoints <file>', 'IPv6 addresses of each app across the foundation, for IPv6 c2c (default <dir>/endpoints.json)')
    .option('--config <file>', 'asgc configuration (default <dir>/config.json)')
    .option('--json', 'report errors as a JSON array of {file, pointer, message}');
}

/** --no-optimize, for the commands that compile. */
export function withOptimizeOption(command: Command): Command {
  return command.option('--no-optimize', 'the plain form: one rule per destination and port, nothing merged or dropped');
}

export function location(directory: string | undefined, options: DocumentOptions, required: DocumentName[]): ScenarioLocation {
  const paths: Partial<Record<DocumentName, string>> = {};
  for (const name of ['securityGroups', 'policies', 'containers', 'endpoints', 'config'] as const) {
    const path = options[name];
    if (path !== undefined) paths[name] = path;
  }
  return { ...(directory !== undefined && { directory }), paths, required };
}

export function reportProblem(io: Io, json: boolean | undefined, problem: ScenarioProblem): void {
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

/** Read and compile a scenario; on invalid input, report it, set exit 1 and return undefined. */
export async function loadScenario(
  context: CommandContext,
  directory: string,
  options: DocumentOptions,
  { printed = true } = {},
): Promise<CompiledScenario | undefined> {
  const texts = await readScenario(location(directory, options, ['containers']));
  if (!texts.ok) {
    reportProblem(context.io, options.json, { kind: 'input', errors: texts.error });
    context.setExit(EXIT.invalid);
    return undefined;
  }
  const compiled = compileScenario(texts.value, { optimise: options.optimize !== false, printed });
  if (!compiled.ok) {
    reportProblem(context.io, options.json, compiled.error);
    context.setExit(EXIT.invalid);
    return undefined;
  }
  for (const warning of compiled.value.warnings) context.io.stderr(`asgc: warning: ${formatInputError(warning)}\n`);
  return compiled.value;
}
