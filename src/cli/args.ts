/**
 * Argument parsing shared by the `ferry` commands: `node:util` `parseArgs` plus the `-h, --help` option every
 * command has, and the positional-count check that prints the usage.
 *
 * @module
 */

import { parseArgs } from "node:util";

/** A command's options, as `parseArgs` describes them. */
type OptionsConfig = NonNullable<NonNullable<Parameters<typeof parseArgs>[0]>["options"]>;

/** What `parseArgs` returns for a command's options (and positionals). */
type Parsed<O extends OptionsConfig> = ReturnType<
  typeof parseArgs<{ args: string[]; options: O; allowPositionals: true; strict: true }>
>;

/**
 * Parses `args` against `options` and `-h, --help`.
 *
 * @param help The command's usage text: printed on stdout for `--help`, on stderr when the positionals are wrong.
 * @param positionals How many positional arguments the command takes: `[min, max]`. Default none.
 * @returns The parsed values and positionals, or the exit status to return: 0 after `--help`, 2 for a wrong
 *   positional count.
 * @throws TypeError from `parseArgs` for an unknown option or a missing value (the CLI prints it).
 */
export function parseCommandArgs<const O extends OptionsConfig>(
  args: string[],
  help: string,
  options: O,
  positionals: readonly [min: number, max: number] = [0, 0],
): Parsed<O> | number {
  const parsed = parseArgs({
    args,
    allowPositionals: true,
    strict: true,
    options: { ...options, help: { type: "boolean", short: "h" } },
  });
  if ((parsed.values as { help?: boolean }).help === true) {
    process.stdout.write(help);
    return 0;
  }
  const n = parsed.positionals.length;
  if (n < positionals[0] || n > positionals[1]) {
    process.stderr.write(help);
    return 2;
  }
  return parsed as unknown as Parsed<O>;
}
