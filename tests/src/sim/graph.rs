//! The Graph routes: `debug_token`, WABA nodes, phone numbers, the client and owned WABA
//! lists, and the code exchange, answered from the scenario the way Graph answers; and the
//! writes a partner makes after Embedded Signup (see [`writes`]).

mod writes;

use super::faults::{FaultAction, Route};
use super::respond::{GraphFailure, fault_response, json_response};
use super::scenario::{TokenSpec, WabaSpec};
use super::state::{CodeCheck, SimState, now_unix};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde_json::{Map, Value, json};
use std::sync::Arc;

/// Fields Graph knows on a WABA node (a request for any other is Graph's `(#100)` error).
const WABA_FIELDS: &[&str] = &[
    "id",
    "name",
    "currency",
    "timezone_id",
    "message_template_namespace",
    "account_review_status",
    "business_verification_status",
    "ownership_type",
    "health_status",
    "creation_time",
    "phone_numbers",
    "primary_funding_id",
    "owner_business_info",
    "on_behalf_of_business_info",
    "purchase_order_number",
    "country",
];
const WABA_DEFAULT: &[&str] = &[
    "id",
    "name",
    "currency",
    "timezone_id",
    "message_template_namespace",
];
/// Fields Graph knows on a phone number node.
const PHONE_FIELDS: &[&str] = &[
    "id",
    "display_phone_number",
    "verified_name",
    "status",
    "quality_rating",
    "code_verification_status",
    "name_status",
    "platform_type",
    "throughput",
    "messaging_limit_tier",
    "is_official_business_account",
    "last_onboarded_time",
    "account_mode",
    "is_on_biz_app",
];
const PHONE_DEFAULT: &[&str] = &[
    "id",
    "display_phone_number",
    "verified_name",
    "quality_rating",
    "code_verification_status",
    "platform_type",
];
/// Graph's default page size on these edges.
const DEFAULT_LIMIT: usize = 25;
/// The user id of the partner's System User (what `debug_token` says for its token, and the
/// `user` that `assigned_users` assigns).
pub const SYSTEM_USER_ID: &str = "61550000000001";

type Result<T> = std::result::Result<T, GraphFailure>;

/// Decoded request parameters: the query string, then (for writes) the body's.
struct Query(Vec<(String, String)>);

