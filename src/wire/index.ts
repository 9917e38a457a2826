/**
 * wire/: the stream layer, Ferry's counterpart of QEMU's QEMUFile.
 *
 * A buffered big-endian {@link ByteWriter} over a sink, a chunk-list {@link ByteReader} with synchronous reads and
 * re-run-on-underflow decoding, and a {@link RateLimiter} for `max-bandwidth`. The whole QEMU stream is
 * big-endian, so no method carries a `BE` suffix. Platform-neutral: this folder must not import `node:` modules
 * or any layer above it (it imports only the Channel *type* from transport/).
 *
 * @example
 * ```ts
 * import { ByteWriter, ByteReader } from "ferry/wire";
 * const w = new ByteWriter(channel);
 * w.u32(0x5145564d).u32(3);
 * await w.flush();
 * const r = new ByteReader(peerChannel);
 * const [magic, version] = await r.decode((r) => [r.u32(), r.u32()]);
 * ```
 *
 * @module
 */

export { ByteReader, type ByteReaderOptions, decodeText, NEED_MORE } from "./byte-reader.js";
export { asciiOrUtf8, ByteWriter, type ByteWriterOptions, encodeBytes, MemorySink } from "./byte-writer.js";
export { type Clock, defaultClock, RATE_LIMIT_WINDOW_MS, RateLimiter } from "./rate-limiter.js";
