/**
 * Loading one device instance in two phases, so that the reader's re-run-on-underflow design works and a failed
 * load leaves the device untouched.
 *
 * 1. {@link decodeDevice} reads the bytes into a {@link Decoded} value. It is synchronous and has no side effects
 *    (it does not touch the state and runs no hooks), so the reader may re-run it from the start when more bytes
 *    arrive. It checks the version, every count and size against the description's maximum, list and NULL
 *    markers, and subsection names and versions, and records the offsets later errors need.
 * 2. {@link applyDevice} first runs every check that can fail on the destination's state (equal fields and
 *    validate entries, nested and in subsections), writing nothing; then it writes the values, running the hooks
 *    in QEMU's order: `preLoad`, fields (a nested struct runs its own hooks in place), subsections in stream order
 *    with their hooks, `postLoad(versionId)` last.
 *
 * Guarantee when a load fails: if decoding or any check fails, the state is untouched and no hook has run. Only a
 * hook that fails during the write phase (`HOOK_FAILED`) can leave a partly written state: the values before it
 * (and what the hooks did) stay, later ones are not written. QEMU then fails the whole migration too.
 *
 * A decoded instance may refer to the reader's bytes instead of holding copies of its values (the generated codec
 * keeps where a run of fields is and reads it when applying): apply it before the reader next waits for bytes
 * (`fill`, `more`, `decode`), when a chunk lent by a receive ring may go back to its transport, and do not change
 * bytes handed to `ByteReader.fromBytes` until then. The savevm loader applies each section right after decoding
 * it.
 *
 * Predicates see, on decode, the destination's current state with the values decoded so far laid over it (test
 * predicates, counts taken from `local` fields); `preLoad` runs after decoding, so it must not change what those
 * depend on.
 *
 * @module
 */

import { isMigrationError, MigrationError } from "../errors.js";
import { type ByteReader, NEED_MORE } from "../wire/byte-reader.js";
import { withSeg } from "./_errors.js";
import type { DLevel } from "./_plan.js";
import { applyLevel, checkLevel, checkVersion, decodeLevel } from "./_walk.js";
import { compile } from "./compile.js";
import { type AnyDevice, levelOf } from "./device.js";
import type { Loose, LooseMut } from "./infer.js";

/** A decoded device instance: the output of {@link decodeDevice}, the input of {@link applyDevice}. */
export interface Decoded {
  /** The description's name. */
  readonly device: string;
  /** The stream version it was decoded with. */
  readonly version: number;
  /** The stream offset where the instance started. */
  readonly offset: number;
  /** The stream offset just after it. */
  readonly end: number;
}

interface DecodedImpl extends Decoded {
  readonly dev: AnyDevice;
  readonly dl: DLevel;
}

function onDevice(e: unknown, dev: AnyDevice, offset: number): unknown {
  const x = withSeg(e, dev.name);
  if (isMigrationError(x) && x.offset === undefined) {
    return new MigrationError(x.code, x.message, { path: x.path, offset, cause: x.cause });
  }
  return x;
}

/**
 * Decodes one instance of `dev` from `r`, without side effects. Throws the reader's underflow untouched (the
 * driver re-runs it when more bytes arrive).
 *
 * @param r The reader, at the start of the instance's data.
 * @param dev The description.
 * @param current The destination's current state: read, never written (counts from `local` fields, test
 *   predicates, which slots of an array of optional structs are NULL).
 * @param versionId The stream's version of this instance (from the section header).
 * @returns The decoded instance, for {@link applyDevice}.
 * @throws MigrationError `VERSION_TOO_NEW`/`VERSION_TOO_OLD`, `LIMIT_EXCEEDED`, `TRUNCATED`,
 *   `SUBSECTION_MISMATCH`, `BAD_STREAM`, `FIELD_OUT_OF_RANGE`; `path` starts with the device name.
 */
export function decodeDevice(r: ByteReader, dev: AnyDevice, current: object, versionId: number): Decoded {
  const desc = levelOf(dev);
  const at = r.offset;
  try {
    checkVersion(desc, versionId, at);
    const plan = compile(desc, versionId);
    const cur = current as Loose;
    const dl = decodeLevel(r, plan, cur, cur);
    const d: DecodedImpl = { device: dev.name, version: versionId, offset: at, end: r.offset, dev, dl };
    return d;
  } catch (e) {
    throw onDevice(e, dev, at);
  }
}

/**
 * Writes a decoded instance into `state`: checks first (nothing written when one fails), then values and hooks in
 * QEMU's order. See the module documentation for the guarantee on failure.
 *
 * @param dev The description the instance was decoded with.
 * @param state The device's state.
 * @param decoded What {@link decodeDevice} returned.
 * @throws MigrationError `FIELD_MISMATCH`, `VALIDATION_FAILED` (state untouched), `HOOK_FAILED`.
 * @throws TypeError when `decoded` was decoded for another description.
 */
export function applyDevice(dev: AnyDevice, state: object, decoded: Decoded): void {
  const d = decoded as DecodedImpl;
  if (d.dev !== dev) throw new TypeError(`Cannot apply: this was decoded for "${d.device}", not "${dev.name}"`);
  const obj = state as LooseMut;
  try {
    checkLevel(d.dl, obj, obj);
    applyLevel(d.dl, obj, obj);
  } catch (e) {
    if (!isMigrationError(e)) {
      const detail = e instanceof Error ? e.message : String(e);
      throw new MigrationError("INVALID_STATE", `Cannot load "${dev.name}": cannot write the state: ${detail}`, {
        path: [dev.name],
        offset: d.offset,
        cause: e,
      });
    }
    throw onDevice(e, dev, d.offset);
  }
}

/**
 * Decodes and applies one instance from bytes that are already buffered (a reader made with
 * `ByteReader.fromBytes`, or inside a decoder run by `r.decode`).
 */
export function loadDevice(r: ByteReader, dev: AnyDevice, state: object, versionId: number): void {
  applyDevice(dev, state, decodeDevice(r, dev, state, versionId));
}

/**
 * Decodes one instance, waiting for bytes as needed (re-running the decoder from its start whenever it ran out),
 * then applies it. A stream that ends right after the instance is fine (the subsection loop sees the end);
 * one that ends inside it fails with `TRUNCATED` naming the field.
 *
 * The bytes one instance can need are bounded by its description's maxima; this driver does not apply the
 * reader's `maxBufferedBytes` cap itself.
 *
 * @throws MigrationError as {@link decodeDevice} and {@link applyDevice}.
 */
export async function loadDeviceAsync(r: ByteReader, dev: AnyDevice, state: object, versionId: number): Promise<void> {
  let thrown: MigrationError | undefined;
  const decoder = (rr: ByteReader): Decoded => {
    thrown = undefined;
    try {
      return decodeDevice(rr, dev, state, versionId);
    } catch (e) {
      if (isMigrationError(e)) thrown = e;
      throw e;
    }
  };
  let decoded: Decoded;
  for (;;) {
    let v: Decoded | typeof NEED_MORE;
    try {
      v = r.tryDecode(decoder);
    } catch (e) {
      // The reader latches the first error it saw, which lacks the field path decodeDevice added.
      if (thrown !== undefined && isMigrationError(e) && e.code === thrown.code) throw thrown;
      throw e;
    }
    if (v !== NEED_MORE) {
      decoded = v;
      break;
    }
    // Pull until the bytes the decoder asked for are here or the stream ended; then run it again (at the end of
    // the stream it either completes or fails with TRUNCATED at the right field).
    const need = r.neededBytes;
    while (r.available < need) if (!(await r.more())) break;
  }
  applyDevice(dev, state, decoded);
}