impl Query {
    /// The query string's parameters followed by the body's, which Graph takes as a query
    /// string, `application/x-www-form-urlencoded`, or a JSON object (whose non-string values
    /// are kept as JSON text, as Graph reads `tasks=['MANAGE']`).
    fn parse(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Result<Self> {
        let mut params: Vec<(String, String)> = query
            .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
            .unwrap_or_default();
        let text = std::str::from_utf8(body)
            .map_err(|_| GraphFailure::param("(#100) The request body is not valid UTF-8"))?
            .trim();
        if text.is_empty() {
            return Ok(Self(params));
        }
        let json = headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.to_ascii_lowercase().contains("json"))
            || text.starts_with('{');
        if json {
            let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(text) else {
                return Err(GraphFailure::param(
                    "(#100) The request body is not a valid JSON object",
                ));
            };
            for (k, v) in fields {
                let v = match v {
                    Value::String(s) => s,
                    Value::Null => continue,
                    other => other.to_string(),
                };
                params.push((k, v));
            }
        } else {
            params.extend(form_urlencoded::parse(text.as_bytes()).into_owned());
        }
        Ok(Self(params))
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Which route a path names, and its path segments after the optional version.
fn classify(path: &str) -> (Route, Vec<&str>) {
    let mut segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    if segs
        .first()
        .is_some_and(|s| waba_graph::input::GraphVersion::is_version(s))
    {
        segs.remove(0);
    }
    let is_id = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let route = match segs.as_slice() {
        ["debug_token"] => Route::DebugToken,
        ["oauth", "access_token"] => Route::OauthAccessToken,
        [id] if is_id(id) => Route::Waba,
        [id, "phone_numbers"] if is_id(id) => Route::PhoneNumbers,
        [id, "client_whatsapp_business_accounts"] if is_id(id) => Route::ClientWabas,
        [id, "owned_whatsapp_business_accounts"] if is_id(id) => Route::OwnedWabas,
        [id, "subscribed_apps"] if is_id(id) => Route::SubscribedApps,
        [id, "assigned_users"] if is_id(id) => Route::AssignedUsers,
        [id, "whatsapp_credit_sharing_and_attach"] if is_id(id) => Route::CreditSharing,
        [id, "register"] if is_id(id) => Route::Register,
        [id, "deregister"] if is_id(id) => Route::Deregister,
        [id, "smb_app_data"] if is_id(id) => Route::SmbAppData,
        _ => Route::Other,
    };
    (route, segs)
}

/// A bare id names a WABA, a phone number, or a credit allocation made at run time.
fn refine(route: Route, segs: &[&str], sim: &SimState) -> Route {
    match (route, segs.first()) {
        (Route::Waba, Some(id)) if sim.world.phone_index.contains_key(*id) => Route::Phone,
        (Route::Waba, Some(id)) if sim.world.waba(id).is_none() && sim.allocation(id).is_some() => {
            Route::CreditAllocation
        }
        _ => route,
    }
}

/// Every Graph request lands here.
pub async fn handle(
    State(sim): State<Arc<SimState>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    let (route, segs) = classify(&path);
    let route = refine(route, &segs, &sim);
    let (fault, latency) = sim.on_call(route);
    if !latency.is_zero() {
        // Tokio's timer counts whole milliseconds and wakes up to a tick late (50 ms asked
        // came out as 52.3 ms here); a thread's sleep is precise to tens of microseconds, so
        // each call takes the latency asked, as the benchmark's floors assume.
        let _ = tokio::task::spawn_blocking(move || std::thread::sleep(latency)).await;
    }
    let partner = sim.partner_id();
    let mut short_page = None;
    let mut set_fields = None;
    match &fault {
        Some(FaultAction::Fields { set }) => set_fields = Some(set),
        Some(FaultAction::Latency { ms }) => {
            tokio::time::sleep(std::time::Duration::from_millis(*ms)).await;
        }
        Some(FaultAction::ShortPage { items }) => short_page = Some(*items),
        Some(action) => {
            if let Some(res) = fault_response(action, &partner, sim.serial()) {
                return res;
            }
        }
        None => {}
    }
    let body: &[u8] = if method == Method::GET { &[] } else { &body };
    let query = match Query::parse(uri.query(), &headers, body) {
        Ok(q) => q,
        Err(f) => return f.into_response_with(sim.serial()),
    };
    let token = bearer(&headers).or_else(|| query.get("access_token").map(str::to_owned));
    let verb = match method {
        Method::GET => "get",
        Method::POST => "post",
        Method::DELETE => "delete",
        _ => "",
    };
    let ctx = Ctx {
        sim: &sim,
        query: &query,
        token: token.as_deref(),
        short_page,
        base: base_url(&sim, &headers),
        version: path
            .split('/')
            .find(|s| waba_graph::input::GraphVersion::is_version(s))
            .unwrap_or("v26.0")
            .to_owned(),
        verb,
    };
    let id = segs.first().copied().unwrap_or_default();
    // The WhatsApp Business Management endpoints Meta limits per WABA report the budget
    // used on every answer.
    let limited = matches!(
        route,
        Route::Waba | Route::PhoneNumbers | Route::SubscribedApps | Route::AssignedUsers
    );
    let usage = (limited && sim.world.waba(id).is_some())
        .then(|| sim.buc_call(id))
        .and_then(|percent| {
        let usage = serde_json::json!({ id: [{
            "type": "whatsapp_business_management",
            "call_count": percent, "total_cputime": percent.min(1), "total_time": percent.min(1),
            "estimated_time_to_regain_access": 0,
        }]});
        HeaderValue::from_str(&usage.to_string()).ok()
    });
    let result = match (route, verb) {
        (Route::DebugToken, "get") => ctx.debug_token(),
        (Route::OauthAccessToken, "get") => ctx.exchange_code(),
        (Route::Waba, "get") => ctx.waba(id),
        (Route::PhoneNumbers, "get") => ctx.phone_numbers(id),
        (Route::ClientWabas | Route::OwnedWabas, "get") => ctx.list(id, route),
        (Route::Phone, "get") => ctx.phone(id),
        (Route::Phone, "post") => ctx.set_pin(id),
        (Route::SubscribedApps, "get") => ctx.subscribed_apps(id),
        (Route::SubscribedApps, "post") => ctx.subscribe(id).await,
        (Route::SubscribedApps, "delete") => ctx.unsubscribe(id),
        (Route::AssignedUsers, "get") => ctx.assigned_users(id),
        (Route::AssignedUsers, "post") => ctx.assign_user(id),
        (Route::CreditSharing, "post") => ctx.share_credit(id),
        (Route::CreditAllocation, "get") => ctx.allocation(id),
        (Route::Register, "post") => ctx.register(id),
        (Route::Deregister, "post") => ctx.deregister(id),
        (Route::SmbAppData, "post") => ctx.smb_app_data(id),
        (Route::Other | Route::Any, "get") => Err(GraphFailure::new(
            StatusCode::BAD_REQUEST,
            "OAuthException",
            2500,
            format!("Unknown path components: {path}"),
        )),
        // A method Graph does not support on this path.
        _ => Err(GraphFailure::param(format!(
            "Unsupported {} request.",
            method.as_str().to_ascii_lowercase()
        ))),
    };
    let mut res = match result {
        Ok(mut body) => {
            if let (Some(set), Some(obj)) = (set_fields, body.as_object_mut()) {
                obj.extend(set.clone());
            }
            json_response(StatusCode::OK, &body)
        }
        Err(f) => f.into_response_with(sim.serial()),
    };
    if let Some(usage) = usage {
        res.headers_mut().insert("x-business-use-case-usage", usage);
    }
    res
}

fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    (scheme.eq_ignore_ascii_case("bearer") || scheme.eq_ignore_ascii_case("oauth"))
        .then(|| token.trim().to_owned())
}

fn base_url(sim: &SimState, headers: &HeaderMap) -> String {
    if let Some(url) = &sim.public_url {
        return url.trim_end_matches('/').to_owned();
    }
    let host = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

/// Who is calling.
enum Caller<'a> {
    SystemUser,
    Business(&'a TokenSpec),
}

struct Ctx<'a> {
    sim: &'a SimState,
    query: &'a Query,
    token: Option<&'a str>,
    /// Cap on the entries of this page (a `short_page` fault).
    short_page: Option<usize>,
    base: String,
    version: String,
    /// The request's method in Graph's words (`get`, `post`, `delete`).
    verb: &'static str,
}

impl<'a> Ctx<'a> {
    /// Appends the caller's token to a message when the scenario asks Graph to misbehave so.
    fn echo(&self, message: String) -> String {
        match (self.sim.world.scenario.echo_tokens_in_errors, self.token) {
            (true, Some(t)) => format!("{message} (access_token={t})"),
            _ => message,
        }
    }

