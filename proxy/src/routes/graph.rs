//! `/graph/...`: the allowlisted Graph reads, translated from HTTP.
//!
//! Each request is parsed and validated first (400 without any Graph call), then its caller
//! is identified (401), and [`Reads`](crate::reads::Reads) authorises (403) and answers.

use super::RouteLabel;
use super::extract::{Admin, Caller, ClientIp};
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

/// Validates, identifies the caller (the list routes take only the admin, decided without a
/// Graph call), and asks [`Reads`](crate::reads::Reads).
async fn read(state: &AppState, req: &mut Parts, target: Target) -> Result<String, AppError> {
    let pairs = query_pairs(req)?;
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
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
