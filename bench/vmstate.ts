/**
 * `npm run bench -- vmstate [--json]`: encode and decode of a 64-field device (48 scalars, two fixed arrays, a
 * counted variable array, a buffer, five more scalars and a 6-field subsection) through the compiled vmstate codec,
 * beside a hand-written DataView codec of the same layout measured in the same run.
 *
 * Both encoders end in the same kind of `ByteWriter` (the hand-written one stages its bytes with a `DataView` and
 * puts them with one `bytes()` call, as the vmstate codec does); the hand-written one does not range-check values.
 * Both decoders read the same stream of devices, each followed by a 5-byte section footer, into an existing state
 * object; the hand-written one checks the count cap and the subsection header as a correct decoder must.
 */

import * as vm from "../src/vmstate/index.js";
import { ByteReader } from "../src/wire/byte-reader.js";
import { ByteWriter } from "../src/wire/byte-writer.js";
import { type Figure, median, note } from "./_report.js";

const KINDS = ["u8", "u16", "u32", "i32", "u64", "bool"] as const;
const FACTORY: Record<(typeof KINDS)[number], () => vm.Field> = {
  u8: vm.u8,
  u16: vm.u16,
  u32: vm.u32,
  i32: vm.i32,
  u64: vm.u64,
  bool: vm.bool,
};

function buildDevice() {
  const fields: Record<string, vm.Field> = {};
  for (let i = 0; i < 48; i++) {
    const k = KINDS[i % 6] as (typeof KINDS)[number];
    fields[`f${i}`] = FACTORY[k]();
  }
  fields.regs = vm.array(vm.u32(), 8);
  fields.bytes = vm.array(vm.u8(), 16);
  fields.n = vm.u16();
  fields.words = vm.varray(vm.u16(), "n", { max: 32 });
  fields.buf = vm.buffer(32);
  for (let i = 0; i < 5; i++) fields[`t${i}`] = vm.u32();
  return vm.device("bench", {
    version: 1,
    fields: fields as vm.Shape,
    subsections: {
      extra: {
        name: "bench/extra",
        version: 1,
        fields: { a: vm.u32(), b: vm.u32(), c: vm.u16(), d: vm.u8(), e: vm.u64(), g: vm.array(vm.u8(), 8) },
        needed: () => true,
      },
    },
  });
}

const dev = buildDevice();

// biome-ignore lint/suspicious/noExplicitAny: the hand-written codec reads and writes the state by name.
type State = any;

function makeState(seed: number): State {
  const s: State = vm.initialState(dev);
  for (let i = 0; i < 48; i++) {
    const k = KINDS[i % 6];
    const v = (seed * 7919 + i * 104729) >>> 0;
    s[`f${i}`] =
      k === "u8"
        ? v & 0xff
        : k === "u16"
          ? v & 0xffff
          : k === "u32"
            ? v
            : k === "i32"
              ? v | 0
              : k === "u64"
                ? BigInt(v) * 3n
                : (v & 1) === 1;
  }
  s.regs = Array.from({ length: 8 }, (_, i) => (seed + i * 65537) >>> 0);
  s.bytes = Array.from({ length: 16 }, (_, i) => (seed + i) & 0xff);
  s.n = 12;
  s.words = Array.from({ length: 12 }, (_, i) => (seed * 31 + i) & 0xffff);
  s.buf = new Uint8Array(32).fill(seed & 0xff);
  for (let i = 0; i < 5; i++) s[`t${i}`] = (seed * 3 + i) >>> 0;
  s.extra = { a: seed >>> 0, b: 7, c: 0x1234, d: 9, e: 0x1122334455667788n, g: [1, 2, 3, 4, 5, 6, 7, 8] };
  return s;
}

// ------------------------------------------------------------------------------------------- hand-written codec

const scratch = new Uint8Array(1024);
const sdv = new DataView(scratch.buffer);
const SUB_NAME = new TextEncoder().encode("bench/extra");

