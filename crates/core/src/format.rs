//! Reading and writing models and datasets: safetensors (`f32`/`f64`) and the exact JSON encoding.
//!
//! The layout is documented for users in `docs/format.md`. In short:
//!
//! * Model tensors use the paper's shapes: `blocks.{b}.attn.{h}.w_q` `[s,d]`, `.w_k` `[s,d]`, `.w_v`
//!   `[s,d]`, `.w_o` `[d,s]`, optional `.b_q` `[s]`; `blocks.{b}.ffn.w1` `[q,d]`, `.b1` `[q]`, `.w2`
//!   `[d,q]`, `.b2` `[d]`. A factored weight `W = U Vᵀ` is stored as `<name>.u` `[rows,r]` and
//!   `<name>.v` `[cols,r]` instead of `<name>`; the loader accepts either form for every weight.
//! * Metadata (`__metadata__` in safetensors): `format = boltzformer/1`, `kind = model`, `dim`,
//!   `blocks`, per block `blocks.{b}.attn.kind = softmax|hardmax`, `blocks.{b}.attn.causal = true|false`,
//!   `blocks.{b}.attn.heads`, and `construction` plus `construction.<param>` entries.
//! * Datasets: `inputs` `[N,n,d]`, `targets` `[N,n,d]`, metadata `kind = dataset`, `spec` (the generator
//!   parameters as JSON) and `seed`.
//! * **Exact encoding** for values beyond f64: a JSON file `{"format": "boltzformer-exact/1", "metadata":
//!   {..same keys..}, "tensors": {name: {"shape": [..], "values": ["0x1b3p-12", ..]}}}` with every value an
//!   exact hexadecimal float ([`ExactFloat`]). Loaders detect the encoding from the file's first byte.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype, TensorView};
use safetensors::SafeTensors;

use crate::dataset::{Dataset, DatasetSpec};
use crate::error::{Error, Result};
use crate::exact::{ExactConvert, ExactFloat};
use crate::model::{Attention, AttentionHead, Block, FeedForward, Model, ModelInfo, Normalizer, Site, Weight};
use crate::npy::{NpyArray, NpyData};
use crate::real::Real;
use crate::tensor::{Batch, Matrix};

/// Value of the `format` metadata key of safetensors files.
pub const FORMAT: &str = "boltzformer/1";
/// Value of the `format` key of exact JSON files.
pub const EXACT_FORMAT: &str = "boltzformer-exact/1";

/// How values are encoded on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// safetensors `F32`; every value must be exactly an f32.
    F32,
    /// safetensors `F64`; every value must be exactly an f64.
    F64,
    /// Exact JSON (any precision).
    Exact,
}

/// What to do when a stored value does not fit the element type exactly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rounding {
    /// Fail with [`Error::Inexact`].
    Forbid,
    /// Round to nearest (ties to even).
    Nearest,
}

/// Named tensors with metadata: the common layer under model and dataset files.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorDict<T> {
    /// String metadata.
    pub metadata: BTreeMap<String, String>,
    /// `name → (shape, row-major values)`.
    pub tensors: BTreeMap<String, (Vec<usize>, Vec<T>)>,
}

impl<T> Default for TensorDict<T> {
    fn default() -> Self {
        Self { metadata: BTreeMap::new(), tensors: BTreeMap::new() }
    }
}

impl<T: Storable> TensorDict<T> {
    fn take(&mut self, name: &str) -> Option<(Vec<usize>, Vec<T>)> {
        self.tensors.remove(name)
    }

    fn meta(&self, key: &str) -> Result<&str> {
        self.metadata.get(key).map(String::as_str).ok_or_else(|| Error::Format(format!("missing metadata key {key:?}")))
    }
}

/// Values that can be stored: every [`Real`], and [`ExactFloat`] itself (for tools that move exact
/// values without arithmetic).
pub trait Storable: ExactConvert + Clone {
    /// Name used in error messages.
    const DTYPE: &'static str;
    /// Whether the value is finite (stored values must be).
    fn is_finite(&self) -> bool;
}

impl<T: Real> Storable for T {
    const DTYPE: &'static str = <T as Real>::DTYPE;
    fn is_finite(&self) -> bool {
        Real::is_finite(self)
    }
}

