/**
 * ISA conformance: per-opcode tables with edge cases, traps, CSRs, interrupts and devices, on programs encoded
 * with a small TS encoder (no toolchain needed).
 */
import assert from "node:assert/strict";
import { suite, test } from "node:test";
import { asm } from "./_test-asm.js";
import { Csr } from "./csr.js";
import { Machine, RunExit } from "./machine.js";
import { CLINT_BASE, FINISHER_BASE, RAM_BASE, UART_BASE } from "./memory-map.js";

const RAM_SIZE = 1 << 20;
/** Where the trap handler (an endless `j .`) sits. */
const TRAP = RAM_BASE + 0x8000;
/** A data area. */
const DATA = RAM_BASE + 0x10000;

interface Run {
  readonly m: Machine;
  readonly out: number[];
  reg(n: number): number;
}

/** Loads `prog` at RAM_BASE with mtvec = TRAP, applies `setup`, runs `steps` steps. */
function run(prog: readonly number[], steps: number, setup?: (m: Machine) => void): Run {
  const out: number[] = [];
  const ram = new Uint8Array(new SharedArrayBuffer(RAM_SIZE));
  const m = new Machine({ ram, onOutput: (b) => out.push(b) });
  const dv = new DataView(ram.buffer);
  for (const [k, w] of prog.entries()) dv.setUint32(k * 4, w, true);
  dv.setUint32(TRAP - RAM_BASE, asm.jal(0, 0), true);
  m.cpu.mtvec = TRAP | 0;
  setup?.(m);
  m.run(steps);
  return { m, out, reg: (n) => (m.cpu.x[n] as number) >>> 0 };
}

function setRegs(m: Machine, regs: Record<number, number>): void {
  for (const [k, v] of Object.entries(regs)) m.cpu.x[Number(k)] = v;
}

const u = (v: number): number => v >>> 0;
const INT_MIN = 0x8000_0000;

