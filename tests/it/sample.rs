//! Sampling on a tiny random model: KV-cache correctness, determinism under
//! batching and reordering, stop handling and option checks.

use premem::model::sample::{generate, sample, PromptTokens, Sample, SampleOptions, SampleRequest, StopReason};
use premem::model::{LoadedModel, ModelError};
use tch::{Kind, Tensor};

use crate::tiny_model::{byte_tokenizer, tiny_model};

fn requests(n: usize) -> Vec<SampleRequest> {
    (0..n)
        .map(|i| SampleRequest {
            prompt: format!("Q{i}: what is {} + {}?{}\nAnswer:", i * 3, i + 1, " pad".repeat(i % 3)),
            example_id: format!("ex-{i}"),
        })
        .collect()
}

fn greedy(max_new_tokens: usize, batch_size: usize) -> SampleOptions {
    SampleOptions {
        k: 1,
        temperature: 0.0,
        top_p: 1.0,
        max_new_tokens,
        stop: vec![],
        seed: 0,
        batch_size,
    }
}

fn run(model: &LoadedModel, requests: &[SampleRequest], options: &SampleOptions) -> Vec<Sample> {
    sample(model, requests, options, &mut |_| {}).expect("sampling succeeds")
}

fn texts(samples: &[Sample]) -> Vec<String> {
    samples.iter().map(|s| s.text.clone()).collect()
}

/// Greedy tokens by a full forward pass over the whole sequence at every step.
fn greedy_without_cache(model: &LoadedModel, prompt: &[i64], steps: usize) -> Vec<i64> {
    let _guard = tch::no_grad_guard();
    let mut ids = prompt.to_vec();
    for _ in 0..steps {
        let n = ids.len() as i64;
        let input = Tensor::from_slice(&ids).view([1, n]);
        let positions = Tensor::arange(n, (Kind::Int64, tch::Device::Cpu)).view([1, n]);
        let mask = Tensor::ones([1, n], (Kind::Bool, tch::Device::Cpu));
        let logits = model.llama.forward(&input, &positions, &mask, None);
        let next = logits.select(1, n - 1).argmax(-1, false).int64_value(&[0]);
        ids.push(next);
    }
    ids[prompt.len()..].to_vec()
}

#[test]
fn greedy_matches_uncached_forward() {
    let model = tiny_model(7, 0.5);
    let prompts: Vec<PromptTokens> = [vec![5i64, 9, 200, 31], vec![17], vec![1, 2, 3, 4, 5, 6, 7, 8, 9]]
        .into_iter()
        .enumerate()
        .map(|(i, ids)| PromptTokens {
            ids,
            example_id: i.to_string(),
        })
        .collect();

    let mut options = greedy(12, 3);
    // Every id is a byte, so no token counts as EOS and all 12 are generated.
    let mut no_eos = model;
    no_eos.llama.config.eos_token_ids.clear();
    options.stop.clear();
    let samples = generate(&no_eos, &prompts, &options, &mut |_| {}).unwrap();

    for (prompt, sample) in prompts.iter().zip(&samples) {
        let expected = greedy_without_cache(&no_eos, &prompt.ids, 12);
        let expected: Vec<u32> = expected.iter().map(|&id| id as u32).collect();
        let expected_text = no_eos.tokenizer.decode(&expected, true).unwrap();
        assert_eq!(sample.text, expected_text, "prompt {:?}", prompt.ids);
        assert_eq!(sample.tokens, 12);
    }
}

#[test]
fn greedy_same_for_batch_one_and_eight() {
    let model = tiny_model(1, 0.5);
    let requests = requests(8);
    let one = run(&model, &requests, &greedy(24, 1));
    let eight = run(&model, &requests, &greedy(24, 8));
    assert_eq!(texts(&one), texts(&eight));
}