impl Storable for ExactFloat {
    const DTYPE: &'static str = "exact";
    fn is_finite(&self) -> bool {
        true
    }
}

/// Encodes `dict` in `encoding`.
pub fn encode<T: Storable>(dict: &TensorDict<T>, encoding: Encoding) -> Result<Vec<u8>> {
    for (name, (_, values)) in &dict.tensors {
        if let Some(i) = values.iter().position(|x| !x.is_finite()) {
            return Err(Error::NonFinite { location: format!("{name}[{i}]") });
        }
    }
    match encoding {
        Encoding::Exact => {
            let tensors: serde_json::Map<String, serde_json::Value> = dict
                .tensors
                .iter()
                .map(|(name, (shape, values))| {
                    let values: Vec<String> = values.iter().map(|x| x.to_exact().to_string()).collect();
                    (name.clone(), serde_json::json!({ "shape": shape, "values": values }))
                })
                .collect();
            let doc = serde_json::json!({ "format": EXACT_FORMAT, "metadata": dict.metadata, "tensors": tensors });
            serde_json::to_vec(&doc).map_err(|e| Error::Format(e.to_string()))
        }
        Encoding::F32 | Encoding::F64 => {
            let mut buffers: Vec<(String, Dtype, Vec<usize>, Vec<u8>)> = Vec::new();
            for (name, (shape, values)) in &dict.tensors {
                let mut bytes = Vec::with_capacity(values.len() * 8);
                for (i, x) in values.iter().enumerate() {
                    let e = x.to_exact();
                    let inexact = |dtype| Error::Inexact { tensor: name.clone(), index: i, dtype };
                    if encoding == Encoding::F64 {
                        let v = f64::from_exact(&e);
                        if v.to_exact() != e {
                            return Err(inexact("f64"));
                        }
                        bytes.extend_from_slice(&v.to_le_bytes());
                    } else {
                        let v = f32::from_exact(&e);
                        if v.to_exact() != e {
                            return Err(inexact("f32"));
                        }
                        bytes.extend_from_slice(&v.to_le_bytes());
                    }
                }
                let dtype = if encoding == Encoding::F64 { Dtype::F64 } else { Dtype::F32 };
                buffers.push((name.clone(), dtype, shape.clone(), bytes));
            }
            let views = buffers
                .iter()
                .map(|(name, dtype, shape, bytes)| {
                    TensorView::new(*dtype, shape.clone(), bytes).map(|v| (name.clone(), v)).map_err(|e| Error::Format(e.to_string()))
                })
                .collect::<Result<Vec<_>>>()?;
            let meta: HashMap<String, String> = dict.metadata.clone().into_iter().collect();
            safetensors::serialize(views, Some(meta)).map_err(|e| Error::Format(e.to_string()))
        }
    }
}

/// Whether `bytes` are the exact JSON encoding rather than safetensors. A safetensors file starts with its
/// header length `n` (8 bytes, little-endian) followed by the header, which is a JSON object: when the
/// 9th byte is `{` and `8 + n` fits in the file it is safetensors, whatever its first bytes look like (a
/// header length such as 0x7b or 0x7b20 begins with `{` or ` {`). Otherwise a file whose first
/// non-whitespace byte is `{` is exact JSON (eight bytes of JSON text read as a length exceed any file).
pub fn is_exact_json(bytes: &[u8]) -> bool {
    if let (Some(len), Some(&b'{')) = (bytes.get(..8), bytes.get(8)) {
        let n = u64::from_le_bytes(len.try_into().unwrap_or([0xff; 8]));
        if n.checked_add(8).is_some_and(|end| end <= bytes.len() as u64) {
            return false;
        }
    }
    bytes.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'{')
}

