/**
 * QMP socket addresses: `unix:PATH` and `tcp:HOST:PORT` (QEMU's `-qmp` chardev spelling, without options).
 *
 * @module
 */

import { isIPv4, isIPv6 } from "node:net";
import { MigrationError } from "../errors.js";

/** A parsed QMP address. */
export type QmpAddress =
  | { readonly kind: "unix"; readonly path: string }
  | { readonly kind: "tcp"; readonly host: string; readonly port: number };

/**
 * Parses `unix:PATH` or `tcp:HOST:PORT` (`tcp:[::1]:PORT` for IPv6).
 *
 * @param text The address.
 * @returns The parsed address.
 * @throws {MigrationError} `BAD_URI` when it is neither.
 */
export function parseQmpAddress(text: string): QmpAddress {
  const fail = (detail: string): never => {
    throw new MigrationError("BAD_URI", `Cannot parse QMP address "${text}": ${detail}`);
  };
  if (text.startsWith("unix:")) {
    const path = text.slice("unix:".length);
    if (path === "") fail("missing path");
    if (path.includes("\0")) fail("the path contains a NUL byte");
    return { kind: "unix", path };
  }
  if (text.startsWith("tcp:")) {
    const rest = text.slice("tcp:".length);
    let host: string;
    let portText: string;
    if (rest.startsWith("[")) {
      const end = rest.indexOf("]");
      if (end < 0 || rest[end + 1] !== ":") fail("expected tcp:[IPV6]:PORT");
      host = rest.slice(1, end);
      portText = rest.slice(end + 2);
    } else {
      const colon = rest.lastIndexOf(":");
      if (colon < 0) fail("expected tcp:HOST:PORT");
      host = rest.slice(0, colon);
      portText = rest.slice(colon + 1);
    }
    if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) > 65535) fail(`"${portText}" is not a port number`);
    return { kind: "tcp", host, port: Number(portText) };
  }
  return fail("expected unix:PATH or tcp:HOST:PORT");
}

/**
 * Whether a host is a loopback address: `localhost`, 127.0.0.0/8, `::1` or `::ffff:127.x.x.x`.
 *
 * @param host A host as written in an address.
 * @returns Whether only this machine can reach it.
 */
export function isLoopbackHost(host: string): boolean {
  if (host === "localhost") return true;
  if (isIPv4(host)) return host.startsWith("127.");
  if (isIPv6(host)) {
    const h = host.toLowerCase();
    if (h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
    const mapped = /^(?:0:0:0:0:0|):ffff:(\d+\.\d+\.\d+\.\d+)$/.exec(h.replace(/^::/, ":"));
    return mapped?.[1]?.startsWith("127.") === true;
  }
  return false;
}

/**
 * Formats an address back to text.
 *
 * @param address A parsed address.
 * @returns `unix:PATH` or `tcp:HOST:PORT`.
 */
export function formatQmpAddress(address: QmpAddress): string {
  if (address.kind === "unix") return `unix:${address.path}`;
  return `tcp:${isIPv6(address.host) ? `[${address.host}]` : address.host}:${address.port}`;
}
