/**
 * The committed guests (guests/*.elf) on ferry-rv32: expected output, the same output as qemu-system-riscv32 on
 * the same ELF (when installed), and byte-for-byte reproducible builds (when the toolchain is installed).
 */
import assert from "node:assert/strict";
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { suite, test } from "node:test";
import { fileURLToPath } from "node:url";
import { skipUnless } from "../../../test/support/system.js";
import { checkDirtyInvariant } from "./dirty-invariant.js";
import { Machine, RunExit } from "./machine.js";

const GUESTS = fileURLToPath(new URL("../../../guests/", import.meta.url));
const elf = (name: string): Uint8Array => new Uint8Array(readFileSync(join(GUESTS, `${name}.elf`)));

/** Runs a guest on ferry-rv32 until it powers off (or `maxSteps`), returning its UART output. */
function runFerry(
  name: string,
  options: { input?: string; waitFor?: string; maxSteps?: number; ramMiB?: number } = {},
) {
  const bytes: number[] = [];
  const ram = new Uint8Array(new SharedArrayBuffer((options.ramMiB ?? 128) << 20));
  const m = new Machine({ ram, onOutput: (b) => bytes.push(b) });
  m.loadElf(elf(name));
  let fed = options.input === undefined;
  let steps = 0;
  const max = options.maxSteps ?? 200_000_000;
  let exit: RunExit = RunExit.Budget;
  while (steps < max) {
    // As a person at a terminal would: type once the guest has printed `waitFor` (its FIFO reset drops earlier input).
    if (
      !fed &&
      Buffer.from(bytes)
        .toString("latin1")
        .includes(options.waitFor ?? "")
    ) {
      m.pushInput(options.input ?? "");
      fed = true;
    }
    exit = m.run(Math.min(fed ? 1_000_000 : 10_000, max - steps));
    steps += m.lastRunSteps;
    if (exit !== RunExit.Budget) break;
  }
  return { out: Buffer.from(bytes).toString("latin1"), m, exit, steps };
}

/**
 * Runs a guest on qemu-system-riscv32 -M virt -bios none -kernel, feeding `input` once `waitFor` has appeared,
 * and killing QEMU once `until` has appeared (or when it exits by itself).
 */
async function runQemu(
  name: string,
  options: { input?: string; waitFor?: string; until?: string; timeoutMs?: number } = {},
): Promise<string> {
  const qemu: ChildProcess = spawn(
    "qemu-system-riscv32",
    ["-M", "virt", "-bios", "none", "-m", "128M", "-kernel", join(GUESTS, `${name}.elf`), "-nographic"],
    { stdio: ["pipe", "pipe", "inherit"] },
  );
  let out = "";
  let fed = false;
  return await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => {
      qemu.kill("SIGKILL");
      reject(new Error(`QEMU timed out; output so far: ${JSON.stringify(out)}`));
    }, options.timeoutMs ?? 30_000);
    qemu.stdout?.on("data", (d: Buffer) => {
      out += d.toString("latin1");
      if (!fed && options.input !== undefined && out.includes(options.waitFor ?? "")) {
        fed = true;
        qemu.stdin?.write(options.input);
      }
      if (options.until !== undefined && out.includes(options.until)) qemu.kill("SIGKILL");
    });
    qemu.on("error", reject);
    qemu.on("exit", () => {
      clearTimeout(timer);
      resolve(out);
    });
  });
}

/** The sha guest's expected output, computed with node:crypto. */
function expectedSha(rounds: number, size: number): string {
  const buf = Buffer.alloc(size);
  let s = 0x12345678;
  for (let i = 0; i < size; i += 4) {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    buf.writeUInt32LE(s, i);
  }
  let out = `sha256 ${rounds} x ${size} bytes\n`;
  for (let r = 0; r < rounds; r++) {
    const d = createHash("sha256").update(buf).digest();
    out += `round ${r}: ${d.toString("hex")}\n`;
    d.copy(buf, 0);
  }
  return `${out}done\n`;
}

const TICKER = `ticker: 10 ticks\n${Array.from({ length: 10 }, (_, i) => `tick ${i + 1}\n`).join("")}done\n`;

