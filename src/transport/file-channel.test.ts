import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, suite, test } from "node:test";
import { isMigrationError } from "../errors.js";
import { ByteReader } from "../wire/byte-reader.js";
import { type Channel, isLendingSource } from "./channel.js";
import { addFdToSet, removeFdFromSet } from "./fd-registry.js";
import { FileChannel, openFileChannel } from "./file-channel.js";

const dir = mkdtempSync(join(tmpdir(), "ferry-file-channel-"));
after(() => rmSync(dir, { recursive: true, force: true }));

async function readAll(channel: Channel): Promise<{ bytes: Buffer; sizes: number[] }> {
  const chunks: Uint8Array[] = [];
  for (let chunk = await channel.read(); chunk !== null; chunk = await channel.read()) chunks.push(chunk);
  return { bytes: Buffer.concat(chunks), sizes: chunks.map((c) => c.byteLength) };
}

void suite("openFileChannel()", () => {
  test("openFileChannel() writes at the offset, keeps the bytes before it and cuts an old tail", async () => {
    const path = join(dir, "offset.bin");
    writeFileSync(path, Buffer.alloc(100, 0xaa));
    const out = await openFileChannel(path, 10, "connect");
    assert.equal(out.description, `file:${path},offset=10`);
    await Promise.all([out.write(Buffer.from("abc")), out.write(Buffer.from("def"))]);
    await out.end();
    const data = readFileSync(path);
    assert.equal(data.length, 16);
    assert.deepEqual(data.subarray(0, 10), Buffer.alloc(10, 0xaa));
    assert.equal(data.subarray(10).toString(), "abcdef");
  });

  test("openFileChannel() with truncate: false leaves an old tail in place", async () => {
    const path = join(dir, "keep-tail.bin");
    writeFileSync(path, Buffer.alloc(20, 0x61));
    const out = await openFileChannel(path, 2, "connect", { truncate: false });
    await out.write(Buffer.from("XY"));
    await out.close();
    assert.equal(readFileSync(path).toString(), `aaXY${"a".repeat(16)}`);
  });

  test("openFileChannel() creates a missing file with mode 0600", async () => {
    const path = join(dir, "new.bin");
    const out = await openFileChannel(path, 0, "connect");
    await out.write(Buffer.from("x"));
    await out.end();
    assert.equal(statSync(path).mode & 0o777, 0o600);
  });

  test("openFileChannel() reads from the offset in blocks of blockSize", async () => {
    const path = join(dir, "blocks.bin");
    writeFileSync(path, Buffer.from("0123456789abcdefghij"));
    const input = await openFileChannel(path, 5, "listen", { blockSize: 4 });
    const { bytes, sizes } = await readAll(input);
    assert.equal(bytes.toString(), "56789abcdefghij");
    assert.deepEqual(sizes, [4, 4, 4, 3]);
    assert.equal(await input.read(), null);
    await input.close();
  });

  test("openFileChannel() reading past the end gives an immediate null", async () => {
    const path = join(dir, "short.bin");
    writeFileSync(path, "ab");
    const input = await openFileChannel(path, 100, "listen");
    assert.equal(await input.read(), null);
  });

  test("openFileChannel() fails with TRANSPORT for a missing file or directory", async () => {
    await assert.rejects(openFileChannel(join(dir, "nope.bin"), 0, "listen"), (e: unknown) => {
      assert.ok(isMigrationError(e, "TRANSPORT"));
      assert.match(e.message, /^Cannot open for reading file:.*nope\.bin: ENOENT/);
      return true;
    });
    await assert.rejects(openFileChannel(join(dir, "no-dir", "x.bin"), 0, "connect"), (e: unknown) =>
      isMigrationError(e, "TRANSPORT"),
    );
  });

  test("openFileChannel() on /dev/fdset/ID uses a set member with a fitting mode and leaves it open", async () => {
    const path = join(dir, "fdset.bin");
    writeFileSync(path, "");
    const readFd = openSync(path, "r");
    const writeFd = openSync(path, "r+");
    const { fdsetId } = addFdToSet(readFd, { fdsetId: 4242 });
    addFdToSet(writeFd, { fdsetId });
    const out = await openFileChannel(`/dev/fdset/${fdsetId}`, 3, "connect");
    await out.write(Buffer.from("hey"));
    await out.end();
    const input = await openFileChannel(`/dev/fdset/${fdsetId}`, 3, "listen");
    assert.equal((await readAll(input)).bytes.toString(), "hey");
    assert.equal(readFileSync(path).length, 6);
    assert.equal(removeFdFromSet(fdsetId), true); // closes both: they must still have been open
    await assert.rejects(openFileChannel("/dev/fdset/4242", 0, "listen"), (e: unknown) =>
      isMigrationError(e, "TRANSPORT"),
    );
  });
});

