//! Test harness: a mock on a free port, request helpers for both providers, and an
//! SSE parser that keeps event names.

use serde_json::Value;
use spendgate_mock::{Mock, MockConfig, serve};

pub struct Server {
    pub base: String,
    pub mock: Mock,
    pub http: reqwest::Client,
    task: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub async fn start() -> Server {
    start_with(MockConfig::default()).await
}

pub async fn start_with(config: MockConfig) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let mock = Mock::new(config);
    let task = tokio::spawn(serve(mock.clone(), listener));
    Server { base: format!("http://{addr}"), mock, http: reqwest::Client::new(), task }
}

impl Server {
    /// POST with `Authorization: Bearer sk-test`.
    pub async fn openai(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http.post(format!("{}{path}", self.base)).bearer_auth("sk-test").json(body).send().await.unwrap()
    }

    /// POST with `x-api-key: sk-ant-test` and `anthropic-version`.
    pub async fn anthropic(&self, path: &str, body: &Value) -> reqwest::Response {
        self.http
            .post(format!("{}{path}", self.base))
            .header("x-api-key", "sk-ant-test")
            .header("anthropic-version", "2023-06-01")
            .json(body)
            .send()
            .await
            .unwrap()
    }
}

/// Asserts a 200 and returns the JSON body.
pub async fn ok_json(response: reqwest::Response) -> Value {
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 200, "{text}");
    serde_json::from_str(&text).unwrap()
}

#[derive(Debug, Clone)]
pub struct Event {
    pub event: Option<String>,
    pub data: String,
}

impl Event {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("{e}: {}", self.data))
    }
}

/// A streamed answer: its events, and whether the body ended in an error (broken
/// connection) rather than cleanly.
pub struct Stream {
    pub events: Vec<Event>,
    pub broken: bool,
}

impl Stream {
    pub fn names(&self) -> Vec<&str> {
        self.events.iter().map(|e| e.event.as_deref().unwrap_or("")).collect()
    }

    /// The JSON of every `data:` that is not `[DONE]`.
    pub fn datas(&self) -> Vec<Value> {
        self.events.iter().filter(|e| e.data != "[DONE]").map(Event::json).collect()
    }
}

/// Reads a `text/event-stream` answer to its end (or its break).
pub async fn read_stream(mut response: reqwest::Response) -> Stream {
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream; charset=utf-8");
    let mut bytes = Vec::new();
    let mut broken = false;
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) => break,
            Err(_) => {
                broken = true;
                break;
            }
        }
    }
    let text = String::from_utf8(bytes).unwrap();
    Stream { events: parse_sse(&text), broken }
}

/// Splits an SSE body into events (blocks separated by a blank line).
pub fn parse_sse(text: &str) -> Vec<Event> {
    assert!(text.is_empty() || text.ends_with("\n\n"), "stream does not end on an event boundary: {text:?}");
    text.split("\n\n")
        .filter(|block| !block.is_empty())
        .map(|block| {
            let mut event = None;
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event: ") {
                    event = Some(v.to_owned());
                } else if let Some(v) = line.strip_prefix("data: ") {
                    data.push(v);
                } else {
                    panic!("unexpected SSE line {line:?}");
                }
            }
            Event { event, data: data.join("\n") }
        })
        .collect()
}

/// The words of the default reply, for comparisons.
pub fn lorem(n: u32) -> String {
    spendgate_mock::text::text(n)
}
