//! No response body, header or log line ever holds the System User token, the admin token or
//! a business token, even when Graph echoes them in messages and links.

use crate::common::*;
use reqwest::StatusCode;
use serde_json::json;
use waba_testkit::sim::scenario::{TokenSpec, World};

const STRANGER: &str = "EAASimBusinessTokenStranger00000000000000000000008";

fn leaky_world() -> World {
    let mut w = world("demo");
    w.scenario.echo_tokens_in_errors = true;
    // A WABA the business granted, but that Graph will not show the partner's System User.
    let mut hidden = w.scenario.wabas[0].clone();
    hidden.id = "555000000000002".into();
    w.scenario.wabas.push(hidden);
    w.scenario.tokens.push(TokenSpec {
        token: STRANGER.into(),
        user_id: "1".into(),
        granted: vec!["555000000000002".into()],
        messaging: None,
        extra_scopes: vec![],
        expires_in: 3600,
        invalid: false,
    });
    World::new(w.scenario).expect("scenario")
}

#[tokio::test]
async fn secrets_never_leave_the_proxy() {
    let s = stack(leaky_world(), &[]);
    let secrets = [
        DEMO_SYSTEM,
        ADMIN,
        FINISH,
        STRANGER,
        "EAASimUnknown0000000000000000000000000000042",
    ];
    let mut answers = Vec::new();

    // Graph echoes the System User token in an unsupported-get error.
    let a = get(
        &s.url("/graph/555000000000002?fields=id,name"),
        Some(STRANGER),
    )
    .await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.text);
    assert!(a.error().message.contains("[redacted]"), "{}", a.text);
    answers.push(a);
    // ... and in debug_token's data.error for an unknown token.
    let a = get(
        &s.url(&format!("/graph/debug_token?input_token={}", secrets[4])),
        None,
    )
    .await;
    assert_eq!(a.status, StatusCode::OK);
    answers.push(a);
    // Graph's paging links carry access_token=.
    answers.push(
        get(
            &s.url(&format!(
                "/graph/{PARTNER}/client_whatsapp_business_accounts?limit=2"
            )),
            Some(ADMIN),
        )
        .await,
    );
    answers.push(
        get(
            &s.url("/graph/102289599326934/phone_numbers?limit=1"),
            Some(FINISH),
        )
        .await,
    );
    // An error whose message holds every token at once.
    let message = format!("bad {DEMO_SYSTEM} / {FINISH} / access_token={ADMIN}&x=1");
    s.sim.state.add_faults(vec![
        serde_json::from_value(json!({
            "route": "waba", "times": 2,
            "action": {"kind": "error", "status": 400, "code": 100, "message": message}
        }))
        .unwrap(),
    ]);
    answers.push(get(&s.url("/graph/102289599326934"), Some(FINISH)).await);
    answers.push(get(&s.url("/graph/102289599326934"), Some(ADMIN)).await);
    // Failures of every other kind.
    answers.push(get(&s.url("/graph/102289599326934"), Some(EXPIRED)).await);
    answers.push(get(&s.url("/graph/106540352242922"), Some(FINISH)).await);
    answers.push(get(&s.url("/graph/102289599326934"), None).await);
    answers.push(get(&s.url("/graph/102289599326934?access_token=x"), Some(ADMIN)).await);

    for a in &answers {
        let headers = format!("{:?}", a.headers);
        for secret in secrets {
            assert!(!a.text.contains(secret), "{secret} in body: {}", a.text);
            assert!(!headers.contains(secret), "{secret} in headers: {headers}");
        }
        assert!(
            !a.text.contains("access_token=") || a.text.contains("access_token=[redacted]"),
            "{}",
            a.text
        );
    }
    // The proxy logged every one of these requests; none of its lines holds a secret.
    let logs = s.proxy.output();
    assert!(
        logs.iter().any(|l| l.contains("graph call failed")),
        "the failures were logged"
    );
    assert!(logs.len() >= answers.len());
    for line in &logs {
        for secret in secrets {
            assert!(!line.contains(secret), "{secret} in log line: {line}");
        }
        assert!(
            !line.contains("input_token="),
            "query strings are not logged: {line}"
        );
    }
}

