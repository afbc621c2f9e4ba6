//! Finding members of a JSON object in its bytes without parsing it: strings are
//! skipped whole (with `memchr`), nesting is tracked, nothing is allocated. For the few
//! members the gateway reads from answers and events that it passes on as they are
//! (`usage`, `choices`); what is found is then parsed on its own. The text is not
//! validated: a malformed document yields `None` or a member that fails to parse.

/// The raw values of the top-level members named `keys` of the object in `json` (the
/// last one of a name that occurs twice), or `None` when `json` is not an object.
/// Member names are compared as written (an escaped name does not match).
pub fn members<'a, const N: usize>(json: &'a [u8], keys: [&str; N]) -> Option<[Option<&'a [u8]>; N]> {
    let mut found = [None; N];
    let mut i = skip_ws(json, 0);
    if json.get(i) != Some(&b'{') {
        return None;
    }
    i += 1;
    loop {
        i = skip_ws(json, i);
        match json.get(i)? {
            b'}' => return Some(found),
            b',' => {
                i += 1;
                continue;
            }
            b'"' => {}
            _ => return None,
        }
        let name_end = string_end(json, i + 1)?;
        let name = &json[i + 1..name_end];
        i = skip_ws(json, name_end + 1);
        if json.get(i) != Some(&b':') {
            return None;
        }
        let start = skip_ws(json, i + 1);
        let end = value_end(json, start)?;
        if let Some(k) = keys.iter().position(|k| k.as_bytes() == name) {
            found[k] = Some(&json[start..end]);
        }
        i = end;
    }
}

/// The raw value of the last top-level member `key` of the object in `json`, found by
/// scanning backwards from the end (answers put `usage` last or nearly: the rest of the
/// body is never read). The part before the member is not looked at.
pub fn last_member<'a>(json: &'a [u8], key: &str) -> Option<&'a [u8]> {
    let mut end = ws_back(json, json.len());
    if end == 0 || json[end - 1] != b'}' {
        return None;
    }
    end -= 1;
    loop {
        end = ws_back(json, end);
        if end == 0 || json[end - 1] == b'{' {
            return None; // the start of the object: no such member
        }
        let start = value_start(json, end)?;
        let colon = ws_back(json, start);
        if colon == 0 || json[colon - 1] != b':' {
            return None;
        }
        let name_end = ws_back(json, colon - 1);
        if name_end == 0 || json[name_end - 1] != b'"' {
            return None;
        }
        let name_start = string_start(json, name_end - 1)?;
        if &json[name_start + 1..name_end - 1] == key.as_bytes() {
            return Some(&json[start..end]);
        }
        let before = ws_back(json, name_start);
        match before.checked_sub(1).map(|i| json[i]) {
            Some(b',') => end = before - 1,
            _ => return None,
        }
    }
}

/// The index just past the last non-white-space byte before `end`.
fn ws_back(b: &[u8], mut end: usize) -> usize {
    while end > 0 && b[end - 1].is_ascii_whitespace() {
        end -= 1;
    }
    end
}

/// Whether the quote at `q` is escaped (an odd run of backslashes before it).
fn escaped(b: &[u8], q: usize) -> bool {
    b[..q].iter().rev().take_while(|&&c| c == b'\\').count() % 2 == 1
}

/// The index of the opening quote of the string whose closing quote is at `close`.
fn string_start(b: &[u8], close: usize) -> Option<usize> {
    let mut i = close;
    loop {
        let q = memchr::memrchr(b'"', &b[..i])?;
        if !escaped(b, q) {
            return Some(q);
        }
        i = q;
    }
}

/// The index where the value that ends just before `end` starts.
fn value_start(b: &[u8], end: usize) -> Option<usize> {
    let last = end - 1;
    match CLASS[usize::from(b[last])] {
        1 => string_start(b, last),
        3 => {
            let mut depth = 0usize;
            let mut j = last;
            loop {
                match CLASS[usize::from(b[j])] {
                    1 => j = string_start(b, j)?,
                    3 => depth += 1,
                    2 => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j);
                        }
                    }
                    _ => {}
                }
                j = j.checked_sub(1)?;
            }
        }
        // A number, true, false or null: back to the delimiter before it.
        _ => {
            let mut j = last;
            while j > 0 && !matches!(b[j - 1], b':' | b',' | b'[' | b'{') && !b[j - 1].is_ascii_whitespace() {
                j -= 1;
            }
            Some(j)
        }
    }
}

