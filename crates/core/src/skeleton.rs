//! The one model skeleton: a stack of blocks, each an optional attention layer of heads and an optional
//! feed-forward layer, generic over how a head (`H`) and a feed-forward layer (`F`) are stored.
//!
//! [`crate::Model`] is `Stack<AttentionHead<T>, FeedForward<T>>` plus its construction info; every backend
//! lays a model out for itself with one [`Stack::try_map`] (dense matrices for the reference, row-major
//! buffers for the CPU engine, rounded values for bigfloat, device buffers for cuda), so the shape of the
//! model — which blocks have attention, the normalizer, the causal mask, the order — is written here only.
//! What a backend does *with* the skeleton (its arithmetic) stays its own; the reference's forward in
//! particular is kept apart on purpose: it is the oracle the other backends are tested against.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The column-wise normalizer σ of an attention layer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Normalizer {
    /// `σ_S(a)_i = e^{a_i} / Σ_j e^{a_j}`, computed shifted by `max a`.
    Softmax,
    /// `σ_H(a)_i = 1/|argmax a|` on the maximisers (exact ties share equally), 0 elsewhere.
    Hardmax,
}

impl Normalizer {
    /// `"softmax"` or `"hardmax"` (the file-format spelling).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Softmax => "softmax",
            Self::Hardmax => "hardmax",
        }
    }
}

impl std::str::FromStr for Normalizer {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "softmax" => Ok(Self::Softmax),
            "hardmax" => Ok(Self::Hardmax),
            other => Err(Error::Format(format!("unknown attention kind {other:?}, expected softmax or hardmax"))),
        }
    }
}

/// Where in a model a head or a feed-forward layer sits, in the file-format spelling
/// (`blocks.{block}.attn.{head}` or `blocks.{block}.ffn`; see `docs/format.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Site {
    /// Block index, in application order.
    pub block: usize,
    /// Head index within the block's attention; `None` for the block's feed-forward layer.
    pub head: Option<usize>,
}

impl Site {
    /// Head `head` of block `block`'s attention.
    pub fn head(block: usize, head: usize) -> Self {
        Self { block, head: Some(head) }
    }

    /// Block `block`'s feed-forward layer.
    pub fn ffn(block: usize) -> Self {
        Self { block, head: None }
    }

    /// A tensor at this site: `blocks.0.attn.1.w_k`, `blocks.2.ffn.b1`.
    pub fn tensor(&self, name: &str) -> String {
        format!("{self}.{name}")
    }
}

/// `blocks.{b}.attn.{h}` or `blocks.{b}.ffn`.
impl std::fmt::Display for Site {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.head {
            Some(h) => write!(f, "blocks.{}.attn.{h}", self.block),
            None => write!(f, "blocks.{}.ffn", self.block),
        }
    }
}

/// A multi-head self-attention layer with a residual connection: the heads' outputs are summed.
#[derive(Clone, Debug, PartialEq)]
pub struct Attention<H> {
    /// The heads.
    pub heads: Vec<H>,
    /// Softmax or hardmax.
    pub normalizer: Normalizer,
    /// Whether query `j` sees only keys `i ≤ j`.
    pub causal: bool,
}

/// One Transformer block: attention (if any), then the feed-forward layer (if any).
#[derive(Clone, Debug, PartialEq)]
pub struct Block<H, F> {
    /// `F_SA`, applied first.
    pub attention: Option<Attention<H>>,
    /// `F_FF`, applied second.
    pub ffn: Option<F>,
}

/// Blocks over tokens of dimension `dim`, in application order.
#[derive(Clone, Debug, PartialEq)]
pub struct Stack<H, F> {
    dim: usize,
    blocks: Vec<Block<H, F>>,
}

impl<H, F> Stack<H, F> {
    /// Assembles blocks over tokens of dimension `dim` (no checks: [`crate::Model::new`] validates a model).
    pub fn new(dim: usize, blocks: Vec<Block<H, F>>) -> Self {
        Self { dim, blocks }
    }

    /// Token dimension `d`.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The blocks, in application order.
    pub fn blocks(&self) -> &[Block<H, F>] {
        &self.blocks
    }

    /// The blocks, by value.
    pub fn into_blocks(self) -> Vec<Block<H, F>> {
        self.blocks
    }

