//! `POST /v1/embeddings`.

use crate::common::{ok_json, start};
use base64::Engine as _;
use serde_json::{Value, json};

fn decode(b64: &str) -> Vec<f32> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(b64).unwrap();
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

fn floats(v: &Value) -> Vec<f32> {
    v.as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect()
}

#[tokio::test]
async fn float_and_base64_agree() {
    let s = start().await;
    let request = json!({"model": "text-embedding-3-small", "input": ["hello world", "abc"]});
    let plain = ok_json(s.openai("/v1/embeddings", &request).await).await;
    assert_eq!(plain["object"], "list");
    assert_eq!(plain["model"], "text-embedding-3-small");
    let data = plain["data"].as_array().unwrap();
    assert_eq!(data.len(), 2);
    assert_eq!(data[1]["object"], "embedding");
    assert_eq!(data[1]["index"], 1);
    let first = floats(&data[0]["embedding"]);
    assert_eq!(first.len(), 8);
    let norm: f32 = first.iter().map(|x| x * x).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4);
    // 11 chars -> 3, 3 chars -> 1.
    assert_eq!(plain["usage"], json!({"prompt_tokens": 4, "total_tokens": 4}));

    let mut b64_request = request.clone();
    b64_request["encoding_format"] = json!("base64");
    let b64 = ok_json(s.openai("/v1/embeddings", &b64_request).await).await;
    assert_eq!(decode(b64["data"][0]["embedding"].as_str().unwrap()), first);
    assert_eq!(decode(b64["data"][1]["embedding"].as_str().unwrap()), floats(&data[1]["embedding"]));

    // Deterministic: the same text gives the same vector, alone or in a list.
    let single =
        ok_json(s.openai("/v1/embeddings", &json!({"model": "m", "input": "hello world", "dimensions": 8})).await)
            .await;
    assert_eq!(floats(&single["data"][0]["embedding"]), first);
}

#[tokio::test]
async fn dimensions_tokens_and_errors() {
    let s = start().await;
    let body =
        ok_json(s.openai("/v1/embeddings", &json!({"model": "m", "input": [[1, 2, 3], [4]], "dimensions": 32})).await)
            .await;
    assert_eq!(body["data"][0]["embedding"].as_array().unwrap().len(), 32);
    assert_eq!(body["usage"]["prompt_tokens"], 4);

    let response = s.openai("/v1/embeddings", &json!({"model": "m", "input": 42})).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["param"], "input");

    let response = s.openai("/v1/embeddings", &json!({"model": "m", "input": "x [[mock:error:500]]"})).await;
    assert_eq!(response.status(), 500);
}
