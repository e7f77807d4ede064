//! The data families of `Dataset::generate` (`VocabKind`): the default `Random` kind is unchanged, and
//! the adversarial `Grid` and `Pte` kinds have the collisions they promise.

use std::collections::BTreeSet;

use boltz_core::dataset::pte_order;
use boltz_core::{Batch, DataReport, Dataset, DatasetSpec, Error, Real, Requirements, VocabKind};

fn spec(kind: VocabKind, sequences: usize, length: usize, dim: usize, vocab: usize, seed: u64) -> DatasetSpec {
    DatasetSpec { sequences, length, dim, vocab, seed, classes: 3, vocab_kind: kind, ..Default::default() }
}

/// Sequence `b` as integer tokens (each coordinate must be an exact integer).
fn int_seq<T: Real>(x: &Batch<T>, b: usize) -> Vec<Vec<i64>> {
    (0..x.len())
        .map(|k| {
            x.token(b, k)
                .iter()
                .map(|c| {
                    let f = c.to_f64();
                    assert_eq!(f, f.round(), "non-integer coordinate {f}");
                    f as i64
                })
                .collect()
        })
        .collect()
}

fn as_set(s: &[Vec<i64>]) -> BTreeSet<Vec<i64>> {
    s.iter().cloned().collect()
}

fn token_sum(s: &[Vec<i64>]) -> Vec<i64> {
    (0..s[0].len()).map(|c| s.iter().map(|t| t[c]).sum()).collect()
}

fn power_sum(s: &[Vec<i64>], j: u32) -> i128 {
    s.iter().map(|t| i128::from(t[0]).pow(j)).sum()
}

/// Two different sequences that share a token and have equal token sums (mean pooling collides).
fn mean_pooling_collision(seqs: &[Vec<Vec<i64>>]) -> Option<(usize, usize)> {
    for a in 0..seqs.len() {
        for b in a + 1..seqs.len() {
            let (sa, sb) = (as_set(&seqs[a]), as_set(&seqs[b]));
            if sa != sb && sa.intersection(&sb).next().is_some() && token_sum(&seqs[a]) == token_sum(&seqs[b]) {
                return Some((a, b));
            }
        }
    }
    None
}

fn structural() -> Requirements {
    Requirements { no_duplicate_tokens: true, distinct_contexts: true, ..Default::default() }
}

fn assert_field(err: Error, field: &str) {
    assert!(matches!(&err, Error::InvalidParameter { name, .. } if name == field), "expected an error on {field}: {err}");
}

#[test]
fn random_kind_is_unchanged() {
    // Fingerprints (f64, f32) computed with the generator before `VocabKind` existed.
    let cases = [
        (DatasetSpec::default(), 1391708616106287760u64, 5941693647464629107u64),
        (
            DatasetSpec { sequences: 50, length: 5, dim: 4, vocab: 20, seed: 42, ..Default::default() },
            10288139498256679513,
            7154168529515954955,
        ),
        (
            DatasetSpec { sequences: 20, length: 3, dim: 2, vocab: 6, eps: 0.2, seed: 5, ..Default::default() },
            3963093349911758702,
            9072741971357530984,
        ),
        (
            DatasetSpec { sequences: 200, length: 6, dim: 3, vocab: 12, eps: 0.4, classes: 3, seed: 7, ..Default::default() },
            10175200967320301592,
            1327629824556922746,
        ),
        (
            DatasetSpec { sequences: 10, length: 4, dim: 1, vocab: 8, eps: 0.1, classes: 5, seed: 11, ..Default::default() },
            14597652930182497906,
            3485567659115483353,
        ),
    ];
    for (s, f64_fp, f32_fp) in cases {
        assert_eq!(s.vocab_kind, VocabKind::Random);
        assert_eq!(Dataset::<f64>::generate(&s).unwrap().fingerprint(), f64_fp, "{s:?}");
        assert_eq!(Dataset::<f32>::generate(&s).unwrap().fingerprint(), f32_fp, "{s:?}");
    }
    // Default specs serialize as before (no new key), and old JSON parses as Random.
    let old = r#"{"sequences":16,"length":4,"dim":4,"vocab":16,"r_min":1.0,"r_max":2.0,"eps":0.3,"classes":2,"label_coord":0,"seed":0}"#;
    assert_eq!(serde_json::to_string(&DatasetSpec::default()).unwrap(), old);
    assert_eq!(serde_json::from_str::<DatasetSpec>(old).unwrap(), DatasetSpec::default());
}

