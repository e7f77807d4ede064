//! NumPy's `.npy` and `.npz` files, as `numpy.save`, `numpy.savez` and `numpy.savez_compressed` write
//! them, for datasets made in Python ([`crate::format::load_dataset_file`] turns them into a dataset).
//!
//! * `.npy` (format versions 1.0, 2.0 and 3.0): a header dictionary (`descr`, `fortran_order`, `shape`)
//!   and the raw elements. Element types: floats `f4`/`f8`, integers `i1`…`i8`/`u1`…`u8` and `b1`, little-
//!   or big-endian; C order only (a Fortran-order array is refused, not silently transposed). Floats are
//!   read exactly into f64; integers beyond ±2⁵³ are refused where they become floats.
//! * `.npz`: a zip archive of `.npy` members, stored (`savez`) or deflated (`savez_compressed`); every
//!   member's CRC-32 is checked. ZIP64 archives (members over 4 GiB) are refused with a clear error.
//!
//! Every error names the file (and the member) and what is wrong; nothing is read past the bytes given.

use std::collections::BTreeMap;

use crate::error::{Error, Result};

/// The elements of an array: floats (read exactly into f64) or integers.
#[derive(Clone, Debug, PartialEq)]
pub enum NpyData {
    /// `f4` / `f8` elements.
    Float(Vec<f64>),
    /// `i1`…`i8`, `u1`…`u8` (`u8` values above `i64::MAX` are refused) and `b1` elements.
    Int(Vec<i64>),
}

/// A C-order array read from a `.npy` file.
#[derive(Clone, Debug, PartialEq)]
pub struct NpyArray {
    /// The shape (empty for a scalar).
    pub shape: Vec<usize>,
    /// The elements, row-major.
    pub data: NpyData,
}

impl NpyArray {
    /// The elements as f64: floats as they are, integers exactly (|x| ≤ 2⁵³, else an error naming `what`).
    pub fn to_f64(&self, what: &str) -> Result<Vec<f64>> {
        match &self.data {
            NpyData::Float(v) => Ok(v.clone()),
            NpyData::Int(v) => v
                .iter()
                .enumerate()
                .map(|(i, &x)| {
                    if x.unsigned_abs() <= 1 << 53 {
                        Ok(x as f64)
                    } else {
                        Err(Error::Format(format!("{what}[{i}] = {x} is not exactly representable as a float")))
                    }
                })
                .collect(),
        }
    }

    /// The dtype family, for messages: `float` or `integer`.
    pub fn kind(&self) -> &'static str {
        match self.data {
            NpyData::Float(_) => "float",
            NpyData::Int(_) => "integer",
        }
    }
}

fn bad(origin: &str, what: impl std::fmt::Display) -> Error {
    Error::Format(format!("{origin}: {what}"))
}

/// The value of `key` in a NumPy header dictionary (`'descr': '<f8'`, `'shape': (3, 4)`, …), as text.
fn header_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let start = header.find(&format!("'{key}'"))? + key.len() + 2;
    let rest = header[start..].trim_start().strip_prefix(':')?.trim_start();
    let end = if rest.starts_with('(') {
        rest.find(')')? + 1
    } else if let Some(q) = rest.strip_prefix('\'') {
        q.find('\'')? + 2
    } else {
        rest.find([',', '}']).unwrap_or(rest.len())
    };
    Some(rest[..end].trim())
}

