/**
 * A progress bar on stderr for long inspector runs: shown only when stderr is a terminal and the stream is over
 * {@link PROGRESS_THRESHOLD_BYTES}. Uses `cli-progress` when it is installed, else a plain one-line fallback.
 *
 * @module
 */

/** Streams at least this large get a progress bar: 64 MiB. */
export const PROGRESS_THRESHOLD_BYTES = 64 * 1024 * 1024;

/** A progress sink: `update(offset)` while working, `stop()` at the end. */
export interface Progress {
  update(offset: number): void;
  stop(): void;
}

const NONE: Progress = { update: () => undefined, stop: () => undefined };

interface BarLike {
  start(total: number, value: number): void;
  update(value: number): void;
  stop(): void;
}

/**
 * Creates a progress reporter for a run over `total` bytes.
 *
 * @param label What is running (`check vm.mig`).
 * @param total Bytes to go through.
 * @param options `quiet` forces no output; `stream` defaults to `process.stderr`.
 * @returns A reporter (a no-op when stderr is not a terminal or the stream is small).
 */
export async function createProgress(
  label: string,
  total: number,
  options: { readonly quiet?: boolean; readonly stream?: NodeJS.WriteStream } = {},
): Promise<Progress> {
  const stream = options.stream ?? process.stderr;
  if (options.quiet === true || !stream.isTTY || total < PROGRESS_THRESHOLD_BYTES) return NONE;
  try {
    const moduleName = "cli-progress";
    const mod = (await import(moduleName)) as {
      SingleBar: new (opts: object, preset: object) => BarLike;
      Presets: { shades_classic: object };
    };
    const bar = new mod.SingleBar(
      {
        format: `${label} [{bar}] {percentage}% | {value}/{total} MiB`,
        stream,
        synchronousUpdate: true,
        hideCursor: true,
        clearOnComplete: true,
      },
      mod.Presets.shades_classic,
    );
    const mib = (n: number): number => Math.floor(n / (1024 * 1024));
    bar.start(mib(total), 0);
    return { update: (o) => bar.update(mib(o)), stop: () => bar.stop() };
  } catch {
    let last = -1;
    return {
      update(offset) {
        const pct = Math.floor((offset / total) * 100);
        if (pct === last) return;
        last = pct;
        stream.write(`\r${label}: ${pct}%`);
      },
      stop() {
        stream.write(`\r${" ".repeat(label.length + 6)}\r`);
      },
    };
  }
}
