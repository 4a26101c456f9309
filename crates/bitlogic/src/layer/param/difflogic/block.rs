//! The soft fold and its gradient for 16 neurons at once, lane l holding neuron l.
//!
//! A neuron's 16 logits are one row of memory, so 16 neurons load as 16 vectors and one
//! 16 × 16 transpose in registers ([`Lanes::transpose16`]) gives `[gate][lane]` vectors; the
//! coefficients (`[k][lane]`, 4 vectors) and the weight gradients go back to rows the same
//! way. (Written element by element over lanes, these moves compiled to gathers and scatters
//! that cost more than the arithmetic.) In between, every operation is the one-neuron
//! reference's, in its order, on whole vectors:
//!
//! ```text
//!   m = max_h w_h · (1/τ),  e_g = exp(fma(w_g, 1/τ, −m)),  s = Σ_g e_g  (sums in gate order)
//!   fold:    a_k = (Σ_{g: T_g[k]=1} e_g) · (1/s)
//!   unfold:  p_g = e_g · (1/s),  dp_g = Σ_{k: T_g[k]=1} da_k,  m = Σ_g p_g dp_g
//!            dw_g += p_g (dp_g − m) · (1/τ)
//! ```

use super::has;
use crate::layer::lanes::Lanes;

/// The e_g of `B` blocks of 16 neurons as `[gate][lane]` vectors, and 1 / Σ e per lane.
/// Each step runs across the blocks before the next: the sums are chains of dependent
/// additions, and two blocks' chains side by side keep the vector units busy. `between(g)`
/// runs after gate g's exponentials: a caller's other work, interleaved (see
/// `unfold_run_each`).
#[inline(always)]
fn exp_shifted<S: Lanes, const B: usize>(
    w: &[f32],
    tau: f32,
    mut between: impl FnMut(usize),
) -> ([[S::V; 16]; B], [S::V; B]) {
    let w = &w[..256 * B];
    let mut x = [[S::splat(0.0); 16]; B];
    for (b, x) in x.iter_mut().enumerate() {
        for (i, x) in x.iter_mut().enumerate() {
            // SAFETY: `w` holds B blocks of 16 rows of 16.
            *x = unsafe { S::load(w[256 * b + 16 * i..].as_ptr()) };
        }
        S::transpose16(x);
    }
    let inv = S::splat(1.0 / tau);
    let mut m = [S::splat(0.0); B];
    for (x, m) in x.iter().zip(&mut m) {
        // The maximum is the same in any order (up to the sign of a zero, which exp cannot
        // tell apart), so it is a tree, 4 deep where a chain is 15; the sums keep gate order.
        let mut t = [S::splat(0.0); 8];
        for (i, t) in t.iter_mut().enumerate() {
            *t = S::max(x[i], x[i + 8]);
        }
        for h in [4, 2, 1] {
            for i in 0..h {
                t[i] = S::max(t[i], t[i + h]);
            }
        }
        *m = S::sub(S::splat(0.0), S::mul(t[0], inv));
    }
    let mut s = [S::splat(0.0); B];
    for g in 0..16 {
        for ((x, s), &m) in x.iter_mut().zip(&mut s).zip(&m) {
            x[g] = S::softmax_exp(S::mul_add(x[g], inv, m));
            *s = S::add(*s, x[g]);
        }
        between(g);
    }
    for s in s.iter_mut() {
        *s = S::div(S::splat(1.0), *s);
    }
    (x, s)
}

/// `fold_one` of `B` blocks of 16 neurons: `w` `[16B][16]`, `a` `[16B][4]`.
#[inline(always)]
pub(super) fn fold<S: Lanes, const B: usize>(w: &[f32], tau: f32, a: &mut [f32]) {
    let (e, inv) = exp_shifted::<S, B>(w, tau, |_| {});
    let mut c = [[S::splat(0.0); 4]; B];
    for k in 0..4 {
        let mut acc = [S::splat(0.0); B];
        for g in 0..16 {
            if has(g, k) {
                for (acc, e) in acc.iter_mut().zip(&e) {
                    *acc = S::add(*acc, e[g]);
                }
            }
        }
        for ((c, acc), inv) in c.iter_mut().zip(acc).zip(inv) {
            c[k] = S::mul(acc, inv);
        }
    }
    let a = &mut a[..64 * B];
    for (b, &c) in c.iter().enumerate() {
        for (j, &v) in S::interleave4(c).iter().enumerate() {
            // SAFETY: `a` holds B blocks of 4 × 16 floats.
            unsafe { S::store(a[64 * b + 16 * j..].as_mut_ptr(), v) };
        }
    }
}

/// `unfold_one` of `B` blocks of 16 neurons: `w` `[16B][16]`, `da` `[16B][4]`, `dw`
/// `[16B][16]`.
#[inline(always)]
pub(super) fn unfold<S: Lanes, const B: usize>(w: &[f32], tau: f32, da: &[f32], dw: &mut [f32]) {
    let rows = unfold_rows::<S, B>(w, tau, da, |_| {});
    let dw = &mut dw[..256 * B];
    for (b, rows) in rows.iter().enumerate() {
        for (i, &v) in rows.iter().enumerate() {
            let row = dw[256 * b + 16 * i..].as_mut_ptr();
            // SAFETY: `dw` holds B blocks of 16 rows of 16.
            unsafe { S::store(row, S::add(S::load(row), v)) };
        }
    }
}

/// The weight gradients of `B` blocks of 16 neurons (`w` `[16B][16]`, `da` `[16B][4]`), one
/// row (neuron) per vector: what `unfold` adds to `dw`. `between` as in `exp_shifted`.
#[inline(always)]
pub(super) fn unfold_rows<S: Lanes, const B: usize>(
    w: &[f32],
    tau: f32,
    da: &[f32],
    between: impl FnMut(usize),
) -> [[S::V; 16]; B] {
    let (mut p, inv) = exp_shifted::<S, B>(w, tau, between);
    let da = &da[..64 * B];
    let mut dp = [[S::splat(0.0); 16]; B];
    for (b, ((p, dp), inv)) in p.iter_mut().zip(&mut dp).zip(inv).enumerate() {
        for p in p.iter_mut() {
            *p = S::mul(*p, inv);
        }
        let mut d = [S::splat(0.0); 4];
        for (j, d) in d.iter_mut().enumerate() {
            // SAFETY: `da` holds B blocks of 4 × 16 floats.
            *d = unsafe { S::load(da[64 * b + 16 * j..].as_ptr()) };
        }
        let d = S::deinterleave4(d);
        // dp_g adds da_k over the k with T_g[k] = 1 in increasing k, i.e. over g's set bits
        // from the top; so it is the sum of g without its lowest set bit, plus one term: 15
        // additions, each the reference's last.
        for g in 1..16usize {
            let k = 3 - g.trailing_zeros() as usize;
            debug_assert!(has(g, k));
            dp[g] = S::add(dp[g & (g - 1)], d[k]);
        }
    }
    let mut mean = [S::splat(0.0); B];
    for g in 0..16 {
        for ((mean, p), dp) in mean.iter_mut().zip(&p).zip(&dp) {
            *mean = S::add(*mean, S::mul(p[g], dp[g]));
        }
    }
    let t = S::splat(1.0 / tau);
    let mut rows = [[S::splat(0.0); 16]; B];
    for (((p, dp), mean), v) in p.iter().zip(&dp).zip(mean).zip(&mut rows) {
        for ((v, &p), &dp) in v.iter_mut().zip(p).zip(dp) {
            *v = S::mul(S::mul(p, S::sub(dp, mean)), t);
        }
        S::transpose16(v);
    }
    rows
}
