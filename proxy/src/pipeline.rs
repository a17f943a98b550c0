//! The partner's post-signup steps, run durably in the background.
//!
//! Every onboarding gets its steps from `waba_graph::pipeline` (subscribe the app to the
//! WABA's webhooks, assign the System User, share the credit line, register each number
//! with a two-step verification PIN, sync a coexistence number). They are stored with the
//! record in one transaction and run by [`Pipeline::spawn`]'s runner: it claims one due step
//! at a time under a lease (a runner that dies leaves a step another claims once the lease
//! expires), makes its Graph call with the token Meta documents for it, and settles it with
//! the write's audit record in one transaction. Every change of state is a status change on
//! the live stream.
//!
//! Exactly once in effect: a register or deregister is never repeated blindly; the number's
//! status is read first (a number already `CONNECTED` is done), and each attempt is counted
//! in the store before it is made, within `--register-max-attempts` of Meta's 10 per 72 hours.
//! The credit line is shared once: a retry first reads the WABA's `primary_funding_id`.
//! PINs are generated from the operating system's CSPRNG, sealed like business tokens before
//! the call uses them, and shown only by the admin API.

use crate::config::PipelineConfig;
use crate::error::AppError;
use crate::live::StatusHub;
use crate::sealing::TokenKey;
use crate::store::{
    Discovery, GraphWrite, NewStep, Offboard, OnboardingRecord, SealedPin, Step, StepKind,
    StepOutcome, StepState, Store, StoredChange, TokenKind,
};
use crate::upstream::{Bearer, GraphRoute, Upstream, Write};
use axum::http::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use waba_graph::pipeline::{
    self as plan, META_REGISTER_LIMIT, REGISTER_WINDOW_SECS, SYNC_WINDOW_SECS,
};
use waba_graph::status::{AccountStatus, Actor};
use waba_graph::{PhoneNumber, Secret};

/// Steps run at once.
const PARALLEL_STEPS: usize = 4;
/// Attempts after transient failures before a step waits for someone.
const MAX_TRANSIENT_ATTEMPTS: u32 = 12;
/// Longest answer kept in the audit trail.
const MAX_AUDIT_ANSWER: usize = 2048;
/// `next_at` of a failed step that waits for the admin's retry.
const NEVER: i64 = i64::MAX;
/// How long after the signup Meta lets the partner register its number (14 days)
/// (<https://developers.facebook.com/documentation/business-messaging/whatsapp/solution-providers/manage-phone-numbers/>).
const REGISTER_DEADLINE_SECS: i64 = 14 * 86_400;
/// The session event of a WhatsApp Business app (coexistence) signup, as records keep it.
const COEXISTENCE_EVENT: &str = "FINISH_WHATSAPP_BUSINESS_APP_ONBOARDING";
/// Pages of a WABA's numbers read at most (100 a page).
const MAX_PHONE_PAGES: usize = 20;
/// Meta's answer to a sync requested again (the first request went through), as a copy of
/// Meta's error-code table lists it; docs/meta.md says where it comes from.
const SYNC_ALREADY_REQUESTED: i64 = 2_593_107;
/// The fields read from a number before it is registered.
const PHONE_CHECK_FIELDS: &str = "id,display_phone_number,status,code_verification_status";

/// The pipeline: planning, the runner, and the admin's actions on steps.
pub struct Pipeline {
    store: Arc<dyn Store>,
    upstream: Upstream,
    hub: Arc<StatusHub>,
    config: PipelineConfig,
    /// Seals PINs and opens business tokens (the code flow's key).
    key: Option<TokenKey>,
    wake: Notify,
    lease_secs: i64,
    /// The steps of a WABA found without a signup.
    discovery: Discovery,
}

/// What the admin's retry did.
#[derive(Debug)]
pub enum RetryError {
    /// No such step.
    NotFound,
    /// The step is neither failed nor stopped.
    NotRetryable(StepState),
    /// Meta ended the partnership, or the partner offboarded: nothing may run for it.
    Revoked,
    /// The store failed.
    Store(AppError),
}

impl Pipeline {
    /// A pipeline over `store`, calling Graph through `upstream`, announcing on `hub`. The
    /// lease covers two full request times, so a live runner never loses its step.
    pub fn new(
        store: Arc<dyn Store>,
        upstream: Upstream,
        hub: Arc<StatusHub>,
        config: PipelineConfig,
        key: Option<TokenKey>,
        request_timeout: Duration,
    ) -> Self {
        // Planned once: the same for every share found without a signup.
        let discovery = Discovery {
            steps: new_steps(
                plan::plan_waba(&config.plan, "", None, false),
                &[],
                false,
                config.discovery_grace.as_secs() as i64,
            ),
        };
        Self {
            store,
            upstream,
            hub,
            config,
            key,
            discovery,
            wake: Notify::new(),
            lease_secs: 2 * request_timeout.as_secs().max(1) as i64 + 5,
        }
    }