suite("rv32 ISA: register-register and immediate ALU", () => {
  // [name, instruction, x1, x2, expected x3]
  const cases: [string, number, number, number, number][] = [
    ["add wraps on overflow", asm.add(3, 1, 2), 0x7fffffff, 1, INT_MIN],
    ["add negative", asm.add(3, 1, 2), -5, 3, u(-2)],
    ["sub wraps below zero", asm.sub(3, 1, 2), 0, 1, 0xffffffff],
    ["sub INT_MIN - 1", asm.sub(3, 1, 2), INT_MIN, 1, 0x7fffffff],
    ["sll uses the low 5 bits of rs2", asm.sll(3, 1, 2), 1, 33, 2],
    ["sll to the sign bit", asm.sll(3, 1, 2), 1, 31, INT_MIN],
    ["slt signed", asm.slt(3, 1, 2), -1, 1, 1],
    ["slt equal", asm.slt(3, 1, 2), 5, 5, 0],
    ["sltu unsigned", asm.sltu(3, 1, 2), -1, 1, 0],
    ["sltu 0 < 1", asm.sltu(3, 1, 2), 0, 1, 1],
    ["xor", asm.xor(3, 1, 2), 0xff00ff00, 0x0ff00ff0, 0xf0f0f0f0],
    ["srl logical", asm.srl(3, 1, 2), INT_MIN, 31, 1],
    ["sra arithmetic", asm.sra(3, 1, 2), INT_MIN, 31, 0xffffffff],
    ["sra by 0", asm.sra(3, 1, 2), -8, 32, u(-8)],
    ["or", asm.or(3, 1, 2), 0xf0, 0x0f, 0xff],
    ["and", asm.and(3, 1, 2), 0xf0f0, 0xff00, 0xf000],
    ["mul low word", asm.mul(3, 1, 2), 0x7fffffff, 2, 0xfffffffe],
    ["mul negative", asm.mul(3, 1, 2), -3, 7, u(-21)],
    ["mulh -1 * -1", asm.mulh(3, 1, 2), -1, -1, 0],
    ["mulh INT_MIN * INT_MIN", asm.mulh(3, 1, 2), INT_MIN, INT_MIN, 0x40000000],
    ["mulh -1 * 1", asm.mulh(3, 1, 2), -1, 1, 0xffffffff],
    ["mulhsu -1 * 0xffffffff", asm.mulhsu(3, 1, 2), -1, -1, 0xffffffff],
    ["mulhsu 2 * 0xffffffff", asm.mulhsu(3, 1, 2), 2, -1, 1],
    ["mulhu max * max", asm.mulhu(3, 1, 2), -1, -1, 0xfffffffe],
    ["div truncates toward zero", asm.div(3, 1, 2), 7, -2, u(-3)],
    ["div -7 / 2", asm.div(3, 1, 2), -7, 2, u(-3)],
    ["div by zero is -1", asm.div(3, 1, 2), 42, 0, 0xffffffff],
    ["div INT_MIN / -1 overflows to INT_MIN", asm.div(3, 1, 2), INT_MIN, -1, INT_MIN],
    ["divu by zero is all ones", asm.divu(3, 1, 2), 42, 0, 0xffffffff],
    ["divu unsigned", asm.divu(3, 1, 2), -2, 2, 0x7fffffff],
    ["rem sign follows dividend", asm.rem(3, 1, 2), -7, 2, u(-1)],
    ["rem 7 % -2", asm.rem(3, 1, 2), 7, -2, 1],
    ["rem by zero is the dividend", asm.rem(3, 1, 2), -42, 0, u(-42)],
    ["rem INT_MIN % -1 is 0", asm.rem(3, 1, 2), INT_MIN, -1, 0],
    ["remu by zero is the dividend", asm.remu(3, 1, 2), -1, 0, 0xffffffff],
    ["remu unsigned", asm.remu(3, 1, 2), -1, 10, 5],
    ["addi negative immediate", asm.addi(3, 1, -1), 0, 0, 0xffffffff],
    ["addi max immediate", asm.addi(3, 1, 2047), 1, 0, 2048],
    ["slti signed", asm.slti(3, 1, -1), -2, 0, 1],
    ["sltiu sign-extended immediate compares unsigned", asm.sltiu(3, 1, -1), 5, 0, 1],
    ["sltiu 0 < 1 (seqz idiom)", asm.sltiu(3, 1, 1), 0, 0, 1],
    ["xori -1 is not", asm.xori(3, 1, -1), 0x12345678, 0, 0xedcba987],
    ["ori", asm.ori(3, 1, 0x0f0), 0x00f, 0, 0x0ff],
    ["andi sign-extends", asm.andi(3, 1, -16), 0xffffffff, 0, 0xfffffff0],
    ["slli", asm.slli(3, 1, 31), 1, 0, INT_MIN],
    ["srli", asm.srli(3, 1, 4), 0xf0000000, 0, 0x0f000000],
    ["srai", asm.srai(3, 1, 4), 0xf0000000, 0, 0xff000000],
    ["writes to x0 are discarded", asm.addi(0, 1, 5), 1, 0, 0],
  ];
  for (const [name, inst, a, b, want] of cases) {
    test(name, () => {
      const r = run([inst, asm.add(3, 0, 0) === inst ? 0 : asm.add(4, 0, 0)], 1, (m) => setRegs(m, { 1: a, 2: b }));
      assert.equal(r.reg(3), want);
      assert.equal(r.reg(0), 0);
      assert.equal(r.m.cpu.pc >>> 0, RAM_BASE + 4);
    });
  }

  test("M extension agrees with BigInt on random operands", () => {
    let seed = 0x9e3779b9;
    const rnd = (): number => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return seed | 0;
    };
    const big = (v: number, signed: boolean): bigint => (signed ? BigInt(v | 0) : BigInt(v >>> 0));
    const hi = (p: bigint): number => Number(BigInt.asUintN(32, p >> 32n));
    const prog = [asm.mulh(3, 1, 2), asm.mulhsu(4, 1, 2), asm.mulhu(5, 1, 2), asm.div(6, 1, 2), asm.rem(7, 1, 2)];
    for (let k = 0; k < 500; k++) {
      const a = k % 50 === 0 ? INT_MIN | 0 : rnd();
      const b = k % 7 === 0 ? (rnd() & 0xff) - 128 : rnd();
      const r = run(prog, prog.length, (m) => setRegs(m, { 1: a, 2: b }));
      assert.equal(r.reg(3), hi(big(a, true) * big(b, true)), `mulh ${a} ${b}`);
      assert.equal(r.reg(4), hi(big(a, true) * big(b, false)), `mulhsu ${a} ${b}`);
      assert.equal(r.reg(5), hi(big(a, false) * big(b, false)), `mulhu ${a} ${b}`);
      if (b !== 0 && !(a === (INT_MIN | 0) && b === -1)) {
        assert.equal(r.reg(6), u(Number(big(a, true) / big(b, true))), `div ${a} ${b}`);
        assert.equal(r.reg(7), u(Number(big(a, true) % big(b, true))), `rem ${a} ${b}`);
      }
    }
  });

  test("an OP-IMM shift with a non-zero funct7 is illegal", () => {
    const bad = asm.slli(3, 1, 1) | (1 << 25);
    const r = run([bad], 1);
    assert.equal(r.m.cpu.mcause, 2);
    assert.equal(r.m.cpu.mtval >>> 0, bad >>> 0);
  });
});