/// Decodes a file written by [`encode`] in any encoding (detected by [`is_exact_json`]).
pub fn decode<T: Storable>(bytes: &[u8], rounding: Rounding) -> Result<TensorDict<T>> {
    let convert = |name: &str, i: usize, e: &ExactFloat| -> Result<T> {
        let v = T::from_exact(e);
        if !v.is_finite() {
            return Err(Error::Format(format!("value {i} of {name} ({e}) is out of range for {}", T::DTYPE)));
        }
        if rounding == Rounding::Forbid && v.to_exact() != *e {
            return Err(Error::Inexact { tensor: name.to_string(), index: i, dtype: T::DTYPE });
        }
        Ok(v)
    };
    let mut dict = TensorDict::default();
    if is_exact_json(bytes) {
        let doc: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| Error::Format(format!("exact JSON: {e}")))?;
        if doc.get("format").and_then(|f| f.as_str()) != Some(EXACT_FORMAT) {
            return Err(Error::Format(format!("not a {EXACT_FORMAT} file (missing or wrong \"format\")")));
        }
        if let Some(meta) = doc.get("metadata").and_then(|m| m.as_object()) {
            for (k, v) in meta {
                let v = v.as_str().ok_or_else(|| Error::Format(format!("metadata {k:?} is not a string")))?;
                dict.metadata.insert(k.clone(), v.to_string());
            }
        }
        let tensors = doc.get("tensors").and_then(|t| t.as_object()).ok_or_else(|| Error::Format("missing \"tensors\"".into()))?;
        for (name, t) in tensors {
            let bad = |what: &str| Error::Format(format!("tensor {name}: {what}"));
            let shape: Vec<usize> = t
                .get("shape")
                .and_then(|s| s.as_array())
                .ok_or_else(|| bad("missing shape"))?
                .iter()
                .map(|x| x.as_u64().map(|x| x as usize).ok_or_else(|| bad("shape entries must be non-negative integers")))
                .collect::<Result<_>>()?;
            let raw = t.get("values").and_then(|v| v.as_array()).ok_or_else(|| bad("missing values"))?;
            if raw.len() != shape.iter().product::<usize>() {
                return Err(bad(&format!("{} values for shape {shape:?}", raw.len())));
            }
            let values = raw
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let s = v.as_str().ok_or_else(|| bad("values must be hex-float strings"))?;
                    convert(name, i, &ExactFloat::parse(s)?)
                })
                .collect::<Result<Vec<T>>>()?;
            dict.tensors.insert(name.clone(), (shape, values));
        }
    } else {
        let st = SafeTensors::deserialize(bytes).map_err(|e| Error::Format(format!("safetensors: {e}")))?;
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| Error::Format(format!("safetensors: {e}")))?;
        if let Some(meta) = header.metadata() {
            dict.metadata.extend(meta.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        for (name, view) in st.tensors() {
            let data = view.data();
            let raw: Vec<f64> = match view.dtype() {
                Dtype::F64 => data.chunks_exact(8).map(|c| f64::from_le_bytes(c.try_into().expect("invariant: 8-byte chunk"))).collect(),
                Dtype::F32 => {
                    data.chunks_exact(4).map(|c| f64::from(f32::from_le_bytes(c.try_into().expect("invariant: 4-byte chunk")))).collect()
                }
                other => return Err(Error::Format(format!("tensor {name}: dtype {other:?} is not supported (use F32 or F64)"))),
            };
            let values = raw
                .iter()
                .enumerate()
                .map(|(i, x)| match f64::is_finite(*x) {
                    true => convert(&name, i, &x.to_exact()),
                    false => Err(Error::NonFinite { location: format!("{name}[{i}]") }),
                })
                .collect::<Result<Vec<T>>>()?;
            dict.tensors.insert(name.clone(), (view.shape().to_vec(), values));
        }
    }
    Ok(dict)
}

/// What kind of file system entry `meta` is, in words, for a file that is not a regular file.
fn special_kind(meta: &std::fs::Metadata) -> &'static str {
    let t = meta.file_type();
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        match () {
            _ if t.is_fifo() => return "a FIFO (named pipe)",
            _ if t.is_socket() => return "a socket",
            _ if t.is_block_device() => return "a block device",
            _ if t.is_char_device() => return "a character device",
            _ => {}
        }
    }
    match () {
        _ if t.is_dir() => "a directory",
        _ if t.is_symlink() => "a symbolic link",
        _ => "not a regular file",
    }
}

/// Whether `meta` is a character device (`/dev/null`, a terminal), which a write goes through to.
fn is_char_device(meta: &std::fs::Metadata) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt as _;
        meta.file_type().is_char_device()
    }
    #[cfg(not(unix))]
    {
        let _ = meta;
        false
    }
}

