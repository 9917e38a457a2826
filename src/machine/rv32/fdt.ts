/**
 * A minimal flattened device tree (DTB, version 17) describing `ferry-rv32`, placed in RAM and passed in `a1` as
 * QEMU's `virt` machine does, so a guest can find the RAM size the same way on both.
 *
 * @module
 */

import {
  CLINT_BASE,
  CLINT_SIZE,
  FINISHER_BASE,
  FINISHER_SIZE,
  RAM_BASE,
  TIMEBASE_HZ,
  UART_BASE,
  UART_SIZE,
} from "./memory-map.js";

const FDT_MAGIC = 0xd00dfeed;
const FDT_BEGIN_NODE = 1;
const FDT_END_NODE = 2;
const FDT_PROP = 3;
const FDT_END = 9;

class FdtWriter {
  readonly #struct: number[] = [];
  readonly #strings: number[] = [];
  readonly #names = new Map<string, number>();

  #u32(v: number): void {
    this.#struct.push((v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff);
  }

  #bytes(b: readonly number[]): void {
    for (const x of b) this.#struct.push(x);
    while (this.#struct.length % 4 !== 0) this.#struct.push(0);
  }

  begin(name: string): this {
    this.#u32(FDT_BEGIN_NODE);
    this.#bytes([...ascii(name), 0]);
    return this;
  }

  end(): this {
    this.#u32(FDT_END_NODE);
    return this;
  }

  prop(name: string, value: readonly number[]): this {
    let off = this.#names.get(name);
    if (off === undefined) {
      off = this.#strings.length;
      this.#names.set(name, off);
      this.#strings.push(...ascii(name), 0);
    }
    this.#u32(FDT_PROP);
    this.#u32(value.length);
    this.#u32(off);
    this.#bytes(value);
    return this;
  }

  cells(name: string, ...cells: number[]): this {
    const out: number[] = [];
    for (const c of cells) out.push((c >>> 24) & 0xff, (c >>> 16) & 0xff, (c >>> 8) & 0xff, c & 0xff);
    return this.prop(name, out);
  }

  str(name: string, ...values: string[]): this {
    const out: number[] = [];
    for (const v of values) out.push(...ascii(v), 0);
    return this.prop(name, out);
  }

  finish(): Uint8Array {
    this.#u32(FDT_END);
    const headerSize = 40;
    const rsvOff = headerSize;
    const structOff = rsvOff + 16;
    const stringsOff = structOff + this.#struct.length;
    const total = stringsOff + this.#strings.length;
    const out = new Uint8Array((total + 7) & ~7);
    const dv = new DataView(out.buffer);
    dv.setUint32(0, FDT_MAGIC);
    dv.setUint32(4, out.length);
    dv.setUint32(8, structOff);
    dv.setUint32(12, stringsOff);
    dv.setUint32(16, rsvOff);
    dv.setUint32(20, 17);
    dv.setUint32(24, 16);
    dv.setUint32(28, 0);
    dv.setUint32(32, this.#strings.length);
    dv.setUint32(36, this.#struct.length);
    out.set(this.#struct, structOff);
    out.set(this.#strings, stringsOff);
    return out;
  }
}

function ascii(s: string): number[] {
  const out: number[] = [];
  for (let i = 0; i < s.length; i++) out.push(s.charCodeAt(i) & 0x7f);
  return out;
}

/**
 * Builds the device tree blob of a `ferry-rv32` machine.
 *
 * @param ramSize RAM size in bytes.
 * @returns The DTB bytes (length a multiple of 8).
 */
export function buildDeviceTree(ramSize: number): Uint8Array {
  const hex = (n: number): string => n.toString(16);
  return new FdtWriter()
    .begin("")
    .cells("#address-cells", 2)
    .cells("#size-cells", 2)
    .str("compatible", "ferry,rv32", "riscv-virtio")
    .str("model", "ferry-rv32")
    .begin("chosen")
    .str("stdout-path", `/soc/serial@${hex(UART_BASE)}`)
    .end()
    .begin(`memory@${hex(RAM_BASE)}`)
    .str("device_type", "memory")
    .cells("reg", 0, RAM_BASE, 0, ramSize)
    .end()
    .begin("cpus")
    .cells("#address-cells", 1)
    .cells("#size-cells", 0)
    .cells("timebase-frequency", TIMEBASE_HZ)
    .begin("cpu@0")
    .str("device_type", "cpu")
    .cells("reg", 0)
    .str("status", "okay")
    .str("compatible", "riscv")
    .str("riscv,isa", "rv32ima_zicsr_zifencei")
    .end()
    .end()
    .begin("soc")
    .cells("#address-cells", 2)
    .cells("#size-cells", 2)
    .str("compatible", "simple-bus")
    .prop("ranges", [])
    .begin(`serial@${hex(UART_BASE)}`)
    .str("compatible", "ns16550a")
    .cells("reg", 0, UART_BASE, 0, UART_SIZE)
    .cells("clock-frequency", 3_686_400)
    .end()
    .begin(`clint@${hex(CLINT_BASE)}`)
    .str("compatible", "sifive,clint0", "riscv,clint0")
    .cells("reg", 0, CLINT_BASE, 0, CLINT_SIZE)
    .end()
    .begin(`test@${hex(FINISHER_BASE)}`)
    .str("compatible", "sifive,test1", "sifive,test0", "syscon")
    .cells("reg", 0, FINISHER_BASE, 0, FINISHER_SIZE)
    .end()
    .end()
    .end()
    .finish();
}

/**
 * Where QEMU 7.2's `riscv_load_fdt` puts the DTB: 2 MiB-aligned below the end of RAM (or 3 GiB, if lower).
 *
 * @returns The address, or `undefined` when RAM is too small to hold it there.
 */
export function deviceTreeAddress(ramSize: number, fdtSize: number): number | undefined {
  const top = Math.min(RAM_BASE + ramSize, 0xc000_0000);
  const addr = Math.floor((top - fdtSize) / 0x20_0000) * 0x20_0000;
  return addr >= RAM_BASE ? addr : undefined;
}
