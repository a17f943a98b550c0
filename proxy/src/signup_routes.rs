//! `/signup/...`: the code exchange and the signup reports of the page.
//!
//! `POST /signup/exchange` turns a signup code (valid 30 s, once) into a business token at
//! once, keeps the token encrypted in the database and hands the page an opaque, random,
//! expiring session credential for exactly the granted WABAs. `POST /signup/events` records
//! what the page saw (finished, cancelled at a step, a reported error).

use crate::AppState;
use crate::auth::{Principal, bearer};
use crate::error::AppError;
use crate::sealing::random;
use crate::store::{FollowUp, NewOnboarding, Outcome};
use crate::upstream::GraphRoute;
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine as _;
use futures_util::StreamExt as _;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;
use std::sync::Arc;
use waba_graph::id::RawId;
use waba_graph::signup::{
    Abandoned, RawSessionData, RawSessionMessage, SessionEvent, SessionMessage,
};
use waba_graph::status::{AccountStatus, Incomplete, STATUS_FIELDS};
use waba_graph::{Secret, Waba, WabaScope};

/// The prefix of session credentials (the rest is 32 random bytes, base64url).
pub const SESSION_PREFIX: &str = "wos_";
/// Longest signup code accepted.
pub const MAX_CODE_LEN: usize = 2048;

/// Body of `POST /signup/exchange`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExchangeBody {
    /// The code from `FB.login`'s `authResponse`.
    pub code: String,
    /// The `WA_EMBEDDED_SIGNUP` message the page received, when it did.
    #[serde(default)]
    pub event: Option<RawSessionMessage>,
    /// Or the npm package's `SignupResult` (what `onboard` sends).
    #[serde(default)]
    pub result: Option<PageResult>,
}

/// The session event fields of the npm package's `SignupResult` (other fields ignored).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct PageResult {
    /// `FINISH`, `CANCEL`, ...
    pub event: Option<String>,
    /// The session message's WABA.
    pub waba_id: Option<RawId>,
    /// Its phone number.
    pub phone_number_id: Option<RawId>,
    /// Its business.
    pub business_id: Option<RawId>,
    /// The step the business left at.
    pub current_step: Option<String>,
    /// The error it reported.
    pub error_message: Option<String>,
    /// Meta's error id.
    pub error_id: Option<RawId>,
    /// Meta's session id.
    pub session_id: Option<RawId>,
}

impl PageResult {
    /// The session message it stands for; `None` without an event.
    fn into_message(self) -> Option<RawSessionMessage> {
        Some(RawSessionMessage {
            message_type: Some("WA_EMBEDDED_SIGNUP".into()),
            event: Some(self.event?),
            data: Some(RawSessionData {
                phone_number_id: self.phone_number_id,
                waba_id: self.waba_id,
                business_id: self.business_id,
                current_step: self.current_step,
                error_message: self.error_message,
                error_id: self.error_id,
                session_id: self.session_id,
            }),
            version: None,
        })
    }
}

/// Answer of `POST /signup/exchange`.
#[derive(Debug, Serialize)]
pub struct ExchangeAnswer {
    /// The session credential: send it as `Authorization: Bearer` to the WABA routes.
    pub session: String,
    /// When it stops working (unix seconds).
    pub expires_at: i64,
    /// The WABAs it may read, newest first.
    pub wabas: Vec<String>,
    /// The onboarding record.
    pub onboarding_id: i64,
}

/// Body of `POST /signup/events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventBody {
    /// The `WA_EMBEDDED_SIGNUP` message the page received.
    pub event: RawSessionMessage,
    /// `token` or `code`: which flow the page ran.
    #[serde(default)]
    pub flow: Option<String>,
}

/// Answer of `POST /signup/events`.
#[derive(Debug, Serialize)]
pub struct EventAnswer {
    /// The onboarding record.
    pub onboarding_id: i64,
    /// What is left to do, if anything.
    pub follow_ups: Vec<FollowUpView>,
}

/// A follow-up as clients see it.
#[derive(Debug, Serialize)]
pub struct FollowUpView {
    /// The WABA concerned.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub waba_id: Option<String>,
    /// Stable code.
    pub reason: String,
    /// What happened.
    pub message: String,
    /// What to do.
    pub action: String,
}

