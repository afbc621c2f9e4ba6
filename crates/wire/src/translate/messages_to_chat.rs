//! An Anthropic-format client (Anthropic SDKs, Claude Code) on an OpenAI or
//! OpenAI-compatible model: Messages requests become Chat Completions requests, and
//! `chat.completion` answers and chunk streams become Anthropic messages and events.
//!
//! Requests: `system` becomes system messages, content blocks become content parts,
//! `tool_use` history becomes `tool_calls`, `tool_result` blocks become `tool` messages
//! (placed first in their turn), tools become functions (names too long or with other
//! characters than OpenAI allows are shortened, and the short names recorded so answers
//! show the originals), structured output becomes `response_format`. Anthropic-only
//! fields that would change the answer (`top_k`, server tools, MCP connectors,
//! containers) are refused with a 400 naming them; those that would not (`thinking` on
//! non-reasoning models, `cache_control`, `context_management`, `output_config.effort`,
//! ...) are dropped and reported. Unknown fields pass through.
//!
//! Streams: `message_start` on the first chunk (with the input estimate: OpenAI reports
//! usage only at the end), one content block per run of text or per tool call, and the
//! `message_delta` held back until the usage chunk gives the real figures.

use super::{Context, StreamTranslator, Translated, anthropic_error_type, error_message, sse_event, tool_id};
use crate::RequestError;
use crate::openai::request_stream_usage;
use crate::request::{MAX_TOKENS_CEILING, positive_member as positive, stream_member};
use serde_json::{Map, Value, json};
use std::collections::{HashMap, HashSet};

/// Request fields this module translates (or refuses, or drops); any other top-level
/// field passes through unchanged.
const KNOWN_FIELDS: [&str; 20] = [
    "model",
    "max_tokens",
    "messages",
    "system",
    "temperature",
    "top_p",
    "stream",
    "stop_sequences",
    "metadata",
    "tools",
    "tool_choice",
    "thinking",
    "top_k",
    "mcp_servers",
    "container",
    "context_management",
    "output_config",
    "output_format",
    "service_tier",
    "cache_control",
];

/// Anthropic-only fields with an effect on the answer that OpenAI models cannot give.
const REFUSED_FIELDS: [(&str, &str); 3] = [
    ("top_k", "has no equivalent on OpenAI models and would change the answer; remove it or use a Claude model"),
    ("mcp_servers", "MCP connectors run on Anthropic's servers and are not available on OpenAI models"),
    ("container", "code-execution containers are Anthropic-only and not available on OpenAI models"),
];

/// Anthropic-only fields with no effect on the answer's content: dropped, reported.
/// (`output_config.format`, structured output, is translated; its other keys dropped.)
const DROPPED_FIELDS: [&str; 3] = ["context_management", "service_tier", "cache_control"];

/// Longest function name OpenAI accepts.
const MAX_NAME: usize = 64;
/// Characters kept from a name that must be shortened, before `_` and 8 hex digits.
const NAME_PREFIX: usize = 55;

/// An Anthropic Messages request -> an OpenAI Chat Completions request.
/// `openai_itself`: true for OpenAI (max tokens go in `max_completion_tokens`), false for
/// compatible providers (`max_tokens`).
pub fn request(messages: &Value, openai_itself: bool) -> Result<Translated, RequestError> {
    let obj = messages.as_object().ok_or_else(|| RequestError::new("body", "must be a JSON object"))?;
    for (field, reason) in REFUSED_FIELDS {
        if present(obj, field) {
            return Err(RequestError::new(field, reason));
        }
    }
    let mut b = Builder::default();
    let mut body = Map::new();
    for (key, value) in obj {
        if !KNOWN_FIELDS.contains(&key.as_str()) {
            body.insert(key.clone(), value.clone());
        }
    }
    for field in DROPPED_FIELDS {
        if present(obj, field) {
            b.report(field);
        }
    }

    let model = match obj.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        Some(Value::String(_)) => return Err(RequestError::new("model", "must not be empty")),
        Some(_) => return Err(RequestError::new("model", "must be a string")),
        None => return Err(RequestError::new("model", "is required")),
    };
    let max_tokens = positive(obj, "max_tokens", MAX_TOKENS_CEILING)?
        .ok_or_else(|| RequestError::new("max_tokens", "is required"))?;
    let max_field = if openai_itself { "max_completion_tokens" } else { "max_tokens" };
    body.insert(max_field.into(), json!(max_tokens));

    for field in ["temperature", "top_p"] {
        if let Some(v) = obj.get(field).filter(|v| !v.is_null()) {
            body.insert(field.into(), v.clone());
        }
    }
    let stream = stream_member(obj)?;
    if obj.get("stream").is_some_and(|v| !v.is_null()) {
        body.insert("stream".into(), json!(stream));
    }
    if let Some(stop) = obj.get("stop_sequences").filter(|v| !v.is_null()) {
        let list = stop.as_array().ok_or_else(|| RequestError::new("stop_sequences", "must be a list of strings"))?;
        if let Some(k) = list.iter().position(|s| !s.is_string()) {
            return Err(RequestError::new(&format!("stop_sequences[{k}]"), "must be a string"));
        }
        if !list.is_empty() {
            body.insert("stop".into(), stop.clone());
        }
    }
    b.metadata(obj.get("metadata"), &mut body)?;
    b.output_format(obj, &mut body)?;

    // Tools first: their names decide how tool names in the history are shortened.
    let tools = b.tools(obj.get("tools"))?;
    let mut chat = Vec::new();
    b.system(obj.get("system"), &mut chat)?;
    let list = match obj.get("messages") {
        Some(Value::Array(list)) => list,
        Some(_) => return Err(RequestError::new("messages", "must be a list of messages")),
        None => return Err(RequestError::new("messages", "is required")),
    };
    for (i, message) in list.iter().enumerate() {
        b.message(i, message, &mut chat)?;
    }
    body.insert("messages".into(), Value::Array(chat));

    let has_tools = !tools.is_empty();
    if has_tools {
        body.insert("tools".into(), Value::Array(tools));
    }
    b.tool_choice(obj.get("tool_choice"), has_tools, &mut body)?;
    b.thinking(obj.get("thinking"), &model, &mut body)?;
    body.insert("model".into(), Value::String(model));

    let mut body = Value::Object(body);
    if stream {
        // The gateway meters from the usage chunk, and `message_delta` carries it.
        request_stream_usage(&mut body);
    }
    Ok(Translated { body, dropped: b.dropped, tool_names: b.names.short_to_original })
}

/// Whether a field is present and not null.
fn present(obj: &Map<String, Value>, field: &str) -> bool {
    obj.get(field).is_some_and(|v| !v.is_null())
}

/// What a request translation accumulates besides the body.
#[derive(Default)]
struct Builder {
    dropped: Vec<String>,
    names: Names,
}

impl Builder {
    /// Reports a dropped field (once).
    fn report(&mut self, what: &str) {
        if !self.dropped.iter().any(|d| d == what) {
            self.dropped.push(what.to_string());
        }
    }

    /// Notes a block's `cache_control` (prompt caching is automatic on OpenAI).
    fn cache_control(&mut self, block: &Value) {
        if block.get("cache_control").is_some_and(|v| !v.is_null()) {
            self.report("cache_control");
        }
    }

    fn metadata(&mut self, metadata: Option<&Value>, body: &mut Map<String, Value>) -> Result<(), RequestError> {
        let Some(metadata) = metadata.filter(|v| !v.is_null()) else { return Ok(()) };
        let obj = metadata.as_object().ok_or_else(|| RequestError::new("metadata", "must be an object"))?;
        for (key, value) in obj {
            match (key.as_str(), value) {
                (_, Value::Null) => {}
                ("user_id", Value::String(user)) => {
                    body.insert("user".into(), json!(user));
                }
                ("user_id", _) => return Err(RequestError::new("metadata.user_id", "must be a string")),
                (other, _) => self.report(&format!("metadata.{other}")),
            }
        }
        Ok(())
    }

