/**
 * The inspector on Ferry-generated streams: analyze, check, diff, rewrite, RAM extraction, streams without a
 * vmdesc, stdin spilling, and hostile input (every truncation and byte flips fail cleanly, never crash or hang).
 */
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, suite, test } from "node:test";
import { analyzeCommand } from "../../src/cli/inspect-analyze.js";
import { checkCommand } from "../../src/cli/inspect-check.js";
import { isMigrationError } from "../../src/errors.js";
import {
  analyzeStream,
  BytesSource,
  blockFileName,
  checkSource,
  checkStream,
  diffStreams,
  formatPythonJson,
  formatSummaryTable,
  openInput,
  parseSetRam,
  rewriteStream,
  walkStream,
} from "../../src/inspect/index.js";
import { RamBlock } from "../../src/ram/ram-block.js";
import { RamDevice } from "../../src/ram/ram-device.js";
import { GLOBAL_STATE_ID, globalStateHandlers } from "../../src/savevm/global-state.js";
import { Registry } from "../../src/savevm/registry.js";
import { StreamSaver } from "../../src/savevm/stream-saver.js";
import { ByteWriter, MemorySink } from "../../src/wire/byte-writer.js";
import { qemuTimerHandlers } from "../support/qemu-timer.js";

const PAGE = 4096;
const dir = mkdtempSync(join(tmpdir(), "ferry-inspect-"));
after(() => rmSync(dir, { recursive: true, force: true }));

interface Built {
  bytes: Uint8Array;
  ram: RamBlock;
}

/** A Ferry stream: timer, RAM (pc.ram 64 KiB + rom 8 KiB) with one iteration, globalstate. */
async function build(
  opts: { vmdesc?: boolean; ticks?: bigint; dirty?: (ram: RamBlock) => void; fill?: (ram: RamBlock) => void } = {},
): Promise<Built> {
  const ram = new RamBlock("pc.ram", 16 * PAGE);
  const rom = new RamBlock("/rom@etc/acpi/tables", 2 * PAGE);
  const page = new Uint8Array(PAGE);
  for (let i = 0; i < PAGE; i++) page[i] = (i * 7 + 3) & 0xff;
  ram.write(3 * PAGE, page);
  ram.write(4 * PAGE, page.subarray(0, 100));
  rom.write(PAGE, page.subarray(0, 10));
  opts.fill?.(ram);
  const registry = new Registry();
  registry.registerState(
    { idstr: "timer", version: 2 },
    qemuTimerHandlers({ ticks: opts.ticks ?? -5n, clock: 0x1234n }),
  );
  registry.registerIterative(new RamDevice([ram, rom]));
  registry.registerState(GLOBAL_STATE_ID, globalStateHandlers({ runState: () => "paused", onLoad: () => {} }));
  const sink = new MemorySink();
  const w = new ByteWriter(sink);
  const s = new StreamSaver(w, registry, { machineType: "ferry-test-1.0" }, { vmdesc: opts.vmdesc ?? true });
  s.writeHeader();
  await s.setup();
  await s.iterate(undefined, Number.POSITIVE_INFINITY);
  opts.dirty?.(ram);
  await s.complete();
  await w.flush();
  return { bytes: sink.bytes(), ram };
}

/** Drops null prototypes (the analyze objects have none) for deepEqual. */
function plain(v: unknown): unknown {
  return JSON.parse(JSON.stringify(v)) as unknown;
}

function file(name: string, bytes: Uint8Array): string {
  const p = join(dir, name);
  writeFileSync(p, bytes);
  return p;
}

/** Captures what a CLI command prints. */
async function cli(
  cmd: { run(a: string[]): Promise<number> },
  args: string[],
): Promise<{ code: number; out: string; err: string }> {
  let out = "";
  let err = "";
  const o = process.stdout.write.bind(process.stdout);
  const e = process.stderr.write.bind(process.stderr);
  process.stdout.write = ((s: string | Uint8Array) => {
    out += String(s);
    return true;
  }) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => {
    err += String(s);
    return true;
  }) as typeof process.stderr.write;
  try {
    const code = await cmd.run(args);
    return { code, out, err };
  } finally {
    process.stdout.write = o;
    process.stderr.write = e;
  }
}

