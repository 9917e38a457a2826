/**
 * A tiny RV32IMA encoder for tests: builds instruction words without a toolchain.
 *
 * Test support, not part of the public API: no index exports it.
 *
 * @module
 */

const r = (f7: number, rs2: number, rs1: number, f3: number, rd: number, op: number): number =>
  ((f7 << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
const i = (imm: number, rs1: number, f3: number, rd: number, op: number): number =>
  (((imm & 0xfff) << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | op) >>> 0;
const s = (imm: number, rs2: number, rs1: number, f3: number): number =>
  ((((imm >> 5) & 0x7f) << 25) | (rs2 << 20) | (rs1 << 15) | (f3 << 12) | ((imm & 31) << 7) | 0x23) >>> 0;
const b = (imm: number, rs2: number, rs1: number, f3: number): number =>
  ((((imm >> 12) & 1) << 31) |
    (((imm >> 5) & 0x3f) << 25) |
    (rs2 << 20) |
    (rs1 << 15) |
    (f3 << 12) |
    (((imm >> 1) & 0xf) << 8) |
    (((imm >> 11) & 1) << 7) |
    0x63) >>>
  0;
const amo = (f5: number, rd: number, rs1: number, rs2: number): number => r(f5 << 2, rs2, rs1, 2, rd, 0x2f);
const csr = (f3: number, rd: number, c: number, rs1: number): number =>
  ((c << 20) | (rs1 << 15) | (f3 << 12) | (rd << 7) | 0x73) >>> 0;

/** Instruction encoders, named as the assembler's mnemonics. Registers are numbers 0–31. */
export const asm = {
  add: (rd: number, a: number, c: number) => r(0, c, a, 0, rd, 0x33),
  sub: (rd: number, a: number, c: number) => r(0x20, c, a, 0, rd, 0x33),
  sll: (rd: number, a: number, c: number) => r(0, c, a, 1, rd, 0x33),
  slt: (rd: number, a: number, c: number) => r(0, c, a, 2, rd, 0x33),
  sltu: (rd: number, a: number, c: number) => r(0, c, a, 3, rd, 0x33),
  xor: (rd: number, a: number, c: number) => r(0, c, a, 4, rd, 0x33),
  srl: (rd: number, a: number, c: number) => r(0, c, a, 5, rd, 0x33),
  sra: (rd: number, a: number, c: number) => r(0x20, c, a, 5, rd, 0x33),
  or: (rd: number, a: number, c: number) => r(0, c, a, 6, rd, 0x33),
  and: (rd: number, a: number, c: number) => r(0, c, a, 7, rd, 0x33),
  mul: (rd: number, a: number, c: number) => r(1, c, a, 0, rd, 0x33),
  mulh: (rd: number, a: number, c: number) => r(1, c, a, 1, rd, 0x33),
  mulhsu: (rd: number, a: number, c: number) => r(1, c, a, 2, rd, 0x33),
  mulhu: (rd: number, a: number, c: number) => r(1, c, a, 3, rd, 0x33),
  div: (rd: number, a: number, c: number) => r(1, c, a, 4, rd, 0x33),
  divu: (rd: number, a: number, c: number) => r(1, c, a, 5, rd, 0x33),
  rem: (rd: number, a: number, c: number) => r(1, c, a, 6, rd, 0x33),
  remu: (rd: number, a: number, c: number) => r(1, c, a, 7, rd, 0x33),
  addi: (rd: number, a: number, imm: number) => i(imm, a, 0, rd, 0x13),
  slti: (rd: number, a: number, imm: number) => i(imm, a, 2, rd, 0x13),
  sltiu: (rd: number, a: number, imm: number) => i(imm, a, 3, rd, 0x13),
  xori: (rd: number, a: number, imm: number) => i(imm, a, 4, rd, 0x13),
  ori: (rd: number, a: number, imm: number) => i(imm, a, 6, rd, 0x13),
  andi: (rd: number, a: number, imm: number) => i(imm, a, 7, rd, 0x13),
  slli: (rd: number, a: number, sh: number) => i(sh, a, 1, rd, 0x13),
  srli: (rd: number, a: number, sh: number) => i(sh, a, 5, rd, 0x13),
  srai: (rd: number, a: number, sh: number) => i(0x400 | sh, a, 5, rd, 0x13),
  lb: (rd: number, a: number, imm: number) => i(imm, a, 0, rd, 0x03),
  lh: (rd: number, a: number, imm: number) => i(imm, a, 1, rd, 0x03),
  lw: (rd: number, a: number, imm: number) => i(imm, a, 2, rd, 0x03),
  lbu: (rd: number, a: number, imm: number) => i(imm, a, 4, rd, 0x03),
  lhu: (rd: number, a: number, imm: number) => i(imm, a, 5, rd, 0x03),
  sb: (src: number, a: number, imm: number) => s(imm, src, a, 0),
  sh: (src: number, a: number, imm: number) => s(imm, src, a, 1),
  sw: (src: number, a: number, imm: number) => s(imm, src, a, 2),
  beq: (a: number, c: number, off: number) => b(off, c, a, 0),
  bne: (a: number, c: number, off: number) => b(off, c, a, 1),
  blt: (a: number, c: number, off: number) => b(off, c, a, 4),
  bge: (a: number, c: number, off: number) => b(off, c, a, 5),
  bltu: (a: number, c: number, off: number) => b(off, c, a, 6),
  bgeu: (a: number, c: number, off: number) => b(off, c, a, 7),
  lui: (rd: number, imm20: number) => (((imm20 & 0xfffff) << 12) | (rd << 7) | 0x37) >>> 0,
  auipc: (rd: number, imm20: number) => (((imm20 & 0xfffff) << 12) | (rd << 7) | 0x17) >>> 0,
  jal: (rd: number, off: number) =>
    ((((off >> 20) & 1) << 31) |
      (((off >> 1) & 0x3ff) << 21) |
      (((off >> 11) & 1) << 20) |
      (((off >> 12) & 0xff) << 12) |
      (rd << 7) |
      0x6f) >>>
    0,
  jalr: (rd: number, a: number, imm: number) => i(imm, a, 0, rd, 0x67),
  fence: () => 0x0ff0000f,
  fenceI: () => 0x0000100f,
  ecall: () => 0x00000073,
  ebreak: () => 0x00100073,
  mret: () => 0x30200073,
  wfi: () => 0x10500073,
  csrrw: (rd: number, c: number, a: number) => csr(1, rd, c, a),
  csrrs: (rd: number, c: number, a: number) => csr(2, rd, c, a),
  csrrc: (rd: number, c: number, a: number) => csr(3, rd, c, a),
  csrrwi: (rd: number, c: number, u: number) => csr(5, rd, c, u),
  csrrsi: (rd: number, c: number, u: number) => csr(6, rd, c, u),
  csrrci: (rd: number, c: number, u: number) => csr(7, rd, c, u),
  lrw: (rd: number, a: number) => amo(0x02, rd, a, 0),
  scw: (rd: number, a: number, src: number) => amo(0x03, rd, a, src),
  amoswap: (rd: number, a: number, src: number) => amo(0x01, rd, a, src),
  amoadd: (rd: number, a: number, src: number) => amo(0x00, rd, a, src),
  amoxor: (rd: number, a: number, src: number) => amo(0x04, rd, a, src),
  amoand: (rd: number, a: number, src: number) => amo(0x0c, rd, a, src),
  amoor: (rd: number, a: number, src: number) => amo(0x08, rd, a, src),
  amomin: (rd: number, a: number, src: number) => amo(0x10, rd, a, src),
  amomax: (rd: number, a: number, src: number) => amo(0x14, rd, a, src),
  amominu: (rd: number, a: number, src: number) => amo(0x18, rd, a, src),
  amomaxu: (rd: number, a: number, src: number) => amo(0x1c, rd, a, src),
  /** `li rd, value` as lui + addi (always two words). */
  li: (rd: number, value: number): [number, number] => {
    const v = value | 0;
    const lo = (v << 20) >> 20;
    const hi = ((v - lo) >>> 12) & 0xfffff;
    return [(((hi << 12) | (rd << 7) | 0x37) >>> 0) as number, i(lo, rd, 0, rd, 0x13)];
  },
};