    /// Structured output (`output_config.format`, or the beta's top-level
    /// `output_format`) -> `response_format`; the rest of `output_config` (`effort`) is
    /// dropped.
    fn output_format(&mut self, obj: &Map<String, Value>, body: &mut Map<String, Value>) -> Result<(), RequestError> {
        let mut format = obj.get("output_format").filter(|v| !v.is_null()).map(|f| (f, "output_format"));
        if let Some(config) = obj.get("output_config").filter(|v| !v.is_null()) {
            let config = config.as_object().ok_or_else(|| RequestError::new("output_config", "must be an object"))?;
            for (key, value) in config {
                match key.as_str() {
                    _ if value.is_null() => {}
                    "format" => format = Some((value, "output_config.format")),
                    _ => self.report("output_config"),
                }
            }
        }
        let Some((format, path)) = format else { return Ok(()) };
        match format["type"].as_str() {
            Some("json_schema") if format["schema"].is_object() => {
                let schema = format["schema"].clone();
                body.insert(
                    "response_format".into(),
                    json!({"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": true}}),
                );
                Ok(())
            }
            Some("json_schema") => Err(RequestError::new(&format!("{path}.schema"), "must be a JSON schema object")),
            _ => Err(RequestError::new(&format!("{path}.type"), "must be `json_schema`")),
        }
    }

    /// `tools[] {name, description, input_schema}` -> function tools.
    fn tools(&mut self, tools: Option<&Value>) -> Result<Vec<Value>, RequestError> {
        let Some(tools) = tools.filter(|v| !v.is_null()) else { return Ok(Vec::new()) };
        let list = tools.as_array().ok_or_else(|| RequestError::new("tools", "must be a list of tools"))?;
        let mut names = Vec::new();
        for (i, tool) in list.iter().enumerate() {
            let path = format!("tools[{i}]");
            let obj = tool.as_object().ok_or_else(|| RequestError::new(&path, "must be an object"))?;
            match obj.get("type") {
                None | Some(Value::Null) => {}
                Some(Value::String(t)) if t == "custom" => {}
                Some(Value::String(t)) => {
                    return Err(RequestError::new(
                        &path,
                        format!(
                            "`{t}` is an Anthropic server tool, not available on OpenAI models; remove it or use a Claude model"
                        ),
                    ));
                }
                Some(_) => return Err(RequestError::new(&format!("{path}.type"), "must be a string")),
            }
            names.push(tool_name(&tool["name"], &format!("{path}.name"))?);
        }
        self.names.reserve(&names);
        let mut out = Vec::new();
        for (tool, name) in list.iter().zip(&names) {
            let mut function = Map::new();
            function.insert("name".into(), json!(self.names.short(name)));
            for (key, value) in tool.as_object().into_iter().flatten() {
                match key.as_str() {
                    "name" | "type" => {}
                    "description" if !value.is_null() => {
                        function.insert("description".into(), value.clone());
                    }
                    "input_schema" if !value.is_null() => {
                        function.insert("parameters".into(), value.clone());
                    }
                    "cache_control" => self.cache_control(tool),
                    _ if value.is_null() => {}
                    other => self.report(&format!("tools.{other}")),
                }
            }
            out.push(json!({"type": "function", "function": function}));
        }
        Ok(out)
    }

    /// Top-level `system` -> a first system message.
    fn system(&mut self, system: Option<&Value>, chat: &mut Vec<Value>) -> Result<(), RequestError> {
        let Some(system) = system.filter(|v| !v.is_null()) else { return Ok(()) };
        let text = self.system_text(system, "system")?;
        if !text.is_empty() {
            chat.push(json!({"role": "system", "content": text}));
        }
        Ok(())
    }

    /// System content: a string, or text blocks joined with a blank line.
    fn system_text(&mut self, content: &Value, path: &str) -> Result<String, RequestError> {
        match content {
            Value::String(s) => Ok(s.clone()),
            Value::Array(blocks) => {
                let mut texts = Vec::new();
                for (k, block) in blocks.iter().enumerate() {
                    let block_path = format!("{path}[{k}]");
                    if block_type(block, &block_path)? != "text" {
                        return Err(RequestError::new(&format!("{block_path}.type"), "system blocks must be text"));
                    }
                    self.cache_control(block);
                    let text = block_text(block, &block_path)?;
                    if !text.is_empty() {
                        texts.push(text);
                    }
                }
                Ok(texts.join("\n\n"))
            }
            _ => Err(RequestError::new(path, "must be a string or a list of text blocks")),
        }
    }

    fn message(&mut self, i: usize, message: &Value, chat: &mut Vec<Value>) -> Result<(), RequestError> {
        let path = format!("messages[{i}]");
        if !message.is_object() {
            return Err(RequestError::new(&path, "must be an object"));
        }
        let content = &message["content"];
        let content_path = format!("{path}.content");
        match message["role"].as_str() {
            Some("user") => self.user(content, &content_path, chat),
            Some("assistant") => self.assistant(content, &content_path, chat),
            Some("system") => {
                let text = self.system_text(content, &content_path)?;
                if !text.is_empty() {
                    chat.push(json!({"role": "system", "content": text}));
                }
                Ok(())
            }
            Some(_) => Err(RequestError::new(&format!("{path}.role"), "must be `user` or `assistant`")),
            None => Err(RequestError::new(&format!("{path}.role"), "is required")),
        }
    }

    /// A user turn: its tool results as `tool` messages first (they must follow the
    /// assistant message with the calls), then the rest as one user message.
    fn user(&mut self, content: &Value, path: &str, chat: &mut Vec<Value>) -> Result<(), RequestError> {
        let blocks = match content {
            Value::String(s) => {
                if !s.is_empty() {
                    chat.push(json!({"role": "user", "content": s}));
                }
                return Ok(());
            }
            Value::Array(blocks) => blocks,
            _ => return Err(RequestError::new(path, "must be a string or a list of content blocks")),
        };
        let mut tool_messages = Vec::new();
        // Images returned by tools: `tool` messages take only text, so they follow in
        // the user message.
        let mut tool_images = Vec::new();
        let mut parts = Vec::new();
        for (j, block) in blocks.iter().enumerate() {
            let block_path = format!("{path}[{j}]");
            self.cache_control(block);
            match block_type(block, &block_path)? {
                "text" => {
                    let text = block_text(block, &block_path)?;
                    if !text.is_empty() {
                        parts.push(json!({"type": "text", "text": text}));
                    }
                }
                "image" => parts.push(image_part(&block["source"], &format!("{block_path}.source"))?),
                "document" => parts.push(document_part(&block["source"], &format!("{block_path}.source"))?),
                "tool_result" => {
                    let (message, images) = self.tool_result(block, &block_path)?;
                    tool_messages.push(message);
                    tool_images.extend(images);
                }
                "thinking" | "redacted_thinking" => self.report("thinking"),
                "tool_use" => {
                    return Err(RequestError::new(
                        &format!("{block_path}.type"),
                        "a tool_use block belongs in an assistant message",
                    ));
                }
                other => return Err(no_equivalent(other, &block_path)),
            }
        }
        chat.extend(tool_messages);
        tool_images.extend(parts);
        let parts = tool_images;
        match parts.as_slice() {
            [] => {}
            [only] if only["type"] == "text" => chat.push(json!({"role": "user", "content": only["text"]})),
            _ => chat.push(json!({"role": "user", "content": parts})),
        }
        Ok(())
    }

    /// `tool_result` -> a `tool` message, and the images it held.
    fn tool_result(&mut self, block: &Value, path: &str) -> Result<(Value, Vec<Value>), RequestError> {
        let id = block["tool_use_id"]
            .as_str()
            .ok_or_else(|| RequestError::new(&format!("{path}.tool_use_id"), "must be a string"))?;
        let content_path = format!("{path}.content");
        let mut texts = Vec::new();
        let mut images = Vec::new();
        match &block["content"] {
            Value::Null => {}
            Value::String(s) => texts.push(s.clone()),
            Value::Array(blocks) => {
                for (k, inner) in blocks.iter().enumerate() {
                    let inner_path = format!("{content_path}[{k}]");
                    self.cache_control(inner);
                    match block_type(inner, &inner_path)? {
                        "text" => {
                            let text = block_text(inner, &inner_path)?;
                            if !text.is_empty() {
                                texts.push(text);
                            }
                        }
                        "image" => images.push(image_part(&inner["source"], &format!("{inner_path}.source"))?),
                        other => return Err(no_equivalent(other, &inner_path)),
                    }
                }
            }
            _ => return Err(RequestError::new(&content_path, "must be a string or a list of content blocks")),
        }
        let mut text = texts.join("\n\n");
        if text.is_empty() && !images.is_empty() {
            text = "(the image is in the next message)".to_string();
        }
        if block["is_error"].as_bool() == Some(true) {
            text = format!("Error: {text}");
        }
        Ok((json!({"role": "tool", "tool_call_id": id, "content": text}), images))
    }

    /// An assistant turn: its text as the content, its `tool_use` blocks as `tool_calls`.
    fn assistant(&mut self, content: &Value, path: &str, chat: &mut Vec<Value>) -> Result<(), RequestError> {
        let blocks = match content {
            Value::String(s) => {
                if !s.is_empty() {
                    chat.push(json!({"role": "assistant", "content": s}));
                }
                return Ok(());
            }
            Value::Array(blocks) => blocks,
            _ => return Err(RequestError::new(path, "must be a string or a list of content blocks")),
        };
        let mut text = String::new();
        let mut calls = Vec::new();
        for (j, block) in blocks.iter().enumerate() {
            let block_path = format!("{path}[{j}]");
            self.cache_control(block);
            match block_type(block, &block_path)? {
                // Consecutive text blocks (split by citations) read as one text.
                "text" => text.push_str(&block_text(block, &block_path)?),
                "tool_use" => {
                    let id = block["id"]
                        .as_str()
                        .ok_or_else(|| RequestError::new(&format!("{block_path}.id"), "must be a string"))?;
                    let name = tool_name(&block["name"], &format!("{block_path}.name"))?;
                    let input = match &block["input"] {
                        Value::Null => json!({}),
                        input => input.clone(),
                    };
                    calls.push(json!({
                        "id": id,
                        "type": "function",
                        "function": {"name": self.names.short(&name), "arguments": input.to_string()},
                    }));
                }
                "thinking" | "redacted_thinking" => self.report("thinking"),
                other @ ("image" | "document" | "tool_result") => {
                    return Err(RequestError::new(
                        &format!("{block_path}.type"),
                        format!("{other} blocks cannot appear in an assistant message"),
                    ));
                }
                other => return Err(no_equivalent(other, &block_path)),
            }
        }
        if text.is_empty() && calls.is_empty() {
            return Ok(());
        }
        let mut message =
            json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { json!(text) }});
        if !calls.is_empty() {
            message["tool_calls"] = Value::Array(calls);
        }
        chat.push(message);
        Ok(())
    }

    fn tool_choice(
        &mut self,
        choice: Option<&Value>,
        has_tools: bool,
        body: &mut Map<String, Value>,
    ) -> Result<(), RequestError> {
        let Some(choice) = choice.filter(|v| !v.is_null()) else { return Ok(()) };
        if !choice.is_object() {
            return Err(RequestError::new("tool_choice", "must be an object"));
        }
        let translated = match choice["type"].as_str() {
            Some("auto") => json!("auto"),
            Some("any") => json!("required"),
            Some("none") => json!("none"),
            Some("tool") => {
                let name = tool_name(&choice["name"], "tool_choice.name")?;
                json!({"type": "function", "function": {"name": self.names.short(&name)}})
            }
            Some(_) => {
                return Err(RequestError::new("tool_choice.type", "must be `auto`, `any`, `tool` or `none`"));
            }
            None => return Err(RequestError::new("tool_choice.type", "is required")),
        };
        if !has_tools {
            // OpenAI refuses a tool choice without tools; without tools there is no choice.
            self.report("tool_choice");
            return Ok(());
        }
        body.insert("tool_choice".into(), translated);
        match &choice["disable_parallel_tool_use"] {
            Value::Bool(true) => {
                body.insert("parallel_tool_calls".into(), json!(false));
            }
            Value::Bool(false) | Value::Null => {}
            _ => return Err(RequestError::new("tool_choice.disable_parallel_tool_use", "must be true or false")),
        }
        Ok(())
    }

    /// `thinking` -> `reasoning_effort` on OpenAI reasoning models, dropped elsewhere.
    fn thinking(
        &mut self,
        thinking: Option<&Value>,
        model: &str,
        body: &mut Map<String, Value>,
    ) -> Result<(), RequestError> {
        let Some(thinking) = thinking.filter(|v| !v.is_null()) else { return Ok(()) };
        if !thinking.is_object() {
            return Err(RequestError::new("thinking", "must be an object"));
        }
        let effort = match thinking["type"].as_str() {
            Some("disabled") => return Ok(()),
            Some("enabled") => match thinking["budget_tokens"].as_u64() {
                Some(budget) if budget < 4096 => "low",
                Some(budget) if budget < 16384 => "medium",
                Some(_) => "high",
                None => return Err(RequestError::new("thinking.budget_tokens", "must be a positive whole number")),
            },
            Some("adaptive") => "medium",
            Some(_) => return Err(RequestError::new("thinking.type", "must be `enabled`, `adaptive` or `disabled`")),
            None => return Err(RequestError::new("thinking.type", "is required")),
        };
        if is_reasoning_model(model) {
            body.insert("reasoning_effort".into(), json!(effort));
        } else {
            self.report("thinking");
        }
        Ok(())
    }
}

