//! Onboarding: what happens when a business comes back from Embedded Signup.
//!
//! [`Signups::exchange`] turns a signup code (valid 30 s, once) into a business token at once,
//! keeps the token sealed in the store and hands the page an opaque, random, expiring session
//! credential for exactly the granted WABAs. [`Signups::report`] records what the page saw
//! (finished, cancelled at a step, a reported error). Both record the follow-ups the partner
//! must act on. The session event arrives as Meta sent it; its meaning comes from
//! `waba_graph::signup`, the one place that knows it.

use crate::auth::limit::{GraphAllowance, Spend};
use crate::auth::session::{MintedSession, mint};
use crate::auth::signup_token::{Asker, TokenInspector};
use crate::auth::{Authenticators, Principal, digest};
use crate::error::AppError;
use crate::reads::PARALLEL_READS;
use crate::sealing::TokenKey;
use crate::store::{Flow, FollowUp, FollowUpReason, Onboarding, OnboardingRecord, Outcome, Store};
use crate::upstream::{GraphRoute, Upstream};
use futures_util::StreamExt as _;
use serde::Deserialize;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;
use waba_graph::input::SignupCode;
use waba_graph::signup::{Abandoned, RawSessionMessage, SessionMessage};
use waba_graph::status::{AccountStatus, Incomplete, STATUS_FIELDS};
use waba_graph::{ObjectId, Secret, Waba};

/// Body of `POST /signup/exchange`. `Debug` never shows the code.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExchangeRequest {
    /// The code from `FB.login`'s `authResponse`.
    #[schema(pattern = "^[A-Za-z0-9_.~#-]{1,2048}$")]
    pub code: String,
    /// The `WA_EMBEDDED_SIGNUP` message the page received, as Meta sent it.
    #[serde(default)]
    pub event: Option<RawSessionMessage>,
    /// The page Meta's full-page login dialog returned to with the code (no popup): the
    /// exchange names it, as Meta requires of that flow.
    #[serde(default)]
    #[schema(max_length = 2048)]
    pub redirect_uri: Option<String>,
}

impl std::fmt::Debug for ExchangeRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExchangeRequest")
            .field("code", &"[redacted]")
            .field("event", &self.event)
            .field("redirect_uri", &self.redirect_uri)
            .finish()
    }
}

/// The longest `redirect_uri` taken (bytes).
pub const MAX_REDIRECT_URI: usize = 2048;

/// A `redirect_uri` as the full-page dialog takes it: an http(s) address of printable ASCII
/// without a fragment, at most [`MAX_REDIRECT_URI`] bytes.
fn redirect_uri(raw: &str) -> Result<&str, AppError> {
    let web = raw.starts_with("https://") || raw.starts_with("http://");
    let printable = raw.bytes().all(|b| b.is_ascii_graphic());
    if web && printable && !raw.contains('#') && raw.len() <= MAX_REDIRECT_URI {
        Ok(raw)
    } else {
        Err(AppError::BadRequest(
            "redirect_uri must be the http(s) address the dialog returned to, without a fragment",
        ))
    }
}

/// What Meta's full-page login dialog said on the page it returned to when nobody logged in
/// (`error=access_denied&error_reason=user_denied&...`).
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DialogError {
    /// `error`, e.g. `access_denied`.
    pub error: String,
    /// `error_reason`, e.g. `user_denied`.
    #[serde(default)]
    pub error_reason: Option<String>,
    /// `error_description`, e.g. `Permissions error.`.
    #[serde(default)]
    pub error_description: Option<String>,
    /// `error_code`, e.g. `200`.
    #[serde(default)]
    pub error_code: Option<String>,
}

/// The longest text of a [`DialogError`] field kept (bytes); longer ones (Meta words
/// `error_description` in the person's language) are cut at a character boundary.
pub const MAX_DIALOG_TEXT: usize = 256;

/// `text` cut to at most [`MAX_DIALOG_TEXT`] bytes, at a character boundary.
fn kept(mut text: String) -> String {
    if text.len() > MAX_DIALOG_TEXT {
        let end = (0..=MAX_DIALOG_TEXT)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        text.truncate(end);
    }
    text
}

