//! `GET /admin/funnel` and `GET /admin/funnel.csv` on a real `waba-proxy` process, over
//! records stored beforehand through the store API with known times, outcomes, steps,
//! register steps and review decisions: every number against numbers worked out by hand,
//! on SQLite and on PostgreSQL; days at UTC offsets; the CSV's rows; refusals; and the
//! generator's month of onboardings against the generator's own truth.

// An unwrap that fails here is a failed assertion.
#![allow(clippy::unwrap_used)]

use crate::common::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use waba_proxy::store::funnel::{days_from_civil, format_day};
use waba_proxy::store::{Flow, Outcome, PostgresOptions};
use waba_testkit::funnel::{Plan, Review, Spec};

/// The first day of the hand-made records: 2026-11-10.
fn d0() -> i64 {
    days_from_civil(2026, 11, 10)
}

/// `day` (relative to [`d0`]) at `h:m` UTC.
fn at(day: i64, h: i64, m: i64) -> i64 {
    (d0() + day) * 86_400 + h * 3600 + m * 60
}

fn finished(flow: Flow, created_at: i64, n: u32, wait: Option<i64>) -> Spec {
    let mut s = Spec::new(flow, created_at, Outcome::Finished);
    s.event = Some("FINISH".into());
    s.waba = Some(format!("77700000000000{n}"));
    s.phone = Some(format!("88800000000000{n}"));
    s.ready_at = wait.map(|w| created_at + w);
    s
}

fn ended(flow: Flow, created_at: i64, outcome: Outcome, step: Option<&str>) -> Spec {
    let mut s = Spec::new(flow, created_at, outcome);
    s.event = Some("CANCEL".into());
    s.current_step = step.map(str::to_owned);
    s
}

/// Eleven records over four days and the day before, and review decisions.
fn plan() -> Plan {
    let mut error = ended(Flow::Code, at(2, 12, 0), Outcome::Error, None);
    error.error_id = Some("2388093".into());
    error.error_message = Some("=HYPERLINK(\"http://evil\",\"click\"), \"quoted\"".into());
    let mut discovered = finished(Flow::Discovered, at(3, 6, 0), 3, None);
    discovered.event = None;
    discovered.phone = None;
    Plan {
        records: vec![
            // 11: the day before, 23:59 UTC (the first day at UTC+01:00); ready in 30 s.
            finished(Flow::Code, at(-1, 23, 59), 9, Some(30)),
            // 1: ready in 5 minutes.
            finished(Flow::Code, at(0, 10, 0), 1, Some(300)),
            // 2: 23:30 UTC, the next day at UTC+01:00; ready in 2 hours.
            finished(Flow::Token, at(0, 23, 30), 2, Some(7200)),
            // 3: not ready (its number was not waiting for registration).
            finished(Flow::Code, at(1, 8, 0), 4, None),
            ended(
                Flow::Token,
                at(1, 9, 0),
                Outcome::Cancelled,
                Some("PHONE_NUMBER_VERIFICATION"),
            ),
            ended(
                Flow::Token,
                at(1, 10, 0),
                Outcome::Cancelled,
                Some("PHONE_NUMBER_VERIFICATION"),
            ),
            // 00:30 UTC: the day before at UTC-01:00.
            ended(
                Flow::Code,
                at(2, 0, 30),
                Outcome::Cancelled,
                Some("BUSINESS_ACCOUNT_SELECTION"),
            ),
            error,
            ended(Flow::Token, at(2, 13, 0), Outcome::Error, None),
            ended(Flow::Code, at(2, 14, 0), Outcome::CodeRejected, None),
            // Outside the first three days.
            discovered,
        ],
        reviews: vec![
            review("777000000000001", "APPROVED", at(0, 12, 0)),
            review("777000000000002", "APPROVED", at(1, 2, 0)),
            // The latest decision counts: rejected after all.
            review("777000000000001", "REJECTED", at(1, 12, 0)),
            review("777000000000003", "APPROVED", at(3, 9, 0)),
            // No record holds it.
            review("999999999999999", "REJECTED", at(2, 9, 0)),
        ],
    }
}

