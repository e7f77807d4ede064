//! The one-layer results of Kajitsuka & Sato (ICLR 2024; `docs/theory.md` §2–§6): the Boltzmann operator and
//! Lemma 1, the rank-1 contextual mapping (Theorem 2), the one-layer memorizer (Corollary 1), the FF∘SA∘FF
//! approximator (Proposition 1) and the hardmax impossibility (Theorem 1).

pub mod approximator;
pub mod boltzmann;
pub mod contextual;
pub mod hardmax;
pub mod memorizer;
