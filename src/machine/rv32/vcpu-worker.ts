/**
 * {@link VcpuWorker}: the main thread's handle on a `ferry-rv32` vCPU running in a `node:worker_threads` worker on
 * shared RAM. The main thread stays free (to send RAM pages, serve QMP, ...) while the guest runs at full speed.
 *
 * @module
 */

import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { Worker } from "node:worker_threads";
import { MigrationError } from "../../errors.js";
import { type BootImage, Machine } from "./machine.js";
import {
  checkMachineState,
  decodeMachineState,
  encodeMachineState,
  MACHINE_STATE_WORDS,
  type MachineState,
} from "./state.js";
import {
  Cmd,
  Counter,
  CTL_WORDS,
  Ctl,
  IN_RING_SIZE,
  OUT_RING_SIZE,
  Status,
  type VcpuMessage,
  type VcpuThreadData,
} from "./vcpu-shared.js";

/** Options of {@link VcpuWorker}. */
export interface VcpuWorkerOptions {
  /** Guest RAM on a `SharedArrayBuffer` (or a shared `WebAssembly.Memory`), mapped at 0x80000000. */
  readonly ram: Uint8Array;
  /** The dirty byte map on a `SharedArrayBuffer`: one byte per 4 KiB page of `ram`. */
  readonly dirty: Uint8Array;
  /**
   * An ELF to boot: loaded into `ram` (with the device tree) before the vCPU starts, and reloaded on a guest reset.
   * Leave it out on a migration destination and give `state` instead.
   */
  readonly elf?: Uint8Array | undefined;
  /** The machine state to start from (e.g. loaded from a migration stream). Default: reset state (or `elf`'s). */
  readonly state?: MachineState | undefined;
  /** A boot image to reload on a guest reset, when `elf` is not given. */
  readonly bootImage?: BootImage | undefined;
  /** Whether guest stores mark `dirty`. Default: true. */
  readonly trackDirty?: boolean | undefined;
  /** Virtual cycles per `mtime` tick. Default: 10. */
  readonly cyclesPerTick?: number | undefined;
  /** Start parked: `start()` resolves with the vCPU stopped, waiting for `cont()`. Default: false. */
  readonly paused?: boolean | undefined;
  /** Receives the guest's UART output, in order, in batches. */
  readonly onOutput?: ((bytes: Uint8Array) => void) | undefined;
  /** Called when the guest powers off through the test finisher (the vCPU then idles until stopped). */
  readonly onPowerOff?: ((exitCode: number) => void) | undefined;
  /** Called if the vCPU thread fails. */
  readonly onError?: ((error: Error) => void) | undefined;
}

/**
 * `Atomics.waitAsync` (ES2024; in Node since 16). The project compiles with `lib: es2022`, so it is typed here.
 */
const atomicsWaitAsync = (
  Atomics as unknown as {
    waitAsync(
      a: Int32Array,
      index: number,
      value: number,
      timeoutMs: number,
    ): { async: false; value: string } | { async: true; value: Promise<string> };
  }
).waitAsync;

/** How long `stop()` spins on the acknowledgement before it waits asynchronously. */
const STOP_SPIN_MS = 5;

function sab(bytes: number): SharedArrayBuffer {
  return new SharedArrayBuffer(bytes);
}

/**
 * Spawns the vCPU thread. From compiled JavaScript (dist/), `vcpu-thread.js` sits beside this module. From
 * TypeScript sources (tsx, tests), a Node 20 worker does not inherit tsx's loader, so a small bootstrap registers
 * it (`tsx/esm/api`) and then imports `vcpu-thread.ts`.
 */
function spawnThread(workerData: VcpuThreadData): Worker {
  const js = new URL("./vcpu-thread.js", import.meta.url);
  if (existsSync(fileURLToPath(js))) return new Worker(js, { workerData });
  const ts = new URL("./vcpu-thread.ts", import.meta.url);
  let api: string;
  try {
    api = import.meta.resolve("tsx/esm/api");
  } catch (e) {
    throw new Error(`Cannot start the vCPU thread from ${ts.href}: running TypeScript sources needs tsx`, { cause: e });
  }
  const boot = `import(${JSON.stringify(api)}).then((m) => { m.register(); return import(${JSON.stringify(ts.href)}); })`;
  return new Worker(boot, { eval: true, workerData });
}

