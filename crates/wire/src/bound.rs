//! An upper bound on a request's input tokens, computed from its JSON without a
//! tokenizer, for the worst-case reservation.
//!
//! The providers' tokenizers (byte-pair encodings) never produce more tokens than the
//! bytes of the text they encode, so the bytes of every string in the request (keys
//! included: tool schemas are input too) bound its text tokens. Structure costs a few
//! tokens per message, bounded by 8 per JSON object or array. An image costs at most
//! [`IMAGE_TOKENS`] whatever the size of its base64 data, which is not counted as text.
//!
//! The bound is computed by a serde visitor as the JSON is parsed ([`Walk`]), so that a
//! request body is read in one pass without building its tree; the same visitor runs
//! over a tree that is already built ([`input_tokens`]).

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use std::fmt;

/// Tokens an image can cost at most (Anthropic: about 1,600 after resizing; OpenAI high
/// detail: under 2,000 for the largest tiling). Kept generous.
pub const IMAGE_TOKENS: u64 = 6_000;
/// Tokens of framing a message, a block or any JSON container can add at most.
pub const STRUCTURE_TOKENS: u64 = 8;

/// The bound for a whole request body already parsed.
pub fn input_tokens(body: &Value) -> u64 {
    Walk.deserialize(body).map_or(0, |w| w.bound)
}

/// What a value says, to its parent object: strings that make an object an image.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Walked {
    pub bound: u64,
    /// A string naming an image type: `"image"`, `"image_url"`, `"input_image"`.
    image_type: bool,
    /// The string `"base64"` (Anthropic's source type).
    base64: bool,
    /// A string starting `image/` (a media type).
    image_media: bool,
}

/// The members of an object that decide whether it is an image.
#[derive(Clone, Copy, Debug, Default)]
struct ImageSigns {
    /// The value of `type`, as far as it matters (the last one counts, as in a tree).
    kind: Option<Walked>,
    media: Option<Walked>,
}

impl ImageSigns {
    fn see(&mut self, key: &str, value: Walked) {
        match key {
            "type" => self.kind = Some(value),
            "media_type" => self.media = Some(value),
            _ => {}
        }
    }

    fn is_image(&self) -> bool {
        let kind = self.kind.unwrap_or_default();
        kind.image_type || (kind.base64 && self.media.is_some_and(|m| m.image_media))
    }
}

/// Walks one JSON value and bounds its tokens.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Walk;

impl<'de> DeserializeSeed<'de> for Walk {
    type Value = Walked;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Walked, D::Error> {
        d.deserialize_any(self)
    }
}

/// Digits (and sign) of an integer.
fn digits(mut n: u64) -> u64 {
    let mut len = 1;
    while n >= 10 {
        n /= 10;
        len += 1;
    }
    len
}

/// The characters of a float as JSON writes it.
fn float_len(f: f64) -> u64 {
    struct Count(u64);
    impl fmt::Write for Count {
        fn write_str(&mut self, s: &str) -> fmt::Result {
            self.0 += s.len() as u64;
            Ok(())
        }
    }
    let mut count = Count(0);
    match serde_json::Number::from_f64(f) {
        Some(n) => fmt::write(&mut count, format_args!("{n}")).map_or(4, |()| count.0),
        None => 4, // not finite: JSON has no such number (it would be written null)
    }
}

pub(crate) fn scalar(bound: u64) -> Walked {
    Walked { bound, ..Walked::default() }
}

pub(crate) fn string(s: &str) -> Walked {
    Walked {
        bound: s.len() as u64,
        image_type: matches!(s, "image" | "image_url" | "input_image"),
        base64: s == "base64",
        image_media: s.starts_with("image/"),
    }
}

/// Walks the members of an object, `key.len() + value` each, and decides whether it
/// is an image. `member` walks each value given its key.
pub(crate) fn walk_object<'de, A: MapAccess<'de>>(
    mut map: A,
    mut member: impl FnMut(&str, &mut A) -> Result<Walked, A::Error>,
) -> Result<Walked, A::Error> {
    let (mut sum, mut signs) = (STRUCTURE_TOKENS, ImageSigns::default());
    while let Some(key) = map.next_key_seed(KeySeed)? {
        let value = member(key.as_str(), &mut map)?;
        signs.see(key.as_str(), value);
        sum += key.len + value.bound;
    }
    Ok(scalar(if signs.is_image() { STRUCTURE_TOKENS + IMAGE_TOKENS } else { sum }))
}

