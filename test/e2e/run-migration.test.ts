/**
 * `ferry run` end to end: two processes, the `dirty` guest migrated live between them over QMP (tcp, unix, exec),
 * the RAM invariant checked on the destination through `pmemsave`, the guest running on there, and a source that
 * resumes when its destination is killed mid-way.
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, suite, test } from "node:test";
import { fileURLToPath } from "node:url";
import { checkDirtyInvariant } from "../../src/machine/rv32/dirty-invariant.js";
import { RAM_BASE } from "../../src/machine/rv32/memory-map.js";
import { QmpClient } from "../../src/qmp/client.js";

const root = fileURLToPath(new URL("../../", import.meta.url));
const entry = join(root, "src/cli/run-main.ts");
const kernel = join(root, "guests/dirty.elf");
const dir = mkdtempSync(join(tmpdir(), "ferry-run-"));
const MEM = 32 << 20;

interface Proc {
  readonly child: ChildProcess;
  readonly pid: number;
  readonly ready: string;
  readonly qmp: string;
  readonly incoming: string | undefined;
  readonly serial: string;
  readonly exited: Promise<number | null>;
}

const procs: Proc[] = [];
const clients: QmpClient[] = [];
after(async () => {
  for (const c of clients) await c.close().catch(() => {});
  for (const p of procs) {
    try {
      process.kill(p.pid, "SIGKILL");
    } catch {
      // Already gone.
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

let seq = 0;

/** Spawns `ferry run` and waits for its readiness line. */
async function ferryRun(args: string[], fd3Redirect?: string): Promise<Proc> {
  const n = ++seq;
  const qmp = `unix:${join(dir, `qmp${n}.sock`)}`;
  const serial = join(dir, `serial${n}.txt`);
  const argv = ["--import", "tsx", entry, "--qmp", qmp, "--serial", `file:${serial}`, "--memory", `${MEM >> 20}M`];
  argv.push(...args);
  // With a redirect, a shell opens descriptor 3 (e.g. `3<FIFO`) and execs node, which inherits it.
  const child =
    fd3Redirect === undefined
      ? spawn(process.execPath, argv, { cwd: root, stdio: ["ignore", "ignore", "pipe"] })
      : spawn("/bin/sh", ["-c", `exec "$0" "$@" ${fd3Redirect}`, process.execPath, ...argv], {
          cwd: root,
          stdio: ["ignore", "ignore", "pipe"],
        });
  const pid = child.pid as number;
  const exited = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)));
  let err = "";
  const ready = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`ferry run did not get ready: ${err}`)), 20_000);
    child.stderr?.setEncoding("utf8");
    child.stderr?.on("data", (d: string) => {
      err += d;
      const line = err.split("\n").find((l) => l.startsWith("ferry: running"));
      if (line !== undefined) {
        clearTimeout(timer);
        resolve(line);
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`ferry run exited (${code}): ${err}`));
    });
  });
  const incoming = /, incoming (.+)$/.exec(ready)?.[1];
  const p: Proc = { child, pid, ready, qmp, incoming, serial, exited };
  procs.push(p);
  return p;
}

async function client(p: Proc): Promise<QmpClient> {
  const c = await QmpClient.connect(p.qmp);
  clients.push(c);
  return c;
}

function serialText(p: Proc): string {
  try {
    return readFileSync(p.serial, "latin1");
  } catch {
    return "";
  }
}

function serialSize(p: Proc): number {
  try {
    return statSync(p.serial).size;
  } catch {
    return 0;
  }
}

