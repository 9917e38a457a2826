/**
 * `ferry run`: runs a machine as a long-lived process controlled over QMP, ready to migrate out (`migrate`) or in
 * (`--incoming`, `migrate-incoming`), like `qemu-system-* -qmp … -incoming …`.
 *
 * ```sh
 * ferry run --machine ferry-rv32 --kernel guests/dirty.elf --qmp unix:/tmp/src.sock --serial file:/tmp/src.out
 * ferry run --machine ferry-rv32 --kernel guests/dirty.elf --qmp unix:/tmp/dst.sock --incoming tcp:127.0.0.1:0
 * ```
 *
 * When ready it prints one line on stderr, e.g.
 * `ferry: running ferry-rv32-1.1, qmp unix:/tmp/x.sock, serial file:/tmp/x.out, pid 1234, incoming tcp:127.0.0.1:43121`.
 *
 * @module
 */

import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs } from "node:util";
import { MigrationError } from "../errors.js";
import { Rv32Machine } from "../machine/rv32/rv32-machine.js";
import { rv32MachineType } from "../machine/rv32/vmstate.js";
import { SyntheticGuest } from "../machine/synthetic/synthetic-machine.js";
import type { MigratableGuest } from "../migration/guest.js";
import { registerFdCommands } from "../qmp/fd-commands.js";
import { MigrationControl } from "../qmp/migration-commands.js";
import { QmpError } from "../qmp/qmp-error.js";
import * as s from "../qmp/schema.js";
import { type MachineControl, QmpServer } from "../qmp/server.js";
import type { RamBlock } from "../ram/ram-block.js";
import { registerFd } from "../transport/fd-registry.js";
import type { Command } from "./main.js";
import { openSerial, type SerialBackend } from "./run-serial.js";

const USAGE = `Usage: ferry run --machine MACHINE [options]

Machines:
  ferry-rv32[-1.0|-1.1]     the RV32 reference machine (ferry-rv32 = newest machine type); needs --kernel
  ferry-synthetic           RAM of random bytes and a thread that dirties it (benchmarks, transport tests)

Options:
  --kernel GUEST.elf        the guest to boot (ferry-rv32)
  --memory SIZE             RAM size: bytes with K/M/G suffix, a plain number is MiB (default 128M)
  --qmp ADDRESS             QMP control socket: unix:PATH or tcp:127.0.0.1:PORT (repeatable)
  --incoming URI|defer      wait for an incoming migration on URI (or a later migrate-incoming)
  --paused                  do not start the guest (QEMU -S); also stay paused after an incoming migration
  --serial BACKEND          stdio | file:PATH | unix:PATH | null (default null)
  --add-fd NAME=FD          register an inherited descriptor for fd:NAME migration URIs (repeatable)
  --dirty-rate PAGES_PER_S  ferry-synthetic: pages dirtied per second (0 = as fast as possible; default 0)
  --mem-prealloc            map all guest RAM before an incoming migration (QEMU's -mem-prealloc): no page
                            faults while the stream arrives
`;

/**
 * Parses a memory size as QEMU's `-m` does: a plain number is MiB; suffixes B, K, M, G, T (optionally with `iB`).
 *
 * @throws TypeError for a malformed size.
 */
export function parseMemorySize(text: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([bkmgt]?)(?:i?b)?$/i.exec(text.trim());
  if (m === null) throw new TypeError(`Cannot parse memory size "${text}": expected e.g. 128M, 1G or 65536K`);
  const unit = (m[2] ?? "").toLowerCase();
  const mult = { "": 1 << 20, b: 1, k: 1024, m: 1 << 20, g: 1 << 30, t: 2 ** 40 }[unit] ?? 1;
  const bytes = Math.round(Number(m[1]) * mult);
  if (!Number.isSafeInteger(bytes) || bytes <= 0) throw new TypeError(`Cannot parse memory size "${text}"`);
  return bytes;
}

/** A machine `ferry run` can host: migratable, with a way to read guest memory for `pmemsave`. */
interface HostedGuest extends MigratableGuest {
  readPhysical(addr: number, size: number): Uint8Array;
  dispose(): Promise<void>;
}

/** Options `ferry run` takes, parsed. */
export interface RunOptions {
  readonly machine: string;
  readonly kernel: string | undefined;
  readonly memory: number;
  readonly qmp: readonly string[];
  readonly incoming: string | undefined;
  readonly paused: boolean;
  readonly serial: string;
  readonly addFd: readonly string[];
  readonly dirtyRate: number;
  /** Map all guest RAM up front (QEMU's `-mem-prealloc`), when the guest is not running yet. */
  readonly memPrealloc: boolean;
}