/// OpenAI's reasoning models (the part after a provider prefix such as `openai/`).
fn is_reasoning_model(model: &str) -> bool {
    let id = model.rsplit('/').next().unwrap_or(model).to_ascii_lowercase();
    ["o1", "o3", "o4", "gpt-5", "gpt-6"].iter().any(|p| id.starts_with(p))
}

/// A content block's `type`.
fn block_type<'a>(block: &'a Value, path: &str) -> Result<&'a str, RequestError> {
    if !block.is_object() {
        return Err(RequestError::new(path, "must be a content block object"));
    }
    block["type"].as_str().ok_or_else(|| RequestError::new(&format!("{path}.type"), "must be a string"))
}

/// A text block's `text`.
fn block_text(block: &Value, path: &str) -> Result<String, RequestError> {
    block["text"]
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| RequestError::new(&format!("{path}.text"), "must be a string"))
}

/// A tool's name: a non-empty string.
fn tool_name(name: &Value, path: &str) -> Result<String, RequestError> {
    match name.as_str() {
        Some("") => Err(RequestError::new(path, "must not be empty")),
        Some(n) => Ok(n.to_string()),
        None => Err(RequestError::new(path, "must be a string")),
    }
}

fn no_equivalent(kind: &str, path: &str) -> RequestError {
    RequestError::new(
        &format!("{path}.type"),
        format!("`{kind}` blocks have no equivalent on OpenAI models; remove them or use a Claude model"),
    )
}

/// An image source -> an `image_url` part (a URL is passed on, never fetched).
fn image_part(source: &Value, path: &str) -> Result<Value, RequestError> {
    let url = match source["type"].as_str() {
        Some("base64") => {
            let (media_type, data) = base64_source(source, path)?;
            format!("data:{media_type};base64,{data}")
        }
        Some("url") => source["url"]
            .as_str()
            .ok_or_else(|| RequestError::new(&format!("{path}.url"), "must be a string"))?
            .to_string(),
        Some(other) => {
            return Err(RequestError::new(
                &format!("{path}.type"),
                format!("`{other}` image sources cannot be sent to OpenAI models; send base64 data or a URL"),
            ));
        }
        None => return Err(RequestError::new(&format!("{path}.type"), "is required")),
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

/// A document source -> a `file` part; only base64 PDFs have an equivalent.
fn document_part(source: &Value, path: &str) -> Result<Value, RequestError> {
    if source["type"].as_str() == Some("base64") && source["media_type"].as_str() == Some("application/pdf") {
        let (media_type, data) = base64_source(source, path)?;
        return Ok(json!({"type": "file", "file": {
            "filename": "document.pdf",
            "file_data": format!("data:{media_type};base64,{data}"),
        }}));
    }
    Err(RequestError::new(path, "only base64 PDF documents can be sent to OpenAI models"))
}

fn base64_source<'a>(source: &'a Value, path: &str) -> Result<(&'a str, &'a str), RequestError> {
    let media_type = source["media_type"]
        .as_str()
        .ok_or_else(|| RequestError::new(&format!("{path}.media_type"), "must be a string"))?;
    let data = source["data"].as_str().ok_or_else(|| RequestError::new(&format!("{path}.data"), "must be a string"))?;
    Ok((media_type, data))
}

/// Tool names as OpenAI accepts them (`^[a-zA-Z0-9_-]{1,64}$`), consistently across the
/// tools, the history and `tool_choice` of one request.
#[derive(Default)]
struct Names {
    /// Original -> name sent.
    sent: HashMap<String, String>,
    /// Names sent so far (and valid tool names, reserved up front).
    taken: HashSet<String>,
    /// Name sent -> original, for the names that changed.
    short_to_original: HashMap<String, String>,
}

impl Names {
    /// Reserves the declared tools' valid names, so that a changed name never takes one.
    fn reserve(&mut self, names: &[String]) {
        for name in names.iter().filter(|n| is_valid_name(n)) {
            self.taken.insert(name.clone());
        }
    }

    /// The name to send for `original`: itself when valid; else with other characters
    /// replaced by `_`, and when that is too long or already taken, its first 55
    /// characters, `_` and 8 hex digits of a hash of the original.
    fn short(&mut self, original: &str) -> String {
        if let Some(sent) = self.sent.get(original) {
            return sent.clone();
        }
        let sent = if is_valid_name(original) {
            original.to_string()
        } else {
            let clean: String = original.chars().map(|c| if valid_char(c) { c } else { '_' }).collect();
            if clean.len() > MAX_NAME || self.taken.contains(&clean) {
                let prefix: String = clean.chars().take(NAME_PREFIX).collect();
                format!("{prefix}_{:08x}", fnv1a(original))
            } else {
                clean
            }
        };
        if sent != original {
            self.short_to_original.insert(sent.clone(), original.to_string());
        }
        self.taken.insert(sent.clone());
        self.sent.insert(original.to_string(), sent.clone());
        sent
    }
}

fn valid_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn is_valid_name(name: &str) -> bool {
    !name.is_empty() && name.len() <= MAX_NAME && name.chars().all(valid_char)
}

/// 32-bit FNV-1a: a small, stable hash (the same name always shortens the same way).
fn fnv1a(s: &str) -> u32 {
    s.bytes().fold(0x811c_9dc5_u32, |hash, byte| (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193))
}

/// An OpenAI `finish_reason` -> an Anthropic `stop_reason`. OpenAI does not say which
/// stop sequence ended the answer, so `stop` is always `end_turn`.
fn stop_reason(finish: &Value) -> &'static str {
    match finish.as_str() {
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ => "end_turn",
    }
}

/// OpenAI usage -> Anthropic usage. `prompt_tokens` includes the cached tokens, which
/// Anthropic counts apart from `input_tokens`.
fn usage(u: &Value) -> Value {
    let u = crate::usage::Reported::from_value(u).unwrap_or_default().tokens(crate::UsageFormat::Chat);
    json!({
        "input_tokens": u.input,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": u.cached_input,
        "output_tokens": u.output,
    })
}

/// Usage when the provider reported none: the input estimate, no output.
fn estimated_usage(ctx: &Context, output_tokens: u64) -> Value {
    json!({
        "input_tokens": ctx.input_estimate,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output_tokens,
    })
}

fn message_id(chat: &Value) -> String {
    match chat["id"].as_str() {
        Some(id) if !id.is_empty() => format!("msg_{id}"),
        _ => "msg_unknown".to_string(),
    }
}

/// A tool call's arguments as an `input` object; anything but a JSON object is `{}`.
fn parse_arguments(arguments: &Value) -> Value {
    match arguments {
        Value::String(s) => match serde_json::from_str::<Value>(s) {
            Ok(v @ Value::Object(_)) => v,
            _ => json!({}),
        },
        v @ Value::Object(_) => v.clone(),
        _ => json!({}),
    }
}

/// The text of a message's `content`: a string, or (some compatible providers) parts.
fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
        _ => String::new(),
    }
}

/// An OpenAI chat.completion -> an Anthropic message.
pub fn response(chat: &Value, ctx: &Context) -> Value {
    let choice = &chat["choices"][0];
    let message = &choice["message"];
    let mut content = Vec::new();
    for field in ["content", "refusal"] {
        let text = content_text(&message[field]);
        if !text.is_empty() {
            content.push(json!({"type": "text", "text": text}));
        }
    }
    for (k, call) in message["tool_calls"].as_array().into_iter().flatten().enumerate() {
        let id = call["id"].as_str().map_or_else(|| format!("call_{k}"), str::to_string);
        let name = call["function"]["name"].as_str().unwrap_or("");
        content.push(json!({
            "type": "tool_use",
            "id": tool_id(&id),
            "name": ctx.original_name(name),
            "input": parse_arguments(&call["function"]["arguments"]),
        }));
    }
    // The legacy single `function_call`.
    if let Some(call) = message["function_call"].as_object() {
        let name = call.get("name").and_then(Value::as_str).unwrap_or("");
        content.push(json!({
            "type": "tool_use",
            "id": "call_function",
            "name": ctx.original_name(name),
            "input": parse_arguments(call.get("arguments").unwrap_or(&Value::Null)),
        }));
    }
    let usage = match chat.get("usage").filter(|u| u.is_object()) {
        Some(u) => usage(u),
        None => estimated_usage(ctx, 0),
    };
    json!({
        "id": message_id(chat),
        "type": "message",
        "role": "assistant",
        "model": ctx.model,
        "content": content,
        "stop_reason": stop_reason(&choice["finish_reason"]),
        "stop_sequence": null,
        "usage": usage,
    })
}

