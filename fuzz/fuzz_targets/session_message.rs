//! `WA_EMBEDDED_SIGNUP` session messages: any JSON, any origin, never a panic; a typed event
//! keeps its ids valid; the tracker yields at most one result.
#![no_main]

use libfuzzer_sys::fuzz_target;
use waba_graph::signup::{
    LoginOutcome, RawSessionMessage, SessionEvent, SessionMessage, SignupTracker, is_trusted_origin,
};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (origin, body) = text
        .split_once('\n')
        .unwrap_or(("https://www.facebook.com", text));
    let trusted = is_trusted_origin(origin, &[]);
    if trusted {
        assert!(origin.starts_with("https://"), "{origin}");
        assert!(
            origin == "https://facebook.com" || origin.ends_with(".facebook.com"),
            "{origin}"
        );
    }
    let Ok(raw) = serde_json::from_str::<RawSessionMessage>(body) else {
        return;
    };
    let Ok(Some(message)) = SessionMessage::from_raw(raw) else {
        return;
    };
    if let SessionEvent::Finish(f)
    | SessionEvent::FinishOnlyWaba(f)
    | SessionEvent::FinishWhatsAppBusinessApp(f) = &message.event
    {
        assert!(f.waba_id.as_str().bytes().all(|b| b.is_ascii_digit()));
    }
    let mut tracker = SignupTracker::new();
    let first = tracker.on_session(message.clone());
    assert!(first.is_none(), "no result without a login");
    let result = tracker.on_login(LoginOutcome::Cancelled { status: None });
    let unknown = matches!(message.event, SessionEvent::Unknown { .. });
    assert_eq!(result.is_some(), !unknown);
    assert!(tracker.on_session(message).is_none() || unknown);
});
