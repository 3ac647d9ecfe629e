//! ggml tensor types and their decoding to f32.
//!
//! Quantized types store blocks of 32 values. Each block starts with an f16
//! scale `d`; Q4_1 adds an f16 minimum `m`. In the 4-bit types byte `j` of the
//! 16 packed bytes stores value `j` in its low nibble and value `j + 16` in its
//! high nibble. Decoded values: Q4_0 `(q - 8) * d`, Q4_1 `q * d + m`,
//! Q8_0 `q * d` with `q` a signed byte.

use half::{bf16, f16};

/// Values per quantization block.
const BLOCK: usize = 32;

/// The ggml tensor types premem can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GgmlType {
    F32,
    F16,
    Q4_0,
    Q4_1,
    Q8_0,
    Bf16,
}

impl GgmlType {
    /// Names of the supported types, for error messages.
    pub const SUPPORTED: &'static str = "F32, F16, BF16, Q8_0, Q4_0, Q4_1";

    /// Maps a ggml type id (`enum ggml_type` in ggml.h) to a supported type.
    pub fn from_id(id: u32) -> Option<Self> {
        match id {
            0 => Some(GgmlType::F32),
            1 => Some(GgmlType::F16),
            2 => Some(GgmlType::Q4_0),
            3 => Some(GgmlType::Q4_1),
            8 => Some(GgmlType::Q8_0),
            30 => Some(GgmlType::Bf16),
            _ => None,
        }
    }

    /// Values per block (1 for the float types).
    pub fn block_len(self) -> usize {
        match self {
            GgmlType::F32 | GgmlType::F16 | GgmlType::Bf16 => 1,
            GgmlType::Q4_0 | GgmlType::Q4_1 | GgmlType::Q8_0 => BLOCK,
        }
    }

    /// Bytes per block.
    pub fn block_bytes(self) -> usize {
        match self {
            GgmlType::F32 => 4,
            GgmlType::F16 | GgmlType::Bf16 => 2,
            GgmlType::Q4_0 => 2 + BLOCK / 2,
            GgmlType::Q4_1 => 4 + BLOCK / 2,
            GgmlType::Q8_0 => 2 + BLOCK,
        }
    }

    /// Stored bytes of `elements` values; `None` when they do not fill whole
    /// blocks or the size overflows.
    pub fn byte_size(self, elements: u64) -> Option<u64> {
        let block_len = self.block_len() as u64;
        if !elements.is_multiple_of(block_len) {
            return None;
        }
        (elements / block_len).checked_mul(self.block_bytes() as u64)
    }
}

/// Human-readable name of a ggml type id, supported or not.
pub fn type_name(id: u32) -> String {
    let name = match id {
        0 => "F32",
        1 => "F16",
        2 => "Q4_0",
        3 => "Q4_1",
        6 => "Q5_0",
        7 => "Q5_1",
        8 => "Q8_0",
        9 => "Q8_1",
        10 => "Q2_K",
        11 => "Q3_K",
        12 => "Q4_K",
        13 => "Q5_K",
        14 => "Q6_K",
        15 => "Q8_K",
        24 => "I8",
        25 => "I16",
        26 => "I32",
        27 => "I64",
        28 => "F64",
        30 => "BF16",
        _ => return format!("type id {id}"),
    };
    name.to_string()
}

/// Decodes `elements` values of type `ggml_type` from `data`, which must hold
/// exactly their stored bytes.
pub fn dequantize(ggml_type: GgmlType, data: &[u8], elements: usize) -> Result<Vec<f32>, String> {
    let expected = ggml_type.byte_size(elements as u64);
    if expected != Some(data.len() as u64) {
        return Err(format!(
            "{elements} values of type {ggml_type:?} need {expected:?} bytes, found {}",
            data.len()
        ));
    }

    let mut out = Vec::with_capacity(elements);
    let chunks = data.chunks_exact(ggml_type.block_bytes());
    match ggml_type {
        GgmlType::F32 => out.extend(chunks.map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))),
        GgmlType::F16 => out.extend(chunks.map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())),
        GgmlType::Bf16 => out.extend(chunks.map(|c| bf16::from_le_bytes([c[0], c[1]]).to_f32())),
        GgmlType::Q4_0 => chunks.for_each(|block| decode_q4(block, 8, &mut out)),
        GgmlType::Q4_1 => chunks.for_each(|block| decode_q4(block, 0, &mut out)),
        GgmlType::Q8_0 => chunks.for_each(|block| decode_q8_0(block, &mut out)),
    }
    Ok(out)
}

