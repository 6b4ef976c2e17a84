//! Building a `Vocab` from GGUF `tokenizer.*` metadata, after `llama_vocab::impl::load` in ik_llama.cpp
//! `src/llama-vocab.cpp` (reference commit 8337e4cd): model/pre-tokenizer selection and flag defaults, token
//! list with `[EMPTY_<id>]`, types -> attributes, merges, special ids (defaults, GGUF overrides, detection by
//! text), the end-of-generation set and the special-token cache. See docs: /work/shared/spec/gguf.md §12.

use std::collections::HashMap;

use super::unicode::compile;
use super::{attr, Vocab, VocabKind};
use crate::gguf::{Array, GgufHeader, Value};
use crate::{Error, Result};

fn invalid(what: impl Into<String>) -> Error {
    Error::Invalid { what: what.into() }
}

// Pre-tokenizer regex lists, verbatim from the reference's `llm_tokenizer_bpe` constructor.
const GPT2: &str = "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)";
const LLAMA3: &str = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const QWEN2: &str = "(?:'[sS]|'[tT]|'[rR][eE]|'[vV][eE]|'[mM]|'[lL][lL]|'[dD])|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+";
const DEFAULT: &[&str] = &["[\\p{P}\\$\\+<=>\\^~\\|]+", GPT2, "\\p{N}+", "[0-9][0-9][0-9]"];
const DEEPSEEK_LLM: &[&str] = &[
    "[\r\n]",
    "\\s?[A-Za-zµÀ-ÖØ-öø-ƺƼ-ƿǄ-ʓʕ-ʯͰ-ͳͶͷͻ-ͽͿΆΈ-ΊΌΎ-ΡΣ-ϵϷ-ҁҊ-ԯԱ-ՖႠ-ჅᎠ-Ᏽᏸ-ᏽᲐ-ᲺᲽ-Ჿᴀ-ᴫᵫ-ᵷᵹ-ᶚḀ-ἕἘ-Ἕἠ-ὅὈ-Ὅὐ-ὗὙὛὝὟ-ώᾀ-ᾴᾶ-ᾼιῂ-ῄῆ-ῌῐ-ΐῖ-Ίῠ-Ῥῲ-ῴῶ-ῼℂℇℊ-ℓℕℙ-ℝℤΩℨK-ℭℯ-ℴℹℼ-ℿⅅ-ⅉⅎↃↄⰀ-ⱻⱾ-ⳤⳫ-ⳮⳲⳳꙀ-ꙭꚀ-ꚛꜢ-ꝯꝱ-ꞇꞋ-ꞎꭰ-ꮿﬀ-ﬆﬓ-ﬗＡ-Ｚａ-ｚ𐐀-𐑏𐒰-𐓓𐓘-𐓻𐲀-𐲲𐳀-𐳲𑢠-𑣟𞤀-𞥃]+",
    "\\s?[!-/:-~！-／：-～‘-‟　-。]+",
    "\\s+$",
    "[一-龥ࠀ-一가-퟿]+",
    "\\p{N}+",
];
const DEEPSEEK_CODER: &[&str] = &["[\r\n]", "\\s?\\p{L}+", "\\s?\\p{P}+", "[一-龥ࠀ-一가-퟿]+", "\\p{N}"];
const DEEPSEEK_V3: &[&str] = &[
    "\\p{N}{1,3}",
    "[一-龥぀-ゟ゠-ヿ]+",
    "[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+| ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+",
];
const FALCON: &[&str] = &["[\\p{P}\\$\\+<=>\\^~\\|`]+", GPT2, "[0-9][0-9][0-9]"];
const STARCODER: &[&str] = &["\\p{N}", GPT2];

/// A BPE pre-tokenizer preset: regexes and the flags its `tokenizer.ggml.pre` value sets.
struct Preset {
    regexes: &'static [&'static str],
    ignore_merges: bool,
    clean_spaces: bool,
    add_bos: bool,
}

