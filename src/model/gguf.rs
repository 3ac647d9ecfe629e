//! Reader for GGUF files (versions 2 and 3, little-endian), the format
//! llama.cpp stores quantized models in.
//!
//! A file is a header, metadata key/value pairs, tensor descriptions and then
//! an aligned data section. The reader checks every length and offset against
//! the file size, so a truncated or corrupt file yields a [`ModelError`] and
//! never a panic or an out-of-bounds read.

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::quant::{self, GgmlType};
use super::ModelError;

/// Magic bytes at the start of every GGUF file.
const MAGIC: &[u8; 4] = b"GGUF";

/// Data alignment when `general.alignment` is absent.
const DEFAULT_ALIGNMENT: u64 = 32;

/// Maximum length (elements) of a string or array the reader accepts. It
/// guards against corrupt lengths that would otherwise request huge allocations.
const MAX_LENGTH: u64 = 1 << 28;

/// Maximum nesting of metadata arrays. Real files nest at most one level,
/// and the limit keeps a corrupt file from exhausting the stack.
const MAX_ARRAY_DEPTH: usize = 4;

/// One metadata value.
#[derive(Debug, Clone, PartialEq)]
pub enum GgufValue {
    U8(u8),
    I8(i8),
    U16(u16),
    I16(i16),
    U32(u32),
    I32(i32),
    U64(u64),
    I64(i64),
    F32(f32),
    F64(f64),
    Bool(bool),
    String(String),
    Array(Vec<GgufValue>),
}

impl GgufValue {
    /// Returns the value as an unsigned integer when it is a non-negative integer.
    pub fn as_u64(&self) -> Option<u64> {
        match *self {
            GgufValue::U8(v) => Some(v as u64),
            GgufValue::U16(v) => Some(v as u64),
            GgufValue::U32(v) => Some(v as u64),
            GgufValue::U64(v) => Some(v),
            GgufValue::I8(v) => u64::try_from(v).ok(),
            GgufValue::I16(v) => u64::try_from(v).ok(),
            GgufValue::I32(v) => u64::try_from(v).ok(),
            GgufValue::I64(v) => u64::try_from(v).ok(),
            _ => None,
        }
    }

    /// Returns the value as a float, for float and integer values.
    pub fn as_f64(&self) -> Option<f64> {
        match *self {
            GgufValue::F32(v) => Some(v as f64),
            GgufValue::F64(v) => Some(v),
            _ => self.as_u64().map(|v| v as f64),
        }
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            GgufValue::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[GgufValue]> {
        match self {
            GgufValue::Array(items) => Some(items),
            _ => None,
        }
    }
}

/// Description of one tensor in the data section.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorInfo {
    pub name: String,
    /// Dimensions innermost first: a `[out, in]` matrix has `dims = [in, out]`.
    pub dims: Vec<u64>,
    pub ggml_type: GgmlType,
    /// Byte offset from the start of the data section.
    pub offset: u64,
    /// Byte size of the stored (possibly quantized) data.
    pub size: u64,
}

impl TensorInfo {
    pub fn element_count(&self) -> u64 {
        self.dims.iter().product()
    }

    /// Shape in PyTorch order (outermost first).
    pub fn shape(&self) -> Vec<i64> {
        self.dims.iter().rev().map(|&d| d as i64).collect()
    }
}

/// A parsed GGUF file, memory-mapped.
pub struct GgufFile {
    pub path: PathBuf,
    pub version: u32,
    pub metadata: BTreeMap<String, GgufValue>,
    pub tensors: Vec<TensorInfo>,
    data_start: u64,
    bytes: Mmap,
}

impl GgufFile {
    /// Maps and parses the file at `path`.
    pub fn open(path: &Path) -> Result<Self, ModelError> {
        let io_error = |source| ModelError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = File::open(path).map_err(io_error)?;
        // SAFETY: the map is read-only and premem never writes a model file
        // while reading it. Another process truncating the file is outside
        // what any reader of mapped files can guard against.
        let bytes = unsafe { Mmap::map(&file) }.map_err(io_error)?;
        let parsed = parse(&bytes, path)?;
        Ok(GgufFile {
            path: path.to_path_buf(),
            version: parsed.version,
            metadata: parsed.metadata,
            tensors: parsed.tensors,
            data_start: parsed.data_start,
            bytes,
        })
    }

