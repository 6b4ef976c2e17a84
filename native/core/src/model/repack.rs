//! Run-time repacking (`-rtr`, spec/models.md §7.3): while a model binds its weights with repacking in force
//! (`scope`), every 2-D weight that stays on the CPU is rewritten at load into its row-interleaved form
//! (`Q4_0` → `Q4_0_R8`, `IQ4_K` → `IQ4_K_R4`, …), into memory the model owns (the mmap is never written).
//!
//! The type map is the reference's (`get_repack_info` in ggml/src/iqk/iqk_quantize.cpp @ 8337e4cd), with its
//! exclusions: the token embedding (read by get_rows, row by row), tensors whose row count is not a multiple
//! of the interleave. One rule of ours on top: a tensor is repacked only when the interleaved type has a CPU
//! kernel of the same tier as its base type here (`cpu/table.rs`): repacking onto a scalar fallback would make
//! `-rtr` slower, never faster. The interleaved kernels return bit-identical results to the base kernels
//! (cpu/kernels/interleaved.rs, interleaved_k.rs), so `-rtr` changes speed only, never a logit — except where
//! the base type has a large-batch plan (`table::batch_plan`: Q4_0 & co. ≥ 32 rows, Q6_K ≥ 64 rows converted to
//! Q8_0_R8) that its interleaved form does not have, as in the reference (`is_dequant_better` lists no `_R`
//! type): there the repacked run differs by f32 rounding.

use std::cell::RefCell;

use crate::cpu::ops::QMatrix;
use crate::cpu::table;
use crate::error::{Error, Result};
use crate::quant::formats::repack_rows;
use crate::quant::QType;

/// Buffers holding repacked weights; the model keeps them alive as long as its weights (`Model::repacked`).
#[derive(Default)]
pub struct Owned {
    pub buffers: Vec<Box<[u8]>>,
    /// Tensors (2-D slices) repacked and their bytes, for the load log.
    pub count: usize,
    pub bytes: usize,
}

thread_local! {
    static SCOPE: RefCell<Option<Owned>> = const { RefCell::new(None) };
}

/// The reference's `-rtr` target of base type `q` (`None`: not repacked).
pub fn target(q: QType) -> Option<QType> {
    use QType::*;
    Some(match q {
        IQ2_K => IQ2_K_R4,
        IQ3_K => IQ3_K_R4,
        IQ4_K => IQ4_K_R4,
        IQ5_K => IQ5_K_R4,
        IQ4_XS => IQ4_XS_R8,
        IQ4_KS => IQ4_KS_R4,
        IQ5_KS => IQ5_KS_R4,
        IQ4_NL => IQ4_NL_R4,
        IQ2_BN => IQ2_BN_R4,
        IQ2_XXS => IQ2_XXS_R4,
        IQ2_XS => IQ2_XS_R4,
        IQ2_S => IQ2_S_R4,
        IQ3_XXS => IQ3_XXS_R4,
        IQ3_S => IQ3_S_R4,
        Q2_K => Q2_K_R4,
        Q3_K => Q3_K_R4,
        Q4_K => Q4_K_R4,
        Q5_K => Q5_K_R4,
        Q6_K => Q6_K_R4,
        Q4_0 => Q4_0_R8,
        Q5_0 => Q5_0_R4,
        Q6_0 => Q6_0_R4,
        Q8_0 => Q8_0_R8,
        Q8_K => Q8_K_R8,
        Q8_KV => Q8_KV_R8,
        MXFP4 => MXFP4_R8,
        _ => return None,
    })
}

/// The type `-rtr` turns a CPU weight of type `q` with `ne1` rows into here (`None`: left as is): the
/// reference's target when its row count fits and its CPU kernels are as fast a tier as the base type's.
pub fn repacked_type(q: QType, ne1: usize) -> Option<QType> {
    let t = target(q)?;
    if ne1 % t.traits().interleave != 0 {
        return None;
    }
    let (kb, kt) = (table::kernels(q)?, table::kernels(t)?);
    (kt.tier >= kb.tier && kt.act == kb.act).then_some(t)
}

/// Run `f` (an architecture's weight loading) with repacking on when `on`; returns its result and the buffers
/// holding the repacked weights.
pub fn scope<T>(on: bool, f: impl FnOnce() -> Result<T>) -> Result<(T, Owned)> {
    if !on {
        return Ok((f()?, Owned::default()));
    }
    SCOPE.with(|s| *s.borrow_mut() = Some(Owned::default()));
    let out = f();
    let owned = SCOPE.with(|s| s.borrow_mut().take()).unwrap_or_default();
    Ok((out?, owned))
}

/// Repack `m` (tensor `name`) when a repacking scope is in force on this thread and the rules above allow it.
pub(crate) fn apply(name: &str, m: QMatrix) -> Result<QMatrix> {
    let active = SCOPE.with(|s| s.borrow().is_some());
    if !active || m.gpu.is_some() || name == "token_embd.weight" || name == "per_layer_token_embd.weight" {
        return Ok(m);
    }
    let Some(t) = repacked_type(m.fmt.qtype, m.ne1) else { return Ok(m) };
    let bytes = m.row_bytes * m.ne1;
    let mut buf = vec![0u8; bytes].into_boxed_slice();
    repack_parallel(t, &m.data[..bytes], &mut buf, m.ne0, m.ne1)?;
    // SAFETY: the boxed slice is moved into the scope's `Owned` below and from there into `Model::repacked`,
    // which drops after the weights (field order); moving a Box never moves its heap bytes.
    let data: &'static [u8] = unsafe { std::slice::from_raw_parts(buf.as_ptr(), buf.len()) };
    let r = QMatrix::new(data, t, m.ne0, m.ne1)
        .ok_or_else(|| Error::Unsupported { what: format!("tensor {name}: no CPU kernels for {}", t.name()) })?;
    SCOPE.with(|s| {
        if let Some(o) = s.borrow_mut().as_mut() {
            o.count += 1;
            o.bytes += bytes;
            o.buffers.push(buf);
        }
    });
    Ok(r)
}

/// `repack_rows` over whole interleave groups, split across the machine's cores (load time only).
fn repack_parallel(t: QType, src: &[u8], dst: &mut [u8], ne0: usize, ne1: usize) -> Result<()> {
    let il = t.traits().interleave;
    let rb = src.len() / ne1;
    let groups = ne1 / il;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(groups).max(1);
    let per = groups.div_ceil(threads) * il * rb;
    std::thread::scope(|s| {
        let jobs: Vec<_> = src.chunks(per).zip(dst.chunks_mut(per)).map(|(x, y)| s.spawn(move || repack_rows(t, x, y, ne0))).collect();
        jobs.into_iter().try_for_each(|j| j.join().unwrap_or_else(|_| Err(Error::Invalid { what: "repack thread panicked".into() })))
    })
}
