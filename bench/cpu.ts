/**
 * `npm run bench -- cpu [--json] [--runs N] [--elf PATH] [--no-qemu] [--no-worker]`: the rv32 interpreter's speed.
 *
 * Figures, each beside a baseline measured in the same run:
 * - MIPS on `guests/sha-bench.elf` (run to power-off in the calling thread, `Machine.run`) with dirty tracking on
 *   and off, beside qemu-system-riscv32 (TCG) on the same ELF when it is installed. QEMU is timed from spawn to
 *   exit through the test finisher, minus its start-up and shutdown timed with `guests/exit.elf`; its MIPS use the
 *   instruction count Ferry measured (the same program retires the same instructions).
 * - The cost of dirty tracking: MIPS with tracking on beside MIPS with it off.
 * - MIPS of the same guest in a `VcpuWorker` (worker thread, shared RAM) beside the in-thread figure.
 * - vCPU stop latency (the `dirty` guest in a worker; 200 stops): median and p99 beside a bare worker that runs a
 *   store loop and polls the same way (shared/research/node-perf-probes.md part 6).
 *
 * Each figure is the median over `--runs` runs (default 3), configurations interleaved.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import { Worker } from "node:worker_threads";
import { Machine, RunExit } from "../src/machine/rv32/machine.js";
import { VcpuWorker } from "../src/machine/rv32/vcpu-worker.js";
import { type Figure, median, note } from "./_report.js";

const guest = (name: string): string => fileURLToPath(new URL(`../guests/${name}.elf`, import.meta.url));

interface Run {
  readonly steps: number;
  readonly seconds: number;
}

/** Runs an ELF to power-off in this thread. */
function runInThread(elf: Uint8Array, trackDirty: boolean): Run {
  const m = new Machine({ trackDirty });
  m.loadElf(elf);
  const t0 = performance.now();
  let steps = 0;
  for (;;) {
    const exit = m.run(100_000_000);
    steps += m.lastRunSteps;
    if (exit !== RunExit.Budget) break;
  }
  const seconds = (performance.now() - t0) / 1000;
  if (!m.poweredOff || m.exitCode !== 0) throw new Error("the benchmark guest did not power off with pass");
  return { steps, seconds };
}

/** Runs an ELF to power-off in a VcpuWorker. */
async function runInWorker(elf: Uint8Array): Promise<Run> {
  const ram = new Uint8Array(new SharedArrayBuffer(128 << 20));
  const dirty = new Uint8Array(new SharedArrayBuffer(ram.length >>> 12));
  let done: (code: number) => void = () => {};
  const finished = new Promise<number>((r) => (done = r));
  const v = new VcpuWorker({ ram, dirty, elf, onPowerOff: (c) => done(c) });
  const t0 = performance.now();
  await v.start();
  const code = await finished;
  const seconds = (performance.now() - t0) / 1000;
  await v.stop();
  const steps = v.instructions;
  await v.terminate();
  if (code !== 0) throw new Error(`the benchmark guest failed with ${code}`);
  return { steps, seconds };
}

function which(bin: string): boolean {
  return spawnSync("/bin/sh", ["-c", `command -v ${bin}`]).status === 0;
}

/** Wall-clock seconds of one QEMU run of an ELF to its exit. */
function timeQemu(elf: string): number {
  const t0 = performance.now();
  const r = spawnSync(
    "qemu-system-riscv32",
    ["-M", "virt", "-bios", "none", "-m", "128M", "-kernel", elf, "-nographic"],
    {
      stdio: ["ignore", "ignore", "inherit"],
    },
  );
  if (r.status !== 0) throw new Error(`qemu-system-riscv32 exited with ${r.status} on ${elf}`);
  return (performance.now() - t0) / 1000;
}

const percentile = (xs: readonly number[], p: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] as number;
};

/** Stop latencies (ms) of a VcpuWorker running the dirty guest. */
async function vcpuStopLatency(trials: number): Promise<number[]> {
  const ram = new Uint8Array(new SharedArrayBuffer(128 << 20));
  const dirty = new Uint8Array(new SharedArrayBuffer(ram.length >>> 12));
  const v = new VcpuWorker({ ram, dirty, elf: new Uint8Array(readFileSync(guest("dirty"))) });
  await v.start();
  await new Promise((r) => setTimeout(r, 300));
  const lat: number[] = [];
  for (let i = 0; i < trials; i++) {
    await new Promise((r) => setTimeout(r, 1 + (i % 3)));
    const t0 = performance.now();
    await v.stop();
    lat.push(performance.now() - t0);
    v.cont();
  }
  await v.terminate();
  return lat;
}