impl DialogError {
    /// Records it: cancelled when the person declined, an error otherwise.
    fn record(self, record: &mut OnboardingRecord) -> Result<(), AppError> {
        if self.error.is_empty() {
            return Err(AppError::BadRequest("dialog_error needs its error"));
        }
        record.outcome = match self.error_reason.as_deref() {
            Some("user_denied") => Outcome::Cancelled,
            _ => Outcome::Error,
        };
        record.event = Some(kept(self.error));
        record.error_message = self.error_description.map(kept);
        record.error_id = self.error_code.map(kept);
        Ok(())
    }
}

/// Body of `POST /signup/events`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportRequest {
    /// The `WA_EMBEDDED_SIGNUP` message the page received, as Meta sent it.
    #[serde(default)]
    pub event: Option<RawSessionMessage>,
    /// Or, after Meta's full-page dialog, what it said when nobody logged in.
    #[serde(default)]
    pub dialog_error: Option<DialogError>,
    /// `token` or `code`: which flow the page ran (default `token`).
    #[serde(default)]
    #[schema(pattern = "^(token|code)$")]
    pub flow: Option<String>,
}

/// What an exchange gives the page.
#[derive(Debug)]
pub struct Exchanged {
    /// The session credential and when it expires.
    pub session: MintedSession,
    /// The WABAs it may read, newest first.
    pub wabas: Vec<String>,
    /// Each granted WABA read for its status while exchanging (the fields of
    /// [`STATUS_FIELDS`], as `GET /graph/{id}` with them answers), in the order of `wabas`;
    /// one whose read failed is left out, and the page reads it itself.
    pub accounts: Vec<Box<serde_json::value::RawValue>>,
    /// The onboarding record.
    pub onboarding_id: i64,
}

/// What a report recorded.
#[derive(Debug)]
pub struct Reported {
    /// The onboarding record.
    pub onboarding_id: i64,
    /// What is left to do.
    pub follow_ups: Vec<FollowUp>,
}

/// The code flow's settings: the app and what seals its business tokens.
#[derive(Debug, Clone)]
pub struct CodeFlow {
    /// The partner's app.
    pub app_id: ObjectId,
    /// Its secret.
    pub app_secret: Secret,
    /// Seals business tokens.
    pub key: TokenKey,
    /// Session credential lifetime.
    pub session_ttl: Duration,
}

/// The Graph answer of `oauth/access_token`.
#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    /// Read as any JSON: the code is spent by now, so an odd value must not lose the token.
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

/// The longest token lifetime believed: Meta's expiring tokens live 60 days, and business
/// tokens default to never expiring (no `expires_in`, or 0).
pub const MAX_TOKEN_LIFETIME_SECS: i64 = 10 * 365 * 86_400;

/// When a token handed over at `now` with Graph's `expires_in` expires (unix seconds; 0 for
/// never): a positive number of seconds (integer, float or decimal text), clamped to
/// [`MAX_TOKEN_LIFETIME_SECS`]; anything else means Graph set no expiry.
pub fn token_expiry(now: i64, expires_in: Option<&serde_json::Value>) -> i64 {
    use serde_json::Value;
    let secs = match expires_in {
        Some(Value::Number(n)) => n
            .as_i64()
            .or_else(|| n.as_u64().map(|_| i64::MAX))
            // `as` saturates; NaN cannot come out of JSON.
            .or_else(|| n.as_f64().map(|f| f as i64)),
        Some(Value::String(s)) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            Some(s.parse::<i64>().unwrap_or(i64::MAX))
        }
        _ => None,
    };
    match secs {
        Some(s) if s > 0 => now.saturating_add(s.min(MAX_TOKEN_LIFETIME_SECS)),
        _ => 0,
    }
}

/// Signup exchanges and reports.
pub struct Signups {
    /// Where records go.
    pub store: Arc<dyn Store>,
    /// Graph.
    pub upstream: Upstream,
    /// `debug_token` of business tokens.
    pub tokens: Arc<TokenInspector>,
    /// Who sends a report.
    pub auth: Authenticators,
    /// The code flow, when configured.
    pub code_flow: Option<CodeFlow>,
    /// Each client's allowance of Graph calls (spent once the request is known to be well
    /// formed).
    pub allowance: Arc<GraphAllowance>,
    /// Plans the partner's steps of each exchanged signup, when on.
    pub pipeline: Option<Arc<crate::pipeline::Pipeline>>,
}

