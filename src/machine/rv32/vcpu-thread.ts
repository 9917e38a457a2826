/**
 * The vCPU thread's entry point (a `node:worker_threads` worker started by {@link VcpuWorker}): runs the
 * `ferry-rv32` machine on shared RAM in slices of {@link POLL_STEPS} steps, polling the control word between
 * slices, honouring the throttle, and moving UART bytes through the shared rings.
 *
 * @module
 */

import { parentPort, workerData } from "node:worker_threads";
import { Machine, RunExit } from "./machine.js";
import { decodeMachineState, encodeMachineState } from "./state.js";
import type { RxSource } from "./uart16550.js";
import {
  Cmd,
  Counter,
  Ctl,
  IN_RING_SIZE,
  OUT_RING_SIZE,
  POLL_STEPS,
  Status,
  THROTTLE_PERIOD_MS,
  type VcpuMessage,
  type VcpuThreadData,
} from "./vcpu-shared.js";

const data = workerData as VcpuThreadData;
const { ctl, counters, state, inRing, outRing } = data;
const port = parentPort;

function post(msg: VcpuMessage): void {
  port?.postMessage(msg);
}

/** Main's UART input, from the shared ring. */
const input: RxSource = {
  take(): number {
    const r = Atomics.load(ctl, Ctl.inRead);
    if (r === Atomics.load(ctl, Ctl.inWrite)) return -1;
    const b = inRing[r & (IN_RING_SIZE - 1)] as number;
    Atomics.store(ctl, Ctl.inRead, (r + 1) | 0);
    return b;
  },
};

let outW = Atomics.load(ctl, Ctl.outWrite);

function pingOutput(): void {
  if (outW !== Atomics.load(ctl, Ctl.outRead) && Atomics.load(ctl, Ctl.outPing) === 0) {
    Atomics.store(ctl, Ctl.outPing, 1);
    post({ type: "output" });
  }
}

/** Puts one UART byte into the output ring, waiting for main to drain it when full. */
function output(byte: number): void {
  for (;;) {
    const r = Atomics.load(ctl, Ctl.outRead);
    if (((outW - r) | 0) < OUT_RING_SIZE) break;
    pingOutput();
    if (Atomics.load(ctl, Ctl.cmd) === Cmd.Exit) return;
    Atomics.wait(ctl, Ctl.outRead, r, 5);
  }
  outRing[outW & (OUT_RING_SIZE - 1)] = byte;
  outW = (outW + 1) | 0;
  Atomics.store(ctl, Ctl.outWrite, outW);
}

const machine = new Machine({
  ram: data.ram,
  dirty: data.dirty,
  trackDirty: Atomics.load(ctl, Ctl.trackDirty) === 1,
  cyclesPerTick: data.cyclesPerTick,
  onOutput: output,
});
machine.bootImage = data.bootImage;

function publishCounters(): void {
  counters[Counter.instret] = machine.cpu.instret;
  counters[Counter.cycles] = machine.cpu.cycles;
}

function loadNewState(): void {
  if (Atomics.load(ctl, Ctl.stateNew) !== 1) return;
  machine.setState(decodeMachineState(state));
  Atomics.store(ctl, Ctl.stateNew, 0);
  Atomics.store(ctl, Ctl.poweredOff, machine.poweredOff ? 1 : 0);
  publishCounters();
}

/** Sleeps until main changes a command (seen as `Ctl.seq` moving on from `seq`) or `ms` pass. */
function sleep(seq: number, ms: number): void {
  Atomics.wait(ctl, Ctl.seq, seq, ms);
}

/** Parks until main sends Run or Exit. Returns false on Exit. */
function park(): boolean {
  for (;;) {
    const seq = Atomics.load(ctl, Ctl.seq);
    const cmd = Atomics.load(ctl, Ctl.cmd);
    if (cmd === Cmd.Exit) return false;
    if (cmd === Cmd.Run) break;
    if (Atomics.load(ctl, Ctl.status) !== Status.Parked) {
      loadNewState();
      pingOutput();
      encodeMachineState(machine.getState(), state);
      publishCounters();
      Atomics.store(ctl, Ctl.status, Status.Parked);
      Atomics.notify(ctl, Ctl.status);
    }
    sleep(seq, 1000);
  }
  loadNewState();
  machine.trackDirty = Atomics.load(ctl, Ctl.trackDirty) === 1;
  return true;
}

function main(): void {
  machine.setInputSource(input);
  loadNewState();
  machine.trackDirty = Atomics.load(ctl, Ctl.trackDirty) === 1;
  let periodStart = performance.now();
  let reportedPowerOff = false;
  for (;;) {
    const seq = Atomics.load(ctl, Ctl.seq);
    const cmd = Atomics.load(ctl, Ctl.cmd);
    if (cmd !== Cmd.Run) {
      if (cmd === Cmd.Exit || !park()) break;
      reportedPowerOff = machine.poweredOff;
      periodStart = performance.now();
      continue;
    }
    if (machine.poweredOff) {
      if (!reportedPowerOff) {
        reportedPowerOff = true;
        Atomics.store(ctl, Ctl.exitCode, machine.exitCode);
        Atomics.store(ctl, Ctl.poweredOff, 1);
        pingOutput();
        post({ type: "poweroff", exitCode: machine.exitCode });
      }
      sleep(seq, 1000);
      continue;
    }
    const pct = Atomics.load(ctl, Ctl.throttle);
    if (pct > 0) {
      // Auto-converge throttle (QEMU: cpu_throttle_thread): run (100 - pct)% of each period, sleep the rest.
      const now = performance.now();
      const runFor = (THROTTLE_PERIOD_MS * (100 - pct)) / 100;
      if (now - periodStart >= runFor) {
        const sleepMs = periodStart + THROTTLE_PERIOD_MS - now;
        if (sleepMs > 0) sleep(seq, sleepMs);
        periodStart = performance.now();
        continue;
      }
    }
    const exit = machine.run(POLL_STEPS);
    publishCounters();
    machine.uart.pull();
    pingOutput();
    if (exit === RunExit.Idle) {
      // Stalled in wfi with no wake-up source: sleep until main says otherwise.
      sleep(seq, 50);
    }
  }
  pingOutput();
  publishCounters();
  Atomics.store(ctl, Ctl.status, Status.Exited);
  Atomics.notify(ctl, Ctl.status);
}

try {
  main();
} catch (e) {
  post({
    type: "error",
    message: e instanceof Error ? e.message : String(e),
    stack: e instanceof Error ? e.stack : undefined,
  });
  Atomics.store(ctl, Ctl.status, Status.Exited);
  Atomics.notify(ctl, Ctl.status);
}