fn refused(path: &Path, why: String) -> Error {
    Error::Io { path: path.display().to_string(), cause: std::io::Error::other(why) }
}

/// Creates the directory `path` goes into (and its parents). Where an ancestor exists but is a file, the
/// error names it (the OS only says "File exists" or "Not a directory").
pub fn create_parent(path: &Path) -> Result<()> {
    let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) else { return Ok(()) };
    std::fs::create_dir_all(parent).map_err(|cause| match parent.ancestors().find(|a| std::fs::metadata(a).is_ok_and(|m| !m.is_dir())) {
        Some(file) => refused(path, format!("cannot create its directory: {} is a file, not a directory", file.display())),
        None => Error::Io { path: path.display().to_string(), cause },
    })
}

/// Where a write to a path goes ([`write_target`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteTarget {
    /// A regular file, new or replaced atomically: the path itself, or a symbolic link's target.
    File(std::path::PathBuf),
    /// A character device (`/dev/null`), written through.
    Device,
}

/// Where writing `path` goes, refusing what must not be replaced: a symbolic link is followed (a dangling
/// one is refused), a character device is written through, and a directory, FIFO, socket or block device
/// is refused by name. Checked by every writer before its work ([`write_atomic`], the CLI's output flags).
pub fn write_target(path: &Path) -> Result<WriteTarget> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => match std::fs::canonicalize(path) {
            Ok(target) if !target.is_file() && target.exists() => write_target(&target),
            Ok(target) => Ok(WriteTarget::File(target)),
            Err(e) => Err(refused(path, format!("a symbolic link whose target cannot be resolved ({e}); refusing to replace the link"))),
        },
        Ok(meta) if meta.file_type().is_file() => Ok(WriteTarget::File(path.to_path_buf())),
        Ok(meta) if is_char_device(&meta) => Ok(WriteTarget::Device),
        Ok(meta) => Err(refused(path, format!("is {}, not a regular file: refusing to replace it", special_kind(&meta)))),
        Err(_) => Ok(WriteTarget::File(path.to_path_buf())),
    }
}

/// Writes `bytes` to `path` atomically (temporary file in the same directory, then rename), creating
/// parent directories. An interrupted write never leaves a truncated file at `path`. What is already at
/// `path` is never replaced by a regular file unless it is one ([`write_target`]: a link's target is
/// written, the link stays; `/dev/null` is written through; other special files are refused).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let path = match write_target(path)? {
        WriteTarget::Device => {
            let io = |cause| Error::Io { path: path.display().to_string(), cause };
            return std::fs::OpenOptions::new().write(true).open(path).and_then(|mut f| f.write_all(bytes)).map_err(io);
        }
        WriteTarget::File(p) => p,
    };
    let path = path.as_path();
    let io = |cause| Error::Io { path: path.display().to_string(), cause };
    create_parent(path)?;
    let tmp = temp_sibling(path);
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    match written.and_then(|()| std::fs::rename(&tmp, path)) {
        Ok(()) => {
            sync_parent(path);
            Ok(())
        }
        Err(e) => {
            // Never leave the temporary file behind on an error path.
            let _ = std::fs::remove_file(&tmp);
            Err(io(e))
        }
    }
}

/// The marker in the names of temporary files (see [`temp_sibling`]).
pub const TEMP_MARKER: &str = ".boltz-tmp";

/// A temporary file next to `path` for an atomic write: `.<name>.<pid>.boltz-tmp.<ext>` in the same
/// directory (so the final rename stays on one file system), keeping the extension last for writers that
/// pick the format from it (PNG/SVG). A file of this form whose process is gone is stale ([`stale_temp_pid`]).
pub fn temp_sibling(path: &Path) -> std::path::PathBuf {
    let file_name = path.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default();
    let ext = path.extension().map(|e| e.to_string_lossy().into_owned()).unwrap_or_else(|| "tmp".into());
    path.with_file_name(format!(".{file_name}.{}{TEMP_MARKER}.{ext}", std::process::id()))
}

/// The process id of a temporary file name made by [`temp_sibling`], `None` for other names.
pub fn stale_temp_pid(file_name: &str) -> Option<u32> {
    let (head, _ext) = file_name.strip_prefix('.')?.split_once(TEMP_MARKER)?;
    head.rsplit_once('.')?.1.parse().ok()
}

