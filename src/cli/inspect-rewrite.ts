/**
 * `ferry rewrite IN OUT [--set-ram BLOCK:OFFSET=FILE …]`: parses a migration stream and writes it back; with no
 * edits the output is byte-identical, with edits the patched pages are written and everything else kept.
 *
 * @module
 */

import { readFileSync } from "node:fs";
import { rewriteStream } from "../inspect/inspect.js";
import { parseSetRam, type RamPatch } from "../inspect/rewrite.js";
import { parseCommandArgs } from "./args.js";
import { note, progressFor } from "./inspect-common.js";
import type { Command } from "./main.js";

/** The largest patch file read for --set-ram: 1 GiB. */
const MAX_PATCH_BYTES = 1024 ** 3;

const HELP = `Usage: ferry rewrite [options] IN OUT

Parses a QEMU (7.2+) or Ferry migration stream (failing on any malformed item) and writes it to OUT. Without
edits OUT is byte-identical to IN. IN may be -, OUT may be - (stdout).

Options:
  --set-ram BLOCK:OFFSET=FILE  put FILE's bytes at OFFSET (decimal or 0x-hex) in RAM block BLOCK; repeatable,
                               applied in order. The LAST record of each patched page is edited: a PAGE record
                               gets the new bytes in place; a ZERO record becomes a PAGE record (the stream grows);
                               a page never sent gets a new PAGE record before the last RAM EOS.
  -q, --quiet                  no progress bar or summary
  -h, --help                   this help
`;

/** The `ferry rewrite` command. */
export const rewriteCommand: Command = {
  summary: "parse a migration stream and write it back, optionally patching RAM pages",
  async run(args) {
    const parsed = parseCommandArgs(
      args,
      HELP,
      { "set-ram": { type: "string", multiple: true }, quiet: { type: "boolean", short: "q" } },
      [2, 2],
    );
    if (typeof parsed === "number") return parsed;
    const { values, positionals } = parsed;
    const [input, output] = positionals as [string, string];
    const patches: RamPatch[] = [];
    for (const spec of values["set-ram"] ?? []) {
      let p: ReturnType<typeof parseSetRam>;
      try {
        p = parseSetRam(spec);
      } catch (e) {
        process.stderr.write(`ferry rewrite: ${(e as Error).message}\n`);
        return 2;
      }
      const data = readFileSync(p.file);
      if (data.length > MAX_PATCH_BYTES) {
        process.stderr.write(`ferry rewrite: patch file "${p.file}" is over ${MAX_PATCH_BYTES} bytes\n`);
        return 2;
      }
      patches.push({ block: p.block, offset: p.offset, data: new Uint8Array(data) });
    }
    const quiet = values.quiet === true || output === "-";
    const progress = await progressFor("rewrite", [input], quiet);
    let r: Awaited<ReturnType<typeof rewriteStream>>;
    try {
      r = await rewriteStream(input, output === "-" ? 1 : output, patches, {
        onNote: (m) => note("rewrite", m),
        onProgress: (o) => progress.update(o),
      });
    } catch (e) {
      if (e instanceof RangeError) {
        process.stderr.write(`ferry rewrite: ${e.message}\n`);
        return 1;
      }
      throw e;
    } finally {
      progress.stop();
    }
    if (!quiet) {
      const how = r.pages.map((p) => `${p.block}@0x${p.offset.toString(16)} (${p.how})`).join(", ");
      process.stderr.write(`ferry rewrite: wrote ${r.bytes} bytes${how === "" ? "" : `; patched ${how}`}\n`);
    }
    return 0;
  },
};
