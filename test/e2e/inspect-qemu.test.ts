/**
 * The inspector against real QEMU 7.2 streams (Debian's qemu-system-x86), generated at test time: paused `pc` and
 * `q35` machines with a known pattern loaded at 1 MiB by `-device loader`. Checks that analyze finds every device
 * the vmdesc lists and the pattern in `pc.ram`, that check passes, that rewrite is byte-identical, that a patched
 * rewrite is loaded by a real QEMU destination (seen with `pmemsave`), that diff of two captures of a running guest
 * lists exactly the changed pages, and that truncations and byte flips fail check cleanly.
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, suite, test } from "node:test";
import { isMigrationError } from "../../src/errors.js";
import {
  analyzeStream,
  BytesSource,
  checkSource,
  checkStream,
  diffStreams,
  rewriteStream,
  walkStream,
} from "../../src/inspect/index.js";
import { QmpClient } from "../../src/qmp/index.js";
import { skipUnless } from "../support/system.js";

const skip = skipUnless("qemu-system-x86_64", "qemu-system-x86");
const PAGE = 4096;
const PATTERN_ADDR = 0x100000;

interface Qemu {
  proc: ChildProcess;
  qmp: QmpClient;
}

void suite("inspect: real QEMU 7.2 streams", { skip }, () => {
  let dir: string;
  const procs: ChildProcess[] = [];
  const pattern = new Uint8Array(2 * PAGE);
  let patternFile: string;
  const streams: Record<string, string> = {};

  async function start(machine: string, name: string, extra: string[] = [], paused = true): Promise<Qemu> {
    const sock = join(dir, `${name}.sock`);
    const proc = spawn(
      "qemu-system-x86_64",
      [
        "-M",
        machine,
        "-m",
        "64",
        "-nodefaults",
        "-display",
        "none",
        ...(paused ? ["-S"] : []),
        "-qmp",
        `unix:${sock},server=on,wait=off`,
        "-device",
        `loader,file=${patternFile},addr=0x${PATTERN_ADDR.toString(16)}`,
        ...extra,
      ],
      { stdio: ["ignore", "ignore", "pipe"] },
    );
    procs.push(proc);
    const deadline = Date.now() + 10_000;
    while (!existsSync(sock)) {
      if (Date.now() > deadline || proc.exitCode !== null) throw new Error(`QEMU ${name} did not start`);
      await new Promise((r) => setTimeout(r, 20));
    }
    const qmp = await QmpClient.connect(`unix:${sock}`, { timeoutMs: 10_000, commandTimeoutMs: 10_000 });
    return { proc, qmp };
  }

  async function waitMigration(q: Qemu): Promise<string> {
    const deadline = Date.now() + 30_000;
    for (;;) {
      const info = await q.qmp.execute("query-migrate");
      if (info.status === "completed" || info.status === "failed") return info.status;
      if (Date.now() > deadline) throw new Error("migration did not finish");
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async function capture(q: Qemu, file: string): Promise<void> {
    await q.qmp.execute("migrate", { uri: `exec:cat > ${file}` });
    assert.equal(await waitMigration(q), "completed");
  }

  async function quit(q: Qemu): Promise<void> {
    await q.qmp.execute("quit").catch(() => {});
    await q.qmp.close().catch(() => {});
    if (q.proc.exitCode === null) await new Promise((r) => q.proc.once("exit", r));
  }

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "ferry-inspect-qemu-"));
    for (let i = 0; i < pattern.length; i++) pattern[i] = (i * 31 + (i >> 8)) & 0xff || 1;
    patternFile = join(dir, "pattern.bin");
    writeFileSync(patternFile, pattern);
    // pc: a paused capture, then two captures of the running guest a second apart.
    const pc = await start("pc", "pc");
    streams.pc = join(dir, "pc.mig");
    await capture(pc, streams.pc);
    await pc.qmp.execute("cont");
    await new Promise((r) => setTimeout(r, 1000));
    streams.runA = join(dir, "run-a.mig");
    await capture(pc, streams.runA);
    await pc.qmp.execute("cont");
    await new Promise((r) => setTimeout(r, 1000));
    streams.runB = join(dir, "run-b.mig");
    await capture(pc, streams.runB);
    await quit(pc);
    const q35 = await start("q35", "q35");
    streams.q35 = join(dir, "q35.mig");
    await capture(q35, streams.q35);
    await quit(q35);
  });

  after(async () => {
    for (const p of procs) {
      if (p.pid !== undefined && p.exitCode === null) {
        process.kill(p.pid, "SIGKILL");
        await new Promise((r) => p.once("exit", r));
      }
    }
    rmSync(dir, { recursive: true, force: true });
  });

  for (const machine of ["pc", "q35"]) {
    test(`${machine}: analyze finds every vmdesc device, its values, and the pattern in pc.ram`, async () => {
      const file = streams[machine] as string;
      const x = join(dir, `${machine}-ram`);
      const r = await analyzeStream(file, { extractRamDir: x });
      assert.ok(r.trailer !== undefined);
      const devices = r.trailer.desc.devices as { name: string; instance_id: number }[];
      assert.ok(devices.length > 20);
      for (const d of devices) {
        const sec = r.summary.devices.find((s) => s.idstr === d.name && s.instanceId === d.instance_id);
        assert.ok(sec !== undefined, `no section for ${d.name} ${d.instance_id}`);
        assert.ok(Object.hasOwn(r.state, `${d.name} (${sec.sectionId})`), `${d.name} not in the state`);
      }
      const byName = (n: string): Record<string, unknown> => {
        const k = Object.keys(r.state).find((key) => key.startsWith(`${n} (`));
        return r.state[k as string] as Record<string, unknown>;
      };
      // A machine paused before it ran: CPU at the reset vector, run state "prelaunch".
      assert.equal(byName("cpu")["env.eip"], "0x000000000000fff0");
      const gs = byName("globalstate");
      assert.equal(gs.size, "0x0000000a");
      assert.ok((gs.runstate as string).startsWith("70 72 65 6c 61 75 6e 63 68 00"));
      const ram = byName("ram")["section sizes"] as Record<string, string>;
      assert.equal(ram["pc.ram"], "0x0000000004000000");
      const pcRam = new Uint8Array(readFileSync(join(x, "pc.ram")));
      assert.equal(pcRam.length, 64 * 1024 * 1024);
      assert.deepEqual(pcRam.subarray(PATTERN_ADDR, PATTERN_ADDR + pattern.length), pattern);
    });

    test(`${machine}: check passes and rewrite is byte-identical`, async () => {
      const file = streams[machine] as string;
      const c = await checkStream(file);
      assert.ok(c.ok, c.ok ? "" : c.error.toString());
      const out = join(dir, `${machine}-rewrite.mig`);
      await rewriteStream(file, out);
      assert.deepEqual(readFileSync(out), readFileSync(file));
    });
  }

  test("a patched rewrite is loaded by a real QEMU destination and pmemsave shows the bytes", async () => {
    const src = streams.pc as string;
    const out = join(dir, "patched.mig");
    const a = new Uint8Array(PAGE).fill(0x5a);
    const b = new Uint8Array([0xde, 0xad, 0xbe, 0xef]);
    const zeroPage = 0x200000; // sent as a ZERO record
    const res = await rewriteStream(src, out, [
      { block: "pc.ram", offset: PATTERN_ADDR, data: a },
      { block: "pc.ram", offset: zeroPage + 16, data: b },
    ]);
    assert.deepEqual(res.pages.map((p) => p.how).sort(), ["page", "zero"]);
    assert.equal(statSync(out).size, statSync(src).size + PAGE - 1);
    const dst = await start("pc", "dst", ["-incoming", `exec:cat ${out}`]);
    try {
      assert.equal(await waitMigration(dst), "completed");
      const dump = join(dir, "pmem.bin");
      await dst.qmp.execute("pmemsave", { val: PATTERN_ADDR, size: 2 * PAGE, filename: dump });
      const mem = new Uint8Array(readFileSync(dump));
      assert.deepEqual(mem.subarray(0, PAGE), a);
      assert.deepEqual(mem.subarray(PAGE), pattern.subarray(PAGE));
      await dst.qmp.execute("pmemsave", { val: zeroPage, size: 32, filename: dump });
      const z = new Uint8Array(readFileSync(dump));
      assert.deepEqual([...z.subarray(16, 20)], [...b]);
      assert.ok(z.subarray(0, 16).every((v) => v === 0));
    } finally {
      await quit(dst);
    }
  });

  test("diff of two captures of a running guest lists exactly the pages that differ", async () => {
    const a = streams.runA as string;
    const b = streams.runB as string;
    const d = await diffStreams(a, b);
    const xa = join(dir, "run-a-ram");
    const xb = join(dir, "run-b-ram");
    const ra = await analyzeStream(a, { extractRamDir: xa });
    await analyzeStream(b, { extractRamDir: xb });
    let total = 0;
    for (const f of ra.files ?? []) {
      const bufA = readFileSync(f.path);
      const bufB = readFileSync(f.path.replace(xa, xb));
      const truth: { start: number; end: number }[] = [];
      for (let p = 0; p < bufA.length; p += PAGE) {
        if (bufA.subarray(p, p + PAGE).equals(bufB.subarray(p, p + PAGE))) continue;
        const last = truth[truth.length - 1];
        if (last !== undefined && last.end === p) last.end = p + PAGE;
        else truth.push({ start: p, end: p + PAGE });
      }
      const got = d.ram.find((x) => x.block === f.idstr);
      assert.deepEqual(got?.ranges ?? [], truth, f.idstr);
      total += truth.length;
    }
    assert.ok(total > 0, "the running guest changed no page");
    assert.ok(d.devices.length > 0);
  });

  test("truncations and byte flips of a real stream fail check cleanly", () => {
    const bytes = new Uint8Array(readFileSync(streams.pc as string));
    const eof = walkStream(new BytesSource(bytes)).eofOffset;
    const cuts = new Set<number>();
    for (let i = 0; i < 2048; i++) cuts.add(i);
    for (let i = 0; i < 400; i++) cuts.add(Math.floor((i * eof) / 400));
    for (const n of cuts) {
      if (n > eof) continue;
      const r = checkSource(new BytesSource(bytes.subarray(0, n)));
      assert.equal(r.ok, false, `truncation at ${n}`);
      if (!r.ok) assert.ok(isMigrationError(r.error));
    }
    let x = 7;
    let failed = 0;
    for (let i = 0; i < 600; i++) {
      x = (x * 1103515245 + 12345) >>> 0;
      const at = x % bytes.length;
      const copy = bytes.slice();
      copy[at] = (copy[at] as number) ^ (1 << (x >>> 29));
      const r = checkSource(new BytesSource(copy));
      if (!r.ok) {
        failed++;
        assert.ok(isMigrationError(r.error));
      }
    }
    assert.ok(failed > 0);
  });
});
