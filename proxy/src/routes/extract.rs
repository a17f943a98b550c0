//! Extractors: who is calling, from where, and the request's JSON and query, each refusing
//! bad input with the proxy's Graph-shaped error.

use crate::AppState;
use crate::auth::Principal;
use crate::error::AppError;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Query, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use serde::de::DeserializeOwned;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

/// The bearer credential of a request, checked for shape; `None` when there is no
/// `Authorization` header.
pub fn bearer(headers: &HeaderMap) -> Result<Option<&str>, AppError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value
        .to_str()
        .map_err(|_| AppError::InvalidCredential("malformed Authorization header"))?;
    let use_bearer = AppError::InvalidCredential("use Authorization: Bearer <token>");
    let (scheme, token) = value.split_once(' ').ok_or(use_bearer.clone())?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(use_bearer);
    }
    let token = token.trim();
    if !waba_graph::input::is_credential_text(token) {
        return Err(AppError::InvalidCredential("malformed bearer token"));
    }
    Ok(Some(token))
}

/// An optional bearer credential.
pub struct MaybeBearer(pub Option<String>);

impl<S: Send + Sync> FromRequestParts<S> for MaybeBearer {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        Ok(Self(bearer(&parts.headers)?.map(str::to_owned)))
    }
}

/// A caller with a credential some authenticator knows (401 otherwise), and the credential
/// (to scrub from answers).
pub struct Caller {
    /// Who it is.
    pub principal: Principal,
    /// The credential it presented.
    pub credential: String,
}

impl Caller {
    /// The caller of a request: its bearer credential, resolved with its address (a Graph
    /// call to identify it is charged to that address's allowance).
    pub async fn resolve(state: &AppState, parts: &Parts) -> Result<Self, AppError> {
        let credential = bearer(&parts.headers)?.ok_or(AppError::MissingCredential)?;
        let principal = state.auth.resolve(credential, client_ip(parts)).await?;
        Ok(Self {
            principal,
            credential: credential.to_owned(),
        })
    }
}

impl FromRequestParts<Arc<AppState>> for Caller {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, AppError> {
        Self::resolve(state, parts).await
    }
}

impl FromRequestParts<Arc<AppState>> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, AppError> {
        Self::resolve(state, &parts.headers).await
    }
}

/// The partner's admin, decided without a Graph call (401 without a credential, 403 for any
/// other credential, so a stranger's token costs nothing).
pub struct Admin {
    /// The admin token (to scrub from answers).
    pub credential: String,
}

impl Admin {
    /// The admin behind a request with these headers.
    pub async fn resolve(state: &AppState, headers: &HeaderMap) -> Result<Self, AppError> {
        let credential = bearer(headers)?.ok_or(AppError::MissingCredential)?;
        match state.auth.resolve_local(credential).await? {
            Some(Principal::Admin) => Ok(Self {
                credential: credential.to_owned(),
            }),
            _ if state.config.admin_token.is_none() => Err(AppError::Forbidden(
                "admin routes are disabled: the proxy has no admin token configured",
            )),
            _ => Err(AppError::Forbidden("only the partner's admin may use this")),
        }
    }
}

impl From<Admin> for Caller {
    fn from(a: Admin) -> Self {
        Self {
            principal: Principal::Admin,
            credential: a.credential,
        }
    }
}

/// The client's address (unspecified when the server was started without connect info).
pub struct ClientIp(pub IpAddr);

/// The TCP peer of a request.
fn client_ip(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
        .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))
}

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, AppError> {
        Ok(Self(client_ip(parts)))
    }
}

/// A JSON body of the shape `T`, or 400 saying so.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for JsonBody<T> {
    type Rejection = AppError;

    async fn from_request(req: Request, state: &S) -> Result<Self, AppError> {
        axum::Json::<T>::from_request(req, state)
            .await
            .map(|axum::Json(v)| Self(v))
            .map_err(|e: JsonRejection| {
                unreadable_body(e.status(), &e).unwrap_or(AppError::BadRequest(
                    "the body must be JSON of the documented shape (Content-Type: application/json)",
                ))
            })
    }
}

/// The error for a body that could not be read in full: 413 when it is too large, 408 when
/// it did not arrive by the request's deadline; `None` when the bytes arrived (and were bad).
pub fn unreadable_body(
    status: StatusCode,
    error: &(dyn std::error::Error + 'static),
) -> Option<AppError> {
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        return Some(AppError::PayloadTooLarge);
    }
    std::iter::successors(Some(error), |e| e.source())
        .any(|e| e.is::<tower_http::timeout::TimeoutError>())
        .then_some(AppError::BodyTimeout)
}

/// Query parameters of the shape `T`, or 400 saying so.
pub struct Params<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Params<T> {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, AppError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(q)| Self(q))
            .map_err(|_: QueryRejection| {
                AppError::BadRequest("unknown or malformed query parameter")
            })
    }
}
