// Engine-side Model, Context and Sampler: thin wrappers over the native classes (src/engine/native.ts) that turn
// native failures into IklError, queue calls per Context (one call in flight, STYLE §1.4 rule 5) and map an
// AbortSignal onto ctx.abort(). No math and no printing here; generation loops live in generate.ts.
import { fromNative } from "./errors.js";
import { loadNative } from "./native.js";
import type { ContextOptions, DecodeBatch, DecodeResult, ModelMeta, NativeContext, NativeModel, NativeSampler, OpenOptions, SamplerOptions, ScoreBatch } from "./native.js";

function wrap<T>(fn: () => T): T {
    try {
        return fn();
    } catch (e) {
        throw fromNative(e);
    }
}

export class Model {
    readonly meta: ModelMeta;
    private constructor(readonly native: NativeModel) {
        this.meta = wrap(() => native.meta());
    }

    static async open(path: string, opts: OpenOptions = {}): Promise<Model> {
        const addon = wrap(() => loadNative());
        try {
            return new Model(await addon.Model.open(path, opts));
        } catch (e) {
            throw fromNative(e);
        }
    }

    tokenize(text: string, addSpecial: boolean, parseSpecial: boolean): Uint32Array {
        return wrap(() => this.native.tokenize(text, addSpecial, parseSpecial));
    }

    tokenToPiece(id: number, special = false): Uint8Array {
        return wrap(() => this.native.tokenToPiece(id, special));
    }

    detokenize(ids: Uint32Array, removeSpecial = false, unparseSpecial = false): Uint8Array {
        return wrap(() => this.native.detokenize(ids, removeSpecial, unparseSpecial));
    }

    isEog(id: number): boolean {
        return this.meta.eog.includes(id);
    }

    close(): void {
        this.native.close();
    }
}

export class Sampler {
    private constructor(readonly native: NativeSampler) {}

    static create(opts: SamplerOptions): Sampler {
        return new Sampler(wrap(() => loadNative().Sampler.create(opts)));
    }

    accept(token: number): void {
        wrap(() => this.native.accept(token));
    }

    reset(): void {
        wrap(() => this.native.reset());
    }
}

export interface DecodeRequest extends DecodeBatch {
    sampler?: Sampler;
    signal?: AbortSignal;
}

export class Context {
    private tail: Promise<unknown> = Promise.resolve();
    private constructor(readonly native: NativeContext) {}

    static async create(model: Model, opts: ContextOptions): Promise<Context> {
        const addon = wrap(() => loadNative());
        try {
            return new Context(await addon.Context.create(model.native, opts));
        } catch (e) {
            throw fromNative(e);
        }
    }

    get nCtx(): number {
        return this.native.nCtx;
    }

    /** The reference's KV cache line, `llama_init_from_model: KV self size  = … MiB, …`. */
    get kvSizeLine(): string {
        return this.native.kvSizeLine;
    }

    /** Runs native calls one after another, so callers never see IKL_E_BUSY from this wrapper. */
    private queue<T>(fn: () => Promise<T>, signal?: AbortSignal): Promise<T> {
        const run = async (): Promise<T> => {
            const onAbort = (): void => this.native.abort();
            if (signal?.aborted === true) throw fromNative(Object.assign(new Error("cancelled"), { code: "IKL_E_CANCELLED" }));
            signal?.addEventListener("abort", onAbort, { once: true });
            try {
                return await fn();
            } catch (e) {
                throw fromNative(e);
            } finally {
                signal?.removeEventListener("abort", onAbort);
            }
        };
        const p = this.tail.then(run, run);
        this.tail = p.catch(() => undefined);
        return p;
    }

    decode(req: DecodeRequest): Promise<DecodeResult> {
        const { sampler, signal, ...batch } = req;
        return this.queue(() => this.native.decode(batch, sampler?.native ?? null), signal);
    }

    score(batch: ScoreBatch, targets: Int32Array, signal?: AbortSignal): Promise<Float64Array> {
        return this.queue(() => this.native.score(batch, targets), signal);
    }

    kvRemove(seq: number, p0: number, p1: number): boolean {
        return wrap(() => this.native.kvRemove(seq, p0, p1));
    }

    kvClear(): void {
        wrap(() => this.native.kvClear());
    }

    /** Cancels the native call in flight (it rejects with IKL_E_CANCELLED before its next ubatch). */
    abort(): void {
        this.native.abort();
    }
}