suite("rv32 ISA: upper immediates, jumps and branches", () => {
  test("lui and auipc", () => {
    const r = run([asm.lui(1, 0xfffff), asm.auipc(2, 1), asm.auipc(3, 0)], 3);
    assert.equal(r.reg(1), 0xfffff000);
    assert.equal(r.reg(2), RAM_BASE + 4 + 0x1000);
    assert.equal(r.reg(3), RAM_BASE + 8);
  });

  test("jal links pc+4 and jumps; jalr clears bit 0 and links after reading rs1", () => {
    const prog = [asm.jal(1, 12), 0, 0, asm.addi(5, 0, 9), asm.jalr(2, 2, 1)];
    const r = run(prog, 3, (m) => setRegs(m, { 2: RAM_BASE + 0x40 }));
    assert.equal(r.reg(1), RAM_BASE + 4);
    assert.equal(r.reg(5), 9);
    assert.equal(r.reg(2), RAM_BASE + 20);
    assert.equal(r.m.cpu.pc >>> 0, RAM_BASE + 0x40);
  });

  const branches: [string, number, number, boolean][] = [
    ["beq", asm.beq(1, 2, 8), 0, true],
    ["bne", asm.bne(1, 2, 8), 0, false],
    ["blt signed -1 < 1", asm.blt(1, 3, 8), 0, true],
    ["bge signed 1 >= -1", asm.bge(3, 1, 8), 0, true],
    ["bltu -1 < 1 is false", asm.bltu(1, 3, 8), 0, false],
    ["bgeu 0xffffffff >= 1", asm.bgeu(1, 3, 8), 0, true],
  ];
  for (const [name, inst, , taken] of branches) {
    test(`${name} is ${taken ? "taken" : "not taken"}`, () => {
      const r = run([inst], 1, (m) => setRegs(m, { 1: -1, 2: -1, 3: 1 }));
      assert.equal(r.m.cpu.pc >>> 0, RAM_BASE + (taken ? 8 : 4));
    });
  }

  test("a backward branch loops", () => {
    // x1 = 5; loop: x1 -= 1; x2 += 1; bne x1, x0, loop
    const prog = [asm.addi(1, 0, 5), asm.addi(1, 1, -1), asm.addi(2, 2, 1), asm.bne(1, 0, -8), asm.addi(3, 0, 1)];
    const r = run(prog, 1 + 15 + 1);
    assert.equal(r.reg(2), 5);
    assert.equal(r.reg(3), 1);
  });

  test("a taken branch or jump to a 2-byte aligned target raises instruction-address-misaligned", () => {
    for (const inst of [asm.beq(0, 0, 6), asm.jal(1, 6)]) {
      const r = run([inst], 1);
      assert.equal(r.m.cpu.mcause, 0);
      assert.equal(r.m.cpu.mtval >>> 0, RAM_BASE + 6);
      assert.equal(r.m.cpu.mepc >>> 0, RAM_BASE);
      assert.equal(r.reg(1), 0, "jal must not link when it traps");
    }
    const r = run([asm.jalr(1, 2, 2)], 1, (m) => setRegs(m, { 2: RAM_BASE + 0x100 }));
    assert.equal(r.m.cpu.mcause, 0);
    assert.equal(r.m.cpu.mtval >>> 0, RAM_BASE + 0x102);
    assert.equal(r.m.cpu.pc >>> 0, TRAP);
  });

  test("a not-taken branch to a misaligned target does not trap", () => {
    const r = run([asm.bne(0, 0, 6)], 1);
    assert.equal(r.m.cpu.pc >>> 0, RAM_BASE + 4);
  });

  test("fetching outside RAM raises instruction access fault", () => {
    const r = run([asm.jalr(0, 1, 0)], 2, (m) => setRegs(m, { 1: 0x1000 }));
    assert.equal(r.m.cpu.mcause, 1);
    assert.equal(r.m.cpu.mtval >>> 0, 0x1000);
    assert.equal(r.m.cpu.mepc >>> 0, 0x1000);
  });

  test("fence and fence.i are no-ops", () => {
    const r = run([asm.fence(), asm.fenceI(), asm.addi(1, 0, 1)], 3);
    assert.equal(r.reg(1), 1);
  });
});

