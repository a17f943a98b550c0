//! The validators every client input goes through: what they accept is well-formed and prints
//! back to text they accept again as the same value.
#![no_main]

use libfuzzer_sys::fuzz_target;
use waba_graph::ObjectId;
use waba_graph::input::{Cursor, Fields, Filtering, Limit, ListQuery, Sort};
use waba_graph::time::UnixTime;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(f) = Fields::parse_waba(text) {
        assert_eq!(Fields::parse_waba(&f.to_string()), Ok(f.clone()));
        assert!(!f.to_string().contains("access_token"));
    }
    if let Ok(f) = Fields::parse_phone(text) {
        assert_eq!(Fields::parse_phone(&f.to_string()), Ok(f));
    }
    if let Ok(f) = Filtering::from_json(text) {
        assert_eq!(Filtering::from_json(&f.to_string()), Ok(f));
    }
    if let Ok(c) = Cursor::parse(text) {
        assert!(!c.as_str().contains(['&', '/', '%', '?', '#', ' ']));
    }
    if let Ok(id) = ObjectId::parse(text) {
        assert!(id.as_str().bytes().all(|b| b.is_ascii_digit()));
    }
    if let Ok(l) = Limit::parse(text) {
        assert!((1..=100).contains(&l.get()));
    }
    let _ = Sort::parse(text);
    let _ = UnixTime::parse(text);
    let pairs: Vec<(&str, &str)> = text.split('&').filter_map(|p| p.split_once('=')).collect();
    if let Ok(q) = ListQuery::from_pairs(pairs.iter().copied()) {
        let printed = q.to_pairs();
        let again = ListQuery::from_pairs(printed.iter().map(|(k, v)| (*k, v.as_str())));
        assert_eq!(again, Ok(q));
    }
});
