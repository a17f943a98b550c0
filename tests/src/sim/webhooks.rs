//! Webhooks as Meta sends them: `account_update` (`PARTNER_ADDED`, `PARTNER_REMOVED`, and any
//! other event with the fields Meta documents for it, e.g. `DISABLED_UPDATE` with `ban_info`)
//! and `account_review_update`, signed with the app secret in `X-Hub-Signature-256`, posted to the
//! configured URL. Redeliveries repeat the same body; a "bad signature" delivery signs with
//! another secret. Sent on request (`POST /_sim/webhooks/send`) or by the scenario, some
//! seconds after a WABA is first read.
//!
//! As at Meta, a WABA's own webhooks (`account_review_update`, and `account_update` events
//! about the WABA itself: bans, violations, restrictions, deletion, ...) reach the app only
//! while the app is subscribed to that WABA (`POST /{waba-id}/subscribed_apps`,
//! <https://developers.facebook.com/documentation/business-messaging/whatsapp/solution-providers/manage-webhooks>);
//! partner-level events (`PARTNER_ADDED`, `PARTNER_REMOVED`, `PARTNER_APP_*`, whose
//! `entry.id` is the partner's business) always do. Account-level webhooks ignore a WABA's
//! alternate callback URL and go to the app's
//! (<https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/override>).

use super::state::SimState;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::Sha256;
use std::sync::Arc;
use std::time::Duration;

/// What a webhook says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookKind {
    /// `account_review_update` with `decision`.
    Review,
    /// `account_update` `PARTNER_ADDED`: the WABA is shared with the partner.
    Shared,
    /// `account_update` `PARTNER_REMOVED`.
    Removed,
    /// Any other `account_update` event (`event`, with `value`'s fields): a `PARTNER_*` event
    /// comes from the partner's business with `waba_info`; the others (bans, violations,
    /// restrictions, deletions) have the WABA as `entry.id` and no `waba_info`
    /// (<https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/account_update>).
    AccountUpdate,
}

/// A webhook to send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduledWebhook {
    /// What it says.
    pub kind: WebhookKind,
    /// The WABA.
    pub waba_id: String,
    /// For reviews: `APPROVED`, `REJECTED`, `PENDING`, `DEFERRED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<String>,
    /// For `account_update`: the event (`DISABLED_UPDATE`, `ACCOUNT_RESTRICTION`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// For `account_update`: the value's other fields, e.g.
    /// `{"ban_info": {"waba_ban_state": "DISABLE", "waba_ban_date": "April 17, 2025"}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<Value>,
    /// Scenario webhooks: sent this many seconds after the WABA is first read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_read_of: Option<String>,
    /// Seconds to wait (after the read, or after the request).
    #[serde(default)]
    pub after_secs: f64,
    /// Extra deliveries of the same body.
    #[serde(default)]
    pub redeliveries: u32,
    /// Sign with a wrong secret (the proxy must refuse it).
    #[serde(default)]
    pub bad_signature: bool,
}

/// `sha256=<hex>` of `body` with `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = match <Hmac<Sha256> as KeyInit>::new_from_slice(secret.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    let mut out = String::from("sha256=");
    for b in mac.finalize().into_bytes() {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Meta's payload for `w`, from the partner business `partner`.
pub fn payload(w: &ScheduledWebhook, partner: &str, time: i64) -> Value {
    match w.kind {
        WebhookKind::Review => json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": w.waba_id, "time": time, "changes": [{
                "field": "account_review_update",
                "value": {"decision": w.decision.as_deref().unwrap_or("APPROVED")}
            }]}]
        }),
        WebhookKind::AccountUpdate => {
            let event = w.event.as_deref().unwrap_or("ACCOUNT_UPDATE");
            let mut value = match &w.value {
                Some(Value::Object(fields)) => fields.clone(),
                _ => serde_json::Map::new(),
            };
            value.insert("event".into(), event.into());
            let from_partner = event.starts_with("PARTNER_");
            if from_partner && !value.contains_key("waba_info") {
                value.insert(
                    "waba_info".into(),
                    json!({"waba_id": w.waba_id, "owner_business_id": partner}),
                );
            }
            let entry = if from_partner {
                partner
            } else {
                w.waba_id.as_str()
            };
            json!({
                "object": "whatsapp_business_account",
                "entry": [{"id": entry, "time": time, "changes": [{
                    "field": "account_update", "value": value
                }]}]
            })
        }
        WebhookKind::Shared | WebhookKind::Removed => json!({
            "object": "whatsapp_business_account",
            "entry": [{"id": partner, "time": time, "changes": [{
                "field": "account_update",
                "value": {
                    "event": if w.kind == WebhookKind::Shared { "PARTNER_ADDED" } else { "PARTNER_REMOVED" },
                    "waba_info": {"waba_id": w.waba_id, "owner_business_id": partner}
                }
            }]}]
        }),
    }
}

