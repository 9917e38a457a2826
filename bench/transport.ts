/**
 * `npm run bench -- transport [--json] [--size MiB] [--runs N]`: 1 GiB sent as 4 KiB records each behind an 8-byte
 * header (the RAM page pattern) from a ByteWriter to a ByteReader in another process, over tcp and unix loopback,
 * beside a raw Node socket copy of the same bytes measured in the same run.
 */
import { type ChildProcess, fork } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { fillXorshift32 } from "../src/machine/xorshift.js";
import { connect } from "../src/transport/connect.js";
import { ByteWriter } from "../src/wire/byte-writer.js";
import { rawSend } from "./_raw-socket.js";
import { type Figure, median, note } from "./_report.js";

const PAGE = 4096;

interface Result {
  seconds: number;
  bytes: number;
}

function receiver(mode: string, uri: string): Promise<{ child: ChildProcess; uri: string; result: Promise<Result> }> {
  const child = fork(new URL("./_transport-receiver.ts", import.meta.url), [mode, uri], {
    execArgv: process.execArgv,
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  return new Promise((resolve, reject) => {
    let t0 = 0;
    const result = new Promise<Result>((res, rej) => {
      child.on("message", (m: { bytes?: number }) => {
        if (m.bytes !== undefined) res({ seconds: (performance.now() - t0) / 1000, bytes: m.bytes });
      });
      child.on("exit", (code) => {
        if (code !== 0) rej(new Error(`receiver exited with ${code}`));
      });
    });
    child.once("message", (m: { ready?: string }) => {
      if (m.ready === undefined) return reject(new Error("receiver did not start"));
      t0 = performance.now();
      resolve({ child, uri: m.ready, result });
    });
    child.once("error", reject);
  });
}

/** A RAM-like buffer of pseudo-random pages. */
function makeRam(bytes: number): Uint8Array {
  const ram = new Uint8Array(bytes);
  fillXorshift32(ram, 2463534242);
  return ram;
}

/** The record stream of `ram`: be64 (offset | PAGE) + 4 KiB per page, then be64 EOS. */
function buildStream(ram: Uint8Array): Uint8Array {
  const pages = ram.length / PAGE;
  const stream = new Uint8Array(pages * (PAGE + 8) + 8);
  const dv = new DataView(stream.buffer);
  for (let p = 0; p < pages; p++) {
    const at = p * (PAGE + 8);
    const word = p * PAGE + 0x08;
    dv.setUint32(at, Math.floor(word / 2 ** 32));
    dv.setUint32(at + 4, word >>> 0);
    stream.set(ram.subarray(p * PAGE, p * PAGE + PAGE), at + 8);
  }
  dv.setUint32(stream.length - 4, 0x10);
  return stream;
}

/** Ferry: a ByteWriter putting a header and a page per record, awaiting backpressure per batch. */
async function sendFerry(uri: string, ram: Uint8Array): Promise<void> {
  const ch = await connect(uri);
  const w = new ByteWriter(ch);
  const pages = ram.length / PAGE;
  for (let p = 0; p < pages; p++) {
    const off = p * PAGE;
    w.u64n(off + 0x08).bytes(ram.subarray(off, off + PAGE));
    if ((p & 255) === 255) await w.ready();
  }
  w.u64n(0x10);
  await w.flush();
  await ch.end();
}

async function runOnce(mode: "raw" | "ferry", uri: string, ram: Uint8Array, stream: Uint8Array): Promise<Result> {
  const rx = await receiver(mode, uri);
  try {
    if (mode === "raw") await rawSend(rx.uri, stream);
    else await sendFerry(rx.uri, ram);
    return await rx.result;
  } finally {
    if (rx.child.exitCode === null) rx.child.kill();
  }
}

/** Runs the benchmark. */
export async function run(args: string[]): Promise<Figure[]> {
  const { values } = parseArgs({
    args,
    options: { size: { type: "string", default: "1024" }, runs: { type: "string", default: "3" } },
  });
  const mib = Number(values.size);
  const runs = Number(values.runs);
  note(`preparing ${mib} MiB of random RAM and its record stream`);
  const ram = makeRam(mib * 1024 * 1024);
  const stream = buildStream(ram);
  const dir = mkdtempSync(join(tmpdir(), "ferry-bench-"));
  const figures: Figure[] = [];
  try {
    for (const [name, uri] of [
      ["tcp", "tcp:127.0.0.1:0"],
      ["unix", `unix:${join(dir, "b.sock")}`],
    ] as const) {
      const raw: number[] = [];
      const ferry: number[] = [];
      for (let i = 0; i < runs; i++) {
        // Alternate the order so neither mode always runs first.
        for (const mode of i % 2 === 0 ? (["raw", "ferry"] as const) : (["ferry", "raw"] as const)) {
          const r = await runOnce(mode, uri, ram, stream);
          const gbps = r.bytes / 1e9 / r.seconds;
          (mode === "raw" ? raw : ferry).push(gbps);
          note(`${name} ${mode} run ${i + 1}: ${gbps.toFixed(2)} GB/s`);
        }
      }
      figures.push({
        bench: "transport",
        metric: `${name}-records-throughput`,
        value: median(ferry),
        unit: "GB/s",
        baseline: "raw-socket-copy",
        baselineValue: median(raw),
        higherIsBetter: true,
      });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return figures;
}