/// Parses a `.npy` file's bytes; `origin` names it in errors.
pub fn parse_npy(bytes: &[u8], origin: &str) -> Result<NpyArray> {
    let magic = b"\x93NUMPY";
    if bytes.len() < 10 || &bytes[..6] != magic {
        return Err(bad(origin, "not a .npy file (no \\x93NUMPY magic)"));
    }
    let (major, minor) = (bytes[6], bytes[7]);
    let (header_len, start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10usize),
        2 | 3 if bytes.len() >= 12 => (u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize, 12),
        _ => return Err(bad(origin, format!(".npy format version {major}.{minor} is not supported (1.0, 2.0, 3.0)"))),
    };
    let end =
        start.checked_add(header_len).filter(|&e| e <= bytes.len()).ok_or_else(|| bad(origin, "header runs past the end of the file"))?;
    let header = std::str::from_utf8(&bytes[start..end]).map_err(|_| bad(origin, "header is not text"))?;
    let descr = header_value(header, "descr").ok_or_else(|| bad(origin, "header has no 'descr'"))?.trim_matches('\'');
    match header_value(header, "fortran_order") {
        Some("False") => {}
        Some("True") => return Err(bad(origin, "Fortran-order arrays are not read (save with np.ascontiguousarray)")),
        _ => return Err(bad(origin, "header has no valid 'fortran_order'")),
    }
    let shape_text = header_value(header, "shape").ok_or_else(|| bad(origin, "header has no 'shape'"))?;
    let shape = shape_text
        .trim_start_matches('(')
        .trim_end_matches(')')
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| bad(origin, format!("shape {shape_text} is not a tuple of sizes"))))
        .collect::<Result<Vec<usize>>>()?;
    let count =
        shape.iter().try_fold(1usize, |acc, &x| acc.checked_mul(x)).ok_or_else(|| bad(origin, format!("shape {shape_text} overflows")))?;
    let (order, kind, size) = {
        let mut chars = descr.chars();
        let order = chars.next().ok_or_else(|| bad(origin, "empty dtype"))?;
        let kind = chars.next().ok_or_else(|| bad(origin, format!("dtype {descr:?} is not supported")))?;
        let size: usize = chars.as_str().parse().map_err(|_| bad(origin, format!("dtype {descr:?} is not supported")))?;
        (order, kind, size)
    };
    let big = match order {
        '<' | '|' | '=' => false,
        '>' => true,
        _ => return Err(bad(origin, format!("dtype {descr:?} is not supported"))),
    };
    let data = &bytes[end..];
    let expected = count.checked_mul(size).ok_or_else(|| bad(origin, "array size overflows"))?;
    if data.len() != expected {
        return Err(bad(origin, format!("{} data bytes for shape {shape_text} of {descr} (expected {expected})", data.len())));
    }
    let word = |chunk: &[u8]| -> [u8; 8] {
        let mut w = [0u8; 8];
        if big {
            w[8 - chunk.len()..].copy_from_slice(chunk);
            w.reverse();
        } else {
            w[..chunk.len()].copy_from_slice(chunk);
        }
        w
    };
    let chunks = data.chunks_exact(size.max(1));
    let data = match (kind, size) {
        ('f', 8) => NpyData::Float(chunks.map(|c| f64::from_le_bytes(word(c))).collect()),
        ('f', 4) => NpyData::Float(
            chunks.map(|c| f64::from(f32::from_bits(u32::from_le_bytes(word(c)[..4].try_into().unwrap_or([0; 4]))))).collect(),
        ),
        ('i', 1 | 2 | 4 | 8) => NpyData::Int(
            chunks
                .map(|c| {
                    let shift = 64 - 8 * size as u32;
                    (i64::from_le_bytes(word(c)) << shift) >> shift
                })
                .collect(),
        ),
        ('u' | 'b', 1 | 2 | 4 | 8) => NpyData::Int(
            chunks
                .enumerate()
                .map(|(i, c)| i64::try_from(u64::from_le_bytes(word(c))).map_err(|_| bad(origin, format!("element {i} exceeds i64"))))
                .collect::<Result<_>>()?,
        ),
        _ => return Err(bad(origin, format!("dtype {descr:?} is not supported (f4, f8, i1–i8, u1–u8, b1)"))),
    };
    Ok(NpyArray { shape, data })
}

/// CRC-32 (IEEE, as zip uses).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xEDB8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

