//! Graph's error envelope, its classification, and the usage headers that come with throttling.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `{"error": {...}}`: every Graph failure, and every proxy failure, uses this shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorEnvelope {
    /// The error.
    pub error: GraphError,
}

/// The body of a Graph error.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct GraphError {
    /// Developer-facing message.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub message: String,
    /// `OAuthException`, `GraphMethodException`, ... (`WabaProxyError` for the proxy's own).
    #[serde(rename = "type", default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub error_type: String,
    /// Graph's numeric error code.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(required = true))]
    pub code: i64,
    /// Finer-grained code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_subcode: Option<i64>,
    /// Title meant for end users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_user_title: Option<String>,
    /// Message meant for end users.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_user_msg: Option<String>,
    /// Meta's trace id for support requests.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fbtrace_id: Option<String>,
    /// Meta's hint that retrying later may succeed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub is_transient: Option<bool>,
}

/// What a Graph error means for the caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// Rate limited: wait before calling again (codes 4, 17, 32, 341, 613, 80007, 80008, 130429).
    Throttled,
    /// A temporary failure: a later retry may succeed (codes 1, 2, or `is_transient`).
    Transient,
    /// The app's own credentials were refused on `oauth/access_token`: code 101 with "Error
    /// validating application. Invalid application ID." or code 1 with "Error validating
    /// client secret.". Code 1 is Meta's "API Unknown ... Possibly a temporary issue"
    /// (<https://developers.facebook.com/docs/graph-api/guides/error-handling>), so the
    /// message decides; the shapes are as reported from Graph in
    /// <https://github.com/facebookarchive/php-graph-sdk/issues/538> and
    /// <https://github.com/diowa/icare/issues/5>. A configuration error: no retry can
    /// succeed.
    AppCredentials,
    /// The access token is missing, invalid or expired (codes 102, 104, 190).
    InvalidToken,
    /// The token lacks permission for the object (codes 3, 10, 200-299).
    Permission,
    /// The request itself is wrong (code 100 and its sub-codes).
    BadRequest,
    /// Anything else.
    Other,
}

/// Graph error codes that mean "rate limited".
pub const THROTTLE_CODES: [i64; 8] = [4, 17, 32, 341, 613, 80007, 80008, 130_429];

impl GraphError {
    /// Classifies the error by its code and `is_transient` flag.
    pub fn class(&self) -> ErrorClass {
        match self.code {
            c if THROTTLE_CODES.contains(&c) => ErrorClass::Throttled,
            1 if self.message.starts_with("Error validating client secret") => {
                ErrorClass::AppCredentials
            }
            101 if self.message.contains("Invalid application ID") => ErrorClass::AppCredentials,
            1 | 2 => ErrorClass::Transient,
            102 | 104 | 190 => ErrorClass::InvalidToken,
            3 | 10 | 200..=299 => ErrorClass::Permission,
            _ if self.is_transient == Some(true) => ErrorClass::Transient,
            100 => ErrorClass::BadRequest,
            _ => ErrorClass::Other,
        }
    }

    /// Whether waiting and retrying an idempotent read may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(self.class(), ErrorClass::Throttled | ErrorClass::Transient)
    }
}

/// One entry of `X-Business-Use-Case-Usage` (or the object of `X-App-Usage`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct UsageEntry {
    /// The use case (`whatsapp_business_management`, `management`, ...).
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub use_case: Option<String>,
    /// Percentage of the call budget used.
    pub call_count: u32,
    /// Percentage of the CPU time budget used.
    pub total_cputime: u32,
    /// Percentage of the total time budget used.
    pub total_time: u32,
    /// Minutes until calls are accepted again; 0 when not blocked.
    pub estimated_time_to_regain_access: u32,
}

/// `X-Business-Use-Case-Usage`: usage per business id.
pub type BusinessUseCaseUsage = BTreeMap<String, Vec<UsageEntry>>;

