//! Onboarding records for the funnel: written through the proxy's own store API (records,
//! register steps claimed and settled as the pipeline does, review decisions as Meta's
//! webhooks are stored), with the ground truth of what the funnel must then say.
//!
//! [`Plan::generate`] makes a believable month of onboardings from a seed (the demo's, and
//! the generator test's); [`Plan::write`] stores them; [`Plan::expected`] is the answer
//! `GET /admin/funnel` must give for any range, computed here from the plan, not from the
//! database. Generated records are synthetic: their WABAs (`1990000000…`) and numbers are not
//! in graph-sim's scenarios, and they carry no token and no follow-up.

use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use waba_proxy::store::funnel::{READY_BOUNDS, format_day};
use waba_proxy::store::{
    ChangeKind, Flow, NewStep, OnboardingRecord, Outcome, StatusChange, StepKind, StepOutcome,
    StepState, Store, StoreError, TokenKind,
};

/// The steps Meta's `CANCEL` message names as `current_step` (docs/meta.md).
pub use waba_graph::status::ABANDONED_STEPS as STEPS;

/// Error codes and messages of generated errors: the demo scenario's reported error, and
/// Graph's generic codes (1 unknown, 2 service, 368 blocked) for variety.
const ERRORS: [(Option<&str>, &str); 5] = [
    (Some("524126"), "Your verification code is incorrect."),
    (Some("1"), "An unknown error occurred."),
    (Some("2"), "Service temporarily unavailable."),
    (
        Some("368"),
        "The action attempted has been deemed abusive or is otherwise disallowed.",
    ),
    (None, "Something went wrong."),
];

/// One onboarding to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    /// Which flow.
    pub flow: Flow,
    /// When (unix seconds).
    pub created_at: i64,
    /// How it ended.
    pub outcome: Outcome,
    /// The session event's name.
    pub event: Option<String>,
    /// The step the business left at.
    pub current_step: Option<String>,
    /// Meta's error code.
    pub error_id: Option<String>,
    /// The error the business saw.
    pub error_message: Option<String>,
    /// The WABA shared (finished records), or none.
    pub waba: Option<String>,
    /// The phone number to register, for a register step.
    pub phone: Option<String>,
    /// When its register step was done (then it is ready to message); `None` leaves the
    /// step skipped (the number was not waiting for registration).
    pub ready_at: Option<i64>,
}

impl Spec {
    /// A record of `flow` created at `created_at` ending with `outcome`, nothing else said.
    pub fn new(flow: Flow, created_at: i64, outcome: Outcome) -> Self {
        Self {
            flow,
            created_at,
            outcome,
            event: None,
            current_step: None,
            error_id: None,
            error_message: None,
            waba: None,
            phone: None,
            ready_at: None,
        }
    }

    fn record(&self) -> OnboardingRecord {
        let mut r = OnboardingRecord::new(self.flow, self.created_at);
        r.outcome = self.outcome;
        r.event = self.event.clone();
        r.current_step = self.current_step.clone();
        r.error_id = self.error_id.clone();
        r.error_message = self.error_message.clone();
        if let Some(waba) = &self.waba {
            r.granted = vec![waba.clone()];
            r.reported_waba_id = Some(waba.clone());
            if let Some(phone) = &self.phone {
                r.phone_number_id = Some(phone.clone());
                r.steps = vec![NewStep {
                    kind: StepKind::Register,
                    waba_id: waba.clone(),
                    phone_id: Some(phone.clone()),
                    phone_label: None,
                    state: if self.ready_at.is_some() {
                        StepState::Pending
                    } else {
                        StepState::Skipped
                    },
                    token: TokenKind::SystemUser,
                    message: self.ready_at.is_none().then(|| {
                        "the number is not waiting for registration (only PENDING numbers are \
                         registered)"
                            .to_owned()
                    }),
                    not_before: 0,
                }];
            }
        }
        r
    }

