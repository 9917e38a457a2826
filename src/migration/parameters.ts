/**
 * Migration parameters: QEMU 7.2's names, defaults, units, ranges and error messages.
 *
 * Names, defaults and the key order of `query-migrate-parameters` were checked against a real
 * `qemu-system-x86_64` 7.2 (`query-migrate-parameters`, and `query-qmp-schema` for the member order of
 * `MigrationParameters`); the checks and their messages follow 7.2's `migrate_params_check()` in
 * `migration/migration.c`. Platform-neutral: no `node:` imports.
 *
 * Keys are QEMU's QMP names (`"downtime-limit"`), so the same object reads the same in QMP, in TypeScript and
 * in QEMU's documentation.
 *
 * @module
 */

import { MigrationError } from "../errors.js";

/** `multifd-compression` values in QEMU 7.2 (QEMU: `MultiFDCompression`). */
export const MULTIFD_COMPRESSION_METHODS = ["none", "zlib", "zstd"] as const;

/** A `multifd-compression` value. */
export type MultifdCompression = (typeof MULTIFD_COMPRESSION_METHODS)[number];

/** One bitmap of a `block-bitmap-mapping` node (QEMU: `BitmapMigrationBitmapAlias`). */
export interface BitmapMigrationBitmapAlias {
  /** The bitmap's name on this side. */
  readonly name: string;
  /** The name it has in the stream. */
  readonly alias: string;
  /** Changes applied on the destination (QEMU: `BitmapMigrationBitmapAliasTransform`). */
  readonly transform?: { readonly persistent?: boolean };
}

/** One node of `block-bitmap-mapping` (QEMU: `BitmapMigrationNodeAlias`). */
export interface BitmapMigrationNodeAlias {
  /** The block node's name on this side. */
  readonly "node-name": string;
  /** The name it has in the stream. */
  readonly alias: string;
  /** The bitmaps of the node to migrate. */
  readonly bitmaps: readonly BitmapMigrationBitmapAlias[];
}

/**
 * All migration parameters, as `query-migrate-parameters` returns them (QEMU: `MigrationParameters`).
 * Ferry accepts and reports every 7.2 parameter; which of them the engine honours is documented there.
 */
export interface MigrationParameters {
  /** Initial delay before the first self-announcement, ms (0..100000). */
  "announce-initial": number;
  /** Maximum delay between announcements, ms (0..100000). */
  "announce-max": number;
  /** Number of announcement rounds (0..1000). */
  "announce-rounds": number;
  /** Delay increase between rounds, ms (1..10000). */
  "announce-step": number;
  /** Legacy `compress` capability: zlib level (0..9). */
  "compress-level": number;
  /** Legacy `compress` capability: compression threads (1..255). */
  "compress-threads": number;
  /** Legacy `compress` capability: wait for a free thread instead of sending uncompressed. */
  "compress-wait-thread": boolean;
  /** Legacy `compress` capability: decompression threads (1..255). */
  "decompress-threads": number;
  /** auto-converge: throttle when dirtied bytes exceed this % of sent bytes (1..100). */
  "throttle-trigger-threshold": number;
  /** auto-converge: first throttle, % (1..99). */
  "cpu-throttle-initial": number;
  /** auto-converge: throttle step, % (1..99). */
  "cpu-throttle-increment": number;
  /** auto-converge: smaller steps near the end. */
  "cpu-throttle-tailslow": boolean;
  /** TLS credentials object id; "" = no TLS. */
  "tls-creds": string;
  /** TLS host name to verify; "" = the URI's host. */
  "tls-hostname": string;
  /** TLS authorization object id; "" = none. */
  "tls-authz": string;
  /** Precopy bandwidth limit, bytes/s (QEMU enforces it per 100 ms window). */
  "max-bandwidth": number;
  /** Downtime allowed at switchover, ms (0..2000000). */
  "downtime-limit": number;
  /** COLO checkpoint period, ms. */
  "x-checkpoint-delay": number;
  /** Legacy block migration: copy only the top image. */
  "block-incremental": boolean;
  /** multifd: number of channels (1..255). */
  "multifd-channels": number;
  /** xbzrle: cache size in bytes, a power of two no less than the page size. */
  "xbzrle-cache-size": number;
  /** Postcopy background bandwidth, bytes/s; 0 = unlimited. */
  "max-postcopy-bandwidth": number;
  /** auto-converge: highest throttle, % (cpu-throttle-initial..99). */
  "max-cpu-throttle": number;
  /** multifd: compression method. */
  "multifd-compression": MultifdCompression;
  /** multifd zlib level (0..9). */
  "multifd-zlib-level": number;
  /** multifd zstd level (0..20). */
  "multifd-zstd-level": number;
  /** Dirty-bitmap node/bitmap aliases; absent until set. */
  "block-bitmap-mapping"?: readonly BitmapMigrationNodeAlias[];
}

