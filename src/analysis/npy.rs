//! A minimal reader for NumPy `.npy` files, enough for recorded learning
//! dynamics: format versions 1.0 to 3.0, little-endian `f8`, `f4`, `i8`,
//! `i4` and `b1` (bool) dtypes, C order, 1-D and 2-D shapes.
//!
//! The format is a magic string, a version, a header length and a Python
//! dict literal such as `{'descr': '<f8', 'fortran_order': False,
//! 'shape': (7473, 5), }`, followed by the raw array data. Anything outside
//! the subset above is rejected with an error that names the file.

use std::path::{Path, PathBuf};

const MAGIC: &[u8] = b"\x93NUMPY";

/// Element values of an array, widened to one type per kind.
#[derive(Debug, Clone, PartialEq)]
pub enum NpyData {
    Float(Vec<f64>),
    Int(Vec<i64>),
    Bool(Vec<bool>),
}

/// A 1-D or 2-D array in C (row-major) order.
#[derive(Debug, Clone, PartialEq)]
pub struct NpyArray {
    pub shape: Vec<usize>,
    pub data: NpyData,
}

#[derive(Debug, thiserror::Error)]
pub enum NpyError {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid .npy file: {reason}")]
    Invalid { path: PathBuf, reason: String },
    #[error("{path}: {what} is not supported (supported: little-endian f8, f4, i8, i4, b1; C order; 1-D or 2-D)")]
    Unsupported { path: PathBuf, what: String },
    #[error("{path}: expected {expected}, found shape {shape:?} of {kind}")]
    Mismatch {
        path: PathBuf,
        expected: String,
        shape: Vec<usize>,
        kind: &'static str,
    },
}

/// Element type named by the header's `descr`.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Dtype {
    F8,
    F4,
    I8,
    I4,
    Bool,
}

impl Dtype {
    fn parse(descr: &str) -> Option<Dtype> {
        match descr {
            "<f8" => Some(Dtype::F8),
            "<f4" => Some(Dtype::F4),
            "<i8" => Some(Dtype::I8),
            "<i4" => Some(Dtype::I4),
            "|b1" | "<b1" => Some(Dtype::Bool),
            _ => None,
        }
    }

    fn size(self) -> usize {
        match self {
            Dtype::F8 | Dtype::I8 => 8,
            Dtype::F4 | Dtype::I4 => 4,
            Dtype::Bool => 1,
        }
    }
}

/// Reads a `.npy` file.
pub fn read_npy(path: &Path) -> Result<NpyArray, NpyError> {
    let bytes = std::fs::read(path).map_err(|source| NpyError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_npy(path, &bytes)
}

/// Parses the bytes of a `.npy` file; `path` is only used in errors.
pub fn parse_npy(path: &Path, bytes: &[u8]) -> Result<NpyArray, NpyError> {
    let invalid = |reason: &str| NpyError::Invalid {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    };
    let unsupported = |what: String| NpyError::Unsupported {
        path: path.to_path_buf(),
        what,
    };

    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(invalid("missing the \\x93NUMPY magic string"));
    }

    // Version 1.0 stores the header length in 2 bytes; 2.0 and 3.0 in 4
    // bytes (3.0 only changes the header's text encoding to UTF-8).
    let major = bytes[6];
    let (header_len, header_start) = match major {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(invalid("file ends inside the header length"));
            }
            let len = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize;
            (len, 12)
        }
        _ => return Err(unsupported(format!("format version {major}.{}", bytes[7]))),
    };
    let data_start = header_start + header_len;
    if bytes.len() < data_start {
        return Err(invalid("file ends inside the header"));
    }
    let header = std::str::from_utf8(&bytes[header_start..data_start])
        .map_err(|_| invalid("header is not UTF-8 text"))?;

    let descr = dict_value(header, "descr").ok_or_else(|| invalid("header has no 'descr'"))?;
    let descr = descr.trim_matches(|c| c == '\'' || c == '"');
    let dtype = Dtype::parse(descr).ok_or_else(|| unsupported(format!("dtype '{descr}'")))?;

    let fortran = dict_value(header, "fortran_order")
        .ok_or_else(|| invalid("header has no 'fortran_order'"))?;
    let shape_text = dict_value(header, "shape").ok_or_else(|| invalid("header has no 'shape'"))?;
    let shape = parse_shape(shape_text).ok_or_else(|| invalid("header 'shape' is not a tuple of integers"))?;
    if fortran != "False" && shape.len() > 1 {
        return Err(unsupported("Fortran order".to_string()));
    }
    if shape.is_empty() || shape.len() > 2 {
        return Err(unsupported(format!("{}-D shape {shape:?}", shape.len())));
    }

    let count = shape
        .iter()
        .try_fold(1usize, |acc, &n| acc.checked_mul(n))
        .ok_or_else(|| invalid("shape overflows"))?;
    let payload = &bytes[data_start..];
    let expected = count
        .checked_mul(dtype.size())
        .ok_or_else(|| invalid("shape overflows"))?;
    if payload.len() != expected {
        return Err(invalid(&format!(
            "shape {shape:?} needs {expected} data bytes, file has {}",
            payload.len()
        )));
    }

    let data = decode(dtype, payload);
    Ok(NpyArray { shape, data })
}

