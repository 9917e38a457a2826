/**
 * QMP wire types with QEMU 7.2's key names: command arguments and results, events, the greeting. Types only.
 *
 * They describe what QEMU 7.2 (checked with `query-qmp-schema` on qemu-system-x86_64 7.2) and Ferry both send,
 * so one typed client drives either.
 *
 * @module
 */

import type { CapabilityStatus } from "../migration/capabilities.js";
import type { MigrationRamInfo, MigrationStatus } from "../migration/events.js";
import type { MigrationParameters, MigrationParametersUpdate } from "../migration/parameters.js";

/** QEMU's `RunState` values (7.2). */
export type RunState =
  | "debug"
  | "inmigrate"
  | "internal-error"
  | "io-error"
  | "paused"
  | "postmigrate"
  | "prelaunch"
  | "finish-migrate"
  | "restore-vm"
  | "running"
  | "save-vm"
  | "shutdown"
  | "suspended"
  | "watchdog"
  | "guest-panicked"
  | "colo";

/** QEMU's `MigrationStatus` values (7.2): the engine's own list. */
export type QmpMigrationStatus = MigrationStatus;

/** `{major, minor, micro}` (QEMU: `VersionTriple`). */
export interface VersionTriple {
  major: number;
  minor: number;
  micro: number;
}

/** `query-version`'s result and the greeting's `version` (QEMU: `VersionInfo`). */
export interface VersionInfo {
  qemu: VersionTriple;
  package: string;
}

/** The greeting a QMP server sends on connect. */
export interface QmpGreeting {
  QMP: { version: VersionInfo; capabilities: string[] };
}

/** `query-status`'s result (QEMU: `StatusInfo`). */
export interface StatusInfo {
  running: boolean;
  singlestep: boolean;
  status: RunState;
}

/** One entry of `query-commands` (QEMU: `CommandInfo`). */
export interface CommandInfo {
  name: string;
}

/** `ram` and `disk` of `query-migrate` (QEMU: `MigrationStats`, 7.2 members): the engine's own type. */
export type MigrationStats = MigrationRamInfo;

/** `xbzrle-cache` of `query-migrate` (QEMU: `XBZRLECacheStats`). */
export interface XbzrleCacheStats {
  "cache-size": number;
  bytes: number;
  pages: number;
  "cache-miss": number;
  "cache-miss-rate": number;
  "encoding-rate": number;
  overflow: number;
}

/** `compression` of `query-migrate` (QEMU 7.2: `CompressionStats`). */
export interface CompressionStats {
  pages: number;
  busy: number;
  "busy-rate": number;
  "compressed-size": number;
  "compression-rate": number;
}

/** An address in `socket-address` of `query-migrate` (QEMU: `SocketAddress`, flat union on `type`). */
export type SocketAddress =
  | { type: "inet"; host: string; port: string; numeric?: boolean; to?: number; ipv4?: boolean; ipv6?: boolean }
  | { type: "unix"; path: string }
  | { type: "vsock"; cid: string; port: string }
  | { type: "fd"; str: string };

/** `query-migrate`'s result (QEMU 7.2: `MigrationInfo`); every member is optional, `{}` before any migration. */
export interface QmpMigrationInfo {
  status?: QmpMigrationStatus;
  ram?: MigrationStats;
  disk?: MigrationStats;
  vfio?: { transferred: number };
  "xbzrle-cache"?: XbzrleCacheStats;
  "total-time"?: number;
  "expected-downtime"?: number;
  downtime?: number;
  "setup-time"?: number;
  "cpu-throttle-percentage"?: number;
  "error-desc"?: string;
  "blocked-reasons"?: string[];
  "postcopy-blocktime"?: number;
  "postcopy-vcpu-blocktime"?: number[];
  compression?: CompressionStats;
  "socket-address"?: SocketAddress[];
}

/** `add-fd`'s result (QEMU: `AddfdInfo`). */
export interface AddfdInfo {
  "fdset-id": number;
  fd: number;
}

/** One fd set of `query-fdsets` (QEMU: `FdsetInfo`). */
export interface FdsetInfo {
  "fdset-id": number;
  fds: { fd: number; opaque?: string }[];
}

/** The empty object most commands return. */
export type Empty = Record<string, never>;

/**
 * The commands a typed {@link QmpClient} knows: arguments (`undefined` = none) and result, with QEMU 7.2's names.
 * Ferry extensions are marked.
 */
export interface QmpCommandMap {
  qmp_capabilities: { args: { enable?: "oob"[] }; ret: Empty };
  "query-version": { args: undefined; ret: VersionInfo };
  "query-commands": { args: undefined; ret: CommandInfo[] };
  "query-status": { args: undefined; ret: StatusInfo };
  stop: { args: undefined; ret: Empty };
  cont: { args: undefined; ret: Empty };
  quit: { args: undefined; ret: Empty };
  migrate: { args: { uri: string; blk?: boolean; inc?: boolean; detach?: boolean; resume?: boolean }; ret: Empty };
  "migrate-incoming": { args: { uri: string }; ret: Empty };
  migrate_cancel: { args: undefined; ret: Empty };
  "migrate-continue": { args: { state: QmpMigrationStatus }; ret: Empty };
  "migrate-start-postcopy": { args: undefined; ret: Empty };
  "query-migrate": { args: undefined; ret: QmpMigrationInfo };
  "migrate-set-capabilities": { args: { capabilities: CapabilityStatus[] }; ret: Empty };
  "query-migrate-capabilities": { args: undefined; ret: CapabilityStatus[] };
  "migrate-set-parameters": { args: MigrationParametersUpdate; ret: Empty };
  "query-migrate-parameters": { args: undefined; ret: MigrationParameters };
  /** `fd` is a Ferry extension: the number of a descriptor Ferry inherited (QEMU takes it via SCM_RIGHTS). */
  getfd: { args: { fdname: string; fd?: number }; ret: Empty };
  closefd: { args: { fdname: string }; ret: Empty };
  /** `fd` is a Ferry extension, as for `getfd`. */
  "add-fd": { args: { "fdset-id"?: number; opaque?: string; fd?: number }; ret: AddfdInfo };
  "remove-fd": { args: { "fdset-id": number; fd?: number }; ret: Empty };
  "query-fdsets": { args: undefined; ret: FdsetInfo[] };
}

/** A command name the typed client knows. */
export type QmpCommandName = keyof QmpCommandMap;

/** The events a typed client knows, with their `data` (`undefined` = QEMU sends no `data`). */
export interface QmpEventMap {
  STOP: undefined;
  RESUME: undefined;
  SHUTDOWN: { guest: boolean; reason: string };
  MIGRATION: { status: QmpMigrationStatus };
  MIGRATION_PASS: { pass: number };
}

/** `{seconds, microseconds}` since the Unix epoch. */
export interface QmpTimestamp {
  seconds: number;
  microseconds: number;
}

/** An event as received. */
export interface QmpEvent<D = unknown> {
  event: string;
  data?: D;
  timestamp: QmpTimestamp;
}