function handEncode(w: ByteWriter, s: State): void {
  const dv = sdv;
  let o = 0;
  dv.setUint8(o, s.f0);
  o += 1;
  dv.setUint16(o, s.f1);
  o += 2;
  dv.setUint32(o, s.f2);
  o += 4;
  dv.setInt32(o, s.f3);
  o += 4;
  dv.setBigUint64(o, s.f4);
  o += 8;
  dv.setUint8(o, s.f5 ? 1 : 0);
  o += 1;
  dv.setUint8(o, s.f6);
  o += 1;
  dv.setUint16(o, s.f7);
  o += 2;
  dv.setUint32(o, s.f8);
  o += 4;
  dv.setInt32(o, s.f9);
  o += 4;
  dv.setBigUint64(o, s.f10);
  o += 8;
  dv.setUint8(o, s.f11 ? 1 : 0);
  o += 1;
  dv.setUint8(o, s.f12);
  o += 1;
  dv.setUint16(o, s.f13);
  o += 2;
  dv.setUint32(o, s.f14);
  o += 4;
  dv.setInt32(o, s.f15);
  o += 4;
  dv.setBigUint64(o, s.f16);
  o += 8;
  dv.setUint8(o, s.f17 ? 1 : 0);
  o += 1;
  dv.setUint8(o, s.f18);
  o += 1;
  dv.setUint16(o, s.f19);
  o += 2;
  dv.setUint32(o, s.f20);
  o += 4;
  dv.setInt32(o, s.f21);
  o += 4;
  dv.setBigUint64(o, s.f22);
  o += 8;
  dv.setUint8(o, s.f23 ? 1 : 0);
  o += 1;
  dv.setUint8(o, s.f24);
  o += 1;
  dv.setUint16(o, s.f25);
  o += 2;
  dv.setUint32(o, s.f26);
  o += 4;
  dv.setInt32(o, s.f27);
  o += 4;
  dv.setBigUint64(o, s.f28);
  o += 8;
  dv.setUint8(o, s.f29 ? 1 : 0);
  o += 1;
  dv.setUint8(o, s.f30);
  o += 1;
  dv.setUint16(o, s.f31);
  o += 2;
  dv.setUint32(o, s.f32);
  o += 4;
  dv.setInt32(o, s.f33);
  o += 4;
  dv.setBigUint64(o, s.f34);
  o += 8;
  dv.setUint8(o, s.f35 ? 1 : 0);
  o += 1;
  dv.setUint8(o, s.f36);
  o += 1;
  dv.setUint16(o, s.f37);
  o += 2;
  dv.setUint32(o, s.f38);
  o += 4;
  dv.setInt32(o, s.f39);
  o += 4;
  dv.setBigUint64(o, s.f40);
  o += 8;
  dv.setUint8(o, s.f41 ? 1 : 0);
  o += 1;
  dv.setUint8(o, s.f42);
  o += 1;
  dv.setUint16(o, s.f43);
  o += 2;
  dv.setUint32(o, s.f44);
  o += 4;
  dv.setInt32(o, s.f45);
  o += 4;
  dv.setBigUint64(o, s.f46);
  o += 8;
  dv.setUint8(o, s.f47 ? 1 : 0);
  o += 1;
  for (let i = 0; i < 8; i++, o += 4) dv.setUint32(o, s.regs[i]);
  for (let i = 0; i < 16; i++, o += 1) dv.setUint8(o, s.bytes[i]);
  const n = s.n;
  dv.setUint16(o, n);
  o += 2;
  for (let i = 0; i < n; i++, o += 2) dv.setUint16(o, s.words[i]);
  scratch.set(s.buf, o);
  o += 32;
  dv.setUint32(o, s.t0);
  o += 4;
  dv.setUint32(o, s.t1);
  o += 4;
  dv.setUint32(o, s.t2);
  o += 4;
  dv.setUint32(o, s.t3);
  o += 4;
  dv.setUint32(o, s.t4);
  o += 4;
  dv.setUint8(o, 5);
  dv.setUint8(o + 1, SUB_NAME.length);
  scratch.set(SUB_NAME, o + 2);
  o += 2 + SUB_NAME.length;
  dv.setUint32(o, 1);
  o += 4;
  const x = s.extra;
  dv.setUint32(o, x.a);
  o += 4;
  dv.setUint32(o, x.b);
  o += 4;
  dv.setUint16(o, x.c);
  o += 2;
  dv.setUint8(o, x.d);
  o += 1;
  dv.setBigUint64(o, x.e);
  o += 8;
  for (let i = 0; i < 8; i++, o += 1) dv.setUint8(o, x.g[i]);
  w.bytes(scratch.subarray(0, o));
}