    fn caller(&self) -> Result<Caller<'a>> {
        let Some(token) = self.token else {
            return Err(GraphFailure::new(
                StatusCode::BAD_REQUEST,
                "OAuthException",
                104,
                "An access token is required to request this resource.",
            ));
        };
        let world = &self.sim.world;
        if token == world.scenario.system_user_token {
            return Ok(Caller::SystemUser);
        }
        match world.token(token) {
            Some(t) if !t.invalid && !self.expired(t) => Ok(Caller::Business(t)),
            Some(t) if !t.invalid => Err(GraphFailure::new(
                StatusCode::BAD_REQUEST,
                "OAuthException",
                190,
                self.echo(format!(
                    "Error validating access token: Session has expired at unix time {}.",
                    self.expires_at(t)
                )),
            )
            .subcode(463)),
            _ => Err(GraphFailure::new(
                StatusCode::BAD_REQUEST,
                "OAuthException",
                190,
                self.echo("Invalid OAuth access token - Cannot parse access token".into()),
            )),
        }
    }

    fn expires_at(&self, t: &TokenSpec) -> i64 {
        self.sim.started_unix + t.expires_in
    }

    fn expired(&self, t: &TokenSpec) -> bool {
        self.expires_at(t) <= now_unix()
    }

    fn debug_token(&self) -> Result<Value> {
        let world = &self.sim.world;
        let app = &world.scenario.app;
        let app_token = format!("{}|{}", app.id, app.secret);
        match self.token {
            Some(t) if t == world.scenario.system_user_token || t == app_token => {}
            Some(_) => {
                return Err(GraphFailure::new(
                    StatusCode::BAD_REQUEST,
                    "OAuthException",
                    190,
                    self.echo("Invalid OAuth access token - Cannot parse access token".into()),
                ));
            }
            None => {
                return Err(GraphFailure::new(
                    StatusCode::BAD_REQUEST,
                    "OAuthException",
                    104,
                    "An access token is required to request this resource.",
                ));
            }
        }
        let Some(input) = self.query.get("input_token").filter(|s| !s.is_empty()) else {
            return Err(GraphFailure::param(
                "(#100) The parameter input_token is required",
            ));
        };
        if input == world.scenario.system_user_token {
            return Ok(json!({"data": {
                "app_id": app.id, "type": "SYSTEM_USER", "application": app.name,
                "data_access_expires_at": 0, "expires_at": 0, "is_valid": true,
                "issued_at": self.sim.started_unix - 86_400,
                "scopes": ["business_management", "whatsapp_business_management", "whatsapp_business_messaging"],
                "granular_scopes": [], "user_id": SYSTEM_USER_ID,
            }}));
        }
        let Some(t) = world.token(input).filter(|t| !t.invalid) else {
            return Ok(json!({"data": {
                "error": {"code": 190, "message": self.echo("Invalid OAuth access token - Cannot parse access token".into())},
                "is_valid": false, "scopes": [],
            }}));
        };
        let messaging = t.messaging.clone().unwrap_or_else(|| t.granted.clone());
        let mut granular = vec![
            json!({"scope": "whatsapp_business_management", "target_ids": t.granted}),
            json!({"scope": "whatsapp_business_messaging", "target_ids": messaging}),
        ];
        granular.extend(t.extra_scopes.iter().map(|s| json!(s)));
        let mut scopes: Vec<String> = vec![
            "whatsapp_business_management".into(),
            "whatsapp_business_messaging".into(),
        ];
        scopes.extend(t.extra_scopes.iter().map(|s| s.scope.clone()));
        scopes.push("public_profile".into());
        let expires_at = self.expires_at(t);
        let mut data = json!({
            "app_id": app.id, "type": "USER", "application": app.name,
            "data_access_expires_at": expires_at + 30 * 86_400, "expires_at": expires_at,
            "is_valid": true, "issued_at": self.sim.started_unix - 60,
            "scopes": scopes, "granular_scopes": granular, "user_id": t.user_id,
        });
        if self.expired(t) {
            data["is_valid"] = false.into();
            data["error"] = json!({"code": 190, "subcode": 463,
                "message": format!("Error validating access token: Session has expired at unix time {expires_at}.")});
        }
        Ok(json!({ "data": data }))
    }

