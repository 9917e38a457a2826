/**
 * The configuration section (QEMU: `vmstate_configuration` in `migration/savevm.c`): machine type, target page
 * bits, validated capabilities and UUID, written right after the stream header.
 *
 * @module
 */

import { MigrationError } from "../errors.js";
import type { ByteReader } from "../wire/byte-reader.js";
import { decodeText } from "../wire/byte-reader.js";
import type { ByteWriter } from "../wire/byte-writer.js";
import { asciiOrUtf8 } from "../wire/byte-writer.js";
import { SectionType, TARGET_PAGE_BITS } from "./format.js";

/** Capabilities whose on/off state QEMU 7.2 validates through the configuration section. */
export const VALIDATED_CAPABILITIES: readonly string[] = ["x-ignore-shared"];

/** What a machine says about itself in the configuration section. */
export interface MachineConfig {
  /** The canonical machine type name, e.g. `pc-i440fx-7.2` or `ferry-rv32-1.1`. */
  readonly machineType: string;
  /**
   * Other machine type names a stream may carry and still load here (Ferry's table of compatible machine types;
   * QEMU only compares a prefix). Default: none.
   */
  readonly compatibleMachineTypes?: readonly string[];
  /** Target page bits; default 12. Sent only when above `minPageBits`. */
  readonly pageBits?: number;
  /** The architecture's minimum page bits (QEMU: `TARGET_PAGE_BITS_MIN`); default 12. */
  readonly minPageBits?: number;
  /** Validated capabilities that are on (QEMU 7.2: only `x-ignore-shared`). */
  readonly capabilities?: readonly string[];
  /** The VM's UUID (16 bytes), sent when `validateUuid` is on. */
  readonly uuid?: Uint8Array;
  /** QEMU's `validate-uuid` capability. */
  readonly validateUuid?: boolean;
  /** QEMU's `send-configuration` machine property; default true. */
  readonly sendConfiguration?: boolean;
}

/** The configuration as read from a stream. */
export interface StreamConfig {
  readonly machineType: string;
  readonly pageBits: number | undefined;
  readonly capabilities: readonly string[] | undefined;
  readonly uuid: Uint8Array | undefined;
}

/** Longest machine type name accepted from the wire (QEMU allocates the announced length blindly). */
export const MAX_MACHINE_TYPE_LENGTH = 256;
/** Most capabilities accepted in the capabilities subsection. */
export const MAX_CAPABILITIES = 64;

const SUB_PAGE_BITS = "configuration/target-page-bits";
const SUB_CAPS = "configuration/capabilities";
const SUB_UUID = "configuration/uuid";

/** Writes the configuration marker and payload. */
export function writeConfiguration(w: ByteWriter, c: MachineConfig): void {
  const name = asciiOrUtf8(c.machineType);
  w.u8(SectionType.Configuration).u32(name.length).bytes(name);
  const pageBits = c.pageBits ?? TARGET_PAGE_BITS;
  if (pageBits > (c.minPageBits ?? TARGET_PAGE_BITS)) {
    w.u8(SectionType.Subsection).str(SUB_PAGE_BITS).u32(1).u32(pageBits);
  }
  const caps = (c.capabilities ?? []).filter((x) => VALIDATED_CAPABILITIES.includes(x));
  if (caps.length > 0) {
    w.u8(SectionType.Subsection).str(SUB_CAPS).u32(1).u32(caps.length);
    for (const cap of caps) w.str(cap);
  }
  if (c.validateUuid === true && c.uuid !== undefined) {
    if (c.uuid.length !== 16) throw new RangeError(`Cannot write UUID: it has ${c.uuid.length} bytes, not 16`);
    w.u8(SectionType.Subsection).str(SUB_UUID).u32(1).bytes(c.uuid);
  }
}

function bad(message: string, offset: number, path: string[] = ["configuration"]): MigrationError {
  return new MigrationError("CONFIG_MISMATCH", message, { path, offset });
}

/**
 * Decodes the configuration payload (after the 0x07 marker). Pure and synchronous: re-run on underflow.
 */
