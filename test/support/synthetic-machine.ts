/**
 * A synthetic migratable machine for engine tests: RAM blocks, a few devices with state, `globalstate`, and a
 * worker thread that dirties RAM at a set rate the way a vCPU does, with real stop / cont / throttle.
 */
import { Worker } from "node:worker_threads";
import { fillXorshift32 } from "../../src/machine/xorshift.js";
import type { GuestControl, MigratableGuest, RunState } from "../../src/migration/guest.js";
import { DEFAULT_IO_MEMORY_BYTES, RamBlock } from "../../src/ram/ram-block.js";
import { RamDevice } from "../../src/ram/ram-device.js";
import type { MachineConfig } from "../../src/savevm/config.js";
import { GLOBAL_STATE_ID, GlobalState } from "../../src/savevm/global-state.js";
import { Registry, type StateHandlers } from "../../src/savevm/registry.js";

/** State of the synthetic `counter` device. */
export interface CounterState {
  ticks: bigint;
  label: string;
  regs: number[];
}

function counterHandlers(state: CounterState): StateHandlers {
  return {
    vmsdName: "counter",
    save(w, vmdesc) {
      const label = new TextEncoder().encode(state.label);
      w.u64(state.ticks).u8(label.length).bytes(label);
      for (const r of state.regs) w.u32(r);
      return vmdesc ? { vmsd_name: "counter", version: 1, fields: [] } : undefined;
    },
    decode(r) {
      const ticks = r.u64();
      const label = new TextDecoder().decode(r.bytes(r.u8()));
      const regs: number[] = [];
      for (let i = 0; i < 8; i++) regs.push(r.u32());
      return { ticks, label, regs };
    },
    apply(d) {
      Object.assign(state, d as CounterState);
    },
  };
}

/** Options of {@link SyntheticMachine}. */
export interface SyntheticOptions {
  /** RAM size in MiB per block (default [16, 4]). */
  readonly blocksMiB?: readonly number[];
  /** Pages dirtied per second by the worker while running (0 = as fast as it can; default: none, an idle guest). */
  readonly dirtyRate?: number;
  /** Machine type (default `ferry-synthetic-1.0`). */
  readonly machineType?: string;
}

/** The synthetic machine. */
export class SyntheticMachine implements MigratableGuest {
  readonly registry = new Registry();
  readonly config: MachineConfig;
  readonly blocks: RamBlock[];
  /** Migration I/O memory after the first RAM block: outgoing staging, or the incoming socket's receive ring. */
  readonly ioMemory: Uint8Array | undefined;
  readonly ram: RamDevice;
  readonly counter: CounterState = { ticks: 0n, label: "", regs: [0, 0, 0, 0, 0, 0, 0, 0] };
  readonly control: GuestControl;
  #runState: RunState = "paused";
  readonly globalState: GlobalState;
  #worker: Worker | undefined;
  readonly #ctl = new Int32Array(new SharedArrayBuffer(32));

