/**
 * Return-path messages, destination → source, on the same channel (QEMU: `migrate_send_rp_message`,
 * `source_return_path_thread`): `be16 type, be16 len, payload`.
 *
 * @module
 */

import { MigrationError } from "../errors.js";
import type { ByteReader } from "../wire/byte-reader.js";

/** Return-path message types (QEMU: `enum mig_rp_message_type`, 7.2). */
export const RpMessage = {
  /** `MIG_RP_MSG_SHUT`: be32 0 = destination finished OK, non-zero = error. */
  Shut: 1,
  /** `MIG_RP_MSG_PONG`: be32 echo of a PING. */
  Pong: 2,
  /** `MIG_RP_MSG_REQ_PAGES_ID` (postcopy). */
  ReqPagesId: 3,
  /** `MIG_RP_MSG_REQ_PAGES` (postcopy). */
  ReqPages: 4,
  /** `MIG_RP_MSG_RECV_BITMAP` (postcopy recovery). */
  RecvBitmap: 5,
  /** `MIG_RP_MSG_RESUME_ACK` (postcopy recovery). */
  ResumeAck: 6,
} as const;
/** A return-path message type. */
export type RpMessage = (typeof RpMessage)[keyof typeof RpMessage];

/** `MIG_RP_MSG_MAX` in 7.2. */
export const RP_MESSAGE_MAX = 7;
/** Longest return-path payload a source accepts (QEMU: 512). */
export const RP_MAX_LENGTH = 512;

const FIXED: Readonly<Record<number, number>> = { 1: 4, 2: 4, 4: 12, 6: 4 };

/** Encodes one return-path message. */
export function encodeRpMessage(type: number, payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(4 + payload.length);
  const dv = new DataView(out.buffer);
  dv.setUint16(0, type);
  dv.setUint16(2, payload.length);
  out.set(payload, 4);
  return out;
}

/** Encodes a message with one be32 payload (SHUT, PONG). */
export function encodeRpU32(type: number, value: number): Uint8Array {
  const p = new Uint8Array(4);
  new DataView(p.buffer).setUint32(0, value >>> 0);
  return encodeRpMessage(type, p);
}

/** A decoded return-path message. */
export interface RpMessageData {
  readonly type: number;
  readonly payload: Uint8Array;
  /** The be32 value for SHUT, PONG and RESUME_ACK. */
  readonly value: number | undefined;
}

/** Decodes one return-path message, checking type and lengths as QEMU's source does. Pure; re-run on underflow. */
export function decodeRpMessage(r: ByteReader): RpMessageData {
  const at = r.offset;
  const type = r.u16();
  const len = r.u16();
  if (type === 0 || type >= RP_MESSAGE_MAX) {
    throw new MigrationError("BAD_COMMAND", `Cannot read return-path message: unknown type ${type}`, {
      path: ["return-path"],
      offset: at,
    });
  }
  if (len > RP_MAX_LENGTH) {
    throw new MigrationError("BAD_COMMAND", `Cannot read return-path message ${type}: length ${len} is over 512`, {
      path: ["return-path"],
      offset: at,
    });
  }
  const fixed = FIXED[type];
  if (fixed !== undefined && len !== fixed) {
    throw new MigrationError(
      "BAD_COMMAND",
      `Cannot read return-path message ${type}: received with bad length ${len}, expected ${fixed}`,
      { path: ["return-path"], offset: at },
    );
  }
  const payload = r.bytes(len).slice();
  const value = len === 4 && fixed === 4 ? new DataView(payload.buffer, payload.byteOffset, 4).getUint32(0) : undefined;
  return { type, payload, value };
}