impl Signups {
    /// The code exchange. The code is claimed before Graph sees it, so a code presented twice
    /// (even at once) is exchanged at most once; it stays claimed once Meta exchanged or
    /// refused it, and is given back when the exchange failed otherwise.
    pub async fn exchange(
        &self,
        client: IpAddr,
        request: ExchangeRequest,
    ) -> Result<Exchanged, AppError> {
        let flow = self.code_flow.as_ref().ok_or(AppError::CodeFlowOff)?;
        let code = SignupCode::parse(&request.code)?;
        let event = typed(request.event)?;
        let redirect = request
            .redirect_uri
            .as_deref()
            .map(redirect_uri)
            .transpose()?;
        self.allowance.spend(client, Spend::Exchange)?;
        let now = crate::clock::now();
        let claim = Claim::take(&self.store, digest(code.expose()), now)
            .await?
            .ok_or(AppError::CodeRejected(
                "this signup code was already used: the business must click the signup button again",
            ))?;
        let mut record = record_of(Flow::Code, now, event.as_ref());
        let mut query = vec![
            ("client_id", flow.app_id.to_string()),
            ("client_secret", flow.app_secret.expose().to_owned()),
            ("code", code.expose().to_owned()),
        ];
        if let Some(uri) = redirect {
            query.push(("redirect_uri", uri.to_owned()));
        }
        let exchanged = self
            .upstream
            .oauth_access_token(&query, code.expose())
            .await;
        let bytes = match exchanged {
            Ok(b) => {
                claim.keep();
                b
            }
            // Meta's manual login flow: a code from the full-page dialog is refused (100) when
            // the exchange names another redirect_uri than the dialog had. The code is not
            // spent, and it is the partner's address, not the business, that is wrong.
            Err(AppError::Graph { error, .. })
                if error.code == 100 && error.message.contains("redirect_uri") =>
            {
                claim.release().await;
                return Err(AppError::CodeRejected(
                    "Meta refused the code for this redirect_uri: it must be exactly the page the full-page dialog returned to (the app's valid OAuth redirect URI)",
                ));
            }
            Err(AppError::Graph { error, .. }) if error.code == 100 => {
                claim.keep();
                record.outcome = Outcome::CodeRejected;
                record.follow_ups = vec![follow_up(
                    None,
                    FollowUpReason::CodeRejected,
                    "Meta refused the signup code: it expired (codes live 30 seconds) or was already used."
                        .into(),
                )];
                self.store.insert_onboarding(record, None).await?;
                return Err(AppError::CodeRejected(
                    "the signup code expired or was already used: the business must click the signup button again",
                ));
            }
            // Anything else (throttled, kept back by the gate, the app's credentials refused,
            // Graph unreachable): Meta did not say the code is spent, so it is given back and
            // the retry asks Meta again, which refuses a code it already used.
            Err(e) => {
                claim.release().await;
                return Err(e);
            }
        };
        let token: TokenAnswer = serde_json::from_slice(&bytes)
            .map_err(|_| AppError::UpstreamGarbage("the code exchange answer is not Graph's"))?;
        let business_token = Secret::new(token.access_token);
        let granted = self
            .tokens
            .inspect(business_token.expose(), Asker::Proxy)
            .await?
            .granted_wabas()
            .map_err(|e| match e {
                AppError::InvalidCredential(_) => AppError::UpstreamGarbage(
                    "Meta returned a token that debug_token does not accept",
                ),
                other => other,
            })?;
        record.granted = granted.iter().map(ToString::to_string).collect();
        if event.is_none() {
            record.outcome = Outcome::Finished;
        }
        let (follow_ups, accounts) = self
            .follow_ups(&record, event.as_ref(), business_token.expose())
            .await;
        record.follow_ups = follow_ups;
        if let Some(pipeline) = &self.pipeline {
            let coexistence = event.as_ref().is_some_and(|m| m.event.is_coexistence());
            record.steps = pipeline.plan_signup(&record.granted, &accounts, coexistence, true, now);
            drop_register_follow_ups(&mut record);
        }
        let expires_at = token_expiry(now, token.expires_in.as_ref());
        record.token = Some(
            flow.key
                .seal(&business_token, expires_at)
                .map_err(|_| AppError::Internal)?,
        );
        let session = mint(now, flow.session_ttl)?;
        let wabas = record.granted.clone();
        // What the page would read next with its session: it gets it now, scrubbed as a
        // read's answer is.
        // The scrubbed text is sent as it is, not parsed again (as `GET /signup/accounts`).
        let accounts = accounts
            .iter()
            .filter_map(|a| {
                let text = serde_json::to_string(&a.waba).ok()?;
                let text = self.upstream.scrub(&text, &[business_token.expose()]);
                serde_json::value::RawValue::from_string(text).ok()
            })
            .collect();
        let inserted = self
            .store
            .insert_onboarding(record, Some(session.stored))
            .await?;
        if let Some(pipeline) = &self.pipeline {
            pipeline.announce(&inserted.changes);
        }
        let onboarding_id = inserted.id;
        metrics::counter!("waba_code_exchanges_total").increment(1);
        Ok(Exchanged {
            session,
            wabas,
            accounts,
            onboarding_id,
        })
    }

