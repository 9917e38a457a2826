/**
 * `npm run bench -- ram [--json] [--gib N] [--runs N]`: the RAM section's hot paths, each beside a baseline
 * measured in the same run.
 *
 * (a) precopy of 1 GiB of random RAM (START + first pass + END) through a ByteWriter into a null sink and into a
 *     file, beside a raw copy of the same bytes into a reused 4 MiB buffer and a plain write of the same GiB to a
 *     file;
 * (b) precopy of 1 GiB of written-but-zero RAM, in GB/s of guest RAM scanned, beside a wasm scan of every page
 *     and a `Buffer.compare` scan per MiB; and of 1 GiB that was never written (no scan at all);
 * (c) loading the stream of (a) back from its file into guest RAM, beside a plain sequential read of that file:
 *     with a generic source (a fresh Buffer per 4 MiB chunk), and with a receive ring inside the guest's wasm
 *     memory (node-perf-probes recommendation 5: the loader then moves pages with wasm `memory.copy`); plus the
 *     generic load into never-touched RAM, which adds the kernel's first-touch page faults.
 *
 * Files go to the OS temp directory and are deleted. GB/s = 10^9 bytes/s.
 */

import { randomFillSync } from "node:crypto";
import { type FileHandle, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createSharedMemory, RamBlock } from "../src/ram/ram-block.js";
import { RamDevice } from "../src/ram/ram-device.js";
import type { ByteSink, ByteSource } from "../src/transport/channel.js";
import { ByteReader } from "../src/wire/byte-reader.js";
import { ByteWriter } from "../src/wire/byte-writer.js";
import { type Figure, median, note } from "./_report.js";

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const CHUNK = 4 * MiB;
const BENCH = "ram";

function gbps(bytes: number, ms: number): number {
  return bytes / (ms * 1e6);
}

/** A throughput figure: `bytes` moved in the median of `ms` runs, beside the baseline's median of `baselineMs`. */
function gbpsFigure(metric: string, bytes: number, ms: number[], baseline: string, baselineMs: number[]): Figure {
  return {
    bench: BENCH,
    metric,
    value: gbps(bytes, median(ms)),
    unit: "GB/s",
    baseline,
    baselineValue: gbps(bytes, median(baselineMs)),
    higherIsBetter: true,
  };
}

/** Discards everything (after the writer has copied into its staging buffer). */
const nullSink: ByteSink = { write: () => Promise.resolve() };

/** Writes chunks at explicit positions, so several writes may be in flight on the thread pool. */
class FileSink implements ByteSink {
  readonly #fh: FileHandle;
  #pos = 0;
  constructor(fh: FileHandle) {
    this.#fh = fh;
  }
  write(chunk: Uint8Array): Promise<void> {
    const at = this.#pos;
    this.#pos += chunk.length;
    return this.#fh.write(chunk, 0, chunk.length, at).then(() => undefined);
  }
}

/** Receive ring of (c): slots inside the destination's wasm memory, after the block. */
const RING_SLOTS = 8;
const RING_SLOT = MiB;

/**
 * Reads a file with three reads ahead. Without `ring`, each chunk is a fresh 4 MiB Buffer the reader may keep.
 * With `ring` (1 MiB slots inside guest memory), slots are reused: safe here because the RAM loader keeps no
 * views and rewinds at most one record (< 4.3 KiB), so it never looks back more than one chunk, and a slot is
 * refilled only `RING_SLOTS - 3` chunks after it was handed out.
 */
