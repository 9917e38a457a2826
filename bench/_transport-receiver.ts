/**
 * Child process of bench/transport.ts: receives one stream and reports how many bytes/records arrived.
 * argv: MODE (raw | ferry) URI
 */
import { listen } from "../src/transport/listen.js";
import { ByteReader, NEED_MORE } from "../src/wire/byte-reader.js";

const [mode, uri] = process.argv.slice(2);
if (mode === undefined || uri === undefined) throw new Error("usage: MODE URI");
const listener = await listen(uri);
process.send?.({ ready: listener.uri });
const ch = await listener.accept();
const cpu0 = process.cpuUsage();
let bytes = 0;
let records = 0;
if (mode === "raw") {
  for (;;) {
    const c = await ch.read();
    if (c === null) break;
    bytes += c.length;
  }
} else {
  const r = new ByteReader(ch);
  const page = new Uint8Array(4096);
  const record = (r: ByteReader): boolean => {
    const word = r.u64n();
    if (word === 0x10) return false;
    r.copyTo(page, 0, 4096);
    return true;
  };
  for (;;) {
    const more = r.tryDecode(record);
    if (more === NEED_MORE) {
      if (!(await r.more())) throw new Error("stream ended early");
      continue;
    }
    if (!more) break;
    records++;
  }
  bytes = r.offset;
}
const cpu = process.cpuUsage(cpu0);
await ch.close();
process.send?.({ bytes, records, cpuMs: (cpu.user + cpu.system) / 1000 });
process.disconnect?.();