    /// Records an attempt the page reports. With the signup credential (token or session)
    /// the granted WABAs are checked for what is left to do; without one only the event is
    /// recorded.
    pub async fn report(
        &self,
        client: IpAddr,
        request: ReportRequest,
        credential: Option<&str>,
    ) -> Result<Reported, AppError> {
        let flow = match request.flow.as_deref() {
            None => Flow::Token,
            Some(f) => match Flow::parse(f) {
                Some(flow @ (Flow::Token | Flow::Code)) => flow,
                _ => return Err(AppError::BadRequest("flow must be token or code")),
            },
        };
        let event = match (request.event, request.dialog_error) {
            (Some(raw), None) => typed(Some(raw))?.ok_or(AppError::BadRequest(
                "the event must be a WA_EMBEDDED_SIGNUP message",
            ))?,
            (None, Some(dialog)) if credential.is_none() => {
                // Nobody logged in: nothing was shared, nothing to check.
                self.allowance.spend(client, Spend::Record)?;
                let mut record = OnboardingRecord::new(flow, crate::clock::now());
                dialog.record(&mut record)?;
                let inserted = self.store.insert_onboarding(record, None).await?;
                return Ok(Reported {
                    onboarding_id: inserted.id,
                    follow_ups: Vec::new(),
                });
            }
            (None, Some(_)) => {
                return Err(AppError::BadRequest(
                    "a dialog's error comes without a credential: nobody logged in",
                ));
            }
            _ => {
                return Err(AppError::BadRequest(
                    "send the WA_EMBEDDED_SIGNUP event or the dialog's error (dialog_error), one of them",
                ));
            }
        };
        self.allowance.spend(client, Spend::Record)?;
        let mut record = record_of(flow, crate::clock::now(), Some(&event));
        if let Some(token) = credential {
            match self.auth.resolve(token, client).await? {
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
        let (follow_ups, accounts) = self
            .follow_ups(&record, Some(&event), credential.unwrap_or(""))
            .await;
        record.follow_ups = follow_ups;
        // A finished token-flow signup is onboarded with the System User token (the business
        // token stays in the page).
        if let Some(pipeline) = &self.pipeline
            && record.outcome == Outcome::Finished
        {
            record.steps = pipeline.plan_signup(
                &record.granted,
                &accounts,
                event.event.is_coexistence(),
                false,
                record.created_at,
            );
            drop_register_follow_ups(&mut record);
        }
        let follow_ups = record.follow_ups.clone();
        let inserted = self.store.insert_onboarding(record, None).await?;
        if let Some(pipeline) = &self.pipeline {
            pipeline.announce(&inserted.changes);
        }
        let onboarding_id = inserted.id;
        Ok(Reported {
            onboarding_id,
            follow_ups,
        })
    }

    /// The business token of a code-flow record, decrypted, with its expiry (unix seconds,
    /// `None` when it does not expire); `None` when the record holds none or the code flow is
    /// off.
    pub fn business_token(
        &self,
        found: &Onboarding,
    ) -> Result<Option<(Secret, Option<i64>)>, AppError> {
        let (Some(sealed), Some(flow)) = (&found.record.token, &self.code_flow) else {
            return Ok(None);
        };
        let token = flow.key.open(sealed).map_err(|e| {
            tracing::error!(error = %e, record = found.id, "a stored business token does not open");
            AppError::Internal
        })?;
        Ok(Some((
            token,
            (sealed.expires_at > 0).then_some(sealed.expires_at),
        )))
    }

    /// Follow-ups of a record: from the granted WABAs' statuses when there are any (a few
    /// reads at once, shared with the page's own identical reads), else from the event alone;
    /// with the statuses read.
    async fn follow_ups(
        &self,
        record: &OnboardingRecord,
        event: Option<&SessionMessage>,
        caller_secret: &str,
    ) -> (Vec<FollowUp>, Vec<AccountStatus>) {
        let abandoned: Option<&Abandoned> = event.and_then(|m| m.event.abandoned());
        let expect_phone = event.is_none_or(|m| m.event.expects_phone());
        let query = [("fields", STATUS_FIELDS.to_owned())];
        let reads: Vec<Result<AccountStatus, FollowUp>> =
            futures_util::stream::iter(record.granted.clone().into_iter().enumerate())
                .map(|(i, id): (usize, String)| {
                    let query = &query;
                    async move {
                        let body = match self
                            .upstream
                            .get_shared(GraphRoute::Waba, &id, query, &[caller_secret])
                            .await
                        {
                            Ok(body) => body,
                            Err(e @ AppError::SystemUserNotAssigned) => {
                                return Err(Some(follow_up(
                                    Some(id),
                                    FollowUpReason::AssignSystemUser,
                                    e.to_string(),
                                )));
                            }
                            Err(e) => {
                                tracing::warn!(error = %e, "follow-up read failed");
                                return Err(None);
                            }
                        };
                        let waba: Waba = serde_json::from_slice(&body).map_err(|_| None)?;
                        Ok(AccountStatus::new(waba, i == 0, abandoned, expect_phone))
                    }
                })
                .buffered(PARALLEL_READS)
                .filter_map(|r: Result<AccountStatus, Option<FollowUp>>| async move {
                    match r {
                        Ok(s) => Some(Ok(s)),
                        Err(f) => f.map(Err),
                    }
                })
                .collect()
                .await;
        let mut accounts = Vec::new();
        let mut out: Vec<FollowUp> = reads
            .into_iter()
            .filter_map(|r| match r {
                Ok(s) => {
                    let f = s
                        .incomplete
                        .clone()
                        .and_then(|inc| incomplete(Some(s.waba.id.to_string()), inc));
                    accounts.push(s);
                    f
                }
                Err(f) => Some(f),
            })
            .collect();
        if out.is_empty() && record.granted.is_empty() {
            // Nothing shared: what the event says is all there is.
            out.extend(
                abandoned
                    .and_then(Incomplete::from_abandoned)
                    .and_then(|inc| incomplete(None, inc)),
            );
        }
        (out, accounts)
    }
}

/// When the pipeline registers the record's numbers, a verified number waiting for its
/// registration is not a follow-up for people.
fn drop_register_follow_ups(record: &mut OnboardingRecord) {
    if record
        .steps
        .iter()
        .any(|s| s.kind == waba_graph::pipeline::StepKind::Register)
    {
        record
            .follow_ups
            .retain(|f| f.reason != FollowUpReason::RegisterPhone);
    }
}

/// The typed session event, when the page sent an Embedded Signup message.
fn typed(raw: Option<RawSessionMessage>) -> Result<Option<SessionMessage>, AppError> {
    match raw {
        None => Ok(None),
        Some(raw) => Ok(SessionMessage::from_raw(raw)?),
    }
}

/// A signup code claimed for one exchange. Kept once Meta exchanged or refused it; given back
/// otherwise, also when the request is cut off mid-exchange (its deadline, a client that
/// went away): dropping an unsettled claim gives the code back in the background.
struct Claim {
    store: Arc<dyn Store>,
    hash: [u8; 32],
    settled: bool,
}

impl Claim {
    /// Claims the code of `hash`; `None` when it was already claimed.
    async fn take(
        store: &Arc<dyn Store>,
        hash: [u8; 32],
        now: i64,
    ) -> Result<Option<Self>, AppError> {
        Ok(store.claim_code(hash, now).await?.then(|| Self {
            store: store.clone(),
            hash,
            settled: false,
        }))
    }

    /// Meta spent the code: it stays claimed.
    fn keep(mut self) {
        self.settled = true;
    }

    /// Gives the code back now, so a retry right after the answer finds it.
    async fn release(mut self) {
        self.settled = true;
        give_back(&self.store, self.hash).await;
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        let (store, hash) = (self.store.clone(), self.hash);
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { give_back(&store, hash).await });
        }
    }
}

