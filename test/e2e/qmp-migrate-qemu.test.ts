/**
 * One management client for both: Ferry's QmpClient (and `ferry migrate`) drive a live migration between two real
 * QEMU 7.2 processes over tcp loopback, following events and query-migrate to completed.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, suite, test } from "node:test";
import { promisify } from "node:util";
import { QmpClient } from "../../src/qmp/client.js";
import { skipUnless } from "../support/system.js";

const skip = skipUnless("qemu-system-x86_64", "qemu-system-x86");
const dir = mkdtempSync(join(tmpdir(), "ferry-qmpmig-"));
const children: ChildProcess[] = [];
after(() => {
  for (const c of children) if (c.exitCode === null && c.pid !== undefined) process.kill(c.pid, "SIGKILL");
  rmSync(dir, { recursive: true, force: true });
});

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

async function qemu(name: string, extra: string[]): Promise<{ qmp: QmpClient; proc: ChildProcess }> {
  const sock = join(dir, `${name}.sock`);
  const proc = spawn(
    "qemu-system-x86_64",
    ["-M", "pc", "-m", "64", "-nodefaults", "-display", "none", "-qmp", `unix:${sock},server=on,wait=off`, ...extra],
    { stdio: ["ignore", "ignore", "pipe"] },
  );
  children.push(proc);
  for (let i = 0; i < 200 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 25));
  const qmp = await QmpClient.connect(`unix:${sock}`);
  return { qmp, proc };
}

async function pair(): Promise<{ src: QmpClient; dst: QmpClient; uri: string; srcSock: string; dstSock: string }> {
  const port = await freePort();
  const uri = `tcp:127.0.0.1:${port}`;
  const tag = Math.random().toString(36).slice(2);
  const dst = await qemu(`dst-${tag}`, ["-incoming", uri]);
  const src = await qemu(`src-${tag}`, []);
  return {
    src: src.qmp,
    dst: dst.qmp,
    uri,
    srcSock: join(dir, `src-${tag}.sock`),
    dstSock: join(dir, `dst-${tag}.sock`),
  };
}

void suite("QmpClient drives a QEMU 7.2 → QEMU 7.2 live migration", { skip }, () => {
  test("events and query-migrate follow it to completed; the destination runs", async () => {
    const { src, dst, uri } = await pair();
    try {
      for (const q of [src, dst]) {
        await q.execute("migrate-set-capabilities", { capabilities: [{ capability: "events", state: true }] } as never);
      }
      await src.execute("migrate", { uri } as never);
      const done = await src.waitEvent(
        "MIGRATION",
        (e) => (e.data as { status?: string } | undefined)?.status === "completed",
        60_000,
      );
      assert.ok(done);
      const info = (await src.execute("query-migrate")) as { status: string; ram: { total: number } };
      assert.equal(info.status, "completed");
      assert.ok(info.ram.total > 64 << 20);
      await dst.waitEvent("RESUME", undefined, 30_000);
      const status = (await dst.execute("query-status")) as { status: string; running: boolean };
      assert.equal(status.status, "running");
      const srcStatus = (await src.execute("query-status")) as { status: string };
      assert.equal(srcStatus.status, "postmigrate");
    } finally {
      await src.execute("quit").catch(() => {});
      await dst.execute("quit").catch(() => {});
      await src.close();
      await dst.close();
    }
  });

  test("`ferry migrate` drives QEMU with the same commands", async () => {
    const { src, dst, uri, srcSock, dstSock } = await pair();
    // QEMU's QMP socket serves one client at a time: hand both over to the CLI.
    await src.close();
    await dst.close();
    const bin = new URL("../../bin/ferry.js", import.meta.url).pathname;
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [bin, "migrate", "--qmp", `unix:${srcSock}`, "--to", uri, "--dest-qmp", `unix:${dstSock}`, "--json"],
      { timeout: 60_000 },
    );
    const info = JSON.parse(stdout) as { status: string; downtime: number };
    assert.equal(info.status, "completed");
    assert.ok(info.downtime >= 0);
    for (const sock of [srcSock, dstSock]) {
      const q = await QmpClient.connect(`unix:${sock}`);
      await q.execute("quit").catch(() => {});
      await q.close();
    }
  });
});
