/**
 * An NS16550A UART, modelled on QEMU's `hw/char/serial.c` (7.2) so its state maps onto QEMU's `serial` VMState.
 *
 * Registers (byte offsets, `regshift` 0): 0 RBR/THR (DLL when LCR.DLAB), 1 IER (DLM when DLAB), 2 IIR/FCR, 3 LCR,
 * 4 MCR, 5 LSR, 6 MSR, 7 SCR. An access of any width at an aligned offset reaches the one register there (as
 * QEMU's `serial_mm` does); the value is zero-extended on reads, and writes use the low byte.
 *
 * Transmission is instant: a THR write hands the byte to the output callback, and THRE/TEMT stay set. Reception
 * goes through a 16-byte RX FIFO (or the single RBR when FCR.FE is clear); bytes come from an {@link RxSource}
 * that the UART pulls from whenever it has room, so no byte is dropped and the timing is deterministic. The
 * interrupt output is computed (IIR, {@link Uart16550.irq}) but not wired to a PLIC: guests poll LSR. The
 * character-timeout interrupt is not modelled (QEMU's `timeout_ipending` stays 0).
 *
 * @module
 */

import type { MmioDevice } from "./bus.js";

/** RX and TX FIFO depth. QEMU: `UART_FIFO_LENGTH`. */
export const UART_FIFO_LENGTH = 16;

const IER_RDI = 0x01;
const IER_THRI = 0x02;
const IER_RLSI = 0x04;
const IER_MSI = 0x08;
const IIR_NO_INT = 0x01;
const IIR_MSI = 0x00;
const IIR_THRI = 0x02;
const IIR_RDI = 0x04;
const IIR_RLSI = 0x06;
const IIR_ID = 0x06;
const IIR_FE = 0xc0;
const FCR_FE = 0x01;
const FCR_RFR = 0x02;
const FCR_XFR = 0x04;
const LCR_DLAB = 0x80;
const MCR_OUT2 = 0x08;
const MCR_LOOP = 0x10;
const LSR_DR = 0x01;
const LSR_OE = 0x02;
const LSR_BI = 0x10;
const LSR_THRE = 0x20;
const LSR_TEMT = 0x40;
const LSR_INT_ANY = 0x1e;
const MSR_DCD = 0x80;
const MSR_DSR = 0x20;
const MSR_CTS = 0x10;
const MSR_ANY_DELTA = 0x0f;
const ITL = [1, 4, 8, 14] as const;

/** Where received bytes come from: returns the next byte, or -1 when none is waiting. */
export interface RxSource {
  /** Takes the next input byte, or returns -1. */
  take(): number;
}

/** The UART's migratable state. Names follow QEMU's `VMStateDescription vmstate_serial`. */
export interface UartState {
  /** Baud divisor (DLM:DLL). QEMU: `divider`. */
  divider: number;
  /** The receive buffer register (used when the FIFO is off). QEMU: `rbr`. */
  rbr: number;
  /** QEMU: `ier`. */
  ier: number;
  /** QEMU: `iir`. */
  iir: number;
  /** QEMU: `lcr`. */
  lcr: number;
  /** QEMU: `mcr`. */
  mcr: number;
  /** QEMU: `lsr`. */
  lsr: number;
  /** QEMU: `msr`. */
  msr: number;
  /** QEMU: `scr`. */
  scr: number;
  /** QEMU: `fcr` (`fcr_vmstate`). */
  fcr: number;
  /** Whether a THR-empty interrupt is pending (0 or 1). QEMU: `thr_ipending`. */
  thrIpending: number;
  /** RX FIFO contents, oldest first; only the first `rxCount` bytes count. Always 16 bytes. QEMU: `recv_fifo`. */
  rxFifo: Uint8Array;
  /** Bytes in the RX FIFO (0–16). QEMU: `recv_fifo.num`. */
  rxCount: number;
  /** The interrupt line's level (0 or 1), derived from the registers. */
  irq: number;
}

/** The NS16550A UART. */
export class Uart16550 implements MmioDevice {
  #divider = 0x0c;
  #rbr = 0;
  #ier = 0;
  #iir = IIR_NO_INT;
  #lcr = 0;
  #mcr = MCR_OUT2;
  #lsr = LSR_THRE | LSR_TEMT;
  #msr = MSR_DCD | MSR_DSR | MSR_CTS;
  #scr = 0;
  #fcr = 0;
  #thrIpending = 0;
  #itl = 1;
  readonly #fifo = new Uint8Array(UART_FIFO_LENGTH);
  #head = 0;
  #count = 0;
  #irq = 0;
  #source: RxSource | undefined;
  readonly #transmit: (byte: number) => void;

