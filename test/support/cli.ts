// The CLI run in-process, as `asgc <argv>` would run, with its output and exit code.
import { run } from '../../src/cli/main.js';

export async function asgc(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await run(['node', 'asgc', ...argv], { stdout: (t) => void (stdout += t), stderr: (t) => void (stderr += t) });
  return { code, stdout, stderr };
}
