// JSON text -> value, with a position-bearing error that names the file.
import { type Result, fail, ok } from '../model/result.js';
import type { InputError } from './input-error.js';

export function parseJson(text: string, file: string): Result<unknown, InputError> {
  try {
    return ok(JSON.parse(text) as unknown);
  } catch (error) {
    const message = (error as Error).message;
    const position = /position (\d+)/.exec(message);
    let where = '';
    if (position) {
      const offset = Number(position[1]);
      const before = text.slice(0, offset);
      const line = before.split('\n').length;
      const column = offset - before.lastIndexOf('\n');
      where = ` (line ${line}, column ${column})`;
    } else if (text.trim() === '') {
      return fail({ file, pointer: '', message: 'is empty, not a JSON document' });
    }
    return fail({ file, pointer: '', message: `is not valid JSON${where}: ${message}` });
  }
}