    /// The steps of a signup granted `granted`, whose WABAs were read as `accounts`: per
    /// WABA, then per number (a WABA whose read failed looks its numbers up later).
    /// `coexistence` for a WhatsApp Business app onboarding; `business_token` when the code
    /// flow kept one.
    pub fn plan_signup(
        &self,
        granted: &[String],
        accounts: &[AccountStatus],
        coexistence: bool,
        business_token: bool,
        now: i64,
    ) -> Vec<NewStep> {
        let unread = granted
            .iter()
            .filter(|w| !accounts.iter().any(|a| a.waba.id.as_str() == w.as_str()))
            .flat_map(|w| {
                let planned = plan::plan_waba(&self.config.plan, w, None, coexistence);
                new_steps(planned, &[], business_token, now)
            });
        accounts
            .iter()
            .flat_map(|a| {
                let phones: Vec<PhoneNumber> = a.phones.iter().map(|p| p.phone.clone()).collect();
                new_steps(
                    plan::plan_waba(
                        &self.config.plan,
                        a.waba.id.as_str(),
                        Some(&phones),
                        coexistence,
                    ),
                    &phones,
                    business_token,
                    now,
                )
            })
            .chain(unread)
            .collect()
    }

    /// The steps of a WABA shared with no browser session (Meta's `PARTNER_ADDED` webhook,
    /// or the tracker), which the store plans in the transaction that records the share:
    /// what the System User can run, after the grace a business's own signup has to take
    /// them over.
    pub fn discovery(&self) -> Discovery {
        self.discovery.clone()
    }

    /// Wakes the runner (steps were stored and announced elsewhere).
    pub fn wake(&self) {
        self.wake.notify_one();
    }

    /// Tells open streams about step changes and wakes the runner.
    pub fn announce(&self, changes: &[StoredChange]) {
        if changes.is_empty() {
            return;
        }
        self.hub.wake();
        self.wake.notify_one();
    }

    /// Makes a failed (or stopped) step pending at once.
    pub async fn retry(&self, step_id: i64) -> Result<Step, RetryError> {
        use crate::store::Retry;
        match self
            .store
            .retry_step(step_id, crate::clock::now())
            .await
            .map_err(|e| RetryError::Store(e.into()))?
        {
            Retry::NotFound => Err(RetryError::NotFound),
            Retry::NotRetryable(state) => Err(RetryError::NotRetryable(state)),
            Retry::Revoked => Err(RetryError::Revoked),
            Retry::Retried(change) => {
                self.announce(std::slice::from_ref(&change));
                let list = self
                    .store
                    .steps_of(step_onboarding(&change).unwrap_or_default())
                    .await
                    .map_err(|e| RetryError::Store(e.into()))?;
                list.into_iter()
                    .find(|s| s.id == step_id)
                    .ok_or(RetryError::NotFound)
            }
        }
    }

    /// Offboards an onboarding: its steps stop, and the app is unsubscribed from its WABAs
    /// and its registered numbers deregistered, as durable steps. `None` without the record;
    /// 409 when Meta already ended the partnership (nothing can be called for it).
    pub async fn offboard(&self, onboarding_id: i64) -> Result<Option<Vec<Step>>, AppError> {
        let changes = match self
            .store
            .offboard(onboarding_id, crate::clock::now())
            .await?
        {
            Offboard::NotFound => return Ok(None),
            Offboard::Revoked => {
                return Err(AppError::Conflict(
                    "the business already ended the partnership: there is nothing to offboard",
                ));
            }
            Offboard::Started(changes) => changes,
        };
        self.announce(&changes);
        Ok(Some(self.store.steps_of(onboarding_id).await?))
    }

    /// Sets the PIN of a number (the business's existing two-step verification PIN, which
    /// Meta requires when one is set).
    pub async fn set_pin(&self, phone_id: &str, pin: &str) -> Result<(), AppError> {
        if !plan::is_pin(pin) {
            return Err(AppError::BadRequest("a PIN is six digits"));
        }
        let key = self.key.as_ref().ok_or(AppError::CodeFlowOff)?;
        let sealed = key
            .seal(&Secret::new(pin), 0)
            .map_err(|_| AppError::Internal)?;
        self.store
            .put_pin(SealedPin {
                phone_id: phone_id.to_owned(),
                sealed,
                set_by_partner: true,
            })
            .await?;
        Ok(())
    }

    /// The PINs of an onboarding's numbers, opened (admin API only).
    pub async fn pins_of(&self, onboarding_id: i64) -> Result<Vec<(String, Secret)>, AppError> {
        let Some(key) = &self.key else {
            return Ok(Vec::new());
        };
        let pins = self.store.pins_of(onboarding_id).await?;
        pins.into_iter()
            .map(|p| {
                key.open(&p.sealed)
                    .map(|pin| (p.phone_id, pin))
                    .map_err(|_| AppError::Internal)
            })
            .collect()
    }