    /// The same skeleton with every head mapped by `head` and every feed-forward layer by `ffn`, in
    /// application order (block by block, heads before the feed-forward layer); the first error stops the
    /// walk. Each call is told its [`Site`], so errors can name where they arose.
    pub fn try_map<H2, F2, E>(
        &self,
        mut head: impl FnMut(Site, &H) -> Result<H2, E>,
        mut ffn: impl FnMut(Site, &F) -> Result<F2, E>,
    ) -> Result<Stack<H2, F2>, E> {
        let mut blocks = Vec::with_capacity(self.blocks.len());
        for (b, block) in self.blocks.iter().enumerate() {
            let attention = match &block.attention {
                Some(a) => Some(Attention {
                    heads: a.heads.iter().enumerate().map(|(h, x)| head(Site::head(b, h), x)).collect::<Result<_, E>>()?,
                    normalizer: a.normalizer,
                    causal: a.causal,
                }),
                None => None,
            };
            let ffn = block.ffn.as_ref().map(|f| ffn(Site::ffn(b), f)).transpose()?;
            blocks.push(Block { attention, ffn });
        }
        Ok(Stack { dim: self.dim, blocks })
    }

    /// [`Stack::try_map`] for maps that cannot fail.
    pub fn map<H2, F2>(&self, mut head: impl FnMut(Site, &H) -> H2, mut ffn: impl FnMut(Site, &F) -> F2) -> Stack<H2, F2> {
        match self.try_map::<_, _, std::convert::Infallible>(|s, h| Ok(head(s, h)), |s, f| Ok(ffn(s, f))) {
            Ok(stack) => stack,
            Err(never) => match never {},
        }
    }

    /// Every head with its site, in application order.
    pub fn heads(&self) -> impl Iterator<Item = (Site, &H)> {
        self.blocks.iter().enumerate().flat_map(|(b, block)| {
            block.attention.iter().flat_map(move |a| a.heads.iter().enumerate().map(move |(h, x)| (Site::head(b, h), x)))
        })
    }

    /// Every feed-forward layer with its site, in application order.
    pub fn ffns(&self) -> impl Iterator<Item = (Site, &F)> {
        self.blocks.iter().enumerate().filter_map(|(b, block)| block.ffn.as_ref().map(|f| (Site::ffn(b), f)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stack() -> Stack<&'static str, u32> {
        let attn = |heads: Vec<&'static str>, causal| Some(Attention { heads, normalizer: Normalizer::Softmax, causal });
        Stack::new(
            3,
            vec![
                Block { attention: attn(vec!["a", "b"], false), ffn: Some(1) },
                Block { attention: None, ffn: Some(2) },
                Block { attention: attn(vec!["c"], true), ffn: None },
            ],
        )
    }

    #[test]
    fn map_keeps_the_skeleton_and_visits_sites_in_order() {
        let visited = std::cell::RefCell::new(Vec::new());
        let mapped = stack().map(
            |s, h| {
                visited.borrow_mut().push(s.to_string());
                h.len()
            },
            |s, f| {
                visited.borrow_mut().push(s.to_string());
                f * 10
            },
        );
        assert_eq!(visited.into_inner(), ["blocks.0.attn.0", "blocks.0.attn.1", "blocks.0.ffn", "blocks.1.ffn", "blocks.2.attn.0"]);
        assert_eq!(mapped.dim(), 3);
        assert_eq!(mapped.blocks()[0].attention.as_ref().map(|a| (a.heads.clone(), a.causal)), Some((vec![1, 1], false)));
        assert!(mapped.blocks()[1].attention.is_none());
        assert_eq!(mapped.blocks()[1].ffn, Some(20));
        assert_eq!(mapped.blocks()[2].attention.as_ref().map(|a| a.causal), Some(true));
        assert_eq!(mapped.blocks()[2].ffn, None);
        let heads: Vec<_> = stack().heads().map(|(s, h)| (s.to_string(), *h)).collect();
        assert_eq!(heads, [("blocks.0.attn.0".to_string(), "a"), ("blocks.0.attn.1".into(), "b"), ("blocks.2.attn.0".into(), "c")]);
        assert_eq!(stack().ffns().map(|(s, _)| s).collect::<Vec<_>>(), [Site::ffn(0), Site::ffn(1)]);
    }

    #[test]
    fn try_map_stops_at_the_first_error_and_names_its_site() {
        let mut calls = 0;
        let err = stack()
            .try_map(
                |s, h| {
                    calls += 1;
                    if *h == "b" {
                        Err(s.tensor("w_q"))
                    } else {
                        Ok(())
                    }
                },
                |_, _| Ok(()),
            )
            .unwrap_err();
        assert_eq!(err, "blocks.0.attn.1.w_q");
        assert_eq!(calls, 2);
    }
}
