/**
 * vmstate/: the description language in which every device declares its migratable state, and the codec that
 * turns that state into QEMU's VMState bytes and back (plus QEMU's vmdesc JSON).
 *
 * A description is frozen plain data built with the factories below; its TypeScript state type is inferred
 * (`vm.Infer<typeof dev>`). It is compiled once per (description, version) into closures, and by default also into
 * generated field loops with the property names inlined (`_jit.ts`; `setVmstateJit(false)` selects the closures,
 * which are also used where `new Function` is forbidden). Loading is two-phase
 * (`decodeDevice` without side effects, then `applyDevice`), fits the reader's re-run-on-underflow design, and
 * treats the stream as hostile (every count capped, every failure a `MigrationError` with `path` and `offset`).
 *
 * Platform-neutral: this folder imports no `node:` module and nothing above `wire/` (and `errors.ts`).
 *
 * @example
 * ```ts
 * import * as vm from "ferry/vmstate";
 * const kbd = vm.device("pckbd", {
 *   version: 3,
 *   fields: { write_cmd: vm.u8(), status: vm.u8(), mode: vm.u8(), pending: vm.u8() },
 * });
 * const state = vm.initialState(kbd);
 * vm.saveDevice(writer, kbd, state);
 * vm.loadDevice(reader, kbd, state, 3);
 * ```
 *
 * @module
 */

export { setVmstateJit, vmstateJit } from "./_jit.js";
export type {
  AnyDevice,
  Device,
  DeviceDef,
  DeviceState,
  Hooks,
  SubShapes,
  SubsectionDef,
} from "./device.js";
export { device, MigrationPriority } from "./device.js";
export type {
  AnyField,
  ArrayField,
  BitmapField,
  BufferField,
  FieldOptions,
  ListField,
  ListOptions,
  LocalField,
  MaxOptions,
  OptionalField,
  ScalarField,
  ScalarKind,
  ScalarOptions,
  ScalarTypes,
  StructField,
  TmpCallbacks,
  TmpField,
  UnusedField,
  ValidateField,
  VarrayField,
  VBufferField,
  VBufferOptions,
} from "./fields.js";
export {
  array,
  bitmap,
  bool,
  buffer,
  f64,
  i8,
  i16,
  i32,
  i64,
  list,
  local,
  optional,
  struct,
  timer,
  u8,
  u16,
  u32,
  u64,
  unused,
  validate,
  varray,
  vbuffer,
  withTmp,
} from "./fields.js";
export type {
  CheckRefs,
  CountField,
  CountKind,
  DescriptionBase,
  Field,
  HookResult,
  Infer,
  Loose,
  LooseMut,
  NoState,
  Shape,
  StateOf,
  TestFn,
} from "./infer.js";
export { initialState } from "./initial-state.js";
export type { AnyLegacy, DecodedLegacy, Legacy, LegacyDef, VmdescLegacy } from "./legacy.js";
export { applyLegacy, decodeLegacy, isLegacy, legacy, loadLegacy, saveLegacy } from "./legacy.js";
export type { Decoded } from "./load.js";
export { applyDevice, decodeDevice, loadDevice, loadDeviceAsync } from "./load.js";
export type { SaveOptions } from "./save.js";
export { saveDevice, sectionNeeded } from "./save.js";
export type { VmdescField, VmdescVmsd } from "./vmdesc-json.js";
export { INLINE_KEY, stringifyVmdesc } from "./vmdesc-json.js";
