/**
 * The four QMP commands for migration capabilities and parameters.
 *
 * The migration engine registers `migrate`, `migrate-incoming`, `query-migrate` and the rest; these four only
 * read and write {@link Capabilities} and {@link Parameters}, so they live here.
 *
 * @module
 */

import { CAPABILITY_NAMES, type Capabilities } from "../migration/capabilities.js";
import { MULTIFD_COMPRESSION_METHODS, type Parameters } from "../migration/parameters.js";
import { QmpError } from "./qmp-error.js";
import { array, bool, enumOf, NO_ARGS, object, optional, str, strOrNull, uint } from "./schema.js";
import type { QmpServer } from "./server.js";

/** QEMU's `QERR_MIGRATION_ACTIVE`. */
export const MIGRATION_ACTIVE_DESC = "There's a migration process in progress";

/** `migrate-set-capabilities` arguments (QEMU: `MigrationCapabilityStatus` list). */
export const SET_CAPABILITIES_ARGS = object({
  capabilities: array(object({ capability: enumOf(CAPABILITY_NAMES), state: bool() })),
});

/** `migrate-set-parameters` arguments (QEMU 7.2: `MigrateSetParameters`, members in schema order). */
export const SET_PARAMETERS_ARGS = object({
  "announce-initial": optional(uint("size")),
  "announce-max": optional(uint("size")),
  "announce-rounds": optional(uint("size")),
  "announce-step": optional(uint("size")),
  "compress-level": optional(uint("uint8")),
  "compress-threads": optional(uint("uint8")),
  "compress-wait-thread": optional(bool()),
  "decompress-threads": optional(uint("uint8")),
  "throttle-trigger-threshold": optional(uint("uint8")),
  "cpu-throttle-initial": optional(uint("uint8")),
  "cpu-throttle-increment": optional(uint("uint8")),
  "cpu-throttle-tailslow": optional(bool()),
  "tls-creds": optional(strOrNull()),
  "tls-hostname": optional(strOrNull()),
  "tls-authz": optional(strOrNull()),
  "max-bandwidth": optional(uint("size")),
  "downtime-limit": optional(uint("uint64")),
  "x-checkpoint-delay": optional(uint("uint32")),
  "block-incremental": optional(bool()),
  "multifd-channels": optional(uint("uint8")),
  "xbzrle-cache-size": optional(uint("size")),
  "max-postcopy-bandwidth": optional(uint("size")),
  "max-cpu-throttle": optional(uint("uint8")),
  "multifd-compression": optional(enumOf(MULTIFD_COMPRESSION_METHODS)),
  "multifd-zlib-level": optional(uint("uint8")),
  "multifd-zstd-level": optional(uint("uint8")),
  "block-bitmap-mapping": optional(
    array(
      object({
        "node-name": str(),
        alias: str(),
        bitmaps: array(
          object({
            name: str(),
            alias: str(),
            transform: optional(object({ persistent: optional(bool()) })),
          }),
        ),
      }),
    ),
  ),
});

/**
 * Registers `migrate-set-capabilities`, `query-migrate-capabilities`, `migrate-set-parameters` and
 * `query-migrate-parameters`.
 *
 * `migrate-set-capabilities` is refused while a migration runs ("There's a migration process in progress", as
 * QEMU does); `migrate-set-parameters` is allowed at any time (QEMU applies `max-bandwidth`, `downtime-limit` and
 * friends to a running migration). Both are all-or-nothing. The capability rules see the current
 * `multifd-compression` and `tls-creds`; the parameter rules see `zero-copy-send`, as in QEMU.
 *
 * @example
 * ```ts
 * const caps = new Capabilities();
 * const params = new Parameters();
 * registerMigrationConfigCommands(server, caps, params, () => engine.status() === "active");
 * ```
 *
 * @param server The QMP server.
 * @param caps The capabilities the commands read and write.
 * @param params The parameters the commands read and write.
 * @param isActive Whether a migration is running (QEMU: `migration_is_running()`: setup, active, postcopy,
 *   pre-switchover, device, cancelling, wait-unplug, ...).
 */
export function registerMigrationConfigCommands(
  server: QmpServer,
  caps: Capabilities,
  params: Parameters,
  isActive: () => boolean,
): void {
  server.register("migrate-set-capabilities", {
    args: SET_CAPABILITIES_ARGS,
    handler: ({ capabilities }) => {
      if (isActive()) throw new QmpError("GenericError", MIGRATION_ACTIVE_DESC);
      caps.set(capabilities, {
        multifdCompression: params.get("multifd-compression"),
        tlsEnabled: params.get("tls-creds") !== "",
      });
      return {};
    },
  });
  server.register("query-migrate-capabilities", { args: NO_ARGS, handler: () => caps.query() });
  server.register("migrate-set-parameters", {
    args: SET_PARAMETERS_ARGS,
    handler: (args) => {
      params.set(args, { zeroCopySend: caps.get("zero-copy-send") });
      return {};
    },
  });
  server.register("query-migrate-parameters", { args: NO_ARGS, handler: () => params.query() });
}