fn f16_at(block: &[u8], at: usize) -> f32 {
    f16::from_le_bytes([block[at], block[at + 1]]).to_f32()
}

/// Decodes one Q4_0 block (`offset` 8, no minimum) or Q4_1 block (`offset`
/// 0, f16 minimum after the scale).
fn decode_q4(block: &[u8], offset: i32, out: &mut Vec<f32>) {
    let d = f16_at(block, 0);
    let (m, packed) = if offset == 0 {
        (f16_at(block, 2), &block[4..])
    } else {
        (0.0, &block[2..])
    };
    let value = |q: u8| (q as i32 - offset) as f32 * d + m;
    out.extend(packed.iter().map(|&b| value(b & 0x0f)));
    out.extend(packed.iter().map(|&b| value(b >> 4)));
}

fn decode_q8_0(block: &[u8], out: &mut Vec<f32>) {
    let d = f16_at(block, 0);
    out.extend(block[2..].iter().map(|&q| q as i8 as f32 * d));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f16_bytes(v: f32) -> [u8; 2] {
        f16::from_f32(v).to_le_bytes()
    }

    #[test]
    fn q4_1_nibble_order_and_minimum() {
        let mut block = Vec::new();
        block.extend(f16_bytes(0.5));
        block.extend(f16_bytes(-1.0));
        block.extend((0..16u8).map(|j| (15 - j) << 4 | j));
        let values = dequantize(GgmlType::Q4_1, &block, 32).unwrap();
        assert_eq!(values[0], -1.0);
        assert_eq!(values[15], 15.0 * 0.5 - 1.0);
        assert_eq!(values[16], 15.0 * 0.5 - 1.0);
        assert_eq!(values[31], -1.0);
    }

    #[test]
    fn q4_0_centres_on_eight() {
        let mut block = Vec::new();
        block.extend(f16_bytes(2.0));
        block.extend(std::iter::repeat_n(0x8fu8, 16));
        let values = dequantize(GgmlType::Q4_0, &block, 32).unwrap();
        assert_eq!(values[0], 14.0);
        assert_eq!(values[16], 0.0);
    }

    #[test]
    fn q8_0_signed_bytes() {
        let mut block = Vec::new();
        block.extend(f16_bytes(0.25));
        block.extend((0..32).map(|i| (i as i8 - 16) as u8));
        let values = dequantize(GgmlType::Q8_0, &block, 32).unwrap();
        assert_eq!(values[0], -4.0);
        assert_eq!(values[31], 3.75);
    }

    #[test]
    fn half_floats_decode_exactly() {
        let values = [1.5f32, -0.25, 65504.0];
        let f16_bytes: Vec<u8> = values.iter().flat_map(|&v| f16::from_f32(v).to_le_bytes()).collect();
        let bf16_bytes: Vec<u8> = values.iter().flat_map(|&v| bf16::from_f32(v).to_le_bytes()).collect();
        assert_eq!(dequantize(GgmlType::F16, &f16_bytes, 3).unwrap(), values);
        assert_eq!(dequantize(GgmlType::Bf16, &bf16_bytes, 3).unwrap()[..2], values[..2]);
    }

    #[test]
    fn wrong_byte_count_is_error() {
        assert!(dequantize(GgmlType::Q4_1, &[0u8; 19], 32).is_err());
        assert!(dequantize(GgmlType::Q8_0, &[0u8; 34], 31).is_err());
    }
}
