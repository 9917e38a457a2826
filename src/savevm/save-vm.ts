/**
 * Snapshots: the whole state of a stopped machine to any channel and back (QEMU: `qemu_savevm_state`,
 * `qemu_loadvm_state`; `migrate "exec:cat > FILE"` / `-incoming "exec:cat FILE"`).
 *
 * @module
 */

import { type ByteSource, type Channel, isLendingSource } from "../transport/channel.js";
import { ByteReader, type ByteReaderOptions } from "../wire/byte-reader.js";
import { ByteWriter, type ByteWriterOptions } from "../wire/byte-writer.js";
import type { MachineConfig } from "./config.js";
import type { Registry } from "./registry.js";
import { type LoadResult, StreamLoader, type StreamLoaderOptions } from "./stream-loader.js";
import { StreamSaver, type StreamSaverOptions } from "./stream-saver.js";

/** What savevm needs of a machine: its registry of migratable state and its configuration. */
export interface MigratableMachine {
  /** Every migratable entry. */
  readonly registry: Registry;
  /** Machine type, page bits, capabilities, UUID. */
  readonly config: MachineConfig;
  /**
   * Memory the machine sets aside for migration I/O, after its main RAM block in the block's wasm memory
   * (`RamBlock.ioMemory`). Saving stages the outgoing stream in it; loading lets a transport that can (a socket
   * channel) read into it. Either way the RAM saver and loader move each page with one wasm `memory.copy`. It is
   * used by one stream at a time: a machine is never saved while it loads. Optional.
   */
  readonly ioMemory?: Uint8Array | undefined;
}

/** Options of {@link saveVm}. */
export interface SaveVmOptions extends StreamSaverOptions {
  /** Writer buffer options. */
  readonly writer: Partial<ByteWriterOptions>;
  /** End the channel's write side when done (default true). */
  readonly end: boolean;
}

/**
 * Writes a snapshot of a stopped machine: header, configuration, START/END of iterative entries (END carries every
 * page), FULL sections, EOF and vmdesc. Saving never changes the machine's state.
 *
 * @returns The number of bytes written.
 * @example
 * ```ts
 * const ch = await connect("file:/tmp/vm.mig");
 * await saveVm(machine, ch);
 * ```
 */
export async function saveVm(
  machine: MigratableMachine,
  channel: Pick<Channel, "write" | "end">,
  options: Partial<SaveVmOptions> = {},
): Promise<number> {
  const w = new ByteWriter(channel, { stagingMemory: machine.ioMemory, ...options.writer });
  const saver = new StreamSaver(w, machine.registry, machine.config, options);
  try {
    saver.writeHeader();
    await saver.setup();
    await saver.complete();
    await w.flush();
  } finally {
    saver.cleanup();
  }
  if (options.end ?? true) await channel.end();
  return w.offset;
}

/** Options of {@link loadVm}. */
export interface LoadVmOptions extends StreamLoaderOptions {
  /** Reader options. */
  readonly reader: Partial<ByteReaderOptions>;
}

/**
 * Loads a snapshot (or a one-way migration stream) into a machine.
 *
 * @returns What was loaded.
 */
export async function loadVm(
  machine: MigratableMachine,
  channel: Pick<Channel, "read">,
  options: Partial<LoadVmOptions> = {},
): Promise<LoadResult> {
  receiveIntoMachine(machine, channel);
  return loadStream(machine, new ByteReader(channel, options.reader), options);
}

/**
 * Lets `source` read the incoming stream into the memory `machine` set aside for it
 * ({@link MigratableMachine.ioMemory}), when both can.
 *
 * @returns Whether the source now receives into the machine's memory.
 */
export function receiveIntoMachine(machine: MigratableMachine, source: ByteSource): boolean {
  const memory = machine.ioMemory;
  if (memory === undefined || !isLendingSource(source) || source.receiveInto === undefined) return false;
  return source.receiveInto(memory);
}

/**
 * Loads a whole stream from a reader the caller owns (so it can watch `reader.offset` as progress): prepares the
 * iterative entries, runs the loader, and releases them whatever happens.
 *
 * @returns What was loaded.
 */
export async function loadStream(
  machine: MigratableMachine,
  reader: ByteReader,
  options: Partial<StreamLoaderOptions> = {},
): Promise<LoadResult> {
  for (const e of machine.registry.iterative) e.device.loadSetup();
  try {
    return await new StreamLoader(reader, machine.registry, machine.config, options).load();
  } finally {
    for (const e of machine.registry.iterative) e.device.loadCleanup();
  }
}
