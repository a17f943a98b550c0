//! Scenario files: the businesses, WABAs, phone numbers and tokens the simulator serves.
//!
//! A scenario is JSON (see `tests/scenarios/*.json`). Large data sets are described by
//! `generate` entries and expanded deterministically at load time, so the 10,000-WABA
//! scenario is the same on every machine without a multi-megabyte file in the repository.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::path::Path;

/// A whole scenario as written in its file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, shown by the control endpoint.
    pub name: String,
    /// What the scenario is for.
    #[serde(default)]
    pub description: String,
    /// The partner's System User token: required by `debug_token` and the list edges.
    pub system_user_token: String,
    /// The partner's app (for the code exchange).
    pub app: App,
    /// Businesses and the WABAs on their client and owned edges.
    pub businesses: Vec<Business>,
    /// WABA nodes, with their phone numbers.
    #[serde(default)]
    pub wabas: Vec<WabaSpec>,
    /// Business tokens as returned by Embedded Signup.
    #[serde(default)]
    pub tokens: Vec<TokenSpec>,
    /// Generated WABAs.
    #[serde(default)]
    pub generate: Vec<Generate>,
    /// Faults active from the start.
    #[serde(default)]
    pub faults: Vec<crate::sim::faults::Fault>,
    /// Scripted runs of the signup dialog served by the SDK stand-in.
    #[serde(default)]
    pub flows: Vec<Flow>,
    /// Make error messages and paging links echo the caller's token, like some Graph
    /// errors do, to prove the proxy scrubs them.
    #[serde(default)]
    pub echo_tokens_in_errors: bool,
    /// Webhooks sent (to `--webhook-url`) some seconds after a WABA is first read.
    #[serde(default)]
    pub webhooks: Vec<crate::sim::webhooks::ScheduledWebhook>,
    /// WABAs the app was subscribed to (`POST /{waba-id}/subscribed_apps`) before the
    /// simulator started: the partner's long-standing clients. Only these (and those
    /// subscribed at run time) get their own webhooks.
    #[serde(default)]
    pub subscribed: Vec<String>,
    /// The partner's credit line, shared with client WABAs by
    /// `POST /{credit-line-id}/whatsapp_credit_sharing_and_attach`.
    #[serde(default)]
    pub credit_line: Option<CreditLine>,
}

/// The partner's extended credit line.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreditLine {
    /// Its id (Graph's extended credit id).
    pub id: String,
    /// The `waba_currency` values it accepts (Meta documents AUD, EUR, GBP, IDR, INR, USD).
    #[serde(default = "default_currencies")]
    pub currency_allowed: Vec<String>,
}

fn default_currencies() -> Vec<String> {
    ["AUD", "EUR", "GBP", "IDR", "INR", "USD"]
        .into_iter()
        .map(str::to_owned)
        .collect()
}

/// The partner's app.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct App {
    /// App id.
    pub id: String,
    /// App name, reported by `debug_token` as `application`.
    pub name: String,
    /// App secret, required by the code exchange.
    pub secret: String,
}

/// A business portfolio.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Business {
    /// Business id.
    pub id: String,
    /// Name.
    pub name: String,
    /// WABAs shared with this business (`client_whatsapp_business_accounts`), in default order.
    #[serde(default)]
    pub client_wabas: Vec<String>,
    /// WABAs this business owns (`owned_whatsapp_business_accounts`), in default order.
    #[serde(default)]
    pub owned_wabas: Vec<String>,
}

/// One WABA: `id`, `creation_time` (unix seconds), phone numbers, and any other fields as
/// Graph would return them.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WabaSpec {
    /// WABA id.
    pub id: String,
    /// Unix seconds; served as ISO 8601 like Graph's date-times.
    pub creation_time: i64,
    /// Phone number nodes (each with an `id`), as Graph shows them (`status`,
    /// `code_verification_status`, `is_on_biz_app` for a WhatsApp Business app number, ...),
    /// plus keys the simulator reads but never shows: `two_step_pin` (a PIN the business already
    /// set, so `register` with another one fails with 133005), `register_attempts` (register
    /// attempts already spent in the last 72 hours) and `onboarded_secs_ago` (how long before
    /// the simulator started a coexistence number was onboarded; `smb_app_data` works for 24
    /// hours after).
    #[serde(default)]
    pub phone_numbers: Vec<Map<String, Value>>,
    /// Every other field (`name`, `account_review_status`, `health_status`, ...).
    #[serde(flatten)]
    pub fields: Map<String, Value>,
}

/// A business token handed out by Embedded Signup.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSpec {
    /// The token text.
    pub token: String,
    /// The user it acts for.
    #[serde(default = "default_user")]
    pub user_id: String,
    /// WABAs granted `whatsapp_business_management`, newest first.
    #[serde(default)]
    pub granted: Vec<String>,
    /// WABAs granted `whatsapp_business_messaging` (defaults to `granted`).
    #[serde(default)]
    pub messaging: Option<Vec<String>>,
    /// More granular scopes, e.g. ones the product must ignore.
    #[serde(default)]
    pub extra_scopes: Vec<ExtraScope>,
    /// Seconds from simulator start until expiry; negative means already expired.
    #[serde(default = "default_expires_in")]
    pub expires_in: i64,
    /// Graph no longer recognises the token at all (revoked, malformed).
    #[serde(default)]
    pub invalid: bool,
}