    /// Stores the record; its register step, when it has one that gets done, is claimed and
    /// settled done at `ready_at`, as the pipeline does. Call in order of `created_at`, with
    /// nothing else due in the store.
    pub async fn insert(&self, store: &dyn Store) -> Result<i64, StoreError> {
        let id = store.insert_onboarding(self.record(), None).await?.id;
        if let Some(at) = self.ready_at.filter(|_| self.phone.is_some()) {
            let step = store
                .claim_step(at, 60)
                .await?
                .filter(|s| s.onboarding_id == id)
                .ok_or(StoreError::Corrupt(
                    "the generated register step was not due",
                ))?;
            store
                .settle_step(
                    step,
                    StepOutcome {
                        state: StepState::Done,
                        actor: None,
                        message: None,
                        error_code: None,
                        error: None,
                        next_at: at,
                        token: TokenKind::SystemUser,
                        transient: false,
                    },
                    None,
                    Vec::new(),
                    at,
                )
                .await?;
        }
        Ok(id)
    }
}

/// Meta's review decision about a WABA, received at a time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Review {
    /// The WABA.
    pub waba: String,
    /// `APPROVED`, `REJECTED`, `DEFERRED`, ...
    pub decision: String,
    /// When it arrived (unix seconds).
    pub at: i64,
}

impl Review {
    /// Stores it as the webhook receiver does (`account_review_update`).
    pub async fn insert(&self, store: &dyn Store) -> Result<(), StoreError> {
        let raw = json!({"field": "account_review_update", "value": {"decision": self.decision}});
        let change = StatusChange {
            dedupe: Sha256::digest(format!(
                "funnel review {} {} {}",
                self.waba, self.decision, self.at
            ))
            .into(),
            field: "account_review_update".into(),
            kind: ChangeKind::Review,
            waba_id: Some(self.waba.clone()),
            value: Some(self.decision.clone()),
            raw: raw.to_string(),
        };
        store.record_changes(vec![change], self.at, None).await?;
        Ok(())
    }
}

/// Onboardings and review decisions to store, with what the funnel must say of them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Plan {
    /// The records, in order of creation.
    pub records: Vec<Spec>,
    /// The decisions, in order of arrival.
    pub reviews: Vec<Review>,
}

/// A small deterministic generator (SplitMix64): the same seed, the same plan.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    /// An index into `weights`, drawn by weight.
    fn pick(&mut self, weights: &[u64]) -> usize {
        let mut x = self.below(weights.iter().sum());
        for (i, w) in weights.iter().enumerate() {
            if x < *w {
                return i;
            }
            x -= w;
        }
        weights.len().saturating_sub(1)
    }
}