/// OpenAI chat stream chunks -> Anthropic stream events.
pub fn stream(ctx: Context) -> Box<dyn StreamTranslator> {
    Box::new(ChatStream { ctx, ..ChatStream::default() })
}

/// The content block open in the Anthropic stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Open {
    Text(usize),
    Tool(usize),
}

/// A tool call seen in the stream.
#[derive(Debug)]
struct Call {
    /// Its content block index.
    block: usize,
    /// The upstream id.
    id: String,
}

#[derive(Debug, Default)]
struct ChatStream {
    ctx: Context,
    /// `message_start` was sent.
    started: bool,
    /// `message_stop` or `error` was sent: nothing more may follow.
    ended: bool,
    /// Content blocks opened so far (the next block's index).
    blocks: usize,
    open: Option<Open>,
    /// Upstream tool-call index -> the call.
    calls: HashMap<u64, Call>,
    /// The upstream index of the last tool call opened.
    last_call: Option<u64>,
    stop_reason: Option<&'static str>,
    /// Anthropic usage, once a chunk carried OpenAI usage.
    usage: Option<Value>,
}

impl ChatStream {
    fn start(&mut self, chunk: &Value, out: &mut Vec<u8>) {
        if self.started {
            return;
        }
        self.started = true;
        sse_event(
            out,
            "message_start",
            &json!({"type": "message_start", "message": {
                "id": message_id(chunk),
                "type": "message",
                "role": "assistant",
                "model": self.ctx.model,
                "content": [],
                "stop_reason": null,
                "stop_sequence": null,
                "usage": {
                    "input_tokens": self.ctx.input_estimate,
                    "cache_creation_input_tokens": 0,
                    "cache_read_input_tokens": 0,
                    "output_tokens": 1,
                },
            }}),
        );
    }

    fn close_block(&mut self, out: &mut Vec<u8>) {
        if let Some(Open::Text(index) | Open::Tool(index)) = self.open.take() {
            sse_event(out, "content_block_stop", &json!({"type": "content_block_stop", "index": index}));
        }
    }

    /// Closes the open block and opens `block` at the next index.
    fn open_block(&mut self, block: Value, out: &mut Vec<u8>) -> usize {
        self.close_block(out);
        let index = self.blocks;
        self.blocks += 1;
        sse_event(
            out,
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": block}),
        );
        index
    }

    fn delta(out: &mut Vec<u8>, index: usize, delta: Value) {
        sse_event(out, "content_block_delta", &json!({"type": "content_block_delta", "index": index, "delta": delta}));
    }

    fn text(&mut self, text: &str, out: &mut Vec<u8>) {
        if text.is_empty() {
            return;
        }
        let index = match self.open {
            Some(Open::Text(index)) => index,
            _ => {
                let index = self.open_block(json!({"type": "text", "text": ""}), out);
                self.open = Some(Open::Text(index));
                index
            }
        };
        Self::delta(out, index, json!({"type": "text_delta", "text": text}));
    }

    fn tool_call(&mut self, call: &Value, out: &mut Vec<u8>) {
        let id = call["id"].as_str().filter(|id| !id.is_empty());
        let key = match call["index"].as_u64() {
            Some(index) => index,
            // Some compatible providers leave out `index`: a new id is a new call.
            None => match (self.last_call, id) {
                (Some(last), Some(id)) if self.calls.get(&last).is_some_and(|c| c.id != id) => {
                    self.calls.keys().max().map_or(0, |k| k.saturating_add(1))
                }
                (Some(last), _) => last,
                (None, _) => 0,
            },
        };
        let block = match self.calls.get(&key) {
            Some(known) => known.block,
            None => {
                let id = id.map_or_else(|| format!("call_{key}"), str::to_string);
                let name = call["function"]["name"].as_str().unwrap_or("");
                let block = self.open_block(
                    json!({"type": "tool_use", "id": tool_id(&id), "name": self.ctx.original_name(name), "input": {}}),
                    out,
                );
                self.open = Some(Open::Tool(block));
                self.calls.insert(key, Call { block, id });
                self.last_call = Some(key);
                block
            }
        };
        // Fragments of a call whose block was closed (interleaved calls, which OpenAI
        // does not send) still go to that call's block, so its input stays whole.
        if let Some(fragment) = call["function"]["arguments"].as_str().filter(|f| !f.is_empty()) {
            Self::delta(out, block, json!({"type": "input_json_delta", "partial_json": fragment}));
        }
    }

    /// `message_delta` (with the real usage when known) and `message_stop`, once.
    fn end(&mut self, out: &mut Vec<u8>) {
        if self.ended {
            return;
        }
        self.start(&Value::Null, out);
        self.close_block(out);
        let usage = self.usage.take().unwrap_or_else(|| estimated_usage(&self.ctx, 0));
        sse_event(
            out,
            "message_delta",
            &json!({
                "type": "message_delta",
                "delta": {"stop_reason": self.stop_reason.unwrap_or("end_turn"), "stop_sequence": null},
                "usage": usage,
            }),
        );
        sse_event(out, "message_stop", &json!({"type": "message_stop"}));
        self.ended = true;
    }

    fn error(&mut self, error: &Value, out: &mut Vec<u8>) {
        let body = json!({"error": error});
        sse_event(
            out,
            "error",
            &json!({"type": "error", "error": {"type": error_type(error), "message": error_message(&body)}}),
        );
        self.ended = true;
    }
}

/// The Anthropic error type for an OpenAI(-compatible) in-stream error.
fn error_type(error: &Value) -> &'static str {
    if let Some(status) = error["code"].as_u64().or_else(|| error["status"].as_u64()).filter(|s| (400..600).contains(s))
    {
        return anthropic_error_type(u16::try_from(status).unwrap_or(500));
    }
    for field in ["code", "type"] {
        let kind = match error[field].as_str() {
            Some("invalid_request_error" | "context_length_exceeded") => "invalid_request_error",
            Some("authentication_error" | "invalid_api_key") => "authentication_error",
            Some("permission_error" | "permission_denied") => "permission_error",
            Some("not_found_error" | "model_not_found") => "not_found_error",
            Some("rate_limit_exceeded" | "rate_limit_error" | "requests" | "tokens") => "rate_limit_error",
            Some("insufficient_quota" | "billing_error") => "billing_error",
            Some("overloaded_error" | "overloaded" | "service_unavailable") => "overloaded_error",
            Some("timeout_error" | "timeout") => "timeout_error",
            Some("server_error" | "api_error") => "api_error",
            _ => continue,
        };
        return kind;
    }
    "api_error"
}

