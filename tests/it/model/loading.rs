//! Checkpoint loading errors, saving and bf16 loading.

use std::path::Path;

use premem::model::{LoadedModel, ModelError, Precision};
use tch::{Kind, Tensor};

use super::{expected, fixture_dir, ids_of};

/// Copies a fixture folder into a fresh temporary folder.
fn copy_fixture(name: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(fixture_dir(name)).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.path().join(path.file_name().unwrap())).unwrap();
    }
    dir
}

fn edit_config(dir: &Path, edit: impl FnOnce(&mut serde_json::Value)) {
    let path = dir.join("config.json");
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    edit(&mut config);
    std::fs::write(&path, serde_json::to_string(&config).unwrap()).unwrap();
}

fn load_error(path: &Path) -> ModelError {
    match LoadedModel::load(path, Precision::F32) {
        Ok(_) => panic!("{} loaded, expected an error", path.display()),
        Err(e) => e,
    }
}

fn logits(model: &LoadedModel, ids: &[i64]) -> Tensor {
    let n = ids.len() as i64;
    let input = Tensor::from_slice(ids).view([1, n]);
    let positions = Tensor::arange(n, (Kind::Int64, tch::Device::Cpu)).view([1, n]);
    let mask = Tensor::ones([1, n], (Kind::Bool, tch::Device::Cpu));
    tch::no_grad(|| model.llama.forward(&input, &positions, &mask, None)).to_kind(Kind::Float)
}

#[test]
fn config_rejects_unknown_model_type() {
    let dir = copy_fixture("tiny_llama_tied");
    edit_config(dir.path(), |c| c["model_type"] = "gpt2".into());
    let message = load_error(dir.path()).to_string();
    assert!(message.contains("config.json"), "{message}");
    assert!(message.contains("model_type"), "{message}");
    assert!(message.contains("gpt2"), "{message}");
}

#[test]
fn config_reads_top_level_rope_theta() {
    let dir = copy_fixture("tiny_llama_tied");
    edit_config(dir.path(), |c| {
        c.as_object_mut().unwrap().remove("rope_parameters");
        c["rope_theta"] = 1234.0.into();
    });
    let model = LoadedModel::load(dir.path(), Precision::F32).unwrap();
    assert_eq!(model.llama.config.rope_theta, 1234.0);
}

#[test]
fn config_reads_llama3_rope_scaling() {
    let model = LoadedModel::load(&fixture_dir("tiny_llama_untied_rope3"), Precision::F32).unwrap();
    let scaling = model.llama.config.rope_scaling.clone().unwrap();
    assert_eq!(scaling.factor, 8.0);
    assert_eq!(scaling.original_max_position_embeddings, 16);
    assert_eq!(model.llama.config.rope_theta, 500000.0);
    assert!(!model.llama.config.tie_word_embeddings);
}

#[test]
fn missing_tensor_names_file_and_tensor() {
    let dir = copy_fixture("tiny_llama_tied");
    edit_config(dir.path(), |c| c["tie_word_embeddings"] = false.into());
    let error = load_error(dir.path());
    assert!(matches!(error, ModelError::MissingTensor { .. }), "{error}");
    assert!(error.to_string().contains("lm_head.weight"), "{error}");
    assert!(error.to_string().contains("model.safetensors"), "{error}");
}

#[test]
fn shape_mismatch_names_tensor() {
    let dir = copy_fixture("tiny_llama_tied");
    edit_config(dir.path(), |c| c["intermediate_size"] = 100.into());
    let error = load_error(dir.path());
    assert!(matches!(error, ModelError::ShapeMismatch { .. }), "{error}");
    assert!(error.to_string().contains("mlp"), "{error}");
}

#[test]
fn load_rejects_unknown_path_kinds() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("model.bin");
    std::fs::write(&text, b"x").unwrap();
    assert!(matches!(load_error(&text), ModelError::Unsupported { .. }));
    assert!(matches!(
        load_error(&dir.path().join("absent")),
        ModelError::Io { .. }
    ));
    assert!(matches!(load_error(dir.path()), ModelError::Io { .. }));
}

#[test]
fn saved_checkpoint_reloads_identically() {
    for name in ["tiny_llama_untied_rope3", "tiny_qwen2_bias"] {
        let model = LoadedModel::load(&fixture_dir(name), Precision::F32).unwrap();
        let out = tempfile::tempdir().unwrap();
        model.save_checkpoint(out.path()).unwrap();
        for file in ["config.json", "model.safetensors", "tokenizer.json"] {
            assert!(out.path().join(file).is_file(), "{name}: {file} missing");
        }

        let reloaded = LoadedModel::load(out.path(), Precision::F32).unwrap();
        assert_eq!(reloaded.llama.config, model.llama.config, "{name}");
        let ids = ids_of(&expected(name)["input_ids"]);
        let diff = (logits(&model, &ids) - logits(&reloaded, &ids))
            .abs()
            .max()
            .double_value(&[]);
        assert_eq!(diff, 0.0, "{name}");
    }
}

#[test]
fn bf16_logits_close_to_f32() {
    let name = "tiny_llama_tied";
    let f32_model = LoadedModel::load(&fixture_dir(name), Precision::F32).unwrap();
    let bf16_model = LoadedModel::load(&fixture_dir(name), Precision::Bf16).unwrap();
    for (name, variable) in bf16_model.vs.variables() {
        assert_eq!(variable.kind(), Kind::BFloat16, "{name}");
    }

    let ids = ids_of(&expected(name)["input_ids"]);
    let diff = (logits(&f32_model, &ids) - logits(&bf16_model, &ids))
        .abs()
        .max()
        .double_value(&[]);
    assert!(diff > 0.0, "bf16 should round somewhere");
    assert!(diff < 0.1, "max abs difference {diff}");
}
