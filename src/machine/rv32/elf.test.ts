/** The ELF32 loader and the machine state's validation and word layout. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { suite, test } from "node:test";
import { isMigrationError } from "../../errors.js";
import { parseElf } from "./elf.js";
import { Machine } from "./machine.js";
import { RAM_BASE } from "./memory-map.js";
import {
  checkMachineState,
  decodeMachineState,
  encodeMachineState,
  MACHINE_STATE_WORDS,
  type MachineState,
} from "./state.js";

const sha = new Uint8Array(readFileSync(new URL("../../../guests/sha.elf", import.meta.url)));

function patched(edit: (dv: DataView) => void, bytes = sha): Uint8Array {
  const b = bytes.slice();
  edit(new DataView(b.buffer));
  return b;
}

suite("parseElf", () => {
  test("parses a guest: entry and PT_LOAD segments", () => {
    const img = parseElf(sha);
    assert.equal(img.entry, RAM_BASE);
    assert.ok(img.segments.length >= 1);
    assert.equal(img.segments[0]?.addr, RAM_BASE);
    assert.ok((img.segments[0]?.memSize ?? 0) >= (img.segments[0]?.data.length ?? 0));
  });

  const phoff = new DataView(sha.buffer, sha.byteOffset).getUint32(28, true);
  const bad: [string, Uint8Array, string, RegExp][] = [
    ["an empty file", new Uint8Array(0), "BAD_STREAM", /shorter than an ELF32 header/],
    ["bad magic", patched((d) => d.setUint8(0, 0)), "BAD_STREAM", /bad magic/],
    ["a 64-bit ELF", patched((d) => d.setUint8(4, 2)), "BAD_STREAM", /EI_CLASS is 2/],
    ["a big-endian ELF", patched((d) => d.setUint8(5, 2)), "BAD_STREAM", /EI_DATA is 2/],
    ["another machine", patched((d) => d.setUint16(18, 62, true)), "BAD_STREAM", /e_machine is 62/],
    ["a shared object", patched((d) => d.setUint16(16, 3, true)), "BAD_STREAM", /e_type is 3/],
    ["compressed instructions", patched((d) => d.setUint32(36, 1, true)), "BAD_STREAM", /EF_RISCV_RVC/],
    [
      "program headers past the end",
      patched((d) => d.setUint32(28, sha.length - 8, true)),
      "BAD_STREAM",
      /past the end/,
    ],
    ["too many program headers", patched((d) => d.setUint16(44, 1000, true)), "BAD_STREAM", /more than 64/],
    ["segment data past the end", patched((d) => d.setUint32(phoff + 16, 1 << 30, true)), "BAD_STREAM", /runs past/],
    ["filesz > memsz", patched((d) => d.setUint32(phoff + 20, 1, true)), "BAD_STREAM", /larger than p_memsz/],
    ["a truncated file", sha.subarray(0, 100), "BAD_STREAM", /past the end/],
  ];
  for (const [name, file, code, msg] of bad) {
    test(`rejects ${name}`, () => {
      assert.throws(
        () => parseElf(file),
        (e: unknown) => isMigrationError(e, code as "BAD_STREAM") && msg.test(e.message) && e.path?.[0] === "elf",
      );
    });
  }

  test("Machine.loadElf rejects a segment outside RAM with FIELD_OUT_OF_RANGE", () => {
    const moved = patched((d) => d.setUint32(phoff + 12, 0x1000, true));
    const m = new Machine({ ram: new Uint8Array(new SharedArrayBuffer(1 << 20)) });
    assert.throws(
      () => m.loadElf(moved),
      (e: unknown) => isMigrationError(e, "FIELD_OUT_OF_RANGE") && /outside RAM/.test(e.message),
    );
  });

  test("Machine.loadElf places the device tree where QEMU virt does and passes a0/a1", () => {
    const m = new Machine();
    const boot = m.loadElf(sha);
    assert.equal(boot.fdtAddr, 0x87e00000);
    const s = m.getState();
    assert.equal(s.cpu.pc, RAM_BASE);
    assert.equal(s.cpu.x[10], 0);
    assert.equal(s.cpu.x[11], 0x87e00000);
    assert.equal(new DataView(m.ram.buffer).getUint32(0x7e00000), 0xd00dfeed);
  });
});

suite("machine state", () => {
  function fresh(): MachineState {
    const m = new Machine({ ram: new Uint8Array(new SharedArrayBuffer(1 << 20)) });
    m.loadElf(sha);
    m.run(5000);
    return m.getState();
  }

  test("survives the shared word layout unchanged", () => {
    const s = fresh();
    const w = new Int32Array(MACHINE_STATE_WORDS);
    encodeMachineState(s, w);
    assert.deepEqual(decodeMachineState(w), s);
  });

  const broken: [string, (s: MachineState) => void, RegExp][] = [
    ["a misaligned pc", (s) => (s.cpu.pc += 2), /aligned pc/],
    ["x0 != 0", (s) => (s.cpu.x[0] = 1), /x0 must be 0/],
    ["31 registers", (s) => s.cpu.x.pop(), /32 registers/],
    ["a negative register", (s) => (s.cpu.x[5] = -1), /uint32/],
    ["mtvec mode 2", (s) => (s.cpu.mtvec = 2), /mode 0 or 1/],
    ["unknown mstatus bits", (s) => (s.cpu.mstatus |= 1 << 17), /MIE, MPIE/],
    ["a short RX FIFO", (s) => (s.uart.rxFifo = new Uint8Array(8)), /Uint8Array of 16/],
    ["rxCount 17", (s) => (s.uart.rxCount = 17), /\[0, 16\]/],
    ["lcr 256", (s) => (s.uart.lcr = 256), /\[0, 255\]/],
    ["cycles not an integer", (s) => (s.cpu.cycles = 1.5), /integer/],
  ];
  for (const [name, edit, msg] of broken) {
    test(`checkMachineState rejects ${name}`, () => {
      const s = fresh();
      edit(s);
      assert.throws(
        () => checkMachineState(s),
        (e: unknown) => isMigrationError(e, "FIELD_OUT_OF_RANGE") && msg.test(e.message),
      );
    });
  }
});
