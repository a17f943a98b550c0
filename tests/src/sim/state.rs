//! The simulator's shared state: the loaded world plus what changes at run time
//! (faults, call counts, minted codes, added latency, and what the partner's writes changed:
//! webhook subscriptions, System User assignments, shared credit lines, phone registrations).

use super::faults::{Fault, FaultQueue, Route};
use super::scenario::World;
use serde_json::{Map, Value};
use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Shared by every request.
#[derive(Debug)]
pub struct SimState {
    /// The scenario, expanded.
    pub world: World,
    /// Unix time the simulator started: token expiries count from it.
    pub started_unix: i64,
    /// How long an authorization code stays valid.
    pub code_ttl: Duration,
    /// Base URL for paging links; from the `Host` header when absent.
    pub public_url: Option<String>,
    dynamic: Mutex<Dynamic>,
    /// This state itself, for tasks that send webhooks later (set by `sim::app`).
    pub(crate) me: std::sync::OnceLock<std::sync::Weak<SimState>>,
}

#[derive(Debug, Default)]
struct Dynamic {
    faults: FaultQueue,
    calls: BTreeMap<Route, u64>,
    codes: HashMap<String, MintedCode>,
    latency: Duration,
    serial: u64,
    auto_flow: Option<String>,
    /// What the last `FB.login` asked for: `response_type` and `extras` (JSON).
    last_login: Option<(String, String)>,
    /// The locales pages loaded the SDK in (`/_sim/{locale}/sdk.js`), in order.
    sdk_locales: Vec<String>,
    /// Client-list changes since start, per business: WABAs added, WABAs removed.
    shares: HashMap<String, (Vec<String>, Vec<String>)>,
    /// Review decisions made at run time, by WABA.
    reviews: HashMap<String, String>,
    /// Where webhooks go.
    webhook_url: Option<String>,
    /// WABAs read since start (scenario webhooks wait for a first read).
    read: std::collections::HashSet<String>,
    /// Scenario webhooks waiting for their WABA's first read.
    pending_webhooks: Vec<super::webhooks::ScheduledWebhook>,
    /// Whether the scenario's webhooks are on.
    armed: bool,
    /// WABAs the app is subscribed to (`subscribed_apps`), by WABA.
    subscriptions: BTreeMap<String, Subscription>,
    /// System User assignments made at run time (`assigned_users`): WABA → tasks.
    assigned: HashMap<String, Vec<String>>,
    /// Credit lines shared at run time, by WABA.
    allocations: BTreeMap<String, Allocation>,
    /// Phone numbers touched by writes (register, deregister, PIN, sync), by phone id.
    phones: HashMap<String, PhoneRuntime>,
    /// Calls of the last hour counted against each WABA's Business Use Case budget.
    buc_calls: HashMap<String, std::collections::VecDeque<std::time::Instant>>,
    /// Calls per hour a WABA's budget holds, when a test sets it (Meta's otherwise).
    buc_limit: Option<u64>,
}

/// The app's subscription to one WABA's webhooks.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Subscription {
    /// The WABA's alternate callback URL, when one is set.
    pub override_callback_uri: Option<String>,
}

/// A credit line shared with (and attached to) a WABA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allocation {
    /// `allocation_config_id`.
    pub id: String,
    /// The allocation's `receiving_credential` id, which the WABA's `primary_funding_id` reads.
    pub receiving_credential: String,
    /// The credit line shared.
    pub credit_line_id: String,
    /// The WABA it is attached to.
    pub waba_id: String,
    /// `waba_currency`.
    pub currency: String,
}

/// What writes changed on one phone number.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhoneRuntime {
    /// `status` now, when a write changed it.
    pub status: Option<String>,
    /// `platform_type` now, when a write changed it.
    pub platform_type: Option<String>,
    /// The two-step verification PIN, when one is set.
    pub pin: Option<String>,
    /// Unix times of register attempts (the scenario's `register_attempts` count as made
    /// when the phone was first touched).
    pub register_attempts: Vec<i64>,
    /// Unix times of deregister attempts.
    pub deregister_attempts: Vec<i64>,
    /// `smb_app_data` sync types already requested.
    pub synced: Vec<String>,
}

