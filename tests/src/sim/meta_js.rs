//! The stand-in for Meta's browser side: a small JS SDK (`FB.init`, `FB.login`) served at
//! `/_sim/sdk.js`, the Embedded Signup dialog at `/_sim/dialog` that posts
//! `WA_EMBEDDED_SIGNUP` messages to its opener like Meta's popup and returns a token or a
//! code to the login callback, and `/_sim/forge`, a page that posts a forged signup message
//! from whatever origin serves it.
//!
//! The dialog offers the scenario's flows as buttons (a person picks one in the demo) or
//! runs the flow set with `PUT /_sim/flow {"name": ...}` by itself (tests).
//!
//! `GET /{version}/dialog/oauth` stands in for Meta's full-page login dialog, which a page
//! reaches by redirecting when a popup cannot be used: it goes back to `redirect_uri` with a
//! `code` bound to that address, or with Meta's `error=access_denied` when no login happened.

use super::control::esc;
use super::state::SimState;
use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use std::sync::Arc;

type Sim = State<Arc<SimState>>;

const SDK_JS: &str = r#"(function () {
  "use strict";
  var me = document.currentScript;
  var SIM = new URL(me ? me.src : location.href).origin;
  var FB = {
    _opts: {},
    init: function (opts) { FB._opts = opts || {}; },
    getLoginStatus: function (cb) { cb({ status: "unknown", authResponse: null }); },
    AppEvents: { logPageView: function () {} },
    login: function (cb, opts) {
      opts = opts || {};
      var q = "config_id=" + encodeURIComponent(opts.config_id || "") +
        "&response_type=" + encodeURIComponent(opts.response_type || "token") +
        "&extras=" + encodeURIComponent(JSON.stringify(opts.extras || {})) +
        "&app_id=" + encodeURIComponent(FB._opts.appId || "");
      var popup = window.open(SIM + "/_sim/dialog?" + q, "waba_sim_dialog", "width=520,height=680");
      var done = false, timer = null;
      function finish(resp) {
        if (done) return;
        done = true;
        window.removeEventListener("message", onMessage);
        clearInterval(timer);
        cb(resp);
      }
      function onMessage(ev) {
        if (ev.origin !== SIM || !ev.data || ev.data.type !== "SIM_FB_LOGIN") return;
        finish(ev.data.response);
      }
      window.addEventListener("message", onMessage);
      if (!popup) { finish({ status: "unknown", authResponse: null }); return; }
      timer = setInterval(function () {
        // Like Meta's SDK: a closed dialog means the user left without logging in.
        if (popup.closed) setTimeout(function () { finish({ status: "unknown", authResponse: null }); }, 400);
      }, 200);
    }
  };
  window.FB = FB;
  if (typeof window.fbAsyncInit === "function") setTimeout(window.fbAsyncInit, 0);
})();
"#;

/// `GET /_sim/sdk.js`.
pub async fn sdk() -> Response {
    js_response(SDK_JS.to_owned())
}

/// `GET /_sim/{locale}/sdk.js`: the SDK in one of Meta's locales, as
/// `https://connect.facebook.net/{locale}/sdk.js` serves it. Meta's locales are `ll_CC`,
/// with `es_LA` and `ar_AR` as its umbrella locales for Spanish and Arabic
/// (<https://developers.facebook.com/docs/javascript/internationalization>); anything else is
/// a 404. The locale asked for is kept for tests (`GET /_sim/sdk-locales`).
pub async fn localized_sdk(State(sim): Sim, Path(locale): Path<String>) -> Response {
    let b = locale.as_bytes();
    let ll_cc = b.len() == 5
        && b[..2].iter().all(u8::is_ascii_lowercase)
        && b[2] == b'_'
        && b[3..].iter().all(u8::is_ascii_uppercase);
    if !ll_cc {
        return StatusCode::NOT_FOUND.into_response();
    }
    sim.record_sdk_locale(&locale);
    js_response(SDK_JS.to_owned())
}

/// `GET /_sim/sdk-locales`: the locales the SDK was loaded in, in order.
pub async fn sdk_locales(State(sim): Sim) -> Json<Vec<String>> {
    Json(sim.sdk_locales())
}

fn js_response(body: String) -> Response {
    let mut res = body.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    res
}

/// What the page asked `FB.login` for.
#[derive(Deserialize)]
pub struct DialogQuery {
    #[serde(default)]
    config_id: String,
    #[serde(default)]
    response_type: String,
    /// `extras` as JSON text (the Embedded Signup version and setup).
    #[serde(default)]
    extras: String,
}