async fn give_back(store: &Arc<dyn Store>, hash: [u8; 32]) {
    if let Err(e) = store.release_code(hash).await {
        tracing::warn!(error = %e, "a claimed signup code could not be given back");
    }
}

/// A record of `flow` with what the session event says.
fn record_of(flow: Flow, now: i64, event: Option<&SessionMessage>) -> OnboardingRecord {
    let mut r = OnboardingRecord::new(flow, now);
    let Some(msg) = event else {
        return r;
    };
    r.outcome = msg.event.outcome().into();
    r.event = Some(msg.event.name().to_owned());
    if let Some(f) = msg.event.finished() {
        r.reported_waba_id = Some(f.waba_id.to_string());
        r.phone_number_id = f.phone_number_id.as_ref().map(ToString::to_string);
        r.business_id = f.business_id.as_ref().map(ToString::to_string);
    }
    match msg.event.abandoned() {
        Some(Abandoned::AtStep { current_step }) => r.current_step = Some(current_step.clone()),
        Some(Abandoned::Reported {
            error_message,
            error_code,
            session_id,
        }) => {
            r.error_message = error_message.clone();
            r.error_id = error_code.clone();
            r.session_id = session_id.clone();
        }
        Some(Abandoned::Unspecified) | None => {}
    }
    r
}

