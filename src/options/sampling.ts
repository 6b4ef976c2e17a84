// Sampling options (--temp, --top-k, --top-p, --min-p, --typical, penalties, -s/--seed), declared once and attached
// with withSamplingOptions(cmd); used by `run` and as server defaults. Defaults are ik_llama.cpp's common/sampling.h
// (spec/cli.md §2.5). The sampler chain itself runs in Rust (native/core/src/sample.rs).
import { Command, Option } from "commander";
import { attachGroup } from "./attach.js";
import { floatInRange, intInRange } from "./parsers.js";

export interface SamplingOptions {
    temp: number; // <= 0 = greedy
    topK: number; // 0 = disabled
    topP: number; // 1 = disabled
    minP: number; // 0 = disabled
    typical: number; // 1 = disabled
    repeatPenalty: number; // 1 = disabled
    repeatLastN: number; // 0 = disabled, -1 = context size
    presencePenalty: number;
    frequencyPenalty: number;
    seed: number; // -1 = random
}

export const SAMPLING_DEFAULTS: SamplingOptions = {
    temp: 0.8,
    topK: 40,
    topP: 0.95,
    minP: 0.05,
    typical: 1.0,
    repeatPenalty: 1.0,
    repeatLastN: 64,
    presencePenalty: 0,
    frequencyPenalty: 0,
    seed: -1
};

const D = SAMPLING_DEFAULTS;

export function withSamplingOptions(cmd: Command): Command {
    return attachGroup(cmd, "Sampling:", [
        new Option("--temp <F>", "temperature; <= 0 = greedy").argParser(floatInRange(-Infinity, 100)).default(D.temp),
        new Option("--top-k <N>", "top-k; 0 = disabled").argParser(intInRange(0, 1 << 24)).default(D.topK),
        new Option("--top-p <F>", "top-p; 1.0 = disabled").argParser(floatInRange(0, 1)).default(D.topP),
        new Option("--min-p <F>", "min-p; 0.0 = disabled").argParser(floatInRange(0, 1)).default(D.minP),
        new Option("--typical <F>", "locally typical sampling; 1.0 = disabled").argParser(floatInRange(0, 1)).default(D.typical),
        new Option("--repeat-penalty <F>", "repetition penalty; 1.0 = disabled").argParser(floatInRange(0, 100)).default(D.repeatPenalty),
        new Option("--repeat-last-n <N>", "tokens considered for penalties; 0 = off, -1 = context").argParser(intInRange(-1, 1 << 24)).default(D.repeatLastN),
        new Option("--presence-penalty <F>", "presence penalty; 0 = disabled").argParser(floatInRange(-100, 100)).default(D.presencePenalty),
        new Option("--frequency-penalty <F>", "frequency penalty; 0 = disabled").argParser(floatInRange(-100, 100)).default(D.frequencyPenalty),
        new Option("-s, --seed <N>", "RNG seed; -1 = random").argParser(intInRange(-1, 0xffffffff)).default(D.seed)
    ]);
}

/** Turns commander's loose option object into SamplingOptions (negative temperature clamps to 0, as in ik). */
export function parseSamplingOptions(raw: Record<string, unknown>): SamplingOptions {
    const pick = <K extends keyof SamplingOptions>(k: K): SamplingOptions[K] => (raw[k] as SamplingOptions[K] | undefined) ?? D[k];
    return {
        temp: Math.max(0, pick("temp")),
        topK: pick("topK"),
        topP: pick("topP"),
        minP: pick("minP"),
        typical: pick("typical"),
        repeatPenalty: pick("repeatPenalty"),
        repeatLastN: pick("repeatLastN"),
        presencePenalty: pick("presencePenalty"),
        frequencyPenalty: pick("frequencyPenalty"),
        seed: pick("seed")
    };
}
