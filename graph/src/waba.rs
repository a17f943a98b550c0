//! WhatsApp Business Account (WABA) and phone number nodes.

use crate::id::ObjectId;
use crate::page::Page;
use crate::time::UnixTime;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// A WABA node as Graph returns it; every field but `id` is present only when requested.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Waba {
    /// The WABA's id.
    pub id: ObjectId,
    /// Display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Billing currency (ISO 4217).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency: Option<String>,
    /// Graph's time zone id (a number written as text).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "opt_text"
    )]
    pub timezone_id: Option<String>,
    /// Namespace of the WABA's message templates.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_template_namespace: Option<String>,
    /// Meta's review of the account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub account_review_status: Option<ReviewStatus>,
    /// Verification of the owning business: `verified`, `not_verified`, `pending`,
    /// `pending_need_more_info`, `pending_submission`, `rejected`, `failed`, `expired`,
    /// `revoked`, `ineligible`
    /// (<https://developers.facebook.com/docs/graph-api/reference/whats-app-business-account>).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub business_verification_status: Option<String>,
    /// `CLIENT_OWNED`, `ON_BEHALF_OF`, `SELF`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ownership_type: Option<String>,
    /// Whether the account can send messages, and what blocks it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_status: Option<HealthStatus>,
    /// When the WABA was created (not when it was shared).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_time: Option<UnixTime>,
    /// Phone numbers, when requested by field expansion (`phone_numbers{...}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_numbers: Option<Page<PhoneNumber>>,
}

/// `account_review_status`. Values Meta may add later are kept raw in [`ReviewStatus::Unknown`].
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ReviewStatus {
    /// Under review.
    Pending,
    /// Approved: may message.
    Approved,
    /// Rejected.
    Rejected,
    /// Review deferred (seen in `account_review_update` webhooks).
    Deferred,
    /// A value this version does not know, exactly as Graph sent it.
    Unknown(String),
}

impl ReviewStatus {
    /// Reads Graph's value; never fails.
    pub fn parse(s: &str) -> Self {
        match s {
            "PENDING" => Self::Pending,
            "APPROVED" => Self::Approved,
            "REJECTED" => Self::Rejected,
            "DEFERRED" => Self::Deferred,
            other => Self::Unknown(other.to_owned()),
        }
    }

    /// Graph's text for the status.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Pending => "PENDING",
            Self::Approved => "APPROVED",
            Self::Rejected => "REJECTED",
            Self::Deferred => "DEFERRED",
            Self::Unknown(s) => s,
        }
    }
}

impl Serialize for ReviewStatus {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ReviewStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Ok(Self::parse(&s))
    }
}

/// `health_status` of a WABA: the overall verdict and one entry per entity involved.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthStatus {
    /// `AVAILABLE`, `LIMITED` or `BLOCKED`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_send_message: Option<String>,
    /// Per-entity verdicts (the WABA, its business, app, phone numbers).
    pub entities: Vec<HealthEntity>,
}

/// One entity of a health verdict.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthEntity {
    /// `WABA`, `BUSINESS`, `APP`, `PHONE_NUMBER`, ...
    #[serde(skip_serializing_if = "Option::is_none")]
    pub entity_type: Option<String>,
    /// The entity's id.
    #[serde(skip_serializing_if = "Option::is_none", deserialize_with = "opt_text")]
    pub id: Option<String>,
    /// `AVAILABLE`, `LIMITED` or `BLOCKED`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub can_send_message: Option<String>,
    /// What blocks (or limits) the entity, with Meta's suggested fix.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<HealthError>,
    /// What limits a `LIMITED` entity, in Meta's words.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub additional_info: Vec<String>,
}

/// A reason an entity is limited or blocked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct HealthError {
    /// Meta's error code.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_code: Option<i64>,
    /// What is wrong.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    /// What to do about it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub possible_solution: Option<String>,
}

/// A business phone number of a WABA.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhoneNumber {
    /// The phone number id (not the number).
    pub id: ObjectId,
    /// The number as shown to people, e.g. `+1 631-555-5555`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_phone_number: Option<String>,
    /// The approved display name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verified_name: Option<String>,
    /// `CONNECTED`, `PENDING` (verified, not yet registered), `DISCONNECTED`, `FLAGGED`,
    /// `RESTRICTED`, `RATE_LIMITED`, `BANNED`, `DELETED`, `MIGRATED`, `UNVERIFIED`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// `GREEN`, `YELLOW`, `RED`, `UNKNOWN`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quality_rating: Option<String>,
    /// `VERIFIED`, `NOT_VERIFIED`, `EXPIRED`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_verification_status: Option<String>,
    /// Display name review: `APPROVED`, `AVAILABLE_WITHOUT_REVIEW`, `PENDING_REVIEW`,
    /// `DECLINED`, `EXPIRED`, `NONE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name_status: Option<String>,
    /// `CLOUD_API`, `ON_PREMISE`, `NOT_APPLICABLE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub platform_type: Option<String>,
}

