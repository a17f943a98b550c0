//! `FB.login` responses: any JSON gives a typed outcome or a typed error, never a panic, and
//! a credential is never printed by `Debug`.
#![no_main]

use libfuzzer_sys::fuzz_target;
use waba_graph::signup::{LoginOutcome, RawLoginResponse};

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = serde_json::from_slice::<RawLoginResponse>(data) else {
        return;
    };
    match LoginOutcome::from_raw(raw) {
        Ok(LoginOutcome::Token { access_token, .. }) => {
            let secret = access_token.expose().to_owned();
            assert!(!secret.is_empty() && secret.bytes().all(|b| b.is_ascii_graphic()));
            assert_eq!(format!("{access_token:?}"), "[redacted]");
        }
        Ok(LoginOutcome::Code { code }) => assert!(!code.expose().is_empty()),
        Ok(LoginOutcome::Cancelled { .. }) | Err(_) => {}
    }
});