  /** @param transmit Receives every byte the guest transmits (except in loopback mode). */
  constructor(transmit: (byte: number) => void) {
    this.#transmit = transmit;
  }

  /** Sets where received bytes come from, and pulls what fits. */
  setSource(source: RxSource | undefined): void {
    this.#source = source;
    this.pull();
  }

  /** The interrupt line's level (not wired to an interrupt controller in `ferry-rv32`). */
  get irq(): number {
    return this.#irq;
  }

  /** Pulls bytes from the source while the receiver has room. Called after reads and by the machine's poll. */
  pull(): void {
    const src = this.#source;
    if (src === undefined) return;
    while (this.#room() > 0) {
      const b = src.take();
      if (b < 0) break;
      this.#receive(b);
    }
  }

  #room(): number {
    if (this.#fcr & FCR_FE) return UART_FIFO_LENGTH - this.#count;
    return this.#lsr & LSR_DR ? 0 : 1;
  }

  /** QEMU: `serial_receive1`. */
  #receive(b: number): void {
    if (this.#fcr & FCR_FE) {
      if (this.#count === UART_FIFO_LENGTH) {
        this.#lsr |= LSR_OE;
      } else {
        this.#fifo[(this.#head + this.#count) % UART_FIFO_LENGTH] = b;
        this.#count++;
      }
      this.#lsr |= LSR_DR;
    } else {
      if (this.#lsr & LSR_DR) this.#lsr |= LSR_OE;
      this.#rbr = b;
      this.#lsr |= LSR_DR;
    }
    this.#updateIrq();
  }

