/**
 * Migration capabilities: QEMU 7.2's list, its consistency rules, and which ones Ferry implements.
 *
 * The list, its order and the rule messages follow QEMU 7.2 (`qapi/migration.json` `MigrationCapability`,
 * `migration/migration.c` `migrate_caps_check()`), checked against a real `qemu-system-x86_64` 7.2
 * (`query-migrate-capabilities`, `migrate-set-capabilities`). Platform-neutral: no `node:` imports.
 *
 * @module
 */

import { MigrationError } from "../errors.js";

/**
 * Every capability QEMU 7.2 knows, in QEMU's order (the order `query-migrate-capabilities` lists them).
 * All default to off.
 */
export const CAPABILITY_NAMES = [
  "xbzrle",
  "rdma-pin-all",
  "auto-converge",
  "zero-blocks",
  "compress",
  "events",
  "postcopy-ram",
  "x-colo",
  "release-ram",
  "block",
  "return-path",
  "pause-before-switchover",
  "multifd",
  "dirty-bitmaps",
  "postcopy-blocktime",
  "late-block-activate",
  "x-ignore-shared",
  "validate-uuid",
  "background-snapshot",
  "zero-copy-send",
  "postcopy-preempt",
] as const;

/** A QEMU 7.2 migration capability name (QEMU: `MigrationCapability`). */
export type CapabilityName = (typeof CAPABILITY_NAMES)[number];

/**
 * The capabilities Ferry implements today. Enabling any other one fails with
 * "Capability 'x' is not supported by Ferry"; `query` still lists all of them, as QEMU does.
 *
 * `postcopy-ram`, `multifd` and `xbzrle` are planned: the migration engine passes a wider `supported` set to
 * {@link Capabilities} once it implements them.
 */
export const FERRY_SUPPORTED_CAPABILITIES: ReadonlySet<CapabilityName> = new Set<CapabilityName>([
  "events",
  "return-path",
  "auto-converge",
  "pause-before-switchover",
  "validate-uuid",
  "x-ignore-shared",
]);

/**
 * Capabilities that cannot be combined with `background-snapshot`, in QEMU 7.2's order
 * (QEMU: `check_caps_background_snapshot`). The first one found is named in the error.
 */
const BACKGROUND_SNAPSHOT_INCOMPATIBLE: readonly CapabilityName[] = [
  "postcopy-ram",
  "dirty-bitmaps",
  "postcopy-blocktime",
  "late-block-activate",
  "return-path",
  "multifd",
  "pause-before-switchover",
  "auto-converge",
  "release-ram",
  "rdma-pin-all",
  "compress",
  "xbzrle",
  "x-colo",
  "validate-uuid",
  "zero-copy-send",
];

/** One entry of `migrate-set-capabilities` / `query-migrate-capabilities` (QEMU: `MigrationCapabilityStatus`). */
export interface CapabilityStatus {
  /** The capability's QEMU name. */
  readonly capability: CapabilityName;
  /** Whether it is enabled. */
  readonly state: boolean;
}

/**
 * What the capability rules need to know about the migration parameters (QEMU reads them from the current
 * parameters in `migrate_caps_check()`).
 */
export interface CapabilityCheckContext {
  /** The current `multifd-compression` parameter (`"none"`, `"zlib"`, `"zstd"`). */
  readonly multifdCompression: string;
  /** Whether TLS is configured: the `tls-creds` parameter is not empty. */
  readonly tlsEnabled: boolean;
}

/** Options of the {@link Capabilities} constructor. */
export interface CapabilitiesOptions {
  /** The capabilities that may be enabled. Default: {@link FERRY_SUPPORTED_CAPABILITIES}. */
  readonly supported: Iterable<CapabilityName>;
}

/** The context used when none is given: no multifd compression, no TLS. */
const DEFAULT_CONTEXT: CapabilityCheckContext = { multifdCompression: "none", tlsEnabled: false };

const NAME_SET: ReadonlySet<string> = new Set<string>(CAPABILITY_NAMES);

/**
 * Tells whether a string is a QEMU 7.2 capability name.
 *
 * @param name Any string.
 * @returns Whether it names a capability.
 */
export function isCapabilityName(name: string): name is CapabilityName {
  return NAME_SET.has(name);
}

/**
 * The migration capabilities of one side of a migration.
 *
 * @example
 * ```ts
 * const caps = new Capabilities();
 * caps.set([{ capability: "events", state: true }]);
 * caps.get("events"); // true
 * caps.query();       // [{ capability: "xbzrle", state: false }, ...] (21 entries)
 * ```
 */
export class Capabilities {
  readonly #enabled = new Set<CapabilityName>();
  readonly #supported: ReadonlySet<CapabilityName>;

  /**
   * @param options Which capabilities may be enabled.
   */
  constructor(options: Partial<CapabilitiesOptions> = {}) {
    const supported = new Set<CapabilityName>();
    for (const name of options.supported ?? FERRY_SUPPORTED_CAPABILITIES) {
      if (!isCapabilityName(name)) throw new TypeError(`Cannot support capability "${String(name)}": unknown name`);
      supported.add(name);
    }
    this.#supported = supported;
  }