class FileSource implements ByteSource {
  readonly #fh: FileHandle;
  readonly #size: number;
  readonly #ring: readonly Uint8Array[] | undefined;
  #pos = 0;
  #slot = 0;
  readonly #ahead: Promise<Uint8Array | null>[] = [];
  constructor(fh: FileHandle, size: number, ring?: readonly Uint8Array[]) {
    this.#fh = fh;
    this.#size = size;
    this.#ring = ring;
  }
  #next(): Promise<Uint8Array | null> {
    if (this.#pos >= this.#size) return Promise.resolve(null);
    const at = this.#pos;
    const ring = this.#ring;
    const buf = ring === undefined ? Buffer.allocUnsafeSlow(CHUNK) : (ring[this.#slot++ % ring.length] as Uint8Array);
    const n = Math.min(buf.length, this.#size - at);
    this.#pos += n;
    return this.#fh.read(buf, 0, n, at).then(({ bytesRead }) => buf.subarray(0, bytesRead));
  }
  read(): Promise<Uint8Array | null> {
    while (this.#ahead.length < 3) this.#ahead.push(this.#next());
    return this.#ahead.shift() as Promise<Uint8Array | null>;
  }
}

async function precopy(dev: RamDevice, sink: ByteSink): Promise<number> {
  const w = new ByteWriter(sink);
  await dev.saveSetup(w);
  await dev.saveLiveIterate(w, undefined, Number.POSITIVE_INFINITY);
  await dev.saveComplete(w);
  await w.flush();
  dev.saveCleanup();
  return w.offset;
}

async function timed<T>(fn: () => Promise<T>): Promise<[number, T]> {
  const t0 = performance.now();
  const v = await fn();
  return [performance.now() - t0, v];
}

/** Fills a block with pseudo-random bytes: 4 MiB from the CSPRNG, repeated with a per-chunk xor. */
function fillRandom(b: RamBlock): void {
  const seed = new Uint8Array(CHUNK);
  randomFillSync(seed);
  const seedWords = new Uint32Array(seed.buffer);
  const words = new Uint32Array(b.buffer, b.byteOffset, b.size / 4);
  for (let off = 0, k = 1; off < words.length; off += seedWords.length, k++) {
    const x = Math.imul(k, 0x9e3779b1);
    for (let i = 0; i < seedWords.length && off + i < words.length; i++) words[off + i] = (seedWords[i] as number) ^ x;
  }
  b.markDirty(0, b.size);
}

export async function run(args: string[], _json: boolean): Promise<Figure[]> {
  const gibArg = args.indexOf("--gib");
  const runsArg = args.indexOf("--runs");
  const size = Math.round((gibArg >= 0 ? Number(args[gibArg + 1]) : 1) * GiB);
  const runs = runsArg >= 0 ? Number(args[runsArg + 1]) : 3;
  const label = size === GiB ? "1GiB" : `${(size / GiB).toFixed(2)}GiB`;
  const figures: Figure[] = [];
  const file = join(tmpdir(), `ferry-bench-ram-${process.pid}.bin`);
  const rawFile = join(tmpdir(), `ferry-bench-ram-${process.pid}.raw`);

  try {
    // ------------------------------------------------------------------ (a) random RAM
    note(`ram: preparing ${label} of random RAM`);
    const src = new RamBlock("pc.ram", size);
    fillRandom(src);
    const dev = new RamDevice([src]);
    const staging = new Uint8Array(CHUNK);

    const tNull: number[] = [];
    const tCopy: number[] = [];
    const tFile: number[] = [];
    const tRawWrite: number[] = [];
    let streamBytes = 0;
    for (let i = 0; i < runs; i++) {
      const [copyMs] = await timed(async () => {
        for (let off = 0; off < size; off += CHUNK) staging.set(src.bytes.subarray(off, off + CHUNK));
      });
      tCopy.push(copyMs);
      const [nullMs, n] = await timed(() => precopy(dev, nullSink));
      tNull.push(nullMs);
      streamBytes = n;

      const rfh = await open(rawFile, "w");
      const [rawMs] = await timed(async () => {
        const pending: Promise<unknown>[] = [];
        for (let off = 0; off < size; off += CHUNK) {
          pending.push(rfh.write(src.bytes, off, Math.min(CHUNK, size - off), off));
          if (pending.length >= 4) await pending.shift();
        }
        await Promise.all(pending);
      });
      await rfh.close();
      tRawWrite.push(rawMs);
      await rm(rawFile, { force: true });

      const fh = await open(file, "w");
      const [fileMs] = await timed(() => precopy(dev, new FileSink(fh)));
      await fh.close();
      tFile.push(fileMs);
      note(
        `ram: run ${i + 1}: memcpy ${gbps(size, copyMs).toFixed(2)}, null ${gbps(size, nullMs).toFixed(2)}, ` +
          `raw write ${gbps(size, rawMs).toFixed(2)}, file ${gbps(size, fileMs).toFixed(2)} GB/s`,
      );
    }
    const stats = dev.stats;
    if (stats.normal !== size / 4096) throw new Error(`expected ${size / 4096} PAGE records, got ${stats.normal}`);
    figures.push(gbpsFigure(`precopy-${label}-random-null-sink`, size, tNull, "memcpy-into-4MiB-buffer", tCopy));
    figures.push(gbpsFigure(`precopy-${label}-random-to-file`, size, tFile, "plain-file-write", tRawWrite));

    // ------------------------------------------------------------------ (c) load it back from the file
    note(`ram: loading the ${(streamBytes / GiB).toFixed(3)} GiB stream back`);
    // One memory: the destination block, then the receive ring. Pre-fault the block (a fresh page costs ~3 µs at
    // first write, node-perf-probes part 2) so these figures measure the loader, not the kernel; the fresh-memory
    // figure is reported separately below.
    const dstMemory = createSharedMemory(size + RING_SLOTS * RING_SLOT);
    const dst = new RamBlock("pc.ram", size, { memory: dstMemory });
    const ring = Array.from(
      { length: RING_SLOTS },
      (_, i) => new Uint8Array(dst.buffer, size + i * RING_SLOT, RING_SLOT),
    );
    dst.ops.fill(dst.byteOffset, size, 1);
    dst.ops.fill(dst.byteOffset, size, 0);
    const dstDev = new RamDevice([dst]);
    const tLoad: number[] = [];
    const tRing: number[] = [];
    const tRead: number[] = [];
    const tReadBig: number[] = [];
    const bigTarget = Buffer.from(dst.buffer, 0, streamBytes);
    const buf = Buffer.allocUnsafeSlow(CHUNK);
    for (let i = 0; i < runs; i++) {
      const rfh = await open(file, "r");
      const [readMs] = await timed(async () => {
        let pos = 0;
        for (;;) {
          const { bytesRead } = await rfh.read(buf, 0, CHUNK, pos);
          if (bytesRead === 0) break;
          pos += bytesRead;
        }
      });
      await rfh.close();
      tRead.push(readMs);
      const bfh = await open(file, "r");
      const [readBigMs] = await timed(async () => {
        for (let pos = 0; pos < streamBytes; ) {
          const { bytesRead } = await bfh.read(bigTarget, pos, Math.min(CHUNK, streamBytes - pos), pos);
          if (bytesRead === 0) break;
          pos += bytesRead;
        }
      });
      await bfh.close();
      tReadBig.push(readBigMs);
      dst.ops.fill(dst.byteOffset, size, 0);
      let lfh = await open(file, "r");
      const [loadMs] = await timed(() => loadStream(dstDev, new FileSource(lfh, streamBytes)));
      await lfh.close();
      tLoad.push(loadMs);
      if (Buffer.compare(dst.bytes, src.bytes) !== 0) throw new Error("loaded RAM differs from the source");
      dst.ops.fill(dst.byteOffset, size, 0);
      lfh = await open(file, "r");
      const [ringMs] = await timed(() => loadStream(dstDev, new FileSource(lfh, streamBytes, ring)));
      await lfh.close();
      tRing.push(ringMs);
      if (Buffer.compare(dst.bytes, src.bytes) !== 0) throw new Error("loaded RAM differs from the source");
      note(
        `ram: run ${i + 1}: read ${gbps(streamBytes, readMs).toFixed(2)}, read into 1 GiB ${gbps(streamBytes, readBigMs).toFixed(2)}, load ${gbps(streamBytes, loadMs).toFixed(2)}, ` +
          `load via guest-memory ring ${gbps(streamBytes, ringMs).toFixed(2)} GB/s`,
      );
    }
    figures.push(gbpsFigure(`load-${label}-stream-from-file`, streamBytes, tLoad, "plain-sequential-file-read", tRead));
    figures.push(
      gbpsFigure(
        `load-${label}-stream-from-file-ring-in-guest-memory`,
        streamBytes,
        tRing,
        "plain-sequential-file-read",
        tRead,
      ),
    );
    figures.push(
      gbpsFigure(
        `load-${label}-stream-from-file-ring-in-guest-memory`,
        streamBytes,
        tRing,
        "plain-file-read-into-guest-sized-memory",
        tReadBig,
      ),
    );
    {
      const fresh = new RamBlock("pc.ram", size);
      const lfh = await open(file, "r");
      const [freshMs] = await timed(() => loadStream(new RamDevice([fresh]), new FileSource(lfh, streamBytes)));
      await lfh.close();
      figures.push(
        gbpsFigure(
          `load-${label}-stream-from-file-fresh-ram`,
          streamBytes,
          [freshMs],
          "plain-sequential-file-read",
          tRead,
        ),
      );
    }
    await rm(file, { force: true });

    // ------------------------------------------------------------------ (b) zero RAM
    note(`ram: preparing ${label} of written zero RAM`);
    // Reuse the destination block: write it (so every page is real memory), then zero it, then mark it written.
    const zero = dst;
    zero.ops.fill(zero.byteOffset, size, 0xa5);
    zero.ops.fill(zero.byteOffset, size, 0);
    zero.markDirty(0, size);
    const zeroDev = new RamDevice([zero]);
    const zeroView = Buffer.from(zero.buffer, zero.byteOffset, size);
    const zero1MiB = Buffer.alloc(MiB);
    const zeroPage = Buffer.alloc(4096);
    const tZero: number[] = [];
    const tWasm: number[] = [];
    const tCompare: number[] = [];
    for (let i = 0; i < runs; i++) {
      const [zeroMs] = await timed(() => precopy(zeroDev, nullSink));
      tZero.push(zeroMs);
      const ops = zero.ops;
      const [wasmMs, zeros] = await timed(async () => {
        let n = 0;
        for (let off = 0; off < size; off += 4096) if (ops.isZero(zero.byteOffset + off, 4096)) n++;
        return n;
      });
      tWasm.push(wasmMs);
      const [cmpMs, zeros2] = await timed(async () => {
        let n = 0;
        for (let off = 0; off < size; off += MiB) {
          if (zeroView.compare(zero1MiB, 0, MiB, off, off + MiB) === 0) {
            n += MiB / 4096;
            continue;
          }
          for (let p = off; p < off + MiB; p += 4096) if (zeroView.compare(zeroPage, 0, 4096, p, p + 4096) === 0) n++;
        }
        return n;
      });
      tCompare.push(cmpMs);
      if (zeros !== size / 4096 || zeros2 !== zeros) throw new Error("zero scan miscounted");
    }
    if (zeroDev.stats.duplicate !== size / 4096) throw new Error("zero RAM was not sent as ZERO records");
    figures.push(gbpsFigure(`precopy-${label}-zero-written-scan`, size, tZero, "wasm-simd-scan-per-page", tWasm));
    figures.push(gbpsFigure(`precopy-${label}-zero-written-scan`, size, tZero, "buffer-compare-per-MiB", tCompare));

    const never = new RamBlock("pc.ram", size);
    const neverDev = new RamDevice([never]);
    const tNever: number[] = [];
    for (let i = 0; i < runs; i++) tNever.push((await timed(() => precopy(neverDev, nullSink)))[0]);
    figures.push(gbpsFigure(`precopy-${label}-never-written`, size, tNever, "wasm-simd-scan-per-page", tWasm));
  } finally {
    await rm(file, { force: true });
    await rm(rawFile, { force: true });
  }
  return figures;
}

async function loadStream(dev: RamDevice, source: ByteSource): Promise<void> {
  const r = new ByteReader(source);
  dev.loadSetup();
  await dev.loadState(r, 4, "start");
  await dev.loadState(r, 4, "part");
  await dev.loadState(r, 4, "end");
  if (!(await r.atEnd())) throw new Error("bytes left after the END section");
  dev.loadCleanup();
}