suite("rv32 ISA: loads and stores", () => {
  const setup = (m: Machine): void => {
    m.ram.set([0x80, 0x81, 0x82, 0xf3, 0x44, 0x55, 0x66, 0x77], DATA - RAM_BASE);
    setRegs(m, { 1: DATA });
  };
  const loads: [string, number, number][] = [
    ["lb sign-extends", asm.lb(3, 1, 0), 0xffffff80],
    ["lbu zero-extends", asm.lbu(3, 1, 0), 0x80],
    ["lh sign-extends", asm.lh(3, 1, 0), 0xffff8180],
    ["lhu zero-extends", asm.lhu(3, 1, 0), 0x8180],
    ["lw", asm.lw(3, 1, 0), 0xf3828180],
    ["lw with offset", asm.lw(3, 1, 4), 0x77665544],
    ["misaligned lw is split, not trapped (as QEMU)", asm.lw(3, 1, 1), 0x44f38281],
    ["misaligned lh", asm.lh(3, 1, 3), 0x000044f3],
    ["negative offset", asm.lbu(3, 1, -1), 0],
  ];
  for (const [name, inst, want] of loads) {
    test(name, () => {
      const r = run([inst], 1, setup);
      assert.equal(r.reg(3), want);
      assert.equal(r.m.cpu.pc >>> 0, RAM_BASE + 4);
    });
  }

  test("stores of each width, and a misaligned store, land little-endian", () => {
    const prog = [asm.sw(2, 1, 0), asm.sh(2, 1, 8), asm.sb(2, 1, 12), asm.sw(2, 1, 17)];
    const r = run(prog, 4, (m) => setRegs(m, { 1: DATA, 2: 0x11223344 }));
    const at = DATA - RAM_BASE;
    assert.deepEqual(
      [...r.m.ram.subarray(at, at + 21)],
      [0x44, 0x33, 0x22, 0x11, 0, 0, 0, 0, 0x44, 0x33, 0, 0, 0x44, 0, 0, 0, 0, 0x44, 0x33, 0x22, 0x11],
    );
  });

  test("a store marks its 4 KiB page dirty, and only with tracking on", () => {
    const prog = [asm.sw(2, 1, 0), asm.sb(2, 4, 0), asm.sw(2, 5, -2)];
    const regs = { 1: DATA, 2: 1, 4: DATA + 0x1000, 5: DATA + 0x3000 };
    const r = run(prog, 3, (m) => setRegs(m, regs));
    const p = (DATA - RAM_BASE) >>> 12;
    assert.deepEqual([...r.m.dirty.subarray(p - 1, p + 5)], [0, 1, 1, 1, 1, 0]);
    const off = run(prog, 3, (m) => {
      m.trackDirty = false;
      setRegs(m, regs);
    });
    assert.equal(
      off.m.dirty.reduce((a, b) => a + b, 0),
      0,
    );
    assert.equal(off.m.ram[DATA - RAM_BASE], 1);
  });

  const faults: [string, number, number, number][] = [
    ["load from an unmapped address", asm.lw(3, 1, 0), 0x0020_0000, 5],
    ["load past the end of RAM", asm.lw(3, 1, 0), RAM_BASE + RAM_SIZE, 5],
    ["store to an unmapped address", asm.sw(3, 1, 0), 0x0020_0000, 7],
    ["store past the end of RAM", asm.sb(3, 1, 0), RAM_BASE + RAM_SIZE, 7],
    ["byte load from the CLINT (32-bit only)", asm.lb(3, 1, 0), CLINT_BASE + 0x4000, 5],
    ["misaligned load straddling the end of RAM", asm.lw(3, 1, 0), RAM_BASE + RAM_SIZE - 2, 5],
  ];
  for (const [name, inst, addr, cause] of faults) {
    test(`${name} raises cause ${cause} with mtval = address`, () => {
      const r = run([inst], 1, (m) => setRegs(m, { 1: addr, 3: 0x55 }));
      assert.equal(r.m.cpu.mcause, cause);
      assert.equal(r.m.cpu.mtval >>> 0, addr >>> 0);
      assert.equal(r.m.cpu.mepc >>> 0, RAM_BASE);
      assert.equal(r.m.cpu.pc >>> 0, TRAP);
      assert.equal(r.m.cpu.instret, 0, "a trapping instruction does not retire");
    });
  }

  test("a faulting misaligned store writes nothing", () => {
    const r = run([asm.sw(2, 1, 0)], 1, (m) => setRegs(m, { 1: RAM_BASE + RAM_SIZE - 2, 2: -1 }));
    assert.equal(r.m.cpu.mcause, 7);
    assert.equal(r.m.ram[RAM_SIZE - 1], 0);
  });
});

