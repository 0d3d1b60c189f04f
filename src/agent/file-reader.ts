// Files the agent reads again every cycle. When a file holds the bytes it held last time, the
// text decoded then is returned again: the same string (so comparing it with the last cycle's
// is instant) and nothing new on the heap, which keeps an idle agent from churning memory
// with a copy of a many-megabyte document every few seconds.
import { open } from 'node:fs/promises';

export class FileReader {
  private readonly last = new Map<string, { readonly bytes: Buffer; readonly text: string }>();
  private scratch = Buffer.alloc(0);

  /** The file's text, or undefined when it does not exist; other failures throw. */
  async read(path: string): Promise<string | undefined> {
    let handle;
    try {
      handle = await open(path, 'r');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    try {
      const length = await this.readAll(handle);
      const bytes = this.scratch.subarray(0, length);
      const last = this.last.get(path);
      if (last !== undefined && last.bytes.equals(bytes)) return last.text;
      const text = bytes.toString('utf8');
      this.last.set(path, { bytes: Buffer.from(bytes), text });
      return text;
    } finally {
      await handle.close();
    }
  }

  /** Reads the whole file into the scratch buffer (growing it when the file grew), returns its length. */
  private async readAll(handle: Awaited<ReturnType<typeof open>>): Promise<number> {
    const { size } = await handle.stat();
    if (this.scratch.length < size + 1) this.scratch = Buffer.allocUnsafe(size + 1);
    let length = 0;
    for (;;) {
      if (length === this.scratch.length) {
        const larger = Buffer.allocUnsafe(this.scratch.length * 2);
        this.scratch.copy(larger);
        this.scratch = larger;
      }
      const { bytesRead } = await handle.read(this.scratch, length, this.scratch.length - length, length);
      if (bytesRead === 0) return length;
      length += bytesRead;
    }
  }
}
