//! Mutation fuzzing of the GGUF reader: thousands of corrupted and truncated variants of valid files must
//! each parse or fail with `Error::Gguf`/`Error::Invalid` — never panic, hang, over-allocate or read out of
//! bounds. Deterministic (seeded), bounded in time, part of the normal `cargo test` run.

use std::time::{Duration, Instant};

use ikl_core::gguf::{Array, GgufHeader, GgufWriter, Value, WriteTensor};
use ikl_core::quant::QType;
use ikl_core::Error;

/// xorshift64*: tiny deterministic PRNG for choosing mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// A seed file using every value type, nested arrays, a vocabulary-like string array and varied tensor types.
fn seed_file() -> Vec<u8> {
    let mut w = GgufWriter::new();
    w.set("general.architecture", Value::str("llama"));
    w.set("general.alignment", Value::U32(32));
    w.set("llama.block_count", Value::U32(2));
    w.set("llama.embedding_length", Value::U32(64));
    w.set("llama.rope.freq_base", Value::F32(10000.0));
    w.set("x.i8", Value::I8(-1));
    w.set("x.u16", Value::U16(7));
    w.set("x.i16", Value::I16(-7));
    w.set("x.i32", Value::I32(-70));
    w.set("x.u64", Value::U64(1 << 40));
    w.set("x.i64", Value::I64(-1));
    w.set("x.f64", Value::F64(0.25));
    w.set("x.bool", Value::bool(true));
    w.set("x.u8", Value::U8(255));
    let tokens: Vec<Vec<u8>> = (0..200).map(|i| format!("tok{i}").into_bytes()).collect();
    w.set("tokenizer.ggml.tokens", Value::Array(Array::Str(tokens)));
    w.set("tokenizer.ggml.scores", Value::Array(Array::F32((0..200).map(|i| -(i as f32)).collect())));
    w.set("x.nested", Value::Array(Array::Array(vec![Array::U32(vec![1, 2, 3]), Array::Str(vec![b"a".to_vec()])])));
    let shapes: [(&str, QType, &[u64]); 6] = [
        ("token_embd.weight", QType::F16, &[64, 200]),
        ("blk.0.attn_q.weight", QType::Q4_0, &[64, 64]),
        ("blk.0.ffn_down.weight", QType::Q4_K, &[256, 64]),
        ("blk.1.ffn_up_exps.weight", QType::IQ4_KS, &[256, 8, 4]),
        ("blk.1.attn_k.weight", QType::Q8_0_R8, &[64, 16]),
        ("output_norm.weight", QType::F32, &[64]),
    ];
    for (n, q, s) in shapes {
        w.add_tensor(WriteTensor::new(n, q, s));
    }
    let layout = w.layout().unwrap();
    let mut out = Vec::new();
    w.write_to(&mut out, |i, o| o.write_all(&vec![(i * 17) as u8; layout[i].1 as usize]).map_err(|e| Error::io("mem", e))).unwrap();
    out
}

/// Offsets of 8-byte length/count fields in the header part (where absurd values hurt most).
fn u64_fields(b: &[u8]) -> Vec<usize> {
    // Header counts, then every string length: scan for small little-endian u64 values followed by text.
    let mut v = vec![8, 16];
    let end = GgufHeader::parse(b, "seed").map(|h| h.data_offset as usize).unwrap_or(b.len());
    for i in 24..end.saturating_sub(8) {
        let x = u64::from_le_bytes(b[i..i + 8].try_into().unwrap());
        if (1..4096).contains(&x) {
            v.push(i);
        }
    }
    v
}

fn check(case: &[u8], what: &str) {
    let r = std::panic::catch_unwind(|| GgufHeader::parse(case, "fuzz"));
    match r {
        Err(_) => panic!("parser panicked on case {what}"),
        Ok(Ok(h)) => {
            // Whatever parses must describe data inside the buffer.
            for t in &h.tensors {
                let end = h.data_offset + t.offset + t.nbytes;
                assert!(end <= case.len() as u64, "case {what}: tensor {} out of bounds", t.name);
            }
        }
        Ok(Err(e)) => {
            assert!(matches!(e, Error::Gguf { .. } | Error::Invalid { .. }), "case {what}: unexpected error kind {e:?}");
            let msg = e.to_string();
            assert!(!msg.contains('\n'), "case {what}: multi-line message {msg}");
        }
    }
}

