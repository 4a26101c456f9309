//! Where a layer kernel writes its outputs and reads its output gradients: a row per
//! neuron, or, for the last layer under a GroupSum head, the head's per-group rows directly
//! (the layer's own rows then never go through memory).

use super::LANES;
use crate::layer::act::Act;
use crate::layer::lanes::Lanes;

/// Where the forward pass puts neuron `i`'s outputs: its own row, or its group's sum.
pub(super) trait Sink<S: Lanes, A: Act> {
    /// Neurons.
    fn len(&self) -> usize;
    /// Samples `c..c + 32` of neuron `i`, as `Act::load2` orders them.
    ///
    /// # Safety
    /// `i < len()` and `c + 32 <= bs`.
    unsafe fn put2(&mut self, i: usize, c: usize, y: S::V, yb: S::V);
    /// Samples `c..c + 16` of neuron `i`.
    ///
    /// # Safety
    /// `i < len()` and `c + 16 <= bs`.
    unsafe fn put(&mut self, i: usize, c: usize, y: S::V);
}

/// One output row per neuron (`[out_dim][bs]`).
pub(super) struct Rows<'a, A> {
    pub(super) out: &'a mut [A],
    pub(super) bs: usize,
}

impl<S: Lanes, A: Act> Sink<S, A> for Rows<'_, A> {
    #[inline(always)]
    fn len(&self) -> usize {
        self.out.len() / self.bs
    }
    #[inline(always)]
    unsafe fn put2(&mut self, i: usize, c: usize, y: S::V, yb: S::V) {
        A::store2::<S>(self.out.as_mut_ptr().add(i * self.bs + c), y, yb);
    }
    #[inline(always)]
    unsafe fn put(&mut self, i: usize, c: usize, y: S::V) {
        A::store::<S>(self.out.as_mut_ptr().add(i * self.bs + c), y);
    }
}

/// GroupSum's training scores before the division by τ: neuron `i` adds its output, rounded
/// to `A` as a stored row would be, into row `i / group` of `sums` (`[k][bs]`, f32, zero at
/// the start). Neurons come in order, so each sum adds its rows in the order the head's own
/// `add_rows` does, and the scores are bit for bit the same without the rows being written.
///
/// The rounding stays in registers (`Act::round`), and pairs of chunks are added in the
/// order `Act::load2` gives them; [`GroupSums::finish`] puts the sums back in sample order.
pub(super) struct GroupSums<'a, A> {
    pub(super) sums: &'a mut [f32],
    pub(super) group: usize,
    pub(super) out_dim: usize,
    pub(super) bs: usize,
    pub(super) _act: std::marker::PhantomData<A>,
}

impl<A: Act> GroupSums<'_, A> {
    /// Every sum in sample order. The kernels hand over chunks below `bs / 32 * 32` in
    /// pairs (`Sink::put2`) and the rest one at a time.
    pub(super) fn finish(self) {
        if !A::BF16 {
            // load2 of the other types is the first and the second sixteen: sample order.
            return;
        }
        let pairs = self.bs / (2 * LANES) * (2 * LANES);
        for row in self.sums.chunks_exact_mut(self.bs) {
            for chunk in row[..pairs].chunks_exact_mut(2 * LANES) {
                let t: [f32; 2 * LANES] = std::array::from_fn(|j| chunk[j]);
                for (j, v) in chunk.iter_mut().enumerate() {
                    *v = t[(j % 2) * LANES + j / 2];
                }
            }
        }
    }
}

impl<S: Lanes, A: Act> Sink<S, A> for GroupSums<'_, A> {
    #[inline(always)]
    fn len(&self) -> usize {
        self.out_dim
    }
    #[inline(always)]
    unsafe fn put2(&mut self, i: usize, c: usize, y: S::V, yb: S::V) {
        debug_assert!(c + 2 * LANES <= self.bs / (2 * LANES) * (2 * LANES));
        let s = self.sums.as_mut_ptr().add((i / self.group) * self.bs + c);
        S::store(s, S::add(S::load(s), A::round::<S>(y)));
        S::store(
            s.add(LANES),
            S::add(S::load(s.add(LANES)), A::round::<S>(yb)),
        );
    }
    #[inline(always)]
    unsafe fn put(&mut self, i: usize, c: usize, y: S::V) {
        let s = self.sums.as_mut_ptr().add((i / self.group) * self.bs + c);
        S::store(s, S::add(S::load(s), A::round::<S>(y)));
    }
}

/// Where the backward pass reads neuron `i`'s output gradient: its own row, which it clears
/// as it reads it (`Own`), or its group's row, shared and kept (`Shared`: GroupSum's
/// gradient, the same for every neuron of a group).
pub(super) enum GradRows<'a, A> {
    Own(&'a mut [A]),
    Shared {
        rows: &'a [A],
        group: usize,
        out_dim: usize,
    },
}

impl<A: Act> GradRows<'_, A> {
    #[inline(always)]
    pub(super) fn len(&self, bs: usize) -> usize {
        match self {
            GradRows::Own(g) => g.len() / bs,
            GradRows::Shared { out_dim, .. } => *out_dim,
        }
    }

    /// Neuron `i`'s row and whether to clear it; checked here, once per neuron.
    #[inline(always)]
    pub(super) fn row(&mut self, i: usize, bs: usize) -> (*mut A, bool) {
        match self {
            GradRows::Own(g) => (g[i * bs..(i + 1) * bs].as_mut_ptr(), true),
            GradRows::Shared { rows, group, .. } => {
                let r = &rows[(i / *group) * bs..(i / *group + 1) * bs];
                (r.as_ptr() as *mut A, false)
            }
        }
    }
}

impl<'a, A> GradRows<'a, A> {
    /// The rows of neurons 0, 1, 2, … in turn, checked here once rather than per neuron.
    #[inline(always)]
    pub(super) fn cursor(self, bs: usize) -> GradCursor<'a, A> {
        let (row, group, clear) = match self {
            GradRows::Own(g) => (g.as_mut_ptr(), 1, true),
            GradRows::Shared {
                rows,
                group,
                out_dim,
            } => {
                assert!(group > 0 && rows.len() >= out_dim.div_ceil(group) * bs);
                (rows.as_ptr() as *mut A, group, false)
            }
        };
        GradCursor {
            row,
            bs,
            group,
            left: group,
            clear,
            _rows: std::marker::PhantomData,
        }
    }
}

/// See [`GradRows::cursor`]: a group's row is handed out `group` times, then the next.
pub(super) struct GradCursor<'a, A> {
    row: *mut A,
    bs: usize,
    group: usize,
    left: usize,
    clear: bool,
    _rows: std::marker::PhantomData<&'a mut [A]>,
}

impl<A> GradCursor<'_, A> {
    /// The next neuron's row and whether to clear it.
    ///
    /// # Safety
    /// At most as many calls as the rows have neurons (`GradRows::len`).
    #[inline(always)]
    pub(super) unsafe fn next(&mut self) -> (*mut A, bool) {
        let row = self.row;
        self.left -= 1;
        if self.left == 0 {
            self.left = self.group;
            self.row = self.row.wrapping_add(self.bs);
        }
        (row, self.clear)
    }
}