fn default_user() -> String {
    "10222270944537964".into()
}

fn default_expires_in() -> i64 {
    60 * 24 * 3600
}

/// A granular scope entry beyond the two WABA scopes.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExtraScope {
    /// Scope name.
    pub scope: String,
    /// Its targets.
    #[serde(default)]
    pub target_ids: Vec<String>,
}

/// A deterministic batch of generated WABAs on one edge of one business.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Generate {
    /// The business that gets them.
    pub business_id: String,
    /// `client` or `owned`.
    pub edge: EdgeName,
    /// How many.
    pub count: u32,
    /// Seed of the pseudo-random choices.
    pub seed: u64,
    /// Id of the first WABA; the rest follow consecutively.
    pub first_id: u64,
    /// Creation time of the first WABA; each next one is about an hour later.
    pub first_creation_time: i64,
    /// Whether the app was subscribed to their webhooks before the simulator started (they
    /// join `subscribed`).
    #[serde(default)]
    pub subscribed: bool,
}

/// Which list edge.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EdgeName {
    /// `client_whatsapp_business_accounts`.
    Client,
    /// `owned_whatsapp_business_accounts`.
    Owned,
}

/// A scenario expanded and indexed, ready to serve.
#[derive(Debug, Clone)]
pub struct World {
    /// The scenario as loaded (generated WABAs included).
    pub scenario: Scenario,
    /// WABA id → index into `scenario.wabas`.
    pub waba_index: HashMap<String, usize>,
    /// Phone number id → (index into `scenario.wabas`, index into its `phone_numbers`).
    pub phone_index: HashMap<String, (usize, usize)>,
}

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("cannot read scenario {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The JSON does not describe a scenario.
    #[error("invalid scenario {path}: {source}")]
    Parse {
        /// The file.
        path: String,
        /// What serde said.
        source: serde_json::Error,
    },
    /// The scenario refers to something it does not define.
    #[error("inconsistent scenario: {0}")]
    Inconsistent(String),
}

impl World {
    /// Reads and expands a scenario file.
    pub fn load(path: &Path) -> Result<Self, ScenarioError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
            path: shown.clone(),
            source,
        })?;
        let scenario = serde_json::from_str(&text).map_err(|source| ScenarioError::Parse {
            path: shown,
            source,
        })?;
        Self::new(scenario)
    }

    /// Expands `generate` entries and checks every reference.
    pub fn new(mut scenario: Scenario) -> Result<Self, ScenarioError> {
        for g in scenario.generate.clone() {
            let business = scenario
                .businesses
                .iter_mut()
                .find(|b| b.id == g.business_id)
                .ok_or_else(|| {
                    ScenarioError::Inconsistent(format!("generate: no business {}", g.business_id))
                })?;
            let mut rng = XorShift(g.seed.max(1));
            for i in 0..u64::from(g.count) {
                let waba = generated_waba(&g, i, &mut rng);
                match g.edge {
                    EdgeName::Client => business.client_wabas.push(waba.id.clone()),
                    EdgeName::Owned => business.owned_wabas.push(waba.id.clone()),
                }
                if g.subscribed {
                    scenario.subscribed.push(waba.id.clone());
                }
                scenario.wabas.push(waba);
            }
        }
        let mut waba_index = HashMap::new();
        for (i, w) in scenario.wabas.iter().enumerate() {
            if waba_index.insert(w.id.clone(), i).is_some() {
                return Err(ScenarioError::Inconsistent(format!(
                    "WABA {} defined twice",
                    w.id
                )));
            }
        }
        let mut phone_index = HashMap::new();
        for (wi, w) in scenario.wabas.iter().enumerate() {
            for (pi, p) in w.phone_numbers.iter().enumerate() {
                let Some(id) = p.get("id").and_then(Value::as_str) else {
                    continue;
                };
                // A phone listed twice (a WABA copied under another id, as some tests do)
                // resolves to its first WABA.
                if !waba_index.contains_key(id) {
                    phone_index.entry(id.to_owned()).or_insert((wi, pi));
                }
            }
        }
        let known = |id: &String| waba_index.contains_key(id);
        if let Some(id) = scenario.subscribed.iter().find(|id| !known(id)) {
            return Err(ScenarioError::Inconsistent(format!(
                "subscribed lists unknown WABA {id}"
            )));
        }
        if let Some(line) = &scenario.credit_line
            && (line.id.is_empty()
                || !line.id.bytes().all(|b| b.is_ascii_digit())
                || known(&line.id)
                || phone_index.contains_key(&line.id))
        {
            return Err(ScenarioError::Inconsistent(format!(
                "credit line id {} must be digits and no WABA's or phone's id",
                line.id
            )));
        }
        for b in &scenario.businesses {
            if let Some(id) = b
                .client_wabas
                .iter()
                .chain(&b.owned_wabas)
                .find(|id| !known(id))
            {
                return Err(ScenarioError::Inconsistent(format!(
                    "business {} lists unknown WABA {id}",
                    b.id
                )));
            }
        }
        for t in &scenario.tokens {
            if let Some(id) = t.granted.iter().find(|id| !known(id)) {
                return Err(ScenarioError::Inconsistent(format!(
                    "a token grants unknown WABA {id}"
                )));
            }
        }
        Ok(World {
            scenario,
            waba_index,
            phone_index,
        })
    }

    /// The phone number with this id and the WABA it belongs to.
    pub fn phone(&self, id: &str) -> Option<(&WabaSpec, &Map<String, Value>)> {
        let &(w, p) = self.phone_index.get(id)?;
        let waba = &self.scenario.wabas[w];
        Some((waba, &waba.phone_numbers[p]))
    }

    /// The WABA with this id.
    pub fn waba(&self, id: &str) -> Option<&WabaSpec> {
        self.waba_index.get(id).map(|&i| &self.scenario.wabas[i])
    }

    /// The business with this id.
    pub fn business(&self, id: &str) -> Option<&Business> {
        self.scenario.businesses.iter().find(|b| b.id == id)
    }

    /// The business token with this text.
    pub fn token(&self, token: &str) -> Option<&TokenSpec> {
        self.scenario.tokens.iter().find(|t| t.token == token)
    }

    /// Whether the System User may read this WABA: it is on some business's client or owned edge.
    pub fn partner_sees(&self, waba_id: &str) -> bool {
        self.scenario.businesses.iter().any(|b| {
            b.client_wabas.iter().any(|w| w == waba_id)
                || b.owned_wabas.iter().any(|w| w == waba_id)
        })
    }
}