impl From<&FollowUp> for FollowUpView {
    fn from(f: &FollowUp) -> Self {
        Self {
            waba_id: f.waba_id.clone(),
            reason: f.reason.clone(),
            message: f.message.clone(),
            action: f.action.clone(),
        }
    }
}

/// SHA-256 of a secret string.
pub fn digest(text: &str) -> [u8; 32] {
    Sha256::digest(text.as_bytes()).into()
}

fn no_store(mut res: Response) -> Response {
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Runs blocking store work off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, crate::store::StoreError> + Send + 'static,
) -> Result<T, AppError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| AppError::Internal)?
        .map_err(|e| {
            tracing::error!(error = %e, "database failure");
            AppError::Internal
        })
}

fn check_code(code: &str) -> Result<(), AppError> {
    let ok = !code.is_empty()
        && code.len() <= MAX_CODE_LEN
        && code
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'#'));
    if ok {
        Ok(())
    } else {
        Err(AppError::BadRequest(
            "malformed code: send the code from FB.login's authResponse unchanged",
        ))
    }
}

/// The typed session event, when the page sent an Embedded Signup message.
fn typed_event(raw: Option<RawSessionMessage>) -> Result<Option<SessionMessage>, AppError> {
    match raw {
        None => Ok(None),
        Some(raw) => SessionMessage::from_raw(raw)
            .map_err(|_| AppError::BadRequest("malformed WA_EMBEDDED_SIGNUP event")),
    }
}

/// The record fields a session event gives.
fn record_from_event(flow: &str, event: Option<&SessionMessage>) -> NewOnboarding {
    let mut r = NewOnboarding {
        flow: flow.to_owned(),
        created_at: crate::clock::now(),
        ..NewOnboarding::default()
    };
    let Some(msg) = event else {
        return r;
    };
    let abandoned = |r: &mut NewOnboarding, a: &Abandoned| match a {
        Abandoned::AtStep { current_step } => r.current_step = Some(current_step.clone()),
        Abandoned::Reported {
            error_message,
            error_id,
            session_id,
        } => {
            r.error_message = error_message.clone();
            r.error_id = error_id.clone();
            r.session_id = session_id.clone();
        }
        Abandoned::Unspecified => {}
    };
    match &msg.event {
        SessionEvent::Finish(f)
        | SessionEvent::FinishOnlyWaba(f)
        | SessionEvent::FinishWhatsAppBusinessApp(f) => {
            r.outcome = Some(Outcome::Finished);
            r.reported_waba_id = Some(f.waba_id.to_string());
            r.phone_number_id = f.phone_number_id.as_ref().map(ToString::to_string);
            r.business_id = f.business_id.as_ref().map(ToString::to_string);
        }
        SessionEvent::Cancel(a) | SessionEvent::Error(a) => {
            let reported = matches!(a, Abandoned::Reported { .. });
            r.outcome = Some(if reported || matches!(msg.event, SessionEvent::Error(_)) {
                Outcome::Error
            } else {
                Outcome::Cancelled
            });
            abandoned(&mut r, a);
        }
        SessionEvent::Unknown { .. } => r.outcome = Some(Outcome::Unknown),
    }
    r.event = Some(event_name(&msg.event).to_owned());
    r
}

fn event_name(e: &SessionEvent) -> &str {
    match e {
        SessionEvent::Finish(_) => "FINISH",
        SessionEvent::FinishOnlyWaba(_) => "FINISH_ONLY_WABA",
        SessionEvent::FinishWhatsAppBusinessApp(_) => "FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING",
        SessionEvent::Cancel(_) => "CANCEL",
        SessionEvent::Error(_) => "ERROR",
        SessionEvent::Unknown { event } => event,
    }
}

/// What the partner should do about an incomplete onboarding, by reason.
pub fn action_for(reason: &str) -> &'static str {
    match reason {
        "left_at_step" => "Invite the business to finish Embedded Signup from your signup page.",
        "reported_error" => {
            "Contact the business; if the error persists, give Meta support the error id and session id."
        }
        "certificate_not_ready" => {
            "Ask the business to verify its phone number (the code Meta sends by SMS or call) in Embedded Signup or WhatsApp Manager."
        }
        "no_phone_number" => {
            "Ask the business to add a phone number to its WhatsApp Business account."
        }
        "code_rejected" => {
            "Ask the business to click the signup button again: the code expired or was already used."
        }
        _ => "Contact the business.",
    }
}

