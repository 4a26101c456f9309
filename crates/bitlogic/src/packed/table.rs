//! Truth tables of up to 6 inputs as `u64` bit sets, and the rewrites that simplification and
//! compilation share: substituting constants, negating an input, merging repeated inputs and
//! dropping inputs the table ignores.
//!
//! Bit `k` of a table is the output for address `k`, in the model's MSB order: input `j` of an
//! `m`-input table is address bit `m - 1 - j`. With that order the tables of 3-input neurons
//! are exactly `vpternlog` immediates over the operands (input 0, input 1, input 2).

/// Largest table arity (a `u64` holds 2^6 entries).
pub const MAX_ARITY: usize = 6;

/// A table operand: a known constant or a variable of type `T` (an input or node id).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Lit<T> {
    Const(bool),
    Var(T),
}

/// The bits of a table with `arity` inputs.
pub fn mask(arity: usize) -> u64 {
    if arity >= MAX_ARITY {
        u64::MAX
    } else {
        (1u64 << (1 << arity)) - 1
    }
}

/// Packs a model LUT row (`[2^arity]` of 0/1, MSB order) into a table.
pub fn from_lut(lut: &[u8]) -> u64 {
    lut.iter()
        .enumerate()
        .fold(0, |t, (k, &v)| t | (((v != 0) as u64) << k))
}

/// The output of table `t` at address `addr`.
pub fn at(t: u64, addr: usize) -> bool {
    (t >> addr) & 1 == 1
}

/// Builds a table of `arity` inputs whose entry `a` is `t` at address `old(a)`.
fn remap(t: u64, arity: usize, old: impl Fn(usize) -> usize) -> u64 {
    (0..1usize << arity).fold(0, |r, a| r | ((at(t, old(a)) as u64) << a))
}

/// Inserts bit `v` at position `p` of `a` (the bits at and above `p` move up one).
fn insert_bit(a: usize, p: usize, v: bool) -> usize {
    ((a >> p) << (p + 1)) | ((v as usize) << p) | (a & ((1 << p) - 1))
}

/// Address bit of input `j` in an `arity`-input table.
fn bit_of(arity: usize, j: usize) -> usize {
    arity - 1 - j
}

/// The table with input `j` fixed to `v` (one input fewer; later inputs shift down).
pub fn cofactor(t: u64, arity: usize, j: usize, v: bool) -> u64 {
    let p = bit_of(arity, j);
    remap(t, arity - 1, |a| insert_bit(a, p, v))
}

/// The table reading input `j` negated.
pub fn negate_input(t: u64, arity: usize, j: usize) -> u64 {
    let p = bit_of(arity, j);
    remap(t, arity, |a| a ^ (1 << p))
}

/// Entries whose address has bit `p` set.
const BIT_SET: [u64; 6] = [
    0xAAAA_AAAA_AAAA_AAAA,
    0xCCCC_CCCC_CCCC_CCCC,
    0xF0F0_F0F0_F0F0_F0F0,
    0xFF00_FF00_FF00_FF00,
    0xFFFF_0000_FFFF_0000,
    0xFFFF_FFFF_0000_0000,
];

/// The table with inputs `i` and `j` exchanged: a delta swap of the entries whose two
/// address bits differ.
pub fn swap_inputs(t: u64, arity: usize, i: usize, j: usize) -> u64 {
    if i == j {
        return t;
    }
    let (a, b) = (bit_of(arity, i), bit_of(arity, j));
    let (p, q) = (a.min(b), a.max(b));
    let d = (1 << q) - (1 << p);
    let low = BIT_SET[p] & !BIT_SET[q];
    let x = (t ^ (t >> d)) & low;
    t ^ x ^ (x << d)
}

/// The table over inputs reordered so that new input `i` is old input `perm[i]`.
pub fn permute(mut t: u64, perm: &[usize]) -> u64 {
    let n = perm.len();
    let mut at: Vec<usize> = (0..n).collect();
    for (i, &want) in perm.iter().enumerate() {
        if let Some(j) = (i..n).find(|&j| at[j] == want) {
            t = swap_inputs(t, n, i, j);
            at.swap(i, j);
        }
    }
    t
}

/// The table when input `j` always equals input `i < j`: input `j` is dropped.
pub fn merge_inputs(t: u64, arity: usize, i: usize, j: usize) -> u64 {
    debug_assert!(i < j);
    let pj = bit_of(arity, j);
    // Input i keeps its index (it precedes j), so its bit in the smaller table is one lower.
    let pi_new = bit_of(arity - 1, i);
    remap(t, arity - 1, |a| insert_bit(a, pj, (a >> pi_new) & 1 == 1))
}

/// Whether the output changes with input `j`.
pub fn depends_on(t: u64, arity: usize, j: usize) -> bool {
    cofactor(t, arity, j, false) != cofactor(t, arity, j, true)
}

/// Rewrites `(lits, t)` into an equivalent table over distinct variables that it all depends
/// on: constants are substituted, repeated variables merged, ignored inputs dropped.
pub fn reduce<T: PartialEq + Copy>(lits: &[Lit<T>], t: u64) -> (Vec<T>, u64) {
    let mut t = t & mask(lits.len());
    let mut vars: Vec<T> = Vec::with_capacity(lits.len());
    // Constants first, from the last input so earlier indices stay valid.
    let mut arity = lits.len();
    for (j, lit) in lits.iter().enumerate().rev() {
        if let Lit::Const(v) = *lit {
            t = cofactor(t, arity, j, v);
            arity -= 1;
        }
    }
    for lit in lits {
        if let Lit::Var(v) = *lit {
            vars.push(v);
        }
    }
    let mut j = 1;
    while j < vars.len() {
        match vars[..j].iter().position(|v| *v == vars[j]) {
            Some(i) => {
                t = merge_inputs(t, vars.len(), i, j);
                vars.remove(j);
            }
            None => j += 1,
        }
    }
    let mut j = vars.len();
    while j > 0 {
        j -= 1;
        if !depends_on(t, vars.len(), j) {
            t = cofactor(t, vars.len(), j, false);
            vars.remove(j);
        }
    }
    (vars, t)
}

