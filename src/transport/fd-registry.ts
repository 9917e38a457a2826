/**
 * Named file descriptors for `fd:NAME` URIs, and fd sets for `file:/dev/fdset/ID` URIs.
 *
 * This is process-wide state, like QEMU's monitor: the CLI fills it from `--add-fd` flags and the control server
 * from QMP `getfd` / `add-fd` (descriptors passed over the control socket).
 *
 * QEMU: `monitor/fds.c` (`qmp_getfd()`, `qmp_closefd()`, `monitor_get_fd()`, `qmp_add_fd()`, `qmp_remove_fd()`,
 * `qmp_query_fdsets()`).
 *
 * @module
 */

import { closeSync, readFileSync } from "node:fs";

/** One descriptor of an fd set, as QMP `query-fdsets` lists it. */
export interface FdSetMember {
  readonly fd: number;
  readonly opaque?: string | undefined;
}

/** An fd set, as QMP `query-fdsets` lists it. */
export interface FdSetInfo {
  readonly fdsetId: number;
  readonly fds: readonly FdSetMember[];
}

const named = new Map<string, number>();
const fdSets = new Map<number, FdSetMember[]>();

function checkFd(fd: number, what: string): void {
  if (!Number.isSafeInteger(fd) || fd < 0 || fd > 0x7fffffff) {
    throw new RangeError(`Cannot ${what}: fd must be a non-negative integer, got ${fd}`);
  }
}

/**
 * Registers a descriptor under a name, for a later `fd:NAME` URI. A descriptor already registered under that name
 * is closed and replaced, as QMP `getfd` does.
 *
 * @example
 * ```ts
 * registerFd("migfd", 5); // from --add-fd migfd=5
 * const channel = await connect("fd:migfd");
 * ```
 *
 * @param name The name; not empty and not starting with a digit (a decimal `fd:N` means a raw descriptor number).
 * @param fd The descriptor. The registry owns it until {@link takeFd} hands it over or {@link releaseFd} closes it.
 * @throws {TypeError} When the name is empty or starts with a digit.
 * @throws {RangeError} When `fd` is not a descriptor number.
 */
export function registerFd(name: string, fd: number): void {
  if (typeof name !== "string" || name === "" || /^[0-9]/.test(name)) {
    throw new TypeError(`Cannot register fd ${JSON.stringify(name)}: the name must not be empty or start with a digit`);
  }
  checkFd(fd, `register fd "${name}"`);
  const old = named.get(name);
  named.set(name, fd);
  if (old !== undefined && old !== fd) closeQuietly(old);
}

/**
 * Removes a named descriptor from the registry and hands it to the caller, who then owns (and closes) it. QEMU:
 * `monitor_get_fd()`, used by `fd:` migration.
 *
 * @param name The registered name.
 * @returns The descriptor, or undefined if none is registered under that name.
 */
export function takeFd(name: string): number | undefined {
  const fd = named.get(name);
  named.delete(name);
  return fd;
}

/**
 * Removes a named descriptor and closes it. QEMU: QMP `closefd`.
 *
 * @param name The registered name.
 * @returns Whether a descriptor was registered under that name.
 */
export function releaseFd(name: string): boolean {
  const fd = takeFd(name);
  if (fd === undefined) return false;
  closeQuietly(fd);
  return true;
}

/**
 * Lists the registered names.
 *
 * @returns The names, in registration order.
 */
export function registeredFdNames(): string[] {
  return [...named.keys()];
}

/**
 * Adds a descriptor to an fd set, creating the set if needed. QEMU: QMP `add-fd`.
 *
 * @param fd The descriptor; the set owns it until {@link removeFdFromSet}.
 * @param options `fdsetId` (default: the lowest unused id) and an `opaque` note.
 * @returns The set id and the descriptor.
 * @throws {RangeError} When `fd` or `fdsetId` is not a non-negative integer.
 */
export function addFdToSet(
  fd: number,
  options: { readonly fdsetId?: number | undefined; readonly opaque?: string | undefined } = {},
): { fdsetId: number; fd: number } {
  checkFd(fd, "add fd to set");
  let fdsetId = options.fdsetId;
  if (fdsetId === undefined) {
    fdsetId = 0;
    while (fdSets.has(fdsetId)) fdsetId++;
  } else if (!Number.isSafeInteger(fdsetId) || fdsetId < 0) {
    throw new RangeError(`Cannot add fd to set: fdsetId must be a non-negative integer, got ${fdsetId}`);
  }
  let set = fdSets.get(fdsetId);
  if (set === undefined) {
    set = [];
    fdSets.set(fdsetId, set);
  }
  set.push(options.opaque === undefined ? { fd } : { fd, opaque: options.opaque });
  return { fdsetId, fd };
}

/**
 * Removes one descriptor (or, without `fd`, all of them) from an fd set and closes it. QEMU: QMP `remove-fd`.
 *
 * @param fdsetId The set id.
 * @param fd The descriptor to remove; all when omitted.
 * @returns Whether anything was removed.
 */
export function removeFdFromSet(fdsetId: number, fd?: number): boolean {
  const set = fdSets.get(fdsetId);
  if (set === undefined) return false;
  const removed = fd === undefined ? set.splice(0) : set.filter((member) => member.fd === fd);
  if (removed.length === 0) return false;
  for (const member of removed) closeQuietly(member.fd);
  const left = set.filter((member) => !removed.includes(member));
  if (left.length === 0) fdSets.delete(fdsetId);
  else fdSets.set(fdsetId, left);
  return true;
}

/**
 * Lists the fd sets. QEMU: QMP `query-fdsets`.
 *
 * @returns Every set with its members.
 */
export function queryFdSets(): FdSetInfo[] {
  return [...fdSets].map(([fdsetId, fds]) => ({ fdsetId, fds: [...fds] }));
}

/**
 * Picks a descriptor of an fd set whose access mode allows `access`, as QEMU's `qemu_open()` of `/dev/fdset/ID`
 * does. The mode is read from `/proc/self/fdinfo` (Linux); where that is not readable, the first member is taken.
 * The descriptor stays in the set: the caller must not close it.
 *
 * @param fdsetId The set id.
 * @param access What the caller will do with it.
 * @returns A descriptor, or undefined if the set does not exist or has no fitting member.
 */
export function findFdInSet(fdsetId: number, access: "read" | "write"): number | undefined {
  const set = fdSets.get(fdsetId);
  if (set === undefined) return undefined;
  for (const { fd } of set) {
    const mode = accessMode(fd);
    if (mode === undefined || mode === "rw" || mode === access) return fd;
  }
  return undefined;
}

/** The access mode of a descriptor from `/proc/self/fdinfo/FD` (`flags:` in octal, `O_ACCMODE` = 3). */
function accessMode(fd: number): "read" | "write" | "rw" | undefined {
  let text: string;
  try {
    text = readFileSync(`/proc/self/fdinfo/${fd}`, "utf8");
  } catch {
    return undefined;
  }
  const match = /^flags:\s*([0-7]+)$/m.exec(text);
  if (match === null || match[1] === undefined) return undefined;
  const mode = Number.parseInt(match[1], 8) & 3;
  return mode === 0 ? "read" : mode === 1 ? "write" : "rw";
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Already closed by its owner: nothing left to release.
  }
}
