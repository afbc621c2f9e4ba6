//! An OpenAI-format client on an Anthropic model: Chat Completions requests become
//! Messages requests; Anthropic's answers, streams and errors become OpenAI's.

use super::{Context, StreamTranslator, Translated, sse_data, tool_id};
use crate::RequestError;
use serde_json::{Map, Value, json};
use std::collections::HashMap;

/// Chat fields that have no Messages equivalent and change the answer: refused.
const REFUSED: &[(&str, &str)] = &[
    ("logprobs", "log probabilities"),
    ("top_logprobs", "log probabilities"),
    ("logit_bias", "logit bias"),
    ("presence_penalty", "presence penalty"),
    ("frequency_penalty", "frequency penalty"),
    ("audio", "audio output"),
    ("prediction", "predicted outputs"),
    ("web_search_options", "OpenAI web search"),
    ("functions", "the deprecated `functions` (use `tools`)"),
    ("function_call", "the deprecated `function_call` (use `tool_choice`)"),
];
/// Chat fields with no effect on the answer (or handled by the gateway): dropped.
const DROPPED: &[&str] = &[
    "seed",
    "store",
    "service_tier",
    "stream_options",
    "parallel_tool_calls",
    "modalities",
    "prompt_cache_key",
    "safety_identifier",
];
/// Fields this translation reads.
const READ: &[&str] = &[
    "model",
    "messages",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "temperature",
    "top_p",
    "stream",
    "tools",
    "tool_choice",
    "user",
    "metadata",
    "n",
    "response_format",
    "reasoning_effort",
];

fn err(param: impl AsRef<str>, reason: impl Into<String>) -> RequestError {
    RequestError::new(param.as_ref(), reason)
}

/// Text of a chat `content`: a string, or text parts joined.
fn text_of(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p["text"].as_str().or_else(|| p["refusal"].as_str()))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

/// A `data:` URI's media type and base64 payload.
fn data_uri(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media = meta.strip_suffix(";base64")?;
    Some((media, data))
}

/// User content parts -> Anthropic blocks.
fn user_blocks(content: &Value, param: &str) -> Result<Vec<Value>, RequestError> {
    let parts = match content {
        Value::String(s) if s.is_empty() => return Ok(vec![]),
        Value::String(s) => return Ok(vec![json!({"type": "text", "text": s})]),
        Value::Array(parts) => parts,
        Value::Null => return Ok(vec![]),
        _ => return Err(err(param, "must be a string or an array of content parts")),
    };
    let mut blocks = Vec::with_capacity(parts.len());
    for (i, part) in parts.iter().enumerate() {
        let p = format!("{param}[{i}]");
        match part["type"].as_str() {
            Some("text") => {
                let text = part["text"].as_str().ok_or_else(|| err(&p, "a text part needs `text`"))?;
                if !text.is_empty() {
                    blocks.push(json!({"type": "text", "text": text}));
                }
            }
            Some("image_url") => {
                let url = part["image_url"]["url"]
                    .as_str()
                    .ok_or_else(|| err(&p, "an image_url part needs `image_url.url`"))?;
                let source = match data_uri(url) {
                    Some((media, data)) => json!({"type": "base64", "media_type": media, "data": data}),
                    None if url.starts_with("https://") || url.starts_with("http://") => {
                        json!({"type": "url", "url": url})
                    }
                    None => return Err(err(&p, "image URLs must be https:// or data:image/...;base64, URIs")),
                };
                blocks.push(json!({"type": "image", "source": source}));
            }
            Some("file") => {
                let data = part["file"]["file_data"].as_str().and_then(data_uri);
                match data {
                    Some(("application/pdf", data)) => blocks.push(
                        json!({"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": data}}),
                    ),
                    _ => return Err(err(&p, "only PDF files given inline as file_data can be sent to Anthropic models")),
                }
            }
            Some(other) => {
                return Err(err(&p, format!("content parts of type {other:?} cannot be sent to Anthropic models")));
            }
            None => return Err(err(&p, "a content part needs a `type`")),
        }
    }
    Ok(blocks)
}

