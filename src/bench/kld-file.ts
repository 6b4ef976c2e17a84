// The KL-divergence base file of llama-perplexity (`--kl-divergence-base FILE`, spec §7.4): reader, writer and the
// per-position u16 quantisation of log-probabilities. Little-endian, no padding:
//   "_logits_" | i32 n_ctx | i32 n_vocab | i32 n_chunk | i32 tokens[n_chunk·n_ctx] |
//   per chunk, per scored position (n_ctx − 1 − n_ctx/2): u16 record[nv], nv = 2·⌈n_vocab/2⌉ + 4
// Mirrors ik_llama.cpp examples/perplexity/perplexity.cpp (perplexity() with logits_file, log_softmax(..., uint16_t*)).

export const KLD_MAGIC = "_logits_";

export interface BaseHeader {
    nCtx: number;
    nVocab: number;
    nChunk: number;
    /** n_chunk·n_ctx tokens as tokenized (before the per-chunk BOS substitution). */
    tokens: Int32Array;
}

/** One scored position: decoded log p_i = scale·q[i] + minLogProb. */
export interface BaseRecord {
    scale: number;
    minLogProb: number;
    q: Uint16Array;
}

/** u16 slots per record. */
export function recordSlots(nVocab: number): number {
    return 2 * Math.floor((nVocab + 1) / 2) + 4;
}

export function scoredPerChunk(nCtx: number): number {
    return nCtx - 1 - Math.floor(nCtx / 2);
}

export function headerBytes(h: Pick<BaseHeader, "nCtx" | "nChunk">): number {
    return 8 + 12 + 4 * h.nCtx * h.nChunk;
}

/** Total file size for a complete file. */
export function baseFileSize(nCtx: number, nVocab: number, nChunk: number): number {
    return headerBytes({ nCtx, nChunk }) + nChunk * scoredPerChunk(nCtx) * recordSlots(nVocab) * 2;
}

export function readBaseHeader(buf: Uint8Array): BaseHeader {
    if (buf.length < 20 || Buffer.from(buf.subarray(0, 8)).toString("latin1") !== KLD_MAGIC) {
        throw new Error("does not look like a file containing log-probabilities");
    }
    const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
    const nCtx = dv.getInt32(8, true);
    const nVocab = dv.getInt32(12, true);
    const nChunk = dv.getInt32(16, true);
    const n = nCtx * nChunk;
    if (nCtx <= 0 || nVocab <= 0 || nChunk < 0 || buf.length < 20 + 4 * n) throw new Error("failed reading evaluation tokens");
    const tokens = new Int32Array(n);
    for (let i = 0; i < n; i++) tokens[i] = dv.getInt32(20 + 4 * i, true);
    return { nCtx, nVocab, nChunk, tokens };
}

/** Record `index` (chunk·scoredPerChunk + position); throws past the end (truncated files are readable up to it). */
export function readBaseRecord(buf: Uint8Array, h: BaseHeader, index: number): BaseRecord {
    const nv = recordSlots(h.nVocab);
    const off = headerBytes(h) + index * nv * 2;
    if (off + nv * 2 > buf.length) throw new Error(`failed reading log-probs for record ${index}`);
    const dv = new DataView(buf.buffer, buf.byteOffset + off, nv * 2);
    const q = new Uint16Array(h.nVocab);
    for (let i = 0; i < h.nVocab; i++) q[i] = dv.getUint16(8 + 2 * i, true);
    return { scale: dv.getFloat32(0, true), minLogProb: dv.getFloat32(4, true), q };
}

/** Number of complete records present. */
export function recordsPresent(buf: Uint8Array, h: BaseHeader): number {
    return Math.max(0, Math.floor((buf.length - headerBytes(h)) / (recordSlots(h.nVocab) * 2)));
}

export function decodeLogProbs(r: BaseRecord): Float32Array {
    const out = new Float32Array(r.q.length);
    for (let i = 0; i < r.q.length; i++) out[i] = Math.fround(Math.fround(r.scale * r.q[i]!) + r.minLogProb);
    return out;
}

/** nearest_int(): round-to-nearest-even through the 1.5·2^23 trick (valid below 2^22). */
function nearestInt(v: number): number {
    const x = Math.fround(v + 12582912);
    return x - 12582912;
}

/** log_softmax(n_vocab, logits, log_prob, tok): quantises one position; returns the record and the token's NLL. */
export function quantizeLogits(logits: Float32Array, tok: number): { record: BaseRecord; nll: number } {
    const f = Math.fround;
    let max = logits[0]!;
    let min = logits[0]!;
    for (let i = 1; i < logits.length; i++) {
        max = Math.max(max, logits[i]!);
        min = Math.min(min, logits[i]!);
    }
    min = Math.max(min, f(max - 24));
    let sumExp = 0;
    for (let i = 0; i < logits.length; i++) sumExp += f(Math.exp(f(logits[i]! - max)));
    const logSumExp = f(Math.log(sumExp));
    const minLogProb = f(f(min - max) - logSumExp);
    const scale = f(f(max - min) / 65535);
    const q = new Uint16Array(logits.length);
    if (scale !== 0) {
        const inv = f(1 / scale);
        for (let i = 0; i < logits.length; i++) q[i] = logits[i]! > min ? nearestInt(f(inv * f(logits[i]! - min))) : 0;
    }
    return { record: { scale, minLogProb, q }, nll: f(f(max + logSumExp) - logits[tok]!) };
}

/** Serialises a whole file; `records` are in file order (chunk-major). */
export function writeBaseFile(h: BaseHeader, records: readonly BaseRecord[]): Buffer {
    const nv = recordSlots(h.nVocab);
    const size = headerBytes(h) + records.length * nv * 2;
    const buf = Buffer.alloc(size);
    buf.write(KLD_MAGIC, 0, "latin1");
    buf.writeInt32LE(h.nCtx, 8);
    buf.writeInt32LE(h.nVocab, 12);
    buf.writeInt32LE(h.nChunk, 16);
    for (let i = 0; i < h.tokens.length; i++) buf.writeInt32LE(h.tokens[i]!, 20 + 4 * i);
    let off = headerBytes(h);
    for (const r of records) {
        buf.writeFloatLE(r.scale, off);
        buf.writeFloatLE(r.minLogProb, off + 4);
        for (let i = 0; i < r.q.length; i++) buf.writeUInt16LE(r.q[i]!, off + 8 + 2 * i);
        off += nv * 2;
    }
    return buf;
}