/// Text of the value after `'key':` in a Python dict literal, up to the
/// next top-level comma (the shape tuple's commas are inside brackets).
fn dict_value<'a>(header: &'a str, key: &str) -> Option<&'a str> {
    let quoted = [format!("'{key}'"), format!("\"{key}\"")];
    let start = quoted.iter().find_map(|q| header.find(q.as_str()).map(|i| i + q.len()))?;
    let rest = header[start..].trim_start().strip_prefix(':')?.trim_start();

    let mut depth = 0i32;
    for (i, c) in rest.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' | '}' if depth == 0 => return Some(rest[..i].trim()),
            _ => {}
        }
    }
    None
}

/// Parses `(7473,)`, `(7473, 5)` or `()`.
fn parse_shape(text: &str) -> Option<Vec<usize>> {
    let inner = text.strip_prefix('(')?.strip_suffix(')')?;
    inner
        .split(',')
        .map(str::trim)
        .filter(|part| !part.is_empty())
        .map(|part| part.parse().ok())
        .collect()
}

fn decode(dtype: Dtype, payload: &[u8]) -> NpyData {
    let chunks = payload.chunks_exact(dtype.size());
    match dtype {
        Dtype::F8 => NpyData::Float(
            chunks
                .map(|c| f64::from_le_bytes(c.try_into().expect("chunk of 8 bytes")))
                .collect(),
        ),
        Dtype::F4 => NpyData::Float(
            chunks
                .map(|c| f32::from_le_bytes(c.try_into().expect("chunk of 4 bytes")) as f64)
                .collect(),
        ),
        Dtype::I8 => NpyData::Int(
            chunks
                .map(|c| i64::from_le_bytes(c.try_into().expect("chunk of 8 bytes")))
                .collect(),
        ),
        Dtype::I4 => NpyData::Int(
            chunks
                .map(|c| i32::from_le_bytes(c.try_into().expect("chunk of 4 bytes")) as i64)
                .collect(),
        ),
        Dtype::Bool => NpyData::Bool(chunks.map(|c| c[0] != 0).collect()),
    }
}

