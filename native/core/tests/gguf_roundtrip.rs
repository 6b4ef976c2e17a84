//! Read → write round trips on real files: a generated fixture model and a file written by ik_llama.cpp's own
//! GGUF writer (fixtures/models/ref-iqk-mix.gguf) must come back byte for byte. Also GGUF v2 files.

use ikl_core::fixtures::{write_model, FixtureOptions};
use ikl_core::gguf::{GgufHeader, GgufModel, GgufWriter, WriteTensor};
use ikl_core::Error;

fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Rewrite `path` from what we read and compare the bytes.
fn assert_round_trip(path: &str) {
    let m = GgufModel::open(path).unwrap_or_else(|e| panic!("{e}"));
    let h = m.header();
    let mut w = GgufWriter { version: h.version, kv: h.kv.clone(), tensors: vec![] };
    for t in &m.tensors {
        w.add_tensor(WriteTensor { name: t.name.clone(), ne: t.ne, n_dims: Some(t.n_dims), qtype: t.qtype });
    }
    let mut out = Vec::new();
    w.write_to(&mut out, |i, o| o.write_all(m.tensor_data(&m.tensors[i])).map_err(|e| Error::io("mem", e))).unwrap();
    let orig = std::fs::read(path).unwrap();
    assert_eq!(out.len(), orig.len(), "{path}: size differs");
    assert!(out == orig, "{path}: bytes differ at {:?}", out.iter().zip(&orig).position(|(a, b)| a != b));
}

#[test]
fn file_written_by_the_reference_round_trips() {
    assert_round_trip(root().join("fixtures/models/ref-iqk-mix.gguf").to_str().unwrap());
}

#[test]
fn generated_fixture_round_trips() {
    let dir = std::env::temp_dir().join(format!("ikl-rt-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let opts = FixtureOptions { vocab_dir: root().join("node_modules/@lenml"), ..FixtureOptions::default() };
    for name in ["llama-tiny", "ds-tiny"] {
        let p = dir.join(format!("{name}.gguf"));
        write_model(name, &opts, p.to_str().unwrap()).unwrap_or_else(|e| panic!("{name}: {e} (run npm install?)"));
        assert_round_trip(p.to_str().unwrap());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn version_2_files_are_read() {
    let mut bytes = std::fs::read(root().join("fixtures/models/ref-iqk-mix.gguf")).unwrap();
    bytes[4..8].copy_from_slice(&2u32.to_le_bytes());
    let h = GgufHeader::parse(&bytes, "v2").unwrap();
    assert_eq!(h.version, 2);
    assert!(!h.tensors.is_empty());
}
