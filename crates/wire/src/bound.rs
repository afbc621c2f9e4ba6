//! An upper bound on a request's input tokens, computed from its JSON without a
//! tokenizer, for the worst-case reservation.
//!
//! The providers' tokenizers (byte-pair encodings) never produce more tokens than the
//! bytes of the text they encode, so the bytes of every string in the request (keys
//! included: tool schemas are input too) bound its text tokens. Structure costs a few
//! tokens per message, bounded by 8 per JSON object or array. An image costs at most
//! [`IMAGE_TOKENS`] whatever the size of its base64 data, which is not counted as text.

use serde_json::Value;

/// Tokens an image can cost at most (Anthropic: about 1,600 after resizing; OpenAI high
/// detail: under 2,000 for the largest tiling). Kept generous.
pub const IMAGE_TOKENS: u64 = 6_000;
/// Tokens of framing a message, a block or any JSON container can add at most.
pub const STRUCTURE_TOKENS: u64 = 8;

/// The bound for a whole request body.
pub fn input_tokens(body: &Value) -> u64 {
    walk(body)
}

fn is_image(obj: &serde_json::Map<String, Value>) -> bool {
    match obj.get("type").and_then(Value::as_str) {
        Some("image" | "image_url" | "input_image") => true,
        // Anthropic's base64 source: {"type": "base64", "media_type": "image/...", "data": ...}
        Some("base64") => obj.get("media_type").and_then(Value::as_str).is_some_and(|m| m.starts_with("image/")),
        _ => false,
    }
}

fn walk(v: &Value) -> u64 {
    match v {
        Value::Null | Value::Bool(_) => 1,
        Value::Number(n) => n.to_string().len() as u64,
        Value::String(s) => s.len() as u64,
        Value::Array(items) => STRUCTURE_TOKENS + items.iter().map(walk).sum::<u64>(),
        Value::Object(obj) if is_image(obj) => STRUCTURE_TOKENS + IMAGE_TOKENS,
        Value::Object(obj) => STRUCTURE_TOKENS + obj.iter().map(|(k, v)| k.len() as u64 + walk(v)).sum::<u64>(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_counts_by_bytes_images_by_a_constant() {
        let text = json!({"messages": [{"role": "user", "content": "hello world"}]});
        let b = input_tokens(&text);
        assert!(b >= "hello world".len() as u64 && b < 100, "{b}");
        let big_image = "A".repeat(3_000_000);
        let with_image = json!({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": format!("data:image/png;base64,{big_image}")}},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": big_image}}
        ]}]});
        let b = input_tokens(&with_image);
        assert!(b < 2 * IMAGE_TOKENS + 200, "{b}: image data must not count as text");
        assert!(b >= 2 * IMAGE_TOKENS);
    }
}
