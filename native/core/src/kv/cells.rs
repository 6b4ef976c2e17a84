//! KV cell bookkeeping (pure, no tensors): which sequence ids and position each cache cell holds, slot search
//! for a ubatch, removal and the attention visibility rule (spec/models.md §1.4: a cell is visible to a
//! token of sequence s at position p when it belongs to s and its position is ≤ p).

/// Sequence ids are 0..MAX_SEQ (a bit set per cell).
pub const MAX_SEQ: usize = 64;

#[derive(Clone, Copy, Debug, Default)]
pub struct Cell {
    pub pos: i32,
    /// Bit i set: the cell belongs to sequence i. 0 = empty.
    pub seqs: u64,
}

#[derive(Debug)]
pub struct Cells {
    pub cells: Vec<Cell>,
    /// Where the next slot search starts.
    head: usize,
    /// One past the highest occupied cell (attention spans `0..used_end`).
    used_end: usize,
}

impl Cells {
    pub fn new(n_ctx: usize) -> Cells {
        Cells { cells: vec![Cell::default(); n_ctx], head: 0, used_end: 0 }
    }

    pub fn n_ctx(&self) -> usize {
        self.cells.len()
    }

    /// Cells attention must look at: `0..n_kv`.
    pub fn n_kv(&self) -> usize {
        self.used_end
    }

    /// First cell of `n` consecutive empty cells (searching from the last head, then wrapping).
    pub fn find_slot(&self, n: usize) -> Option<usize> {
        let n_ctx = self.cells.len();
        if n == 0 || n > n_ctx {
            return None;
        }
        let mut start = if self.head + n <= n_ctx { self.head } else { 0 };
        let mut tried = 0;
        while tried < n_ctx {
            if start + n > n_ctx {
                tried += n_ctx - start;
                start = 0;
                continue;
            }
            match (start..start + n).find(|&c| self.cells[c].seqs != 0) {
                None => return Some(start),
                Some(busy) => {
                    tried += busy + 1 - start;
                    start = busy + 1;
                }
            }
        }
        None
    }

    /// Record that cell `c` now holds `seq` at `pos`.
    pub fn occupy(&mut self, c: usize, pos: i32, seq: usize) {
        self.cells[c] = Cell { pos, seqs: 1u64 << seq };
        self.used_end = self.used_end.max(c + 1);
        self.head = c + 1;
    }

    /// Remove `seq` (all sequences if `None`) from cells with `p0 ≤ pos < p1` (`p1 < 0`: no upper bound).
    pub fn remove(&mut self, seq: Option<usize>, p0: i32, p1: i32) {
        let p1 = if p1 < 0 { i32::MAX } else { p1 };
        for c in self.cells.iter_mut() {
            if c.pos >= p0 && c.pos < p1 {
                match seq {
                    Some(s) => c.seqs &= !(1u64 << s),
                    None => c.seqs = 0,
                }
            }
        }
        self.used_end = self.cells.iter().rposition(|c| c.seqs != 0).map_or(0, |i| i + 1);
        self.head = 0;
    }

    pub fn clear(&mut self) {
        self.remove(None, i32::MIN, -1);
    }

    #[inline]
    pub fn visible(&self, c: usize, seq: usize, pos: i32) -> bool {
        let cell = &self.cells[c];
        cell.seqs & (1u64 << seq) != 0 && cell.pos <= pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_masks_and_removal() {
        let mut c = Cells::new(8);
        assert_eq!(c.find_slot(3), Some(0));
        for i in 0..3 {
            c.occupy(i, i as i32, 0);
        }
        assert_eq!(c.n_kv(), 3);
        assert!(c.visible(1, 0, 2) && !c.visible(2, 0, 1) && !c.visible(0, 1, 5));
        assert_eq!(c.find_slot(5), Some(3));
        assert_eq!(c.find_slot(6), None);
        c.remove(Some(0), 1, -1);
        assert_eq!(c.n_kv(), 1);
        assert_eq!(c.find_slot(7), Some(1));
    }
}
