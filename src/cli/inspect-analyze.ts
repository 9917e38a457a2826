/**
 * `ferry analyze FILE`: every device state of a migration stream as one JSON document, in the format of QEMU's
 * `scripts/analyze-migration.py`; or the vmdesc (`--dump desc`), a human summary (`--format table`), or the RAM
 * blocks written to files (`--extract-ram DIR`).
 *
 * @module
 */

import { formatPythonJson, formatSummaryTable } from "../inspect/analyze.js";
import { analyzeStream } from "../inspect/inspect.js";
import { parseCommandArgs } from "./args.js";
import { note, progressFor } from "./inspect-common.js";
import type { Command } from "./main.js";

const HELP = `Usage: ferry analyze [options] FILE

Decodes every section of a QEMU (7.2+) or Ferry migration stream with the stream's own vmdesc trailer and
prints all device states as one JSON document, keyed and valued as QEMU's scripts/analyze-migration.py prints
them. FILE may be - for stdin (spilled to a temporary file, since the trailer is read first).

Options:
  -d, --dump WHAT        state (default) or desc (print the vmdesc JSON itself)
  -x, --extract-ram DIR  write each RAM block to DIR/<idstr> (sparse where pages are zero) and list the files
  -f, --format FMT       json (default) or table (sections, sizes, devices, RAM blocks, page counts)
  -q, --quiet            no progress bar
  -h, --help             this help
`;

/** The `ferry analyze` command. */
export const analyzeCommand: Command = {
  summary: "decode a migration stream's device states and RAM (like QEMU's analyze-migration.py)",
  async run(args) {
    const parsed = parseCommandArgs(
      args,
      HELP,
      {
        dump: { type: "string", short: "d" },
        "extract-ram": { type: "string", short: "x" },
        format: { type: "string", short: "f" },
        quiet: { type: "boolean", short: "q" },
      },
      [1, 1],
    );
    if (typeof parsed === "number") return parsed;
    const { values, positionals } = parsed;
    const file = positionals[0] as string;
    const dump = values.dump ?? "state";
    const format = values.format ?? "json";
    if ((dump !== "state" && dump !== "desc") || (format !== "json" && format !== "table")) {
      process.stderr.write(`ferry analyze: --dump must be state or desc, --format json or table\n`);
      return 2;
    }
    const progress = await progressFor("analyze", [file], values.quiet === true || format === "json");
    const extract = values["extract-ram"];
    try {
      const r = await analyzeStream(file, {
        onNote: (m) => note("analyze", m),
        onProgress: (o) => progress.update(o),
        ...(extract === undefined ? {} : { extractRamDir: extract }),
      });
      progress.stop();
      if (dump === "desc") {
        if (r.trailer === undefined) {
          process.stderr.write("ferry analyze: the stream has no vmdesc trailer\n");
          return 1;
        }
        process.stdout.write(`${formatPythonJson(r.trailer.desc)}\n`);
      } else if (format === "table") {
        process.stdout.write(formatSummaryTable(r.summary));
      } else if (extract !== undefined && values.dump === undefined) {
        for (const f of r.files ?? []) process.stdout.write(`${f.path}\n`);
      } else {
        process.stdout.write(`${formatPythonJson(r.state)}\n`);
      }
      return 0;
    } finally {
      progress.stop();
    }
  },
};
