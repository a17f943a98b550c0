//! The pure model of the parts of Meta's Graph API that waba-onboard uses.
//!
//! Shared by the browser module (`wasm/`) and the proxy (`proxy/`): no I/O, builds for native
//! and `wasm32-unknown-unknown`. It is the only place that knows Graph's JSON shapes.
//!
//! - [`id`]: object ids as exact strings (numbers accepted, never rounded).
//! - [`token`]: the `debug_token` answer and the WABAs a token was granted.
//! - [`waba`]: WhatsApp Business Account and phone number nodes.
//! - [`page`]: list pages with cursor paging.
//! - [`error`]: Graph's error envelope and its classification.
//! - [`input`]: validated request inputs (fields, filtering, sort, limit, cursors).
//! - [`timezone`]: the names of Graph's time zone ids.
//! - [`signup`]: Embedded Signup session events and `FB.login` responses.
//! - [`pipeline`]: the partner's post-signup steps, their tokens and Meta's errors.

pub mod error;
pub mod id;
pub mod input;
pub mod messages;
pub mod page;
pub mod pipeline;
pub mod secret;
pub mod signup;
pub mod status;
pub mod time;
pub mod timezone;
pub mod token;
pub mod waba;

pub use error::{ErrorClass, ErrorEnvelope, GraphError};
pub use id::{IdError, ObjectId};
pub use page::{Cursors, Page, Paging};
pub use secret::Secret;
pub use token::{DebugToken, GranularScope, TokenInfo, WabaScope};
pub use waba::{HealthStatus, PhoneNumber, ReviewStatus, Waba};

/// `n` in decimal, written without the formatting machinery (which costs the browser module
/// kilobytes it otherwise does without).
pub fn decimal(mut n: u64) -> String {
    let mut digits = Vec::new();
    loop {
        digits.push(b'0' + (n % 10) as u8);
        n /= 10;
        if n == 0 {
            break;
        }
    }
    digits.iter().rev().map(|&d| char::from(d)).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn decimal_writes_what_display_writes() {
        for n in [0, 7, 10, 24, 100, 4096, 9_007_199_254_740_993, u64::MAX] {
            assert_eq!(super::decimal(n), n.to_string());
        }
    }

    #[test]
    fn error_messages_name_their_limits() {
        use crate::signup::{MAX_WABA_IDS, SignupError};
        assert!(
            crate::IdError::TooLong
                .message()
                .contains(&crate::id::MAX_ID_LEN.to_string())
        );
        assert_eq!(
            SignupError::TooManyWabas.to_string(),
            format!("waba_ids holds more than {MAX_WABA_IDS} ids")
        );
        let bad = SignupError::BadId {
            field: "waba_id",
            source: crate::IdError::NotDigits,
        };
        assert_eq!(
            bad.to_string(),
            "invalid waba_id: id must contain only digits 0-9"
        );
        assert!(std::error::Error::source(&bad).is_some());
    }
}
