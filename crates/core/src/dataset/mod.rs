//! Seeded generators and validators for *tokenwise (r_min, r_max, ε)-separated* data
//! (Kajitsuka & Sato, ICLR 2024, Definition 1), and for adversarial families of it.
//!
//! A vocabulary `V` of `|V|` tokens in `R^d` has norms in `[r_min, r_max]` and pairwise distances
//! `> ε`. Each of the `N` sequences holds `n` *distinct* tokens of `V` (no repeats inside a sequence, as
//! Theorem 2 assumes), and no two sequences are permutations of each other. Targets `Y ∈ R^{d×n}` carry an
//! integer class label in one output coordinate and 0 elsewhere; they are consistent under permutation
//! because every context occurs once. The same seed gives the same bytes on every machine (see
//! [`crate::rng`]).
//!
//! # Data families ([`VocabKind`])
//!
//! * [`VocabKind::Random`] (the default): tokens at random directions and radii. This is *generic* data:
//!   two different token sets have equal token sums with probability 0, so plain mean pooling (attention
//!   with scale λ = 0, i.e. averaging) already gives every context its own id, and the softmax's λ > 0 is
//!   never tested.
//! * [`VocabKind::Grid`]: tokens are distinct non-zero points of the integer lattice `{-k..=k}^d`. Integer
//!   coordinates make equal token sums of different sequences that share a token common, so mean pooling
//!   collides and only λ > 0 separates those contexts.
//! * [`VocabKind::Pte`] (`d = 1`): sequences come in pairs whose token multisets solve the
//!   Prouhet–Tarry–Escott problem (equal power sums of degrees `1..m−1`), the worst case for small λ:
//!   the softmax separates such contexts only at a high order of λ (see [`VocabKind::Pte`]).
//!
//! Grid and PTE tokens are fixed integers: the spec's `r_min`, `r_max` and `eps` are ignored (and not
//! validated) for them; [`DataReport::analyze`] measures the values the data actually has.

mod families;
mod report;
mod spec;

pub use families::Vocabulary;
use families::{generate_vocabulary, grid_vocabulary, pte_sequences, sample_token_sets};
pub use report::{decodes, DataReport, Memorization, Requirements};
pub use spec::{pte_order, DatasetSpec, VocabKind};

use crate::error::{Error, Result};
use crate::real::Real;
use crate::rng::SeededRng;
use crate::tensor::Batch;

/// Inputs `[N, n, d]` and targets `[N, n, d]`, with the spec that generated them (if any).
#[derive(Clone, Debug, PartialEq)]
pub struct Dataset<T> {
    /// Input sequences.
    pub inputs: Batch<T>,
    /// Target sequences, same shape.
    pub targets: Batch<T>,
    /// Generator parameters, when generated.
    pub spec: Option<DatasetSpec>,
}

impl<T: Real> Dataset<T> {
    /// Pairs inputs with targets of the same shape.
    pub fn new(inputs: Batch<T>, targets: Batch<T>, spec: Option<DatasetSpec>) -> Result<Self> {
        if inputs.shape() != targets.shape() {
            return Err(Error::shape("targets", format!("{:?} (the inputs' shape)", inputs.shape()), format!("{:?}", targets.shape())));
        }
        Ok(Self { inputs, targets, spec })
    }

