// asgc's command line. Commands only parse options, call the stages and print.
import { Command, CommanderError } from 'commander';
import { type CommandContext, EXIT, type Io } from './common.js';
import { addAgentCommand } from './agent-command.js';
import { addCheckCommand } from './check-command.js';
import { addCompileCommands } from './compile-commands.js';
import { addLiveCommands } from './live-commands.js';
import { addReviewCommands } from './review-command.js';

export { EXIT, type Io } from './common.js';

const processIo: Io = {
  stdout: (text) => process.stdout.write(text),
  stderr: (text) => process.stderr.write(text),
};

export function buildProgram(context: CommandContext): Command {
  const program = new Command('asgc')
    .description(
      'Compile Cloud Foundry ASGs and c2c policies to canonical iptables and ip6tables rulesets, and keep a cell in sync',
    )
    .configureOutput({ writeOut: context.io.stdout, writeErr: context.io.stderr })
    .exitOverride()
    .showHelpAfterError('(run with --help for usage)');
  addCompileCommands(program, context);
  addLiveCommands(program, context);
  addCheckCommand(program, context);
  addReviewCommands(program, context);
  addAgentCommand(program, context);
  return program;
}

/** Run the CLI; resolves to the exit code. */
export async function run(argv: readonly string[], io: Io = processIo): Promise<number> {
  let exitCode: number = EXIT.ok;
  const program = buildProgram({ io, setExit: (code) => void (exitCode = code) });
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

/** The process around run(): what bin/asgc and the single executable start. */
export function main(): void {
  // A closed pipe (asgc diff | head) ends the output quietly, as for any Unix tool.
  process.stdout.on('error', (error: NodeJS.ErrnoException) => {
    if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw error;
  });
  run(process.argv).then(
    (code) => void (process.exitCode = code),
    (error: unknown) => {
      process.stderr.write(`asgc: internal error: ${(error as Error).stack ?? String(error)}\n`);
      process.exitCode = EXIT.invalid;
    },
  );
}
