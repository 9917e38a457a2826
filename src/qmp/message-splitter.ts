/**
 * Splits a QMP byte stream into JSON messages, with caps, the way QEMU's JSON streamer does.
 *
 * QMP has no framing: a message ends where its outermost `{...}` closes, so several messages may share a line and
 * one message may span lines (QEMU: `qobject/json-streamer.c` counts braces and brackets outside strings). This
 * splitter does the same on raw bytes (all structural characters are ASCII, so UTF-8 needs no decoding to find
 * them) and adds recovery rules QEMU lacks, so a hostile or broken client can neither grow memory nor wedge its
 * connection:
 *
 * - A message longer than `maxMessageBytes`, nesting deeper than `maxDepth`, or a control character inside a
 *   string gives one error item, then the rest of the line is discarded: the next line starts fresh.
 * - Outside a message, any run of text that does not start with `{` or `[` is one item (QEMU parses top-level
 *   scalars too, then answers "QMP input must be a JSON object").
 * - At most one message is buffered (≤ `maxMessageBytes`) plus the chunks pushed and not yet scanned; the caller
 *   pulls items with {@link MessageSplitter.next} and pushes more input only when it runs dry.
 *
 * @module
 */

import { DEFAULT_MAX_DEPTH, NESTING_ERROR } from "./json.js";

/** Options of {@link MessageSplitter}. */
export interface MessageSplitterOptions {
  /** Largest message in bytes. Default 1 MiB (QEMU allows 64 MiB). */
  readonly maxMessageBytes: number;
  /** Deepest nesting of `{`/`[`. Default 64 (QEMU: 1024). */
  readonly maxDepth: number;
}

/** Default {@link MessageSplitterOptions.maxMessageBytes}: 1 MiB, far above any QMP command. */
export const DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024;

/** One item from the splitter: the text of a message, or an error to report for input that was discarded. */
export type SplitItem =
  | { readonly kind: "message"; readonly text: string }
  | { readonly kind: "error"; readonly desc: string };

const MODE = { Top: 0, Struct: 1, Scalar: 2, Skip: 3 } as const;
type Mode = (typeof MODE)[keyof typeof MODE];

const LF = 0x0a;

const decoder = new TextDecoder("utf-8", { fatal: true });

function isSpace(b: number): boolean {
  return b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d;
}

/**
 * The QMP message splitter. Push received chunks with {@link MessageSplitter.push}; pull items with
 * {@link MessageSplitter.next} until it returns `undefined`.
 *
 * @example
 * ```ts
 * const s = new MessageSplitter();
 * s.push(new TextEncoder().encode('{"execute": "stop"}{"execute"'));
 * s.next(); // { kind: "message", text: '{"execute": "stop"}' }
 * s.next(); // undefined: the second message is incomplete
 * ```
 */
export class MessageSplitter {
  readonly #maxBytes: number;
  readonly #maxDepth: number;
  /** Pushed chunks; the head one is scanned from #pos. */
  readonly #chunks: Uint8Array[] = [];
  #pos = 0;
  #mode: Mode = MODE.Top;
  /** 0, or the quote byte of the string being scanned. */
  #quote = 0;
  #escape = false;
  #depth = 0;
  /** Earlier pieces of the current message (from previous chunks) and their total length. */
  #pieces: Uint8Array[] = [];
  #pieceBytes = 0;
  /** Where the current message starts in the head chunk (0 when it began in an earlier chunk). */
  #start = 0;

  /**
   * @param options Caps.
   */
  constructor(options: Partial<MessageSplitterOptions> = {}) {
    this.#maxBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.#maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
  }

  /**
   * Adds received bytes. The splitter keeps views of `chunk`, so the caller must not reuse its memory.
   *
   * @param chunk Bytes received.
   */
  push(chunk: Uint8Array): void {
    if (chunk.byteLength > 0) this.#chunks.push(chunk);
  }

