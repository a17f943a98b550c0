//! The writes a partner makes after Embedded Signup: subscribing the app to a WABA's webhooks,
//! assigning its System User, sharing its credit line, registering (and deregistering) phone
//! numbers, setting their two-step PIN, and asking a coexistence number for its WhatsApp
//! Business app data. Each answers with Meta's documented shape and errors; the Meta page is
//! named next to each. What they change is run-time state (`SimState`), undone by a reset.

use super::{Caller, Ctx, Result, SYSTEM_USER_ID, iso8601, parse_fields, select};
use crate::sim::respond::GraphFailure;
use crate::sim::state::{PhoneRuntime, fnv, now_unix};
use axum::http::StatusCode;
use serde_json::{Map, Value, json};
use std::time::Duration;

/// Register (and, separately, deregister) attempts allowed per number in the moving window.
const REGISTER_LIMIT: usize = 10;
/// The moving window of the register limit: 72 hours.
const REGISTER_WINDOW_SECS: i64 = 72 * 3600;
/// How long after onboarding a coexistence number may ask for its app data: 24 hours.
const SYNC_WINDOW_SECS: i64 = 24 * 3600;
/// `data_localization_region` values Meta lists for registration.
const LOCALIZATION_REGIONS: &[&str] = &[
    "AU", "ID", "IN", "JP", "SG", "KR", "DE", "CH", "GB", "BR", "BH", "ZA", "AE", "CA",
];
/// Tasks `assigned_users` accepts: `MANAGE`, `DEVELOP` and the granular ones Meta lists for
/// Multi-Partner Solutions.
const TASKS: &[&str] = &[
    "MANAGE",
    "DEVELOP",
    "MANAGE_TEMPLATES",
    "MANAGE_PHONE",
    "VIEW_COST",
    "MANAGE_EXTENSIONS",
    "VIEW_PHONE_ASSETS",
    "MANAGE_PHONE_ASSETS",
    "VIEW_TEMPLATES",
    "VIEW_INSIGHTS",
    "MANAGE_USERS",
    "MANAGE_BILLING",
    "MESSAGING",
];
/// The longest `override_callback_uri` Meta accepts.
const MAX_OVERRIDE_LEN: usize = 200;

/// Whether a phone node is a WhatsApp Business app number onboarded for coexistence.
fn is_coexistence(phone: &Map<String, Value>) -> bool {
    phone.get("is_on_biz_app") == Some(&Value::Bool(true))
}

fn success() -> Value {
    json!({"success": true})
}

