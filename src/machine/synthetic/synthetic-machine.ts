/**
 * `ferry-synthetic`: a migratable guest with no CPU, for benchmarks and transport tests: one RAM block filled with
 * pseudo-random bytes, a small `synthetic` device, `globalstate`, and a worker thread that dirties RAM at a set
 * rate the way a vCPU does (data store, then `dirty[page] = 1`), with real stop / cont / throttle.
 *
 * The worker's code is an embedded JavaScript string run with `new Worker(code, { eval: true })`, so it works the
 * same from the TypeScript sources (tsx) and from the compiled `dist/`.
 *
 * @module
 */

import { Worker } from "node:worker_threads";
import type { GuestControl, MigratableGuest, RunState } from "../../migration/guest.js";
import { DEFAULT_IO_MEMORY_BYTES, RamBlock } from "../../ram/ram-block.js";
import { RamDevice } from "../../ram/ram-device.js";
import type { MachineConfig } from "../../savevm/config.js";
import { registerDevice } from "../../savevm/device-entry.js";
import { GLOBAL_STATE_ID, GlobalState } from "../../savevm/global-state.js";
import { Registry } from "../../savevm/registry.js";
import * as vm from "../../vmstate/index.js";
import { fillXorshift32 } from "../xorshift.js";

/** The synthetic machine's machine type. */
export const SYNTHETIC_MACHINE_TYPE = "ferry-synthetic-1.0";
/** Its RAM block's idstr. */
export const SYNTHETIC_RAM_IDSTR = "synthetic.ram";

/** The `synthetic` device: how many pages the dirtier wrote, and its sequence number (so it resumes on). */
export const syntheticDevice = vm.device("synthetic", {
  version: 1,
  fields: { writes: vm.u64(), seq: vm.u32(), page: vm.u32() },
});

/** Control words shared with the worker. */
const C = { cmd: 0, ack: 1, throttle: 2, rate: 3, writesLo: 4, writesHi: 5, seq: 6, page: 7 } as const;

/**
 * The dirtier thread. Commands: 0 run, 1 stop, 2 quit; ack: 0 running, 1 stopped. Rate: pages per second (0 = as
 * fast as it can, < 0 = idle). Each write stores a 4-byte sequence number in a page, then marks the page.
 */
const WORKER_CODE = `
const { workerData } = require("node:worker_threads");
const ctl = new Int32Array(workerData.ctl);
const bytes = new Uint8Array(workerData.buffer, workerData.byteOffset, workerData.size);
const dirty = new Uint8Array(workerData.dirty);
const pages = workerData.size / 4096;
let seq = Atomics.load(ctl, ${C.seq}) >>> 0;
let page = Atomics.load(ctl, ${C.page}) >>> 0;
let writes = Atomics.load(ctl, ${C.writesLo}) >>> 0;
const period = 10;
function publish() {
  Atomics.store(ctl, ${C.writesLo}, writes | 0);
  Atomics.store(ctl, ${C.seq}, seq | 0);
  Atomics.store(ctl, ${C.page}, page | 0);
}
for (;;) {
  const cmd = Atomics.load(ctl, ${C.cmd});
  if (cmd === 2) break;
  if (cmd === 1) {
    publish();
    Atomics.store(ctl, ${C.ack}, 1);
    Atomics.notify(ctl, ${C.ack});
    Atomics.wait(ctl, ${C.cmd}, 1);
    seq = Atomics.load(ctl, ${C.seq}) >>> 0;
    page = Atomics.load(ctl, ${C.page}) >>> 0;
    writes = Atomics.load(ctl, ${C.writesLo}) >>> 0;
    continue;
  }
  Atomics.store(ctl, ${C.ack}, 0);
  const throttle = Atomics.load(ctl, ${C.throttle});
  const rate = Atomics.load(ctl, ${C.rate});
  if (rate < 0) { Atomics.wait(ctl, ${C.cmd}, 0, period); continue; }
  const t0 = performance.now();
  const runMs = (period * (100 - throttle)) / 100;
  const budget = rate > 0 ? Math.max(1, Math.round((rate * period * (100 - throttle)) / 100 / 1000)) : Infinity;
  let n = 0;
  while (n < budget && performance.now() - t0 < runMs) {
    for (let k = 0; k < 64 && n < budget; k++, n++) {
      const off = page * 4096 + ((seq * 8) & 4095);
      bytes[off] = seq & 0xff;
      bytes[off + 1] = (seq >>> 8) & 0xff;
      bytes[off + 2] = (seq >>> 16) & 0xff;
      bytes[off + 3] = (seq >>> 24) & 0xff;
      dirty[page] = 1;
      seq = (seq + 1) >>> 0;
      writes = (writes + 1) >>> 0;
      page = (page * 1103515245 + 12345 + seq) % pages;
    }
    if (Atomics.load(ctl, ${C.cmd}) !== 0) break;
  }
  publish();
  const left = period - (performance.now() - t0);
  if (left > 0 && Atomics.load(ctl, ${C.cmd}) === 0) Atomics.wait(ctl, ${C.cmd}, 0, left);
}
publish();
`;

/** Options of {@link SyntheticGuest}. */
export interface SyntheticGuestOptions {
  /** RAM size in bytes (multiple of 4 KiB). Default 128 MiB. */
  readonly memory?: number;
  /** Pages dirtied per second while running: 0 = as fast as possible, negative = none. Default 0. */
  readonly dirtyRate?: number;
  /** Fill RAM with pseudo-random bytes from this seed (default 1); `false` leaves it zero (a destination). */
  readonly fill?: number | false;
}

