/**
 * Helpers shared by the inspector commands (`analyze`, `check`, `diff`, `rewrite`): progress set-up and notes.
 *
 * @module
 */

import { statSync } from "node:fs";
import { createProgress, type Progress } from "../inspect/progress.js";

/** Sets up a progress bar for a path input (none for stdin, JSON output, or small streams). */
export async function progressFor(label: string, paths: readonly string[], json: boolean): Promise<Progress> {
  let total = 0;
  for (const p of paths) {
    if (p === "-") return createProgress(label, 0, { quiet: true });
    try {
      total += statSync(p).size;
    } catch {
      return createProgress(label, 0, { quiet: true });
    }
  }
  return createProgress(label, total, { quiet: json });
}

/** Prints a note on stderr. */
export function note(cmd: string, msg: string): void {
  process.stderr.write(`ferry ${cmd}: ${msg}\n`);
}