/**
 * A vCPU in a worker thread, with stop/cont at an instruction boundary, a throttle, state access while stopped,
 * and the UART's input and output.
 *
 * @example
 * ```ts
 * const ram = new Uint8Array(new SharedArrayBuffer(128 << 20));
 * const dirty = new Uint8Array(new SharedArrayBuffer(ram.length >>> 12));
 * const vcpu = new VcpuWorker({ ram, dirty, elf: readFileSync("guests/dirty.elf"), onOutput: (b) => process.stdout.write(b) });
 * await vcpu.start();
 * await vcpu.stop();            // parked at an instruction boundary, state published
 * const state = vcpu.getState(); // save it with RAM
 * vcpu.cont();
 * await vcpu.terminate();
 * ```
 */
export class VcpuWorker {
  readonly #ram: Uint8Array;
  readonly #dirty: Uint8Array;
  readonly #ctl = new Int32Array(sab(CTL_WORDS * 4));
  readonly #counters = new Float64Array(sab(16 * 8));
  readonly #state = new Int32Array(sab(MACHINE_STATE_WORDS * 4));
  readonly #inRing = new Uint8Array(sab(IN_RING_SIZE));
  readonly #outRing = new Uint8Array(sab(OUT_RING_SIZE));
  readonly #options: VcpuWorkerOptions;
  #bootImage: BootImage | undefined;
  #worker: Worker | undefined;
  #pendingInput: Uint8Array[] = [];
  #inputTimer: ReturnType<typeof setTimeout> | undefined;
  #exited: Promise<void> | undefined;
  #error: Error | undefined;