  /**
   * Whether Ferry (as configured) can enable a capability.
   *
   * @param name A capability name.
   * @returns Whether `set` accepts `state: true` for it.
   */
  isSupported(name: CapabilityName): boolean {
    return this.#supported.has(name);
  }

  /**
   * Reads one capability.
   *
   * @param name A capability name.
   * @returns Whether it is enabled.
   */
  get(name: CapabilityName): boolean {
    return this.#enabled.has(name);
  }

  /**
   * The `query-migrate-capabilities` result: every capability in QEMU's order with its state.
   *
   * @returns A fresh array of `{capability, state}`.
   */
  query(): CapabilityStatus[] {
    return CAPABILITY_NAMES.map((capability) => ({ capability, state: this.#enabled.has(capability) }));
  }

  /**
   * The enabled capabilities, in QEMU's order.
   *
   * @returns The names of the enabled capabilities.
   */
  enabled(): CapabilityName[] {
    return CAPABILITY_NAMES.filter((name) => this.#enabled.has(name));
  }

  /**
   * Applies a `migrate-set-capabilities` list: all of it, or nothing.
   *
   * Entries apply in order (a later entry for the same capability wins, as in QEMU). The resulting set is checked
   * before anything changes: unknown names, enabling a capability Ferry does not implement, then QEMU 7.2's
   * consistency rules (`migrate_caps_check()`), whose messages are QEMU's:
   * - `postcopy-ram` excludes `x-ignore-shared`: "Postcopy is not compatible with ignore-shared";
   * - `background-snapshot` excludes 15 capabilities: "Background-snapshot is not compatible with X";
   * - `zero-copy-send` needs `multifd` and excludes `compress`, `xbzrle`, multifd compression and TLS:
   *   "Zero copy only available for non-compressed non-TLS multifd migration";
   * - `postcopy-preempt` needs `postcopy-ram` ("Postcopy preempt requires postcopy-ram") and excludes
   *   `compress` ("Postcopy preempt not compatible with compress");
   * - `multifd` excludes `compress`: "Multifd is not compatible with compress".
   * QEMU's host-dependent checks (userfaultfd support, compiled-out features, the incoming-protocol check for
   * multifd) have no counterpart here.
   *
   * Refusing while a migration runs is the caller's job (QMP: `registerMigrationConfigCommands`).
   *
   * @param list The `capabilities` argument of `migrate-set-capabilities`.
   * @param context The current parameters the rules read (default: no multifd compression, no TLS).
   * @throws {MigrationError} `BAD_COMMAND` for an unknown or unsupported capability or a rule violation.
   * @throws {TypeError} When a `state` is not a boolean (a caller bug: QMP checks types first).
   */
  set(
    list: readonly { readonly capability: string; readonly state: boolean }[],
    context?: CapabilityCheckContext,
  ): void {
    const next = new Set(this.#enabled);
    for (const entry of list) {
      if (!isCapabilityName(entry.capability)) {
        throw new MigrationError("BAD_COMMAND", `Parameter 'capability' does not accept value '${entry.capability}'`);
      }
      if (typeof entry.state !== "boolean") {
        // QMP checks types before this runs, so this is a caller bug.
        throw new TypeError(`Cannot set capability '${entry.capability}': state must be a boolean`);
      }
      if (entry.state) next.add(entry.capability);
      else next.delete(entry.capability);
    }
    // Only this list can have added an unsupported capability: the current set holds supported ones only.
    for (const name of next) {
      if (!this.#supported.has(name)) {
        throw new MigrationError("BAD_COMMAND", `Capability '${name}' is not supported by Ferry`);
      }
    }
    checkCapabilityRules(next, context ?? DEFAULT_CONTEXT);
    this.#enabled.clear();
    for (const name of next) this.#enabled.add(name);
  }
}

/**
 * QEMU 7.2's `migrate_caps_check()` rules over a complete set of enabled capabilities.
 *
 * @param on The capabilities that would be enabled.
 * @param context The parameters the rules read.
 * @throws {MigrationError} `BAD_COMMAND` with QEMU's message for the first rule broken.
 */
export function checkCapabilityRules(on: ReadonlySet<CapabilityName>, context: CapabilityCheckContext): void {
  const fail = (message: string): never => {
    throw new MigrationError("BAD_COMMAND", message);
  };
  if (on.has("postcopy-ram") && on.has("x-ignore-shared")) fail("Postcopy is not compatible with ignore-shared");
  if (on.has("background-snapshot")) {
    for (const other of BACKGROUND_SNAPSHOT_INCOMPATIBLE) {
      if (on.has(other)) fail(`Background-snapshot is not compatible with ${other}`);
    }
  }
  if (
    on.has("zero-copy-send") &&
    (!on.has("multifd") ||
      on.has("compress") ||
      on.has("xbzrle") ||
      context.multifdCompression !== "none" ||
      context.tlsEnabled)
  ) {
    fail("Zero copy only available for non-compressed non-TLS multifd migration");
  }
  if (on.has("postcopy-preempt")) {
    if (!on.has("postcopy-ram")) fail("Postcopy preempt requires postcopy-ram");
    if (on.has("compress")) fail("Postcopy preempt not compatible with compress");
  }
  if (on.has("multifd") && on.has("compress")) fail("Multifd is not compatible with compress");
}