#[test]
fn vocab_kind_names_parse_and_serialize() {
    for (kind, name) in [(VocabKind::Random, "random"), (VocabKind::Grid, "grid"), (VocabKind::Pte, "pte")] {
        assert_eq!(kind.name(), name);
        assert_eq!(kind.to_string(), name);
        assert_eq!(name.parse::<VocabKind>().unwrap(), kind);
        assert_eq!(serde_json::to_string(&kind).unwrap(), format!("\"{name}\""));
        let s = DatasetSpec { vocab_kind: kind, ..Default::default() };
        assert_eq!(serde_json::from_str::<DatasetSpec>(&serde_json::to_string(&s).unwrap()).unwrap(), s);
    }
    assert_eq!(VocabKind::default(), VocabKind::Random);
    let err = "lattice".parse::<VocabKind>().unwrap_err();
    assert!(err.to_string().contains("random, grid, pte"), "{err}");
    assert_field(boltz_core::Error::from(err), "vocabulary_kind");
    let bad = r#"{"sequences":16,"length":4,"dim":4,"vocab":16,"r_min":1.0,"r_max":2.0,"eps":0.3,"classes":2,"label_coord":0,"seed":0,"vocab_kind":"lattice"}"#;
    assert!(serde_json::from_str::<DatasetSpec>(bad).is_err());
}

#[test]
fn every_kind_is_deterministic_per_seed() {
    for s in [spec(VocabKind::Random, 30, 5, 3, 12, 3), spec(VocabKind::Grid, 30, 5, 3, 12, 3), spec(VocabKind::Pte, 30, 6, 1, 14, 3)] {
        let a = Dataset::<f64>::generate(&s).unwrap();
        assert_eq!(a, Dataset::<f64>::generate(&s).unwrap(), "{s:?}");
        assert_eq!(a.fingerprint(), Dataset::<f64>::generate(&s).unwrap().fingerprint());
        let other = Dataset::<f64>::generate(&DatasetSpec { seed: 4, ..s.clone() }).unwrap();
        assert_ne!(a.inputs, other.inputs, "{s:?}");
        // Exact integers survive f32.
        if s.vocab_kind != VocabKind::Random {
            assert_eq!(Dataset::<f32>::generate(&s).unwrap().convert::<f64>().unwrap().inputs, a.inputs);
        }
    }
}

#[test]
fn grid_tokens_are_distinct_nonzero_lattice_points() {
    // (d, |V|, k): dense enumeration (3^2 − 1 = 8 points, 5^2 − 1 = 24) and sparse rejection (3^6 − 1 = 728).
    for (d, v, k, n, big_n) in [(2, 8, 1, 3, 56), (2, 20, 2, 4, 100), (6, 20, 1, 5, 200), (1, 9, 5, 3, 50)] {
        let s = spec(VocabKind::Grid, big_n, n, d, v, 17);
        let ds = Dataset::<f64>::generate(&s).unwrap();
        let rep = DataReport::analyze(&ds.inputs, Some(&ds.targets));
        rep.check(&structural()).unwrap();
        assert!(rep.vocab_size <= v);
        let seqs: Vec<_> = (0..big_n).map(|b| int_seq(&ds.inputs, b)).collect();
        let mut tokens = BTreeSet::new();
        for seq in &seqs {
            assert_eq!(as_set(seq).len(), n, "repeated token in {seq:?}");
            for t in seq {
                assert!(t.iter().any(|&c| c != 0) && t.iter().all(|&c| c.abs() <= k), "{t:?} for k = {k}");
                tokens.insert(t.clone());
            }
        }
        assert_eq!(tokens.len(), rep.vocab_size);
        if d == 2 && v == 8 {
            // All C(8, 3) = 56 sets of the full 3×3 ring: every point is used, k = 1 is the smallest.
            assert_eq!(tokens.len(), 8);
        }
    }
}

#[test]
fn grid_data_makes_mean_pooling_collide() {
    let s = spec(VocabKind::Grid, 40, 3, 2, 8, 1);
    let ds = Dataset::<f64>::generate(&s).unwrap();
    let seqs: Vec<_> = (0..40).map(|b| int_seq(&ds.inputs, b)).collect();
    assert!(mean_pooling_collision(&seqs).is_some(), "no two sequences with a shared token and equal sums");
}

#[test]
fn pte_order_follows_the_length() {
    assert_eq!(
        [1, 2, 3, 4, 5, 6, 8, 9, 16, 17].map(pte_order),
        [None, None, Some(2), Some(2), Some(3), Some(3), Some(3), Some(4), Some(4), Some(5)]
    );
}

