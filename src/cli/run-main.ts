/**
 * A stand-alone entry for `ferry run` (`tsx src/cli/run-main.ts --machine …` or `node dist/cli/run-main.js …`),
 * for tests and scripts that need only this command.
 *
 * @module
 */

import { runCommand } from "./run.js";

process.exitCode = await runCommand.run(process.argv.slice(2));