function handDecode(dv: DataView, bytes: Uint8Array, o: number, s: State): number {
  s.f0 = dv.getUint8(o);
  o += 1;
  s.f1 = dv.getUint16(o);
  o += 2;
  s.f2 = dv.getUint32(o);
  o += 4;
  s.f3 = dv.getInt32(o);
  o += 4;
  s.f4 = dv.getBigUint64(o);
  o += 8;
  s.f5 = dv.getUint8(o) !== 0;
  o += 1;
  s.f6 = dv.getUint8(o);
  o += 1;
  s.f7 = dv.getUint16(o);
  o += 2;
  s.f8 = dv.getUint32(o);
  o += 4;
  s.f9 = dv.getInt32(o);
  o += 4;
  s.f10 = dv.getBigUint64(o);
  o += 8;
  s.f11 = dv.getUint8(o) !== 0;
  o += 1;
  s.f12 = dv.getUint8(o);
  o += 1;
  s.f13 = dv.getUint16(o);
  o += 2;
  s.f14 = dv.getUint32(o);
  o += 4;
  s.f15 = dv.getInt32(o);
  o += 4;
  s.f16 = dv.getBigUint64(o);
  o += 8;
  s.f17 = dv.getUint8(o) !== 0;
  o += 1;
  s.f18 = dv.getUint8(o);
  o += 1;
  s.f19 = dv.getUint16(o);
  o += 2;
  s.f20 = dv.getUint32(o);
  o += 4;
  s.f21 = dv.getInt32(o);
  o += 4;
  s.f22 = dv.getBigUint64(o);
  o += 8;
  s.f23 = dv.getUint8(o) !== 0;
  o += 1;
  s.f24 = dv.getUint8(o);
  o += 1;
  s.f25 = dv.getUint16(o);
  o += 2;
  s.f26 = dv.getUint32(o);
  o += 4;
  s.f27 = dv.getInt32(o);
  o += 4;
  s.f28 = dv.getBigUint64(o);
  o += 8;
  s.f29 = dv.getUint8(o) !== 0;
  o += 1;
  s.f30 = dv.getUint8(o);
  o += 1;
  s.f31 = dv.getUint16(o);
  o += 2;
  s.f32 = dv.getUint32(o);
  o += 4;
  s.f33 = dv.getInt32(o);
  o += 4;
  s.f34 = dv.getBigUint64(o);
  o += 8;
  s.f35 = dv.getUint8(o) !== 0;
  o += 1;
  s.f36 = dv.getUint8(o);
  o += 1;
  s.f37 = dv.getUint16(o);
  o += 2;
  s.f38 = dv.getUint32(o);
  o += 4;
  s.f39 = dv.getInt32(o);
  o += 4;
  s.f40 = dv.getBigUint64(o);
  o += 8;
  s.f41 = dv.getUint8(o) !== 0;
  o += 1;
  s.f42 = dv.getUint8(o);
  o += 1;
  s.f43 = dv.getUint16(o);
  o += 2;
  s.f44 = dv.getUint32(o);
  o += 4;
  s.f45 = dv.getInt32(o);
  o += 4;
  s.f46 = dv.getBigUint64(o);
  o += 8;
  s.f47 = dv.getUint8(o) !== 0;
  o += 1;
  const regs = new Array<number>(8);
  for (let i = 0; i < 8; i++, o += 4) regs[i] = dv.getUint32(o);
  s.regs = regs;
  const by = new Array<number>(16);
  for (let i = 0; i < 16; i++, o += 1) by[i] = dv.getUint8(o);
  s.bytes = by;
  const n = dv.getUint16(o);
  o += 2;
  if (n > 32) throw new Error("count over max");
  s.n = n;
  const words = new Array<number>(n);
  for (let i = 0; i < n; i++, o += 2) words[i] = dv.getUint16(o);
  s.words = words;
  s.buf.set(bytes.subarray(o, o + 32));
  o += 32;
  s.t0 = dv.getUint32(o);
  o += 4;
  s.t1 = dv.getUint32(o);
  o += 4;
  s.t2 = dv.getUint32(o);
  o += 4;
  s.t3 = dv.getUint32(o);
  o += 4;
  s.t4 = dv.getUint32(o);
  o += 4;
  if (dv.getUint8(o) !== 5 || dv.getUint8(o + 1) !== SUB_NAME.length) throw new Error("subsection expected");
  for (let i = 0; i < SUB_NAME.length; i++) if (bytes[o + 2 + i] !== SUB_NAME[i]) throw new Error("bad subsection");
  o += 2 + SUB_NAME.length;
  if (dv.getUint32(o) !== 1) throw new Error("bad version");
  o += 4;
  const x = s.extra;
  x.a = dv.getUint32(o);
  o += 4;
  x.b = dv.getUint32(o);
  o += 4;
  x.c = dv.getUint16(o);
  o += 2;
  x.d = dv.getUint8(o);
  o += 1;
  x.e = dv.getBigUint64(o);
  o += 8;
  const g = new Array<number>(8);
  for (let i = 0; i < 8; i++, o += 1) g[i] = dv.getUint8(o);
  x.g = g;
  return o;
}

// ---------------------------------------------------------------------------------------------------- harness