#[test]
fn sampled_same_under_reordering() {
    let model = tiny_model(2, 0.5);
    let options = SampleOptions {
        k: 3,
        temperature: 1.0,
        top_p: 0.9,
        max_new_tokens: 16,
        stop: vec![],
        seed: 11,
        batch_size: 12,
    };
    let forward = requests(8);
    let mut reversed = forward.clone();
    reversed.reverse();

    let a = run(&model, &forward, &options);
    let b = run(&model, &reversed, &options);

    assert_eq!(a.len(), 24);
    assert_eq!(b.len(), 24);
    for sample in &a {
        let mirrored = &b[(7 - sample.request_index) * 3 + sample.sample_index];
        assert_eq!(
            sample.text, mirrored.text,
            "request {} sample {}",
            sample.request_index, sample.sample_index
        );
    }
}

#[test]
fn sampled_samples_vary_with_seed() {
    let model = tiny_model(2, 0.5);
    let mut options = SampleOptions {
        k: 4,
        max_new_tokens: 16,
        stop: vec![],
        ..SampleOptions::default()
    };
    let first = texts(&run(&model, &requests(2), &options));
    let again = texts(&run(&model, &requests(2), &options));
    options.seed = 1;
    let other = texts(&run(&model, &requests(2), &options));

    assert_eq!(first, again);
    assert_ne!(first, other);
    assert_ne!(first[0], first[1], "samples of one prompt differ");
}

#[test]
fn results_ordered_by_request_then_sample() {
    let model = tiny_model(3, 0.5);
    let options = SampleOptions {
        k: 3,
        max_new_tokens: 4,
        batch_size: 4,
        ..SampleOptions::default()
    };
    let mut finished = 0;
    let samples = sample(&model, &requests(5), &options, &mut |n| finished = n).unwrap();

    let order: Vec<(usize, usize)> = samples.iter().map(|s| (s.request_index, s.sample_index)).collect();
    let expected: Vec<(usize, usize)> = (0..5).flat_map(|r| (0..3).map(move |s| (r, s))).collect();
    assert_eq!(order, expected);
    assert_eq!(finished, 15);
}

#[test]
fn stop_string_cuts_text() {
    let model = tiny_model(4, 0.5);
    let requests = requests(1);
    let free = run(&model, &requests, &greedy(30, 1)).remove(0);

    // A stop string taken from the middle of the free-running output.
    let chars: Vec<(usize, char)> = free.text.char_indices().collect();
    assert!(chars.len() >= 8, "output too short: {:?}", free.text);
    let (start, end) = (chars[4].0, chars[6].0);
    let stop = free.text[start..end].to_string();
    let cut = free.text.find(&stop).unwrap();

    let mut options = greedy(30, 1);
    options.stop = vec!["never appears \u{1}".into(), stop.clone()];
    let stopped = run(&model, &requests, &options).remove(0);

    assert_eq!(stopped.text, free.text[..cut], "stop {stop:?}");
    assert_eq!(stopped.stop_reason, StopReason::Stop);
    assert!(stopped.tokens < 30);
}

#[test]
fn length_limit_stops_generation() {
    let mut model = tiny_model(5, 0.5);
    model.llama.config.eos_token_ids.clear();
    let samples = run(&model, &requests(2), &greedy(5, 2));
    for sample in &samples {
        assert_eq!(sample.tokens, 5);
        assert_eq!(sample.stop_reason, StopReason::Length);
    }
}

#[test]
fn eos_token_ends_sequence() {
    let mut model = tiny_model(5, 0.5);
    model.llama.config.eos_token_ids = (0..257).collect();
    let samples = run(&model, &requests(2), &greedy(5, 2));
    for sample in &samples {
        assert_eq!(sample.text, "");
        assert_eq!(sample.tokens, 1);
        assert_eq!(sample.stop_reason, StopReason::Eos);
    }
}

#[test]
fn zero_new_tokens_returns_empty() {
    let model = tiny_model(5, 0.5);
    let samples = run(&model, &requests(3), &greedy(0, 2));
    assert_eq!(samples.len(), 3);
    for sample in &samples {
        assert_eq!(sample.text, "");
        assert_eq!(sample.tokens, 0);
        assert_eq!(sample.stop_reason, StopReason::Length);
    }
}

