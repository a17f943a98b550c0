//! The partner's own webhooks: endpoints the admin keeps, and the sender that delivers the
//! outbox to them.
//!
//! Deliveries follow Standard Webhooks ([`sign`]): `webhook-id` (the event's id, the same on
//! every retry and resend), `webhook-timestamp` (the attempt's time) and `webhook-signature`.
//! Each endpoint gets its events one at a time, in the order they happened; a failed
//! attempt is retried on the policy's schedule with jitter until the retry window ends; an
//! endpoint that keeps failing has its circuit opened (probes at a growing interval), and is
//! paused when it fails for the whole pause period or answers `410 Gone`. Several replicas
//! share the work through the store's leases: one attempt of a delivery at a time.

pub mod guard;
pub mod sign;

use crate::sealing::TokenKey;
use crate::store::Store;
use crate::store::outbox::{
    AttemptResult, Claimed, Delivery, Endpoint, EndpointPatch, NewEndpoint, RetryPolicy, known_type,
};
use axum::http::{HeaderValue, Method, Request, header};
use bytes::Bytes;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::sync::Arc;
use std::time::{Duration, Instant};
use waba_graph::Secret;

pub use guard::{Guard, UrlError};

/// Attempts in flight at once in one process (each to a different endpoint).
const IN_FLIGHT: usize = 32;
/// The longest description kept.
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// The most event types one endpoint may list.
const MAX_EVENT_TYPES: usize = 64;
/// The most of an endpoint's answer read (and dropped).
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// The longest `Retry-After` honoured.
const MAX_RETRY_AFTER_SECS: i64 = 86_400;

/// How the sender works.
#[derive(Debug, Clone)]
pub struct OutboundConfig {
    /// Which URLs are allowed.
    pub guard: Guard,
    /// One attempt's time, connecting included.
    pub timeout: Duration,
    /// Between the sender's looks for due deliveries when nothing was sent.
    pub poll: Duration,
    /// Retries and the circuit.
    pub policy: RetryPolicy,
    /// How long settled deliveries are kept (seconds).
    pub retention: i64,
}

/// Why an endpoint cannot be saved, or a delivery not resent.
#[derive(Debug, thiserror::Error)]
pub enum EndpointError {
    /// Endpoints need the token key (their secrets are kept sealed).
    #[error("outbound webhooks need a token key")]
    NoKey,
    /// The URL is refused.
    #[error("{0}")]
    Url(#[from] UrlError),
    /// No event type, an unknown one, or too many.
    #[error("unknown or missing event types")]
    Events,
    /// The description is too long.
    #[error("description too long")]
    Description,
    /// No such endpoint or delivery.
    #[error("not found")]
    NotFound,
    /// The proxy keeps [`crate::store::outbox::MAX_ENDPOINTS`] endpoints already.
    #[error("too many endpoints")]
    Full,
    /// The delivery is not in a state the action applies to.
    #[error("the delivery is {}", .0.as_str())]
    State(crate::store::outbox::DeliveryState),
    /// The secret could not be made or sealed.
    #[error("the secret could not be made")]
    Secret,
    /// The database failed.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

/// An endpoint as created or given a new secret: the secret is shown this once.
#[derive(Debug)]
pub struct WithSecret {
    /// The endpoint.
    pub endpoint: Endpoint,
    /// Its signing secret (`whsec_...`).
    pub secret: Secret,
}

type Connector = hyper_rustls::HttpsConnector<HttpConnector<guard::GuardedResolver>>;

/// The partner's endpoints and the sender.
pub struct Outbound {
    store: Arc<dyn Store>,
    key: Option<TokenKey>,
    config: OutboundConfig,
    /// Made at the first attempt: a proxy without endpoints never reads the system's
    /// certificates for them.
    client: std::sync::OnceLock<Client<Connector, Full<Bytes>>>,
}

impl std::fmt::Debug for Outbound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Outbound").finish_non_exhaustive()
    }
}

impl Outbound {
    /// The endpoints of `store`, their secrets sealed with `key`.
    pub fn new(store: Arc<dyn Store>, key: Option<TokenKey>, config: OutboundConfig) -> Self {
        Self {
            store,
            key,
            config,
            client: std::sync::OnceLock::new(),
        }
    }

