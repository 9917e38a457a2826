/**
 * Process helpers for bench/compare.ts: starting QEMU 7.2 and `ferry run` processes under QMP, waiting for a
 * migration to end, and killing every process started (by PID) whatever happens.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { QmpClient } from "../src/qmp/client.js";
import type { QmpMigrationInfo } from "../src/qmp/qmp-types.js";

export const QEMU = "qemu-system-x86_64";

/** The QEMU version string, or undefined when QEMU is not installed. */
export function qemuVersion(): string | undefined {
  const r = spawnSync(QEMU, ["--version"], { encoding: "utf8" });
  if (r.status !== 0 || typeof r.stdout !== "string") return undefined;
  return /version (\S+)/.exec(r.stdout)?.[1];
}

/** A path inside the repository. */
export function repoFile(rel: string): string {
  return fileURLToPath(new URL(`../${rel}`, import.meta.url));
}

/** Every process started here, so they can all be killed by PID. */
const started = new Set<ChildProcess>();
/** Set once the benchmark is interrupted: no new processes start. */
let stopping = false;

/** Temporary folders removed when this process exits, whatever happens. */
const tempDirs = new Set<string>();

/** Removes `dir` (recursively) when this process exits, if it is still there. */
export function removeOnExit(dir: string): void {
  tempDirs.add(dir);
}

// Last resort: nothing started here outlives this process, and no temporary folder stays behind.
process.on("exit", () => {
  for (const d of tempDirs) rmSync(d, { recursive: true, force: true });
  for (const c of started) {
    if (c.pid !== undefined && !exited(c)) {
      try {
        process.kill(c.pid, "SIGKILL");
      } catch {
        // Gone already.
      }
    }
  }
});

/** A started process with its collected stderr. */
export interface Proc {
  readonly child: ChildProcess;
  readonly name: string;
  stderr(): string;
}

/** Adds a process started elsewhere (a forked child) to the ones killed on interruption and exit. */
export function track(child: ChildProcess): void {
  started.add(child);
  child.once("exit", () => started.delete(child));
}

/** Starts a process (stdout ignored, stderr collected). */
export function startProc(name: string, cmd: string, args: readonly string[]): Proc {
  if (stopping) throw new Error(`interrupted: not starting ${name}`);
  const child = spawn(cmd, args, { stdio: ["ignore", "ignore", "pipe"] });
  started.add(child);
  let err = "";
  child.stderr?.on("data", (d: Buffer) => {
    err += d.toString();
    if (err.length > 65536) err = err.slice(-65536);
  });
  child.on("error", () => {});
  child.once("exit", () => started.delete(child));
  return { child, name, stderr: () => err };
}

function exited(c: ChildProcess): boolean {
  return c.exitCode !== null || c.signalCode !== null;
}

/** Kills one process by PID (SIGTERM, then SIGKILL after `graceMs`) and waits for it to exit. */
export async function killProc(p: Proc | undefined, graceMs = 2000): Promise<void> {
  if (p === undefined) return;
  const c = p.child;
  if (exited(c) || c.pid === undefined) return;
  const done = new Promise<void>((r) => c.once("exit", () => r()));
  try {
    process.kill(c.pid, "SIGTERM");
  } catch {
    return;
  }
  const t = setTimeout(() => {
    if (!exited(c) && c.pid !== undefined) {
      try {
        process.kill(c.pid, "SIGKILL");
      } catch {
        // Gone already.
      }
    }
  }, graceMs);
  await done;
  clearTimeout(t);
}

/** Kills every process still running that was started here; with `stop`, no new process starts afterwards. */
export async function killAll(stop = false): Promise<void> {
  if (stop) stopping = true;
  await Promise.all([...started].map((child) => killProc({ child, name: "", stderr: () => "" }, 1000)));
}

/** Resolves `ms` later. */
export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Polls `check` every 20 ms until it is true. */
export async function waitFor(what: string, ms: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await sleep(20);
  }
}

/** A free tcp port on 127.0.0.1 (bound and released; QEMU then listens on it). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const a = s.address();
      const port = typeof a === "object" && a !== null ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

/** Runs any QMP command (typed or not) and returns its result. */
export function qmp<T = unknown>(c: QmpClient, cmd: string, args?: Record<string, unknown>): Promise<T> {
  const exec = c.execute as unknown as (this: QmpClient, command: string, a?: unknown) => Promise<T>;
  return exec.call(c, cmd, args);
}

