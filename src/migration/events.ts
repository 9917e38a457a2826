/**
 * Migration statuses, events and the `query-migrate` result, with QEMU's names.
 *
 * @module
 */

/** QEMU's `MigrationStatus` values (7.2). */
export const MIGRATION_STATUSES = [
  "none",
  "setup",
  "cancelling",
  "cancelled",
  "active",
  "postcopy-active",
  "postcopy-paused",
  "postcopy-recover",
  "completed",
  "failed",
  "colo",
  "pre-switchover",
  "device",
  "wait-unplug",
] as const;
/** A migration status. */
export type MigrationStatus = (typeof MIGRATION_STATUSES)[number];

/** `query-migrate`'s `ram` object (QEMU's `MigrationStats`). */
export interface MigrationRamInfo {
  transferred: number;
  remaining: number;
  total: number;
  duplicate: number;
  skipped: number;
  normal: number;
  "normal-bytes": number;
  "dirty-pages-rate": number;
  mbps: number;
  "dirty-sync-count": number;
  "postcopy-requests": number;
  "page-size": number;
  "multifd-bytes": number;
  "pages-per-second": number;
  "precopy-bytes": number;
  "downtime-bytes": number;
  "postcopy-bytes": number;
  "dirty-sync-missed-zero-copy": number;
}

/** `query-migrate`'s result (QEMU's `MigrationInfo`); every key optional, as in QEMU. */
export interface MigrationInfo {
  status?: MigrationStatus;
  ram?: MigrationRamInfo;
  "total-time"?: number;
  "expected-downtime"?: number;
  downtime?: number;
  "setup-time"?: number;
  "cpu-throttle-percentage"?: number;
  "error-desc"?: string;
  "socket-address"?: { type: string; host?: string; port?: string; path?: string }[];
}

/** An event as QMP sends it (without the timestamp, which the QMP server adds). */
export interface MigrationEvent {
  readonly event: "MIGRATION" | "MIGRATION_PASS" | "STOP" | "RESUME";
  readonly data: Record<string, unknown>;
}

/** A listener for engine events. */
export type MigrationEventListener = (e: MigrationEvent) => void;