impl StreamTranslator for ChatStream {
    fn event(&mut self, _name: Option<&str>, data: &Value, out: &mut Vec<u8>) {
        if self.ended || !data.is_object() {
            return;
        }
        if let Some(error) = data.get("error").filter(|e| !e.is_null()) {
            self.error(error, out);
            return;
        }
        self.start(data, out);
        let choices = data["choices"].as_array().map_or(&[][..], Vec::as_slice);
        // An Anthropic client asks for one answer: the first choice.
        for choice in choices.iter().filter(|c| c["index"].as_u64().unwrap_or(0) == 0) {
            let delta = &choice["delta"];
            for field in ["content", "refusal"] {
                if let Some(text) = delta[field].as_str() {
                    self.text(text, out);
                }
            }
            for call in delta["tool_calls"].as_array().into_iter().flatten() {
                self.tool_call(call, out);
            }
            if !choice["finish_reason"].is_null() {
                self.close_block(out);
                self.stop_reason = Some(stop_reason(&choice["finish_reason"]));
            }
        }
        if let Some(u) = data.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(usage(u));
            // The usage chunk (`choices: []`) comes last: the message is complete.
            if choices.is_empty() {
                self.end(out);
            }
        }
    }

    fn done(&mut self, out: &mut Vec<u8>) {
        self.end(out);
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        self.end(out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sse::Parser;
    use proptest::prelude::*;

    /// JSON snapshots with sorted keys, whatever `serde_json` features the build has.
    macro_rules! snap {
        ($name:expr, $value:expr) => {
            insta::with_settings!({sort_maps => true}, { insta::assert_json_snapshot!($name, $value) })
        };
    }

    fn req(body: Value) -> Translated {
        request(&body, true).unwrap()
    }

    fn param(body: Value) -> String {
        request(&body, true).unwrap_err().param
    }

    /// A minimal request with `messages` and the extra fields of `more`.
    fn with(messages: Value, more: Value) -> Value {
        let mut body = json!({"model": "gpt-4.1", "max_tokens": 1024, "messages": messages});
        for (k, v) in more.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    }

    fn user(text: &str) -> Value {
        json!([{"role": "user", "content": text}])
    }

    fn weather_tool() -> Value {
        json!({"name": "get_weather", "description": "Current weather for a city.", "input_schema": {
            "type": "object",
            "properties": {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}},
            "required": ["location"],
        }})
    }

    // ---------------------------------------------------------------- requests

    #[test]
    fn system_string_blocks_and_system_messages_in_messages() {
        let t = req(with(
            json!([
                {"role": "user", "content": "Hi"},
                {"role": "system", "content": [{"type": "text", "text": "Now answer in French."}]},
                {"role": "assistant", "content": "Bonjour"},
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Again", "cache_control": {"type": "ephemeral"}}]}
            ]),
            json!({"system": [
                {"type": "text", "text": "You are terse.", "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": ""},
                {"type": "text", "text": "Never apologise."}
            ]}),
        ));
        assert_eq!(t.dropped, ["cache_control"]);
        snap!("system_blocks_and_system_messages", t.body);
        let plain = req(with(user("Hi"), json!({"system": "You are terse."})));
        assert_eq!(plain.body["messages"][0], json!({"role": "system", "content": "You are terse."}));
        assert!(plain.dropped.is_empty());
    }

    #[test]
    fn images_base64_and_url_and_pdf_documents() {
        let t = req(with(
            json!([{"role": "user", "content": [
                {"type": "text", "text": "What are these?"},
                {"type": "text", "text": ""},
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
                {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}}
            ]}]),
            json!({}),
        ));
        snap!("images_and_documents", t.body["messages"]);
    }

    #[test]
    fn tool_history_puts_tool_messages_first_in_their_turn() {
        let t = req(with(
            json!([
                {"role": "user", "content": "Weather in Paris and Rome? Then the time."},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "Two cities.", "signature": "c2ln"},
                    {"type": "text", "text": "Let me check."},
                    {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"location": "Paris"}},
                    {"type": "tool_use", "id": "toolu_02", "name": "get_weather", "input": {"location": "Rome"}}
                ]},
                {"role": "user", "content": [
                    {"type": "text", "text": "Also, hurry."},
                    {"type": "tool_result", "tool_use_id": "toolu_01", "content": "18°C, sunny"},
                    {"type": "tool_result", "tool_use_id": "toolu_02", "is_error": true,
                     "content": [{"type": "text", "text": "service unavailable"}]}
                ]},
                {"role": "assistant", "content": [
                    {"type": "redacted_thinking", "data": "ZW5j"},
                    {"type": "tool_use", "id": "toolu_03", "name": "get_time", "input": {}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_03", "content": [
                        {"type": "text", "text": "12:00"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "Y2xvY2s="}}
                    ]}
                ]},
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "only thoughts", "signature": "x"}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_04"}]}
            ]),
            json!({"tools": [weather_tool(), {"name": "get_time", "input_schema": {"type": "object"}}]}),
        ));
        assert_eq!(t.dropped, ["thinking"]);
        let messages = t.body["messages"].as_array().unwrap();
        let roles: Vec<&str> = messages.iter().map(|m| m["role"].as_str().unwrap()).collect();
        assert_eq!(roles, ["user", "assistant", "tool", "tool", "user", "assistant", "tool", "user", "tool"]);
        assert_eq!(messages[5]["content"], Value::Null, "an assistant turn with only tool_use has null content");
        snap!("tool_history", t.body["messages"]);
    }

    #[test]
    fn tools_become_functions() {
        let t = req(with(
            user("Weather?"),
            json!({"tools": [
                weather_tool(),
                {"type": "custom", "name": "noop", "input_schema": {"type": "object", "properties": {}},
                 "cache_control": {"type": "ephemeral"}}
            ]}),
        ));
        assert_eq!(t.dropped, ["cache_control"]);
        assert!(t.tool_names.is_empty());
        snap!("tools", t.body["tools"]);
        let none = req(with(user("Hi"), json!({"tools": []})));
        assert!(none.body.get("tools").is_none(), "OpenAI refuses an empty tools list");
    }

    #[test]
    fn every_tool_choice_and_disable_parallel_tool_use() {
        let choices = [
            json!({"type": "auto"}),
            json!({"type": "any"}),
            json!({"type": "none"}),
            json!({"type": "tool", "name": "get_weather"}),
            json!({"type": "auto", "disable_parallel_tool_use": true}),
            json!({"type": "any", "disable_parallel_tool_use": false}),
        ];
        let table: Vec<Value> = choices
            .iter()
            .map(|choice| {
                let t = req(with(user("Weather?"), json!({"tools": [weather_tool()], "tool_choice": choice})));
                let absent = json!("(absent)");
                json!({"anthropic": choice, "tool_choice": t.body["tool_choice"],
                       "parallel_tool_calls": t.body.get("parallel_tool_calls").unwrap_or(&absent)})
            })
            .collect();
        snap!("tool_choices", table);
        // Without tools there is nothing to choose (OpenAI would refuse the field).
        let t = req(with(user("Hi"), json!({"tool_choice": {"type": "any", "disable_parallel_tool_use": true}})));
        assert!(t.body.get("tool_choice").is_none() && t.body.get("parallel_tool_calls").is_none());
        assert_eq!(t.dropped, ["tool_choice"]);
    }

    #[test]
    fn max_tokens_stop_sequences_metadata_sampling_and_unknown_fields() {
        let body = with(
            user("Count to three."),
            json!({
                "stream": true, "temperature": 0.2, "top_p": 0.9, "stop_sequences": ["4", "four"],
                "metadata": {"user_id": "user-42"}, "seed": 7, "x_custom": {"kept": true},
                "context_management": {"edits": []}, "output_config": {"effort": "high"}, "service_tier": "auto"
            }),
        );
        let openai = request(&body, true).unwrap();
        assert_eq!(openai.dropped, ["context_management", "service_tier", "output_config"]);
        snap!("parameters_openai", openai.body);
        let compatible = request(&body, false).unwrap();
        assert_eq!(compatible.body["max_tokens"], 1024);
        assert!(compatible.body.get("max_completion_tokens").is_none());
        let plain = req(with(user("Hi"), json!({"stream": false, "stop_sequences": []})));
        assert!(plain.body.get("stream_options").is_none() && plain.body.get("stop").is_none());
        assert_eq!(plain.body["stream"], false);
    }

    #[test]
    fn structured_output_becomes_response_format() {
        let schema = json!({"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                            "additionalProperties": false});
        let expected =
            json!({"type": "json_schema", "json_schema": {"name": "output", "schema": schema, "strict": true}});
        let t = req(with(
            user("Capital of France, as JSON."),
            json!({"output_config": {"format": {"type": "json_schema", "schema": schema}, "effort": "low"}}),
        ));
        assert_eq!(t.body["response_format"], expected);
        assert!(t.body.get("output_config").is_none());
        assert_eq!(t.dropped, ["output_config"], "effort has no equivalent");
        let beta = req(with(user("x"), json!({"output_format": {"type": "json_schema", "schema": schema}})));
        assert_eq!(beta.body["response_format"], expected);
        assert!(beta.body.get("output_format").is_none() && beta.dropped.is_empty());
        let bad = json!({"output_config": {"format": {"type": "json_schema"}}});
        assert_eq!(param(with(user("x"), bad)), "output_config.format.schema");
        assert_eq!(param(with(user("x"), json!({"output_format": {"type": "regex"}}))), "output_format.type");
    }

    #[test]
    fn thinking_becomes_reasoning_effort_on_reasoning_models_only() {
        let effort = |model: &str, thinking: Value| {
            let t = request(&json!({"model": model, "max_tokens": 10, "messages": [], "thinking": thinking}), true)
                .unwrap();
            (t.body.get("reasoning_effort").cloned(), t.dropped)
        };
        let enabled = |budget: u64| json!({"type": "enabled", "budget_tokens": budget});
        assert_eq!(effort("o3", enabled(1024)), (Some(json!("low")), vec![]));
        assert_eq!(effort("o4-mini", enabled(4096)), (Some(json!("medium")), vec![]));
        assert_eq!(effort("gpt-5", enabled(16383)), (Some(json!("medium")), vec![]));
        assert_eq!(effort("gpt-5.1-codex", enabled(16384)), (Some(json!("high")), vec![]));
        assert_eq!(effort("openai/o1", json!({"type": "adaptive"})), (Some(json!("medium")), vec![]));
        assert_eq!(effort("gpt-6", json!({"type": "disabled"})), (None, vec![]));
        assert_eq!(effort("gpt-4.1", json!({"type": "adaptive"})), (None, vec!["thinking".to_string()]));
        assert_eq!(effort("llama-3.3-70b", enabled(2048)), (None, vec!["thinking".to_string()]));
        assert_eq!(param(with(user("x"), json!({"thinking": {"type": "enabled"}}))), "thinking.budget_tokens");
    }

    #[test]
    fn long_and_invalid_tool_names_are_shortened_consistently() {
        let long = "mcp__claude_ai_Atlassian_Rovo__getConfluencePageDescendantsWithFullHierarchy";
        let dotted = "github.create_issue";
        let body = with(
            json!([
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "toolu_1", "name": long, "input": {"pageId": "1"}},
                    {"type": "tool_use", "id": "toolu_2", "name": dotted, "input": {}},
                    {"type": "tool_use", "id": "toolu_3", "name": "old tool", "input": {}}
                ]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "[]"}]}
            ]),
            json!({"tools": [
                {"name": long, "input_schema": {"type": "object"}},
                {"name": dotted, "input_schema": {"type": "object"}},
                {"name": "github_create_issue", "input_schema": {"type": "object"}}
            ], "tool_choice": {"type": "tool", "name": long}}),
        );
        let t = req(body.clone());
        let sent: Vec<&str> =
            t.body["tools"].as_array().unwrap().iter().map(|f| f["function"]["name"].as_str().unwrap()).collect();
        for name in &sent {
            assert!(is_valid_name(name), "{name}");
        }
        assert_eq!(sent[0].len(), 64);
        assert!(sent[0].starts_with(&long[..55]));
        // `github_create_issue` is a tool of its own: the dotted name must not take it.
        assert_ne!(sent[1], "github_create_issue");
        assert!(sent[1].starts_with("github_create_issue_"));
        assert_eq!(sent[2], "github_create_issue");
        let calls = &t.body["messages"][0]["tool_calls"];
        assert_eq!(calls[0]["function"]["name"], sent[0]);
        assert_eq!(calls[1]["function"]["name"], sent[1]);
        assert_eq!(calls[2]["function"]["name"], "old_tool");
        assert_eq!(t.body["tool_choice"]["function"]["name"], sent[0]);
        let mut expected = HashMap::new();
        expected.insert(sent[0].to_string(), long.to_string());
        expected.insert(sent[1].to_string(), dotted.to_string());
        expected.insert("old_tool".to_string(), "old tool".to_string());
        assert_eq!(t.tool_names, expected);
        assert_eq!(req(body), t, "deterministic");
        // Answers show the original names again.
        let ctx = Context { tool_names: t.tool_names.clone(), ..Context::default() };
        assert_eq!(ctx.original_name(sent[0]), long);
    }

    #[test]
    fn claude_code_request() {
        let tool = |name: &str, description: &str| {
            json!({"name": name, "description": description, "input_schema": {
                "type": "object", "$schema": "http://json-schema.org/draft-07/schema#", "additionalProperties": false,
                "properties": {"arg": {"type": "string"}}, "required": ["arg"],
            }})
        };
        let mcp = "mcp__claude_ai_Atlassian__getConfluencePageFooterCommentsWithReplies";
        let mut tools: Vec<Value> = [
            ("Task", "Launch a new agent."),
            ("Bash", "Executes a bash command."),
            ("Glob", "Fast file pattern matching."),
            ("Grep", "Search file contents."),
            ("ExitPlanMode", "Leave plan mode."),
            ("Read", "Reads a file."),
            ("Edit", "Performs exact string replacements."),
            ("Write", "Writes a file."),
            ("NotebookEdit", "Edits a Jupyter cell."),
            ("WebFetch", "Fetches a URL."),
            ("TodoWrite", "Updates the todo list."),
            ("BashOutput", "Reads a background shell's output."),
        ]
        .iter()
        .map(|(n, d)| tool(n, d))
        .collect();
        tools.push(tool(mcp, "Get footer comments of a Confluence page."));
        tools.last_mut().unwrap()["cache_control"] = json!({"type": "ephemeral"});
        let body = json!({
            "model": "gpt-5",
            "max_tokens": 128000,
            "stream": true,
            "thinking": {"type": "adaptive"},
            "context_management": {"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]},
            "output_config": {"effort": "medium"},
            "metadata": {"user_id": "user_2f1c_account_9a8b_session_77e0"},
            "system": [
                {"type": "text", "text": "You are Claude Code, Anthropic's official CLI for Claude.",
                 "cache_control": {"type": "ephemeral"}},
                {"type": "text", "text": "You are an interactive CLI tool that helps users with software engineering tasks.",
                 "cache_control": {"type": "ephemeral"}}
            ],
            "messages": [
                {"role": "system", "content": "<system-reminder>Plan mode is off.</system-reminder>"},
                {"role": "user", "content": [
                    {"type": "text", "text": "<system-reminder>CLAUDE.md: use cargo.</system-reminder>"},
                    {"type": "text", "text": "Why does the build fail?", "cache_control": {"type": "ephemeral"}}
                ]},
                {"role": "assistant", "content": [
                    {"type": "thinking", "thinking": "Run the build first.", "signature": "RXVnZQ=="},
                    {"type": "text", "text": "I'll run the build."},
                    {"type": "tool_use", "id": "toolu_01A", "name": "Bash",
                     "input": {"command": "cargo build", "description": "Build"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01A",
                     "content": "error[E0425]: cannot find value `x`", "is_error": true},
                    {"type": "text", "text": "<system-reminder>Todo list is empty.</system-reminder>",
                     "cache_control": {"type": "ephemeral"}}
                ]},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "toolu_01B", "name": mcp, "input": {"pageId": "42"}}
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "toolu_01B", "content": [{"type": "text", "text": "[]"}]}
                ]}
            ],
            "tools": tools.clone(),
            "tool_choice": {"type": "auto"},
        });
        let t = req(body);
        assert_eq!(t.dropped, ["context_management", "output_config", "cache_control", "thinking"]);
        assert_eq!(t.body["tools"].as_array().map(Vec::len), Some(13));
        assert_eq!(t.body["reasoning_effort"], "medium");
        assert_eq!(t.tool_names.len(), 1);
        // The tools' schemas pass unchanged; the snapshot lists their names only.
        let mut shown = t.body.clone();
        let functions = shown["tools"].as_array_mut().unwrap();
        for (function, tool) in functions.iter_mut().zip(&tools) {
            assert_eq!(function["function"]["parameters"], tool["input_schema"]);
            assert_eq!(function["function"]["description"], tool["description"]);
            *function = function["function"]["name"].clone();
        }
        snap!("claude_code_request", shown);
        snap!("claude_code_tool_names", t.tool_names);
    }

    #[test]
    fn refusals_name_the_field() {
        let m = user("Hi");
        assert_eq!(param(with(m.clone(), json!({"top_k": 40}))), "top_k");
        assert_eq!(
            param(with(m.clone(), json!({"mcp_servers": [{"type": "url", "url": "https://x"}]}))),
            "mcp_servers"
        );
        assert_eq!(param(with(m.clone(), json!({"container": "container_1"}))), "container");
        let server =
            json!({"tools": [weather_tool(), {"type": "web_search_20250305", "name": "web_search", "max_uses": 5}]});
        let e = request(&with(m.clone(), server), true).unwrap_err();
        assert_eq!(e.param, "tools[1]");
        assert!(e.reason.contains("web_search_20250305") && e.reason.contains("server tool"), "{}", e.reason);
        assert_eq!(param(with(m.clone(), json!({"tools": [{"type": "bash_20250124", "name": "bash"}]}))), "tools[0]");
        let doc = |source: Value| {
            with(
                json!([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                       {"role": "user", "content": [{"type": "document", "source": source}]}]),
                json!({}),
            )
        };
        assert_eq!(
            param(doc(json!({"type": "text", "media_type": "text/plain", "data": "hi"}))),
            "messages[2].content[0].source"
        );
        assert_eq!(param(doc(json!({"type": "url", "url": "https://x/a.pdf"}))), "messages[2].content[0].source");
        let file_image =
            json!([{"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}]);
        assert_eq!(param(with(file_image, json!({}))), "messages[0].content[0].source.type");
        assert_eq!(param(json!({"model": "gpt-4.1", "messages": []})), "max_tokens");
        assert_eq!(param(json!({"model": "gpt-4.1", "max_tokens": 0, "messages": []})), "max_tokens");
        assert_eq!(param(json!({"model": "gpt-4.1", "max_tokens": 5})), "messages");
        assert_eq!(param(json!({"max_tokens": 5, "messages": []})), "model");
        assert_eq!(param(json!("nope")), "body");
        assert_eq!(param(with(json!([{"role": "tool", "content": "x"}]), json!({}))), "messages[0].role");
        let unknown_block = json!([{"role": "user", "content": [{"type": "search_result", "source": "s"}]}]);
        assert_eq!(param(with(unknown_block, json!({}))), "messages[0].content[0].type");
        let user_tool_use =
            json!([{"role": "user", "content": [{"type": "tool_use", "id": "a", "name": "b", "input": {}}]}]);
        assert_eq!(param(with(user_tool_use, json!({}))), "messages[0].content[0].type");
        let bad_result = json!([{"role": "user", "content": [{"type": "tool_result", "tool_use_id": "a",
            "content": [{"type": "document", "source": {}}]}]}]);
        assert_eq!(param(with(bad_result, json!({}))), "messages[0].content[0].content[0].type");
        assert_eq!(
            param(with(m.clone(), json!({"tool_choice": {"type": "maybe"}, "tools": [weather_tool()]}))),
            "tool_choice.type"
        );
        assert_eq!(param(with(m, json!({"stop_sequences": ["a", 1]}))), "stop_sequences[1]");
    }

    // ---------------------------------------------------------------- answers

    fn completion(message: Value, finish: &str, usage: Value) -> Value {
        json!({
            "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
            "object": "chat.completion",
            "created": 1_741_570_283,
            "model": "gpt-4.1-2025-04-14",
            "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
            "usage": usage,
            "service_tier": "default",
            "system_fingerprint": "fp_b8bc95a0ac",
        })
    }

    fn openai_usage(prompt: u64, cached: u64, completion: u64) -> Value {
        json!({
            "prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
            "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
        })
    }

    fn answer_ctx() -> Context {
        let mut tool_names = HashMap::new();
        tool_names.insert(
            "mcp__a_long_server_name__get_x_3f2a9c1d".to_string(),
            "mcp__a long.server/name::get_x".to_string(),
        );
        Context { model: "gpt-4.1".into(), input_estimate: 1500, tool_names, ..Context::default() }
    }

    #[test]
    fn text_answer_with_cached_usage() {
        let chat = completion(
            json!({"role": "assistant", "content": "Paris is the capital of France.", "refusal": null, "annotations": []}),
            "stop",
            openai_usage(2006, 1920, 300),
        );
        let message = response(&chat, &answer_ctx());
        assert_eq!(message["usage"]["input_tokens"], 86, "prompt_tokens includes the cached tokens");
        assert_eq!(message["usage"]["cache_read_input_tokens"], 1920);
        snap!("answer_text", message);
    }

    #[test]
    fn tool_call_answer() {
        let chat = completion(
            json!({"role": "assistant", "content": "Checking both.", "refusal": null, "tool_calls": [
                {"id": "call_abc123", "type": "function",
                 "function": {"name": "get_weather", "arguments": "{\"location\":\"Paris\",\"unit\":\"celsius\"}"}},
                {"id": "call.def/456", "type": "function",
                 "function": {"name": "mcp__a_long_server_name__get_x_3f2a9c1d", "arguments": "{\"broken\": "}},
                {"id": "call_ghi789", "type": "function", "function": {"name": "noop", "arguments": ""}}
            ]}),
            "tool_calls",
            json!({"prompt_tokens": 120, "completion_tokens": 40, "total_tokens": 160}),
        );
        let message = response(&chat, &answer_ctx());
        assert_eq!(message["content"][2]["name"], "mcp__a long.server/name::get_x");
        assert_eq!(message["content"][2]["id"], "call_def_456");
        snap!("answer_tool_calls", message);
    }

    #[test]
    fn every_finish_reason_and_refusals() {
        let stop = |finish: Value| {
            let mut chat = completion(json!({"role": "assistant", "content": "x"}), "stop", openai_usage(1, 0, 1));
            chat["choices"][0]["finish_reason"] = finish;
            response(&chat, &answer_ctx())["stop_reason"].clone()
        };
        assert_eq!(stop(json!("stop")), "end_turn");
        assert_eq!(stop(json!("length")), "max_tokens");
        assert_eq!(stop(json!("tool_calls")), "tool_use");
        assert_eq!(stop(json!("function_call")), "tool_use");
        assert_eq!(stop(json!("content_filter")), "refusal");
        assert_eq!(stop(json!("something_new")), "end_turn");
        assert_eq!(stop(Value::Null), "end_turn");
        let refused = completion(
            json!({"role": "assistant", "content": null, "refusal": "I can't help with that."}),
            "content_filter",
            openai_usage(10, 0, 7),
        );
        snap!("answer_refusal", response(&refused, &answer_ctx()));
        // No usage at all: the estimate stands in for the input.
        let bare = json!({"id": "x", "choices": [{"message": {"content": ""}, "finish_reason": "length"}]});
        let message = response(&bare, &answer_ctx());
        assert_eq!(message["content"], json!([]));
        assert_eq!(message["usage"]["input_tokens"], 1500);
        assert_eq!(message["usage"]["output_tokens"], 0);
    }

    // ---------------------------------------------------------------- streams

    const CHUNK_ID: &str = "chatcmpl-C1x2y3z4";

    /// A chunk as OpenAI sends it with `include_usage` (every chunk has `usage: null`).
    fn chunk(delta: Value, finish: Option<&str>) -> Value {
        json!({
            "id": CHUNK_ID, "object": "chat.completion.chunk", "created": 1_741_570_283, "model": "gpt-4.1-2025-04-14",
            "service_tier": "default", "system_fingerprint": "fp_b8bc95a0ac",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
            "usage": null,
        })
    }

    fn usage_chunk(prompt: u64, cached: u64, completion: u64) -> Value {
        json!({
            "id": CHUNK_ID, "object": "chat.completion.chunk", "created": 1_741_570_283, "model": "gpt-4.1-2025-04-14",
            "service_tier": "default", "system_fingerprint": "fp_b8bc95a0ac",
            "choices": [], "usage": openai_usage(prompt, cached, completion),
        })
    }

    const WORDS: [&str; 6] = ["The ", "capital ", "of ", "France ", "is ", "Paris."];

    fn text_chunks() -> Vec<Value> {
        let mut chunks = vec![chunk(json!({"role": "assistant", "content": "", "refusal": null}), None)];
        chunks.extend(WORDS.iter().map(|w| chunk(json!({"content": w}), None)));
        chunks.push(chunk(json!({}), Some("stop")));
        chunks
    }

    const LONG_ORIGINAL: &str = "mcp__claude_ai_Atlassian__getConfluencePageFooterCommentsWithReplies";
    const PARIS: [&str; 4] = ["{\"location\":", "\"Paris\",", "\"unit\":", "\"celsius\"}"];
    const PAGE: [&str; 3] = ["{\"page", "Id\": \"4", "2\"}"];

    fn tool_chunks() -> Vec<Value> {
        let mut chunks = vec![chunk(json!({"role": "assistant", "content": null, "refusal": null}), None)];
        for text in ["Let me ", "check."] {
            chunks.push(chunk(json!({"content": text}), None));
        }
        chunks.push(chunk(
            json!({"tool_calls": [{"index": 0, "id": "call_A1", "type": "function",
                                   "function": {"name": "get_weather", "arguments": ""}}]}),
            None,
        ));
        for fragment in PARIS {
            chunks.push(chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": fragment}}]}), None));
        }
        chunks.push(chunk(
            json!({"tool_calls": [{"index": 1, "id": "call_B2", "type": "function",
                                   "function": {"name": long_sent(), "arguments": ""}}]}),
            None,
        ));
        for fragment in PAGE {
            chunks.push(chunk(json!({"tool_calls": [{"index": 1, "function": {"arguments": fragment}}]}), None));
        }
        chunks.push(chunk(json!({}), Some("tool_calls")));
        chunks
    }

    /// The name the request sent for `LONG_ORIGINAL`, and the context that maps it back.
    fn long_sent() -> String {
        Names::default().short(LONG_ORIGINAL)
    }

    fn stream_ctx() -> Context {
        let mut tool_names = HashMap::new();
        tool_names.insert(long_sent(), LONG_ORIGINAL.to_string());
        Context { model: "gpt-4.1".into(), input_estimate: 2100, tool_names, ..Context::default() }
    }

    /// Feeds `chunks`, then `[DONE]` if `done`, then the clean end; returns the bytes.
    fn run(chunks: &[Value], done: bool) -> String {
        let mut translator = stream(stream_ctx());
        let mut out = Vec::new();
        for c in chunks {
            translator.event(None, c, &mut out);
        }
        if done {
            translator.done(&mut out);
        }
        translator.finish(&mut out);
        String::from_utf8(out).unwrap()
    }

    /// The events of an Anthropic stream, each checked to carry an `event:` line that
    /// matches its data's `type`.
    fn events(text: &str) -> Vec<(String, Value)> {
        let mut parser = Parser::new();
        parser.push(text.as_bytes());
        let mut events = parser.events();
        assert!(parser.finish_event().is_none(), "the stream ends on a complete event");
        events
            .drain(..)
            .map(|e| {
                let name = e.event.expect("every event has an event: line");
                let data: Value = serde_json::from_str(&e.data.unwrap()).unwrap();
                assert_eq!(data["type"], name.as_str());
                (name, data)
            })
            .collect()
    }

    /// What a well-formed stream said: text, tool calls (id, name, arguments), the final
    /// `message_delta`. Panics if the sequence or the block indices are inconsistent.
    #[derive(Debug, Default, PartialEq)]
    struct Said {
        text: String,
        tools: Vec<(String, String, String)>,
        delta: Value,
    }

    fn check(text: &str) -> Said {
        let events = events(text);
        let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names.first(), Some(&"message_start"));
        assert_eq!(&names[names.len() - 2..], ["message_delta", "message_stop"]);
        let mut said = Said::default();
        let mut open: Option<(u64, String)> = None;
        let mut next = 0;
        for (name, data) in &events[1..events.len() - 2] {
            let index = data["index"].as_u64().unwrap();
            match name.as_str() {
                "content_block_start" => {
                    assert!(open.is_none(), "a block starts while another is open");
                    assert_eq!(index, next, "blocks are numbered in order");
                    next += 1;
                    let block = &data["content_block"];
                    let kind = block["type"].as_str().unwrap().to_string();
                    if kind == "tool_use" {
                        assert_eq!(block["input"], json!({}));
                        let (id, name) = (block["id"].as_str().unwrap(), block["name"].as_str().unwrap());
                        said.tools.push((id.to_string(), name.to_string(), String::new()));
                    } else {
                        assert_eq!(block, &json!({"type": "text", "text": ""}));
                    }
                    open = Some((index, kind));
                }
                "content_block_delta" => {
                    let (open_index, kind) = open.as_ref().expect("a delta outside a block");
                    assert_eq!(index, *open_index);
                    match (kind.as_str(), data["delta"]["type"].as_str()) {
                        ("text", Some("text_delta")) => said.text.push_str(data["delta"]["text"].as_str().unwrap()),
                        ("tool_use", Some("input_json_delta")) => {
                            let json = data["delta"]["partial_json"].as_str().unwrap();
                            said.tools.last_mut().unwrap().2.push_str(json);
                        }
                        other => panic!("delta {other:?}"),
                    }
                }
                "content_block_stop" => {
                    assert_eq!(open.take().map(|o| o.0), Some(index));
                }
                other => panic!("unexpected {other}"),
            }
        }
        assert!(open.is_none(), "every block is closed before message_delta");
        said.delta = events[events.len() - 2].1.clone();
        said
    }

    #[test]
    fn text_stream_with_usage() {
        let mut chunks = text_chunks();
        chunks.push(usage_chunk(2006, 1920, 6));
        let text = run(&chunks, true);
        insta::assert_snapshot!("stream_text", text);
        let events = events(&text);
        assert_eq!(events[0].1["message"]["id"], "msg_chatcmpl-C1x2y3z4");
        assert_eq!(events[0].1["message"]["usage"]["input_tokens"], 2100, "the estimate, until the real figures");
        let said = check(&text);
        assert_eq!(said.text, WORDS.concat());
        assert_eq!(
            said.delta,
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                   "usage": {"input_tokens": 86, "cache_read_input_tokens": 1920, "cache_creation_input_tokens": 0,
                             "output_tokens": 6}})
        );
    }

    #[test]
    fn text_then_two_tool_calls_with_fragmented_arguments() {
        let mut chunks = tool_chunks();
        chunks.push(usage_chunk(350, 0, 41));
        let text = run(&chunks, true);
        insta::assert_snapshot!("stream_tool_calls", text);
        let said = check(&text);
        assert_eq!(said.text, "Let me check.");
        assert_eq!(
            said.tools,
            [
                ("call_A1".to_string(), "get_weather".to_string(), PARIS.concat()),
                ("call_B2".to_string(), LONG_ORIGINAL.to_string(), PAGE.concat()),
            ]
        );
        for (_, _, arguments) in &said.tools {
            assert!(serde_json::from_str::<Value>(arguments).unwrap().is_object());
        }
        assert_eq!(said.delta["delta"]["stop_reason"], "tool_use");
        assert_eq!(said.delta["usage"]["output_tokens"], 41);
        assert_eq!(said.delta["usage"]["input_tokens"], 350);
    }

    #[test]
    fn stream_without_usage_chunk_ends_at_done_with_the_estimate() {
        let mut chunks = tool_chunks();
        for c in &mut chunks {
            c.as_object_mut().unwrap().remove("usage");
        }
        let text = run(&chunks, true);
        insta::assert_snapshot!("stream_without_usage", text);
        let said = check(&text);
        assert_eq!(said.tools.len(), 2);
        assert_eq!(
            said.delta["usage"],
            json!({"input_tokens": 2100, "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0, "output_tokens": 0})
        );
        // A stream cut before finish_reason and [DONE]: the clean end closes it all.
        let cut = run(&text_chunks()[..4], false);
        let said = check(&cut);
        assert_eq!(said.text, WORDS[..3].concat());
        assert_eq!(said.delta["delta"]["stop_reason"], "end_turn");
        assert_eq!(cut.matches("message_stop").count(), 2, "one event: line and one type");
    }

    #[test]
    fn usage_on_the_finish_chunk_waits_for_done() {
        // Some compatible providers put the usage in the finish chunk itself.
        let mut chunks = text_chunks();
        let last = chunks.len() - 1;
        chunks[last]["usage"] = openai_usage(50, 10, 6);
        let said = check(&run(&chunks, true));
        assert_eq!(said.delta["usage"]["input_tokens"], 40);
        assert_eq!(said.delta["usage"]["cache_read_input_tokens"], 10);
        assert_eq!(said.delta["delta"]["stop_reason"], "end_turn");
    }

    #[test]
    fn every_stop_reason_in_streams() {
        for (finish, expected) in [
            ("stop", "end_turn"),
            ("length", "max_tokens"),
            ("tool_calls", "tool_use"),
            ("function_call", "tool_use"),
            ("content_filter", "refusal"),
        ] {
            let chunks = [chunk(json!({"content": "x"}), None), chunk(json!({}), Some(finish)), usage_chunk(5, 0, 1)];
            assert_eq!(check(&run(&chunks, true)).delta["delta"]["stop_reason"], expected, "{finish}");
        }
    }

    #[test]
    fn in_stream_error_ends_the_stream() {
        let error = json!({"error": {"message": "The server had an error while processing your request.",
                                     "type": "server_error", "param": null, "code": null}});
        let mut chunks = text_chunks()[..3].to_vec();
        chunks.push(error);
        chunks.extend(text_chunks());
        let text = run(&chunks, true);
        insta::assert_snapshot!("stream_error", text);
        let events = events(&text);
        let (name, data) = events.last().unwrap();
        assert_eq!(name, "error");
        assert_eq!(
            data,
            &json!({"type": "error", "error": {"type": "api_error",
                    "message": "The server had an error while processing your request."}})
        );
        assert!(!text.contains("message_stop"));
        let kind = |e: Value| error_type(&e);
        assert_eq!(kind(json!({"type": "requests", "code": "rate_limit_exceeded"})), "rate_limit_error");
        assert_eq!(kind(json!({"type": "insufficient_quota", "code": "insufficient_quota"})), "billing_error");
        assert_eq!(
            kind(json!({"type": "invalid_request_error", "code": "context_length_exceeded"})),
            "invalid_request_error"
        );
        assert_eq!(kind(json!({"message": "busy", "code": 503})), "overloaded_error");
        assert_eq!(kind(json!("just text")), "api_error");
    }

    #[test]
    fn nothing_follows_message_stop() {
        let mut chunks = text_chunks();
        chunks.push(usage_chunk(10, 0, 6));
        let complete = run(&chunks, false);
        chunks.extend(text_chunks());
        chunks.push(usage_chunk(10, 0, 6));
        assert_eq!(run(&chunks, true), complete);
        // An empty stream still is a well-formed, empty message.
        let said = check(&run(&[], true));
        assert_eq!(said, Said { delta: said.delta.clone(), ..Said::default() });
    }

    // ---------------------------------------------------------------- properties

    fn any_json() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            (0u64..20_000).prop_map(Value::from),
            any::<f64>().prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
            "[a-z_. ]{0,12}".prop_map(Value::from),
            prop::sample::select(vec![
                "text",
                "image",
                "document",
                "tool_use",
                "tool_result",
                "thinking",
                "base64",
                "url",
                "user",
                "assistant",
                "system",
                "auto",
                "any",
                "tool",
                "none",
                "enabled",
                "adaptive",
                "custom",
                "stop",
                "{\"a\":1}",
                "application/pdf",
            ])
            .prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::vec(
                    (
                        prop::sample::select(vec![
                            "type",
                            "text",
                            "content",
                            "role",
                            "source",
                            "name",
                            "input",
                            "id",
                            "tool_use_id",
                            "is_error",
                            "media_type",
                            "data",
                            "url",
                            "index",
                            "delta",
                            "tool_calls",
                            "function",
                            "arguments",
                            "finish_reason",
                            "usage",
                            "choices",
                            "error",
                            "message",
                            "budget_tokens",
                        ]),
                        inner,
                    ),
                    0..5,
                )
                .prop_map(|kv| Value::Object(kv.into_iter().map(|(k, v)| (k.to_string(), v)).collect())),
            ]
        })
    }

    /// A Messages request whose top level is right and whose insides are arbitrary.
    fn shaped_request() -> impl Strategy<Value = Value> {
        (
            prop::collection::vec((prop::sample::select(vec!["user", "assistant", "system"]), any_json()), 0..5),
            any_json(),
            any_json(),
            any_json(),
            any_json(),
        )
            .prop_map(|(messages, tools, tool_choice, system, thinking)| {
                let messages: Vec<Value> =
                    messages.into_iter().map(|(role, content)| json!({"role": role, "content": content})).collect();
                json!({"model": "gpt-5", "max_tokens": 100, "messages": messages, "tools": tools,
                       "tool_choice": tool_choice, "system": system, "thinking": thinking, "stream": true})
            })
    }

    /// Chunk-shaped JSON: deltas with text and tool calls, finish reasons, usage, errors.
    fn any_chunk() -> impl Strategy<Value = Value> {
        let call = (
            prop::option::of(0u64..3),
            prop::option::of("[a-z_]{0,6}"),
            prop::option::of("[a-z_]{0,6}"),
            prop::option::of("[{}\":a-z0-9]{0,6}"),
        )
            .prop_map(|(index, id, name, arguments)| {
                json!({"index": index, "id": id, "function": {"name": name, "arguments": arguments}})
            });
        let delta_chunk = (
            prop::option::of("[a-z ]{0,6}"),
            prop::collection::vec(call, 0..3),
            prop::option::of(prop::sample::select(vec!["stop", "length", "tool_calls", "content_filter", "x"])),
            any::<bool>(),
        )
            .prop_map(|(content, calls, finish, with_usage)| {
                json!({"id": "c", "choices": [{"index": 0, "delta": {"content": content, "tool_calls": calls},
                       "finish_reason": finish}],
                       "usage": if with_usage { openai_usage(9, 3, 2) } else { Value::Null }})
            });
        prop_oneof![
            6 => delta_chunk,
            1 => Just(usage_chunk(20, 5, 3)),
            1 => Just(json!({"error": {"message": "boom", "type": "server_error"}})),
            2 => any_json(),
        ]
    }

    proptest! {
        #[test]
        fn requests_and_answers_never_panic(value in any_json(), shaped in shaped_request(), openai in any::<bool>()) {
            let _ = request(&value, openai);
            if let Ok(t) = request(&shaped, openai) {
                prop_assert!(t.body["messages"].is_array());
                prop_assert_eq!(&t.body["stream_options"]["include_usage"], &json!(true));
            }
            let answer = response(&value, &answer_ctx());
            prop_assert_eq!(&answer["type"], "message");
            let _ = response(&json!({"choices": [{"message": value.clone()}], "usage": value}), &answer_ctx());
        }

        #[test]
        fn streams_never_panic_and_end_once(chunks in prop::collection::vec(any_chunk(), 0..24), done in any::<bool>()) {
            let text = run(&chunks, done);
            let events = events(&text);
            let ends = events.iter().filter(|(n, _)| n == "message_stop" || n == "error").count();
            prop_assert_eq!(ends, 1, "exactly one message_stop or error");
            let last = events.last().map(|(n, _)| n.as_str());
            prop_assert!(matches!(last, Some("message_stop" | "error")), "nothing after the end");
            if last == Some("message_stop") {
                prop_assert_eq!(events.first().map(|(n, _)| n.as_str()), Some("message_start"));
                prop_assert_eq!(events[events.len() - 2].0.as_str(), "message_delta");
                prop_assert!(events[events.len() - 2].1["usage"]["output_tokens"].is_u64());
            }
            // Blocks are numbered in order, deltas go to a started block of their kind,
            // each block stops once, and none is left open at the end.
            let mut kinds: Vec<String> = Vec::new();
            let mut stopped = HashSet::new();
            for (name, data) in &events {
                let index = data["index"].as_u64().unwrap_or(u64::MAX) as usize;
                match name.as_str() {
                    "content_block_start" => {
                        prop_assert_eq!(index, kinds.len());
                        prop_assert!(kinds.len() == stopped.len(), "the previous block was closed");
                        kinds.push(data["content_block"]["type"].as_str().unwrap_or("").to_string());
                    }
                    "content_block_delta" => {
                        let expected = if data["delta"]["type"] == "text_delta" { "text" } else { "tool_use" };
                        prop_assert_eq!(kinds.get(index).map(String::as_str), Some(expected));
                    }
                    "content_block_stop" => prop_assert!(index < kinds.len() && stopped.insert(index)),
                    _ => {}
                }
            }
            if last == Some("message_stop") {
                prop_assert_eq!(stopped.len(), kinds.len());
            }
        }
    }
}
