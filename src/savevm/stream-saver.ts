/**
 * Writes a whole QEMU-format stream from a {@link Registry}: header, configuration, START / PART / END sections of
 * iterative entries, FULL sections of the rest, EOF and the vmdesc trailer (QEMU: `qemu_savevm_state_*`).
 *
 * @module
 */

import { isMigrationError, MigrationError } from "../errors.js";
import type { ByteWriter } from "../wire/byte-writer.js";
import type { RateLimiter } from "../wire/rate-limiter.js";
import { type MachineConfig, writeConfiguration } from "./config.js";
import { Command, FILE_MAGIC, FILE_VERSION, SectionType, TARGET_PAGE_BITS } from "./format.js";
import type { Registry, RegistryEntry } from "./registry.js";
import { stringifyQemuJson, type Vmdesc, type VmdescDevice } from "./vmdesc.js";

/** Options of {@link StreamSaver}. */
export interface StreamSaverOptions {
  /** Write the vmdesc trailer (QEMU: on unless the machine sets `suppress-vmdesc`). Default true. */
  readonly vmdesc: boolean;
  /** Write section footers (QEMU's `send-section-footer`). Default true. */
  readonly sectionFooters: boolean;
}

/** Writes a section header: type, be32 section id, and for START/FULL the counted idstr, instance and version. */
export function writeSectionHeader(w: ByteWriter, type: SectionType, e: RegistryEntry): void {
  w.u8(type).u32(e.sectionId);
  if (type === SectionType.Start || type === SectionType.Full) w.str(e.idstr).u32(e.instanceId).u32(e.version);
}

/** Writes a section footer: 0x7e and the section id. */
export function writeSectionFooter(w: ByteWriter, e: RegistryEntry): void {
  w.u8(SectionType.Footer).u32(e.sectionId);
}

/** Writes a `QEMU_VM_COMMAND`: 0x08, be16 cmd, be16 len, payload. */
export function writeCommand(w: ByteWriter, cmd: number, payload: Uint8Array = new Uint8Array(0)): void {
  w.u8(SectionType.Command).u16(cmd).u16(payload.length).bytes(payload);
}

/**
 * Drives one outgoing stream.
 *
 * @example
 * ```ts
 * const s = new StreamSaver(writer, registry, { machineType: "ferry-rv32-1.1" });
 * s.writeHeader();
 * await s.setup();
 * while (!(await s.iterate(limiter, performance.now() + 50))) {}
 * await s.complete();
 * await writer.flush();
 * ```
 */
export class StreamSaver {
  readonly #w: ByteWriter;
  readonly #registry: Registry;
  readonly #config: MachineConfig;
  readonly #options: StreamSaverOptions;
  #setupDone = false;
  #completed = false;

  constructor(w: ByteWriter, registry: Registry, config: MachineConfig, options: Partial<StreamSaverOptions> = {}) {
    this.#w = w;
    this.#registry = registry;
    this.#config = config;
    this.#options = { vmdesc: options.vmdesc ?? true, sectionFooters: options.sectionFooters ?? true };
  }

  /** The writer. */
  get writer(): ByteWriter {
    return this.#w;
  }

  /** Writes magic, version and (unless `sendConfiguration` is false) the configuration section. */
  writeHeader(): void {
    this.#w.u32(FILE_MAGIC).u32(FILE_VERSION);
    if (this.#config.sendConfiguration ?? true) writeConfiguration(this.#w, this.#config);
  }

  /** Writes `OPEN_RETURN_PATH`. */
  openReturnPath(): void {
    writeCommand(this.#w, Command.OpenReturnPath);
  }

  /** Writes `PING(value)`. */
  ping(value: number): void {
    const p = new Uint8Array(4);
    new DataView(p.buffer).setUint32(0, value);
    writeCommand(this.#w, Command.Ping, p);
  }

  #footer(e: RegistryEntry): void {
    if (this.#options.sectionFooters) writeSectionFooter(this.#w, e);
  }

  /** Writes a START section for every iterative entry (QEMU: `qemu_savevm_state_setup`). */
  async setup(): Promise<void> {
    for (const e of this.#registry.iterative) {
      writeSectionHeader(this.#w, SectionType.Start, e);
      await e.device.saveSetup(this.#w);
      this.#footer(e);
    }
    this.#setupDone = true;
  }

  /** Sum of the iterative entries' cheap pending estimates, in bytes. */
  pendingEstimate(): number {
    let n = 0;
    for (const e of this.#registry.iterative) n += e.device.pendingEstimate();
    return n;
  }

  /** Sum of the iterative entries' exact pending figures (syncs dirty tracking), in bytes. */
  pendingExact(): number {
    let n = 0;
    for (const e of this.#registry.iterative) n += e.device.pendingExact();
    return n;
  }

  /**
   * Writes one PART section per iterative entry (QEMU: `qemu_savevm_state_iterate`), stopping early when the
   * limiter's window is spent.
   *
   * @returns True when every iterative entry reported it had nothing dirty left.
   */
  async iterate(limiter: RateLimiter | undefined, deadline: number): Promise<boolean> {
    if (!this.#setupDone) throw new MigrationError("INVALID_STATE", "Cannot iterate before setup");
    let allDone = true;
    for (const e of this.#registry.iterative) {
      if (limiter?.isExceeded(this.#w.offset)) return false;
      writeSectionHeader(this.#w, SectionType.Part, e);
      const done = await e.device.saveLiveIterate(this.#w, limiter, deadline);
      this.#footer(e);
      if (!done) allDone = false;
    }
    return allDone;
  }

  /**
   * Completes the stream with the guest stopped: END sections, FULL sections of every needed non-iterative entry,
   * EOF and the vmdesc trailer (QEMU: `qemu_savevm_state_complete_precopy`).
   */
  async complete(): Promise<void> {
    if (this.#completed) throw new MigrationError("INVALID_STATE", "Cannot complete a stream twice");
    if (!this.#setupDone) await this.setup();
    for (const e of this.#registry.iterative) {
      writeSectionHeader(this.#w, SectionType.End, e);
      await e.device.saveComplete(this.#w);
      this.#footer(e);
      await this.#w.ready();
    }
    const devices: VmdescDevice[] = [];
    const wantDesc = this.#options.vmdesc;
    for (const e of this.#registry.entries) {
      if (e.kind !== "state") continue;
      const h = e.handlers;
      if (h.needed !== undefined && !h.needed()) continue;
      writeSectionHeader(this.#w, SectionType.Full, e);
      let desc: Record<string, unknown> | undefined;
      try {
        desc = h.save(this.#w, wantDesc);
      } catch (err) {
        if (isMigrationError(err)) throw err.withContext(err.path?.[0] === e.idstr ? [] : [e.idstr]);
        throw err;
      }
      this.#footer(e);
      if (wantDesc && desc !== undefined) {
        devices.push({ name: e.idstr, instance_id: e.instanceId, ...desc } as VmdescDevice);
      }
    }
    this.#w.u8(SectionType.Eof);
    if (wantDesc) {
      const pageSize = 2 ** (this.#config.pageBits ?? TARGET_PAGE_BITS);
      const vmdesc: Vmdesc = { page_size: pageSize, devices };
      const json = new TextEncoder().encode(stringifyQemuJson(vmdesc as never));
      this.#w.u8(SectionType.VmDescription).u32(json.length).bytes(json);
    }
    this.#completed = true;
  }

  /** Releases per-migration state of the iterative entries (QEMU: `qemu_savevm_state_cleanup`). */
  cleanup(): void {
    for (const e of this.#registry.iterative) e.device.saveCleanup();
  }
}