#[test]
fn invalid_options_rejected() {
    let model = tiny_model(5, 0.5);
    let base = SampleOptions::default();
    let cases = [
        ("k 0", SampleOptions { k: 0, ..base.clone() }),
        (
            "negative temperature",
            SampleOptions {
                temperature: -0.1,
                ..base.clone()
            },
        ),
        (
            "NaN temperature",
            SampleOptions {
                temperature: f64::NAN,
                ..base.clone()
            },
        ),
        (
            "top_p 0",
            SampleOptions {
                top_p: 0.0,
                ..base.clone()
            },
        ),
        (
            "top_p above 1",
            SampleOptions {
                top_p: 1.5,
                ..base.clone()
            },
        ),
        (
            "batch 0",
            SampleOptions {
                batch_size: 0,
                ..base.clone()
            },
        ),
        (
            "empty stop",
            SampleOptions {
                stop: vec![String::new()],
                ..base.clone()
            },
        ),
    ];
    for (name, options) in cases {
        let result = sample(&model, &requests(1), &options, &mut |_| {});
        assert!(matches!(result, Err(ModelError::InvalidOptions(_))), "{name}");
    }
}

#[test]
fn overlong_prompt_rejected() {
    let model = tiny_model(5, 0.5);
    let long = vec![SampleRequest {
        prompt: "x".repeat(600),
        example_id: "long".into(),
    }];
    let result = sample(&model, &long, &greedy(4, 1), &mut |_| {});
    assert!(matches!(result, Err(ModelError::InvalidInput { index: 0, .. })));
}

/// Greedy ids equal those of transformers' `generate` on a random model
/// saved by tests/fixtures/tiny-greedy/make_fixture.py.
#[test]
fn greedy_matches_transformers() {
    let dir = crate::helpers::repo_root().join("tests/fixtures/tiny-greedy");
    let read_json = |name: &str| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(dir.join(name)).unwrap()).unwrap()
    };
    let config = read_json("config.json");
    let expected = read_json("expected.json");

    let size = |key: &str| config[key].as_u64().unwrap() as usize;
    let llama_config = premem::model::LlamaConfig {
        model_type: "llama".into(),
        vocab_size: size("vocab_size"),
        hidden_size: size("hidden_size"),
        intermediate_size: size("intermediate_size"),
        num_hidden_layers: size("num_hidden_layers"),
        num_attention_heads: size("num_attention_heads"),
        num_key_value_heads: size("num_key_value_heads"),
        head_dim: size("head_dim"),
        rms_norm_eps: config["rms_norm_eps"].as_f64().unwrap(),
        rope_theta: config["rope_parameters"]["rope_theta"].as_f64().unwrap(),
        rope_scaling: None,
        max_position_embeddings: size("max_position_embeddings"),
        tie_word_embeddings: true,
        attention_bias: false,
        bos_token_id: None,
        eos_token_ids: vec![],
    };
    let mut vs = tch::nn::VarStore::new(tch::Device::Cpu);
    let llama = premem::model::Llama::new(&vs.root(), &llama_config);
    vs.load(dir.join("model.safetensors")).unwrap();
    let model = LoadedModel {
        vs,
        llama,
        tokenizer: byte_tokenizer(),
        source: dir.clone(),
        precision: premem::model::Precision::F32,
    };

    let cases = expected["cases"].as_array().unwrap();
    let ids = |value: &serde_json::Value| -> Vec<i64> {
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|id| id.as_i64().unwrap())
            .collect()
    };
    let prompts: Vec<PromptTokens> = cases
        .iter()
        .enumerate()
        .map(|(i, case)| PromptTokens {
            ids: ids(&case["prompt"]),
            example_id: i.to_string(),
        })
        .collect();
    let samples = generate(&model, &prompts, &greedy(20, 3), &mut |_| {}).unwrap();

    for (case, sample) in cases.iter().zip(&samples) {
        let want: Vec<u32> = ids(&case["greedy"]).iter().map(|&id| id as u32).collect();
        assert_eq!(sample.token_ids, want, "prompt {}", case["prompt"]);
    }
}