/** A parameter name (QEMU's QMP spelling). */
export type ParameterName = keyof MigrationParameters;

type TlsName = "tls-creds" | "tls-hostname" | "tls-authz";

/**
 * The argument of `migrate-set-parameters` (QEMU: `MigrateSetParameters`): any subset; the TLS parameters also
 * accept `null`, which clears them like `""`.
 */
export type MigrationParametersUpdate = {
  [K in Exclude<ParameterName, TlsName>]?: MigrationParameters[K];
} & { [K in TlsName]?: string | null };

/** QEMU's target page size for x86 (and Ferry's default): the floor of `xbzrle-cache-size`. */
export const DEFAULT_TARGET_PAGE_SIZE = 4096;

/** `downtime-limit` maximum (QEMU: `MAX_MIGRATE_DOWNTIME`, 2000 s in ms). */
export const MAX_DOWNTIME_LIMIT_MS = 2000 * 1000;

/**
 * QEMU 7.2's defaults (`migration/migration.c` `DEFAULT_MIGRATE_*` and the migration object's properties),
 * verified with `query-migrate-parameters` on qemu-system-x86_64 7.2. Keys are in QEMU's schema order.
 */
export const DEFAULT_PARAMETERS: Readonly<MigrationParameters> = Object.freeze({
  "announce-initial": 50,
  "announce-max": 550,
  "announce-rounds": 5,
  "announce-step": 100,
  "compress-level": 1,
  "compress-threads": 8,
  "compress-wait-thread": true,
  "decompress-threads": 2,
  "throttle-trigger-threshold": 50,
  "cpu-throttle-initial": 20,
  "cpu-throttle-increment": 10,
  "cpu-throttle-tailslow": false,
  "tls-creds": "",
  "tls-hostname": "",
  "tls-authz": "",
  "max-bandwidth": 134217728,
  "downtime-limit": 300,
  "x-checkpoint-delay": 20000,
  "block-incremental": false,
  "multifd-channels": 2,
  "xbzrle-cache-size": 67108864,
  "max-postcopy-bandwidth": 0,
  "max-cpu-throttle": 99,
  "multifd-compression": "none",
  "multifd-zlib-level": 1,
  "multifd-zstd-level": 1,
});

/**
 * Every parameter name in QEMU 7.2's schema order (`query-qmp-schema` member order of `MigrationParameters`,
 * which is also `MigrateSetParameters`' order).
 */
export const PARAMETER_NAMES: readonly ParameterName[] = [
  ...(Object.keys(DEFAULT_PARAMETERS) as ParameterName[]),
  "block-bitmap-mapping",
];

/** The C integer type QEMU uses for a parameter: fixes its width (QEMU's visitor rejects wider values). */
type IntType = "uint8" | "uint32" | "uint64" | "size";

/** How each parameter is typed in QEMU 7.2's schema. */
const KINDS: Readonly<Record<ParameterName, IntType | "bool" | "tls" | "multifd-compression" | "bitmap-mapping">> = {
  "announce-initial": "size",
  "announce-max": "size",
  "announce-rounds": "size",
  "announce-step": "size",
  "compress-level": "uint8",
  "compress-threads": "uint8",
  "compress-wait-thread": "bool",
  "decompress-threads": "uint8",
  "throttle-trigger-threshold": "uint8",
  "cpu-throttle-initial": "uint8",
  "cpu-throttle-increment": "uint8",
  "cpu-throttle-tailslow": "bool",
  "tls-creds": "tls",
  "tls-hostname": "tls",
  "tls-authz": "tls",
  "max-bandwidth": "size",
  "downtime-limit": "uint64",
  "x-checkpoint-delay": "uint32",
  "block-incremental": "bool",
  "multifd-channels": "uint8",
  "xbzrle-cache-size": "size",
  "max-postcopy-bandwidth": "size",
  "max-cpu-throttle": "uint8",
  "multifd-compression": "multifd-compression",
  "multifd-zlib-level": "uint8",
  "multifd-zstd-level": "uint8",
  "block-bitmap-mapping": "bitmap-mapping",
};

