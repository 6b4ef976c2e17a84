// sweep-bench plots without Python: an SVG we write ourselves (two panels, PP and TG t/s vs N_KV, several labelled
// runs overlaid with a fixed palette), PNG through @resvg/resvg-js (native, loaded lazily and kept out of the
// bundle), and a braille terminal chart for `--plot term`. Inputs are SweepPoint series (parseSweepJsonl /
// parseSweepTable read ours and the reference's files). Replaces ik's examples/sweep-bench/sweep-bench-plot.py.
import { out } from "../ui/format.js";
import type { SweepPoint } from "./sweep.js";

export interface PlotSeries {
    label: string;
    points: readonly SweepPoint[];
}

/** Colour-blind-friendly fixed palette (Okabe–Ito), cycled by series index. */
export const PALETTE = ["#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#F0E442"];

/** 1-2-5 ticks covering [min, max] (about `count` of them); the axis is [ticks[0], ticks[last]]. */
export function niceTicks(min: number, max: number, count = 5): number[] {
    if (!Number.isFinite(min) || !Number.isFinite(max)) return [0, 1];
    if (max <= min) max = min + (min === 0 ? 1 : Math.abs(min) * 0.1);
    const raw = (max - min) / Math.max(1, count);
    const mag = 10 ** Math.floor(Math.log10(raw));
    const step = ([1, 2, 2.5, 5, 10].find((m) => m * mag >= raw) ?? 10) * mag;
    const lo = Math.floor(min / step) * step;
    const hi = Math.ceil(max / step - 1e-9) * step;
    const ticks: number[] = [];
    for (let v = lo; v <= hi + step * 1e-6; v += step) ticks.push(Number(v.toPrecision(12)));
    return ticks;
}

function tickLabel(v: number): string {
    if (Math.abs(v) >= 10000 && v % 1000 === 0) return `${v / 1000}k`;
    return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
}

