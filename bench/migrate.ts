/**
 * `npm run bench -- migrate [--json] [--size MiB]`: live migration of a 1 GiB machine over tcp loopback, with
 * `max-bandwidth` unlimited and the default 300 ms `downtime-limit`, to a destination in another process:
 *   1. idle, random content: total time and GB/s, beside a raw socket copy of the same GiB in the same run;
 *   2. a writer dirtying 10 % of its pages per second: total time, passes and downtime (target ≤ 50 ms), the
 *      downtime beside the time the raw socket needs for the bytes sent while the guest was stopped.
 */
import { parseArgs } from "node:util";
import { DEFAULT_SETTINGS } from "../src/migration/settings.js";
import { MigrationSource } from "../src/migration/source.js";
import { connect } from "../src/transport/connect.js";
import { SyntheticMachine } from "../test/support/synthetic-machine.js";
import { type DestChild, forkDestination } from "./_dest-child.js";
import { rawSend } from "./_raw-socket.js";
import { type Figure, median, note } from "./_report.js";

function child(mode: "ferry" | "raw", mib: number, prealloc = false): Promise<DestChild> {
  return forkDestination([mode, String(mib), prealloc ? "prealloc" : ""]);
}

async function rawCopy(ram: Uint8Array, mib: number): Promise<number> {
  const c = await child("raw", mib);
  try {
    const t0 = performance.now();
    await rawSend(c.uri, ram);
    await c.result;
    return (performance.now() - t0) / 1000;
  } finally {
    c.proc.kill();
  }
}

interface MigrationRun {
  seconds: number;
  downtimeMs: number;
  passes: number;
  downtimeBytes: number;
  transferred: number;
}

async function migrateOnce(src: SyntheticMachine, mib: number, prealloc = false): Promise<MigrationRun> {
  const c = await child("ferry", mib, prealloc);
  try {
    const settings = { ...DEFAULT_SETTINGS, maxBandwidth: 0, returnPath: true };
    const m = new MigrationSource(src, { settings: () => settings });
    const t0 = performance.now();
    const cpu0 = process.cpuUsage();
    m.start(() => connect(c.uri));
    await m.done;
    const seconds = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const r = await c.result;
    note(
      `  CPU: source ${Math.round((cpu.user + cpu.system) / 1000)} ms, destination ${String(r.cpuMs)} ms (wall ${Math.round(seconds * 1000)} ms)`,
    );
    if (m.status !== "completed" || r.status !== "completed") {
      throw new Error(`migration ${m.status} / destination ${String(r.status)}: ${m.error?.message ?? r.error}`);
    }
    const info = m.info();
    return {
      seconds,
      downtimeMs: m.downtimeMs ?? 0,
      passes: info.ram?.["dirty-sync-count"] ?? 0,
      downtimeBytes: info.ram?.["downtime-bytes"] ?? 0,
      transferred: info.ram?.transferred ?? 0,
    };
  } finally {
    c.proc.kill();
  }
}

