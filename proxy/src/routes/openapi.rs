//! The proxy's contract as an OpenAPI 3.1 document, assembled from the handlers'
//! `#[utoipa::path]` annotations and the request and answer types they derive schemas for,
//! so it cannot drift from the code. Served at `GET /openapi.json`; `docs/openapi.json` is
//! the same document committed (a test fails when they differ).
//!
//! What the annotations cannot say alone lives here: the kinds of credential (security
//! schemes), the refusals each kind of route may answer (the middleware's, the extractors',
//! [`AppError`](crate::error::AppError)'s statuses), and the shapes of Graph objects the proxy
//! passes through.

use super::{admin, events, funnel, graph, ops, outbound, signup, views, webhooks};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use std::collections::BTreeMap;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{
    ContentBuilder, HeaderBuilder, Ref, RefOr, ResponseBuilder, ResponsesBuilder, Type,
    response::Response as ApiResponse, schema::ObjectBuilder,
};
use utoipa::{IntoResponses, Modify, OpenApi, ToSchema};
use waba_graph::{ErrorEnvelope, GraphError};

/// The security scheme of the partner's admin token (`--admin-token`).
pub const ADMIN: &str = "admin";
/// The security scheme of a business token from Embedded Signup's token flow.
pub const SIGNUP_TOKEN: &str = "signup_token";
/// The security scheme of a code-flow session from `POST /signup/exchange`.
pub const SESSION: &str = "session";
/// The security scheme of a stream ticket from `POST /events/ticket`.
pub const STREAM_TICKET: &str = "stream_ticket";
/// The security scheme of Meta's webhook signature.
pub const WEBHOOK_SIGNATURE: &str = "webhook_signature";

/// The document's description.
const DESCRIPTION: &str = "The waba-onboard sidecar: it holds the partner's WhatsApp System \
User token and answers the signup page, the partner console and any Graph client.\n\n\
Graph reads under `/graph/` keep Graph's JSON shape (an optional version segment such as \
`/graph/v26.0/...` is accepted before each path). Every error, the proxy's own and Graph's, \
is Graph's envelope `{\"error\":{\"message\",\"type\",\"code\",...}}` with an honest HTTP \
status; 429 and 503 carry `Retry-After`, and a method a route does not take is a 405 \
naming the ones it does in `Allow`. No answer ever holds the System User token, the app \
secret or a business token, except `GET /admin/onboardings/{id}`, which gives the partner's \
admin the business token of that record. A webhook endpoint's signing secret is in the answer \
that creates or replaces it, and in no other.";

/// The OpenAPI document of the proxy.
#[derive(OpenApi)]
#[openapi(
    info(title = "waba-proxy", description = DESCRIPTION),
    paths(
        graph::operations::debug_token,
        graph::operations::waba,
        graph::operations::phone_numbers,
        graph::operations::client_wabas,
        graph::operations::owned_wabas,
        signup::exchange,
        signup::report,
        signup::accounts,
        admin::onboardings,
        admin::onboarding,
        admin::follow_ups,
        admin::offboard,
        admin::retry_step,
        admin::set_pin,
        admin::writes,
        admin::graph_usage,
        funnel::funnel,
        funnel::funnel_csv,
        admin::share_events,
        admin::tracker_pass,
        outbound::event_types,
        outbound::list,
        outbound::create,
        outbound::get,
        outbound::update,
        outbound::delete,
        outbound::rotate_secret,
        outbound::deliveries,
        outbound::resend,
        outbound::give_up,
        events::ticket,
        events::stream,
        ops::healthz,
        ops::readyz,
        ops::metrics,
        openapi_json,
        webhooks::handshake,
        webhooks::receive,
    ),
    components(schemas(ErrorEnvelope, GraphError, views::ChangeView, StatusEvent)),
    modifiers(&SecuritySchemes, &FieldsGrammar),
    tags(
        (name = "graph", description = "Graph reads, forwarded with the System User token to callers granted them"),
        (name = "signup", description = "The signup page: code exchange, granted accounts, reports"),
        (name = "admin", description = "The partner's staff: records, follow-ups, pipeline, tracker"),
        (name = "outbound", description = "The partner's own webhook endpoints (Standard Webhooks), their deliveries and attempts"),
        (name = "events", description = "The live status stream"),
        (name = "webhooks", description = "Meta's webhooks"),
        (name = "ops", description = "Operations: health, readiness, metrics, this document"),
    )
)]
struct ApiDoc;

