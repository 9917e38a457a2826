/**
 * Migration URIs in QEMU's syntax: `tcp:HOST:PORT`, `unix:PATH`, `exec:COMMAND`, `fd:NAME`,
 * `file:PATH[,offset=N]`.
 *
 * QEMU: `migration/migration.c` `migrate_uri_parse()`, `util/qemu-sockets.c` `inet_parse()`,
 * `migration/file.c` `file_parse_offset()`.
 *
 * @module
 */

import { isIPv4, isIPv6 } from "node:net";
import { MigrationError } from "../errors.js";

/** Which end of a migration a URI is for: the source connects, the destination listens. */
export type UriSide = "connect" | "listen";

/**
 * `tcp:HOST:PORT`. `host` is an IPv4 address, an IPv6 address (given in brackets, stored without them) or a host
 * name. On the listen side `host` is `""` for "all addresses" (written `tcp::PORT`, `tcp:0:PORT` or
 * `tcp:0.0.0.0:PORT`), and `port` may be 0 ("pick a free port").
 */
export interface TcpUri {
  readonly kind: "tcp";
  readonly host: string;
  readonly port: number;
}

/** `unix:PATH`: a Unix-domain stream socket. */
export interface UnixUri {
  readonly kind: "unix";
  readonly path: string;
}

/** `exec:COMMAND`: a command run by `/bin/sh -c`; the source writes its stdin, the destination reads its stdout. */
export interface ExecUri {
  readonly kind: "exec";
  readonly command: string;
}

/**
 * `fd:NAME`: a file descriptor registered under NAME (QMP `getfd`, `--add-fd`); on the listen side a decimal NAME
 * is also accepted as a raw inherited descriptor number (QEMU: `monitor_fd_param()`).
 */
export interface FdUri {
  readonly kind: "fd";
  readonly name: string;
}

/**
 * `file:PATH[,offset=N]`: a regular file, written (source) or read (destination) from byte `offset`. PATH may be
 * `/dev/fdset/ID` to name a registered fd set (QMP `add-fd`).
 */
export interface FileUri {
  readonly kind: "file";
  readonly path: string;
  readonly offset: number;
}

/** A parsed migration URI, discriminated by `kind`. */
export type MigrationUri = TcpUri | UnixUri | ExecUri | FdUri | FileUri;

/** The longest Unix socket path Linux accepts: `sizeof(sun_path) - 1` bytes. */
export const MAX_UNIX_PATH_BYTES = 107;

/** The path prefix of fd sets in `file:` URIs (QEMU: `/dev/fdset/ID`, `qemu_open()` in `util/osdep.c`). */
export const FDSET_PREFIX = "/dev/fdset/";

