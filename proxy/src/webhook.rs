//! Meta's webhooks: the subscription handshake, the `X-Hub-Signature-256` check, the changes
//! a delivery carries, and [`Inbox`], which stores them durably and applies them before Meta
//! gets its 200.
//!
//! The signature is checked on the raw bytes before anything parses them. Every change
//! becomes one [`StatusChange`]; fields and events this version does not know are kept raw
//! (kind `unknown`), never refused.

use crate::error::AppError;
use crate::live::StatusHub;
use crate::store::{ChangeKind, StatusChange, Store};
use crate::upstream::Upstream;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::sync::Arc;
use subtle::ConstantTimeEq;
use waba_graph::Secret;

/// Largest webhook body accepted.
pub const MAX_WEBHOOK_BODY: usize = 1024 * 1024;
/// Longest `hub.challenge` echoed.
const MAX_CHALLENGE_LEN: usize = 256;

/// Where Meta's notifications go: verified, stored, applied, announced.
pub struct Inbox {
    /// Signs Meta's deliveries; webhooks are off without it.
    pub app_secret: Option<Secret>,
    /// What the subscription handshake must present.
    pub verify_token: Option<Secret>,
    /// Where changes are kept.
    pub store: Arc<dyn Store>,
    /// Whose cached answers a change makes stale.
    pub upstream: Upstream,
    /// Where open streams hear of new changes.
    pub hub: Arc<StatusHub>,
    /// Plans the steps of WABAs shared without a signup (`PARTNER_ADDED`), when on.
    pub pipeline: Option<Arc<crate::pipeline::Pipeline>>,
}

impl Inbox {
    /// The subscription handshake: the challenge to echo when the mode is `subscribe` and the
    /// verify token matches (constant time).
    pub fn handshake(
        &self,
        mode: Option<&str>,
        verify_token: Option<&str>,
        challenge: Option<&str>,
    ) -> Result<String, AppError> {
        let expected = self.verify_token.as_ref().ok_or(AppError::Forbidden(
            "webhooks are not configured: set --webhook-verify-token",
        ))?;
        let token_ok = verify_token
            .is_some_and(|t| bool::from(t.as_bytes().ct_eq(expected.expose().as_bytes())));
        let challenge = challenge.filter(|c| {
            !c.is_empty()
                && c.len() <= MAX_CHALLENGE_LEN
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
        match (mode, token_ok, challenge) {
            (Some("subscribe"), true, Some(challenge)) => {
                tracing::info!("webhook subscription verified");
                Ok(challenge.to_owned())
            }
            _ => Err(AppError::Forbidden("the webhook handshake does not match")),
        }
    }

    /// A delivery: the signature checked on the raw body, every change stored once
    /// (redeliveries folded), cached answers about the WABAs dropped, open streams told.
    /// Returns how many changes were new.
    pub async fn receive(&self, signature: Option<&str>, body: &[u8]) -> Result<usize, AppError> {
        let secret = self.app_secret.as_ref().ok_or(AppError::Forbidden(
            "webhooks are not configured: set --app-secret",
        ))?;
        if body.len() > MAX_WEBHOOK_BODY {
            return Err(AppError::PayloadTooLarge);
        }
        verify_signature(secret.expose(), body, signature).map_err(|e| {
            metrics::counter!("waba_webhooks_refused_total").increment(1);
            tracing::warn!(error = %e, "webhook refused");
            match e {
                WebhookError::MissingSignature => {
                    AppError::Forbidden("missing X-Hub-Signature-256")
                }
                _ => AppError::Forbidden("the X-Hub-Signature-256 signature does not match"),
            }
        })?;
        let changes = parse(body).map_err(|_| {
            AppError::BadRequest("the body is not a webhook notification (entry[].changes[])")
        })?;

        // A share no record holds is planned in the same transaction: no redelivery or crash
        // can leave it stored but not onboarded.
        let discovery = self.pipeline.as_ref().map(|p| p.discovery());
        let stored = self
            .store
            .record_changes(changes, crate::clock::now(), discovery)
            .await?;
        for change in &stored {
            if let Some(waba) = &change.change.waba_id {
                self.upstream.forget(waba);
            }
        }
        if !stored.is_empty() {
            self.hub.wake();
        }
        let from_meta = stored
            .iter()
            .filter(|c| c.change.kind != ChangeKind::PipelineStep)
            .count();
        if from_meta < stored.len()
            && let Some(pipeline) = &self.pipeline
        {
            pipeline.wake();
        }
        metrics::counter!("waba_webhook_changes_total").increment(from_meta as u64);
        Ok(from_meta)
    }
}

/// Why a delivery is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum WebhookError {
    /// No `X-Hub-Signature-256` header.
    #[error("missing X-Hub-Signature-256")]
    MissingSignature,
    /// The header is not `sha256=<64 hex digits>` or does not match the body.
    #[error("the X-Hub-Signature-256 signature does not match the body")]
    BadSignature,
    /// The body is not Meta's webhook JSON.
    #[error("the body is not a webhook notification: {0}")]
    Malformed(&'static str),
}

/// Checks `header` (`sha256=<hex>`) against HMAC-SHA256 of `body` with `app_secret`, in
/// constant time.
pub fn verify_signature(
    app_secret: &str,
    body: &[u8],
    header: Option<&str>,
) -> Result<(), WebhookError> {
    let header = header.ok_or(WebhookError::MissingSignature)?;
    let hex = header
        .strip_prefix("sha256=")
        .ok_or(WebhookError::BadSignature)?;
    let mut expected = [0u8; 32];
    hex::decode_to_slice(hex, &mut expected).map_err(|_| WebhookError::BadSignature)?;
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(app_secret.as_bytes())
        .map_err(|_| WebhookError::BadSignature)?;
    mac.update(body);
    mac.verify_slice(&expected)
        .map_err(|_| WebhookError::BadSignature)
}

/// `sha256=<hex>` for `body`: what Meta sends (graph-sim and tests sign with it).
pub fn sign(app_secret: &str, body: &[u8]) -> Result<String, WebhookError> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(app_secret.as_bytes())
        .map_err(|_| WebhookError::BadSignature)?;
    mac.update(body);
    Ok(format!(
        "sha256={}",
        hex::encode(mac.finalize().into_bytes())
    ))
}

/// An id as Meta writes it: a string or a number.
fn id(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            Some(s.clone())
        }
        Value::Number(n) if n.is_u64() => Some(n.to_string()),
        _ => None,
    }
}