void suite("FileChannel", () => {
  test("FileChannel rejects writes after abort() and reads on a write-only end", async () => {
    const path = join(dir, "abort.bin");
    const fd = openSync(path, "w");
    const out = new FileChannel(fd, "connect", { description: "abort", position: 0, ownsFd: true });
    await assert.rejects(out.read(), (e: unknown) => isMigrationError(e, "TRANSPORT"));
    await out.write(Buffer.from("a"));
    out.abort();
    await assert.rejects(out.write(Buffer.from("b")), (e: unknown) => isMigrationError(e, "CANCELLED"));
    await assert.rejects(out.end(), (e: unknown) => isMigrationError(e, "CANCELLED"));
  });

  test("FileChannel with position null uses and moves the descriptor's own position", async () => {
    const path = join(dir, "current.bin");
    writeFileSync(path, "hello world");
    const fd = openSync(path, "r");
    const input = new FileChannel(fd, "listen", { description: "cur", position: null, ownsFd: false, blockSize: 5 });
    assert.equal(Buffer.from((await input.read()) ?? []).toString(), "hello");
    await input.close();
    const rest = Buffer.alloc(6);
    // The descriptor moved past "hello": a plain read continues from there.
    const n = (await import("node:fs")).readSync(fd, rest, 0, 6, null);
    assert.equal(rest.subarray(0, n).toString(), " world");
    closeSync(fd);
  });
});

void suite("FileChannel lending", () => {
  test("a ByteReader reads a file through slots in given memory; records longer than the slots come out whole", async () => {
    const path = join(dir, "lend.bin");
    const data = randomBytes(3 * 1024 * 1024 + 123);
    writeFileSync(path, data);
    const block = 64 * 1024;
    const input = new FileChannel(openSync(path, "r"), "listen", {
      description: "lend",
      position: 0,
      ownsFd: true,
      blockSize: block,
    });
    assert.ok(isLendingSource(input));
    const memory = new Uint8Array(new SharedArrayBuffer(4 * block + 100));
    assert.equal(input.receiveInto(memory.subarray(0, block)), false, "one block is too little");
    assert.equal(input.receiveInto(memory), true);
    assert.equal(input.lendLimit, 3);
    const first = await input.readLent();
    assert.equal(first?.buffer, memory.buffer, "blocks land in the given memory");
    assert.deepEqual(first?.subarray(0, 16), new Uint8Array(data.subarray(0, 16)));
    input.release(first as Uint8Array);
    const r = new ByteReader(input);
    const h = createHash("sha256").update(data.subarray(0, block));
    let n = 1;
    let at = block;
    while (at < data.length) {
      // Up to 300 KiB per record: more than the three lendable slots hold.
      const want = Math.min(n, data.length - at);
      h.update(await r.decode((r) => r.bytes(want)));
      at += want;
      n = (n * 48271) % 300_000 || 1;
    }
    assert.equal(await r.atEnd(), true);
    assert.equal(h.digest("hex"), createHash("sha256").update(data).digest("hex"));
    await input.close();
  });
});