/// The kinds of credential, as security schemes.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let bearer = |description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(description))
                    .build(),
            )
        };
        let components = doc.components.get_or_insert_with(Default::default);
        for (name, scheme) in [
            (
                ADMIN,
                bearer(
                    "The partner's admin token (`--admin-token`): every route, for the \
                     configured business and its WABAs.",
                ),
            ),
            (
                SIGNUP_TOKEN,
                bearer(
                    "A business token from Embedded Signup's token flow, checked with Graph's \
                     `debug_token`: only the WABAs it was granted.",
                ),
            ),
            (
                SESSION,
                bearer(
                    "A code-flow session credential from `POST /signup/exchange`: only the \
                     WABAs the exchanged code granted.",
                ),
            ),
            (
                STREAM_TICKET,
                SecurityScheme::ApiKey(ApiKey::Query(ApiKeyValue::with_description(
                    "ticket",
                    "A short-lived ticket from `POST /events/ticket`, in the stream's URL \
                     (an EventSource cannot send headers).",
                ))),
            ),
            (
                WEBHOOK_SIGNATURE,
                SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
                    "X-Hub-Signature-256",
                    "`sha256=` and the hex HMAC-SHA256 of the raw body with the app secret.",
                ))),
            ),
        ] {
            components.add_security_scheme(name, scheme);
        }
    }
}

/// The grammar of the Graph reads' `fields`, as a pattern built from the allowlists the
/// proxy checks them against (`waba_graph::input`), so a client or a fuzzer knows which
/// values are taken.
struct FieldsGrammar;

/// `fields` as a pattern: a comma-separated list of `allowed` names and, with `expansion`,
/// that edge with `{...}` of its own allowed names.
fn fields_pattern(allowed: &[&str], expansion: Option<(&str, &[&str])>) -> String {
    let names = |list: &[&str]| list.join("|");
    let item = match expansion {
        Some((edge, inner)) => format!(
            "(?:{}|{edge}\\{{(?:{inner})(?:,(?:{inner}))*\\}})",
            names(allowed),
            inner = names(inner)
        ),
        None => format!("(?:{})", names(allowed)),
    };
    format!("^{item}(?:,{item})*$")
}

impl Modify for FieldsGrammar {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        use waba_graph::input::{PHONE_FIELDS, WABA_FIELDS};
        let waba = fields_pattern(WABA_FIELDS, Some(("phone_numbers", PHONE_FIELDS)));
        let phone = fields_pattern(PHONE_FIELDS, None);
        for (path, pattern) in [
            ("/graph/{waba_id}", &waba),
            ("/graph/{waba_id}/phone_numbers", &phone),
            (
                "/graph/{business_id}/client_whatsapp_business_accounts",
                &waba,
            ),
            (
                "/graph/{business_id}/owned_whatsapp_business_accounts",
                &waba,
            ),
        ] {
            let parameters = doc
                .paths
                .paths
                .get_mut(path)
                .and_then(|item| item.get.as_mut())
                .and_then(|op| op.parameters.as_mut());
            let fields = parameters
                .into_iter()
                .flatten()
                .filter(|p| p.name == "fields")
                .filter_map(|p| p.schema.as_mut());
            for schema in fields {
                if let RefOr::T(utoipa::openapi::schema::Schema::Object(object)) = schema {
                    object.pattern = Some(pattern.clone());
                }
            }
        }
    }
}

/// The document.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// The document as `docs/openapi.json` holds it: pretty-printed, with a final newline.
pub fn document_json() -> String {
    let mut text = document()
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"));
    text.push('\n');
    text
}

/// `GET /openapi.json`: this document (no credential; it holds no secret).
#[utoipa::path(
    get, path = "/openapi.json", tag = "ops",
    responses(
        (status = 200, description = "The OpenAPI 3.1 document of the proxy", content_type = "application/json", body = Object),
        DocumentRefusals,
    ),
)]
pub async fn openapi_json() -> Response {
    static TEXT: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let text = TEXT.get_or_init(document_json).as_str();
    let mut res = text.into_response();
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    // It changes only with the binary: clients may keep it a while, and revalidate.
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    res
}

/// A Graph object passed through as Graph answered it (with the fields asked for, any of
/// them); the proxy guarantees its `id`.
#[derive(ToSchema)]
pub struct GraphNode {
    /// The object's id.
    pub id: String,
}

/// A page of Graph objects as Graph answered it, `paging.next` and `paging.previous`
/// rewritten to the proxy's own URLs, with no token in them.
#[derive(ToSchema)]
pub struct GraphPage {
    /// The objects.
    pub data: Vec<GraphNode>,
    /// Cursors and the neighbouring pages' URLs.
    pub paging: Option<waba_graph::Paging>,
}