/// Whether `json` may have a member `key` whose value is an object: a quick look for
/// `"key"` followed by `:` and `{` (no nesting is checked). False means it has none; true
/// is for [`members`] to confirm.
pub fn has_object_member(json: &[u8], key: &str) -> bool {
    let mut rest = json;
    while let Some(at) = memchr::memmem::find(rest, key.as_bytes()) {
        let before = at.checked_sub(1).map(|i| rest[i]);
        let after = at + key.len();
        if before == Some(b'"') && rest.get(after) == Some(&b'"') {
            let colon = skip_ws(rest, after + 1);
            if rest.get(colon) == Some(&b':') && rest.get(skip_ws(rest, colon + 1)) == Some(&b'{') {
                return true;
            }
        }
        rest = &rest[at + key.len()..];
    }
    false
}

fn skip_ws(b: &[u8], mut i: usize) -> usize {
    while b.get(i).is_some_and(u8::is_ascii_whitespace) {
        i += 1;
    }
    i
}

/// From just after an opening quote: the index of the closing quote. Eight bytes at a
/// time (a word's bytes compared at once, no call per string: most are short).
pub(crate) fn string_end(b: &[u8], mut i: usize) -> Option<usize> {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    /// The high bit of each byte of `w` that equals `byte` (the lowest set bit is exact).
    fn equal(w: u64, byte: u8) -> u64 {
        let x = w ^ (ONES * u64::from(byte));
        x.wrapping_sub(ONES) & !x & HIGHS
    }
    loop {
        while let Some(word) = b.get(i..i + 8) {
            let mut bytes = [0u8; 8];
            bytes.copy_from_slice(word);
            let w = u64::from_le_bytes(bytes);
            let hits = equal(w, b'"') | equal(w, b'\\');
            if hits != 0 {
                i += (hits.trailing_zeros() / 8) as usize;
                break;
            }
            i += 8;
        }
        match *b.get(i)? {
            b'"' => return Some(i),
            b'\\' => i += 2, // an escape: skip the escaped character
            _ => i += 1,
        }
    }
}

/// What a byte is to [`value_end`]: 1 a quote, 2 an opening bracket, 3 a closing one,
/// 4 a delimiter that ends a scalar (`,` and white space), 0 anything else.
const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    t[b'"' as usize] = 1;
    t[b'{' as usize] = 2;
    t[b'[' as usize] = 2;
    t[b'}' as usize] = 3;
    t[b']' as usize] = 3;
    t[b',' as usize] = 4;
    t[b' ' as usize] = 4;
    t[b'\t' as usize] = 4;
    t[b'\n' as usize] = 4;
    t[b'\r' as usize] = 4;
    t
};

