/**
 * qmp/: the QMP control interface, QEMU's Machine Protocol, so one management script drives QEMU and Ferry.
 *
 * {@link QmpServer} speaks QMP on unix sockets (mode 0600) and loopback tcp, with QEMU 7.2's greeting,
 * negotiation, error classes and messages; commands are registered with a declarative argument schema
 * (`schema.ts`) checked before the handler runs. {@link registerMigrationConfigCommands} and
 * {@link registerFdCommands} add the capability/parameter and fd commands; the migration engine registers
 * `migrate` and the rest. {@link QmpClient} is a typed client that works against Ferry and real QEMU.
 *
 * This layer sits above `migration/` and `transport/`; nothing below may import it. It uses `node:net`.
 *
 * @example
 * ```ts
 * import { Capabilities } from "ferry/migration/capabilities";
 * import { Parameters } from "ferry/migration/parameters";
 * import { QmpClient, QmpServer, registerMigrationConfigCommands } from "ferry/qmp";
 *
 * const server = new QmpServer({ machine });
 * registerMigrationConfigCommands(server, new Capabilities(), new Parameters(), () => false);
 * await server.listen("unix:/tmp/ferry-qmp.sock");
 *
 * const qmp = await QmpClient.connect("unix:/tmp/ferry-qmp.sock");
 * await qmp.execute("migrate-set-parameters", { "downtime-limit": 500 });
 * await qmp.close();
 * await server.close();
 * ```
 *
 * @module
 */

export { formatQmpAddress, isLoopbackHost, parseQmpAddress, type QmpAddress } from "./address.js";
export { type QmpArgs, QmpClient, type QmpClientOptions, type QmpEventOf } from "./client.js";
export {
  type FdCommandsOptions,
  type FdRegistry,
  NO_FD_DESC,
  processFdRegistry,
  registerFdCommands,
} from "./fd-commands.js";
export {
  DEFAULT_MAX_DEPTH,
  type JsonObject,
  JsonSyntaxError,
  type JsonValue,
  NESTING_ERROR,
  type ParseJsonOptions,
  parseJson,
  stringifyJson,
} from "./json.js";
export {
  DEFAULT_MAX_MESSAGE_BYTES,
  MessageSplitter,
  type MessageSplitterOptions,
  type SplitItem,
} from "./message-splitter.js";
export {
  MIGRATION_ACTIVE_DESC,
  registerMigrationConfigCommands,
  SET_CAPABILITIES_ARGS,
  SET_PARAMETERS_ARGS,
} from "./migration-config-commands.js";
export {
  isQmpError,
  MIGRATION_ERROR_CLASSES,
  QMP_ERROR_CLASSES,
  QmpError,
  type QmpErrorClass,
  toQmpErrorBody,
} from "./qmp-error.js";
export type {
  AddfdInfo,
  CommandInfo,
  CompressionStats,
  Empty,
  FdsetInfo,
  MigrationStats,
  QmpCommandMap,
  QmpCommandName,
  QmpEvent,
  QmpEventMap,
  QmpGreeting,
  QmpMigrationInfo,
  QmpMigrationStatus,
  QmpTimestamp,
  RunState,
  SocketAddress,
  StatusInfo,
  VersionInfo,
  VersionTriple,
  XbzrleCacheStats,
} from "./qmp-types.js";
export * as schema from "./schema.js";
export {
  type CommandContext,
  type CommandDefinition,
  DEFAULT_MAX_OUTPUT_BYTES,
  type MachineControl,
  QmpServer,
  type QmpServerOptions,
  type QmpSession,
} from "./server.js";
export { FERRY_PACKAGE, FERRY_VERSION, QEMU_INTERFACE_VERSION } from "./version.js";