/// Text that Graph sometimes writes as a number (time zone ids, entity ids).
fn opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    d.deserialize_any(crate::id::IdText).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Meta's list example (client and owned edges), with its trailing comma removed.
    const META_LIST: &str = r#"{ "data": [ { "id": 1906385232743451, "name": "My WhatsApp Business Account", "currency": "USD", "timezone_id": "1", "message_template_namespace": "abcdefghijk_12lmnop" }, { "id": 1972385232742141, "name": "My Regional Account", "currency": "INR", "timezone_id": "5", "message_template_namespace": "12abcdefghijk_34lmnop" } ], "paging": { "cursors": { "before": "abcdefghij", "after": "klmnopqr" } } }"#;

    #[test]
    fn meta_list_example_parses_with_ids_as_strings() {
        let page: Page<Waba> = serde_json::from_str(META_LIST).unwrap();
        assert_eq!(page.data.len(), 2);
        assert_eq!(page.data[0].id.as_str(), "1906385232743451");
        assert_eq!(page.data[1].currency.as_deref(), Some("INR"));
        assert_eq!(page.data[1].timezone_id.as_deref(), Some("5"));
        let cursors = page.paging.as_ref().unwrap().cursors.as_ref().unwrap();
        assert_eq!(cursors.after.as_deref(), Some("klmnopqr"));
        // No `next`: this is the last page, so there is no cursor to follow.
        assert!(!page.has_next());
        assert_eq!(page.after_cursor(), None);
        let out = serde_json::to_string(&page.data[0]).unwrap();
        assert!(out.contains(r#""id":"1906385232743451""#), "{out}");
    }

    #[test]
    fn meta_review_status_example() {
        let w: Waba = serde_json::from_str(
            r#"{ "account_review_status": "APPROVED", "id": "1111111111111" }"#,
        )
        .unwrap();
        assert_eq!(w.account_review_status, Some(ReviewStatus::Approved));
    }

    #[test]
    fn unknown_review_status_is_kept_raw() {
        let w: Waba =
            serde_json::from_str(r#"{"id":"1","account_review_status":"UNDER_APPEAL"}"#).unwrap();
        assert_eq!(
            w.account_review_status,
            Some(ReviewStatus::Unknown("UNDER_APPEAL".into()))
        );
        assert_eq!(w.account_review_status.unwrap().as_str(), "UNDER_APPEAL");
        assert_eq!(ReviewStatus::parse("DEFERRED"), ReviewStatus::Deferred);
    }

    #[test]
    fn expanded_waba_with_phones_and_health() {
        let json = r#"{"id":"104996122399160","name":"Lucky Shrub","currency":"USD","timezone_id":1,
            "account_review_status":"PENDING","business_verification_status":"verified",
            "ownership_type":"CLIENT_OWNED","creation_time":"2020-11-09T23:00:13+0000",
            "health_status":{"can_send_message":"LIMITED","entities":[{"entity_type":"WABA","id":104996122399160,
              "can_send_message":"LIMITED","errors":[{"error_code":141010,"error_description":"The Business has not passed business verification.","possible_solution":"Visit business settings and start or resolve the business verification request."}]}]},
            "phone_numbers":{"data":[{"id":"106540352242922","display_phone_number":"+1 555-0100",
              "verified_name":"Lucky Shrub","status":"CONNECTED","quality_rating":"GREEN",
              "code_verification_status":"VERIFIED","name_status":"APPROVED","platform_type":"CLOUD_API"}],
              "paging":{"cursors":{"before":"QVFI","after":"QVFJ"}}}}"#;
        let w: Waba = serde_json::from_str(json).unwrap();
        assert_eq!(w.creation_time, Some(UnixTime(1_604_962_813)));
        assert_eq!(w.timezone_id.as_deref(), Some("1"));
        let health = w.health_status.unwrap();
        assert_eq!(health.entities[0].id.as_deref(), Some("104996122399160"));
        assert_eq!(health.entities[0].errors[0].error_code, Some(141_010));
        let phones = w.phone_numbers.unwrap().data;
        assert_eq!(phones[0].quality_rating.as_deref(), Some("GREEN"));
        assert_eq!(phones[0].platform_type.as_deref(), Some("CLOUD_API"));
    }

    #[test]
    fn adversarial_nodes_are_errors_not_panics() {
        for bad in [
            r#"{}"#,
            r#"{"id":null}"#,
            r#"{"id":"12","name":5}"#,
            r#"{"id":"12","account_review_status":7}"#,
            r#"{"id":"12","phone_numbers":"none"}"#,
            r#"{"id":"1e5"}"#,
            r#"[]"#,
        ] {
            assert!(serde_json::from_str::<Waba>(bad).is_err(), "{bad}");
        }
        // Unknown fields are tolerated: Graph adds fields over time.
        let w: Waba = serde_json::from_str(r#"{"id":"12","brand_new_field":{"x":1}}"#).unwrap();
        assert_eq!(w.id.as_str(), "12");
    }
}
