//! Training-time augmentation of image data: random translations.
//!
//! Each image moves by an offset drawn uniformly from `[-max, max]²`, with zero fill. The
//! draw for sample `s` of epoch `e` comes from its own seeded stream, so the augmented data
//! does not depend on the thread count.

use crate::rng::Rng;
use crate::{Error, Result};
use rayon::prelude::*;

/// Translated copies of `n` row-major `h × w` images (`x` is `[n][h·w]`).
pub fn shift_images(
    x: &[f32],
    n: usize,
    (h, w): (usize, usize),
    max: usize,
    seed: u64,
    epoch: u64,
) -> Result<Vec<f32>> {
    let f = h * w;
    if x.len() != n * f {
        return Err(Error::invalid(format!(
            "shift augmentation: {} values do not make {n} images of {h}×{w}",
            x.len()
        )));
    }
    if max >= h.min(w) {
        return Err(Error::invalid(format!(
            "shift augmentation: a shift of {max} pixels leaves nothing of a {h}×{w} image (use less than {})",
            h.min(w)
        )));
    }
    let mut out = vec![0f32; x.len()];
    let span = 2 * max + 1;
    out.par_chunks_mut(f)
        .zip(x.par_chunks(f))
        .enumerate()
        .for_each(|(s, (o, img))| {
            let mut rng = Rng::fork(seed ^ 0xA5A5, epoch.wrapping_mul(1 << 32) + s as u64);
            let dy = rng.below(span) as isize - max as isize;
            let dx = rng.below(span) as isize - max as isize;
            for r in 0..h as isize {
                let sr = r - dy;
                if sr < 0 || sr >= h as isize {
                    continue;
                }
                for c in 0..w as isize {
                    let sc = c - dx;
                    if sc >= 0 && sc < w as isize {
                        o[(r * w as isize + c) as usize] = img[(sr * w as isize + sc) as usize];
                    }
                }
            }
        });
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifts_preserve_pixels_and_are_seeded() {
        // One 5×5 image with a single lit pixel in the centre.
        let mut img = [0f32; 25];
        img[12] = 1.0;
        let x: Vec<f32> = img.iter().cycle().take(25 * 200).copied().collect();
        let a = shift_images(&x, 200, (5, 5), 1, 3, 0).unwrap();
        assert_eq!(a, shift_images(&x, 200, (5, 5), 1, 3, 0).unwrap());
        assert_ne!(a, shift_images(&x, 200, (5, 5), 1, 3, 1).unwrap());
        let mut seen = std::collections::BTreeSet::new();
        for o in a.chunks(25) {
            // A shift of at most 1 keeps the centre pixel inside: exactly one pixel lit, next to the centre.
            let lit: Vec<usize> = (0..25).filter(|&i| o[i] == 1.0).collect();
            assert_eq!(lit.len(), 1);
            let (r, c) = (lit[0] / 5, lit[0] % 5);
            assert!((1..=3).contains(&r) && (1..=3).contains(&c));
            seen.insert(lit[0]);
        }
        assert_eq!(seen.len(), 9, "all nine offsets occur");
        assert!(shift_images(&x, 200, (5, 5), 5, 3, 0).is_err());
    }
}
