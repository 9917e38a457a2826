/**
 * `analyze`: every section of a stream decoded into one JSON document keyed and valued the way QEMU's
 * `scripts/analyze-migration.py` prints it (`"timer (0)": {"cpu_ticks_offset": "0x…"}`, RAM as
 * `"ram (2)": {"section sizes": {"pc.ram": "0x0000000004000000"}}`), plus a human table.
 *
 * @module
 */

import type { RandomAccessSource } from "./source.js";
import type { VmdescTrailer } from "./trailer.js";
import type { AnalyzeObject, AnalyzeValue } from "./vmsd-decode.js";
import { type RamVisitor, type StreamSummary, type WalkOptions, walkStream } from "./walk.js";

/** The result of {@link analyzeSource}. */
export interface AnalyzeResult {
  /** Device states keyed `"<idstr> (<section id>)"`, in first-appearance order, as analyze-migration.py. */
  readonly state: AnalyzeObject;
  /** The walk's summary (sections, devices, RAM blocks and page counts). */
  readonly summary: StreamSummary;
  /** The vmdesc trailer, if the stream has one. */
  readonly trailer: VmdescTrailer | undefined;
}

/** Options of {@link analyzeSource}. */
export interface AnalyzeOptions extends Pick<WalkOptions, "knownDevices" | "onProgress" | "trailer"> {
  /** An extra RAM visitor (e.g. RAM extraction) run during the same pass. */
  readonly ram?: RamVisitor;
}

function hex16(n: number): string {
  return `0x${n.toString(16).padStart(16, "0")}`;
}

/**
 * Decodes every section of a stream.
 *
 * @param src The stream.
 * @param options Known devices, progress, an extra RAM visitor.
 * @returns The state document and the summary.
 * @throws MigrationError at the first malformed item.
 */
export function analyzeSource(src: RandomAccessSource, options: AnalyzeOptions = {}): AnalyzeResult {
  // analyze-migration.py keys sections by section id: a later section with the same id replaces the value in place.
  const byId = new Map<number, { key: string; value: AnalyzeValue }>();
  const ram = options.ram;
  const summary = walkStream(src, {
    ...options,
    onSection(sec) {
      if (sec.idstr === "ram" && sec.type === "start") {
        byId.set(sec.sectionId, { key: `ram (${sec.sectionId})`, value: Object.create(null) as AnalyzeObject });
      }
    },
    onDevice(sec, value) {
      byId.set(sec.sectionId, { key: `${sec.idstr} (${sec.sectionId})`, value });
    },
    ram: {
      onBlocks(blocks) {
        ram?.onBlocks?.(blocks);
      },
      ...(ram?.onPage === undefined ? {} : { onPage: ram.onPage.bind(ram) }),
    },
  });
  // RAM: "section sizes" of the (last) block list, per START section.
  for (const sec of summary.sections) {
    if (sec.idstr === "ram" && sec.type === "start") {
      const sizes = Object.create(null) as AnalyzeObject;
      for (const b of summary.blocks) sizes[b.idstr] = hex16(b.length);
      const v = Object.create(null) as AnalyzeObject;
      v["section sizes"] = sizes;
      byId.set(sec.sectionId, { key: `ram (${sec.sectionId})`, value: v });
    }
  }
  const state = Object.create(null) as AnalyzeObject;
  for (const { key, value } of byId.values()) state[key] = value;
  return { state, summary, trailer: summary.trailer };
}

/**
 * Serialises a value as Python's `json.JSONEncoder(indent=4, separators=(',', ': '))` does, which is what
 * analyze-migration.py prints: same indentation, non-ASCII escaped as `\uXXXX`.
 *
 * @param v The value (an analyze state or a vmdesc document).
 * @returns The text, without a trailing newline.
 */
export function formatPythonJson(v: unknown): string {
  return JSON.stringify(v, null, 4).replace(
    /[\u0080-\uffff]/g,
    (ch) => `\\u${ch.charCodeAt(0).toString(16).padStart(4, "0")}`,
  );
}

function human(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(2)} GiB`;
  if (n >= 1024 ** 2) return `${(n / 1024 ** 2).toFixed(2)} MiB`;
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

function table(rows: string[][]): string {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join("  ")
        .trimEnd(),
    )
    .join("\n");
}

/**
 * A human summary: stream, sections, devices, RAM blocks with zero/normal page counts.
 *
 * @param s The walk summary.
 * @returns Text ending in a newline.
 */
export function formatSummaryTable(s: StreamSummary): string {
  const out: string[] = [];
  out.push(`stream      ${s.size} bytes (${human(s.size)})`);
  out.push(`machine     ${s.config?.machineType ?? "(no configuration section)"}`);
  if (s.config?.capabilities !== undefined) out.push(`caps        ${s.config.capabilities.join(", ")}`);
  out.push(`page size   ${s.pageSize}`);
  out.push(
    `vmdesc      ${s.trailer === undefined ? "none" : `${s.trailer.length} bytes at offset ${s.trailer.offset}`}`,
  );
  const counts = { start: 0, part: 0, end: 0, full: 0 };
  for (const sec of s.sections) counts[sec.type]++;
  out.push(
    `sections    ${s.sectionCount} (start ${counts.start}, part ${counts.part}, end ${counts.end}, full ${counts.full}), commands ${s.commands.length}`,
  );
  out.push("");
  const dev = [["device", "instance", "section", "version", "bytes"]];
  for (const d of s.devices) dev.push([d.idstr, `${d.instanceId}`, `${d.sectionId}`, `${d.version}`, `${d.size}`]);
  out.push(table(dev));
  out.push("");
  const ram = [["ram block", "size", "zero records", "page records", "zero pages", "normal pages", "never sent"]];
  let tz = 0;
  let tp = 0;
  for (const b of s.blocks) {
    let z = 0;
    let p = 0;
    let u = 0;
    for (let i = 0; i < b.lastKind.length; i++) {
      const k = b.lastKind[i];
      if (k === 1) z++;
      else if (k === 2) p++;
      else u++;
    }
    tz += b.zeroRecords;
    tp += b.pageRecords;
    ram.push([b.idstr, human(b.length), `${b.zeroRecords}`, `${b.pageRecords}`, `${z}`, `${p}`, `${u}`]);
  }
  ram.push(["total", "", `${tz}`, `${tp}`, "", "", ""]);
  out.push(table(ram));
  for (const w of s.warnings) out.push(`warning: ${w}`);
  return `${out.join("\n")}\n`;
}
