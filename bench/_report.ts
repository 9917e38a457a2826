/**
 * Shared output for benchmarks: a table for people, or one JSON object per line with `--json`.
 *
 * Each figure is printed beside a baseline measured in the same run, and `ratio` ≥ 1 always means Ferry is
 * better: baseline time / Ferry time for times, Ferry throughput / baseline throughput for rates.
 */

/** One measured figure. */
export interface Figure {
  /** Benchmark name, e.g. `transport`. */
  readonly bench: string;
  /** What was measured, e.g. `tcp-throughput`. */
  readonly metric: string;
  /** Ferry's value. */
  readonly value: number;
  /** Unit of `value` and `baselineValue`, e.g. `GB/s`, `ms`, `ns/device`. */
  readonly unit: string;
  /** What the baseline is, e.g. `raw-socket-copy`. */
  readonly baseline: string;
  /** The baseline's value, measured in the same run. */
  readonly baselineValue: number;
  /** Whether larger values are better (throughput) or smaller (time). */
  readonly higherIsBetter: boolean;
}

/** Ratio with ≥ 1 meaning Ferry is better. */
export function ratioOf(f: Figure): number {
  if (f.value === 0 || f.baselineValue === 0) return 0;
  return f.higherIsBetter ? f.value / f.baselineValue : f.baselineValue / f.value;
}

function round(v: number): number {
  if (!Number.isFinite(v)) return v;
  const a = Math.abs(v);
  const digits = a >= 100 ? 1 : a >= 1 ? 3 : 4;
  return Number(v.toFixed(digits));
}

/** Prints figures as JSON lines (when `json`) or as an aligned table. */
export function report(figures: readonly Figure[], json: boolean): void {
  if (json) {
    for (const f of figures) {
      const line = {
        bench: f.bench,
        metric: f.metric,
        value: round(f.value),
        unit: f.unit,
        baseline: f.baseline,
        baselineValue: round(f.baselineValue),
        ratio: round(ratioOf(f)),
      };
      process.stdout.write(`${JSON.stringify(line)}\n`);
    }
    return;
  }
  const rows = [["bench", "metric", "ferry", "baseline", "baseline value", "ratio"]];
  for (const f of figures) {
    rows.push([
      f.bench,
      f.metric,
      `${round(f.value)} ${f.unit}`,
      f.baseline,
      `${round(f.baselineValue)} ${f.unit}`,
      `${round(ratioOf(f))}`,
    ]);
  }
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length))) ?? [];
  for (const r of rows) process.stdout.write(`${r.map((c, i) => c.padEnd(widths[i] ?? 0)).join("  ")}\n`);
}

/** Median of a list of numbers. */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
}

/** Prints progress notes on stderr (never mixed into `--json` stdout). */
export function note(msg: string): void {
  process.stderr.write(`${msg}\n`);
}
