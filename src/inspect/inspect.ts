/**
 * The inspector's file-level API: the functions behind `ferry analyze | check | diff | rewrite`, taking a path,
 * `-` (stdin, spilled to a capped temporary file) or the stream's bytes.
 *
 * @module
 */

import { type AnalyzeResult, analyzeSource } from "./analyze.js";
import { type CheckResult, checkSource } from "./check.js";
import { type DiffResult, diffSources } from "./diff.js";
import { RamExtractor } from "./extract.js";
import type { KnownDevice } from "./known-devices.js";
import { type RamPatch, type RewriteResult, rewriteSource } from "./rewrite.js";
import { type OpenInputOptions, openInput, type StreamInput } from "./source.js";
import { findTrailer } from "./trailer.js";

/** Options shared by the file-level functions. */
export interface InspectOptions extends OpenInputOptions {
  /** Descriptions for devices without a vmdesc entry (default: the built-in `KNOWN_DEVICES`). */
  readonly knownDevices?: ReadonlyMap<string, KnownDevice>;
  /** Progress callback: stream offset and size. */
  readonly onProgress?: (offset: number, size: number) => void;
}

function walkOpts(o: InspectOptions): {
  knownDevices?: ReadonlyMap<string, KnownDevice>;
  onProgress?: (offset: number, size: number) => void;
} {
  return {
    ...(o.knownDevices === undefined ? {} : { knownDevices: o.knownDevices }),
    ...(o.onProgress === undefined ? {} : { onProgress: o.onProgress }),
  };
}

/**
 * Decodes every section of a stream (`ferry analyze`).
 *
 * @example
 * ```ts
 * const { state } = await analyzeStream("vm.mig");
 * console.log(formatPythonJson(state)); // what QEMU's analyze-migration.py prints
 * ```
 */
export async function analyzeStream(
  input: StreamInput,
  options: InspectOptions & { readonly extractRamDir?: string } = {},
): Promise<AnalyzeResult & { readonly files?: readonly { idstr: string; path: string; length: number }[] }> {
  const inp = await openInput(input, options);
  try {
    if (options.extractRamDir === undefined) return analyzeSource(inp.source, walkOpts(options));
    // The page size is known only after the trailer is read; the extractor needs it for offsets.
    const trailer = findTrailer(inp.source);
    const ex = new RamExtractor(options.extractRamDir, (trailer?.desc.page_size as number | undefined) ?? 4096);
    const r = analyzeSource(inp.source, { ...walkOpts(options), trailer: trailer ?? null, ram: ex });
    ex.finish();
    return { ...r, files: ex.files };
  } finally {
    inp.close();
  }
}

/** Validates a whole stream (`ferry check`). */
export async function checkStream(input: StreamInput, options: InspectOptions = {}): Promise<CheckResult> {
  const inp = await openInput(input, options);
  try {
    return checkSource(inp.source, walkOpts(options));
  } finally {
    inp.close();
  }
}

/** Compares two streams (`ferry diff`). At most one of them may be `-`. */
export async function diffStreams(a: StreamInput, b: StreamInput, options: InspectOptions = {}): Promise<DiffResult> {
  const ia = await openInput(a, options);
  try {
    const ib = await openInput(b, options);
    try {
      return diffSources(ia.source, ib.source, walkOpts(options));
    } finally {
      ib.close();
    }
  } finally {
    ia.close();
  }
}

/** Parses a stream and writes it back with RAM patches (`ferry rewrite`). */
export async function rewriteStream(
  input: StreamInput,
  output: string | number,
  patches: readonly RamPatch[] = [],
  options: InspectOptions = {},
): Promise<RewriteResult> {
  const inp = await openInput(input, options);
  try {
    return rewriteSource(inp.source, output, patches, walkOpts(options));
  } finally {
    inp.close();
  }
}