/// Follow-ups of a record: from the granted WABAs' statuses when there are any (at most 4
/// reads at once, shared with the page's own identical reads), else from the event alone.
async fn follow_ups(
    st: &AppState,
    record: &NewOnboarding,
    event: Option<&SessionMessage>,
    caller_secret: &str,
) -> Vec<FollowUp> {
    let abandoned = event.and_then(|m| match &m.event {
        SessionEvent::Cancel(a) | SessionEvent::Error(a) => Some(a.clone()),
        _ => None,
    });
    let expect_phone = !matches!(
        event.map(|m| &m.event),
        Some(SessionEvent::FinishOnlyWaba(_) | SessionEvent::FinishWhatsAppBusinessApp(_))
    );
    let query = [("fields", STATUS_FIELDS.to_owned())];
    let statuses: Vec<Option<AccountStatus>> =
        futures_util::stream::iter(record.granted.clone().into_iter().enumerate())
            .map(|(i, id): (usize, String)| {
                let query = &query;
                let abandoned = abandoned.as_ref();
                async move {
                    let body = st
                        .upstream
                        .get_shared(GraphRoute::Waba, &id, query, &[caller_secret])
                        .await
                        .map_err(|e| tracing::warn!(error = %e, "follow-up read failed"))
                        .ok()?;
                    let waba: Waba = serde_json::from_slice(&body).ok()?;
                    Some(AccountStatus::new(waba, i == 0, abandoned, expect_phone))
                }
            })
            .buffered(4)
            .collect()
            .await;
    let mut out: Vec<FollowUp> = statuses
        .into_iter()
        .flatten()
        .filter_map(|s| Some(follow_up(Some(s.waba.id.to_string()), s.incomplete?)))
        .collect();
    if out.is_empty() && record.granted.is_empty() {
        // Nothing shared: what the event says is all there is.
        out.extend(
            abandoned
                .as_ref()
                .and_then(Incomplete::from_abandoned)
                .map(|inc| follow_up(None, inc)),
        );
    }
    out
}

/// The follow-up of what is incomplete about `waba_id` (or the whole signup), with the action.
fn follow_up(waba_id: Option<String>, inc: Incomplete) -> FollowUp {
    FollowUp {
        waba_id,
        action: action_for(&inc.reason).to_owned(),
        reason: inc.reason,
        message: inc.message,
    }
}

/// The Graph answer of `oauth/access_token`.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<i64>,
}

