//! Sequence state save/restore and K-shift over every cache layout (spec/models.md §6, §8): llama GQA,
//! deepseek2 mode 0 (standard, rope part last in each head) and the MLA latent caches (modes 1–3, rope first),
//! any cache type, V as rows, transposed, or a view of K.
//!
//! State bytes (all little-endian; ours, not the reference's `ggsq` file — the layout descriptor is explicit,
//! and every size comes from the cache actually allocated, never from head counts: the lesson of ik #436):
//! ```text
//! u32 magic "IKLS"   u32 version 1   u64 model fingerprint   u32 arch
//! u8 mla mode   u8 v_layout (0 rows, 1 transposed, 2 view of K)   u16 0
//! u32 type_k   u32 type_v (ggml ids)   u32 n_layer   u32 n_head_kv   u32 head_dim_k   u32 head_dim_v
//! u64 K bytes per cell   u64 V bytes per cell
//! u32 n_cells   i32 pos[n_cells]                       (the sequence's cells in cell order)
//! per layer: K rows of the cells; then V: rows (v_layout 0) or, transposed, per feature row the cells'
//!            2-byte elements (v_layout 1); nothing for a view.
//! ```
//! Restore refuses any header field that differs from the destination context (with the field named),
//! and a truncated or oversized payload. K-shift (§6.1, §6.4): positions += δ and the rope part of each
//! cached K row is rotated by δ (dequantize → rotate → re-quantize for quantized caches).

use super::{KvCache, VLayout};
use crate::cpu::ops::{self, RopeParams};
use crate::error::{Error, Result};
use crate::quant::QType;

const MAGIC: u32 = u32::from_le_bytes(*b"IKLS");
const VERSION: u32 = 1;

/// Where the rope part sits in each K head row: `n_rot` values at element offset `off` (llama: 0; deepseek2
/// mode 0: `nope`, the rope part is last; MLA latent rows: 0, the rope part is first).
#[derive(Clone, Copy, Debug)]
pub struct RopeSlice {
    pub off: usize,
    pub n_rot: usize,
}

/// Model identity written into a state: arch id and a fingerprint of the weights' layout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ident {
    pub arch: u32,
    pub fingerprint: u64,
}

fn bad(what: String) -> Error {
    Error::Invalid { what: format!("sequence state: {what}") }
}

struct Reader<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.b.len() - self.at < n {
            return Err(bad(format!("truncated: need {n} bytes at offset {}, {} left", self.at, self.b.len() - self.at)));
        }
        self.at += n;
        Ok(&self.b[self.at - n..self.at])
    }
    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().expect("4 bytes")))
    }
    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().expect("8 bytes")))
    }
}

impl KvCache {
    fn v_code(&self) -> u8 {
        match self.v_layout {
            VLayout::Rows => 0,
            VLayout::Trans => 1,
            VLayout::InK => 2,
        }
    }

