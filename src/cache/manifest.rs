//! Manifests: everything a stage's output depends on, in typed form. The
//! cache key is the SHA-256 of a manifest's canonical [`Value`]; the
//! manifest itself is written as `manifest.json` beside the outputs so that
//! `premem explain` can list why a key changed.

use std::collections::BTreeMap;
use std::fmt;

use super::value::Value;

/// Version of the libtorch binding premem is built with. Part of every key
/// because a new libtorch may change numerics.
// NOTE: keep in step with the `torch-sys` entry of Cargo.toml; a unit test
// compares the two.
pub const LIBTORCH_BINDING: &str = "torch-sys 0.26.0";

#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    /// Stage name, e.g. `fine-tune`.
    pub stage: String,
    /// Format version of the stage's code and outputs; bumped when the
    /// stage's output changes for the same inputs.
    pub stage_version: u32,
    pub premem_version: String,
    pub libtorch: String,
    /// Resolved parameters by name.
    pub params: BTreeMap<String, Value>,
    /// SHA-256 (hex) of each input file, by role (`train_data`, `model`).
    pub inputs: BTreeMap<String, String>,
    /// Keys of the upstream entries this stage reads, by role.
    pub upstream: BTreeMap<String, String>,
}

impl Manifest {
    pub fn new(stage: &str, stage_version: u32) -> Manifest {
        Manifest {
            stage: stage.to_string(),
            stage_version,
            premem_version: env!("CARGO_PKG_VERSION").to_string(),
            libtorch: LIBTORCH_BINDING.to_string(),
            params: BTreeMap::new(),
            inputs: BTreeMap::new(),
            upstream: BTreeMap::new(),
        }
    }

    pub fn param(mut self, name: &str, value: impl Into<Value>) -> Manifest {
        self.params.insert(name.to_string(), value.into());
        self
    }

    pub fn input(mut self, role: &str, digest: &str) -> Manifest {
        self.inputs.insert(role.to_string(), digest.to_string());
        self
    }

    pub fn upstream(mut self, role: &str, key: &str) -> Manifest {
        self.upstream.insert(role.to_string(), key.to_string());
        self
    }

    /// The manifest as one canonical map.
    pub fn to_value(&self) -> Value {
        let strings = |map: &BTreeMap<String, String>| {
            Value::Map(
                map.iter()
                    .map(|(k, v)| (k.clone(), Value::str(v.clone())))
                    .collect(),
            )
        };
        let mut map = BTreeMap::new();
        map.insert("stage".into(), Value::str(self.stage.clone()));
        map.insert(
            "stage_version".into(),
            Value::Int(i64::from(self.stage_version)),
        );
        map.insert(
            "premem_version".into(),
            Value::str(self.premem_version.clone()),
        );
        map.insert("libtorch".into(), Value::str(self.libtorch.clone()));
        map.insert("params".into(), Value::Map(self.params.clone()));
        map.insert("inputs".into(), strings(&self.inputs));
        map.insert("upstream".into(), strings(&self.upstream));
        Value::Map(map)
    }

    /// Cache key: 64 hex digits of SHA-256.
    pub fn key(&self) -> String {
        self.to_value().digest()
    }

    pub fn to_json(&self) -> serde_json::Value {
        self.to_value().to_json()
    }

    /// Reads a manifest written by [`Manifest::to_json`]; `None` if a
    /// field is missing or has the wrong type.
    pub fn from_json(json: &serde_json::Value) -> Option<Manifest> {
        let Value::Map(map) = Value::from_json(json)? else {
            return None;
        };
        let text = |name: &str| match map.get(name) {
            Some(Value::Str(s)) => Some(s.clone()),
            _ => None,
        };
        let strings = |name: &str| -> Option<BTreeMap<String, String>> {
            match map.get(name) {
                Some(Value::Map(m)) => m
                    .iter()
                    .map(|(k, v)| match v {
                        Value::Str(s) => Some((k.clone(), s.clone())),
                        _ => None,
                    })
                    .collect(),
                _ => None,
            }
        };
        Some(Manifest {
            stage: text("stage")?,
            stage_version: match map.get("stage_version") {
                Some(Value::Int(v)) => u32::try_from(*v).ok()?,
                _ => return None,
            },
            premem_version: text("premem_version")?,
            libtorch: text("libtorch")?,
            params: match map.get("params") {
                Some(Value::Map(m)) => m.clone(),
                _ => return None,
            },
            inputs: strings("inputs")?,
            upstream: strings("upstream")?,
        })
    }

