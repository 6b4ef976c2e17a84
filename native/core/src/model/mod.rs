//! Models: the architecture is read from `general.architecture` and mapped to its file (one per
//! architecture, STYLE §1.7). `Model` owns the GGUF mapping and the weights that point into it.

pub mod blocks;
pub mod deepseek2;
pub mod hparams;
pub mod llama;
pub mod repack;
pub(crate) mod weights;

use crate::error::{Error, Result};
use crate::gguf::GgufModel;

/// Architectures the engine runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch {
    Llama,
    Deepseek2,
}

impl Arch {
    pub fn from_name(name: &str) -> Result<Arch> {
        match name {
            "llama" => Ok(Arch::Llama),
            "deepseek2" => Ok(Arch::Deepseek2),
            other => Err(Error::Unsupported { what: format!("model architecture '{other}' (supported: llama, deepseek2)") }),
        }
    }
}

/// Load-time options of `Model::open_with`.
#[derive(Clone, Copy, Debug, Default)]
pub struct OpenOptions {
    /// `-rtr`: repack CPU weights into their row-interleaved form (model/repack.rs).
    pub run_time_repack: bool,
}

/// The loaded network of one architecture.
pub enum Net {
    Llama(llama::Llama),
    Deepseek2(deepseek2::Deepseek2),
}

pub struct Model {
    pub arch: Arch,
    pub net: Net,
    /// Weights uploaded to GPUs by the placement (empty for a CPU-only model) and the placement report.
    pub gpu: crate::cuda::Resident,
    /// Weights repacked at load (`-rtr`, model/repack.rs); after `net`, which points into them.
    pub repacked: repack::Owned,
    /// Declared after `net` so the mapping is dropped last (the weights point into it).
    pub gguf: GgufModel,
}

impl Model {
    pub fn open(path: &str) -> Result<Model> {
        let gguf = GgufModel::open(path)?;
        Model::from_gguf(gguf)
    }

    /// Open with load-time options (`-rtr`).
    pub fn open_with(path: &str, opts: &OpenOptions) -> Result<Model> {
        let gguf = GgufModel::open(path)?;
        let (mut m, owned) = repack::scope(opts.run_time_repack, || Model::from_gguf(gguf))?;
        m.repacked = owned;
        Ok(m)
    }

    /// Open with load-time options and an explicit device per tensor name (src/engine/placement.ts decides;
    /// cuda/mod.rs applies; `-rtr` repacks only the weights that stay on the CPU).
    pub fn open_placed(path: &str, opts: &OpenOptions, plan: &crate::cuda::Placement) -> Result<Model> {
        let gguf = GgufModel::open(path)?;
        let rtr = opts.run_time_repack;
        let ((mut m, owned), gpu) = crate::cuda::load_scope(plan, || repack::scope(rtr, || Model::from_gguf(gguf)))?;
        m.repacked = owned;
        m.gpu = gpu;
        Ok(m)
    }

    pub fn from_gguf(gguf: GgufModel) -> Result<Model> {
        let name = gguf
            .get("general.architecture")
            .and_then(|v| v.as_str())
            .ok_or_else(|| Error::Invalid { what: "missing or non-string metadata key general.architecture".into() })?;
        let arch = Arch::from_name(name)?;
        let net = match arch {
            Arch::Llama => Net::Llama(llama::Llama::load(&gguf)?),
            Arch::Deepseek2 => Net::Deepseek2(deepseek2::Deepseek2::load(&gguf)?),
        };
        Ok(Model { arch, net, gpu: crate::cuda::Resident::default(), repacked: repack::Owned::default(), gguf })
    }

    pub fn n_vocab(&self) -> usize {
        match &self.net {
            Net::Llama(m) => m.hp.n_vocab,
            Net::Deepseek2(m) => m.hp.n_vocab,
        }
    }

    pub fn n_ctx_train(&self) -> usize {
        match &self.net {
            Net::Llama(m) => m.hp.n_ctx_train,
            Net::Deepseek2(m) => m.hp.n_ctx_train,
        }
    }
}