/** Parses `ferry run` arguments. Returns undefined for `--help`. */
export function parseRunArgs(args: string[]): RunOptions | undefined {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      machine: { type: "string", short: "M" },
      kernel: { type: "string" },
      memory: { type: "string", short: "m" },
      qmp: { type: "string", multiple: true },
      incoming: { type: "string" },
      paused: { type: "boolean", short: "S" },
      serial: { type: "string" },
      "add-fd": { type: "string", multiple: true },
      "dirty-rate": { type: "string" },
      "mem-prealloc": { type: "boolean" },
      help: { type: "boolean", short: "h" },
    },
  });
  if (values.help === true) return undefined;
  if (values.machine === undefined) throw new TypeError("Missing --machine (ferry-rv32 or ferry-synthetic)");
  const dirtyRate = values["dirty-rate"] === undefined ? 0 : Number(values["dirty-rate"]);
  if (!Number.isInteger(dirtyRate)) throw new TypeError(`Bad --dirty-rate "${values["dirty-rate"]}"`);
  return {
    machine: values.machine,
    kernel: values.kernel,
    memory: parseMemorySize(values.memory ?? "128M"),
    qmp: values.qmp ?? [],
    incoming: values.incoming,
    paused: values.paused ?? false,
    serial: values.serial ?? "null",
    addFd: values["add-fd"] ?? [],
    dirtyRate,
    memPrealloc: values["mem-prealloc"] ?? false,
  };
}

/** A running `ferry run` instance (what {@link startRun} returns; the CLI waits on `finished`). */
export interface RunInstance {
  /** The readiness line (also printed on stderr). */
  readonly ready: string;
  /** The QMP addresses listened on. */
  readonly qmp: readonly string[];
  /** The incoming URI (with the real port), when `--incoming URI` was given. */
  readonly incoming: string | undefined;
  /** Resolves once the instance shut down. */
  readonly finished: Promise<void>;
  /** Stops the guest and closes everything (SIGTERM, QMP `quit`). */
  shutdown(): Promise<void>;
  /** The process exit status once finished: 0, or 1 when the guest powered off with a failure code. */
  readonly exitCode: number;
}

/**
 * Starts a machine with its QMP server, serial backend and migration control.
 *
 * @throws TypeError / MigrationError for bad options.
 */