/// A small deterministic generator (xorshift64*): the same seed gives the same scenario.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[(self.next() % items.len() as u64) as usize]
    }
}

fn generated_waba(g: &Generate, i: u64, rng: &mut XorShift) -> WabaSpec {
    let id = (g.first_id + i).to_string();
    let status = rng.pick(&["APPROVED", "APPROVED", "APPROVED", "PENDING", "REJECTED"]);
    let currency = rng.pick(&["USD", "EUR", "INR", "BRL", "IDR", "MXN"]);
    let timezone = rng.pick(&["1", "5", "47", "71", "133"]);
    let verification = rng.pick(&["verified", "not_verified", "pending"]);
    let can_send = if status == "REJECTED" {
        "BLOCKED"
    } else {
        "AVAILABLE"
    };
    // Creation times grow by roughly an hour and stay strictly increasing.
    let creation_time = g.first_creation_time + i as i64 * 3600 + (rng.next() % 3000) as i64;
    let mut fields = Map::new();
    let mut put = |k: &str, v: Value| {
        fields.insert(k.to_owned(), v);
    };
    put("name", format!("Generated Account {:05}", i + 1).into());
    put("currency", currency.into());
    put("timezone_id", timezone.into());
    put(
        "message_template_namespace",
        format!("gen_{:08x}", rng.next() as u32).into(),
    );
    put("account_review_status", status.into());
    put("business_verification_status", verification.into());
    put(
        "ownership_type",
        if g.edge == EdgeName::Client {
            "CLIENT_OWNED"
        } else {
            "SELF"
        }
        .into(),
    );
    put(
        "health_status",
        serde_json::json!({"can_send_message": can_send, "entities": []}),
    );
    let phone = serde_json::json!({
        "id": (g.first_id + 5_000_000 + i).to_string(),
        "display_phone_number": format!("+1 555-{:04}", i % 10_000),
        "verified_name": format!("Generated Account {:05}", i + 1),
        "status": "CONNECTED",
        "quality_rating": rng.pick(&["GREEN", "GREEN", "YELLOW", "RED"]),
        "code_verification_status": "VERIFIED",
        "name_status": "APPROVED",
        "platform_type": "CLOUD_API",
    });
    let phone_numbers = match phone {
        Value::Object(m) => vec![m],
        _ => Vec::new(),
    };
    WabaSpec {
        id,
        creation_time,
        phone_numbers,
        fields,
    }
}

/// A scripted run of the Embedded Signup dialog, offered by the simulator's stand-in for
/// Meta's browser SDK (`/_sim/sdk.js` and `/_sim/dialog`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Flow {
    /// Short name (`finish`, `cancel`, ...), used to pick it automatically.
    pub name: String,
    /// What the dialog's button says.
    pub label: String,
    /// The business token the login returns (as `accessToken`, or as a minted `code` when
    /// the page asks for `response_type: "code"`); none means the login is not connected.
    #[serde(default)]
    pub token: Option<String>,
    /// The `WA_EMBEDDED_SIGNUP` session event to post: `{"event": ..., "data": {...}}`.
    #[serde(default)]
    pub event: Option<Value>,
    /// Close the dialog without posting anything, as a user closing the window.
    #[serde(default)]
    pub close: bool,
    /// Deliver the login response before the session message.
    #[serde(default)]
    pub login_first: bool,
}
