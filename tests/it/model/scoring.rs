//! Target scoring: the prompt/target boundary, batching, and agreement with
//! an NLL computed by transformers.

use premem::model::score::{score, ScoreOptions, ScoreRequest, ScoreResult};
use premem::model::{LoadedModel, ModelError, Precision};
use tch::{Kind, Tensor};

use super::{expected, fixture_dir, with_smollm2, TINY_FIXTURES};

fn request(prompt: &str, target: &str) -> ScoreRequest {
    ScoreRequest {
        prompt: prompt.into(),
        target: target.into(),
    }
}

fn score_all(
    model: &LoadedModel,
    requests: &[ScoreRequest],
    token_budget: usize,
) -> Vec<ScoreResult> {
    score(model, requests, &ScoreOptions { token_budget }, &mut |_| {}).unwrap()
}

/// Mean NLL of the last `count` tokens of `ids`, from one full forward pass.
fn tail_nll(model: &LoadedModel, ids: &[i64], count: usize) -> f64 {
    let n = ids.len() as i64;
    let input = Tensor::from_slice(ids).view([1, n]);
    let positions = Tensor::arange(n, (Kind::Int64, tch::Device::Cpu)).view([1, n]);
    let mask = Tensor::ones([1, n], (Kind::Bool, tch::Device::Cpu));
    let logits = tch::no_grad(|| model.llama.forward(&input, &positions, &mask, None));
    let log_probs = logits
        .squeeze_dim(0)
        .to_kind(Kind::Double)
        .log_softmax(-1, Kind::Double);
    let total: f64 = (ids.len() - count..ids.len())
        .map(|t| -log_probs.double_value(&[t as i64 - 1, ids[t]]))
        .sum();
    total / count as f64
}

fn tiny_model() -> LoadedModel {
    LoadedModel::load(&fixture_dir("tiny_llama_tied"), Precision::F32).unwrap()
}

#[test]
fn boundary_token_belongs_to_prompt() {
    let model = tiny_model();
    // "Answer" is one token of the tiny vocabulary, so "Ans" + "wer: 12"
    // joins into a token that starts in the prompt and ends in the target.
    let (prompt, target) = ("Tom.\nAns", "wer: 12");
    let encoding = model
        .tokenizer
        .encode(format!("{prompt}{target}").as_str(), false)
        .unwrap();
    let spans_boundary = encoding
        .get_offsets()
        .iter()
        .any(|&(s, e)| s < prompt.len() && e > prompt.len());
    assert!(
        spans_boundary,
        "the fixture tokenizer no longer merges across the boundary"
    );

    let result = score_all(&model, &[request(prompt, target)], 8192)[0];
    let ids: Vec<i64> = encoding.get_ids().iter().map(|&i| i as i64).collect();
    // The joint text ends in "Answer", ":", " ", "1", "2"; the target owns
    // the last four.
    assert_eq!(result.target_tokens, 4);
    let want = tail_nll(&model, &ids, 4);
    assert!(
        (result.nll_mean - want).abs() < 1e-6,
        "{} vs {want}",
        result.nll_mean
    );
    assert!((result.perplexity - want.exp()).abs() < 1e-5);
}

#[test]
fn score_matches_python_nll() {
    for name in TINY_FIXTURES {
        let model = LoadedModel::load(&fixture_dir(name), Precision::F32).unwrap();
        let exp = &expected(name)["score"];
        let req = request(
            exp["prompt"].as_str().unwrap(),
            exp["target"].as_str().unwrap(),
        );
        let result = score_all(&model, &[req], 8192)[0];

        let ids = exp["ids"].as_array().unwrap().len();
        let start = exp["target_start"].as_u64().unwrap() as usize;
        let want = exp["nll_mean"].as_f64().unwrap();
        assert_eq!(result.target_tokens, ids - start, "{name}");
        assert!(
            (result.nll_mean - want).abs() < 1e-5,
            "{name}: {} vs python {want}",
            result.nll_mean
        );
    }
}