/// Makes a rename in `path`'s directory durable (best effort; a no-op where directories cannot be synced).
pub fn sync_parent(path: &Path) {
    let parent = path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    if let Ok(dir) = std::fs::File::open(parent) {
        let _ = dir.sync_all();
    }
}

/// Reads a whole file; anything but a regular file (after following links) is refused by type before it
/// is opened (a FIFO would block forever, a directory cannot be read).
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    let io = |cause| Error::Io { path: path.display().to_string(), cause };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_file() {
        return Err(refused(path, format!("is {}, not a regular file", special_kind(&meta))));
    }
    std::fs::read(path).map_err(io)
}

// ---------------------------------------------------------------------------------------------------
// Models

fn put_weight<T: Real>(dict: &mut TensorDict<T>, name: &str, w: &Weight<T>) {
    match w {
        Weight::Dense(m) => {
            dict.tensors.insert(name.to_string(), (vec![m.rows(), m.cols()], m.as_slice().to_vec()));
        }
        Weight::Factored { u, v } => {
            dict.tensors.insert(format!("{name}.u"), (vec![u.rows(), u.cols()], u.as_slice().to_vec()));
            dict.tensors.insert(format!("{name}.v"), (vec![v.rows(), v.cols()], v.as_slice().to_vec()));
        }
    }
}

fn take_matrix<T: Real>(dict: &mut TensorDict<T>, name: &str) -> Result<Option<Matrix<T>>> {
    match dict.take(name) {
        None => Ok(None),
        Some((shape, values)) => match shape[..] {
            [r, c] => Matrix::new(r, c, values).map(Some),
            _ => Err(Error::shape(name, "a 2-D tensor", format!("{shape:?}"))),
        },
    }
}

fn take_vector<T: Real>(dict: &mut TensorDict<T>, name: &str) -> Result<Option<Vec<T>>> {
    match dict.take(name) {
        None => Ok(None),
        Some((shape, values)) if shape.len() == 1 => Ok(Some(values)),
        Some((shape, _)) => Err(Error::shape(name, "a 1-D tensor", format!("{shape:?}"))),
    }
}

fn take_weight<T: Real>(dict: &mut TensorDict<T>, name: &str) -> Result<Option<Weight<T>>> {
    let dense = take_matrix(dict, name)?;
    let u = take_matrix(dict, &format!("{name}.u"))?;
    let v = take_matrix(dict, &format!("{name}.v"))?;
    match (dense, u, v) {
        (Some(m), None, None) => Ok(Some(Weight::Dense(m))),
        (None, Some(u), Some(v)) => Ok(Some(Weight::Factored { u, v })),
        (None, None, None) => Ok(None),
        (Some(_), _, _) => Err(Error::Format(format!("{name} is stored both dense and factored"))),
        _ => Err(Error::Format(format!("{name}: factored weights need both {name}.u and {name}.v"))),
    }
}

fn require<X>(x: Option<X>, name: &str) -> Result<X> {
    x.ok_or_else(|| Error::Format(format!("missing tensor {name}")))
}

fn parse_meta<X: std::str::FromStr>(dict: &TensorDict<impl Storable>, key: &str) -> Result<X> {
    let v = dict.meta(key)?;
    v.parse().map_err(|_| Error::Format(format!("metadata {key:?} = {v:?} is not valid")))
}

