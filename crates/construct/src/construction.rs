//! One vocabulary of constructions: a [`Construction`] is *what* is built, with everything that changes the
//! model (the one-layer policy, Yun's grid, the bit-extraction task), and it has one name, spelled the same
//! on the command line, in suite configs, in result rows, in charts and in Python.
//!
//! The names are listed once, in [`REGISTRY`], with the legend label charts use and the family
//! ([`ConstructionKind`]) that the command line's `--construction` selects. Adding a construction means one
//! variant here (or one value of an existing variant's parameter), one registry entry, and its build (in
//! `boltz-lab`'s `construction::build`); the CLI, configs, rows, charts and Python then know its name.

use boltz_core::named::{Named, UnknownName};
use serde::{Deserialize, Serialize};

use crate::deep::bit_extraction::Task;
use crate::deep::yun::YunDelta;
use crate::Policy;

boltz_core::named_enum! {
/// The families of constructions (the CLI's `--construction`; the parameters come from `--policy`,
/// `--delta`, `--task`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConstructionKind: "construction" {
    /// The one-layer rank-1 memorizer (Corollary 1).
    OneLayer = "one-layer",
    /// Yun et al.'s data-adaptive selective-shift construction (exact, |V| + 1 attention layers).
    Yun = "yun",
    /// Yun et al.'s full-grid construction (δ^{−d} + 1 attention layers).
    YunFull = "yun-full",
    /// The parameter-optimal Õ(√(nN)) construction (Kim, Kim & Mozafari 2023; Kajitsuka & Sato 2025): one
    /// averaging attention layer, then a deep, narrow bit-extraction ReLU stack
    /// ([`crate::deep::bit_extraction`]).
    #[serde(alias = "optimal")]
    BitExtraction = "bit-extraction" | "optimal",
}
}

/// What is built: a construction with the parameters that change its model. Its `Debug` is its name
/// (progress lines and messages read `yun`, not `Yun(Dyadic)`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Construction {
    /// The one-layer rank-1 memorizer (Corollary 1), `v` and `λ` chosen by the policy.
    OneLayer(Policy),
    /// Yun et al.'s selective shifts over the grid ids of the tokens that occur, on the given grid.
    Yun(YunDelta),
    /// Yun et al.'s selective shifts over every grid id, on the given grid.
    YunFull(YunDelta),
    /// The bit-extraction construction for the given task.
    BitExtraction(Task),
}

/// One construction's entry in the [`REGISTRY`].
#[derive(Clone, Copy, Debug)]
pub struct Entry {
    /// The construction.
    pub construction: Construction,
    /// Its one name (CLI, configs, rows, charts, Python).
    pub name: &'static str,
    /// Older names that still parse (never written).
    pub aliases: &'static [&'static str],
    /// What a chart's legend says.
    pub label: &'static str,
    /// A two-line label for a chart's category axis.
    pub tick: &'static str,
}

/// Every construction, in chart order, with its name and legend label: the one place they are spelled.
pub const REGISTRY: &[Entry] = &[
    Entry {
        construction: Construction::OneLayer(Policy::Measured),
        name: "measured",
        aliases: &[],
        label: "one layer, rank-1 softmax, λ of Lemma 1 (Measured)",
        tick: "one layer,\nMeasured λ",
    },
    Entry {
        construction: Construction::OneLayer(Policy::FewestBits),
        name: "fewest-bits",
        aliases: &[],
        label: "one layer, rank-1 softmax, λ chosen for fewest bits",
        tick: "one layer,\nλ for fewest bits",
    },
    Entry {
        construction: Construction::OneLayer(Policy::Tuned),
        name: "tuned",
        aliases: &[],
        label: "one layer, rank-1 softmax, smallest separating λ",
        tick: "one layer,\nsmallest λ",
    },
    Entry {
        construction: Construction::OneLayer(Policy::Theory),
        name: "theory",
        aliases: &[],
        label: "one layer, rank-1 softmax, Theorem 2 constants",
        tick: "one layer,\nTheorem 2 λ",
    },
    Entry {
        construction: Construction::OneLayer(Policy::MeanPool),
        name: "mean-pool",
        aliases: &[],
        label: "one layer, mean pooling (λ = 0, not softmax)",
        tick: "one layer,\nmean pooling",
    },
    Entry {
        construction: Construction::Yun(YunDelta::Dyadic),
        name: "yun",
        aliases: &[],
        label: "Yun et al., deep hardmax (dyadic δ)",
        tick: "Yun et al.,\ndyadic δ",
    },
    Entry {
        construction: Construction::Yun(YunDelta::Minimal),
        name: "yun-minimal",
        aliases: &[],
        label: "Yun et al., deep hardmax (minimal δ)",
        tick: "Yun et al.,\nminimal δ",
    },
    Entry {
        construction: Construction::YunFull(YunDelta::Dyadic),
        name: "yun-full",
        aliases: &[],
        label: "Yun et al., deep hardmax over the full grid (dyadic δ)",
        tick: "Yun et al., full grid,\ndyadic δ",
    },
    Entry {
        construction: Construction::YunFull(YunDelta::Minimal),
        name: "yun-full-minimal",
        aliases: &[],
        label: "Yun et al., deep hardmax over the full grid (minimal δ)",
        tick: "Yun et al., full grid,\nminimal δ",
    },
    Entry {
        construction: Construction::BitExtraction(Task::SequenceToSequence),
        name: "bit-extraction",
        aliases: &["optimal"],
        label: "bit extraction: 1 averaging attention + deep narrow FFN, Õ(√(nN))",
        tick: "bit extraction,\nseq2seq",
    },
    Entry {
        construction: Construction::BitExtraction(Task::NextToken),
        name: "bit-extraction-next-token",
        aliases: &[],
        label: "bit extraction, next-token: 1 averaging attention + deep narrow FFN, Õ(√N)",
        tick: "bit extraction,\nnext token",
    },
];

