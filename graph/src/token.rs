//! The `debug_token` answer and the WABAs a signup token was granted.

use crate::id::{IdError, ObjectId, RawId};
use serde::{Deserialize, Serialize};

/// `GET /debug_token?input_token=...`: Graph wraps the token's description in `data`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DebugToken {
    /// What Graph knows of the inspected token.
    pub data: TokenInfo,
}

/// The description of one access token.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TokenInfo {
    /// Whether the token can be used now.
    pub is_valid: bool,
    /// The app the token belongs to.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub app_id: Option<RawId>,
    /// The app's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub application: Option<String>,
    /// `USER`, `PAGE`, `APP`, `SYSTEM_USER`, ...
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// Unix time the token expires; `0` means it does not expire.
    pub expires_at: i64,
    /// Unix time the data access granted with the token expires.
    pub data_access_expires_at: i64,
    /// Unix time the token was issued, when Graph says.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub issued_at: Option<i64>,
    /// Plain scope names.
    pub scopes: Vec<String>,
    /// Scopes restricted to particular objects.
    pub granular_scopes: Vec<GranularScope>,
    /// The user the token acts for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<RawId>,
    /// Why the token is not valid, when it is not.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<TokenError>,
}

/// A scope restricted to a list of objects.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GranularScope {
    /// Scope name, kept as Graph sent it (unknown scopes are carried, never matched loosely).
    pub scope: String,
    /// Objects the scope covers, newest grant first. Absent for some scopes.
    #[serde(default)]
    pub target_ids: Vec<RawId>,
}

/// The error object `debug_token` puts inside `data` for an invalid token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenError {
    /// Graph error code (190 for invalid or expired tokens).
    pub code: i64,
    /// Graph's message.
    #[serde(default)]
    pub message: String,
    /// Sub-code (463: expired, 460: password changed, 467: invalid, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subcode: Option<i64>,
}

/// The two scopes that grant WABAs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WabaScope {
    /// `whatsapp_business_management`: read and manage the WABA.
    Management,
    /// `whatsapp_business_messaging`: send messages through it.
    Messaging,
}

impl WabaScope {
    /// The scope's name in Graph.
    pub fn name(self) -> &'static str {
        match self {
            WabaScope::Management => "whatsapp_business_management",
            WabaScope::Messaging => "whatsapp_business_messaging",
        }
    }
}

impl TokenInfo {
    /// The WABA ids granted under `scope`, in Meta's order (the most recently onboarded first),
    /// without duplicates. Only the exact scope name counts: look-alike scopes such as
    /// `whatsapp_business_manage_events` are ignored.
    pub fn granted_wabas(&self, scope: WabaScope) -> Result<Vec<ObjectId>, IdError> {
        let mut out: Vec<ObjectId> = Vec::new();
        for granted in self
            .granular_scopes
            .iter()
            .filter(|g| g.scope == scope.name())
        {
            for raw in &granted.target_ids {
                let id = ObjectId::parse(&raw.0)?;
                if !out.contains(&id) {
                    out.push(id);
                }
            }
        }
        Ok(out)
    }

    /// Whether the token is expired at `now` (unix seconds). `expires_at == 0` never expires.
    pub fn is_expired_at(&self, now: i64) -> bool {
        self.expires_at != 0 && self.expires_at <= now
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Meta's example from "Manage WABAs", with its `//` comment removed to make it JSON.
    const META_EXAMPLE: &str = r#"{ "data" : { "app_id" : "670843887433847", "application" : "JaspersMarket", "data_access_expires_at" : 1672092840, "expires_at" : 1665090000, "granular_scopes" : [ { "scope" : "whatsapp_business_management", "target_ids" : [ "102289599326934", "101569239400667" ] }, { "scope" : "whatsapp_business_messaging", "target_ids" : [ "102289599326934", "101569239400667" ] } ], "is_valid" : true, "scopes" : [ "whatsapp_business_management", "whatsapp_business_messaging", "public_profile" ], "type" : "USER", "user_id" : "10222270944537964" } }"#;

    #[test]
    fn meta_example_gives_newest_waba_first() {
        let t: DebugToken = serde_json::from_str(META_EXAMPLE).unwrap();
        assert!(t.data.is_valid);
        assert_eq!(t.data.application.as_deref(), Some("JaspersMarket"));
        assert_eq!(t.data.token_type.as_deref(), Some("USER"));
        assert_eq!(t.data.expires_at, 1_665_090_000);
        let ids = t.data.granted_wabas(WabaScope::Management).unwrap();
        let ids: Vec<&str> = ids.iter().map(ObjectId::as_str).collect();
        assert_eq!(ids, ["102289599326934", "101569239400667"]);
        assert_eq!(t.data.granted_wabas(WabaScope::Messaging).unwrap().len(), 2);
        assert!(t.data.is_expired_at(1_665_090_000));
        assert!(!t.data.is_expired_at(1_665_089_999));
    }

    #[test]
    fn unknown_and_lookalike_scopes_are_ignored() {
        let json = r#"{"data":{"is_valid":true,"granular_scopes":[
            {"scope":"whatsapp_business_manage_events","target_ids":["111"]},
            {"scope":"business_management","target_ids":["not-an-id"]},
            {"scope":"public_profile"},
            {"scope":"whatsapp_business_management","target_ids":[9007199254740993,"222","222"]}
        ]}}"#;
        let t: DebugToken = serde_json::from_str(json).unwrap();
        let ids = t.data.granted_wabas(WabaScope::Management).unwrap();
        let ids: Vec<&str> = ids.iter().map(ObjectId::as_str).collect();
        assert_eq!(ids, ["9007199254740993", "222"]);
        assert!(
            t.data
                .granted_wabas(WabaScope::Messaging)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn invalid_token_carries_its_error() {
        let json = r#"{"data":{"error":{"code":190,"message":"Error validating access token: Session has expired","subcode":463},"is_valid":false,"scopes":[]}}"#;
        let t: DebugToken = serde_json::from_str(json).unwrap();
        assert!(!t.data.is_valid);
        let err = t.data.error.unwrap();
        assert_eq!((err.code, err.subcode), (190, Some(463)));
    }

    #[test]
    fn a_bad_target_id_in_a_waba_scope_is_an_error_not_a_silent_drop() {
        let json = r#"{"data":{"is_valid":true,"granular_scopes":[{"scope":"whatsapp_business_management","target_ids":["12x"]}]}}"#;
        let t: DebugToken = serde_json::from_str(json).unwrap();
        assert!(t.data.granted_wabas(WabaScope::Management).is_err());
    }
}