/** Largest value of each unsigned type that fits a JS number exactly (uint64/size are capped at 2^53 - 1). */
const INT_MAX: Readonly<Record<IntType, number>> = {
  uint8: 0xff,
  uint32: 0xffff_ffff,
  uint64: Number.MAX_SAFE_INTEGER,
  size: Number.MAX_SAFE_INTEGER,
};

/** QEMU's C type names, as its visitor names them in "Parameter 'x' expects uint8_t". */
const C_TYPE: Readonly<Record<IntType, string>> = {
  uint8: "uint8_t",
  uint32: "uint32_t",
  uint64: "uint64",
  size: "uint64",
};

/** What the parameter rules need to know about the capabilities (QEMU reads `zero-copy-send`). */
export interface ParameterCheckContext {
  /** Whether the `zero-copy-send` capability is enabled. */
  readonly zeroCopySend: boolean;
}

/** Options of the {@link Parameters} constructor. */
export interface ParametersOptions {
  /** The target page size in bytes, the lower bound of `xbzrle-cache-size`. Default 4096. */
  readonly targetPageSize: number;
}

const NO_ZERO_COPY: ParameterCheckContext = { zeroCopySend: false };

function fail(message: string): never {
  throw new MigrationError("BAD_COMMAND", message);
}

/**
 * The migration parameters of one side of a migration.
 *
 * @example
 * ```ts
 * const params = new Parameters();
 * params.set({ "downtime-limit": 500, "max-bandwidth": 1 << 30 });
 * params.get("downtime-limit"); // 500
 * params.set({ "downtime-limit": 3_000_000 });
 * // MigrationError: Parameter 'downtime_limit' expects an integer in the range of 0 to (2000 * 1000) ms
 * ```
 */
export class Parameters {
  #values: MigrationParameters;
  readonly #pageSize: number;

  /**
   * @param options The target page size.
   */
  constructor(options: Partial<ParametersOptions> = {}) {
    const pageSize = options.targetPageSize ?? DEFAULT_TARGET_PAGE_SIZE;
    if (!Number.isSafeInteger(pageSize) || pageSize <= 0 || (pageSize & (pageSize - 1)) !== 0) {
      throw new RangeError(`Cannot use target page size ${pageSize}: expected a power of two`);
    }
    this.#pageSize = pageSize;
    this.#values = { ...DEFAULT_PARAMETERS };
  }

  /**
   * Reads one parameter.
   *
   * @param name A parameter name.
   * @returns Its current value.
   */
  get<K extends ParameterName>(name: K): MigrationParameters[K] {
    return this.#values[name];
  }

  /**
   * The `query-migrate-parameters` result: every parameter in QEMU's schema order; `block-bitmap-mapping` only
   * once it was set, as in QEMU.
   *
   * @returns A fresh object.
   */
  query(): MigrationParameters {
    const out = {} as Record<string, unknown>;
    for (const name of PARAMETER_NAMES) {
      const value = this.#values[name];
      if (value !== undefined)
        out[name] = name === "block-bitmap-mapping" ? cloneMapping(value as BitmapMigrationNodeAlias[]) : value;
    }
    return out as unknown as MigrationParameters;
  }