  constructor(options: SyntheticOptions = {}) {
    this.config = { machineType: options.machineType ?? "ferry-synthetic-1.0" };
    this.blocks = (options.blocksMiB ?? [16, 4]).map(
      (mib, i) =>
        new RamBlock(i === 0 ? "pc.ram" : `extra${i}`, mib << 20, {
          ioMemoryBytes: i === 0 ? DEFAULT_IO_MEMORY_BYTES : 0,
        }),
    );
    this.ioMemory = this.blocks[0]?.ioMemory;
    this.ram = new RamDevice(this.blocks);
    this.registry.registerIterative(this.ram);
    this.registry.registerState({ idstr: "counter", version: 1 }, counterHandlers(this.counter));
    this.globalState = new GlobalState(() => this.#runState);
    this.registry.registerState(GLOBAL_STATE_ID, this.globalState.handlers());
    Atomics.store(this.#ctl, 3, options.dirtyRate ?? -1);
    Atomics.store(this.#ctl, 0, 1);
    Atomics.store(this.#ctl, 1, 1);
    const ctl = this.#ctl;
    const self = this;
    this.control = {
      runState: () => self.#runState,
      async stop(next: RunState) {
        Atomics.store(ctl, 0, 1);
        Atomics.notify(ctl, 0);
        if (self.#worker !== undefined) {
          while (Atomics.load(ctl, 1) !== 1) Atomics.wait(ctl, 1, 0, 5);
        }
        self.#runState = next;
      },
      async cont() {
        self.#ensureWorker();
        Atomics.store(ctl, 0, 0);
        Atomics.notify(ctl, 0);
        // Wait until the worker reports it runs, so "running" means pages are being dirtied.
        while (Atomics.load(ctl, 1) !== 0) await new Promise((r) => setTimeout(r, 1));
        self.#runState = "running";
      },
      setRunState(s: RunState) {
        self.#runState = s;
      },
      setThrottle(pct: number) {
        Atomics.store(ctl, 2, pct);
      },
    };
  }

  #ensureWorker(): void {
    if (this.#worker !== undefined) return;
    this.#worker = new Worker(new URL("./dirtier-worker.mjs", import.meta.url), {
      workerData: { blocks: this.blocks.map((b) => b.share()), control: this.#ctl.buffer },
    });
    this.#worker.unref();
  }

  /** The throttle percentage the worker is honouring. */
  get throttle(): number {
    return Atomics.load(this.#ctl, 2);
  }

  /** Writes the worker made so far (wraps at 2^31). */
  get writes(): number {
    return Atomics.load(this.#ctl, 4);
  }

  /** Fills RAM with a deterministic pattern, leaving some pages zero and some never written. */
  fill(seed: number): void {
    let x = seed >>> 0 || 1;
    for (const b of this.blocks) {
      const words = new Uint32Array(b.buffer, b.byteOffset, b.size >>> 2);
      for (let p = 0; p < b.pages; p++) {
        if (p % 4 === 3) continue; // never written
        if (p % 4 === 2) {
          b.markDirty(p * 4096, 4096); // written, but zero
          continue;
        }
        for (let i = p * 1024; i < p * 1024 + 1024; i++) {
          x ^= x << 13;
          x ^= x >>> 17;
          x ^= x << 5;
          words[i] = x >>> 0;
        }
        b.markDirty(p * 4096, 4096);
      }
    }
    this.counter.ticks = BigInt(seed) * 1000n;
    this.counter.label = `seed-${seed}`;
    this.counter.regs = [1, 2, 3, 4, 5, 6, 7, seed];
  }

  /** Fills every page of RAM with random bytes (all pages written and non-zero). */
  fillRandom(seed: number): void {
    let x = seed;
    for (const b of this.blocks) {
      x = fillXorshift32(b.bytes, x);
      b.markDirty(0, b.size);
    }
  }

  /** Stops and ends the worker thread. */
  async dispose(): Promise<void> {
    Atomics.store(this.#ctl, 0, 2);
    Atomics.notify(this.#ctl, 0);
    await this.#worker?.terminate();
    this.#worker = undefined;
  }
}

/** Whether two machines hold the same RAM and device state. */
export function sameState(a: SyntheticMachine, b: SyntheticMachine): string | undefined {
  for (let i = 0; i < a.blocks.length; i++) {
    const x = a.blocks[i] as RamBlock;
    const y = b.blocks[i] as RamBlock;
    if (
      Buffer.compare(
        Buffer.from(x.bytes.buffer, x.bytes.byteOffset, x.size),
        Buffer.from(y.bytes.buffer, y.bytes.byteOffset, y.size),
      ) !== 0
    ) {
      for (let p = 0; p < x.pages; p++) {
        const pa = Buffer.from(x.bytes.buffer, x.bytes.byteOffset + p * 4096, 4096);
        const pb = Buffer.from(y.bytes.buffer, y.bytes.byteOffset + p * 4096, 4096);
        if (!pa.equals(pb)) return `block ${x.idstr} differs first at page ${p}`;
      }
    }
  }
  if (a.counter.ticks !== b.counter.ticks || a.counter.label !== b.counter.label) return "counter differs";
  if (a.counter.regs.join() !== b.counter.regs.join()) return "counter regs differ";
  return undefined;
}
