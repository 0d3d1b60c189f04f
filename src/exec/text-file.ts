// The file-system edge for documents: a file's bytes, checked to be UTF-8 text.
import { readFile } from 'node:fs/promises';
import { decodeText } from '../ingest/text.js';
import { type Result, fail } from '../model/result.js';

export interface TextFileError {
  /** The file does not exist (callers with optional documents ignore it). */
  readonly missing: boolean;
  /** Starts with a verb, to follow the file's name: "cannot be read: …", "is not UTF-8: …". */
  readonly message: string;
}

export async function readTextFile(path: string): Promise<Result<string, TextFileError>> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (error as Error).message;
    return fail({ missing: code === 'ENOENT', message: `cannot be read: ${reason}` });
  }
  const text = decodeText(bytes);
  return text.ok ? text : fail({ missing: false, message: text.error });
}
