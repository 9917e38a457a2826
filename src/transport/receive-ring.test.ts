import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { once } from "node:events";
import { mkdtempSync, rmSync } from "node:fs";
import { connect as netConnect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite, test } from "node:test";
import { setImmediate as tick } from "node:timers/promises";
import { ByteReader } from "../wire/byte-reader.js";
import { isLendingSource } from "./channel.js";
import { connect } from "./connect.js";
import { listen } from "./listen.js";
import { MIN_RING_SLOTS, ReceiveRing } from "./receive-ring.js";
import { ringForHighWaterMark, SocketChannel } from "./socket-channel.js";

const SLOT = 4096;
const TOTAL = 32 * 1024 * 1024;

/** Plays Node's part: reads `bytes` into the armed buffer the way `onStreamRead` does. */
function deliver(ring: ReceiveRing, bytes: number[]): boolean {
  const buf = ring.onread.buffer();
  buf.set(bytes);
  return ring.onread.callback(bytes.length, buf);
}

void suite("ReceiveRing", () => {
  test("lends each read as a view of its slot and reuses a slot only after release", () => {
    const memory = new Uint8Array(MIN_RING_SLOTS * SLOT);
    const ring = new ReceiveRing(memory, SLOT);
    const lent: Uint8Array[] = [];
    let freed = 0;
    ring.attach({ onLent: (c) => lent.push(c), onSlotFree: () => freed++ });
    assert.equal(ring.lendLimit, MIN_RING_SLOTS - 1);
    // Three reads fill slots 0..2; the fourth slot is armed and free, so reading goes on.
    for (let i = 0; i < 3; i++) assert.equal(deliver(ring, [i, i, i]), true);
    assert.deepEqual(
      lent.map((c) => [c.byteOffset, c.length, c[0]]),
      [
        [0, 3, 0],
        [SLOT, 3, 1],
        [2 * SLOT, 3, 2],
      ],
    );
    assert.equal(lent[0]?.buffer, memory.buffer, "chunks are views of the ring's memory");
    // The fourth read fills slot 3; slot 0 is next and still lent: the callback stops the socket.
    assert.equal(deliver(ring, [3]), false);
    assert.equal(ring.stalled, true);
    ring.release(lent[1] as Uint8Array);
    assert.equal(freed, 0, "freeing a slot that is not the next one does not restart reading");
    ring.release(lent[0] as Uint8Array);
    assert.equal(freed, 1);
    assert.equal(ring.stalled, false);
    assert.equal(ring.onread.buffer().byteOffset, 0, "the next read goes into the freed slot 0");
    assert.throws(() => ring.release(lent[0] as Uint8Array), /did not lend/);
    assert.throws(() => ring.release(new Uint8Array(3)), /did not lend/);
  });

  test("useMemory() moves later reads into the new memory; lent chunks stay valid", () => {
    const ring = new ReceiveRing(new Uint8Array(MIN_RING_SLOTS * SLOT), SLOT);
    const lent: Uint8Array[] = [];
    ring.attach({ onLent: (c) => lent.push(c), onSlotFree: () => {} });
    deliver(ring, [1]);
    const guest = new Uint8Array(new SharedArrayBuffer(8 * SLOT));
    ring.useMemory(guest.subarray(2 * SLOT), SLOT);
    assert.equal(ring.lendLimit, 5);
    deliver(ring, [2]); // the slot armed before the move
    deliver(ring, [3]);
    assert.notEqual(lent[1]?.buffer, guest.buffer);
    assert.equal(lent[2]?.buffer, guest.buffer);
    assert.equal(lent[2]?.byteOffset, 2 * SLOT);
    assert.deepEqual(
      lent.map((c) => c[0]),
      [1, 2, 3],
    );
    for (const c of lent) ring.release(c);
  });

  test("refuses memory that holds fewer than the minimum slots", () => {
    assert.throws(() => new ReceiveRing(new Uint8Array(3 * SLOT), SLOT), RangeError);
    assert.throws(() => new ReceiveRing(new Uint8Array(8 * SLOT), 100), RangeError);
    assert.equal(ringForHighWaterMark(1).lendLimit, MIN_RING_SLOTS - 1);
    assert.equal(ringForHighWaterMark(4 * 1024 * 1024).byteLength, 4 * 1024 * 1024);
  });
});

