// A scenario directory as it was at a git revision, read with `git show` (no checkout): the
// "before" side of `asgc review --git REV`.
import { defaultRunner, type Runner } from '../exec/process.js';
import type { ScenarioTexts, SourceText } from '../ingest/cell.js';
import type { InputError } from '../ingest/input-error.js';
import { type Result, fail, ok } from '../model/result.js';
import { type DocumentName, SCENARIO_FILES } from './files.js';

export async function readScenarioAtRevision(
  revision: string,
  directory: string,
  run: Runner = defaultRunner,
): Promise<Result<ScenarioTexts, InputError[]>> {
  if (revision.startsWith('-')) return fail([{ file: directory, pointer: '', message: `--git ${revision}: not a revision` }]);
  const texts: Partial<Record<DocumentName, SourceText>> = {};
  for (const name of Object.keys(SCENARIO_FILES) as DocumentName[]) {
    const file = SCENARIO_FILES[name];
    const shown = await run(['git', '-C', directory, 'show', `${revision}:./${file}`]);
    const label = `${directory}/${file}@${revision}`;
    if (shown.code === 0) texts[name] = { file: label, text: shown.stdout };
    else if (!/does not exist|exists on disk, but not in/.test(shown.stderr))
      return fail([
        { file: label, pointer: '', message: `cannot be read with git: ${shown.stderr.trim().split('\n')[0] ?? ''}` },
      ]);
  }
  if (texts.containers === undefined)
    return fail([{ file: `${directory}/containers.json@${revision}`, pointer: '', message: 'is not in that revision' }]);
  return ok(texts);
}