/// Graph's `debug_token` answer, passed through: what the input token is and was granted.
#[derive(ToSchema)]
pub struct DebugTokenAnswer {
    /// The token's app, type, validity, expiry and granted scopes (with `target_ids`).
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
}

/// One event of `GET /events/stream` as an EventSource reads it (OpenAPI 3.1 describes an
/// event stream event by event): `event: status`, the sequence number as its `id`, and a
/// [`ChangeView`](views::ChangeView) as JSON in its `data`.
pub struct StatusEvent;

impl utoipa::PartialSchema for StatusEvent {
    fn schema() -> RefOr<utoipa::openapi::schema::Schema> {
        let text = || ObjectBuilder::new().schema_type(Type::String);
        // JSON Schema's `contentSchema` (2020-12), which utoipa's builder does not name.
        let change: utoipa::openapi::extensions::Extensions = [(
            "contentSchema",
            serde_json::json!({ "$ref": "#/components/schemas/ChangeView" }),
        )]
        .into_iter()
        .collect();
        ObjectBuilder::new()
            .property("event", text().enum_values(Some(["status"])))
            .property("id", text().pattern(Some("^[0-9]+$")))
            .property(
                "data",
                text()
                    .content_media_type("application/json")
                    .extensions(Some(change)),
            )
            .required("event")
            .required("id")
            .required("data")
            .into()
    }
}

impl ToSchema for StatusEvent {}

/// Meta's notification as the proxy reads it: an `entry` array whose every entry holds a
/// `changes` array. The rest is Meta's to say (Meta's webhook reference).
#[derive(ToSchema)]
pub struct WebhookNotification {
    /// `whatsapp_business_account`.
    pub object: Option<serde_json::Value>,
    /// The entries.
    pub entry: Vec<WebhookEntry>,
}

/// One entry of a notification.
#[derive(ToSchema)]
pub struct WebhookEntry {
    /// The WABA, or the partner's business (`PARTNER_ADDED` and the like).
    pub id: Option<serde_json::Value>,
    /// When (unix seconds).
    pub time: Option<serde_json::Value>,
    /// The changes, each `{"field", "value"}` as Meta sends it (`account_update`,
    /// `account_review_update`, `phone_number_quality_update`, ...; a change the proxy does
    /// not interpret is kept as it came).
    pub changes: Vec<serde_json::Value>,
}

/// What a refusal of the proxy says, by status.
fn refusal(status: u16) -> (&'static str, Option<(&'static str, &'static str)>) {
    let retry = Some(("Retry-After", "Seconds to wait before asking again."));
    match status {
        400 => (
            "Bad input: a path, parameter or body the proxy refuses, or Graph's 400.",
            None,
        ),
        401 => (
            "No credential, or one nobody knows (unknown, expired, malformed).",
            Some(("WWW-Authenticate", "`Bearer realm=\"waba-proxy\"`.")),
        ),
        403 => (
            "The credential is valid but not for this (or Meta refused the System User).",
            None,
        ),
        404 => ("No such route, record or object.", None),
        408 => ("The request body did not arrive in time.", None),
        409 => (
            "The request conflicts with work in progress, or the pipeline is off.",
            None,
        ),
        413 => (
            "The request body (declared or read) is larger than the route takes.",
            None,
        ),
        414 => ("The query string is longer than the proxy accepts.", None),
        429 => (
            "The proxy's own rate limit, or Meta's throttling passed on.",
            retry,
        ),
        500 => (
            "A bug or a configuration Meta refuses; details are in the log.",
            None,
        ),
        501 => ("The code flow is not configured on this proxy.", None),
        502 => (
            "Meta's Graph API could not be reached, or answered what Graph does not.",
            None,
        ),
        503 => (
            "The proxy is at capacity, or Meta failed transiently.",
            retry,
        ),
        504 => (
            "Meta's Graph API did not answer within the request's deadline.",
            None,
        ),
        _ => ("Refused.", None),
    }
}

/// Graph-shaped error answers for `statuses`, and the HTTP layer's 431 every route may get.
fn refusals(statuses: &[u16]) -> BTreeMap<String, RefOr<ApiResponse>> {
    let envelope = ContentBuilder::new()
        .schema(Some(Ref::from_schema_name("ErrorEnvelope")))
        .build();
    // The server bounds a request's head before any route sees it (`--max-header-bytes`):
    // hyper answers that itself, with no body, and closes the connection.
    let head_too_large = ResponseBuilder::new().description(
        "The request head (its URL and headers) is larger than `--max-header-bytes`: \
         answered by the HTTP layer before any route, with no body, and the connection closed.",
    );
    statuses
        .iter()
        .fold(
            ResponsesBuilder::new().response("431", head_too_large),
            |all, &status| {
                let (description, header) = refusal(status);
                let mut response = ResponseBuilder::new()
                    .description(description)
                    .content("application/json", envelope.clone());
                if let Some((name, about)) = header {
                    response = response.header(
                        name,
                        HeaderBuilder::new()
                            .schema(ObjectBuilder::new().schema_type(Type::String))
                            .description(Some(about))
                            .build(),
                    );
                }
                all.response(status.to_string(), response)
            },
        )
        .build()
        .into()
}

