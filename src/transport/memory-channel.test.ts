import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { isMigrationError, MigrationError } from "../errors.js";
import { createChannelPair } from "./memory-channel.js";

/** Resolves to whether `promise` settled within one macrotask turn. */
async function settled(promise: Promise<unknown>): Promise<boolean> {
  let done = false;
  promise.then(
    () => {
      done = true;
    },
    () => {
      done = true;
    },
  );
  await new Promise((resolve) => setImmediate(resolve));
  return done;
}

void suite("createChannelPair()", () => {
  test("createChannelPair() delivers chunks in order in both directions", async () => {
    const [a, b] = createChannelPair();
    await a.write(new Uint8Array([1, 2]));
    await a.write(new Uint8Array([3]));
    await b.write(new Uint8Array([9]));
    assert.deepEqual(await b.read(), new Uint8Array([1, 2]));
    assert.deepEqual(await b.read(), new Uint8Array([3]));
    assert.deepEqual(await a.read(), new Uint8Array([9]));
  });

  test("createChannelPair() end() gives the peer null after the queued chunks", async () => {
    const [a, b] = createChannelPair();
    await a.write(new Uint8Array([1]));
    await a.end();
    assert.deepEqual(await b.read(), new Uint8Array([1]));
    assert.equal(await b.read(), null);
    assert.equal(await b.read(), null);
    // The other direction is still open (half-close).
    await b.write(new Uint8Array([7]));
    assert.deepEqual(await a.read(), new Uint8Array([7]));
  });

  test("createChannelPair() resolves a pending read() when the peer ends", async () => {
    const [a, b] = createChannelPair();
    const read = b.read();
    await a.end();
    assert.equal(await read, null);
  });

  test("createChannelPair() holds writes above the high-water mark until the reader drains", async () => {
    const [a, b] = createChannelPair({ highWaterMark: 10 });
    const w1 = a.write(new Uint8Array(6));
    const w2 = a.write(new Uint8Array(6));
    const w3 = a.write(new Uint8Array(3));
    assert.equal(await settled(w1), true);
    assert.equal(await settled(w2), false);
    assert.equal(await settled(w3), false);
    await b.read(); // 6 left queued: w2 (6) fits, and w3 (3) on top of it too
    assert.equal(await settled(w2), true);
    assert.equal(await settled(w3), true);
    const end = a.end();
    assert.equal(await settled(end), true);
  });

  test("createChannelPair() copies by default, so the writer may reuse its buffer", async () => {
    const [a, b] = createChannelPair();
    const buffer = new Uint8Array([1, 2, 3]);
    await a.write(buffer);
    buffer.fill(0);
    assert.deepEqual(await b.read(), new Uint8Array([1, 2, 3]));
  });

  test("createChannelPair({copy: false}) passes chunks by reference and resolves writes on read()", async () => {
    const [a, b] = createChannelPair({ copy: false });
    const buffer = new Uint8Array([1, 2, 3]);
    const write = a.write(buffer);
    assert.equal(await settled(write), false);
    const chunk = await b.read();
    assert.equal(chunk, buffer);
    assert.equal(await settled(write), true);
    // A write to a reader that is already waiting is consumed at once.
    const read = b.read();
    await a.write(new Uint8Array([4]));
    assert.deepEqual(await read, new Uint8Array([4]));
  });

  test("createChannelPair() end() waits for outstanding writes", async () => {
    const [a, b] = createChannelPair({ highWaterMark: 1 });
    const write = a.write(new Uint8Array(4));
    const end = a.end();
    assert.equal(await settled(end), false);
    await b.read();
    await write;
    await end;
    assert.equal(await b.read(), null);
  });

  test("createChannelPair() rejects a write after end()", async () => {
    const [a] = createChannelPair();
    await a.end();
    await assert.rejects(a.write(new Uint8Array(1)), (e: unknown) => isMigrationError(e, "TRANSPORT"));
  });

  test("createChannelPair() abort() fails the peer with TRANSPORT and itself with the reason", async () => {
    const [a, b] = createChannelPair({ highWaterMark: 1 });
    const peerRead = b.read();
    const blocked = b.write(new Uint8Array(8));
    a.abort();
    await assert.rejects(peerRead, (e: unknown) => isMigrationError(e, "TRANSPORT"));
    await assert.rejects(blocked, (e: unknown) => isMigrationError(e, "TRANSPORT"));
    await assert.rejects(a.read(), (e: unknown) => isMigrationError(e, "CANCELLED"));
    await assert.rejects(b.read(), (e: unknown) => isMigrationError(e, "TRANSPORT"));
    await assert.rejects(b.write(new Uint8Array(1)), (e: unknown) => isMigrationError(e, "TRANSPORT"));
    await assert.rejects(a.write(new Uint8Array(1)), (e: unknown) => isMigrationError(e, "CANCELLED"));
  });

  test("createChannelPair() abort(reason) passes a MigrationError reason through", async () => {
    const [a] = createChannelPair();
    const reason = new MigrationError("TIMEOUT", "too slow");
    a.abort(reason);
    await assert.rejects(a.read(), (e: unknown) => e === reason);
  });

  test("createChannelPair() close() ends the write side and makes the peer's writes fail", async () => {
    const [a, b] = createChannelPair();
    await a.write(new Uint8Array([5]));
    await a.close();
    assert.deepEqual(await b.read(), new Uint8Array([5]));
    assert.equal(await b.read(), null);
    await assert.rejects(b.write(new Uint8Array(1)), (e: unknown) => isMigrationError(e, "TRANSPORT"));
    await assert.rejects(a.read(), (e: unknown) => isMigrationError(e, "CANCELLED"));
    await b.close();
  });

  test("createChannelPair() rejects a bad highWaterMark", () => {
    assert.throws(() => createChannelPair({ highWaterMark: 0 }), RangeError);
  });
});
