//! `inspectGguf`: metadata and tensor table of a GGUF model as JSON (shape in `src/engine/native.ts`).

use ikl_core::gguf::{Array, GgufModel, Value};
use serde_json::{json, Value as Json};

pub fn inspect(path: &str, max_array: i64) -> ikl_core::Result<Json> {
    let m = GgufModel::open(path)?;
    let files: Vec<Json> = m
        .files
        .iter()
        .map(|f| {
            let h = &f.header;
            json!({"path": f.path, "size": h.file_size, "version": h.version, "nTensors": h.tensors.len(),
                   "nKv": h.kv.len(), "alignment": h.alignment, "dataOffset": h.data_offset})
        })
        .collect();
    let limit = if max_array < 0 { usize::MAX } else { max_array as usize };
    let metadata: Vec<Json> = m
        .header()
        .kv
        .iter()
        .map(|(k, v)| {
            let mut e = json!({"key": k, "type": v.value_type().name(), "value": value(v, limit)});
            if let Value::Array(a) = v {
                e["arrayType"] = json!(a.elem_type().name());
                e["length"] = json!(a.len());
                if a.len() > limit {
                    e["truncated"] = json!(true);
                }
            }
            e
        })
        .collect();
    let tensors: Vec<Json> = m
        .tensors
        .iter()
        .enumerate()
        .map(|(i, t)| {
            json!({"index": i, "name": t.name, "type": t.qtype.name(), "typeId": t.qtype.id(),
                   "ne": &t.ne[..t.n_dims.max(1) as usize], "nElements": t.n_elements(), "bytes": t.nbytes,
                   "offset": t.offset, "file": t.file})
        })
        .collect();
    Ok(json!({"path": path, "files": files, "fileSize": m.file_size(), "metadata": metadata, "tensors": tensors}))
}

/// Integers beyond ±2^53 become decimal strings so JavaScript numbers never lose precision silently.
fn int(v: i128) -> Json {
    if v.unsigned_abs() <= (1u128 << 53) {
        json!(v as i64)
    } else {
        json!(v.to_string())
    }
}

fn float(v: f64) -> Json {
    serde_json::Number::from_f64(v).map(Json::Number).unwrap_or_else(|| json!(v.to_string()))
}

fn value(v: &Value, limit: usize) -> Json {
    match v {
        Value::U8(x) => int(*x as i128),
        Value::I8(x) => int(*x as i128),
        Value::U16(x) => int(*x as i128),
        Value::I16(x) => int(*x as i128),
        Value::U32(x) => int(*x as i128),
        Value::I32(x) => int(*x as i128),
        Value::U64(x) => int(*x as i128),
        Value::I64(x) => int(*x as i128),
        // Shortest decimal that round-trips as f32 (1e-6, not 9.99999997e-7).
        Value::F32(x) => float(format!("{x}").parse::<f64>().unwrap_or(*x as f64)),
        Value::F64(x) => float(*x),
        Value::Bool(b) => json!(*b != 0),
        Value::Str(s) => json!(String::from_utf8_lossy(s)),
        Value::Array(a) => array(a, limit),
    }
}

fn array(a: &Array, limit: usize) -> Json {
    let n = a.len().min(limit);
    Json::Array((0..n).filter_map(|i| a.get(i)).map(|v| value(&v, limit)).collect())
}
