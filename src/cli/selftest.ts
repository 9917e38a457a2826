/**
 * `ferry selftest`: sends page-shaped records through every transport with the wire layer and checks every byte
 * arrives, printing a small table (transport, bytes, MB/s, ok).
 *
 * @module
 */

import { createHash } from "node:crypto";
import { closeSync, mkdtempSync, openSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fillXorshift32 } from "../machine/xorshift.js";
import type { Channel } from "../transport/channel.js";
import { connect } from "../transport/connect.js";
import { registerFd, releaseFd } from "../transport/fd-registry.js";
import { listen } from "../transport/listen.js";
import { createChannelPair } from "../transport/memory-channel.js";
import { ByteReader, NEED_MORE } from "../wire/byte-reader.js";
import { ByteWriter } from "../wire/byte-writer.js";
import { parseCommandArgs } from "./args.js";
import type { Command } from "./main.js";

const PAGE = 4096;

/** One selftest row. */
export interface SelftestResult {
  readonly transport: string;
  readonly bytes: number;
  readonly mbPerSecond: number;
  readonly ok: boolean;
  readonly error?: string;
}

/** Sends `pages` records (be64 offset|0x08 + 4 KiB) and returns the SHA-256 of what was sent. */
async function send(ch: Channel, pages: number, ram: Uint8Array): Promise<string> {
  const hash = createHash("sha256");
  const w = new ByteWriter(ch);
  const ramPages = ram.length / PAGE;
  for (let p = 0; p < pages; p++) {
    const off = (p % ramPages) * PAGE;
    const page = ram.subarray(off, off + PAGE);
    w.u64n(p * PAGE + 0x08).bytes(page);
    hash.update(page);
    if ((p & 255) === 255) await w.ready();
  }
  w.u64n(0x10);
  await w.flush();
  await ch.end();
  return hash.digest("hex");
}

/** Receives records until the EOS word and returns the SHA-256 of the page payloads. */
async function receive(ch: Channel): Promise<string> {
  const hash = createHash("sha256");
  const r = new ByteReader(ch);
  let expect = 0;
  const page = new Uint8Array(PAGE);
  const record = (r: ByteReader): boolean => {
    const word = r.u64n();
    if (word === 0x10) return false;
    if (word !== expect * PAGE + 0x08) throw new Error(`record ${expect}: unexpected header ${word.toString(16)}`);
    r.copyTo(page, 0, PAGE);
    return true;
  };
  for (;;) {
    const more = r.tryDecode(record);
    if (more === NEED_MORE) {
      if (!(await r.more())) throw new Error(`stream ended after ${expect} records`);
      continue;
    }
    if (!more) break;
    hash.update(page);
    expect++;
  }
  if (!(await r.atEnd())) throw new Error("bytes after the end record");
  return hash.digest("hex");
}

async function pairFor(
  kind: string,
  dir: string,
): Promise<{ src: () => Promise<Channel>; dst: () => Promise<Channel>; cleanup(): void }> {
  switch (kind) {
    case "memory": {
      const [a, b] = createChannelPair({ highWaterMark: 8 << 20 });
      return { src: async () => a, dst: async () => b, cleanup() {} };
    }
    case "tcp":
    case "tcp6":
    case "unix": {
      const uri = kind === "tcp" ? "tcp:127.0.0.1:0" : kind === "tcp6" ? "tcp:[::1]:0" : `unix:${join(dir, "s.sock")}`;
      const l = await listen(uri);
      return {
        src: () => connect(l.uri),
        dst: () => l.accept(),
        cleanup: () => void l.close().catch(() => {}),
      };
    }
    case "exec": {
      const file = join(dir, "exec.mig");
      return {
        src: () => connect(`exec:cat > '${file}'`),
        dst: async () => (await listen(`exec:cat '${file}'`)).accept(),
        cleanup() {},
      };
    }
    case "file": {
      const uri = `file:${join(dir, "f.mig")},offset=0x1000`;
      return { src: () => connect(uri), dst: async () => (await listen(uri)).accept(), cleanup() {} };
    }
    case "fd": {
      const file = join(dir, "fd.mig");
      const wfd = openSync(file, "w");
      registerFd("selftest-out", wfd);
      return {
        src: () => connect("fd:selftest-out"),
        dst: async () => {
          const rfd = openSync(file, "r");
          registerFd("selftest-in", rfd);
          return (await listen("fd:selftest-in")).accept();
        },
        cleanup() {
          releaseFd("selftest-out");
          releaseFd("selftest-in");
          try {
            closeSync(wfd);
          } catch {
            // Already closed by the channel.
          }
        },
      };
    }
    default:
      throw new Error(`unknown transport ${kind}`);
  }
}

