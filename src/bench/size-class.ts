// The model size class that llama-bench prints in its `model` column (llama_model_type_name of the type that
// ik_llama.cpp's llm_load_hparams assigns from the layer count; src/llama-hparams.cpp @8337e4cd). Only the
// architectures ikl runs are mapped; anything else is "?B", as the reference prints for MODEL_UNKNOWN.

export interface SizeFacts {
    arch: string;
    nLayer: number;
    nVocab: number;
    nHead: number;
    nHeadKv: number;
    nExpert: number;
}

export function sizeClass(f: SizeFacts): string {
    if (f.arch === "llama") {
        if (f.nExpert === 8) return ({ 32: "8x7B", 56: "8x22B" } as Record<number, string>)[f.nLayer] ?? "?B";
        switch (f.nLayer) {
            case 22: return "1B";
            case 26: return "3B";
            case 32: return f.nVocab === 49152 ? "3B" : f.nVocab < 40000 ? "7B" : "8B";
            case 36: return "8B";
            case 40: return "13B";
            case 48: return "34B";
            case 60: return "30B";
            case 80: return f.nHead === f.nHeadKv ? "65B" : "70B";
            default: return "?B";
        }
    }
    if (f.arch === "deepseek2") {
        return ({ 27: "16B", 36: "119B.A6B", 47: "30B.A3B", 60: "236B", 61: "671B" } as Record<number, string>)[f.nLayer] ?? "?B";
    }
    return "?B";
}