/**
 * The synthetic guest.
 *
 * @example
 * ```ts
 * const g = new SyntheticGuest({ memory: 64 << 20, dirtyRate: 20000 });
 * await g.control.cont();
 * ```
 */
export class SyntheticGuest implements MigratableGuest {
  readonly registry = new Registry();
  readonly config: MachineConfig = { machineType: SYNTHETIC_MACHINE_TYPE };
  readonly globalState: GlobalState;
  readonly control: GuestControl;
  readonly block: RamBlock;
  readonly ram: RamDevice;
  /** Migration I/O memory after the RAM block: outgoing staging, or the incoming socket's receive ring. */
  readonly ioMemory: Uint8Array | undefined;
  /** The `synthetic` device's state. */
  readonly state = vm.initialState(syntheticDevice);
  #runState: RunState = "prelaunch";
  #worker: Worker | undefined;
  readonly #ctl = new Int32Array(new SharedArrayBuffer(64));

  constructor(options: SyntheticGuestOptions = {}) {
    this.block = new RamBlock(SYNTHETIC_RAM_IDSTR, options.memory ?? 128 << 20, {
      ioMemoryBytes: DEFAULT_IO_MEMORY_BYTES,
    });
    this.ioMemory = this.block.ioMemory;
    this.ram = new RamDevice([this.block]);
    this.registry.registerIterative(this.ram);
    registerDevice(this.registry, syntheticDevice, this.state);
    this.globalState = new GlobalState(() => this.#runState);
    this.registry.registerState(GLOBAL_STATE_ID, this.globalState.handlers());
    if (options.fill !== false) this.#fill(options.fill ?? 1);
    const ctl = this.#ctl;
    Atomics.store(ctl, C.rate, options.dirtyRate ?? 0);
    Atomics.store(ctl, C.cmd, 1);
    Atomics.store(ctl, C.ack, 1);
    const self = this;
    this.control = {
      runState: () => self.#runState,
      async stop(next: RunState) {
        if (self.#runState === "running") {
          Atomics.store(ctl, C.cmd, 1);
          Atomics.notify(ctl, C.cmd);
          while (Atomics.load(ctl, C.ack) !== 1) {
            const r = (
              Atomics as unknown as {
                waitAsync(a: Int32Array, i: number, v: number, t: number): { async: boolean; value: unknown };
              }
            ).waitAsync(ctl, C.ack, 0, 5);
            if (r.async) await r.value;
          }
          self.state.writes = BigInt(Atomics.load(ctl, C.writesLo) >>> 0);
          self.state.seq = Atomics.load(ctl, C.seq) >>> 0;
          self.state.page = Atomics.load(ctl, C.page) >>> 0;
        }
        self.#runState = next;
      },
      async cont() {
        Atomics.store(ctl, C.writesLo, Number(self.state.writes & 0xffffffffn) | 0);
        Atomics.store(ctl, C.seq, self.state.seq | 0);
        Atomics.store(ctl, C.page, (self.state.page % self.block.pages) | 0);
        self.#ensureWorker();
        Atomics.store(ctl, C.cmd, 0);
        Atomics.notify(ctl, C.cmd);
        while (Atomics.load(ctl, C.ack) !== 0) await new Promise((r) => setTimeout(r, 1));
        self.#runState = "running";
      },
      setRunState(s: RunState) {
        self.#runState = s;
      },
      setThrottle(pct: number) {
        Atomics.store(ctl, C.throttle, Math.min(99, Math.max(0, Math.round(pct))));
      },
    };
  }

  #fill(seed: number): void {
    const b = this.block;
    fillXorshift32(b.bytes, seed);
    b.markDirty(0, b.size);
  }

  #ensureWorker(): void {
    if (this.#worker !== undefined) return;
    const b = this.block;
    this.#worker = new Worker(WORKER_CODE, {
      eval: true,
      workerData: {
        ctl: this.#ctl.buffer,
        buffer: b.buffer,
        byteOffset: b.byteOffset,
        size: b.size,
        dirty: b.dirty.buffer,
      },
    });
    this.#worker.unref();
  }

  /** Pages written by the dirtier so far (wraps at 2^32). */
  get writes(): number {
    return Atomics.load(this.#ctl, C.writesLo) >>> 0;
  }

  /** The throttle the dirtier honours. */
  get throttle(): number {
    return Atomics.load(this.#ctl, C.throttle);
  }

  /** RAM bytes at `[addr, addr + size)` (RAM starts at address 0). */
  readPhysical(addr: number, size: number): Uint8Array {
    if (
      !(
        Number.isSafeInteger(addr) &&
        Number.isSafeInteger(size) &&
        addr >= 0 &&
        size >= 0 &&
        addr + size <= this.block.size
      )
    ) {
      throw new RangeError(
        `Cannot read guest memory at 0x${addr.toString(16)}+${size}: RAM is ${this.block.size} bytes`,
      );
    }
    return this.block.bytes.subarray(addr, addr + size);
  }

  /** Ends the dirtier thread. */
  async dispose(): Promise<void> {
    Atomics.store(this.#ctl, C.cmd, 2);
    Atomics.notify(this.#ctl, C.cmd);
    await this.#worker?.terminate();
    this.#worker = undefined;
    this.#runState = "shutdown";
  }
}