impl Plan {
    /// About `count` onboardings over the 30 days before `now` (more on later days, fewer on
    /// weekends), seeded: finished in both flows and discovered, cancelled at each step Meta
    /// names, errors with several codes, refused codes, register steps done after waits from
    /// seconds to days (none after `now`), and review decisions for most finished WABAs.
    pub fn generate(seed: u64, now: i64, count: usize) -> Self {
        let mut rng = Rng(seed);
        let today = now.div_euclid(86_400);
        let weights: Vec<u64> = (0..30)
            .map(|i| {
                let day = today - 29 + i;
                // 1970-01-01 was a Thursday: days 2 and 3 of the week are Saturday, Sunday.
                let weekend = matches!(day.rem_euclid(7), 2 | 3);
                (10 + i as u64) * if weekend { 1 } else { 3 }
            })
            .collect();
        let mut times: Vec<i64> = (0..count)
            .map(|_| {
                let day = today - 29 + rng.pick(&weights) as i64;
                // Office hours mostly: 07:00 to 21:00 UTC.
                day * 86_400 + 7 * 3600 + rng.below(14 * 3600) as i64
            })
            .filter(|t| *t <= now)
            .collect();
        times.sort_unstable();
        let mut plan = Self::default();
        for (n, created_at) in times.into_iter().enumerate() {
            let flow = [Flow::Code, Flow::Token, Flow::Discovered][rng.pick(&[60, 30, 10])];
            let outcome = match flow {
                Flow::Discovered => Outcome::Finished,
                Flow::Code => [
                    Outcome::Finished,
                    Outcome::Cancelled,
                    Outcome::Error,
                    Outcome::CodeRejected,
                    Outcome::Unknown,
                ][rng.pick(&[52, 28, 10, 8, 2])],
                Flow::Token => {
                    [Outcome::Finished, Outcome::Cancelled, Outcome::Error][rng.pick(&[55, 33, 12])]
                }
            };
            let mut spec = Spec::new(flow, created_at, outcome);
            match outcome {
                Outcome::Finished | Outcome::CodeRejected => {
                    spec.event = (flow != Flow::Discovered).then(|| "FINISH".to_owned());
                }
                Outcome::Cancelled => {
                    spec.event = Some("CANCEL".into());
                    spec.current_step = Some(STEPS[rng.pick(&[22, 12, 14, 20, 26, 6])].to_owned());
                }
                Outcome::Error => {
                    let (code, message) = ERRORS[rng.pick(&[40, 20, 15, 10, 15])];
                    spec.event = Some(if code.is_some() { "CANCEL" } else { "ERROR" }.into());
                    spec.error_id = code.map(str::to_owned);
                    spec.error_message = Some(message.to_owned());
                }
                Outcome::Unknown => spec.event = Some("FINISH_SOMETHING_NEW".into()),
            }
            if outcome == Outcome::Finished {
                let waba = format!("19900000{:07}", n + 1);
                // A discovered WABA's numbers are found later (`find_phones`): none here.
                spec.phone = (flow != Flow::Discovered).then(|| format!("19910000{:07}", n + 1));
                // Most numbers are registered within minutes; some wait on the business.
                let wait = [
                    (20, 60),
                    (60, 300),
                    (300, 900),
                    (900, 3_600),
                    (3_600, 21_600),
                    (21_600, 86_400),
                    (86_400, 259_200),
                ][rng.pick(&[20, 34, 14, 10, 8, 5, 3])];
                let ready_at = created_at
                    + wait.0
                    + rng.below(u64::try_from(wait.1 - wait.0).unwrap_or(1)) as i64;
                spec.ready_at = (spec.phone.is_some() && rng.below(100) < 85 && ready_at <= now)
                    .then_some(ready_at);
                let decided = created_at + 3600 + rng.below(3 * 86_400) as i64;
                if rng.below(100) < 75 && decided <= now {
                    let decision = ["APPROVED", "REJECTED", "DEFERRED"][rng.pick(&[80, 12, 8])];
                    plan.reviews.push(Review {
                        waba: waba.clone(),
                        decision: decision.to_owned(),
                        at: decided,
                    });
                    // Some rejections are approved on appeal.
                    if decision == "REJECTED" && rng.below(2) == 0 && decided + 86_400 <= now {
                        plan.reviews.push(Review {
                            waba: waba.clone(),
                            decision: "APPROVED".into(),
                            at: decided + 86_400,
                        });
                    }
                }
                spec.waba = Some(waba);
            }
            plan.records.push(spec);
        }
        plan.reviews.sort_by_key(|r| r.at);
        plan
    }

    /// Stores the plan: records in order, then decisions in order of arrival.
    pub async fn write(&self, store: &dyn Store) -> Result<(), StoreError> {
        for spec in &self.records {
            spec.insert(store).await?;
        }
        for review in &self.reviews {
            review.insert(store).await?;
        }
        Ok(())
    }

