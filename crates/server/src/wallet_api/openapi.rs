//! The wallet API's OpenAPI 3.1 document, served at `GET /openapi.json`. Generated from
//! the code: the response shapes are the [`super::views`] types that serialize them,
//! the operations are the handlers' `#[utoipa::path]`s, and the enums (cycles,
//! statuses, audit actions, the catalog's models and providers) come from the values
//! the parsers accept. The tests run schemathesis against a live server with it.

use super::views::*;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use serde_json::Value;
use spendgate_core::alert::{self, AlertEvent};
use spendgate_core::spend_key::{NAME_MAX_CHARS, REQUEST_LIMIT_MAX, RPM_MAX};
use spendgate_core::{Action, Catalog, Cycle, KeyStatus, WireFormat};
use utoipa::openapi::Required;
use utoipa::openapi::link::LinkBuilder;
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::schema::AnyOfBuilder;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Schema, SchemaType, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{OpenApi as Document, RefOr, ResponseBuilder, content::ContentBuilder};
use utoipa::{Modify, OpenApi, ToSchema};

fn string_enum<'a>(values: impl IntoIterator<Item = &'a str>) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::String).enum_values(Some(values))
}

/// A USD amount as the API writes and reads it: a decimal string, at most nine decimals.
pub fn amount() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(r"^([0-9]+(\.[0-9]{1,9})?|\.[0-9]{1,9})$"))
        .description(Some("USD as a decimal string (no sign, no exponent, at most 9 decimals)"))
        .examples(["50.00"])
        .build()
        .into()
}

fn whole_number(max: u64) -> ObjectBuilder {
    ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).maximum(Some(max as f64))
}

pub fn request_count() -> Schema {
    whole_number(REQUEST_LIMIT_MAX).build().into()
}

pub fn rpm() -> Schema {
    whole_number(RPM_MAX.into()).build().into()
}

/// The burst: like `rpm`, or null (then `rpm`).
pub fn burst() -> Schema {
    whole_number(RPM_MAX.into())
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([Type::Integer, Type::Null]))
        .build()
        .into()
}

pub fn cycle() -> Schema {
    string_enum(Cycle::ALL.map(Cycle::as_str))
        .description(Some("Calendar periods in UTC (weeks from Monday); `total` never resets"))
        .build()
        .into()
}

pub fn key_status() -> Schema {
    string_enum([KeyStatus::Active, KeyStatus::Paused].map(KeyStatus::as_str)).build().into()
}

pub fn request_shape() -> Schema {
    string_enum([WireFormat::OpenAi, WireFormat::Anthropic].map(WireFormat::as_str)).build().into()
}

pub fn timestamp() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .format(Some(utoipa::openapi::SchemaFormat::KnownFormat(utoipa::openapi::KnownFormat::DateTime)))
        .build()
        .into()
}

pub fn audit_action() -> Schema {
    string_enum(Action::ALL.iter().map(|a| a.as_str())).build().into()
}

/// An alert event's name.
pub fn alert_event() -> Schema {
    string_enum(AlertEvent::ALL.iter().map(|e| e.as_str())).build().into()
}

/// The events a webhook is sent.
pub fn alert_events() -> Schema {
    ArrayBuilder::new().items(string_enum(alert::subscribable().map(AlertEvent::as_str))).build().into()
}

/// The events a webhook may ask for: some of them, or null for all.
pub fn subscribable_events() -> Schema {
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(string_enum(alert::subscribable().map(AlertEvent::as_str)))
        .min_items(Some(1))
        .build()
        .into()
}

/// Percents of the spend limit, or null for the default.
pub fn thresholds() -> Schema {
    ArrayBuilder::new()
        .schema_type(SchemaType::from_iter([Type::Array, Type::Null]))
        .items(ObjectBuilder::new().schema_type(Type::Integer).minimum(Some(1)).maximum(Some(100)))
        .min_items(Some(1))
        .max_items(Some(alert::MAX_THRESHOLDS))
        .build()
        .into()
}

/// A spend key's name: 1 to 200 characters, not only spaces, no control characters.
fn name() -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .max_length(Some(NAME_MAX_CHARS))
        .pattern(Some(r"^[^\u0000-\u001f\u007f-\u009f]*[^\s\u0000-\u001f\u007f-\u009f][^\u0000-\u001f\u007f-\u009f]*$"))
        .build()
        .into()
}

