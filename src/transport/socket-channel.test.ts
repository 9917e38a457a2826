import assert from "node:assert/strict";
import { once } from "node:events";
import { type AddressInfo, connect, createServer, type Socket } from "node:net";
import { afterEach, suite, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { isMigrationError } from "../errors.js";
import { SocketChannel, type SocketChannelOptions } from "./socket-channel.js";

const open: Socket[] = [];

/** A connected loopback pair: a channel on one end, the raw socket on the other. */
async function socketPair(options: Partial<SocketChannelOptions> = {}): Promise<[SocketChannel, Socket, Socket]> {
  const server = createServer({ allowHalfOpen: true });
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  const accepted = once(server, "connection") as Promise<[Socket]>;
  const client = connect({ port, host: "127.0.0.1", allowHalfOpen: true });
  await once(client, "connect");
  const [peer] = await accepted;
  server.close();
  open.push(client, peer);
  peer.on("error", () => {});
  return [new SocketChannel(client, { description: "test", ...options }), peer, client];
}

function code(expected: string) {
  return (e: unknown): boolean => isMigrationError(e) && e.code === expected;
}

void suite("SocketChannel", () => {
  afterEach(() => {
    for (const socket of open.splice(0)) socket.destroy();
  });

  test("SocketChannel.read() returns chunks in order, then null after the peer's FIN", async () => {
    const [channel, peer] = await socketPair();
    peer.end(Buffer.from("hello"));
    let text = "";
    for (let chunk = await channel.read(); chunk !== null; chunk = await channel.read()) {
      text += Buffer.from(chunk).toString();
    }
    assert.equal(text, "hello");
    assert.equal(await channel.read(), null);
    await channel.close();
  });

  test("SocketChannel.end() half-closes: the peer sees EOF and can still answer", async () => {
    const [channel, peer] = await socketPair();
    const peerEnded = once(peer, "end");
    peer.resume();
    await channel.write(new Uint8Array([1]));
    await channel.end();
    await peerEnded;
    peer.end(Buffer.from([9]));
    assert.deepEqual(Array.from((await channel.read()) ?? []), [9]);
    assert.equal(await channel.read(), null);
    await assert.rejects(channel.write(new Uint8Array(1)), code("TRANSPORT"));
    await channel.close();
  });

  test("SocketChannel pauses the socket above highWaterMark and resumes when drained", async () => {
    const [channel, peer, socket] = await socketPair({ highWaterMark: 256 * 1024 });
    const data = Buffer.alloc(4 * 1024 * 1024, 0x5a);
    const written = new Promise((resolve) => peer.end(data, () => resolve(undefined)));
    await delay(100);
    assert.equal(socket.isPaused(), true);
    let total = 0;
    for (let chunk = await channel.read(); chunk !== null; chunk = await channel.read()) {
      assert.ok(chunk.every((b) => b === 0x5a));
      total += chunk.byteLength;
    }
    await written;
    assert.equal(total, data.byteLength);
    assert.equal(socket.isPaused(), false);
    await channel.close();
  });

  test("SocketChannel.abort() fails its own operations and resets the peer", async () => {
    const [channel, peer] = await socketPair();
    const reading = channel.read();
    const peerError = once(peer, "error");
    channel.abort();
    await assert.rejects(reading, code("CANCELLED"));
    await assert.rejects(channel.write(new Uint8Array(1)), code("CANCELLED"));
    const [error] = (await peerError) as [NodeJS.ErrnoException];
    assert.equal(error.code, "ECONNRESET");
  });

  test("SocketChannel.close() fails a pending read with CANCELLED", async () => {
    const [channel] = await socketPair();
    const reading = assert.rejects(channel.read(), code("CANCELLED"));
    await channel.close();
    await reading;
    await assert.rejects(channel.read(), code("CANCELLED"));
  });

  test("SocketChannel reports a peer that vanishes without FIN as TRANSPORT", async () => {
    const [channel, peer] = await socketPair();
    const reading = channel.read();
    await delay(10);
    peer.resetAndDestroy();
    await assert.rejects(reading, code("TRANSPORT"));
    await assert.rejects(channel.write(new Uint8Array(1)), code("TRANSPORT"));
  });

  test("SocketChannel idleTimeoutMs counts only while a read() waits", async () => {
    const [channel, peer] = await socketPair({ idleTimeoutMs: 80 });
    await delay(200); // no read pending: no timeout
    peer.write(Buffer.from([1]));
    assert.deepEqual(Array.from((await channel.read()) ?? []), [1]);
    const started = Date.now();
    await assert.rejects(channel.read(), code("TIMEOUT"));
    assert.ok(Date.now() - started >= 75);
    await assert.rejects(channel.write(new Uint8Array(1)), code("TIMEOUT"));
  });

  test("SocketChannel rejects operations against its direction", async () => {
    const [channel] = await socketPair({ canRead: false });
    await assert.rejects(channel.read(), code("TRANSPORT"));
    await channel.close();
    const [readOnly] = await socketPair({ canWrite: false });
    await assert.rejects(readOnly.write(new Uint8Array(1)), code("TRANSPORT"));
    await readOnly.end();
    readOnly.abort();
  });

  test("SocketChannel rejects bad options with RangeError", async () => {
    const [, peer] = await socketPair();
    assert.throws(() => new SocketChannel(peer, { highWaterMark: 0 }), RangeError);
    assert.throws(() => new SocketChannel(peer, { idleTimeoutMs: -1 }), RangeError);
  });
});
