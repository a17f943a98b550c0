//! Graph's answers as the proxy and the browser read them: WABA nodes, pages, `debug_token`,
//! error envelopes, usage headers. Never a panic; ids stay digits; what parses serialises
//! back to something that parses to the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use waba_graph::error::{BusinessUseCaseUsage, ErrorEnvelope, regain_access_minutes};
use waba_graph::status::AccountStatus;
use waba_graph::{DebugToken, Page, PhoneNumber, Waba, WabaScope};

fn round_trip<T>(value: &T)
where
    T: serde::Serialize + serde::de::DeserializeOwned + PartialEq + std::fmt::Debug,
{
    let text = serde_json::to_string(value).expect("serialises");
    let back: T = serde_json::from_str(&text).expect("re-parses");
    assert_eq!(&back, value);
}

fuzz_target!(|data: &[u8]| {
    if let Ok(w) = serde_json::from_slice::<Waba>(data) {
        assert!(w.id.as_str().bytes().all(|b| b.is_ascii_digit()));
        round_trip(&w);
        let _ = AccountStatus::new(w, true, None, true);
    }
    if let Ok(p) = serde_json::from_slice::<Page<Waba>>(data) {
        round_trip(&p);
        let _ = p.after_cursor();
    }
    if let Ok(p) = serde_json::from_slice::<Page<PhoneNumber>>(data) {
        round_trip(&p);
    }
    if let Ok(t) = serde_json::from_slice::<DebugToken>(data) {
        if let Ok(ids) = t.data.granted_wabas(WabaScope::Management) {
            assert!(
                ids.iter()
                    .all(|i| i.as_str().bytes().all(|b| b.is_ascii_digit()))
            );
        }
        round_trip(&t);
    }
    if let Ok(e) = serde_json::from_slice::<ErrorEnvelope>(data) {
        let _ = e.error.class();
        round_trip(&e);
    }
    if let Ok(u) = serde_json::from_slice::<BusinessUseCaseUsage>(data) {
        let _ = regain_access_minutes(&u);
    }
});
