/**
 * Helpers shared by the vmstate tests (not exported from the folder).
 *
 * @module
 */

import { isMigrationError } from "../errors.js";
import { ByteReader } from "../wire/byte-reader.js";
import { encodeBytes } from "../wire/byte-writer.js";
import type { AnyDevice } from "./device.js";
import * as vm from "./index.js";
import { loadDevice } from "./load.js";
import { saveDevice } from "./save.js";
import type { VmdescVmsd } from "./vmdesc-json.js";

/** Bytes as lower-case hex. */
export function hex(b: Uint8Array): string {
  let s = "";
  for (const x of b) s += x.toString(16).padStart(2, "0");
  return s;
}

/** Hex (spaces, newlines and `|` ignored) to bytes. */
export function unhex(s: string): Uint8Array {
  const t = s.replace(/[\s|]/g, "");
  const out = new Uint8Array(t.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = Number.parseInt(t.slice(2 * i, 2 * i + 2), 16);
  return out;
}

/** ASCII text as hex. */
export function ascii(s: string): string {
  return hex(new TextEncoder().encode(s));
}

/** Saves into a fresh byte array. */
export function save(dev: AnyDevice, state: object): Uint8Array {
  return encodeBytes((w) => {
    saveDevice(w, dev, state);
  });
}

/** Saves and returns the bytes and the vmdesc object. */
export function saveWithVmdesc(dev: AnyDevice, state: object): { bytes: Uint8Array; vmdesc: VmdescVmsd } {
  let vmdesc: VmdescVmsd | undefined;
  const bytes = encodeBytes((w) => {
    vmdesc = saveDevice(w, dev, state, { vmdesc: true });
  });
  return { bytes, vmdesc: vmdesc as VmdescVmsd };
}

/**
 * Runs `fn` once with the generated codec and once with the closure path (restoring the switch after), and returns
 * both results, generated first.
 */
export function bothPaths<T>(fn: () => T): [T, T] {
  const was = vm.vmstateJit();
  try {
    vm.setVmstateJit(true);
    const a = fn();
    vm.setVmstateJit(false);
    const b = fn();
    return [a, b];
  } finally {
    vm.setVmstateJit(was);
  }
}

/** What a call did: its value, or the error's code, message, path and offset (for comparing the two paths). */
export function outcome(fn: () => unknown): unknown {
  try {
    return { ok: fn() };
  } catch (e) {
    if (isMigrationError(e)) return { code: e.code, message: e.message, path: e.path, offset: e.offset };
    return { thrown: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
  }
}

/** Loads bytes into a state (sync, over the whole buffer); returns the reader offset after. */
export function load(dev: AnyDevice, state: object, bytes: Uint8Array, version: number): number {
  const r = ByteReader.fromBytes(bytes);
  loadDevice(r, dev, state, version);
  return r.offset;
}

/** An async chunk source over bytes split at the given sizes (cycled). */
export function chunked(bytes: Uint8Array, sizes: readonly number[]): { read(): Promise<Uint8Array | null> } {
  let off = 0;
  let k = 0;
  return {
    read(): Promise<Uint8Array | null> {
      if (off >= bytes.length) return Promise.resolve(null);
      const n = Math.max(1, sizes[k++ % sizes.length] ?? 1);
      const c = bytes.slice(off, off + n);
      off += n;
      return Promise.resolve(c);
    },
  };
}

// ------------------------------------------------------------------------------------------- ide_drive fixture

/** QEMU 7.2 hw/ide/core.c `vmstate_ide_drive` and its subsections. */
export const ideDrive = vm.device("ide_drive", {
  version: 3,
  minVersion: 0,
  fields: {
    mult_sectors: vm.i32(),
    identify_set: vm.i32(),
    identify_data: vm.buffer(512, { test: (s) => s.identify_set !== 0 }),
    feature: vm.u8(),
    error: vm.u8(),
    nsector: vm.u32(),
    sector: vm.u8(),
    lcyl: vm.u8(),
    hcyl: vm.u8(),
    hob_feature: vm.u8(),
    hob_sector: vm.u8(),
    hob_nsector: vm.u8(),
    hob_lcyl: vm.u8(),
    hob_hcyl: vm.u8(),
    select: vm.u8(),
    status: vm.u8(),
    lba48: vm.u8(),
    sense_key: vm.u8(),
    asc: vm.u8(),
    cdrom_changed: vm.u8({ since: 3 }),
  },
  subsections: {
    pio_state: {
      name: "ide_drive/pio_state",
      version: 1,
      fields: {
        req_nb_sectors: vm.i32(),
        // IDEState.io_buffer_total_len: set at realize, never sent; the count of io_buffer.
        io_buffer_total_len: vm.local(vm.i32()),
        io_buffer: vm.varray(vm.u8(), "io_buffer_total_len", { max: 256 * 512 + 4 }),
        cur_io_buffer_offset: vm.i32(),
        cur_io_buffer_len: vm.i32(),
        end_transfer_fn_idx: vm.u8(),
        elementary_transfer_size: vm.i32(),
        packet_transfer_size: vm.i32(),
      },
      needed: (s) => (s.status & 0x08) !== 0, // DRQ_STAT
    },
    tray_state: {
      name: "ide_drive/tray_state",
      version: 1,
      fields: { tray_open: vm.bool(), tray_locked: vm.bool() },
      needed: (s) => s.tray_state.tray_open || s.tray_state.tray_locked,
    },
    gesn_state: {
      name: "ide_drive/atapi/gesn_state",
      version: 1,
      fields: { new_media: vm.bool(), eject_request: vm.bool() },
      needed: (s) => s.gesn_state.new_media || s.gesn_state.eject_request,
    },
  },
});

export function ideState(): vm.Infer<typeof ideDrive> {
  const s = vm.initialState(ideDrive);
  Object.assign(s, { mult_sectors: 16, error: 1, nsector: 1, sector: 1, lcyl: 0x14, hcyl: 0xeb, select: 0xa0 });
  s.status = 0x58; // DRDY | DSC | DRQ: a PIO transfer is in progress
  s.pio_state.io_buffer_total_len = 20;
  s.pio_state.io_buffer = Array.from({ length: 20 }, (_, i) => i);
  Object.assign(s.pio_state, {
    req_nb_sectors: 1,
    cur_io_buffer_offset: 4,
    cur_io_buffer_len: 16,
    end_transfer_fn_idx: 2,
  });
  return s;
}

export const IDE_BYTES = [
  "00000010 00000000", // mult_sectors 16, identify_set 0 (identify_data's test is false: not sent)
  "00 01 00000001 01 14 eb", // feature, error, nsector, sector, lcyl, hcyl
  "00 00 00 00 00 a0 58 00 00 00 00", // hob_*, select, status, lba48, sense_key, asc, cdrom_changed (v3)
  `05 13 ${ascii("ide_drive/pio_state")} 00000001`, // subsection header, len 19, version 1
  "00000001", // req_nb_sectors
  "000102030405060708090a0b0c0d0e0f10111213", // io_buffer: io_buffer_total_len (20) bytes
  "00000004 00000010 02 00000000 00000000", // cur offset, cur len, end_transfer_fn_idx, elementary, packet
].join(" ");

/** A destination state for ide_drive: realize set io_buffer_total_len (20 here, 131076 in QEMU). */
export function ideDest(): vm.Infer<typeof ideDrive> {
  const t = vm.initialState(ideDrive);
  t.pio_state.io_buffer_total_len = 20;
  t.pio_state.io_buffer = new Array<number>(20).fill(0);
  return t;
}
