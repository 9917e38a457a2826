/**
 * `diff`: what differs between two streams, device by device and field by field (on the analyze values), and
 * which RAM pages differ (by final page content: the last record sent for each page; a page never sent counts as
 * zero, as in an extracted RAM file).
 *
 * @module
 */

import { MigrationError } from "../errors.js";
import type { RandomAccessSource } from "./source.js";
import type { AnalyzeObject, AnalyzeValue } from "./vmsd-decode.js";
import { type RamBlockInfo, type RamVisitor, type StreamSummary, type WalkOptions, walkStream } from "./walk.js";

/** One differing field: its path (`cpu/env.regs[2]`) and both printed values (undefined = absent). */
export interface FieldDiff {
  readonly path: string;
  readonly a: AnalyzeValue | undefined;
  readonly b: AnalyzeValue | undefined;
}

/** Differences of one device (keyed `"<idstr> (<instance>)"`). */
export interface DeviceDiff {
  readonly device: string;
  /** `changed`, or only in `a` / only in `b`. */
  readonly status: "changed" | "only-a" | "only-b";
  readonly fields: readonly FieldDiff[];
}

/** A run of differing pages: byte range `[start, end)` in the block. */
export interface PageRange {
  readonly start: number;
  readonly end: number;
}

/** Differences of one RAM block. */
export interface RamBlockDiff {
  readonly block: string;
  /** `changed`, `only-a`, `only-b`, or `resized` (lengths differ: pages compared up to the shorter). */
  readonly status: "changed" | "only-a" | "only-b" | "resized";
  readonly lengthA: number | undefined;
  readonly lengthB: number | undefined;
  /** Number of differing pages. */
  readonly pages: number;
  /** The differing pages, merged into ranges. */
  readonly ranges: readonly PageRange[];
}

/** The result of {@link diffSources}. */
export interface DiffResult {
  readonly pageSize: number;
  readonly devices: readonly DeviceDiff[];
  readonly ram: readonly RamBlockDiff[];
  /** Whether the streams' machine types differ (`a`, `b`). */
  readonly machine: { readonly a: string | undefined; readonly b: string | undefined };
  /** True when nothing differs. */
  readonly same: boolean;
}

/** Per page: data offset + 1 for PAGE, -(fill + 1) for ZERO, 0 never sent. */
class PageTable implements RamVisitor {
  tables: Float64Array[] = [];
  onBlocks(blocks: readonly RamBlockInfo[]): void {
    this.tables = blocks.map((b) => new Float64Array(b.lastKind.length));
  }
  onPage(
    block: RamBlockInfo,
    page: number,
    isPage: boolean,
    _data: Uint8Array,
    index: number,
    _rs: number,
    dataOffset: number,
  ): void {
    (this.tables[block.index] as Float64Array)[page] = isPage ? dataOffset + 1 : -(index + 1);
  }
}

interface Side {
  summary: StreamSummary;
  devices: Map<string, AnalyzeObject>;
  pages: PageTable;
}

function walkSide(src: RandomAccessSource, options: Pick<WalkOptions, "knownDevices" | "onProgress">): Side {
  const devices = new Map<string, AnalyzeObject>();
  const pages = new PageTable();
  const summary = walkStream(src, {
    ...options,
    onDevice: (sec, v) => devices.set(`${sec.idstr} (${sec.instanceId})`, v),
    ram: pages,
  });
  return { summary, devices, pages };
}

function diffValue(path: string, a: AnalyzeValue | undefined, b: AnalyzeValue | undefined, out: FieldDiff[]): void {
  if (a === b) return;
  if (Array.isArray(a) && Array.isArray(b)) {
    const n = Math.max(a.length, b.length);
    for (let i = 0; i < n; i++) diffValue(`${path}[${i}]`, a[i], b[i], out);
    return;
  }
  const isObj = (v: unknown): v is AnalyzeObject => typeof v === "object" && v !== null && !Array.isArray(v);
  if (isObj(a) && isObj(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of keys) diffValue(path === "" ? k : `${path}/${k}`, a[k], b[k], out);
    return;
  }
  out.push({ path, a, b });
}

function pageDiffs(
  ta: Float64Array,
  tb: Float64Array,
  srcA: RandomAccessSource,
  srcB: RandomAccessSource,
  pageSize: number,
): { pages: number; ranges: PageRange[] } {
  const n = Math.min(ta.length, tb.length);
  const ranges: PageRange[] = [];
  let pages = 0;
  const bufA = new Uint8Array(pageSize);
  const bufB = new Uint8Array(pageSize);
  /** Loads a page's content into `buf` (PAGE) or returns its fill byte (ZERO, or 0 when never sent). */
  const content = (v: number, src: RandomAccessSource, buf: Uint8Array): Uint8Array | number => {
    if (v > 0) {
      if (src.readAt(v - 1, buf, 0, pageSize) !== pageSize) {
        throw new MigrationError("TRUNCATED", "Cannot compare pages: the stream shrank while reading", {
          offset: v - 1,
        });
      }
      return buf;
    }
    return v === 0 ? 0 : -v - 1;
  };
  for (let p = 0; p < n; p++) {
    const va = ta[p] as number;
    const vb = tb[p] as number;
    let differ: boolean;
    if (va <= 0 && vb <= 0) {
      differ = (va === 0 ? 0 : -va - 1) !== (vb === 0 ? 0 : -vb - 1);
    } else {
      const ca = content(va, srcA, bufA);
      const cb = content(vb, srcB, bufB);
      differ = false;
      if (typeof ca !== "number" && typeof cb !== "number") {
        differ = Buffer.compare(ca, cb) !== 0;
      } else {
        for (let i = 0; i < pageSize && !differ; i++) {
          const x = typeof ca === "number" ? ca : (ca[i] as number);
          const y = typeof cb === "number" ? cb : (cb[i] as number);
          if (x !== y) differ = true;
        }
      }
    }
    if (!differ) continue;
    pages++;
    const start = p * pageSize;
    const last = ranges[ranges.length - 1];
    if (last !== undefined && last.end === start)
      ranges[ranges.length - 1] = { start: last.start, end: start + pageSize };
    else ranges.push({ start, end: start + pageSize });
  }
  return { pages, ranges };
}