fn preset(pre: &str) -> Option<Preset> {
    let p = |regexes, ignore_merges, clean_spaces, add_bos| Preset { regexes, ignore_merges, clean_spaces, add_bos };
    Some(match pre {
        "" | "default" => p(DEFAULT, false, true, false),
        "llama3" | "llama-v3" | "llama-bpe" | "laguna" | "falcon3" | "falcon-h1" | "pixtral" | "midm-2.0" | "lfm2" | "jina-v5-nano" => {
            p(&[LLAMA3], true, true, true)
        }
        "dbrx" | "smaug-bpe" => p(&[LLAMA3], false, true, false),
        "deepseek-llm" => p(DEEPSEEK_LLM, false, false, false),
        "deepseek-coder" => p(DEEPSEEK_CODER, false, false, false),
        "deepseek-v3" => p(DEEPSEEK_V3, false, false, false),
        "falcon" => p(FALCON, false, true, false),
        "gpt-2" | "phi-2" | "jina-es" | "jina-de" | "gigachat" | "jina-v2-es" | "jina-v2-de" | "a.x-4.0" | "mellum" | "modern-bert"
        | "mpt" | "olmo" => p(&[GPT2], false, true, false),
        "starcoder" | "refact" => p(STARCODER, false, true, false),
        "command-r" | "cohere2_moe" => p(STARCODER, false, false, false),
        "qwen2" | "deepseek-r1-qwen" | "kormo" | "openpangu" | "f2llmv2" => p(&[QWEN2], false, false, false),
        _ => return None,
    })
}