/// The body of `POST /v1/spend_keys`. Only `name` is required; every other field has
/// the default shown (null: no limit, or all models/providers).
#[derive(ToSchema)]
#[schema(title = "CreateSpendKey")]
#[allow(dead_code)] // A schema only: the body is parsed by `SpendKeyChanges::parse`.
pub struct CreateSpendKeyBody {
    #[schema(schema_with = name)]
    name: String,
    #[schema(schema_with = key_status, required = false)]
    status: String,
    #[schema(schema_with = request_shape, required = false)]
    request_shape: String,
    /// The models the key may use (ids, aliases or `provider/model`), or null for all.
    #[schema(min_items = 1, max_items = 1000)]
    allowed_models: Option<Vec<String>>,
    /// The providers the key may use, or null for all.
    #[schema(min_items = 1, max_items = 1000)]
    allowed_providers: Option<Vec<String>>,
    spend_limit: Option<SpendLimitView>,
    request_limit: Option<RequestLimitView>,
    rate_limit: Option<RateLimitView>,
    /// When the key stops working: a future RFC 3339 time, or null for never.
    #[schema(format = DateTime, example = "2099-12-31T23:59:59Z")]
    expires_at: Option<String>,
}

/// The body of `PUT`/`PATCH /v1/spend_keys/{id}`: only the fields present change; a
/// field present with null is cleared.
#[derive(ToSchema)]
#[schema(title = "UpdateSpendKey")]
#[allow(dead_code)] // A schema only: the body is parsed by `SpendKeyChanges::parse`.
pub struct UpdateSpendKeyBody {
    #[schema(schema_with = name, required = false)]
    name: String,
    #[schema(schema_with = key_status, required = false)]
    status: String,
    #[schema(schema_with = request_shape, required = false)]
    request_shape: String,
    #[schema(min_items = 1, max_items = 1000)]
    allowed_models: Option<Vec<String>>,
    #[schema(min_items = 1, max_items = 1000)]
    allowed_providers: Option<Vec<String>>,
    spend_limit: Option<SpendLimitView>,
    request_limit: Option<RequestLimitView>,
    rate_limit: Option<RateLimitView>,
    #[schema(format = DateTime, example = "2099-12-31T23:59:59Z")]
    expires_at: Option<String>,
}

/// A list call's page: `limit` and `cursor` (see `super::parse_page`).
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Parameters only: the handlers read them with `parse_page`.
pub struct Page {
    /// Page size (default 10).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<u32>,
    /// A `next_cursor` from the previous page.
    cursor: Option<String>,
}

/// Every error: `{"error": {"type", "message", "param"?}}`.
#[derive(ToSchema)]
#[allow(dead_code)] // A schema only: `ApiError::render` writes it.
pub struct ErrorView {
    error: ErrorDetail,
}

#[derive(ToSchema)]
#[allow(dead_code)]
pub struct ErrorDetail {
    /// `invalid_request_error`, `authentication_error`, `not_found_error`, ...
    #[schema(value_type = String)]
    r#type: String,
    /// What went wrong, and what to do about it.
    message: String,
    /// The field at fault, as a path like `spend_limit.amount`.
    #[schema(required = false)]
    param: String,
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "spendgate wallet API",
        description = "Manage spend keys: scoped, capped API keys for OpenAI and Anthropic clients. \
                       Wire-compatible with the spend-key part of `@lavapayments/nodejs` 11.x.",
        license(name = "Apache-2.0 OR MIT"),
    ),
    paths(
        super::create,
        super::list,
        super::retrieve,
        super::update,
        super::revoke,
        super::rotate,
        super::usage::key_usage,
        super::usage::wallet_usage,
        super::usage::list_requests,
        super::usage::export_requests,
        super::audit::list,
        super::webhooks::create,
        super::webhooks::list,
        super::webhooks::delete,
        super::webhooks::deliveries,
        super::webhooks::test,
        super::models,
    ),
    components(schemas(ErrorView, CreateSpendKeyBody, UpdateSpendKeyBody, super::webhooks::CreateWebhookBody)),
    modifiers(&Common),
    security(("wallet_key" = [])),
)]
struct ApiDoc;

/// What every operation shares: the bearer scheme and the errors any call can get.
struct Common;