export function decodeConfiguration(r: ByteReader): StreamConfig {
  const lenAt = r.offset;
  const len = r.u32();
  if (len > MAX_MACHINE_TYPE_LENGTH) {
    throw new MigrationError(
      "LIMIT_EXCEEDED",
      `Cannot load configuration: machine type name of ${len} bytes is over the limit of ${MAX_MACHINE_TYPE_LENGTH}`,
      { path: ["configuration", "len"], offset: lenAt },
    );
  }
  const machineType = decodeText(r.bytes(len));
  let pageBits: number | undefined;
  let capabilities: string[] | undefined;
  let uuid: Uint8Array | undefined;
  const seen = new Set<string>();
  // Subsection loop with QEMU's prefix rule: stop (not an error) at anything that is not a configuration/
  // subsection; an unknown configuration/ subsection is an error.
  while (r.available >= 1 || !r.sourceEnded) {
    if (r.peekU8() !== SectionType.Subsection) break;
    const nameLen = r.peekU8(1);
    if (nameLen < "configuration".length + 1) break;
    const name = decodeText(r.peekBytes(2, nameLen));
    if (!name.startsWith("configuration/")) break;
    const at = r.offset;
    r.skip(2 + nameLen);
    if (seen.has(name)) {
      throw new MigrationError("SUBSECTION_MISMATCH", `Cannot load configuration: subsection "${name}" appears twice`, {
        path: ["configuration", name],
        offset: at,
      });
    }
    seen.add(name);
    if (name !== SUB_PAGE_BITS && name !== SUB_CAPS && name !== SUB_UUID) {
      throw new MigrationError("SUBSECTION_MISMATCH", `Cannot load configuration: unknown subsection "${name}"`, {
        path: ["configuration", name],
        offset: at,
      });
    }
    const version = r.u32();
    if (version !== 1) {
      throw new MigrationError(
        version > 1 ? "VERSION_TOO_NEW" : "VERSION_TOO_OLD",
        `Cannot load configuration subsection "${name}": version ${version} is not 1`,
        { path: ["configuration", name], offset: at },
      );
    }
    if (name === SUB_PAGE_BITS) pageBits = r.u32();
    else if (name === SUB_CAPS) {
      const countAt = r.offset;
      const count = r.u32();
      if (count > MAX_CAPABILITIES) {
        throw new MigrationError(
          "LIMIT_EXCEEDED",
          `Cannot load configuration: ${count} capabilities is over the limit of ${MAX_CAPABILITIES}`,
          { path: ["configuration", "capabilities"], offset: countAt },
        );
      }
      capabilities = [];
      for (let i = 0; i < count; i++) capabilities.push(r.str());
    } else {
      uuid = r.bytes(16).slice();
    }
  }
  return { machineType, pageBits, capabilities, uuid };
}

/**
 * Checks a received configuration against this machine's, as QEMU's `configuration_post_load` does, but with an
 * exact machine type compare (plus a table of compatible types) instead of QEMU's prefix compare.
 *
 * @param got What the stream carries.
 * @param local This machine's configuration.
 * @param offset Stream offset of the configuration, for errors.
 * @returns Warnings that do not fail the load (QEMU: a UUID on one side only).
 */
export function checkConfiguration(got: StreamConfig, local: MachineConfig, offset: number): string[] {
  const warnings: string[] = [];
  const okTypes = [local.machineType, ...(local.compatibleMachineTypes ?? [])];
  if (!okTypes.includes(got.machineType)) {
    throw bad(`Machine type received is "${got.machineType}" and local is "${local.machineType}"`, offset, [
      "configuration",
      "name",
    ]);
  }
  const localBits = local.pageBits ?? TARGET_PAGE_BITS;
  const gotBits = got.pageBits ?? local.minPageBits ?? TARGET_PAGE_BITS;
  if (gotBits !== localBits) {
    throw bad(`Received target page bits ${gotBits} differ from local ${localBits}`, offset, [
      "configuration",
      "target-page-bits",
    ]);
  }
  const gotCaps = got.capabilities ?? [];
  for (const cap of gotCaps) {
    if (!VALIDATED_CAPABILITIES.includes(cap)) {
      throw bad(`Received unknown capability "${cap}"`, offset, ["configuration", "capabilities"]);
    }
  }
  const localCaps = local.capabilities ?? [];
  for (const cap of VALIDATED_CAPABILITIES) {
    const src = gotCaps.includes(cap);
    const dst = localCaps.includes(cap);
    if (src !== dst) {
      throw bad(`Capability "${cap}" is ${src ? "on" : "off"} on the source and ${dst ? "on" : "off"} here`, offset, [
        "configuration",
        "capabilities",
      ]);
    }
  }
  if (got.uuid !== undefined) {
    if (local.uuid === undefined) warnings.push("UUID received but this machine has none: not checked");
    else if (!equalBytes(got.uuid, local.uuid)) {
      throw bad(`UUID mismatch: received ${formatUuid(got.uuid)}, local ${formatUuid(local.uuid)}`, offset, [
        "configuration",
        "uuid",
      ]);
    }
  }
  return warnings;
}

function equalBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Formats 16 bytes as a textual UUID. */
export function formatUuid(u: Uint8Array): string {
  const h = [...u].map((b) => b.toString(16).padStart(2, "0")).join("");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

/** Parses a textual UUID into 16 bytes. */
export function parseUuid(s: string): Uint8Array {
  const h = s.replace(/-/g, "");
  if (!/^[0-9a-fA-F]{32}$/.test(h)) throw new RangeError(`Cannot parse UUID "${s}"`);
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) out[i] = Number.parseInt(h.slice(i * 2, i * 2 + 2), 16);
  return out;
}
