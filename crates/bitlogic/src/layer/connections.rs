//! Fixed connections: which `rank` inputs each neuron reads, drawn once from a seed.
//!
//! Both kinds deal the inputs out from a sequence of shuffled permutations of `0..in_dim`,
//! so every input is read `out_dim·rank/in_dim` times, give or take one. `random-unique`
//! then repairs neurons that drew the same input twice by swapping with other positions.

use crate::{rng::Rng, Error, Result};
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConnectionKind {
    /// Distinct inputs per neuron, inputs used about equally often (default).
    RandomUnique,
    /// Inputs used about equally often; a neuron may read one input twice.
    Random,
    /// Each slot picks among `num_candidates` inputs by learned logits (see `learnable`).
    Learnable,
}

pub const CONNECTIONS: &[(&str, ConnectionKind)] = &[
    ("random-unique", ConnectionKind::RandomUnique),
    ("random", ConnectionKind::Random),
    ("learnable", ConnectionKind::Learnable),
];

impl ConnectionKind {
    pub fn parse(name: &str) -> Result<Self> {
        // "fixed" is the family name users know from BitLogic; it means the default kind.
        if name == "fixed" {
            return Ok(ConnectionKind::RandomUnique);
        }
        CONNECTIONS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, k)| *k)
            .ok_or_else(|| {
                Error::invalid(format!(
                    "unknown connections '{name}' (valid: fixed, random-unique, random, learnable)"
                ))
            })
    }

    pub fn name(self) -> &'static str {
        match self {
            ConnectionKind::RandomUnique => "random-unique",
            ConnectionKind::Random => "random",
            ConnectionKind::Learnable => "learnable",
        }
    }
}

/// Draws the index table `[out_dim][rank]`.
pub fn draw(
    kind: ConnectionKind,
    in_dim: usize,
    out_dim: usize,
    rank: usize,
    rng: &mut Rng,
) -> Result<Vec<u32>> {
    if kind == ConnectionKind::Learnable {
        return Err(Error::invalid(
            "learnable connections are drawn as candidate pools (layer::learnable)",
        ));
    }
    if in_dim == 0 || out_dim == 0 {
        return Err(Error::invalid(format!(
            "a layer needs at least one input and one output (got in_dim {in_dim}, out_dim {out_dim})"
        )));
    }
    if kind == ConnectionKind::RandomUnique && rank > in_dim {
        return Err(Error::invalid(format!(
            "random-unique connections need lut_rank ({rank}) <= in_dim ({in_dim}); use connections 'random' or a wider input"
        )));
    }
    let total = out_dim * rank;
    let mut ids: Vec<u32> = Vec::with_capacity(total + in_dim);
    let mut perm: Vec<u32> = (0..in_dim as u32).collect();
    while ids.len() < total {
        rng.shuffle(&mut perm);
        ids.extend_from_slice(&perm);
    }
    ids.truncate(total);
    if kind == ConnectionKind::RandomUnique && rank > 1 {
        make_unique(&mut ids, rank, in_dim, rng);
    }
    Ok(ids)
}

/// The order that numbers the neurons of each run of `group` consecutive ones by their
/// inputs (slot 0 first, then slot 1, …): `order[new] = old`. Kernels visit neurons in
/// number order, so they then read the rows of slot 0 in increasing order, which the
/// hardware prefetchers follow, instead of at random.
pub fn input_order(ids: &[u32], rank: usize, group: usize) -> Vec<usize> {
    let n = ids.len() / rank.max(1);
    let mut order: Vec<usize> = (0..n).collect();
    for run in order.chunks_mut(group.max(1)) {
        run.sort_by_key(|&i| &ids[i * rank..(i + 1) * rank]);
    }
    order
}

fn has_dup(slots: &[u32]) -> Option<usize> {
    (1..slots.len()).find(|&j| slots[..j].contains(&slots[j]))
}

fn make_unique(ids: &mut [u32], rank: usize, in_dim: usize, rng: &mut Rng) {
    let n = ids.len() / rank;
    for i in 0..n {
        while let Some(j) = has_dup(&ids[i * rank..(i + 1) * rank]) {
            let p = i * rank + j;
            if !swap_with_other(ids, rank, p, rng) {
                // Tiny layers may offer no partner: take an input this neuron lacks
                // (one exists because rank <= in_dim), giving up exact balance.
                let mine = &ids[i * rank..(i + 1) * rank];
                if let Some(v) = (0..in_dim as u32).find(|v| !mine.contains(v)) {
                    ids[p] = v;
                }
            }
        }
    }
}

/// Swaps position `p` with a random position of another neuron when neither side gains a
/// duplicate; a swap keeps every input's use count unchanged.
fn swap_with_other(ids: &mut [u32], rank: usize, p: usize, rng: &mut Rng) -> bool {
    let i = p / rank;
    for _ in 0..1000 {
        let q = rng.below(ids.len());
        let o = q / rank;
        if o == i {
            continue;
        }
        let (v, w) = (ids[p], ids[q]);
        if !ids[i * rank..(i + 1) * rank].contains(&w)
            && !ids[o * rank..(o + 1) * rank].contains(&v)
        {
            ids.swap(p, q);
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_order_sorts_within_each_group_only() {
        let ids = [5, 1, 2, 9, 2, 3, 0, 7, 4, 4, 1, 1];
        // Groups of three neurons: (5,1) (2,9) (2,3) | (0,7) (4,4) (1,1).
        assert_eq!(input_order(&ids, 2, 3), vec![2, 1, 0, 3, 5, 4]);
        assert_eq!(input_order(&ids, 2, 6), vec![3, 5, 2, 1, 4, 0]);
        assert_eq!(input_order(&ids, 3, 4), vec![2, 3, 0, 1]);
    }

    #[test]
    fn unique_and_balanced() {
        let mut rng = Rng::new(3);
        for &(in_dim, out_dim, rank) in &[(100, 300, 2), (64, 1000, 6), (7, 7, 6), (784, 8000, 4)] {
            let ids = draw(
                ConnectionKind::RandomUnique,
                in_dim,
                out_dim,
                rank,
                &mut rng,
            )
            .unwrap();
            assert_eq!(ids.len(), out_dim * rank);
            for n in ids.chunks(rank) {
                assert!(has_dup(n).is_none(), "duplicate in {n:?}");
                assert!(n.iter().all(|&i| (i as usize) < in_dim));
            }
            let mut uses = vec![0usize; in_dim];
            ids.iter().for_each(|&i| uses[i as usize] += 1);
            let (lo, hi) = (uses.iter().min().unwrap(), uses.iter().max().unwrap());
            assert!(
                hi - lo <= 2,
                "uses range {lo}..{hi} for {in_dim}x{out_dim}x{rank}"
            );
        }
    }

    #[test]
    fn seeded() {
        let a = draw(ConnectionKind::Random, 50, 40, 3, &mut Rng::new(9)).unwrap();
        let b = draw(ConnectionKind::Random, 50, 40, 3, &mut Rng::new(9)).unwrap();
        let c = draw(ConnectionKind::Random, 50, 40, 3, &mut Rng::new(10)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn errors_name_the_problem() {
        let e = draw(ConnectionKind::RandomUnique, 3, 10, 4, &mut Rng::new(1)).unwrap_err();
        assert!(e.to_string().contains("lut_rank (4) <= in_dim (3)"), "{e}");
        let e = ConnectionKind::parse("learned").unwrap_err().to_string();
        assert!(
            e.contains("'learned'") && e.contains("random-unique"),
            "{e}"
        );
    }
}