/// `POST /signup/exchange`.
pub async fn exchange(
    State(st): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    body: Result<Json<ExchangeBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let answer = async {
        let Json(body) =
            body.map_err(|_| AppError::BadRequest("the body must be JSON: {\"code\": ..., \"event\": {...}}"))?;
        let flow = st.code_flow.as_ref().ok_or(AppError::CodeFlowOff)?;
        check_code(&body.code)?;
        let event = typed_event(body.event.or_else(|| body.result.and_then(PageResult::into_message)))?;
        st.limit_client(peer.ip())?;
        let code_hash = digest(&body.code);
        let store = st.store.clone();
        let now = crate::clock::now();
        let fresh = {
            let store = store.clone();
            blocking(move || store.claim_code(&code_hash, now)).await?
        };
        let mut record = record_from_event("code", event.as_ref());
        if !fresh {
            return Err(AppError::CodeRejected(
                "this signup code was already used: the business must click the signup button again",
            ));
        }
        let query = [
            ("client_id", flow.app_id.to_string()),
            ("client_secret", flow.app_secret.expose().to_owned()),
            ("code", body.code.clone()),
        ];
        let exchanged = st
            .upstream
            .get_once(
                GraphRoute::OauthAccessToken,
                "oauth/access_token",
                &query,
                &[&body.code],
            )
            .await;
        let bytes = match exchanged {
            Ok(b) => b,
            Err(AppError::Graph { error, .. }) if error.code == 100 => {
                record.outcome = Some(Outcome::CodeRejected);
                record.follow_ups = vec![FollowUp {
                    waba_id: None,
                    reason: "code_rejected".into(),
                    message: "Meta refused the signup code: it expired (codes live 30 seconds) or was already used.".into(),
                    action: action_for("code_rejected").into(),
                }];
                let store = store.clone();
                blocking(move || store.insert_onboarding(&record, None)).await?;
                return Err(AppError::CodeRejected(
                    "the signup code expired or was already used: the business must click the signup button again",
                ));
            }
            Err(e) => return Err(e),
        };
        let token: TokenAnswer = serde_json::from_slice(&bytes)
            .map_err(|_| AppError::UpstreamGarbage("the code exchange answer is not Graph's"))?;
        let business_token = Secret::new(token.access_token);
        let info = st.tokens.inspect(business_token.expose()).await?;
        if !info.usable {
            return Err(AppError::UpstreamGarbage(
                "Meta returned a token that debug_token does not accept",
            ));
        }
        let granted = info
            .debug
            .data
            .granted_wabas(WabaScope::Management)
            .map_err(|_| AppError::UpstreamGarbage("malformed granted WABA ids"))?;
        record.granted = granted.iter().map(ToString::to_string).collect();
        if record.outcome.is_none() {
            record.outcome = Some(Outcome::Finished);
        }
        record.follow_ups =
            follow_ups(&st, &record, event.as_ref(), business_token.expose()).await;
        let expires_at = token
            .expires_in
            .filter(|s| *s > 0)
            .map(|s| now + s)
            .unwrap_or(0);
        record.token = Some(
            flow.key
                .seal(&business_token, expires_at)
                .map_err(|_| AppError::Internal)?,
        );
        let credential = format!(
            "{SESSION_PREFIX}{}",
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(random::<32>().map_err(|_| AppError::Internal)?)
        );
        let session_hash = digest(&credential);
        let session_expires = now + flow.session_ttl.as_secs() as i64;
        let wabas = record.granted.clone();
        let onboarding_id = blocking(move || {
            store.insert_onboarding(&record, Some((&session_hash, session_expires)))
        })
        .await?;
        metrics::counter!("waba_code_exchanges_total").increment(1);
        Ok(ExchangeAnswer {
            session: credential,
            expires_at: session_expires,
            wabas,
            onboarding_id,
        })
    }
    .await;
    no_store(match answer {
        Ok(a) => Json(a).into_response(),
        Err(e) => e.into_response(),
    })
}

/// `POST /signup/events`: records an attempt the page reports. With the signup credential
/// (token or session) the granted WABAs are checked for what is left to do; without one only
/// the event is recorded.
pub async fn report(
    State(st): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Result<Json<EventBody>, axum::extract::rejection::JsonRejection>,
) -> Response {
    let answer = async {
        let Json(body) =
            body.map_err(|_| AppError::BadRequest("the body must be JSON: {\"event\": {...}}"))?;
        let store = st.store.clone();
        let flow = match body.flow.as_deref() {
            None | Some("token") => "token",
            Some("code") => "code",
            Some(_) => return Err(AppError::BadRequest("flow must be token or code")),
        };
        let event = typed_event(Some(body.event))?.ok_or(AppError::BadRequest(
            "the event must be a WA_EMBEDDED_SIGNUP message",
        ))?;
        st.limit_client(peer.ip())?;
        let mut record = record_from_event(flow, Some(&event));
        let token = bearer(&headers)?;
        if let Some(token) = token {
            match st.auth.resolve(token).await? {
                Principal::Signup(grant) => {
                    record.granted = grant.wabas.iter().map(ToString::to_string).collect();
                }
                Principal::Admin => {
                    return Err(AppError::Forbidden(
                        "signup reports come from the signup page, not the admin",
                    ));
                }
            }
        }
        record.follow_ups = follow_ups(&st, &record, Some(&event), token.unwrap_or("")).await;
        let views: Vec<FollowUpView> = record.follow_ups.iter().map(Into::into).collect();
        let onboarding_id = blocking(move || store.insert_onboarding(&record, None)).await?;
        Ok(EventAnswer {
            onboarding_id,
            follow_ups: views,
        })
    }
    .await;
    no_store(match answer {
        Ok(a) => Json(a).into_response(),
        Err(e) => e.into_response(),
    })
}