impl Ctx<'_> {
    /// A required, non-empty parameter, or Graph's `(#100)` error naming it.
    fn required(&self, name: &str) -> Result<&str> {
        self.query
            .get(name)
            .filter(|v| !v.trim().is_empty())
            .ok_or_else(|| GraphFailure::param(format!("(#100) The parameter {name} is required")))
    }

    /// `messaging_product`, which Cloud API's phone-number writes require as `whatsapp`.
    fn require_whatsapp(&self) -> Result<()> {
        match self.required("messaging_product")? {
            "whatsapp" => Ok(()),
            other => Err(GraphFailure::param(format!(
                "(#100) Param messaging_product must be one of {{whatsapp}} - got \"{other}\"."
            ))),
        }
    }

    /// A six-digit `pin`.
    fn pin(&self) -> Result<&str> {
        let pin = self.required("pin")?;
        if pin.len() == 6 && pin.bytes().all(|b| b.is_ascii_digit()) {
            Ok(pin)
        } else {
            Err(GraphFailure::param(
                "(#100) Param pin must be a 6-digit numeric string",
            ))
        }
    }

    /// Only the partner's System User token: a business token gets Graph's code 200.
    fn system_user_only(&self) -> Result<()> {
        match self.caller()? {
            Caller::SystemUser => Ok(()),
            Caller::Business(_) => Err(GraphFailure::permission()),
        }
    }

    /// `GET /{waba-id}/subscribed_apps`: the app, with its alternate callback URL when one is
    /// set, or no entry when the app is not subscribed
    /// (<https://developers.facebook.com/documentation/business-messaging/whatsapp/solution-providers/manage-webhooks>,
    /// <https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/override>).
    pub(super) fn subscribed_apps(&self, waba_id: &str) -> Result<Value> {
        self.readable_waba(waba_id)?;
        let app = &self.sim.world.scenario.app;
        let data: Vec<Value> = self
            .sim
            .subscription(waba_id)
            .map(|sub| {
                let mut entry = json!({"whatsapp_business_api_data": {
                    "id": app.id,
                    "link": format!("https://www.facebook.com/games/?app_id={}", app.id),
                    "name": app.name,
                }});
                if let Some(uri) = sub.override_callback_uri {
                    entry["override_callback_uri"] = uri.into();
                }
                entry
            })
            .into_iter()
            .collect();
        Ok(json!({ "data": data }))
    }

    /// `POST /{waba-id}/subscribed_apps`: subscribes the app to the WABA's webhooks
    /// (<https://developers.facebook.com/documentation/business-messaging/whatsapp/solution-providers/manage-webhooks>).
    /// Subscribing again succeeds; without `override_callback_uri` it removes any alternate
    /// callback URL, with it (and `verify_token`) it sets one, which Meta allows only once the
    /// app is subscribed and which it checks with a `hub.challenge` GET first
    /// (<https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/override>;
    /// errors 2200 and 2201 as the Graph reference lists them,
    /// <https://developers.facebook.com/docs/graph-api/reference/whats-app-business-account/subscribed_apps/>).
    pub(super) async fn subscribe(&self, waba_id: &str) -> Result<Value> {
        self.readable_waba(waba_id)?;
        let Some(uri) = self
            .query
            .get("override_callback_uri")
            .filter(|u| !u.trim().is_empty())
        else {
            self.sim.subscribe(waba_id, None);
            return Ok(success());
        };
        let verify_token = self.required("verify_token")?;
        if uri.chars().count() > MAX_OVERRIDE_LEN {
            return Err(GraphFailure::param(format!(
                "(#100) Param override_callback_uri must be at most {MAX_OVERRIDE_LEN} characters long"
            )));
        }
        let url = reqwest::Url::parse(uri)
            .ok()
            .filter(|u| matches!(u.scheme(), "https" | "http"))
            .ok_or_else(|| {
                GraphFailure::param("(#100) Param override_callback_uri must be a valid URL")
            })?;
        if !self.sim.is_subscribed(waba_id) {
            // Reported by integrators (e.g. dualhook.com/docs/whatsapp-error-100-webhook-override)
            // for the requirement Meta's override page states.
            return Err(GraphFailure::param(
                "(#100) Before override the current callback uri, your app must be subscribed to receive messages for WhatsApp Business Account",
            ));
        }
        self.verify_callback(url, verify_token).await?;
        self.sim.subscribe(waba_id, Some(uri.to_owned()));
        Ok(success())
    }

    /// Meta's verification request: `GET uri?hub.mode=subscribe&hub.challenge=…&hub.verify_token=…`,
    /// answered with HTTP 200 and the challenge
    /// (<https://developers.facebook.com/documentation/business-messaging/whatsapp/webhooks/create-webhook-endpoint>).
    async fn verify_callback(&self, mut url: reqwest::Url, verify_token: &str) -> Result<()> {
        let challenge = (1_000_000_000
            + fnv(&format!("{url}/{}/{}", self.sim.serial(), now_unix())) % 9_000_000_000)
            .to_string();
        url.query_pairs_mut()
            .append_pair("hub.mode", "subscribe")
            .append_pair("hub.challenge", &challenge)
            .append_pair("hub.verify_token", verify_token);
        let failed = |detail: String| {
            GraphFailure::new(
                StatusCode::BAD_REQUEST,
                "OAuthException",
                2200,
                format!("(#2200) subscription validation failed: {detail}"),
            )
        };
        let res = reqwest::Client::new()
            .get(url)
            .timeout(Duration::from_secs(5))
            .send()
            .await
            .map_err(|e| failed(format!("could not reach the callback URL ({e})")))?;
        let status = res.status();
        if !status.is_success() {
            return Err(failed(format!(
                "Received HTTP code {} from server",
                status.as_u16()
            )));
        }
        let body = res
            .text()
            .await
            .map_err(|e| failed(format!("could not read the answer ({e})")))?;
        if body.trim() != challenge {
            let received: String = body.chars().take(100).collect();
            return Err(GraphFailure::new(
                StatusCode::BAD_REQUEST,
                "OAuthException",
                2201,
                format!(
                    "(#2201) received an invalid hub.challenge while validating endpoint: expected value=\"{challenge}\", received=\"{received}\""
                ),
            ));
        }
        Ok(())
    }

    /// `DELETE /{waba-id}/subscribed_apps`: unsubscribes the app
    /// (<https://developers.facebook.com/documentation/business-messaging/whatsapp/solution-providers/manage-webhooks>).
    pub(super) fn unsubscribe(&self, waba_id: &str) -> Result<Value> {
        self.readable_waba(waba_id)?;
        self.sim.unsubscribe(waba_id);
        Ok(success())
    }

    /// `GET /{waba-id}/assigned_users`: the partner's System User with its tasks, when assigned
    /// (<https://developers.facebook.com/documentation/business-messaging/whatsapp/solution-providers/manage-system-users/>).
    pub(super) fn assigned_users(&self, waba_id: &str) -> Result<Value> {
        let caller = self.caller()?;
        let visible = match (&caller, self.sim.world.waba(waba_id)) {
            // The System User sees the edge of a partner's WABA even before it is assigned.
            (Caller::SystemUser, Some(_)) => self.sim.world.partner_sees(waba_id),
            (_, Some(w)) => self.may_access(&caller, w)?,
            (_, None) => false,
        };
        if !visible {
            return Err(GraphFailure::unsupported(
                self.verb,
                &self.echo(waba_id.to_owned()),
            ));
        }
        let data: Vec<Value> = self
            .sim
            .assigned_tasks(waba_id)
            .map(|tasks| json!({"id": SYSTEM_USER_ID, "name": "Sim System User", "tasks": tasks}))
            .into_iter()
            .collect();
        Ok(json!({ "data": data }))
    }

    /// `POST /{waba-id}/assigned_users?user=…&tasks=['MANAGE']`: assigns the partner's System
    /// User to a client or owned WABA; only an admin System User token may
    /// (<https://developers.facebook.com/documentation/business-messaging/whatsapp/solution-providers/manage-system-users/>;
    /// errors 100 and 200 as the Graph reference lists them,
    /// <https://developers.facebook.com/docs/graph-api/reference/whats-app-business-account/assigned_users/>).
    pub(super) fn assign_user(&self, waba_id: &str) -> Result<Value> {
        self.system_user_only()?;
        if self.sim.world.waba(waba_id).is_none() || !self.sim.world.partner_sees(waba_id) {
            return Err(GraphFailure::unsupported(
                self.verb,
                &self.echo(waba_id.to_owned()),
            ));
        }
        let user = self.required("user")?;
        let tasks = parse_tasks(self.required("tasks")?)?;
        if user != SYSTEM_USER_ID {
            return Err(GraphFailure::param(format!(
                "(#100) Param user must be the id of a user of your business portfolio; {user} is not"
            )));
        }
        self.sim.assign(waba_id, tasks);
        Ok(success())
    }

    /// `POST /{credit-line-id}/whatsapp_credit_sharing_and_attach?waba_currency=…&waba_id=…`:
    /// shares the partner's credit line with a client WABA and attaches it; System User token
    /// only, and the System User must be assigned to the WABA first
    /// (<https://developers.facebook.com/documentation/business-messaging/whatsapp/solution-providers/share-and-revoke-credit-lines>,
    /// <https://developers.facebook.com/docs/marketing-api/reference/extended-credit/whatsapp_credit_sharing_and_attach>).
    /// Meta documents only codes 100 and 200 and that an attached line cannot be changed, so
    /// a second share for the same WABA is a code 100.
    pub(super) fn share_credit(&self, credit_line_id: &str) -> Result<Value> {
        self.system_user_only()?;
        let line = self
            .sim
            .world
            .scenario
            .credit_line
            .as_ref()
            .filter(|l| l.id == credit_line_id)
            .ok_or_else(|| {
                GraphFailure::unsupported(self.verb, &self.echo(credit_line_id.to_owned()))
            })?;
        let currency = self.required("waba_currency")?;
        let waba_id = self.required("waba_id")?;
        if !line.currency_allowed.iter().any(|c| c == currency) {
            return Err(GraphFailure::param(format!(
                "(#100) Param waba_currency must be one of {{{}}} - got \"{currency}\".",
                line.currency_allowed.join(", ")
            )));
        }
        if self.sim.world.waba(waba_id).is_none() || !self.sim.world.partner_sees(waba_id) {
            return Err(GraphFailure::param(format!(
                "(#100) Param waba_id must be a WhatsApp Business Account shared with your business; {waba_id} is not"
            )));
        }
        if !self.sim.system_user_assigned(waba_id) {
            return Err(GraphFailure::permission());
        }
        match self.sim.share_credit(&line.id, waba_id, currency) {
            Ok(a) => Ok(json!({"allocation_config_id": a.id, "waba_id": a.waba_id})),
            Err(existing) => Err(GraphFailure::param(format!(
                "(#100) Invalid parameter: a credit line is already attached to WhatsApp Business Account {waba_id} (allocation {}); credit lines cannot be changed after being attached",
                existing.id
            ))),
        }
    }

    /// `GET /{allocation-config-id}?fields=receiving_credential`: the allocation a share made,
    /// for Meta's check that its receiving credential is the WABA's `primary_funding_id`
    /// (<https://developers.facebook.com/documentation/business-messaging/whatsapp/solution-providers/share-and-revoke-credit-lines>,
    /// <https://developers.facebook.com/docs/graph-api/reference/extended-credit-allocation-config>).
    pub(super) fn allocation(&self, id: &str) -> Result<Value> {
        self.system_user_only()?;
        let a = self
            .sim
            .allocation(id)
            .ok_or_else(|| GraphFailure::unsupported(self.verb, &self.echo(id.to_owned())))?;
        let fields = parse_fields(self.query.get("fields"), &["id"])?;
        let mut node = Map::new();
        node.insert("id".into(), a.id.clone().into());
        node.insert(
            "receiving_credential".into(),
            json!({"id": a.receiving_credential}),
        );
        select(
            &node,
            &fields,
            &["id", "receiving_credential"],
            "ExtendedCreditAllocationConfig",
        )
    }

    /// `POST /{phone-number-id}/register` with `messaging_product: whatsapp`, a 6-digit `pin`
    /// and optionally `data_localization_region`
    /// (<https://developers.facebook.com/documentation/business-messaging/whatsapp/business-phone-numbers/registration>).
    /// Ten attempts per number in a 72-hour moving window (failed ones too), then 133016; a
    /// number whose code is not verified gets 133006; a PIN other than the number's two-step
    /// PIN gets 133005 (codes and titles:
    /// <https://developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes>).
    /// Success connects the number to Cloud API and sets the PIN if it had none.
    pub(super) fn register(&self, phone_id: &str) -> Result<Value> {
        let (_, phone) = self.readable_phone(phone_id)?;
        self.require_whatsapp()?;
        let pin = self.pin()?.to_owned();
        if let Some(region) = self.query.get("data_localization_region")
            && !LOCALIZATION_REGIONS.contains(&region)
        {
            return Err(GraphFailure::param(format!(
                "(#100) Param data_localization_region must be one of {{{}}} - got \"{region}\".",
                LOCALIZATION_REGIONS.join(", ")
            )));
        }
        if is_coexistence(phone) {
            // Meta: coexistence numbers are already registered; onboarding skips this step
            // (https://developers.facebook.com/documentation/business-messaging/whatsapp/embedded-signup/onboarding-business-app-users).
            return Err(GraphFailure::param(format!(
                "(#100) Invalid parameter: phone number {phone_id} is in use with the WhatsApp Business app and already registered; skip registration for WhatsApp Business app users"
            )));
        }
        let verified = phone
            .get("code_verification_status")
            .and_then(Value::as_str)
            == Some("VERIFIED");
        let now = now_unix();
        self.sim
            .with_phone(phone_id, phone, |p: &mut PhoneRuntime| {
                limit(&mut p.register_attempts, now)?;
                if !verified {
                    return Err(GraphFailure::whatsapp(
                        133006,
                        "Phone number re-verification needed",
                        "Phone number needs to be verified before registering.",
                    ));
                }
                match &p.pin {
                    Some(current) if *current != pin => {
                        return Err(GraphFailure::whatsapp(
                            133005,
                            "Two step verification PIN Mismatch",
                            "Two-step verification PIN incorrect.",
                        ));
                    }
                    Some(_) => {}
                    None => p.pin = Some(pin),
                }
                p.status = Some("CONNECTED".into());
                p.platform_type = Some("CLOUD_API".into());
                Ok(success())
            })
    }

    /// `POST /{phone-number-id}/deregister`: the number leaves Cloud API. Its own limit of ten
    /// per 72 hours (133016), and not for numbers also on the WhatsApp Business app
    /// (<https://developers.facebook.com/documentation/business-messaging/whatsapp/business-phone-numbers/registration>).
    /// Meta does not say what the number reads afterwards: here `DISCONNECTED`, `NOT_APPLICABLE`.
    pub(super) fn deregister(&self, phone_id: &str) -> Result<Value> {
        let (_, phone) = self.readable_phone(phone_id)?;
        if is_coexistence(phone) {
            return Err(GraphFailure::param(format!(
                "(#100) Invalid parameter: phone number {phone_id} is in use with both Cloud API and the WhatsApp Business app and cannot be deregistered"
            )));
        }
        let now = now_unix();
        self.sim
            .with_phone(phone_id, phone, |p: &mut PhoneRuntime| {
                limit(&mut p.deregister_attempts, now)?;
                p.status = Some("DISCONNECTED".into());
                p.platform_type = Some("NOT_APPLICABLE".into());
                Ok(success())
            })
    }

    /// `POST /{phone-number-id}` with a 6-digit `pin`: sets the number's two-step
    /// verification PIN, without the old one
    /// (<https://developers.facebook.com/documentation/business-messaging/whatsapp/business-phone-numbers/two-step-verification/>).
    pub(super) fn set_pin(&self, phone_id: &str) -> Result<Value> {
        let (_, phone) = self.readable_phone(phone_id)?;
        let pin = self.pin()?.to_owned();
        self.sim
            .with_phone(phone_id, phone, |p: &mut PhoneRuntime| p.pin = Some(pin));
        Ok(success())
    }

    /// `POST /{phone-number-id}/smb_app_data` with `sync_type` `smb_app_state_sync`
    /// (contacts) or `history`: once each, within 24 hours of onboarding, for a number
    /// onboarded from the WhatsApp Business app
    /// (<https://developers.facebook.com/documentation/business-messaging/whatsapp/embedded-signup/onboarding-business-app-users>;
    /// errors 2593107 and 2593108:
    /// <https://developers.facebook.com/documentation/business-messaging/whatsapp/support/error-codes>).
    pub(super) fn smb_app_data(&self, phone_id: &str) -> Result<Value> {
        let (_, phone) = self.readable_phone(phone_id)?;
        self.require_whatsapp()?;
        let sync_type = self.required("sync_type")?.to_owned();
        if !matches!(sync_type.as_str(), "smb_app_state_sync" | "history") {
            return Err(GraphFailure::param(format!(
                "(#100) Param sync_type must be one of {{smb_app_state_sync, history}} - got \"{sync_type}\"."
            )));
        }
        if !is_coexistence(phone) {
            return Err(GraphFailure::param(format!(
                "(#100) Invalid parameter: phone number {phone_id} was not onboarded from the WhatsApp Business app"
            )));
        }
        let onboarded = self.sim.started_unix
            - phone
                .get("onboarded_secs_ago")
                .and_then(Value::as_i64)
                .unwrap_or(0);
        let now = now_unix();
        let request_id = (100_000_000_000_000
            + fnv(&format!("{phone_id}/{sync_type}/{}", self.sim.serial())) % 900_000_000_000_000)
            .to_string();
        self.sim.with_phone(phone_id, phone, |p: &mut PhoneRuntime| {
            if p.synced.contains(&sync_type) {
                return Err(GraphFailure::whatsapp(
                    2593107,
                    "You have exceeded the maximum number of times to call the synchronization api for this phone number.",
                    "You have exceeded the maximum number of times to call the synchronization api for this phone number.",
                ));
            }
            if now - onboarded >= SYNC_WINDOW_SECS {
                return Err(GraphFailure::whatsapp(
                    2593108,
                    "Synchronization request can only be made within 24 hours of onboarding",
                    &format!(
                        "Synchronization request can only be made within 24 hours of onboarding (onboarded at {}).",
                        iso8601(onboarded)
                    ),
                ));
            }
            p.synced.push(sync_type);
            Ok(json!({"messaging_product": "whatsapp", "request_id": request_id}))
        })
    }
}