fn text(v: &Value, key: &str) -> Option<String> {
    v.get(key).and_then(Value::as_str).map(str::to_owned)
}

/// An `account_update` change: its kind, its WABA and its short detail. The WABA is
/// `value.waba_info.waba_id` when the event carries `waba_info` (the `PARTNER_*` events,
/// whose `entry.id` is the partner's business portfolio), and `entry.id` otherwise (bans,
/// violations, restrictions, deletions: their entry is the WABA), as Meta documents at
/// <https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/account_update>
/// and <https://developers.facebook.com/documentation/business-messaging/whatsapp/solution-providers/manage-webhooks>.
fn account_update(
    value: &Value,
    entry_id: Option<&String>,
) -> (ChangeKind, Option<String>, Option<String>) {
    let event = text(value, "event");
    let waba = value
        .get("waba_info")
        .and_then(|w| w.get("waba_id"))
        .and_then(id)
        .or_else(|| entry_id.cloned());
    let nested = |object: &str, key: &str| value.get(object).and_then(|o| text(o, key));
    let (kind, detail) = match event.as_deref() {
        Some("PARTNER_ADDED") => (ChangeKind::PartnerAdded, event.clone()),
        Some("PARTNER_REMOVED") => (ChangeKind::PartnerRemoved, event.clone()),
        Some("PARTNER_APP_INSTALLED") => (ChangeKind::PartnerAppInstalled, event.clone()),
        Some("PARTNER_APP_UNINSTALLED") => (ChangeKind::PartnerAppUninstalled, event.clone()),
        Some("ACCOUNT_VIOLATION") => (
            ChangeKind::AccountViolation,
            nested("violation_info", "violation_type"),
        ),
        Some("DISABLED_UPDATE") => (
            ChangeKind::DisabledUpdate,
            nested("ban_info", "waba_ban_state"),
        ),
        Some("ACCOUNT_RESTRICTION") => {
            let types: Vec<String> = value
                .get("restriction_info")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|r| text(r, "restriction_type"))
                .collect();
            // Warnings and lifted restrictions carry only `violation_info`.
            let detail = if types.is_empty() {
                nested("violation_info", "violation_type")
            } else {
                Some(types.join(","))
            };
            (ChangeKind::AccountRestriction, detail)
        }
        Some("ACCOUNT_DELETED") => (ChangeKind::AccountDeleted, event.clone()),
        Some("ACCOUNT_OFFBOARDED") => (ChangeKind::AccountOffboarded, event.clone()),
        Some("ACCOUNT_RECONNECTED") => (ChangeKind::AccountReconnected, event.clone()),
        Some("PARTNER_CLIENT_CERTIFICATION_STATUS_UPDATE") => (
            ChangeKind::Certification,
            nested("partner_client_certification_info", "status"),
        ),
        Some("PARTNER_CLIENT_CERTIFICATION_NEEDED") => {
            (ChangeKind::Certification, Some("NEEDED".to_owned()))
        }
        _ => (ChangeKind::AccountUpdate, event.clone()),
    };
    (kind, waba, detail)
}