/** Stop latencies (ms) of a bare worker: a store loop polling a control word every 4096 iterations. */
async function bareStopLatency(trials: number): Promise<number[]> {
  const ctl = new Int32Array(new SharedArrayBuffer(16));
  const code = `
    const { workerData: ctl } = require("node:worker_threads");
    const buf = new Int32Array(1 << 18);
    let x = 1, i = 0;
    for (;;) {
      for (let k = 0; k < 4096; k++) { x ^= x << 13; x ^= x >>> 17; x ^= x << 5; buf[x & 0x3ffff] = i++; }
      const c = Atomics.load(ctl, 0);
      if (c === 2) break;
      if (c === 1) {
        Atomics.store(ctl, 1, 1);
        while (Atomics.load(ctl, 0) === 1) Atomics.wait(ctl, 0, 1, 100);
        Atomics.store(ctl, 1, 0);
      }
    }`;
  const w = new Worker(code, { eval: true, workerData: ctl });
  await new Promise((r) => setTimeout(r, 300));
  const lat: number[] = [];
  for (let i = 0; i < trials; i++) {
    await new Promise((r) => setTimeout(r, 1 + (i % 3)));
    const t0 = performance.now();
    Atomics.store(ctl, 0, 1);
    Atomics.notify(ctl, 0);
    while (Atomics.load(ctl, 1) !== 1) {}
    lat.push(performance.now() - t0);
    Atomics.store(ctl, 0, 0);
    Atomics.notify(ctl, 0);
  }
  Atomics.store(ctl, 0, 2);
  Atomics.notify(ctl, 0);
  await w.terminate();
  return lat;
}

/** Runs the CPU benchmark. */
export async function run(args: string[], _json: boolean): Promise<Figure[]> {
  const { values } = parseArgs({
    args,
    options: {
      runs: { type: "string", default: "3" },
      elf: { type: "string", default: guest("sha-bench") },
      "no-qemu": { type: "boolean", default: false },
      "no-worker": { type: "boolean", default: false },
    },
  });
  const runs = Number(values.runs);
  if (!Number.isInteger(runs) || runs < 1) throw new RangeError(`--runs ${values.runs} is not a positive integer`);
  const elfPath = values.elf;
  const elf = new Uint8Array(readFileSync(elfPath));
  const useQemu = !values["no-qemu"] && which("qemu-system-riscv32");
  if (!values["no-qemu"] && !useQemu)
    note("cpu: qemu-system-riscv32 not found (Debian qemu-system-misc); no QEMU baseline");

  const on: number[] = [];
  const off: number[] = [];
  const worker: number[] = [];
  const qemu: number[] = [];
  const qemuStart: number[] = [];
  let steps = 0;
  for (let i = 0; i < runs; i++) {
    const a = runInThread(elf, true);
    const b = runInThread(elf, false);
    steps = a.steps;
    if (b.steps !== a.steps) throw new Error(`step counts differ: ${a.steps} vs ${b.steps}`);
    on.push(a.steps / a.seconds / 1e6);
    off.push(b.steps / b.seconds / 1e6);
    note(
      `cpu: run ${i + 1}/${runs}: ${a.steps} instructions; tracking on ${on.at(-1)?.toFixed(1)} MIPS, off ${off.at(-1)?.toFixed(1)} MIPS`,
    );
    if (!values["no-worker"]) {
      const w = await runInWorker(elf);
      worker.push(w.steps / w.seconds / 1e6);
      note(`cpu: worker ${worker.at(-1)?.toFixed(1)} MIPS`);
    }
    if (useQemu) {
      for (let k = 0; k < 3; k++) {
        qemuStart.push(timeQemu(guest("exit")));
        qemu.push(timeQemu(elfPath));
      }
    }
  }

  const figures: Figure[] = [];
  const mipsOn = median(on);
  const mipsOff = median(off);
  if (useQemu) {
    const startup = median(qemuStart);
    const compute = Math.max(median(qemu) - startup, 1e-6);
    const qemuMips = steps / compute / 1e6;
    note(
      `cpu: QEMU ${median(qemu).toFixed(3)} s total, ${startup.toFixed(3)} s start-up -> ${qemuMips.toFixed(0)} MIPS`,
    );
    const base = { bench: "cpu", unit: "MIPS", baseline: "qemu-system-riscv32-tcg", baselineValue: qemuMips };
    figures.push({ ...base, metric: "sha-mips-dirty-tracking-on", value: mipsOn, higherIsBetter: true });
    figures.push({ ...base, metric: "sha-mips-dirty-tracking-off", value: mipsOff, higherIsBetter: true });
  }
  figures.push({
    bench: "cpu",
    metric: "sha-mips-tracking-on-vs-off",
    value: mipsOn,
    unit: "MIPS",
    baseline: "ferry-dirty-tracking-off",
    baselineValue: mipsOff,
    higherIsBetter: true,
  });
  if (worker.length > 0) {
    figures.push({
      bench: "cpu",
      metric: "sha-mips-vcpu-worker",
      value: median(worker),
      unit: "MIPS",
      baseline: "ferry-in-thread",
      baselineValue: mipsOn,
      higherIsBetter: true,
    });
    const vcpu = await vcpuStopLatency(200);
    const bare = await bareStopLatency(200);
    for (const [metric, p] of [
      ["vcpu-stop-latency-median", 0.5],
      ["vcpu-stop-latency-p99", 0.99],
    ] as const) {
      figures.push({
        bench: "cpu",
        metric,
        value: percentile(vcpu, p),
        unit: "ms",
        baseline: "bare-worker-poll-4096",
        baselineValue: percentile(bare, p),
        higherIsBetter: false,
      });
    }
  }
  return figures;
}