fn mixed_requests() -> Vec<ScoreRequest> {
    vec![
        request(
            "Question: Tom has 12 apples.\nAnswer:",
            " 12 + 30 = 42\nDone.",
        ),
        request("Q", " 7\nDone."),
        request(
            "Betty is saving money for a new wallet.\nAnswer:",
            " the total is 5 dollars.\nDone.",
        ),
        request("Find x.\nAnswer:", " \\boxed{7}\nDone."),
        request("héllo wörld\nAnswer:", " ✓\nDone."),
    ]
}

#[test]
fn batched_equals_one_at_a_time() {
    let model = tiny_model();
    let requests = mixed_requests();
    let batched = score_all(&model, &requests, 8192);
    let single: Vec<ScoreResult> = requests
        .iter()
        .map(|r| score_all(&model, std::slice::from_ref(r), 8192)[0])
        .collect();
    let tight = score_all(&model, &requests, 40);

    for (i, ((b, s), t)) in batched.iter().zip(&single).zip(&tight).enumerate() {
        assert_eq!(b.target_tokens, s.target_tokens, "request {i}");
        assert!(
            (b.nll_mean - s.nll_mean).abs() < 1e-5,
            "request {i}: {} vs {}",
            b.nll_mean,
            s.nll_mean
        );
        assert!(
            (t.nll_mean - s.nll_mean).abs() < 1e-5,
            "request {i}: {} vs {}",
            t.nll_mean,
            s.nll_mean
        );
    }
}

#[test]
fn progress_reaches_request_count() {
    let model = tiny_model();
    let requests = mixed_requests();
    let mut seen = Vec::new();
    score(
        &model,
        &requests,
        &ScoreOptions { token_budget: 40 },
        &mut |done| seen.push(done),
    )
    .unwrap();
    assert!(
        seen.len() > 1,
        "a budget of 40 tokens needs several batches"
    );
    assert_eq!(seen.last(), Some(&requests.len()));
    assert!(seen.windows(2).all(|w| w[0] < w[1]));
}

#[test]
fn invalid_requests_name_index() {
    let model = tiny_model();
    let long_target = " 1".repeat(200);
    let cases = [
        (request("Question:", ""), "no tokens"),
        (request("", "1"), "prompt is empty"),
        (request("Question:", &long_target), "max_position_embeddings"),
    ];
    for (bad, reason) in cases {
        let requests = vec![request("Q", " 1"), bad];
        let error = score(&model, &requests, &ScoreOptions::default(), &mut |_| {}).unwrap_err();
        assert!(
            matches!(error, ModelError::InvalidInput { index: 1, .. }),
            "{error}"
        );
        assert!(error.to_string().contains(reason), "{error}");
    }
}

#[test]
fn empty_prompt_scores_after_first_token() {
    let model = tiny_model();
    let target = " Natalia sold 48/2 = 24 clips in May.";
    let result = score_all(&model, &[request("", target)], 8192)[0];

    let encoding = model.tokenizer.encode(target, false).unwrap();
    let ids: Vec<i64> = encoding.get_ids().iter().map(|&i| i as i64).collect();
    assert_eq!(result.target_tokens, ids.len() - 1);
    let want = tail_nll(&model, &ids, ids.len() - 1);
    assert!((result.nll_mean - want).abs() < 1e-6, "{} vs {want}", result.nll_mean);
}

#[test]
fn smollm2_scores_real_target() {
    with_smollm2(|model| {
        let prompt = "Natalia sold clips to 48 of her friends in April, and then she sold half as many clips in May. How many clips did Natalia sell altogether in April and May?\nAnswer:";
        let target = " Natalia sold 48/2 = 24 clips in May.\nNatalia sold 48+24 = 72 clips altogether in April and May.\n#### 72\nDone.";
        let result = score_all(model, &[request(prompt, target)], 8192)[0];

        let encoding = model
            .tokenizer
            .encode(format!("{prompt}{target}").as_str(), false)
            .unwrap();
        let ids: Vec<i64> = encoding.get_ids().iter().map(|&i| i as i64).collect();
        let want = tail_nll(model, &ids, result.target_tokens);
        assert!(result.target_tokens > 30);
        assert!(
            (result.nll_mean - want).abs() < 1e-6,
            "{} vs {want}",
            result.nll_mean
        );
        assert!(result.perplexity > 1.0, "{}", result.perplexity);
        assert!(result.perplexity < 20.0, "{}", result.perplexity);
    });
}
