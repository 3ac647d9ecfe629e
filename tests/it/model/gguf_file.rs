//! GGUF parsing on small synthetic files built here byte by byte.

use std::path::Path;

use premem::model::gguf::{self, GgufFile, GgufValue};
use premem::model::quant::GgmlType;
use premem::model::ModelError;

/// Builds a GGUF file in memory.
pub struct GgufWriter {
    version: u32,
    metadata: Vec<u8>,
    kv_count: u64,
    infos: Vec<u8>,
    tensor_count: u64,
    data: Vec<u8>,
    alignment: usize,
}

impl GgufWriter {
    pub fn new(version: u32) -> Self {
        GgufWriter {
            version,
            metadata: vec![],
            kv_count: 0,
            infos: vec![],
            tensor_count: 0,
            data: vec![],
            alignment: 32,
        }
    }

    pub fn string(out: &mut Vec<u8>, s: &str) {
        out.extend((s.len() as u64).to_le_bytes());
        out.extend(s.as_bytes());
    }

    /// Adds a key with a raw value: its type id and encoded bytes.
    pub fn kv(&mut self, key: &str, type_id: u32, value: &[u8]) -> &mut Self {
        Self::string(&mut self.metadata, key);
        self.metadata.extend(type_id.to_le_bytes());
        self.metadata.extend(value);
        self.kv_count += 1;
        self
    }

    pub fn kv_string(&mut self, key: &str, value: &str) -> &mut Self {
        let mut bytes = vec![];
        Self::string(&mut bytes, value);
        self.kv(key, 8, &bytes)
    }

    pub fn kv_u32(&mut self, key: &str, value: u32) -> &mut Self {
        self.kv(key, 4, &value.to_le_bytes())
    }

    /// Adds a tensor; `data` is appended at the next aligned offset.
    pub fn tensor(&mut self, name: &str, dims: &[u64], type_id: u32, data: &[u8]) -> &mut Self {
        while !self.data.len().is_multiple_of(self.alignment) {
            self.data.push(0);
        }
        Self::string(&mut self.infos, name);
        self.infos.extend((dims.len() as u32).to_le_bytes());
        for d in dims {
            self.infos.extend(d.to_le_bytes());
        }
        self.infos.extend(type_id.to_le_bytes());
        self.infos.extend((self.data.len() as u64).to_le_bytes());
        self.data.extend(data);
        self.tensor_count += 1;
        self
    }

    pub fn bytes(&self) -> Vec<u8> {
        let mut out = b"GGUF".to_vec();
        out.extend(self.version.to_le_bytes());
        out.extend(self.tensor_count.to_le_bytes());
        out.extend(self.kv_count.to_le_bytes());
        out.extend(&self.metadata);
        out.extend(&self.infos);
        while !out.len().is_multiple_of(self.alignment) {
            out.push(0);
        }
        out.extend(&self.data);
        out
    }
}

fn f16(v: f32) -> [u8; 2] {
    half::f16::from_f32(v).to_le_bytes()
}

/// One Q4_1 block: scale 0.5, minimum -2, element i has q = i % 16.
fn q4_1_block() -> Vec<u8> {
    let mut block = vec![];
    block.extend(f16(0.5));
    block.extend(f16(-2.0));
    block.extend((0..16u8).map(|j| (j << 4) | j));
    block
}

/// A file with every metadata value type, a custom alignment and an F32 and
/// a Q4_1 tensor.
fn sample_file(version: u32) -> Vec<u8> {
    let mut w = GgufWriter::new(version);
    w.alignment = 64;
    w.kv_u32("general.alignment", 64)
        .kv_string("general.architecture", "llama")
        .kv("u8", 0, &[7])
        .kv("i8", 1, &[0xff])
        .kv("u16", 2, &300u16.to_le_bytes())
        .kv("i16", 3, &(-300i16).to_le_bytes())
        .kv("i32", 5, &(-5i32).to_le_bytes())
        .kv("f32", 6, &1.5f32.to_le_bytes())
        .kv("bool", 7, &[1])
        .kv("u64", 10, &(1u64 << 40).to_le_bytes())
        .kv("i64", 11, &(-7i64).to_le_bytes())
        .kv("f64", 12, &0.25f64.to_le_bytes());
    let mut array = 8u32.to_le_bytes().to_vec();
    array.extend(2u64.to_le_bytes());
    GgufWriter::string(&mut array, "a");
    GgufWriter::string(&mut array, "b c");
    w.kv("strings", 9, &array);
    let f32_data: Vec<u8> = [1.0f32, -2.0, 3.5, 0.0, 8.0, 9.0]
        .iter()
        .flat_map(|v| v.to_le_bytes())
        .collect();
    w.tensor("norm.weight", &[3, 2], 0, &f32_data);
    w.tensor("quant.weight", &[32, 1], 3, &q4_1_block());
    w.bytes()
}

fn parse(bytes: &[u8]) -> Result<gguf::Parsed, ModelError> {
    gguf::parse(bytes, Path::new("synthetic.gguf"))
}

