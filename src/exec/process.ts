// The process edge: run a program with an argument vector (never a shell), feed stdin,
// collect output, bounded in time.
import { spawn } from 'node:child_process';

export interface ProcessResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

export interface RunOptions {
  readonly input?: string;
  readonly timeoutMs?: number;
  /** Extra environment (e.g. XTABLES_LOCKFILE), on top of this process's. */
  readonly env?: Readonly<Record<string, string>>;
}

export function runProcess(argv: readonly string[], options: RunOptions = {}): Promise<ProcessResult> {
  const [program, ...args] = argv;
  if (program === undefined) return Promise.reject(new Error('runProcess: empty argument vector'));
  return new Promise((resolve, reject) => {
    const env = options.env === undefined ? process.env : { ...process.env, ...options.env };
    const child = spawn(program, args, { stdio: ['pipe', 'pipe', 'pipe'], timeout: options.timeoutMs ?? 60_000, env });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(stdout).toString('utf8'),
        stderr: Buffer.concat(stderr).toString('utf8') + (signal ? `\n(killed by ${signal})` : ''),
      });
    });
    child.stdin.on('error', () => undefined); // the program may exit before reading everything
    child.stdin.end(options.input ?? '');
  });
}

/** How the edges run a command: one place that tests can record or fault. */
export type Runner = (argv: readonly string[], input?: string) => Promise<ProcessResult>;

export const defaultRunner: Runner = (argv, input) => runProcess(argv, input === undefined ? {} : { input });

/** A Runner that adds environment variables (e.g. a private XTABLES_LOCKFILE). */
export function runnerWithEnv(env: Readonly<Record<string, string>>): Runner {
  return (argv, input) => runProcess(argv, input === undefined ? { env } : { input, env });
}