export async function startRun(o: RunOptions): Promise<RunInstance> {
  for (const spec of o.addFd) {
    const eq = spec.indexOf("=");
    const fd = Number(spec.slice(eq + 1));
    if (eq <= 0 || !Number.isInteger(fd) || fd < 0) throw new TypeError(`Bad --add-fd "${spec}": expected NAME=FD`);
    registerFd(spec.slice(0, eq), fd);
  }

  let serial: SerialBackend | undefined;
  let guest: HostedGuest;
  // Set below; the power-off handler only runs once the guest runs.
  let shutdown: () => Promise<void> = async () => {};
  let guestExit: number | undefined;
  let machineName: string;
  if (o.machine === "ferry-synthetic" || o.machine === "ferry-synthetic-1.0") {
    const incoming = o.incoming !== undefined;
    guest = new SyntheticGuest({ memory: o.memory, dirtyRate: o.dirtyRate, fill: incoming ? false : 1 });
    machineName = guest.config.machineType;
  } else if (o.machine.startsWith("ferry-rv32")) {
    const type = rv32MachineType(o.machine);
    if (o.kernel === undefined) throw new TypeError(`--machine ${o.machine} needs --kernel GUEST.elf`);
    const elf = new Uint8Array(readFileSync(o.kernel));
    let m: Rv32Machine | undefined;
    let onPowerOff: (code: number) => void = () => {};
    serial = await openSerial(o.serial, (bytes) => m?.pushInput(bytes));
    const out = serial;
    m = new Rv32Machine({
      machineType: type.name,
      memory: o.memory,
      elf,
      onOutput: (bytes) => out.write(bytes),
      onPowerOff: (code) => onPowerOff(code),
      onError: (e) => process.stderr.write(`ferry run: vCPU failed: ${e.message}\n`),
    });
    await m.start();
    guest = m;
    // As QEMU with the SiFive test device: a guest power-off ends the process, with status 0 for pass.
    onPowerOff = (code) => {
      guestExit = code;
      void shutdown();
    };
    machineName = type.name;
  } else {
    throw new TypeError(`Unknown machine "${o.machine}": expected ferry-rv32[-1.0|-1.1] or ferry-synthetic`);
  }
  // Only while no vCPU runs: a store racing the prefault's zero into a never-written page would be lost.
  if (o.memPrealloc && guest.control.runState() !== "running") {
    for (const e of guest.registry.iterative) {
      const blocks = (e.device as { blocks?: readonly RamBlock[] }).blocks;
      for (const b of blocks ?? []) b.prefault();
    }
  }

  let shuttingDown: Promise<void> | undefined;
  let finish: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });

  const machineControl: MachineControl = {
    runState: () => guest.control.runState(),
    // QEMU 7.2 (qmp_stop, qmp_cont): during an incoming migration, stop and cont only decide whether the guest
    // starts once the load completes.
    async stop() {
      const st = guest.control.runState();
      if (st === "inmigrate") migration.autostart = false;
      else if (st === "running") await guest.control.stop("paused");
    },
    async cont() {
      const st = guest.control.runState();
      if (st === "inmigrate") {
        migration.autostart = true;
        return;
      }
      if (st === "finish-migrate") throw new QmpError("GenericError", "Migration is not finalized yet");
      if (st !== "running") await guest.control.cont();
    },
    quit: () => shutdown(),
  };
  const server = new QmpServer({ machine: machineControl });
  const migration = new MigrationControl(guest, server, { paused: o.paused });
  migration.register();
  registerFdCommands(server);
  server.register("pmemsave", {
    args: s.object({
      val: s.int({ min: 0 }),
      size: s.int({ min: 0 }),
      filename: s.str(),
      "cpu-index": s.optional(s.int()),
    }),
    handler: ({ val, size, filename }) => {
      let bytes: Uint8Array;
      try {
        bytes = guest.readPhysical(val, size);
      } catch (e) {
        throw new QmpError("GenericError", e instanceof Error ? e.message : String(e));
      }
      writeFileSync(filename, bytes);
      return {};
    },
  });

  shutdown = (): Promise<void> => {
    shuttingDown ??= (async () => {
      try {
        if (guest.control.runState() === "running") await guest.control.stop("shutdown");
      } catch {
        // Shutting down anyway.
      }
      await migration.close().catch(() => {});
      await server.close().catch(() => {});
      await guest.dispose().catch(() => {});
      await serial?.close().catch(() => {});
      finish();
    })();
    return shuttingDown;
  };

  const qmp: string[] = [];
  try {
    for (const address of o.qmp) qmp.push(await server.listen(address));
    let incoming: string | undefined;
    if (o.incoming !== undefined) {
      guest.control.setRunState("inmigrate");
      if (o.incoming !== "defer") incoming = await migration.incoming(o.incoming);
    } else if (!o.paused) {
      await guest.control.cont();
    }
    const parts = [`ferry: running ${machineName}`];
    if (qmp.length > 0) parts.push(`qmp ${qmp.join(" ")}`);
    if (serial !== undefined) parts.push(`serial ${serial.description}`);
    parts.push(`pid ${process.pid}`);
    // Last, so a script can take the rest of the line as the URI (an exec: URI has spaces and may have commas).
    if (o.incoming !== undefined) parts.push(`incoming ${incoming ?? "defer"}`);
    const ready = parts.join(", ");
    return {
      ready,
      qmp,
      incoming,
      finished,
      shutdown,
      get exitCode() {
        return guestExit === undefined || guestExit === 0 ? 0 : 1;
      },
    };
  } catch (e) {
    await shutdown();
    throw e;
  }
}

/** `ferry run`. Export name for the command table: `runCommand`. */
export const runCommand: Command = {
  summary: "run a machine (ferry-rv32, ferry-synthetic) under QMP control, ready to migrate",
  async run(args: string[]): Promise<number> {
    let o: RunOptions | undefined;
    try {
      o = parseRunArgs(args);
    } catch (e) {
      if (e instanceof TypeError) {
        process.stderr.write(`ferry run: ${e.message}\n\n${USAGE}`);
        return 2;
      }
      throw e;
    }
    if (o === undefined) {
      process.stdout.write(USAGE);
      return 0;
    }
    let instance: RunInstance;
    try {
      instance = await startRun(o);
    } catch (e) {
      if (e instanceof TypeError || e instanceof RangeError) {
        process.stderr.write(`ferry run: ${e.message}\n`);
        return 2;
      }
      if (e instanceof MigrationError) throw e;
      const err = e as NodeJS.ErrnoException;
      if (typeof err.code === "string") {
        process.stderr.write(`ferry run: ${err.message}\n`);
        return 1;
      }
      throw e;
    }
    const onSignal = (): void => {
      void instance.shutdown();
    };
    process.on("SIGTERM", onSignal);
    process.on("SIGINT", onSignal);
    process.stderr.write(`${instance.ready}\n`);
    await instance.finished;
    process.off("SIGTERM", onSignal);
    process.off("SIGINT", onSignal);
    // Anything still holding the event loop (a stuck client socket) must not keep a quit process alive.
    const code = instance.exitCode;
    setTimeout(() => process.exit(code), 1000).unref();
    return code;
  },
};
