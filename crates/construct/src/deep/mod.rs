//! The deep baselines the one-layer construction is set against (`docs/theory.md` §7–§9): Yun et al.'s
//! selective-shift hardmax construction ([`yun`]), Kim et al.'s reference curve ([`kim`]), and the
//! parameter-optimal bit-extraction construction ([`bit_extraction`]: one averaging attention layer, then the
//! deep narrow ReLU stack of [`bit_extraction::stack`]).

pub mod bit_extraction;
pub mod kim;
pub mod yun;