/// The follow-up of what is incomplete about `waba_id` (or the whole signup); `None` for a
/// reason this version does not act on.
fn incomplete(waba_id: Option<String>, inc: Incomplete) -> Option<FollowUp> {
    let Some(reason) = FollowUpReason::parse(&inc.reason) else {
        tracing::warn!(reason = %inc.reason, "an incomplete onboarding of a kind this version does not record");
        return None;
    };
    Some(follow_up(waba_id, reason, inc.message))
}

fn follow_up(waba_id: Option<String>, reason: FollowUpReason, message: String) -> FollowUp {
    FollowUp {
        waba_id,
        action: action_for(reason).to_owned(),
        reason,
        message,
    }
}

/// What the partner should do about an incomplete onboarding, by reason.
pub fn action_for(reason: FollowUpReason) -> &'static str {
    match reason {
        FollowUpReason::LeftAtStep => {
            "Invite the business to finish Embedded Signup from your signup page."
        }
        FollowUpReason::ReportedError => {
            "Contact the business; if the error persists, give Meta support the error code and session id."
        }
        FollowUpReason::CertificateNotReady => {
            "Ask the business to verify its phone number (the code Meta sends by SMS or call) in Embedded Signup or WhatsApp Manager."
        }
        FollowUpReason::RegisterPhone => {
            "Register the number for Cloud API: POST /{phone-number-id}/register with messaging_product whatsapp and a six-digit two-step verification PIN."
        }
        FollowUpReason::AssignSystemUser => {
            "Assign your System User to the WABA: POST /{waba-id}/assigned_users?user=<SYSTEM_USER_ID>&tasks=['MANAGE'] with an admin System User token; check the app has Advanced access to whatsapp_business_management."
        }
        FollowUpReason::NoPhoneNumber => {
            "Ask the business to add a phone number to its WhatsApp Business account."
        }
        FollowUpReason::CodeRejected => {
            "Ask the business to click the signup button again: the code expired or was already used."
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn graph_expires_in_is_clamped_and_never_overflows() {
        let now = 1_764_000_000;
        let at = |v: serde_json::Value| token_expiry(now, Some(&v));
        assert_eq!(at(json!(3600)), now + 3600);
        assert_eq!(at(json!("5184000")), now + 5_184_000);
        assert_eq!(at(json!(0)), 0);
        assert_eq!(at(json!(-5)), 0);
        assert_eq!(at(json!(null)), 0);
        assert_eq!(at(json!("soon")), 0);
        assert_eq!(token_expiry(now, None), 0);
        let longest = now + MAX_TOKEN_LIFETIME_SECS;
        assert_eq!(at(json!(i64::MAX)), longest);
        assert_eq!(at(json!(u64::MAX)), longest);
        assert_eq!(at(json!(1e300)), longest);
        assert_eq!(at(json!("99999999999999999999999")), longest);
        assert_eq!(at(json!(86_400.5)), now + 86_400);
        assert_eq!(token_expiry(i64::MAX, Some(&json!(60))), i64::MAX);
    }
}