fn review(waba: &str, decision: &str, at: i64) -> Review {
    Review {
        waba: waba.into(),
        decision: decision.into(),
        at,
    }
}

/// A proxy on `db` (`extra` flags) whose database holds `plan`, stored before it starts.
async fn stack_with(plan: &Plan, db: &str, extra: &[&str]) -> Stack {
    let options = PostgresOptions {
        ca_file: waba_testkit::postgres::ca_file(),
        ..PostgresOptions::default()
    };
    let store = waba_proxy::store::open(db, &options).await.unwrap();
    plan.write(store.as_ref()).await.unwrap();
    drop(store);
    let mut flags = vec!["--database", db];
    flags.extend_from_slice(extra);
    stack(world("demo"), &flags)
}

async fn funnel(s: &Stack, query: &str) -> Value {
    let a = get(&s.url(&format!("/admin/funnel?{query}")), Some(ADMIN)).await;
    assert_eq!(a.status, StatusCode::OK, "{query}: {}", a.text);
    a.json()
}

fn tallies(list: &[(Option<&str>, i64)]) -> Value {
    list.iter()
        .map(|(k, n)| json!({"key": k, "count": n}))
        .collect()
}

fn days(list: &[(i64, i64, i64)]) -> Value {
    list.iter()
        .map(|(d, attempts, finished)| {
            json!({"date": format_day(d0() + d), "attempts": attempts, "finished": finished})
        })
        .collect()
}

/// Buckets of waits: under 1 min, 5 min, 15 min, 1 h, 6 h, 1 day, 3 days, more.
fn buckets(counts: [i64; 8]) -> Value {
    let bounds = [0, 60, 300, 900, 3_600, 21_600, 86_400, 259_200];
    counts
        .iter()
        .enumerate()
        .map(|(i, n)| json!({"min_secs": bounds[i], "max_secs": bounds.get(i + 1), "count": n}))
        .collect()
}