/// Counts an attempt against Meta's limit of ten per number in a 72-hour moving window; an
/// attempt over the limit is refused with 133016 and not counted.
fn limit(attempts: &mut Vec<i64>, now: i64) -> Result<()> {
    attempts.retain(|t| now - t < REGISTER_WINDOW_SECS);
    if attempts.len() >= REGISTER_LIMIT {
        return Err(GraphFailure::whatsapp(
            133016,
            "Account register deregister rate limit exceeded",
            "Registration or Deregistration failed because there were too many attempts for this phone number in a short period of time",
        ));
    }
    attempts.push(now);
    Ok(())
}

/// `tasks` as Graph reads it: `['MANAGE']` (its array-in-a-string), a JSON array, or a
/// comma-separated list; each a task Meta documents.
fn parse_tasks(raw: &str) -> Result<Vec<String>> {
    let inner = raw.trim();
    let inner = inner
        .strip_prefix('[')
        .and_then(|r| r.strip_suffix(']'))
        .unwrap_or(inner);
    let tasks: Vec<String> = inner
        .split(',')
        .map(|t| t.trim().trim_matches(|c| c == '\'' || c == '"').trim())
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .collect();
    if tasks.is_empty() {
        return Err(GraphFailure::param(
            "(#100) The parameter tasks is required",
        ));
    }
    if let Some(bad) = tasks.iter().find(|t| !TASKS.contains(&t.as_str())) {
        return Err(GraphFailure::param(format!(
            "(#100) Param tasks[0] must be one of {{{}}} - got \"{bad}\".",
            TASKS.join(", ")
        )));
    }
    Ok(tasks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_in_every_syntax() {
        for raw in [
            "['MANAGE']",
            "[\"MANAGE\"]",
            "MANAGE",
            " [ 'MANAGE' , 'DEVELOP' ] ",
        ] {
            assert_eq!(parse_tasks(raw).unwrap()[0], "MANAGE", "{raw}");
        }
        assert!(parse_tasks("[]").is_err());
        assert!(parse_tasks("['OWN']").is_err());
    }

    #[test]
    fn ten_attempts_per_72_hours() {
        let mut attempts = vec![0; 9];
        assert!(limit(&mut attempts, 10).is_ok());
        let e = limit(&mut attempts, 11).unwrap_err();
        assert_eq!(e.code, 133016);
        assert_eq!(attempts.len(), 10, "a refused attempt is not counted");
        assert!(
            limit(&mut attempts, REGISTER_WINDOW_SECS + 1).is_ok(),
            "the window moves"
        );
    }

    #[test]
    fn phone_fields_include_coexistence() {
        assert!(super::super::PHONE_FIELDS.contains(&"is_on_biz_app"));
    }
}