/// [`REGISTRY`]'s constructions, in its order.
const ALL: [Construction; REGISTRY.len()] = {
    let mut all = [Construction::OneLayer(Policy::Measured); REGISTRY.len()];
    let mut i = 0;
    while i < REGISTRY.len() {
        all[i] = REGISTRY[i].construction;
        i += 1;
    }
    all
};

impl Construction {
    /// Every construction, in chart order.
    pub const ALL: &'static [Construction] = &ALL;

    /// Its registry entry (every construction has one: a test checks it).
    pub fn entry(self) -> &'static Entry {
        REGISTRY.iter().find(|e| e.construction == self).unwrap_or(&REGISTRY[0])
    }

    /// Its one name.
    pub fn name(self) -> &'static str {
        self.entry().name
    }

    /// What a chart's legend says.
    pub fn label(self) -> &'static str {
        self.entry().label
    }

    /// A two-line label for a chart's category axis.
    pub fn tick(self) -> &'static str {
        self.entry().tick
    }

    /// Its family (the CLI's `--construction`).
    pub fn kind(self) -> ConstructionKind {
        match self {
            Self::OneLayer(_) => ConstructionKind::OneLayer,
            Self::Yun(_) => ConstructionKind::Yun,
            Self::YunFull(_) => ConstructionKind::YunFull,
            Self::BitExtraction(_) => ConstructionKind::BitExtraction,
        }
    }

    /// The construction of family `kind` with the given parameters (each family reads only its own:
    /// the policy for one-layer, the grid for Yun's, the task for bit extraction).
    pub fn of(kind: ConstructionKind, policy: Policy, delta: YunDelta, task: Task) -> Self {
        match kind {
            ConstructionKind::OneLayer => Self::OneLayer(policy),
            ConstructionKind::Yun => Self::Yun(delta),
            ConstructionKind::YunFull => Self::YunFull(delta),
            ConstructionKind::BitExtraction => Self::BitExtraction(task),
        }
    }

    /// The one-layer policy, for a one-layer construction.
    pub fn policy(self) -> Option<Policy> {
        match self {
            Self::OneLayer(p) => Some(p),
            _ => None,
        }
    }

    /// Yun's grid, for Yun's constructions.
    pub fn yun_delta(self) -> Option<YunDelta> {
        match self {
            Self::Yun(d) | Self::YunFull(d) => Some(d),
            _ => None,
        }
    }

    /// The task, for the bit-extraction construction.
    pub fn task(self) -> Option<Task> {
        match self {
            Self::BitExtraction(t) => Some(t),
            _ => None,
        }
    }
}

impl Named for Construction {
    const KIND: &'static str = "construction";
    const ALL: &'static [Self] = &ALL;
    fn name(self) -> &'static str {
        Construction::name(self)
    }
    fn aliases(self) -> &'static [&'static str] {
        self.entry().aliases
    }
}

impl std::fmt::Debug for Construction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::fmt::Display for Construction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Construction {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, UnknownName> {
        Self::from_name(s)
    }
}

impl Serialize for Construction {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl<'de> Deserialize<'de> for Construction {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_construction_has_one_entry_one_name_and_a_label() {
        let mut names = std::collections::BTreeSet::new();
        for &c in Construction::ALL {
            assert_eq!(REGISTRY.iter().filter(|e| e.construction == c).count(), 1, "{c:?} has one entry");
            assert!(names.insert(c.name()), "{} is named twice", c.name());
            assert!(!c.label().is_empty() && c.tick().contains('\n'));
            assert_eq!(
                Construction::of(
                    c.kind(),
                    c.policy().unwrap_or(Policy::Measured),
                    c.yun_delta().unwrap_or_default(),
                    c.task().unwrap_or_default()
                ),
                c
            );
        }
        // Every policy, grid and task has its construction.
        for &p in Policy::ALL {
            assert!(Construction::ALL.contains(&Construction::OneLayer(p)), "{p:?}");
        }
        for &d in YunDelta::ALL {
            assert!(Construction::ALL.contains(&Construction::Yun(d)) && Construction::ALL.contains(&Construction::YunFull(d)));
        }
        for &t in Task::ALL {
            assert!(Construction::ALL.contains(&Construction::BitExtraction(t)));
        }
        boltz_core::named::assert_serde_spells_like_names::<Construction>();
        boltz_core::named::assert_serde_spells_like_names::<ConstructionKind>();
        assert_eq!("optimal".parse(), Ok(Construction::BitExtraction(Task::SequenceToSequence)));
        let err = "deep".parse::<Construction>().unwrap_err().to_string();
        assert!(err.contains("unknown construction \"deep\"") && err.contains("measured, fewest-bits"), "{err}");
    }

    #[test]
    fn one_layer_names_are_the_policies_names() {
        for &p in Policy::ALL {
            assert_eq!(Construction::OneLayer(p).name(), p.name());
        }
    }
}
