//! The stand-in for Meta's browser side: a small JS SDK (`FB.init`, `FB.login`) served at
//! `/_sim/sdk.js`, the Embedded Signup dialog at `/_sim/dialog` that posts
//! `WA_EMBEDDED_SIGNUP` messages to its opener like Meta's popup and returns a token or a
//! code to the login callback, and `/_sim/forge`, a page that posts a forged signup message
//! from whatever origin serves it.
//!
//! The dialog offers the scenario's flows as buttons (a person picks one in the demo) or
//! runs the flow set with `PUT /_sim/flow {"name": ...}` by itself (tests).

use super::control::esc;
use super::state::SimState;
use axum::Json;
use axum::extract::{Query, State};
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
    if (flow.close) {{ window.close(); return; }}
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