function esc(s: string): string {
    return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

interface Panel {
    title: string;
    y: (p: SweepPoint) => number;
    yLabel: string;
}

const PANELS: Panel[] = [
    { title: "Prompt processing (PP)", y: (p) => p.speedPp, yLabel: "S_PP t/s" },
    { title: "Token generation (TG)", y: (p) => p.speedTg, yLabel: "S_TG t/s" }
];

export interface SvgOptions {
    width?: number;
    height?: number;
    title?: string;
}

/** Two side-by-side panels; each has a grid, axes with nice ticks, labels, one polyline (+ markers) per run. */
export function renderSweepSvg(series: readonly PlotSeries[], opts: SvgOptions = {}): string {
    const W = opts.width ?? 1000;
    const H = opts.height ?? 460;
    const top = opts.title !== undefined ? 64 : 40;
    const legendH = 22 * Math.ceil(series.length / 4);
    const m = { l: 70, r: 20, t: top, b: 56 + legendH };
    const gap = 70;
    const pw = (W - m.l - m.r - gap) / 2;
    const ph = H - m.t - m.b;
    const all = series.flatMap((s) => s.points);
    const xt = niceTicks(0, Math.max(1, ...all.map((p) => p.nKv)), 6);
    const parts: string[] = [
        `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}"` +
            ` font-family="DejaVu Sans, Helvetica, Arial, sans-serif" font-size="12">`,
        `<rect width="${W}" height="${H}" fill="#ffffff"/>`
    ];
    const bold = (x: string, y: string | number, size: number, text: string): string =>
        `<text x="${x}" y="${y}" text-anchor="middle" font-size="${size}" font-weight="bold">${text}</text>`;
    if (opts.title !== undefined) parts.push(bold(String(W / 2), 28, 17, esc(opts.title)));
    PANELS.forEach((panel, pi) => {
        const x0 = m.l + pi * (pw + gap);
        const ys = all.map(panel.y).filter(Number.isFinite);
        const yt = niceTicks(0, Math.max(1, ...ys), 5);
        const X = (v: number): number => x0 + ((v - xt[0]!) / (xt[xt.length - 1]! - xt[0]!)) * pw;
        const Y = (v: number): number => m.t + ph - ((v - yt[0]!) / (yt[yt.length - 1]! - yt[0]!)) * ph;
        const f = (v: number): string => v.toFixed(1);
        parts.push(`<g class="panel" data-panel="${pi === 0 ? "pp" : "tg"}">`);
        parts.push(bold(f(x0 + pw / 2), m.t - 12, 14, panel.title));
        parts.push(`<g class="grid" stroke="#e3e3e3" stroke-width="1">`);
        for (const t of yt) parts.push(`<line x1="${f(x0)}" y1="${f(Y(t))}" x2="${f(x0 + pw)}" y2="${f(Y(t))}"/>`);
        for (const t of xt) parts.push(`<line x1="${f(X(t))}" y1="${m.t}" x2="${f(X(t))}" y2="${f(m.t + ph)}"/>`);
        parts.push(`</g>`);
        parts.push(`<g class="axes" stroke="#333333" stroke-width="1.2">`);
        parts.push(`<line class="x-axis" x1="${f(x0)}" y1="${f(m.t + ph)}" x2="${f(x0 + pw)}" y2="${f(m.t + ph)}"/>`);
        parts.push(`<line class="y-axis" x1="${f(x0)}" y1="${m.t}" x2="${f(x0)}" y2="${f(m.t + ph)}"/>`);
        parts.push(`</g>`);
        parts.push(`<g class="ticks" fill="#333333">`);
        for (const t of yt) parts.push(`<text x="${f(x0 - 6)}" y="${f(Y(t) + 4)}" text-anchor="end">${tickLabel(t)}</text>`);
        for (const t of xt) parts.push(`<text x="${f(X(t))}" y="${f(m.t + ph + 18)}" text-anchor="middle">${tickLabel(t)}</text>`);
        parts.push(`</g>`);
        const xl = "N_KV (context depth, tokens)";
        parts.push(`<text class="x-label" x="${f(x0 + pw / 2)}" y="${f(m.t + ph + 38)}" text-anchor="middle">${xl}</text>`);
        const cy = m.t + ph / 2;
        const rot = `rotate(-90 ${f(x0 - 52)} ${f(cy)})`;
        parts.push(`<text class="y-label" x="${f(x0 - 52)}" y="${f(cy)}" text-anchor="middle" transform="${rot}">${panel.yLabel}</text>`);
        series.forEach((s, si) => {
            const c = PALETTE[si % PALETTE.length]!;
            const pts = s.points.filter((p) => Number.isFinite(panel.y(p))).map((p) => `${f(X(p.nKv))},${f(Y(panel.y(p)))}`);
            const attrs = `class="series" data-label="${esc(s.label)}" fill="none" stroke="${c}" stroke-width="2.2"`;
            parts.push(`<polyline ${attrs} points="${pts.join(" ")}"/>`);
            for (const p of pts) {
                const [px, py] = p.split(",");
                parts.push(`<circle cx="${px}" cy="${py}" r="3" fill="${c}"/>`);
            }
        });
        parts.push(`</g>`);
    });
    parts.push(`<g class="legend">`);
    series.forEach((s, si) => {
        const col = si % 4;
        const row = Math.floor(si / 4);
        const lx = m.l + col * ((W - m.l - m.r) / 4);
        const ly = H - legendH - 6 + row * 22 + 12;
        const c = PALETTE[si % PALETTE.length]!;
        parts.push(`<line x1="${lx}" y1="${ly}" x2="${lx + 24}" y2="${ly}" stroke="${c}" stroke-width="3"/>`);
        parts.push(`<text x="${lx + 30}" y="${ly + 4}">${esc(s.label)}</text>`);
    });
    parts.push(`</g>`, `</svg>`);
    return `${parts.join("\n")}\n`;
}

/** PNG bytes via @resvg/resvg-js (system fonts). Throws a plain Error when the optional native module is missing. */
export async function renderSweepPng(svg: string, width?: number): Promise<Buffer> {
    let mod: typeof import("@resvg/resvg-js");
    try {
        mod = await import("@resvg/resvg-js");
    } catch (e) {
        throw new Error(`PNG output needs @resvg/resvg-js (npm i @resvg/resvg-js); write .svg instead (${(e as Error).message})`);
    }
    const r = new mod.Resvg(svg, {
        background: "white",
        font: { loadSystemFonts: true, defaultFontFamily: "DejaVu Sans" },
        ...(width !== undefined ? { fitTo: { mode: "width" as const, value: width } } : {})
    });
    return Buffer.from(r.render().asPng());
}

const BRAILLE_BITS = [[0x01, 0x08], [0x02, 0x10], [0x04, 0x20], [0x40, 0x80]];
const TERM_COLORS = ["blue", "red", "green", "magenta", "yellow", "cyan", "white", "gray"] as const;

export interface TermOptions {
    width?: number;
    height?: number;
}

/** One braille chart per panel (2×4 dots per cell), y range from 0, series coloured when stdout colour is on. */
export function renderSweepTerm(series: readonly PlotSeries[], opts: TermOptions = {}): string {
    const cw = opts.width ?? 60;
    const ch = opts.height ?? 12;
    const all = series.flatMap((s) => s.points);
    const xMax = Math.max(1, ...all.map((p) => p.nKv));
    const lines: string[] = [];
    for (const panel of PANELS) {
        const yMax = Math.max(1e-9, ...all.map(panel.y).filter(Number.isFinite));
        const cells = Array.from({ length: ch }, () => new Array<number>(cw).fill(0));
        const owner = Array.from({ length: ch }, () => new Array<number>(cw).fill(-1));
        const dot = (x: number, y: number, si: number): void => {
            if (x < 0 || y < 0 || x >= cw * 2 || y >= ch * 4) return;
            const r = ch - 1 - Math.floor(y / 4);
            const c = Math.floor(x / 2);
            cells[r]![c]! |= BRAILLE_BITS[3 - (y % 4)]![x % 2]!;
            owner[r]![c] = si;
        };
        series.forEach((s, si) => {
            const px = s.points.map((p) =>
                [Math.round((p.nKv / xMax) * (cw * 2 - 1)), Math.round((panel.y(p) / yMax) * (ch * 4 - 1))] as const);
            for (let i = 0; i < px.length; i++) {
                const [ax, ay] = px[i]!;
                const [bx, by] = px[i + 1] ?? px[i]!;
                const n = Math.max(Math.abs(bx - ax), Math.abs(by - ay), 1);
                for (let k = 0; k <= n; k++) dot(Math.round(ax + ((bx - ax) * k) / n), Math.round(ay + ((by - ay) * k) / n), si);
            }
        });
        const yLab = [yMax.toFixed(yMax < 10 ? 2 : 0), "", "0"];
        const lw = Math.max(...yLab.map((s) => s.length));
        lines.push(`${panel.yLabel} vs N_KV`);
        cells.forEach((row, r) => {
            const label = r === 0 ? yLab[0]! : r === ch - 1 ? yLab[2]! : "";
            const text = row.map((bits, c) => {
                const chr = bits === 0 ? " " : String.fromCharCode(0x2800 + bits);
                const si = owner[r]![c]!;
                return si < 0 ? chr : out[TERM_COLORS[si % TERM_COLORS.length]!](chr);
            }).join("");
            lines.push(`${label.padStart(lw)} ┤${text}`);
        });
        lines.push(`${" ".repeat(lw)} └${"─".repeat(cw)}`);
        lines.push(`${" ".repeat(lw + 2)}0${String(xMax).padStart(cw - 1)}`);
        lines.push("");
    }
    series.forEach((s, si) => lines.push(`${out[TERM_COLORS[si % TERM_COLORS.length]!]("⣿⣿")} ${s.label}`));
    return `${lines.join("\n")}\n`;
}
