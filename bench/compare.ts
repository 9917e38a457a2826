/**
 * `npm run bench -- compare [--json] [--runs N] [--skip-idle] [--skip-dirty] [--no-qemu]`: Ferry side by side
 * with QEMU 7.2 (`qemu-system-x86_64`), each scenario run on both in the same run on the same machine, N rounds
 * (default 3) interleaved, medians reported; baseline = QEMU, ratio ≥ 1 means Ferry is better. Without QEMU (or
 * with `--no-qemu`) only Ferry's figures are printed, with baseline value 0 and ratio 0 (not measured).
 *
 *   1. idle 1 GiB guest holding 900 MiB of random bytes (the same file on both: QEMU loads it with
 *      `-device loader,addr=0x100000` into a paused `-M pc -m 1024`; Ferry into a 1 GiB RamBlock at 1 MiB),
 *      live-migrated over tcp loopback with `max-bandwidth` unlimited: wall time from the migrate command to
 *      "completed" on the source, and GB/s (guest RAM size / that time);
 *   2. idle 1 GiB of zero RAM: the same;
 *   3. snapshot of the guest of 1 saved with `exec:cat > FILE` and loaded back with `exec:cat FILE` (QEMU:
 *      `migrate` from the paused source; a new QEMU `-incoming defer` + `migrate-incoming`; Ferry: saveVm /
 *      loadVm): save and load times;
 *   4. the running `dirty` workload (QEMU: bench/guests/x86-dirty.bin, an x86 boot sector, on `-M pc -m 150`
 *      under TCG; Ferry: guests/dirty.elf on `ferry run --machine ferry-rv32 --memory 128M`), both increment the
 *      first byte of every page in [1 MiB, 100 MiB) forever; migrated between two processes over tcp with the
 *      default 300 ms downtime-limit: total time, passes, downtime, and the guest's invariant on both destinations.
 *
 * Ferry's side of 1–3 runs in this process (source, saveVm, loadVm) with the destination in a child process
 * (bench/_migrate-dest.ts), like bench/migrate.ts; 4 drives two `ferry run` processes over QMP like `ferry demo`.
 */