    /// Value of a metadata key, or an error naming the key.
    pub fn require(&self, key: &str) -> Result<&GgufValue, ModelError> {
        self.metadata
            .get(key)
            .ok_or_else(|| self.format_error(format!("missing metadata key `{key}`")))
    }

    /// Unsigned integer value of a metadata key.
    pub fn require_u64(&self, key: &str) -> Result<u64, ModelError> {
        self.require(key)?.as_u64().ok_or_else(|| {
            self.format_error(format!(
                "metadata key `{key}` is not a non-negative integer"
            ))
        })
    }

    pub fn tensor(&self, name: &str) -> Option<&TensorInfo> {
        self.tensors.iter().find(|t| t.name == name)
    }

    /// Dequantizes a tensor to f32 values in storage order.
    pub fn dequantize(&self, info: &TensorInfo) -> Result<Vec<f32>, ModelError> {
        let start = (self.data_start + info.offset) as usize;
        let data = &self.bytes[start..start + info.size as usize];
        quant::dequantize(info.ggml_type, data, info.element_count() as usize)
            .map_err(|message| self.format_error(format!("tensor `{}`: {message}", info.name)))
    }

    fn format_error(&self, message: String) -> ModelError {
        ModelError::Format {
            path: self.path.clone(),
            message,
        }
    }
}

/// The parts of a file [`parse`] extracts.
#[derive(Debug)]
pub struct Parsed {
    pub version: u32,
    pub metadata: BTreeMap<String, GgufValue>,
    pub tensors: Vec<TensorInfo>,
    /// Absolute byte offset of the data section.
    pub data_start: u64,
}

/// Parses a whole GGUF file held in memory. `path` only names the file in
/// errors.
pub fn parse(bytes: &[u8], path: &Path) -> Result<Parsed, ModelError> {
    let mut reader = Reader {
        bytes,
        pos: 0,
        path,
    };

    if reader.take(4)? != MAGIC {
        return Err(reader.error("not a GGUF file (the first 4 bytes are not `GGUF`)".into()));
    }
    let version = reader.u32()?;
    if version != 2 && version != 3 {
        return Err(ModelError::Unsupported {
            path: path.to_path_buf(),
            what: "GGUF version".into(),
            value: version.to_string(),
            supported: "2, 3 (little-endian)".into(),
        });
    }
    let tensor_count = reader.length("tensor count")?;
    let kv_count = reader.length("metadata count")?;

    let mut metadata = BTreeMap::new();
    for _ in 0..kv_count {
        let key = reader.string()?;
        let value_type = reader.u32()?;
        let value = reader.value(value_type, 0)?;
        metadata.insert(key, value);
    }

    let alignment = match metadata.get("general.alignment") {
        None => DEFAULT_ALIGNMENT,
        Some(v) => match v.as_u64() {
            Some(a) if a > 0 && a.is_power_of_two() => a,
            _ => return Err(reader.error(format!("general.alignment {v:?} is not a power of two"))),
        },
    };

    // The count is unchecked until the infos are read, so cap the reservation.
    let mut tensors = Vec::with_capacity(tensor_count.min(4096) as usize);
    for _ in 0..tensor_count {
        tensors.push(reader.tensor_info(alignment)?);
    }

    let data_start = (reader.pos as u64).div_ceil(alignment) * alignment;
    let file_size = bytes.len() as u64;
    for info in &tensors {
        let end = data_start
            .checked_add(info.offset)
            .and_then(|s| s.checked_add(info.size));
        if end.is_none_or(|end| end > file_size) {
            return Err(reader.error(format!(
                "tensor `{}` at data offset {} with {} bytes runs past the end of the file ({file_size} bytes); the file is truncated or corrupt",
                info.name, info.offset, info.size
            )));
        }
    }

    Ok(Parsed {
        version,
        metadata,
        tensors,
        data_start,
    })
}

/// Cursor over the file bytes; every read is bounds-checked.
struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    path: &'a Path,
}

