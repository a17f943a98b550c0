//! Graph object ids.
//!
//! Graph ids are decimal strings that can exceed 2^53, so they must never pass through a
//! floating-point number. Meta's own examples sometimes print them as JSON numbers: those are
//! accepted when they are exact integers and turned into strings.

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Longest id accepted. Graph ids are at most 20 digits today; a little slack, no more.
pub const MAX_ID_LEN: usize = 24;

/// Largest integer a JS number (an `f64`) holds exactly.
const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

/// Why a string is not a Graph object id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IdError {
    /// The id is empty.
    Empty,
    /// The id is longer than [`MAX_ID_LEN`].
    TooLong,
    /// The id holds something other than ASCII digits.
    NotDigits,
    /// The id came as a floating-point number that cannot be exact.
    Inexact,
}

impl IdError {
    /// What is wrong, in words (what `Display` writes; the browser module reads it without
    /// the formatting machinery).
    pub fn message(&self) -> &'static str {
        match self {
            Self::Empty => "id is empty",
            Self::TooLong => "id is longer than 24 digits",
            Self::NotDigits => "id must contain only digits 0-9",
            Self::Inexact => {
                "id given as a number above 2^53 or with a fraction cannot be exact: send it as a \
                 string"
            }
        }
    }
}

impl fmt::Display for IdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for IdError {}

/// A validated Graph object id (WABA, business, phone number, user, app): ASCII digits only.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectId(String);

impl ObjectId {
    /// Validates `s` as an object id.
    pub fn parse(s: &str) -> Result<Self, IdError> {
        if s.is_empty() {
            return Err(IdError::Empty);
        }
        if s.len() > MAX_ID_LEN {
            return Err(IdError::TooLong);
        }
        if !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(IdError::NotDigits);
        }
        Ok(Self(s.to_owned()))
    }

    /// The id as a string slice.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ObjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for ObjectId {
    type Err = IdError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl Serialize for ObjectId {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ObjectId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = d.deserialize_any(IdText)?;
        ObjectId::parse(&raw).map_err(de::Error::custom)
    }
}

/// An id-like value kept as text without validation: used where Graph may put ids of kinds
/// the model does not know (for example `target_ids` of unknown scopes).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct RawId(pub String);

impl<'de> Deserialize<'de> for RawId {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(IdText).map(RawId)
    }
}

/// Its schema: what it accepts, a string or an integer.
#[cfg(feature = "openapi")]
impl utoipa::PartialSchema for RawId {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Type};
        OneOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::String))
            .item(ObjectBuilder::new().schema_type(Type::Integer))
            .description(Some("An id, as a string or as an integer written exactly"))
            .into()
    }
}

#[cfg(feature = "openapi")]
impl utoipa::ToSchema for RawId {}

/// Accepts a string, or an integer number written exactly, and yields its decimal text.
pub(crate) struct IdText;

impl Visitor<'_> for IdText {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an id as a string or an integer")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<String, E> {
        Ok(v.to_owned())
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<String, E> {
        if v.fract() == 0.0 && v.abs() <= MAX_SAFE_INTEGER {
            // Exact: integers up to 2^53 survive an f64 unchanged.
            Ok(format!("{}", v as i64))
        } else {
            Err(E::custom(IdError::Inexact))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_above_2_pow_53_stay_exact() {
        // 2^53 + 1 cannot be an f64; as a JSON number or string it must come through intact.
        let id: ObjectId = serde_json::from_str("9007199254740993").unwrap();
        assert_eq!(id.as_str(), "9007199254740993");
        let id: ObjectId = serde_json::from_str("\"18446744073709551615\"").unwrap();
        assert_eq!(id.as_str(), "18446744073709551615");
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"18446744073709551615\""
        );
    }

    #[test]
    fn inexact_floats_are_refused() {
        assert!(serde_json::from_str::<ObjectId>("1.5").is_err());
        assert!(serde_json::from_str::<ObjectId>("1e300").is_err());
        let small: ObjectId = serde_json::from_str("12.0").unwrap();
        assert_eq!(small.as_str(), "12");
    }

    #[test]
    fn bad_ids_are_refused() {
        for bad in ["", "12a", "-1", "../1", "1 2", "１２", "%2F"] {
            assert!(ObjectId::parse(bad).is_err(), "{bad:?} accepted");
        }
        assert_eq!(ObjectId::parse(&"1".repeat(25)), Err(IdError::TooLong));
        assert!(ObjectId::parse(&"1".repeat(24)).is_ok());
        assert!(serde_json::from_str::<ObjectId>("-5").is_err());
        assert!(serde_json::from_str::<ObjectId>("true").is_err());
    }
}