  /** Bytes held: unscanned input plus the partial message. */
  get bufferedBytes(): number {
    let n = this.#pieceBytes;
    for (const c of this.#chunks) n += c.byteLength;
    return n - this.#pos;
  }

  /**
   * Scans for the next item.
   *
   * @returns The next complete message or error, or `undefined` when more input is needed.
   */
  next(): SplitItem | undefined {
    while (this.#chunks.length > 0) {
      const chunk = this.#chunks[0] as Uint8Array;
      const item = this.#scan(chunk);
      if (item !== undefined) return item;
      // Chunk exhausted: keep the partial message's piece and move on.
      if (this.#mode === MODE.Struct || this.#mode === MODE.Scalar) {
        if (this.#start < chunk.byteLength) {
          this.#pieces.push(chunk.subarray(this.#start));
          this.#pieceBytes += chunk.byteLength - this.#start;
        }
      }
      this.#chunks.shift();
      this.#pos = 0;
      this.#start = 0;
    }
    return undefined;
  }

  #scan(chunk: Uint8Array): SplitItem | undefined {
    for (let i = this.#pos; i < chunk.byteLength; i++) {
      const b = chunk[i] as number;
      switch (this.#mode) {
        case MODE.Skip:
          if (b === LF) this.#mode = MODE.Top;
          continue;
        case MODE.Top:
          if (isSpace(b)) continue;
          this.#start = i;
          this.#pieces = [];
          this.#pieceBytes = 0;
          if (b === 0x7b || b === 0x5b) {
            this.#mode = MODE.Struct;
            this.#depth = 1;
          } else {
            this.#mode = MODE.Scalar;
            this.#quote = b === 0x22 || b === 0x27 ? b : 0;
            this.#escape = false;
          }
          if (this.#tooBig(i))
            return this.#overflow(chunk, i, `JSON parse error, message exceeds ${this.#maxBytes} bytes`);
          continue;
        case MODE.Scalar:
          if (this.#quote !== 0) {
            if (this.#escape) this.#escape = false;
            else if (b === 0x5c) this.#escape = true;
            else if (b === this.#quote) {
              this.#quote = 0;
              return this.#emit(chunk, i + 1);
            } else if (b < 0x20) {
              return this.#overflow(chunk, i, "JSON parse error, control character in string");
            }
          } else if (isSpace(b) || b === 0x7b || b === 0x5b || b === 0x22 || b === 0x27) {
            // The delimiter is not part of the scalar: it is scanned again as the start of what follows.
            return this.#emit(chunk, i);
          }
          if (this.#tooBig(i))
            return this.#overflow(chunk, i, `JSON parse error, message exceeds ${this.#maxBytes} bytes`);
          continue;
        default: // Struct
          if (this.#quote !== 0) {
            if (this.#escape) this.#escape = false;
            else if (b === 0x5c) this.#escape = true;
            else if (b === this.#quote) this.#quote = 0;
            else if (b < 0x20) return this.#overflow(chunk, i, "JSON parse error, control character in string");
          } else if (b === 0x22 || b === 0x27) {
            this.#quote = b;
          } else if (b === 0x7b || b === 0x5b) {
            if (++this.#depth > this.#maxDepth) return this.#overflow(chunk, i, NESTING_ERROR);
          } else if (b === 0x7d || b === 0x5d) {
            if (--this.#depth === 0) return this.#emit(chunk, i + 1);
          }
          if (this.#tooBig(i))
            return this.#overflow(chunk, i, `JSON parse error, message exceeds ${this.#maxBytes} bytes`);
      }
    }
    this.#pos = chunk.byteLength;
    return undefined;
  }

  #tooBig(i: number): boolean {
    return this.#pieceBytes + (i + 1 - this.#start) > this.#maxBytes;
  }

  /** Ends the current message at `end` (exclusive) in `chunk`. */
  #emit(chunk: Uint8Array, end: number): SplitItem {
    this.#pieces.push(chunk.subarray(this.#start, end));
    const total = this.#pieceBytes + (end - this.#start);
    let bytes: Uint8Array;
    if (this.#pieces.length === 1) {
      bytes = this.#pieces[0] as Uint8Array;
    } else {
      bytes = new Uint8Array(total);
      let off = 0;
      for (const p of this.#pieces) {
        bytes.set(p, off);
        off += p.byteLength;
      }
    }
    this.#reset(end);
    this.#mode = MODE.Top;
    try {
      return { kind: "message", text: decoder.decode(bytes) };
    } catch {
      return { kind: "error", desc: "JSON parse error, invalid UTF-8 sequence" };
    }
  }

  /** Drops the current message and the rest of its line; `i` is the offending byte. */
  #overflow(chunk: Uint8Array, i: number, desc: string): SplitItem {
    this.#reset(i + 1);
    this.#mode = chunk[i] === LF ? MODE.Top : MODE.Skip;
    return { kind: "error", desc };
  }

  #reset(pos: number): void {
    this.#pieces = [];
    this.#pieceBytes = 0;
    this.#depth = 0;
    this.#quote = 0;
    this.#escape = false;
    this.#pos = pos;
    this.#start = pos;
  }
}
