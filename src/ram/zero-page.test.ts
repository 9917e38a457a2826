import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { isZeroWords, type PageOpsKind, pageOpsFor, pageOpsModuleBytes, wasmApi } from "./zero-page.js";

function sharedMemory(wasmPages: number) {
  if (wasmApi === undefined) throw new Error("no WebAssembly");
  return new wasmApi.Memory({ initial: wasmPages, maximum: wasmPages, shared: true });
}

void suite("zero-page", () => {
  test("pageOpsModuleBytes() emits valid modules with and without SIMD", () => {
    assert.ok(wasmApi?.validate(pageOpsModuleBytes(true)));
    assert.ok(wasmApi?.validate(pageOpsModuleBytes(false)));
  });

  test("pageOpsFor() picks the SIMD module on Node 20 and caches it per memory", () => {
    const m = sharedMemory(1);
    const ops = pageOpsFor(m);
    assert.equal(ops.kind, "wasm-simd");
    assert.equal(pageOpsFor(m), ops);
  });

  for (const kind of ["wasm-simd", "wasm", "js"] as PageOpsKind[]) {
    test(`PageOps (${kind}).isZero() finds a single non-zero byte anywhere in a page`, () => {
      const m = sharedMemory(1);
      const ops = pageOpsFor(m, kind);
      assert.equal(ops.kind, kind);
      const u8 = new Uint8Array(m.buffer);
      for (let p = 0; p < 16; p++) assert.equal(ops.isZero(p * 4096, 4096), true);
      for (const at of [0, 1, 15, 16, 63, 64, 100, 2047, 4032, 4095]) {
        u8[4096 * 3 + at] = 0x80;
        assert.equal(ops.isZero(4096 * 3, 4096), false, `byte ${at}`);
        assert.equal(ops.isZero(4096 * 2, 4096), true);
        assert.equal(ops.isZero(4096 * 4, 4096), true);
        u8[4096 * 3 + at] = 0;
        assert.equal(ops.isZero(4096 * 3, 4096), true);
      }
    });

    test(`PageOps (${kind}).fill() and copy() work on the shared bytes`, () => {
      const m = sharedMemory(2);
      const ops = pageOpsFor(m, kind);
      const u8 = new Uint8Array(m.buffer);
      ops.fill(4096, 4096, 0xab);
      assert.equal(u8[4095], 0);
      assert.equal(u8[4096], 0xab);
      assert.equal(u8[8191], 0xab);
      assert.equal(u8[8192], 0);
      ops.copy(65536, 4096, 4096);
      assert.equal(u8[65536], 0xab);
      assert.equal(u8[65536 + 4095], 0xab);
      ops.fill(4096, 4096, 0);
      assert.equal(ops.isZero(4096, 4096), true);
      // Overlapping forward copy keeps memmove semantics.
      for (let i = 0; i < 16; i++) u8[i] = i + 1;
      ops.copy(4, 0, 16);
      assert.deepEqual(
        [...u8.subarray(4, 20)],
        Array.from({ length: 16 }, (_, i) => i + 1),
      );
    });
  }

  test("PageOps.isZero() scans a range that ends exactly at the end of a 4 GiB memory", () => {
    // A 4 GiB shared memory costs nothing until touched; p + n wraps to 0 there, the count-down loop must not.
    const m = sharedMemory(65536);
    const ops = pageOpsFor(m);
    const top = 2 ** 32 - 4096;
    assert.equal(ops.isZero(top, 4096), true);
    new Uint8Array(m.buffer)[2 ** 32 - 1] = 1;
    assert.equal(ops.isZero(top, 4096), false);
    assert.equal(ops.isZero(2 ** 32 - 65536, 65536), false);
  });

  test("isZeroWords() is the OR-8 fallback over an Int32Array", () => {
    const w = new Int32Array(2048);
    assert.equal(isZeroWords(w, 0, 8192), true);
    w[2047] = -1;
    assert.equal(isZeroWords(w, 0, 8192), false);
    assert.equal(isZeroWords(w, 0, 4096), true);
  });
});
