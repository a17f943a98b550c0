//! `/graph/...`: the allowlisted Graph reads, translated from HTTP.
//!
//! A request without a credential is refused first (401); then the path and query are
//! validated (400 without any Graph call), then its caller is identified (401), and
//! [`Reads`](crate::reads::Reads) authorises (403) and answers.

use super::RouteLabel;
use super::extract::{Admin, Caller, ClientIp, bearer};
use crate::AppState;
use crate::error::AppError;
use crate::reads::{Read, Target};
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use waba_graph::ObjectId;
use waba_graph::input::{GraphVersion, ListEdge};

/// Longest query string accepted.
pub const MAX_QUERY_LEN: usize = 4096;

/// Parses the raw (undecoded) path after `/graph/`: an optional `vNN.N`, then a known route.
pub fn parse_target(raw_path: &str) -> Result<Target, AppError> {
    let rest = raw_path.strip_prefix("/graph/").ok_or(AppError::NotFound)?;
    if rest.contains('%') || rest.contains("//") || rest.ends_with('/') && !rest.is_empty() {
        return Err(AppError::BadRequest(
            "malformed path: no encoded characters, empty segments or trailing slash",
        ));
    }
    let mut segs: Vec<&str> = rest.split('/').collect();
    let segment_ok = |s: &&str| {
        !matches!(*s, "." | "..")
            && s.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'_' | b'.'))
    };
    if !segs.iter().all(segment_ok) {
        return Err(AppError::BadRequest(
            "malformed path: segments hold only ids, route names and a version",
        ));
    }
    if segs.first().is_some_and(|s| GraphVersion::is_version(s)) {
        segs.remove(0);
    }
    match segs.as_slice() {
        ["debug_token"] => Ok(Target::DebugToken),
        [id] => Ok(Target::Waba(ObjectId::parse(id)?)),
        [id, "phone_numbers"] => Ok(Target::PhoneNumbers(ObjectId::parse(id)?)),
        [id, edge] => {
            let id = ObjectId::parse(id)?;
            ListEdge::parse(edge)
                .map(|e| Target::List(id, e))
                .ok_or(AppError::NotFound)
        }
        _ => Err(AppError::NotFound),
    }
}

/// Decoded query parameters, refusing credentials in the URL.
fn query_pairs(req: &Parts) -> Result<Vec<(String, String)>, AppError> {
    let raw = req.uri.query().unwrap_or("");
    if raw.len() > MAX_QUERY_LEN {
        return Err(AppError::UriTooLong);
    }
    let pairs: Vec<(String, String)> = form_urlencoded::parse(raw.as_bytes())
        .into_owned()
        .collect();
    if pairs.iter().any(|(k, _)| k == "access_token") {
        return Err(AppError::BadRequest(
            "send the token in the Authorization header, never in the URL",
        ));
    }
    Ok(pairs)
}

/// The handler of every `/graph/...` request (within the request deadline the middleware
/// sets).
pub async fn graph(State(state): State<Arc<AppState>>, req: Request) -> Response {
    // The proxy only reads: the body is never looked at.
    let (mut req, _body) = req.into_parts();
    let target = parse_target(req.uri.path());
    let label = target
        .as_ref()
        .map(|t| t.route().name())
        .unwrap_or("graph_invalid");
    let answer = match target {
        _ if req.method != Method::GET => Err(AppError::MethodNotAllowed),
        Ok(target) => read(&state, &mut req, target).await,
        Err(e) => Err(e),
    };
    let mut res = answer.map_or_else(IntoResponse::into_response, |body| {
        (
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            )],
            body,
        )
            .into_response()
    });
    res.extensions_mut().insert(RouteLabel(label));
    res
}

/// Refuses a request without a credential, validates, identifies the caller (the list routes
/// take only the admin, decided without a Graph call), and asks [`Reads`](crate::reads::Reads).
async fn read(state: &AppState, req: &mut Parts, target: Target) -> Result<String, AppError> {
    let pairs = query_pairs(req)?;
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    // A request without a credential learns that first; who the credential is, is settled
    // after the query is known to be good (a signup credential may cost a Graph call).
    if !matches!(target, Target::DebugToken) {
        bearer(&req.headers)?.ok_or(AppError::MissingCredential)?;
    }
    let read = Read::new(target, &pairs)?;
    let caller = match &read {
        Read::DebugToken(input) => {
            let ClientIp(client) = ClientIp::from_request_parts(req, state).await?;
            return state.reads.debug_token(client, input).await;
        }
        Read::List(..) => Admin::resolve(state, &req.headers).await?.into(),
        Read::Account(..) => Caller::resolve(state, req).await?,
    };
    let base = match read.is_page() {
        true => Some(super::base_url(state, &req.headers)?),
        false => None,
    };
    state
        .reads
        .answer(
            &read,
            &caller.principal,
            &caller.credential,
            base.as_deref(),
        )
        .await
}

/// The operations [`graph`] answers, one per Graph read, for the OpenAPI document: one
/// handler serves them all, so these functions only carry the description (nothing calls
/// them).
pub mod operations {
    use crate::routes::openapi::{DebugTokenAnswer, GraphNode, GraphPage, GraphRefusals};