suite("rv32 ISA: atomics", () => {
  const amos: [string, (rd: number, a: number, s: number) => number, number, number, number][] = [
    ["amoswap", asm.amoswap, 5, 9, 9],
    ["amoadd wraps", asm.amoadd, 0x7fffffff, 1, INT_MIN],
    ["amoxor", asm.amoxor, 0xff, 0x0f, 0xf0],
    ["amoand", asm.amoand, 0xff, 0x0f, 0x0f],
    ["amoor", asm.amoor, 0xf0, 0x0f, 0xff],
    ["amomin signed", asm.amomin, -1, 1, 0xffffffff],
    ["amomax signed", asm.amomax, -1, 1, 1],
    ["amominu unsigned", asm.amominu, -1, 1, 1],
    ["amomaxu unsigned", asm.amomaxu, -1, 1, 0xffffffff],
  ];
  for (const [name, enc, mem, src, want] of amos) {
    test(`${name} returns the old value and stores the result`, () => {
      const r = run([enc(3, 1, 2)], 1, (m) => {
        new DataView(m.ram.buffer).setInt32(DATA - RAM_BASE, mem, true);
        setRegs(m, { 1: DATA, 2: src });
      });
      assert.equal(r.reg(3), u(mem));
      assert.equal(new DataView(r.m.ram.buffer).getUint32(DATA - RAM_BASE, true), want);
      assert.equal(r.m.dirty[(DATA - RAM_BASE) >>> 12], 1);
    });
  }

  test("LR/SC succeeds with the reservation held", () => {
    const r = run([asm.lrw(3, 1), asm.addi(3, 3, 1), asm.scw(4, 1, 3)], 3, (m) => {
      m.ram[DATA - RAM_BASE] = 41;
      setRegs(m, { 1: DATA });
    });
    assert.equal(r.reg(4), 0);
    assert.equal(r.m.ram[DATA - RAM_BASE], 42);
    assert.equal(r.m.cpu.reservationValid, 0, "SC clears the reservation");
  });

  test("SC fails without a reservation, at another address, or after the word changed", () => {
    const none = run([asm.scw(4, 1, 2)], 1, (m) => setRegs(m, { 1: DATA, 2: 7 }));
    assert.equal(none.reg(4), 1);
    assert.equal(none.m.ram[DATA - RAM_BASE], 0);
    const other = run([asm.lrw(3, 1), asm.scw(4, 5, 2)], 2, (m) => setRegs(m, { 1: DATA, 5: DATA + 4, 2: 7 }));
    assert.equal(other.reg(4), 1);
    const changed = run([asm.lrw(3, 1), asm.sw(2, 1, 0), asm.scw(4, 1, 6)], 3, (m) =>
      setRegs(m, { 1: DATA, 2: 5, 6: 9 }),
    );
    assert.equal(changed.reg(4), 1);
    assert.equal(changed.m.ram[DATA - RAM_BASE], 5);
  });

  test("misaligned LR raises load-misaligned (4); misaligned SC/AMO raise store/AMO-misaligned (6)", () => {
    for (const [inst, cause] of [
      [asm.lrw(3, 1), 4],
      [asm.scw(3, 1, 2), 6],
      [asm.amoadd(3, 1, 2), 6],
    ] as const) {
      const r = run([inst], 1, (m) => setRegs(m, { 1: DATA + 2 }));
      assert.equal(r.m.cpu.mcause, cause);
      assert.equal(r.m.cpu.mtval >>> 0, DATA + 2);
    }
  });

  test("an AMO outside RAM raises store/AMO access fault (7)", () => {
    const r = run([asm.amoadd(3, 1, 2)], 1, (m) => setRegs(m, { 1: UART_BASE }));
    assert.equal(r.m.cpu.mcause, 7);
  });
});