/// The tensors and metadata of `model` (see the module docs for names).
pub fn model_to_dict<T: Real>(model: &Model<T>) -> TensorDict<T> {
    let mut dict = TensorDict::default();
    let meta = &mut dict.metadata;
    meta.insert("format".into(), FORMAT.into());
    meta.insert("kind".into(), "model".into());
    meta.insert("dim".into(), model.dim().to_string());
    meta.insert("blocks".into(), model.blocks().len().to_string());
    meta.insert("construction".into(), model.info().construction.clone());
    for (k, v) in &model.info().params {
        meta.insert(format!("construction.{k}"), v.clone());
    }
    for (b, block) in model.blocks().iter().enumerate() {
        if let Some(attn) = &block.attention {
            dict.metadata.insert(format!("blocks.{b}.attn.kind"), attn.normalizer.as_str().into());
            dict.metadata.insert(format!("blocks.{b}.attn.causal"), attn.causal.to_string());
            dict.metadata.insert(format!("blocks.{b}.attn.heads"), attn.heads.len().to_string());
        }
    }
    for (site, head) in model.stack().heads() {
        if let Some(bq) = &head.b_q {
            dict.tensors.insert(site.tensor("b_q"), (vec![bq.len()], bq.clone()));
        }
    }
    for (site, ffn) in model.stack().ffns() {
        dict.tensors.insert(site.tensor("b1"), (vec![ffn.b1.len()], ffn.b1.clone()));
        dict.tensors.insert(site.tensor("b2"), (vec![ffn.b2.len()], ffn.b2.clone()));
    }
    for (name, w) in model.named_weights() {
        put_weight(&mut dict, &name, w);
    }
    dict
}

/// Rebuilds and validates a model from its tensors; unknown tensors are an error.
pub fn model_from_dict<T: Real>(mut dict: TensorDict<T>) -> Result<Model<T>> {
    if dict.meta("format")? != FORMAT || dict.meta("kind")? != "model" {
        return Err(Error::Format(format!("not a {FORMAT} model (metadata format/kind)")));
    }
    let dim: usize = parse_meta(&dict, "dim")?;
    let num_blocks: usize = parse_meta(&dict, "blocks")?;
    let mut blocks = Vec::with_capacity(num_blocks);
    for b in 0..num_blocks {
        let attention = if dict.metadata.contains_key(&format!("blocks.{b}.attn.kind")) {
            let normalizer: Normalizer = dict.meta(&format!("blocks.{b}.attn.kind"))?.parse()?;
            let causal: bool = parse_meta(&dict, &format!("blocks.{b}.attn.causal"))?;
            let heads: usize = parse_meta(&dict, &format!("blocks.{b}.attn.heads"))?;
            let mut hs = Vec::with_capacity(heads);
            for h in 0..heads {
                let site = Site::head(b, h);
                let mut w = |n: &str| -> Result<Weight<T>> { require(take_weight(&mut dict, &site.tensor(n))?, &site.tensor(n)) };
                let (w_q, w_k, w_v, w_o) = (w("w_q")?, w("w_k")?, w("w_v")?, w("w_o")?);
                let b_q = take_vector(&mut dict, &site.tensor("b_q"))?;
                hs.push(AttentionHead { w_q, w_k, w_v, w_o, b_q });
            }
            Some(Attention { heads: hs, normalizer, causal })
        } else {
            None
        };
        let t = |name: &str| Site::ffn(b).tensor(name);
        let ffn = match take_weight(&mut dict, &t("w1"))? {
            None => None,
            Some(w1) => Some(FeedForward {
                w1,
                b1: require(take_vector(&mut dict, &t("b1"))?, &t("b1"))?,
                w2: require(take_weight(&mut dict, &t("w2"))?, &t("w2"))?,
                b2: require(take_vector(&mut dict, &t("b2"))?, &t("b2"))?,
            }),
        };
        blocks.push(Block { attention, ffn });
    }
    if let Some(name) = dict.tensors.keys().next() {
        return Err(Error::Format(format!("unknown tensor {name} (not part of a {num_blocks}-block model)")));
    }
    let mut info = ModelInfo::named(dict.metadata.get("construction").cloned().unwrap_or_default());
    for (k, v) in &dict.metadata {
        if let Some(param) = k.strip_prefix("construction.") {
            info.params.insert(param.to_string(), v.clone());
        }
    }
    Model::new(dim, blocks, info)
}

/// Writes `model` to `path` (atomically).
pub fn save_model<T: Real>(model: &Model<T>, path: &Path, encoding: Encoding) -> Result<()> {
    write_atomic(path, &encode(&model_to_dict(model), encoding)?)
}

/// Serde `deserialize_with` for an `f64` written by serde_json: `null` (how serde_json writes NaN and ±∞)
/// reads back as NaN. Used by every result row with a float that can be non-finite.
pub fn nan_if_null<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<f64, D::Error> {
    Ok(<Option<f64> as serde::Deserialize>::deserialize(d)?.unwrap_or(f64::NAN))
}

