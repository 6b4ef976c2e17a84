//! Models: the architecture is read from `general.architecture` and mapped to its file (one per
//! architecture, STYLE §1.7). `Model` owns the GGUF mapping and the weights that point into it.

pub mod blocks;
pub mod deepseek2;
pub mod hparams;
pub mod llama;
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

/// The loaded network of one architecture.
pub enum Net {
    Llama(llama::Llama),
    Deepseek2(deepseek2::Deepseek2),
}

pub struct Model {
    pub arch: Arch,
    pub net: Net,
    /// Declared after `net` so the mapping is dropped last (the weights point into it).
    pub gguf: GgufModel,
}

impl Model {
    pub fn open(path: &str) -> Result<Model> {
        let gguf = GgufModel::open(path)?;
        Model::from_gguf(gguf)
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
        Ok(Model { arch, net, gguf })
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
