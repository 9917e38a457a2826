/**
 * `npm run bench -- inspect [--json] [--gib N] [--runs N] [--dir DIR]`: the inspector's hot paths on a 1 GiB stream, each
 * beside a plain sequential read of the same file (8 MiB `readSync`s) measured in the same run.
 *
 * The stream is written by Ferry's own saver (header, configuration, RAM START/PART/END with 1 GiB of
 * pseudo-random RAM plus one zero page in eight, globalstate, vmdesc) to the OS temp directory, read once to
 * warm the page cache, and deleted afterwards (`--dir` picks the directory, e.g. a tmpfs). Figures: `check` (walk every record, verify framing) and
 * `--extract-ram` (the same walk writing the block to a sparse file). GB/s = 10^9 bytes of stream per second.
 * Target: each ≥ 60% of the plain read. Extraction also writes the block, so it is shown beside a plain sequential
 * write of the block's bytes too (scaled to stream bytes), which bounds it on a disk slower to write than to read.
 */

import { randomFillSync } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readSync, rmSync, statSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { analyzeSource } from "../src/inspect/analyze.js";
import { checkSource } from "../src/inspect/check.js";
import { RamExtractor } from "../src/inspect/extract.js";
import { FileSource } from "../src/inspect/source.js";
import { RamBlock } from "../src/ram/ram-block.js";
import { RamDevice } from "../src/ram/ram-device.js";
import { GLOBAL_STATE_ID, globalStateHandlers } from "../src/savevm/global-state.js";
import { Registry } from "../src/savevm/registry.js";
import { StreamSaver } from "../src/savevm/stream-saver.js";
import type { ByteSink } from "../src/transport/channel.js";
import { ByteWriter } from "../src/wire/byte-writer.js";
import { type Figure, median, note } from "./_report.js";

const GiB = 1024 ** 3;
const MiB = 1024 ** 2;
const BENCH = "inspect";

class FdSink implements ByteSink {
  readonly #fd: number;
  constructor(fd: number) {
    this.#fd = fd;
  }
  write(chunk: Uint8Array): Promise<void> {
    let off = 0;
    while (off < chunk.length) off += writeSync(this.#fd, chunk, off, chunk.length - off);
    return Promise.resolve();
  }
}

async function writeStream(path: string, size: number): Promise<void> {
  const ram = new RamBlock("pc.ram", size);
  const seed = new Uint8Array(4 * MiB);
  randomFillSync(seed);
  const page = 4096;
  for (let off = 0, k = 0; off < size; off += page, k++) {
    if (k % 8 === 7) continue; // leave one page in eight zero
    const s = (k * 4099) % (seed.length - page);
    ram.bytes.set(seed.subarray(s, s + page), off);
  }
  ram.markDirty(0, size);
  const registry = new Registry();
  registry.registerIterative(new RamDevice([ram]));
  registry.registerState(GLOBAL_STATE_ID, globalStateHandlers({ runState: () => "paused", onLoad: () => {} }));
  const fd = openSync(path, "w");
  try {
    const w = new ByteWriter(new FdSink(fd));
    const s = new StreamSaver(w, registry, { machineType: "ferry-bench-1.0" });
    s.writeHeader();
    await s.setup();
    await s.iterate(undefined, Number.POSITIVE_INFINITY);
    await s.complete();
    await w.flush();
  } finally {
    closeSync(fd);
  }
}

function plainRead(path: string): number {
  const buf = new Uint8Array(8 * MiB);
  const fd = openSync(path, "r");
  let total = 0;
  try {
    for (;;) {
      const n = readSync(fd, buf, 0, buf.length, total);
      if (n === 0) break;
      total += n;
    }
  } finally {
    closeSync(fd);
  }
  return total;
}

/** Writes `bytes` bytes to a fresh file from one 4 MiB buffer (what extraction must at least do). */
function plainWrite(path: string, bytes: number): void {
  const buf = new Uint8Array(4 * MiB).fill(1);
  const fd = openSync(path, "w");
  try {
    for (let off = 0; off < bytes; off += buf.length) {
      const n = Math.min(buf.length, bytes - off);
      let done = 0;
      while (done < n) done += writeSync(fd, buf, done, n - done, off + done);
    }
  } finally {
    closeSync(fd);
  }
  rmSync(path);
}

function timed(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

/** Runs the benchmark. */
export async function run(args: string[], _json: boolean): Promise<Figure[]> {
  const gibArg = args.indexOf("--gib");
  const runsArg = args.indexOf("--runs");
  const size = Math.round((gibArg >= 0 ? Number(args[gibArg + 1]) : 1) * GiB);
  const runs = runsArg >= 0 ? Number(args[runsArg + 1]) : 3;
  const dirArg = args.indexOf("--dir");
  const base = dirArg >= 0 ? (args[dirArg + 1] as string) : tmpdir();
  const label = size === GiB ? "1GiB" : `${(size / GiB).toFixed(2)}GiB`;
  const dir = mkdtempSync(join(base, "ferry-bench-inspect-"));
  const file = join(dir, "stream.mig");
  try {
    note(`inspect: writing a ${label} stream`);
    await writeStream(file, size);
    const bytes = statSync(file).size;
    plainRead(file); // warm the page cache
    const tRead: number[] = [];
    const tCheck: number[] = [];
    const tExtract: number[] = [];
    const tWrite: number[] = [];
    for (let i = 0; i < runs; i++) {
      tRead.push(timed(() => plainRead(file)));
      tWrite.push(timed(() => plainWrite(join(dir, "w.bin"), size)));
      const fd = openSync(file, "r");
      try {
        const src = new FileSource(fd);
        tCheck.push(
          timed(() => {
            const r = checkSource(src);
            if (!r.ok) throw r.error;
          }),
        );
        const out = join(dir, `x${i}`);
        tExtract.push(
          timed(() => {
            const ex = new RamExtractor(out, 4096);
            analyzeSource(src, { ram: ex });
            ex.finish();
          }),
        );
        rmSync(out, { recursive: true, force: true });
      } finally {
        closeSync(fd);
      }
    }
    const gbps = (ms: number): number => bytes / (ms * 1e6);
    const read = gbps(median(tRead));
    return [
      {
        bench: BENCH,
        metric: `check-${label}`,
        value: gbps(median(tCheck)),
        unit: "GB/s",
        baseline: "sequential-read",
        baselineValue: read,
        higherIsBetter: true,
      },
      {
        bench: BENCH,
        metric: `extract-ram-${label}`,
        value: gbps(median(tExtract)),
        unit: "GB/s",
        baseline: "sequential-read",
        baselineValue: read,
        higherIsBetter: true,
      },
      {
        bench: BENCH,
        metric: `extract-ram-${label}`,
        value: gbps(median(tExtract)),
        unit: "GB/s",
        baseline: "sequential-write",
        baselineValue: (size / (median(tWrite) * 1e6)) * (bytes / size),
        higherIsBetter: true,
      },
    ];
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
