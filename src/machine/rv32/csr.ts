/**
 * Control and status registers, trap causes and `mstatus`/`mip` bits of the rv32 machine-mode hart.
 *
 * The hart implements machine mode only (no S or U mode), so `medeleg`, `mideleg`, `mcounteren` and the supervisor
 * CSRs do not exist and access to them raises an illegal-instruction exception.
 *
 * @module
 */

/** CSR numbers (RISC-V privileged spec 1.12, table 2.5). */
export const Csr = {
  cycle: 0xc00,
  time: 0xc01,
  instret: 0xc02,
  cycleh: 0xc80,
  timeh: 0xc81,
  instreth: 0xc82,
  mvendorid: 0xf11,
  marchid: 0xf12,
  mimpid: 0xf13,
  mhartid: 0xf14,
  mconfigptr: 0xf15,
  mstatus: 0x300,
  misa: 0x301,
  mie: 0x304,
  mtvec: 0x305,
  mstatush: 0x310,
  mcountinhibit: 0x320,
  mscratch: 0x340,
  mepc: 0x341,
  mcause: 0x342,
  mtval: 0x343,
  mip: 0x344,
  mcycle: 0xb00,
  minstret: 0xb02,
  mcycleh: 0xb80,
  minstreth: 0xb82,
} as const;

/** `mstatus.MIE`: machine interrupts enabled. */
export const MSTATUS_MIE = 1 << 3;
/** `mstatus.MPIE`: MIE before the last trap. */
export const MSTATUS_MPIE = 1 << 7;
/** `mstatus.MPP`: previous privilege; hard-wired to M (3) on a machine-mode-only hart. */
export const MSTATUS_MPP = 3 << 11;
/** The `mstatus` bits software can change. */
export const MSTATUS_WRITABLE = MSTATUS_MIE | MSTATUS_MPIE;

/** `mip`/`mie` bit of the machine software interrupt (CLINT `msip`). */
export const MIP_MSIP = 1 << 3;
/** `mip`/`mie` bit of the machine timer interrupt (CLINT `mtime >= mtimecmp`). */
export const MIP_MTIP = 1 << 7;
/** `mip`/`mie` bit of the machine external interrupt (no interrupt controller is wired; always 0). */
export const MIP_MEIP = 1 << 11;
/** The `mie` bits that exist. */
export const MIE_WRITABLE = MIP_MSIP | MIP_MTIP | MIP_MEIP;

/** `misa` of the hart: MXL = 1 (32-bit), extensions I, M, A. */
export const MISA_VALUE = (0x4000_0000 | (1 << 8) | (1 << 12) | (1 << 0)) >>> 0;

/** Synchronous exception causes (`mcause` with bit 31 clear). */
export const Exception = {
  /** Jump or branch to an address that is not 4-byte aligned (no C extension). */
  InstructionMisaligned: 0,
  /** Instruction fetch outside RAM. */
  InstructionAccessFault: 1,
  IllegalInstruction: 2,
  Breakpoint: 3,
  /** LR.W to an address that is not 4-byte aligned (plain loads split misaligned accesses as QEMU does). */
  LoadMisaligned: 4,
  LoadAccessFault: 5,
  /** SC.W or AMO to an address that is not 4-byte aligned. */
  StoreMisaligned: 6,
  StoreAccessFault: 7,
  EcallFromM: 11,
} as const;

/** One of the {@link Exception} causes. */
export type Exception = (typeof Exception)[keyof typeof Exception];

/** Interrupt causes (`mcause` with bit 31 set). */
export const Interrupt = {
  MachineSoftware: 3,
  MachineTimer: 7,
  MachineExternal: 11,
} as const;

/** One of the {@link Interrupt} causes. */
export type Interrupt = (typeof Interrupt)[keyof typeof Interrupt];