/// Sorts the variables ascending, permuting the table to match (a canonical form, so equal
/// functions of the same inputs compare equal).
pub fn sort_inputs<T: Ord + Copy>(vars: &mut [T], mut t: u64) -> u64 {
    let n = vars.len();
    for i in 0..n {
        for j in 0..n - 1 - i {
            if vars[j] > vars[j + 1] {
                t = swap_inputs(t, n, j, j + 1);
                vars.swap(j, j + 1);
            }
        }
    }
    t
}

/// Identity and negation of a single input.
pub const IDENTITY: u64 = 0b10;
pub const NOT: u64 = 0b01;

/// The `vpternlog` immediate of a table of at most 3 inputs over operands
/// `(input 0, input 1, input 2)`; operands past the arity are ignored, so the kernel may pass
/// any value there.
pub fn ternlog_imm(t: u64, arity: usize) -> u8 {
    debug_assert!(arity <= 3);
    let shift = 3 - arity;
    (0..8).fold(0u8, |imm, k| imm | ((at(t, k >> shift) as u8) << k))
}

/// Evaluates an `arity`-input table on the given input bits (reference semantics).
pub fn eval(t: u64, bits: impl Iterator<Item = bool>) -> bool {
    at(t, bits.fold(0usize, |a, b| (a << 1) | b as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Brute force: the table over `vars` that `reduce` claims equals `(lits, t)`.
    fn check_reduce(lits: &[Lit<u8>], t: u64) {
        let (vars, r) = reduce(lits, t);
        for env in 0..256u32 {
            let val = |v: u8| (env >> v) & 1 == 1;
            let orig = eval(
                t,
                lits.iter().map(|l| match *l {
                    Lit::Const(c) => c,
                    Lit::Var(v) => val(v),
                }),
            );
            let red = eval(r, vars.iter().map(|&v| val(v)));
            assert_eq!(orig, red, "lits {lits:?} t {t:#x} → {vars:?} {r:#x}");
        }
        for (j, _) in vars.iter().enumerate() {
            assert!(depends_on(r, vars.len(), j));
        }
    }

    #[test]
    fn reduce_matches_brute_force() {
        let mut rng = crate::rng::Rng::new(7);
        for _ in 0..3000 {
            let arity = 1 + rng.below(6);
            let t = rng.next_u64();
            let lits: Vec<Lit<u8>> = (0..arity)
                .map(|_| {
                    let r = rng.below(20);
                    if r < 3 {
                        Lit::Const(r == 0)
                    } else {
                        Lit::Var(rng.below(5) as u8)
                    }
                })
                .collect();
            check_reduce(&lits, t & mask(arity));
        }
    }

    #[test]
    fn sort_keeps_the_function() {
        let mut vars = [5u8, 1, 3, 0];
        let orig = vars;
        let t = 0xB3C5;
        let s = sort_inputs(&mut vars, t);
        assert_eq!(vars, [0, 1, 3, 5]);
        for env in 0..64u32 {
            let val = |v: u8| (env >> v) & 1 == 1;
            assert_eq!(
                eval(t, orig.iter().map(|&v| val(v))),
                eval(s, vars.iter().map(|&v| val(v)))
            );
        }
    }

    #[test]
    fn swap_matches_its_definition() {
        for arity in 2..=6 {
            let t = 0x9E37_79B9_7F4A_7C15 & mask(arity);
            for i in 0..arity {
                for j in 0..arity {
                    let (pi, pj) = (bit_of(arity, i), bit_of(arity, j));
                    let want = remap(t, arity, |a| {
                        let (bi, bj) = ((a >> pi) & 1, (a >> pj) & 1);
                        (a & !(1 << pi) & !(1 << pj)) | (bj << pi) | (bi << pj)
                    });
                    assert_eq!(swap_inputs(t, arity, i, j), want, "{arity} {i} {j}");
                }
            }
        }
    }

    #[test]
    fn permute_keeps_the_function() {
        let vars = [4u8, 0, 2, 1, 3];
        let perm = [2, 4, 0, 3, 1];
        let t = 0x9A3C_71E5;
        let p = permute(t, &perm);
        let pvars: Vec<u8> = perm.iter().map(|&i| vars[i]).collect();
        for env in 0..32u32 {
            let val = |v: u8| (env >> v) & 1 == 1;
            assert_eq!(
                eval(t, vars.iter().map(|&v| val(v))),
                eval(p, pvars.iter().map(|&v| val(v)))
            );
        }
    }

    #[test]
    fn ternlog_immediates_follow_msb_order() {
        // 3 inputs: the table itself. a AND NOT b (2 inputs, table bit 2 only) ignores c.
        assert_eq!(ternlog_imm(0xCA, 3), 0xCA);
        assert_eq!(ternlog_imm(0b0100, 2), 0b0011_0000);
        assert_eq!(ternlog_imm(IDENTITY, 1), 0xF0);
        assert_eq!(ternlog_imm(0, 0), 0);
        assert_eq!(ternlog_imm(1, 0), 0xFF);
    }
}