/// Greedy ids equal transformers' on the loader's fixtures (tied and untied
/// llama, qwen2 with biases), with EOS not ending generation as there.
#[test]
fn greedy_matches_loader_fixtures() {
    for name in crate::model::TINY_FIXTURES {
        let mut model = LoadedModel::load(&crate::model::fixture_dir(name), premem::model::Precision::F32).unwrap();
        model.llama.config.eos_token_ids.clear();
        let expected = crate::model::expected(name);
        let prompt = PromptTokens {
            ids: crate::model::ids_of(&expected["generate_prompt_ids"]),
            example_id: name.into(),
        };
        let want: Vec<u32> = crate::model::ids_of(&expected["generate_new_ids"])
            .iter()
            .map(|&id| id as u32)
            .collect();

        let samples = generate(&model, &[prompt], &greedy(want.len(), 1), &mut |_| {}).unwrap();

        assert_eq!(samples[0].token_ids, want, "fixture {name}");
    }
}

#[test]
fn sample_command_writes_jsonl() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("train.jsonl");
    let lines = [
        r#"{"question": "Tom has 2 apples. How many?", "answer": "He has 2.\n#### 2"}"#,
        r#"{"question": "What is 3 + 4?", "answer": "3 + 4 = 7\n#### 7"}"#,
        r#"{"question": "Unused", "answer": "It is 0.\n#### 0"}"#,
    ];
    std::fs::write(&data, lines.join("\n") + "\n").unwrap();

    let output = std::process::Command::new(env!("CARGO_BIN_EXE_premem"))
        .args(["--quiet", "sample", "--format", "gsm8k", "--limit", "2", "--k", "2"])
        .args(["--max-new-tokens", "4", "--seed", "5"])
        .arg("--model")
        .arg(crate::model::fixture_dir("tiny_llama_tied"))
        .arg("--data")
        .arg(&data)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));

    let rows: Vec<serde_json::Value> = String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let keys: Vec<(u64, u64)> = rows
        .iter()
        .map(|row| (row["index"].as_u64().unwrap(), row["sample"].as_u64().unwrap()))
        .collect();
    assert_eq!(keys, [(0, 0), (0, 1), (1, 0), (1, 1)]);
    for row in &rows {
        assert!(row["id"].is_string(), "{row}");
        assert!(row["text"].is_string(), "{row}");
        assert!(row["tokens"].as_u64().unwrap() <= 4, "{row}");
        assert!(row["stop_reason"].is_string(), "{row}");
    }
}

#[test]
fn sample_command_rejects_bad_top_p() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_premem"))
        .args(["--quiet", "sample", "--format", "gsm8k", "--top-p", "2"])
        .arg("--model")
        .arg(crate::model::fixture_dir("tiny_llama_tied"))
        .args(["--data", "unused.jsonl"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&output.stderr).contains("top_p"));
}

/// Greedy ids equal transformers' on SmolLM2 (see
/// tests/fixtures/make_smollm2_greedy.py); skipped without the GGUF file.
#[test]
fn greedy_matches_transformers_smollm2() {
    let text = std::fs::read_to_string(crate::helpers::repo_root().join("tests/fixtures/smollm2_greedy.json")).unwrap();
    let expected: serde_json::Value = serde_json::from_str(&text).unwrap();

    crate::model::with_smollm2(|model| {
        for case in expected["cases"].as_array().unwrap() {
            let prompt = PromptTokens {
                ids: crate::model::ids_of(&case["prompt_ids"]),
                example_id: "smollm2".into(),
            };
            let want: Vec<u32> = crate::model::ids_of(&case["greedy"])
                .iter()
                .map(|&id| id as u32)
                .collect();

            let samples = generate(model, &[prompt], &greedy(want.len(), 1), &mut |_| {}).unwrap();

            assert_eq!(samples[0].token_ids, want, "prompt {}", case["prompt"]);
        }
    });
}
