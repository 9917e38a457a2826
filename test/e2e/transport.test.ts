/**
 * End-to-end tests of the transport layer: 256 MiB round trips through every transport, checked by SHA-256, and
 * the failure modes (refused, reset, killed, silent, cancelled). Loopback and temporary directories only.
 */

import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { once } from "node:events";
import {
  closeSync,
  constants,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeFileSync,
} from "node:fs";
import { type AddressInfo, createServer, type Server, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, afterEach, before, suite, test } from "node:test";
import { setTimeout as delay } from "node:timers/promises";
import { fileURLToPath } from "node:url";
import { isMigrationError } from "../../src/errors.js";
import { fillXorshift32 } from "../../src/machine/xorshift.js";
import {
  type Channel,
  connect,
  createChannelPair,
  ExecChannel,
  type Listener,
  listen,
  registerFd,
  SocketChannel,
} from "../../src/transport/index.js";

const PAYLOAD_BYTES = 256 * 1024 * 1024;
const CHUNK_BYTES = 4 * 1024 * 1024;
const IN_FLIGHT = 4;

let payload: Uint8Array;
let payloadSha: string;
let dir: string;
const unhandled: unknown[] = [];
const onUnhandled = (reason: unknown): void => {
  unhandled.push(reason);
};
const children = new Set<ChildProcess>();

/** Fills `bytes` from xorshift32: fast, and random enough that no transport can compress or pattern-match it. */
const fillRandom = (bytes: Uint8Array, seed: number): void => void fillXorshift32(bytes, seed);

