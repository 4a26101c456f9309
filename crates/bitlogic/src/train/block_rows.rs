//! One worker's activation rows and its two gradient buffers, in a single buffer that may
//! take 2 MB pages (see `pages`): one mapping, so at most one partly used 2 MB page per
//! worker, where a buffer per layer would round each up to a whole page.

use super::pages::PageBuf;
use crate::layer::Act;

/// `[acts 0..=L][grads 0][grads 1]`: `acts[k]` is the encoded input (k = 0) or layer k's
/// output, `[width][bs]`. The gradient of `acts[k]` lives in gradient buffer `k % 2`, as long
/// as the widest layer's rows.
pub(super) struct BlockRows<A: Act> {
    buf: PageBuf<A>,
    /// Where each activation buffer starts, and one past the last (where gradients start).
    at: Vec<usize>,
    /// The length of each gradient buffer.
    grad_len: usize,
}

impl<A: Act> BlockRows<A> {
    /// Rows for activation buffers of `lens` values each; the gradient buffers hold as many
    /// values as the largest of `lens[1..]` (nothing flows back into the input bits).
    pub(super) fn new(lens: &[usize]) -> Self {
        let mut at = Vec::with_capacity(lens.len() + 1);
        let mut end = 0;
        for &n in lens {
            at.push(end);
            end += n;
        }
        at.push(end);
        let grad_len = lens
            .get(1..)
            .and_then(|l| l.iter().max())
            .copied()
            .unwrap_or(0);
        BlockRows {
            buf: PageBuf::zeroed(end + 2 * grad_len),
            at,
            grad_len,
        }
    }

    /// Values in `acts[k]`.
    pub(super) fn len(&self, k: usize) -> usize {
        self.at[k + 1] - self.at[k]
    }

    pub(super) fn act(&self, k: usize) -> &[A] {
        &self.buf[self.at[k]..self.at[k + 1]]
    }

    pub(super) fn act_mut(&mut self, k: usize) -> &mut [A] {
        &mut self.buf[self.at[k]..self.at[k + 1]]
    }

    /// `acts[k]` to read and `acts[k + 1]` to write: a layer's forward pass.
    pub(super) fn forward(&mut self, k: usize) -> (&[A], &mut [A]) {
        let (start, n) = (self.at[k], self.len(k + 1));
        let (x, y) = self.buf.split_at_mut(self.at[k + 1]);
        (&x[start..], &mut y[..n])
    }

    /// The gradient of `acts[k]`, as long as `acts[k]`.
    pub(super) fn grad_mut(&mut self, k: usize) -> &mut [A] {
        let (n, start) = (self.len(k), self.grad_start(k));
        &mut self.buf[start..start + n]
    }

    /// Layer `k`'s backward pass: its input `acts[k]`, that input's gradient (to add into)
    /// and its output's gradient (to read), each as long as its activations.
    pub(super) fn backward(&mut self, k: usize) -> (&[A], &mut [A], &mut [A]) {
        let (n_in, n_out) = (self.len(k), self.len(k + 1));
        let (start, end) = (self.at[k], self.at[k + 1]);
        let (acts, grads) = self.buf.split_at_mut(self.at[self.at.len() - 1]);
        let (even, odd) = grads.split_at_mut(self.grad_len);
        let (g_in, g_out) = if k.is_multiple_of(2) {
            (even, odd)
        } else {
            (odd, even)
        };
        // Layer 0's input is the encoded bits: nothing flows into them, and the gradient
        // buffers may be shorter than the input.
        let n_in = if k > 0 { n_in } else { 0 };
        (&acts[start..end], &mut g_in[..n_in], &mut g_out[..n_out])
    }

    fn grad_start(&self, k: usize) -> usize {
        self.at[self.at.len() - 1] + (k % 2) * self.grad_len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_buffer_has_its_own_values() {
        let lens = [48, 32, 64, 16];
        let mut r = BlockRows::<f32>::new(&lens);
        for (k, &n) in lens.iter().enumerate() {
            assert_eq!(r.len(k), n);
            r.act_mut(k).iter_mut().for_each(|v| *v = k as f32);
        }
        for (k, &n) in lens.iter().enumerate().skip(1) {
            let g = r.grad_mut(k);
            assert_eq!(g.len(), n);
            assert!(g.iter().all(|&v| v == 0.0), "gradients start at zero");
        }
        // The gradient of acts[k] is the buffer that layer k - 1's backward adds into, and
        // the one layer k's backward reads.
        r.grad_mut(2).iter_mut().for_each(|v| *v = 7.0);
        let (x, g_in, g_out) = r.backward(1);
        assert!(x.len() == 32 && x.iter().all(|&v| v == 1.0));
        assert!(g_in.len() == 32 && g_out.len() == 64 && g_out.iter().all(|&v| v == 7.0));
        g_in.iter_mut().for_each(|v| *v = 5.0);
        let (x, g_in, g_out) = r.backward(0);
        assert!(x.len() == 48 && x.iter().all(|&v| v == 0.0));
        assert!(g_in.is_empty() && g_out.len() == 32 && g_out.iter().all(|&v| v == 5.0));
        let (x, y) = r.forward(2);
        assert!(x.iter().all(|&v| v == 2.0) && y.len() == 16 && y.iter().all(|&v| v == 3.0));
    }
}