impl<'de> Visitor<'de> for Walk {
    type Value = Walked;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Walked, E> {
        Ok(scalar(1))
    }
    fn visit_none<E>(self) -> Result<Walked, E> {
        Ok(scalar(1))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Walked, D::Error> {
        d.deserialize_any(self)
    }
    fn visit_bool<E>(self, _: bool) -> Result<Walked, E> {
        Ok(scalar(1))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Walked, E> {
        Ok(scalar(digits(n)))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Walked, E> {
        Ok(scalar(digits(n.unsigned_abs()) + u64::from(n < 0)))
    }
    fn visit_f64<E>(self, f: f64) -> Result<Walked, E> {
        Ok(scalar(float_len(f)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Walked, E> {
        Ok(string(s))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Walked, A::Error> {
        let mut sum = STRUCTURE_TOKENS;
        while let Some(item) = seq.next_element_seed(Walk)? {
            sum += item.bound;
        }
        Ok(scalar(sum))
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Walked, A::Error> {
        walk_object(map, |_, map| map.next_value_seed(Walk))
    }
}

/// An object key: its length, and its text when it is short enough to be one the
/// gateway looks for (no allocation either way).
pub(crate) struct Key {
    pub len: u64,
    text: [u8; Key::KEPT],
    kept: usize,
}

impl Key {
    const KEPT: usize = 24;

    /// The key, when it is at most [`Key::KEPT`] bytes; else a string no key matches.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.text[..self.kept]).unwrap_or("")
    }
}

pub(crate) struct KeySeed;

impl<'de> DeserializeSeed<'de> for KeySeed {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_str<E>(self, s: &str) -> Result<Key, E> {
        let mut key = Key { len: s.len() as u64, text: [0; Key::KEPT], kept: 0 };
        if s.len() <= Key::KEPT {
            key.text[..s.len()].copy_from_slice(s.as_bytes());
            key.kept = s.len();
        }
        Ok(key)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    /// The bound by a walk over the tree: the definition the visitor must agree with.
    pub(crate) fn oracle(v: &Value) -> u64 {
        fn is_image(obj: &serde_json::Map<String, Value>) -> bool {
            match obj.get("type").and_then(Value::as_str) {
                Some("image" | "image_url" | "input_image") => true,
                Some("base64") => {
                    obj.get("media_type").and_then(Value::as_str).is_some_and(|m| m.starts_with("image/"))
                }
                _ => false,
            }
        }
        match v {
            Value::Null | Value::Bool(_) => 1,
            Value::Number(n) => n.to_string().len() as u64,
            Value::String(s) => s.len() as u64,
            Value::Array(items) => STRUCTURE_TOKENS + items.iter().map(oracle).sum::<u64>(),
            Value::Object(obj) if is_image(obj) => STRUCTURE_TOKENS + IMAGE_TOKENS,
            Value::Object(obj) => STRUCTURE_TOKENS + obj.iter().map(|(k, v)| k.len() as u64 + oracle(v)).sum::<u64>(),
        }
    }

    /// Arbitrary JSON, with the strings and keys that matter for images among others.
    pub(crate) fn json_value() -> impl Strategy<Value = Value> {
        let text = prop_oneof![
            Just("image".to_string()),
            Just("base64".to_string()),
            Just("image/png".to_string()),
            Just("type".to_string()),
            Just("media_type".to_string()),
            ".{0,12}",
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            text.clone().prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 64, 6, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((text.clone(), inner), 0..6)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
            ]
        })
    }

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
        assert_eq!(b, oracle(&with_image));
    }

    #[test]
    fn numbers_count_as_written() {
        for v in [json!(0), json!(-12), json!(u64::MAX), json!(1.5), json!(-0.25), json!(1e300), json!(5e-324)] {
            assert_eq!(input_tokens(&v), oracle(&v), "{v}");
        }
    }

    #[test]
    fn long_and_escaped_keys() {
        let v = json!({"a_key_much_longer_than_twenty_four_bytes": 1, "ty\"pe": "image", "type": "imag\u{e9}"});
        assert_eq!(input_tokens(&v), oracle(&v));
        let raw = serde_json::to_vec(&v).unwrap();
        let mut de = serde_json::Deserializer::from_slice(&raw);
        assert_eq!(Walk.deserialize(&mut de).unwrap().bound, oracle(&v));
    }

    proptest! {
        /// Over a tree and over its bytes alike, the visitor agrees with the definition.
        #[test]
        fn the_walk_agrees_with_the_definition(v in json_value()) {
            prop_assert_eq!(input_tokens(&v), oracle(&v));
            // (Parsed back, a float may differ in its last bit: the tree of the bytes.)
            let raw = serde_json::to_vec(&v).unwrap();
            let parsed: Value = serde_json::from_slice(&raw).unwrap();
            let mut de = serde_json::Deserializer::from_slice(&raw);
            prop_assert_eq!(Walk.deserialize(&mut de).unwrap().bound, oracle(&parsed));
        }
    }
}
