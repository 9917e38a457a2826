/**
 * `ferry demo`: the main job end to end. Starts a destination and a source `ferry run` process with the `dirty`
 * guest (QEMU's migration-test workload), live-migrates the running guest over QMP with a progress display,
 * prints a report, checks the guest's invariant on the destination and that it keeps running there, and stops
 * both processes.
 *
 * @module
 */

import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { checkDirtyInvariant } from "../machine/rv32/dirty-invariant.js";
import { QmpClient } from "../qmp/client.js";
import type { QmpMigrationInfo } from "../qmp/qmp-types.js";
import { parseCommandArgs } from "./args.js";
import type { Command } from "./main.js";
import { progressLine } from "./migrate.js";

const RAM_BASE = 0x80000000;
const MIB = 1024 * 1024;

const HELP = `Usage: ferry demo [options]

Live-migrates a running RISC-V guest between two Ferry processes on this machine and checks the result:
starts a destination and a source \`ferry run\` with the \`dirty\` guest (it increments the first byte of every
4 KiB page from RAM+1 MiB to RAM+100 MiB, forever), migrates it over QMP with a live progress display, prints a
report, checks the guest's memory invariant on the destination, shows the guest still running there, and stops
both processes. Exits 0 only if every check passed.

Options:
  --transport T        tcp (default), unix, exec or file
  --memory SIZE        guest RAM, e.g. 256M (default) or 1G
  --max-bandwidth B    max-bandwidth in bytes/s (default: unlimited)
  --downtime-limit MS  downtime-limit in ms (default 300, QEMU's)
  --auto-converge      throttle the guest if it dirties memory faster than it can be sent
  --json               print the report as JSON on stdout
  -h, --help           this text
`;

/** The demo's report. */
export interface DemoReport {
  transport: string;
  memoryMiB: number;
  status: string;
  totalTimeMs: number;
  downtimeMs: number;
  setupTimeMs: number;
  passes: number;
  transferredBytes: number;
  zeroPages: number;
  normalPages: number;
  throughputGBps: number;
  invariant: { ok: boolean; errors: number; pagesChecked: number };
  destinationRuns: { ok: boolean; newPasses: number };
  sourceState: string;
  ok: boolean;
  error?: string;
}

function parseSize(s: string): number {
  const m = /^(\d+)([KMG]?)i?B?$/i.exec(s.trim());
  if (m === null) throw new RangeError(`Cannot parse size "${s}": use e.g. 256M or 1G`);
  const n = Number(m[1]);
  const unit = (m[2] ?? "").toUpperCase();
  return n * (unit === "G" ? 1024 * MIB : unit === "M" ? MIB : unit === "K" ? 1024 : 1);
}

function repoFile(rel: string): string {
  return fileURLToPath(new URL(`../../${rel}`, import.meta.url));
}

interface Proc {
  child: ChildProcess;
  ready: Promise<string>;
  stderr: () => string;
}

