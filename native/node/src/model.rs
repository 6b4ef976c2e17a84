//! `Model`: a loaded GGUF (weights mmapped in ikl-core) plus its vocabulary. `open` runs on a libuv worker;
//! tokenize / detokenize / tokenToPiece are sync (cheap, per prompt or per streamed token; STYLE §1.4).
//! Holds `Arc`s only: contexts keep their own clone of the core model, so `close()` never frees weights a
//! context still uses. Not here: placement plans and CUDA upload (no CUDA backend yet).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use ikl_core::model::{Model as CoreModel, Net};
use ikl_core::tokenizer::Vocab;
use napi::bindgen_prelude::*;
use napi::Env;
use napi_derive::napi;
use serde_json::{json, Value as Json};

use crate::errors::{guarded, js_error, Failure};

pub struct Loaded {
    pub model: Arc<CoreModel>,
    pub vocab: Vocab,
    pub meta: Json,
}

#[napi(object)]
pub struct OpenOptions {
    /// Accepted for the reference's `--no-mmap`; the engine always maps the file (weights never copy).
    pub use_mmap: Option<bool>,
    /// Threads for loading (reserved: loading is a single mmap today).
    pub threads: Option<u32>,
    /// `-rtr`: repack CPU weights into their row-interleaved form at load (ikl-core model/repack.rs).
    pub run_time_repack: Option<bool>,
    /// Tensor name → `CPU` / `CUDA<n>` (src/engine/placement.ts); tensors not named stay on the CPU.
    pub placement: Option<HashMap<String, String>>,
}

#[napi]
pub struct Model {
    inner: Option<Arc<Loaded>>,
}

impl Model {
    pub(crate) fn loaded(&self) -> std::result::Result<Arc<Loaded>, Failure> {
        self.inner.clone().ok_or_else(|| Failure { code: "IKL_E_INVALID", message: "model is closed".into() })
    }
}

fn describe(m: &CoreModel, vocab: &Vocab) -> Json {
    // (n_vocab, n_ctx_train, n_embd, n_layer, n_head, n_head_kv)
    let hp = match &m.net {
        Net::Llama(l) => (l.hp.n_vocab, l.hp.n_ctx_train, l.hp.n_embd, l.hp.n_layer, l.hp.n_head, l.hp.n_head_kv),
        Net::Deepseek2(d) => (d.hp.n_vocab, d.hp.n_ctx_train, d.hp.n_embd, d.hp.n_layer, d.hp.n_head, d.hp.n_head),
    };
    let mut types: BTreeMap<&str, usize> = BTreeMap::new();
    let mut n_params: u64 = 0;
    for t in &m.gguf.tensors {
        *types.entry(t.qtype.name()).or_default() += 1;
        n_params += t.n_elements();
    }
    let eog: Vec<u32> = (0..vocab.n_tokens() as u32).filter(|&i| vocab.is_eog(i)).collect();
    let s = |k: &str| m.gguf.get(k).and_then(|v| v.as_str()).map(str::to_string);
    json!({
        "arch": s("general.architecture"),
        "name": s("general.name"),
        "nVocab": hp.0,
        "nCtxTrain": hp.1,
        "nEmbd": hp.2,
        "nLayer": hp.3,
        "nHead": hp.4,
        "nHeadKv": hp.5,
        "nParams": n_params,
        "sizeBytes": m.gguf.file_size(),
        "types": types,
        "chatTemplate": s("tokenizer.chat_template"),
        "bos": vocab.bos(),
        "eos": vocab.eos(),
        "eot": vocab.eot(),
        "eog": eog,
        "addBos": vocab.add_bos(),
        "vocabType": format!("{:?}", vocab.kind()).to_lowercase(),
        "repackedTensors": m.repacked.count,
    })
}

pub struct OpenTask {
    path: String,
    opts: ikl_core::model::OpenOptions,
    /// Tensor name → device from the TypeScript placement plan (src/engine/placement.ts); empty = all on CPU.
    placement: HashMap<String, String>,
}

/// What the placement put on GPUs: weight bytes per device and the tensors kept on the CPU (with the reason).
fn offload_report(m: &CoreModel) -> Json {
    let kept: Vec<Json> = m.gpu.kept_on_cpu.iter().map(|(n, why)| json!({ "tensor": n, "reason": why })).collect();
    json!({ "bytesPerDevice": m.gpu.bytes, "keptOnCpu": kept })
}