/// `GET /_sim/dialog`: the Embedded Signup stand-in.
pub async fn dialog(State(sim): Sim, Query(q): Query<DialogQuery>) -> Html<String> {
    let flows = serde_json::to_string(&sim.world.scenario.flows).unwrap_or_else(|_| "[]".into());
    let auto = serde_json::to_string(&sim.auto_flow()).unwrap_or_else(|_| "null".into());
    sim.record_login(&q.response_type, &q.extras);
    let code_flow = q.response_type == "code";
    let mut buttons = String::new();
    for f in &sim.world.scenario.flows {
        buttons += &format!(
            "<button type=\"button\" data-flow=\"{}\">{}</button>",
            esc(&f.name),
            esc(&f.label)
        );
    }
    // JSON inside <script>: `<` escaped so no text can close the element.
    let data =
        format!(r#"{{"flows":{flows},"auto":{auto},"code":{code_flow}}}"#).replace('<', "\\u003c");
    Html(format!(
        r##"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Embedded Signup (simulated)</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:15px/1.4 system-ui,sans-serif;margin:0;color:#1c1e21;background:#f0f2f5}}
header{{background:#1877f2;color:#fff;padding:1rem 1.25rem;font-weight:600}}
main{{padding:1.25rem}} p{{margin:.25rem 0 1rem}} button{{display:block;width:100%;margin:.5rem 0;padding:.75rem;
font:inherit;border:1px solid #ccd0d5;border-radius:6px;background:#fff;cursor:pointer;text-align:left}}
button:hover,button:focus-visible{{border-color:#1877f2;outline:none;box-shadow:0 0 0 2px #1877f2}}
small{{color:#606770}}</style></head>
<body><header>WhatsApp Business: Embedded Signup <small style="color:#dbe7ff">(simulator, config {config})</small></header>
<main><p>This window stands in for Meta's signup dialog. Choose how the business goes through it:</p>
{buttons}<p><small>The choice posts Meta's <code>WA_EMBEDDED_SIGNUP</code> message to the page and answers its
<code>FB.login</code> callback.</small></p></main>
<script type="application/json" id="sim-data">{data}</script>
<script>
(function () {{
  var data = JSON.parse(document.getElementById("sim-data").textContent);
  var opener = window.opener;
  function post(msg) {{ if (opener) opener.postMessage(msg, "*"); }}
  function sessionMessage(flow) {{
    if (!flow.event) return;
    post(JSON.stringify({{ type: "WA_EMBEDDED_SIGNUP", event: flow.event.event, data: flow.event.data || {{}}, version: 3 }}));
  }}
  async function loginResponse(flow) {{
    if (!flow.token) return {{ status: "unknown", authResponse: null }};
    if (data.code) {{
      var r = await fetch("/_sim/codes", {{ method: "POST", headers: {{ "content-type": "application/json" }}, body: JSON.stringify({{ token: flow.token }}) }});
      var minted = await r.json();
      return {{ status: "connected", authResponse: {{ code: minted.code, userID: "10222270944537964", expiresIn: 0 }} }};
    }}
    return {{ status: "connected", authResponse: {{ accessToken: flow.token, userID: "10222270944537964", expiresIn: 5183999 }} }};
  }}
  async function run(name) {{
    var flow = data.flows.find(function (f) {{ return f.name === name; }});
    if (!flow) return;
    // A person closing the window takes a moment; a blocked popup never opens at all.
    if (flow.close) {{ setTimeout(function () {{ window.close(); }}, data.auto ? 1500 : 0); return; }}
    var response = await loginResponse(flow);
    if (!flow.login_first) sessionMessage(flow);
    post({{ type: "SIM_FB_LOGIN", response: response }});
    if (flow.login_first) setTimeout(function () {{ sessionMessage(flow); }}, 150);
    setTimeout(function () {{ window.close(); }}, flow.login_first ? 400 : 100);
  }}
  document.querySelectorAll("button[data-flow]").forEach(function (b) {{
    b.addEventListener("click", function () {{ run(b.getAttribute("data-flow")); }});
  }});
  if (data.auto) setTimeout(function () {{ run(data.auto); }}, 150);
}})();
</script></body></html>"##,
        config = esc(&q.config_id),
    ))
}

/// `GET /_sim/forge`: posts a forged `FINISH` naming WABA 666 to its parent and opener. Served
/// from an origin the page does not trust, it must be ignored.
pub async fn forge() -> Html<&'static str> {
    Html(
        r#"<!doctype html><html><body><script>
var msg = JSON.stringify({type: "WA_EMBEDDED_SIGNUP", event: "FINISH", version: 3,
  data: {waba_id: "666666666666666", phone_number_id: "1", business_id: "1"}});
for (var i = 0; i < 20; i++) setTimeout(function () {
  if (window.parent && window.parent !== window) window.parent.postMessage(msg, "*");
  if (window.opener) window.opener.postMessage(msg, "*");
}, i * 100);
</script></body></html>"#,
    )
}

/// Body of `PUT /_sim/flow`.
#[derive(Deserialize)]
pub struct FlowBody {
    /// The flow to run automatically; `null` to wait for a click.
    pub name: Option<String>,
}

/// `PUT /_sim/flow`: the flow the dialog runs by itself.
pub async fn set_flow(State(sim): Sim, Json(body): Json<FlowBody>) -> StatusCode {
    if let Some(name) = &body.name
        && !sim.world.scenario.flows.iter().any(|f| &f.name == name)
    {
        return StatusCode::NOT_FOUND;
    }
    sim.set_auto_flow(body.name);
    StatusCode::NO_CONTENT
}

/// Query of the full-page login dialog, as a page sends it.
#[derive(Deserialize)]
pub struct OauthQuery {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    state: String,
    /// The configuration, response type and extras, as `FB.login` would send them.
    #[serde(flatten)]
    login: DialogQuery,
    /// The flow a person picked on the page.
    #[serde(default)]
    flow: Option<String>,
}

/// `GET /{version}/dialog/oauth`: Meta's full-page login dialog with an Embedded Signup
/// configuration (developers.facebook.com/documentation/facebook-login/guides/advanced/manual-flow:
/// `client_id`, `redirect_uri`, `state`, `response_type=code`; Meta goes back to
/// `redirect_uri?code=...&state=...`, or, when the person does not log in,
/// `?error=access_denied&error_code=200&error_description=Permissions+error.&error_reason=user_denied`).
/// It lists the scenario's flows; the one picked (or set with `PUT /_sim/flow`) redirects.
/// Without a session message: a full page has no opener to post it to.
pub async fn oauth_dialog(State(sim): Sim, Query(q): Query<OauthQuery>) -> Response {
    let web_address =
        q.redirect_uri.starts_with("https://") || q.redirect_uri.starts_with("http://");
    if q.client_id != sim.world.scenario.app.id || !web_address || q.redirect_uri.contains('#') {
        return (
            StatusCode::BAD_REQUEST,
            Html("<p>Invalid app id or redirect_uri (a web address without a fragment).</p>"),
        )
            .into_response();
    }
    let Some(name) = q.flow.clone().or_else(|| sim.auto_flow()) else {
        sim.record_login(&q.login.response_type, &q.login.extras);
        return oauth_page(&sim, &q).into_response();
    };
    if q.flow.is_none() {
        sim.record_login(&q.login.response_type, &q.login.extras);
    }
    let Some(flow) = sim.world.scenario.flows.iter().find(|f| f.name == name) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let mut back = form_urlencoded::Serializer::new(String::new());
    match (&flow.token, flow.close, q.login.response_type == "code") {
        (Some(token), false, true) => {
            back.append_pair(
                "code",
                &sim.mint_code_for(token, Some(q.redirect_uri.clone())),
            );
        }
        _ => {
            back.append_pair("error", "access_denied")
                .append_pair("error_code", "200")
                .append_pair("error_description", "Permissions error.")
                .append_pair("error_reason", "user_denied");
        }
    }
    back.append_pair("state", &q.state);
    let sep = if q.redirect_uri.contains('?') {
        '&'
    } else {
        '?'
    };
    let target = format!("{}{sep}{}", q.redirect_uri, back.finish());
    match HeaderValue::from_str(&target) {
        Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        Err(_) => StatusCode::BAD_REQUEST.into_response(),
    }
}

/// The full-page dialog's page: a link per flow, each back to the dialog with `flow`.
fn oauth_page(sim: &SimState, q: &OauthQuery) -> Html<String> {
    let mut links = String::new();
    for f in &sim.world.scenario.flows {
        let href = form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &q.client_id)
            .append_pair("redirect_uri", &q.redirect_uri)
            .append_pair("state", &q.state)
            .append_pair("config_id", &q.login.config_id)
            .append_pair("response_type", &q.login.response_type)
            .append_pair("flow", &f.name)
            .finish();
        links += &format!("<li><a href=\"?{}\">{}</a></li>", esc(&href), esc(&f.label));
    }
    Html(format!(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Embedded Signup (simulated, full page)</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{{font:15px/1.4 system-ui,sans-serif;margin:0 auto;max-width:40rem;padding:1.25rem;color:#1c1e21}}
a{{display:block;padding:.6rem;margin:.4rem 0;border:1px solid #ccd0d5;border-radius:6px;color:#0b5cc4;text-decoration:none}}
ul{{list-style:none;padding:0}}</style></head>
<body><h1>WhatsApp Business: Embedded Signup</h1>
<p>This page stands in for Meta's full-page signup dialog (config {config}). Choose how the business goes through it; you return to the partner's page.</p>
<ul>{links}</ul></body></html>"#,
        config = esc(&q.login.config_id),
    ))
}