    /// Generates a dataset of the family `spec.vocab_kind` (see the module docs and [`VocabKind`]).
    /// Deterministic in `spec.seed`; [`VocabKind::Random`] gives the same values as before the other
    /// families existed.
    ///
    /// Fails with [`Error::InvalidParameter`] on bad ranges (naming the field) and [`Error::Infeasible`]
    /// when the vocabulary cannot be placed (ε too large for the shell of radii in `R^d`), holds fewer than
    /// N distinct n-token sets, or (PTE) offers too few distinct pairs.
    pub fn generate(spec: &DatasetSpec) -> Result<Self> {
        spec.validate()?;
        let mut rng = SeededRng::new(spec.seed);
        let (vocab, sets) = match spec.vocab_kind {
            VocabKind::Random => {
                let vocab = generate_vocabulary::<T>(spec, &mut rng)?;
                (vocab, sample_token_sets(spec, &mut rng)?)
            }
            VocabKind::Grid => {
                let vocab = grid_vocabulary::<T>(spec, &mut rng)?;
                (vocab, sample_token_sets(spec, &mut rng)?)
            }
            VocabKind::Pte => pte_sequences::<T>(spec, &mut rng)?,
        };
        let (n, d) = (spec.length, spec.dim);
        let mut inputs = Vec::with_capacity(spec.sequences * n * d);
        let mut targets = vec![T::from_f64(0.0); spec.sequences * n * d];
        for (i, set) in sets.iter().enumerate() {
            for (k, &tok) in set.iter().enumerate() {
                inputs.extend_from_slice(vocab.row(tok));
                let label = rng.below(u64::from(spec.classes));
                targets[(i * n + k) * d + spec.label_coord] = T::from_f64(label as f64);
            }
        }
        Self::new(Batch::new(spec.sequences, n, d, inputs)?, Batch::new(spec.sequences, n, d, targets)?, Some(spec.clone()))
    }

    /// Element-wise conversion (lossless into wider types).
    pub fn convert<U: Real>(&self) -> Result<Dataset<U>> {
        Dataset::new(self.inputs.convert()?, self.targets.convert()?, self.spec.clone())
    }

