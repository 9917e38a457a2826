/**
 * The `ferry` command line: one subcommand per job (`selftest`, later `run`, `migrate`, `analyze`, `demo`, …).
 *
 * @module
 */

import { isMigrationError } from "../errors.js";
import { demoCommand } from "./demo.js";
import { migrateCommand } from "./migrate.js";
import { selftestCommand } from "./selftest.js";

/** A subcommand: takes its own arguments, returns the process exit code. */
export interface Command {
  /** One line for `ferry --help`. */
  readonly summary: string;
  /** Runs the command. */
  run(args: string[]): Promise<number>;
}

const commands: Record<string, Command> = {
  demo: demoCommand,
  migrate: migrateCommand,
  selftest: selftestCommand,
};

function usage(): string {
  const lines = ["Usage: ferry <command> [options]", "", "Commands:"];
  for (const [name, c] of Object.entries(commands)) lines.push(`  ${name.padEnd(12)} ${c.summary}`);
  lines.push("", "Run `ferry <command> --help` for a command's options.");
  return `${lines.join("\n")}\n`;
}

/**
 * Runs the CLI.
 *
 * @param argv The arguments after the program name.
 * @returns The exit code.
 */
export async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "--help" || name === "-h" || name === "help") {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === "--version") {
    process.stdout.write("ferry 0.1.0\n");
    return 0;
  }
  const cmd = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (cmd === undefined) {
    process.stderr.write(`ferry: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  try {
    return await cmd.run(rest);
  } catch (e) {
    if (isMigrationError(e)) {
      process.stderr.write(`ferry ${name}: ${e.toString()}\n`);
      return 1;
    }
    if (e instanceof TypeError && (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS")) {
      process.stderr.write(`ferry ${name}: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}