/** Connects to a QMP unix socket once the process created it. */
export async function connectQmp(p: Proc, sock: string, ms = 20_000): Promise<QmpClient> {
  await waitFor(`${p.name}'s QMP socket`, ms, () => {
    if (exited(p.child)) throw new Error(`${p.name} exited (${p.child.exitCode}): ${p.stderr().trim()}`);
    return existsSync(sock);
  });
  return QmpClient.connect(`unix:${sock}`);
}

/** Starts QEMU (`-nodefaults -display none`, QMP on `sock`) with the given extra arguments. */
export async function startQemu(
  name: string,
  sock: string,
  args: readonly string[],
): Promise<{ proc: Proc; qmp: QmpClient }> {
  const proc = startProc(name, QEMU, [
    "-nodefaults",
    "-display",
    "none",
    "-qmp",
    `unix:${sock},server=on,wait=off`,
    ...args,
  ]);
  try {
    return { proc, qmp: await connectQmp(proc, sock) };
  } catch (e) {
    await killProc(proc);
    throw e;
  }
}

/** Starts `ferry run ARGS` (bin/ferry.js, i.e. dist/) and waits for its readiness line. */
export async function startFerryRun(name: string, args: readonly string[]): Promise<{ proc: Proc; ready: string }> {
  const proc = startProc(name, process.execPath, [repoFile("bin/ferry.js"), "run", ...args]);
  try {
    await waitFor(`${name} to be ready`, 30_000, () => {
      if (exited(proc.child)) throw new Error(`${name} exited (${proc.child.exitCode}): ${proc.stderr().trim()}`);
      return proc.stderr().includes("ferry: running");
    });
  } catch (e) {
    await killProc(proc);
    throw e;
  }
  const line =
    proc
      .stderr()
      .split("\n")
      .find((l) => l.startsWith("ferry: running")) ?? "";
  return { proc, ready: line };
}

/** Turns on the `events` capability (and any others given). */
export async function setCaps(c: QmpClient, extra: readonly string[] = []): Promise<void> {
  const caps = ["events", ...extra].map((capability) => ({ capability, state: true }));
  await qmp(c, "migrate-set-capabilities", { capabilities: caps });
}

/**
 * Waits for a MIGRATION event with an end status (`completed`, `failed`, `cancelled`) and returns the status and
 * `performance.now()` when it arrived; also fails over to polling `query-migrate` (a missed event must not hang).
 */
export async function waitMigrationEnd(c: QmpClient, timeoutMs: number): Promise<{ status: string; at: number }> {
  const end = new Set(["completed", "failed", "cancelled"]);
  let settled = false;
  const byEvent = c
    .waitEvent("MIGRATION", (e) => end.has(String((e.data as { status?: string } | undefined)?.status)), timeoutMs)
    .then((e) => ({ status: String((e.data as { status?: string }).status), at: performance.now() }));
  const byPoll = (async () => {
    const deadline = Date.now() + timeoutMs;
    while (!settled && Date.now() < deadline) {
      await sleep(500);
      if (settled) break;
      const info = await qmp<QmpMigrationInfo>(c, "query-migrate");
      if (info.status !== undefined && end.has(info.status)) return { status: info.status, at: performance.now() };
    }
    return new Promise<never>(() => {});
  })();
  try {
    return await Promise.race([byEvent, byPoll]);
  } finally {
    settled = true;
    byEvent.catch(() => {});
    byPoll.catch(() => {});
  }
}

/**
 * `query-migrate` once a completed migration's figures are final: QEMU 7.2 emits MIGRATION "completed" before its
 * migration thread fills in `total-time` and `downtime`, so a query right after the event can read 0 for both.
 */
export async function finalMigrateInfo(c: QmpClient, ms = 3000): Promise<QmpMigrationInfo> {
  const deadline = Date.now() + ms;
  for (;;) {
    const info = await qmp<QmpMigrationInfo>(c, "query-migrate");
    if (info.status !== "completed" || (info["total-time"] ?? 0) > 0 || Date.now() > deadline) return info;
    await sleep(10);
  }
}

/** `query-migrate`. */
export function queryMigrate(c: QmpClient): Promise<QmpMigrationInfo> {
  return qmp<QmpMigrationInfo>(c, "query-migrate");
}

/** Number of 'B' bytes in a serial log (one per pass of the dirty guests). */
export function countB(file: string): number {
  if (!existsSync(file)) return 0;
  let n = 0;
  for (const b of readFileSync(file)) if (b === 0x42) n++;
  return n;
}

/** Closes a QMP client quietly (QEMU serves one client at a time). */
export async function closeQmp(c: QmpClient | undefined): Promise<void> {
  await c?.close().catch(() => {});
}