suite("guests on ferry-rv32", () => {
  test("sha prints the SHA-256 digests node:crypto computes, then powers off with pass", () => {
    const r = runFerry("sha");
    assert.equal(r.exit, RunExit.PowerOff);
    assert.equal(r.m.exitCode, 0);
    assert.equal(r.out, expectedSha(8, 16384));
  });

  test("ticker counts 10 timer interrupts and powers off", () => {
    const r = runFerry("ticker");
    assert.equal(r.exit, RunExit.PowerOff);
    assert.equal(r.out, TICKER);
  });

  test("exit powers off with pass at once", () => {
    const r = runFerry("exit");
    assert.equal(r.exit, RunExit.PowerOff);
    assert.equal(r.m.exitCode, 0);
    assert.ok(r.steps < 1000);
  });

  test("echo echoes its input and quits on ^D", () => {
    const r = runFerry("echo", { input: "hello, ferry\r\n\x04", waitFor: "quits\n" });
    assert.equal(r.exit, RunExit.PowerOff);
    assert.equal(r.out, "echo: type, ^D quits\nhello, ferry\r\n\nbye\n");
  });

  test("dirty writes A then B per pass, reads the RAM size from the device tree, and keeps the invariant", () => {
    // 8 MiB of RAM: the region is 1 MiB .. 8 MiB (1792 pages), so a pass is quick.
    const r = runFerry("dirty", { maxSteps: 100_000, ramMiB: 8 });
    assert.match(r.out, /^AB+$/);
    const passes = r.out.length - 1;
    for (const steps of [0, 1, 7, 999, 12_345]) {
      r.m.run(steps);
      const inv = checkDirtyInvariant(r.m.ram, 1 << 20, 8 << 20);
      assert.equal(inv.errors, 0, JSON.stringify(inv));
    }
    assert.ok(passes >= 5, `only ${passes} passes`);
    // Every page in the region is dirty; pages outside the image, stack, region and device tree are not.
    assert.equal(r.m.dirty[(1 << 20) >>> 12], 1);
    assert.equal(r.m.dirty[(8 << 20) / 4096 - 1], 1);
    assert.equal(r.m.dirty[(512 << 10) >>> 12], 0);
  });
});

suite("guests on qemu-system-riscv32 give the same output", () => {
  const skip = skipUnless("qemu-system-riscv32", "qemu-system-misc");

  test("sha", { skip }, async () => {
    assert.equal(await runQemu("sha"), runFerry("sha").out);
  });

  test("ticker", { skip }, async () => {
    assert.equal(await runQemu("ticker"), TICKER);
  });

  test("echo", { skip }, async () => {
    const input = "hello, ferry\r\n\x04";
    const q = await runQemu("echo", { input, waitFor: "quits\n" });
    assert.equal(q, runFerry("echo", { input, waitFor: "quits\n" }).out);
  });

  test("dirty (the first A and the first B)", { skip }, async () => {
    const q = await runQemu("dirty", { until: "B" });
    assert.equal(q.slice(0, 2), "AB");
    assert.equal(runFerry("dirty", { maxSteps: 1_000_000 }).out.slice(0, 2), "AB");
  });
});

suite("guest builds", () => {
  const skip = skipUnless("riscv64-unknown-elf-gcc", "gcc-riscv64-unknown-elf");

  test("rebuilding guests/ reproduces the committed ELFs byte for byte", { skip }, () => {
    const out = mkdtempSync(join(tmpdir(), "ferry-guests-"));
    try {
      execFileSync("sh", [join(GUESTS, "build.sh"), out], { stdio: ["ignore", "ignore", "inherit"] });
      const built = readdirSync(out).filter((f) => f.endsWith(".elf"));
      const committed = readdirSync(GUESTS).filter((f) => f.endsWith(".elf"));
      assert.deepEqual(built.sort(), committed.sort());
      for (const f of built) {
        assert.ok(readFileSync(join(out, f)).equals(readFileSync(join(GUESTS, f))), `${f} differs from guests/${f}`);
      }
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});