suite("rv32 ISA: CSRs", () => {
  test("csrrw/csrrs/csrrc and their immediate forms on mscratch", () => {
    const prog = [
      asm.csrrw(3, Csr.mscratch, 1),
      asm.csrrs(4, Csr.mscratch, 2),
      asm.csrrc(5, Csr.mscratch, 1),
      asm.csrrwi(6, Csr.mscratch, 31),
      asm.csrrsi(7, Csr.mscratch, 0),
      asm.csrrci(8, Csr.mscratch, 3),
      asm.csrrs(9, Csr.mscratch, 0),
    ];
    const r = run(prog, prog.length, (m) => setRegs(m, { 1: 0xf0, 2: 0x0f }));
    assert.deepEqual(
      [r.reg(3), r.reg(4), r.reg(5), r.reg(6), r.reg(7), r.reg(8), r.reg(9)],
      [0, 0xf0, 0xff, 0x0f, 31, 31, 28],
    );
  });

  test("csrrw with rd = rs1 swaps", () => {
    const r = run([asm.csrrw(1, Csr.mscratch, 1)], 1, (m) => {
      m.cpu.mscratch = 7;
      setRegs(m, { 1: 9 });
    });
    assert.equal(r.reg(1), 7);
    assert.equal(r.m.cpu.mscratch, 9);
  });

  test("identification CSRs read as documented", () => {
    const prog = [asm.csrrs(1, Csr.misa, 0), asm.csrrs(2, Csr.mhartid, 0), asm.csrrs(3, Csr.mvendorid, 0)];
    const r = run(prog, 3);
    assert.equal(r.reg(1), 0x40001101);
    assert.equal(r.reg(2), 0);
    assert.equal(r.reg(3), 0);
  });

  const illegal: [string, number][] = [
    ["writing read-only mvendorid", asm.csrrw(0, Csr.mvendorid, 0)],
    ["writing read-only cycle", asm.csrrw(0, Csr.cycle, 1)],
    ["setting bits in read-only time", asm.csrrs(1, Csr.time, 2)],
    ["reading an unknown CSR", asm.csrrs(1, 0x7c0, 0)],
    ["reading medeleg (no S-mode)", asm.csrrs(1, 0x302, 0)],
    ["reading a supervisor CSR", asm.csrrs(1, 0x100, 0)],
  ];
  for (const [name, inst] of illegal) {
    test(`${name} is an illegal instruction with mtval = the instruction`, () => {
      const r = run([inst], 1, (m) => setRegs(m, { 2: 1 }));
      assert.equal(r.m.cpu.mcause, 2);
      assert.equal(r.m.cpu.mtval >>> 0, inst >>> 0);
      assert.equal(r.reg(1), 0);
    });
  }

  test("reading a read-only CSR with csrrs x0 is legal", () => {
    const r = run([asm.csrrs(1, Csr.cycle, 0), asm.csrrc(2, Csr.instret, 0)], 2);
    assert.equal(r.m.cpu.mcause, 0);
    assert.equal(r.reg(1), 0);
    assert.equal(r.reg(2), 1);
  });

  test("WARL fields: mstatus keeps MIE/MPIE (MPP reads M), mtvec ignores reserved modes, mepc is 4-aligned", () => {
    const prog = [
      asm.csrrw(0, Csr.mstatus, 1),
      asm.csrrs(3, Csr.mstatus, 0),
      asm.csrrw(0, Csr.mtvec, 2),
      asm.csrrs(4, Csr.mtvec, 0),
      asm.csrrw(0, Csr.mepc, 5),
      asm.csrrs(5, Csr.mepc, 0),
      asm.csrrw(0, Csr.mie, 1),
      asm.csrrs(6, Csr.mie, 0),
      asm.csrrw(0, Csr.mip, 1),
      asm.csrrs(7, Csr.mip, 0),
    ];
    const r = run(prog, prog.length, (m) => {
      setRegs(m, { 1: -1, 2: RAM_BASE + 0x103, 5: RAM_BASE + 0x207 });
      m.clint.write(0x4004, 4, 0xffffffff);
    });
    assert.equal(r.reg(3), 0x1888);
    assert.equal(r.reg(4), TRAP, "mode 3 write ignored");
    assert.equal(r.reg(5), RAM_BASE + 0x204);
    assert.equal(r.reg(6), 0x888);
    assert.equal(r.reg(7), 0, "mip has no software-writable bits");
  });

  test("cycle and instret count instructions; minstret and mcycle writes take effect after the instruction", () => {
    const prog = [
      asm.csrrs(1, Csr.instret, 0),
      asm.addi(0, 0, 0),
      asm.csrrs(2, Csr.instret, 0),
      asm.csrrs(3, Csr.cycleh, 0),
      asm.csrrw(0, Csr.minstret, 4),
      asm.csrrs(5, Csr.minstret, 0),
      asm.csrrw(0, Csr.mcycleh, 6),
      asm.csrrs(7, Csr.cycleh, 0),
      asm.csrrs(8, Csr.instreth, 0),
    ];
    const r = run(prog, prog.length, (m) => setRegs(m, { 4: 100, 6: 7 }));
    assert.equal(r.reg(1), 0);
    assert.equal(r.reg(2), 2);
    assert.equal(r.reg(3), 0);
    assert.equal(r.reg(5), 100);
    assert.equal(r.reg(7), 7);
    assert.equal(r.reg(8), 0);
  });

  test("the time CSR reads mtime = cycles / 10", () => {
    const prog: number[] = [];
    for (let k = 0; k < 25; k++) prog.push(asm.addi(0, 0, 0));
    prog.push(asm.csrrs(1, Csr.time, 0), asm.lui(2, CLINT_BASE >>> 12), asm.lui(9, 0xc), asm.add(2, 2, 9));
    prog.push(asm.lw(3, 2, -8));
    const r = run(prog, prog.length);
    assert.equal(r.reg(1), 2);
    assert.equal(r.reg(3), 2);
  });
});

