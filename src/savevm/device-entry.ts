/**
 * Adapters from vmstate/ descriptions (and legacy handlers) to the registry's {@link StateHandlers}, so a machine
 * registers a device in one call.
 *
 * @module
 */

import type { AnyDevice } from "../vmstate/device.js";
import type { AnyLegacy, DecodedLegacy } from "../vmstate/legacy.js";
import { applyLegacy, decodeLegacy, isLegacy, saveLegacy } from "../vmstate/legacy.js";
import type { Decoded } from "../vmstate/load.js";
import { applyDevice, decodeDevice } from "../vmstate/load.js";
import { saveDevice, sectionNeeded } from "../vmstate/save.js";
import type { Registry, RegistryEntry, StateHandlers } from "./registry.js";
import type { VmdescValue } from "./vmdesc.js";

/** The handlers of one VMState device instance. */
export function deviceHandlers(dev: AnyDevice, state: object): StateHandlers {
  return {
    vmsdName: dev.name,
    needed: () => sectionNeeded(dev, state),
    save(w, vmdesc) {
      return saveDevice(w, dev, state, { vmdesc }) as Record<string, VmdescValue> | undefined;
    },
    decode: (r, versionId) => decodeDevice(r, dev, state, versionId),
    apply(decoded) {
      applyDevice(dev, state, decoded as Decoded);
    },
  };
}

/** The handlers of one legacy (open-coded) save/load instance. */
export function legacyHandlers(h: AnyLegacy, state: unknown): StateHandlers {
  return {
    save(w, vmdesc) {
      return saveLegacy(w, h, state, { vmdesc }) as Record<string, VmdescValue> | undefined;
    },
    decode: (r, versionId) => decodeLegacy(r, h, versionId),
    apply(decoded) {
      applyLegacy(h, state, decoded as DecodedLegacy);
    },
  };
}

/** Where a device instance sits: its idstr (default: the description's name) and instance id. */
export interface DevicePlacement {
  /** Section idstr, e.g. `0000:00:01.0/uart` for a device with a bus address; default the description's name. */
  readonly idstr?: string;
  /** Explicit instance id; default the next free one for the idstr. */
  readonly instanceId?: number;
}

/**
 * Registers a VMState device or legacy handler instance with its state object.
 *
 * @example
 * ```ts
 * const uartState = vm.initialState(uart);
 * registerDevice(registry, uart, uartState, { idstr: "serial" });
 * ```
 */
export function registerDevice(
  registry: Registry,
  dev: AnyDevice | AnyLegacy,
  state: object,
  placement: DevicePlacement = {},
): RegistryEntry {
  const handlers = isLegacy(dev) ? legacyHandlers(dev, state) : deviceHandlers(dev as AnyDevice, state);
  return registry.registerState(
    {
      idstr: placement.idstr ?? dev.name,
      version: dev.version,
      priority: dev.priority,
      ...(placement.instanceId === undefined ? {} : { instanceId: placement.instanceId }),
    },
    handlers,
  );
}