/** 32 MiB of random bytes sent through a tiny ring (4 slots of 4 KiB) and checked by hash. */
async function roundTrip(uri: string, readerFor: (ch: SocketChannel) => Promise<string>): Promise<void> {
  const listener = await listen(uri, { highWaterMark: 1 });
  const data = randomBytes(TOTAL);
  const sending = (async () => {
    const ch = await connect(listener.uri);
    for (let i = 0; i < data.length; i += 1 << 20) await ch.write(data.subarray(i, i + (1 << 20)));
    await ch.end();
    return ch;
  })();
  const ch = (await listener.accept()) as SocketChannel;
  assert.ok(isLendingSource(ch), "an accepted tcp/unix channel reads into a receive ring");
  assert.equal(ch.lendLimit, MIN_RING_SLOTS - 1);
  const got = await readerFor(ch);
  assert.equal(got, createHash("sha256").update(data).digest("hex"));
  await ch.close();
  await (await sending).close();
  await listener.close();
}

void suite("SocketChannel with a receive ring", () => {
  const dir = mkdtempSync(join(tmpdir(), "ferry-ring-"));
  test.after(() => rmSync(dir, { recursive: true, force: true }));

  for (const uri of ["tcp:127.0.0.1:0", `unix:${join(dir, "r.sock")}`]) {
    test(`${uri.split(":")[0]}: a slow ByteReader gets every byte through a 4-slot ring`, async () => {
      await roundTrip(uri, async (ch) => {
        const r = new ByteReader(ch);
        const h = createHash("sha256");
        // Records of 1..40,000 bytes: many span several slots, so the reader must copy what it holds
        // (lendLimit) instead of waiting for a slot it still holds.
        let n = 1;
        while (r.offset < TOTAL) {
          const want = Math.min(n, TOTAL - r.offset);
          h.update(await r.decode((r) => r.bytes(want)));
          n = (n * 7919) % 40_000 || 1;
          if ((n & 7) === 0) await tick();
        }
        assert.equal(await r.atEnd(), true);
        return h.digest("hex");
      });
    });
  }

  test("read() hands out copies the caller owns", async () => {
    await roundTrip("tcp:127.0.0.1:0", async (ch) => {
      const kept: Uint8Array[] = [];
      for (let c = await ch.read(); c !== null; c = await ch.read()) kept.push(c);
      // Every chunk was read before hashing: had read() lent ring slots, later reads would have overwritten them.
      const h = createHash("sha256");
      for (const c of kept) h.update(c);
      return h.digest("hex");
    });
  });

  test("bytes() of a lent chunk is a copy; view() is a view of the ring", async () => {
    const listener = await listen("tcp:127.0.0.1:0");
    const { port } = listener.address as { port: number };
    const peer: Socket = netConnect({ host: "127.0.0.1", port });
    await once(peer, "connect");
    const ch = (await listener.accept()) as SocketChannel;
    peer.end(Buffer.from([1, 2, 3, 4, 5, 6]));
    const r = new ByteReader(ch);
    await r.fill(6);
    const copy = r.bytes(3);
    const view = r.view(3);
    assert.deepEqual([...copy, ...view], [1, 2, 3, 4, 5, 6]);
    assert.notEqual(copy.buffer, view.buffer);
    assert.ok(!(view.buffer instanceof SharedArrayBuffer) && view.buffer.byteLength >= 4096, "a ring slot");
    assert.equal(await r.atEnd(), true);
    await ch.close();
    peer.destroy();
    await listener.close();
  });

  test("a channel made on a plain socket (no ring) lends nothing", async () => {
    const listener = await listen("tcp:127.0.0.1:0");
    const { port } = listener.address as { port: number };
    const peer = netConnect({ host: "127.0.0.1", port });
    await once(peer, "connect");
    const accepted = await listener.accept();
    const plain = new SocketChannel(peer, { description: "plain" });
    assert.equal(isLendingSource(plain), false);
    assert.equal(plain.lendLimit, 0);
    await accepted.close();
    await plain.close();
    await listener.close();
  });
});