/** Whether a transport sends and receives at the same time (sockets) or one after the other (files). */
const SEQUENTIAL = new Set(["exec", "file", "fd"]);

/**
 * Runs the round trip over each transport.
 *
 * @param transports Which ones (default: all).
 * @param megabytes How much to send per transport.
 */
export async function runSelftest(
  transports: readonly string[] = ["memory", "tcp", "tcp6", "unix", "exec", "file", "fd"],
  megabytes = 64,
): Promise<SelftestResult[]> {
  const pages = Math.max(1, Math.floor((megabytes * 1024 * 1024) / PAGE));
  const ram = new Uint8Array(16 * 1024 * 1024);
  fillXorshift32(ram, 0x9e3779b9);
  const dir = mkdtempSync(join(tmpdir(), "ferry-selftest-"));
  const out: SelftestResult[] = [];
  try {
    for (const t of transports) {
      const bytes = pages * (PAGE + 8) + 8;
      const t0 = performance.now();
      let pair: Awaited<ReturnType<typeof pairFor>> | undefined;
      try {
        pair = await pairFor(t, dir);
        let sent: string;
        let got: string;
        if (SEQUENTIAL.has(t)) {
          sent = await send(await pair.src(), pages, ram);
          got = await receive(await pair.dst());
        } else {
          const p = pair;
          const dstP = p.dst();
          const srcCh = await p.src();
          [sent, got] = await Promise.all([send(srcCh, pages, ram), dstP.then(receive)]);
        }
        const secs = (performance.now() - t0) / 1000;
        out.push({ transport: t, bytes, mbPerSecond: bytes / 1e6 / secs, ok: sent === got });
      } catch (e) {
        out.push({ transport: t, bytes, mbPerSecond: 0, ok: false, error: e instanceof Error ? e.message : String(e) });
      } finally {
        pair?.cleanup();
      }
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return out;
}

const HELP = `Usage: ferry selftest [--size MB] [--transport NAME …] [--json]

Sends page-shaped records (an 8-byte header and 4 KiB each, the RAM record layout) through each transport with
Ferry's stream writer and reader, checks every byte by SHA-256, and prints transport, bytes, MB/s and ok.

Options:
  --size MB          megabytes to send per transport (default 64)
  --transport NAME   memory, tcp, tcp6, unix, exec, file or fd (repeatable; default all)
  --json             print the results as JSON
`;

/** The `selftest` command. */
export const selftestCommand: Command = {
  summary: "round-trip data through every transport and report throughput",
  async run(args) {
    const parsed = parseCommandArgs(args, HELP, {
      size: { type: "string", default: "64" },
      transport: { type: "string", multiple: true },
      json: { type: "boolean", default: false },
    });
    if (typeof parsed === "number") return parsed;
    const { values } = parsed;
    const size = Number(values.size);
    if (!Number.isFinite(size) || size <= 0) {
      process.stderr.write(`ferry selftest: --size must be a positive number of megabytes\n`);
      return 2;
    }
    const results = await runSelftest(values.transport ?? undefined, size);
    if (values.json) process.stdout.write(`${JSON.stringify(results, null, 2)}\n`);
    else {
      process.stdout.write(`${"transport".padEnd(10)}${"bytes".padStart(12)}${"MB/s".padStart(10)}  ok\n`);
      for (const r of results) {
        process.stdout.write(
          `${r.transport.padEnd(10)}${String(r.bytes).padStart(12)}${r.mbPerSecond.toFixed(0).padStart(10)}  ${r.ok ? "yes" : `NO ${r.error ?? "checksum mismatch"}`}\n`,
        );
      }
    }
    return results.every((r) => r.ok) ? 0 : 1;
  },
};