    /// Every field in which `self` (the planned manifest) differs from
    /// `cached`, in a stable order.
    pub fn differences(&self, cached: &Manifest) -> Vec<Difference> {
        let mut differences = Vec::new();
        let mut field =
            |kind: DifferenceKind, name: &str, planned: Option<String>, cached: Option<String>| {
                if planned != cached {
                    differences.push(Difference {
                        kind,
                        name: name.to_string(),
                        planned,
                        cached,
                    });
                }
            };

        field(
            DifferenceKind::Code,
            "stage_version",
            Some(self.stage_version.to_string()),
            Some(cached.stage_version.to_string()),
        );
        field(
            DifferenceKind::Code,
            "premem_version",
            Some(self.premem_version.clone()),
            Some(cached.premem_version.clone()),
        );
        field(
            DifferenceKind::Code,
            "libtorch",
            Some(self.libtorch.clone()),
            Some(cached.libtorch.clone()),
        );

        let params = |m: &BTreeMap<String, Value>| -> BTreeMap<String, String> {
            m.iter().map(|(k, v)| (k.clone(), v.to_string())).collect()
        };
        for (kind, planned, old) in [
            (
                DifferenceKind::Param,
                params(&self.params),
                params(&cached.params),
            ),
            (
                DifferenceKind::Input,
                self.inputs.clone(),
                cached.inputs.clone(),
            ),
            (
                DifferenceKind::Upstream,
                self.upstream.clone(),
                cached.upstream.clone(),
            ),
        ] {
            let names: std::collections::BTreeSet<&String> =
                planned.keys().chain(old.keys()).collect();
            for name in names {
                field(
                    kind,
                    name,
                    planned.get(name).cloned(),
                    old.get(name).cloned(),
                );
            }
        }
        differences
    }
}

/// Part of a manifest that differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DifferenceKind {
    /// premem's stage code, the crate version or libtorch.
    Code,
    /// A resolved parameter from the experiment file.
    Param,
    /// The content of an input file.
    Input,
    /// An upstream stage's key, so its own inputs changed.
    Upstream,
}

/// One reason a planned entry differs from a cached one.
#[derive(Debug, Clone, PartialEq)]
pub struct Difference {
    pub kind: DifferenceKind,
    pub name: String,
    /// Value in the planned manifest; `None` when only the cached one has it.
    pub planned: Option<String>,
    pub cached: Option<String>,
}

impl fmt::Display for Difference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.kind {
            DifferenceKind::Code => "code version",
            DifferenceKind::Param => "parameter",
            DifferenceKind::Input => "input file digest",
            DifferenceKind::Upstream => "upstream key",
        };
        let short = |value: &Option<String>| match value {
            None => "(unset)".to_string(),
            Some(v) if self.kind != DifferenceKind::Param && v.len() == 64 => v[..12].to_string(),
            Some(v) => v.clone(),
        };
        write!(
            f,
            "{what} `{}`: cached {}, planned {}",
            self.name,
            short(&self.cached),
            short(&self.planned)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn libtorch_binding_matches_cargo_toml() {
        let manifest = include_str!("../../Cargo.toml");
        let version = LIBTORCH_BINDING.trim_start_matches("torch-sys ");
        assert!(manifest.contains(&format!("torch-sys = \"{version}\"")));
    }

    #[test]
    fn manifest_json_round_trip() {
        let manifest = Manifest::new("sample", 3)
            .param("temperature", 0.8)
            .param("k", 5usize)
            .input("model", &"a".repeat(64))
            .upstream("fine-tune", &"b".repeat(64));
        let back = Manifest::from_json(&manifest.to_json()).unwrap();
        assert_eq!(back, manifest);
        assert_eq!(back.key(), manifest.key());
    }

    #[test]
    fn differences_name_changed_param() {
        let planned = Manifest::new("sample", 1).param("temperature", 0.7);
        let cached = Manifest::new("sample", 1).param("temperature", 0.8);
        let differences = planned.differences(&cached);
        assert_eq!(differences.len(), 1);
        assert_eq!(differences[0].kind, DifferenceKind::Param);
        assert_eq!(differences[0].name, "temperature");
    }
}