impl PhoneRuntime {
    /// The phone's starting state from its scenario node: `two_step_pin` and
    /// `register_attempts`.
    fn from_spec(spec: &Map<String, Value>, now: i64) -> Self {
        let attempts = spec
            .get("register_attempts")
            .and_then(Value::as_u64)
            .unwrap_or(0)
            .min(1000) as usize;
        Self {
            pin: spec
                .get("two_step_pin")
                .and_then(Value::as_str)
                .map(str::to_owned),
            register_attempts: vec![now; attempts],
            ..Self::default()
        }
    }
}

/// An authorization code minted for a business token.
#[derive(Debug, Clone)]
pub struct MintedCode {
    /// The token it exchanges for.
    pub token: String,
    /// When it stops working.
    pub expires: Instant,
    /// Whether it was exchanged already.
    pub used: bool,
    /// The `redirect_uri` of the full-page dialog that issued it: the exchange must name the
    /// same (none for a code the JS SDK's popup handed over).
    pub redirect_uri: Option<String>,
}

/// What happened when a code was presented.
#[derive(Debug, PartialEq, Eq)]
pub enum CodeCheck {
    /// Valid: the token.
    Token(String),
    /// Never issued.
    Unknown,
    /// Past its lifetime.
    Expired,
    /// Already exchanged.
    Used,
    /// Issued by the full-page dialog for another `redirect_uri` than the exchange names.
    RedirectMismatch,
}