  /**
   * Prepares the vCPU (loads `elf` into RAM if given); {@link VcpuWorker.start} spawns the thread.
   *
   * @throws MigrationError for a bad ELF or state.
   */
  constructor(options: VcpuWorkerOptions) {
    this.#options = options;
    this.#ram = options.ram;
    this.#dirty = options.dirty;
    const m = new Machine({
      ram: options.ram,
      dirty: options.dirty,
      trackDirty: options.trackDirty ?? true,
      cyclesPerTick: options.cyclesPerTick ?? 10,
    });
    if (options.elf !== undefined) m.loadElf(options.elf);
    else m.bootImage = options.bootImage;
    this.#bootImage = m.bootImage;
    const initial = options.state ?? m.getState();
    checkMachineState(initial);
    encodeMachineState(initial, this.#state);
    Atomics.store(this.#ctl, Ctl.stateNew, 1);
    Atomics.store(this.#ctl, Ctl.trackDirty, (options.trackDirty ?? true) ? 1 : 0);
    Atomics.store(this.#ctl, Ctl.poweredOff, initial.finisher.poweredOff);
    this.#counters[Counter.instret] = initial.cpu.instret;
    this.#counters[Counter.cycles] = initial.cpu.cycles;
  }

  /** Guest RAM. */
  get ram(): Uint8Array {
    return this.#ram;
  }

  /** The dirty byte map. */
  get dirty(): Uint8Array {
    return this.#dirty;
  }

  /** The boot image a guest reset reloads, if any. */
  get bootImage(): BootImage | undefined {
    return this.#bootImage;
  }

  /**
   * Spawns the vCPU thread. Resolves once it runs (or, with `paused`, once it is parked).
   *
   * @throws MigrationError `INVALID_STATE` when already started.
   */
  async start(): Promise<void> {
    if (this.#worker !== undefined) throw new MigrationError("INVALID_STATE", "Cannot start vCPU: already started");
    const paused = this.#options.paused ?? false;
    Atomics.store(this.#ctl, Ctl.cmd, paused ? Cmd.Stop : Cmd.Run);
    Atomics.store(this.#ctl, Ctl.status, paused ? Status.Starting : Status.Running);
    const worker = spawnThread({
      ram: this.#ram,
      dirty: this.#dirty,
      ctl: this.#ctl,
      counters: this.#counters,
      state: this.#state,
      inRing: this.#inRing,
      outRing: this.#outRing,
      cyclesPerTick: this.#options.cyclesPerTick ?? 10,
      bootImage: this.#bootImage,
    });
    this.#worker = worker;
    worker.on("message", (msg: VcpuMessage) => this.#onMessage(msg));
    this.#exited = new Promise<void>((resolve) => {
      worker.on("error", (e: Error) => {
        this.#fail(e);
        resolve();
      });
      worker.on("exit", () => {
        Atomics.store(this.#ctl, Ctl.status, Status.Exited);
        this.#drainOutput();
        resolve();
      });
    });
    if (paused) await this.#waitParked();
  }

  #onMessage(msg: VcpuMessage): void {
    if (msg.type === "output") {
      Atomics.store(this.#ctl, Ctl.outPing, 0);
      this.#drainOutput();
    } else if (msg.type === "poweroff") {
      this.#drainOutput();
      this.#options.onPowerOff?.(msg.exitCode);
    } else {
      const e = new Error(`vCPU thread failed: ${msg.message}`);
      if (msg.stack !== undefined) e.stack = msg.stack;
      this.#fail(e);
    }
  }

  #fail(e: Error): void {
    if (this.#error !== undefined) return;
    this.#error = e;
    Atomics.store(this.#ctl, Ctl.status, Status.Exited);
    Atomics.notify(this.#ctl, Ctl.status);
    this.#options.onError?.(e);
  }

  /** Delivers the bytes in the output ring to `onOutput`. */
  #drainOutput(): void {
    const ctl = this.#ctl;
    const r = Atomics.load(ctl, Ctl.outRead);
    const w = Atomics.load(ctl, Ctl.outWrite);
    const n = (w - r) | 0;
    if (n <= 0) return;
    const out = new Uint8Array(n);
    const mask = OUT_RING_SIZE - 1;
    const start = r & mask;
    const first = Math.min(n, OUT_RING_SIZE - start);
    out.set(this.#outRing.subarray(start, start + first), 0);
    if (first < n) out.set(this.#outRing.subarray(0, n - first), first);
    Atomics.store(ctl, Ctl.outRead, w);
    Atomics.notify(ctl, Ctl.outRead);
    this.#options.onOutput?.(out);
  }

  /** Whether the vCPU is parked (stopped, state readable). */
  get isStopped(): boolean {
    return Atomics.load(this.#ctl, Ctl.status) === Status.Parked;
  }

  /** Whether the guest has powered the machine off. */
  get isPoweredOff(): boolean {
    return Atomics.load(this.#ctl, Ctl.poweredOff) === 1;
  }

  /** The guest's exit code once powered off. */
  get exitCode(): number {
    return Atomics.load(this.#ctl, Ctl.exitCode);
  }

  /** Instructions retired since reset (updated after every slice of ≤ 4096 steps, exact while stopped). */
  get instructions(): number {
    return this.#counters[Counter.instret] as number;
  }

  /** Virtual cycles since reset (drives `mtime`). */
  get cycles(): number {
    return this.#counters[Counter.cycles] as number;
  }

  /** The throttle percentage (0–99). */
  get throttle(): number {
    return Atomics.load(this.#ctl, Ctl.throttle);
  }

  /**
   * Sets the auto-converge throttle: the vCPU sleeps `pct` % of every 10 ms period (QEMU: `cpu_throttle_set`).
   *
   * @param pct An integer in [0, 99].
   */
  setThrottle(pct: number): void {
    if (!Number.isInteger(pct) || pct < 0 || pct > 99) {
      throw new RangeError(`Cannot set throttle: ${pct} is not an integer percentage in [0, 99]`);
    }
    Atomics.store(this.#ctl, Ctl.throttle, pct);
    this.#kick();
  }

  /**
   * Switches dirty tracking on or off; takes effect at the next `cont()` (or start).
   */
  setTrackDirty(on: boolean): void {
    Atomics.store(this.#ctl, Ctl.trackDirty, on ? 1 : 0);
  }

  /**
   * Stops the vCPU at an instruction boundary. Resolves once it is parked and its state is published (then
   * {@link VcpuWorker.getState} works) and all UART output produced before the stop has been delivered.
   * Spins for up to 5 ms on the acknowledgement (typically tens of µs), then waits asynchronously.
   */
  async stop(): Promise<void> {
    this.#checkStarted("stop");
    const ctl = this.#ctl;
    Atomics.store(ctl, Ctl.cmd, Cmd.Stop);
    this.#kick();
    const t0 = performance.now();
    let s = Atomics.load(ctl, Ctl.status);
    while (s !== Status.Parked && s !== Status.Exited) {
      if (performance.now() - t0 > STOP_SPIN_MS) {
        this.#drainOutput();
        const r = atomicsWaitAsync(ctl, Ctl.status, s, 50);
        if (r.async) await r.value;
      }
      s = Atomics.load(ctl, Ctl.status);
    }
    this.#drainOutput();
    if (s === Status.Exited)
      throw this.#error ?? new MigrationError("INVALID_STATE", "Cannot stop vCPU: it has exited");
  }

  /**
   * Resumes a stopped vCPU (after loading a state given to {@link VcpuWorker.setState}, if any).
   */
  cont(): void {
    this.#checkStarted("cont");
    const ctl = this.#ctl;
    if (Atomics.load(ctl, Ctl.status) === Status.Exited) {
      throw this.#error ?? new MigrationError("INVALID_STATE", "Cannot resume vCPU: it has exited");
    }
    Atomics.store(ctl, Ctl.status, Status.Running);
    Atomics.store(ctl, Ctl.cmd, Cmd.Run);
    this.#kick();
  }

  async #waitParked(): Promise<void> {
    const ctl = this.#ctl;
    for (;;) {
      const s = Atomics.load(ctl, Ctl.status);
      if (s === Status.Parked) return;
      if (s === Status.Exited) throw this.#error ?? new MigrationError("INVALID_STATE", "vCPU thread exited");
      const r = atomicsWaitAsync(ctl, Ctl.status, s, 50);
      if (r.async) await r.value;
    }
  }

  /** Wakes the vCPU thread after a change to `cmd` or `throttle`. */
  #kick(): void {
    Atomics.add(this.#ctl, Ctl.seq, 1);
    Atomics.notify(this.#ctl, Ctl.seq);
  }

  #checkStarted(what: string): void {
    if (this.#worker === undefined) throw new MigrationError("INVALID_STATE", `Cannot ${what} vCPU: not started`);
  }

  #checkParked(what: string): void {
    if (this.#worker !== undefined && !this.isStopped) {
      throw new MigrationError("INVALID_STATE", `Cannot ${what} vCPU state: the vCPU is running; stop() it first`);
    }
  }

  /**
   * Returns the CPU and device state. Only while stopped (or before start).
   *
   * @throws MigrationError `INVALID_STATE` while running.
   */
  getState(): MachineState {
    this.#checkParked("read");
    return decodeMachineState(this.#state);
  }

  /**
   * Replaces the CPU and device state; the vCPU loads it when it resumes. Only while stopped (or before start).
   *
   * @throws MigrationError `INVALID_STATE` while running, `FIELD_OUT_OF_RANGE` for a bad state.
   */
  setState(s: MachineState): void {
    this.#checkParked("write");
    checkMachineState(s);
    encodeMachineState(s, this.#state);
    Atomics.store(this.#ctl, Ctl.stateNew, 1);
    Atomics.store(this.#ctl, Ctl.poweredOff, s.finisher.poweredOff);
    this.#counters[Counter.instret] = s.cpu.instret;
    this.#counters[Counter.cycles] = s.cpu.cycles;
  }

  /** Sends bytes to the guest's UART (in order; queued while the 4 KiB input ring is full). */
  pushInput(bytes: Uint8Array | string): void {
    const b = typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes.slice();
    if (b.length > 0) this.#pendingInput.push(b);
    this.#feedInput();
  }

  #feedInput(): void {
    const ctl = this.#ctl;
    let w = Atomics.load(ctl, Ctl.inWrite);
    while (this.#pendingInput.length > 0) {
      const chunk = this.#pendingInput[0] as Uint8Array;
      const free = IN_RING_SIZE - ((w - Atomics.load(ctl, Ctl.inRead)) | 0);
      if (free <= 0) break;
      const n = Math.min(free, chunk.length);
      for (let i = 0; i < n; i++) this.#inRing[(w + i) & (IN_RING_SIZE - 1)] = chunk[i] as number;
      w = (w + n) | 0;
      Atomics.store(ctl, Ctl.inWrite, w);
      if (n === chunk.length) this.#pendingInput.shift();
      else this.#pendingInput[0] = chunk.subarray(n);
    }
    if (this.#pendingInput.length > 0 && this.#inputTimer === undefined) {
      this.#inputTimer = setTimeout(() => {
        this.#inputTimer = undefined;
        this.#feedInput();
      }, 1);
      this.#inputTimer.unref();
    }
  }

  /** Stops the thread for good and waits for it to exit. The RAM stays as it is. */
  async terminate(): Promise<void> {
    const worker = this.#worker;
    if (worker === undefined) return;
    if (this.#inputTimer !== undefined) clearTimeout(this.#inputTimer);
    Atomics.store(this.#ctl, Ctl.cmd, Cmd.Exit);
    this.#kick();
    const timer = setTimeout(() => void worker.terminate(), 2000);
    await this.#exited;
    clearTimeout(timer);
    this.#drainOutput();
  }
}