function startFerry(args: string[]): Proc {
  const bin = repoFile("bin/ferry.js");
  const child = spawn(process.execPath, [bin, "run", ...args], { stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  const ready = new Promise<string>((resolve, reject) => {
    child.stderr?.on("data", (d: Buffer) => {
      err += d.toString();
      const line = err.split("\n").find((l) => l.startsWith("ferry: running"));
      if (line !== undefined) resolve(line);
    });
    child.once("exit", (code) => reject(new Error(`ferry run exited with ${code} before it was ready: ${err.trim()}`)));
    child.once("error", reject);
  });
  ready.catch(() => {});
  return { child, ready, stderr: () => err };
}

function countB(file: string): number {
  if (!existsSync(file)) return 0;
  let n = 0;
  for (const b of readFileSync(file)) if (b === 0x42) n++;
  return n;
}

async function waitFor(what: string, ms: number, check: () => boolean | Promise<boolean>): Promise<void> {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out after ${ms} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

type Bar = { update(v: number, payload: Record<string, unknown>): void; stop(): void };

async function makeBar(total: number): Promise<Bar | undefined> {
  if (process.stdout.isTTY !== true) return undefined;
  try {
    const mod = (await import("cli-progress")) as typeof import("cli-progress");
    const bar = new mod.SingleBar(
      {
        format:
          " {bar} {percentage}% | pass {pass} | {sent} sent, {remaining} left | {rate} | dirty {dirty}/s | expected downtime {expected}",
        hideCursor: true,
        clearOnComplete: false,
      },
      mod.Presets.shades_classic,
    );
    bar.start(total, 0, {});
    return bar;
  } catch {
    return undefined;
  }
}

function mib(n: number): string {
  return `${(n / MIB).toFixed(1)} MiB`;
}

/**
 * Runs the demo.
 *
 * @returns The report (also printed).
 */
export async function runDemo(options: {
  transport: string;
  memory: number;
  maxBandwidth: number | undefined;
  downtimeLimit: number | undefined;
  autoConverge: boolean;
  json: boolean;
}): Promise<DemoReport> {
  const say = (s: string): void => {
    if (!options.json) process.stdout.write(`${s}\n`);
  };
  const dir = mkdtempSync(join(tmpdir(), "ferry-demo-"));
  const kernel = repoFile("guests/dirty.elf");
  const memArg = `${options.memory / MIB}M`;
  const srcSerial = join(dir, "source.serial");
  const dstSerial = join(dir, "destination.serial");
  const procs: Proc[] = [];
  const clients: QmpClient[] = [];
  const report: DemoReport = {
    transport: options.transport,
    memoryMiB: options.memory / MIB,
    status: "none",
    totalTimeMs: 0,
    downtimeMs: 0,
    setupTimeMs: 0,
    passes: 0,
    transferredBytes: 0,
    zeroPages: 0,
    normalPages: 0,
    throughputGBps: 0,
    invariant: { ok: false, errors: -1, pagesChecked: 0 },
    destinationRuns: { ok: false, newPasses: 0 },
    sourceState: "unknown",
    ok: false,
  };
  try {
    // Where the stream goes.
    let incoming: string;
    let outgoing: string;
    switch (options.transport) {
      case "tcp":
        incoming = "tcp:127.0.0.1:0";
        outgoing = "";
        break;
      case "unix":
        incoming = `unix:${join(dir, "migration.sock")}`;
        outgoing = incoming;
        break;
      case "exec": {
        const fifo = join(dir, "migration.fifo");
        const r = spawnSync("mkfifo", [fifo]);
        if (r.status !== 0) throw new Error("mkfifo failed: the exec transport needs a FIFO");
        incoming = `exec:cat '${fifo}'`;
        outgoing = `exec:cat > '${fifo}'`;
        break;
      }
      case "file":
        incoming = "";
        outgoing = `file:${join(dir, "vm.mig")}`;
        break;
      default:
        throw new Error(`Unknown transport "${options.transport}": use tcp, unix, exec or file`);
    }
    const dstSock = join(dir, "destination.qmp");
    const srcSock = join(dir, "source.qmp");
    const common = ["--machine", "ferry-rv32", "--kernel", kernel, "--memory", memArg];
    let dst: Proc | undefined;
    if (incoming !== "") {
      say(`Starting the destination (incoming ${options.transport})…`);
      // --mem-prealloc: the destination maps its RAM while it waits, not while the stream arrives.
      dst = startFerry([
        ...common,
        "--mem-prealloc",
        "--qmp",
        `unix:${dstSock}`,
        "--incoming",
        incoming,
        "--serial",
        `file:${dstSerial}`,
      ]);
      procs.push(dst);
      const line = await dst.ready;
      if (options.transport === "tcp") {
        const m = /incoming (tcp:\S+)/.exec(line);
        if (m === null) throw new Error(`Cannot find the destination's address in "${line}"`);
        outgoing = m[1] as string;
      }
    }
    say(`Starting the source: ${memArg} guest running guests/dirty.elf…`);
    const src = startFerry([...common, "--qmp", `unix:${srcSock}`, "--serial", `file:${srcSerial}`]);
    procs.push(src);
    await src.ready;
    const qs = await QmpClient.connect(`unix:${srcSock}`);
    clients.push(qs);
    await waitFor("the guest to complete a pass (a 'B' on its serial)", 30_000, () => countB(srcSerial) >= 1);
    say(`The guest runs: ${countB(srcSerial)} passes over its memory so far.`);

    const caps: { capability: string; state: boolean }[] = [{ capability: "events", state: true }];
    if (options.transport === "tcp" || options.transport === "unix")
      caps.push({ capability: "return-path", state: true });
    if (options.autoConverge) caps.push({ capability: "auto-converge", state: true });
    await qs.execute("migrate-set-capabilities", { capabilities: caps } as never);
    await qs.execute("migrate-set-parameters", {
      "max-bandwidth": options.maxBandwidth ?? 2 ** 53 - 1,
      ...(options.downtimeLimit === undefined ? {} : { "downtime-limit": options.downtimeLimit }),
    } as never);
    say(`Migrating over ${outgoing}…`);
    await qs.execute("migrate", { uri: outgoing } as never);
    const bar = options.json ? undefined : await makeBar(options.memory);
    let info: QmpMigrationInfo = {};
    let lastLine = 0;
    for (;;) {
      info = (await qs.execute("query-migrate")) as QmpMigrationInfo;
      if (info.status === "completed" || info.status === "failed" || info.status === "cancelled") break;
      const ram = info.ram;
      if (bar !== undefined && ram !== undefined) {
        bar.update(Math.max(0, Math.min(options.memory, (ram.total ?? 0) - (ram.remaining ?? 0))), {
          pass: ram["dirty-sync-count"] ?? 0,
          sent: mib(ram.transferred ?? 0),
          remaining: mib(ram.remaining ?? 0),
          rate: `${((ram.mbps ?? 0) / 8000).toFixed(2)} GB/s`,
          dirty: ram["dirty-pages-rate"] ?? 0,
          expected: `${info["expected-downtime"] ?? 0} ms`,
        });
      } else if (!options.json && Date.now() - lastLine > 500) {
        say(progressLine(info));
        lastLine = Date.now();
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    if (bar !== undefined) {
      bar.update(options.memory, {});
      bar.stop();
    }
    report.status = info.status ?? "none";
    if (info.status !== "completed") throw new Error(`Migration ${info.status}: ${info["error-desc"] ?? ""}`);
    const ram = info.ram;
    report.totalTimeMs = info["total-time"] ?? 0;
    report.downtimeMs = info.downtime ?? 0;
    report.setupTimeMs = info["setup-time"] ?? 0;
    report.passes = ram?.["dirty-sync-count"] ?? 0;
    report.transferredBytes = ram?.transferred ?? 0;
    report.zeroPages = ram?.duplicate ?? 0;
    report.normalPages = ram?.normal ?? 0;
    report.throughputGBps = report.totalTimeMs > 0 ? report.transferredBytes / 1e6 / report.totalTimeMs : 0;
    report.sourceState = ((await qs.execute("query-status")) as { status: string }).status;

    if (dst === undefined) {
      // file: the destination loads the finished stream.
      say("Starting the destination from the saved stream…");
      dst = startFerry([
        ...common,
        "--qmp",
        `unix:${dstSock}`,
        "--incoming",
        outgoing,
        "--serial",
        `file:${dstSerial}`,
      ]);
      procs.push(dst);
      await dst.ready;
    }
    const qd = await QmpClient.connect(`unix:${dstSock}`);
    clients.push(qd);
    await waitFor("the destination to finish loading", 60_000, async () => {
      const d = (await qd.execute("query-migrate")) as QmpMigrationInfo;
      if (d.status === "failed") throw new Error(`The destination failed: ${d["error-desc"] ?? ""}`);
      return d.status === "completed";
    });
    // The invariant, checked on a stopped destination.
    await qd.execute("stop");
    const regionEnd = Math.min(100 * MIB, options.memory);
    const dump = join(dir, "destination-ram.bin");
    await qd.execute("pmemsave", { val: RAM_BASE, size: regionEnd, filename: dump } as never);
    const mem = new Uint8Array(readFileSync(dump));
    const inv = checkDirtyInvariant(mem, MIB, regionEnd);
    report.invariant = { ok: inv.errors === 0, errors: inv.errors, pagesChecked: (regionEnd - MIB) / 4096 };
    // And the guest keeps running there.
    const before = countB(dstSerial);
    await qd.execute("cont");
    try {
      await waitFor("new passes of the guest on the destination", 20_000, () => countB(dstSerial) >= before + 3);
      report.destinationRuns = { ok: true, newPasses: countB(dstSerial) - before };
    } catch {
      report.destinationRuns = { ok: false, newPasses: countB(dstSerial) - before };
    }
    report.ok = report.invariant.ok && report.destinationRuns.ok && report.sourceState === "postmigrate";
  } catch (e) {
    report.error = e instanceof Error ? e.message : String(e);
    report.ok = false;
  } finally {
    for (const c of clients) {
      await c.execute("quit").catch(() => {});
      await c.close().catch(() => {});
    }
    for (const p of procs) {
      const exited = new Promise<void>((r) => {
        if (p.child.exitCode !== null || p.child.signalCode !== null) r();
        else p.child.once("exit", () => r());
      });
      const t = setTimeout(() => {
        if (p.child.exitCode === null && p.child.pid !== undefined) process.kill(p.child.pid, "SIGKILL");
      }, 3000);
      await exited;
      clearTimeout(t);
    }
    rmSync(dir, { recursive: true, force: true });
  }
  return report;
}

function printReport(r: DemoReport): void {
  const ok = (b: boolean): string => (b ? "ok" : "FAILED");
  const lines = [
    "",
    `Migration ${r.status} over ${r.transport} (${r.memoryMiB} MiB guest)`,
    `  total time      ${r.totalTimeMs} ms (setup ${r.setupTimeMs} ms)`,
    `  downtime        ${r.downtimeMs} ms`,
    `  passes          ${r.passes}`,
    `  transferred     ${mib(r.transferredBytes)} (${r.normalPages} normal pages, ${r.zeroPages} zero pages)`,
    `  throughput      ${r.throughputGBps.toFixed(2)} GB/s`,
    `  invariant       ${ok(r.invariant.ok)} (${r.invariant.pagesChecked} pages checked, ${r.invariant.errors} errors)`,
    `  guest runs on   ${ok(r.destinationRuns.ok)} (${r.destinationRuns.newPasses} new passes on the destination)`,
    `  source state    ${r.sourceState}`,
  ];
  if (r.error !== undefined) lines.push(`  error           ${r.error}`);
  lines.push(r.ok ? "All checks passed." : "Some checks FAILED.");
  process.stdout.write(`${lines.join("\n")}\n`);
}

/** The `demo` command. */
export const demoCommand: Command = {
  summary: "live-migrate a running RISC-V guest between two Ferry processes and check it",
  async run(args) {
    const parsed = parseCommandArgs(args, HELP, {
      transport: { type: "string", default: "tcp" },
      memory: { type: "string", default: "256M" },
      "max-bandwidth": { type: "string" },
      "downtime-limit": { type: "string" },
      "auto-converge": { type: "boolean", default: false },
      json: { type: "boolean", default: false },
    });
    if (typeof parsed === "number") return parsed;
    const { values } = parsed;
    const report = await runDemo({
      transport: values.transport,
      memory: parseSize(values.memory),
      maxBandwidth: values["max-bandwidth"] === undefined ? undefined : Number(values["max-bandwidth"]),
      downtimeLimit: values["downtime-limit"] === undefined ? undefined : Number(values["downtime-limit"]),
      autoConverge: values["auto-converge"],
      json: values.json,
    });
    if (values.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    else printReport(report);
    return report.ok ? 0 : 1;
  },
};