/// Appends `blocks` as a turn of `role`, merging into the previous turn of the same role
/// (Anthropic wants user and assistant turns to alternate).
fn push_turn(messages: &mut Vec<Value>, role: &str, mut blocks: Vec<Value>) {
    if blocks.is_empty() {
        return;
    }
    if let Some(last) = messages.last_mut()
        && last["role"] == role
        && let Some(content) = last["content"].as_array_mut()
    {
        // Tool results must lead a user turn.
        if role == "user" && blocks.iter().any(|b| b["type"] == "tool_result") {
            let (mut results, others): (Vec<Value>, Vec<Value>) =
                content.drain(..).chain(blocks).partition(|b| b["type"] == "tool_result");
            results.extend(others);
            *content = results;
        } else {
            content.append(&mut blocks);
        }
        return;
    }
    messages.push(json!({"role": role, "content": blocks}));
}

/// An OpenAI Chat Completions request -> an Anthropic Messages request.
/// `default_max_tokens` applies when the request gives none (Anthropic requires one).
pub fn request(chat: &Value, default_max_tokens: u64) -> Result<Translated, RequestError> {
    let obj = chat.as_object().ok_or_else(|| err("body", "must be a JSON object"))?;
    let mut dropped = Vec::new();
    for (field, what) in REFUSED {
        let present = match obj.get(*field) {
            None | Some(Value::Null) | Some(Value::Bool(false)) => false,
            Some(Value::Number(n)) => n.as_f64() != Some(0.0),
            Some(Value::Object(o)) => !o.is_empty(),
            Some(_) => true,
        };
        if present {
            return Err(err(*field, format!("{what} has no equivalent on Anthropic models; remove `{field}`")));
        }
    }
    if obj.get("n").and_then(Value::as_u64).is_some_and(|n| n > 1) {
        return Err(err("n", "Anthropic models give one completion per request; use n = 1"));
    }
    if let Some(kind) = obj.get("response_format").and_then(|f| f["type"].as_str())
        && kind != "text"
    {
        return Err(err(
            "response_format",
            format!(
                "response_format {kind:?} has no equivalent on Anthropic models; describe the format in the prompt"
            ),
        ));
    }
    if let Some(t) = obj.get("temperature").and_then(Value::as_f64)
        && t > 1.0
    {
        return Err(err("temperature", format!("is {t}; Anthropic models take 0 to 1")));
    }

    let mut out = Map::new();
    out.insert("model".into(), obj.get("model").cloned().unwrap_or(Value::Null));
    let max = obj
        .get("max_completion_tokens")
        .filter(|v| !v.is_null())
        .or_else(|| obj.get("max_tokens").filter(|v| !v.is_null()))
        .and_then(Value::as_u64)
        .unwrap_or(default_max_tokens);
    out.insert("max_tokens".into(), json!(max));

    let messages = obj
        .get("messages")
        .and_then(Value::as_array)
        .ok_or_else(|| err("messages", "is required: an array of messages"))?;
    let mut system: Vec<Value> = Vec::new();
    let mut turns: Vec<Value> = Vec::new();
    let mut used_tools: Vec<String> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let p = format!("messages[{i}]");
        match m["role"].as_str() {
            Some("system" | "developer") => {
                let text = text_of(&m["content"]);
                if !text.is_empty() {
                    system.push(json!({"type": "text", "text": text}));
                }
            }
            Some("user") => push_turn(&mut turns, "user", user_blocks(&m["content"], &format!("{p}.content"))?),
            Some("assistant") => {
                let mut blocks = Vec::new();
                let text = text_of(&m["content"]);
                if !text.is_empty() {
                    blocks.push(json!({"type": "text", "text": text}));
                }
                for (j, call) in m["tool_calls"].as_array().into_iter().flatten().enumerate() {
                    let cp = format!("{p}.tool_calls[{j}]");
                    let name = call["function"]["name"].as_str().ok_or_else(|| err(&cp, "needs function.name"))?;
                    let args = call["function"]["arguments"].as_str().unwrap_or("");
                    let input: Value = if args.trim().is_empty() {
                        json!({})
                    } else {
                        serde_json::from_str(args)
                            .map_err(|e| err(format!("{cp}.function.arguments"), format!("is not valid JSON ({e})")))?
                    };
                    let id = tool_id(call["id"].as_str().unwrap_or(""));
                    used_tools.push(name.to_string());
                    blocks.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
                }
                push_turn(&mut turns, "assistant", blocks);
            }
            Some("tool") => {
                let id = m["tool_call_id"].as_str().ok_or_else(|| err(format!("{p}.tool_call_id"), "is required"))?;
                let content = match &m["content"] {
                    Value::String(s) => json!(s),
                    other => json!(text_of(other)),
                };
                push_turn(
                    &mut turns,
                    "user",
                    vec![json!({"type": "tool_result", "tool_use_id": tool_id(id), "content": content})],
                );
            }
            Some("function") => {
                return Err(err(format!("{p}.role"), "the deprecated `function` role is not supported; use `tool`"));
            }
            _ => return Err(err(format!("{p}.role"), "must be system, developer, user, assistant or tool")),
        }
    }
    if !system.is_empty() {
        out.insert("system".into(), Value::Array(system));
    }
    out.insert("messages".into(), Value::Array(turns));

    if let Some(stop) = obj.get("stop").filter(|s| !s.is_null()) {
        let list = match stop {
            Value::String(s) => vec![json!(s)],
            Value::Array(a) => a.clone(),
            _ => return Err(err("stop", "must be a string or an array of strings")),
        };
        out.insert("stop_sequences".into(), Value::Array(list));
    }
    for field in ["temperature", "top_p", "stream"] {
        if let Some(v) = obj.get(field).filter(|v| !v.is_null()) {
            out.insert(field.into(), v.clone());
        }
    }
    if let Some(user) = obj.get("user").and_then(Value::as_str) {
        out.insert("metadata".into(), json!({"user_id": user}));
    }

    // Tools, and the tool choice.
    let mut tools: Vec<Value> = Vec::new();
    for (i, t) in obj.get("tools").and_then(Value::as_array).into_iter().flatten().enumerate() {
        if t["type"].as_str().is_some_and(|k| k != "function") {
            return Err(err(format!("tools[{i}].type"), "only function tools can be sent to Anthropic models"));
        }
        let f = &t["function"];
        let name = f["name"].as_str().ok_or_else(|| err(format!("tools[{i}].function.name"), "is required"))?;
        let schema = match &f["parameters"] {
            Value::Object(o) if !o.is_empty() => Value::Object(o.clone()),
            _ => json!({"type": "object", "properties": {}}),
        };
        let mut tool = json!({"name": name, "input_schema": schema});
        if let Some(d) = f["description"].as_str() {
            tool["description"] = json!(d);
        }
        tools.push(tool);
    }
    let mut choice = match obj.get("tool_choice") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(match s.as_str() {
            "auto" => json!({"type": "auto"}),
            "required" => json!({"type": "any"}),
            "none" => json!({"type": "none"}),
            other => return Err(err("tool_choice", format!("{other:?} is not auto, required or none"))),
        }),
        Some(c) => match c["function"]["name"].as_str() {
            Some(name) => Some(json!({"type": "tool", "name": name})),
            None => {
                return Err(err("tool_choice", "must be auto, required, none or {type: function, function: {name}}"));
            }
        },
    };
    if tools.is_empty() && !used_tools.is_empty() {
        // Anthropic refuses tool history without tool definitions: declare the tools the
        // history used, and let the model call none of them.
        used_tools.sort();
        used_tools.dedup();
        tools = used_tools
            .iter()
            .map(|n| json!({"name": n, "input_schema": {"type": "object", "properties": {}}}))
            .collect();
        choice = Some(json!({"type": "none"}));
    }
    if !tools.is_empty() {
        if obj.get("parallel_tool_calls") == Some(&Value::Bool(false)) {
            let c = choice.get_or_insert_with(|| json!({"type": "auto"}));
            if c["type"] != "none" {
                c["disable_parallel_tool_use"] = json!(true);
            }
        }
        out.insert("tools".into(), Value::Array(tools));
        if let Some(c) = choice {
            out.insert("tool_choice".into(), c);
        }
    }

    // Reasoning: an effort becomes a thinking budget below max_tokens.
    if let Some(effort) = obj.get("reasoning_effort").and_then(Value::as_str) {
        let budget: u64 = match effort {
            "minimal" | "low" => 2048,
            "medium" => 8192,
            "high" => 24576,
            other => return Err(err("reasoning_effort", format!("{other:?} is not minimal, low, medium or high"))),
        };
        let budget = budget.min(max.saturating_sub(1));
        if budget >= 1024 {
            out.insert("thinking".into(), json!({"type": "enabled", "budget_tokens": budget}));
        } else {
            dropped.push("reasoning_effort".to_string());
        }
    }

    for (field, v) in obj {
        if READ.contains(&field.as_str()) || REFUSED.iter().any(|(f, _)| f == field) || v.is_null() {
            continue;
        }
        if DROPPED.contains(&field.as_str()) {
            dropped.push(field.clone());
        } else {
            // Unknown to us: it may mean something to the provider.
            out.insert(field.clone(), v.clone());
        }
    }
    Ok(Translated { body: Value::Object(out), dropped, tool_names: HashMap::new() })
}

