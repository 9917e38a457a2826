/**
 * The inspector: look inside, check, compare and edit QEMU (7.2 and later) and Ferry migration streams.
 *
 * Device sections are decoded with the stream's own vmdesc trailer, found from the end of the file as QEMU's
 * `scripts/analyze-migration.py` does, and printed in that script's format; RAM is parsed record by record.
 * This layer reads files (`node:fs`); it builds on savevm/, ram/ and wire/ and must not import cli/.
 *
 * @example
 * ```ts
 * import { analyzeStream, checkStream, formatPythonJson } from "ferry/inspect";
 * const check = await checkStream("vm.mig");
 * if (!check.ok) console.error(check.error.toString());
 * const { state } = await analyzeStream("vm.mig", { extractRamDir: "ram" });
 * console.log(formatPythonJson(state));
 * ```
 *
 * @module
 */

export {
  type AnalyzeOptions,
  type AnalyzeResult,
  analyzeSource,
  formatPythonJson,
  formatSummaryTable,
} from "./analyze.js";
export { type CheckResult, checkSource } from "./check.js";
export { Cursor, DEFAULT_WINDOW_BYTES, MAX_ITEM_BYTES } from "./cursor.js";
export {
  type DeviceDiff,
  type DiffResult,
  diffSources,
  type FieldDiff,
  formatDiffText,
  type PageRange,
  type RamBlockDiff,
} from "./diff.js";
export { blockFileName, RamExtractor } from "./extract.js";
export { analyzeStream, checkStream, diffStreams, type InspectOptions, rewriteStream } from "./inspect.js";
export { KNOWN_DEVICES, type KnownDevice } from "./known-devices.js";
export { createProgress, PROGRESS_THRESHOLD_BYTES, type Progress } from "./progress.js";
export { parseSetRam, type RamPatch, type RewriteResult, rewriteSource } from "./rewrite.js";
export {
  BytesSource,
  DEFAULT_MAX_SPILL_BYTES,
  FileSource,
  type OpenedInput,
  type OpenInputOptions,
  openInput,
  type RandomAccessSource,
  type StreamInput,
} from "./source.js";
export { findTrailer, MAX_VMDESC_BYTES, TRAILER_SEARCH_BYTES, type VmdescTrailer, validateVmdesc } from "./trailer.js";
export { type AnalyzeObject, type AnalyzeValue, decodeVmsd, hexSpaced, MAX_VALUES_PER_SECTION } from "./vmsd-decode.js";
export {
  MAX_COMMAND_BYTES,
  MAX_RAM_BLOCKS,
  type RamBlockInfo,
  type RamVisitor,
  type SectionRecord,
  type StreamSummary,
  type WalkOptions,
  walkStream,
} from "./walk.js";