/// Every number of the answers, worked out by hand from [`plan`].
async fn every_number_is_as_counted_by_hand(db: &str, extra: &[&str]) {
    let plan = plan();
    let s = stack_with(&plan, db, extra).await;
    let (from, to) = (format_day(d0()), format_day(d0() + 2));
    let utc = funnel(&s, &format!("from={from}&to={to}")).await;
    assert_eq!(
        utc,
        json!({
            "from": from, "to": to, "utc_offset": 0,
            "attempts": 9, "finished": 3,
            "days": days(&[(0, 2, 2), (1, 3, 1), (2, 4, 0)]),
            "outcomes": tallies(&[(Some("cancelled"), 3), (Some("finished"), 3), (Some("error"), 2), (Some("code_rejected"), 1)]),
            "flows": tallies(&[(Some("code"), 5), (Some("token"), 4)]),
            "stopped_at": tallies(&[(None, 3), (Some("PHONE_NUMBER_VERIFICATION"), 2), (Some("BUSINESS_ACCOUNT_SELECTION"), 1)]),
            "errors": tallies(&[(Some("2388093"), 1), (None, 1)]),
            "time_to_ready": {
                "finished": 3, "ready": 2, "not_ready": 1,
                "min_secs": 300, "max_secs": 7200, "mean_secs": 3750,
                "buckets": buckets([0, 0, 1, 0, 1, 0, 0, 0]),
            },
            "reviews": tallies(&[(Some("APPROVED"), 1), (Some("REJECTED"), 1)]),
        })
    );
    assert_eq!(utc, plan.expected(d0(), d0() + 2, 0));

    // UTC+01:00: the day before's 23:59 is the first day's 00:59, the first day's 23:30 the
    // second day's 00:30.
    let east = funnel(&s, &format!("from={from}&to={to}&utc_offset=60")).await;
    assert_eq!(east["attempts"], 10);
    assert_eq!(east["days"], days(&[(0, 2, 2), (1, 4, 2), (2, 4, 0)]));
    assert_eq!(
        east["time_to_ready"],
        json!({
            "finished": 4, "ready": 3, "not_ready": 1,
            "min_secs": 30, "max_secs": 7200, "mean_secs": 2510,
            "buckets": buckets([1, 0, 1, 0, 1, 0, 0, 0]),
        })
    );
    assert_eq!(
        east["reviews"],
        tallies(&[(Some("APPROVED"), 1), (Some("REJECTED"), 1)])
    );
    assert_eq!(east, plan.expected(d0(), d0() + 2, 60));

    // UTC-01:00: the third day's 00:30 is the second day's 23:30.
    let west = funnel(&s, &format!("from={from}&to={to}&utc_offset=-60")).await;
    assert_eq!(west["days"], days(&[(0, 2, 2), (1, 4, 1), (2, 3, 0)]));
    assert_eq!(west, plan.expected(d0(), d0() + 2, -60));

    // One day: only the discovered record, whose WABA Meta approved.
    let day3 = format_day(d0() + 3);
    let last = funnel(&s, &format!("from={day3}&to={day3}")).await;
    assert_eq!(last["attempts"], 1);
    assert_eq!(last["flows"], tallies(&[(Some("discovered"), 1)]));
    assert_eq!(last["reviews"], tallies(&[(Some("APPROVED"), 1)]));
    assert_eq!(last["stopped_at"], tallies(&[]));
    assert_eq!(last["time_to_ready"]["mean_secs"], Value::Null);
    assert_eq!(last, plan.expected(d0() + 3, d0() + 3, 0));

    // The CSV: a header and the nine records of the range, oldest first.
    let csv = get(
        &s.url(&format!("/admin/funnel.csv?from={from}&to={to}")),
        Some(ADMIN),
    )
    .await;
    assert_eq!(csv.status, StatusCode::OK, "{}", csv.text);
    assert_eq!(csv.headers["content-type"], "text/csv; charset=utf-8");
    assert_eq!(
        csv.headers["content-disposition"],
        format!("attachment; filename=\"waba-funnel-{from}-{to}.csv\"").as_str()
    );
    let lines: Vec<&str> = csv.text.split_terminator("\r\n").collect();
    assert_eq!(
        lines[0],
        "id,created_at,flow,outcome,event,current_step,error_id,error_message,granted,ready_at,\
         seconds_to_ready,revoked_at,offboarded_at"
    );
    assert_eq!(lines.len(), 10, "{}", csv.text);
    assert_eq!(
        lines[1],
        "2,2026-11-10T10:00:00+00:00,code,finished,FINISH,,,,777000000000001,\
         2026-11-10T10:05:00+00:00,300,,"
    );
    assert_eq!(
        lines[3],
        "4,2026-11-11T08:00:00+00:00,code,finished,FINISH,,,,777000000000004,,,,"
    );
    assert_eq!(
        lines[4],
        "5,2026-11-11T09:00:00+00:00,token,cancelled,CANCEL,PHONE_NUMBER_VERIFICATION,,,,,,,"
    );
    // A formula is neutralised, quotes doubled.
    assert_eq!(
        lines[7],
        "8,2026-11-12T12:00:00+00:00,code,error,CANCEL,,2388093,\
         \"'=HYPERLINK(\"\"http://evil\"\",\"\"click\"\"), \"\"quoted\"\"\",,,,,"
    );
    let ids: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l.split(',').next().unwrap())
        .collect();
    assert_eq!(ids, ["2", "3", "4", "5", "6", "7", "8", "9", "10"]);
    // At UTC+01:00 the times say so, and the record of the day before is in.
    let csv = get(
        &s.url(&format!(
            "/admin/funnel.csv?from={from}&to={to}&utc_offset=60"
        )),
        Some(ADMIN),
    )
    .await;
    let lines: Vec<&str> = csv.text.split_terminator("\r\n").collect();
    assert_eq!(lines.len(), 11);
    assert!(
        lines[1].starts_with("1,2026-11-10T00:59:00+01:00,code,finished,"),
        "{}",
        lines[1]
    );
    assert!(
        lines[1].ends_with(",2026-11-10T00:59:30+01:00,30,,"),
        "{}",
        lines[1]
    );
    for secret in [ADMIN, DEMO_SYSTEM] {
        assert!(!csv.text.contains(secret));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_funnel_counts_known_records_on_sqlite() {
    let db = waba_testkit::harness::temp_database();
    every_number_is_as_counted_by_hand(&db.display().to_string(), &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_funnel_counts_known_records_on_postgresql() {
    let Some(db) = waba_testkit::postgres::fresh_database().await else {
        return;
    };
    let ca = waba_testkit::postgres::ca_file()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    every_number_is_as_counted_by_hand(&db, &["--database-ca-file", &ca]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_ranges_are_refused_and_only_the_admin_may_ask() {
    let s = stack(world("demo"), &[]);
    for path in ["/admin/funnel", "/admin/funnel.csv"] {
        for (query, says) in [
            ("from=2026-02-30", "from must be a date written YYYY-MM-DD"),
            ("to=12/04/2026", "to must be a date written YYYY-MM-DD"),
            ("from=2026-12-05&to=2026-12-04", "from must not be after to"),
            (
                "from=2025-01-01&to=2026-12-04",
                "a range holds at most 366 days",
            ),
            (
                "utc_offset=900",
                "utc_offset is minutes east of UTC, between -840 and 840",
            ),
            ("utc_offset=east", "unknown or malformed query parameter"),
            ("limit=5", "unknown or malformed query parameter"),
        ] {
            let a = get(&s.url(&format!("{path}?{query}")), Some(ADMIN)).await;
            assert_eq!(a.status, StatusCode::BAD_REQUEST, "{path}?{query}");
            assert_eq!(a.error().message, says, "{path}?{query}");
        }
        let a = get(&s.url(path), None).await;
        assert_eq!(a.status, StatusCode::UNAUTHORIZED, "{path}");
        let a = get(&s.url(path), Some(FINISH)).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{path}");
        // The default range: the last 30 days, today included (none of them has a record).
        let a = get(&s.url(path), Some(ADMIN)).await;
        assert_eq!(a.status, StatusCode::OK, "{path}");
    }
    let answer = funnel(&s, "").await;
    assert_eq!(answer["days"].as_array().map(Vec::len), Some(30));
    assert_eq!(answer["attempts"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_month_reads_back_as_the_generator_says_on_sqlite() {
    let db = waba_testkit::harness::temp_database();
    generated_month(&db.display().to_string(), &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_generated_month_reads_back_as_the_generator_says_on_postgresql() {
    let Some(db) = waba_testkit::postgres::fresh_database().await else {
        return;
    };
    let ca = waba_testkit::postgres::ca_file()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    generated_month(&db, &["--database-ca-file", &ca]).await;
}

/// The generator's month on `db`: the funnel of three ranges at three offsets is the
/// generator's truth, and the CSV holds every record of the month.
async fn generated_month(db: &str, extra: &[&str]) {
    let now = waba_proxy::clock::now();
    let plan = Plan::generate(19, now, 1200);
    let s = stack_with(&plan, db, extra).await;
    let today = now.div_euclid(86_400);
    for (from, to, offset) in [
        (today - 29, today, 0),
        (today - 29, today, 330),
        (today - 6, today - 3, -300),
    ] {
        let answer = funnel(
            &s,
            &format!(
                "from={}&to={}&utc_offset={offset}",
                format_day(from),
                format_day(to)
            ),
        )
        .await;
        assert_eq!(
            answer,
            plan.expected(from, to, offset),
            "{from} {to} {offset}"
        );
    }
    let month = plan.expected(today - 29, today, 0);
    assert!(month["attempts"].as_i64().unwrap() > 1000);
    // The CSV holds every record of the month: more than one page of the database's.
    let csv = get(
        &s.url(&format!(
            "/admin/funnel.csv?from={}&to={}",
            format_day(today - 29),
            format_day(today)
        )),
        Some(ADMIN),
    )
    .await;
    assert_eq!(
        csv.text.split_terminator("\r\n").count() as i64,
        month["attempts"].as_i64().unwrap() + 1
    );
}