function sha256(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** Sends the payload as 4 MiB chunks with up to 4 writes outstanding, then ends the channel. */
async function send(channel: Channel, data: Uint8Array = payload): Promise<void> {
  const pending: Promise<void>[] = [];
  for (let offset = 0; offset < data.byteLength; offset += CHUNK_BYTES) {
    if (pending.length >= IN_FLIGHT) await pending.shift();
    const write = channel.write(data.subarray(offset, offset + CHUNK_BYTES));
    // When one write fails the others fail too, and this loop stops awaiting them: observe every one.
    write.catch(() => {});
    pending.push(write);
  }
  await Promise.all(pending);
  await channel.end();
}

/** Reads to end of stream and returns the SHA-256 and the byte count. */
async function receive(channel: Channel): Promise<{ sha: string; bytes: number }> {
  const hash = createHash("sha256");
  let bytes = 0;
  for (;;) {
    const chunk = await channel.read();
    if (chunk === null) break;
    assert.ok(chunk.byteLength > 0, "read() returned an empty chunk");
    hash.update(chunk);
    bytes += chunk.byteLength;
  }
  return { sha: hash.digest("hex"), bytes };
}

async function roundTrip(source: Channel, destination: Channel): Promise<void> {
  const [, received] = await Promise.all([send(source), receive(destination)]);
  assert.equal(received.bytes, PAYLOAD_BYTES);
  assert.equal(received.sha, payloadSha);
  await Promise.all([source.close(), destination.close()]);
}

const cleanups: (() => unknown)[] = [];

/** Makes sure a channel is torn down (abort) or a listener closed after the test, whatever the test did. */
function track<T extends Channel | Listener>(item: T): T {
  cleanups.push("abort" in item ? () => item.abort() : () => item.close());
  return item;
}

async function cleanUp(): Promise<void> {
  for (const undo of cleanups.splice(0)) {
    try {
      await undo();
    } catch {
      // Already failed or closed: nothing left to release.
    }
  }
}

async function connectAndAccept(listener: Listener, uri = listener.uri): Promise<[Channel, Channel]> {
  track(listener);
  const [source, destination] = await Promise.all([connect(uri), listener.accept({ timeoutMs: 10_000 })]);
  return [track(source), track(destination)];
}

function bytes(chunk: Uint8Array | null): number[] | null {
  return chunk === null ? null : Array.from(chunk);
}

function isCode(code: "TRANSPORT" | "TIMEOUT" | "CANCELLED" | "BAD_URI", ...fragments: string[]) {
  return (e: unknown): boolean => {
    assert.ok(isMigrationError(e, code), `expected ${code}, got ${String(e)}`);
    for (const fragment of fragments) {
      assert.ok(e.message.includes(fragment), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(fragment)}`);
    }
    return true;
  };
}

/** A port that was free a moment ago (bound and released). */
async function freePort(host: string): Promise<number> {
  const server = createServer();
  server.listen(0, host);
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function closeServer(server: Server): Promise<void> {
  await new Promise((resolve) => server.close(resolve));
}

async function hasIpv6Loopback(): Promise<string | null> {
  const server = createServer();
  try {
    server.listen(0, "::1");
    await once(server, "listening");
    return null;
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  } finally {
    if (server.listening) await closeServer(server);
  }
}

before(() => {
  process.on("unhandledRejection", onUnhandled);
  payload = new Uint8Array(PAYLOAD_BYTES);
  fillRandom(payload, 0x9e3779b9);
  payloadSha = sha256(payload);
  dir = mkdtempSync(join(tmpdir(), "ferry-transport-"));
});

after(() => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill("SIGKILL");
  rmSync(dir, { recursive: true, force: true });
  process.off("unhandledRejection", onUnhandled);
});

void suite("256 MiB round trips", () => {
  afterEach(cleanUp);

  test("memory pair carries 256 MiB intact", async () => {
    const [a, b] = createChannelPair({ highWaterMark: 8 * 1024 * 1024 });
    await roundTrip(a, b);
  });

  test("tcp:127.0.0.1:PORT carries 256 MiB intact", async () => {
    const port = await freePort("127.0.0.1");
    const listener = track(await listen(`tcp:127.0.0.1:${port}`));
    assert.equal(listener.uri, `tcp:127.0.0.1:${port}`);
    await roundTrip(...(await connectAndAccept(listener)));
    await listener.close();
  });

  test("tcp:[::1]:0 carries 256 MiB intact", async (t) => {
    const missing = await hasIpv6Loopback();
    if (missing !== null) {
      t.skip(`this host has no IPv6 loopback (${missing})`);
      return;
    }
    const listener = track(await listen("tcp:[::1]:0"));
    assert.match(listener.uri, /^tcp:\[::1\]:[1-9][0-9]*$/);
    await roundTrip(...(await connectAndAccept(listener)));
    await listener.close();
  });

  test("tcp listen on port 0 picks a port, reported in uri and address", async () => {
    const listener = track(await listen("tcp:127.0.0.1:0"));
    const address = listener.address;
    assert.ok(address !== undefined && "port" in address && address.port > 0);
    assert.equal(listener.uri, `tcp:127.0.0.1:${address.port}`);
    await roundTrip(...(await connectAndAccept(listener, `tcp:127.0.0.1:${address.port}`)));
    await listener.close();
  });

  test("unix:PATH carries 256 MiB intact, with a 0600 socket removed afterwards", async () => {
    const path = join(dir, "mig.sock");
    const listener = track(await listen(`unix:${path}`));
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(listener.address, { path });
    const [source, destination] = await connectAndAccept(listener);
    await roundTrip(source, destination);
    await listener.close();
    assert.throws(() => statSync(path), { code: "ENOENT" });
  });

  test("exec:cat > FILE then exec:cat FILE carry 256 MiB intact", async () => {
    const file = join(dir, "exec.bin");
    const source = track(await connect(`exec:cat > '${file}'`));
    assert.equal(source.canRead, false);
    await send(source);
    await source.close();
    assert.equal(statSync(file).size, PAYLOAD_BYTES);
    const listener = track(await listen(`exec:cat '${file}'`));
    const destination = track(await listener.accept());
    assert.equal(destination.canWrite, false);
    const received = await receive(destination);
    assert.equal(received.sha, payloadSha);
    await destination.close();
    await listener.close();
    rmSync(file);
  });

  test("exec: streams through a FIFO while both commands run", async () => {
    const fifo = join(dir, "exec.fifo");
    execFileSync("mkfifo", [fifo]);
    const listener = track(await listen(`exec:cat '${fifo}'`));
    const [source, destination] = await Promise.all([connect(`exec:cat > '${fifo}'`), listener.accept()]);
    await roundTrip(source, destination);
    await listener.close();
  });

  test("file:PATH,offset=N carries 256 MiB intact and leaves the bytes before N untouched", async () => {
    const file = join(dir, "file.bin");
    const header = new Uint8Array(4096 + 123);
    fillRandom(header, 7);
    writeFileSync(file, header);
    const offset = header.byteLength;
    const source = track(await connect(`file:${file},offset=${offset}`));
    await send(source);
    await source.close();
    assert.equal(statSync(file).size, offset + PAYLOAD_BYTES);
    const fd = openSync(file, "r");
    const before = Buffer.alloc(offset);
    assert.equal(readSync(fd, before, 0, offset, 0), offset);
    closeSync(fd);
    assert.equal(sha256(before), sha256(header));
    const listener = track(await listen(`file:${file},offset=0x${offset.toString(16)}`));
    const destination = track(await listener.accept());
    const received = await receive(destination);
    assert.equal(received.bytes, PAYLOAD_BYTES);
    assert.equal(received.sha, payloadSha);
    await destination.close();
    await listener.close();
    rmSync(file);
  });

  test("fd: a FIFO pair (registered name to raw listen number) carries 256 MiB intact", async () => {
    const fifo = join(dir, "fd.fifo");
    execFileSync("mkfifo", [fifo]);
    // O_NONBLOCK lets the read end open before any writer exists; then the write end opens at once.
    const readFd = openSync(fifo, constants.O_RDONLY | constants.O_NONBLOCK);
    const writeFd = openSync(fifo, constants.O_WRONLY);
    registerFd("e2e-fifo-out", writeFd);
    const source = track(await connect("fd:e2e-fifo-out"));
    assert.equal(source.canRead, false);
    const listener = track(await listen(`fd:${readFd}`));
    const destination = track(await listener.accept());
    assert.equal(destination.canWrite, false);
    await roundTrip(source, destination);
    await listener.close();
  });

  test("fd: a regular-file descriptor carries 256 MiB intact", async () => {
    const file = join(dir, "fd.bin");
    registerFd("e2e-file-out", openSync(file, "w"));
    const source = track(await connect("fd:e2e-file-out"));
    await send(source);
    await source.close();
    registerFd("e2e-file-in", openSync(file, "r"));
    const listener = track(await listen("fd:e2e-file-in"));
    const received = await receive(track(await listener.accept()));
    assert.equal(received.sha, payloadSha);
    await listener.close();
    rmSync(file);
  });

  test("fd: an inherited socket (child's fd 3) carries 256 MiB intact, both ways", async () => {
    const transport = fileURLToPath(new URL("../../src/transport/index.ts", import.meta.url));
    const script = `
      import { createHash } from "node:crypto";
      const { listen } = await import(${JSON.stringify(transport)});
      const listener = await listen("fd:3");
      const channel = await listener.accept();
      const hash = createHash("sha256");
      let bytes = 0;
      for (let c = await channel.read(); c !== null; c = await channel.read()) { hash.update(c); bytes += c.length; }
      await channel.write(new TextEncoder().encode(hash.digest("hex") + " " + bytes));
      await channel.close();
    `;
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      stdio: ["ignore", "inherit", "inherit", "pipe"],
    });
    children.add(child);
    const socket = child.stdio[3];
    assert.ok(socket instanceof Socket);
    const channel = new SocketChannel(socket, { description: "child fd 3" });
    await send(channel);
    // The child answers on the same socket (the return-path direction) with what it received.
    let reply = "";
    for (let chunk = await channel.read(); chunk !== null; chunk = await channel.read()) {
      reply += new TextDecoder().decode(chunk);
    }
    assert.equal(reply, `${payloadSha} ${PAYLOAD_BYTES}`);
    const [code] = (await once(child, "exit")) as [number | null];
    assert.equal(code, 0);
    await channel.close();
  });
});

void suite("one source per destination", () => {
  afterEach(cleanUp);

  test("listen() refuses a second connection while the first works", async () => {
    const listener = track(await listen("tcp:127.0.0.1:0"));
    const [source, destination] = await connectAndAccept(listener);
    await assert.rejects(connect(listener.uri), isCode("TRANSPORT", listener.uri));
    await assert.rejects(listener.accept(), isCode("TRANSPORT", "already accepted"));
    await source.write(new Uint8Array([1, 2, 3]));
    assert.deepEqual(bytes(await destination.read()), [1, 2, 3]);
    await destination.write(new Uint8Array([4]));
    assert.deepEqual(bytes(await source.read()), [4]);
    await Promise.all([source.close(), destination.close()]);
    await listener.close();
  });

  test("listen() drops a second connection that arrives before accept()", async () => {
    const listener = track(await listen("tcp:127.0.0.1:0"));
    const first = track(await connect(listener.uri));
    let second: Channel | null = null;
    try {
      second = track(await connect(listener.uri));
    } catch (e) {
      assert.ok(isMigrationError(e, "TRANSPORT"));
    }
    if (second !== null) {
      // Connected in the kernel's backlog, then destroyed by the listener: end of stream or a reset, never data.
      const outcome = await second.read().then(
        (chunk) => chunk,
        (e: unknown) => (isMigrationError(e, "TRANSPORT") ? "reset" : e),
      );
      assert.ok(outcome === null || outcome === "reset", `unexpected ${String(outcome)}`);
      second.abort();
    }
    const destination = await listener.accept({ timeoutMs: 5000 });
    await first.write(new Uint8Array([42]));
    assert.deepEqual(bytes(await destination.read()), [42]);
    await Promise.all([first.close(), destination.close()]);
    await listener.close();
  });

  test("listen() on unix: replaces a stale socket but not a live one or a regular file", async () => {
    const stale = join(dir, "stale.sock");
    // A process that binds and dies without cleaning up leaves a stale socket file.
    const child = spawn(
      process.execPath,
      [
        "-e",
        `require("net").createServer().listen(${JSON.stringify(stale)}, () => process.kill(process.pid, "SIGKILL"))`,
      ],
      { stdio: "ignore" },
    );
    children.add(child);
    await once(child, "exit");
    assert.ok(statSync(stale).isSocket());
    const listener = track(await listen(`unix:${stale}`));
    await assert.rejects(listen(`unix:${stale}`), isCode("TRANSPORT", "another process is listening"));
    await listener.close();

    const regular = join(dir, "regular.sock");
    writeFileSync(regular, "keep me");
    await assert.rejects(listen(`unix:${regular}`), isCode("TRANSPORT", "not a socket"));
    assert.equal(readFileSync(regular, "utf8"), "keep me");
  });
});

void suite("failures", () => {
  afterEach(cleanUp);

  test("a destination that resets mid-transfer fails the source's writes with TRANSPORT", async () => {
    const listener = track(await listen("tcp:127.0.0.1:0"));
    const [source, destination] = await connectAndAccept(listener);
    const sending = send(source);
    assert.ok(((await destination.read()) ?? new Uint8Array()).byteLength > 0);
    destination.abort();
    await assert.rejects(sending, isCode("TRANSPORT", listener.uri));
    source.abort();
    await listener.close();
  });

  test("a raw peer socket destroyed mid-transfer fails the source with TRANSPORT", async () => {
    const server = createServer((socket) => {
      socket.once("data", () => socket.destroy());
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    const { port } = server.address() as AddressInfo;
    const source = track(await connect(`tcp:127.0.0.1:${port}`));
    await assert.rejects(send(source), isCode("TRANSPORT"));
    source.abort();
    await closeServer(server);
  });

  test("a source that resets while the destination waits in read() fails that read with TRANSPORT", async () => {
    const listener = track(await listen("tcp:127.0.0.1:0"));
    const [source, destination] = await connectAndAccept(listener);
    await source.write(payload.subarray(0, 1024 * 1024));
    let received = 0;
    while (received < 1024 * 1024) received += ((await destination.read()) ?? new Uint8Array()).byteLength;
    const reading = destination.read();
    await delay(20);
    source.abort();
    await assert.rejects(reading, isCode("TRANSPORT", "ECONNRESET"));
    await destination.close();
    await listener.close();
  });

  test("a killed exec: reader fails the destination's read with TRANSPORT", async () => {
    const listener = track(await listen("exec:exec cat /dev/zero"));
    const destination = track(await listener.accept());
    assert.ok(destination instanceof ExecChannel && destination.pid !== undefined);
    assert.ok(((await destination.read()) ?? new Uint8Array()).byteLength > 0);
    process.kill(destination.pid, "SIGKILL");
    await assert.rejects(receive(destination), isCode("TRANSPORT", "SIGKILL"));
    await destination.close();
    await listener.close();
  });

  test("a killed exec: writer fails the source's writes with TRANSPORT", async () => {
    const source = track(await connect("exec:exec cat > /dev/null"));
    assert.ok(source instanceof ExecChannel && source.pid !== undefined);
    await source.write(payload.subarray(0, 1024 * 1024));
    process.kill(source.pid, "SIGKILL");
    await assert.rejects(send(source), isCode("TRANSPORT", "SIGKILL"));
    await source.close().catch(() => {});
  });

  test("a silent peer past idleTimeoutMs fails the read with TIMEOUT", async () => {
    const listener = track(await listen("tcp:127.0.0.1:0", { idleTimeoutMs: 200 }));
    const [source, destination] = await connectAndAccept(listener);
    const started = Date.now();
    await assert.rejects(destination.read(), isCode("TIMEOUT", "200 ms"));
    const waited = Date.now() - started;
    assert.ok(waited >= 190 && waited < 5000, `waited ${waited} ms`);
    source.abort();
    await listener.close();
  });

  test("idleTimeoutMs does not fire while data keeps arriving", async () => {
    const listener = track(await listen("tcp:127.0.0.1:0", { idleTimeoutMs: 150 }));
    const [source, destination] = await connectAndAccept(listener);
    const writer = (async () => {
      for (let i = 0; i < 6; i++) {
        await delay(60);
        await source.write(new Uint8Array([i]));
      }
      await source.end();
    })();
    const received = await receive(destination);
    assert.equal(received.bytes, 6);
    await writer;
    await Promise.all([source.close(), destination.close()]);
    await listener.close();
  });

  test("connect() to a port just closed fails with TRANSPORT naming the URI", async () => {
    const port = await freePort("127.0.0.1");
    const uri = `tcp:127.0.0.1:${port}`;
    await assert.rejects(connect(uri), isCode("TRANSPORT", uri, "ECONNREFUSED"));
  });

  test("connect() to a missing unix socket fails with TRANSPORT", async () => {
    const uri = `unix:${join(dir, "missing.sock")}`;
    await assert.rejects(connect(uri), isCode("TRANSPORT", uri));
  });

  test("listen() on a missing file fails accept() with TRANSPORT", async () => {
    const uri = `file:${join(dir, "missing.bin")}`;
    const listener = track(await listen(uri));
    await assert.rejects(listener.accept(), isCode("TRANSPORT", uri, "ENOENT"));
    await listener.close();
  });

  test("listen() on a tcp port in use fails with TRANSPORT", async () => {
    const listener = track(await listen("tcp:127.0.0.1:0"));
    await assert.rejects(listen(listener.uri), isCode("TRANSPORT", "EADDRINUSE"));
    await listener.close();
  });

  test("connect() to an unregistered fd name fails with TRANSPORT", async () => {
    await assert.rejects(connect("fd:e2e-nobody"), isCode("TRANSPORT", "e2e-nobody"));
  });

  test("exec: writer whose command exits 3 fails end() with TRANSPORT and the status", async () => {
    const source = track(await connect("exec:cat > /dev/null; echo 'disk full' >&2; exit 3"));
    await source.write(new Uint8Array(1024));
    await assert.rejects(source.end(), isCode("TRANSPORT", "status 3", "disk full"));
    await source.close().catch(() => {});
  });

  test("exec: writer whose command exits 3 at once fails the writes with TRANSPORT, not a crash", async () => {
    const source = track(await connect("exec:exit 3"));
    await assert.rejects(send(source), isCode("TRANSPORT", "status 3"));
    await source.close().catch(() => {});
  });

  test("exec: reader whose command exits 3 fails the last read() with TRANSPORT and the status", async () => {
    const listener = await listen("exec:echo partial; exit 3");
    const destination = track(await listener.accept());
    assert.equal(new TextDecoder().decode((await destination.read()) ?? new Uint8Array()), "partial\n");
    await assert.rejects(destination.read(), isCode("TRANSPORT", "status 3"));
    await destination.close();
    await listener.close();
  });

  test("close() on an exec: reader kills a command that is still running", async () => {
    const listener = track(await listen("exec:exec sleep 30"));
    const destination = track(await listener.accept());
    assert.ok(destination instanceof ExecChannel && destination.pid !== undefined);
    const pid = destination.pid;
    const started = Date.now();
    await destination.close();
    assert.ok(Date.now() - started < 5000);
    assert.throws(() => process.kill(pid, 0), { code: "ESRCH" });
    await listener.close();
  });

  test("an AbortSignal cancels accept(), listen() and connect() with CANCELLED", async () => {
    const listener = track(await listen("tcp:127.0.0.1:0"));
    const controller = new AbortController();
    const accepting = listener.accept({ signal: controller.signal });
    setTimeout(() => controller.abort(), 50);
    await assert.rejects(accepting, isCode("CANCELLED"));
    await assert.rejects(listener.accept({ timeoutMs: 50 }), isCode("TIMEOUT"));
    await listener.close();

    const listenController = new AbortController();
    const second = track(await listen("tcp:127.0.0.1:0", { signal: listenController.signal }));
    const pending = second.accept();
    listenController.abort();
    await assert.rejects(pending, isCode("CANCELLED"));
    await assert.rejects(second.accept(), isCode("CANCELLED"));

    await assert.rejects(connect("tcp:127.0.0.1:9", { signal: AbortSignal.abort() }), isCode("CANCELLED"));
    await assert.rejects(listen("tcp:127.0.0.1:0", { signal: AbortSignal.abort() }), isCode("CANCELLED"));
  });

  test("a malformed URI fails connect() and listen() with BAD_URI", async () => {
    await assert.rejects(connect("tcp:foo"), isCode("BAD_URI", "missing port"));
    await assert.rejects(listen("bogus:1"), isCode("BAD_URI", "valid migration protocol"));
  });

  test("no transport left an unhandled rejection behind", async () => {
    // Give stray rejections one more turn to surface.
    await delay(50);
    assert.deepEqual(unhandled, []);
  });
});
