/**
 * `initialState(dev)`: a fully populated default state for a description.
 *
 * @module
 */

import { initialOf } from "./_init.js";
import { type Device, levelOf, type SubShapes } from "./device.js";
import type { Infer, Shape } from "./infer.js";

/**
 * A fresh, fully populated state for a description: zeros, `false`, `0n`, `-1n` for timers (not armed), zeroed
 * `Uint8Array`s of the declared size for buffers, empty variable arrays, lists, vbuffers and bitmaps, `null` for
 * optional slots, nested objects for structs, and one object per subsection with its fields' defaults.
 *
 * @example
 * ```ts
 * const s = vm.initialState(kbd); // { write_cmd: 0, status: 0, ..., outport: { outport: 0 } }
 * ```
 */
export function initialState<S extends Shape, Sub extends SubShapes>(dev: Device<S, Sub>): Infer<Device<S, Sub>> {
  return initialOf(levelOf(dev)) as Infer<Device<S, Sub>>;
}
