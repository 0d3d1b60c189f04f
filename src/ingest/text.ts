// Bytes -> text for every document asgc reads: UTF-8 only, a leading BOM accepted, and bytes
// that are not UTF-8 an error at their offset (Buffer's decoder would replace them silently).
import { isUtf8 } from 'node:buffer';
import { type Result, fail, ok } from '../model/result.js';

const BOM = [0xef, 0xbb, 0xbf] as const;

/**
 * For a lead byte: the length of its sequence and the range its second byte must be in (the
 * Unicode standard's table of well-formed UTF-8, which rules out overlong forms and surrogates).
 */
function sequenceOf(lead: number): readonly [length: number, low: number, high: number] | undefined {
  if (lead < 0x80) return [1, 0, 0];
  if (lead >= 0xc2 && lead <= 0xdf) return [2, 0x80, 0xbf];
  if (lead === 0xe0) return [3, 0xa0, 0xbf];
  if (lead === 0xed) return [3, 0x80, 0x9f];
  if (lead >= 0xe1 && lead <= 0xef) return [3, 0x80, 0xbf];
  if (lead === 0xf0) return [4, 0x90, 0xbf];
  if (lead >= 0xf1 && lead <= 0xf3) return [4, 0x80, 0xbf];
  if (lead === 0xf4) return [4, 0x80, 0x8f];
  return undefined;
}

/** The first offset where `bytes` stop being UTF-8 (only called once isUtf8 said no). */
function firstInvalidOffset(bytes: Uint8Array): number {
  let index = 0;
  while (index < bytes.length) {
    const sequence = sequenceOf(bytes[index] as number);
    if (sequence === undefined) return index;
    const [length, low, high] = sequence;
    for (let next = 1; next < length; next++) {
      const byte = bytes[index + next];
      const [min, max] = next === 1 ? [low, high] : [0x80, 0xbf];
      if (byte === undefined || byte < min || byte > max) return index;
    }
    index += length;
  }
  return bytes.length;
}

/** A document's text; the error says why it is not text, without quoting the bytes. */
export function decodeText(bytes: Uint8Array): Result<string, string> {
  const start = bytes.length >= 3 && BOM.every((byte, index) => bytes[index] === byte) ? 3 : 0;
  const body = bytes.subarray(start);
  if (!isUtf8(body)) return fail(`is not UTF-8: invalid byte at offset ${start + firstInvalidOffset(body)}`);
  return ok(Buffer.from(body.buffer, body.byteOffset, body.byteLength).toString('utf8'));
}