    /// What `GET /admin/funnel?from=&to=&utc_offset=` must answer for this plan alone (days
    /// since 1970-01-01, minutes east of UTC), computed from the plan.
    pub fn expected(&self, from: i64, to: i64, utc_offset: i32) -> Value {
        let offset = i64::from(utc_offset) * 60;
        let in_range: Vec<&Spec> = self
            .records
            .iter()
            .filter(|s| (from..=to).contains(&(s.created_at + offset).div_euclid(86_400)))
            .collect();
        let finished = |s: &Spec| s.outcome == Outcome::Finished;
        let days: Vec<Value> = (from..=to)
            .map(|day| {
                let of_day: Vec<&&Spec> = in_range
                    .iter()
                    .filter(|s| (s.created_at + offset).div_euclid(86_400) == day)
                    .collect();
                json!({
                    "date": format_day(day),
                    "attempts": of_day.len(),
                    "finished": of_day.iter().filter(|s| finished(s)).count(),
                })
            })
            .collect();
        let waits: Vec<i64> = in_range
            .iter()
            .filter(|s| finished(s))
            .filter_map(|s| s.phone.as_ref().and(s.ready_at).map(|r| r - s.created_at))
            .collect();
        let mut buckets = vec![0_i64; READY_BOUNDS.len() + 1];
        for w in &waits {
            buckets[READY_BOUNDS.iter().take_while(|b| w >= *b).count()] += 1;
        }
        let n_finished = in_range.iter().filter(|s| finished(s)).count() as i64;
        let mut latest: BTreeMap<&str, &str> = BTreeMap::new();
        for r in &self.reviews {
            latest.insert(&r.waba, &r.decision);
        }
        let granted: std::collections::BTreeSet<&str> =
            in_range.iter().filter_map(|s| s.waba.as_deref()).collect();
        json!({
            "from": format_day(from),
            "to": format_day(to),
            "utc_offset": utc_offset,
            "attempts": in_range.len(),
            "finished": n_finished,
            "days": days,
            "outcomes": tally(in_range.iter().map(|s| Some(s.outcome.as_str().to_owned()))),
            "flows": tally(in_range.iter().map(|s| Some(s.flow.as_str().to_owned()))),
            "stopped_at": tally(
                in_range.iter().filter(|s| !finished(s)).map(|s| s.current_step.clone())
            ),
            "errors": tally(
                in_range
                    .iter()
                    .filter(|s| s.outcome == Outcome::Error)
                    .map(|s| s.error_id.clone())
            ),
            "time_to_ready": {
                "finished": n_finished,
                "ready": waits.len(),
                "not_ready": n_finished - waits.len() as i64,
                "min_secs": waits.iter().min(),
                "max_secs": waits.iter().max(),
                "mean_secs": (!waits.is_empty())
                    .then(|| waits.iter().sum::<i64>() / waits.len() as i64),
                "buckets": buckets.iter().enumerate().map(|(i, count)| json!({
                    "min_secs": i.checked_sub(1).map_or(0, |p| READY_BOUNDS[p]),
                    "max_secs": READY_BOUNDS.get(i),
                    "count": count,
                })).collect::<Vec<_>>(),
            },
            "reviews": tally(
                latest
                    .iter()
                    .filter(|(waba, _)| granted.contains(*waba))
                    .map(|(_, d)| Some((*d).to_owned()))
            ),
        })
    }
}

/// `[{"key", "count"}]` of `keys`, most first, then by key with `null` last.
fn tally(keys: impl Iterator<Item = Option<String>>) -> Value {
    let mut counts: BTreeMap<Option<String>, i64> = BTreeMap::new();
    for k in keys {
        *counts.entry(k).or_default() += 1;
    }
    let mut list: Vec<(Option<String>, i64)> = counts.into_iter().collect();
    list.sort_by(|a, b| {
        b.1.cmp(&a.1)
            .then_with(|| a.0.is_none().cmp(&b.0.is_none()))
            .then_with(|| a.0.cmp(&b.0))
    });
    list.into_iter()
        .map(|(key, count)| json!({"key": key, "count": count}))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_makes_the_same_varied_plan() {
        let now = 1_764_892_800; // 2025-12-05T00:00:00Z
        let plan = Plan::generate(7, now, 400);
        assert_eq!(plan, Plan::generate(7, now, 400));
        assert_ne!(plan, Plan::generate(8, now, 400));
        assert!(plan.records.len() > 350, "{}", plan.records.len());
        assert!(
            plan.records
                .iter()
                .all(|s| s.created_at <= now && s.created_at > now - 30 * 86_400)
        );
        for o in [
            Outcome::Finished,
            Outcome::Cancelled,
            Outcome::Error,
            Outcome::CodeRejected,
        ] {
            assert!(plan.records.iter().any(|s| s.outcome == o), "{o:?}");
        }
        for step in STEPS {
            assert!(
                plan.records
                    .iter()
                    .any(|s| s.current_step.as_deref() == Some(step)),
                "{step}"
            );
        }
        let expected = plan.expected(now / 86_400 - 30, now / 86_400, 0);
        assert_eq!(expected["attempts"], plan.records.len());
        assert!(
            expected["time_to_ready"]["buckets"]
                .as_array()
                .map_or(0, |b| b.iter().filter(|b| b["count"] != 0).count())
                >= 6
        );
        assert!(expected["reviews"].as_array().map_or(0, Vec::len) >= 2);
    }
}
