/**
 * The versions Ferry's QMP server announces.
 *
 * @module
 */

/** Ferry's own version (kept equal to `package.json`'s; a test checks it). */
export const FERRY_VERSION = "0.1.0";

/**
 * The QEMU version Ferry's QMP greeting and `query-version` report: 7.2.0.
 *
 * Management tools gate features on this triple (libvirt refuses QEMU older than 4.2 and picks command forms by
 * version), so it states which QEMU interface Ferry implements rather than Ferry's own version: the QMP surface,
 * capability and parameter lists, statuses and stream format of QEMU 7.2 (Debian bookworm's QEMU, Ferry's
 * compatibility target). A script that asks "is this 8.2 or later?" must get "no", or it would use forms Ferry
 * does not speak (`migrate` with `channels`, `file:` URIs with `mapped-ram`). The micro number is 0, not Debian's
 * 22: Ferry implements the 7.2 interface, not Debian's patch level. Ferry's own version is in `package`.
 */
export const QEMU_INTERFACE_VERSION: Readonly<{ major: number; minor: number; micro: number }> = Object.freeze({
  major: 7,
  minor: 2,
  micro: 0,
});

/** The `package` string of the greeting and `query-version`: `"ferry 0.1.0"`. */
export const FERRY_PACKAGE = `ferry ${FERRY_VERSION}`;
