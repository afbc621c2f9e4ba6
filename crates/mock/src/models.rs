//! `GET /v1/models`: a fixed list, in OpenAI's shape (`{"object": "list", "data":
//! [{id, object: "model", created, owned_by}]}`) or, for Anthropic clients,
//! Anthropic's (`{"data": [{type: "model", id, display_name, created_at}], has_more,
//! first_id, last_id}`).

use serde_json::{Value, json};

/// One listed model.
struct Model {
    id: &'static str,
    owned_by: &'static str,
    /// Unix seconds (OpenAI `created`).
    created: u64,
    /// RFC 3339, the same day (Anthropic `created_at`).
    created_at: &'static str,
    display_name: &'static str,
}

const MODELS: [Model; 7] = [
    Model {
        id: "gpt-4o-mini",
        owned_by: "openai",
        created: 1_721_172_741,
        created_at: "2024-07-16T23:32:21Z",
        display_name: "GPT-4o mini",
    },
    Model {
        id: "gpt-4o",
        owned_by: "openai",
        created: 1_715_367_049,
        created_at: "2024-05-10T18:50:49Z",
        display_name: "GPT-4o",
    },
    Model {
        id: "gpt-4.1",
        owned_by: "openai",
        created: 1_744_316_542,
        created_at: "2025-04-10T20:22:22Z",
        display_name: "GPT-4.1",
    },
    Model {
        id: "text-embedding-3-small",
        owned_by: "openai",
        created: 1_705_948_997,
        created_at: "2024-01-22T18:43:17Z",
        display_name: "text-embedding-3-small",
    },
    Model {
        id: "claude-sonnet-4-20250514",
        owned_by: "anthropic",
        created: 1_747_872_000,
        created_at: "2025-05-22T00:00:00Z",
        display_name: "Claude Sonnet 4",
    },
    Model {
        id: "claude-opus-4-20250514",
        owned_by: "anthropic",
        created: 1_747_872_000,
        created_at: "2025-05-22T00:00:00Z",
        display_name: "Claude Opus 4",
    },
    Model {
        id: "claude-3-5-haiku-20241022",
        owned_by: "anthropic",
        created: 1_729_555_200,
        created_at: "2024-10-22T00:00:00Z",
        display_name: "Claude Haiku 3.5",
    },
];

/// OpenAI's list: every model.
pub fn openai() -> Value {
    let data: Vec<Value> = MODELS
        .iter()
        .map(|m| json!({"id": m.id, "object": "model", "created": m.created, "owned_by": m.owned_by}))
        .collect();
    json!({"object": "list", "data": data})
}

/// Anthropic's list: the Claude models.
pub fn anthropic() -> Value {
    let claude: Vec<&Model> = MODELS.iter().filter(|m| m.owned_by == "anthropic").collect();
    let data: Vec<Value> = claude
        .iter()
        .map(|m| json!({"type": "model", "id": m.id, "display_name": m.display_name, "created_at": m.created_at}))
        .collect();
    json!({
        "data": data,
        "has_more": false,
        "first_id": claude.first().map(|m| m.id),
        "last_id": claude.last().map(|m| m.id),
    })
}
