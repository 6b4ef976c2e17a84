// Slot save/restore files under --slot-save-path (spec/server.md §10, §5.15–5.16). Filenames are validated with
// the reference's rules (no separators, no `..`, no control or look-alike characters, ≤ 255 bytes), so every
// path stays inside DIR. A file is our small header — magic 'IKSF', version, the slot's cached tokens — followed
// by the engine's sequence state (which carries its own model fingerprint and cache-layout header and refuses a
// mismatch). Writes go to a temporary file in DIR and are renamed into place.
import { randomBytes } from "node:crypto";
import { open, readdir, readFile, rename, rm, stat } from "node:fs/promises";
import { join } from "node:path";
import type { Context } from "../engine/index.js";
import { fromNative } from "../engine/errors.js";
import { badRequest, notSupported } from "./errors.js";

const MAGIC = 0x46534b49; // bytes "IKSF" (ikl slot file); the engine's own state inside starts with "IKLS"
const VERSION = 1;
const HEADER = 12; // magic, version, n_tokens

/** Engine calls that land with the MLA work (src/engine/native.ts); the server uses them when present. */
interface StateApi {
    seqStateSave?: (seq: number) => Uint8Array | Promise<Uint8Array>;
    seqStateLoad?: (seq: number, bytes: Uint8Array) => unknown;
}

const BAD_CHARS = /[\u0000-\u001f\u007f-\u009f\uff0e\u2215\u2216\ud800-\udfff\ufffd\ufeff/\\:*?"<>|]/u;

/** The reference's fs_validate_filename (common.cpp) as a predicate. */
export function validFilename(name: string): boolean {
    const bytes = Buffer.byteLength(name, "utf8");
    if (bytes === 0 || bytes > 255) return false;
    if (Buffer.from(name, "utf8").toString("utf8") !== name) return false;
    if (BAD_CHARS.test(name)) return false;
    if (name.startsWith(" ") || name.endsWith(" ") || name.endsWith(".")) return false;
    return !name.includes("..") && name !== ".";
}

export function checkFilename(name: unknown): string {
    if (typeof name !== "string" || !validFilename(name)) throw badRequest("Invalid filename");
    return name;
}

function stateApi(ctx: Context): Required<StateApi> {
    const api = ctx.native as unknown as StateApi;
    if (typeof api.seqStateSave !== "function" || typeof api.seqStateLoad !== "function") {
        throw notSupported("slot save/restore needs the engine's sequence-state API (Context.seqStateSave/seqStateLoad), which this build does not have yet");
    }
    return { seqStateSave: api.seqStateSave.bind(api), seqStateLoad: api.seqStateLoad.bind(api) };
}

export function stateSupported(ctx: Context): boolean {
    const api = ctx.native as unknown as StateApi;
    return typeof api.seqStateSave === "function" && typeof api.seqStateLoad === "function";
}

/** Writes slot `seq`'s state and its cached tokens to DIR/name via a temporary file; returns bytes written. */
export async function saveSlot(ctx: Context, dir: string, name: string, seq: number, tokens: readonly number[]): Promise<number> {
    const api = stateApi(ctx);
    let state: Uint8Array;
    try {
        state = await api.seqStateSave(seq);
    } catch (e) {
        throw fromNative(e);
    }
    const head = Buffer.alloc(HEADER + 4 * tokens.length);
    head.writeUInt32LE(MAGIC, 0);
    head.writeUInt32LE(VERSION, 4);
    head.writeUInt32LE(tokens.length, 8);
    tokens.forEach((t, i) => head.writeUInt32LE(t, HEADER + 4 * i));
    const tmp = join(dir, `.${name}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`);
    const fh = await open(tmp, "wx", 0o644);
    try {
        await fh.writeFile(head);
        await fh.writeFile(state);
        await fh.sync();
    } catch (e) {
        await fh.close();
        await rm(tmp, { force: true });
        throw e;
    }
    await fh.close();
    await rename(tmp, join(dir, name));
    return head.length + state.length;
}

function parseHeader(buf: Buffer, what: string): number[] {
    if (buf.length < HEADER || buf.readUInt32LE(0) !== MAGIC) throw badRequest(`${what} is not an ikl slot file`);
    const version = buf.readUInt32LE(4);
    if (version !== VERSION) throw badRequest(`${what} has slot-file version ${version}; this ikl reads version ${VERSION}`);
    const n = buf.readUInt32LE(8);
    if (buf.length < HEADER + 4 * n) throw badRequest(`${what} is truncated (${buf.length} bytes for ${n} tokens)`);
    return Array.from({ length: n }, (_, i) => buf.readUInt32LE(HEADER + 4 * i));
}

/** Reads DIR/name into slot `seq`; returns the restored tokens and the bytes read. Mismatches are 400s. */
export async function restoreSlot(ctx: Context, dir: string, name: string, seq: number, capacity: number): Promise<{ tokens: number[]; bytes: number }> {
    const api = stateApi(ctx);
    let buf: Buffer;
    try {
        buf = await readFile(join(dir, name));
    } catch {
        throw badRequest(`Unable to restore slot: no slot file named '${name}'`);
    }
    const tokens = parseHeader(buf, `'${name}'`);
    if (tokens.length > capacity) throw badRequest(`Unable to restore slot: '${name}' holds ${tokens.length} tokens but a slot holds ${capacity}`);
    ctx.kvRemove(seq, 0, -1);
    try {
        await api.seqStateLoad(seq, buf.subarray(HEADER + 4 * tokens.length));
    } catch (e) {
        ctx.kvRemove(seq, 0, -1);
        throw badRequest(`Unable to restore slot: ${fromNative(e).message}`);
    }
    return { tokens, bytes: buf.length };
}

export interface SlotFileInfo {
    filename: string;
    filesize: number;
    mtime: string;
    token_count: number;
    tokens: number[];
}

/** Slot files in DIR (other files, temporaries included, are skipped). */
export async function listSlotFiles(dir: string): Promise<SlotFileInfo[]> {
    const out: SlotFileInfo[] = [];
    for (const name of (await readdir(dir)).sort()) {
        if (!validFilename(name) || name.startsWith(".")) continue;
        const st = await stat(join(dir, name)).catch(() => undefined);
        if (st === undefined || !st.isFile() || st.size < HEADER) continue;
        const fh = await open(join(dir, name), "r");
        try {
            const head = Buffer.alloc(HEADER);
            await fh.read(head, 0, HEADER, 0);
            if (head.readUInt32LE(0) !== MAGIC || head.readUInt32LE(4) !== VERSION) continue;
            const n = head.readUInt32LE(8);
            if (st.size < HEADER + 4 * n) continue;
            const toks = Buffer.alloc(4 * n);
            await fh.read(toks, 0, toks.length, HEADER);
            const d = st.mtime;
            const p2 = (x: number): string => String(x).padStart(2, "0");
            const mtime = `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())} ${p2(d.getHours())}:${p2(d.getMinutes())}:${p2(d.getSeconds())}`;
            out.push({ filename: name, filesize: st.size, mtime, token_count: n, tokens: Array.from({ length: n }, (_, i) => toks.readUInt32LE(4 * i)) });
        } finally {
            await fh.close();
        }
    }
    return out;
}
