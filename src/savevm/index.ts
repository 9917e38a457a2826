/**
 * savevm/: the machine's registry of migratable state and the whole-stream format — header, configuration,
 * START/PART/END/FULL sections with footers, commands, EOF and the vmdesc JSON trailer — byte-compatible with
 * QEMU 7.2 (QEMU: `migration/savevm.c`).
 *
 * Platform-neutral: no `node:` imports. Depends on wire/ and on the Channel type only.
 *
 * @example
 * ```ts
 * const registry = new Registry();
 * registry.registerIterative(ram);
 * registry.registerState(GLOBAL_STATE_ID, globalStateHandlers({ runState: () => "running", onLoad() {} }));
 * await saveVm({ registry, config: { machineType: "ferry-rv32-1.1" } }, channel);
 * ```
 *
 * @module
 */

export {
  checkConfiguration,
  decodeConfiguration,
  formatUuid,
  type MachineConfig,
  parseUuid,
  type StreamConfig,
  VALIDATED_CAPABILITIES,
  writeConfiguration,
} from "./config.js";
export { type DevicePlacement, deviceHandlers, legacyHandlers, registerDevice } from "./device-entry.js";
export {
  COMMAND_LENGTH,
  COMMAND_MAX,
  Command,
  FILE_MAGIC,
  FILE_VERSION,
  SectionType,
  TARGET_PAGE_BITS,
} from "./format.js";
export {
  GLOBAL_STATE_ID,
  GlobalState,
  type GlobalStateOptions,
  globalStateHandlers,
  RUN_STATES,
  RUNSTATE_BUFFER_SIZE,
} from "./global-state.js";
export type {
  IterativeDevice,
  IterativeLoadHandlers,
  IterativeSaveHandlers,
  LiveSectionType,
} from "./handlers.js";
export { type EntryIdentity, Registry, type RegistryEntry, type StateHandlers } from "./registry.js";
export {
  type LoadVmOptions,
  loadStream,
  loadVm,
  type MigratableMachine,
  receiveIntoMachine,
  type SaveVmOptions,
  saveVm,
} from "./save-vm.js";
export {
  decodeFileHeader,
  type LoadedSection,
  type LoadResult,
  StreamLoader,
  type StreamLoaderOptions,
} from "./stream-loader.js";
export {
  StreamSaver,
  type StreamSaverOptions,
  writeCommand,
  writeSectionFooter,
  writeSectionHeader,
} from "./stream-saver.js";
export { stringifyQemuJson, type Vmdesc, type VmdescDevice, type VmdescValue } from "./vmdesc.js";
