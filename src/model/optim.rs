//! AdamW, its learning-rate schedule and gradient clipping, written out on
//! the VarStore's tensors so that the optimizer moments can be saved and a
//! resumed run continues bit for bit.

use tch::{nn::VarStore, Kind, Tensor};

use super::ModelError;

/// AdamW hyperparameters, named as in `torch.optim.AdamW`.
#[derive(Debug, Clone, Copy)]
pub struct AdamWConfig {
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    /// Decoupled decay: each step multiplies decayed weights by (1 - lr * weight_decay).
    pub weight_decay: f64,
}

/// One trainable tensor and its first and second moment estimates.
struct Parameter {
    name: String,
    tensor: Tensor,
    /// Whether weight decay applies: to matrices, not to 1-D tensors (norm weights, biases).
    decay: bool,
    first_moment: Tensor,
    second_moment: Tensor,
}

/// AdamW over every trainable variable of a VarStore, in name order.
pub struct AdamW {
    config: AdamWConfig,
    parameters: Vec<Parameter>,
    /// Updates applied so far, which set the bias corrections.
    steps: u64,
}

impl AdamW {
    pub fn new(vs: &VarStore, config: AdamWConfig) -> Self {
        let mut variables: Vec<(String, Tensor)> = vs.variables().into_iter().collect();
        variables.sort_by(|a, b| a.0.cmp(&b.0));
        let parameters = variables
            .into_iter()
            .filter(|(_, tensor)| tensor.requires_grad())
            .map(|(name, tensor)| Parameter {
                decay: tensor.dim() >= 2,
                first_moment: tensor.zeros_like(),
                second_moment: tensor.zeros_like(),
                name,
                tensor,
            })
            .collect();
        AdamW {
            config,
            parameters,
            steps: 0,
        }
    }

    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// Sets every gradient to zero.
    pub fn zero_grad(&mut self) {
        for parameter in &mut self.parameters {
            parameter.tensor.zero_grad();
        }
    }

    /// Scales the gradients so that their global L2 norm is at most
    /// `max_norm`, as `torch.nn.utils.clip_grad_norm_` does (with its 1e-6
    /// guard). Returns the norm before clipping.
    pub fn clip_grad_norm(&mut self, max_norm: f64) -> f64 {
        let _guard = tch::no_grad_guard();
        let mut squares = 0.0;
        for parameter in &self.parameters {
            let grad = parameter.tensor.grad();
            if grad.defined() {
                squares += grad.pow_tensor_scalar(2).sum(Kind::Double).double_value(&[]);
            }
        }
        let norm = squares.sqrt();

        let coefficient = max_norm / (norm + 1e-6);
        if coefficient < 1.0 {
            for parameter in &self.parameters {
                let mut grad = parameter.tensor.grad();
                if grad.defined() {
                    let _ = grad.g_mul_scalar_(coefficient);
                }
            }
        }
        norm
    }

    /// Applies one AdamW update at learning rate `lr` to every parameter
    /// with a gradient. Same formula as `torch.optim.AdamW` (PyTorch 2.x).
    pub fn step(&mut self, lr: f64) {
        let _guard = tch::no_grad_guard();
        self.steps += 1;
        let AdamWConfig {
            beta1,
            beta2,
            eps,
            weight_decay,
        } = self.config;
        let bias_correction1 = 1.0 - beta1.powi(self.steps as i32);
        let bias_correction2 = 1.0 - beta2.powi(self.steps as i32);

        for parameter in &mut self.parameters {
            let grad = parameter.tensor.grad();
            if !grad.defined() {
                continue;
            }

            if parameter.decay && weight_decay != 0.0 {
                let _ = parameter.tensor.g_mul_scalar_(1.0 - lr * weight_decay);
            }

            let _ = parameter.first_moment.g_mul_scalar_(beta1);
            let _ = parameter.first_moment.g_add_(&(&grad * (1.0 - beta1)));
            let _ = parameter.second_moment.g_mul_scalar_(beta2);
            let _ = parameter.second_moment.addcmul_(&grad, &(&grad * (1.0 - beta2)));

            let denominator = parameter.second_moment.sqrt() / bias_correction2.sqrt() + eps;
            let update = &parameter.first_moment / denominator * (lr / bias_correction1);
            let _ = parameter.tensor.g_sub_(&update);
        }
    }

    /// Returns the moments as named tensors (`exp_avg.NAME`, `exp_avg_sq.NAME`) for saving.
    pub fn moments(&self) -> Vec<(String, Tensor)> {
        let mut named = Vec::with_capacity(2 * self.parameters.len());
        for parameter in &self.parameters {
            named.push((
                format!("exp_avg.{}", parameter.name),
                parameter.first_moment.shallow_clone(),
            ));
            named.push((
                format!("exp_avg_sq.{}", parameter.name),
                parameter.second_moment.shallow_clone(),
            ));
        }
        named
    }

