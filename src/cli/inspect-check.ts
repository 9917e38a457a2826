/**
 * `ferry check FILE`: validates a whole migration stream and prints OK with a summary, or the first error (code,
 * section, field path, byte offset) and exits 1.
 *
 * @module
 */

import { formatPath } from "../errors.js";
import { checkStream } from "../inspect/inspect.js";
import { parseCommandArgs } from "./args.js";
import { note, progressFor } from "./inspect-common.js";
import type { Command } from "./main.js";

const HELP = `Usage: ferry check [options] FILE

Validates a QEMU (7.2+) or Ferry migration stream: header, configuration, section framing and footers, RAM
records, each device section's bytes against its vmdesc sizes, and the vmdesc trailer. Prints OK and a summary,
or the first error with its code, section, field path and byte offset (exit status 1). FILE may be -.

Options:
  --json       print the result as JSON
  -q, --quiet  no progress bar
  -h, --help   this help
`;

/** The `ferry check` command. */
export const checkCommand: Command = {
  summary: "validate a migration stream (framing, footers, RAM records, vmdesc sizes)",
  async run(args) {
    const parsed = parseCommandArgs(
      args,
      HELP,
      { json: { type: "boolean" }, quiet: { type: "boolean", short: "q" } },
      [1, 1],
    );
    if (typeof parsed === "number") return parsed;
    const { values, positionals } = parsed;
    const file = positionals[0] as string;
    const json = values.json === true;
    const progress = await progressFor("check", [file], json || values.quiet === true);
    let r: Awaited<ReturnType<typeof checkStream>>;
    try {
      r = await checkStream(file, { onNote: (m) => note("check", m), onProgress: (o) => progress.update(o) });
    } finally {
      progress.stop();
    }
    if (!r.ok) {
      const e = r.error;
      if (json) {
        process.stdout.write(`${JSON.stringify({ ok: false, error: e.toJSON() })}\n`);
      } else {
        const lines = [`FAILED: [${e.code}] ${e.message}`];
        if (e.path !== undefined && e.path.length > 0) {
          lines.push(`  section: ${String(e.path[0])}`);
          if (e.path.length > 1) lines.push(`  field:   ${formatPath(e.path.slice(1))}`);
        }
        if (e.offset !== undefined) lines.push(`  offset:  ${e.offset} (0x${e.offset.toString(16)})`);
        process.stdout.write(`${lines.join("\n")}\n`);
      }
      return 1;
    }
    const s = r.summary;
    let zero = 0;
    let page = 0;
    for (const b of s.blocks) {
      zero += b.zeroRecords;
      page += b.pageRecords;
    }
    if (json) {
      const out = {
        ok: true,
        size: s.size,
        machineType: s.config?.machineType ?? null,
        sections: s.sectionCount,
        devices: s.devices.length,
        ramBlocks: s.blocks.map((b) => ({
          idstr: b.idstr,
          length: b.length,
          zeroRecords: b.zeroRecords,
          pageRecords: b.pageRecords,
        })),
        vmdesc: s.trailer !== undefined,
        warnings: r.warnings,
      };
      process.stdout.write(`${JSON.stringify(out)}\n`);
    } else {
      process.stdout.write(
        `OK: ${s.size} bytes, machine ${s.config?.machineType ?? "(none)"}, ${s.sectionCount} sections, ` +
          `${s.devices.length} devices, ${s.blocks.length} RAM blocks (${page} page + ${zero} zero records), ` +
          `vmdesc ${s.trailer === undefined ? "absent" : `${s.trailer.length} bytes`}\n`,
      );
      for (const w of r.warnings) process.stdout.write(`warning: ${w}\n`);
    }
    return 0;
  },
};