  /**
   * Applies a `migrate-set-parameters` update: every value is checked first, then all are applied, or none.
   *
   * Checks, in QEMU's order: unknown names ("Parameter 'x' is unexpected"), value types and C widths (QEMU's
   * visitor messages, e.g. "Parameter 'multifd-channels' expects uint8_t"), then 7.2's `migrate_params_check()`
   * on the merged result with its messages (e.g. "Parameter 'downtime_limit' expects an integer in the range of
   * 0 to (2000 * 1000) ms"). `null` or `""` clears a TLS parameter.
   *
   * Deviations from QEMU 7.2, all deliberate: negative integers are rejected (QEMU wraps them to huge unsigned
   * values); `uint64`/`size` values above 2^53 - 1 are stored as 2^53 - 1 (exact JS numbers; effectively
   * unlimited for every byte-rate and size); `multifd-zlib-level` and `multifd-zstd-level` are checked against
   * 0..9 and 0..20 and applied (7.2 accepts any uint8 and silently ignores them, a bug fixed in 8.0).
   *
   * @param update The parameters to change.
   * @param context The capabilities the rules read (default: `zero-copy-send` off).
   * @throws {MigrationError} `BAD_COMMAND` with QEMU's message for the first problem.
   */
  set(update: Readonly<MigrationParametersUpdate>, context?: ParameterCheckContext): void {
    const next: MigrationParameters = { ...this.#values };
    const given = new Set<ParameterName>();
    const target = next as unknown as Record<string, unknown>;
    // Like QEMU's visitor: members in schema order first, then keys nobody asked for.
    for (const name of PARAMETER_NAMES) {
      if (!Object.hasOwn(update, name)) continue;
      const value = (update as Record<string, unknown>)[name];
      if (value === undefined) continue;
      target[name] = coerce(name, value);
      given.add(name);
    }
    for (const key of Object.keys(update)) {
      if (!Object.hasOwn(KINDS, key)) fail(`Parameter '${key}' is unexpected`);
    }
    checkParameterRules(next, given, this.#pageSize, context ?? NO_ZERO_COPY);
    this.#values = next;
  }
}

/**
 * Type-checks one value and returns what to store.
 *
 * @param name The parameter.
 * @param value The value given.
 * @returns The value to store.
 */
function coerce(name: ParameterName, value: unknown): unknown {
  const kind = KINDS[name];
  switch (kind) {
    case "bool":
      if (typeof value !== "boolean") fail(`Invalid parameter type for '${name}', expected: boolean`);
      return value;
    case "tls":
      if (value === null) return "";
      if (typeof value !== "string") fail(`Invalid parameter type for '${name}', expected: StrOrNull`);
      return value;
    case "multifd-compression":
      if (typeof value !== "string") fail(`Invalid parameter type for '${name}', expected: string`);
      if (!(MULTIFD_COMPRESSION_METHODS as readonly string[]).includes(value)) {
        fail(`Parameter '${name}' does not accept value '${value}'`);
      }
      return value;
    case "bitmap-mapping":
      return checkMappingShape(value);
    default: {
      if (typeof value === "bigint") {
        if (value < 0n || value > 0xffff_ffff_ffff_ffffn) fail(`Parameter '${name}' expects uint64`);
        if (value > BigInt(INT_MAX[kind])) {
          if (kind === "uint64" || kind === "size") return Number.MAX_SAFE_INTEGER;
          fail(`Parameter '${name}' expects ${C_TYPE[kind]}`);
        }
        return Number(value);
      }
      if (typeof value !== "number" || !Number.isInteger(value) || value < 0)
        fail(`Parameter '${name}' expects uint64`);
      if (value > INT_MAX[kind]) {
        if (kind === "uint64" || kind === "size") {
          if (value >= 2 ** 64) fail(`Parameter '${name}' expects uint64`);
          return Number.MAX_SAFE_INTEGER;
        }
        fail(`Parameter '${name}' expects ${C_TYPE[kind]}`);
      }
      return value;
    }
  }
}

/**
 * QEMU 7.2's `migrate_params_check()` over the merged parameters, in its order and with its messages. Like QEMU,
 * each rule applies only when its parameter is part of the update (`max-cpu-throttle` is compared with the
 * merged `cpu-throttle-initial`).
 *
 * @param p The merged parameters.
 * @param given The parameters named in the update.
 * @param pageSize The target page size.
 * @param context The capabilities the rules read.
 * @throws {MigrationError} `BAD_COMMAND` for the first rule broken.
 */
function checkParameterRules(
  p: MigrationParameters,
  given: ReadonlySet<ParameterName>,
  pageSize: number,
  context: ParameterCheckContext,
): void {
  const bad = (field: string, expects: string): never => fail(`Parameter '${field}' expects ${expects}`);
  const has = (name: ParameterName): boolean => given.has(name);
  if (has("compress-level") && p["compress-level"] > 9) bad("compress_level", "a value between 0 and 9");
  if (has("compress-threads") && p["compress-threads"] < 1) bad("compress_threads", "a value between 1 and 255");
  if (has("decompress-threads") && p["decompress-threads"] < 1) bad("decompress_threads", "a value between 1 and 255");
  if (has("throttle-trigger-threshold") && !inRange(p["throttle-trigger-threshold"], 1, 100)) {
    bad("throttle_trigger_threshold", "an integer in the range of 1 to 100");
  }
  if (has("cpu-throttle-initial") && !inRange(p["cpu-throttle-initial"], 1, 99)) {
    bad("cpu_throttle_initial", "an integer in the range of 1 to 99");
  }
  if (has("cpu-throttle-increment") && !inRange(p["cpu-throttle-increment"], 1, 99)) {
    bad("cpu_throttle_increment", "an integer in the range of 1 to 99");
  }
  // max_bandwidth > SIZE_MAX cannot happen on a 64-bit host; values are capped at 2^53 - 1 here.
  if (has("downtime-limit") && p["downtime-limit"] > MAX_DOWNTIME_LIMIT_MS) {
    bad("downtime_limit", "an integer in the range of 0 to (2000 * 1000) ms");
  }
  if (has("multifd-channels") && p["multifd-channels"] < 1) bad("multifd_channels", "a value between 1 and 255");
  if (has("multifd-zlib-level") && p["multifd-zlib-level"] > 9) bad("multifd_zlib_level", "a value between 0 and 9");
  if (has("multifd-zstd-level") && p["multifd-zstd-level"] > 20) bad("multifd_zstd_level", "a value between 0 and 20");
  if (has("xbzrle-cache-size")) {
    const size = p["xbzrle-cache-size"];
    if (size < pageSize || !isPowerOfTwo(size)) {
      bad("xbzrle_cache_size", "a power of two no less than the target page size");
    }
  }
  if (has("max-cpu-throttle") && (p["max-cpu-throttle"] < p["cpu-throttle-initial"] || p["max-cpu-throttle"] > 99)) {
    bad("max_cpu_throttle", "an integer in the range of cpu_throttle_initial to 99");
  }
  if (has("announce-initial") && p["announce-initial"] > 100000)
    bad("announce_initial", "a value between 0 and 100000");
  if (has("announce-max") && p["announce-max"] > 100000) bad("announce_max", "a value between 0 and 100000");
  if (has("announce-rounds") && p["announce-rounds"] > 1000) bad("announce_rounds", "a value between 0 and 1000");
  if (has("announce-step") && !inRange(p["announce-step"], 1, 10000))
    bad("announce_step", "a value between 0 and 10000");
  const mapping = p["block-bitmap-mapping"];
  if (has("block-bitmap-mapping") && mapping !== undefined) checkMappingRules(mapping);
  if (
    context.zeroCopySend &&
    ((has("multifd-compression") && p["multifd-compression"] !== "none") || (has("tls-creds") && p["tls-creds"] !== ""))
  ) {
    fail("Zero copy only available for non-compressed non-TLS multifd migration");
  }
}

function inRange(value: number, min: number, max: number): boolean {
  return value >= min && value <= max;
}

function isPowerOfTwo(value: number): boolean {
  // Values may exceed 2^31, so no bit tricks: a power of two has an integral log2.
  return value > 0 && Number.isInteger(Math.log2(value)) && 2 ** Math.log2(value) === value;
}

/** QEMU's `id_wellformed()`: a letter, then letters, digits, `-`, `.`, `_`. */
const WELL_FORMED_ID = /^[A-Za-z][A-Za-z0-9._-]*$/;

const utf8 = new TextEncoder();

function byteLength(s: string): number {
  return utf8.encode(s).byteLength;
}

/**
 * Checks that a value has `block-bitmap-mapping`'s shape and returns a frozen deep copy.
 *
 * @param value The value given.
 * @returns A copy safe to store.
 */
function checkMappingShape(value: unknown): readonly BitmapMigrationNodeAlias[] {
  const name = "block-bitmap-mapping";
  const typeError = (path: string, expected: string): never =>
    fail(`Invalid parameter type for '${path}', expected: ${expected}`);
  const str = (o: Record<string, unknown>, key: string, path: string): string => {
    if (!Object.hasOwn(o, key)) fail(`Parameter '${path}.${key}' is missing`);
    const v = o[key];
    if (typeof v !== "string") typeError(`${path}.${key}`, "string");
    return v as string;
  };
  const onlyKeys = (o: Record<string, unknown>, keys: readonly string[], path: string): void => {
    for (const k of Object.keys(o)) if (!keys.includes(k)) fail(`Parameter '${path}.${k}' is unexpected`);
  };
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v);
  if (!Array.isArray(value)) typeError(name, "array");
  const nodes: BitmapMigrationNodeAlias[] = [];
  (value as unknown[]).forEach((node, i) => {
    const np = `${name}[${i}]`;
    if (!isObject(node)) typeError(np, "object");
    const n = node as Record<string, unknown>;
    const nodeName = str(n, "node-name", np);
    const alias = str(n, "alias", np);
    if (!Object.hasOwn(n, "bitmaps")) fail(`Parameter '${np}.bitmaps' is missing`);
    if (!Array.isArray(n.bitmaps)) typeError(`${np}.bitmaps`, "array");
    const bitmaps: BitmapMigrationBitmapAlias[] = [];
    (n.bitmaps as unknown[]).forEach((bitmap, j) => {
      const bp = `${np}.bitmaps[${j}]`;
      if (!isObject(bitmap)) typeError(bp, "object");
      const b = bitmap as Record<string, unknown>;
      const entry: { name: string; alias: string; transform?: { persistent?: boolean } } = {
        name: str(b, "name", bp),
        alias: str(b, "alias", bp),
      };
      if (Object.hasOwn(b, "transform")) {
        const t = b.transform;
        if (!isObject(t)) typeError(`${bp}.transform`, "object");
        const tr = t as Record<string, unknown>;
        const transform: { persistent?: boolean } = {};
        if (Object.hasOwn(tr, "persistent")) {
          if (typeof tr.persistent !== "boolean") typeError(`${bp}.transform.persistent`, "boolean");
          transform.persistent = tr.persistent as boolean;
        }
        onlyKeys(tr, ["persistent"], `${bp}.transform`);
        entry.transform = Object.freeze(transform);
      }
      onlyKeys(b, ["name", "alias", "transform"], bp);
      bitmaps.push(Object.freeze(entry));
    });
    onlyKeys(n, ["node-name", "alias", "bitmaps"], np);
    nodes.push(Object.freeze({ "node-name": nodeName, alias, bitmaps: Object.freeze(bitmaps) }));
  });
  return Object.freeze(nodes);
}

/**
 * QEMU's `check_dirty_bitmap_mig_alias_map()`: both directions of the mapping must be unambiguous.
 *
 * @param mapping A mapping of the right shape.
 * @throws {MigrationError} `BAD_COMMAND` "Invalid mapping given for block-bitmap-mapping: ..." otherwise.
 */
function checkMappingRules(mapping: readonly BitmapMigrationNodeAlias[]): void {
  const prefix = "Invalid mapping given for block-bitmap-mapping: ";
  for (const nameToAlias of [true, false]) {
    const nodes = new Set<string>();
    for (const node of mapping) {
      if (!WELL_FORMED_ID.test(node.alias)) fail(`${prefix}The node alias '${node.alias}' is not well-formed`);
      if (byteLength(node.alias) > 255) fail(`${prefix}The node alias '${node.alias}' is longer than 255 bytes`);
      if (byteLength(node["node-name"]) > 31) {
        fail(`${prefix}The node name '${node["node-name"]}' is longer than 31 bytes`);
      }
      const from = nameToAlias ? node["node-name"] : node.alias;
      if (nodes.has(from)) {
        fail(
          nameToAlias
            ? `${prefix}The node name '${from}' is mapped twice`
            : `${prefix}The node alias '${from}' is used twice`,
        );
      }
      nodes.add(from);
      const bitmaps = new Set<string>();
      for (const bitmap of node.bitmaps) {
        if (byteLength(bitmap.alias) > 255)
          fail(`${prefix}The bitmap alias '${bitmap.alias}' is longer than 255 bytes`);
        if (byteLength(bitmap.name) > 1023) fail(`${prefix}The bitmap name '${bitmap.name}' is longer than 1023 bytes`);
        const bfrom = nameToAlias ? bitmap.name : bitmap.alias;
        if (bitmaps.has(bfrom)) {
          fail(
            nameToAlias
              ? `${prefix}The bitmap '${node["node-name"]}'/'${bfrom}' is mapped twice`
              : `${prefix}The bitmap alias '${node.alias}'/'${bfrom}' is used twice`,
          );
        }
        bitmaps.add(bfrom);
      }
    }
  }
}

function cloneMapping(mapping: readonly BitmapMigrationNodeAlias[]): BitmapMigrationNodeAlias[] {
  return mapping.map((node) => ({
    "node-name": node["node-name"],
    alias: node.alias,
    bitmaps: node.bitmaps.map((b) => {
      const copy: { name: string; alias: string; transform?: { persistent?: boolean } } = {
        name: b.name,
        alias: b.alias,
      };
      if (b.transform !== undefined) copy.transform = { ...b.transform };
      return copy;
    }),
  }));
}