fn finish_reason(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        _ => "stop",
    }
}

/// Anthropic usage -> OpenAI usage: `prompt_tokens` includes the cache reads and writes;
/// `cached_tokens` is the cache reads.
fn usage(u: &Value) -> Value {
    let n = |f: &str| u[f].as_u64().unwrap_or(0);
    let (input, read, write, output) =
        (n("input_tokens"), n("cache_read_input_tokens"), n("cache_creation_input_tokens"), n("output_tokens"));
    let prompt = input + read + write;
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": output,
        "total_tokens": prompt + output,
        "prompt_tokens_details": {"cached_tokens": read},
        "completion_tokens_details": {"reasoning_tokens": 0},
    })
}

fn chat_id(anthropic_id: Option<&str>) -> String {
    format!("chatcmpl-{}", anthropic_id.unwrap_or("spendgate"))
}

/// An Anthropic message -> an OpenAI chat.completion.
pub fn response(message: &Value, ctx: &Context) -> Value {
    let mut text = String::new();
    let mut thinking = String::new();
    let mut calls = Vec::new();
    for block in message["content"].as_array().into_iter().flatten() {
        match block["type"].as_str() {
            Some("text") => text.push_str(block["text"].as_str().unwrap_or("")),
            Some("thinking") => thinking.push_str(block["thinking"].as_str().unwrap_or("")),
            Some("tool_use") => calls.push(json!({
                "id": block["id"],
                "type": "function",
                "function": {"name": block["name"], "arguments": block["input"].to_string()},
            })),
            _ => {}
        }
    }
    let mut msg = json!({
        "role": "assistant",
        "content": if text.is_empty() && !calls.is_empty() { Value::Null } else { json!(text) },
        "refusal": null,
    });
    if !calls.is_empty() {
        msg["tool_calls"] = Value::Array(calls);
    }
    if !thinking.is_empty() {
        msg["reasoning_content"] = json!(thinking);
    }
    json!({
        "id": chat_id(message["id"].as_str()),
        "object": "chat.completion",
        "created": ctx.created,
        "model": ctx.model,
        "choices": [{
            "index": 0,
            "message": msg,
            "finish_reason": finish_reason(message["stop_reason"].as_str()),
            "logprobs": null,
        }],
        "usage": usage(&message["usage"]),
    })
}