    /// `oauth/access_token`: a signup code for a business token, or with
    /// `grant_type=client_credentials` the app's own access token
    /// (<https://developers.facebook.com/docs/facebook-login/guides/access-tokens>). A wrong
    /// app id is code 101, a wrong secret code 1, both `OAuthException`, as reported from
    /// Graph in <https://github.com/diowa/icare/issues/5> and
    /// <https://github.com/facebookarchive/php-graph-sdk/issues/538>.
    fn exchange_code(&self) -> Result<Value> {
        let app = &self.sim.world.scenario.app;
        let q = self.query;
        let client_credentials = match q.get("grant_type") {
            None => false,
            Some("client_credentials") => true,
            Some(other) => {
                return Err(GraphFailure::param(format!(
                    "(#100) Unsupported grant_type: {other}"
                )));
            }
        };
        let required: &[&str] = if client_credentials {
            &["client_id", "client_secret"]
        } else {
            &["client_id", "client_secret", "code"]
        };
        for &required in required {
            if q.get(required).is_none_or(str::is_empty) {
                return Err(GraphFailure::param(format!(
                    "(#100) The parameter {required} is required"
                )));
            }
        }
        if q.get("client_id") != Some(app.id.as_str()) {
            return Err(GraphFailure::new(
                StatusCode::BAD_REQUEST,
                "OAuthException",
                101,
                "Error validating application. Invalid application ID.",
            ));
        }
        if q.get("client_secret") != Some(app.secret.as_str()) {
            return Err(GraphFailure::new(
                StatusCode::BAD_REQUEST,
                "OAuthException",
                1,
                "Error validating client secret.",
            ));
        }
        if client_credentials {
            return Ok(
                json!({"access_token": format!("{}|SimAppToken", app.id), "token_type": "bearer"}),
            );
        }
        let code_error = |subcode: i64, message: &str| {
            Err(
                GraphFailure::new(StatusCode::BAD_REQUEST, "OAuthException", 100, message)
                    .subcode(subcode),
            )
        };
        match self
            .sim
            .redeem_code(q.get("code").unwrap_or_default(), q.get("redirect_uri"))
        {
            // `{"access_token", "token_type", "expires_in"}` as Meta's manual login flow
            // documents (developers.facebook.com/docs/facebook-login/guides/advanced/manual-flow).
            CodeCheck::Token(token) => {
                let expires_in = self
                    .sim
                    .world
                    .token(&token)
                    .map_or(0, |t| (self.expires_at(t) - now_unix()).max(0));
                Ok(json!({"access_token": token, "token_type": "bearer", "expires_in": expires_in}))
            }
            CodeCheck::Expired => code_error(36007, "This authorization code has expired."),
            CodeCheck::Used => code_error(36009, "This authorization code has been used."),
            CodeCheck::Unknown => code_error(36008, "Invalid verification code format."),
            // The manual login flow: the exchange's `redirect_uri` must be the dialog's
            // (developers.facebook.com/documentation/facebook-login/guides/advanced/manual-flow).
            CodeCheck::RedirectMismatch => code_error(
                36008,
                "Error validating verification code. Please make sure your redirect_uri is identical to the one you used in the OAuth dialog request",
            ),
        }
    }

