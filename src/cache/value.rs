//! The typed canonical value that cache keys are computed from.
//!
//! Keys hash this value's own binary encoding, never serialized text, so
//! that `1` and `1.0` stay distinct (an integer and a float), `1e-5` and
//! `0.00001` are the same float, and `-0.0` equals `0.0`. Maps are ordered
//! by key, so insertion order never changes a key.

use std::collections::BTreeMap;

use sha2::{Digest, Sha256};

#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Bool(bool),
    Int(i64),
    /// Always finite; `-0.0` is stored as `0.0` (see [`Value::float`]).
    Float(f64),
    Str(String),
    List(Vec<Value>),
    Map(BTreeMap<String, Value>),
}

impl Value {
    /// A float in canonical form: `-0.0` becomes `0.0`. Non-finite values
    /// are stored as their text because no parameter accepts them.
    pub fn float(x: f64) -> Value {
        if x == 0.0 {
            Value::Float(0.0)
        } else if x.is_finite() {
            Value::Float(x)
        } else {
            Value::Str(format!("{x}"))
        }
    }

    pub fn str(text: impl Into<String>) -> Value {
        Value::Str(text.into())
    }

    /// SHA-256 of the canonical encoding, as 64 lowercase hex digits.
    pub fn digest(&self) -> String {
        let mut hasher = Sha256::new();
        self.encode(&mut hasher);
        hex::encode(hasher.finalize())
    }

    /// Feeds a prefix-free encoding into `hasher`: a type tag, then a
    /// fixed-size payload or a length followed by the items.
    fn encode(&self, hasher: &mut Sha256) {
        match self {
            Value::Bool(b) => {
                hasher.update([b'b', u8::from(*b)]);
            }
            Value::Int(i) => {
                hasher.update([b'i']);
                hasher.update(i.to_be_bytes());
            }
            Value::Float(x) => {
                let canonical = if *x == 0.0 { 0.0f64 } else { *x };
                hasher.update([b'f']);
                hasher.update(canonical.to_bits().to_be_bytes());
            }
            Value::Str(s) => {
                hasher.update([b's']);
                hasher.update((s.len() as u64).to_be_bytes());
                hasher.update(s.as_bytes());
            }
            Value::List(items) => {
                hasher.update([b'l']);
                hasher.update((items.len() as u64).to_be_bytes());
                for item in items {
                    item.encode(hasher);
                }
            }
            Value::Map(map) => {
                hasher.update([b'm']);
                hasher.update((map.len() as u64).to_be_bytes());
                for (key, value) in map {
                    hasher.update((key.len() as u64).to_be_bytes());
                    hasher.update(key.as_bytes());
                    value.encode(hasher);
                }
            }
        }
    }

    /// JSON form for manifests: integers stay JSON integers and floats
    /// JSON floats (serde_json writes `1.0`, never `1`), so reading a
    /// manifest back yields the same typed value.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(x) => serde_json::Value::from(*x),
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::List(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_json).collect())
            }
            Value::Map(map) => serde_json::Value::Object(
                map.iter().map(|(k, v)| (k.clone(), v.to_json())).collect(),
            ),
        }
    }

    /// Inverse of [`Value::to_json`]; `None` for JSON null or a number
    /// outside i64 and f64.
    pub fn from_json(json: &serde_json::Value) -> Option<Value> {
        Some(match json {
            serde_json::Value::Null => return None,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) if n.is_i64() => Value::Int(n.as_i64()?),
            serde_json::Value::Number(n) => Value::float(n.as_f64()?),
            serde_json::Value::String(s) => Value::Str(s.clone()),
            serde_json::Value::Array(items) => {
                Value::List(items.iter().map(Value::from_json).collect::<Option<_>>()?)
            }
            serde_json::Value::Object(map) => Value::Map(
                map.iter()
                    .map(|(k, v)| Some((k.clone(), Value::from_json(v)?)))
                    .collect::<Option<_>>()?,
            ),
        })
    }
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.to_json())
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Bool(b)
    }
}

impl From<i64> for Value {
    fn from(i: i64) -> Value {
        Value::Int(i)
    }
}

impl From<usize> for Value {
    fn from(i: usize) -> Value {
        Value::Int(i as i64)
    }
}

impl From<u64> for Value {
    fn from(i: u64) -> Value {
        Value::Int(i as i64)
    }
}

impl From<f64> for Value {
    fn from(x: f64) -> Value {
        Value::float(x)
    }
}

impl From<&str> for Value {
    fn from(s: &str) -> Value {
        Value::Str(s.to_string())
    }
}

impl From<String> for Value {
    fn from(s: String) -> Value {
        Value::Str(s)
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    /// `None` is the empty list, so an unset option and a set one differ.
    fn from(option: Option<T>) -> Value {
        match option {
            None => Value::List(Vec::new()),
            Some(value) => Value::List(vec![value.into()]),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn int_and_float_differ() {
        assert_ne!(Value::Int(1).digest(), Value::float(1.0).digest());
    }

    #[test]
    fn negative_zero_is_zero() {
        assert_eq!(Value::float(-0.0).digest(), Value::float(0.0).digest());
        assert_eq!(Value::Float(-0.0).digest(), Value::Float(0.0).digest());
    }

    #[test]
    fn float_spellings_agree() {
        assert_eq!(Value::float(1e-5).digest(), Value::float(0.00001).digest());
    }

    #[test]
    fn nested_lists_are_prefix_free() {
        let split = Value::List(vec![Value::str("ab"), Value::str("c")]);
        let joined = Value::List(vec![Value::str("a"), Value::str("bc")]);
        assert_ne!(split.digest(), joined.digest());
    }

    #[test]
    fn json_round_trip_keeps_types() {
        let mut map = BTreeMap::new();
        map.insert("epochs".to_string(), Value::Int(3));
        map.insert("lr".to_string(), Value::float(1.0));
        map.insert("stop".to_string(), Value::List(vec![Value::str("\nDone.")]));
        let value = Value::Map(map);
        let text = serde_json::to_string(&value.to_json()).unwrap();
        let back = Value::from_json(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(back, value);
        assert_eq!(back.digest(), value.digest());
    }
}
