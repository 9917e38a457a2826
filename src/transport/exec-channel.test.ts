import assert from "node:assert/strict";
import { createHash, randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite, test } from "node:test";
import { isMigrationError } from "../errors.js";
import { ByteReader } from "../wire/byte-reader.js";
import { isLendingSource } from "./channel.js";
import { spawnExecChannel } from "./exec-channel.js";

void suite("spawnExecChannel()", () => {
  test("spawnExecChannel() reads a command's stdout to EOF on the listen side", async () => {
    const channel = await spawnExecChannel("printf 'abc'; printf 'def'", "listen");
    assert.equal(channel.canRead, true);
    assert.equal(channel.canWrite, false);
    let text = "";
    for (let chunk = await channel.read(); chunk !== null; chunk = await channel.read()) {
      text += Buffer.from(chunk).toString();
    }
    assert.equal(text, "abcdef");
    await channel.close();
  });

  test("spawnExecChannel() feeds a command's stdin on the connect side; end() waits for a clean exit", async () => {
    const channel = await spawnExecChannel('test "$(cat)" = ferry', "connect");
    await channel.write(Buffer.from("fer"));
    await channel.write(Buffer.from("ry"));
    await channel.end();
    await channel.close();
  });

  test("spawnExecChannel() keeps only the last stderrLimit bytes of stderr in the message", async () => {
    const channel = await spawnExecChannel(
      "i=0; while [ $i -lt 200 ]; do echo noise >&2; i=$((i+1)); done; echo LAST >&2; exit 7",
      "listen",
      { stderrLimit: 64 },
    );
    await assert.rejects(channel.read(), (e: unknown) => {
      assert.ok(isMigrationError(e, "TRANSPORT"));
      const stderr = e.message.slice(e.message.indexOf("status 7: ") + "status 7: ".length);
      assert.match(stderr, /^\.\.\.noise\n(noise\n)*LAST$/);
      assert.ok(stderr.length <= 64 + 3, stderr);
      return true;
    });
    await channel.close();
  });

  test("ExecChannel.abort() kills the command and fails its operations", async () => {
    const channel = await spawnExecChannel("exec sleep 30", "listen");
    const pid = channel.pid;
    assert.ok(pid !== undefined);
    const reading = assert.rejects(channel.read(), (e: unknown) => isMigrationError(e, "CANCELLED"));
    channel.abort();
    await reading;
    for (let i = 0; i < 100; i++) {
      try {
        process.kill(pid, 0);
      } catch {
        return;
      }
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    assert.fail(`process ${pid} still runs after abort()`);
  });

  test("spawnExecChannel() rejects operations against its direction", async () => {
    const writer = await spawnExecChannel("cat > /dev/null", "connect");
    await assert.rejects(writer.read(), (e: unknown) => isMigrationError(e, "TRANSPORT"));
    await writer.close();
    const reader = await spawnExecChannel("true", "listen");
    await assert.rejects(reader.write(new Uint8Array(1)), (e: unknown) => isMigrationError(e, "TRANSPORT"));
    assert.equal(await reader.read(), null);
    await reader.close();
  });
});

void suite("spawnExecChannel(): the listen side's receive ring", () => {
  test("the command's output is read into a ring it lends, or into given memory; a failing command still fails", async () => {
    const dir = mkdtempSync(join(tmpdir(), "ferry-exec-ring-"));
    try {
      const path = join(dir, "data.bin");
      const data = randomBytes(8 * 1024 * 1024 + 17);
      writeFileSync(path, data);
      const channel = await spawnExecChannel(`cat '${path}'`, "listen");
      assert.ok(isLendingSource(channel), "stdout reads into a receive ring");
      const memory = new Uint8Array(new SharedArrayBuffer(4 * 1024 * 1024));
      assert.equal(channel.receiveInto(memory), true);
      const r = new ByteReader(channel);
      const h = createHash("sha256");
      let inMemory = 0;
      while (!(await r.atEnd())) {
        const n = Math.min(r.available, 100_000);
        const b = await r.decode((r) => r.view(n));
        if (b.buffer === memory.buffer) inMemory++;
        h.update(b);
      }
      assert.ok(inMemory > 0, "later reads land in the given memory");
      assert.equal(h.digest("hex"), createHash("sha256").update(data).digest("hex"));
      await channel.close();

      const failing = await spawnExecChannel(`cat '${path}'; exit 3`, "listen");
      const fr = new ByteReader(failing);
      await assert.rejects(
        (async () => {
          while (!(await fr.atEnd())) fr.skip(fr.available);
        })(),
        (e) => isMigrationError(e, "TRANSPORT") && /3/.test(e.message),
      );
      await failing.close();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
