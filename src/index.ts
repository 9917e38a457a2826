/**
 * Ferry: live migration, snapshots and QEMU-compatible migration streams for machines written in TypeScript.
 *
 * Each layer is also published on its own subpath (`ferry/wire`, `ferry/vmstate`, `ferry/savevm`, `ferry/ram`,
 * `ferry/migration`, `ferry/transport`, `ferry/qmp`); the platform-neutral ones (wire, vmstate, savevm, ram,
 * migration) run in browsers and workers too.
 *
 * @example
 * ```ts
 * import { vm, savevm, ram, transport } from "ferry";
 * ```
 *
 * @module
 */

export * from "./errors.js";
export * as migration from "./migration/index.js";
export * as qmp from "./qmp/index.js";
export * as ram from "./ram/index.js";
export * as savevm from "./savevm/index.js";
export * as transport from "./transport/index.js";
export * as vm from "./vmstate/index.js";
export * as wire from "./wire/index.js";