  /** QEMU: `serial_update_irq`. */
  #updateIrq(): void {
    let id = IIR_NO_INT;
    const ier = this.#ier;
    const lsr = this.#lsr;
    if (ier & IER_RLSI && lsr & LSR_INT_ANY) id = IIR_RLSI;
    else if (ier & IER_RDI && lsr & LSR_DR && (!(this.#fcr & FCR_FE) || this.#count >= this.#itl)) id = IIR_RDI;
    else if (ier & IER_THRI && this.#thrIpending) id = IIR_THRI;
    else if (ier & IER_MSI && this.#msr & MSR_ANY_DELTA) id = IIR_MSI;
    this.#iir = id | (this.#iir & 0xf0);
    this.#irq = id !== IIR_NO_INT ? 1 : 0;
  }

  #resetFifo(): void {
    this.#head = 0;
    this.#count = 0;
  }

  accepts(offset: number, size: number): boolean {
    return offset + size <= 0x100;
  }

  read(offset: number, size: number): number {
    if (!this.accepts(offset, size)) return -1;
    switch (offset) {
      case 0: {
        if (this.#lcr & LCR_DLAB) return this.#divider & 0xff;
        let v: number;
        if (this.#fcr & FCR_FE) {
          v = 0;
          if (this.#count > 0) {
            v = this.#fifo[this.#head] as number;
            this.#head = (this.#head + 1) % UART_FIFO_LENGTH;
            this.#count--;
          }
          if (this.#count === 0) this.#lsr &= ~(LSR_DR | LSR_BI);
        } else {
          v = this.#rbr;
          this.#lsr &= ~(LSR_DR | LSR_BI);
        }
        this.#updateIrq();
        this.pull();
        return v;
      }
      case 1:
        return this.#lcr & LCR_DLAB ? (this.#divider >>> 8) & 0xff : this.#ier;
      case 2: {
        const v = this.#iir;
        if ((v & IIR_ID) === IIR_THRI) {
          this.#thrIpending = 0;
          this.#updateIrq();
        }
        return v;
      }
      case 3:
        return this.#lcr;
      case 4:
        return this.#mcr;
      case 5: {
        const v = this.#lsr;
        if (v & (LSR_BI | LSR_OE)) {
          this.#lsr &= ~(LSR_BI | LSR_OE);
          this.#updateIrq();
        }
        return v;
      }
      case 6: {
        if (this.#mcr & MCR_LOOP) {
          const m = this.#mcr;
          return ((m & 0x0c) << 4) | ((m & 0x02) << 3) | ((m & 0x01) << 5);
        }
        const v = this.#msr;
        if (v & MSR_ANY_DELTA) {
          this.#msr &= 0xf0;
          this.#updateIrq();
        }
        return v;
      }
      case 7:
        return this.#scr;
      default:
        return 0;
    }
  }

  write(offset: number, size: number, value: number): boolean {
    if (!this.accepts(offset, size)) return false;
    const v = value & 0xff;
    switch (offset) {
      case 0:
        if (this.#lcr & LCR_DLAB) {
          this.#divider = (this.#divider & 0xff00) | v;
        } else {
          // Instant transmission: the shift register empties at once.
          this.#thrIpending = 0;
          if (this.#mcr & MCR_LOOP) {
            // QEMU: serial_xmit calls serial_receive1 directly; a full receiver overruns (OE).
            this.#receive(v);
          } else {
            this.#transmit(v);
          }
          this.#lsr |= LSR_THRE | LSR_TEMT;
          this.#thrIpending = 1;
          this.#updateIrq();
        }
        break;
      case 1:
        if (this.#lcr & LCR_DLAB) {
          this.#divider = (this.#divider & 0x00ff) | (v << 8);
        } else {
          const changed = (this.#ier ^ v) & 0x0f;
          this.#ier = v & 0x0f;
          if (changed & IER_THRI) this.#thrIpending = this.#ier & IER_THRI && this.#lsr & LSR_THRE ? 1 : 0;
          if (changed) this.#updateIrq();
        }
        break;
      case 2: {
        let f = v;
        if (this.#fcr === f) break;
        // Toggling FIFO enable clears both FIFOs.
        if ((f ^ this.#fcr) & FCR_FE) f |= FCR_XFR | FCR_RFR;
        if (f & FCR_RFR) {
          this.#resetFifo();
          this.#lsr &= ~(LSR_DR | LSR_BI);
        }
        if (f & FCR_XFR) {
          this.#lsr |= LSR_THRE;
          this.#thrIpending = 1;
        }
        this.#writeFcr(f & 0xc9);
        this.#updateIrq();
        this.pull();
        break;
      }
      case 3:
        this.#lcr = v;
        break;
      case 4:
        this.#mcr = v & 0x1f;
        break;
      case 7:
        this.#scr = v;
        break;
      default:
        // LSR and MSR are read-only; offsets 8-255 are unused.
        break;
    }
    return true;
  }

  /** QEMU: `serial_write_fcr`. */
  #writeFcr(v: number): void {
    this.#fcr = v;
    if (v & FCR_FE) {
      this.#iir |= IIR_FE;
      this.#itl = ITL[v >>> 6] as number;
    } else {
      this.#iir &= ~IIR_FE;
    }
  }

  /** Returns the state as a plain object (a fresh `rxFifo` array, oldest byte first). */
  getState(): UartState {
    const rxFifo = new Uint8Array(UART_FIFO_LENGTH);
    for (let i = 0; i < this.#count; i++) rxFifo[i] = this.#fifo[(this.#head + i) % UART_FIFO_LENGTH] as number;
    return {
      divider: this.#divider,
      rbr: this.#rbr,
      ier: this.#ier,
      iir: this.#iir,
      lcr: this.#lcr,
      mcr: this.#mcr,
      lsr: this.#lsr,
      msr: this.#msr,
      scr: this.#scr,
      fcr: this.#fcr,
      thrIpending: this.#thrIpending,
      rxFifo,
      rxCount: this.#count,
      irq: this.#irq,
    };
  }

  /** Loads a state (validated by the caller); the IIR and the interrupt level are recomputed. */
  setState(s: UartState): void {
    this.#divider = s.divider;
    this.#rbr = s.rbr;
    this.#ier = s.ier;
    this.#iir = s.iir;
    this.#lcr = s.lcr;
    this.#mcr = s.mcr;
    this.#lsr = s.lsr;
    this.#msr = s.msr;
    this.#scr = s.scr;
    this.#thrIpending = s.thrIpending;
    this.#writeFcr(s.fcr);
    this.#fifo.set(s.rxFifo.subarray(0, UART_FIFO_LENGTH));
    this.#head = 0;
    this.#count = s.rxCount;
    this.#updateIrq();
  }

  /** QEMU: `serial_reset`. */
  reset(): void {
    this.#divider = 0x0c;
    this.#rbr = 0;
    this.#ier = 0;
    this.#iir = IIR_NO_INT;
    this.#lcr = 0;
    this.#mcr = MCR_OUT2;
    this.#lsr = LSR_THRE | LSR_TEMT;
    this.#msr = MSR_DCD | MSR_DSR | MSR_CTS;
    this.#scr = 0;
    this.#fcr = 0;
    this.#thrIpending = 0;
    this.#itl = 1;
    this.#resetFifo();
    this.#irq = 0;
    this.pull();
  }
}