    /// The header fields after magic/version/ident, as (name, value) pairs.
    fn layout_fields(&self) -> [(&'static str, u64); 10] {
        [
            ("mla mode", self.mla as u64),
            ("V layout", self.v_code() as u64),
            ("K type", self.type_k.id() as u64),
            ("V type", self.type_v.id() as u64),
            ("layers", self.n_layer() as u64),
            ("KV heads", self.n_head_kv as u64),
            ("K head dim", self.head_dim_k as u64),
            ("V head dim", self.head_dim_v as u64),
            ("K bytes per cell", self.k_bytes_per_cell() as u64),
            ("V bytes per cell", self.v_bytes_per_cell() as u64),
        ]
    }

    /// Cells owned by `seq`, in cell order.
    fn seq_cells(&self, seq: usize) -> Vec<usize> {
        (0..self.cells.n_ctx()).filter(|&c| self.cells.cells[c].seqs & (1u64 << seq) != 0).collect()
    }

    /// Serialize the cells of `seq` (format in the module docs).
    pub fn save_seq(&self, seq: usize, id: Ident) -> Vec<u8> {
        let cells = self.seq_cells(seq);
        let (kc, vc) = (self.k_bytes_per_cell(), self.v_bytes_per_cell());
        let n_ctx = self.cells.n_ctx();
        let mut o = Vec::with_capacity(96 + cells.len() * (4 + self.n_layer() * (kc + vc)));
        o.extend_from_slice(&MAGIC.to_le_bytes());
        o.extend_from_slice(&VERSION.to_le_bytes());
        o.extend_from_slice(&id.fingerprint.to_le_bytes());
        o.extend_from_slice(&id.arch.to_le_bytes());
        for (i, (_, v)) in self.layout_fields().iter().enumerate() {
            match i {
                0 | 1 => o.push(*v as u8),
                2..=7 => {
                    if i == 2 {
                        o.extend_from_slice(&0u16.to_le_bytes());
                    }
                    o.extend_from_slice(&(*v as u32).to_le_bytes())
                }
                _ => o.extend_from_slice(&v.to_le_bytes()),
            }
        }
        o.extend_from_slice(&(cells.len() as u32).to_le_bytes());
        for &c in &cells {
            o.extend_from_slice(&self.cells.cells[c].pos.to_le_bytes());
        }
        for il in 0..self.n_layer() {
            for &c in &cells {
                o.extend_from_slice(&self.k[il][c * kc..(c + 1) * kc]);
            }
            match self.v_layout {
                VLayout::Rows => cells.iter().for_each(|&c| o.extend_from_slice(&self.v[il][c * vc..(c + 1) * vc])),
                VLayout::Trans => {
                    for f in 0..self.n_head_kv * self.head_dim_v {
                        cells.iter().for_each(|&c| o.extend_from_slice(&self.v[il][(f * n_ctx + c) * 2..(f * n_ctx + c) * 2 + 2]))
                    }
                }
                VLayout::InK => {}
            }
        }
        o
    }

    /// Replace the cells of `seq` by a saved state (one contiguous block of free cells). Returns the number
    /// of cells restored. On a header mismatch nothing changes; the sequence is cleared only once the
    /// payload has been validated.
    pub fn load_seq(&mut self, seq: usize, b: &[u8], id: Ident) -> Result<usize> {
        let mut r = Reader { b, at: 0 };
        if r.u32()? != MAGIC {
            return Err(bad("not an ikl sequence state (bad magic)".into()));
        }
        let v = r.u32()?;
        if v != VERSION {
            return Err(bad(format!("version {v}, this build reads {VERSION}")));
        }
        let (fp, arch) = (r.u64()?, r.u32()?);
        if arch != id.arch || fp != id.fingerprint {
            return Err(bad(format!(
                "saved for another model (arch {arch}, fingerprint {fp:016x}; this context: arch {}, {:016x})",
                id.arch, id.fingerprint
            )));
        }
        for (i, (name, want)) in self.layout_fields().iter().enumerate() {
            let got = match i {
                0 | 1 => r.take(1)?[0] as u64,
                2..=7 => {
                    if i == 2 {
                        r.take(2)?;
                    }
                    r.u32()? as u64
                }
                _ => r.u64()?,
            };
            if got != *want {
                let show = |x: u64| {
                    if i == 2 || i == 3 {
                        QType::from_id(x as u32).map_or(x.to_string(), |t| t.name().to_string())
                    } else {
                        x.to_string()
                    }
                };
                return Err(bad(format!("cache layout differs: {name} is {} in the state, {} in this context", show(got), show(*want))));
            }
        }
        let n = r.u32()? as usize;
        let (kc, vc) = (self.k_bytes_per_cell(), self.v_bytes_per_cell());
        let v_t = if self.v_layout == VLayout::Trans { self.n_head_kv * self.head_dim_v * 2 } else { vc };
        let need = n * (4 + self.n_layer() * (kc + v_t));
        if b.len() - r.at != need {
            return Err(bad(format!("{n} cells need {need} payload bytes, the state has {}", b.len() - r.at)));
        }
        let pos: Vec<i32> = (0..n).map(|_| r.u32().map(|x| x as i32)).collect::<Result<_>>()?;
        self.cells.remove(Some(seq), i32::MIN, -1);
        if n == 0 {
            return Ok(0);
        }
        let slot = self
            .cells
            .find_slot(n)
            .ok_or_else(|| bad(format!("no {n} contiguous free cells in the KV cache (n_ctx {})", self.cells.n_ctx())))?;
        let n_ctx = self.cells.n_ctx();
        for il in 0..self.n_layer() {
            self.k[il][slot * kc..(slot + n) * kc].copy_from_slice(r.take(n * kc)?);
            match self.v_layout {
                VLayout::Rows => self.v[il][slot * vc..(slot + n) * vc].copy_from_slice(r.take(n * vc)?),
                VLayout::Trans => {
                    for f in 0..self.n_head_kv * self.head_dim_v {
                        let src = r.take(n * 2)?;
                        self.v[il][(f * n_ctx + slot) * 2..(f * n_ctx + slot + n) * 2].copy_from_slice(src);
                    }
                }
                VLayout::InK => {}
            }
        }
        for (i, &p) in pos.iter().enumerate() {
            self.cells.occupy(slot + i, p, seq);
        }
        Ok(n)
    }

    /// K-shift: cells of `seq` with `p0 ≤ pos < p1` (`p1 < 0`: no bound) move by `delta` positions and the
    /// rope part of their cached K rows is rotated by `delta` (RoPE composes: R(p+δ) = R(δ)·R(p)). The V
    /// side carries no position and is untouched. Returns the number of cells shifted.
    pub fn shift_seq(&mut self, seq: usize, p0: i32, p1: i32, delta: i32, rope: &RopeParams, at: RopeSlice) -> usize {
        let p1 = if p1 < 0 { i32::MAX } else { p1 };
        let cells: Vec<usize> = self.seq_cells(seq).into_iter().filter(|&c| (p0..p1).contains(&self.cells.cells[c].pos)).collect();
        if cells.is_empty() || delta == 0 {
            return cells.len();
        }
        let mut rc = vec![0.0f32; at.n_rot];
        rope.fill_cache(delta, &mut rc);
        let (dk, kr) = (self.head_dim_k, self.kt.row);
        let quant = self.kt.fmt.quantize.expect("cache types have quantizers");
        let deq = self.kt.fmt.dequantize;
        let mut row = vec![0.0f32; dk];
        for il in 0..self.n_layer() {
            for &c in &cells {
                for h in 0..self.n_head_kv {
                    let o = (c * self.n_head_kv + h) * kr;
                    let bytes = &mut self.k[il][o..o + kr];
                    deq(bytes, &mut row, dk);
                    ops::rope_row(&mut row[at.off..at.off + at.n_rot], at.n_rot, rope.mode, at.n_rot, &rc);
                    quant(&row, bytes, dk, None);
                }
            }
        }
        for &c in &cells {
            self.cells.cells[c].pos += delta;
        }
        cells.len()
    }
}
