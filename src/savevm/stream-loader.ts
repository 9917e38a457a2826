/**
 * Reads a whole QEMU-format stream into a {@link Registry}, treating every byte as hostile (spec part 8): header,
 * configuration, sections with footers, commands, EOF and the vmdesc trailer (QEMU: `qemu_loadvm_state`).
 *
 * @module
 */

import { isMigrationError, MigrationError } from "../errors.js";
import { type ByteReader, NEED_MORE } from "../wire/byte-reader.js";
import { checkConfiguration, decodeConfiguration, type MachineConfig, type StreamConfig } from "./config.js";
import { COMMAND_LENGTH, COMMAND_MAX, FILE_MAGIC, FILE_VERSION, FILE_VERSION_COMPAT, SectionType } from "./format.js";
import type { LiveSectionType } from "./handlers.js";
import type { Registry, RegistryEntry } from "./registry.js";

/** Options of {@link StreamLoader}. */
export interface StreamLoaderOptions {
  /** Expect the configuration section (QEMU's `send-configuration` on this side). Default true. */
  readonly expectConfiguration: boolean;
  /** Expect section footers. Default true. */
  readonly sectionFooters: boolean;
  /** Longest vmdesc trailer accepted; longer ones fail with LIMIT_EXCEEDED. Default 16 MiB. */
  readonly maxVmdescBytes: number;
  /** Parse the vmdesc JSON and check its shape instead of skipping it. Default false. */
  readonly validateVmdesc: boolean;
  /** Most sections accepted in one stream. Default 10 million. */
  readonly maxSections: number;
  /**
   * Handles `QEMU_VM_COMMAND`s (OPEN_RETURN_PATH, PING, …). Without one, every command fails the load with
   * `BAD_COMMAND`. It may return a promise (e.g. to send a PONG).
   */
  readonly onCommand?: (cmd: number, payload: Uint8Array, offset: number) => void | Promise<void>;
  /** Reports each section as it completes (statistics, progress). */
  readonly onSection?: (info: LoadedSection) => void;
}

/** One loaded section, for statistics and progress. */
export interface LoadedSection {
  readonly type: "start" | "part" | "end" | "full";
  readonly idstr: string;
  readonly instanceId: number;
  readonly sectionId: number;
  readonly offset: number;
  readonly length: number;
}

/** What a completed load found. */
export interface LoadResult {
  /** The configuration the stream carried (undefined when it had none). */
  readonly config: StreamConfig | undefined;
  /** Sections loaded. */
  readonly sections: number;
  /** Stream bytes consumed. */
  readonly bytes: number;
  /** The vmdesc trailer's length, when present. */
  readonly vmdescLength: number | undefined;
  /** The parsed vmdesc (only with `validateVmdesc`). */
  readonly vmdesc: unknown;
  /** Non-fatal findings (QEMU logs them). */
  readonly warnings: readonly string[];
}

interface SectionHeader {
  type: number;
  sectionId: number;
  idstr: string;
  instanceId: number;
  version: number;
}

const SECTION_NAMES: Record<number, LoadedSection["type"]> = {
  [SectionType.Start]: "start",
  [SectionType.Part]: "part",
  [SectionType.End]: "end",
  [SectionType.Full]: "full",
};

/** Reads the stream header: magic and version. */
export function decodeFileHeader(r: ByteReader): void {
  const magic = r.u32();
  if (magic !== FILE_MAGIC) {
    throw new MigrationError(
      "BAD_MAGIC",
      `Cannot load stream: magic is 0x${magic.toString(16).padStart(8, "0")}, expected 0x5145564d ("QEVM")`,
      { offset: 0 },
    );
  }
  const version = r.u32();
  if (version === FILE_VERSION_COMPAT) {
    throw new MigrationError("UNSUPPORTED_VERSION", "Cannot load stream: file version 2 is obsolete", { offset: 4 });
  }
  if (version !== FILE_VERSION) {
    throw new MigrationError("UNSUPPORTED_VERSION", `Cannot load stream: file version ${version} is not 3`, {
      offset: 4,
    });
  }
}

