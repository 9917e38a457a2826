/**
 * `ferry migrate --qmp ADDRESS --to URI`: drives a live migration over QMP — of a Ferry machine or of QEMU, the
 * commands are the same — with a live progress line, and reports the result.
 *
 * @module
 */

import { QmpClient } from "../qmp/client.js";
import type { QmpMigrationInfo } from "../qmp/qmp-types.js";
import { parseCommandArgs } from "./args.js";
import type { Command } from "./main.js";

const HELP = `Usage: ferry migrate --qmp ADDRESS --to URI [options]

Live-migrates the machine behind the QMP socket ADDRESS (unix:PATH or tcp:127.0.0.1:PORT; a Ferry machine or
QEMU) to URI (tcp:HOST:PORT, unix:PATH, exec:COMMAND, fd:NAME, file:PATH[,offset=N]), showing progress until the
migration completes or fails.

Options:
  --qmp ADDRESS            the source's QMP socket (required)
  --to URI                 where to migrate (required)
  --max-bandwidth BYTES    max-bandwidth in bytes/s (QEMU's default is 134217728)
  --downtime-limit MS      downtime-limit in ms (default 300)
  --auto-converge          turn the auto-converge capability on
  --return-path            turn the return-path capability on (needs a two-way transport)
  --dest-qmp ADDRESS       also wait for the destination (its QMP socket) to report completed
  --timeout SECONDS        give up (and cancel) after this long (default 600)
  --json                   print the final query-migrate result as JSON
  -h, --help               this text
`;

function fmtBytes(n: number): string {
  if (n >= 1 << 30) return `${(n / (1 << 30)).toFixed(2)} GiB`;
  if (n >= 1 << 20) return `${(n / (1 << 20)).toFixed(1)} MiB`;
  if (n >= 1 << 10) return `${(n / (1 << 10)).toFixed(1)} KiB`;
  return `${n} B`;
}

/** One progress line from a `query-migrate` result. */
export function progressLine(info: QmpMigrationInfo): string {
  const ram = info.ram;
  const parts = [`status ${info.status ?? "none"}`];
  if (ram !== undefined) {
    parts.push(`pass ${ram["dirty-sync-count"] ?? 0}`);
    parts.push(`sent ${fmtBytes(ram.transferred ?? 0)}`);
    parts.push(`remaining ${fmtBytes(ram.remaining ?? 0)}`);
    parts.push(`${(ram.mbps ?? 0).toFixed(0)} Mbit/s`);
    parts.push(`dirty ${ram["dirty-pages-rate"] ?? 0} pages/s`);
  }
  if (info["expected-downtime"] !== undefined) parts.push(`expected downtime ${info["expected-downtime"]} ms`);
  if (info["cpu-throttle-percentage"] !== undefined) parts.push(`throttle ${info["cpu-throttle-percentage"]}%`);
  return parts.join(", ");
}

/** The `migrate` command. */
export const migrateCommand: Command = {
  summary: "live-migrate a machine (Ferry or QEMU) over QMP, with progress",
  async run(args) {
    const parsed = parseCommandArgs(args, HELP, {
      qmp: { type: "string" },
      to: { type: "string" },
      "max-bandwidth": { type: "string" },
      "downtime-limit": { type: "string" },
      "auto-converge": { type: "boolean", default: false },
      "return-path": { type: "boolean", default: false },
      "dest-qmp": { type: "string" },
      timeout: { type: "string", default: "600" },
      json: { type: "boolean", default: false },
    });
    if (typeof parsed === "number") return parsed;
    const { values } = parsed;
    if (values.qmp === undefined || values.to === undefined) {
      process.stderr.write(`ferry migrate: --qmp and --to are required\n\n${HELP}`);
      return 2;
    }
    const qmp = await QmpClient.connect(values.qmp);
    const dest = values["dest-qmp"] === undefined ? undefined : await QmpClient.connect(values["dest-qmp"]);
    const tty = process.stderr.isTTY === true && !values.json;
    try {
      const caps: { capability: string; state: boolean }[] = [];
      if (values["auto-converge"]) caps.push({ capability: "auto-converge", state: true });
      if (values["return-path"]) caps.push({ capability: "return-path", state: true });
      if (caps.length > 0) await qmp.execute("migrate-set-capabilities", { capabilities: caps } as never);
      const params: Record<string, number> = {};
      if (values["max-bandwidth"] !== undefined) params["max-bandwidth"] = Number(values["max-bandwidth"]);
      if (values["downtime-limit"] !== undefined) params["downtime-limit"] = Number(values["downtime-limit"]);
      if (Object.keys(params).length > 0) await qmp.execute("migrate-set-parameters", params as never);
      await qmp.execute("migrate", { uri: values.to } as never);
      const deadline = Date.now() + Number(values.timeout) * 1000;
      let info: QmpMigrationInfo = {};
      let lastPrinted = 0;
      for (;;) {
        info = (await qmp.execute("query-migrate")) as QmpMigrationInfo;
        const status = info.status;
        if (status === "completed" || status === "failed" || status === "cancelled") break;
        if (Date.now() > deadline) {
          await qmp.execute("migrate_cancel");
          process.stderr.write("\nferry migrate: timed out; migration cancelled\n");
        }
        const now = Date.now();
        if (tty) process.stderr.write(`\r\x1b[K${progressLine(info)}`);
        else if (!values.json && now - lastPrinted >= 1000) {
          process.stderr.write(`${progressLine(info)}\n`);
          lastPrinted = now;
        }
        await new Promise((r) => setTimeout(r, 100));
      }
      if (tty) process.stderr.write("\r\x1b[K");
      if (dest !== undefined && info.status === "completed") {
        for (;;) {
          const d = (await dest.execute("query-migrate")) as QmpMigrationInfo;
          if (d.status === "completed") break;
          if (d.status === "failed") {
            process.stderr.write(`ferry migrate: the destination failed: ${d["error-desc"] ?? "unknown error"}\n`);
            return 1;
          }
          await new Promise((r) => setTimeout(r, 50));
        }
      }
      if (values.json) process.stdout.write(`${JSON.stringify(info, null, 2)}\n`);
      else {
        process.stdout.write(`${progressLine(info)}\n`);
        if (info.status === "completed") {
          process.stdout.write(
            `total ${info["total-time"] ?? "?"} ms, downtime ${info.downtime ?? "?"} ms, setup ${info["setup-time"] ?? "?"} ms\n`,
          );
        } else if (info["error-desc"] !== undefined) process.stdout.write(`error: ${info["error-desc"]}\n`);
      }
      return info.status === "completed" ? 0 : 1;
    } finally {
      await qmp.close();
      await dest?.close();
    }
  },
};
