import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { Worker } from "node:worker_threads";
import { DirtyMap, PageBitmap, popcount32 } from "./dirty-bitmap.js";

/**
 * A vCPU stand-in: writes a per-page version counter into page `p` (first word), then marks the page with a plain
 * `dirty[p] = 1`, exactly as the documented contract says; stops when ctl[0] becomes non-zero.
 */
const VERSION_WRITER = `
const { workerData } = require("node:worker_threads");
const { ram, dirty, ctl, pages, seed } = workerData;
const words = new Int32Array(ram);
const d = new Uint8Array(dirty);
const c = new Int32Array(ctl);
let x = seed | 0;
let n = 0;
for (;;) {
  for (let k = 0; k < 4096; k++) {
    x ^= x << 13; x ^= x >>> 17; x ^= x << 5;
    const p = (x >>> 0) % pages;
    words[p * 1024] = words[p * 1024] + 1;
    d[p] = 1;
  }
  n += 4096;
  Atomics.store(c, 2, n); // progress, once per 4096 stores
  if (Atomics.load(c, 0) !== 0) break;
}
Atomics.store(c, 1, 1);
`;

void suite("dirty-bitmap", () => {
  test("popcount32() counts bits of negative and positive words", () => {
    assert.equal(popcount32(0), 0);
    assert.equal(popcount32(0xffffffff | 0), 32);
    assert.equal(popcount32(0xf0000000 | 0), 4);
    assert.equal(popcount32(0x80000001 | 0), 2);
  });

  test("PageBitmap.setAll() leaves the bits past the last page clear", () => {
    const b = new PageBitmap(40);
    b.setAll();
    assert.equal(b.count(), 40);
    assert.equal(b.words[1], 0xff);
    b.clear(39);
    assert.equal(b.test(39), false);
    assert.equal(b.count(), 39);
  });

  test("DirtyMap.collect() moves marks into the target once and records them as ever written", () => {
    const m = new DirtyMap(100);
    const t = new PageBitmap(100);
    m.markDirty(4096 * 3 + 10, 1);
    m.markDirty(4096 * 31, 4097); // pages 31 and 32 (crosses a bitmap word)
    m.markPage(99);
    assert.equal(m.isNeverWritten(3), false);
    const r = m.collect(t);
    assert.deepEqual(r, { marked: 4, added: 4 });
    for (const p of [3, 31, 32, 99]) {
      assert.equal(t.test(p), true, `page ${p}`);
      assert.equal(m.everWritten.test(p), true);
      assert.equal(m.dirty[p], 0);
    }
    assert.equal(t.count(), 4);
    assert.deepEqual(m.collect(t), { marked: 0, added: 0 });
    // Re-marking a page already in the target counts as marked, not added.
    m.markPage(3);
    assert.deepEqual(m.collect(t), { marked: 1, added: 0 });
    assert.equal(m.isNeverWritten(4), true);
  });

  test("DirtyMap.collect() treats any non-zero byte as a mark and ignores padding bytes", () => {
    const m = new DirtyMap(37); // 2 bitmap words, 64 dirty bytes of which 27 are padding
    const t = new PageBitmap(37);
    m.dirty[0] = 0x80;
    m.dirty[5] = 0xff;
    m.dirty[36] = 2;
    m.dirty[37] = 1; // padding: the vCPU never writes here, but a stray byte must not become a page
    m.dirty[63] = 1;
    const r = m.collect(t);
    assert.deepEqual(r, { marked: 3, added: 3 });
    assert.deepEqual([t.test(0), t.test(5), t.test(36)], [true, true, true]);
    assert.equal(t.words[1], 1 << 4);
  });

  test("DirtyMap.markDirty() rejects a range outside the block", () => {
    const m = new DirtyMap(2);
    assert.throws(() => m.markDirty(8000, 200), RangeError);
    assert.throws(() => new DirtyMap(0), RangeError);
  });

  test("DirtyMap attached to the same buffers sees the same marks", () => {
    const a = new DirtyMap(64);
    const b = new DirtyMap(64, a.buffers);
    b.markPage(7);
    assert.equal(a.dirty[7], 1);
    a.collect(new PageBitmap(64));
    assert.equal(b.everWritten.test(7), true);
  });

  test("DirtyMap.collect() loses no mark set while it runs (racing vCPU worker)", async () => {
    const pages = 4096;
    const ram = new SharedArrayBuffer(pages * 4096);
    const map = new DirtyMap(pages);
    const ctl = new SharedArrayBuffer(16);
    const c = new Int32Array(ctl);
    const words = new Int32Array(ram);
    const worker = new Worker(VERSION_WRITER, {
      eval: true,
      workerData: { ram, dirty: map.buffers.dirty, ctl, pages, seed: 0x1234567 },
    });
    const exited = new Promise((resolve) => worker.once("exit", resolve));
    const sent = new Int32Array(pages); // the version "sent" for each page
    const target = new PageBitmap(pages);
    const readCollected = (): number => {
      let n = 0;
      const w = target.words;
      for (let wi = 0; wi < w.length; wi++) {
        let bits = (w[wi] as number) | 0;
        while (bits !== 0) {
          const low = bits & -bits;
          bits ^= low;
          const p = (wi << 5) | (31 - Math.clz32(low));
          sent[p] = words[p * 1024] as number; // read after the mark was cleared
          n++;
        }
        w[wi] = 0;
      }
      return n;
    };
    while (Atomics.load(c, 2) === 0) await new Promise((r) => setTimeout(r, 1)); // let the worker start
    let rounds = 0;
    let collected = 0;
    const until = performance.now() + 400;
    const giveUp = performance.now() + 10_000;
    // At least 400 ms, and until the worker has made 1M stores while we collect (bounded: a loaded machine may
    // give it little CPU).
    while (performance.now() < until || (Atomics.load(c, 2) < 1_000_000 && performance.now() < giveUp)) {
      map.collect(target);
      collected += readCollected();
      rounds++;
      if ((rounds & 15) === 0) await new Promise((r) => setImmediate(r));
    }
    Atomics.store(c, 0, 1);
    await exited;
    assert.equal(Atomics.load(c, 1), 1);
    map.collect(target);
    readCollected();
    let stale = 0;
    for (let p = 0; p < pages; p++) if (sent[p] !== words[p * 1024]) stale++;
    assert.equal(stale, 0, `${stale} pages lost their last write (rounds ${rounds})`);
    assert.ok(rounds > 50, `only ${rounds} collection rounds ran`);
    assert.ok(collected > pages, `only ${collected} pages collected while racing`);
    assert.ok(Atomics.load(c, 2) >= 100_000, "the worker barely ran");
  });
});