#[test]
fn mutated_and_truncated_files_never_crash() {
    let seed = seed_file();
    let fields = u64_fields(&seed);
    let header_end = GgufHeader::parse(&seed, "seed").unwrap().data_offset as usize;
    let mut rng = Rng(0x1234_5678_9abc_def1);
    let start = Instant::now();
    let mut cases = 0;
    for round in 0..30000 {
        let mut b = seed.clone();
        let what = format!("round {round}");
        match round % 6 {
            0 => {
                // flip 1–8 bits in the header part
                for _ in 0..1 + rng.below(8) {
                    let i = rng.below(header_end);
                    b[i] ^= 1 << rng.below(8);
                }
            }
            1 => {
                // absurd length / count
                let i = fields[rng.below(fields.len())];
                let vals = [u64::MAX, u64::MAX / 2, 1 << 62, 1 << 40, b.len() as u64, 0, (i64::MAX as u64) + 1];
                b[i..i + 8].copy_from_slice(&vals[rng.below(vals.len())].to_le_bytes());
            }
            2 => b.truncate(rng.below(seed.len())),
            3 => {
                // random byte runs
                let i = rng.below(header_end);
                let n = 1 + rng.below(16);
                for k in i..(i + n).min(b.len()) {
                    b[k] = rng.next() as u8;
                }
            }
            4 => {
                // delete or duplicate a chunk
                let i = rng.below(header_end);
                let n = 1 + rng.below(64);
                if rng.below(2) == 0 {
                    b.drain(i..(i + n).min(b.len()));
                } else {
                    let chunk: Vec<u8> = b[i..(i + n).min(b.len())].to_vec();
                    b.splice(i..i, chunk);
                }
            }
            _ => {
                // type tags: value types, array element types, tensor type ids
                let i = rng.below(header_end.saturating_sub(4));
                let vals = [9u32, 13, 99, u32::MAX, 4, 142, 400, 0];
                b[i..i + 4].copy_from_slice(&vals[rng.below(vals.len())].to_le_bytes());
            }
        }
        check(&b, &what);
        cases += 1;
    }
    assert!(cases >= 30000);
    assert!(start.elapsed() < Duration::from_secs(60), "fuzzing took {:?}", start.elapsed());
}

#[test]
fn absurd_metadata_is_rejected_before_allocating() {
    let seed = seed_file();
    // n_tensors and n_kv far beyond the file size.
    for (at, what) in [(8usize, "tensor count"), (16, "metadata count")] {
        let mut b = seed.clone();
        b[at..at + 8].copy_from_slice(&(1u64 << 60).to_le_bytes());
        let e = GgufHeader::parse(&b, "m").unwrap_err().to_string();
        assert!(e.contains(what), "{e}");
    }
    // A string length past the end: the first key's length.
    let mut b = seed.clone();
    b[24..32].copy_from_slice(&(u64::MAX - 3).to_le_bytes());
    assert!(GgufHeader::parse(&b, "m").unwrap_err().to_string().contains("exceeds the file size"));
}

#[test]
fn shapes_that_overflow_are_rejected() {
    let mut w = GgufWriter::new();
    w.set("general.architecture", Value::str("llama"));
    w.add_tensor(WriteTensor::new("t", QType::F32, &[4, 4]));
    let mut b = w.header_bytes().unwrap();
    b.extend_from_slice(&[0u8; 64]);
    // Locate the dims of tensor "t" and make them overflow i64 when multiplied.
    let pos = b.windows(9).position(|x| x == b"\x01\x00\x00\x00\x00\x00\x00\x00t").unwrap() + 9;
    // n_dims (u32) follows the name; then ne0, ne1.
    b[pos + 4..pos + 12].copy_from_slice(&(1u64 << 40).to_le_bytes());
    b[pos + 12..pos + 20].copy_from_slice(&(1u64 << 40).to_le_bytes());
    let e = GgufHeader::parse(&b, "m").unwrap_err().to_string();
    assert!(e.contains("overflows"), "{e}");
    // A negative dimension (as i64) is rejected too.
    b[pos + 4..pos + 12].copy_from_slice(&(-5i64).to_le_bytes());
    let e = GgufHeader::parse(&b, "m").unwrap_err().to_string();
    assert!(e.contains("invalid dimension"), "{e}");
}
