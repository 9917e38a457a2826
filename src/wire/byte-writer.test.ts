import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { isMigrationError, MigrationError } from "../errors.js";
import { ByteWriter, encodeBytes, MemorySink } from "./byte-writer.js";

const hex = (b: Uint8Array): string => Buffer.from(b).toString("hex");

void suite("ByteWriter", () => {
  const cases: [string, (w: ByteWriter) => void, string][] = [
    ["u8(0)", (w) => w.u8(0), "00"],
    ["u8(255)", (w) => w.u8(255), "ff"],
    ["u16(0x1234)", (w) => w.u16(0x1234), "1234"],
    ["u16(65535)", (w) => w.u16(65535), "ffff"],
    ["u32(0x5145564d)", (w) => w.u32(0x5145564d), "5145564d"],
    ["u32(0xffffffff)", (w) => w.u32(0xffffffff), "ffffffff"],
    ["u64(1n<<63n)", (w) => w.u64(1n << 63n), "8000000000000000"],
    ["u64(0x0102030405060708n)", (w) => w.u64(0x0102030405060708n), "0102030405060708"],
    ["u64n(0x2082004)", (w) => w.u64n(0x2082004), "0000000002082004"],
    ["u64n(2**53-1)", (w) => w.u64n(2 ** 53 - 1), "001fffffffffffff"],
    ["i8(-1)", (w) => w.i8(-1), "ff"],
    ["i8(-128)", (w) => w.i8(-128), "80"],
    ["i16(-2)", (w) => w.i16(-2), "fffe"],
    ["i32(-1)", (w) => w.i32(-1), "ffffffff"],
    ["i32(-0x80000000)", (w) => w.i32(-0x80000000), "80000000"],
    ["i64(-1n)", (w) => w.i64(-1n), "ffffffffffffffff"],
    ["i64(-(2n**63n))", (w) => w.i64(-(2n ** 63n)), "8000000000000000"],
    ["i64n(-2)", (w) => w.i64n(-2), "fffffffffffffffe"],
    ["i64n(-(2**53)+1)", (w) => w.i64n(-(2 ** 53) + 1), "ffe0000000000001"],
    ["f64(1.5)", (w) => w.f64(1.5), "3ff8000000000000"],
    ["f64(-0)", (w) => w.f64(-0), "8000000000000000"],
    ["zeros(3)", (w) => w.zeros(3), "000000"],
    ["str('ram')", (w) => w.str("ram"), "0372616d"],
    ["str('')", (w) => w.str(""), "00"],
    ["str('é')", (w) => w.str("é"), "02c3a9"],
    ["bytes", (w) => w.bytes(new Uint8Array([1, 2, 3])), "010203"],
    ["chain", (w) => w.u8(7).u16(8).u32(9), "07000800000009"],
  ];
  for (const [name, put, expected] of cases) {
    test(`${name} writes ${expected}`, () => {
      assert.equal(hex(encodeBytes(put)), expected);
    });
  }

  const bad: [string, (w: ByteWriter) => void][] = [
    ["u8(256)", (w) => w.u8(256)],
    ["u8(-1)", (w) => w.u8(-1)],
    ["u8(1.5)", (w) => w.u8(1.5)],
    ["u16(65536)", (w) => w.u16(65536)],
    ["u32(2**32)", (w) => w.u32(2 ** 32)],
    ["u32(NaN)", (w) => w.u32(Number.NaN)],
    ["u64(-1n)", (w) => w.u64(-1n)],
    ["u64(2n**64n)", (w) => w.u64(2n ** 64n)],
    ["u64n(2**53)", (w) => w.u64n(2 ** 53)],
    ["i8(128)", (w) => w.i8(128)],
    ["i16(-32769)", (w) => w.i16(-32769)],
    ["i32(2**31)", (w) => w.i32(2 ** 31)],
    ["i64(2n**63n)", (w) => w.i64(2n ** 63n)],
    ["str(256 bytes)", (w) => w.str("x".repeat(256))],
  ];
  for (const [name, put] of bad) {
    test(`${name} throws RangeError`, () => {
      assert.throws(() => encodeBytes(put), RangeError);
    });
  }

  test("offset counts every byte put, across buffer hand-offs", async () => {
    const sink = new MemorySink();
    const w = new ByteWriter(sink, { bufferSize: 64 });
    for (let i = 0; i < 1000; i++) w.u32(i);
    assert.equal(w.offset, 4000);
    await w.flush();
    assert.equal(sink.length, 4000);
    const out = sink.bytes();
    const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
    for (let i = 0; i < 1000; i++) assert.equal(dv.getUint32(i * 4), i);
  });

  test("bytes() larger than the buffer is passed through in order", async () => {
    const sink = new MemorySink();
    const w = new ByteWriter(sink, { bufferSize: 64 });
    const big = new Uint8Array(1000).map((_, i) => i & 0xff);
    w.u8(0xaa).bytes(big).u8(0xbb);
    await w.flush();
    const out = sink.bytes();
    assert.equal(out.length, 1002);
    assert.equal(out[0], 0xaa);
    assert.deepEqual(out.subarray(1, 1001), big);
    assert.equal(out[1001], 0xbb);
  });

  test("bytes() below the pass-through threshold is copied in pieces", async () => {
    const sink = new MemorySink();
    const w = new ByteWriter(sink, { bufferSize: 64, passThroughThreshold: 1 << 20 });
    const big = new Uint8Array(1000).map((_, i) => (i * 7) & 0xff);
    w.u8(1).bytes(big);
    await w.flush();
    assert.deepEqual(sink.bytes().subarray(1), big);
  });

  test("ready() waits while maxInFlight buffers are outstanding (backpressure)", async () => {
    const pending: (() => void)[] = [];
    let received = 0;
    const sink = {
      write(chunk: Uint8Array): Promise<void> {
        received += chunk.length;
        return new Promise<void>((resolve) => pending.push(resolve));
      },
    };
    const w = new ByteWriter(sink, { bufferSize: 64, maxInFlight: 2 });
    for (let i = 0; i < 48; i++) w.u32(i); // 192 bytes: three buffers handed off
    assert.equal(w.inFlight, 2);
    let ready = false;
    const p = w.ready().then(() => {
      ready = true;
    });
    await new Promise((r) => setImmediate(r));
    assert.equal(ready, false);
    pending.shift()?.();
    await p;
    assert.equal(ready, true);
    const f = w.flush();
    while (pending.length > 0) {
      pending.shift()?.();
      await new Promise((r) => setImmediate(r));
    }
    await f;
    assert.equal(received, 192);
  });

  test("stagingMemory: buffers are cut from it, recycled, and plain buffers fill in when all are in the sink", async () => {
    const memory = new Uint8Array(new SharedArrayBuffer(64 * 3 + 10));
    const pending: (() => void)[] = [];
    const chunks: Uint8Array[] = [];
    const copies: number[][] = [];
    const sink = {
      write(chunk: Uint8Array): Promise<void> {
        chunks.push(chunk);
        copies.push(Array.from(chunk));
        return new Promise<void>((resolve) => pending.push(resolve));
      },
    };
    const plain = new ByteWriter(sink, { bufferSize: 64 });
    assert.equal(plain.staging.buffer instanceof SharedArrayBuffer, false);
    const w = new ByteWriter(sink, { bufferSize: 64, maxInFlight: 8, stagingMemory: memory });
    assert.equal(w.staging.buffer, memory.buffer);
    for (let i = 0; i < 80; i++) w.u32(i); // 320 bytes: five buffers, only three fit in the memory
    w.push();
    assert.deepEqual(
      chunks.map((c) => c.buffer === memory.buffer),
      [true, true, true, false, false],
      "when every slot is in the sink, plain buffers are used",
    );
    for (const done of pending.splice(0)) done();
    await new Promise((r) => setImmediate(r));
    w.u32(80).push(); // the plain buffer that was current
    w.u32(81).push();
    assert.equal(chunks.at(-1)?.buffer, memory.buffer, "slots are recycled, and used before plain buffers");
    for (const done of pending.splice(0)) done();
    // What the sink saw is the stream, in order.
    const bytes = new Uint8Array(copies.flat());
    const view = new DataView(bytes.buffer);
    assert.equal(bytes.length, 328);
    for (let i = 0; i <= 81; i++) assert.equal(view.getUint32(i * 4), i);
  });

  test("claim() reserves bytes in the current staging buffer", () => {
    const sink = new MemorySink();
    const w = new ByteWriter(sink, { bufferSize: 64 });
    w.u32(0xaabbccdd);
    const at = w.claim(8);
    assert.equal(at, 4);
    w.staging.set([1, 2, 3, 4, 5, 6, 7, 8], at);
    const again = w.claim(60); // does not fit behind the 12 staged bytes: a new buffer
    assert.equal(again, 0);
    w.staging.fill(9, again, again + 60);
    w.push();
    assert.deepEqual(Array.from(sink.bytes()), [0xaa, 0xbb, 0xcc, 0xdd, 1, 2, 3, 4, 5, 6, 7, 8, ...Array(60).fill(9)]);
    assert.equal(w.offset, 72);
    assert.throws(() => w.claim(65), RangeError);
  });

  test("the first sink error is latched and reported by every later call", async () => {
    const boom = new MigrationError("TRANSPORT", "Cannot write: peer closed");
    let calls = 0;
    const sink = {
      write(): Promise<void> {
        calls++;
        return Promise.reject(calls === 1 ? boom : new Error("second"));
      },
    };
    const w = new ByteWriter(sink, { bufferSize: 64 });
    w.bytes(new Uint8Array(64)).u8(1);
    await assert.rejects(w.flush(), (e) => e === boom);
    assert.throws(
      () => w.u8(1),
      (e) => e === boom,
    );
    await assert.rejects(w.ready(), (e) => e === boom);
    assert.equal(w.error, boom);
  });

  test("a sink that throws synchronously latches a TRANSPORT error", () => {
    const w = new ByteWriter(
      {
        write(): Promise<void> {
          throw new Error("EPIPE");
        },
      },
      { bufferSize: 64 },
    );
    assert.throws(
      () => w.bytes(new Uint8Array(200)),
      (e) => isMigrationError(e, "TRANSPORT") && /EPIPE/.test(e.message),
    );
    assert.throws(
      () => w.u8(0),
      (e) => isMigrationError(e, "TRANSPORT"),
    );
  });
});