async function until(what: string, cond: () => boolean | Promise<boolean>, timeoutMs = 30_000): Promise<void> {
  const t0 = Date.now();
  while (!(await cond())) {
    if (Date.now() - t0 > timeoutMs) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function migrationStatus(c: QmpClient): Promise<string | undefined> {
  return (await c.execute("query-migrate")).status;
}

/** Runs one live migration of the dirty guest and checks the destination. Returns the downtime in ms. */
async function migrateDirty(transport: "tcp" | "unix" | "exec" | "fd"): Promise<number> {
  const fdFifo = join(dir, `fd${seq}.fifo`);
  if (transport === "fd") execFileSync("mkfifo", [fdFifo]);
  const srcArgs = ["--machine", "ferry-rv32", "--kernel", kernel];
  let src: Proc;
  let dst: Proc;
  if (transport === "fd") {
    // One pipe (a FIFO) between the two processes, inherited as descriptor 3 and named with --add-fd.
    [src, dst] = await Promise.all([
      ferryRun([...srcArgs, "--add-fd", "mig=3"], `3>${fdFifo}`),
      ferryRun([...srcArgs, "--add-fd", "mig=3", "--incoming", "fd:mig"], `3<${fdFifo}`),
    ]);
  } else {
    src = await ferryRun(srcArgs);
    dst = await startDestination(transport);
  }
  return migrateBetween(src, dst, transport);
}

async function startDestination(transport: "tcp" | "unix" | "exec"): Promise<Proc> {
  const fifo = join(dir, `mig${seq}.fifo`);
  const incomingUri =
    transport === "tcp"
      ? "tcp:127.0.0.1:0"
      : transport === "unix"
        ? `unix:${join(dir, `mig${seq}.sock`)}`
        : `exec:cat ${fifo}`;
  if (transport === "exec") execFileSync("mkfifo", [fifo]);
  if (transport === "unix") {
    // QEMU's `-incoming defer`, then `migrate-incoming` over QMP.
    const dst = await ferryRun(["--machine", "ferry-rv32", "--kernel", kernel, "--incoming", "defer"]);
    assert.match(dst.ready, /, incoming defer$/);
    const cd = await client(dst);
    await cd.execute("migrate-incoming", { uri: incomingUri });
    return { ...dst, incoming: incomingUri };
  }
  const dst = await ferryRun(["--machine", "ferry-rv32", "--kernel", kernel, "--incoming", incomingUri]);
  return transport === "exec" ? { ...dst, incoming: `exec:cat > ${fifo}` } : dst;
}

async function migrateBetween(src: Proc, dst: Proc, transport: string): Promise<number> {
  assert.ok(dst.incoming !== undefined, dst.ready);
  const cs = await client(src);
  const cd = await client(dst);
  assert.equal((await cd.execute("query-status")).status, "inmigrate");
  await until("the source guest's first passes", () => /A.*B.*B/.test(serialText(src)));
  const returnPath = transport !== "exec" && transport !== "fd";
  await cs.execute("migrate-set-capabilities", {
    capabilities: [
      { capability: "events", state: true },
      { capability: "return-path", state: returnPath },
    ],
  });
  await cs.execute("migrate-set-parameters", { "max-bandwidth": 0, "downtime-limit": 100 });
  const uri = transport === "fd" ? "fd:mig" : dst.incoming;
  await cs.execute("migrate", { uri });
  await until("the migration to end", async () => {
    const st = await migrationStatus(cs);
    return st === "completed" || st === "failed" || st === "cancelled";
  });
  const info = await cs.execute("query-migrate");
  assert.equal(info.status, "completed", JSON.stringify(info));
  assert.equal((await cs.execute("query-status")).status, "postmigrate");
  await until("the destination to run", async () => (await cd.execute("query-status")).status === "running");

  // The guest runs on at the destination: new passes appear on its serial.
  const before = serialSize(dst);
  await until(
    "new output on the destination",
    () => /BB/.test(serialText(dst).slice(before)) || serialSize(dst) > before + 2,
  );

  // Stop it, dump RAM with pmemsave, and check QEMU's migration-test invariant.
  await cd.execute("stop");
  const dump = join(dir, `ram${seq}.bin`);
  await cd.execute("pmemsave", { val: RAM_BASE, size: MEM, filename: dump });
  const ram = new Uint8Array(readFileSync(dump));
  const check = checkDirtyInvariant(ram, 1 << 20, MEM);
  assert.equal(check.errors, 0, JSON.stringify(check));
  await cd.execute("cont");
  const b2 = serialSize(dst);
  await until("output after cont", () => serialSize(dst) > b2);
  await cd.execute("quit");
  assert.equal(await dst.exited, 0);
  await cs.execute("quit");
  assert.equal(await src.exited, 0);
  return info.downtime ?? -1;
}

void suite("ferry run: live migration of the dirty guest between two processes", { timeout: 120_000 }, () => {
  for (const transport of ["tcp", "unix", "exec", "fd"] as const) {
    test(`over ${transport}: completes, the invariant holds on the destination and the guest runs on`, async () => {
      const downtime = await migrateDirty(transport);
      process.stderr.write(`# ferry run ${transport}: downtime ${downtime} ms\n`);
    });
  }

  test("the source resumes when the destination is killed mid-way", async () => {
    const src = await ferryRun(["--machine", "ferry-rv32", "--kernel", kernel]);
    const dst = await ferryRun(["--machine", "ferry-rv32", "--kernel", kernel, "--incoming", "tcp:127.0.0.1:0"]);
    const cs = await client(src);
    await until("the source guest's first pass", () => /A.*B/.test(serialText(src)));
    await cs.execute("migrate-set-capabilities", { capabilities: [{ capability: "return-path", state: true }] });
    // 4 MB/s: the 32 MiB guest cannot finish before the kill.
    await cs.execute("migrate-set-parameters", { "max-bandwidth": 4 << 20 });
    await cs.execute("migrate", { uri: dst.incoming as string });
    await until("some RAM sent", async () => ((await cs.execute("query-migrate")).ram?.transferred ?? 0) > 1 << 20);
    process.kill(dst.pid, "SIGKILL");
    await dst.exited;
    await until("the migration to fail", async () => (await migrationStatus(cs)) === "failed");
    assert.equal((await cs.execute("query-status")).status, "running");
    const before = serialSize(src);
    await until("new output on the source", () => serialSize(src) > before + 1);
    // Its RAM is still consistent.
    await cs.execute("stop");
    const dump = join(dir, "ram-src.bin");
    await cs.execute("pmemsave", { val: RAM_BASE, size: MEM, filename: dump });
    assert.equal(checkDirtyInvariant(new Uint8Array(readFileSync(dump)), 1 << 20, MEM).errors, 0);
    await cs.execute("cont");
    process.kill(src.pid, "SIGTERM");
    assert.equal(await src.exited, 0);
  });
});

/** Migrates at full speed to `dst`'s incoming URI and waits until the source reports completed. */
async function migrateUnlimited(cs: QmpClient, dst: Proc): Promise<void> {
  await cs.execute("migrate-set-parameters", { "max-bandwidth": 0 });
  await cs.execute("migrate", { uri: dst.incoming as string });
  await until("the migration to end", async () => ["completed", "failed"].includes(String(await migrationStatus(cs))));
  assert.equal(await migrationStatus(cs), "completed");
}

/** Quits both processes over QMP and checks that they exit with 0. */
async function quitBoth(cs: QmpClient, src: Proc, cd: QmpClient, dst: Proc): Promise<void> {
  await cd.execute("quit");
  await cs.execute("quit");
  assert.equal(await dst.exited, 0);
  assert.equal(await src.exited, 0);
}

void suite("ferry run: ferry-synthetic", { timeout: 60_000 }, () => {
  test("migrates a dirtying synthetic guest over tcp and runs on at the destination", async () => {
    const src = await ferryRun(["--machine", "ferry-synthetic", "--dirty-rate", "20000"]);
    const dst = await ferryRun(["--machine", "ferry-synthetic", "--incoming", "tcp:127.0.0.1:0"]);
    assert.match(src.ready, /^ferry: running ferry-synthetic-1.0, qmp unix:/);
    const cs = await client(src);
    const cd = await client(dst);
    assert.equal((await cs.execute("query-status")).status, "running");
    await migrateUnlimited(cs, dst);
    await until("the destination to run", async () => (await cd.execute("query-status")).status === "running");
    await quitBoth(cs, src, cd, dst);
  });
  test("QMP stop during the incoming migration keeps the destination paused after it; cont then starts it", async () => {
    const src = await ferryRun(["--machine", "ferry-synthetic", "--dirty-rate", "20000"]);
    const dst = await ferryRun(["--machine", "ferry-synthetic", "--incoming", "tcp:127.0.0.1:0"]);
    const cs = await client(src);
    const cd = await client(dst);
    assert.equal((await cd.execute("query-status")).status, "inmigrate");
    // QEMU 7.2: stop and cont during inmigrate only clear or set autostart; neither fails nor changes the state.
    await cd.execute("cont");
    await cd.execute("stop");
    assert.equal((await cd.execute("query-status")).status, "inmigrate");
    await migrateUnlimited(cs, dst);
    await until("the destination to finish loading", async () => (await migrationStatus(cd)) === "completed");
    assert.equal((await cd.execute("query-status")).status, "paused");
    await cd.execute("cont");
    assert.equal((await cd.execute("query-status")).status, "running");
    await quitBoth(cs, src, cd, dst);
  });
});
