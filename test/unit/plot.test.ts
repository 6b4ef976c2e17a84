// sweep-bench plots: the SVG is well-formed XML with two panels, axes, one polyline per run per panel and the legend
// labels; the PNG (through @resvg/resvg-js) has the requested size and several colours; the terminal chart is
// braille. Inputs: the reference's captured JSONL plus a derived second run.
import { readFileSync } from "node:fs";
import { inflateSync } from "node:zlib";
import { describe, expect, it } from "vitest";
import { niceTicks, renderSweepPng, renderSweepSvg, renderSweepTerm, type PlotSeries } from "../../src/bench/plot.js";
import { parseSweepJsonl } from "../../src/bench/sweep.js";

const ref = parseSweepJsonl(readFileSync(new URL("golden/ref/sweep.jsonl", import.meta.url), "utf8"));
const SERIES: PlotSeries[] = [
    { label: "ik llama-tiny -t 2", points: ref },
    { label: "ikl <test> & friends", points: ref.map((p) => ({ ...p, speedPp: p.speedPp * 0.8, speedTg: p.speedTg * 1.2 })) }
];

/** Minimal XML well-formedness check: balanced tags, quoted attributes, no stray '<'. Returns the open/close tag names. */
function parseXml(s: string): string[] {
    const stack: string[] = [];
    const names: string[] = [];
    const re = /<(\/?)([a-zA-Z][\w:-]*)((?:\s+[\w:-]+="[^"<]*")*)\s*(\/?)>|([^<]+)/g;
    let pos = 0;
    for (let m = re.exec(s); m !== null; m = re.exec(s)) {
        if (m.index !== pos) throw new Error(`malformed XML at ${pos}: ${s.slice(pos, pos + 40)}`);
        pos = re.lastIndex;
        if (m[5] !== undefined) continue;
        const [, close, name, , self] = m;
        if (close) {
            if (stack.pop() !== name) throw new Error(`mismatched </${name}>`);
        } else if (!self) stack.push(name!);
        if (!close) names.push(name!);
    }
    if (pos !== s.length || stack.length > 0) throw new Error(`unclosed: ${stack.join(",")}`);
    return names;
}

describe("niceTicks", () => {
    it("1-2-5 steps covering the range", () => {
        expect(niceTicks(0, 384, 6)).toEqual([0, 100, 200, 300, 400]);
        expect(niceTicks(0, 1497.5, 5)).toEqual([0, 500, 1000, 1500]);
        expect(niceTicks(0, 8192, 6)).toEqual([0, 2000, 4000, 6000, 8000, 10000]);
        expect(niceTicks(0, 0.8)).toEqual([0, 0.2, 0.4, 0.6, 0.8]);
    });
});

describe("sweep plot", () => {
    const svg = renderSweepSvg(SERIES, { title: "sweep-bench: llama-tiny" });
    it("SVG is well-formed with 2 panels, axes, a polyline per run per panel, and the legend", () => {
        const names = parseXml(svg);
        expect(names[0]).toBe("svg");
        expect(svg.match(/<g class="panel"/g)).toHaveLength(2);
        expect(svg.match(/class="x-axis"/g)).toHaveLength(2);
        expect(svg.match(/class="y-axis"/g)).toHaveLength(2);
        expect(svg.match(/<polyline /g)).toHaveLength(4);
        for (const poly of svg.match(/points="[^"]*"/g)!) expect(poly.split(" ")).toHaveLength(4);
        const legend = svg.slice(svg.indexOf('<g class="legend">'));
        expect(legend).toContain(">ik llama-tiny -t 2</text>");
        expect(legend).toContain(">ikl &lt;test&gt; &amp; friends</text>");
        expect(svg).toContain("S_PP t/s");
        expect(svg).toContain("N_KV");
    });
    it("PNG has the requested size and several distinct colours", async () => {
        const png = await renderSweepPng(svg, 800);
        expect(png.subarray(1, 4).toString("latin1")).toBe("PNG");
        expect(png.subarray(12, 16).toString("latin1")).toBe("IHDR");
        expect(png.readUInt32BE(16)).toBe(800);
        expect(png.readUInt32BE(20)).toBe(368);
        const colours = pngColours(png);
        expect(colours.size).toBeGreaterThan(8);
        expect(colours.has("0,114,178")).toBe(true); // palette blue
        expect(colours.has("213,94,0")).toBe(true); // palette vermillion
    });
    it("terminal chart uses braille and lists the runs", () => {
        const t = renderSweepTerm(SERIES, { width: 40, height: 8 });
        expect(t).toMatch(/[\u2801-\u28ff]/);
        expect(t).toContain("S_PP t/s vs N_KV");
        expect(t).toContain("S_TG t/s vs N_KV");
        expect(t).toContain("ik llama-tiny -t 2");
        expect(t.split("\n").filter((l) => l.includes("┤"))).toHaveLength(16);
    });
});

/** Exact RGB triples of an 8-bit RGBA/RGB non-interlaced PNG (filters undone). */
function pngColours(png: Buffer): Set<string> {
    const w = png.readUInt32BE(16);
    const h = png.readUInt32BE(20);
    const colorType = png[25]!;
    const bpp = colorType === 6 ? 4 : 3;
    const idat: Buffer[] = [];
    for (let off = 8; off < png.length;) {
        const len = png.readUInt32BE(off);
        if (png.subarray(off + 4, off + 8).toString("latin1") === "IDAT") idat.push(png.subarray(off + 8, off + 8 + len));
        off += 12 + len;
    }
    const raw = inflateSync(Buffer.concat(idat));
    const stride = w * bpp;
    const prev = new Uint8Array(stride);
    const cur = new Uint8Array(stride);
    const seen = new Set<string>();
    for (let y = 0; y < h; y++) {
        const ft = raw[y * (stride + 1)]!;
        for (let i = 0; i < stride; i++) {
            const x = raw[y * (stride + 1) + 1 + i]!;
            const a = i >= bpp ? cur[i - bpp]! : 0;
            const b = prev[i]!;
            const c = i >= bpp ? prev[i - bpp]! : 0;
            const p = a + b - c;
            const pr = Math.abs(p - a) <= Math.abs(p - b) && Math.abs(p - a) <= Math.abs(p - c) ? a : Math.abs(p - b) <= Math.abs(p - c) ? b : c;
            cur[i] = (x + [0, a, b, (a + b) >> 1, pr][ft]!) & 0xff;
        }
        for (let i = 0; i < stride; i += bpp) seen.add(`${cur[i]},${cur[i + 1]},${cur[i + 2]}`);
        prev.set(cur);
    }
    return seen;
}