impl Task for OpenTask {
    type Output = std::result::Result<Arc<Loaded>, Failure>;
    type JsValue = Model;

    fn compute(&mut self) -> Result<Self::Output> {
        Ok(guarded(|| {
            let placement = placement_of(&self.placement)?;
            let model = if !placement.uses_cuda() {
                CoreModel::open_with(&self.path, &self.opts)?
            } else {
                CoreModel::open_placed(&self.path, &self.opts, &placement)?
            };
            let vocab = Vocab::from_gguf(model.gguf.header())?;
            let mut meta = describe(&model, &vocab);
            meta["offload"] = offload_report(&model);
            Ok(Arc::new(Loaded { model: Arc::new(model), vocab, meta }))
        }))
    }

    fn resolve(&mut self, env: Env, out: Self::Output) -> Result<Model> {
        out.map(|l| Model { inner: Some(l) }).map_err(|f| js_error(&env, f))
    }
}

/// The plan's device names parsed (`CPU`, `CUDA0`, …); an unknown name is an IKL_E_INVALID error.
fn placement_of(p: &HashMap<String, String>) -> ikl_core::Result<ikl_core::cuda::Placement> {
    let mut by_name = HashMap::new();
    for (name, dev) in p {
        by_name.insert(name.clone(), ikl_core::cuda::Device::parse(dev)?);
    }
    Ok(ikl_core::cuda::Placement { by_name })
}

#[napi]
impl Model {
    /// Map and load a GGUF model on a worker thread.
    #[napi(ts_return_type = "Promise<Model>")]
    pub fn open(path: String, opts: Option<OpenOptions>) -> AsyncTask<OpenTask> {
        let run_time_repack = opts.as_ref().and_then(|o| o.run_time_repack).unwrap_or(false);
        let placement = opts.and_then(|o| o.placement).unwrap_or_default();
        AsyncTask::new(OpenTask { path, opts: ikl_core::model::OpenOptions { run_time_repack }, placement })
    }

    /// Architecture, sizes, type histogram, chat template and special tokens (see `ModelMeta` in native.ts).
    #[napi(ts_return_type = "ModelMeta")]
    pub fn meta(&self, env: Env) -> Result<Json> {
        self.loaded().map(|l| l.meta.clone()).map_err(|f| js_error(&env, f))
    }

    /// `llama_tokenize(text, add_special, parse_special)`.
    #[napi]
    pub fn tokenize(&self, env: Env, text: String, add_special: bool, parse_special: bool) -> Result<Uint32Array> {
        let l = self.loaded().map_err(|f| js_error(&env, f))?;
        guarded(|| Ok(l.vocab.tokenize(&text, add_special, parse_special))).map(Uint32Array::new).map_err(|f| js_error(&env, f))
    }

    /// Bytes of one token (may end inside a UTF-8 character); `special` renders control tokens.
    #[napi]
    pub fn token_to_piece(&self, env: Env, id: u32, special: Option<bool>) -> Result<Uint8Array> {
        let l = self.loaded().map_err(|f| js_error(&env, f))?;
        guarded(|| Ok(l.vocab.token_to_piece(id, special.unwrap_or(false)))).map(Uint8Array::new).map_err(|f| js_error(&env, f))
    }

    /// `llama_detokenize(ids, remove_special, unparse_special)` as bytes.
    #[napi]
    pub fn detokenize(
        &self,
        env: Env,
        ids: Uint32Array,
        remove_special: Option<bool>,
        unparse_special: Option<bool>,
    ) -> Result<Uint8Array> {
        let l = self.loaded().map_err(|f| js_error(&env, f))?;
        let ids = ids.to_vec();
        guarded(|| Ok(l.vocab.detokenize(&ids, remove_special.unwrap_or(false), unparse_special.unwrap_or(false))))
            .map(Uint8Array::new)
            .map_err(|f| js_error(&env, f))
    }

    /// Drop this handle's reference; contexts created from it keep the weights alive until they are gone.
    #[napi]
    pub fn close(&mut self) {
        self.inner = None;
    }
}