    /// Runs due steps now and whenever woken, at least every `--pipeline-interval-ms`.
    pub fn spawn(self: &Arc<Self>) {
        let me = self.clone();
        tokio::spawn(async move {
            loop {
                me.run_due().await;
                tokio::select! {
                    () = me.wake.notified() => {}
                    () = tokio::time::sleep(me.config.interval) => {}
                }
            }
        });
    }

    /// Claims and runs due steps until none is left, a few at once.
    pub async fn run_due(self: &Arc<Self>) {
        let mut running = tokio::task::JoinSet::new();
        loop {
            while running.len() < PARALLEL_STEPS {
                match self
                    .store
                    .claim_step(crate::clock::now(), self.lease_secs)
                    .await
                {
                    Ok(Some(step)) => {
                        let me = self.clone();
                        // No person waits on a step: its calls give way when Meta says an
                        // account's budget runs low.
                        running.spawn(crate::upstream::usage::BACKGROUND.scope((), async move {
                            me.run(step).await;
                        }));
                    }
                    Ok(None) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "the pipeline could not claim a step");
                        break;
                    }
                }
            }
            if running.join_next().await.is_none() {
                return;
            }
        }
    }

    /// Runs one claimed step and settles it.
    async fn run(&self, step: Step) {
        // The step's onboarding, read once: its business token, its time and its event.
        let record = match self.store.onboarding(step.onboarding_id).await {
            Ok(found) => found.map(|o| o.record),
            Err(e) => {
                tracing::warn!(error = %e, step = step.id, "a step's onboarding could not be read");
                None
            }
        };
        let token = self.business_token(&step, record.as_ref());
        let (mut outcome, write, found) =
            self.execute(&step, token.as_ref(), record.as_ref()).await;
        outcome.token = if token.is_some() {
            TokenKind::Business
        } else {
            TokenKind::SystemUser
        };
        let now = crate::clock::now();
        // Later reads must show what the step changed (a registered number, a System User
        // that may now read the WABA, a funding source).
        let changes_reads = outcome.state == StepState::Done
            && matches!(
                step.kind,
                StepKind::Register
                    | StepKind::Deregister
                    | StepKind::AssignSystemUser
                    | StepKind::ShareCreditLine
            );
        let changes = match self
            .store
            .settle_step(step.clone(), outcome, write, found.unwrap_or_default(), now)
            .await
        {
            Ok(changes) => changes,
            Err(e) => {
                tracing::warn!(error = %e, step = step.id, "a step could not be settled");
                Vec::new()
            }
        };
        if changes_reads {
            self.upstream.forget(&step.waba_id);
        }
        metrics::counter!("waba_pipeline_steps_total", "kind" => step.kind.as_str(),
            "state" => changes.last().and_then(|c| c.change.value.clone()).unwrap_or_default())
        .increment(1);
        self.announce(&changes);
    }

    /// The business token of the step's onboarding `record`, when the step uses it and it is
    /// kept and not expired; else the step uses the System User token, and its record says so.
    fn business_token(&self, step: &Step, record: Option<&OnboardingRecord>) -> Option<Secret> {
        // Chosen by the step's kind, not by the token it used last (a fallback once must not
        // stick).
        if step.kind.token(true) != TokenKind::Business {
            return None;
        }
        let key = self.key.as_ref()?;
        let sealed = record?.token.as_ref()?;
        if sealed.expires_at > 0 && sealed.expires_at <= crate::clock::now() {
            return None;
        }
        key.open(sealed)
            .inspect_err(|_| {
                tracing::error!(step = step.id, "a stored business token does not open");
            })
            .ok()
    }

    /// Makes the step's calls: how it ended, the audited write, and numbers found.
    async fn execute(
        &self,
        step: &Step,
        token: Option<&Secret>,
        record: Option<&OnboardingRecord>,
    ) -> (StepOutcome, Option<GraphWrite>, Option<Vec<NewStep>>) {
        let now = crate::clock::now();
        let used = if token.is_some() {
            TokenKind::Business
        } else {
            TokenKind::SystemUser
        };
        let call = Call {
            step,
            token,
            record,
            used,
            now,
        };
        let phone = step.phone_id.clone().unwrap_or_default();
        let waba = step.waba_id.clone();
        match step.kind {
            StepKind::Subscribe => self.subscribe(&call).await,
            StepKind::Unsubscribe => {
                self.write(
                    &call,
                    Write {
                        route: GraphRoute::SubscribedApps,
                        method: Method::DELETE,
                        path: format!("{waba}/subscribed_apps"),
                        query: Vec::new(),
                        body: None,
                    },
                    &[],
                )
                .await
            }
            StepKind::AssignSystemUser => {
                let Some(user) = &self.config.system_user_id else {
                    return skipped("no --system-user-id is configured");
                };
                let query = [
                    ("user", user.to_string()),
                    ("tasks", "['MANAGE']".to_owned()),
                ];
                let (mut outcome, write, _) = self
                    .write(
                        &call,
                        Write {
                            route: GraphRoute::AssignedUsers,
                            method: Method::POST,
                            path: format!("{waba}/assigned_users"),
                            query: query.to_vec(),
                            body: None,
                        },
                        &[],
                    )
                    .await;
                if outcome
                    .error
                    .as_deref()
                    .is_some_and(|e| e.contains("already assigned"))
                {
                    outcome = done("the System User was already assigned");
                }
                (outcome, write, None)
            }
            StepKind::ShareCreditLine => self.share_credit_line(&call).await,
            StepKind::FindPhones => self.find_phones(&call).await,
            StepKind::Register => self.register(&call, &phone).await,
            StepKind::Deregister => {
                if let Some(spent) = self.spend_attempt(step, "deregister", &phone, now).await {
                    return spent;
                }
                let (outcome, write, _) = self
                    .write(
                        &call,
                        Write {
                            route: GraphRoute::Deregister,
                            method: Method::POST,
                            path: format!("{phone}/deregister"),
                            query: Vec::new(),
                            body: None,
                        },
                        &[],
                    )
                    .await;
                let outcome = if outcome.error_code == Some(133010) {
                    done("the number was not registered")
                } else {
                    outcome
                };
                (outcome, write, None)
            }
            StepKind::SyncContacts | StepKind::SyncHistory => self.sync(&call, &phone).await,
        }
    }

    /// `POST /{waba-id}/subscribed_apps`. With an alternate callback URL the app subscribes
    /// first and then sets the override, which Meta accepts only on a subscribed app; the
    /// override fields go with the second call, since a subscription without them removes
    /// an override
    /// (<https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/override/>).
    async fn subscribe(
        &self,
        call: &Call<'_>,
    ) -> (StepOutcome, Option<GraphWrite>, Option<Vec<NewStep>>) {
        let subscription = |body: Option<Value>| Write {
            route: GraphRoute::SubscribedApps,
            method: Method::POST,
            path: format!("{}/subscribed_apps", call.step.waba_id),
            query: Vec::new(),
            body,
        };
        let Some((uri, verify)) = &self.config.override_callback else {
            return self.write(call, subscription(None), &[]).await;
        };
        let (outcome, write, _) = self.write(call, subscription(None), &[]).await;
        if outcome.state != StepState::Done {
            return (outcome, write, None);
        }
        if let Some(w) = write
            && let Err(e) = self.store.record_write(w).await
        {
            tracing::warn!(error = %e, "a Graph write could not be audited");
        }
        let body = json!({"override_callback_uri": uri, "verify_token": verify.expose()});
        self.write(call, subscription(Some(body)), &[verify.expose()])
            .await
    }

    /// `POST /{credit-line-id}/whatsapp_credit_sharing_and_attach` (System User), once: a
    /// retry first reads the WABA's `primary_funding_id`
    /// (<https://developers.facebook.com/documentation/business-messaging/whatsapp/solution-providers/share-and-revoke-credit-lines/>).
    async fn share_credit_line(
        &self,
        call: &Call<'_>,
    ) -> (StepOutcome, Option<GraphWrite>, Option<Vec<NewStep>>) {
        let Some((line, currency)) = &self.config.credit_line else {
            return skipped("no --credit-line-id is configured");
        };
        let waba = &call.step.waba_id;
        // Shared once: a WABA that already has a funding source (a share that went through
        // before a crash, or another onboarding's) is not shared again.
        {
            let query = [("fields", "id,primary_funding_id".to_owned())];
            match self.upstream.get(GraphRoute::Waba, waba, &query, &[]).await {
                Ok(body) => {
                    let funding = serde_json::from_slice::<Value>(&body)
                        .ok()
                        .and_then(|v| match v.get("primary_funding_id")? {
                            Value::String(s) if !s.is_empty() => Some(s.clone()),
                            Value::Number(n) => Some(n.to_string()),
                            _ => None,
                        });
                    if let Some(id) = funding {
                        // Said, not hidden: it may be the business's own payment method.
                        let message = format!(
                            "the WABA already has a funding source (primary_funding_id {id})"
                        );
                        return (done(&message), None, None);
                    }
                }
                Err(e) => return (self.failure(call.step, &e), None, None),
            }
        }
        let query = [
            ("waba_currency", currency.clone()),
            ("waba_id", waba.clone()),
        ];
        let call = Call {
            used: TokenKind::SystemUser,
            token: None,
            ..*call
        };
        self.write(
            &call,
            Write {
                route: GraphRoute::CreditSharing,
                method: Method::POST,
                path: format!("{line}/whatsapp_credit_sharing_and_attach"),
                query: query.to_vec(),
                body: None,
            },
            &[],
        )
        .await
    }

    /// `GET /{waba-id}/phone_numbers`: plans the steps of a discovered WABA's numbers.
    async fn find_phones(
        &self,
        call: &Call<'_>,
    ) -> (StepOutcome, Option<GraphWrite>, Option<Vec<NewStep>>) {
        let (step, now) = (call.step, call.now);
        let path = format!("{}/phone_numbers", step.waba_id);
        let mut numbers: Vec<PhoneNumber> = Vec::new();
        let mut after: Option<String> = None;
        // Every page (Meta's pages may be short while more follow), within reason.
        for _ in 0..MAX_PHONE_PAGES {
            let mut query = vec![
                ("fields", PHONE_CHECK_FIELDS.to_owned()),
                ("limit", "100".to_owned()),
            ];
            query.extend(after.take().map(|a| ("after", a)));
            let body = match self
                .upstream
                .get(GraphRoute::PhoneNumbers, &path, &query, &[])
                .await
            {
                Ok(b) => b,
                Err(e) => return (self.failure(step, &e), None, None),
            };
            let Ok(page) = serde_json::from_slice::<waba_graph::Page<PhoneNumber>>(&body) else {
                return (
                    failed(
                        Actor::Meta,
                        "Meta's list of numbers could not be read.",
                        None,
                        now + plan::backoff_secs(step.attempts),
                    ),
                    None,
                    None,
                );
            };
            let next = page
                .has_next()
                .then(|| page.paging.as_ref()?.cursors.as_ref()?.after.clone())
                .flatten();
            numbers.extend(page.data);
            match next {
                Some(cursor) => after = Some(cursor),
                None => break,
            }
        }
        // A WhatsApp Business app signup's numbers are synced, not registered.
        let coexistence = match call.record() {
            Ok(r) => r.event.as_deref() == Some(COEXISTENCE_EVENT),
            Err(wait) => return (wait, None, None),
        };
        let planned: Vec<plan::PlannedStep> = numbers
            .iter()
            .flat_map(|p| plan::plan_phone(&self.config.plan, &step.waba_id, p, coexistence))
            .collect();
        let steps = new_steps(planned, &numbers, false, now);
        (
            done(&format!("{} number(s) found", numbers.len())),
            None,
            Some(steps),
        )
    }

    /// Registers a number: its status read first (done when already `CONNECTED`; waits for
    /// the business while it is not verified), the attempt counted before it is made, the
    /// PIN sealed before it is used.
    async fn register(
        &self,
        call: &Call<'_>,
        phone: &str,
    ) -> (StepOutcome, Option<GraphWrite>, Option<Vec<NewStep>>) {
        let step = call.step;
        // Meta: a number is registered within 14 days of the signup, or the business signs
        // up again; past that the pipeline stops looking.
        if let Err(late) = call.within(
            REGISTER_DEADLINE_SECS,
            "Meta's 14 days to register the number after the signup have passed: the business \
             goes through Embedded Signup again.",
        ) {
            return (late, None, None);
        }
        let query = [("fields", PHONE_CHECK_FIELDS.to_owned())];
        let scrub: Vec<&str> = call.token.map(Secret::expose).into_iter().collect();
        let number = match self
            .upstream
            .get_as(GraphRoute::Phone, phone, &query, call.bearer(), &scrub)
            .await
        {
            Ok(body) => serde_json::from_slice::<PhoneNumber>(&body).ok(),
            Err(e) if e.is_throttling() || transient(&e) => {
                return (self.failure(step, &e), None, None);
            }
            // A first attempt may go without the look (Meta's register answer says the rest);
            // a retry never registers blindly: an earlier attempt may have gone through.
            Err(e) if step.attempts > 1 => {
                return (
                    failed(
                        Actor::Partner,
                        "The number's status could not be read before retrying its \
                         registration; retry once Meta answers the read.",
                        Some(&e),
                        NEVER,
                    ),
                    None,
                    None,
                );
            }
            Err(_) => None,
        };
        if let Some(n) = &number {
            if n.status.as_deref() == Some("CONNECTED") {
                return (done("the number is registered (CONNECTED)"), None, None);
            }
            if n.code_verification_status
                .as_deref()
                .is_some_and(|s| s != "VERIFIED")
            {
                let v = plan::judge(StepKind::Register, 133006, None);
                return (
                    failed(
                        v.actor,
                        &v.message,
                        None,
                        call.now + v.retry_after.unwrap_or(900),
                    ),
                    None,
                    None,
                );
            }
        }
        // Nothing that can stop the call comes after the attempt is counted: the PIN first,
        // the throttle gate next.
        let pin = match self.pin_for(phone).await {
            Ok(pin) => pin,
            Err(message) => {
                return (failed(Actor::Partner, message, None, NEVER), None, None);
            }
        };
        let path = format!("{phone}/register");
        if let Some(wait) = self.upstream.gate_closed_for(GraphRoute::Register, &path) {
            return (pending(call.now + wait as i64), None, None);
        }
        if let Some(spent) = self.spend_attempt(step, "register", phone, call.now).await {
            return spent;
        }
        // Meta's body, with the PIN (https://developers.facebook.com/documentation/business-messaging/whatsapp/business-phone-numbers/registration/).
        let body = json!({"messaging_product": "whatsapp", "pin": pin.expose()});
        self.write(
            call,
            Write {
                route: GraphRoute::Register,
                method: Method::POST,
                path,
                query: Vec::new(),
                body: Some(body),
            },
            &[pin.expose()],
        )
        .await
    }

    /// Counts a register or deregister attempt; the outcome when the allowance is spent.
    async fn spend_attempt(
        &self,
        step: &Step,
        what: &str,
        phone: &str,
        now: i64,
    ) -> Option<(StepOutcome, Option<GraphWrite>, Option<Vec<NewStep>>)> {
        // The admin's retry may use what Meta allows; the pipeline alone only its share.
        let limit = if step.by_admin {
            META_REGISTER_LIMIT
        } else {
            self.config.register_max_attempts.min(META_REGISTER_LIMIT)
        };
        match self
            .store
            .take_register_attempt(format!("{what}:{phone}"), now, REGISTER_WINDOW_SECS, limit)
            .await
        {
            Ok(true) => None,
            Ok(false) => Some((
                failed(
                    Actor::Partner,
                    &format!(
                        "The proxy made its {limit} automatic {what} attempt(s) for this number \
                         in Meta's 72-hour window; it waits for someone to look and retry."
                    ),
                    None,
                    NEVER,
                ),
                None,
                None,
            )),
            Err(e) => {
                tracing::warn!(error = %e, step = step.id, "a register attempt could not be counted");
                Some((pending(now + plan::backoff_secs(step.attempts)), None, None))
            }
        }
    }

    /// The number's PIN: the stored one, or a new one from the CSPRNG, stored sealed first.
    async fn pin_for(&self, phone: &str) -> Result<Secret, &'static str> {
        let key = self
            .key
            .as_ref()
            .ok_or("No token key is configured to keep the number's PIN sealed.")?;
        // A store failure is not "no PIN": a new one would replace the business's own.
        match self.store.pin(phone.to_owned()).await {
            Ok(Some(found)) => {
                return key
                    .open(&found.sealed)
                    .map_err(|_| "The stored PIN does not open with the token key.");
            }
            Ok(None) => {}
            Err(_) => return Err("The number's PIN could not be read from the database."),
        }
        let pin = Secret::new(new_pin().ok_or("The system's random source failed.")?);
        let sealed = key
            .seal(&pin, 0)
            .map_err(|_| "The PIN could not be sealed.")?;
        // Kept only if the admin did not set the business's PIN meanwhile.
        let kept = self
            .store
            .keep_pin(SealedPin {
                phone_id: phone.to_owned(),
                sealed,
                set_by_partner: false,
            })
            .await
            .map_err(|_| "The PIN could not be stored.")?;
        key.open(&kept.sealed)
            .map_err(|_| "The stored PIN does not open with the token key.")
    }

    /// `POST /{phone-number-id}/smb_app_data`: contacts (`smb_app_state_sync`), then history,
    /// within 24 hours of the onboarding
    /// (<https://developers.facebook.com/documentation/business-messaging/whatsapp/embedded-signup/onboarding-business-app-users>).
    async fn sync(
        &self,
        call: &Call<'_>,
        phone: &str,
    ) -> (StepOutcome, Option<GraphWrite>, Option<Vec<NewStep>>) {
        let step = call.step;
        if let Err(late) = call.within(
            SYNC_WINDOW_SECS,
            "Meta's 24 hours for the contacts and history sync have passed: the business must \
             onboard its WhatsApp Business app again to share them.",
        ) {
            return (late, None, None);
        }
        if step.kind == StepKind::SyncHistory {
            // Meta's order: the contacts first, then the history.
            let contacts = self
                .store
                .steps_of(step.onboarding_id)
                .await
                .ok()
                .and_then(|all| {
                    all.into_iter()
                        .find(|s| s.kind == StepKind::SyncContacts && s.phone_id == step.phone_id)
                })
                .map(|s| s.state);
            match contacts {
                Some(StepState::Done) | None => {}
                Some(StepState::Failed | StepState::Skipped) => {
                    return (
                        failed(
                            Actor::Partner,
                            "The history sync follows the contacts sync, which did not happen: \
                             retry the contacts sync first.",
                            None,
                            NEVER,
                        ),
                        None,
                        None,
                    );
                }
                Some(_) => return (pending(call.now + 5), None, None),
            }
        }
        let sync_type = if step.kind == StepKind::SyncContacts {
            "smb_app_state_sync"
        } else {
            "history"
        };
        let body = json!({"messaging_product": "whatsapp", "sync_type": sync_type});
        let (outcome, write, _) = self
            .write(
                call,
                Write {
                    route: GraphRoute::SmbAppData,
                    method: Method::POST,
                    path: format!("{phone}/smb_app_data"),
                    query: Vec::new(),
                    body: Some(body),
                },
                &[],
            )
            .await;
        // Requested once only: Meta refusing a second request means an earlier attempt (cut
        // off before it was recorded) went through.
        let outcome = if outcome.error_code == Some(SYNC_ALREADY_REQUESTED) {
            done("Meta already had this sync request")
        } else {
            outcome
        };
        (outcome, write, None)
    }

    /// One audited write and how the step ends by its answer.
    async fn write(
        &self,
        call: &Call<'_>,
        write: Write<'_>,
        secrets: &[&str],
    ) -> (StepOutcome, Option<GraphWrite>, Option<Vec<NewStep>>) {
        // The step must still be this runner's: a write is never made by two runners.
        if !self
            .store
            .fence(call.step.clone(), crate::clock::now(), self.lease_secs)
            .await
            .unwrap_or(false)
        {
            tracing::info!(
                step = call.step.id,
                "a step was taken over before its write"
            );
            return (pending(call.now), None, None);
        }
        let bearer = call.bearer();
        let mut scrub: Vec<&str> = secrets.to_vec();
        scrub.extend(call.token.map(Secret::expose));
        let result = self.upstream.write(&write, bearer, &scrub).await;
        let (status, answer, outcome) = match &result {
            Ok(body) => {
                let text = String::from_utf8_lossy(body);
                (200, text.into_owned(), done(""))
            }
            Err(e) => {
                let status = match e {
                    AppError::Graph { status, .. } => status.as_u16(),
                    _ => 0,
                };
                let g = e.graph_error();
                (
                    status,
                    format!("(#{}) {}", g.code, g.message),
                    self.failure(call.step, e),
                )
            }
        };
        // Gate refusals never reached Graph: nothing to audit.
        let reached = !matches!(
            result,
            Err(AppError::UpstreamThrottled { .. } | AppError::UsageHold { .. })
        );
        let write = reached.then(|| GraphWrite {
            id: 0,
            at: call.now,
            step_id: call.step.id,
            onboarding_id: call.step.onboarding_id,
            method: write.method.as_str().to_owned(),
            path: write.path.clone(),
            token: call.used,
            status,
            answer: truncate(&self.upstream.scrub(&answer, &scrub), MAX_AUDIT_ANSWER),
        });
        (outcome, write, None)
    }

    /// How a step ends after `e`: throttling and transient failures wait and retry (up to
    /// [`MAX_TRANSIENT_ATTEMPTS`]); Meta's refusals as `waba_graph::pipeline::judge` reads them.
    fn failure(&self, step: &Step, e: &AppError) -> StepOutcome {
        let now = crate::clock::now();
        let wait = |secs: u64| now + (secs as i64).max(plan::backoff_secs(step.attempts));
        // Held back before reaching Meta (the account's budget is nearly spent): not a
        // failure, the step waits for the hold.
        if let AppError::UsageHold { retry_after } = e {
            return waiting(now + i64::try_from(*retry_after).unwrap_or(i64::MAX), e);
        }
        if e.is_throttling() || transient(e) {
            if step.failures + 1 >= MAX_TRANSIENT_ATTEMPTS {
                return failed(
                    Actor::Meta,
                    "Meta kept failing or limiting this call; it waits for someone to retry.",
                    Some(e),
                    NEVER,
                );
            }
            let retry_after = match e {
                AppError::UpstreamThrottled { retry_after } => *retry_after,
                AppError::Graph {
                    retry_after: Some(s),
                    ..
                } => *s,
                // The retry budget shared with the reads is spent: Graph is failing for
                // everyone, so the step waits a minute more.
                _ if !self.upstream.take_retry() => 60,
                _ => 0,
            };
            let mut out = waiting(wait(retry_after), e);
            out.transient = true;
            return out;
        }
        let g = e.graph_error();
        let verdict = match e {
            AppError::Graph { .. } => plan::judge(step.kind, g.code, g.error_subcode),
            AppError::SystemUserNotAssigned => plan::judge(step.kind, 200, None),
            _ => plan::Verdict {
                actor: Actor::Partner,
                retry_after: None,
                message: e.to_string(),
            },
        };
        failed(
            verdict.actor,
            &verdict.message,
            Some(e),
            verdict.retry_after.map_or(NEVER, |s| now + s),
        )
    }
}

