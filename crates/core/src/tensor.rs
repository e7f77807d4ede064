//! Dense row-major containers: [`Matrix`] for weights and [`Batch`] for `[batch, n, d]` activations.
//!
//! **Layout and the paper's shapes.** The papers write a sequence as `X ∈ R^{d×n}` with tokens as
//! columns. A [`Batch`] stores `[batch, n, d]` row-major, so token `k` of sequence `b` — the paper's
//! column `X_{:,k}` — is the contiguous slice `batch.token(b, k)` of length `d`. Weight matrices keep
//! the paper's shapes (`W_Q ∈ R^{s×d}` is a [`Matrix`] with `rows = s`, `cols = d`), so the paper's
//! `W_Q X` is, per token, the matrix-vector product `W_Q · x_k`.

use crate::error::{Error, Result};
use crate::real::Real;

/// A dense row-major matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Matrix<T> {
    rows: usize,
    cols: usize,
    data: Vec<T>,
}

impl<T: Real> Matrix<T> {
    /// A `rows × cols` matrix from row-major data; checks the length (values are checked for finiteness
    /// when a model is assembled, see [`crate::Model::new`]).
    pub fn new(rows: usize, cols: usize, data: Vec<T>) -> Result<Self> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(Error::shape("matrix", format!("{rows}×{cols} = {} values", rows * cols), format!("{} values", data.len())));
        }
        Ok(Self { rows, cols, data })
    }

    /// The zero matrix.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        Self { rows, cols, data: vec![T::from_f64(0.0); rows * cols] }
    }

    /// `f(r, c)` at every entry.
    pub fn from_fn(rows: usize, cols: usize, mut f: impl FnMut(usize, usize) -> T) -> Self {
        let mut data = Vec::with_capacity(rows * cols);
        for r in 0..rows {
            for c in 0..cols {
                data.push(f(r, c));
            }
        }
        Self { rows, cols, data }
    }

    /// A `1 × n` row vector (the paper's `vᵀ`).
    pub fn row_vector(v: Vec<T>) -> Self {
        Self { rows: 1, cols: v.len(), data: v }
    }

    /// An `n × 1` column vector.
    pub fn column_vector(v: Vec<T>) -> Self {
        Self { rows: v.len(), cols: 1, data: v }
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// `(rows, cols)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }
    /// Entry `(r, c)`.
    pub fn get(&self, r: usize, c: usize) -> &T {
        &self.data[r * self.cols + c]
    }
    /// Row `r` as a slice.
    pub fn row(&self, r: usize) -> &[T] {
        &self.data[r * self.cols..(r + 1) * self.cols]
    }
    /// Row-major values.
    pub fn as_slice(&self) -> &[T] {
        &self.data
    }
    /// Row-major values, owned.
    pub fn into_vec(self) -> Vec<T> {
        self.data
    }

    /// `self · x` for a vector `x` of length `cols` (sums in column order).
    pub fn matvec(&self, x: &[T]) -> Vec<T> {
        debug_assert_eq!(x.len(), self.cols);
        (0..self.rows).map(|r| dot(self.row(r), x)).collect()
    }

    /// `self · otherᵀ` (`rows × other.rows`), used to expand rank factors `U Vᵀ`.
    pub fn mul_transposed(&self, other: &Matrix<T>) -> Matrix<T> {
        debug_assert_eq!(self.cols, other.cols);
        Matrix::from_fn(self.rows, other.rows, |r, c| dot(self.row(r), other.row(c)))
    }

    /// Element-wise conversion to another element type through the exact value (lossless into wider
    /// types, rounded to nearest into narrower ones).
    pub fn convert<U: Real>(&self) -> Matrix<U> {
        Matrix { rows: self.rows, cols: self.cols, data: self.data.iter().map(convert_value).collect() }
    }

    /// Index of the first non-finite entry.
    pub fn first_non_finite(&self) -> Option<usize> {
        self.data.iter().position(|x| !x.is_finite())
    }
}

/// `Σ a_i b_i`, summed left to right.
pub fn dot<T: Real>(a: &[T], b: &[T]) -> T {
    let mut acc = T::from_f64(0.0);
    for (x, y) in a.iter().zip(b) {
        acc = acc.add(&x.mul(y));
    }
    acc
}

