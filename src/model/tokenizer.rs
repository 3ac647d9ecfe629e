//! Tokenizers for loaded models: `tokenizer.json` of a Hugging Face folder,
//! or a byte-level BPE rebuilt from a GGUF file's `tokenizer.ggml.*` metadata.
//!
//! The GGUF tokenizer reproduces the layout of SmolLM2's `tokenizer.json`.
//! Its pre-tokenizer splits every digit on its own and then applies GPT-2's
//! byte-level split. It decodes byte-level, adds control tokens as special
//! tokens and adds no BOS token.

use std::path::Path;

use tokenizers::decoders::byte_level::ByteLevel as ByteLevelDecoder;
use tokenizers::models::bpe::{Merges, Vocab, BPE};
use tokenizers::pre_tokenizers::byte_level::ByteLevel;
use tokenizers::pre_tokenizers::digits::Digits;
use tokenizers::pre_tokenizers::sequence::Sequence;
use tokenizers::{AddedToken, PreTokenizerWrapper, Tokenizer};

use super::gguf::{GgufFile, GgufValue};
use super::ModelError;

/// `tokenizer.ggml.token_type` of a control token such as `<|im_start|>`.
const TOKEN_TYPE_CONTROL: u64 = 3;
/// `tokenizer.ggml.token_type` of a user-defined added token.
const TOKEN_TYPE_USER_DEFINED: u64 = 4;

/// Reads a `tokenizer.json` file.
pub fn from_json_file(path: &Path) -> Result<Tokenizer, ModelError> {
    Tokenizer::from_file(path).map_err(|e| ModelError::Format {
        path: path.to_path_buf(),
        message: format!("invalid tokenizer.json: {e}"),
    })
}

/// Builds the tokenizer a GGUF file describes. Only `tokenizer.ggml.model =
/// "gpt2"` (byte-level BPE) is supported.
pub fn from_gguf(file: &GgufFile) -> Result<Tokenizer, ModelError> {
    let kind = file
        .require("tokenizer.ggml.model")?
        .as_str()
        .unwrap_or_default();
    if kind != "gpt2" {
        return Err(ModelError::Unsupported {
            path: file.path.clone(),
            what: "metadata `tokenizer.ggml.model`".into(),
            value: kind.into(),
            supported: "gpt2".into(),
        });
    }

    // NOTE: tokens are used as stored. That is right for llama.cpp's gpt2
    // vocabularies, which store tokens in the byte-level alphabet; a file
    // storing raw UTF-8 tokens would need them respelled first.
    let tokens = string_array(file, "tokenizer.ggml.tokens")?;
    let merges = string_array(file, "tokenizer.ggml.merges")?;
    let vocab: Vocab = tokens
        .iter()
        .enumerate()
        .map(|(id, token)| (token.to_string(), id as u32))
        .collect();
    let merges: Merges = merges
        .iter()
        .map(|merge| {
            merge.split_once(' ').map(|(a, b)| (a.to_string(), b.to_string())).ok_or_else(|| ModelError::Format {
                path: file.path.clone(),
                message: format!("merge `{merge}` in tokenizer.ggml.merges is not two tokens separated by a space"),
            })
        })
        .collect::<Result<_, _>>()?;
    let bpe = BPE::builder()
        .vocab_and_merges(vocab, merges)
        .build()
        .map_err(|e| {
            ModelError::Tokenizer(format!("{}: cannot build BPE: {e}", file.path.display()))
        })?;

    let mut tokenizer = Tokenizer::new(bpe);
    let pre_tokenizer = Sequence::new(vec![
        PreTokenizerWrapper::Digits(Digits::new(true)),
        PreTokenizerWrapper::ByteLevel(ByteLevel::new(false, true, true)),
    ]);
    tokenizer.with_pre_tokenizer(Some(pre_tokenizer));
    tokenizer.with_decoder(Some(ByteLevelDecoder::default()));

    let (special, user_defined) = added_tokens(file, &tokens)?;
    tokenizer.add_special_tokens(&special);
    tokenizer.add_tokens(&user_defined);
    Ok(tokenizer)
}

fn string_array<'a>(file: &'a GgufFile, key: &str) -> Result<Vec<&'a str>, ModelError> {
    let items = file.require(key)?.as_array().unwrap_or_default();
    items
        .iter()
        .map(|item| {
            item.as_str().ok_or_else(|| ModelError::Format {
                path: file.path.clone(),
                message: format!("metadata `{key}` contains a non-string value {item:?}"),
            })
        })
        .collect()
}

/// Control tokens (as special tokens) and user-defined tokens, from
/// `tokenizer.ggml.token_type`; both empty when the file has no types.
fn added_tokens(
    file: &GgufFile,
    tokens: &[&str],
) -> Result<(Vec<AddedToken>, Vec<AddedToken>), ModelError> {
    let Some(types) = file
        .metadata
        .get("tokenizer.ggml.token_type")
        .and_then(GgufValue::as_array)
    else {
        return Ok((vec![], vec![]));
    };
    if types.len() != tokens.len() {
        return Err(ModelError::Format {
            path: file.path.clone(),
            message: format!(
                "tokenizer.ggml.token_type has {} entries but tokenizer.ggml.tokens has {}",
                types.len(),
                tokens.len()
            ),
        });
    }

    let mut special = Vec::new();
    let mut user_defined = Vec::new();
    for (token, token_type) in tokens.iter().zip(types) {
        match token_type.as_u64() {
            Some(TOKEN_TYPE_CONTROL) => special.push(AddedToken::from(token.to_string(), true)),
            Some(TOKEN_TYPE_USER_DEFINED) => {
                user_defined.push(AddedToken::from(token.to_string(), false))
            }
            _ => {}
        }
    }
    Ok((special, user_defined))
}