/// One step's call: the step, its onboarding, the token and when.
#[derive(Clone, Copy)]
struct Call<'a> {
    step: &'a Step,
    token: Option<&'a Secret>,
    /// The step's onboarding record (`None` when the store could not give it).
    record: Option<&'a OnboardingRecord>,
    used: TokenKind,
    now: i64,
}

impl<'a> Call<'a> {
    /// The step's onboarding record; the outcome to settle with (try again soon) when the
    /// store could not give it.
    fn record(&self) -> Result<&'a OnboardingRecord, StepOutcome> {
        self.record
            .ok_or_else(|| pending(self.now + plan::backoff_secs(self.step.attempts)))
    }

    /// Ok while the onboarding is younger than Meta's `window` (seconds) for the step; past
    /// it, the step fails for the business with `late`.
    fn within(&self, window: i64, late: &str) -> Result<(), StepOutcome> {
        if self.now > self.record()?.created_at + window {
            return Err(failed(Actor::Business, late, None, NEVER));
        }
        Ok(())
    }

    /// Who the step's calls are made as.
    fn bearer(&self) -> Bearer<'_> {
        match self.token {
            Some(t) => Bearer::Business(t),
            None => Bearer::SystemUser,
        }
    }
}

/// The steps to store for `planned`, each with its token and its number's display label.
fn new_steps(
    planned: Vec<plan::PlannedStep>,
    phones: &[PhoneNumber],
    business_token: bool,
    not_before: i64,
) -> Vec<NewStep> {
    planned
        .into_iter()
        .map(|p| NewStep {
            token: p.kind.token(business_token),
            phone_label: p.phone_id.as_deref().and_then(|id| {
                phones
                    .iter()
                    .find(|x| x.id.as_str() == id)
                    .and_then(|x| x.display_phone_number.clone())
            }),
            kind: p.kind,
            waba_id: p.waba_id,
            phone_id: p.phone_id,
            state: p.state,
            message: p.reason,
            not_before,
        })
        .collect()
}