/// Parses a `.npz` archive's bytes into its arrays, keyed by member name without `.npy`.
pub fn parse_npz(bytes: &[u8], origin: &str) -> Result<BTreeMap<String, NpyArray>> {
    let truncated = || bad(origin, "truncated or not a zip archive");
    // End of central directory: the last signature within the final 64 KiB + 22 bytes.
    let from = bytes.len().saturating_sub(22 + 65_535);
    let eocd = (from..bytes.len().saturating_sub(21))
        .rev()
        .find(|&i| u32_at(bytes, i) == Some(0x0605_4b50))
        .ok_or_else(|| bad(origin, "not a .npz (zip) archive"))?;
    let entries = u16_at(bytes, eocd + 10).ok_or_else(truncated)? as usize;
    let cd_offset = u32_at(bytes, eocd + 16).ok_or_else(truncated)?;
    if cd_offset == u32::MAX || entries == 0xFFFF {
        return Err(bad(origin, "ZIP64 archives are not supported"));
    }
    let mut out = BTreeMap::new();
    let mut at = cd_offset as usize;
    for _ in 0..entries {
        if u32_at(bytes, at) != Some(0x0201_4b50) {
            return Err(truncated());
        }
        let method = u16_at(bytes, at + 10).ok_or_else(truncated)?;
        let crc = u32_at(bytes, at + 16).ok_or_else(truncated)?;
        let packed = u32_at(bytes, at + 20).ok_or_else(truncated)?;
        let size = u32_at(bytes, at + 24).ok_or_else(truncated)?;
        let name_len = u16_at(bytes, at + 28).ok_or_else(truncated)? as usize;
        let extra_len = u16_at(bytes, at + 30).ok_or_else(truncated)? as usize;
        let comment_len = u16_at(bytes, at + 32).ok_or_else(truncated)? as usize;
        let local = u32_at(bytes, at + 42).ok_or_else(truncated)?;
        let name = bytes.get(at + 46..at + 46 + name_len).ok_or_else(truncated)?;
        let name = String::from_utf8_lossy(name).to_string();
        at += 46 + name_len + extra_len + comment_len;
        if [packed, size, local].contains(&u32::MAX) {
            return Err(bad(origin, format!("member {name}: ZIP64 members are not supported")));
        }
        let local = local as usize;
        if u32_at(bytes, local) != Some(0x0403_4b50) {
            return Err(bad(origin, format!("member {name}: bad local header")));
        }
        let start = local
            + 30
            + u16_at(bytes, local + 26).ok_or_else(truncated)? as usize
            + u16_at(bytes, local + 28).ok_or_else(truncated)? as usize;
        let raw = bytes.get(start..start + packed as usize).ok_or_else(|| bad(origin, format!("member {name} runs past the end")))?;
        let data = match method {
            0 => raw.to_vec(),
            8 => miniz_oxide::inflate::decompress_to_vec_with_limit(raw, size as usize)
                .map_err(|e| bad(origin, format!("member {name}: bad deflate data ({:?})", e.status)))?,
            m => return Err(bad(origin, format!("member {name}: compression method {m} is not supported (stored, deflate)"))),
        };
        if data.len() != size as usize || crc32(&data) != crc {
            return Err(bad(origin, format!("member {name}: size or CRC-32 mismatch (corrupt archive)")));
        }
        let key = name.strip_suffix(".npy").unwrap_or(&name).to_string();
        let array = parse_npy(&data, &format!("{origin}:{name}"))?;
        out.insert(key, array);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `.npy` file as numpy 1.x writes it (version 1.0, header padded to 64 bytes).
    pub(crate) fn npy(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
        let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
        let tuple = if shape.len() == 1 { format!("({},)", dims[0]) } else { format!("({})", dims.join(", ")) };
        let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {tuple}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend((header.len() as u16).to_le_bytes());
        out.extend(header.bytes());
        out.extend(data);
        out
    }

    #[test]
    fn reads_floats_and_integers_in_both_byte_orders() {
        let data: Vec<u8> = [1.5f64, -2.0, 0.25].iter().flat_map(|x| x.to_le_bytes()).collect();
        let a = parse_npy(&npy("<f8", &[3], &data), "a.npy").unwrap();
        assert_eq!((a.shape.clone(), a.data), (vec![3], NpyData::Float(vec![1.5, -2.0, 0.25])));
        let data: Vec<u8> = [1.5f32, -2.0].iter().flat_map(|x| x.to_be_bytes()).collect();
        assert_eq!(parse_npy(&npy(">f4", &[1, 2], &data), "b").unwrap().data, NpyData::Float(vec![1.5, -2.0]));
        let data: Vec<u8> = [-3i16, 7].iter().flat_map(|x| x.to_le_bytes()).collect();
        assert_eq!(parse_npy(&npy("<i2", &[2], &data), "c").unwrap().data, NpyData::Int(vec![-3, 7]));
        assert_eq!(parse_npy(&npy("|u1", &[2, 1], &[0, 255]), "d").unwrap().data, NpyData::Int(vec![0, 255]));
        assert_eq!(parse_npy(&npy("|b1", &[2], &[1, 0]), "e").unwrap().data, NpyData::Int(vec![1, 0]));
    }

    /// The same file with `'fortran_order': True`.
    fn fortran(mut bytes: Vec<u8>) -> Vec<u8> {
        let at = bytes.windows(5).position(|w| w == b"False").unwrap();
        bytes[at..at + 5].copy_from_slice(b"True ");
        bytes
    }

    #[test]
    fn malformed_files_name_the_problem() {
        let eight = 1.0f64.to_le_bytes();
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (b"not numpy".to_vec(), "magic"),
            (npy("<f8", &[2], &eight), "data bytes"),
            (npy("<f2", &[1], &[0, 0]), "not supported"),
            (npy("<c16", &[1], &[0; 16]), "not supported"),
            (fortran(npy("<f8", &[1], &eight)), "Fortran-order"),
            (npy("<f8", &[1], &eight)[..20].to_vec(), "header"),
        ];
        for (bytes, expected) in cases {
            let err = parse_npy(&bytes, "x.npy").unwrap_err().to_string();
            assert!(err.contains("x.npy") && err.contains(expected), "{expected}: {err}");
        }
        // Integers that a float cannot hold exactly are refused where they become floats.
        let big = NpyArray { shape: vec![1], data: NpyData::Int(vec![(1 << 53) + 1]) };
        assert!(big.to_f64("labels").unwrap_err().to_string().contains("labels[0]"));
    }

    #[test]
    fn crc32_matches_the_standard_check_value() {
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
    }
}