    /// `GET /graph/debug_token?input_token=`: what a token is and was granted (no credential:
    /// Graph's answer about the token given; each client address has an allowance of these).
    #[utoipa::path(
        get, path = "/graph/debug_token", tag = "graph", operation_id = "debug_token",
        params(
            ("input_token" = String, Query, description = "The access token to inspect: letters, digits and `_-.|`.", pattern = "^[A-Za-z0-9_.|-]{1,4096}$"),
        ),
        responses(
            (status = 200, description = "Graph's `debug_token` answer", body = DebugTokenAnswer),
            GraphRefusals,
        ),
        security(()),
    )]
    pub fn debug_token() {}

    /// `GET /graph/{waba_id}?fields=`: one WABA, with field expansion
    /// (`phone_numbers{...}`), for a caller granted it.
    #[utoipa::path(
        get, path = "/graph/{waba_id}", tag = "graph", operation_id = "waba",
        params(
            WabaPath,
            ("fields" = Option<String>, Query, description = "Comma-separated WABA fields Graph documents, with `phone_numbers{...}` expansion.", max_length = 1024),
        ),
        responses(
            (status = 200, description = "The WABA as Graph answered it", body = GraphNode),
            GraphRefusals,
        ),
        security(("admin" = []), ("signup_token" = []), ("session" = [])),
    )]
    pub fn waba() {}

    /// `GET /graph/{waba_id}/phone_numbers`: a WABA's numbers, for a caller granted it.
    #[utoipa::path(
        get, path = "/graph/{waba_id}/phone_numbers", tag = "graph", operation_id = "phone_numbers",
        params(
            WabaPath,
            ("fields" = Option<String>, Query, description = "Comma-separated phone number fields Graph documents.", max_length = 1024),
            ("limit" = Option<u8>, Query, description = "Page size, 1 to 100.", minimum = 1, maximum = 100),
            ("after" = Option<String>, Query, description = "Cursor of the next page.", max_length = 512),
            ("before" = Option<String>, Query, description = "Cursor of the previous page.", max_length = 512),
        ),
        responses(
            (status = 200, description = "A page of numbers as Graph answered it", body = GraphPage),
            GraphRefusals,
        ),
        security(("admin" = []), ("signup_token" = []), ("session" = [])),
    )]
    pub fn phone_numbers() {}

    /// `GET /graph/{business_id}/client_whatsapp_business_accounts`: the WABAs shared with
    /// the partner (the admin only, for the configured business).
    #[utoipa::path(
        get, path = "/graph/{business_id}/client_whatsapp_business_accounts", tag = "graph",
        operation_id = "client_wabas",
        params(BusinessPath, ListParams),
        responses(
            (status = 200, description = "A page of WABAs as Graph answered it", body = GraphPage),
            GraphRefusals,
        ),
        security(("admin" = [])),
    )]
    pub fn client_wabas() {}

    /// `GET /graph/{business_id}/owned_whatsapp_business_accounts`: the partner's own WABAs
    /// (the admin only, for the configured business).
    #[utoipa::path(
        get, path = "/graph/{business_id}/owned_whatsapp_business_accounts", tag = "graph",
        operation_id = "owned_wabas",
        params(BusinessPath, ListParams),
        responses(
            (status = 200, description = "A page of WABAs as Graph answered it", body = GraphPage),
            GraphRefusals,
        ),
        security(("admin" = [])),
    )]
    pub fn owned_wabas() {}

    /// The WABA a read is about.
    #[derive(utoipa::IntoParams)]
    #[into_params(parameter_in = Path)]
    pub struct WabaPath {
        /// The WABA's id (decimal digits).
        #[param(pattern = "^[0-9]{1,24}$")]
        pub waba_id: String,
    }

    /// The business whose WABAs a list read is about.
    #[derive(utoipa::IntoParams)]
    #[into_params(parameter_in = Path)]
    pub struct BusinessPath {
        /// The partner's business id (decimal digits).
        #[param(pattern = "^[0-9]{1,24}$")]
        pub business_id: String,
    }

    /// The parameters of the WABA lists.
    #[derive(utoipa::IntoParams)]
    #[into_params(parameter_in = Query)]
    pub struct ListParams {
        /// Comma-separated WABA fields Graph documents.
        #[param(max_length = 1024)]
        pub fields: Option<String>,
        /// A JSON array of `{field, operator, value}` conditions (at most 4).
        #[param(max_length = 1024)]
        pub filtering: Option<String>,
        /// `creation_time_ascending` or `creation_time_descending`.
        #[param(pattern = "^creation_time_(ascending|descending)$")]
        pub sort: Option<String>,
        /// Page size, 1 to 100.
        #[param(minimum = 1, maximum = 100)]
        pub limit: Option<u8>,
        /// Cursor of the next page.
        #[param(max_length = 512)]
        pub after: Option<String>,
        /// Cursor of the previous page.
        #[param(max_length = 512)]
        pub before: Option<String>,
    }
}