/// Anthropic events -> OpenAI chat chunks.
struct MessagesToChunks {
    ctx: Context,
    id: String,
    /// Anthropic block index -> OpenAI tool call index, for tool_use blocks.
    tools: HashMap<u64, u64>,
    /// Usage so far: message_start's, updated by message_delta.
    usage: Value,
    finish: Option<&'static str>,
    /// Nothing more is sent (after [DONE] or an error).
    closed: bool,
}

impl MessagesToChunks {
    fn chunk(&self, delta: Value, finish: Option<&str>) -> Value {
        let mut c = json!({
            "id": self.id,
            "object": "chat.completion.chunk",
            "created": self.ctx.created,
            "model": self.ctx.model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": null}],
        });
        if self.ctx.include_usage {
            c["usage"] = Value::Null;
        }
        c
    }

    fn end(&mut self, out: &mut Vec<u8>) {
        if self.closed {
            return;
        }
        let finish = self.finish.unwrap_or("stop");
        sse_data(out, &self.chunk(json!({}), Some(finish)));
        if self.ctx.include_usage {
            let c = json!({
                "id": self.id,
                "object": "chat.completion.chunk",
                "created": self.ctx.created,
                "model": self.ctx.model,
                "choices": [],
                "usage": usage(&self.usage),
            });
            sse_data(out, &c);
        }
        out.extend_from_slice(b"data: [DONE]\n\n");
        self.closed = true;
    }
}

