//! `/graph/...`: the allowlisted Graph reads.
//!
//! Each request is parsed and validated first (400 without any Graph call), then its caller
//! is identified (401) and authorised (403), and only then is Graph asked, with the System
//! User token and the proxy's own canonical parameters. Answers are re-serialised from the
//! typed model, so only known fields pass, and scrubbed of secrets.

use super::extract::{Admin, Caller, ClientIp};
use super::paging;
use crate::AppState;
use crate::auth::Principal;
use crate::error::AppError;
use crate::upstream::GraphRoute;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use std::sync::Arc;
use waba_graph::input::{
    AccessToken, Fields, GraphVersion, InputError, ListEdge, ListQuery, PhoneQuery,
};
use waba_graph::{ObjectId, Page, PhoneNumber, Waba};

/// Longest query string accepted.
pub const MAX_QUERY_LEN: usize = 4096;

/// The route a request was for, recorded in metrics.
#[derive(Debug, Clone, Copy)]
pub struct RouteLabel(pub &'static str);

/// What a `/graph/...` path names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// `debug_token`.
    DebugToken,
    /// A WABA node.
    Waba(ObjectId),
    /// A WABA's phone numbers.
    PhoneNumbers(ObjectId),
    /// A business's WABA list.
    List(ObjectId, ListEdge),
}

impl Target {
    fn route(&self) -> GraphRoute {
        match self {
            Target::DebugToken => GraphRoute::DebugToken,
            Target::Waba(_) => GraphRoute::Waba,
            Target::PhoneNumbers(_) => GraphRoute::PhoneNumbers,
            Target::List(_, ListEdge::Client) => GraphRoute::ClientWabas,
            Target::List(_, ListEdge::Owned) => GraphRoute::OwnedWabas,
        }
    }

    /// The path under `/graph/` (and under Graph's version).
    fn path(&self) -> String {
        match self {
            Target::DebugToken => "debug_token".into(),
            Target::Waba(id) => id.to_string(),
            Target::PhoneNumbers(id) => format!("{id}/phone_numbers"),
            Target::List(id, edge) => format!("{id}/{}", edge.as_str()),
        }
    }
}

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

/// The handler of every `/graph/...` request.
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
        Ok(target) => {
            let timeout = state.config.upstream.request_timeout;
            let deadline = std::time::Instant::now() + timeout;
            let work = crate::upstream::resilience::DEADLINE
                .scope(deadline, handle(&state, &mut req, target));
            tokio::time::timeout(timeout, work)
                .await
                .unwrap_or(Err(AppError::UpstreamTimeout))
        }
        Err(e) => Err(e),
    };
    let mut res = match answer {
        Ok(body) => {
            let mut res = body.into_response();
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json; charset=utf-8"),
            );
            res
        }
        Err(e) => e.into_response(),
    };
    res.extensions_mut().insert(RouteLabel(label));
    res
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

async fn handle(state: &AppState, req: &mut Parts, target: Target) -> Result<String, AppError> {
    let pairs = query_pairs(req)?;
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let (query, credential) = match &target {
        Target::DebugToken => return debug_token(state, req, &pairs).await,
        Target::Waba(id) => {
            let fields = single_param(&pairs, &["fields"])?
                .map(Fields::parse_waba)
                .transpose()?;
            let query: Vec<(&str, String)> =
                fields.iter().map(|f| ("fields", f.to_string())).collect();
            (query, authorize_waba(state, &req.headers, id).await?)
        }
        Target::PhoneNumbers(id) => {
            let query = PhoneQuery::from_pairs(pairs.iter().copied())?.to_pairs();
            (query, authorize_waba(state, &req.headers, id).await?)
        }
        Target::List(business, edge) => {
            let query = ListQuery::from_pairs(*edge, pairs.iter().copied())?.to_pairs();
            (query, authorize_list(state, &req.headers, business).await?)
        }
    };
    let path = target.path();
    let body = state
        .upstream
        .get_shared(target.route(), &path, &query, &[&credential])
        .await?;
    let text = match &target {
        Target::Waba(_) => {
            serde_json::to_string(&parse::<Waba>(&body)?).map_err(|_| AppError::Internal)?
        }
        Target::PhoneNumbers(_) => {
            page_text::<PhoneNumber>(state, &req.headers, &body, &path, &query)?
        }
        _ => page_text::<Waba>(state, &req.headers, &body, &path, &query)?,
    };
    Ok(state.scrubber.scrub(&text, &[&credential]))
}

/// A page re-serialised from the typed model, its links rewritten to point at the proxy.
fn page_text<T: serde::Serialize + serde::de::DeserializeOwned>(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    path: &str,
    query: &[(&str, String)],
) -> Result<String, AppError> {
    let mut page: Page<T> = parse(body)?;
    page.paging = paging::rewrite(&page, &super::base_url(state, headers)?, path, query);
    serde_json::to_string(&page).map_err(|_| AppError::Internal)
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    serde_json::from_slice(body).map_err(|_| AppError::UpstreamGarbage("not the JSON Graph sends"))
}

/// The value of the only parameter a route takes; unknown or repeated parameters are errors.
fn single_param<'a>(
    pairs: &[(&str, &'a str)],
    allowed: &[&str],
) -> Result<Option<&'a str>, AppError> {
    let mut found = None;
    for (k, v) in pairs {
        if !allowed.contains(k) {
            return Err(InputError::UnknownParameter(k.chars().take(64).collect()).into());
        }
        if found.replace(*v).is_some() {
            return Err(InputError::DuplicateParameter((*k).to_owned()).into());
        }
    }
    Ok(found)
}

/// The caller may read `waba`: a signup credential granted it, or the admin and the WABA is
/// the partner's. Returns the caller's credential (to scrub from answers).
async fn authorize_waba(
    state: &AppState,
    headers: &HeaderMap,
    waba: &ObjectId,
) -> Result<String, AppError> {
    let caller = Caller::resolve(state, headers).await?;
    match &caller.principal {
        Principal::Admin if state.directory.contains(waba).await? => Ok(caller.credential),
        Principal::Admin => Err(AppError::Forbidden(
            "this WABA is neither owned by nor shared with the partner's business",
        )),
        p if p.signup_may_read(waba) => Ok(caller.credential),
        _ => Err(AppError::Forbidden(
            "this credential was not granted that WABA",
        )),
    }
}

/// The caller is the admin and asks about the configured business. No Graph call decides it.
async fn authorize_list(
    state: &AppState,
    headers: &HeaderMap,
    business: &ObjectId,
) -> Result<String, AppError> {
    let admin = Admin::resolve(state, headers).await?;
    if *business == state.config.business_id {
        Ok(admin.credential)
    } else {
        Err(AppError::Forbidden(
            "the proxy serves only the partner's own business",
        ))
    }
}

/// `debug_token?input_token=T`: public, rate-limited per client address, cached by token
/// hash.
async fn debug_token(
    state: &AppState,
    req: &mut Parts,
    pairs: &[(&str, &str)],
) -> Result<String, AppError> {
    let input = single_param(pairs, &["input_token"])?
        .ok_or(AppError::BadRequest("input_token is required"))?;
    let input = AccessToken::parse(input)
        .map_err(|_| AppError::BadRequest("input_token is not an access token"))?;
    let ClientIp(client) = ClientIp::from_request_parts(req, state).await?;
    state.limiter.check(client)?;
    let inspection = state.tokens.inspect(input.expose()).await?;
    let text = serde_json::to_string(&inspection.debug).map_err(|_| AppError::Internal)?;
    Ok(state.scrubber.scrub(&text, &[input.expose()]))
}