fn get_str(h: &GgufHeader, key: &str) -> Option<String> {
    match h.get(key)? {
        Value::Str(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

fn get_bool(h: &GgufHeader, key: &str) -> Option<bool> {
    match h.get(key)? {
        Value::Bool(b) => Some(*b != 0),
        v => v.as_i64().map(|x| x != 0),
    }
}

fn get_id(h: &GgufHeader, key: &str) -> Option<i64> {
    h.get(key)?.as_i64()
}

fn str_array<'a>(h: &'a GgufHeader, key: &str) -> Result<Option<&'a Vec<Vec<u8>>>> {
    match h.get(key) {
        None => Ok(None),
        Some(Value::Array(Array::Str(v))) => Ok(Some(v)),
        Some(_) => Err(invalid(format!("{key}: expected an array of strings"))),
    }
}

/// Token names the reference recognises as EOG (and marks CONTROL).
const EOG_NAMES: &[&str] = &[
    "<|eot_id|>",
    "<|im_end|>",
    "<|end|>",
    "<|return|>",
    "<|call|>",
    "<|flush|>",
    "<|calls|>",
    "<end_of_turn>",
    "<|endoftext|>",
    "</s>",
    "<|eom_id|>",
    "<EOT>",
    "_<EOT>",
    "[EOT]",
    "[EOS]",
    "<|end_of_text|>",
    "<end_of_utterance>",
    "<eos>",
    "<turn|>",
    "<|tool_response>",
    "<｜end▁of▁sentence｜>",
];

pub(super) fn from_gguf(h: &GgufHeader) -> Result<Vocab> {
    let model = get_str(h, "tokenizer.ggml.model").ok_or_else(|| invalid("tokenizer.ggml.model is missing"))?;
    let pre = get_str(h, "tokenizer.ggml.pre").unwrap_or_default();
    let kind = match model.as_str() {
        "llama" => VocabKind::Spm,
        "gpt2" => VocabKind::Bpe,
        other => return Err(Error::Unsupported { what: format!("tokenizer model '{other}'") }),
    };
    let tokens_raw = str_array(h, "tokenizer.ggml.tokens")?.ok_or_else(|| invalid("tokenizer.ggml.tokens is missing"))?;
    let n = tokens_raw.len();
    if n > u32::MAX as usize / 2 {
        return Err(invalid("tokenizer.ggml.tokens: too many tokens"));
    }

    let mut v = Vocab {
        kind,
        pre: pre.clone(),
        tokens: Vec::with_capacity(n),
        scores: vec![0.0; n],
        attrs: vec![attr::NORMAL; n],
        token_to_id: HashMap::with_capacity(n),
        bpe_ranks: HashMap::new(),
        pre_regex: Vec::new(),
        special_cache: Vec::new(),
        eog: Vec::new(),
        bos: None,
        eos: None,
        eot: None,
        unk: None,
        add_bos: false,
        add_eos: false,
        add_space_prefix: false,
        ignore_merges: false,
        clean_spaces: false,
    };

    let mut bos: Option<u32>;
    let mut eos: Option<u32>;
    let mut unk: Option<u32> = None;
    match kind {
        VocabKind::Spm => {
            (bos, eos, unk) = (Some(1), Some(2), Some(0));
            v.add_space_prefix = true;
            v.add_bos = true;
        }
        VocabKind::Bpe => {
            (bos, eos) = (Some(11), Some(11));
            let ps = preset(&pre).ok_or_else(|| Error::Unsupported { what: format!("pre-tokenizer type '{pre}'") })?;
            v.ignore_merges = ps.ignore_merges;
            v.clean_spaces = ps.clean_spaces;
            v.add_bos = ps.add_bos;
            v.pre_regex = ps.regexes.iter().map(|r| compile(r)).collect::<Result<_>>()?;
            let merges = str_array(h, "tokenizer.ggml.merges")?.ok_or_else(|| invalid("cannot find tokenizer merges in model file"))?;
            v.bpe_ranks.reserve(merges.len());
            for (i, m) in merges.iter().enumerate() {
                // split at the first space that is not at position 0; no space -> ("", "")
                let (l, r) = match m.iter().skip(1).position(|&b| b == b' ') {
                    Some(p) => (&m[..p + 1], &m[p + 2..]),
                    None => (&m[..0], &m[..0]),
                };
                let mut key = Vec::with_capacity(4 + l.len() + r.len());
                key.extend_from_slice(&(l.len() as u32).to_le_bytes());
                key.extend_from_slice(l);
                key.extend_from_slice(r);
                v.bpe_ranks.entry(key).or_insert(i as u32);
            }
        }
    }
    if let Some(b) = get_bool(h, "tokenizer.ggml.add_space_prefix") {
        v.add_space_prefix = b;
    }

    // tokens, scores, types
    let scores = h.get("tokenizer.ggml.scores").and_then(Value::as_array);
    if let Some(s) = scores {
        if s.len() < n {
            return Err(invalid(format!("tokenizer.ggml.scores: {} < {n} entries", s.len())));
        }
    }
    let types = match h.get("tokenizer.ggml.token_type").and_then(Value::as_array) {
        Some(a) => {
            let t = a.as_i64_vec().ok_or_else(|| invalid("tokenizer.ggml.token_type: expected integers"))?;
            if t.len() < n {
                return Err(invalid(format!("tokenizer.ggml.token_type: {} < {n} entries", t.len())));
            }
            Some(t)
        }
        None => None,
    };
    for (i, raw) in tokens_raw.iter().enumerate() {
        let word = if raw.is_empty() { format!("[EMPTY_{i}]").into_bytes() } else { raw.clone() };
        v.token_to_id.insert(word.clone(), i as u32);
        v.tokens.push(word);
        if let Some(s) = scores {
            v.scores[i] = s.get(i).and_then(|x| x.as_f64()).unwrap_or(0.0) as f32;
        }
        if let Some(t) = &types {
            v.attrs[i] = match t[i] {
                1 => attr::NORMAL,
                2 => attr::UNKNOWN,
                3 => attr::CONTROL,
                4 => attr::USER_DEFINED,
                5 => attr::UNUSED,
                6 => attr::BYTE,
                _ => attr::UNDEFINED,
            };
        }
    }

    // special ids: GGUF overrides when in range
    let in_range = |key: &str| get_id(h, key).filter(|&x| x >= 0 && (x as usize) < n).map(|x| x as u32);
    let pick = |key: &str, default: Option<u32>| in_range(key).or(default);
    bos = pick("tokenizer.ggml.bos_token_id", bos);
    eos = pick("tokenizer.ggml.eos_token_id", eos);
    unk = pick("tokenizer.ggml.unknown_token_id", unk);
    let mut eot = in_range("tokenizer.ggml.eot_token_id");
    let mut eom = in_range("tokenizer.ggml.eom_token_id");
    let mut fim: [Option<u32>; 6] = [
        in_range("tokenizer.ggml.fim_pre_token_id").or(in_range("tokenizer.ggml.prefix_token_id")),
        in_range("tokenizer.ggml.fim_suf_token_id").or(in_range("tokenizer.ggml.suffix_token_id")),
        in_range("tokenizer.ggml.fim_mid_token_id").or(in_range("tokenizer.ggml.middle_token_id")),
        in_range("tokenizer.ggml.fim_pad_token_id"),
        in_range("tokenizer.ggml.fim_rep_token_id"),
        in_range("tokenizer.ggml.fim_sep_token_id"),
    ];
    if let Some(b) = get_bool(h, "tokenizer.ggml.add_bos_token") {
        v.add_bos = b;
    }
    if let Some(b) = get_bool(h, "tokenizer.ggml.add_eos_token") {
        v.add_eos = b;
    }

    // detection by text (first candidate in list order); the chosen token becomes CONTROL
    let detect = |v: &mut Vocab, slot: &mut Option<u32>, names: &[&str]| {
        if slot.is_some() {
            return;
        }
        if let Some(id) = names.iter().find_map(|t| v.token_to_id.get(t.as_bytes()).copied()) {
            *slot = Some(id);
            v.attrs[id as usize] |= attr::CONTROL;
        }
    };
    detect(
        &mut v,
        &mut eot,
        &[
            "<|eot_id|>",
            "<|im_end|>",
            "<|end|>",
            "<end_of_turn>",
            "<|endoftext|>",
            "<|end_of_text|>",
            "<EOT>",
            "_<EOT>",
            "[EOT]",
            "<｜end▁of▁sentence｜>",
            "<end_of_utterance>",
        ],
    );
    detect(&mut v, &mut eom, &["<|eom_id|>"]);
    let fim_names: [&[&str]; 6] = [
        &["<|fim_prefix|>", "<fim-prefix>", "<fim_prefix>", "<｜fim▁begin｜>", "<PRE>", "▁<PRE>", "<|code_prefix|>", "<|prefix|>"],
        &["<|fim_suffix|>", "<fim-suffix>", "<fim_suffix>", "<｜fim▁hole｜>", "<SUF>", "▁<SUF>", "<|code_suffix|>", "<|suffix|>"],
        &["<|fim_middle|>", "<fim-middle>", "<fim_middle>", "<｜fim▁end｜>", "<MID>", "▁<MID>", "<|code_middle|>", "<|middle|>"],
        &["<|fim_pad|>", "<fim-pad>", "<fim_pad>", "<PAD>", "[PAD]"],
        &["<|fim_repo|>", "<|repo_name|>", "<fim-repo>", "<REPO>", "<reponame>"],
        &["<|file_sep|>"],
    ];
    for (slot, names) in fim.iter_mut().zip(fim_names) {
        detect(&mut v, slot, names);
    }
    // control tokens named "*unused*" become UNUSED
    for (i, t) in v.tokens.iter().enumerate() {
        if v.attrs[i] & attr::CONTROL != 0 && t.windows(6).any(|w| w == b"unused") {
            v.attrs[i] |= attr::UNUSED;
        }
    }

    // end-of-generation set
    let mut eog: Vec<u32> = fim[3..].iter().flatten().copied().collect();
    for name in EOG_NAMES {
        if let Some(&id) = v.token_to_id.get(name.as_bytes()) {
            eog.push(id);
            v.attrs[id as usize] |= attr::CONTROL;
        }
    }
    for name in ["<|channel|>", "<|message|>", "<|start|>", "<|constrain|>"] {
        if let Some(&id) = v.token_to_id.get(name.as_bytes()) {
            v.attrs[id as usize] = attr::USER_DEFINED;
        }
    }
    eog.extend([eos, eot, eom].into_iter().flatten());
    eog.sort_unstable();
    eog.dedup();
    let has = |eog: &[u32], v: &Vocab, name: &str| {
        eog.iter().find(|&&id| v.tokens.get(id as usize).is_some_and(|t| t == name.as_bytes())).copied()
    };
    if let Some(end) = has(&eog, &v, "<|end|>") {
        let ret = has(&eog, &v, "<|return|>").is_some();
        let call = has(&eog, &v, "<|call|>").is_some() || has(&eog, &v, "<|calls|>").is_some();
        let flush = has(&eog, &v, "<|flush|>").is_some();
        if call && (ret || flush) {
            eog.retain(|&x| x != end);
            v.attrs[end as usize] = attr::USER_DEFINED;
        }
    }
    if let (Some(s), true) = (has(&eog, &v, "</s>"), has(&eog, &v, "<|tool_response>").is_some()) {
        eog.retain(|&x| x != s);
        v.attrs[s as usize] = attr::NORMAL;
    }

    // special-token cache: longest text first (ties: lower id first)
    let mut cache: Vec<u32> =
        (0..n as u32).filter(|&i| v.attrs[i as usize] & (attr::CONTROL | attr::USER_DEFINED | attr::UNKNOWN) != 0).collect();
    cache.sort_by(|&a, &b| v.tokens[b as usize].len().cmp(&v.tokens[a as usize].len()));
    v.special_cache = cache;

    // per-model attribute fix-ups (by general.name)
    let name = get_str(h, "general.name").unwrap_or_default().to_lowercase();
    if name.contains("phi-3") || name.contains("phi3") {
        for &id in &v.special_cache {
            v.attrs[id as usize] |= attr::RSTRIP;
        }
        if let Some(&id) = v.token_to_id.get(&b"</s>"[..]) {
            v.attrs[id as usize] |= attr::RSTRIP;
        }
        for t in ["<unk>", "<s>", "<|endoftext|>"] {
            if let Some(&id) = v.token_to_id.get(t.as_bytes()) {
                v.attrs[id as usize] &= !attr::RSTRIP;
            }
        }
    }

    v.bos = bos;
    v.eos = eos;
    v.eot = eot;
    v.unk = unk;
    v.eog = eog;
    Ok(v)
}