#[test]
fn pte_pairs_have_equal_power_sums() {
    for (n, v, big_n) in [(8, 16, 40), (6, 12, 30), (3, 6, 6), (4, 8, 20), (9, 20, 31), (5, 10, 7)] {
        let s = spec(VocabKind::Pte, big_n, n, 1, v, 5);
        let ds = Dataset::<f32>::generate(&s).unwrap();
        let m = pte_order(n).unwrap();
        let h = 1usize << (m - 1);
        let rep = DataReport::analyze(&ds.inputs, Some(&ds.targets));
        rep.check(&structural()).unwrap();
        assert!(rep.vocab_size <= v && rep.r_min >= 1.0 && rep.r_max <= v as f64, "{rep:?}");
        let seqs: Vec<_> = (0..big_n).map(|b| int_seq(&ds.inputs, b)).collect();
        let sets: BTreeSet<_> = seqs.iter().map(|q| as_set(q)).collect();
        assert_eq!(sets.len(), big_n, "sequences must be distinct as sets");
        for q in &seqs {
            assert_eq!(as_set(q).len(), n, "repeated token in {q:?}");
        }
        for p in 0..big_n / 2 {
            let (x, y) = (&seqs[2 * p], &seqs[2 * p + 1]);
            let (sx, sy) = (as_set(x), as_set(y));
            assert_ne!(sx, sy);
            assert_eq!(sx.intersection(&sy).count(), n - h, "pair {p} shares n − h tokens");
            for j in 1..m {
                assert_eq!(power_sum(x, j), power_sum(y, j), "pair {p}, n = {n}: power sums of degree {j}");
            }
            assert_ne!(power_sum(x, m), power_sum(y, m), "pair {p}: degree m = {m} separates the pair");
            // The halves are a shifted Thue–Morse split of a block of 2^m consecutive integers.
            let mut block: Vec<i64> = sx.symmetric_difference(&sy).map(|t| t[0]).collect();
            block.sort_unstable();
            assert_eq!(block.len(), 2 * h);
            assert!(block.windows(2).all(|w| w[1] == w[0] + 1), "{block:?}");
        }
        assert!(mean_pooling_collision(&seqs).is_some());
        // d = 1: the label coordinate is the only one; labels are in 0..classes.
        assert!(ds.targets.as_slice().iter().all(|y| [0.0, 1.0, 2.0].contains(y)));
    }
}

#[test]
fn pte_example_for_m_3() {
    // n = 8, |V| = 16: m = 3, h = 4, so the pair differs in c + {0,3,5,6} vs c + {1,2,4,7}.
    let ds = Dataset::<f64>::generate(&spec(VocabKind::Pte, 2, 8, 1, 16, 0)).unwrap();
    let (x, y) = (as_set(&int_seq(&ds.inputs, 0)), as_set(&int_seq(&ds.inputs, 1)));
    let c = x.symmetric_difference(&y).map(|t| t[0]).min().unwrap();
    assert!(c >= 1);
    let only_x: BTreeSet<i64> = x.difference(&y).map(|t| t[0] - c).collect();
    assert_eq!(only_x, BTreeSet::from([0, 3, 5, 6]));
}

#[test]
fn bad_specs_name_the_field() {
    let pte = spec(VocabKind::Pte, 10, 6, 1, 12, 0);
    assert_field(Dataset::<f64>::generate(&DatasetSpec { dim: 2, ..pte.clone() }).unwrap_err(), "dim");
    assert_field(Dataset::<f64>::generate(&DatasetSpec { length: 2, vocab: 8, ..pte.clone() }).unwrap_err(), "length");
    // n = 6 needs |V| ≥ n + 4 = 10.
    Dataset::<f64>::generate(&DatasetSpec { vocab: 10, sequences: 2, ..pte.clone() }).unwrap();
    let err = Dataset::<f64>::generate(&DatasetSpec { vocab: 9, ..pte.clone() }).unwrap_err();
    assert!(err.to_string().contains("10"), "{err}");
    assert_field(err, "vocab");
    assert_field(Dataset::<f64>::generate(&DatasetSpec { label_coord: 1, ..pte.clone() }).unwrap_err(), "label_coord");
    // |V| = 10, n = 6: 3 offsets × C(2, 2) = 3 pairs, so at most 6 sequences.
    Dataset::<f64>::generate(&DatasetSpec { vocab: 10, sequences: 6, ..pte.clone() }).unwrap();
    let err = Dataset::<f64>::generate(&DatasetSpec { vocab: 10, sequences: 7, ..pte.clone() }).unwrap_err();
    assert!(matches!(&err, Error::Infeasible(m) if m.contains("N = 7")), "{err}");
    let grid = spec(VocabKind::Grid, 10, 4, 2, 8, 0);
    assert_field(Dataset::<f64>::generate(&DatasetSpec { vocab: 3, ..grid.clone() }).unwrap_err(), "vocab");
    assert_field(Dataset::<f64>::generate(&DatasetSpec { length: 0, ..grid.clone() }).unwrap_err(), "length");
    let err = Dataset::<f64>::generate(&DatasetSpec { sequences: 71, ..grid.clone() }).unwrap_err();
    assert!(matches!(&err, Error::Infeasible(m) if m.contains("C(8, 4) = 70")), "{err}");
    // r_min, r_max and eps are ignored (not validated) by Grid and Pte, but still checked for Random.
    for s in [grid, pte] {
        Dataset::<f64>::generate(&DatasetSpec { r_min: -1.0, r_max: f64::NAN, eps: 100.0, ..s.clone() }).unwrap();
        let random = DatasetSpec { vocab_kind: VocabKind::Random, r_min: -1.0, ..s };
        assert_field(Dataset::<f64>::generate(&random).unwrap_err(), "r_min");
    }
}