/// The longest wait, in minutes, any entry of a business-use-case usage header asks for.
pub fn regain_access_minutes(usage: &BusinessUseCaseUsage) -> u32 {
    usage
        .values()
        .flatten()
        .map(|e| e.estimated_time_to_regain_access)
        .max()
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(code: i64, transient: Option<bool>) -> GraphError {
        GraphError {
            code,
            is_transient: transient,
            ..GraphError::default()
        }
    }

    #[test]
    fn classification_follows_graph_codes() {
        for c in [4, 17, 32, 341, 613, 80008] {
            assert_eq!(err(c, None).class(), ErrorClass::Throttled, "{c}");
        }
        assert_eq!(err(1, None).class(), ErrorClass::Transient);
        assert_eq!(err(2, Some(false)).class(), ErrorClass::Transient);
        assert_eq!(err(190, None).class(), ErrorClass::InvalidToken);
        assert_eq!(err(190, Some(true)).class(), ErrorClass::InvalidToken);
        assert_eq!(err(10, None).class(), ErrorClass::Permission);
        assert_eq!(err(200, None).class(), ErrorClass::Permission);
        assert_eq!(err(100, None).class(), ErrorClass::BadRequest);
        assert_eq!(err(100, Some(true)).class(), ErrorClass::Transient);
        assert_eq!(err(131_000, Some(true)).class(), ErrorClass::Transient);
        assert_eq!(err(131_000, None).class(), ErrorClass::Other);
        assert!(err(4, None).is_retryable());
        assert!(!err(190, None).is_retryable());
    }

    #[test]
    fn refused_app_credentials_are_not_transient() {
        let secret = GraphError {
            message: "Error validating client secret.".into(),
            error_type: "OAuthException".into(),
            code: 1,
            ..GraphError::default()
        };
        assert_eq!(secret.class(), ErrorClass::AppCredentials);
        assert!(!secret.is_retryable());
        let app = GraphError {
            message: "Error validating application. Invalid application ID.".into(),
            code: 101,
            ..GraphError::default()
        };
        assert_eq!(app.class(), ErrorClass::AppCredentials);
        let system_error = GraphError {
            message:
                "Error validating application. Cannot get application info due to a system error."
                    .into(),
            code: 101,
            ..GraphError::default()
        };
        assert_eq!(system_error.class(), ErrorClass::Other);
        // Code 1 with any other message stays Graph's generic temporary failure.
        assert_eq!(err(1, None).class(), ErrorClass::Transient);
    }

    #[test]
    fn graph_envelope_round_trips() {
        let json = r#"{"error":{"message":"(#4) Application request limit reached","type":"OAuthException","is_transient":true,"code":4,"error_subcode":2446079,"fbtrace_id":"Az8or2yhqkZfEZ-_4Qn_Bam"}}"#;
        let env: ErrorEnvelope = serde_json::from_str(json).unwrap();
        assert_eq!(env.error.error_type, "OAuthException");
        assert_eq!(env.error.error_subcode, Some(2_446_079));
        assert_eq!(env.error.class(), ErrorClass::Throttled);
        let back: ErrorEnvelope =
            serde_json::from_str(&serde_json::to_string(&env).unwrap()).unwrap();
        assert_eq!(back, env);
    }

    #[test]
    fn usage_header_gives_longest_wait() {
        let header = r#"{"805021500648488":[{"type":"whatsapp_business_management","call_count":100,"total_cputime":12,"total_time":30,"estimated_time_to_regain_access":7},{"type":"management","call_count":3,"total_cputime":1,"total_time":1,"estimated_time_to_regain_access":0}]}"#;
        let usage: BusinessUseCaseUsage = serde_json::from_str(header).unwrap();
        assert_eq!(regain_access_minutes(&usage), 7);
        assert_eq!(regain_access_minutes(&BusinessUseCaseUsage::new()), 0);
    }
}