    /// The HTTP client of the attempts, made at the first: dials only what the guard
    /// allows, trusts the system's certificates.
    fn client(&self) -> Result<&Client<Connector, Full<Bytes>>, String> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        let mut http = HttpConnector::new_with_resolver(guard::GuardedResolver {
            allow_private: self.config.guard.allow_private,
        });
        http.set_connect_timeout(Some(self.config.timeout));
        http.enforce_http(false);
        http.set_nodelay(true);
        let tls =
            crate::tls::trusted(crate::tls::Roots::System).and_then(crate::tls::client_config)?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .pool_max_idle_per_host(4)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector);
        Ok(self.client.get_or_init(|| client))
    }

    fn key(&self) -> Result<&TokenKey, EndpointError> {
        self.key.as_ref().ok_or(EndpointError::NoKey)
    }

    fn check_events(events: &[String]) -> Result<(), EndpointError> {
        let fine = !events.is_empty()
            && events.len() <= MAX_EVENT_TYPES
            && events.iter().all(|e| e == "*" || known_type(e));
        fine.then_some(()).ok_or(EndpointError::Events)
    }

    fn check_description(text: &str) -> Result<(), EndpointError> {
        (text.chars().count() <= MAX_DESCRIPTION_CHARS && !text.chars().any(char::is_control))
            .then_some(())
            .ok_or(EndpointError::Description)
    }

    fn new_secret(&self) -> Result<(Secret, crate::store::SealedToken), EndpointError> {
        let key = self.key()?;
        let secret = sign::generate().map_err(|_| EndpointError::Secret)?;
        let sealed = key
            .seal_as(crate::sealing::WEBHOOK_SECRET, &secret, 0)
            .map_err(|_| EndpointError::Secret)?;
        Ok((secret, sealed))
    }

    /// Creates an endpoint with a new secret.
    pub async fn create(
        &self,
        url: String,
        description: String,
        mut events: Vec<String>,
        enabled: bool,
    ) -> Result<WithSecret, EndpointError> {
        self.config.guard.check(&url)?;
        events.sort();
        events.dedup();
        Self::check_events(&events)?;
        Self::check_description(&description)?;
        let (secret, sealed) = self.new_secret()?;
        let endpoint = self
            .store
            .create_outbound_endpoint(
                NewEndpoint {
                    url,
                    description,
                    events,
                    secret: sealed,
                    enabled,
                },
                crate::clock::now(),
            )
            .await?
            .ok_or(EndpointError::Full)?;
        tracing::info!(endpoint = endpoint.id, "webhook endpoint created");
        Ok(WithSecret { endpoint, secret })
    }

    /// Changes an endpoint.
    pub async fn update(
        &self,
        id: i64,
        mut patch: EndpointPatch,
    ) -> Result<Endpoint, EndpointError> {
        if let Some(url) = &patch.url {
            self.config.guard.check(url)?;
        }
        if let Some(events) = &mut patch.events {
            events.sort();
            events.dedup();
            Self::check_events(events)?;
        }
        if let Some(d) = &patch.description {
            Self::check_description(d)?;
        }
        patch.secret = None;
        self.store
            .update_outbound_endpoint(id, patch, crate::clock::now())
            .await?
            .ok_or(EndpointError::NotFound)
    }

    /// Gives an endpoint a new secret; the old one signs too for `keep_previous` (every
    /// delivery then carries both signatures, so the receiver can change over), or stops at
    /// once.
    pub async fn rotate_secret(
        &self,
        id: i64,
        keep_previous: Duration,
    ) -> Result<WithSecret, EndpointError> {
        let (secret, sealed) = self.new_secret()?;
        let patch = EndpointPatch {
            secret: Some(sealed),
            keep_previous_until: (!keep_previous.is_zero())
                .then(|| crate::clock::now() + keep_previous.as_secs() as i64),
            ..EndpointPatch::default()
        };
        let endpoint = self
            .store
            .update_outbound_endpoint(id, patch, crate::clock::now())
            .await?
            .ok_or(EndpointError::NotFound)?;
        tracing::info!(endpoint = id, "webhook endpoint secret replaced");
        Ok(WithSecret { endpoint, secret })
    }

    /// Deletes an endpoint and its deliveries.
    pub async fn delete(&self, id: i64) -> Result<(), EndpointError> {
        match self.store.delete_outbound_endpoint(id).await? {
            true => Ok(()),
            false => Err(EndpointError::NotFound),
        }
    }

    /// Every endpoint.
    pub async fn list(&self) -> Result<Vec<Endpoint>, EndpointError> {
        Ok(self.store.outbound_endpoints().await?)
    }

    /// One endpoint.
    pub async fn get(&self, id: i64) -> Result<Endpoint, EndpointError> {
        self.store
            .outbound_endpoint(id)
            .await?
            .ok_or(EndpointError::NotFound)
    }

    /// A page of an endpoint's deliveries, newest first.
    pub async fn deliveries(
        &self,
        id: i64,
        before: Option<i64>,
        limit: u32,
    ) -> Result<Vec<Delivery>, EndpointError> {
        self.get(id).await?;
        Ok(self.store.outbound_deliveries(id, before, limit).await?)
    }

    /// Queues a delivered or given-up delivery's event again (the same `webhook-id`),
    /// after what waits; the new delivery.
    pub async fn resend(&self, delivery_id: i64) -> Result<i64, EndpointError> {
        acted(
            self.store
                .resend_delivery(delivery_id, crate::clock::now())
                .await?,
        )
    }

    /// Gives up a pending delivery (one its endpoint keeps refusing), so the next goes.
    pub async fn give_up(&self, delivery_id: i64) -> Result<i64, EndpointError> {
        let done = acted(self.store.give_up_delivery(delivery_id).await?)?;
        tracing::info!(
            delivery = delivery_id,
            "webhook delivery given up by the admin"
        );
        Ok(done)
    }

    /// Forgets settled deliveries older than the retention, a batch per transaction.
    pub async fn prune(&self) -> Result<u64, crate::store::StoreError> {
        const BATCH: u32 = 1_000;
        let before = crate::clock::now() - self.config.retention;
        let mut gone = 0;
        loop {
            let n = self.store.prune_outbox(before, BATCH).await?;
            gone += n;
            if n < u64::from(BATCH) {
                return Ok(gone);
            }
        }
    }

    /// Runs the sender until the process ends: up to [`IN_FLIGHT`] attempts at once (one per
    /// endpoint), each settled as soon as it ends; a slow endpoint holds only its own queue.
    /// Without a token key no secret can be opened, so nothing runs.
    pub fn spawn(self: Arc<Self>) {
        if self.key.is_none() {
            return;
        }
        tokio::spawn(async move {
            let mut running = tokio::task::JoinSet::new();
            loop {
                let room = IN_FLIGHT.saturating_sub(running.len()) as u32;
                if room > 0 {
                    match self.claim(room).await {
                        Ok(claimed) => {
                            for c in claimed {
                                let me = self.clone();
                                running.spawn(async move { me.deliver(c).await });
                            }
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "outbound webhooks: the outbox could not be read");
                        }
                    }
                }
                // A delivery made lets its endpoint's next one go at once; otherwise the
                // sender looks again after the poll interval.
                tokio::select! {
                    Some(_) = running.join_next(), if !running.is_empty() => {}
                    () = tokio::time::sleep(self.config.poll) => {}
                }
            }
        });
    }

    /// How long a claim is held: an attempt, its settling and a margin. A sender that dies
    /// loses its claims this long after taking them, and another takes them over.
    fn lease(&self) -> Duration {
        self.config.timeout * 2 + Duration::from_secs(5)
    }

    /// Claims up to `limit` due deliveries, after a read says one is due (the claim takes the
    /// database's write lock).
    async fn claim(&self, limit: u32) -> Result<Vec<(Claimed, Instant)>, crate::store::StoreError> {
        let now = crate::clock::now();
        let due = self.store.next_delivery_due(now).await?;
        if due.is_none_or(|due| due > now) {
            return Ok(Vec::new());
        }
        let taken = Instant::now();
        let claimed = self
            .store
            .claim_deliveries(now, self.lease().as_secs() as i64, limit)
            .await?;
        Ok(claimed.into_iter().map(|c| (c, taken)).collect())
    }

    /// One attempt of `c` (claimed at `taken`), recorded; whether it was delivered. No
    /// attempt starts unless it can end within the claim (a process that stalled after
    /// claiming may have lost it to another), and one that cannot be made here (the key
    /// does not open the endpoint's secret) is given back without blaming the endpoint.
    async fn deliver(&self, (c, taken): (Claimed, Instant)) -> bool {
        let retry_at = crate::clock::now() + 60;
        if taken.elapsed() + self.config.timeout + Duration::from_secs(2) > self.lease() {
            tracing::warn!(
                delivery = c.delivery_id,
                "outbound webhooks: a claim was held too long to send in time; given back"
            );
            return self.give_back(c, retry_at).await;
        }
        let open = |sealed: &crate::store::SealedToken| {
            self.key
                .as_ref()
                .and_then(|k| k.open_as(crate::sealing::WEBHOOK_SECRET, sealed).ok())
        };
        let previous = c.previous.as_ref().and_then(open);
        let secrets = match open(&c.secret) {
            Some(secret) => std::iter::once(secret).chain(previous).collect::<Vec<_>>(),
            None => {
                tracing::error!(
                    endpoint = c.endpoint_id,
                    "outbound webhooks: this token key cannot open the endpoint's secret (was --token-key changed?); give the endpoint a new secret"
                );
                return self.give_back(c, retry_at).await;
            }
        };
        let result = self.attempt(&c, &secrets).await;
        let delivered = result.delivered();
        self.log(&c, &result);
        let jitter = crate::sealing::random::<2>()
            .map(|b| f64::from(u16::from_le_bytes(b)) / 32_767.5 - 1.0)
            .unwrap_or(0.0);
        let settled = self
            .store
            .settle_delivery(
                c,
                result,
                crate::clock::now(),
                self.config.policy.clone(),
                jitter,
            )
            .await;
        match settled {
            Ok(()) => delivered,
            Err(e) => {
                // The lease runs out and the delivery is attempted again.
                tracing::warn!(error = %e, "outbound webhooks: an attempt could not be recorded");
                false
            }
        }
    }

    async fn give_back(&self, c: Claimed, retry_at: i64) -> bool {
        if let Err(e) = self.store.release_delivery(c, retry_at).await {
            tracing::warn!(error = %e, "outbound webhooks: a claim could not be given back");
        }
        false
    }

    fn log(&self, c: &Claimed, r: &AttemptResult) {
        let outcome = if r.delivered() { "delivered" } else { "failed" };
        metrics::counter!("waba_outbound_attempts_total", "outcome" => outcome).increment(1);
        metrics::histogram!("waba_outbound_attempt_seconds")
            .record(f64::from(r.latency_ms) / 1000.0);
        if r.delivered() {
            tracing::info!(
                endpoint = c.endpoint_id,
                delivery = c.delivery_id,
                event = %c.event_id,
                attempt = c.attempt,
                status = r.status,
                latency_ms = r.latency_ms,
                "webhook delivered"
            );
        } else {
            tracing::warn!(
                endpoint = c.endpoint_id,
                delivery = c.delivery_id,
                event = %c.event_id,
                attempt = c.attempt,
                status = r.status,
                latency_ms = r.latency_ms,
                error = r.error.as_deref().unwrap_or_default(),
                "webhook delivery failed"
            );
        }
    }

    /// One attempt of `c`: signed with each of `secrets`, bounded in time, redirects not
    /// followed.
    async fn attempt(&self, c: &Claimed, secrets: &[Secret]) -> AttemptResult {
        let started = Instant::now();
        let outcome = match self.request(c, secrets) {
            Ok(req) => {
                let client = match self.client() {
                    Ok(client) => client,
                    Err(e) => {
                        tracing::error!(error = %e, "outbound webhooks: no TLS configuration");
                        return AttemptResult {
                            status: None,
                            latency_ms: 0,
                            error: Some("the proxy has no TLS configuration for endpoints".into()),
                            retry_after: None,
                        };
                    }
                };
                match tokio::time::timeout(self.config.timeout, client.request(req)).await {
                    Ok(Ok(res)) => Ok(res),
                    Ok(Err(e)) => Err(describe(&e)),
                    Err(_) => Err(format!(
                        "no answer within {} s",
                        self.config.timeout.as_secs_f64()
                    )),
                }
            }
            Err(e) => Err(e),
        };
        let latency_ms = started.elapsed().as_millis().min(u128::from(u32::MAX)) as u32;
        match outcome {
            Ok(res) => {
                let status = res.status().as_u16();
                let retry_after = res
                    .headers()
                    .get(header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(retry_after_secs);
                // Read (a bounded part of) the answer so the connection can be used again.
                let left = self.config.timeout.saturating_sub(started.elapsed());
                let body = http_body_util::Limited::new(res.into_body(), MAX_ANSWER_BYTES);
                let _ = tokio::time::timeout(left, http_body_util::BodyExt::collect(body)).await;
                let error = (!(200..300).contains(&status)).then(|| match status {
                    300..=399 => format!("answered {status}: redirects are not followed"),
                    410 => "answered 410 Gone: the endpoint is paused".to_owned(),
                    _ => format!("answered {status}"),
                });
                AttemptResult {
                    status: Some(status),
                    latency_ms,
                    error,
                    retry_after,
                }
            }
            Err(error) => AttemptResult {
                status: None,
                latency_ms,
                error: Some(error),
                retry_after: None,
            },
        }
    }

    /// The request of `c` signed with each of `secrets` (the spec's space-separated
    /// signatures, for a secret being replaced), or why none can be made.
    fn request(&self, c: &Claimed, secrets: &[Secret]) -> Result<Request<Full<Bytes>>, String> {
        self.config.guard.check(&c.url).map_err(|e| e.to_string())?;
        let timestamp = crate::clock::now();
        let body = Bytes::from(c.payload.clone());
        let signature = secrets
            .iter()
            .map(|s| sign::signature(s, &c.event_id, timestamp, &body))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?
            .join(" ");
        let value = |v: &str| HeaderValue::from_str(v).map_err(|_| "unusable header".to_owned());
        let mut signed = value(&signature)?;
        signed.set_sensitive(true);
        Request::builder()
            .method(Method::POST)
            .uri(&c.url)
            .header(header::CONTENT_TYPE, "application/json")
            .header(
                header::USER_AGENT,
                concat!("waba-onboard/", env!("CARGO_PKG_VERSION")),
            )
            .header("webhook-id", value(&c.event_id)?)
            .header("webhook-timestamp", timestamp)
            .header("webhook-signature", signed)
            .body(Full::new(body))
            .map_err(|_| "the endpoint URL cannot be requested".to_owned())
    }
}

