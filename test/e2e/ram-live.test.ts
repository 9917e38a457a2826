/**
 * End-to-end live RAM: a worker thread dirties guest RAM the way a vCPU does while a StreamSaver writes several
 * PART passes into a channel that a destination loads concurrently; after the writer stops, the END section
 * carries the rest, and the destination's RAM equals the source's RAM at stop time.
 */

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { after, suite, test } from "node:test";
import type { RamBlock } from "../../src/ram/ram-block.js";
import { type LoadedSection, loadVm, StreamSaver } from "../../src/savevm/index.js";
import { createChannelPair } from "../../src/transport/index.js";
import { ByteWriter } from "../../src/wire/byte-writer.js";
import { SyntheticMachine, sameState } from "../support/synthetic-machine.js";

const hashBlocks = (blocks: readonly RamBlock[]): string[] =>
  blocks.map((b) => createHash("sha256").update(b.bytes).digest("hex"));

void suite("StreamSaver with a live writer", () => {
  const machines: SyntheticMachine[] = [];
  after(async () => {
    for (const m of machines) await m.dispose();
  });

  test("RAM dirtied during several iterate() passes loads equal to the source at stop time", async () => {
    const src = new SyntheticMachine({ blocksMiB: [8, 2], dirtyRate: 0 });
    const dst = new SyntheticMachine({ blocksMiB: [8, 2] });
    machines.push(src, dst);
    src.fill(21);
    await src.control.cont();
    const writesAtStart = src.writes;

    const [a, b] = createChannelPair({ highWaterMark: 256 * 1024 });
    const sections: LoadedSection[] = [];
    const loading = loadVm(dst, b, { onSection: (s) => sections.push(s) });
    const w = new ByteWriter(a);
    const saver = new StreamSaver(w, src.registry, src.config);
    const dirtiedPerPass: number[] = [];
    let hashesAtStop: string[];
    try {
      saver.writeHeader();
      await saver.setup();
      for (let pass = 0; pass < 5; pass++) {
        // A short budget per pass, so the first passes end with pages left, and later ones find re-dirtied pages.
        await saver.iterate(undefined, performance.now() + 20);
        await w.flush();
        saver.pendingExact(); // the dirty sync between passes
        dirtiedPerPass.push(src.ram.stats.lastSyncDirtyPages);
        await new Promise((r) => setTimeout(r, 10));
      }
      await src.control.stop("paused");
      hashesAtStop = hashBlocks(src.blocks);
      await saver.complete();
      await w.flush();
    } finally {
      saver.cleanup();
    }
    await a.end();
    const result = await loading;

    // The race was real: the worker wrote while passes ran, and syncs found re-dirtied pages.
    assert.ok(src.writes - writesAtStart > 1000, `only ${src.writes - writesAtStart} writes during the passes`);
    assert.ok(
      dirtiedPerPass.some((n) => n > 0),
      `no pass found dirty pages: ${dirtiedPerPass.join(",")}`,
    );
    const pages = src.blocks.reduce((n, x) => n + x.pages, 0);
    const stats = src.ram.stats;
    assert.ok(stats.normal + stats.duplicate > pages, "no page was sent twice");
    assert.deepEqual(
      sections.filter((s) => s.idstr === "ram").map((s) => s.type),
      ["start", "part", "part", "part", "part", "part", "end"],
    );
    assert.equal(result.bytes, w.offset);

    // The destination equals the source as it was when the writer stopped, and the source did not move since.
    assert.deepEqual(hashBlocks(src.blocks), hashesAtStop);
    assert.deepEqual(hashBlocks(dst.blocks), hashesAtStop);
    assert.equal(sameState(src, dst), undefined);
    assert.equal(dst.globalState.received, "paused");
  });
});