/// What became of a webhook.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Delivery {
    /// Whether it was sent.
    pub delivered: bool,
    /// Why not, when it was not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The receiver's HTTP statuses, one per delivery.
    pub statuses: Vec<u16>,
}

/// Whether `w` is the WABA's own webhook, sent only while the app is subscribed to the WABA
/// (`PARTNER_*` events come from the partner's business and are always sent).
pub fn needs_subscription(w: &ScheduledWebhook) -> bool {
    match w.kind {
        WebhookKind::Review => true,
        WebhookKind::Shared | WebhookKind::Removed => false,
        WebhookKind::AccountUpdate => !w
            .event
            .as_deref()
            .unwrap_or("ACCOUNT_UPDATE")
            .starts_with("PARTNER_"),
    }
}

/// Applies `w` to the simulated world (reads after it agree with what it announced).
fn apply(sim: &SimState, w: &ScheduledWebhook, partner: &str) {
    match w.kind {
        WebhookKind::Review => {
            sim.set_review(&w.waba_id, w.decision.as_deref().unwrap_or("APPROVED"))
        }
        WebhookKind::Shared => sim.share(partner, &w.waba_id),
        WebhookKind::Removed => sim.unshare(partner, &w.waba_id),
        WebhookKind::AccountUpdate => {}
    }
}

/// Sends `w` now (and its redeliveries) unless the app is not subscribed to its WABA; what
/// the receiver answered. What it announces happens either way (a review is decided whether
/// or not the partner hears of it).
pub async fn send(sim: &SimState, w: &ScheduledWebhook) -> Result<Delivery, String> {
    let partner = sim.partner_id();
    if needs_subscription(w) && !sim.is_subscribed(&w.waba_id) {
        if !w.bad_signature {
            apply(sim, w, &partner);
        }
        return Ok(Delivery {
            delivered: false,
            reason: Some(format!(
                "the app is not subscribed to WABA {} (POST /{}/subscribed_apps), so Meta does not send it this WABA's webhooks",
                w.waba_id, w.waba_id
            )),
            statuses: Vec::new(),
        });
    }
    let url = sim
        .webhook_url()
        .ok_or("no webhook URL: start graph-sim with --webhook-url or PUT /_sim/webhooks")?;
    if !w.bad_signature {
        apply(sim, w, &partner);
    }
    let body = payload(w, &partner, super::state::now_unix()).to_string();
    let secret = if w.bad_signature {
        "not-the-app-secret".to_owned()
    } else {
        sim.world.scenario.app.secret.clone()
    };
    let sig = signature(&secret, body.as_bytes());
    let client = reqwest::Client::new();
    let mut statuses = Vec::new();
    for _ in 0..=w.redeliveries {
        let res = client
            .post(&url)
            .header("content-type", "application/json")
            .header("x-hub-signature-256", &sig)
            .body(body.clone())
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .map_err(|e| format!("webhook to {url}: {e}"))?;
        statuses.push(res.status().as_u16());
    }
    Ok(Delivery {
        delivered: true,
        reason: None,
        statuses,
    })
}

/// Sends `w` after its delay, in the background.
pub fn schedule(sim: Arc<SimState>, w: ScheduledWebhook) {
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_secs_f64(w.after_secs.max(0.0))).await;
        match send(&sim, &w).await {
            Ok(Delivery {
                delivered: false,
                reason: Some(reason),
                ..
            }) => eprintln!("graph-sim: webhook not sent: {reason}"),
            Ok(_) => {}
            Err(e) => eprintln!("graph-sim: {e}"),
        }
    });
}