/// Reads a model written in any encoding.
pub fn load_model<T: Real>(path: &Path, rounding: Rounding) -> Result<Model<T>> {
    model_from_dict(decode(&read_file(path)?, rounding)?)
}

// ---------------------------------------------------------------------------------------------------
// Datasets

/// The tensors and metadata of `dataset`.
pub fn dataset_to_dict<T: Real>(dataset: &Dataset<T>) -> Result<TensorDict<T>> {
    let mut dict = TensorDict::default();
    dict.metadata.insert("format".into(), FORMAT.into());
    dict.metadata.insert("kind".into(), "dataset".into());
    if let Some(spec) = &dataset.spec {
        dict.metadata.insert("spec".into(), serde_json::to_string(spec).map_err(|e| Error::Format(e.to_string()))?);
        dict.metadata.insert("seed".into(), spec.seed.to_string());
    }
    dict.tensors.insert("inputs".into(), (dataset.inputs.shape().to_vec(), dataset.inputs.as_slice().to_vec()));
    dict.tensors.insert("targets".into(), (dataset.targets.shape().to_vec(), dataset.targets.as_slice().to_vec()));
    Ok(dict)
}

/// Rebuilds and validates a dataset from its tensors.
pub fn dataset_from_dict<T: Real>(mut dict: TensorDict<T>) -> Result<Dataset<T>> {
    if dict.meta("format")? != FORMAT || dict.meta("kind")? != "dataset" {
        return Err(Error::Format(format!("not a {FORMAT} dataset (metadata format/kind)")));
    }
    let spec = match dict.metadata.get("spec") {
        Some(s) => Some(serde_json::from_str::<DatasetSpec>(s).map_err(|e| Error::Format(format!("metadata spec: {e}")))?),
        None => None,
    };
    let mut batch = |name: &str| -> Result<Batch<T>> {
        let (shape, values) = require(dict.take(name), name)?;
        match shape[..] {
            [b, n, d] => Batch::new(b, n, d, values),
            _ => Err(Error::shape(name, "[N, n, d]", format!("{shape:?}"))),
        }
    };
    let (inputs, targets) = (batch("inputs")?, batch("targets")?);
    if let Some(name) = dict.tensors.keys().next() {
        return Err(Error::Format(format!("unknown tensor {name} in a dataset file")));
    }
    Dataset::new(inputs, targets, spec)
}

/// Writes `dataset` to `path` (atomically).
pub fn save_dataset<T: Real>(dataset: &Dataset<T>, path: &Path, encoding: Encoding) -> Result<()> {
    write_atomic(path, &encode(&dataset_to_dict(dataset)?, encoding)?)
}

/// Reads a dataset written in any encoding.
pub fn load_dataset<T: Real>(path: &Path, rounding: Rounding) -> Result<Dataset<T>> {
    dataset_from_dict(decode(&read_file(path)?, rounding)?)
}

// ---------------------------------------------------------------------------------------------------
// Datasets from NumPy

/// How a dataset's outputs are given in NumPy arrays.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outputs {
    /// `targets` `[N, n, d]` floats, as the boltz format stores them.
    Targets,
    /// `labels` `[N, n]` integers: token `(s, p)`'s target is the label in coordinate 0 and zeros elsewhere
    /// (the generator's convention, `DatasetSpec::label_coord = 0`).
    Labels,
}