void suite("inspect: Ferry streams", () => {
  test("analyzeStream() decodes every device with analyze-migration.py's keys and values", async () => {
    const { bytes } = await build();
    const r = await analyzeStream(bytes);
    const keys = Object.keys(r.state);
    assert.deepEqual(keys, ["ram (1)", "timer (0)", "globalstate (2)"]);
    assert.deepEqual(plain(r.state["timer (0)"]), {
      cpu_ticks_offset: "0xfffffffffffffffb (-5)",
      unused: "00 00 00 00 00 00 00 00",
      cpu_clock_offset: "0x0000000000001234",
    });
    assert.deepEqual(plain(r.state["ram (1)"]), {
      "section sizes": { "pc.ram": "0x0000000000010000", "/rom@etc/acpi/tables": "0x0000000000002000" },
    });
    const gs = r.state["globalstate (2)"] as Record<string, string>;
    assert.equal(gs.size, "0x00000007");
    assert.ok(gs.runstate?.startsWith("70 61 75 73 65 64 00"));
    // Python's json.dumps(indent=4) layout.
    assert.match(
      formatPythonJson(r.state),
      /^\{\n {4}"ram \(1\)": \{\n {8}"section sizes": \{\n {12}"pc.ram": "0x0000000000010000",\n/,
    );
    assert.match(formatSummaryTable(r.summary), /pc\.ram/);
  });

  test("check passes and rewrite with no edits is byte-identical", async () => {
    const { bytes } = await build();
    const res = await checkStream(bytes);
    assert.ok(res.ok, res.ok ? "" : res.error.toString());
    const out = join(dir, "same.mig");
    await rewriteStream(file("in.mig", bytes), out);
    assert.deepEqual(new Uint8Array(readFileSync(out)), bytes);
  });

  test("streams without a vmdesc: RAM and the built-in devices still decode", async () => {
    const { bytes } = await build({ vmdesc: false });
    const r = await analyzeStream(bytes);
    assert.equal(r.trailer, undefined);
    assert.equal((r.state["timer (0)"] as Record<string, string>).cpu_clock_offset, "0x0000000000001234");
    assert.ok(Object.hasOwn(r.state, "globalstate (2)"));
    const c = await checkStream(bytes);
    assert.ok(c.ok);
  });

  test("--extract-ram writes each block, sparse zero pages, final contents", async () => {
    const { bytes, ram } = await build({ dirty: (r) => r.write(5 * PAGE, new Uint8Array(PAGE).fill(9)) });
    const out = join(dir, "x");
    const r = await analyzeStream(bytes, { extractRamDir: out });
    assert.deepEqual(
      r.files?.map((f) => f.path),
      [join(out, "pc.ram"), join(out, "rom@etc/acpi/tables")],
    );
    const got = new Uint8Array(readFileSync(join(out, "pc.ram")));
    assert.deepEqual(got, ram.bytes.subarray(0, 16 * PAGE));
    assert.equal(statSync(join(out, "pc.ram")).size, 16 * PAGE);
    assert.equal(blockFileName("/../../etc/passwd"), "__/__/etc/passwd");
  });

  test("diff lists the changed device fields and exactly the changed pages", async () => {
    const a = await build({ ticks: 1n });
    const b = await build({
      ticks: 2n,
      fill: (r) => {
        r.write(7 * PAGE + 5, new Uint8Array([1]));
        r.write(8 * PAGE, new Uint8Array([1]));
        r.write(12 * PAGE, new Uint8Array([1]));
      },
    });
    const d = await diffStreams(a.bytes, b.bytes);
    assert.equal(d.same, false);
    assert.deepEqual(plain(d.devices), [
      {
        device: "timer (0)",
        status: "changed",
        fields: [{ path: "cpu_ticks_offset", a: "0x0000000000000001", b: "0x0000000000000002" }],
      },
    ]);
    assert.deepEqual(d.ram, [
      {
        block: "pc.ram",
        status: "changed",
        lengthA: 16 * PAGE,
        lengthB: 16 * PAGE,
        pages: 3,
        ranges: [
          { start: 7 * PAGE, end: 9 * PAGE },
          { start: 12 * PAGE, end: 13 * PAGE },
        ],
      },
    ]);
    assert.equal((await diffStreams(a.bytes, a.bytes)).same, true);
  });

  test("rewrite --set-ram patches the last PAGE record, turns a ZERO record into a PAGE, inserts unsent pages", async () => {
    const { bytes } = await build({ dirty: (r) => r.write(3 * PAGE, new Uint8Array([0xee])) });
    const input = file("patch-in.mig", bytes);
    const patch = new Uint8Array(PAGE + 16).fill(0xab);
    const out = join(dir, "patched.mig");
    const res = await rewriteStream(input, out, [
      { block: "pc.ram", offset: 3 * PAGE + 8, data: patch }, // pages 3 (sent twice) and 4
      { block: "pc.ram", offset: 10 * PAGE, data: new Uint8Array([1, 2, 3]) }, // a ZERO page
    ]);
    assert.deepEqual(res.pages.map((p) => p.how).sort(), ["page", "page", "zero"]);
    const c = await checkStream(out);
    assert.ok(c.ok, c.ok ? "" : c.error.toString());
    const x = join(dir, "patched-x");
    await analyzeStream(out, { extractRamDir: x });
    const ram = new Uint8Array(readFileSync(join(x, "pc.ram")));
    assert.equal(ram[3 * PAGE], 0xee);
    assert.equal(ram[3 * PAGE + 7], ((7 * 7 + 3) & 0xff) as number);
    assert.ok(ram.subarray(3 * PAGE + 8, 4 * PAGE + 24).every((v) => v === 0xab));
    assert.equal(ram[4 * PAGE + 24], ((24 * 7 + 3) & 0xff) as number);
    assert.deepEqual([...ram.subarray(10 * PAGE, 10 * PAGE + 4)], [1, 2, 3, 0]);
    assert.equal(statSync(out).size, bytes.length + PAGE - 1);
    assert.throws(() => parseSetRam("nocolon=f"), TypeError);
    assert.deepEqual(parseSetRam("a:b:0x10=f"), { block: "a:b", offset: 16, file: "f" });
  });

  test("rewrite --set-ram inserts a PAGE record for a page the stream never sent", async () => {
    const { bytes } = await build();
    // Drop the (CONTINUE) ZERO record of pc.ram page 10, so that page is never sent.
    let cut: [number, number] | undefined;
    walkStream(new BytesSource(bytes), {
      ram: {
        onPage(block, page, isPage, _d, _i, recordStart, dataOffset) {
          if (block.idstr === "pc.ram" && page === 10 && !isPage && ((bytes[recordStart + 7] as number) & 0x20) !== 0) {
            cut = [recordStart, dataOffset + 1];
          }
        },
      },
    });
    assert.ok(cut !== undefined);
    const holed = new Uint8Array(bytes.length - (cut[1] - cut[0]));
    holed.set(bytes.subarray(0, cut[0]));
    holed.set(bytes.subarray(cut[1]), cut[0]);
    const s = walkStream(new BytesSource(holed));
    assert.equal(s.blocks[0]?.lastKind[10], 0);
    const out = join(dir, "inserted.mig");
    const res = await rewriteStream(file("holed.mig", holed), out, [
      { block: "pc.ram", offset: 10 * PAGE + 1, data: new Uint8Array([7, 8]) },
    ]);
    assert.deepEqual(
      res.pages.map((p) => p.how),
      ["inserted"],
    );
    const c = await checkStream(out);
    assert.ok(c.ok, c.ok ? "" : c.error.toString());
    const x = join(dir, "inserted-x");
    await analyzeStream(out, { extractRamDir: x });
    const ram = new Uint8Array(readFileSync(join(x, "pc.ram")));
    assert.deepEqual([...ram.subarray(10 * PAGE, 10 * PAGE + 4)], [0, 7, 8, 0]);
  });

  test("a block list claiming far more RAM than the stream could hold fails LIMIT_EXCEEDED", async () => {
    const { bytes } = await build();
    const s = walkStream(new BytesSource(bytes));
    const start = s.sections.find((x) => x.idstr === "ram" && x.type === "start");
    assert.ok(start !== undefined);
    const copy = bytes.slice();
    copy[start.bodyOffset] = 0x7f; // total RAM ~ 2^62 bytes
    const r = checkSource(new BytesSource(copy));
    assert.equal(r.ok, false);
    if (!r.ok) assert.equal(r.error.code, "LIMIT_EXCEEDED");
  });

  test("stdin input is spilled to a temporary file and says so", async () => {
    const { bytes } = await build();
    const notes: string[] = [];
    async function* chunks(): AsyncIterable<Uint8Array> {
      for (let i = 0; i < bytes.length; i += 1000) yield bytes.subarray(i, i + 1000);
    }
    const inp = await openInput("-", { stdin: chunks(), onNote: (m) => notes.push(m) });
    try {
      assert.equal(inp.spilled, true);
      assert.equal(inp.source.size, bytes.length);
      assert.ok(checkSource(inp.source).ok);
    } finally {
      inp.close();
    }
    assert.match(notes[0] ?? "", /spilled/);
    await assert.rejects(openInput("-", { stdin: chunks(), maxSpillBytes: 100 }), (e) =>
      isMigrationError(e, "LIMIT_EXCEEDED"),
    );
  });

  test("CLI: analyze --help, --dump desc, --format table; check OK and FAILED", async () => {
    const { bytes } = await build();
    const p = file("cli.mig", bytes);
    assert.match((await cli(analyzeCommand, ["--help"])).out, /Usage: ferry analyze/);
    const desc = await cli(analyzeCommand, ["--dump", "desc", p]);
    assert.equal(desc.code, 0);
    assert.deepEqual(Object.keys(JSON.parse(desc.out) as object), ["page_size", "devices"]);
    assert.match((await cli(analyzeCommand, ["--format", "table", p])).out, /globalstate/);
    const ok = await cli(checkCommand, [p]);
    assert.equal(ok.code, 0);
    assert.match(ok.out, /^OK: /);
    const bad = file("cli-bad.mig", bytes.subarray(0, bytes.length - 300));
    const failed = await cli(checkCommand, [bad]);
    assert.equal(failed.code, 1);
    assert.match(failed.out, /^FAILED: \[[A-Z_]+\]/);
    const j = await cli(checkCommand, ["--json", bad]);
    assert.equal((JSON.parse(j.out) as { ok: boolean }).ok, false);
  });
});

void suite("inspect: hostile input", () => {
  test("every truncation fails check with a MigrationError (never a crash or hang)", async () => {
    const { bytes } = await build();
    for (let n = 0; n < bytes.length; n++) {
      const r = checkSource(new BytesSource(bytes.subarray(0, n)));
      if (r.ok) {
        // Cutting exactly the whole vmdesc trailer leaves a valid stream without one.
        continue;
      }
      assert.ok(isMigrationError(r.error), `truncation at ${n}`);
      assert.notEqual(r.error.code, undefined);
    }
    // Cutting inside the stream body always fails.
    const eof = walkStream(new BytesSource(bytes)).eofOffset;
    for (let n = 0; n <= eof; n += 97) assert.equal(checkSource(new BytesSource(bytes.subarray(0, n))).ok, false);
  });

  test("byte flips give ok or a MigrationError, and hostile vmdesc sizes are capped", async () => {
    const { bytes } = await build();
    let failed = 0;
    let x = 12345;
    for (let i = 0; i < 3000; i++) {
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
    // A vmdesc claiming a huge field fails with TRUNCATED/LIMIT_EXCEEDED, not an allocation.
    const text = Buffer.from(bytes).toString("latin1");
    const i = text.lastIndexOf('"size": 100');
    const hostile = new Uint8Array(Buffer.from(`${text.slice(0, i)}"size": 999999999${text.slice(i + 11)}`, "latin1"));
    const patched = hostile.slice();
    const dv = new DataView(patched.buffer);
    const trailerAt = walkStream(new BytesSource(bytes)).trailer?.offset ?? 0;
    dv.setUint32(trailerAt + 1, patched.length - trailerAt - 5);
    const r = checkSource(new BytesSource(patched));
    assert.equal(r.ok, false);
    if (!r.ok) assert.ok(["TRUNCATED", "LIMIT_EXCEEDED"].includes(r.error.code), r.error.toString());
  });
});
