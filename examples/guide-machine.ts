/**
 * The example machine of docs/guide.md: one device described with Ferry's vmstate DSL (with a version bump and a
 * subsection switched off by a compat property), guest RAM with dirty tracking, and the globalstate entry.
 * test/e2e/guide-example.test.ts runs it.
 */

import { DEFAULT_IO_MEMORY_BYTES, RamBlock, RamDevice } from "ferry/ram";
import { GLOBAL_STATE_ID, GlobalState, type MachineConfig, Registry, registerDevice } from "ferry/savevm";
import { connect, listen } from "ferry/transport";
import * as vm from "ferry/vmstate";

/** Machine types and their compat properties (QEMU's hw_compat_X_Y idea). */
export const MACHINE_TYPES = {
  "toy-1.0": { timerScale: false },
  "toy-1.1": { timerScale: true },
} as const;
export type MachineType = keyof typeof MACHINE_TYPES;

/** Step 1: describe the device's state. The TypeScript type of the state is inferred from this. */
export function timerDescription(compat: { timerScale: boolean }) {
  return vm.device("toy-timer", {
    version: 2, // v2 added `armed`
    minVersion: 1, // still loads v1 streams (then `armed` keeps its default)
    fields: {
      count: vm.u32(),
      period: vm.u32(),
      deadline: vm.timer(), // ns, all-ones = not armed
      history: vm.array(vm.u16(), 4),
      armed: vm.bool({ since: 2 }),
    },
    subsections: {
      // Added in machine type 1.1; a 1.0 machine type never sends it, so a 1.0 Ferry can load the stream.
      scale: {
        name: "toy-timer/scale",
        version: 1,
        fields: { factor: vm.u32() },
        needed: (s) => compat.timerScale && s.scale.factor !== 1,
      },
    },
    postLoad(s) {
      if (s.period === 0) return new Error("period must not be 0");
      return undefined;
    },
  });
}

/** Step 2: the machine: a registry with RAM, the device and globalstate. */
export class ToyMachine {
  readonly registry = new Registry();
  readonly config: MachineConfig;
  readonly ram: RamBlock;
  readonly ioMemory: Uint8Array | undefined;
  readonly timer;
  runState = "running";
  readonly globalState = new GlobalState(() => this.runState);

  constructor(type: MachineType, ramBytes = 4 << 20) {
    this.config = { machineType: type, compatibleMachineTypes: type === "toy-1.1" ? ["toy-1.0"] : [] };
    // Guest RAM lives in a shared WebAssembly.Memory: a vCPU worker can run on it while the main thread sends.
    this.ram = new RamBlock("toy.ram", ramBytes, { ioMemoryBytes: DEFAULT_IO_MEMORY_BYTES });
    // Where an incoming socket stream is read: right after the RAM, so pages move with one wasm memory.copy.
    this.ioMemory = this.ram.ioMemory;
    this.registry.registerIterative(new RamDevice([this.ram]));
    const desc = timerDescription(MACHINE_TYPES[type]);
    this.timer = { desc, state: vm.initialState(desc) };
    this.timer.state.period = 1000;
    this.timer.state.scale.factor = 1;
    registerDevice(this.registry, desc, this.timer.state);
    this.registry.registerState(GLOBAL_STATE_ID, this.globalState.handlers());
  }

  /** Step 3: every guest store goes through one path that writes RAM and marks the page dirty. */
  store8(addr: number, value: number): void {
    this.ram.bytes[addr] = value;
    this.ram.dirty[addr >>> 12] = 1;
  }
}

/** Sends a snapshot of `src` to `dst` over a real socket (what `ferry migrate` does with a stopped guest). */
export async function snapshotOverTcp(src: ToyMachine, dst: ToyMachine): Promise<void> {
  const { saveVm, loadVm } = await import("ferry/savevm");
  const listener = await listen("tcp:127.0.0.1:0");
  const [out, incoming] = await Promise.all([connect(listener.uri), listener.accept()]);
  try {
    await Promise.all([saveVm(src, out), loadVm(dst, incoming)]);
  } catch (e) {
    // A failed load leaves the sender blocked on a peer that stopped reading: tear both ends down.
    out.abort();
    incoming.abort();
    throw e;
  }
  await out.close();
  await incoming.close();
}