impl Modify for Common {
    fn modify(&self, doc: &mut Document) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "wallet_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A wallet API key (`lava_wk_...`), as `Authorization: Bearer <key>`"))
                    .build(),
            ),
        );
        let error = |what: &str| {
            ResponseBuilder::new()
                .description(what)
                .content("application/json", ContentBuilder::new().schema(Some(RefOr::Ref(error_ref()))).build())
                .build()
        };
        // A created key's (webhook's) id is what the operations on one key (webhook)
        // take: say so, so that clients (and schemathesis's stateful phase) can chain them.
        for (collection, id_field) in [("/v1/spend_keys", "spend_key_id"), ("/v1/webhooks", "webhook_id")] {
            let on_one: Vec<String> = doc
                .paths
                .paths
                .iter()
                .filter(|(path, _)| path.starts_with(&format!("{collection}/{{id}}")))
                .flat_map(|(_, item)| operations(item).filter_map(|op| op.operation_id.clone()).collect::<Vec<_>>())
                .collect();
            if let Some(item) = doc.paths.paths.get_mut(collection)
                && let Some(op) = item.post.as_mut()
                && let Some(RefOr::T(created)) = op.responses.responses.get_mut("201")
            {
                for id in on_one {
                    let link = LinkBuilder::new()
                        .operation_id(&id)
                        .parameter("id", format!("$response.body#/{id_field}"))
                        .build();
                    created.links.insert(id, link.into());
                }
            }
        }
        for item in doc.paths.paths.values_mut() {
            for op in
                [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch].into_iter().flatten()
            {
                // The server reads an optional query parameter sent empty (`?cursor=`,
                // as the Lava SDK sends) as absent.
                for param in op.parameters.iter_mut().flatten() {
                    let RefOr::T(param) = param else { continue };
                    if param.parameter_in == ParameterIn::Query
                        && param.required == Required::False
                        && let Some(schema) = param.schema.take()
                    {
                        let empty = ObjectBuilder::new().schema_type(Type::String).max_length(Some(0));
                        param.schema =
                            Some(RefOr::T(Schema::AnyOf(AnyOfBuilder::new().item(schema).item(empty).build())));
                    }
                }
                let responses = &mut op.responses.responses;
                responses.entry("401".into()).or_insert_with(|| error("No key, or not a wallet API key").into());
                responses.entry("429".into()).or_insert_with(|| {
                    error("Too many failed sign-ins from this address; retry after `retry-after` seconds").into()
                });
                responses
                    .entry("503".into())
                    .or_insert_with(|| error("The database is unreachable; retry in a moment").into());
            }
        }
    }
}

fn operations(item: &PathItem) -> impl Iterator<Item = &Operation> {
    [&item.get, &item.put, &item.post, &item.delete, &item.patch].into_iter().flatten()
}

fn error_ref() -> utoipa::openapi::Ref {
    utoipa::openapi::Ref::from_schema_name("ErrorView")
}

/// The document, with the catalog's model and provider names as the values the
/// `allowed_*` lists accept.
pub fn document(catalog: &Catalog) -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_default();
    let mut models: Vec<String> = Vec::new();
    for m in catalog.models() {
        for name in std::iter::once(&m.id).chain(&m.aliases) {
            models.push(name.clone());
            models.push(format!("{}/{name}", m.provider));
        }
    }
    let providers: Vec<&str> = catalog.providers().iter().map(|p| p.name.as_str()).collect();
    // `SpendKeyChanges::parse` and `WebhookSpec::parse` refuse a field they do not know.
    for body in ["CreateWebhookBody", "CreateSpendKeyBody", "UpdateSpendKeyBody"] {
        if let Some(schema) = doc.pointer_mut(&format!("/components/schemas/{body}")) {
            schema["additionalProperties"] = false.into();
        }
    }
    for body in ["CreateSpendKeyBody", "UpdateSpendKeyBody"] {
        for (field, names) in
            [("allowed_models", serde_json::json!(models)), ("allowed_providers", serde_json::json!(providers))]
        {
            if let Some(items) = doc.pointer_mut(&format!("/components/schemas/{body}/properties/{field}/items")) {
                items["enum"] = names;
            }
        }
    }
    doc
}

/// `GET /openapi.json` (no key needed: it describes the API, and holds nothing secret).
pub async fn serve(State(state): State<AppState>) -> Json<Value> {
    Json(document(&state.config.catalog))
}
