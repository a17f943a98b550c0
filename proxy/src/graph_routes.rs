//! `/graph/...`: the allowlisted Graph reads.
//!
//! Each request is parsed and validated first (400 without any Graph call), then its caller
//! is identified (401) and authorised (403), and only then is Graph asked, with the System
//! User token and the proxy's own canonical parameters. Answers are re-serialised from the
//! typed model, so only known fields pass, and scrubbed of secrets.

use crate::AppState;
use crate::auth::{Principal, bearer};
use crate::error::AppError;
use crate::paging;
use crate::upstream::GraphRoute;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use waba_graph::input::{Cursor, Fields, Limit, ListEdge, ListQuery};
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
    if segs.first().is_some_and(|s| is_version(s)) {
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

fn is_version(s: &str) -> bool {
    s.strip_prefix('v').is_some_and(|v| {
        let mut parts = v.split('.');
        matches!((parts.next(), parts.next(), parts.next()), (Some(a), Some(b), None)
            if !a.is_empty() && !b.is_empty() && a.len() <= 3 && b.len() <= 2
                && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit()))
    })
}

/// The handler of every `/graph/...` request.
pub async fn graph(State(st): State<Arc<AppState>>, req: Request) -> Response {
    // The proxy only reads: the body is never looked at.
    let (req, _body) = req.into_parts();
    let target = parse_target(req.uri.path());
    let label = target
        .as_ref()
        .map(|t| t.route().name())
        .unwrap_or("graph_invalid");
    let answer = match target {
        _ if req.method != Method::GET => Err(AppError::MethodNotAllowed),
        Ok(target) => {
            let deadline = std::time::Instant::now() + st.config.request_timeout;
            let work = crate::resilience::DEADLINE.scope(deadline, handle(&st, &req, target));
            tokio::time::timeout(st.config.request_timeout, work)
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
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
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

async fn handle(st: &AppState, req: &Parts, target: Target) -> Result<String, AppError> {
    let pairs = query_pairs(req)?;
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    match &target {
        Target::DebugToken => debug_token(st, req, &pairs).await,
        Target::Waba(id) => {
            let fields = single_param(&pairs, &["fields"])?
                .map(Fields::parse_waba)
                .transpose()?;
            let token = authorize_waba(st, &req.headers, id).await?;
            let query: Vec<(&str, String)> =
                fields.iter().map(|f| ("fields", f.to_string())).collect();
            let body = st
                .upstream
                .get_shared(target.route(), &target.path(), &query, &[token])
                .await?;
            let waba: Waba = parse(&body)?;
            st.respond(&waba, &[token])
        }
        Target::PhoneNumbers(id) => {
            let query = phone_query(&pairs)?;
            let token = authorize_waba(st, &req.headers, id).await?;
            let body = st
                .upstream
                .get_shared(target.route(), &target.path(), &query, &[token])
                .await?;
            let mut page: Page<PhoneNumber> = parse(&body)?;
            page.paging =
                paging::rewrite(&page, &st.base_url(&req.headers)?, &target.path(), &query);
            st.respond(&page, &[token])
        }
        Target::List(business, edge) => {
            let q = ListQuery::from_pairs(*edge, pairs.iter().copied())?;
            let token = authorize_admin(st, &req.headers, business).await?;
            let query = q.to_pairs();
            let body = st
                .upstream
                .get_shared(target.route(), &target.path(), &query, &[token])
                .await?;
            let mut page: Page<Waba> = parse(&body)?;
            page.paging =
                paging::rewrite(&page, &st.base_url(&req.headers)?, &target.path(), &query);
            st.respond(&page, &[token])
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    serde_json::from_slice(body).map_err(|_| AppError::UpstreamGarbage("not the JSON Graph sends"))
}

/// The value of the only parameter a route takes; unknown or repeated parameters are errors.
fn single_param<'a>(
    pairs: &[(&str, &'a str)],
    allowed: &[&str],
) -> Result<Option<&'a str>, AppError> {
    use waba_graph::input::InputError;
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

/// `fields`, `limit`, `after`/`before` of the phone numbers edge, canonical.
fn phone_query(pairs: &[(&str, &str)]) -> Result<Vec<(&'static str, String)>, AppError> {
    use waba_graph::input::InputError;
    let mut out: Vec<(&'static str, String)> = Vec::new();
    for (k, v) in pairs {
        let (key, value): (&'static str, String) = match *k {
            "fields" => ("fields", Fields::parse_phone(v)?.to_string()),
            "limit" => ("limit", Limit::parse(v)?.get().to_string()),
            "after" => ("after", Cursor::parse(v)?.as_str().to_owned()),
            "before" => ("before", Cursor::parse(v)?.as_str().to_owned()),
            other => {
                return Err(InputError::UnknownParameter(other.chars().take(64).collect()).into());
            }
        };
        if out.iter().any(|(k, _)| *k == key) {
            return Err(InputError::DuplicateParameter(key.into()).into());
        }
        out.push((key, value));
    }
    if out.iter().any(|(k, _)| *k == "after") && out.iter().any(|(k, _)| *k == "before") {
        return Err(InputError::BothCursors.into());
    }
    Ok(out)
}

/// The caller may read `waba`: a signup credential granted it, or the admin and the WABA is
/// the partner's. Returns the caller's token (to scrub from answers).
async fn authorize_waba<'h>(
    st: &AppState,
    headers: &'h HeaderMap,
    waba: &ObjectId,
) -> Result<&'h str, AppError> {
    let token = bearer(headers)?.ok_or(AppError::MissingCredential)?;
    match st.auth.resolve(token).await? {
        Principal::Admin => {
            if st.directory.contains(waba).await? {
                Ok(token)
            } else {
                Err(AppError::Forbidden(
                    "this WABA is neither owned by nor shared with the partner's business",
                ))
            }
        }
        p if p.signup_may_read(waba) => Ok(token),
        _ => Err(AppError::Forbidden(
            "this credential was not granted that WABA",
        )),
    }
}

/// The caller is the admin and asks about the configured business. No Graph call decides it.
async fn authorize_admin<'h>(
    st: &AppState,
    headers: &'h HeaderMap,
    business: &ObjectId,
) -> Result<&'h str, AppError> {
    let token = bearer(headers)?.ok_or(AppError::MissingCredential)?;
    match st.auth.resolve_local(token).await? {
        Some(Principal::Admin) if *business == st.config.business_id => Ok(token),
        Some(Principal::Admin) => Err(AppError::Forbidden(
            "the proxy serves only the partner's own business",
        )),
        _ if st.config.admin_token.is_none() => Err(AppError::Forbidden(
            "list routes are disabled: the proxy has no admin token configured",
        )),
        _ => Err(AppError::Forbidden("list routes need the admin token")),
    }
}

/// `debug_token?input_token=T`: public, rate-limited per client address, cached by token
/// hash.
async fn debug_token(
    st: &AppState,
    req: &Parts,
    pairs: &[(&str, &str)],
) -> Result<String, AppError> {
    let input = single_param(pairs, &["input_token"])?
        .ok_or(AppError::BadRequest("input_token is required"))?;
    let shape_ok = !input.is_empty()
        && input.len() <= crate::auth::MAX_TOKEN_LEN
        && input
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'|'));
    if !shape_ok {
        return Err(AppError::BadRequest("input_token is not an access token"));
    }
    let peer = req
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
    st.limit_client(peer)?;
    let inspection = st.tokens.inspect(input).await?;
    st.respond(&inspection.debug, &[input])
}
