// `-mla 0|1|2|3` and `-amb` through the CLI on the ds-tiny fixture: the reference's KV cache line at context
// creation (sizes per spec/models.md §4.7, the latent cache labelled with the type it really has), perplexity
// of the absorbed modes within 0.2 % of standard attention, -amb not changing results, -mla ignored (0) on a
// llama model, bad values refused.
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { fixtureModel, ikl, ROOT } from "../helpers/paths.js";

const TEXT = join(ROOT, "fixtures", "text", "declaration.txt");
const FINAL_RE = /Final estimate: PPL over \d+ chunks for n_ctx=\d+ = (\d+\.\d+)/;
const KV_RE = /^llama_init_from_model: KV self size {2}= +(\d+\.\d+) MiB, (.*)$/m;

function ppl(model: string, extra: string[]): { ppl: number; kv: RegExpMatchArray; stderr: string } {
    const r = ikl(["perplexity", "-m", model, "-f", TEXT, "-c", "128", "-b", "128", "-t", "2", "--chunks", "2", ...extra]);
    expect(r.code, r.stderr).toBe(0);
    const m = FINAL_RE.exec(r.stdout);
    expect(m, r.stdout).not.toBeNull();
    const kv = KV_RE.exec(r.stderr);
    expect(kv, r.stderr).not.toBeNull();
    return { ppl: Number(m![1]), kv: kv!, stderr: r.stderr };
}

describe("ikl -mla / -amb", () => {
    let ds = "";
    let llama = "";
    beforeAll(async () => {
        ds = await fixtureModel("ds-tiny");
        llama = await fixtureModel("llama-tiny");
    }, 180_000);

    it("absorbed modes agree with standard attention and print the latent cache line", () => {
        const base = ppl(ds, ["-mla", "0", "-fa", "off"]);
        expect(base.kv[2]).toMatch(/^K \(f16\): +\d+\.\d+ MiB, V \(f16\): +\d+\.\d+ MiB$/);
        const cases: [string[], RegExp][] = [
            [["-mla", "1", "-fa", "off"], /^c\^KV \(f16\): +\d+\.\d+ MiB, kv\^T \(f16\): +\d+\.\d+ MiB$/],
            [["-mla", "1", "-fa", "on"], /^c\^KV \(f16\): +\d+\.\d+ MiB, kv\^T: not used$/],
            [["-mla", "2", "-fa", "on"], /^c\^KV \(f16\): +\d+\.\d+ MiB, kv\^T: not used$/],
            [["-mla", "3", "-fa", "off", "-ctk", "q8_0"], /^c\^KV \(q8_0\): +\d+\.\d+ MiB, kv\^T: not used$/],
            [[], /^c\^KV \(f16\): +\d+\.\d+ MiB, kv\^T: not used$/] // defaults: -mla 3 -fa on
        ];
        for (const [args, line] of cases) {
            const r = ppl(ds, args);
            expect(r.kv[2], args.join(" ")).toMatch(line);
            expect(Number(r.kv[1]), args.join(" ")).toBeLessThan(Number(base.kv[1]));
            const tol = args.includes("q8_0") ? 1e-2 : 2e-3;
            expect(Math.abs(r.ppl / base.ppl - 1), args.join(" ")).toBeLessThan(tol);
        }
    }, 300_000);

    it("-amb never changes results; -mla is ignored on llama; bad values are refused", () => {
        const a = ppl(ds, ["-mla", "1", "-fa", "off", "-amb", "0"]);
        const b = ppl(ds, ["-mla", "1", "-fa", "off", "-amb", "1"]);
        expect(b.ppl).toBe(a.ppl);
        const l = ppl(llama, ["-mla", "3"]);
        expect(l.kv[2]).toMatch(/^K \(f16\)/);
        const bad = ikl(["perplexity", "-m", ds, "-f", TEXT, "-mla", "4"]);
        expect(bad.code).toBe(2);
        const q = ikl(["perplexity", "-m", ds, "-f", TEXT, "-c", "128", "-mla", "1", "-fa", "off", "-ctv", "q8_0"]);
        expect(q.code).not.toBe(0);
        expect(q.stderr).toMatch(/V cache quantization requires flash_attn/);
    }, 300_000);
});
