//! Kim et al.'s reference curve (ICLR 2023; `docs/theory.md` §8): a shape to set beside the executable
//! constructions, not a construction.

/// A reference curve for Kim et al. (ICLR 2023): `2n` attention layers plus a Vardi-style deep narrow
/// ReLU network of depth `⌈√(nN)⌉`, and `d + n + √(nN)·log2(nN)` parameters. The paper states
/// `Õ(d + n + √(nN))` without constants; this curve fixes the constants at 1 (INFERRED, `docs/theory.md` §8)
/// and is a shape reference, not a construction.
pub fn kim_reference(d: usize, n: usize, big_n: usize) -> (f64, f64) {
    let nn = (n * big_n) as f64;
    let depth = 2.0 * n as f64 + nn.sqrt().ceil();
    let params = d as f64 + n as f64 + nn.sqrt() * nn.log2().max(1.0);
    (depth, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_curve_is_its_formula() {
        assert_eq!(kim_reference(4, 8, 2), (16.0 + 4.0, 4.0 + 8.0 + 4.0 * 4.0));
    }
}