    /// Whether `caller` may act on `waba`: `Ok(false)` when Graph hides it from them.
    fn may_access(&self, caller: &Caller<'_>, waba: &WabaSpec) -> Result<bool> {
        let id = waba.id.as_str();
        let allowed = match caller {
            Caller::SystemUser => self.sim.world.partner_sees(id),
            Caller::Business(t) => {
                t.granted.iter().any(|g| g == id)
                    || t.messaging
                        .as_ref()
                        .is_some_and(|m| m.iter().any(|g| g == id))
            }
        };
        // A client WABA the partner's System User is not assigned to (`assigned_users`):
        // Graph's permissions error, code 200
        // (<https://developers.facebook.com/documentation/business-messaging/whatsapp/solution-providers/manage-accounts>).
        if allowed && matches!(caller, Caller::SystemUser) && !self.sim.system_user_assigned(id) {
            return Err(GraphFailure::permission());
        }
        Ok(allowed)
    }

    /// The WABA if the caller may act on it; Graph's unsupported-request error otherwise.
    fn readable_waba(&self, id: &str) -> Result<&'a WabaSpec> {
        let caller = self.caller()?;
        match self.sim.world.waba(id) {
            Some(w) if self.may_access(&caller, w)? => Ok(w),
            _ => Err(GraphFailure::unsupported(
                self.verb,
                &self.echo(id.to_owned()),
            )),
        }
    }

    /// The phone number (and its WABA) if the caller may act on its WABA; Graph's
    /// unsupported-request error otherwise.
    fn readable_phone(&self, id: &str) -> Result<(&'a WabaSpec, &'a Map<String, Value>)> {
        let caller = self.caller()?;
        match self.sim.world.phone(id) {
            Some((w, p)) if self.may_access(&caller, w)? => Ok((w, p)),
            _ => Err(GraphFailure::unsupported(
                self.verb,
                &self.echo(id.to_owned()),
            )),
        }
    }

    /// `GET /{phone-number-id}`: the phone number node, with what writes changed
    /// (<https://developers.facebook.com/documentation/business-messaging/whatsapp/business-phone-numbers/phone-numbers>).
    fn phone(&self, id: &str) -> Result<Value> {
        let (_, phone) = self.readable_phone(id)?;
        let fields = parse_fields(self.query.get("fields"), PHONE_DEFAULT)?;
        select(
            &phone_node(self.sim, phone),
            &fields,
            PHONE_FIELDS,
            "WhatsAppBusinessPhoneNumber",
        )
    }

    fn waba(&self, id: &str) -> Result<Value> {
        let waba = self.readable_waba(id)?;
        let fields = parse_fields(self.query.get("fields"), WABA_DEFAULT)?;
        self.sim.on_waba_read(id);
        let mut out = render_waba(self.sim, waba, &fields)?;
        // A review decided at run time (and announced by webhook) shows in later reads.
        if let (Some(decision), Some(obj)) = (self.sim.review_of(id), out.as_object_mut())
            && obj.contains_key("account_review_status")
        {
            obj.insert("account_review_status".into(), Value::String(decision));
        }
        Ok(out)
    }

    fn phone_numbers(&self, id: &str) -> Result<Value> {
        let waba = self.readable_waba(id)?;
        let fields = parse_fields(self.query.get("fields"), PHONE_DEFAULT)?;
        let ids: Vec<String> = waba
            .phone_numbers
            .iter()
            .filter_map(|p| p.get("id").and_then(Value::as_str).map(str::to_owned))
            .collect();
        let (start, end) = self.page_range(&ids)?;
        let mut data = Vec::new();
        for phone in &waba.phone_numbers[start..end] {
            data.push(select(
                &phone_node(self.sim, phone),
                &fields,
                PHONE_FIELDS,
                "WhatsAppBusinessPhoneNumber",
            )?);
        }
        let path = format!("{id}/phone_numbers");
        Ok(json!({"data": data, "paging": self.paging(&path, &ids, start, end)}))
    }

    fn list(&self, business_id: &str, route: Route) -> Result<Value> {
        let world = &self.sim.world;
        match self.caller()? {
            Caller::SystemUser => {}
            Caller::Business(_) => {
                return Err(GraphFailure::new(
                    StatusCode::FORBIDDEN,
                    "OAuthException",
                    200,
                    "(#200) Permissions error",
                ));
            }
        }
        let business = world
            .business(business_id)
            .ok_or_else(|| GraphFailure::unsupported_get(business_id))?;
        let (edge, all) = if route == Route::ClientWabas {
            (
                "client_whatsapp_business_accounts",
                self.sim.client_wabas(business_id, &business.client_wabas),
            )
        } else {
            (
                "owned_whatsapp_business_accounts",
                business.owned_wabas.clone(),
            )
        };
        let fields = parse_fields(self.query.get("fields"), WABA_DEFAULT)?;
        let filter = match self.query.get("filtering") {
            Some(raw) => Some(parse_filtering(raw)?),
            None => None,
        };
        let mut wabas: Vec<&WabaSpec> = all
            .iter()
            .filter_map(|id| world.waba(id))
            .filter(|w| {
                filter.as_ref().is_none_or(|f| {
                    f.matches(w.creation_time, |field| {
                        w.fields.get(field.as_str()).and_then(Value::as_str)
                    })
                })
            })
            .collect();
        match self.query.get("sort") {
            None => {}
            Some("creation_time_ascending") => {
                wabas.sort_by_key(|w| (w.creation_time, w.id.clone()))
            }
            Some("creation_time_descending") => {
                wabas.sort_by_key(|w| std::cmp::Reverse((w.creation_time, w.id.clone())))
            }
            Some(other) => {
                return Err(GraphFailure::param(format!(
                    "(#100) Param sort must be one of {{creation_time_ascending, creation_time_descending}}, got {other}"
                )));
            }
        }
        let ids: Vec<String> = wabas.iter().map(|w| w.id.clone()).collect();
        let (start, end) = self.page_range(&ids)?;
        let data = wabas[start..end]
            .iter()
            .map(|w| render_waba(self.sim, w, &fields))
            .collect::<Result<Vec<_>>>()?;
        let path = format!("{business_id}/{edge}");
        Ok(json!({"data": data, "paging": self.paging(&path, &ids, start, end)}))
    }

    fn limit(&self) -> Result<usize> {
        match self.query.get("limit") {
            None => Ok(DEFAULT_LIMIT),
            Some(raw) => match raw.parse::<i64>() {
                Ok(n) if n > 100 => Err(GraphFailure::param(
                    "(#100) The parameter limit must be less than or equal to 100",
                )),
                Ok(n) if n >= 1 => Ok(n as usize),
                Ok(_) => Err(GraphFailure::param(
                    "(#100) The parameter limit must be at least 1",
                )),
                Err(_) => Err(GraphFailure::param(format!(
                    "(#100) Param limit must be an integer, got {raw}"
                ))),
            },
        }
    }

    /// The slice of `ids` this request's `limit`, `after` and `before` select.
    fn page_range(&self, ids: &[String]) -> Result<(usize, usize)> {
        let (start, end) = self.full_page_range(ids)?;
        Ok((start, self.short_page.map_or(end, |n| end.min(start + n))))
    }

    fn full_page_range(&self, ids: &[String]) -> Result<(usize, usize)> {
        let limit = self.limit()?;
        let decode = |c: &str| -> Result<String> {
            URL_SAFE_NO_PAD
                .decode(c.trim_end_matches('='))
                .ok()
                .and_then(|b| String::from_utf8(b).ok())
                .ok_or_else(|| GraphFailure::param("(#100) Invalid cursor"))
        };
        let position = |id: &str| ids.iter().position(|x| x == id);
        if let Some(after) = self.query.get("after") {
            let after = decode(after)?;
            let start = match position(&after) {
                Some(p) => p + 1,
                None if after == BEFORE_FIRST => 0,
                None => ids.len(),
            };
            return Ok((start, (start + limit).min(ids.len())));
        }
        if let Some(before) = self.query.get("before") {
            let end = position(&decode(before)?).unwrap_or(0);
            return Ok((end.saturating_sub(limit), end));
        }
        Ok((0, limit.min(ids.len())))
    }

    /// `paging` as Graph writes it: cursors, and absolute links that carry `access_token`.
    fn paging(&self, path: &str, ids: &[String], start: usize, end: usize) -> Value {
        let mut paging = Map::new();
        if start < end {
            paging.insert(
                "cursors".into(),
                json!({"before": cursor(&ids[start]), "after": cursor(&ids[end - 1])}),
            );
        }
        let link = |key: &str, c: String| {
            let mut q = form_urlencoded::Serializer::new(String::new());
            if let Some(t) = self.token {
                q.append_pair("access_token", t);
            }
            q.append_pair("pretty", "0");
            for (k, v) in &self.query.0 {
                if !matches!(
                    k.as_str(),
                    "access_token" | "pretty" | "after" | "before" | "limit"
                ) {
                    q.append_pair(k, v);
                }
            }
            q.append_pair("limit", &self.limit().unwrap_or(DEFAULT_LIMIT).to_string());
            q.append_pair(key, &c);
            format!("{}/{}/{path}?{}", self.base, self.version, q.finish())
        };
        if end < ids.len() {
            // An empty page mid-list (a short-page fault) still links onwards, as Graph does.
            let resume = match (start < end, start) {
                (true, _) => Some(cursor(&ids[end - 1])),
                (false, 0) => Some(cursor(BEFORE_FIRST)),
                (false, s) => Some(cursor(&ids[s - 1])),
            };
            if let Some(c) = resume.filter(|_| start < end || self.short_page.is_some()) {
                paging.insert("next".into(), link("after", c).into());
            }
        }
        if start < end && start > 0 {
            paging.insert(
                "previous".into(),
                link("before", cursor(&ids[start])).into(),
            );
        }
        Value::Object(paging)
    }
}