/// Declares a set of refusals as a type the `responses(...)` of an annotation takes.
macro_rules! refusal_set {
    ($($(#[$doc:meta])* $name:ident = [$($status:literal),+ $(,)?];)+) => {
        $(
            $(#[$doc])*
            pub struct $name;

            impl IntoResponses for $name {
                fn responses() -> BTreeMap<String, RefOr<ApiResponse>> {
                    refusals(&[$($status),+])
                }
            }
        )+
    };
}

refusal_set! {
    /// The operations routes: never shed, no deadline; only a declared body too large or a
    /// bug.
    OpsRefusals = [413, 500];
    /// `GET /openapi.json`: shed above the concurrency limit like the API.
    DocumentRefusals = [413, 500, 503];
    /// Graph reads: validated (400, 404, 414), the caller identified (401, 403, 429), then
    /// Graph asked (its 400, 403, 404, 429, 503; 502, 504 when it fails).
    GraphRefusals = [400, 401, 403, 404, 413, 414, 429, 500, 502, 503, 504];
    /// Admin routes that only read the store.
    AdminRefusals = [400, 401, 403, 413, 500, 503, 504];
    /// Admin routes about one record or step (404 when there is none, 409 when it cannot be
    /// done now), some of which write to Graph later, never in the request.
    AdminRecordRefusals = [400, 401, 403, 404, 408, 409, 413, 500, 503, 504];
    /// `POST /admin/tracker/pass`: reads Graph's WABA lists.
    TrackerRefusals = [400, 401, 403, 409, 413, 429, 500, 502, 503, 504];
    /// `POST /signup/exchange`: a JSON body, then Meta's code exchange and reads.
    ExchangeRefusals = [400, 403, 408, 413, 429, 500, 501, 502, 503, 504];
    /// `POST /signup/events`: a JSON body, and the credential when there is one.
    ReportRefusals = [400, 401, 403, 408, 413, 429, 500, 502, 503, 504];
    /// Routes any credential may call, that may ask Graph to identify it or read.
    CallerRefusals = [400, 401, 403, 413, 429, 500, 502, 503, 504];
    /// `GET /events/stream`: the ticket checked, no deadline (the stream lasts).
    StreamRefusals = [400, 401, 413, 500, 503];
    /// Meta's webhooks: signed (403 without a signature or with a wrong one), then read
    /// (400 when the body is not a notification).
    WebhookRefusals = [400, 403, 408, 413, 500, 503];
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fields_pattern_lists_the_names_and_the_one_expansion() {
        assert_eq!(
            fields_pattern(&["a", "bb"], None),
            "^(?:a|bb)(?:,(?:a|bb))*$"
        );
        assert_eq!(
            fields_pattern(&["a", "e"], Some(("e", &["x", "y"]))),
            "^(?:a|e|e\\{(?:x|y)(?:,(?:x|y))*\\})(?:,(?:a|e|e\\{(?:x|y)(?:,(?:x|y))*\\}))*$"
        );
    }

    #[test]
    fn the_document_is_openapi_3_1_with_every_route_s_refusals_in_graph_s_envelope() {
        let doc: serde_json::Value =
            serde_json::from_str(&document_json()).unwrap_or(serde_json::Value::Null);
        assert_eq!(doc["openapi"], "3.1.0");
        let paths = doc["paths"].as_object().map(|p| p.len()).unwrap_or(0);
        assert_eq!(paths, 34);
        for (path, item) in doc["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                let responses = op["responses"].as_object();
                for (status, answer) in responses.into_iter().flatten() {
                    let envelope = &answer["content"]["application/json"]["schema"]["$ref"];
                    let refusal = status.starts_with('4') || status.starts_with('5');
                    // Every refusal but the HTTP layer's bodiless 431 and `/readyz`'s own 503.
                    if refusal && status != "431" && path != "/readyz" {
                        assert_eq!(
                            envelope, "#/components/schemas/ErrorEnvelope",
                            "{method} {path} {status}"
                        );
                    }
                }
            }
        }
    }
}