impl SimState {
    /// State for `world`, with the scenario's own faults active.
    pub fn new(world: World, code_ttl: Duration, public_url: Option<String>) -> Self {
        let faults = FaultQueue::new(world.scenario.faults.clone());
        let subscriptions = initial_subscriptions(&world);
        Self {
            world,
            started_unix: now_unix(),
            code_ttl,
            public_url,
            dynamic: Mutex::new(Dynamic {
                faults,
                subscriptions,
                ..Dynamic::default()
            }),
            me: std::sync::OnceLock::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Dynamic> {
        // A poisoned lock only means another request panicked; the data is still usable.
        self.dynamic.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Counts a call and returns the fault to apply to it and the added latency.
    pub fn on_call(&self, route: Route) -> (Option<super::faults::FaultAction>, Duration) {
        let mut d = self.lock();
        *d.calls.entry(route).or_default() += 1;
        (d.faults.take(route), d.latency)
    }

    /// Counts a call about `waba_id` against its Business Use Case budget and returns the
    /// share of it used in the last hour, in percent (at most 100). Meta's budget for the
    /// WhatsApp Business Management API: 200 calls per hour per app per WABA, 5000 for a
    /// WABA with a registered number
    /// (<https://developers.facebook.com/docs/graph-api/overview/rate-limiting>, "WhatsApp
    /// Business Management API"). Only reported: refusing is left to the fault queue.
    pub fn buc_call(&self, waba_id: &str) -> u64 {
        let active = self.world.waba(waba_id).is_some_and(|w| {
            w.phone_numbers.iter().any(|p| {
                let id = p.get("id").and_then(|v| v.as_str()).unwrap_or_default();
                let runtime = self.phone_runtime(id).and_then(|r| r.status);
                runtime
                    .as_deref()
                    .or_else(|| p.get("status").and_then(|v| v.as_str()))
                    == Some("CONNECTED")
            })
        });
        let mut d = self.lock();
        let limit = d
            .buc_limit
            .unwrap_or(if active { 5000 } else { 200 })
            .max(1);
        let now = std::time::Instant::now();
        let hour = Duration::from_secs(3600);
        let calls = d.buc_calls.entry(waba_id.to_owned()).or_default();
        while calls
            .front()
            .is_some_and(|t| now.duration_since(*t) >= hour)
        {
            calls.pop_front();
        }
        // Past the budget the share stays 100: no need to remember more calls.
        if (calls.len() as u64) < limit {
            calls.push_back(now);
        }
        (calls.len() as u64 * 100 / limit).min(100)
    }

    /// Sets the calls per hour every WABA's budget holds (`None`: Meta's).
    pub fn set_buc_limit(&self, per_hour: Option<u64>) {
        self.lock().buc_limit = per_hour;
    }

    /// Calls per route since start or the last reset.
    pub fn calls(&self) -> BTreeMap<&'static str, u64> {
        self.lock()
            .calls
            .iter()
            .map(|(r, n)| (r.name(), *n))
            .collect()
    }

    /// Zeroes the counts, restores the scenario's faults and subscriptions, forgets codes,
    /// latency and every write (assignments, shared credit, registrations).
    pub fn reset(&self) {
        let mut d = self.lock();
        *d = Dynamic {
            faults: FaultQueue::new(self.world.scenario.faults.clone()),
            subscriptions: initial_subscriptions(&self.world),
            webhook_url: d.webhook_url.take(),
            pending_webhooks: if d.armed {
                self.world.scenario.webhooks.clone()
            } else {
                Vec::new()
            },
            armed: d.armed,
            ..Dynamic::default()
        };
    }

    /// Adds faults.
    pub fn add_faults(&self, faults: Vec<Fault>) {
        self.lock().faults.extend(faults);
    }

    /// Removes every fault.
    pub fn clear_faults(&self) {
        self.lock().faults = FaultQueue::default();
    }

    /// The active faults.
    pub fn faults(&self) -> Vec<Fault> {
        self.lock().faults.list().to_vec()
    }

    /// Shares `waba_id` with `business_id` now: it joins the client list (first, as the
    /// latest share). The WABA keeps its creation time, however old.
    pub fn share(&self, business_id: &str, waba_id: &str) {
        let mut d = self.lock();
        let (added, removed) = d.shares.entry(business_id.to_owned()).or_default();
        removed.retain(|w| w != waba_id);
        if !added.iter().any(|w| w == waba_id) {
            added.insert(0, waba_id.to_owned());
        }
    }

    /// Stops sharing `waba_id` with `business_id`: it leaves the client list.
    pub fn unshare(&self, business_id: &str, waba_id: &str) {
        let mut d = self.lock();
        let (added, removed) = d.shares.entry(business_id.to_owned()).or_default();
        added.retain(|w| w != waba_id);
        if !removed.iter().any(|w| w == waba_id) {
            removed.push(waba_id.to_owned());
        }
    }

    /// `business_id`'s client list now: the scenario's, with run-time shares applied.
    pub fn client_wabas(&self, business_id: &str, scenario: &[String]) -> Vec<String> {
        let d = self.lock();
        let Some((added, removed)) = d.shares.get(business_id) else {
            return scenario.to_vec();
        };
        added
            .iter()
            .chain(scenario.iter().filter(|w| !added.contains(w)))
            .filter(|w| !removed.contains(w))
            .cloned()
            .collect()
    }

    /// The scenario's partner business (the first one).
    pub fn partner_id(&self) -> String {
        self.world
            .scenario
            .businesses
            .first()
            .map(|b| b.id.clone())
            .unwrap_or_default()
    }

    /// Records a review decision: later reads show it.
    pub fn set_review(&self, waba_id: &str, decision: &str) {
        self.lock()
            .reviews
            .insert(waba_id.to_owned(), decision.to_owned());
    }

    /// The review decided at run time, if any.
    pub fn review_of(&self, waba_id: &str) -> Option<String> {
        self.lock().reviews.get(waba_id).cloned()
    }

    /// Turns the scenario's webhooks on: each is sent its delay after its WABA's first read
    /// from now on. (Off by default, so tests decide what Meta says and when.)
    pub fn arm_scenario_webhooks(&self) {
        let mut d = self.lock();
        d.armed = true;
        d.read.clear();
        d.pending_webhooks = self.world.scenario.webhooks.clone();
    }

    /// Where webhooks go (`None`: nowhere).
    pub fn set_webhook_url(&self, url: Option<String>) {
        self.lock().webhook_url = url;
    }

    /// Where webhooks go.
    pub fn webhook_url(&self) -> Option<String> {
        self.lock().webhook_url.clone()
    }

    /// Notes a read of `waba_id`; the scenario webhooks waiting for it are handed out.
    pub fn on_waba_read(&self, waba_id: &str) {
        let due: Vec<super::webhooks::ScheduledWebhook> = {
            let mut d = self.lock();
            if !d.read.insert(waba_id.to_owned()) {
                return;
            }
            let (due, keep): (Vec<_>, Vec<_>) = std::mem::take(&mut d.pending_webhooks)
                .into_iter()
                .partition(|w| w.after_read_of.as_deref() == Some(waba_id));
            d.pending_webhooks = keep;
            due
        };
        if let Some(me) = self.me.get().and_then(std::sync::Weak::upgrade) {
            for w in due {
                super::webhooks::schedule(me.clone(), w);
            }
        }
    }

    /// Sets the latency added to every Graph call.
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Makes the signup dialog run the flow `name` by itself (or wait for a click: `None`).
    pub fn set_auto_flow(&self, name: Option<String>) {
        self.lock().auto_flow = name;
    }

    /// The flow the dialog runs by itself, if any.
    pub fn auto_flow(&self) -> Option<String> {
        self.lock().auto_flow.clone()
    }

    /// Records what a page's `FB.login` asked for.
    pub fn record_login(&self, response_type: &str, extras: &str) {
        self.lock().last_login = Some((response_type.to_owned(), extras.to_owned()));
    }

    /// Records the locale a page loaded the SDK in.
    pub fn record_sdk_locale(&self, locale: &str) {
        let mut d = self.lock();
        if d.sdk_locales.len() < 1000 {
            d.sdk_locales.push(locale.to_owned());
        }
    }

    /// The locales pages loaded the SDK in, in order.
    pub fn sdk_locales(&self) -> Vec<String> {
        self.lock().sdk_locales.clone()
    }

    /// What the last `FB.login` asked for: its `response_type` and `extras` (JSON text).
    pub fn last_login(&self) -> Option<(String, String)> {
        self.lock().last_login.clone()
    }

    /// A fresh serial number (codes, trace ids).
    pub fn serial(&self) -> u64 {
        let mut d = self.lock();
        d.serial += 1;
        d.serial
    }

    /// Mints a one-time code for `token`, valid for [`SimState::code_ttl`].
    pub fn mint_code(&self, token: &str) -> String {
        self.mint_code_for(token, None)
    }

    /// A code for `token` as the full-page dialog issues it, redirecting to `redirect_uri`.
    pub fn mint_code_for(&self, token: &str, redirect_uri: Option<String>) -> String {
        // Unique across restarts too, like Meta's: a proxy that remembers used codes must
        // never see one twice.
        let n = self.serial();
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let code = format!(
            "AQD{n:04}{:016x}{nanos:016x}",
            fnv(token) ^ n.wrapping_mul(0x9E37_79B9_7F4A_7C15)
        );
        self.lock().codes.insert(
            code.clone(),
            MintedCode {
                token: token.to_owned(),
                expires: Instant::now() + self.code_ttl,
                used: false,
                redirect_uri,
            },
        );
        code
    }

    /// Checks a code (with the exchange's `redirect_uri`) and marks it used when valid.
    pub fn redeem_code(&self, code: &str, redirect_uri: Option<&str>) -> CodeCheck {
        let mut d = self.lock();
        let Some(entry) = d.codes.get_mut(code) else {
            return CodeCheck::Unknown;
        };
        if entry
            .redirect_uri
            .as_deref()
            .is_some_and(|issued| redirect_uri != Some(issued))
        {
            CodeCheck::RedirectMismatch
        } else if entry.used {
            CodeCheck::Used
        } else if Instant::now() >= entry.expires {
            CodeCheck::Expired
        } else {
            entry.used = true;
            CodeCheck::Token(entry.token.clone())
        }
    }
}

impl SimState {
    /// The app's subscription to `waba_id`, if subscribed.
    pub fn subscription(&self, waba_id: &str) -> Option<Subscription> {
        self.lock().subscriptions.get(waba_id).cloned()
    }

    /// Whether the app is subscribed to `waba_id`'s webhooks.
    pub fn is_subscribed(&self, waba_id: &str) -> bool {
        self.lock().subscriptions.contains_key(waba_id)
    }

    /// Subscribes the app to `waba_id` (again), with this alternate callback URL or none.
    pub fn subscribe(&self, waba_id: &str, override_callback_uri: Option<String>) {
        self.lock().subscriptions.insert(
            waba_id.to_owned(),
            Subscription {
                override_callback_uri,
            },
        );
    }

    /// Unsubscribes the app from `waba_id`; whether it was subscribed.
    pub fn unsubscribe(&self, waba_id: &str) -> bool {
        self.lock().subscriptions.remove(waba_id).is_some()
    }

    /// Every subscription now, by WABA.
    pub fn subscriptions(&self) -> BTreeMap<String, Subscription> {
        self.lock().subscriptions.clone()
    }

    /// Assigns the partner's System User to `waba_id` with `tasks`.
    pub fn assign(&self, waba_id: &str, tasks: Vec<String>) {
        self.lock().assigned.insert(waba_id.to_owned(), tasks);
    }

    /// The System User's tasks on `waba_id`: those assigned at run time, else `MANAGE` unless
    /// the scenario says `system_user_assigned: false`; `None` when not assigned.
    pub fn assigned_tasks(&self, waba_id: &str) -> Option<Vec<String>> {
        if let Some(tasks) = self.lock().assigned.get(waba_id) {
            return Some(tasks.clone());
        }
        let waba = self.world.waba(waba_id)?;
        (waba.fields.get("system_user_assigned") != Some(&Value::Bool(false)))
            .then(|| vec!["MANAGE".to_owned()])
    }

    /// Whether the partner's System User is assigned to `waba_id`.
    pub fn system_user_assigned(&self, waba_id: &str) -> bool {
        self.assigned_tasks(waba_id).is_some()
    }

    /// Attaches `credit_line_id` to `waba_id`: the new allocation, or the one already
    /// attached (as the error).
    pub fn share_credit(
        &self,
        credit_line_id: &str,
        waba_id: &str,
        currency: &str,
    ) -> Result<Allocation, Allocation> {
        let mut d = self.lock();
        if let Some(existing) = d.allocations.get(waba_id) {
            return Err(existing.clone());
        }
        let seed = format!("{credit_line_id}/{waba_id}");
        let allocation = Allocation {
            id: (60_000_000_000_000 + fnv(&seed) % 10_000_000_000_000).to_string(),
            receiving_credential: (70_000_000_000_000
                + fnv(&format!("credential/{seed}")) % 10_000_000_000_000)
                .to_string(),
            credit_line_id: credit_line_id.to_owned(),
            waba_id: waba_id.to_owned(),
            currency: currency.to_owned(),
        };
        d.allocations.insert(waba_id.to_owned(), allocation.clone());
        Ok(allocation)
    }

    /// The credit allocation attached to `waba_id`, if any.
    pub fn allocation_of(&self, waba_id: &str) -> Option<Allocation> {
        self.lock().allocations.get(waba_id).cloned()
    }

    /// The credit allocation with this `allocation_config_id`, if any.
    pub fn allocation(&self, id: &str) -> Option<Allocation> {
        self.lock()
            .allocations
            .values()
            .find(|a| a.id == id)
            .cloned()
    }

    /// Runs `f` on phone `phone_id`'s run-time state (created from its scenario node `spec`
    /// on first use), atomically with respect to every other request.
    pub fn with_phone<R>(
        &self,
        phone_id: &str,
        spec: &Map<String, Value>,
        f: impl FnOnce(&mut PhoneRuntime) -> R,
    ) -> R {
        let mut d = self.lock();
        let phone = d
            .phones
            .entry(phone_id.to_owned())
            .or_insert_with(|| PhoneRuntime::from_spec(spec, now_unix()));
        f(phone)
    }

    /// Phone `phone_id`'s run-time state, if a write touched it.
    pub fn phone_runtime(&self, phone_id: &str) -> Option<PhoneRuntime> {
        self.lock().phones.get(phone_id).cloned()
    }
}

fn initial_subscriptions(world: &World) -> BTreeMap<String, Subscription> {
    world
        .scenario
        .subscribed
        .iter()
        .map(|w| (w.clone(), Subscription::default()))
        .collect()
}

/// Seconds since the unix epoch.
pub fn now_unix() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// FNV-1a: a stable hash for made-up trace ids and codes.
pub fn fnv(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}
