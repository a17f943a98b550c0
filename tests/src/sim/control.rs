//! The control endpoints under `/_sim/`: call counts, faults, latency, code minting, webhook
//! subscriptions, and an overview page of the scenario's accounts.

use super::faults::Fault;
use super::graph::iso8601;
use super::state::SimState;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

type Sim = State<Arc<SimState>>;

/// `GET /_sim/calls`: calls per route and in total.
pub async fn calls(State(sim): Sim) -> Json<Value> {
    let routes = sim.calls();
    let total: u64 = routes.values().sum();
    Json(json!({"total": total, "routes": routes}))
}

/// `POST /_sim/reset`: counts to zero, faults back to the scenario's, codes and latency gone.
pub async fn reset(State(sim): Sim) -> StatusCode {
    sim.reset();
    StatusCode::NO_CONTENT
}

/// One fault or a list of them.
#[derive(Deserialize)]
#[serde(untagged)]
pub enum FaultsBody {
    /// Several.
    Many(Vec<Fault>),
    /// One.
    One(Fault),
}

/// `GET /_sim/faults`: the active faults.
pub async fn list_faults(State(sim): Sim) -> Json<Vec<Fault>> {
    Json(sim.faults())
}

/// `POST /_sim/faults`: adds faults (a fault object or an array of them).
pub async fn add_faults(State(sim): Sim, Json(body): Json<FaultsBody>) -> StatusCode {
    sim.add_faults(match body {
        FaultsBody::Many(v) => v,
        FaultsBody::One(f) => vec![f],
    });
    StatusCode::NO_CONTENT
}

/// `DELETE /_sim/faults`: removes every fault.
pub async fn clear_faults(State(sim): Sim) -> StatusCode {
    sim.clear_faults();
    StatusCode::NO_CONTENT
}

/// Body of `PUT /_sim/latency`.
#[derive(Deserialize)]
pub struct LatencyBody {
    /// Milliseconds added to every Graph call.
    pub ms: u64,
}

/// `PUT /_sim/latency`: sets the latency added to every Graph call.
pub async fn set_latency(State(sim): Sim, Json(body): Json<LatencyBody>) -> StatusCode {
    sim.set_latency(Duration::from_millis(body.ms));
    StatusCode::NO_CONTENT
}

/// Body of `POST /_sim/share` and `POST /_sim/unshare`.
#[derive(Deserialize)]
pub struct ShareBody {
    /// The partner business whose client list changes.
    pub business_id: String,
    /// The WABA shared or unshared (any WABA of the scenario).
    pub waba_id: String,
}

/// `POST /_sim/share`: the WABA joins the business's client list now, whatever its age.
pub async fn share(State(sim): Sim, Json(body): Json<ShareBody>) -> StatusCode {
    if sim.world.waba(&body.waba_id).is_none() || sim.world.business(&body.business_id).is_none() {
        return StatusCode::NOT_FOUND;
    }
    sim.share(&body.business_id, &body.waba_id);
    StatusCode::NO_CONTENT
}

/// `POST /_sim/unshare`: the WABA leaves the business's client list.
pub async fn unshare(State(sim): Sim, Json(body): Json<ShareBody>) -> StatusCode {
    if sim.world.business(&body.business_id).is_none() {
        return StatusCode::NOT_FOUND;
    }
    sim.unshare(&body.business_id, &body.waba_id);
    StatusCode::NO_CONTENT
}

/// Body of `PUT /_sim/webhooks`.
#[derive(Deserialize)]
pub struct WebhookTarget {
    /// Where webhooks go; `null` stops them.
    pub url: Option<String>,
}

/// `PUT /_sim/webhooks`: where webhooks go.
pub async fn set_webhook_url(State(sim): Sim, Json(body): Json<WebhookTarget>) -> StatusCode {
    sim.set_webhook_url(body.url);
    StatusCode::NO_CONTENT
}

/// `POST /_sim/webhooks/send`: sends a webhook now (after `after_secs`, if given, in the
/// background); answers `{"delivered": true, "statuses": [...]}` with the receiver's statuses,
/// one per delivery, or `{"delivered": false, "reason": ..., "statuses": []}` for a WABA's
/// own webhook while the app is not subscribed to that WABA (Meta sends none then).
pub async fn send_webhook(
    State(sim): Sim,
    Json(w): Json<super::webhooks::ScheduledWebhook>,
) -> Response {
    if w.after_secs > 0.0 {
        super::webhooks::schedule(sim, w);
        return StatusCode::ACCEPTED.into_response();
    }
    match super::webhooks::send(&sim, &w).await {
        Ok(delivery) => Json(delivery).into_response(),
        Err(e) => (StatusCode::BAD_GATEWAY, e).into_response(),
    }
}

/// Body of `POST /_sim/subscribed`.
#[derive(Deserialize)]
pub struct SubscribedBody {
    /// The WABA the app is now subscribed to.
    pub waba_id: String,
}