import { spawnSync } from "node:child_process";
import { randomFillSync } from "node:crypto";
import {
  closeSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
  writeSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { checkDirtyInvariant } from "../src/machine/rv32/dirty-invariant.js";
import { DEFAULT_SETTINGS } from "../src/migration/settings.js";
import { MigrationSource } from "../src/migration/source.js";
import type { QmpClient } from "../src/qmp/client.js";
import type { QmpMigrationInfo } from "../src/qmp/qmp-types.js";
import { loadVm, saveVm } from "../src/savevm/save-vm.js";
import { connect } from "../src/transport/connect.js";
import { listen } from "../src/transport/listen.js";
import { SyntheticMachine } from "../test/support/synthetic-machine.js";
import {
  closeQmp,
  countB,
  finalMigrateInfo,
  freePort,
  killAll,
  killProc,
  type Proc,
  qemuVersion,
  qmp,
  queryMigrate,
  removeOnExit,
  repoFile,
  setCaps,
  sleep,
  startFerryRun,
  startQemu,
  track,
  waitFor,
  waitMigrationEnd,
} from "./_compare-procs.js";
import { type DestChild, forkDestination } from "./_dest-child.js";
import { type Figure, median, note } from "./_report.js";

const MIB = 1 << 20;
const GIB_MIB = 1024;
const RANDOM_MIB = 900;
const CONTENT_AT = 0x100000;
const UNLIMITED = 100e9; // 100 GB/s: "unlimited" max-bandwidth for QEMU
const BASELINE = "qemu-7.2";
const DIRTY_START = 1 * MIB;
const DIRTY_END = 100 * MIB;
const DIRTY_PAGES = (DIRTY_END - DIRTY_START) / 4096;
const RV32_RAM_BASE = 0x80000000;

/** One side's measurements, one entry per successful run. */
interface Side {
  idleRandomMs: number[];
  idleZeroMs: number[];
  saveMs: number[];
  loadMs: number[];
  dirty: DirtyResult[];
}

function newSide(): Side {
  return { idleRandomMs: [], idleZeroMs: [], saveMs: [], loadMs: [], dirty: [] };
}

interface DirtyResult {
  totalMs: number;
  downtimeMs: number;
  passes: number;
  pagesPerSec: number;
  passesPerSec: number;
  invariantErrors: number;
  status: string;
}

// ---------------------------------------------------------------------------------------------------------------
// Ferry, scenarios 1–3 (in-process source, child-process destination).

function ferryDest(mib: number): Promise<DestChild> {
  return forkDestination(["ferry", String(mib)], track);
}

async function ferryMigrate(src: SyntheticMachine, label: string): Promise<number> {
  const c = await ferryDest(GIB_MIB);
  try {
    const settings = { ...DEFAULT_SETTINGS, maxBandwidth: 0, events: true };
    const m = new MigrationSource(src, { settings: () => settings });
    const t0 = performance.now();
    m.start(() => connect(c.uri));
    await m.done;
    const ms = performance.now() - t0;
    const r = await c.result;
    if (m.status !== "completed" || r.status !== "completed") {
      throw new Error(`migration ${m.status} / destination ${String(r.status)}: ${m.error?.message ?? r.error}`);
    }
    const info = m.info();
    note(
      `  ferry ${label}: ${ms.toFixed(0)} ms wall, total-time ${info["total-time"]} ms, ` +
        `${((info.ram?.transferred ?? 0) / MIB).toFixed(0)} MiB sent, downtime ${info.downtime} ms`,
    );
    return ms;
  } finally {
    if (c.proc.pid !== undefined && c.proc.exitCode === null) c.proc.kill();
  }
}

function loadContent(m: SyntheticMachine, file: string): void {
  const b = m.blocks[0];
  if (b === undefined) throw new Error("no RAM block");
  const fd = openSync(file, "r");
  try {
    let off = 0;
    const len = statSync(file).size;
    while (off < len) {
      const n = readSync(fd, b.bytes, CONTENT_AT + off, Math.min(64 * MIB, len - off), off);
      if (n <= 0) throw new Error("short read of the random file");
      off += n;
    }
  } finally {
    closeSync(fd);
  }
  b.markDirty(0, b.size);
}

async function ferrySnapshot(src: SyntheticMachine, dir: string): Promise<{ saveMs: number; loadMs: number }> {
  const snap = join(dir, "ferry.snap");
  try {
    src.control.setRunState("paused");
    let t0 = performance.now();
    const ch = await connect(`exec:cat > '${snap}'`);
    const bytes = await saveVm(src, ch);
    const saveMs = performance.now() - t0;
    note(`  ferry save: ${saveMs.toFixed(0)} ms, ${(bytes / MIB).toFixed(0)} MiB`);
    const dst = new SyntheticMachine({ blocksMiB: [GIB_MIB], dirtyRate: -1 });
    try {
      t0 = performance.now();
      const l = await listen(`exec:cat '${snap}'`);
      const inCh = await l.accept();
      await loadVm(dst, inCh);
      const loadMs = performance.now() - t0;
      await l.close();
      const same = Buffer.compare(
        Buffer.from(dst.blocks[0]?.bytes as Uint8Array),
        Buffer.from(src.blocks[0]?.bytes as Uint8Array),
      );
      note(`  ferry load: ${loadMs.toFixed(0)} ms, RAM ${same === 0 ? "identical" : "DIFFERS"}`);
      if (same !== 0) throw new Error("Ferry's loaded snapshot differs from the saved RAM");
      return { saveMs, loadMs };
    } finally {
      await dst.dispose();
    }
  } finally {
    rmSync(snap, { force: true });
  }
}

async function ferryZero(): Promise<number> {
  const zero = new SyntheticMachine({ blocksMiB: [GIB_MIB], dirtyRate: -1 });
  try {
    zero.control.setRunState("paused");
    return await ferryMigrate(zero, "idle-zero");
  } finally {
    await zero.dispose();
  }
}

// ---------------------------------------------------------------------------------------------------------------
// QEMU, scenarios 1–3.

async function qemuMigrateTcp(srcArgs: readonly string[], memMiB: number, dir: string, label: string): Promise<number> {
  const procs: Proc[] = [];
  const clients: QmpClient[] = [];
  try {
    const port = await freePort();
    const d = await startQemu(`qemu ${label} destination`, join(dir, `${label}-dst.qmp`), [
      "-M",
      "pc",
      "-m",
      String(memMiB),
      "-S",
      "-incoming",
      `tcp:127.0.0.1:${port}`,
    ]);
    procs.push(d.proc);
    clients.push(d.qmp);
    const s = await startQemu(`qemu ${label} source`, join(dir, `${label}-src.qmp`), [
      "-M",
      "pc",
      "-m",
      String(memMiB),
      "-S",
      ...srcArgs,
    ]);
    procs.push(s.proc);
    clients.push(s.qmp);
    await setCaps(s.qmp);
    await qmp(s.qmp, "migrate-set-parameters", { "max-bandwidth": UNLIMITED });
    const t0 = performance.now();
    await qmp(s.qmp, "migrate", { uri: `tcp:127.0.0.1:${port}` });
    const end = await waitMigrationEnd(s.qmp, 120_000);
    const ms = end.at - t0;
    const info = await finalMigrateInfo(s.qmp);
    if (end.status !== "completed") throw new Error(`QEMU migration ${end.status}: ${info["error-desc"] ?? ""}`);
    await waitFor("the QEMU destination to complete", 30_000, async () => {
      const di = await queryMigrate(d.qmp);
      if (di.status === "failed") throw new Error("the QEMU destination failed");
      return di.status === "completed";
    });
    note(
      `  qemu ${label}: ${ms.toFixed(0)} ms wall, total-time ${info["total-time"]} ms, ` +
        `${((info.ram?.transferred ?? 0) / MIB).toFixed(0)} MiB sent, downtime ${info.downtime} ms`,
    );
    return ms;
  } finally {
    for (const c of clients) await closeQmp(c);
    for (const p of procs) await killProc(p);
  }
}

async function qemuSnapshot(file: string, dir: string): Promise<{ saveMs: number; loadMs: number }> {
  const snap = join(dir, "qemu.snap");
  const procs: Proc[] = [];
  const clients: QmpClient[] = [];
  try {
    const s = await startQemu("qemu snapshot source", join(dir, "snap-src.qmp"), [
      "-M",
      "pc",
      "-m",
      String(GIB_MIB),
      "-S",
      "-device",
      `loader,file=${file},addr=0x${CONTENT_AT.toString(16)}`,
    ]);
    procs.push(s.proc);
    clients.push(s.qmp);
    await setCaps(s.qmp);
    await qmp(s.qmp, "migrate-set-parameters", { "max-bandwidth": UNLIMITED });
    let t0 = performance.now();
    await qmp(s.qmp, "migrate", { uri: `exec:cat > '${snap}'` });
    let end = await waitMigrationEnd(s.qmp, 120_000);
    const saveMs = end.at - t0;
    if (end.status !== "completed") throw new Error(`QEMU snapshot save ${end.status}`);
    note(`  qemu save: ${saveMs.toFixed(0)} ms, ${(statSync(snap).size / MIB).toFixed(0)} MiB`);
    await closeQmp(s.qmp);
    await killProc(s.proc);

    const d = await startQemu("qemu snapshot load", join(dir, "snap-dst.qmp"), [
      "-M",
      "pc",
      "-m",
      String(GIB_MIB),
      "-S",
      "-incoming",
      "defer",
    ]);
    procs.push(d.proc);
    clients.push(d.qmp);
    await setCaps(d.qmp);
    t0 = performance.now();
    await qmp(d.qmp, "migrate-incoming", { uri: `exec:cat '${snap}'` });
    end = await waitMigrationEnd(d.qmp, 120_000);
    const loadMs = end.at - t0;
    if (end.status !== "completed") throw new Error(`QEMU snapshot load ${end.status}`);
    // Spot check: the loaded RAM at 1 MiB is the file's first MiB.
    const dump = join(dir, "qemu-load-check.bin");
    await qmp(d.qmp, "pmemsave", { val: CONTENT_AT, size: MIB, filename: dump });
    const fd = openSync(file, "r");
    const want = Buffer.alloc(MIB);
    readSync(fd, want, 0, MIB, 0);
    closeSync(fd);
    const ok = Buffer.compare(readFileSync(dump), want) === 0;
    note(`  qemu load: ${loadMs.toFixed(0)} ms, first MiB of content ${ok ? "identical" : "DIFFERS"}`);
    if (!ok) throw new Error("QEMU's loaded snapshot differs from the saved RAM");
    return { saveMs, loadMs };
  } finally {
    for (const c of clients) await closeQmp(c);
    for (const p of procs) await killProc(p);
    rmSync(snap, { force: true });
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Scenario 4: the running dirty workload, on both, driven the same way over QMP.

interface DirtySetup {
  name: string;
  /** Starts the destination; returns its QMP client, process and incoming URI. */
  startDst(): Promise<{ proc: Proc; qmp: QmpClient; uri: string }>;
  /** Starts the source; returns its QMP client and process. */
  startSrc(): Promise<{ proc: Proc; qmp: QmpClient }>;
  srcSerial: string;
  dstSerial: string;
  /** Physical address of RAM offset 0. */
  ramBase: number;
}

async function runDirty(s: DirtySetup, dir: string): Promise<DirtyResult> {
  const procs: Proc[] = [];
  const clients: QmpClient[] = [];
  try {
    const d = await s.startDst();
    procs.push(d.proc);
    clients.push(d.qmp);
    const src = await s.startSrc();
    procs.push(src.proc);
    clients.push(src.qmp);
    await waitFor(`${s.name}: the guest's first pass`, 30_000, () => countB(s.srcSerial) >= 1);
    // Dirty rate: passes per second from the serial log over ~1 s.
    const b0 = countB(s.srcSerial);
    const t0 = performance.now();
    await sleep(1000);
    const passesPerSec = ((countB(s.srcSerial) - b0) * 1000) / (performance.now() - t0);
    const pagesPerSec = passesPerSec * DIRTY_PAGES;
    note(
      `  ${s.name}: guest runs at ${passesPerSec.toFixed(0)} passes/s = ${(pagesPerSec / 1e6).toFixed(2)} M pages/s ` +
        `(each pass re-dirties all ${DIRTY_PAGES} pages)`,
    );
    await setCaps(src.qmp);
    await qmp(src.qmp, "migrate-set-parameters", { "max-bandwidth": UNLIMITED, "downtime-limit": 300 });
    const m0 = performance.now();
    await qmp(src.qmp, "migrate", { uri: d.uri });
    const end = await waitMigrationEnd(src.qmp, 60_000).catch(async (e: unknown) => {
      await qmp(src.qmp, "migrate_cancel").catch(() => {});
      throw e;
    });
    const totalMs = end.at - m0;
    const info: QmpMigrationInfo = await finalMigrateInfo(src.qmp);
    if (end.status !== "completed") throw new Error(`${s.name}: migration ${end.status} ${info["error-desc"] ?? ""}`);
    note(
      `  ${s.name}: ${totalMs.toFixed(0)} ms wall, total-time ${info["total-time"]} ms, downtime ${info.downtime} ms, ` +
        `${info.ram?.["dirty-sync-count"]} passes, ${((info.ram?.transferred ?? 0) / MIB).toFixed(0)} MiB sent`,
    );
    await waitFor(`${s.name}: the destination to complete`, 30_000, async () => {
      const di = await queryMigrate(d.qmp);
      if (di.status === "failed") throw new Error(`${s.name}: the destination failed`);
      return di.status === "completed";
    });
    // The invariant, on the stopped destination.
    await qmp(d.qmp, "stop");
    const dump = join(dir, `${s.name.replace(/\W+/g, "-")}-dst-ram.bin`);
    await qmp(d.qmp, "pmemsave", { val: s.ramBase, size: DIRTY_END, filename: dump });
    const mem = new Uint8Array(readFileSync(dump));
    rmSync(dump, { force: true });
    const inv = checkDirtyInvariant(mem, DIRTY_START, DIRTY_END);
    note(
      `  ${s.name}: destination invariant ${inv.errors === 0 ? "ok" : `FAILED (${inv.errors} bad pages)`}, ` +
        `first byte ${inv.firstByte}, sweep at ${inv.edgeAt === undefined ? "-" : `0x${inv.edgeAt.toString(16)}`}`,
    );
    return {
      totalMs,
      downtimeMs: info.downtime ?? 0,
      passes: info.ram?.["dirty-sync-count"] ?? 0,
      pagesPerSec,
      passesPerSec,
      invariantErrors: inv.errors,
      status: end.status,
    };
  } finally {
    for (const c of clients) {
      await qmp(c, "quit").catch(() => {});
      await closeQmp(c);
    }
    for (const p of procs) await killProc(p);
  }
}

function ferryDirtySetup(dir: string): DirtySetup {
  const kernel = repoFile("guests/dirty.elf");
  const common = ["--machine", "ferry-rv32", "--kernel", kernel, "--memory", "128M"];
  const srcSerial = join(dir, "ferry-dirty-src.serial");
  const dstSerial = join(dir, "ferry-dirty-dst.serial");
  return {
    name: "ferry dirty",
    srcSerial,
    dstSerial,
    ramBase: RV32_RAM_BASE,
    async startDst() {
      const sock = join(dir, "ferry-dirty-dst.qmp");
      const r = await startFerryRun("ferry dirty destination", [
        ...common,
        "--qmp",
        `unix:${sock}`,
        "--serial",
        `file:${dstSerial}`,
        "--incoming",
        "tcp:127.0.0.1:0",
      ]);
      const uri = /incoming (tcp:\S+)/.exec(r.ready)?.[1];
      if (uri === undefined) {
        await killProc(r.proc);
        throw new Error(`no incoming address in "${r.ready}"`);
      }
      const { QmpClient } = await import("../src/qmp/client.js");
      return { proc: r.proc, qmp: await QmpClient.connect(`unix:${sock}`), uri };
    },
    async startSrc() {
      const sock = join(dir, "ferry-dirty-src.qmp");
      const r = await startFerryRun("ferry dirty source", [
        ...common,
        "--qmp",
        `unix:${sock}`,
        "--serial",
        `file:${srcSerial}`,
      ]);
      const { QmpClient } = await import("../src/qmp/client.js");
      return { proc: r.proc, qmp: await QmpClient.connect(`unix:${sock}`) };
    },
  };
}

function qemuDirtySetup(dir: string, boot: string): DirtySetup {
  const srcSerial = join(dir, "qemu-dirty-src.serial");
  const dstSerial = join(dir, "qemu-dirty-dst.serial");
  const copy = join(dir, "x86-dirty.bin");
  copyFileSync(boot, copy);
  const common = ["-M", "pc", "-m", "150", "-accel", "tcg", "-drive", `file=${copy},format=raw`];
  return {
    name: "qemu dirty",
    srcSerial,
    dstSerial,
    ramBase: 0,
    async startDst() {
      const port = await freePort();
      const r = await startQemu("qemu dirty destination", join(dir, "qemu-dirty-dst.qmp"), [
        ...common,
        "-serial",
        `file:${dstSerial}`,
        "-incoming",
        `tcp:127.0.0.1:${port}`,
      ]);
      return { ...r, uri: `tcp:127.0.0.1:${port}` };
    },
    startSrc() {
      return startQemu("qemu dirty source", join(dir, "qemu-dirty-src.qmp"), [
        ...common,
        "-serial",
        `file:${srcSerial}`,
      ]);
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------

/** The committed boot sector, or one built into `dir` with bench/guests/build.sh when it is missing. */
function x86DirtyBoot(dir: string): string {
  const committed = repoFile("bench/guests/x86-dirty.bin");
  if (existsSync(committed)) return committed;
  const r = spawnSync("sh", [repoFile("bench/guests/build.sh"), dir], { encoding: "utf8" });
  if (r.status !== 0) throw new Error(`cannot build bench/guests/x86-dirty.bin: ${r.stderr}`);
  return join(dir, "x86-dirty.bin");
}

function makeRandomFile(path: string): void {
  const fd = openSync(path, "w");
  try {
    const chunk = Buffer.allocUnsafe(16 * MIB);
    for (let done = 0; done < RANDOM_MIB * MIB; done += chunk.length) {
      randomFillSync(chunk);
      writeSync(fd, chunk);
    }
  } finally {
    closeSync(fd);
  }
}

async function attempt<T>(what: string, f: () => Promise<T>): Promise<T | undefined> {
  try {
    return await f();
  } catch (e) {
    note(`${what} FAILED: ${e instanceof Error ? e.message : String(e)}`);
    return undefined;
  }
}

async function push<T>(list: T[], what: string, f: () => Promise<T>): Promise<void> {
  const v = await attempt(what, f);
  if (v !== undefined) list.push(v);
}

/** Runs the benchmark. */
export async function run(args: string[]): Promise<Figure[]> {
  const { values } = parseArgs({
    args,
    options: {
      runs: { type: "string", default: "3" },
      "skip-dirty": { type: "boolean", default: false },
      "skip-idle": { type: "boolean", default: false },
      "no-qemu": { type: "boolean", default: false },
    },
  });
  const runs = Math.max(1, Number(values.runs));
  const version = values["no-qemu"] ? undefined : qemuVersion();
  if (version === undefined) {
    note(
      `note: ${values["no-qemu"] ? "--no-qemu" : "qemu-system-x86_64 is not installed"}: printing Ferry's figures only ` +
        "(baseline value 0 and ratio 0 mean not measured)",
    );
  } else {
    note(`QEMU ${version} found: baseline ${BASELINE}; ${runs} runs of each scenario, interleaved, medians reported`);
  }
  const ferry = newSide();
  const qemu = newSide();
  const dir = mkdtempSync(join(tmpdir(), "ferry-compare-"));
  removeOnExit(dir);
  const onSignal = (): void => {
    void killAll(true).finally(() => {
      rmSync(dir, { recursive: true, force: true });
      process.exit(130);
    });
  };
  process.once("SIGINT", onSignal);
  process.once("SIGTERM", onSignal);
  try {
    if (!values["skip-idle"]) {
      const file = join(dir, "random.bin");
      note(`writing ${RANDOM_MIB} MiB of random bytes to ${file}`);
      makeRandomFile(file);
      const loader = ["-device", `loader,file=${file},addr=0x${CONTENT_AT.toString(16)}`];
      const src = new SyntheticMachine({ blocksMiB: [GIB_MIB], dirtyRate: -1 });
      try {
        loadContent(src, file);
        for (let i = 1; i <= runs; i++) {
          note(`round ${i}/${runs}: idle 1 GiB with 900 MiB random content`);
          src.control.setRunState("paused");
          await push(ferry.idleRandomMs, "ferry idle-random", () => ferryMigrate(src, "idle-random"));
          if (version !== undefined) {
            await push(qemu.idleRandomMs, "qemu idle-random", () =>
              qemuMigrateTcp(loader, GIB_MIB, dir, "idle-random"),
            );
          }
          note(`round ${i}/${runs}: idle 1 GiB zero RAM`);
          await push(ferry.idleZeroMs, "ferry idle-zero", ferryZero);
          if (version !== undefined) {
            await push(qemu.idleZeroMs, "qemu idle-zero", () => qemuMigrateTcp([], GIB_MIB, dir, "idle-zero"));
          }
          note(`round ${i}/${runs}: snapshot save (exec:cat > FILE) and load (exec:cat FILE)`);
          const fs = await attempt("ferry snapshot", () => ferrySnapshot(src, dir));
          if (fs !== undefined) {
            ferry.saveMs.push(fs.saveMs);
            ferry.loadMs.push(fs.loadMs);
          }
          if (version !== undefined) {
            const qs = await attempt("qemu snapshot", () => qemuSnapshot(file, dir));
            if (qs !== undefined) {
              qemu.saveMs.push(qs.saveMs);
              qemu.loadMs.push(qs.loadMs);
            }
          }
        }
      } finally {
        await src.dispose();
        rmSync(file, { force: true });
      }
    }
    if (!values["skip-dirty"]) {
      for (let i = 1; i <= runs; i++) {
        note(
          `round ${i}/${runs}: the running dirty guest (ferry: guests/dirty.elf, 128 MiB; qemu: x86-dirty.bin, 150 MiB, TCG)`,
        );
        await push(ferry.dirty, "ferry dirty", () => runDirty(ferryDirtySetup(dir), dir));
        if (version !== undefined) {
          await push(qemu.dirty, "qemu dirty", () => runDirty(qemuDirtySetup(dir, x86DirtyBoot(dir)), dir));
        }
      }
    }
  } finally {
    await killAll();
    process.off("SIGINT", onSignal);
    process.off("SIGTERM", onSignal);
    rmSync(dir, { recursive: true, force: true });
  }
  return figures(ferry, qemu);
}

function med(xs: readonly number[]): number | undefined {
  return xs.length === 0 ? undefined : median(xs);
}

function figures(ferry: Side, qemu: Side): Figure[] {
  const out: Figure[] = [];
  const gb = (GIB_MIB * MIB) / 1e9;
  const add = (metric: string, unit: string, higherIsBetter: boolean, f?: number, q?: number): void => {
    if (f === undefined) return;
    out.push({ bench: "compare", metric, value: f, unit, baseline: BASELINE, baselineValue: q ?? 0, higherIsBetter });
  };
  const rate = (ms?: number): number | undefined => (ms === undefined ? undefined : gb / (ms / 1000));
  const f = {
    idle: med(ferry.idleRandomMs),
    zero: med(ferry.idleZeroMs),
    save: med(ferry.saveMs),
    load: med(ferry.loadMs),
    total: med(ferry.dirty.map((d) => d.totalMs)),
    down: med(ferry.dirty.map((d) => d.downtimeMs)),
    passes: med(ferry.dirty.map((d) => d.passes)),
    rate: med(ferry.dirty.map((d) => d.pagesPerSec)),
    passRate: med(ferry.dirty.map((d) => d.passesPerSec)),
  };
  const q = {
    idle: med(qemu.idleRandomMs),
    zero: med(qemu.idleZeroMs),
    save: med(qemu.saveMs),
    load: med(qemu.loadMs),
    total: med(qemu.dirty.map((d) => d.totalMs)),
    down: med(qemu.dirty.map((d) => d.downtimeMs)),
    passes: med(qemu.dirty.map((d) => d.passes)),
    rate: med(qemu.dirty.map((d) => d.pagesPerSec)),
    passRate: med(qemu.dirty.map((d) => d.passesPerSec)),
  };
  add("idle-random-1g-throughput", "GB/s", true, rate(f.idle), rate(q.idle));
  add("idle-random-1g-total-time", "ms", false, f.idle, q.idle);
  add("idle-zero-1g-total-time", "ms", false, f.zero, q.zero);
  add("snapshot-save-time", "ms", false, f.save, q.save);
  add("snapshot-load-time", "ms", false, f.load, q.load);
  add("dirty-total-time", "ms", false, f.total, q.total);
  add("dirty-downtime", "ms", false, f.down, q.down);
  add("dirty-passes", "passes", false, f.passes, q.passes);
  add("dirty-guest-rate", "Mpages/s", true, f.rate && f.rate / 1e6, q.rate && q.rate / 1e6);
  const invOk = (s: Side): number | undefined =>
    s.dirty.length === 0 ? undefined : s.dirty.filter((d) => d.invariantErrors === 0).length / s.dirty.length;
  add("dirty-invariant-ok-runs", "fraction", true, invOk(ferry), invOk(qemu));
  // Targets.
  const t = (ok: boolean | undefined): string => (ok === undefined ? "not measured" : ok ? "met" : "NOT met");
  const cmp = (
    a: number | undefined,
    b: number | undefined,
    ok: (a: number, b: number) => boolean,
  ): boolean | undefined => (a === undefined || b === undefined ? undefined : ok(a, b));
  note("targets:");
  note(`  (1) idle throughput >= QEMU's: ${t(cmp(f.idle, q.idle, (a, b) => a <= b))}`);
  note(
    `  (2) idle time within 2x of QEMU's: random ${t(cmp(f.idle, q.idle, (a, b) => a <= 2 * b))}, ` +
      `zero RAM ${t(cmp(f.zero, q.zero, (a, b) => a <= 2 * b))}`,
  );
  note(
    `  (3) snapshot save and load >= QEMU's speed: save ${t(cmp(f.save, q.save, (a, b) => a <= b))}, ` +
      `load ${t(cmp(f.load, q.load, (a, b) => a <= b))}`,
  );
  note(
    `  (4) dirty downtime <= QEMU's and <= 50 ms: ${t(cmp(f.down, q.down, (a, b) => a <= b && a <= 50))}` +
      (f.down === undefined ? "" : ` (Ferry ${f.down.toFixed(0)} ms, QEMU ${q.down?.toFixed(0) ?? "-"} ms)`),
  );
  if (f.rate !== undefined && q.rate !== undefined) {
    const r = (pr?: number, pg?: number): string =>
      pr === undefined || pg === undefined ? "-" : `${pr.toFixed(0)} passes/s = ${(pg / 1e6).toFixed(2)} M pages/s`;
    note(`  dirty rates (pages written per second): ferry ${r(f.passRate, f.rate)}, qemu ${r(q.passRate, q.rate)}`);
    note(
      `  both guests re-dirty all ${DIRTY_PAGES} pages of [1 MiB, 100 MiB) every ${f.passRate ? (1000 / f.passRate).toFixed(1) : "-"} / ` +
        `${q.passRate ? (1000 / q.passRate).toFixed(1) : "-"} ms, far faster than any dirty-bitmap sync, so each pass ` +
        "finds the whole 99 MiB working set dirty on both",
    );
  }
  return out;
}
