//! One vocabulary of constructions: a [`Construction`] is *what* is built, with everything that changes the
//! model (the one-layer policy, Yun's grid, the bit-extraction task), and it has one name, spelled the same
//! on the command line, in suite configs, in result rows, in charts and in Python.
//!
//! The names are listed once, in [`REGISTRY`], with the legend label charts use and the family
//! ([`Family`]) that the command line's `--construction` selects.
//!
//! Adding a construction means its own file and one registry entry: the file defines a `static`
//! [`Extension`] (its build function), the entry names it ([`Construction::Extension`]). The CLI
//! (`--construction NAME`), suite configs and rows, charts (legend, ticks, a colour of their own) and Python
//! then know it, and `boltz-lab` builds, runs and measures it like every other construction. The test tree
//! holds one, `tests/support/first_direction.rs`, registered in test builds (feature `test-construction`,
//! which the workspace's dev-dependencies turn on) and exercised end to end by the CLI's tests. The built-in
//! families (one-layer, Yun, bit extraction) are enum variants instead, because their parameters (policy,
//! grid, task) and their suite columns are their own.

use boltz_core::named::Named;
use serde::{Deserialize, Serialize};

use crate::deep::bit_extraction::Task;
use crate::deep::yun::YunDelta;
use crate::extension::Extension;
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
    /// A construction defined in its own file ([`Extension`]), named by its registry entry.
    Extension(&'static Extension),
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

/// Every construction, in chart order, with its name and legend label: the one place they are spelled (the
/// built-in ones, then, in test builds, the test tree's extension).
pub const REGISTRY: &[Entry] = &REGISTERED;

/// The entries of the shipped constructions.
const BUILTIN: [Entry; 11] = [
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

/// The test tree's construction (`tests/support/first_direction.rs`), registered in test builds only.
#[cfg(feature = "test-construction")]
const TEST_ENTRIES: [Entry; 1] = [Entry {
    construction: Construction::Extension(&crate::test_construction::FIRST_DIRECTION),
    name: "test-first-direction",
    aliases: &[],
    label: "test construction: one layer, rank-1 softmax, the first random direction",
    tick: "test: one layer,\nfirst direction",
}];
#[cfg(not(feature = "test-construction"))]
const TEST_ENTRIES: [Entry; 0] = [];

/// [`BUILTIN`] then [`TEST_ENTRIES`].
const REGISTERED: [Entry; BUILTIN.len() + TEST_ENTRIES.len()] = {
    let mut all = [BUILTIN[0]; BUILTIN.len() + TEST_ENTRIES.len()];
    let mut i = 0;
    while i < all.len() {
        all[i] = if i < BUILTIN.len() { BUILTIN[i] } else { TEST_ENTRIES[i - BUILTIN.len()] };
        i += 1;
    }
    all
};

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
    pub fn family(self) -> Family {
        match self {
            Self::OneLayer(_) => Family::Builtin(ConstructionKind::OneLayer),
            Self::Yun(_) => Family::Builtin(ConstructionKind::Yun),
            Self::YunFull(_) => Family::Builtin(ConstructionKind::YunFull),
            Self::BitExtraction(_) => Family::Builtin(ConstructionKind::BitExtraction),
            Self::Extension(_) => Family::Extension(self),
        }
    }

    /// The construction of `family` with the given parameters (each built-in family reads only its own: the
    /// policy for one-layer, the grid for Yun's, the task for bit extraction; an extension none).
    pub fn of(family: Family, policy: Policy, delta: YunDelta, task: Task) -> Self {
        match family {
            Family::Builtin(ConstructionKind::OneLayer) => Self::OneLayer(policy),
            Family::Builtin(ConstructionKind::Yun) => Self::Yun(delta),
            Family::Builtin(ConstructionKind::YunFull) => Self::YunFull(delta),
            Family::Builtin(ConstructionKind::BitExtraction) => Self::BitExtraction(task),
            Family::Extension(c) => c,
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

/// What the command line's `--construction` selects, and what a memorize record's `construction` says: a
/// built-in family, whose member `--policy`, `--delta` or `--task` choose, or one [`Extension`] by its name.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// A built-in family.
    Builtin(ConstructionKind),
    /// An extension (always a [`Construction::Extension`]).
    Extension(Construction),
}

/// How many [`REGISTRY`] entries are extensions.
const EXTENSION_COUNT: usize = {
    let (mut i, mut count) = (0, 0);
    while i < REGISTERED.len() {
        if matches!(REGISTERED[i].construction, Construction::Extension(_)) {
            count += 1;
        }
        i += 1;
    }
    count
};

/// The built-in families, then every extension.
const FAMILIES: [Family; ConstructionKind::ALL.len() + EXTENSION_COUNT] = {
    let mut all = [Family::Builtin(ConstructionKind::OneLayer); ConstructionKind::ALL.len() + EXTENSION_COUNT];
    let mut i = 0;
    while i < ConstructionKind::ALL.len() {
        all[i] = Family::Builtin(ConstructionKind::ALL[i]);
        i += 1;
    }
    let mut e = 0;
    while e < REGISTERED.len() {
        if let Construction::Extension(_) = REGISTERED[e].construction {
            all[i] = Family::Extension(REGISTERED[e].construction);
            i += 1;
        }
        e += 1;
    }
    all
};

boltz_core::spelled_by_name!(Construction);
boltz_core::spelled_by_name!(Family);

impl Named for Family {
    const KIND: &'static str = "construction";
    const ALL: &'static [Self] = &FAMILIES;
    fn name(self) -> &'static str {
        match self {
            Self::Builtin(k) => k.name(),
            Self::Extension(c) => c.name(),
        }
    }
    fn aliases(self) -> &'static [&'static str] {
        match self {
            Self::Builtin(k) => k.aliases(),
            Self::Extension(c) => c.entry().aliases,
        }
    }
}

impl From<ConstructionKind> for Family {
    fn from(k: ConstructionKind) -> Self {
        Self::Builtin(k)
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
                    c.family(),
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
        boltz_core::named::assert_serde_spells_like_names::<Family>();
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
