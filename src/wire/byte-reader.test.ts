import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { isMigrationError } from "../errors.js";
import type { ByteSource } from "../transport/channel.js";
import { ByteReader, NEED_MORE } from "./byte-reader.js";
import { encodeBytes } from "./byte-writer.js";

/** A source that yields the given chunks, then EOF. */
function chunked(chunks: Uint8Array[]): ByteSource {
  let i = 0;
  return {
    read(): Promise<Uint8Array | null> {
      return Promise.resolve(i < chunks.length ? (chunks[i++] as Uint8Array) : null);
    },
  };
}

/** Splits bytes at the given cut points. */
function split(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const out: Uint8Array[] = [];
  let prev = 0;
  for (const c of [...cuts, bytes.length]) {
    if (c > prev) out.push(bytes.slice(prev, c));
    prev = Math.max(prev, c);
  }
  return out;
}

interface Decoded {
  u8: number;
  u16: number;
  u32: number;
  u64: bigint;
  u64n: number;
  i8: number;
  i16: number;
  i32: number;
  i64: bigint;
  f64: number;
  str: string;
  bytes: number[];
}

const sample = encodeBytes((w) =>
  w
    .u8(0xfe)
    .u16(0xbeef)
    .u32(0xdeadbeef)
    .u64(0xfedcba9876543210n)
    .u64n(2 ** 40 + 5)
    .i8(-3)
    .i16(-300)
    .i32(-70000)
    .i64(-5n)
    .f64(-2.25)
    .str("pc.ram")
    .bytes(new Uint8Array([9, 8, 7, 6, 5])),
);

function decodeAll(r: ByteReader): Decoded {
  return {
    u8: r.u8(),
    u16: r.u16(),
    u32: r.u32(),
    u64: r.u64(),
    u64n: r.u64n(),
    i8: r.i8(),
    i16: r.i16(),
    i32: r.i32(),
    i64: r.i64(),
    f64: r.f64(),
    str: r.str(),
    bytes: [...r.bytes(5)],
  };
}

const expected: Decoded = {
  u8: 0xfe,
  u16: 0xbeef,
  u32: 0xdeadbeef,
  u64: 0xfedcba9876543210n,
  u64n: 2 ** 40 + 5,
  i8: -3,
  i16: -300,
  i32: -70000,
  i64: -5n,
  f64: -2.25,
  str: "pc.ram",
  bytes: [9, 8, 7, 6, 5],
};