/** One DNS label: letters, digits, `_` and inner `-`. */
const HOST_LABEL = /^[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?$/;

/**
 * Parses a migration URI the way QEMU's `migrate` (side `"connect"`) and `migrate-incoming` / `-incoming` (side
 * `"listen"`) read it.
 *
 * `defer` is not a transport: the migration layer handles `-incoming defer` before calling this, so it is rejected
 * here.
 *
 * @example
 * ```ts
 * parseUri("tcp:[::1]:4444", "connect"); // { kind: "tcp", host: "::1", port: 4444 }
 * parseUri("file:/tmp/vm.img,offset=0x1000", "listen"); // { kind: "file", path: "/tmp/vm.img", offset: 4096 }
 * ```
 *
 * @param uri The URI text.
 * @param side Whether the URI is used to connect (source) or to listen (destination).
 * @returns The parsed URI.
 * @throws {MigrationError} `BAD_URI` with a message naming the URI and what is wrong with it.
 */
export function parseUri(uri: string, side: UriSide): MigrationUri {
  if (typeof uri !== "string") throw new TypeError(`Cannot parse migration URI: expected a string, got ${typeof uri}`);
  if (side !== "connect" && side !== "listen") {
    throw new TypeError(`Cannot parse migration URI: side must be "connect" or "listen", got ${String(side)}`);
  }
  const fail = (detail: string): MigrationError =>
    new MigrationError("BAD_URI", `Cannot parse migration URI ${JSON.stringify(uri)}: ${detail}`);

  if (uri === "") throw fail("the URI is empty");
  if (uri.includes("\0")) throw fail("it contains a NUL byte");
  if (uri === "defer") {
    throw fail('"defer" is not a transport; the migration layer handles it (incoming only), not the transport layer');
  }
  const colon = uri.indexOf(":");
  if (colon < 0) throw fail("Parameter 'uri' expects a valid migration protocol");
  const scheme = uri.slice(0, colon);
  const rest = uri.slice(colon + 1);
  switch (scheme) {
    case "tcp":
      return parseTcp(rest, side, fail);
    case "unix": {
      if (rest === "") throw fail("missing socket path");
      const bytes = Buffer.byteLength(rest);
      if (bytes > MAX_UNIX_PATH_BYTES) {
        throw fail(`the socket path is ${bytes} bytes long, the limit is ${MAX_UNIX_PATH_BYTES}`);
      }
      return { kind: "unix", path: rest };
    }
    case "exec":
      if (rest.trim() === "") throw fail("missing command");
      return { kind: "exec", command: rest };
    case "fd":
      return parseFd(rest, side, fail);
    case "file":
      return parseFile(rest, fail);
    case "vsock":
    case "rdma":
      throw fail(`the ${scheme}: transport is not supported`);
    default:
      throw fail(`unknown scheme "${scheme}": Parameter 'uri' expects a valid migration protocol`);
  }
}

/** `HOST:PORT` or `[IPV6]:PORT`. QEMU: `inet_parse()`. */
function parseTcp(rest: string, side: UriSide, fail: (detail: string) => MigrationError): TcpUri {
  if (rest === "") throw fail("missing host and port");
  if (rest.includes(",")) throw fail("socket options after the port (such as ,ipv4 or ,to=) are not supported");
  let host: string;
  let portText: string;
  if (rest.startsWith("[")) {
    const close = rest.indexOf("]");
    if (close < 0) throw fail('unbalanced brackets: "[" without "]"');
    host = rest.slice(1, close);
    const after = rest.slice(close + 1);
    if (host.includes("[") || after.includes("[") || after.includes("]")) throw fail("unbalanced brackets");
    if (host === "") throw fail("empty IPv6 address in brackets");
    if (!isIPv6(host)) throw fail(`"${host}" is not a valid IPv6 address`);
    if (after === "") throw fail("missing port");
    if (!after.startsWith(":")) throw fail('expected ":PORT" after "]"');
    portText = after.slice(1);
  } else {
    if (rest.includes("]")) throw fail('unbalanced brackets: "]" without "["');
    const last = rest.lastIndexOf(":");
    if (last < 0) throw fail("missing port");
    host = rest.slice(0, last);
    portText = rest.slice(last + 1);
    if (host.includes(":")) throw fail("an IPv6 address must be written in brackets, as in tcp:[::1]:4444");
  }
  if (portText === "") throw fail("missing port");
  if (!/^[0-9]+$/.test(portText)) throw fail(`port "${portText}" is not a decimal integer`);
  const port = portText.length > 5 ? Number.POSITIVE_INFINITY : Number(portText);
  if (port > 65535) throw fail(`port ${portText} is outside 0..65535`);
  if (port === 0 && side === "connect") throw fail("port 0 is only valid for listen (where it picks a free port)");

  if (host === "" || host === "0" || host === "0.0.0.0") {
    if (side === "listen") return { kind: "tcp", host: "", port };
    if (host === "") throw fail("missing host");
    if (host === "0") throw fail('host "0" means all addresses, which only listen accepts');
  }
  if (!rest.startsWith("[") && !isIPv4(host)) {
    if (/^[0-9.]+$/.test(host)) throw fail(`"${host}" is not a valid IPv4 address`);
    if (host.length > 253 || !host.split(".").every((label) => HOST_LABEL.test(label))) {
      throw fail(`"${host}" is not a valid host name`);
    }
  }
  return { kind: "tcp", host, port };
}

/** `NAME` or, on the listen side, a raw descriptor number. QEMU: `monitor_fd_param()`. */
function parseFd(rest: string, side: UriSide, fail: (detail: string) => MigrationError): FdUri {
  if (rest === "") throw fail("missing file descriptor name");
  if (/^[0-9]/.test(rest)) {
    if (side === "connect") {
      throw fail("a name starting with a digit is a raw descriptor number, which only the listen side accepts");
    }
    if (!/^[0-9]+$/.test(rest) || Number(rest) > 0x7fffffff) {
      throw fail(`"${rest}" is not a valid descriptor number (names cannot start with a digit)`);
    }
  }
  return { kind: "fd", name: rest };
}

/** `PATH[,offset=N]`; `,,` stands for a comma inside PATH. QEMU: `file_parse_offset()`. */
function parseFile(rest: string, fail: (detail: string) => MigrationError): FileUri {
  let path = "";
  let i = 0;
  for (; i < rest.length; i++) {
    const c = rest[i];
    if (c === ",") {
      if (rest[i + 1] !== ",") break;
      i++;
    }
    path += c;
  }
  if (path === "") throw fail("missing path");
  if (path.startsWith(FDSET_PREFIX) && !/^[0-9]+$/.test(path.slice(FDSET_PREFIX.length))) {
    throw fail(`"${path}" does not name an fd set: expected ${FDSET_PREFIX}ID with a decimal ID`);
  }
  let offset: number | undefined;
  const options = i < rest.length ? rest.slice(i + 1).split(",") : [];
  for (const option of options) {
    if (!option.startsWith("offset=")) {
      throw fail(`unknown option "${option}" (file: accepts only offset=N; write ",," for a comma in the path)`);
    }
    if (offset !== undefined) throw fail("offset is given twice");
    offset = parseOffset(option.slice("offset=".length), fail);
  }
  return { kind: "file", path, offset: offset ?? 0 };
}

/** A decimal or `0x` hexadecimal byte offset that is a safe integer. */
function parseOffset(text: string, fail: (detail: string) => MigrationError): number {
  let value = Number.NaN;
  if (/^[0-9]+$/.test(text)) value = Number(text);
  else if (/^0[xX][0-9A-Fa-f]+$/.test(text)) value = Number.parseInt(text.slice(2), 16);
  if (!Number.isSafeInteger(value)) {
    throw fail(`bad offset "${text}": expected a decimal or 0x hexadecimal integer from 0 to 2^53-1`);
  }
  return value;
}

/**
 * Formats a parsed URI back into QEMU's syntax, so that `parseUri(formatUri(u), side)` gives `u` again.
 * An all-addresses tcp host (`""`) is written `0.0.0.0`; a comma in a `file:` path is doubled.
 *
 * @param uri A parsed URI.
 * @returns The URI text.
 */
export function formatUri(uri: MigrationUri): string {
  switch (uri.kind) {
    case "tcp":
      if (uri.host === "") return `tcp:0.0.0.0:${uri.port}`;
      return uri.host.includes(":") ? `tcp:[${uri.host}]:${uri.port}` : `tcp:${uri.host}:${uri.port}`;
    case "unix":
      return `unix:${uri.path}`;
    case "exec":
      return `exec:${uri.command}`;
    case "fd":
      return `fd:${uri.name}`;
    case "file": {
      const path = uri.path.replaceAll(",", ",,");
      return uri.offset === 0 ? `file:${path}` : `file:${path},offset=${uri.offset}`;
    }
  }
}
