/**
 * QMP `getfd`, `closefd`, `add-fd`, `remove-fd` and `query-fdsets`, over inherited descriptors.
 *
 * QEMU receives the descriptor of `getfd` / `add-fd` as SCM_RIGHTS ancillary data on the QMP unix socket. Plain
 * Node 20 cannot: `node:net` has no API for ancillary data, and the only fd-passing path (an IPC pipe of
 * `child_process`) accepts Node's own framing and socket handles only. So Ferry takes a Ferry extension argument
 * instead, `fd`: the number of a descriptor the Ferry process inherited (e.g. from the shell or a supervisor:
 * `ferry run 5<>/dev/shm/mig ...`). Without `fd` the commands fail as QEMU does without SCM_RIGHTS data.
 *
 * The descriptors go to the transport layer's registry (`transport/fd-registry.ts`), which `fd:NAME` and
 * `file:/dev/fdset/ID` migration URIs read. The registry then owns them: `closefd` / `remove-fd` close them.
 *
 * Who can use this: anyone who can reach the QMP socket, which is private to the owner (mode 0600). Such a client
 * can already run shell commands through `migrate exec:`, so naming an inherited descriptor adds no power; the
 * checks below only stop mistakes (stdio, closed numbers, one descriptor registered twice and closed twice).
 *
 * @module
 */

import { fstatSync } from "node:fs";
import {
  addFdToSet,
  type FdSetInfo,
  queryFdSets,
  registeredFdNames,
  registerFd,
  releaseFd,
  removeFdFromSet,
} from "../transport/fd-registry.js";
import { QmpError } from "./qmp-error.js";
import type { FdsetInfo } from "./qmp-types.js";
import { int, NO_ARGS, object, optional, str } from "./schema.js";
import type { QmpServer } from "./server.js";

/** The registry the commands write to; by default the process-wide one of `transport/fd-registry.ts`. */
export interface FdRegistry {
  /** `getfd`: registers `fd` under `name`, closing a descriptor registered under that name before. */
  registerFd(name: string, fd: number): void;
  /** `closefd`: unregisters and closes; false when the name is unknown. */
  releaseFd(name: string): boolean;
  /** The registered names (names `fd:` migration took are gone). */
  registeredFdNames(): string[];
  /** `add-fd`. */
  addFdToSet(
    fd: number,
    options: { readonly fdsetId?: number | undefined; readonly opaque?: string | undefined },
  ): { fdsetId: number; fd: number };
  /** `remove-fd`: removes and closes; false when nothing matched. */
  removeFdFromSet(fdsetId: number, fd?: number): boolean;
  /** `query-fdsets`. */
  queryFdSets(): FdSetInfo[];
}

/** The process-wide registry of `transport/fd-registry.ts`. */
export const processFdRegistry: FdRegistry = {
  registerFd,
  releaseFd,
  registeredFdNames,
  addFdToSet,
  removeFdFromSet,
  queryFdSets,
};

/** Options of {@link registerFdCommands}. */
export interface FdCommandsOptions {
  /** Where descriptors go. Default {@link processFdRegistry}. */
  readonly registry: FdRegistry;
  /** Whether a descriptor number may be taken. Default: 3 or above and open (`fstat` succeeds). */
  readonly isUsableFd: (fd: number) => boolean;
}

/** QEMU's error when a command needed SCM_RIGHTS data and got none, with a hint at Ferry's alternative. */
export const NO_FD_DESC =
  "No file descriptor supplied via SCM_RIGHTS (Ferry cannot receive descriptors over QMP: pass the number of an inherited descriptor as 'fd')";

function defaultIsUsableFd(fd: number): boolean {
  if (fd < 3) return false;
  try {
    fstatSync(fd);
    return true;
  } catch {
    return false;
  }
}