suite("rv32 ISA: traps and interrupts", () => {
  test("ecall and ebreak set mcause, mepc, mtval and stack MIE into MPIE", () => {
    for (const [inst, cause] of [
      [asm.ecall(), 11],
      [asm.ebreak(), 3],
    ] as const) {
      const r = run([asm.addi(0, 0, 0), inst], 2, (m) => {
        m.cpu.mstatus |= 8;
      });
      assert.equal(r.m.cpu.mcause, cause);
      assert.equal(r.m.cpu.mepc >>> 0, RAM_BASE + 4);
      assert.equal(r.m.cpu.mtval, 0);
      assert.equal(r.m.cpu.mstatus, 0x1880, "MIE -> MPIE, MIE cleared");
      assert.equal(r.m.cpu.pc >>> 0, TRAP);
      assert.equal(r.m.cpu.instret, 1);
    }
  });

  test("illegal encodings trap with mtval = the instruction bits", () => {
    for (const inst of [0x00000000, 0xffffffff, 0x0000707f, asm.add(1, 2, 3) | (0x40 << 25)]) {
      const r = run([inst], 1);
      assert.equal(r.m.cpu.mcause, 2, inst.toString(16));
      assert.equal(r.m.cpu.mtval >>> 0, inst >>> 0);
    }
  });

  test("mret restores MIE from MPIE, sets MPIE and jumps to mepc", () => {
    const r = run([asm.mret()], 1, (m) => {
      m.cpu.mstatus = 0x1880;
      m.cpu.mepc = (RAM_BASE + 0x40) | 0;
    });
    assert.equal(r.m.cpu.pc >>> 0, RAM_BASE + 0x40);
    assert.equal(r.m.cpu.mstatus, 0x1888);
  });

  function timerProgram(vectored: boolean): number[] {
    // mtimecmp = 3 (hi first); mie.MTIE; mstatus.MIE; then spin.
    return [
      asm.lui(1, CLINT_BASE >>> 12),
      asm.lui(9, 0x4),
      asm.add(1, 1, 9),
      asm.sw(0, 1, 4),
      asm.addi(2, 0, 3),
      asm.sw(2, 1, 0),
      asm.addi(3, 0, 0x80),
      asm.csrrs(0, Csr.mie, 3),
      ...asm.li(4, vectored ? TRAP - 7 * 4 + 1 : TRAP),
      asm.csrrw(0, Csr.mtvec, 4),
      asm.csrrsi(0, Csr.mstatus, 8),
      asm.addi(5, 5, 1),
      asm.jal(0, -4),
    ];
  }

  test("a timer interrupt is taken at the cycle mtime reaches mtimecmp (direct mode)", () => {
    const r = run(timerProgram(false), 100, (m) => m.clint.write(0x4004, 4, 0xffffffff));
    assert.equal(r.m.cpu.mcause >>> 0, 0x80000007);
    assert.equal(r.m.cpu.mstatus & 0x88, 0x80);
    // mtime = cycles / 10 reaches 3 at cycle 30: 13 set-up instructions, then the loop until then.
    assert.equal(r.m.cpu.cycles, 100);
    const atTrap = run(timerProgram(false), 30, (m) => m.clint.write(0x4004, 4, 0xffffffff));
    assert.equal(atTrap.m.cpu.mcause, 0, "not yet taken within the first 30 steps");
    atTrap.m.run(1);
    assert.equal(atTrap.m.cpu.mcause >>> 0, 0x80000007);
    assert.equal(atTrap.m.cpu.mepc >>> 0, RAM_BASE + 4 * 12, "taken in the spin loop (12 set-up steps, 9 loop turns)");
    assert.equal(atTrap.m.cpu.pc >>> 0, TRAP, "the handler's first instruction ran at cycle 30");
  });

  test("vectored mtvec sends interrupt 7 to base + 28", () => {
    const r = run(timerProgram(true), 31, (m) => m.clint.write(0x4004, 4, 0xffffffff));
    assert.equal(r.m.cpu.mcause >>> 0, 0x80000007);
    assert.equal(r.m.cpu.pc >>> 0, TRAP);
  });

  test("MTIP is pending from reset (mtimecmp = 0, as QEMU)", () => {
    const r = run([asm.csrrs(1, Csr.mip, 0)], 1);
    assert.equal(r.reg(1), 0x80);
  });

  test("a software interrupt is taken right after the msip store", () => {
    const prog = [
      asm.addi(1, 0, 8),
      asm.csrrs(0, Csr.mie, 1),
      asm.csrrsi(0, Csr.mstatus, 8),
      asm.lui(2, CLINT_BASE >>> 12),
      asm.addi(3, 0, 1),
      asm.sw(3, 2, 0),
      asm.addi(4, 0, 1),
    ];
    const r = run(prog, 7, (m) => m.clint.write(0x4004, 4, 0xffffffff));
    assert.equal(r.m.cpu.mcause >>> 0, 0x80000003);
    assert.equal(r.m.cpu.mepc >>> 0, RAM_BASE + 24);
    assert.equal(r.reg(4), 0);
  });

  test("wfi skips idle time to the timer deadline, then takes the interrupt", () => {
    const prog = timerProgram(false);
    prog[prog.length - 2] = asm.wfi();
    const r = run(prog, 15, (m) => m.clint.write(0x4004, 4, 0xffffffff));
    assert.equal(r.m.cpu.mcause >>> 0, 0x80000007);
    assert.equal(r.m.cpu.mepc >>> 0, RAM_BASE + 4 * 13, "mepc is after the wfi");
    assert.equal(r.m.cpu.cycles, 32, "13 steps, idle to cycle 30, 2 steps in the handler");
    assert.equal(r.m.cpu.instret, 15);
  });

  test("wfi with a pending but globally disabled interrupt resumes after it without a trap", () => {
    const prog = [asm.addi(1, 0, 0x80), asm.csrrs(0, Csr.mie, 1), asm.wfi(), asm.addi(2, 0, 1)];
    const r = run(prog, 4);
    assert.equal(r.reg(2), 1);
    assert.equal(r.m.cpu.mcause, 0);
  });

  test("wfi with nothing that can wake the hart returns Idle", () => {
    const r = run([asm.wfi(), asm.addi(1, 0, 1)], 1);
    assert.equal(r.m.run(10), RunExit.Idle);
    assert.equal(r.m.cpu.waitingForInterrupt, 1);
    assert.equal(r.reg(1), 0);
  });
});

