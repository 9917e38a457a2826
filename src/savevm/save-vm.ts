/**
 * Snapshots: the whole state of a stopped machine to any channel and back (QEMU: `qemu_savevm_state`,
 * `qemu_loadvm_state`; `migrate "exec:cat > FILE"` / `-incoming "exec:cat FILE"`).
 *
 * @module
 */

import type { Channel } from "../transport/channel.js";
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
  const w = new ByteWriter(channel, options.writer);
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
  return loadStream(machine, new ByteReader(channel, options.reader), options);
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
