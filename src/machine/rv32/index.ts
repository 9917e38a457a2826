/**
 * `ferry-rv32`, Ferry's reference machine: an RV32IMA hart (Zicsr, Zifencei, machine mode) with RAM at 0x80000000,
 * a 16550A UART, a CLINT and the SiFive test finisher, laid out as QEMU's RISC-V `virt` machine so the same guest
 * ELF runs on both (`qemu-system-riscv32 -M virt -bios none -kernel guest.elf`).
 *
 * The CPU and devices are platform-neutral; {@link VcpuWorker} (worker threads) and {@link readElfFile} (files)
 * use `node:` modules. The machine is built only on Ferry's public layers; it must not import from `cli/` or
 * `qmp/`, and from `migration/` only the `MigratableGuest` / `GuestControl` types that {@link Rv32Machine} implements.
 *
 * Migration: {@link Rv32Machine} (vCPU in a worker) and {@link Rv32SyncGuest} (in-thread, deterministic) are
 * `MigratableGuest`s; their device state is described in `vmstate.ts` (machine types `ferry-rv32-1.0` and
 * `ferry-rv32-1.1`). See docs/machine.md.
 *
 * Choices, and where they differ from qemu-system-riscv32 7.2 `virt`:
 * - Machine mode only (no S/U): `medeleg`, `mideleg`, `mcounteren` and supervisor CSRs are illegal; `mstatus.MPP`
 *   reads 3; `misa` = RV32IMA. QEMU's generic CPU also has S, U, C and more.
 * - Misaligned loads and stores are carried out (split into bytes), as QEMU does; misaligned LR traps with cause 4,
 *   misaligned SC/AMO with 6 and AMOs outside RAM with 7 (QEMU 7.2 reports 4 and 5 for AMOs).
 * - Time is virtual: `mtime = floor(cycles / cyclesPerTick)` (+ the guest's offset), `cycles` counting steps plus
 *   idle time skipped in `wfi` (so a guest sleeping in `wfi` runs ahead of wall-clock time, like QEMU's icount
 *   with `sleep=off`). It makes `Machine.run` deterministic and migrates with the CPU state. `mtimecmp` resets to
 *   0, so MTIP is pending from reset, as in QEMU.
 * - Boot: `pc` = ELF entry, `a0` = 0, `a1` = a device tree at QEMU's address; no boot ROM (QEMU's `a2` is 0).
 * - Unmapped physical addresses raise access faults; there is no PLIC, RTC, virtio, flash or PCIe, and the UART's
 *   interrupt line is computed but not wired.
 * - RAM is a `Uint8Array` (on a `SharedArrayBuffer` or a shared `WebAssembly.Memory`) and a dirty byte map, one
 *   byte per 4 KiB page, both owned by the caller (e.g. a `ram/` RAM block). Every guest store to RAM writes
 *   the data and then sets its page's byte to 1 with a plain store, unless tracking is switched off.
 *
 * @example
 * ```ts
 * import { Machine, RunExit } from "./machine/rv32/index.js";
 * const m = new Machine({ onOutput: (b) => process.stdout.write(String.fromCharCode(b)) });
 * m.loadElf(await readElfFile("guests/sha.elf"));
 * while (m.run(1_000_000) === RunExit.Budget) {}
 * ```
 *
 * @module
 */

export { Bus, type BusDevices, type MmioDevice } from "./bus.js";
export { Clint, type ClintState } from "./clint.js";
export { Cpu, type CpuMemory } from "./cpu.js";
export { Csr, Exception, Interrupt } from "./csr.js";
export { checkDirtyInvariant, type DirtyInvariantResult } from "./dirty-invariant.js";
export { checkElfFits, ELF_MAX_PHDRS, type ElfImage, type ElfSegment, parseElf } from "./elf.js";
export { readElfFile } from "./elf-file.js";
export { buildDeviceTree, deviceTreeAddress } from "./fdt.js";
export { Finisher, FinisherCode, type FinisherState } from "./finisher.js";
export {
  type BootImage,
  copyBootImage,
  Machine,
  type MachineOptions,
  makeBootImage,
  RunExit,
} from "./machine.js";
export * from "./memory-map.js";
export { RV32_RAM_IDSTR, Rv32Machine, type Rv32MachineOptions } from "./rv32-machine.js";
export { Rv32SyncGuest, type Rv32SyncGuestOptions } from "./rv32-sync-guest.js";
export {
  type CpuState,
  checkMachineState,
  decodeMachineState,
  encodeMachineState,
  MACHINE_STATE_WORDS,
  type MachineState,
} from "./state.js";
export { type RxSource, UART_FIFO_LENGTH, Uart16550, type UartState } from "./uart16550.js";
export { POLL_STEPS, THROTTLE_PERIOD_MS } from "./vcpu-shared.js";
export { VcpuWorker, type VcpuWorkerOptions } from "./vcpu-worker.js";
export {
  type ClintWire,
  type CpuWire,
  clintDevice,
  cpuDevice,
  createRv32Devices,
  type FinisherWire,
  finisherDevice,
  RV32_MACHINE_TYPES,
  type Rv32DeviceSet,
  type Rv32MachineType,
  type Rv32MachineTypeName,
  rv32MachineType,
  type UartWire,
  uartDevice,
} from "./vmstate.js";