    /// Restores moments saved by [`AdamW::moments`] and the update count.
    /// Every parameter's moments must be present with its shape.
    pub fn restore(&mut self, saved: Vec<(String, Tensor)>, steps: u64) -> Result<(), String> {
        let saved: std::collections::HashMap<String, Tensor> = saved.into_iter().collect();
        let _guard = tch::no_grad_guard();
        for parameter in &mut self.parameters {
            for (prefix, moment) in [
                ("exp_avg", &mut parameter.first_moment),
                ("exp_avg_sq", &mut parameter.second_moment),
            ] {
                let key = format!("{prefix}.{}", parameter.name);
                let value = saved.get(&key).ok_or_else(|| format!("missing tensor `{key}`"))?;
                if value.size() != moment.size() {
                    return Err(format!(
                        "tensor `{key}` has shape {:?}, expected {:?}",
                        value.size(),
                        moment.size()
                    ));
                }
                moment.copy_(value);
            }
        }
        self.steps = steps;
        Ok(())
    }
}

/// Linear warmup to the peak learning rate, then linear decay to 0.
///
/// Step s (0-based) of `total_steps` uses peak * (s + 1) / warmup during
/// warmup and peak * (total - s) / (total - warmup) after it. Unlike
/// transformers' `get_linear_schedule_with_warmup`, the first step is not
/// spent at learning rate 0, and the last step uses a small positive rate.
#[derive(Debug, Clone, Copy)]
pub struct LinearSchedule {
    pub peak: f64,
    pub warmup_steps: u64,
    pub total_steps: u64,
}

impl LinearSchedule {
    /// Warmup lasts ceil(warmup_ratio * total_steps) steps.
    pub fn new(peak: f64, warmup_ratio: f64, total_steps: u64) -> Self {
        let warmup_steps = ((warmup_ratio * total_steps as f64).ceil() as u64).min(total_steps);
        LinearSchedule {
            peak,
            warmup_steps,
            total_steps,
        }
    }

    pub fn learning_rate(&self, step: u64) -> f64 {
        if step < self.warmup_steps {
            return self.peak * (step + 1) as f64 / self.warmup_steps as f64;
        }
        let remaining = self.total_steps.saturating_sub(step) as f64;
        let decay_steps = (self.total_steps - self.warmup_steps).max(1) as f64;
        self.peak * remaining / decay_steps
    }
}

/// Fails unless every variable is f32: training keeps f32 master weights.
pub fn require_f32(vs: &VarStore) -> Result<(), ModelError> {
    for (name, tensor) in vs.variables() {
        if tensor.kind() != Kind::Float {
            return Err(ModelError::Unsupported {
                path: name.into(),
                what: "parameter dtype for training".into(),
                value: format!("{:?}", tensor.kind()),
                supported: "f32 (load the model with precision f32)".into(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_cases() {
        let schedule = LinearSchedule::new(1.0, 0.25, 8);
        let rates: Vec<f64> = (0..8).map(|s| schedule.learning_rate(s)).collect();
        assert_eq!(schedule.warmup_steps, 2);
        assert_eq!(
            rates,
            vec![0.5, 1.0, 1.0, 5.0 / 6.0, 4.0 / 6.0, 3.0 / 6.0, 2.0 / 6.0, 1.0 / 6.0]
        );
    }

    #[test]
    fn schedule_without_warmup_decays() {
        let schedule = LinearSchedule::new(2.0, 0.0, 4);
        let rates: Vec<f64> = (0..4).map(|s| schedule.learning_rate(s)).collect();
        assert_eq!(rates, vec![2.0, 1.5, 1.0, 0.5]);
    }

    /// One AdamW step against values worked out by hand for a single weight.
    #[test]
    fn adamw_step_matches_formula() {
        let vs = VarStore::new(tch::Device::Cpu);
        let weight = vs
            .root()
            .var_copy("w", &Tensor::from_slice(&[1.0f32, -2.0]).view([1, 2]));
        let norm = vs.root().var_copy("norm", &Tensor::from_slice(&[3.0f32]));
        let config = AdamWConfig {
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.1,
        };
        let mut optimizer = AdamW::new(&vs, config);

        let loss = (&weight * &weight).sum(Kind::Float) + (&norm * 2.0).sum(Kind::Float);
        loss.backward();
        optimizer.step(0.01);

        // The first bias-corrected step moves each weight by lr * sign(grad)
        // (up to eps), after decay by (1 - lr * wd) for matrices only.
        let w: Vec<f32> = Vec::try_from(weight.view([-1])).unwrap();
        let n: Vec<f32> = Vec::try_from(norm.view([-1])).unwrap();
        assert!((w[0] - (1.0 * 0.999 - 0.01)).abs() < 1e-6, "{w:?}");
        assert!((w[1] - (-2.0 * 0.999 + 0.01)).abs() < 1e-6, "{w:?}");
        assert!((n[0] - (3.0 - 0.01)).abs() < 1e-6, "{n:?}");
    }

    #[test]
    fn clip_scales_to_max_norm() {
        let vs = VarStore::new(tch::Device::Cpu);
        let weight = vs.root().var_copy("w", &Tensor::from_slice(&[3.0f32, 4.0]));
        let mut optimizer = AdamW::new(
            &vs,
            AdamWConfig {
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: 0.0,
            },
        );
        (&weight * &weight).sum(Kind::Float).backward();

        let norm = optimizer.clip_grad_norm(1.0);

        let grad: Vec<f32> = Vec::try_from(weight.grad()).unwrap();
        assert!((norm - 10.0).abs() < 1e-9);
        assert!((grad[0] - 0.6).abs() < 1e-5, "{grad:?}");
        assert!((grad[1] - 0.8).abs() < 1e-5, "{grad:?}");
    }
}
