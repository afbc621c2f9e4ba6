//! OpenAI Embeddings, `POST /v1/embeddings`: one unit vector per input (8 floats, or
//! `dimensions`), derived from the input alone, as JSON floats or, with
//! `encoding_format: "base64"` (the SDKs' default), the little-endian f32 bytes in
//! base64. Usage counts ceil(chars / 4) per text input (at least 1) and the length of
//! each token-array input. Only the `error:STATUS` directive applies here.

use crate::errors::{ApiError, Provider};
use crate::text::Directives;
use crate::{Mock, require};
use axum::Json;
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use serde_json::{Value, json};

/// Vector length when the request has no `dimensions`.
pub const DEFAULT_DIMENSIONS: usize = 8;

/// Largest `dimensions` accepted.
const MAX_DIMENSIONS: u64 = 8192;

/// One input: a text, or an array of token ids.
enum Input {
    Text(String),
    Tokens(Vec<Value>),
}

impl Input {
    fn tokens(&self) -> u64 {
        match self {
            Input::Text(s) => (s.chars().count() as u64).div_ceil(4).max(1),
            Input::Tokens(t) => t.len() as u64,
        }
    }

    /// The bytes the vector is derived from.
    fn seed_bytes(&self) -> Vec<u8> {
        match self {
            Input::Text(s) => s.as_bytes().to_vec(),
            Input::Tokens(t) => Value::Array(t.clone()).to_string().into_bytes(),
        }
    }
}

fn parse_inputs(input: &Value) -> Result<Vec<Input>, ApiError> {
    let invalid = || {
        ApiError::invalid(
            "input",
            "'input' must be a string, an array of strings, an array of tokens or an array of token arrays.",
        )
    };
    match input {
        Value::String(s) => Ok(vec![Input::Text(s.clone())]),
        Value::Array(items) if items.is_empty() => Err(invalid()),
        Value::Array(items) if items.iter().all(Value::is_u64) => Ok(vec![Input::Tokens(items.clone())]),
        Value::Array(items) => items
            .iter()
            .map(|item| match item {
                Value::String(s) => Ok(Input::Text(s.clone())),
                Value::Array(t) if t.iter().all(Value::is_u64) => Ok(Input::Tokens(t.clone())),
                _ => Err(invalid()),
            })
            .collect(),
        _ => Err(invalid()),
    }
}

pub fn create(mock: &Mock, body: &Value) -> Response {
    match embed(body) {
        Ok(response) => Json(response).into_response(),
        Err(e) => mock.error(Provider::OpenAi, &e),
    }
}

fn embed(body: &Value) -> Result<Value, ApiError> {
    require(Provider::OpenAi, body, &["model", "input"])?;
    let inputs = parse_inputs(body.get("input").unwrap_or(&Value::Null))?;
    let texts: String = inputs
        .iter()
        .filter_map(|i| match i {
            Input::Text(s) => Some(s.as_str()),
            Input::Tokens(_) => None,
        })
        .collect::<Vec<_>>()
        .join("\n");
    if let Some(status) = Directives::parse(&texts).error {
        return Err(ApiError::directive(status));
    }
    let dimensions = match body.get("dimensions") {
        None | Some(Value::Null) => DEFAULT_DIMENSIONS,
        Some(v) => match v.as_u64() {
            Some(d) if (1..=MAX_DIMENSIONS).contains(&d) => d as usize,
            _ => {
                return Err(ApiError::invalid(
                    "dimensions",
                    format!("'dimensions' must be an integer between 1 and {MAX_DIMENSIONS}."),
                ));
            }
        },
    };
    let base64 = match body.get("encoding_format").and_then(Value::as_str) {
        None | Some("float") => false,
        Some("base64") => true,
        Some(other) => {
            return Err(ApiError::invalid(
                "encoding_format",
                format!("'encoding_format' must be 'float' or 'base64', not '{other}'."),
            ));
        }
    };
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            let vector = vector(&input.seed_bytes(), dimensions);
            let embedding = if base64 { json!(encode_base64(&vector)) } else { json!(vector) };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let tokens: u64 = inputs.iter().map(Input::tokens).sum();
    Ok(json!({
        "object": "list",
        "data": data,
        "model": body.get("model").cloned().unwrap_or(Value::Null),
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
}

/// A deterministic unit vector for `seed`: FNV-1a of the bytes, then SplitMix64 per
/// component, scaled to [-1, 1) and normalised.
pub fn vector(seed: &[u8], dimensions: usize) -> Vec<f32> {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in seed {
        hash ^= u64::from(*byte);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let mut state = hash;
    let mut v: Vec<f32> = (0..dimensions)
        .map(|_| {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^= z >> 31;
            // The top 24 bits as a float in [-1, 1): exact in f32.
            (z >> 40) as f32 / (1u32 << 23) as f32 - 1.0
        })
        .collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        for x in &mut v {
            *x /= norm;
        }
    }
    v
}

/// The vector as the API's base64: little-endian f32s.
pub fn encode_base64(vector: &[f32]) -> String {
    let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_are_deterministic_unit_vectors() {
        let a = vector(b"hello", 8);
        assert_eq!(a, vector(b"hello", 8));
        assert_ne!(a, vector(b"hellp", 8));
        let norm: f32 = a.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-5, "{norm}");
        assert_eq!(vector(b"x", 3).len(), 3);
    }

    #[test]
    fn base64_is_little_endian_f32() {
        assert_eq!(encode_base64(&[1.0]), "AACAPw==");
    }

    #[test]
    fn inputs_parse() {
        assert_eq!(parse_inputs(&json!("a")).unwrap().len(), 1);
        assert_eq!(parse_inputs(&json!(["a", "b"])).unwrap().len(), 2);
        assert_eq!(parse_inputs(&json!([1, 2, 3])).unwrap()[0].tokens(), 3);
        assert_eq!(parse_inputs(&json!([[1, 2], [3]])).unwrap().len(), 2);
        assert!(parse_inputs(&json!([])).is_err());
        assert!(parse_inputs(&json!(5)).is_err());
        assert!(parse_inputs(&json!([{"a": 1}])).is_err());
    }
}
