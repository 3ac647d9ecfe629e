//! Forward parity with transformers: tiny fixtures to 1e-4, SmolLM2 GGUF
//! against transformers' GGUF loader.

use premem::model::{LoadedModel, Precision};
use tch::{Kind, Tensor};

use super::{expected, fixture_dir, ids_of, with_smollm2, TINY_FIXTURES};

/// Logits `[seq, vocab]` of one unpadded sequence.
fn logits_of(model: &LoadedModel, ids: &[i64]) -> Tensor {
    let n = ids.len() as i64;
    let input = Tensor::from_slice(ids).view([1, n]);
    let positions = Tensor::arange(n, (Kind::Int64, tch::Device::Cpu)).view([1, n]);
    let mask = Tensor::ones([1, n], (Kind::Bool, tch::Device::Cpu));
    tch::no_grad(|| model.llama.forward(&input, &positions, &mask, None))
        .to_kind(Kind::Float)
        .squeeze_dim(0)
}

fn max_abs_diff(a: &Tensor, b: &Tensor) -> f64 {
    (a - b).abs().max().double_value(&[])
}

#[test]
fn tiny_fixture_logits_match_transformers() {
    for name in TINY_FIXTURES {
        let model = LoadedModel::load(&fixture_dir(name), Precision::F32).unwrap();
        let exp = expected(name);
        let ids = ids_of(&exp["input_ids"]);
        let shape = ids_of(&exp["logits_shape"]);
        let values: Vec<f32> = exp["logits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        let want = Tensor::from_slice(&values).view(shape.as_slice());

        let got = logits_of(&model, &ids);
        assert_eq!(got.size(), shape, "{name}");
        let diff = max_abs_diff(&got, &want);
        assert!(diff < 1e-4, "{name}: max abs logit difference {diff}");
    }
}

#[test]
fn tiny_fixture_greedy_matches_generate() {
    for name in TINY_FIXTURES {
        let model = LoadedModel::load(&fixture_dir(name), Precision::F32).unwrap();
        let exp = expected(name);
        let mut ids = ids_of(&exp["generate_prompt_ids"]);
        let want = ids_of(&exp["generate_new_ids"]);

        for _ in 0..want.len() {
            let next = logits_of(&model, &ids)
                .get(-1)
                .argmax(-1, false)
                .int64_value(&[]);
            ids.push(next);
        }
        assert_eq!(&ids[ids.len() - want.len()..], want.as_slice(), "{name}");
    }
}

#[test]
fn tiny_fixture_tokenizer_matches_python() {
    for name in TINY_FIXTURES {
        let model = LoadedModel::load(&fixture_dir(name), Precision::F32).unwrap();
        let score = &expected(name)["score"];
        let text = format!(
            "{}{}",
            score["prompt"].as_str().unwrap(),
            score["target"].as_str().unwrap()
        );
        let encoding = model.tokenizer.encode(text.as_str(), false).unwrap();
        let ids: Vec<i64> = encoding.get_ids().iter().map(|&i| i as i64).collect();
        assert_eq!(ids, ids_of(&score["ids"]), "{name}");
    }
}

#[test]
fn smollm2_tokenizer_matches_reference() {
    with_smollm2(|model| {
        let reference = smollm2_reference();
        for case in reference["strings"].as_array().unwrap() {
            let text = case["text"].as_str().unwrap();
            let want: Vec<u32> = ids_of(&case["ids"]).iter().map(|&i| i as u32).collect();

            let encoding = model.tokenizer.encode(text, false).unwrap();
            assert_eq!(encoding.get_ids(), want.as_slice(), "encode {text:?}");
            let decoded = model.tokenizer.decode(&want, false).unwrap();
            assert_eq!(decoded, text, "decode {text:?}");
        }
    });
}

#[test]
fn smollm2_tokenizer_splits_digits() {
    with_smollm2(|model| {
        let encoding = model.tokenizer.encode("2024", false).unwrap();
        assert_eq!(encoding.get_ids().len(), 4);
        let no_bos = model.tokenizer.encode("Hi", true).unwrap();
        assert_ne!(no_bos.get_ids()[0], 1, "no BOS token is added");
    });
}

fn smollm2_reference() -> serde_json::Value {
    let text = std::fs::read_to_string(fixture_dir("smollm2_expected.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Tolerance for SmolLM2 logits (magnitudes up to about 37) against
/// transformers, both in f32. The measured gap was 2.9e-5 (this test with
/// --nocapture, 2-core CPU, 2026-12-04).
const SMOLLM2_LOGIT_TOLERANCE: f64 = 1e-4;

#[test]
fn smollm2_logits_match_transformers() {
    with_smollm2(|model| {
        let reference = smollm2_reference();
        let ids = ids_of(&reference["input_ids"]);
        let columns = ids_of(&reference["columns"]);
        let logits = logits_of(model, &ids);

        let rows = reference["logits_at_columns"].as_array().unwrap();
        let want: Vec<f32> = rows
            .iter()
            .flat_map(|row| {
                row.as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_f64().unwrap() as f32)
            })
            .collect();
        let want = Tensor::from_slice(&want).view([rows.len() as i64, columns.len() as i64]);
        let got = logits.index_select(1, &Tensor::from_slice(&columns));
        let diff = max_abs_diff(&got, &want);
        eprintln!("SmolLM2 max abs logit difference against transformers: {diff:.2e}");
        assert!(
            diff < SMOLLM2_LOGIT_TOLERANCE,
            "max abs logit difference {diff}"
        );

        let top1_want: Vec<i64> = reference["top5"]
            .as_array()
            .unwrap()
            .iter()
            .map(|row| row[0].as_i64().unwrap())
            .collect();
        let top1_got = Vec::<i64>::try_from(logits.argmax(-1, false)).unwrap();
        assert_eq!(top1_got, top1_want);
    });
}