/// A `Retry-After` value (seconds, or an HTTP date) as seconds from now, at most
/// [`MAX_RETRY_AFTER_SECS`].
fn retry_after_secs(value: &str) -> Option<i64> {
    let value = value.trim();
    let secs = match value.parse::<i64>() {
        Ok(secs) => secs,
        Err(_) => {
            let at = httpdate::parse_http_date(value).ok()?;
            at.duration_since(std::time::SystemTime::now())
                .map_or(0, |d| d.as_secs() as i64)
        }
    };
    Some(secs.clamp(0, MAX_RETRY_AFTER_SECS))
}

/// The delivery an admin's action made or changed, or why it was refused.
fn acted(a: crate::store::outbox::DeliveryAction) -> Result<i64, EndpointError> {
    use crate::store::outbox::DeliveryAction;
    match a {
        DeliveryAction::Done(id) => Ok(id),
        DeliveryAction::NotFound => Err(EndpointError::NotFound),
        DeliveryAction::Refused(state) => Err(EndpointError::State(state)),
    }
}

/// An HTTP client error with its causes ("connection refused", the guard's refusal).
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text.chars().take(300).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates_within_bounds() {
        assert_eq!(retry_after_secs("120"), Some(120));
        assert_eq!(retry_after_secs(" 7 "), Some(7));
        assert_eq!(retry_after_secs("-5"), Some(0));
        assert_eq!(retry_after_secs("99999999"), Some(MAX_RETRY_AFTER_SECS));
        let later = std::time::SystemTime::now() + Duration::from_secs(600);
        let secs = retry_after_secs(&httpdate::fmt_http_date(later)).unwrap_or_default();
        assert!((598..=600).contains(&secs), "{secs}");
        assert_eq!(retry_after_secs("Sun, 06 Nov 1994 08:49:37 GMT"), Some(0));
        assert_eq!(retry_after_secs("soon"), None);
    }
}
