/**
 * The raw socket baseline shared by the transport and migrate benchmarks: plain Node sockets, no Ferry code. The
 * sender writes 1 MiB views and waits for `'drain'` when the socket asks to; the receiver counts `'data'` bytes.
 */
import { once } from "node:events";
import { createServer, connect as netConnect, type Socket } from "node:net";
import { formatUri, parseUri } from "../src/transport/uri.js";

/** Connects to a tcp: or unix: URI and writes `bytes`, then ends the connection once everything is flushed. */
export async function rawSend(uri: string, bytes: Uint8Array): Promise<void> {
  const parsed = parseUri(uri, "connect");
  const socket =
    parsed.kind === "tcp"
      ? netConnect({ host: parsed.host, port: parsed.port, noDelay: true })
      : parsed.kind === "unix"
        ? netConnect({ path: parsed.path })
        : undefined;
  if (socket === undefined) throw new Error(`raw baseline: cannot connect to ${uri}`);
  await once(socket, "connect");
  const block = 1024 * 1024;
  for (let s = 0; s < bytes.length; s += block) {
    if (!socket.write(bytes.subarray(s, Math.min(bytes.length, s + block)))) await once(socket, "drain");
  }
  await new Promise<void>((resolve) => socket.end(resolve));
}

/**
 * Listens on a tcp: or unix: URI for one connection and counts what arrives until the peer ends.
 *
 * @param ready Called with the URI to connect to (the bound port for `tcp:…:0`) once listening.
 * @returns The byte count, and the CPU time spent from the connection to the end.
 */
export async function rawReceive(uri: string, ready: (uri: string) => void): Promise<{ bytes: number; cpuMs: number }> {
  const parsed = parseUri(uri, "listen");
  const server = createServer({ noDelay: true });
  if (parsed.kind === "tcp") server.listen({ host: parsed.host, port: parsed.port });
  else if (parsed.kind === "unix") server.listen({ path: parsed.path });
  else throw new Error(`raw baseline: cannot listen on ${uri}`);
  await once(server, "listening");
  const address = server.address();
  ready(
    parsed.kind === "tcp" && address !== null && typeof address === "object"
      ? formatUri({ kind: "tcp", host: address.address, port: address.port })
      : uri,
  );
  const [socket] = (await once(server, "connection")) as [Socket];
  server.close();
  const cpu0 = process.cpuUsage();
  let bytes = 0;
  socket.on("data", (c: Buffer) => {
    bytes += c.length;
  });
  await once(socket, "end");
  const cpu = process.cpuUsage(cpu0);
  socket.destroy();
  return { bytes, cpuMs: (cpu.user + cpu.system) / 1000 };
}
