/**
 * Turns `npm run bench -- NAME --json` output (JSON lines, possibly from several benchmarks) into the markdown
 * table docs/performance.md keeps: `npx tsx bench/_table.ts < results.jsonl`.
 */
import { readFileSync } from "node:fs";

interface Line {
  bench: string;
  metric: string;
  value: number;
  unit: string;
  baseline: string;
  baselineValue: number;
  ratio: number;
}

const lines = readFileSync(0, "utf8")
  .split("\n")
  .filter((l) => l.startsWith("{"))
  .map((l) => JSON.parse(l) as Line);
const out = [
  "| bench | metric | Ferry | baseline (same run) | baseline value | ratio |",
  "| --- | --- | --- | --- | --- | --- |",
];
for (const l of lines) {
  out.push(
    `| ${l.bench} | ${l.metric} | ${l.value} ${l.unit} | ${l.baseline} | ${l.baselineValue} ${l.unit} | ${l.ratio} |`,
  );
}
process.stdout.write(`${out.join("\n")}\n`);