    /// FNV-1a fingerprint of the exact input and target values.
    pub fn fingerprint(&self) -> u64 {
        let text = self.inputs.as_slice().iter().chain(self.targets.as_slice()).map(|x| x.to_exact().to_string() + ",").collect::<String>();
        crate::rng::fnv1a64(text.into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_data_meets_its_spec() {
        let spec = DatasetSpec { sequences: 200, length: 6, dim: 3, vocab: 12, eps: 0.4, classes: 3, seed: 7, ..Default::default() };
        let ds = Dataset::<f64>::generate(&spec).unwrap();
        let rep = DataReport::analyze(&ds.inputs, Some(&ds.targets));
        assert_eq!((rep.sequences, rep.length, rep.dim, rep.vocab_size), (200, 6, 3, 12));
        assert!(rep.r_min >= 1.0 && rep.r_max <= 2.0 && rep.eps > 0.4, "{rep:?}");
        assert!(rep.duplicate_tokens.is_empty() && rep.permuted_duplicates.is_empty() && rep.inconsistent_targets.is_empty());
        let req = Requirements { no_duplicate_tokens: true, distinct_contexts: true, r_min: Some(1.0), r_max: Some(2.0), eps: Some(0.4) };
        rep.check(&req).unwrap();
        // Labels live in coordinate 0 only and are integers in 0..3.
        for (i, y) in ds.targets.as_slice().iter().enumerate() {
            if i % 3 == 0 {
                assert!([0.0, 1.0, 2.0].contains(y));
            } else {
                assert_eq!(*y, 0.0);
            }
        }
    }

    #[test]
    fn same_seed_same_bytes_and_pinned_hash() {
        let spec = DatasetSpec { sequences: 50, length: 5, dim: 4, vocab: 20, seed: 42, ..Default::default() };
        let a = Dataset::<f64>::generate(&spec).unwrap();
        let b = Dataset::<f64>::generate(&spec).unwrap();
        assert_eq!(a, b);
        let bytes = |ds: &Dataset<f64>| -> Vec<u8> {
            ds.inputs.as_slice().iter().chain(ds.targets.as_slice()).flat_map(|x| x.to_le_bytes()).collect()
        };
        // Pinned: a change here means the generator's output changed for existing seeds.
        assert_eq!(crate::rng::fnv1a64(bytes(&a)), 11509926543480932124, "update the pinned hash only on purpose");
        let other = Dataset::<f64>::generate(&DatasetSpec { seed: 43, ..spec }).unwrap();
        assert_ne!(bytes(&a), bytes(&other));
    }

    #[test]
    fn dense_regime_enumerates_all_sets() {
        // C(6, 3) = 20 sets: asking for all of them works, one more is infeasible.
        let spec = DatasetSpec { sequences: 20, length: 3, dim: 2, vocab: 6, eps: 0.2, ..Default::default() };
        let ds = Dataset::<f32>::generate(&spec).unwrap();
        assert!(DataReport::analyze(&ds.inputs, None).permuted_duplicates.is_empty());
        let err = Dataset::<f32>::generate(&DatasetSpec { sequences: 21, ..spec }).unwrap_err();
        assert!(matches!(err, Error::Infeasible(ref m) if m.contains("C(6, 3) = 20")), "{err}");
    }

    #[test]
    fn bad_specs_name_the_field() {
        let base = DatasetSpec::default();
        for (spec, field) in [
            (DatasetSpec { sequences: 0, ..base.clone() }, "sequences"),
            (DatasetSpec { length: 0, ..base.clone() }, "length"),
            (DatasetSpec { vocab: 3, ..base.clone() }, "vocab"),
            (DatasetSpec { r_min: -1.0, ..base.clone() }, "r_min"),
            (DatasetSpec { r_max: 0.5, ..base.clone() }, "r_max"),
            (DatasetSpec { eps: f64::NAN, ..base.clone() }, "eps"),
            (DatasetSpec { label_coord: 4, ..base.clone() }, "label_coord"),
        ] {
            let err = Dataset::<f64>::generate(&spec).unwrap_err();
            assert!(matches!(&err, Error::InvalidParameter { name, .. } if name == field), "{field}: {err}");
        }
        // Too many well-separated tokens for a thin shell in R^1.
        let err = Dataset::<f64>::generate(&DatasetSpec { dim: 1, vocab: 30, eps: 0.5, ..base }).unwrap_err();
        assert!(matches!(err, Error::Infeasible(_)), "{err}");
    }

    #[test]
    fn analysis_finds_violations() {
        // Sequence 0 repeats a token; sequences 1 and 2 are permutations with inconsistent targets.
        let x = |v: f64| vec![v, 0.0];
        let seqs = vec![[x(1.0), x(1.0)].concat(), [x(1.0), x(2.0)].concat(), [x(2.0), x(1.0)].concat()];
        let inputs = Batch::from_sequences(2, 2, &seqs).unwrap();
        let targets = Batch::from_sequences(2, 2, &[vec![0.0; 4], vec![1.0, 0.0, 0.0, 0.0], vec![1.0, 0.0, 0.0, 0.0]]).unwrap();
        let rep = DataReport::analyze(&inputs, Some(&targets));
        assert_eq!(rep.duplicate_tokens, vec![(0, 0, 1)]);
        assert_eq!(rep.permuted_duplicates, vec![(1, 2)]);
        assert_eq!(rep.inconsistent_targets, vec![(1, 2)]);
        assert_eq!((rep.vocab_size, rep.eps, rep.r_min, rep.r_max), (2, 1.0, 1.0, 2.0));
        let err = rep.check(&Requirements { no_duplicate_tokens: true, ..Default::default() }).unwrap_err();
        assert!(matches!(err, Error::DuplicateToken { sequence: 0, first: 0, second: 1 }));
        let err = rep.check(&Requirements { distinct_contexts: true, ..Default::default() }).unwrap_err();
        assert!(matches!(err, Error::PermutedDuplicate { first: 1, second: 2 }));
        let err =
            DataReport { inconsistent_targets: vec![], ..rep }.check(&Requirements { eps: Some(1.5), ..Default::default() }).unwrap_err();
        assert!(err.to_string().contains("ε") && err.to_string().contains("1e0"), "{err}");
    }
}
