/**
 * migration/: the migration engine — source and destination state machines, the precopy loop with convergence
 * by bandwidth × downtime-limit, auto-converge, pause-before-switchover, the return path, statistics and events,
 * and QEMU 7.2's capabilities and parameters.
 *
 * Platform-neutral: no `node:` imports. Channels come from the caller (`transport/` in Node); the QMP glue that
 * opens them from URIs is `qmp/migration-commands.ts`.
 *
 * @example
 * ```ts
 * const src = new MigrationSource(guest, { settings: () => settings, onEvent: console.log });
 * src.start(() => connect("tcp:127.0.0.1:4444"));
 * await src.done;
 * ```
 *
 * @module
 */

export * from "./capabilities.js";
export { MigrationDestination, type MigrationDestinationOptions } from "./destination.js";
export * from "./events.js";
export * from "./guest.js";
export * from "./parameters.js";
export * from "./return-path.js";
export { DEFAULT_SETTINGS, type MigrationSettings } from "./settings.js";
export { MigrationSource, type MigrationSourceOptions } from "./source.js";