/**
 * Registers `getfd`, `closefd`, `add-fd`, `remove-fd` and `query-fdsets`.
 *
 * Arguments and messages are QEMU 7.2's (`monitor/fds.c`) plus the `fd` extension:
 * - `getfd {fdname, fd}`: "Parameter 'fdname' expects a name not starting with a digit";
 * - `closefd {fdname}`: "File descriptor named 'x' not found";
 * - `add-fd {fdset-id?, opaque?, fd}` → `{fdset-id, fd}`: "Parameter 'fdset-id' expects a non-negative value";
 * - `remove-fd {fdset-id, fd?}`: "File descriptor named 'fdset-id:3, fd:7' not found";
 * - `query-fdsets` → `[{fdset-id, fds: [{fd, opaque?}]}]`.
 *
 * @param server The QMP server.
 * @param options The registry and the descriptor policy.
 */
export function registerFdCommands(server: QmpServer, options: Partial<FdCommandsOptions> = {}): void {
  const registry = options.registry ?? processFdRegistry;
  const isUsable = options.isUsableFd ?? defaultIsUsableFd;
  /** Descriptors registered by name through QMP, to refuse registering one twice (it would be closed twice). */
  const named = new Map<string, number>();

  const takeInherited = (fd: number | undefined): number => {
    if (fd === undefined) throw new QmpError("GenericError", NO_FD_DESC);
    if (!isUsable(fd)) {
      throw new QmpError("GenericError", `Parameter 'fd' expects an open inherited file descriptor (3 or above)`);
    }
    const live = new Set(registry.registeredFdNames());
    for (const name of named.keys()) if (!live.has(name)) named.delete(name);
    const inSets = registry.queryFdSets().some((set) => set.fds.some((member) => member.fd === fd));
    if (inSets || [...named.values()].includes(fd)) {
      throw new QmpError("GenericError", `File descriptor ${fd} is already registered`);
    }
    return fd;
  };

  server.register("getfd", {
    args: object({ fdname: str(), fd: optional(int({ min: 0, max: 0x7fffffff })) }),
    handler: ({ fdname, fd }) => {
      const taken = takeInherited(fd);
      if (/^[0-9]/.test(fdname)) {
        throw new QmpError("GenericError", "Parameter 'fdname' expects a name not starting with a digit");
      }
      if (fdname === "") throw new QmpError("GenericError", "Parameter 'fdname' expects a non-empty name");
      registry.registerFd(fdname, taken);
      named.set(fdname, taken);
      return {};
    },
  });

  server.register("closefd", {
    args: object({ fdname: str() }),
    handler: ({ fdname }) => {
      if (!registry.releaseFd(fdname))
        throw new QmpError("GenericError", `File descriptor named '${fdname}' not found`);
      named.delete(fdname);
      return {};
    },
  });

  server.register("add-fd", {
    args: object({
      "fdset-id": optional(int()),
      opaque: optional(str()),
      fd: optional(int({ min: 0, max: 0x7fffffff })),
    }),
    handler: (args) => {
      const fd = takeInherited(args.fd);
      const fdsetId = args["fdset-id"];
      if (fdsetId !== undefined && fdsetId < 0) {
        throw new QmpError("GenericError", "Parameter 'fdset-id' expects a non-negative value");
      }
      const info = registry.addFdToSet(fd, { fdsetId, opaque: args.opaque });
      return { "fdset-id": info.fdsetId, fd: info.fd };
    },
  });

  server.register("remove-fd", {
    args: object({ "fdset-id": int(), fd: optional(int()) }),
    handler: (args) => {
      const fdsetId = args["fdset-id"];
      if (!registry.removeFdFromSet(fdsetId, args.fd)) {
        const what = args.fd === undefined ? `fdset-id:${fdsetId}` : `fdset-id:${fdsetId}, fd:${args.fd}`;
        throw new QmpError("GenericError", `File descriptor named '${what}' not found`);
      }
      return {};
    },
  });

  server.register("query-fdsets", {
    args: NO_ARGS,
    handler: (): FdsetInfo[] =>
      registry.queryFdSets().map((set) => ({
        "fdset-id": set.fdsetId,
        fds: set.fds.map((member) =>
          member.opaque === undefined ? { fd: member.fd } : { fd: member.fd, opaque: member.opaque },
        ),
      })),
  });
}
