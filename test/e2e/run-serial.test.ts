/**
 * `ferry run --serial unix:PATH`: the guest's UART over a socket, both ways (the `echo` guest), and a guest
 * power-off ending the process with status 0.
 */
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("../../", import.meta.url));
const dir = mkdtempSync(join(tmpdir(), "ferry-serial-"));
const pids: number[] = [];
after(() => {
  for (const pid of pids) {
    try {
      process.kill(pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

test("ferry run --serial unix: echoes input through the guest's UART; power-off exits 0", {
  timeout: 30_000,
}, async () => {
  const sock = join(dir, "serial.sock");
  const child = spawn(
    process.execPath,
    ["--import", "tsx", join(root, "src/cli/run-main.ts"), "--machine", "ferry-rv32", "--kernel"].concat([
      join(root, "guests/echo.elf"),
      "--memory",
      "16M",
      "--serial",
      `unix:${sock}`,
    ]),
    { cwd: root, stdio: ["ignore", "ignore", "pipe"] },
  );
  pids.push(child.pid as number);
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let err = "";
  await new Promise<void>((resolve, reject) => {
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (d: string) => {
      err += d;
      if (err.includes("ferry: running")) resolve();
    });
    void exited.then(() => reject(new Error(err)));
  });
  assert.match(err, /^ferry: running ferry-rv32-1\.1, serial unix:.*, pid \d+$/m);
  const socket = connect({ path: sock });
  let out = "";
  socket.setEncoding("latin1");
  socket.on("data", (d: string) => {
    out += d;
  });
  const until = async (cond: () => boolean): Promise<void> => {
    const t0 = Date.now();
    while (!cond()) {
      if (Date.now() - t0 > 10_000) throw new Error(`Timed out; serial so far: ${JSON.stringify(out)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  await new Promise<void>((resolve) => socket.once("connect", () => resolve()));
  socket.write("hello, ferry");
  await until(() => out.includes("hello, ferry"));
  socket.write("\u0004");
  assert.equal(await exited, 0);
  socket.destroy();
});
