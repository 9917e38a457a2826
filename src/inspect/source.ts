/**
 * Random-access input for the inspector: a file (read with positional `readSync`), a byte array, or stdin spilled
 * to a capped temporary file. QEMU's device sections carry no length, so the inspector must read the vmdesc
 * trailer at the end of the stream before it can walk the sections: the input has to be seekable.
 *
 * @module
 */

import { closeSync, fstatSync, mkdtempSync, openSync, readSync, rmSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { MigrationError } from "../errors.js";

/** A seekable byte source. `readAt` may return fewer bytes than asked only at the end of the source. */
export interface RandomAccessSource {
  /** Total size in bytes. */
  readonly size: number;
  /** Reads up to `length` bytes at `position` into `target[offset…]`; returns the count read. */
  readAt(position: number, target: Uint8Array, offset: number, length: number): number;
}

/** A {@link RandomAccessSource} over bytes held in memory. */
export class BytesSource implements RandomAccessSource {
  readonly #bytes: Uint8Array;
  /** @param bytes The whole stream; not copied. */
  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }
  get size(): number {
    return this.#bytes.length;
  }
  readAt(position: number, target: Uint8Array, offset: number, length: number): number {
    const n = Math.max(0, Math.min(length, this.#bytes.length - position));
    target.set(this.#bytes.subarray(position, position + n), offset);
    return n;
  }
}

/** A {@link RandomAccessSource} over an open file descriptor. */
export class FileSource implements RandomAccessSource {
  readonly #fd: number;
  readonly #size: number;
  /** @param fd An open, readable, seekable file descriptor (not closed by this class). */
  constructor(fd: number) {
    this.#fd = fd;
    this.#size = fstatSync(fd).size;
  }
  get size(): number {
    return this.#size;
  }
  readAt(position: number, target: Uint8Array, offset: number, length: number): number {
    let done = 0;
    while (done < length) {
      const n = readSync(this.#fd, target, offset + done, length - done, position + done);
      if (n === 0) break;
      done += n;
    }
    return done;
  }
}

/** The largest stdin stream {@link openInput} spills to a temporary file by default: 64 GiB. */
export const DEFAULT_MAX_SPILL_BYTES = 64 * 1024 ** 3;

/** An opened inspector input. Call {@link OpenedInput.close} when done. */
export interface OpenedInput {
  /** The byte source. */
  readonly source: RandomAccessSource;
  /** The file to read (the spill file for stdin), or undefined for bytes in memory. */
  readonly path: string | undefined;
  /** Whether stdin was spilled to a temporary file (and how large it was). */
  readonly spilled: boolean;
  /** Closes the file and removes a spill file. */
  close(): void;
}

/** What {@link openInput} accepts: a path, `-` for stdin, or the stream's bytes. */
export type StreamInput = string | Uint8Array;

/** Options of {@link openInput}. */
export interface OpenInputOptions {
  /** Cap on bytes read from stdin (default {@link DEFAULT_MAX_SPILL_BYTES}); more fails with `LIMIT_EXCEEDED`. */
  readonly maxSpillBytes?: number;
  /** Called with a human note (e.g. "stdin spilled to …"). */
  readonly onNote?: (msg: string) => void;
  /** The stream to read for `-` (default `process.stdin`). */
  readonly stdin?: AsyncIterable<Uint8Array>;
}

/**
 * Opens a stream input. A path is opened read-only; `-` reads stdin into a temporary file first (a pipe cannot be
 * read from the end, and the vmdesc trailer must be read before the sections), capped by `maxSpillBytes`.
 *
 * @param input A path, `-`, or bytes.
 * @param options Spill cap and note callback.
 * @returns The opened input.
 * @throws MigrationError `TRANSPORT` when the file cannot be opened, `LIMIT_EXCEEDED` when stdin is over the cap.
 */
export async function openInput(input: StreamInput, options: OpenInputOptions = {}): Promise<OpenedInput> {
  if (input instanceof Uint8Array) {
    return { source: new BytesSource(input), path: undefined, spilled: false, close: () => undefined };
  }
  if (input !== "-") {
    let fd: number;
    try {
      fd = openSync(input, "r");
    } catch (e) {
      throw new MigrationError("TRANSPORT", `Cannot open stream "${input}": ${(e as Error).message}`, { cause: e });
    }
    let closed = false;
    return {
      source: new FileSource(fd),
      path: input,
      spilled: false,
      close: () => {
        if (!closed) closeSync(fd);
        closed = true;
      },
    };
  }
  const cap = options.maxSpillBytes ?? DEFAULT_MAX_SPILL_BYTES;
  const dir = mkdtempSync(join(tmpdir(), "ferry-inspect-"));
  const path = join(dir, "stdin.mig");
  const fd = openSync(path, "w+");
  let total = 0;
  try {
    const stdin = options.stdin ?? (process.stdin as AsyncIterable<Uint8Array>);
    for await (const chunk of stdin) {
      total += chunk.length;
      if (total > cap) {
        throw new MigrationError(
          "LIMIT_EXCEEDED",
          `Cannot read stream from stdin: it is larger than the spill limit of ${cap} bytes`,
          { offset: cap },
        );
      }
      let done = 0;
      while (done < chunk.length) done += writeSync(fd, chunk, done, chunk.length - done);
    }
  } catch (e) {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  options.onNote?.(`stdin is not seekable: spilled ${total} bytes to a temporary file (limit ${cap} bytes)`);
  let closed = false;
  return {
    source: new FileSource(fd),
    path,
    spilled: true,
    close: () => {
      if (!closed) {
        closeSync(fd);
        rmSync(dir, { recursive: true, force: true });
      }
      closed = true;
    },
  };
}
