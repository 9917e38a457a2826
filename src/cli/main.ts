/**
 * The `ferry` command line: one subcommand per job (`selftest`, later `run`, `migrate`, `analyze`, `demo`, …).
 *
 * @module
 */

import { isMigrationError } from "../errors.js";

/** A subcommand: takes its own arguments, returns the process exit code. */
export interface Command {
  /** One line for `ferry --help`. */
  readonly summary: string;
  /** Runs the command. */
  run(args: string[]): Promise<number>;
}

/** A command whose module loads only when it runs, so `ferry --help` and small commands start fast. */
function lazy(summary: string, load: () => Promise<Command>): Command {
  return { summary, run: async (args) => (await load()).run(args) };
}

const commands: Record<string, Command> = {
  run: lazy(
    "run a machine (ferry-rv32 or ferry-synthetic) under QMP control",
    async () => (await import("./run.js")).runCommand,
  ),
  migrate: lazy(
    "live-migrate a machine (Ferry or QEMU) over QMP, with progress",
    async () => (await import("./migrate.js")).migrateCommand,
  ),
  demo: lazy(
    "live-migrate a running RISC-V guest between two Ferry processes and check it",
    async () => (await import("./demo.js")).demoCommand,
  ),
  analyze: lazy(
    "decode a migration stream (QEMU's or Ferry's) into JSON, like analyze-migration.py",
    async () => (await import("./inspect-analyze.js")).analyzeCommand,
  ),
  check: lazy("validate a whole migration stream", async () => (await import("./inspect-check.js")).checkCommand),
  diff: lazy(
    "compare two migration streams device by device and page by page",
    async () => (await import("./inspect-diff.js")).diffCommand,
  ),
  rewrite: lazy(
    "parse and write back a stream, optionally patching RAM pages",
    async () => (await import("./inspect-rewrite.js")).rewriteCommand,
  ),
  selftest: lazy(
    "round-trip data through every transport and report throughput",
    async () => (await import("./selftest.js")).selftestCommand,
  ),
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
