// Files the agent reads again every cycle. When a file holds what it held last time, the text
// decoded then is returned again: the same string (so comparing it with the last cycle's is
// instant) and no new one made. A file whose status (inode, size, change and modification
// times) is as last time, and was already old then, is not read at all; one read again is
// compared by digest before it is decoded. Only the text and the digest are kept, never a
// copy of the bytes: a many-megabyte document is held once.
import { createHash } from 'node:crypto';
import { open, stat } from 'node:fs/promises';
import { decodeText } from '../ingest/text.js';

/**
 * How old a file's modification time must be, when it is read, for its status to stand for
 * its content later: file systems stamp times at the clock tick, so two writes within a tick
 * can leave the same status (git's "racy" entries).
 */
const SETTLED_MS = 2_000;

interface Known {
  readonly status: string;
  /** The status was taken when the file was already older than SETTLED_MS. */
  readonly settled: boolean;
  /** SHA-1 of the bytes. */
  readonly digest: string;
  readonly text: string;
}

export class FileReader {
  private readonly last = new Map<string, Known>();

  constructor(private readonly now: () => number = Date.now) {}

  /** The file's text, or undefined when it does not exist; other failures throw. */
  async read(path: string): Promise<string | undefined> {
    const before = await statusOf(path);
    if (before === undefined) {
      this.last.delete(path);
      return undefined;
    }
    const known = this.last.get(path);
    if (known !== undefined && known.settled && known.status === before.status) return known.text;
    let handle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    let bytes: Buffer;
    try {
      bytes = await handle.readFile();
    } finally {
      await handle.close();
    }
    const digest = createHash('sha1').update(bytes).digest('base64');
    let text = known?.digest === digest ? known.text : undefined;
    if (text === undefined) {
      const decoded = decodeText(bytes);
      if (!decoded.ok) throw new Error(decoded.error);
      text = decoded.value;
    }
    this.last.set(path, { status: before.status, settled: this.now() - before.modifiedMs > SETTLED_MS, digest, text });
    return text;
  }
}

async function statusOf(path: string): Promise<{ status: string; modifiedMs: number } | undefined> {
  try {
    const status = await stat(path, { bigint: true });
    return {
      status: `${status.dev}:${status.ino}:${status.size}:${status.mtimeNs}:${status.ctimeNs}`,
      modifiedMs: Number(status.mtimeMs),
    };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