fn transient(e: &AppError) -> bool {
    match e {
        AppError::UpstreamUnavailable | AppError::UpstreamTimeout | AppError::Overloaded => true,
        AppError::Graph { error, .. } => error.is_retryable(),
        _ => false,
    }
}

fn done(message: &str) -> StepOutcome {
    StepOutcome {
        state: StepState::Done,
        actor: None,
        message: (!message.is_empty()).then(|| message.to_owned()),
        error_code: None,
        error: None,
        next_at: 0,
        // The runner sets the token the step used.
        token: TokenKind::SystemUser,
        transient: false,
    }
}

/// Pending until `next_at`, saying what `e` held it back with.
fn waiting(next_at: i64, e: &AppError) -> StepOutcome {
    let g = e.graph_error();
    let mut out = pending(next_at);
    out.error_code = g.code.into();
    out.error = Some(g.message);
    out
}

fn pending(next_at: i64) -> StepOutcome {
    StepOutcome {
        state: StepState::Pending,
        actor: Some(Actor::Partner.as_str().to_owned()),
        message: None,
        error_code: None,
        error: None,
        next_at,
        token: TokenKind::SystemUser,
        transient: false,
    }
}

fn failed(actor: Actor, message: &str, error: Option<&AppError>, next_at: i64) -> StepOutcome {
    let g = error.map(AppError::graph_error);
    StepOutcome {
        state: StepState::Failed,
        actor: Some(actor.as_str().to_owned()),
        message: Some(message.to_owned()),
        error_code: g.as_ref().map(|g| g.code),
        error: g.map(|g| g.message),
        next_at,
        token: TokenKind::SystemUser,
        transient: false,
    }
}