suite("rv32 devices through the CPU", () => {
  test("UART: THR output, LSR, RX FIFO, DLAB divisor, IIR", () => {
    const prog = [
      asm.lui(1, UART_BASE >>> 12),
      asm.addi(2, 0, 0x48),
      asm.sb(2, 1, 0),
      asm.lbu(3, 1, 5),
      asm.addi(2, 0, 7),
      asm.sb(2, 1, 2),
      asm.lbu(4, 1, 5),
      asm.lbu(5, 1, 0),
      asm.lbu(6, 1, 0),
      asm.lbu(7, 1, 5),
      asm.addi(2, 0, 0x80),
      asm.sb(2, 1, 3),
      asm.addi(2, 0, 0x34),
      asm.sb(2, 1, 0),
      asm.lbu(8, 1, 0),
      asm.sb(0, 1, 3),
      asm.lbu(9, 1, 2),
    ];
    const r = run(prog, prog.length, (m) => m.pushInput("xy"));
    assert.deepEqual(r.out, [0x48]);
    assert.equal(r.reg(3), 0x61, "DR set by input before the FIFO is enabled");
    assert.equal(r.reg(4), 0x61, "enabling the FIFO drops the RBR byte, then the queue refills the FIFO");
    assert.equal(r.reg(9), 0xc1, "IIR: FIFO enabled, no interrupt");
    assert.equal(r.reg(8), 0x34, "DLL through DLAB");
    assert.equal(r.m.uart.getState().divider, 0x34);
    assert.equal(r.reg(5), 0x79);
    assert.equal(r.reg(6), 0, "reading an empty FIFO gives 0");
    assert.equal(r.reg(7) & 1, 0);
  });

  test("UART: input echoes through RBR in order", () => {
    // loop: lbu t0, 5(a0); andi t0, t0, 1; beqz t0, loop; lbu t1, 0(a0); sb t1, 0(a0); j loop
    const prog = [
      asm.lui(10, UART_BASE >>> 12),
      asm.lbu(5, 10, 5),
      asm.andi(5, 5, 1),
      asm.beq(5, 0, -8),
      asm.lbu(6, 10, 0),
      asm.sb(6, 10, 0),
      asm.jal(0, -20),
    ];
    const r = run(prog, 500, (m) => m.pushInput("hello, world"));
    assert.equal(String.fromCharCode(...r.out), "hello, world");
  });

  test("finisher: pass, fail with code, reset", () => {
    const pass = run([asm.lui(1, FINISHER_BASE >>> 12), ...asm.li(2, 0x5555), asm.sw(2, 1, 0), asm.addi(3, 0, 1)], 10);
    assert.equal(pass.m.poweredOff, true);
    assert.equal(pass.m.exitCode, 0);
    assert.equal(pass.reg(3), 0, "nothing runs after power-off");
    assert.equal(pass.m.run(5), RunExit.PowerOff);
    const fail = run([asm.lui(1, FINISHER_BASE >>> 12), ...asm.li(2, (3 << 16) | 0x3333), asm.sw(2, 1, 0)], 10);
    assert.equal(fail.m.exitCode, 3);
    const reset = run([asm.addi(5, 0, 1), asm.lui(1, FINISHER_BASE >>> 12), ...asm.li(2, 0x7777), asm.sw(2, 1, 0)], 6);
    assert.equal(reset.m.poweredOff, false);
    assert.equal(reset.m.cpu.pc >>> 0, RAM_BASE + 4, "reset to RAM base, then one more step");
    assert.equal(reset.reg(5), 1);
    assert.equal(reset.reg(1), 0);
  });
});