/// Converts one value between element types through its exact value.
pub fn convert_value<T: Real, U: Real>(x: &T) -> U {
    U::from_exact(&x.to_exact())
}

/// A batch of sequences, `[batch, n, d]` row-major: token `k` of sequence `b` is `data[(b·n + k)·d ..][..d]`.
///
/// Constructed only through [`Batch::new`], which rejects empty batches, zero-length sequences,
/// zero-dimensional tokens, wrong data lengths and non-finite values, so every `Batch` a backend
/// receives is well-formed.
#[derive(Clone, Debug, PartialEq)]
pub struct Batch<T> {
    batch: usize,
    n: usize,
    d: usize,
    data: Vec<T>,
}

impl<T: Real> Batch<T> {
    /// Validates and wraps `[batch, n, d]` row-major data.
    pub fn new(batch: usize, n: usize, d: usize, data: Vec<T>) -> Result<Self> {
        if batch == 0 {
            return Err(Error::EmptyBatch);
        }
        if n == 0 {
            return Err(Error::ZeroSize { what: "sequence length n" });
        }
        if d == 0 {
            return Err(Error::ZeroSize { what: "token dimension d" });
        }
        let expected = batch.checked_mul(n).and_then(|x| x.checked_mul(d));
        if expected != Some(data.len()) {
            return Err(Error::shape("batch", format!("[{batch}, {n}, {d}]"), format!("{} values", data.len())));
        }
        if let Some(i) = data.iter().position(|x| !x.is_finite()) {
            return Err(Error::NonFinite { location: format!("input[{}][{}][{}]", i / (n * d), (i / d) % n, i % d) });
        }
        Ok(Self { batch, n, d, data })
    }

    /// Builds a batch from equally shaped sequences, each `n × d` row-major (tokens as rows).
    pub fn from_sequences(n: usize, d: usize, sequences: &[Vec<T>]) -> Result<Self> {
        let mut data = Vec::with_capacity(sequences.len() * n * d);
        for (i, s) in sequences.iter().enumerate() {
            if s.len() != n * d {
                return Err(Error::shape(format!("sequence {i}"), format!("{n}×{d} = {} values", n * d), format!("{} values", s.len())));
            }
            data.extend_from_slice(s);
        }
        Self::new(sequences.len(), n, d, data)
    }

    /// Number of sequences.
    pub fn batch(&self) -> usize {
        self.batch
    }
    /// Sequence length n.
    pub fn len(&self) -> usize {
        self.n
    }
    /// Always false: batches are never empty.
    pub fn is_empty(&self) -> bool {
        false
    }
    /// Token dimension d.
    pub fn dim(&self) -> usize {
        self.d
    }
    /// `[batch, n, d]`.
    pub fn shape(&self) -> [usize; 3] {
        [self.batch, self.n, self.d]
    }
    /// Row-major values.
    pub fn as_slice(&self) -> &[T] {
        &self.data
    }
    /// Row-major values, owned.
    pub fn into_vec(self) -> Vec<T> {
        self.data
    }
    /// Sequence `b` as `n × d` row-major values.
    pub fn sequence(&self, b: usize) -> &[T] {
        let len = self.n * self.d;
        &self.data[b * len..(b + 1) * len]
    }
    /// Token `k` of sequence `b` (the paper's column `X^{(b)}_{:,k}`).
    pub fn token(&self, b: usize, k: usize) -> &[T] {
        let start = (b * self.n + k) * self.d;
        &self.data[start..start + self.d]
    }

    /// Element-wise conversion to another element type (see [`Matrix::convert`]). Fails when a value
    /// does not fit the target type's range.
    pub fn convert<U: Real>(&self) -> Result<Batch<U>> {
        Batch::new(self.batch, self.n, self.d, self.data.iter().map(convert_value).collect())
    }

    /// The sub-batch of sequences `range`.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Result<Self> {
        if range.start >= range.end || range.end > self.batch {
            return Err(Error::param("range", format!("{range:?} is not a non-empty sub-range of 0..{}", self.batch)));
        }
        let len = self.n * self.d;
        Ok(Self { batch: range.len(), n: self.n, d: self.d, data: self.data[range.start * len..range.end * len].to_vec() })
    }
}