void suite("ByteReader", () => {
  test("reads every getter's hand-computed big-endian bytes", () => {
    const r = ByteReader.fromBytes(
      new Uint8Array([0xff, 0x12, 0x34, 0xff, 0xff, 0xff, 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 1]),
    );
    assert.equal(r.i8(), -1);
    assert.equal(r.u16(), 0x1234);
    assert.equal(r.i32(), -2);
    assert.equal(r.u64(), 0x8000000000000001n);
    assert.equal(r.offset, 15);
    assert.equal(r.available, 0);
  });

  test("a sample of every type round-trips from one chunk", () => {
    assert.deepEqual(decodeAll(ByteReader.fromBytes(sample)), expected);
  });

  test("every read split at every chunk boundary gives the same result", async () => {
    for (let cut = 0; cut <= sample.length; cut++) {
      const r = new ByteReader(chunked(split(sample, [cut])));
      assert.deepEqual(await r.decode(decodeAll), expected, `cut at ${cut}`);
    }
    for (let a = 1; a < sample.length; a += 3) {
      for (let b = a + 1; b < sample.length; b += 5) {
        const r = new ByteReader(chunked(split(sample, [a, b])));
        assert.deepEqual(await r.decode(decodeAll), expected, `cuts at ${a}, ${b}`);
      }
    }
  });

  test("one-byte chunks decode the same", async () => {
    const ones = [...sample].map((b) => new Uint8Array([b]));
    const r = new ByteReader(chunked(ones));
    assert.deepEqual(await r.decode(decodeAll), expected);
    assert.equal(await r.atEnd(), true);
  });

  test("the stream truncated at every offset fails with TRUNCATED at that offset", async () => {
    for (let len = 0; len < sample.length; len++) {
      const r = new ByteReader(chunked(split(sample.slice(0, len), [len >> 1])));
      await assert.rejects(
        r.decode(decodeAll),
        (e) => isMigrationError(e, "TRUNCATED") && e.offset !== undefined && e.offset <= len,
        `length ${len}`,
      );
    }
  });

  test("fromBytes() truncation is reported synchronously with the offset", () => {
    const r = ByteReader.fromBytes(new Uint8Array([1, 2, 3]), 100);
    assert.equal(r.u16(), 0x0102);
    assert.throws(
      () => r.u32(),
      (e) => isMigrationError(e, "TRUNCATED") && e.offset === 102,
    );
  });

  test("tryDecode() returns NEED_MORE and restores the cursor", async () => {
    const r = new ByteReader(chunked([new Uint8Array([0, 0, 0]), new Uint8Array([7, 1])]));
    await r.fill(1);
    assert.equal(
      r.tryDecode((r) => r.u32()),
      NEED_MORE,
    );
    assert.equal(r.neededBytes, 4);
    assert.equal(r.offset, 0);
    await r.fill(r.neededBytes);
    assert.equal(
      r.tryDecode((r) => r.u32()),
      7,
    );
    assert.equal(r.offset, 4);
  });

  test("copyTo() copies across chunks straight into the target", async () => {
    const data = new Uint8Array(10000).map((_, i) => (i * 13) & 0xff);
    const r = new ByteReader(chunked(split(data, [1, 100, 4095, 4097, 9000])));
    const target = new Uint8Array(10010);
    await r.decode((r) => r.copyTo(target, 10, 10000));
    assert.deepEqual(target.subarray(10), data);
  });

  test("bytes() returns views within a chunk and copies across chunks", async () => {
    const a = new Uint8Array([1, 2, 3, 4]);
    const r = new ByteReader(chunked([a, new Uint8Array([5, 6])]));
    const v = await r.decode((r) => r.bytes(2));
    assert.equal(v.buffer, a.buffer);
    const c = await r.decode((r) => r.bytes(3));
    assert.deepEqual([...c], [3, 4, 5]);
  });

  test("peekU8() and peekBytes() look ahead without consuming", async () => {
    const r = new ByteReader(chunked([new Uint8Array([5, 0x1a]), new Uint8Array([0x63, 0x6f])]));
    await r.fill(4);
    assert.equal(r.peekU8(), 5);
    assert.equal(r.peekU8(2), 0x63);
    assert.deepEqual([...r.peekBytes(1, 3)], [0x1a, 0x63, 0x6f]);
    assert.equal(r.offset, 0);
    assert.equal(r.u8(), 5);
  });

  test("take() consumes a run inside the current chunk and returns its position; -1 across chunks", async () => {
    const a = new Uint8Array([9, 1, 2, 3]);
    const r = new ByteReader(chunked([a, new Uint8Array([4, 5, 6])]));
    await r.fill(7);
    r.u8();
    assert.equal(r.take(2), 1);
    assert.equal(r.chunk, a);
    assert.equal(r.chunkView.getUint16(1), 0x0102);
    assert.equal(r.offset, 3);
    assert.equal(r.take(2), -1);
    assert.equal(r.offset, 3);
    assert.equal(r.u8(), 3);
    // At the end of a chunk it moves to the next one first.
    assert.equal(r.take(3), 0);
    assert.deepEqual([...r.chunk], [4, 5, 6]);
    assert.equal(r.offset, 7);
    assert.equal(r.take(1), -1);
  });

  test("peekPos() tells where the cursor is in the current chunk when enough bytes are in it, consuming nothing", async () => {
    const r = new ByteReader(chunked([new Uint8Array([1, 2, 3]), new Uint8Array([4, 5])]));
    await r.fill(5);
    r.u8();
    assert.equal(r.peekPos(2), 1);
    assert.equal(r.peekPos(3), -1);
    assert.equal(r.offset, 1);
    r.skip(2);
    // At the end of a chunk: the next one.
    assert.equal(r.peekPos(2), 0);
    assert.deepEqual([...r.chunk], [4, 5]);
    assert.equal(r.offset, 3);
    assert.equal(r.u8(), 4);
  });

  test("peekIs() compares ahead without consuming, across chunks, and only needs the bytes it compares", async () => {
    const r = new ByteReader(chunked([new Uint8Array([5, 3, 0x61]), new Uint8Array([0x62, 0x63])]));
    await r.fill(3);
    assert.equal(r.peekIs(2, new Uint8Array([0x61])), true);
    // The first byte differs: the missing ones are not needed.
    assert.equal(r.peekIs(2, new Uint8Array([0x7a, 0x62, 0x63])), false);
    assert.equal(
      r.tryDecode((rr) => rr.peekIs(2, new Uint8Array([0x61, 0x62, 0x63]))),
      NEED_MORE,
    );
    await r.fill(5);
    assert.equal(r.peekIs(2, new Uint8Array([0x61, 0x62, 0x63])), true);
    assert.equal(r.peekIs(2, new Uint8Array([0x61, 0x62, 0x64])), false);
    assert.equal(r.offset, 0);
  });

  test("u64n() rejects values of 2^53 or more", () => {
    const r = ByteReader.fromBytes(encodeBytes((w) => w.u64(1n << 53n)));
    assert.throws(
      () => r.u64n(),
      (e) => isMigrationError(e, "FIELD_OUT_OF_RANGE") && e.offset === 0,
    );
  });

  test("fill() beyond the buffering cap fails with LIMIT_EXCEEDED", async () => {
    const r = new ByteReader(chunked([new Uint8Array(10)]), { maxBufferedBytes: 1024 });
    await assert.rejects(r.fill(1025), (e) => isMigrationError(e, "LIMIT_EXCEEDED"));
  });

  test("errors are latched: every later read fails with the first error", async () => {
    const r = new ByteReader(chunked([new Uint8Array([1])]));
    await assert.rejects(r.fill(2), (e) => isMigrationError(e, "TRUNCATED"));
    const first = r.error;
    assert.ok(first);
    assert.throws(
      () => r.u8(),
      (e) => e === first,
    );
    await assert.rejects(r.fill(1), (e) => e === first);
  });

  test("a source that rejects is latched as a TRANSPORT error", async () => {
    const r = new ByteReader({
      read: () => Promise.reject(new Error("ECONNRESET")),
    });
    await assert.rejects(r.fill(1), (e) => isMigrationError(e, "TRANSPORT") && /ECONNRESET/.test(e.message));
  });

  test("a decoder's MigrationError is latched, not re-run", async () => {
    let runs = 0;
    const r = new ByteReader(chunked([new Uint8Array([1, 2])]));
    await assert.rejects(
      r.decode(() => {
        runs++;
        throw new TypeError("bad");
      }),
      (e) => isMigrationError(e, "TRANSPORT"),
    );
    assert.equal(runs, 1);
  });

  test("more() pulls chunks and reports EOF", async () => {
    const r = new ByteReader(chunked([new Uint8Array([1]), new Uint8Array([2])]));
    assert.equal(await r.more(), true);
    assert.equal(r.u8(), 1);
    assert.equal(await r.more(), true);
    assert.equal(r.u8(), 2);
    assert.equal(await r.more(), false);
    assert.equal(await r.atEnd(), true);
  });

  test("skip() crosses chunks", async () => {
    const r = new ByteReader(chunked([new Uint8Array([1, 2]), new Uint8Array([3, 4, 5])]));
    await r.fill(5);
    r.skip(3);
    assert.equal(r.u8(), 4);
  });
});