impl StreamTranslator for MessagesToChunks {
    fn event(&mut self, name: Option<&str>, data: &Value, out: &mut Vec<u8>) {
        if self.closed {
            return;
        }
        match name.or_else(|| data["type"].as_str()).unwrap_or("") {
            "message_start" => {
                self.id = chat_id(data["message"]["id"].as_str());
                self.usage = data["message"]["usage"].clone();
                sse_data(out, &self.chunk(json!({"role": "assistant", "content": ""}), None));
            }
            "content_block_start" => {
                let block = &data["content_block"];
                let index = data["index"].as_u64().unwrap_or(0);
                match block["type"].as_str() {
                    Some("tool_use") => {
                        let k = self.tools.len() as u64;
                        self.tools.insert(index, k);
                        let call = json!({"index": k, "id": block["id"], "type": "function",
                            "function": {"name": block["name"], "arguments": ""}});
                        sse_data(out, &self.chunk(json!({"tool_calls": [call]}), None));
                    }
                    Some("text") if block["text"].as_str().is_some_and(|t| !t.is_empty()) => {
                        sse_data(out, &self.chunk(json!({"content": block["text"]}), None));
                    }
                    _ => {}
                }
            }
            "content_block_delta" => {
                let d = &data["delta"];
                let index = data["index"].as_u64().unwrap_or(0);
                let delta = match d["type"].as_str() {
                    Some("text_delta") => json!({"content": d["text"]}),
                    Some("thinking_delta") => json!({"reasoning_content": d["thinking"]}),
                    Some("input_json_delta") => match self.tools.get(&index) {
                        Some(k) => json!({"tool_calls": [{"index": k, "function": {"arguments": d["partial_json"]}}]}),
                        None => return,
                    },
                    _ => return,
                };
                sse_data(out, &self.chunk(delta, None));
            }
            "message_delta" => {
                self.finish = Some(finish_reason(data["delta"]["stop_reason"].as_str()));
                if let (Some(u), Some(current)) = (data["usage"].as_object(), self.usage.as_object_mut()) {
                    for (k, v) in u {
                        if !v.is_null() {
                            current.insert(k.clone(), v.clone());
                        }
                    }
                }
            }
            "message_stop" => self.end(out),
            "error" => {
                let e = json!({"error": {"message": super::error_message(data), "type": "server_error",
                    "param": null, "code": data["error"]["type"]}});
                sse_data(out, &e);
                self.closed = true;
            }
            _ => {}
        }
    }

    fn done(&mut self, _out: &mut Vec<u8>) {}

    fn finish(&mut self, out: &mut Vec<u8>) {
        self.end(out);
    }
}

/// Anthropic's stream -> OpenAI chat chunks.
pub fn stream(ctx: Context) -> Box<dyn StreamTranslator> {
    Box::new(MessagesToChunks {
        ctx,
        id: chat_id(None),
        tools: HashMap::new(),
        usage: json!({}),
        finish: None,
        closed: false,
    })
}

#[cfg(test)]
mod tests;