/// A dataset from NumPy arrays: `inputs` `[N, n, d]` (floats, or integers exact in f64) and `outputs`
/// as `kind` says. Errors name the array and, for a non-finite value, its `[sequence, position,
/// coordinate]` (`origin` names where the inputs came from, `outputs_origin` the targets or labels); empty
/// arrays are refused.
pub fn dataset_from_arrays(
    inputs: &NpyArray,
    outputs: &NpyArray,
    kind: Outputs,
    origin: &str,
    outputs_origin: &str,
) -> Result<Dataset<f64>> {
    let [big_n, n, d] = inputs.shape[..] else {
        return Err(Error::shape(format!("{origin}: inputs"), "[N, n, d]", format!("{:?}", inputs.shape)));
    };
    if big_n == 0 || n == 0 || d == 0 {
        return Err(Error::ZeroSize { what: "dataset (N, n and d must be at least 1)" });
    }
    let finite = |at: &str, name: &str, values: Vec<f64>| -> Result<Vec<f64>> {
        match values.iter().position(|x| !f64::is_finite(*x)) {
            Some(i) => Err(Error::NonFinite { location: format!("{at}: {name}[{}, {}, {}]", i / (n * d), (i / d) % n, i % d) }),
            None => Ok(values),
        }
    };
    let x = finite(origin, "inputs", inputs.to_f64(&format!("{origin}: inputs"))?)?;
    let origin = outputs_origin;
    let y = match kind {
        Outputs::Targets => {
            if outputs.shape != inputs.shape {
                return Err(Error::shape(
                    format!("{origin}: targets"),
                    format!("{:?} (the inputs' shape)", inputs.shape),
                    format!("{:?}", outputs.shape),
                ));
            }
            finite(origin, "targets", outputs.to_f64(&format!("{origin}: targets"))?)?
        }
        Outputs::Labels => {
            if outputs.shape != [big_n, n] {
                return Err(Error::shape(
                    format!("{origin}: labels"),
                    format!("[{big_n}, {n}] (the inputs' N, n)"),
                    format!("{:?}", outputs.shape),
                ));
            }
            if !matches!(outputs.data, NpyData::Int(_)) {
                return Err(Error::Format(format!("{origin}: labels must be integers (got a {} array)", outputs.kind())));
            }
            let labels = outputs.to_f64(&format!("{origin}: labels"))?;
            let mut y = vec![0.0; big_n * n * d];
            for (t, label) in labels.iter().enumerate() {
                y[t * d] = *label;
            }
            y
        }
    };
    Dataset::new(Batch::new(big_n, n, d, x)?, Batch::new(big_n, n, d, y)?, None)
}

/// Reads a dataset from `path`: the boltz format (`.safetensors`, exact `.json`; see `docs/format.md`), a
/// `.npz` with arrays `inputs` and `targets` or `labels`, or an `.npy` of inputs with `outputs`
/// (`.npy` targets or labels, as `kind` says). Values are read exactly (no rounding).
pub fn load_dataset_file(path: &Path, outputs: Option<(&Path, Outputs)>) -> Result<Dataset<f64>> {
    let origin = path.display().to_string();
    let ext = path.extension().and_then(|e| e.to_str()).unwrap_or("").to_ascii_lowercase();
    match (ext.as_str(), outputs) {
        ("npz", None) => {
            let arrays = crate::npy::parse_npz(&read_file(path)?, &origin)?;
            let inputs = arrays
                .get("inputs")
                .ok_or_else(|| Error::Format(format!("{origin}: no array `inputs` (arrays: {:?})", arrays.keys().collect::<Vec<_>>())))?;
            let (outputs, kind) = match (arrays.get("targets"), arrays.get("labels")) {
                (Some(t), None) => (t, Outputs::Targets),
                (None, Some(l)) => (l, Outputs::Labels),
                (Some(_), Some(_)) => return Err(Error::Format(format!("{origin}: both `targets` and `labels`; keep one"))),
                (None, None) => return Err(Error::Format(format!("{origin}: no array `targets` or `labels`"))),
            };
            if let Some(other) = arrays.keys().find(|k| !["inputs", "targets", "labels"].contains(&k.as_str())) {
                return Err(Error::Format(format!("{origin}: unknown array `{other}` (inputs, targets or labels)")));
            }
            dataset_from_arrays(inputs, outputs, kind, &origin, &origin)
        }
        ("npy", Some((out_path, kind))) => {
            let inputs = crate::npy::parse_npy(&read_file(path)?, &origin)?;
            let outputs = crate::npy::parse_npy(&read_file(out_path)?, &out_path.display().to_string())?;
            dataset_from_arrays(&inputs, &outputs, kind, &origin, &out_path.display().to_string())
        }
        ("npy", None) => Err(Error::Format(format!("{origin}: an .npy holds the inputs only; give the labels or targets .npy too"))),
        (_, Some(_)) => Err(Error::Format(format!("{origin}: separate labels/targets go with an .npy of inputs only"))),
        _ => load_dataset(path, Rounding::Forbid),
    }
}
