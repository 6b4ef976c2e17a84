// Public engine API for commands: the only module that imports native.ts. Every call loads the addon lazily and
// wraps native failures with fromNative() so commands only ever see IklError. Grows with Model/Context/Sampler.
import { fromNative, IklError } from "./errors.js";
import { loadNative } from "./native.js";
import type { GgufInspect, QTypeInfo, SystemInfo } from "./native.js";

export type { ContextOptions, CudaDevice, DecodeResult, GgufFileInfo, GgufInspect, MetaEntry, MetaValue, ModelMeta, QTypeInfo, SamplerOptions, SystemInfo, TensorEntry } from "./native.js";
export { Context, Model, Sampler } from "./model.js";
export { EXPECTED_ABI, nativeAddonPath } from "./native.js";

function call<T>(fn: () => T): T {
    try {
        return fn();
    } catch (e) {
        throw e instanceof IklError ? e : fromNative(e);
    }
}

/** CPU tier, CUDA devices and ABI of the loaded addon (detected once, at load, in Rust). */
export function systemInfo(): SystemInfo {
    return call(() => loadNative().systemInfo());
}

/** The quant-type registry (THE list of formats, from native/core/src/quant/registry.rs). */
export function qtypes(): QTypeInfo[] {
    return call(() => loadNative().qtypes());
}

/** Header, metadata and tensor table of a GGUF (all split parts). maxArray = -1 keeps whole arrays. */
export async function inspectGguf(path: string, maxArray: number): Promise<GgufInspect> {
    const addon = call(() => loadNative());
    try {
        return await addon.inspectGguf(path, maxArray);
    } catch (e) {
        throw fromNative(e);
    }
}
