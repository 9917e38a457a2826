/**
 * Serial backends of `ferry run --serial`: where the guest UART's output goes and its input comes from
 * (QEMU: `-serial stdio|file:PATH|unix:PATH,server|null`).
 *
 * @module
 */

import { closeSync, openSync, unlinkSync, writeSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";

/** A serial backend. */
export interface SerialBackend {
  /** What it is, for the readiness line. */
  readonly description: string;
  /** Guest output. */
  write(bytes: Uint8Array): void;
  /** Closes files and sockets. */
  close(): Promise<void>;
}

/**
 * Opens a serial backend.
 *
 * @param spec `stdio`, `file:PATH` (output only, appended), `unix:PATH` (a socket server for one client at a
 *   time; output while no client is connected is dropped), or `null`.
 * @param onInput Receives input bytes for the guest.
 * @throws TypeError for an unknown spec.
 */
export async function openSerial(spec: string, onInput: (bytes: Uint8Array) => void): Promise<SerialBackend> {
  if (spec === "null" || spec === "none") {
    return { description: "null", write() {}, close: async () => {} };
  }
  if (spec === "stdio") return stdioSerial(onInput);
  if (spec.startsWith("file:")) {
    const path = spec.slice(5);
    const fd = openSync(path, "a");
    return {
      description: spec,
      write(bytes) {
        writeSync(fd, bytes);
      },
      async close() {
        closeSync(fd);
      },
    };
  }
  if (spec.startsWith("unix:")) return unixSerial(spec.slice(5), onInput);
  throw new TypeError(`Cannot open serial "${spec}": expected stdio, file:PATH, unix:PATH or null`);
}

function stdioSerial(onInput: (bytes: Uint8Array) => void): SerialBackend {
  const stdin = process.stdin;
  const wasRaw = stdin.isTTY ? stdin.isRaw : false;
  if (stdin.isTTY) stdin.setRawMode(true);
  const onData = (b: Buffer): void => onInput(new Uint8Array(b));
  stdin.on("data", onData);
  stdin.resume();
  return {
    description: "stdio",
    write(bytes) {
      process.stdout.write(bytes);
    },
    async close() {
      stdin.off("data", onData);
      if (stdin.isTTY) stdin.setRawMode(wasRaw);
      stdin.pause();
      stdin.unref?.();
    },
  };
}

async function unixSerial(path: string, onInput: (bytes: Uint8Array) => void): Promise<SerialBackend> {
  let client: Socket | undefined;
  const server: Server = createServer((socket) => {
    if (client !== undefined) {
      socket.destroy();
      return;
    }
    client = socket;
    socket.on("data", (b: Buffer) => onInput(new Uint8Array(b)));
    socket.on("error", () => {});
    socket.on("close", () => {
      if (client === socket) client = undefined;
    });
  });
  server.on("error", () => {});
  try {
    unlinkSync(path);
  } catch {
    // No stale socket.
  }
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(path, () => {
      server.off("error", reject);
      resolve();
    });
  });
  return {
    description: `unix:${path}`,
    write(bytes) {
      client?.write(bytes);
    },
    async close() {
      client?.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      try {
        unlinkSync(path);
      } catch {
        // Already gone.
      }
    },
  };
}
