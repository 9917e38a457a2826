/**
 * VcpuWorker: the vCPU in a worker thread on shared RAM. Stop/cont latency, state while stopped, a worker-to-worker
 * hand-over (RAM + state), the throttle, dirty marking, and UART input/output through the shared rings.
 */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { suite, test } from "node:test";
import { isMigrationError } from "../../errors.js";
import { checkDirtyInvariant } from "./dirty-invariant.js";
import { VcpuWorker } from "./vcpu-worker.js";

const elf = (name: string): Uint8Array =>
  new Uint8Array(readFileSync(new URL(`../../../guests/${name}.elf`, import.meta.url)));
const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** 16 MiB of RAM: the dirty guest's region is 1..16 MiB (3840 pages). */
const RAM = 16 << 20;
function memory(): { ram: Uint8Array; dirty: Uint8Array } {
  return {
    ram: new Uint8Array(new SharedArrayBuffer(RAM)),
    dirty: new Uint8Array(new SharedArrayBuffer(RAM >>> 12)),
  };
}

async function until(cond: () => boolean, ms = 10_000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error("timed out waiting for a condition");
    await sleep(2);
  }
}

function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(p * s.length))] as number;
}

suite("VcpuWorker", () => {
  test("stop/cont: latency, a parked vCPU makes no progress, state and invariant at every stop", async (t) => {
    const mem = memory();
    let out = "";
    const v = new VcpuWorker({
      ...mem,
      elf: elf("dirty"),
      onOutput: (b) => (out += Buffer.from(b).toString("latin1")),
    });
    await v.start();
    try {
      await until(() => out.includes("B"));
      const lat: number[] = [];
      for (let i = 0; i < 200; i++) {
        await sleep(1 + (i % 3));
        const t0 = performance.now();
        await v.stop();
        lat.push(performance.now() - t0);
        if (i % 20 === 0) {
          const s1 = v.getState();
          const n1 = v.instructions;
          const inv = checkDirtyInvariant(mem.ram, 1 << 20, RAM);
          assert.equal(inv.errors, 0, JSON.stringify(inv));
          await sleep(2);
          assert.deepEqual(v.getState(), s1, "state changed while stopped");
          assert.equal(v.instructions, n1);
          assert.equal(s1.cpu.instret, n1);
        }
        v.cont();
      }
      const median = percentile(lat, 0.5);
      const p99 = percentile(lat, 0.99);
      t.diagnostic(`stop latency over 200 trials: median ${median.toFixed(3)} ms, p99 ${p99.toFixed(3)} ms`);
      assert.ok(median < 20, `median stop latency ${median} ms`);
      assert.throws(
        () => v.getState(),
        (e: unknown) => isMigrationError(e, "INVALID_STATE"),
      );
    } finally {
      await v.terminate();
    }
  });

  test("a stopped vCPU's RAM and state continue in another worker (a hand-over)", async () => {
    const a = memory();
    let outA = "";
    const src = new VcpuWorker({
      ...a,
      elf: elf("dirty"),
      onOutput: (b) => (outA += Buffer.from(b).toString("latin1")),
    });
    await src.start();
    await until(() => outA.length >= 3);
    await src.stop();
    const state = src.getState();
    await src.terminate();

    const b = memory();
    b.ram.set(a.ram);
    let outB = "";
    const dst = new VcpuWorker({
      ...b,
      state,
      paused: true,
      onOutput: (x) => (outB += Buffer.from(x).toString("latin1")),
    });
    await dst.start();
    try {
      assert.deepEqual(dst.getState(), state);
      dst.cont();
      await until(() => outB.length >= 2);
      assert.match(outB, /^B+$/);
      await dst.stop();
      assert.ok(dst.instructions > state.cpu.instret);
      assert.equal(checkDirtyInvariant(b.ram, 1 << 20, RAM).errors, 0);
    } finally {
      await dst.terminate();
    }
  });

  test("setState while stopped rewinds the same worker to a snapshot (loadvm)", async () => {
    const mem = memory();
    let out = "";
    const v = new VcpuWorker({
      ...mem,
      elf: elf("dirty"),
      onOutput: (b) => (out += Buffer.from(b).toString("latin1")),
    });
    await v.start();
    try {
      await until(() => out.length >= 2);
      await v.stop();
      const snap = v.getState();
      const ram = mem.ram.slice();
      v.cont();
      await until(() => v.instructions > snap.cpu.instret + 1_000_000);
      await v.stop();
      assert.throws(
        () => v.setState({ ...snap, cpu: { ...snap.cpu, pc: snap.cpu.pc + 2 } }),
        (e: unknown) => isMigrationError(e, "FIELD_OUT_OF_RANGE"),
      );
      mem.ram.set(ram);
      v.setState(snap);
      assert.equal(v.instructions, snap.cpu.instret);
      assert.deepEqual(v.getState(), snap);
      await v.stop();
      assert.deepEqual(v.getState(), snap, "stop() before cont() keeps the new state");
      v.cont();
      await sleep(20);
      await v.stop();
      assert.ok(v.instructions > snap.cpu.instret);
      assert.equal(checkDirtyInvariant(mem.ram, 1 << 20, RAM).errors, 0);
    } finally {
      await v.terminate();
    }
  });

  test("the throttle reduces throughput; dirty pages are marked and re-marked after a clear", async (t) => {
    const mem = memory();
    const v = new VcpuWorker({ ...mem, elf: elf("dirty") });
    await v.start();
    try {
      const rate = async (ms: number): Promise<number> => {
        const n0 = v.instructions;
        const t0 = performance.now();
        await sleep(ms);
        return (v.instructions - n0) / (performance.now() - t0) / 1000;
      };
      // Measure only once the thread has started and its interpreter is compiled (slow on a loaded machine).
      await until(() => v.instructions > 10_000_000, 60_000);
      const before = await rate(300);
      v.setThrottle(90);
      await sleep(30);
      const throttled = await rate(300);
      assert.equal(v.throttle, 90);
      v.setThrottle(0);
      await sleep(30);
      const after = await rate(300);
      const full = Math.max(before, after);
      t.diagnostic(`MIPS unthrottled ${before.toFixed(1)}/${after.toFixed(1)}, 90% throttle ${throttled.toFixed(1)}`);
      assert.ok(full > 0, "no progress unthrottled");
      assert.ok(throttled < full * 0.5, `throttled ${throttled} vs ${full} MIPS`);

      await v.stop();
      const marked = mem.dirty.reduce((s, x) => s + x, 0);
      assert.ok(marked > 0);
      mem.dirty.fill(0);
      v.cont();
      await sleep(50);
      await v.stop();
      // The guest keeps incrementing the first byte of every page from 1 MiB up.
      assert.ok(mem.dirty.reduce((s, x) => s + x, 0) > 100, "pages not marked again after the clear");
      assert.equal(mem.dirty[(512 << 10) >>> 12], 0, "a page the guest never writes is not marked");
    } finally {
      await v.terminate();
    }
  });

  test("UART input and output through the worker; power-off is reported", async () => {
    const mem = memory();
    let out = "";
    let exitCode = -1;
    const v = new VcpuWorker({
      ...mem,
      elf: elf("echo"),
      onOutput: (b) => (out += Buffer.from(b).toString("latin1")),
      onPowerOff: (code) => (exitCode = code),
    });
    await v.start();
    try {
      await until(() => out.includes("quits\n"));
      v.pushInput("hi ");
      v.pushInput(new TextEncoder().encode("there\n\x04"));
      await until(() => exitCode !== -1);
      assert.equal(exitCode, 0);
      assert.equal(out, "echo: type, ^D quits\nhi there\n\nbye\n");
      assert.equal(v.isPoweredOff, true);
      await v.stop();
      assert.equal(v.getState().finisher.poweredOff, 1);
    } finally {
      await v.terminate();
    }
  });
});