/// What an `after` cursor holds to point before the first entry (ids are digits, so no id
/// collides with it).
const BEFORE_FIRST: &str = "start";

fn cursor(id: &str) -> String {
    URL_SAFE_NO_PAD.encode(id)
}

/// A requested field: name and, for an expanded edge, sub-fields.
type FieldReq = (String, Option<Vec<String>>);

/// Parses `fields` the way Graph reads it; `default` when absent.
fn parse_fields(raw: Option<&str>, default: &[&str]) -> Result<Vec<FieldReq>> {
    let Some(raw) = raw else {
        return Ok(default.iter().map(|f| ((*f).to_owned(), None)).collect());
    };
    let syntax = || {
        GraphFailure::param(format!(
            "Syntax error \"Expected name.\" at character 0: {raw}"
        ))
    };
    let mut out = Vec::new();
    let (mut depth, mut start) = (0, 0);
    let bytes = raw.as_bytes();
    for i in 0..=bytes.len() {
        let c = bytes.get(i).copied().unwrap_or(b',');
        match c {
            b'{' => depth += 1,
            b'}' if depth > 0 => depth -= 1,
            b'}' => return Err(syntax()),
            b',' if depth == 0 => {
                let item = raw[start..i].trim();
                start = i + 1;
                if item.is_empty() {
                    continue;
                }
                match item.split_once('{') {
                    Some((name, inner)) => {
                        let inner = inner.strip_suffix('}').ok_or_else(syntax)?;
                        let subs = inner
                            .split(',')
                            .map(|s| s.trim().to_owned())
                            .filter(|s| !s.is_empty())
                            .collect();
                        out.push((name.trim().to_owned(), Some(subs)));
                    }
                    None => out.push((item.to_owned(), None)),
                }
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(syntax());
    }
    Ok(out)
}

/// Copies the requested fields of a node, and its `id` as Graph always returns it whichever
/// fields were asked for (Meta's example answers `?fields=account_review_status` with
/// `{"account_review_status": "APPROVED", "id": ...}`:
/// <https://developers.facebook.com/documentation/business-messaging/whatsapp/solution-providers/manage-accounts>);
/// unknown fields are Graph's `(#100)` error.
fn select(
    node: &Map<String, Value>,
    fields: &[FieldReq],
    known: &[&str],
    node_type: &str,
) -> Result<Value> {
    let mut out = Map::new();
    for (name, _) in fields {
        if !known.contains(&name.as_str()) {
            return Err(GraphFailure::param(format!(
                "(#100) Tried accessing nonexisting field ({name}) on node type ({node_type})"
            )));
        }
        if let Some(v) = node.get(name) {
            out.insert(name.clone(), v.clone());
        }
    }
    if let Some(id) = node.get("id") {
        out.entry("id").or_insert_with(|| id.clone());
    }
    Ok(Value::Object(out))
}

/// A phone number node as Graph shows it now: the scenario's, with what writes changed
/// (`status`, `platform_type`) and `last_onboarded_time` from `onboarded_secs_ago`.
fn phone_node(sim: &SimState, phone: &Map<String, Value>) -> Map<String, Value> {
    let mut node = phone.clone();
    if let Some(secs) = phone.get("onboarded_secs_ago").and_then(Value::as_i64)
        && !node.contains_key("last_onboarded_time")
    {
        node.insert(
            "last_onboarded_time".into(),
            iso8601(sim.started_unix - secs).into(),
        );
    }
    let id = phone.get("id").and_then(Value::as_str).unwrap_or_default();
    if let Some(rt) = sim.phone_runtime(id) {
        if let Some(status) = rt.status {
            node.insert("status".into(), status.into());
        }
        if let Some(platform) = rt.platform_type {
            node.insert("platform_type".into(), platform.into());
        }
    }
    node
}

fn render_waba(sim: &SimState, waba: &WabaSpec, fields: &[FieldReq]) -> Result<Value> {
    let mut node = waba.fields.clone();
    node.insert("id".into(), waba.id.clone().into());
    node.insert("creation_time".into(), iso8601(waba.creation_time).into());
    // A credit line attached at run time: `primary_funding_id` reads the allocation's
    // receiving credential, as Meta's verification step compares them
    // (<https://developers.facebook.com/documentation/business-messaging/whatsapp/solution-providers/share-and-revoke-credit-lines>).
    if let Some(a) = sim.allocation_of(&waba.id) {
        node.insert("primary_funding_id".into(), a.receiving_credential.into());
    }
    let mut out = select(&node, fields, WABA_FIELDS, "WhatsAppBusinessAccount")?;
    if let Some((_, sub)) = fields.iter().find(|(n, _)| n == "phone_numbers") {
        let sub_fields: Vec<FieldReq> = match sub {
            Some(s) => s.iter().map(|f| (f.clone(), None)).collect(),
            None => vec![("id".to_owned(), None)],
        };
        let mut data = Vec::new();
        for phone in &waba.phone_numbers {
            data.push(select(
                &phone_node(sim, phone),
                &sub_fields,
                PHONE_FIELDS,
                "WhatsAppBusinessPhoneNumber",
            )?);
        }
        let ids: Vec<&str> = waba
            .phone_numbers
            .iter()
            .filter_map(|p| p.get("id").and_then(Value::as_str))
            .collect();
        let mut edge = json!({ "data": data });
        if let (Some(first), Some(last)) = (ids.first(), ids.last()) {
            edge["paging"] = json!({"cursors": {"before": cursor(first), "after": cursor(last)}});
        }
        out["phone_numbers"] = edge;
    }
    Ok(out)
}

/// Graph's date-time format: `2020-11-09T23:00:13+0000`.
pub fn iso8601(t: i64) -> String {
    let secs = t.rem_euclid(86_400);
    let (y, m, d) = waba_graph::time::civil_from_days(t.div_euclid(86_400));
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}+0000",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Graph's `filtering` parameter, the conditions Meta documents for the list edges
/// (`creation_time` with `GREATER_THAN`/`LESS_THAN`, `ownership_type` and
/// `marketing_messages_onboarding_status` with `IN`), checked with Graph's messages.
fn parse_filtering(raw: &str) -> Result<waba_graph::input::Filtering> {
    waba_graph::input::Filtering::from_json(raw)
        .map_err(|e| GraphFailure::param(format!("(#100) Param filtering is invalid: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_and_versions() {
        assert_eq!(classify("/v26.0/debug_token").0, Route::DebugToken);
        assert_eq!(classify("/debug_token").0, Route::DebugToken);
        assert_eq!(classify("/v21.0/123/phone_numbers").0, Route::PhoneNumbers);
        assert_eq!(
            classify("/v21.0/123/owned_whatsapp_business_accounts").0,
            Route::OwnedWabas
        );
        assert_eq!(classify("/v21.0/12a").0, Route::Other);
        assert_eq!(classify("/vX/123").0, Route::Other);
        assert_eq!(
            classify("/v21.0/oauth/access_token").0,
            Route::OauthAccessToken
        );
        for (path, route) in [
            ("/v26.0/1/subscribed_apps", Route::SubscribedApps),
            ("/1/assigned_users", Route::AssignedUsers),
            (
                "/v26.0/1/whatsapp_credit_sharing_and_attach",
                Route::CreditSharing,
            ),
            ("/v26.0/1/register", Route::Register),
            ("/v26.0/1/deregister", Route::Deregister),
            ("/v26.0/1/smb_app_data", Route::SmbAppData),
            ("/v26.0/1/register/x", Route::Other),
        ] {
            assert_eq!(classify(path).0, route, "{path}");
        }
    }

    #[test]
    fn iso_dates() {
        assert_eq!(iso8601(1_604_962_813), "2020-11-09T23:00:13+0000");
        assert_eq!(iso8601(0), "1970-01-01T00:00:00+0000");
        assert_eq!(
            waba_graph::time::UnixTime::parse(&iso8601(1_709_208_000)),
            Some(waba_graph::time::UnixTime(1_709_208_000))
        );
    }

    #[test]
    fn a_node_always_has_its_id() {
        let node = json!({"id": "7", "name": "n", "status": "s"});
        let node = node.as_object().unwrap();
        let only_status = [("status".to_owned(), None)];
        let out = select(node, &only_status, &["id", "name", "status"], "Node").unwrap();
        assert_eq!(out, json!({"status": "s", "id": "7"}));
    }

    #[test]
    fn fields_syntax() {
        let f = parse_fields(Some("id,phone_numbers{id,status},name"), &[]).unwrap();
        assert_eq!(
            f[1],
            (
                "phone_numbers".to_owned(),
                Some(vec!["id".to_owned(), "status".to_owned()])
            )
        );
        assert!(parse_fields(Some("id}"), &[]).is_err());
        assert!(parse_fields(Some("phone_numbers{id"), &[]).is_err());
    }
}
