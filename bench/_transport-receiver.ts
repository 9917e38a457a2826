/**
 * Child process of bench/transport.ts: receives one stream and reports how many bytes/records arrived.
 * argv: MODE (raw | ferry) URI. raw: a plain Node server counting `'data'` bytes (no Ferry code); ferry: Ferry's
 * listener and a ByteReader parsing every record and copying its page out.
 */
import { listen } from "../src/transport/listen.js";
import { ByteReader, NEED_MORE } from "../src/wire/byte-reader.js";
import { rawReceive } from "./_raw-socket.js";

const [mode, uri] = process.argv.slice(2);
if (mode === undefined || uri === undefined) throw new Error("usage: MODE URI");
let bytes = 0;
let records = 0;
let cpuMs: number;
if (mode === "raw") {
  const got = await rawReceive(uri, (ready) => process.send?.({ ready }));
  bytes = got.bytes;
  cpuMs = got.cpuMs;
} else {
  const listener = await listen(uri);
  process.send?.({ ready: listener.uri });
  const ch = await listener.accept();
  const cpu0 = process.cpuUsage();
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
  const cpu = process.cpuUsage(cpu0);
  cpuMs = (cpu.user + cpu.system) / 1000;
  await ch.close();
}
process.send?.({ bytes, records, cpuMs });
process.disconnect?.();
