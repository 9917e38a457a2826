/**
 * The registry of everything migratable in a machine (QEMU: `savevm_state.handlers`, `SaveStateEntry`).
 *
 * @module
 */

import type { ByteReader } from "../wire/byte-reader.js";
import type { ByteWriter } from "../wire/byte-writer.js";
import { asciiOrUtf8 } from "../wire/byte-writer.js";
import type { IterativeDevice } from "./handlers.js";
import type { VmdescValue } from "./vmdesc.js";

/** Identity of an entry: what the section header carries, plus save priority. */
export interface EntryIdentity {
  /** The section idstr: `<bus-path>/<name>` for devices with an address, else the plain name. ≤ 255 bytes. */
  readonly idstr: string;
  /** Explicit instance id; when absent, the next free id for this idstr (0, 1, 2…), like QEMU's register-any. */
  readonly instanceId?: number;
  /** Version written in the section header. */
  readonly version: number;
  /** Higher saves first (QEMU's `MigrationPriority`); default 0. */
  readonly priority?: number;
}

/**
 * A non-iterative entry's handlers: one FULL section each. VMState devices and legacy save/load handlers are
 * both adapted to this shape.
 */
export interface StateHandlers {
  /** The description's name for vmdesc (`vmsd_name`), or undefined for legacy handlers. */
  readonly vmsdName?: string;
  /** QEMU's top-level `needed`: when it returns false the section is not sent. */
  needed?(): boolean;
  /**
   * Writes the section payload. When `vmdesc` is true returns the vmdesc members that follow `name` and
   * `instance_id` (`vmsd_name`, `version`, `fields`, `subsections`; or `size` and `fields` for legacy data).
   */
  save(w: ByteWriter, vmdesc: boolean): Record<string, VmdescValue> | undefined;
  /** Decodes a section payload of `versionId`. Pure and synchronous: it is re-run from its start on underflow. */
  decode(r: ByteReader, versionId: number): unknown;
  /** Applies what {@link StateHandlers.decode} returned to the live state, running load hooks. */
  apply(decoded: unknown, versionId: number): void;
}

/** A registered entry. */
export type RegistryEntry =
  | {
      readonly kind: "state";
      readonly idstr: string;
      readonly instanceId: number;
      readonly version: number;
      readonly priority: number;
      /** QEMU's section_id: the registration index (iterative entries skip 0, see `registerIterative`). */
      readonly sectionId: number;
      readonly handlers: StateHandlers;
    }
  | {
      readonly kind: "iterative";
      readonly idstr: string;
      readonly instanceId: number;
      readonly version: number;
      readonly priority: number;
      readonly sectionId: number;
      readonly device: IterativeDevice;
    };

/**
 * Holds every migratable entry of one machine, in save order.
 *
 * @example
 * ```ts
 * const registry = new Registry();
 * registry.registerIterative(ram);
 * registry.registerState({ idstr: "timer", version: 2 }, timerHandlers);
 * ```
 */
export class Registry {
  #entries: RegistryEntry[] = [];
  #nextSectionId = 0;

  /** Entries in save order: priority (higher first), then registration order. */
  get entries(): readonly RegistryEntry[] {
    return this.#entries;
  }

  #resolve(id: EntryIdentity): { instanceId: number; priority: number } {
    if (id.idstr.length === 0 || asciiOrUtf8(id.idstr).length > 255) {
      throw new RangeError(`Cannot register "${id.idstr}": idstr must be 1 to 255 bytes`);
    }
    if (!Number.isInteger(id.version) || id.version < 0 || id.version > 0xffffffff) {
      throw new RangeError(`Cannot register "${id.idstr}": version ${id.version} is not a u32`);
    }
    let instanceId = id.instanceId;
    if (instanceId === undefined) {
      instanceId = 0;
      for (const e of this.#entries)
        if (e.idstr === id.idstr && e.instanceId >= instanceId) instanceId = e.instanceId + 1;
    } else {
      if (!Number.isInteger(instanceId) || instanceId < 0 || instanceId > 0xffffffff) {
        throw new RangeError(`Cannot register "${id.idstr}": instance id ${instanceId} is not a u32`);
      }
      for (const e of this.#entries) {
        if (e.idstr === id.idstr && e.instanceId === instanceId) {
          throw new RangeError(`Cannot register "${id.idstr}" instance ${instanceId}: it is already registered`);
        }
      }
    }
    return { instanceId, priority: id.priority ?? 0 };
  }

  #insert(e: RegistryEntry): void {
    // Stable: after every entry of higher or equal priority.
    let i = this.#entries.length;
    while (i > 0 && (this.#entries[i - 1] as RegistryEntry).priority < e.priority) i--;
    this.#entries.splice(i, 0, e);
  }

  /**
   * Registers a non-iterative entry (a VMState device or legacy handlers).
   *
   * @returns The entry.
   */
  registerState(id: EntryIdentity, handlers: StateHandlers): RegistryEntry {
    const { instanceId, priority } = this.#resolve(id);
    const e: RegistryEntry = {
      kind: "state",
      idstr: id.idstr,
      instanceId,
      version: id.version,
      priority,
      sectionId: this.#nextSectionId++,
      handlers,
    };
    this.#insert(e);
    return e;
  }

  /**
   * Registers an iterative device (RAM).
   *
   * @returns The entry.
   */
  registerIterative(
    device: IterativeDevice,
    options: { readonly instanceId?: number; readonly priority?: number } = {},
  ): RegistryEntry {
    const { instanceId, priority } = this.#resolve({
      idstr: device.idstr,
      version: device.version,
      ...(options.instanceId === undefined ? {} : { instanceId: options.instanceId }),
      ...(options.priority === undefined ? {} : { priority: options.priority }),
    });
    // Never section id 0 for an iterative entry: QEMU (7.2 and later) finds the handler of a PART/END section by
    // comparing its id with every handler's remembered START id, which is zero-initialised, so a PART/END with
    // id 0 goes to the first handler in QEMU's list (`timer` on x86) instead of `ram` and the load fails
    // ("error while loading state section id 0(timer)", seen with qemu-system-x86_64 7.2).
    if (this.#nextSectionId === 0) this.#nextSectionId = 1;
    const e: RegistryEntry = {
      kind: "iterative",
      idstr: device.idstr,
      instanceId,
      version: device.version,
      priority,
      sectionId: this.#nextSectionId++,
      device,
    };
    this.#insert(e);
    return e;
  }

  /** Finds an entry by idstr and instance id. */
  find(idstr: string, instanceId: number): RegistryEntry | undefined {
    for (const e of this.#entries) if (e.idstr === idstr && e.instanceId === instanceId) return e;
    return undefined;
  }

  /** The iterative entries, in save order. */
  get iterative(): readonly Extract<RegistryEntry, { kind: "iterative" }>[] {
    return this.#entries.filter((e): e is Extract<RegistryEntry, { kind: "iterative" }> => e.kind === "iterative");
  }
}