/// The index just past the value that starts at `i`.
fn value_end(b: &[u8], i: usize) -> Option<usize> {
    match CLASS[usize::from(*b.get(i)?)] {
        1 => Some(string_end(b, i + 1)? + 1),
        2 => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match CLASS[usize::from(*b.get(j)?)] {
                    1 => j = string_end(b, j + 1)?,
                    2 => depth += 1,
                    3 => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        // No value where one must be.
        3 | 4 => None,
        // A number, true, false or null: up to the next delimiter (or the end).
        _ => {
            let mut j = i + 1;
            while j < b.len() && !matches!(CLASS[usize::from(b[j])], 3 | 4) {
                j += 1;
            }
            Some(j)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn text(v: Option<&[u8]>) -> Option<&str> {
        v.map(|b| std::str::from_utf8(b).unwrap())
    }

    #[test]
    fn finds_top_level_members_only() {
        let doc =
            br#" { "choices" : [{"usage": {"x": 1}, "s": "}]\"usage\""}], "n": -1.5e3 ,"usage":{"a":[1,{"b":"}"}]}} "#;
        let [usage, choices, n, missing] = members(doc, ["usage", "choices", "n", "missing"]).unwrap();
        assert_eq!(text(usage), Some(r#"{"a":[1,{"b":"}"}]}"#));
        assert_eq!(text(choices), Some(r#"[{"usage": {"x": 1}, "s": "}]\"usage\""}]"#));
        assert_eq!(text(n), Some("-1.5e3"));
        assert_eq!(missing, None);
        let [last] = members(br#"{"a":1,"a":true}"#, ["a"]).unwrap();
        assert_eq!(text(last), Some("true"), "the last of two counts, as in a tree");
        assert_eq!(members(b"{}", ["a"]), Some([None]));
    }

    #[test]
    fn a_quick_look_for_object_members() {
        assert!(has_object_member(br#"{"choices":[],"usage" : {"prompt_tokens":1}}"#, "usage"));
        assert!(!has_object_member(br#"{"choices":[],"usage":null}"#, "usage"));
        assert!(!has_object_member(br#"{"x":"usage","y":{}}"#, "usage"));
        assert!(!has_object_member(br#"{"my_usage":{}}"#, "usage"));
        assert!(has_object_member(br#"{"a":"usage","usage":{}}"#, "usage"));
    }

    #[test]
    fn not_an_object_or_cut_short() {
        for doc in [
            &b"[1]"[..],
            b"",
            b"  ",
            b"{",
            br#"{"a""#,
            br#"{"a":"x"#,
            br#"{"a":[1,2"#,
            b"{1:2}",
            br#"{"a" 1}"#,
            br#"{"a":}"#,
            br#"{"a":,"b":1}"#,
        ] {
            assert_eq!(members(doc, ["a"]), None, "{:?}", std::str::from_utf8(doc));
        }
    }

    #[test]
    fn the_last_member_from_the_end() {
        let doc = br#" { "usage" : 1, "choices" : [{"usage": {"x": 1}, "s": "}]\"usage\":{"}], "n": -1.5e3 ,"usage":{"a":[1,{"b":"}\\"}]}} "#;
        assert_eq!(text(last_member(doc, "usage")), Some(r#"{"a":[1,{"b":"}\\"}]}"#));
        assert_eq!(text(last_member(doc, "n")), Some("-1.5e3"));
        assert_eq!(text(last_member(doc, "choices")), Some(r#"[{"usage": {"x": 1}, "s": "}]\"usage\":{"}]"#));
        assert_eq!(last_member(doc, "missing"), None);
        assert_eq!(last_member(b"{}", "a"), None);
        assert_eq!(text(last_member(br#"{"a":true}"#, "a")), Some("true"));
        for doc in [&b"[1]"[..], b"", b"}", br#"{"a" 1}"#, br#"{"a":}"#] {
            assert_eq!(last_member(doc, "a"), None, "{:?}", std::str::from_utf8(doc));
        }
    }

    proptest! {
        /// On any object, the member found from the end is the one found from the start.
        #[test]
        fn from_the_end_as_from_the_start(v in crate::bound::tests::json_value()) {
            let Value::Object(obj) = &v else { return Ok(()) };
            let doc = serde_json::to_vec(&v).unwrap();
            for k in obj.keys().chain([&"absent".to_string()]) {
                let [forward] = members(&doc, [k.as_str()]).unwrap();
                prop_assert_eq!(last_member(&doc, k), forward, "{}", k);
            }
        }

        /// On any object, each member found is the one a parser sees.
        #[test]
        fn agrees_with_a_parser(v in crate::bound::tests::json_value()) {
            let Value::Object(obj) = &v else { return Ok(()) };
            let doc = serde_json::to_vec(&v).unwrap();
            // (Parsed back, a float may differ in its last bit: the tree of the bytes.)
            let tree: Value = serde_json::from_slice(&doc).unwrap();
            let keys: Vec<&String> = obj.keys().take(3).collect();
            if keys.len() < 3 { return Ok(()) }
            let found = members(&doc, [keys[0].as_str(), keys[1].as_str(), keys[2].as_str()]).unwrap();
            for (k, raw) in keys.iter().zip(found) {
                // (An escaped name is not matched: names with quotes or controls are skipped.)
                if serde_json::to_string(k).unwrap().contains('\\') { continue }
                let parsed: Value = serde_json::from_slice(raw.unwrap()).unwrap();
                prop_assert_eq!(&parsed, &tree[k.as_str()]);
            }
            prop_assert!(members(&serde_json::to_vec(&json!([v])).unwrap(), ["a"]).is_none());
        }
    }
}