fn skipped(reason: &str) -> (StepOutcome, Option<GraphWrite>, Option<Vec<NewStep>>) {
    (
        StepOutcome {
            state: StepState::Skipped,
            message: Some(reason.to_owned()),
            ..done("")
        },
        None,
        None,
    )
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

fn step_onboarding(change: &StoredChange) -> Option<i64> {
    serde_json::from_str::<Value>(&change.change.raw)
        .ok()?
        .get("onboarding_id")?
        .as_i64()
}

/// A six-digit PIN, uniform over 000000-999999 (rejection sampling over the CSPRNG).
fn new_pin() -> Option<String> {
    loop {
        let bytes = crate::sealing::random::<4>().ok()?;
        let n = u32::from_le_bytes(bytes);
        // The largest multiple of 10^6 below 2^32: values above it would bias low PINs.
        if n < 4_294_000_000 {
            return Some(format!("{:06}", n % 1_000_000));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_are_six_digits_and_vary() {
        let pins: std::collections::HashSet<String> = (0..50).filter_map(|_| new_pin()).collect();
        assert!(pins.len() > 45, "{pins:?}");
        assert!(pins.iter().all(|p| plan::is_pin(p)));
    }

    #[test]
    fn audit_answers_are_cut_on_a_character() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("aé", 2), "a…");
    }
}