impl<'a> Reader<'a> {
    fn error(&self, message: String) -> ModelError {
        ModelError::Format {
            path: self.path.to_path_buf(),
            message,
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ModelError> {
        let end = self
            .pos
            .checked_add(n)
            .filter(|&end| end <= self.bytes.len());
        match end {
            Some(end) => {
                let slice = &self.bytes[self.pos..end];
                self.pos = end;
                Ok(slice)
            }
            None => Err(self.error(format!(
                "unexpected end of file at byte {} (needed {n} more bytes); the file is truncated",
                self.pos
            ))),
        }
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], ModelError> {
        let slice = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(slice);
        Ok(out)
    }

    fn u32(&mut self) -> Result<u32, ModelError> {
        Ok(u32::from_le_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, ModelError> {
        Ok(u64::from_le_bytes(self.array()?))
    }

    /// Reads a u64 count and rejects it when implausibly large.
    fn length(&mut self, what: &str) -> Result<u64, ModelError> {
        let at = self.pos;
        let n = self.u64()?;
        if n > MAX_LENGTH {
            return Err(self.error(format!(
                "{what} {n} at byte {at} exceeds the limit {MAX_LENGTH}; the file is corrupt"
            )));
        }
        Ok(n)
    }

    fn string(&mut self) -> Result<String, ModelError> {
        let at = self.pos;
        let n = self.length("string length")?;
        let raw = self.take(n as usize)?;
        String::from_utf8(raw.to_vec())
            .map_err(|_| self.error(format!("string at byte {at} is not valid UTF-8")))
    }

    /// Reads one value; `depth` counts the arrays it is nested in.
    fn value(&mut self, value_type: u32, depth: usize) -> Result<GgufValue, ModelError> {
        let value = match value_type {
            0 => GgufValue::U8(self.array::<1>()?[0]),
            1 => GgufValue::I8(i8::from_le_bytes(self.array()?)),
            2 => GgufValue::U16(u16::from_le_bytes(self.array()?)),
            3 => GgufValue::I16(i16::from_le_bytes(self.array()?)),
            4 => GgufValue::U32(self.u32()?),
            5 => GgufValue::I32(i32::from_le_bytes(self.array()?)),
            6 => GgufValue::F32(f32::from_le_bytes(self.array()?)),
            7 => match self.array::<1>()?[0] {
                0 => GgufValue::Bool(false),
                1 => GgufValue::Bool(true),
                other => {
                    return Err(self.error(format!(
                        "bool value {other} at byte {} is neither 0 nor 1",
                        self.pos - 1
                    )))
                }
            },
            8 => GgufValue::String(self.string()?),
            9 if depth >= MAX_ARRAY_DEPTH => {
                return Err(self.error(format!(
                    "arrays nested more than {MAX_ARRAY_DEPTH} deep before byte {}; the file is corrupt",
                    self.pos
                )))
            }
            9 => {
                let item_type = self.u32()?;
                let n = self.length("array length")?;
                let mut items = Vec::with_capacity(n.min(1 << 16) as usize);
                for _ in 0..n {
                    items.push(self.value(item_type, depth + 1)?);
                }
                GgufValue::Array(items)
            }
            10 => GgufValue::U64(self.u64()?),
            11 => GgufValue::I64(i64::from_le_bytes(self.array()?)),
            12 => GgufValue::F64(f64::from_le_bytes(self.array()?)),
            other => {
                return Err(self.error(format!(
                    "unknown metadata value type {other} before byte {}; the file is corrupt",
                    self.pos
                )))
            }
        };
        Ok(value)
    }

    fn tensor_info(&mut self, alignment: u64) -> Result<TensorInfo, ModelError> {
        let name = self.string()?;
        let n_dims = self.u32()?;
        if n_dims == 0 || n_dims > 4 {
            return Err(self.error(format!(
                "tensor `{name}` has {n_dims} dimensions; GGUF allows 1 to 4"
            )));
        }
        let mut dims = Vec::with_capacity(n_dims as usize);
        for _ in 0..n_dims {
            dims.push(self.u64()?);
        }
        let type_id = self.u32()?;
        let offset = self.u64()?;

        let ggml_type = GgmlType::from_id(type_id).ok_or_else(|| ModelError::Unsupported {
            path: self.path.to_path_buf(),
            what: format!("tensor type of `{name}`"),
            value: quant::type_name(type_id),
            supported: GgmlType::SUPPORTED.into(),
        })?;
        if offset % alignment != 0 {
            return Err(self.error(format!(
                "tensor `{name}` offset {offset} is not a multiple of the alignment {alignment}"
            )));
        }
        let elements = dims.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
        let size = elements.and_then(|n| ggml_type.byte_size(n));
        let size = size.ok_or_else(|| {
            self.error(format!(
                "tensor `{name}` of type {ggml_type:?} has dimensions {dims:?}, which do not fill whole blocks of {} values",
                ggml_type.block_len()
            ))
        })?;

        Ok(TensorInfo {
            name,
            dims,
            ggml_type,
            offset,
            size,
        })
    }
}