const nullSink = { write: (_c: Uint8Array): Promise<void> => Promise.resolve() };

async function timeEncode(n: number, encode: (w: ByteWriter, s: State) => void, states: State[]): Promise<number> {
  const w = new ByteWriter(nullSink, { bufferSize: 1 << 20 });
  const batch = 10_000;
  let elapsed = 0;
  for (let done = 0; done < n; done += batch) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < batch; i++) encode(w, states[i & 63]);
    elapsed += Number(process.hrtime.bigint() - t0);
    await w.flush();
  }
  return elapsed / n;
}

function timeDecode(
  n: number,
  stream: Uint8Array,
  per: number,
  decodeAll: (stream: Uint8Array, s: State) => void,
): number {
  const s = makeState(1);
  const rounds = Math.ceil(n / per);
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < rounds; i++) decodeAll(stream, s);
  return Number(process.hrtime.bigint() - t0) / (rounds * per);
}

/**
 * Runs the benchmark. Options: `--n N` (default 1e6 devices per measurement), `--rounds R` (default 3),
 * `--jitless` (measure the closure path: `vm.setVmstateJit(false)`).
 */
export async function run(args: string[], _json: boolean): Promise<Figure[]> {
  vm.setVmstateJit(!args.includes("--jitless"));
  const nArg = args.indexOf("--n");
  const n = nArg >= 0 ? Number(args[nArg + 1]) : 1_000_000;
  const rArg = args.indexOf("--rounds");
  const rounds = rArg >= 0 ? Number(args[rArg + 1]) : 3;
  const states = Array.from({ length: 64 }, (_, i) => makeState(i + 1));

  // One stream of PER devices, each followed by a 5-byte footer (7e + be32 id), as in a real stream.
  const PER = 1000;
  const parts: Uint8Array[] = [];
  const w = new ByteWriter(
    {
      write: (c: Uint8Array) => {
        parts.push(c.slice());
        return Promise.resolve();
      },
    },
    { bufferSize: 1 << 22 },
  );
  for (let i = 0; i < PER; i++) {
    vm.saveDevice(w, dev, states[i & 63]);
    w.u8(0x7e).u32(i);
  }
  await w.flush();
  const stream = new Uint8Array(parts.reduce((a, p) => a + p.length, 0));
  let off = 0;
  for (const p of parts) {
    stream.set(p, off);
    off += p.length;
  }

  // Both codecs must agree before they are timed.
  const hw = new ByteWriter({
    write: (c: Uint8Array) => {
      parts.push(c.slice());
      return Promise.resolve();
    },
  });
  parts.length = 0;
  handEncode(hw, states[0]);
  await hw.flush();
  const a = parts[0] as Uint8Array;
  const b = stream.subarray(0, a.length);
  if (a.length === 0 || !a.every((x, i) => x === b[i])) throw new Error("hand-written and vmstate encodings differ");

  const ferryDecodeAll = (bytes: Uint8Array, s: State): void => {
    const r = ByteReader.fromBytes(bytes);
    for (let i = 0; i < PER; i++) {
      vm.loadDevice(r, dev, s, 1);
      r.skip(5);
    }
  };
  const handDecodeAll = (bytes: Uint8Array, s: State): void => {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let o = 0;
    for (let i = 0; i < PER; i++) o = handDecode(dv, bytes, o, s) + 5;
  };

  const enc: number[] = [];
  const encBase: number[] = [];
  const dec: number[] = [];
  const decBase: number[] = [];
  // Warm up both paths, then alternate measurements.
  await timeEncode(100_000, (w2, s) => vm.saveDevice(w2, dev, s), states);
  await timeEncode(100_000, handEncode, states);
  timeDecode(100_000, stream, PER, ferryDecodeAll);
  timeDecode(100_000, stream, PER, handDecodeAll);
  for (let r = 0; r < rounds; r++) {
    note(`vmstate: round ${r + 1}/${rounds}`);
    enc.push(await timeEncode(n, (w2, s) => vm.saveDevice(w2, dev, s), states));
    encBase.push(await timeEncode(n, handEncode, states));
    dec.push(timeDecode(n, stream, PER, ferryDecodeAll));
    decBase.push(timeDecode(n, stream, PER, handDecodeAll));
  }
  const fig = (metric: string, value: number, baselineValue: number): Figure => ({
    bench: "vmstate",
    metric,
    value,
    unit: "ns/device",
    baseline: "hand-written-dataview",
    baselineValue,
    higherIsBetter: false,
  });
  return [fig("encode", median(enc), median(encBase)), fig("decode", median(dec), median(decBase))];
}