impl NpyArray {
    fn kind(&self) -> &'static str {
        match self.data {
            NpyData::Float(_) => "floats",
            NpyData::Int(_) => "integers",
            NpyData::Bool(_) => "booleans",
        }
    }

    fn mismatch(&self, path: &Path, expected: &str) -> NpyError {
        NpyError::Mismatch {
            path: path.to_path_buf(),
            expected: expected.to_string(),
            shape: self.shape.clone(),
            kind: self.kind(),
        }
    }

    /// Returns the values of a 1-D float array; `path` is only used in errors.
    pub fn into_floats_1d(self, path: &Path) -> Result<Vec<f64>, NpyError> {
        match self.data {
            NpyData::Float(values) if self.shape.len() == 1 => Ok(values),
            _ => Err(self.mismatch(path, "a 1-D float array")),
        }
    }

    /// Returns the values of a 1-D integer array; `path` is only used in errors.
    pub fn into_ints_1d(self, path: &Path) -> Result<Vec<i64>, NpyError> {
        match self.data {
            NpyData::Int(values) if self.shape.len() == 1 => Ok(values),
            _ => Err(self.mismatch(path, "a 1-D integer array")),
        }
    }

    /// Returns the rows of a 2-D integer array; `path` is only used in errors.
    pub fn into_int_rows(self, path: &Path) -> Result<Vec<Vec<i64>>, NpyError> {
        match self.data {
            NpyData::Int(ref values) if self.shape.len() == 2 => {
                let columns = self.shape[1];
                if columns == 0 {
                    return Ok(vec![Vec::new(); self.shape[0]]);
                }
                Ok(values.chunks(columns).map(<[i64]>::to_vec).collect())
            }
            _ => Err(self.mismatch(path, "a 2-D integer array")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds a version-1.0 file from a header dict and raw data.
    fn npy_v1(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut header = dict.to_string();
        while !(10 + header.len() + 1).is_multiple_of(64) {
            header.push(' ');
        }
        header.push('\n');
        let mut bytes = MAGIC.to_vec();
        bytes.extend([1, 0]);
        bytes.extend((header.len() as u16).to_le_bytes());
        bytes.extend(header.as_bytes());
        bytes.extend(data);
        bytes
    }

    #[test]
    fn reads_int_matrix() {
        let data: Vec<u8> = [0i64, 1, 2, 0, 0, 1].iter().flat_map(|v| v.to_le_bytes()).collect();
        let bytes = npy_v1("{'descr': '<i8', 'fortran_order': False, 'shape': (2, 3), }", &data);
        let array = parse_npy(Path::new("a.npy"), &bytes).unwrap();
        assert_eq!(array.shape, vec![2, 3]);
        let rows = array.into_int_rows(Path::new("a.npy")).unwrap();
        assert_eq!(rows, vec![vec![0, 1, 2], vec![0, 0, 1]]);
    }

    #[test]
    fn reads_each_dtype() {
        let cases: Vec<(&str, Vec<u8>, NpyData)> = vec![
            ("<f8", 1.5f64.to_le_bytes().to_vec(), NpyData::Float(vec![1.5])),
            ("<f4", 2.5f32.to_le_bytes().to_vec(), NpyData::Float(vec![2.5])),
            ("<i4", (-3i32).to_le_bytes().to_vec(), NpyData::Int(vec![-3])),
            ("|b1", vec![1], NpyData::Bool(vec![true])),
        ];
        for (descr, data, expected) in cases {
            let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': (1,), }}");
            let array = parse_npy(Path::new("a.npy"), &npy_v1(&dict, &data)).unwrap();
            assert_eq!(array.data, expected, "dtype {descr}");
        }
    }

    #[test]
    fn reads_version_two_header() {
        let dict = "{'descr': '<i8', 'fortran_order': False, 'shape': (1,), }\n";
        let mut bytes = MAGIC.to_vec();
        bytes.extend([2, 0]);
        bytes.extend((dict.len() as u32).to_le_bytes());
        bytes.extend(dict.as_bytes());
        bytes.extend(7i64.to_le_bytes());
        let array = parse_npy(Path::new("a.npy"), &bytes).unwrap();
        assert_eq!(array.data, NpyData::Int(vec![7]));
    }

    #[test]
    fn rejects_unsupported_layouts() {
        let cases = [
            ("{'descr': '>f8', 'fortran_order': False, 'shape': (1,), }", 8, "dtype"),
            ("{'descr': '<c16', 'fortran_order': False, 'shape': (1,), }", 16, "dtype"),
            ("{'descr': '<f8', 'fortran_order': True, 'shape': (1, 1), }", 8, "Fortran"),
            ("{'descr': '<f8', 'fortran_order': False, 'shape': (1, 1, 1), }", 8, "3-D"),
        ];
        for (dict, size, needle) in cases {
            let error = parse_npy(Path::new("bad.npy"), &npy_v1(dict, &vec![0; size])).unwrap_err();
            let message = error.to_string();
            assert!(message.contains("bad.npy"), "{message}");
            assert!(message.contains(needle), "{message}");
        }
    }

    #[test]
    fn rejects_truncated_data() {
        let bytes = npy_v1("{'descr': '<f8', 'fortran_order': False, 'shape': (2,), }", &[0; 8]);
        let error = parse_npy(Path::new("short.npy"), &bytes).unwrap_err();
        assert!(matches!(error, NpyError::Invalid { .. }));
    }

    #[test]
    fn rejects_missing_magic() {
        let error = parse_npy(Path::new("x.npy"), b"not a numpy file").unwrap_err();
        assert!(error.to_string().contains("x.npy"));
    }
}
