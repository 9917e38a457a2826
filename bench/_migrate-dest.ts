/**
 * Child process of bench/migrate.ts: a destination machine of the same shape, listening on tcp loopback.
 * argv: MODE (ferry | raw) MIB
 */
import { MigrationDestination } from "../src/migration/destination.js";
import { DEFAULT_SETTINGS } from "../src/migration/settings.js";
import { listen } from "../src/transport/listen.js";
import { SyntheticMachine } from "../test/support/synthetic-machine.js";
import { rawReceive } from "./_raw-socket.js";

const [mode, mibArg, prealloc] = process.argv.slice(2);
const mib = Number(mibArg);
if (mode === "raw") {
  const t0 = performance.now();
  const { bytes } = await rawReceive("tcp:127.0.0.1:0", (ready) => process.send?.({ ready }));
  process.send?.({ bytes, ms: performance.now() - t0 });
} else {
  const listener = await listen("tcp:127.0.0.1:0");
  const m = new SyntheticMachine({ blocksMiB: [mib] });
  // QEMU's -mem-prealloc: map the guest RAM before the stream arrives.
  if (prealloc === "prealloc") for (const b of m.blocks) b.prefault();
  const settings = { ...DEFAULT_SETTINGS, returnPath: true };
  const dst = new MigrationDestination(m, { settings: () => settings, paused: true });
  process.send?.({ ready: listener.uri });
  const cpu0 = process.cpuUsage();
  dst.start(() => listener.accept());
  await dst.done;
  const cpu = process.cpuUsage(cpu0);
  process.send?.({
    status: dst.status,
    error: dst.error?.message ?? null,
    bytes: dst.bytes,
    cpuMs: Math.round((cpu.user + cpu.system) / 1000),
  });
  await m.dispose();
}
process.disconnect?.();