#[test]
fn gguf_metadata_all_value_types() {
    for version in [2, 3] {
        let parsed = parse(&sample_file(version)).unwrap();
        let m = &parsed.metadata;
        assert_eq!(parsed.version, version);
        assert_eq!(m["u8"], GgufValue::U8(7));
        assert_eq!(m["i8"], GgufValue::I8(-1));
        assert_eq!(m["u16"], GgufValue::U16(300));
        assert_eq!(m["i16"], GgufValue::I16(-300));
        assert_eq!(m["i32"], GgufValue::I32(-5));
        assert_eq!(m["f32"], GgufValue::F32(1.5));
        assert_eq!(m["bool"], GgufValue::Bool(true));
        assert_eq!(m["u64"], GgufValue::U64(1 << 40));
        assert_eq!(m["i64"], GgufValue::I64(-7));
        assert_eq!(m["f64"], GgufValue::F64(0.25));
        assert_eq!(m["general.architecture"].as_str(), Some("llama"));
        let strings = m["strings"].as_array().unwrap();
        assert_eq!(
            strings,
            &[
                GgufValue::String("a".into()),
                GgufValue::String("b c".into())
            ]
        );
    }
}

#[test]
fn gguf_tensors_respect_alignment() {
    let parsed = parse(&sample_file(3)).unwrap();
    assert_eq!(parsed.data_start % 64, 0);
    assert_eq!(parsed.tensors.len(), 2);
    assert_eq!(parsed.tensors[0].shape(), vec![2, 3]);
    assert_eq!(parsed.tensors[1].offset, 64);
    assert_eq!(parsed.tensors[1].ggml_type, GgmlType::Q4_1);
    assert_eq!(parsed.tensors[1].size, 20);
}

#[test]
fn gguf_file_dequantizes_tensors() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sample.gguf");
    std::fs::write(&path, sample_file(3)).unwrap();
    let file = GgufFile::open(&path).unwrap();

    let norm = file
        .dequantize(file.tensor("norm.weight").unwrap())
        .unwrap();
    assert_eq!(norm, vec![1.0, -2.0, 3.5, 0.0, 8.0, 9.0]);

    let quant = file
        .dequantize(file.tensor("quant.weight").unwrap())
        .unwrap();
    let expected: Vec<f32> = (0..32).map(|i| (i % 16) as f32 * 0.5 - 2.0).collect();
    assert_eq!(quant, expected);
}

#[test]
fn gguf_every_truncation_is_error() {
    let bytes = sample_file(3);
    for len in 0..bytes.len() {
        let result = parse(&bytes[..len]);
        assert!(
            matches!(result, Err(ModelError::Format { .. })),
            "prefix of {len} bytes: {result:?}"
        );
    }
}

#[test]
fn gguf_bad_magic_and_version() {
    let mut bytes = sample_file(3);
    bytes[0] = b'X';
    assert!(matches!(parse(&bytes), Err(ModelError::Format { .. })));

    let old = sample_file(1);
    let error = parse(&old).unwrap_err();
    assert!(matches!(error, ModelError::Unsupported { .. }), "{error}");
    assert!(error.to_string().contains("GGUF version"), "{error}");
}

#[test]
fn gguf_offset_past_end_is_error() {
    let mut w = GgufWriter::new(3);
    w.tensor("a.weight", &[4], 0, &[0u8; 16]);
    let mut bytes = w.bytes();
    bytes.truncate(bytes.len() - 4);
    let error = parse(&bytes).unwrap_err();
    assert!(error.to_string().contains("`a.weight`"), "{error}");
    assert!(error.to_string().contains("past the end"), "{error}");
}

#[test]
fn gguf_unsupported_type_names_tensor() {
    let mut w = GgufWriter::new(3);
    w.tensor("blk.0.ffn_up.weight", &[256], 12, &[0u8; 144]);
    let error = parse(&w.bytes()).unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, ModelError::Unsupported { .. }), "{message}");
    assert!(message.contains("blk.0.ffn_up.weight"), "{message}");
    assert!(message.contains("Q4_K"), "{message}");
}

#[test]
fn gguf_corrupt_lengths_are_errors() {
    // A string length far beyond the file.
    let mut w = GgufWriter::new(3);
    w.kv("key", 8, &u64::MAX.to_le_bytes());
    assert!(matches!(parse(&w.bytes()), Err(ModelError::Format { .. })));

    // An unknown value type.
    let mut w = GgufWriter::new(3);
    w.kv("key", 99, &[0; 8]);
    assert!(matches!(parse(&w.bytes()), Err(ModelError::Format { .. })));

    // A quantized tensor that does not fill whole blocks.
    let mut w = GgufWriter::new(3);
    w.tensor("q.weight", &[31], 8, &[0u8; 34]);
    assert!(matches!(parse(&w.bytes()), Err(ModelError::Format { .. })));

    // A misaligned tensor offset.
    let mut w = GgufWriter::new(3);
    w.tensor("a.weight", &[1], 0, &[0u8; 4]);
    let mut bytes = w.bytes();
    // Header (24 bytes), name (8 + 8), n_dims (4), one dim (8), type (4).
    let offset_at = 24 + 16 + 4 + 8 + 4;
    bytes[offset_at..offset_at + 8].copy_from_slice(&3u64.to_le_bytes());
    let error = parse(&bytes).unwrap_err();
    assert!(error.to_string().contains("alignment"), "{error}");
}

#[test]
fn gguf_deep_array_nesting_is_error() {
    // 100 arrays, each holding one array, then nothing.
    let mut value = vec![];
    for _ in 0..100 {
        value.extend(9u32.to_le_bytes());
        value.extend(1u64.to_le_bytes());
    }
    let mut w = GgufWriter::new(3);
    w.kv("nested", 9, &value);
    let error = parse(&w.bytes()).unwrap_err();
    assert!(error.to_string().contains("nested"), "{error}");
}
