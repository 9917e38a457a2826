import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { Worker } from "node:worker_threads";
import { createSharedMemory, RamBlock, type RamBlockDescriptor } from "./ram-block.js";
import { wasmApi } from "./zero-page.js";

/** Receives a descriptor, stores through the raw contract, posts the descriptor back. */
const CONTRACT_WORKER = `
const { parentPort } = require("node:worker_threads");
parentPort.once("message", (d) => {
  const bytes = new Uint8Array(d.memory.buffer, d.byteOffset, d.size);
  const dirty = new Uint8Array(d.dirty);
  const addr = 0x1234;
  bytes[addr] = 0x5a;            // data store first
  dirty[addr >>> 12] = 1;        // then the mark
  parentPort.postMessage({ back: d, isMemory: d.memory instanceof WebAssembly.Memory });
});
`;

void suite("RamBlock", () => {
  test("new RamBlock() validates idstr, size and placement", () => {
    assert.throws(() => new RamBlock("", 4096), TypeError);
    assert.throws(() => new RamBlock("x".repeat(256), 4096), RangeError);
    assert.doesNotThrow(() => new RamBlock("x".repeat(255), 4096));
    assert.throws(() => new RamBlock("a", 0), RangeError);
    assert.throws(() => new RamBlock("a", 4095), RangeError);
    assert.throws(() => new RamBlock("a", 2 ** 32 + 4096), RangeError);
    assert.throws(() => new RamBlock("a", 4096, { byteOffset: 4096 }), RangeError);
    const mem = wasmApi?.Memory && new wasmApi.Memory({ initial: 1, maximum: 1, shared: true });
    assert.ok(mem);
    assert.throws(() => new RamBlock("a", 4096, { memory: mem, byteOffset: 100 }), RangeError);
    assert.throws(() => new RamBlock("a", 65536, { memory: mem, byteOffset: 4096 }), RangeError);
    assert.throws(() => new RamBlock("a", 4096, { memory: { buffer: new ArrayBuffer(65536) } }), TypeError);
  });

  test("new RamBlock() allocates a shared wasm memory and exposes the block's bytes", () => {
    const b = new RamBlock("pc.ram", 3 * 4096);
    assert.ok(b.buffer instanceof SharedArrayBuffer);
    assert.equal(b.memory.buffer, b.buffer);
    assert.equal(b.bytes.length, 3 * 4096);
    assert.equal(b.pages, 3);
    assert.equal(b.dirty.length, 32);
    assert.deepEqual([...b.idstrBytes], [...new TextEncoder().encode("pc.ram")]);
    assert.equal(b.ops.kind, "wasm-simd");
  });

  test("a block over a bare SharedArrayBuffer works with the JS page operations", () => {
    const b = new RamBlock("plain", 2 * 4096, { memory: { buffer: new SharedArrayBuffer(8192) } });
    assert.equal(b.ops.kind, "js");
    b.write(4096 + 7, new Uint8Array([1]));
    assert.equal(b.isPageZero(1), false);
    b.ops.fill(4096, 4096, 0);
    assert.equal(b.isPageZero(1), true);
  });

  test("ioMemoryBytes sets memory aside after the block, in the block's own memory", () => {
    const b = new RamBlock("pc.ram", 64 << 10, { ioMemoryBytes: 32 << 10 });
    assert.equal(b.memory.buffer.byteLength, 128 << 10);
    assert.equal(b.ioMemory?.buffer, b.buffer);
    assert.equal(b.ioMemory?.byteOffset, 64 << 10);
    assert.equal(b.ioMemory?.byteLength, 32 << 10);
    assert.equal(b.bytes.byteLength, 64 << 10, "the guest sees only its RAM");
    assert.equal(new RamBlock("pc.ram", 4096).ioMemory, undefined);
    assert.throws(() => new RamBlock("pc.ram", 4096, { ioMemoryBytes: 100 }), RangeError);
    assert.throws(
      () => new RamBlock("pc.ram", 4096, { memory: createSharedMemory(1 << 20), ioMemoryBytes: 4096 }),
      /needs a memory the block creates/,
    );
  });

  test("createSharedMemory() rounds up to 64 KiB and rejects sizes over 4 GiB", () => {
    assert.equal(createSharedMemory(1).buffer.byteLength, 65536);
    assert.ok(createSharedMemory(70000).buffer instanceof SharedArrayBuffer);
    assert.throws(() => createSharedMemory(2 ** 32 + 1), RangeError);
  });

  test("two blocks can share one memory at different offsets", () => {
    const mem = wasmApi?.Memory && new wasmApi.Memory({ initial: 2, maximum: 2, shared: true });
    assert.ok(mem);
    const a = new RamBlock("a", 65536, { memory: mem });
    const b = new RamBlock("b", 8192, { memory: mem, byteOffset: 65536 });
    b.write(4096, new Uint8Array([1, 2, 3]));
    assert.equal(new Uint8Array(mem.buffer)[65536 + 4096 + 2], 3);
    assert.equal(b.dirty[1], 1);
    assert.equal(a.dirty[1], 0);
    assert.equal(b.isPageZero(1), false);
    assert.equal(b.isPageZero(0), true);
    assert.equal(a.isPageZero(1), true);
  });

  test("write() copies data then marks every touched page; isPageZero() scans written pages", () => {
    const b = new RamBlock("r", 4 * 4096);
    b.write(4096 - 2, new Uint8Array(4)); // zeros across pages 0 and 1
    assert.deepEqual([...b.dirty.subarray(0, 4)], [1, 1, 0, 0]);
    assert.equal(b.isPageZero(0), true); // written, but still zero
    b.write(3 * 4096 + 5, new Uint8Array([9]));
    assert.equal(b.isPageZero(3), false);
    assert.throws(() => b.write(4 * 4096 - 1, new Uint8Array(2)), RangeError);
  });

  test("share() / fromShared() rebuild the same block in a worker thread", async () => {
    const b = new RamBlock("pc.ram", 8 * 4096);
    const w = new Worker(CONTRACT_WORKER, { eval: true });
    w.postMessage(b.share());
    const reply = await new Promise<{ back: RamBlockDescriptor; isMemory: boolean }>((resolve) =>
      w.once("message", resolve),
    );
    await w.terminate();
    assert.equal(reply.isMemory, true);
    assert.equal(b.bytes[0x1234], 0x5a);
    assert.equal(b.dirty[1], 1);
    // The descriptor survives a round trip through structured clone and attaches to the same bytes and marks.
    const again = RamBlock.fromShared(reply.back);
    assert.equal(again.bytes[0x1234], 0x5a);
    again.markDirty(5 * 4096, 1);
    assert.equal(b.dirty[5], 1);
    again.bytes[7] = 1;
    assert.equal(b.bytes[7], 1);
    assert.equal(again.idstr, "pc.ram");
    assert.equal(again.size, b.size);
  });
});

void suite("RamBlock.prefault()", () => {
  test("touches only never-written pages and leaves content and dirty tracking unchanged", () => {
    const b = new RamBlock("prefault", 16 * 4096);
    b.write(3 * 4096 + 5, new Uint8Array([9, 8, 7]));
    const before = b.bytes.slice();
    const dirtyBefore = b.dirty.slice();
    assert.equal(b.prefault(), 15);
    assert.deepEqual(b.bytes, before);
    assert.deepEqual(b.dirty, dirtyBefore);
    assert.equal(b.dirtyMap.isNeverWritten(0), true, "a prefaulted page still counts as never written");
    assert.equal(b.dirtyMap.isNeverWritten(3), false);
  });
});
