/**
 * `ferry diff A B`: device by device, field by field, what differs between two migration streams, and which RAM
 * pages differ (counts and address ranges). Exit status 0 when they are the same, 1 when they differ.
 *
 * @module
 */

import { formatDiffText } from "../inspect/diff.js";
import { diffStreams } from "../inspect/inspect.js";
import { parseCommandArgs } from "./args.js";
import { note, progressFor } from "./inspect-common.js";
import type { Command } from "./main.js";

const HELP = `Usage: ferry diff [options] A B

Compares two QEMU (7.2+) or Ferry migration streams: device states field by field (as analyze prints them) and
RAM page by page (the final content of each page; a page never sent counts as zeros). Prints the differing
fields and the differing pages as counts and address ranges. Exit status 0 if the same, 1 if they differ.

Options:
  --json       print the result as JSON
  -q, --quiet  no progress bar
  -h, --help   this help
`;

/** The `ferry diff` command. */
export const diffCommand: Command = {
  summary: "compare two migration streams: device fields and RAM pages",
  async run(args) {
    const parsed = parseCommandArgs(
      args,
      HELP,
      { json: { type: "boolean" }, quiet: { type: "boolean", short: "q" } },
      [2, 2],
    );
    if (typeof parsed === "number") return parsed;
    const { values, positionals } = parsed;
    const [a, b] = positionals as [string, string];
    if (a === "-" && b === "-") {
      process.stderr.write(HELP);
      return 2;
    }
    const json = values.json === true;
    const progress = await progressFor("diff", [a, b], json || values.quiet === true);
    let base = 0;
    let lastSize = 0;
    let d: Awaited<ReturnType<typeof diffStreams>>;
    try {
      d = await diffStreams(a, b, {
        onNote: (m) => note("diff", m),
        onProgress: (o, size) => {
          if (o < lastSize && size !== lastSize) base += lastSize;
          lastSize = size;
          progress.update(base + o);
        },
      });
    } finally {
      progress.stop();
    }
    if (json) process.stdout.write(`${JSON.stringify(d)}\n`);
    else process.stdout.write(formatDiffText(d));
    return d.same ? 0 : 1;
  },
};