/// The changes of one delivery, in order.
pub fn parse(body: &[u8]) -> Result<Vec<StatusChange>, WebhookError> {
    let root: Value =
        serde_json::from_slice(body).map_err(|_| WebhookError::Malformed("not JSON"))?;
    let entries = root
        .get("entry")
        .and_then(Value::as_array)
        .ok_or(WebhookError::Malformed("no entry array"))?;
    let mut out = Vec::new();
    for entry in entries {
        let entry_id = entry.get("id").and_then(id);
        let time = entry.get("time").cloned().unwrap_or(Value::Null);
        let changes = entry
            .get("changes")
            .and_then(Value::as_array)
            .ok_or(WebhookError::Malformed("an entry without changes"))?;
        for change in changes {
            let field = text(change, "field").unwrap_or_else(|| "unknown".into());
            let value = change.get("value").cloned().unwrap_or(Value::Null);
            let (kind, waba_id, detail) = match field.as_str() {
                "account_update" => account_update(&value, entry_id.as_ref()),
                "account_review_update" => (
                    ChangeKind::Review,
                    entry_id.clone(),
                    text(&value, "decision"),
                ),
                "phone_number_quality_update" => (
                    ChangeKind::PhoneQuality,
                    entry_id.clone(),
                    text(&value, "event"),
                ),
                "phone_number_name_update" => (
                    ChangeKind::PhoneName,
                    entry_id.clone(),
                    text(&value, "decision"),
                ),
                _ => (ChangeKind::Unknown, entry_id.clone(), None),
            };
            let raw = serde_json::json!({"field": field, "value": value}).to_string();
            let mut h = Sha256::new();
            h.update(entry_id.as_deref().unwrap_or("").as_bytes());
            h.update([0]);
            h.update(time.to_string().as_bytes());
            h.update([0]);
            h.update(raw.as_bytes());
            out.push(StatusChange {
                dedupe: h.finalize().into(),
                field,
                kind,
                waba_id,
                value: detail,
                raw,
            });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "app-secret-for-webhook-tests";

    #[test]
    fn signatures_match_only_the_exact_body_and_secret() {
        let body = br#"{"entry":[]}"#;
        let sig = sign(SECRET, body).unwrap_or_default();
        assert!(verify_signature(SECRET, body, Some(&sig)).is_ok());
        assert_eq!(
            verify_signature(SECRET, br#"{"entry":[] }"#, Some(&sig)),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_signature("another", body, Some(&sig)),
            Err(WebhookError::BadSignature)
        );
        assert_eq!(
            verify_signature(SECRET, body, None),
            Err(WebhookError::MissingSignature)
        );
        for bad in [
            "sha1=00",
            "sha256=zz",
            "",
            &sig[..sig.len() - 1],
            &sig.to_uppercase(),
        ] {
            assert!(verify_signature(SECRET, body, Some(bad)).is_err(), "{bad}");
        }
    }

    /// Every `account_update` event with the payload Meta publishes for it
    /// (<https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/reference/account_update>,
    /// <https://developers.facebook.com/documentation/business-messaging/whatsapp/solution-providers/manage-webhooks>):
    /// the `PARTNER_*` events name the WABA in `waba_info` (their `entry.id` is the partner's
    /// business), the others are about `entry.id`.
    #[test]
    fn every_account_update_event_names_its_waba() {
        let cases: [(&str, &str, &str, Option<&str>); 12] = [
            (
                "2949482758682047",
                r#"{"event":"PARTNER_ADDED","waba_info":{"waba_id":"980198427658004","owner_business_id":"2329417887457253","solution_id":"1715120619246906","solution_partner_business_ids":["2949482758682047","520744086200222"]}}"#,
                "partner_added",
                Some("PARTNER_ADDED"),
            ),
            (
                "2949482758682047",
                r#"{"event":"PARTNER_APP_INSTALLED","waba_info":{"waba_id":"980198427658004","owner_business_id":"2329417887457253","partner_app_id":"5731794616896507"}}"#,
                "partner_app_installed",
                Some("PARTNER_APP_INSTALLED"),
            ),
            (
                "2949482758682047",
                r#"{"event":"PARTNER_APP_UNINSTALLED","waba_info":{"waba_id":"980198427658004","owner_business_id":"1284923862322270","partner_app_id":"869361281603019"}}"#,
                "partner_app_uninstalled",
                Some("PARTNER_APP_UNINSTALLED"),
            ),
            (
                "2949482758682047",
                r#"{"event":"PARTNER_REMOVED","waba_info":{"waba_id":"980198427658004","owner_business_id":"2329417887457253"},"disconnection_info":{"reason":"PRIMARY_INACTIVITY","initiated_by":"SYSTEM"}}"#,
                "partner_removed",
                Some("PARTNER_REMOVED"),
            ),
            (
                "980198427658004",
                r#"{"event":"ACCOUNT_VIOLATION","violation_info":{"violation_type":"ADULT"}}"#,
                "account_violation",
                Some("ADULT"),
            ),
            (
                "980198427658004",
                r#"{"event":"DISABLED_UPDATE","ban_info":{"waba_ban_state":"DISABLE","waba_ban_date":"April 17, 2025"}}"#,
                "disabled_update",
                Some("DISABLE"),
            ),
            (
                "980198427658004",
                r#"{"event":"ACCOUNT_RESTRICTION","restriction_info":[{"restriction_type":"RESTRICTED_BIZ_INITIATED_MESSAGING","expiration":1641330498},{"restriction_type":"RESTRICTED_ADD_PHONE_NUMBER_ACTION","expiration":1641330498}]}"#,
                "account_restriction",
                Some("RESTRICTED_BIZ_INITIATED_MESSAGING,RESTRICTED_ADD_PHONE_NUMBER_ACTION"),
            ),
            (
                "980198427658004",
                r#"{"event":"ACCOUNT_RESTRICTION","violation_info":{"violation_type":"DIRECT_SEND_UTILITY_TEMPLATE_ABUSE_WARN"}}"#,
                "account_restriction",
                Some("DIRECT_SEND_UTILITY_TEMPLATE_ABUSE_WARN"),
            ),
            (
                "980198427658004",
                r#"{"event":"ACCOUNT_DELETED"}"#,
                "account_deleted",
                Some("ACCOUNT_DELETED"),
            ),
            (
                "980198427658004",
                r#"{"event":"ACCOUNT_OFFBOARDED"}"#,
                "account_offboarded",
                Some("ACCOUNT_OFFBOARDED"),
            ),
            (
                "980198427658004",
                r#"{"event":"PARTNER_CLIENT_CERTIFICATION_STATUS_UPDATE","partner_client_certification_info":{"client_business_id":"2729063490586005","status":"APPROVED","rejection_reasons":["NONE"]}}"#,
                "certification",
                Some("APPROVED"),
            ),
            (
                "980198427658004",
                r#"{"event":"VOLUME_BASED_PRICING_TIER_UPDATE","volume_tier_info":{"tier_update_time":1743451903,"pricing_category":"UTILITY","tier":"25000001:50000000","effective_month":"2025-11","region":"India"}}"#,
                "account_update",
                Some("VOLUME_BASED_PRICING_TIER_UPDATE"),
            ),
        ];
        for (entry, value, kind, detail) in cases {
            let body = format!(
                r#"{{"object":"whatsapp_business_account","entry":[{{"id":"{entry}","time":1744823932,"changes":[{{"value":{value},"field":"account_update"}}]}}]}}"#
            );
            let events = parse(body.as_bytes()).unwrap_or_default();
            assert_eq!(events.len(), 1, "{value}");
            let e = &events[0];
            assert_eq!(
                (e.kind.as_str(), e.waba_id.as_deref(), e.value.as_deref()),
                (kind, Some("980198427658004"), detail),
                "{value}"
            );
        }
    }

    #[test]
    fn review_phone_and_unknown_changes_are_kept() {
        let body = br#"{"entry":[{"id":"102289599326934","time":1,"changes":[
            {"field":"account_review_update","value":{"decision":"APPROVED"}},
            {"field":"phone_number_quality_update","value":{"display_phone_number":"16315550101","event":"FLAGGED","current_limit":"TIER_1K"}},
            {"field":"phone_number_name_update","value":{"display_phone_number":"16315550101","decision":"APPROVED","requested_verified_name":"Lucky Shrub"}},
            {"field":"brand_new_field","value":{"anything":[1,2,3]}}]}]}"#;
        let events = parse(body).unwrap_or_default();
        let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["review", "phone_quality", "phone_name", "unknown"]);
        assert!(
            events
                .iter()
                .all(|e| e.waba_id.as_deref() == Some("102289599326934"))
        );
        assert_eq!(events[0].value.as_deref(), Some("APPROVED"));
        assert!(events[3].raw.contains("brand_new_field"));
        let again = parse(body).unwrap_or_default();
        assert_eq!(
            events, again,
            "the same delivery gives the same dedupe keys"
        );
        let distinct: std::collections::HashSet<_> = events.iter().map(|e| e.dedupe).collect();
        assert_eq!(distinct.len(), 4);
    }

    #[test]
    fn what_is_not_a_notification_is_refused() {
        for body in [&b"nope"[..], b"{}", br#"{"entry":[{"id":"1"}]}"#] {
            assert!(parse(body).is_err());
        }
    }
}
