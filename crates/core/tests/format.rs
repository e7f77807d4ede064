//! Round trips of models and datasets through safetensors (f32, f64) and the exact JSON encoding, and the
//! errors for files that do not fit.

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use boltz_core::conformance::{random_batch, random_model, RandomModelSpec};
use boltz_core::format::{self, decode, encode, Encoding, Rounding, TensorDict};
use boltz_core::rng::SeededRng;
use boltz_core::{Dataset, DatasetSpec, Error, ExactFloat, Model, ModelInfo, Normalizer, Real};

fn tmp(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("boltz-format-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn mixed_model(seed: u64) -> Model<f64> {
    // Two blocks: a factored, biased, causal hardmax block and a dense softmax block, both with FFNs.
    let mut rng = SeededRng::new(seed);
    let spec = |normalizer, causal, rank| RandomModelSpec {
        normalizer,
        causal,
        query_bias: causal,
        factor_rank: rank,
        ..RandomModelSpec::sized(3, 1, 2, 2, 4)
    };
    let a = random_model(&mut rng, &spec(Normalizer::Hardmax, true, Some(1)));
    let b = random_model(&mut rng, &spec(Normalizer::Softmax, false, None));
    let blocks = [a.blocks(), b.blocks()].concat();
    Model::new(3, blocks, ModelInfo::named("test-mixed").with("lambda", "0x1p+3").with("seed", seed)).unwrap()
}

fn round_trip<T: Real>(model: &Model<T>, encoding: Encoding, name: &str) -> Model<T> {
    let path = tmp(name);
    format::save_model(model, &path, encoding).unwrap();
    format::load_model::<T>(&path, Rounding::Forbid).unwrap()
}

#[test]
fn models_round_trip_in_every_encoding() {
    let m64 = mixed_model(1);
    let m32: Model<f32> = m64.convert().unwrap();
    assert_eq!(round_trip(&m64, Encoding::F64, "m64.safetensors"), m64);
    assert_eq!(round_trip(&m32, Encoding::F32, "m32.safetensors"), m32);
    assert_eq!(round_trip(&m64, Encoding::Exact, "m64.exact.json"), m64);
    assert_eq!(round_trip(&m32, Encoding::Exact, "m32.exact.json"), m32);
    // f32 values are f64 values: an f32 model stored as F64 loads back exactly.
    assert_eq!(round_trip(&m32, Encoding::F64, "m32as64.safetensors"), m32);
    let back = round_trip(&m64, Encoding::F64, "info.safetensors");
    assert_eq!(back.info().construction, "test-mixed");
    assert_eq!(back.info().params.get("lambda").map(String::as_str), Some("0x1p+3"));
}

#[test]
fn rounding_is_explicit() {
    let m64 = mixed_model(2);
    // An f64 model does not fit F32 exactly.
    let err = format::save_model(&m64, &tmp("x.safetensors"), Encoding::F32).unwrap_err();
    assert!(matches!(err, Error::Inexact { dtype: "f32", .. }), "{err}");
    // Loading f64 values into f32 needs Rounding::Nearest.
    let path = tmp("m64b.safetensors");
    format::save_model(&m64, &path, Encoding::F64).unwrap();
    let err = format::load_model::<f32>(&path, Rounding::Forbid).unwrap_err();
    assert!(matches!(err, Error::Inexact { .. }), "{err}");
    let rounded = format::load_model::<f32>(&path, Rounding::Nearest).unwrap();
    assert_eq!(rounded, m64.convert::<f32>().unwrap());
}

#[test]
fn exact_values_of_4096_bits_round_trip() {
    let mut rng = SeededRng::new(5);
    let mut dict: TensorDict<ExactFloat> = TensorDict::default();
    for bits in [24u64, 53, 4096] {
        let values: Vec<ExactFloat> = (0..6)
            .map(|i| {
                let limbs = bits.div_ceil(64) as usize;
                let mut m: Vec<u64> = (0..limbs).map(|_| rng.next_u64()).collect();
                let top = bits - 64 * (limbs as u64 - 1);
                if top < 64 {
                    m[limbs - 1] &= (1u64 << top) - 1;
                }
                m[limbs - 1] |= 1u64 << (top - 1);
                m[0] |= 1;
                ExactFloat::from_parts(i % 2 == 0, m, -(bits as i64) + i as i64 * 1000 - 2000)
            })
            .collect();
        assert!(values.iter().all(|v| v.mantissa_bits() == bits));
        dict.tensors.insert(format!("t{bits}"), (vec![2, 3], values));
    }
    dict.metadata.insert("format".into(), "boltzformer/1".into());
    let bytes = encode(&dict, Encoding::Exact).unwrap();
    let back: TensorDict<ExactFloat> = decode(&bytes, Rounding::Forbid).unwrap();
    assert_eq!(back, dict);
    // Into f64 the long values round (Nearest) or are refused (Forbid).
    assert!(matches!(decode::<f64>(&bytes, Rounding::Forbid), Err(Error::Inexact { .. }) | Err(Error::Format(_))));
}

#[test]
fn datasets_round_trip() {
    let spec = DatasetSpec { sequences: 30, length: 5, dim: 3, vocab: 12, seed: 9, ..Default::default() };
    let d64 = Dataset::<f64>::generate(&spec).unwrap();
    let d32 = Dataset::<f32>::generate(&spec).unwrap();
    for (enc, name) in [(Encoding::F64, "d.safetensors"), (Encoding::Exact, "d.exact.json")] {
        let p = tmp(name);
        format::save_dataset(&d64, &p, enc).unwrap();
        assert_eq!(format::load_dataset::<f64>(&p, Rounding::Forbid).unwrap(), d64);
    }
    let p = tmp("d32.safetensors");
    format::save_dataset(&d32, &p, Encoding::F32).unwrap();
    let back = format::load_dataset::<f32>(&p, Rounding::Forbid).unwrap();
    assert_eq!(back, d32);
    assert_eq!(back.spec.as_ref().map(|s| s.seed), Some(9));
}

#[test]
fn malformed_files_are_errors() {
    let m = mixed_model(3);
    let mut dict = format::model_to_dict(&m);
    dict.tensors.insert("blocks.7.ffn.w1".into(), (vec![1, 1], vec![1.0]));
    let err = format::model_from_dict(dict).unwrap_err();
    assert!(err.to_string().contains("unknown tensor blocks.7.ffn.w1"), "{err}");

    let mut dict = format::model_to_dict(&m);
    dict.tensors.remove("blocks.0.attn.1.w_k.v");
    let err = format::model_from_dict(dict).unwrap_err();
    assert!(err.to_string().contains("blocks.0.attn.1.w_k"), "{err}");

    let mut dict = format::model_to_dict(&m);
    dict.tensors.insert("blocks.1.attn.0.w_v".into(), (vec![2, 4], vec![0.0; 8]));
    let err = format::model_from_dict(dict).unwrap_err();
    assert!(matches!(err, Error::ShapeMismatch { ref tensor, .. } if tensor == "blocks.1.attn.0.w_v"), "{err}");

    let mut dict = format::model_to_dict(&m);
    dict.metadata.insert("blocks.0.attn.kind".into(), "sparsemax".into());
    assert!(format::model_from_dict(dict).unwrap_err().to_string().contains("sparsemax"));

    // Non-finite values in a safetensors file name the tensor.
    let mut dict = format::model_to_dict(&m);
    dict.tensors.get_mut("blocks.1.ffn.b2").unwrap().1[1] = 0.0;
    let mut bytes = encode(&dict, Encoding::F64).unwrap();
    // Patch the stored 0.0 of b2[1] into a NaN: find the tensor's bytes through the header.
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let view = st.tensor("blocks.1.ffn.b2").unwrap();
    let offset = view.data().as_ptr() as usize - bytes.as_ptr() as usize + 8;
    bytes[offset..offset + 8].copy_from_slice(&f64::NAN.to_le_bytes());
    let err = decode::<f64>(&bytes, Rounding::Forbid).unwrap_err();
    assert!(matches!(err, Error::NonFinite { ref location } if location == "blocks.1.ffn.b2[1]"), "{err}");

    assert!(matches!(decode::<f64>(b"not a file", Rounding::Forbid), Err(Error::Format(_))));
    assert!(matches!(decode::<f64>(b"{\"format\": \"other\"}", Rounding::Forbid), Err(Error::Format(_))));
    let err = format::load_model::<f64>(&tmp("does-not-exist.safetensors"), Rounding::Forbid).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
}

#[test]
fn forward_of_loaded_model_is_identical() {
    use boltz_core::{Backend, ReferenceBackend};
    let m = mixed_model(4);
    let x = random_batch(&mut SeededRng::new(4), 2, 5, 3);
    let loaded = round_trip(&m, Encoding::Exact, "fw.exact.json");
    assert_eq!(ReferenceBackend.run(&m, &x).unwrap(), ReferenceBackend.run(&loaded, &x).unwrap());
}

/// A safetensors file whose header length begins with the bytes of `{` or ` {` (0x7b, 0x7b20) is still
/// safetensors: detection does not look at the first bytes alone.
#[test]
fn safetensors_whose_length_bytes_look_like_json_are_not_misread() {
    for (len, first) in [(0x7busize, b"{".as_slice()), (0x7b20, b" {".as_slice())] {
        // A header padded with spaces to exactly `len` bytes (JSON allows trailing whitespace).
        let mut header = br#"{"t":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}}"#.to_vec();
        header.resize(len, b' ');
        let mut bytes = (len as u64).to_le_bytes().to_vec();
        bytes.extend_from_slice(&header);
        bytes.extend_from_slice(&1.5f64.to_le_bytes());
        bytes.extend_from_slice(&(-2.0f64).to_le_bytes());
        assert_eq!(&bytes[..first.len()], first);
        assert!(!format::is_exact_json(&bytes));
        let back: TensorDict<f64> = decode(&bytes, Rounding::Forbid).unwrap();
        assert_eq!(back.tensors["t"], (vec![2], vec![1.5, -2.0]));
    }
    // Exact JSON is still detected, leading whitespace included.
    assert!(format::is_exact_json(b"  {\"format\": \"boltzformer-exact/1\"}"));
}

/// Writers never replace what is not a regular file: a link's target is written (the link stays), a
/// character device is written through, other special files and dangling links are refused by name.
/// Readers refuse a FIFO or a directory before opening it (a FIFO would block), and say why once.
#[cfg(unix)]
#[test]
fn special_files_are_written_through_followed_or_refused() {
    use std::os::unix::fs::FileTypeExt as _;
    let dir = tmp("special");
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    // A symbolic link: the target gets the bytes, the link stays a link.
    let target = dir.join("target.json");
    let link = dir.join("link.json");
    std::fs::write(&target, b"old").unwrap();
    std::os::unix::fs::symlink(&target, &link).unwrap();
    format::write_atomic(&link, b"new").unwrap();
    assert!(std::fs::symlink_metadata(&link).unwrap().file_type().is_symlink());
    assert_eq!(std::fs::read(&target).unwrap(), b"new");
    // A dangling link is refused, and stays.
    let dangling = dir.join("dangling.json");
    std::os::unix::fs::symlink(dir.join("nowhere.json"), &dangling).unwrap();
    let e = format::write_atomic(&dangling, b"x").unwrap_err();
    assert!(e.to_string().contains("symbolic link whose target cannot be resolved"), "{e}");
    assert!(std::fs::symlink_metadata(&dangling).unwrap().file_type().is_symlink());
    // A character device is written through and stays a device.
    format::write_atomic(std::path::Path::new("/dev/null"), b"discarded").unwrap();
    assert!(std::fs::metadata("/dev/null").unwrap().file_type().is_char_device());
    // A FIFO: refused for writing and for reading (without blocking), by name.
    let fifo = dir.join("fifo");
    assert!(std::process::Command::new("mkfifo").arg(&fifo).status().unwrap().success());
    let e = format::write_atomic(&fifo, b"x").unwrap_err();
    assert!(e.to_string().contains("is a FIFO (named pipe), not a regular file"), "{e}");
    assert!(std::fs::symlink_metadata(&fifo).unwrap().file_type().is_fifo());
    let e = format::read_file(&fifo).unwrap_err();
    assert!(e.to_string().contains("is a FIFO"), "{e}");
    // A directory: refused either way; the OS's reason appears once in the whole chain.
    let e = format::write_atomic(&dir, b"x").unwrap_err();
    assert!(e.to_string().contains("is a directory"), "{e}");
    let e = format::load_model::<f64>(&dir, Rounding::Forbid).unwrap_err();
    let chain = format!("{:#}", anyhow_like(&e));
    assert_eq!(chain.matches("directory").count(), 1, "{chain}");
    let e = format::load_model::<f64>(&dir.join("missing.json"), Rounding::Forbid).unwrap_err();
    let chain = format!("{:#}", anyhow_like(&e));
    assert_eq!(chain.matches("No such file").count(), 1, "{chain}");
}

/// An error with its whole `source()` chain, as anyhow's `{:#}` prints it (`a: b: c`).
fn anyhow_like(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut next = e.source();
    while let Some(s) = next {
        out += &format!(": {s}");
        next = s.source();
    }
    out
}