/**
 * Compares two streams.
 *
 * @param a The first stream.
 * @param b The second stream.
 * @param options Known devices and progress.
 * @returns Device, field and RAM page differences.
 * @throws MigrationError when either stream is malformed.
 */
export function diffSources(
  a: RandomAccessSource,
  b: RandomAccessSource,
  options: Pick<WalkOptions, "knownDevices" | "onProgress"> = {},
): DiffResult {
  const sa = walkSide(a, options);
  const sb = walkSide(b, options);
  const devices: DeviceDiff[] = [];
  const keys = new Set([...sa.devices.keys(), ...sb.devices.keys()]);
  for (const k of keys) {
    const va = sa.devices.get(k);
    const vb = sb.devices.get(k);
    if (va === undefined) devices.push({ device: k, status: "only-b", fields: [] });
    else if (vb === undefined) devices.push({ device: k, status: "only-a", fields: [] });
    else {
      const fields: FieldDiff[] = [];
      diffValue("", va, vb, fields);
      if (fields.length > 0) devices.push({ device: k, status: "changed", fields });
    }
  }
  const pageSize = sa.summary.pageSize;
  const ram: RamBlockDiff[] = [];
  const blocksB = new Map(sb.summary.blocks.map((x) => [x.idstr, x]));
  for (const ba of sa.summary.blocks) {
    const bb = blocksB.get(ba.idstr);
    if (bb === undefined) {
      ram.push({ block: ba.idstr, status: "only-a", lengthA: ba.length, lengthB: undefined, pages: 0, ranges: [] });
      continue;
    }
    const { pages, ranges } = pageDiffs(
      sa.pages.tables[ba.index] as Float64Array,
      sb.pages.tables[bb.index] as Float64Array,
      a,
      b,
      pageSize,
    );
    const resized = ba.length !== bb.length;
    if (pages > 0 || resized) {
      ram.push({
        block: ba.idstr,
        status: resized ? "resized" : "changed",
        lengthA: ba.length,
        lengthB: bb.length,
        pages,
        ranges,
      });
    }
  }
  const namesA = new Set(sa.summary.blocks.map((x) => x.idstr));
  for (const bb of sb.summary.blocks) {
    if (!namesA.has(bb.idstr)) {
      ram.push({ block: bb.idstr, status: "only-b", lengthA: undefined, lengthB: bb.length, pages: 0, ranges: [] });
    }
  }
  const machine = { a: sa.summary.config?.machineType, b: sb.summary.config?.machineType };
  return {
    pageSize,
    devices,
    ram,
    machine,
    same: devices.length === 0 && ram.length === 0 && machine.a === machine.b,
  };
}

function show(v: AnalyzeValue | undefined): string {
  if (v === undefined) return "(absent)";
  return typeof v === "string" ? v : JSON.stringify(v);
}

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

/**
 * Formats a diff for people.
 *
 * @param d The diff.
 * @returns Text ending in a newline.
 */
export function formatDiffText(d: DiffResult): string {
  if (d.same) return "streams are identical in device state and RAM\n";
  const out: string[] = [];
  if (d.machine.a !== d.machine.b) out.push(`machine: ${d.machine.a ?? "(none)"} -> ${d.machine.b ?? "(none)"}`);
  for (const dev of d.devices) {
    if (dev.status === "only-a") out.push(`device ${dev.device}: only in A`);
    else if (dev.status === "only-b") out.push(`device ${dev.device}: only in B`);
    else {
      out.push(`device ${dev.device}: ${dev.fields.length} field(s) differ`);
      for (const f of dev.fields) out.push(`  ${f.path}: ${show(f.a)} -> ${show(f.b)}`);
    }
  }
  for (const r of d.ram) {
    if (r.status === "only-a" || r.status === "only-b") {
      out.push(`ram ${r.block}: only in ${r.status === "only-a" ? "A" : "B"}`);
      continue;
    }
    const size = r.status === "resized" ? ` (resized ${hex(r.lengthA ?? 0)} -> ${hex(r.lengthB ?? 0)})` : "";
    out.push(`ram ${r.block}: ${r.pages} page(s) differ${size}`);
    for (const x of r.ranges) out.push(`  ${hex(x.start)}-${hex(x.end)} (${(x.end - x.start) / d.pageSize} pages)`);
  }
  return `${out.join("\n")}\n`;
}
