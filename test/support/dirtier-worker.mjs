// Worker thread of the synthetic machine: dirties guest RAM the way a vCPU does (data store, then a plain
// `dirty[page] = 1`), at a set rate, and honours stop / cont / throttle through a shared control word.
// Plain JS so it loads in a worker without a TypeScript loader.
import { parentPort, workerData } from "node:worker_threads";

const { blocks, control } = workerData;
const ctl = new Int32Array(control); // [0] command 0=run 1=stop 2=quit, [1] ack 0=running 1=stopped, [2] throttle %, [3] pages/s (0 = as fast as possible, < 0 = none), [4..5] writes (lo, hi)
const views = blocks.map((b) => ({
  bytes: new Uint8Array(b.memory.buffer, b.byteOffset, b.size),
  dirty: new Uint8Array(b.dirty),
  pages: b.size / 4096,
}));
let seq = 1;
let writes = 0;
let page = 0;
let block = 0;
const period = 10; // ms, the throttle's period
for (;;) {
  const cmd = Atomics.load(ctl, 0);
  if (cmd === 2) break;
  if (cmd === 1) {
    Atomics.store(ctl, 1, 1);
    Atomics.notify(ctl, 1);
    Atomics.wait(ctl, 0, 1);
    continue;
  }
  Atomics.store(ctl, 1, 0);
  const throttle = Atomics.load(ctl, 2);
  const rate = Atomics.load(ctl, 3);
  if (rate < 0) {
    // An idle guest: runs, but writes nothing.
    Atomics.wait(ctl, 0, 0, period);
    continue;
  }
  const t0 = performance.now();
  const runMs = (period * (100 - throttle)) / 100;
  // A throttled vCPU does proportionally less work: the page budget shrinks with the throttle too.
  const budget =
    rate > 0 ? Math.max(1, Math.round((rate * period * (100 - throttle)) / 100 / 1000)) : Number.POSITIVE_INFINITY;
  let n = 0;
  // Work for runMs of each 10 ms period (or until the period's page budget is spent), polling the command.
  while (n < budget && performance.now() - t0 < runMs) {
    for (let k = 0; k < 64 && n < budget; k++, n++) {
      const v = views[block];
      const off = page * 4096 + ((seq * 8) & 4095);
      // Write a recognisable value: a sequence number in 4 bytes (little-endian), then mark the page.
      v.bytes[off] = seq & 0xff;
      v.bytes[off + 1] = (seq >>> 8) & 0xff;
      v.bytes[off + 2] = (seq >>> 16) & 0xff;
      v.bytes[off + 3] = (seq >>> 24) & 0xff;
      v.dirty[page] = 1;
      seq++;
      writes++;
      page = (page * 1103515245 + 12345 + seq) % v.pages;
      if (++block >= views.length) block = 0;
      if (page >= views[block].pages) page %= views[block].pages;
    }
    if (Atomics.load(ctl, 0) !== 0) break;
  }
  Atomics.store(ctl, 4, writes | 0);
  const left = period - (performance.now() - t0);
  if (left > 0 && Atomics.load(ctl, 0) === 0) Atomics.wait(ctl, 0, 0, left);
}
parentPort?.postMessage("quit");