#[test]
fn help_and_config_errors_never_print_secrets() {
    let bin = env!("CARGO_BIN_EXE_waba-proxy");
    let out = std::process::Command::new(bin)
        .arg("--help")
        .env("WABA_SYSTEM_USER_TOKEN", DEMO_SYSTEM)
        .env("WABA_ADMIN_TOKEN", ADMIN)
        .output()
        .unwrap();
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success());
    for setting in [
        "--listen",
        "--graph-url",
        "--graph-version",
        "--system-user-token",
        "--system-user-token-file",
        "--business-id",
        "--app-id",
        "--admin-token",
        "--admin-token-file",
        "--cors-origin",
        "--public-url",
        "--upstream-timeout-ms",
        "--request-timeout-ms",
        "--max-concurrency",
        "--debug-token-per-minute",
        "--token-cache-secs",
        "--www",
        "--log-format",
        "WABA_SYSTEM_USER_TOKEN",
        "WABA_CORS_ORIGINS",
    ] {
        assert!(help.contains(setting), "--help lacks {setting}");
    }
    assert!(
        !help.contains(DEMO_SYSTEM) && !help.contains(ADMIN),
        "{help}"
    );

    // A bad setting stops start-up with one line that names it.
    let out = std::process::Command::new(bin)
        .args([
            "--system-user-token",
            DEMO_SYSTEM,
            "--business-id",
            "not-a-number",
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("--business-id") && !err.contains(DEMO_SYSTEM),
        "{err}"
    );
    let out = std::process::Command::new(bin)
        .args(["--business-id", PARTNER])
        .env_remove("WABA_SYSTEM_USER_TOKEN")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("--system-user-token"),
        "{err}"
    );
    let dir = std::env::temp_dir().join(format!("waba-token-{}", std::process::id()));
    std::fs::write(&dir, format!("{DEMO_SYSTEM}\n")).unwrap();
    let out = std::process::Command::new(bin)
        .args(["--business-id", PARTNER, "--system-user-token", "x"])
        .arg("--system-user-token-file")
        .arg(&dir)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success() && err.contains("not both"), "{err}");
    let _ = std::fs::remove_file(&dir);
}

/// Every configured secret goes through the scrubber: the token key, the app secret and the
/// webhook verify token, echoed by Graph in an error, reach neither the client nor the log.
#[tokio::test]
async fn every_configured_secret_is_scrubbed() {
    const KEY: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";
    const VERIFY: &str = "verify-token-for-scrub-tests-5d1e";
    let s = stack(
        world("demo"),
        &[
            "--app-id",
            "670843887433847",
            "--app-secret",
            DEMO_APP_SECRET,
            "--token-key",
            KEY,
            "--webhook-verify-token",
            VERIFY,
        ],
    );
    let secrets = [KEY, DEMO_APP_SECRET, VERIFY, DEMO_SYSTEM, ADMIN];
    let message = format!("echo {KEY} {DEMO_APP_SECRET} {VERIFY}");
    s.sim.state.add_faults(vec![
        serde_json::from_value(json!({
            "route": "waba", "times": 1,
            "action": {"kind": "error", "status": 400, "code": 100, "message": message}
        }))
        .unwrap(),
    ]);
    let a = get(&s.url("/graph/102289599326934"), Some(FINISH)).await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.text);
    assert!(a.error().message.contains("[redacted]"), "{}", a.text);
    for secret in secrets {
        assert!(!a.text.contains(secret), "{secret} in body: {}", a.text);
    }
    for line in s.proxy.output() {
        for secret in secrets {
            assert!(!line.contains(secret), "{secret} in log line: {line}");
        }
    }
}