/** Runs the benchmark. */
export async function run(args: string[]): Promise<Figure[]> {
  const { values } = parseArgs({
    args,
    options: { size: { type: "string", default: "1024" }, runs: { type: "string", default: "3" } },
  });
  const mib = Number(values.size);
  const runs = Number(values.runs);
  note(`preparing a ${mib} MiB machine with random content`);
  const src = new SyntheticMachine({ blocksMiB: [mib], dirtyRate: -1 });
  src.fillRandom(12345);
  const ram = src.blocks[0]?.bytes as Uint8Array;
  const raw: number[] = [];
  const idle: MigrationRun[] = [];
  const idlePrealloc: MigrationRun[] = [];
  for (let i = 0; i < runs; i++) {
    const r = await rawCopy(ram, mib);
    raw.push((mib * 1048576) / 1e9 / r);
    note(`raw socket copy run ${i + 1}: ${raw[raw.length - 1]?.toFixed(2)} GB/s`);
    src.control.setRunState("paused");
    const m = await migrateOnce(src, mib);
    idle.push(m);
    const mp = await migrateOnce(src, mib, true);
    idlePrealloc.push(mp);
    note(`idle migration to a preallocated destination run ${i + 1}: ${mp.seconds.toFixed(3)} s`);
    note(
      `idle migration run ${i + 1}: ${m.seconds.toFixed(3)} s, downtime ${m.downtimeMs.toFixed(1)} ms, ${m.passes} passes`,
    );
  }
  // Dirtying 10 % of the pages per second while it migrates.
  const pages = (mib * 1048576) / 4096;
  const dirty: MigrationRun[] = [];
  for (let i = 0; i < runs; i++) {
    const busy = new SyntheticMachine({ blocksMiB: [mib], dirtyRate: Math.round(pages / 10) });
    busy.fillRandom(777 + i);
    await busy.control.cont();
    await new Promise((r) => setTimeout(r, 200));
    const m = await migrateOnce(busy, mib);
    dirty.push(m);
    note(
      `dirty migration run ${i + 1}: ${m.seconds.toFixed(3)} s, downtime ${m.downtimeMs.toFixed(1)} ms, ${m.passes} passes`,
    );
    await busy.dispose();
  }
  await src.dispose();
  const rawGbps = median(raw);
  const bytesPerSec = rawGbps * 1e9;
  const idleGbps = median(idle.map((m) => (mib * 1048576) / 1e9 / m.seconds));
  const dirtyDowntime = median(dirty.map((m) => m.downtimeMs));
  const dirtyRawMs = median(dirty.map((m) => (m.downtimeBytes / bytesPerSec) * 1000));
  return [
    {
      bench: "migrate",
      metric: "idle-throughput",
      value: idleGbps,
      unit: "GB/s",
      baseline: "raw-socket-copy",
      baselineValue: rawGbps,
      higherIsBetter: true,
    },
    {
      bench: "migrate",
      metric: "idle-throughput-dest-mem-prealloc",
      value: median(idlePrealloc.map((m) => (mib * 1048576) / 1e9 / m.seconds)),
      unit: "GB/s",
      baseline: "raw-socket-copy",
      baselineValue: rawGbps,
      higherIsBetter: true,
    },
    {
      bench: "migrate",
      metric: "idle-total-time",
      value: median(idle.map((m) => m.seconds * 1000)),
      unit: "ms",
      baseline: "raw-socket-copy",
      baselineValue: ((mib * 1048576) / bytesPerSec) * 1000,
      higherIsBetter: false,
    },
    {
      bench: "migrate",
      metric: "idle-downtime",
      value: median(idle.map((m) => m.downtimeMs)),
      unit: "ms",
      baseline: "target",
      baselineValue: 50,
      higherIsBetter: false,
    },
    {
      bench: "migrate",
      metric: "dirty10-total-time",
      value: median(dirty.map((m) => m.seconds * 1000)),
      unit: "ms",
      baseline: "raw-socket-copy",
      baselineValue: ((mib * 1048576) / bytesPerSec) * 1000,
      higherIsBetter: false,
    },
    {
      bench: "migrate",
      metric: "dirty10-downtime",
      value: dirtyDowntime,
      unit: "ms",
      baseline: "target",
      baselineValue: 50,
      higherIsBetter: false,
    },
    {
      bench: "migrate",
      metric: "dirty10-downtime-vs-raw-copy-of-its-bytes",
      value: dirtyDowntime,
      unit: "ms",
      baseline: "raw-socket-copy",
      baselineValue: dirtyRawMs,
      higherIsBetter: false,
    },
    {
      bench: "migrate",
      metric: "dirty10-passes",
      value: median(dirty.map((m) => m.passes)),
      unit: "passes",
      baseline: "idle-passes",
      baselineValue: median(idle.map((m) => m.passes)),
      higherIsBetter: false,
    },
  ];
}
