/**
 * `npm run bench -- NAME [--json] [options]`: runs one benchmark from bench/NAME.ts.
 *
 * Each benchmark module exports `run(args: string[], json: boolean): Promise<Figure[]>`.
 */
import { readdirSync } from "node:fs";
import { report } from "./_report.js";

const args = process.argv.slice(2);
const json = args.includes("--json");
const rest = args.filter((a) => a !== "--json");
const [name, ...benchArgs] = rest;
const available = readdirSync(new URL(".", import.meta.url))
  .filter((f) => f.endsWith(".ts") && !f.startsWith("_") && f !== "run.ts")
  .map((f) => f.slice(0, -3))
  .sort();
if (name === undefined || !available.includes(name)) {
  process.stderr.write(`Usage: npm run bench -- NAME [--json]\nBenchmarks: ${available.join(", ")}\n`);
  process.exit(2);
}
const mod = (await import(`./${name}.ts`)) as {
  run(args: string[], json: boolean): Promise<import("./_report.js").Figure[]>;
};
const figures = await mod.run(benchArgs, json);
report(figures, json);