/**
 * Loads one stream into a registry.
 *
 * @example
 * ```ts
 * const loader = new StreamLoader(reader, registry, { machineType: "ferry-rv32-1.1" });
 * const result = await loader.load();
 * ```
 */
export class StreamLoader {
  readonly #r: ByteReader;
  readonly #registry: Registry;
  readonly #config: MachineConfig;
  readonly #options: StreamLoaderOptions;
  /** Stream section id → entry, for START'ed iterative entries not yet ENDed. */
  readonly #open = new Map<number, RegistryEntry>();
  readonly #ended = new Set<RegistryEntry>();
  readonly #started = new Set<RegistryEntry>();
  readonly #full = new Set<RegistryEntry>();
  readonly #warnings: string[] = [];
  #streamConfig: StreamConfig | undefined;

  constructor(r: ByteReader, registry: Registry, config: MachineConfig, options: Partial<StreamLoaderOptions> = {}) {
    this.#r = r;
    this.#registry = registry;
    this.#config = config;
    this.#options = {
      expectConfiguration: options.expectConfiguration ?? config.sendConfiguration ?? true,
      sectionFooters: options.sectionFooters ?? true,
      maxVmdescBytes: options.maxVmdescBytes ?? 16 * 1024 * 1024,
      validateVmdesc: options.validateVmdesc ?? false,
      maxSections: options.maxSections ?? 10_000_000,
      ...(options.onCommand === undefined ? {} : { onCommand: options.onCommand }),
      ...(options.onSection === undefined ? {} : { onSection: options.onSection }),
    };
  }

  /** Reads header and configuration. */
  async loadHeader(): Promise<void> {
    const r = this.#r;
    await r.decode(decodeFileHeader);
    if (this.#options.expectConfiguration) {
      const at = r.offset;
      const decodeCfg = (r: ByteReader): StreamConfig => {
        const marker = r.u8();
        if (marker !== SectionType.Configuration) {
          throw new MigrationError(
            "CONFIG_MISMATCH",
            `Configuration section missing: found byte 0x${marker.toString(16).padStart(2, "0")}`,
            { path: ["configuration"], offset: at },
          );
        }
        return decodeConfiguration(r);
      };
      // Not r.decode(): the configuration ends where the next byte is not a configuration subsection, so the
      // decoder peeks one byte past it. At end of stream fill() would fail at the configuration's start; with
      // more() the re-run sees the ended source, stops at the last field, and a stream cut right after the
      // configuration fails at the exact offset of the missing section byte.
      let cfg = r.tryDecode(decodeCfg);
      while (cfg === NEED_MORE) {
        await r.more();
        cfg = r.tryDecode(decodeCfg);
      }
      this.#streamConfig = cfg;
      this.#warnings.push(...checkConfiguration(cfg, this.#config, at));
    }
  }

  /**
   * Loads the whole stream: header, every section, EOF and the vmdesc trailer.
   *
   * @returns What was loaded.
   */
  async load(): Promise<LoadResult> {
    await this.loadHeader();
    return this.loadSections();
  }

  /** Loads sections until EOF, then the trailer. */
  async loadSections(): Promise<LoadResult> {
    const r = this.#r;
    let sections = 0;
    for (;;) {
      const at = r.offset;
      const type = await r.decode((r) => r.u8());
      if (type === SectionType.Eof) break;
      if (++sections > this.#options.maxSections) {
        throw new MigrationError(
          "LIMIT_EXCEEDED",
          `Cannot load stream: more than ${this.#options.maxSections} sections`,
          {
            offset: at,
          },
        );
      }
      switch (type) {
        case SectionType.Start:
        case SectionType.Full:
        case SectionType.Part:
        case SectionType.End:
          await this.#loadSection(type, at);
          break;
        case SectionType.Command:
          await this.#loadCommand(at);
          break;
        default:
          throw new MigrationError(
            "BAD_SECTION_TYPE",
            `Cannot load stream: unknown section type 0x${type.toString(16).padStart(2, "0")}`,
            { offset: at },
          );
      }
    }
    for (const e of this.#open.values()) {
      this.#warnings.push(`Section "${e.idstr}" was started but never ended`);
    }
    let vmdescLength: number | undefined;
    let vmdesc: unknown;
    if (!(await r.atEnd())) {
      const at = r.offset;
      const { len, json } = await r.decode((r) => {
        const marker = r.u8();
        if (marker !== SectionType.VmDescription) {
          throw new MigrationError(
            "BAD_STREAM",
            `Cannot load stream: expected the vmdesc trailer (0x06) after EOF, found 0x${marker.toString(16)}`,
            { offset: at },
          );
        }
        const len = r.u32();
        if (len > this.#options.maxVmdescBytes) {
          throw new MigrationError(
            "LIMIT_EXCEEDED",
            `Cannot load vmdesc: ${len} bytes is over the limit of ${this.#options.maxVmdescBytes}`,
            { path: ["vmdesc"], offset: at + 1 },
          );
        }
        return { len, json: this.#options.validateVmdesc ? r.bytes(len) : undefined };
      });
      vmdescLength = len;
      if (json === undefined) {
        let left = len;
        while (left > 0) {
          const k = Math.min(left, 1 << 20);
          await r.fill(k);
          r.skip(k);
          left -= k;
        }
      } else {
        vmdesc = parseVmdesc(json, at + 5);
      }
    }
    return {
      config: this.#streamConfig,
      sections,
      bytes: r.offset,
      vmdescLength,
      vmdesc,
      warnings: this.#warnings,
    };
  }

  #decodeHeader(type: number, at: number): (r: ByteReader) => SectionHeader {
    return (r) => {
      const sectionId = r.u32();
      if (type === SectionType.Start || type === SectionType.Full) {
        const idstr = r.str();
        const instanceId = r.u32();
        const version = r.u32();
        return { type, sectionId, idstr, instanceId, version };
      }
      const e = this.#open.get(sectionId);
      if (e === undefined) {
        throw new MigrationError(
          "UNKNOWN_SECTION",
          `Cannot load ${SECTION_NAMES[type]} section ${sectionId}: no START section opened it`,
          { offset: at },
        );
      }
      return { type, sectionId, idstr: e.idstr, instanceId: e.instanceId, version: e.version };
    };
  }

  async #loadSection(type: number, at: number): Promise<void> {
    const r = this.#r;
    const h = await r.decode(this.#decodeHeader(type, at));
    const kind = SECTION_NAMES[type] as LoadedSection["type"];
    let entry: RegistryEntry | undefined;
    let version = h.version;
    if (type === SectionType.Start || type === SectionType.Full) {
      entry = this.#registry.find(h.idstr, h.instanceId);
      if (entry === undefined) {
        throw new MigrationError(
          "UNKNOWN_SECTION",
          `Cannot load section "${h.idstr}" instance ${h.instanceId}: no such device here`,
          { path: [h.idstr], offset: at },
        );
      }
      if (h.version > entry.version) {
        throw new MigrationError(
          "VERSION_TOO_NEW",
          `Cannot load section "${h.idstr}": stream version ${h.version} is newer than supported version ${entry.version}`,
          { path: [h.idstr], offset: at },
        );
      }
      if (type === SectionType.Start) {
        if (entry.kind !== "iterative") {
          throw new MigrationError("BAD_STREAM", `Cannot load START section for "${h.idstr}": it is not iterative`, {
            path: [h.idstr],
            offset: at,
          });
        }
        if (this.#started.has(entry)) {
          throw new MigrationError("BAD_STREAM", `Cannot load START section for "${h.idstr}": it was started before`, {
            path: [h.idstr],
            offset: at,
          });
        }
        for (const [id, e] of this.#open) {
          if (id === h.sectionId && e !== entry) {
            throw new MigrationError("BAD_STREAM", `Cannot load START section: section id ${id} is already in use`, {
              path: [h.idstr],
              offset: at,
            });
          }
        }
        this.#started.add(entry);
        this.#open.set(h.sectionId, entry);
      } else {
        if (this.#full.has(entry)) {
          throw new MigrationError("BAD_STREAM", `Cannot load FULL section for "${h.idstr}": it was loaded before`, {
            path: [h.idstr],
            offset: at,
          });
        }
        this.#full.add(entry);
      }
    } else {
      entry = this.#open.get(h.sectionId) as RegistryEntry;
      version = entry.version;
      if (type === SectionType.End) {
        this.#open.delete(h.sectionId);
        this.#ended.add(entry);
      }
    }
    const dataAt = r.offset;
    try {
      if (entry.kind === "iterative") {
        if (type === SectionType.Full) {
          throw new MigrationError("BAD_STREAM", `Cannot load FULL section for iterative device "${h.idstr}"`, {
            path: [h.idstr],
            offset: at,
          });
        }
        await entry.device.loadState(r, version, kind as LiveSectionType);
      } else {
        const handlers = entry.handlers;
        const decoded = await r.decode((r) => handlers.decode(r, version));
        handlers.apply(decoded, version);
      }
    } catch (e) {
      if (isMigrationError(e)) {
        const path = e.path?.[0] === entry.idstr ? [] : [entry.idstr];
        throw e.withContext(path, dataAt);
      }
      throw e;
    }
    if (this.#options.sectionFooters) {
      const footAt = r.offset;
      await r.decode((r) => {
        const marker = r.u8();
        if (marker !== SectionType.Footer) {
          throw new MigrationError(
            "BAD_FOOTER",
            `Missing section footer for "${entry.idstr}": found byte 0x${marker.toString(16).padStart(2, "0")}`,
            { path: [entry.idstr], offset: footAt },
          );
        }
        const id = r.u32();
        if (id !== h.sectionId) {
          throw new MigrationError(
            "BAD_FOOTER",
            `Mismatched section id in footer for "${entry.idstr}": read ${id}, expected ${h.sectionId}`,
            { path: [entry.idstr], offset: footAt },
          );
        }
      });
    }
    this.#options.onSection?.({
      type: kind,
      idstr: entry.idstr,
      instanceId: entry.instanceId,
      sectionId: h.sectionId,
      offset: at,
      length: r.offset - at,
    });
  }

  async #loadCommand(at: number): Promise<void> {
    const r = this.#r;
    const { cmd, payload } = await r.decode((r) => {
      const cmd = r.u16();
      const len = r.u16();
      if (cmd === 0 || cmd >= COMMAND_MAX) {
        throw new MigrationError("BAD_COMMAND", `Cannot load command ${cmd}: unknown command`, { offset: at });
      }
      const fixed = COMMAND_LENGTH[cmd];
      if (fixed !== undefined && fixed >= 0 && len !== fixed) {
        throw new MigrationError("BAD_COMMAND", `Cannot load command ${cmd}: received with bad length ${len}`, {
          offset: at,
        });
      }
      return { cmd, payload: r.bytes(len).slice() };
    });
    if (this.#options.onCommand === undefined) {
      throw new MigrationError("BAD_COMMAND", `Cannot load command ${cmd}: commands are not accepted here`, {
        offset: at,
      });
    }
    await this.#options.onCommand(cmd, payload, at);
  }
}

function parseVmdesc(json: Uint8Array, offset: number): unknown {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(json));
  } catch (e) {
    throw new MigrationError("BAD_STREAM", `Cannot parse vmdesc JSON: ${(e as Error).message}`, {
      path: ["vmdesc"],
      offset,
      cause: e,
    });
  }
  if (
    typeof v !== "object" ||
    v === null ||
    typeof (v as { page_size?: unknown }).page_size !== "number" ||
    !Array.isArray((v as { devices?: unknown }).devices)
  ) {
    throw new MigrationError("BAD_STREAM", "Cannot load vmdesc: expected an object with page_size and devices", {
      path: ["vmdesc"],
      offset,
    });
  }
  return v;
}