/// `POST /_sim/subscribed`: subscribes the app to a WABA's webhooks, as the partner's
/// `POST /{waba-id}/subscribed_apps` would (for tests that need a subscribed WABA without a
/// pipeline).
pub async fn subscribe(State(sim): Sim, Json(body): Json<SubscribedBody>) -> StatusCode {
    if sim.world.waba(&body.waba_id).is_none() {
        return StatusCode::NOT_FOUND;
    }
    let keep = sim
        .subscription(&body.waba_id)
        .and_then(|s| s.override_callback_uri);
    sim.subscribe(&body.waba_id, keep);
    StatusCode::NO_CONTENT
}

/// `GET /_sim/subscribed`: the WABAs the app is subscribed to, with any alternate callback URL.
pub async fn subscriptions(State(sim): Sim) -> Json<Value> {
    let subscribed: Vec<Value> = sim
        .subscriptions()
        .into_iter()
        .map(|(waba_id, s)| json!({"waba_id": waba_id, "override_callback_uri": s.override_callback_uri}))
        .collect();
    Json(json!({ "subscribed": subscribed }))
}

/// Body of `POST /_sim/codes`.
#[derive(Deserialize)]
pub struct CodeBody {
    /// The business token the code exchanges for.
    pub token: String,
}

/// `POST /_sim/codes`: mints a one-time code for a scenario token, as `FB.login` would.
pub async fn mint_code(State(sim): Sim, Json(body): Json<CodeBody>) -> Response {
    if sim.world.token(&body.token).is_none() {
        return (
            StatusCode::NOT_FOUND,
            Json(json!({"error": "no such token in the scenario"})),
        )
            .into_response();
    }
    let code = sim.mint_code(&body.token);
    Json(json!({"code": code, "expires_in": sim.code_ttl.as_secs()})).into_response()
}

/// `GET /_sim/healthz`.
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /_sim/`: a page listing the scenario's businesses and accounts, for people and for
/// the demo's smoke check.
pub async fn overview(State(sim): Sim) -> Html<String> {
    let world = &sim.world;
    let s = &world.scenario;
    let mut html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>graph-sim: {name}</title>\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <style>body{{font:15px/1.4 system-ui,sans-serif;margin:2rem;color:#1c1e21}}\
         table{{border-collapse:collapse;width:100%;margin-bottom:2rem}}td,th{{text-align:left;padding:.35rem .6rem;border-bottom:1px solid #dadde1}}\
         .badge{{padding:.1rem .5rem;border-radius:1rem;font-size:.8rem;background:#e4e6eb}}\
         .APPROVED{{background:#d8f5d0}}.PENDING{{background:#fff3c4}}.REJECTED{{background:#ffd6d6}}</style></head>\
         <body><h1>graph-sim: {name}</h1><p>{desc}</p>",
        name = esc(&s.name),
        desc = esc(&s.description)
    );
    for b in &s.businesses {
        for (edge, ids) in [("client", &b.client_wabas), ("owned", &b.owned_wabas)] {
            if ids.is_empty() {
                continue;
            }
            html += &format!(
                "<h2>{} ({}): {edge} WABAs ({})</h2><table><thead><tr><th>WABA</th><th>Name</th>\
                 <th>Review</th><th>Created</th><th>Phone numbers</th><th>Webhooks</th></tr></thead><tbody>",
                esc(&b.name),
                esc(&b.id),
                ids.len()
            );
            for id in ids.iter().take(200) {
                let Some(w) = world.waba(id) else { continue };
                let text = |k: &str| w.fields.get(k).and_then(Value::as_str).unwrap_or("");
                let status = text("account_review_status");
                let phones: Vec<String> = w
                    .phone_numbers
                    .iter()
                    .map(|p| {
                        let t = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or("");
                        let id = t("id");
                        let status = sim
                            .phone_runtime(id)
                            .and_then(|r| r.status)
                            .unwrap_or_else(|| t("status").to_owned());
                        format!("{} ({})", esc(t("display_phone_number")), esc(&status))
                    })
                    .collect();
                let webhooks = match sim.subscription(id) {
                    Some(s) => match s.override_callback_uri {
                        Some(uri) => format!("subscribed (override {})", esc(&uri)),
                        None => "subscribed".to_owned(),
                    },
                    None => "not subscribed".to_owned(),
                };
                html += &format!(
                    "<tr data-account-id=\"{id}\"><td>{id}</td><td>{name}</td>\
                     <td><span class=\"badge {st}\">{st}</span></td><td>{created}</td><td>{phones}</td>\
                     <td data-webhooks>{webhooks}</td></tr>",
                    id = esc(id),
                    name = esc(text("name")),
                    st = esc(status),
                    created = iso8601(w.creation_time),
                    phones = phones.join(", "),
                );
            }
            if ids.len() > 200 {
                html += &format!("<tr><td colspan=6>… and {} more</td></tr>", ids.len() - 200);
            }
            html += "</tbody></table>";
        }
    }
    html += "</body></html>";
    Html(html)
}

/// Escapes text for HTML.
pub fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '&' => out.push_str("&amp;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
