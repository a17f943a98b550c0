//! Validated request inputs: `fields`, `filtering`, `sort`, `limit` and paging cursors.
//!
//! Everything a client sends is parsed into these types before anything reaches Graph; each
//! type writes itself back in one canonical form, so equal requests look equal upstream.

use crate::id::IdError;
use crate::secret::Secret;
use std::fmt;

/// Longest `fields` value accepted.
pub const MAX_FIELDS_LEN: usize = 1024;
/// Longest paging cursor accepted.
pub const MAX_CURSOR_LEN: usize = 512;
/// Largest page Graph serves on the WABA list edges.
pub const MAX_LIMIT: u8 = 100;
/// Latest unix time accepted in a filter (year 2100): a bound, not a prophecy.
pub const MAX_UNIX_TIME: i64 = 4_102_444_800;

/// Fields of a WABA node the product may read.
pub const WABA_FIELDS: &[&str] = &[
    "id",
    "name",
    "currency",
    "timezone_id",
    "message_template_namespace",
    "account_review_status",
    "business_verification_status",
    "ownership_type",
    "health_status",
    "creation_time",
    "phone_numbers",
];

/// Fields of a phone number node the product may read.
pub const PHONE_FIELDS: &[&str] = &[
    "id",
    "display_phone_number",
    "verified_name",
    "status",
    "quality_rating",
    "code_verification_status",
    "name_status",
    "platform_type",
];

/// Why an input was refused. Messages are safe to show to the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// A path or parameter id is malformed.
    #[error("invalid id: {0}")]
    Id(#[from] IdError),
    /// `fields` names a field outside the allowlist.
    #[error("field `{0}` is not available")]
    UnknownField(String),
    /// `fields` is not a comma-separated list of names, with `{...}` only on `phone_numbers`.
    #[error("malformed fields: {0}")]
    FieldSyntax(&'static str),
    /// `fields` is longer than [`MAX_FIELDS_LEN`].
    #[error("fields is longer than {MAX_FIELDS_LEN} characters")]
    FieldsTooLong,
    /// `filtering` is not 1 to 4 documented conditions with valid operators and values.
    #[error("invalid filtering: {0}")]
    Filtering(&'static str),
    /// `sort` is not one of the two values.
    #[error("sort must be creation_time_ascending or creation_time_descending")]
    Sort,
    /// `limit` is not an integer in 1..=100.
    #[error("limit must be an integer from 1 to {MAX_LIMIT}")]
    Limit,
    /// A cursor is empty, too long, or holds characters cursors never hold.
    #[error("invalid paging cursor")]
    Cursor,
    /// A parameter the route does not take.
    #[error("unknown parameter `{0}`")]
    UnknownParameter(String),
    /// A parameter given twice.
    #[error("parameter `{0}` given more than once")]
    DuplicateParameter(String),
    /// Both `after` and `before`.
    #[error("give either `after` or `before`, not both")]
    BothCursors,
    /// A Graph version that is not `vNN.N`.
    #[error("a Graph version looks like v26.0")]
    Version,
    /// An access token that is empty, too long, or holds characters tokens never hold.
    #[error("malformed access token")]
    Token,
    /// A signup code that is empty, too long, or holds characters codes never hold.
    #[error("malformed code: send the code from FB.login's authResponse unchanged")]
    Code,
}

impl InputError {
    /// A parameter the route does not take, its name cut down to 64 characters before it goes
    /// into an error message (names can be attacker-sized).
    pub fn unknown_parameter(name: &str) -> Self {
        Self::UnknownParameter(name.chars().take(64).collect())
    }
}

/// Whether `s` can be a bearer credential or a token handed over by the SDK: 1..=
/// [`MAX_TOKEN_LEN`] printable ASCII characters without spaces.
pub fn is_credential_text(s: &str) -> bool {
    !s.is_empty() && s.len() <= MAX_TOKEN_LEN && s.bytes().all(|b| b.is_ascii_graphic())
}

/// Longest access token accepted.
pub const MAX_TOKEN_LEN: usize = 4096;
/// Longest signup code accepted.
pub const MAX_CODE_LEN: usize = 2048;

/// A Graph API version: `v` then 1..=3 digits, a dot and 1..=2 digits (`v26.0`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct GraphVersion(String);

impl GraphVersion {
    /// Validates a version.
    pub fn parse(s: &str) -> Result<Self, InputError> {
        let ok = s.strip_prefix('v').is_some_and(|v| {
            let mut parts = v.split('.');
            matches!((parts.next(), parts.next(), parts.next()), (Some(a), Some(b), None)
                if (1..=3).contains(&a.len()) && (1..=2).contains(&b.len())
                    && a.bytes().chain(b.bytes()).all(|c| c.is_ascii_digit()))
        });
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InputError::Version)
        }
    }

    /// Whether `s` is a version (a path segment such as `v26.0`).
    pub fn is_version(s: &str) -> bool {
        Self::parse(s).is_ok()
    }

    /// The version text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for GraphVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A secret of a known alphabet and length: `max` bytes at most, each alphanumeric or one of
/// `extra`.
fn checked(s: &str, max: usize, extra: &[u8], refused: InputError) -> Result<Secret, InputError> {
    let ok = !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b));
    if ok { Ok(Secret::new(s)) } else { Err(refused) }
}

/// A Meta access token as a client presents it for inspection: 1..=[`MAX_TOKEN_LEN`]
/// characters of `A-Z a-z 0-9 _ - . |` (user, business and System User tokens, and app
/// tokens `app_id|secret`). Held as a [`Secret`]: it never prints.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessToken(Secret);

impl AccessToken {
    /// Checks a token's shape.
    pub fn parse(s: &str) -> Result<Self, InputError> {
        checked(s, MAX_TOKEN_LEN, b"_-.|", InputError::Token).map(Self)
    }

    /// The token, for the one place that sends it.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

/// A signup code from `FB.login` (`response_type: "code"`): 1..=[`MAX_CODE_LEN`] characters
/// of the URL-safe alphabet Meta's codes use. Held as a [`Secret`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignupCode(Secret);

impl SignupCode {
    /// Checks a code's shape.
    pub fn parse(s: &str) -> Result<Self, InputError> {
        checked(s, MAX_CODE_LEN, b"-_.~#", InputError::Code).map(Self)
    }

    /// The code, for the one place that sends it.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }
}

/// One requested field, with the sub-fields of an expanded edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The field name.
    pub name: String,
    /// For an expansion like `phone_numbers{id,status}`, the sub-fields.
    pub sub: Option<Vec<String>>,
}

/// A validated `fields` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fields(Vec<Field>);

impl Fields {
    /// Parses `fields` for a WABA node or list: [`WABA_FIELDS`], and `phone_numbers{...}`
    /// with [`PHONE_FIELDS`] inside.
    pub fn parse_waba(s: &str) -> Result<Self, InputError> {
        Self::parse(s, WABA_FIELDS, Some(("phone_numbers", PHONE_FIELDS)))
    }

    /// Parses `fields` for the phone numbers edge: [`PHONE_FIELDS`], no expansion.
    pub fn parse_phone(s: &str) -> Result<Self, InputError> {
        Self::parse(s, PHONE_FIELDS, None)
    }

    fn parse(
        s: &str,
        allowed: &[&str],
        expandable: Option<(&str, &[&str])>,
    ) -> Result<Self, InputError> {
        if s.len() > MAX_FIELDS_LEN {
            return Err(InputError::FieldsTooLong);
        }
        let mut out: Vec<Field> = Vec::new();
        for item in split_top_level(s)? {
            let item = item.trim();
            let (name, sub) = match item.find('{') {
                None => (item, None),
                Some(open) => {
                    let inner = item[open + 1..]
                        .strip_suffix('}')
                        .ok_or(InputError::FieldSyntax("unclosed `{`"))?;
                    (item[..open].trim(), Some(inner))
                }
            };
            check_name(name)?;
            if !allowed.contains(&name) {
                return Err(InputError::UnknownField(name.to_owned()));
            }
            let sub = match (sub, expandable) {
                (None, _) => None,
                (Some(inner), Some((edge, sub_allowed))) if name == edge => {
                    let mut subs: Vec<String> = Vec::new();
                    for part in inner.split(',') {
                        let part = part.trim();
                        if part.contains(['{', '}']) {
                            return Err(InputError::FieldSyntax("nested expansion"));
                        }
                        check_name(part)?;
                        if !sub_allowed.contains(&part) {
                            return Err(InputError::UnknownField(format!("{name}.{part}")));
                        }
                        if !subs.iter().any(|s| s == part) {
                            subs.push(part.to_owned());
                        }
                    }
                    Some(subs)
                }
                (Some(_), _) => return Err(InputError::FieldSyntax("only phone_numbers expands")),
            };
            match out.iter_mut().find(|f| f.name == name) {
                Some(existing) if existing.sub.is_none() => existing.sub = sub,
                Some(_) if sub.is_none() => {}
                Some(_) => return Err(InputError::FieldSyntax("field expanded twice")),
                None => out.push(Field {
                    name: name.to_owned(),
                    sub,
                }),
            }
        }
        Ok(Fields(out))
    }

    /// The fields, in request order.
    pub fn items(&self) -> &[Field] {
        &self.0
    }

    /// Whether the field `name` is requested.
    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|f| f.name == name)
    }
}

impl fmt::Display for Fields {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, field) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            f.write_str(&field.name)?;
            if let Some(sub) = &field.sub {
                write!(f, "{{{}}}", sub.join(","))?;
            }
        }
        Ok(())
    }
}

fn check_name(name: &str) -> Result<(), InputError> {
    if name.is_empty() {
        return Err(InputError::FieldSyntax("empty field name"));
    }
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
        return Err(InputError::FieldSyntax(
            "field names hold only a-z and underscores",
        ));
    }
    Ok(())
}

/// Splits on commas outside braces; refuses unbalanced or nested braces.
fn split_top_level(s: &str) -> Result<Vec<&str>, InputError> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0u8, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '{' if depth == 0 => depth = 1,
            '{' => return Err(InputError::FieldSyntax("nested expansion")),
            '}' if depth == 1 => depth = 0,
            '}' => return Err(InputError::FieldSyntax("unbalanced `}`")),
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err(InputError::FieldSyntax("unclosed `{`"));
    }
    parts.push(&s[start..]);
    Ok(parts)
}

/// Most conditions in one `filtering`.
pub const MAX_CONDITIONS: usize = 4;
/// Most values of one `IN` condition.
pub const MAX_IN_VALUES: usize = 8;

/// A field an `IN` condition may test on the WABA list edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FilterField {
    /// `ownership_type` (`SELF`, `CLIENT_OWNED`, `ON_BEHALF_OF`, ...).
    OwnershipType,
    /// `marketing_messages_onboarding_status` (`ELIGIBLE`, ...).
    MarketingMessagesOnboardingStatus,
}

impl FilterField {
    /// Graph's name of the field.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OwnershipType => "ownership_type",
            Self::MarketingMessagesOnboardingStatus => "marketing_messages_onboarding_status",
        }
    }

    /// The field named `s`, when an `IN` condition may test it.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "ownership_type" => Some(Self::OwnershipType),
            "marketing_messages_onboarding_status" => Some(Self::MarketingMessagesOnboardingStatus),
            _ => None,
        }
    }
}

/// One condition of `filtering`, as Meta documents them for the WABA list edges:
/// `creation_time` with `GREATER_THAN` or `LESS_THAN` (a range is the two together)
/// (<https://developers.facebook.com/documentation/business-messaging/whatsapp/solution-providers/manage-accounts>),
/// `ownership_type` with `IN`
/// (<https://developers.facebook.com/docs/marketing-api/reference/business/client_whatsapp_business_accounts/>)
/// and `marketing_messages_onboarding_status` with `IN`
/// (<https://developers.facebook.com/documentation/business-messaging/whatsapp/marketing-messages/onboarding>).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Condition {
    /// Created after this unix time.
    CreatedAfter(i64),
    /// Created before this unix time.
    CreatedBefore(i64),
    /// The field holds one of these values (upper-case words).
    In(FilterField, Vec<String>),
}

impl Condition {
    /// Builds a condition from Graph's field, operator and values, checking all three.
    pub fn new(field: &str, operator: &str, values: &[String]) -> Result<Self, InputError> {
        let bad = InputError::Filtering;
        if field == "creation_time" {
            let [v] = values else {
                return Err(bad("creation_time takes one unix time"));
            };
            let t: i64 = (!v.is_empty() && v.len() <= 12 && v.bytes().all(|b| b.is_ascii_digit()))
                .then(|| v.parse().ok())
                .flatten()
                .filter(|t| (0..=MAX_UNIX_TIME).contains(t))
                .ok_or(bad("value must be a unix time"))?;
            return match operator {
                "GREATER_THAN" => Ok(Self::CreatedAfter(t)),
                "LESS_THAN" => Ok(Self::CreatedBefore(t)),
                "IN_RANGE" => Err(bad(
                    "IN_RANGE is not documented for these edges: give GREATER_THAN and LESS_THAN",
                )),
                _ => Err(bad("creation_time takes GREATER_THAN or LESS_THAN")),
            };
        }
        let field = FilterField::parse(field).ok_or(bad(
            "field must be creation_time, ownership_type or marketing_messages_onboarding_status",
        ))?;
        if operator != "IN" {
            return Err(bad(
                "ownership_type and marketing_messages_onboarding_status take IN",
            ));
        }
        if values.is_empty() || values.len() > MAX_IN_VALUES {
            return Err(bad("IN takes 1 to 8 values"));
        }
        let word = |v: &String| {
            !v.is_empty()
                && v.len() <= 64
                && v.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_')
        };
        if !values.iter().all(word) {
            return Err(bad("IN values are upper-case words"));
        }
        Ok(Self::In(field, values.to_vec()))
    }

    /// Graph's field name.
    pub fn field(&self) -> &'static str {
        match self {
            Self::CreatedAfter(_) | Self::CreatedBefore(_) => "creation_time",
            Self::In(f, _) => f.as_str(),
        }
    }

    /// Graph's operator name.
    pub fn operator(&self) -> &'static str {
        match self {
            Self::CreatedAfter(_) => "GREATER_THAN",
            Self::CreatedBefore(_) => "LESS_THAN",
            Self::In(..) => "IN",
        }
    }
}

/// `filtering` on the WABA list edges: 1 to [`MAX_CONDITIONS`] conditions, all of which must
/// hold, at most one per field and operator.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filtering(Vec<Condition>);

impl Filtering {
    /// A filter of `conditions`; refused when empty, too many, or one repeats a field and
    /// operator.
    pub fn new(conditions: Vec<Condition>) -> Result<Self, InputError> {
        let bad = InputError::Filtering;
        if conditions.is_empty() || conditions.len() > MAX_CONDITIONS {
            return Err(bad("give 1 to 4 conditions"));
        }
        for (i, c) in conditions.iter().enumerate() {
            if conditions[..i]
                .iter()
                .any(|o| o.field() == c.field() && o.operator() == c.operator())
            {
                return Err(bad("each field and operator at most once"));
            }
        }
        if let (Some(after), Some(before)) = (
            conditions.iter().find_map(|c| match c {
                Condition::CreatedAfter(t) => Some(*t),
                _ => None,
            }),
            conditions.iter().find_map(|c| match c {
                Condition::CreatedBefore(t) => Some(*t),
                _ => None,
            }),
        ) && after >= before
        {
            return Err(bad("the creation-time range is empty"));
        }
        Ok(Self(conditions))
    }

    /// Accounts created after `after` and/or before `before`; `None` when neither is given.
    pub fn created(after: Option<i64>, before: Option<i64>) -> Result<Option<Self>, InputError> {
        let mut conditions = Vec::with_capacity(2);
        for (t, condition) in [
            (after, Condition::CreatedAfter as fn(i64) -> Condition),
            (before, Condition::CreatedBefore),
        ] {
            if let Some(t) = t {
                if !(0..=MAX_UNIX_TIME).contains(&t) {
                    return Err(InputError::Filtering("value must be a unix time"));
                }
                conditions.push(condition(t));
            }
        }
        if conditions.is_empty() {
            return Ok(None);
        }
        Self::new(conditions).map(Some)
    }

    /// The conditions.
    pub fn conditions(&self) -> &[Condition] {
        &self.0
    }

    /// Whether an account created at `created` passes, `value` giving its value of each `IN`
    /// field (bounds are exclusive, as Graph's operator names say).
    pub fn matches<'v>(
        &self,
        created: i64,
        value: impl Fn(FilterField) -> Option<&'v str>,
    ) -> bool {
        self.0.iter().all(|c| match c {
            Condition::CreatedAfter(t) => created > *t,
            Condition::CreatedBefore(t) => created < *t,
            Condition::In(field, values) => {
                value(*field).is_some_and(|v| values.iter().any(|w| w == v))
            }
        })
    }

    /// Parses Graph's JSON form: `[{"field", "operator", "value"}, ...]`, times as strings
    /// or numbers, `IN` values as an array of strings.
    #[cfg(feature = "json")]
    pub fn from_json(s: &str) -> Result<Self, InputError> {
        use serde_json::Value;
        let bad = InputError::Filtering;
        let value: Value = serde_json::from_str(s).map_err(|_| bad("not valid JSON"))?;
        let items = value
            .as_array()
            .ok_or(bad("must be an array of conditions"))?;
        if items.is_empty() || items.len() > MAX_CONDITIONS {
            return Err(bad("give 1 to 4 conditions"));
        }
        let text = |v: &Value| -> Result<String, InputError> {
            match v {
                Value::Number(n) if n.is_u64() => Ok(n.to_string()),
                Value::String(s) => Ok(s.clone()),
                _ => Err(bad("values are strings or whole numbers")),
            }
        };
        let mut conditions = Vec::with_capacity(items.len());
        for cond in items {
            let obj = cond.as_object().ok_or(bad("condition must be an object"))?;
            if obj
                .keys()
                .any(|k| !matches!(k.as_str(), "field" | "operator" | "value"))
            {
                return Err(bad("condition takes only field, operator and value"));
            }
            let field = obj
                .get("field")
                .and_then(Value::as_str)
                .ok_or(bad("field is missing"))?;
            let operator = obj
                .get("operator")
                .and_then(Value::as_str)
                .ok_or(bad("operator is missing"))?;
            let values = match obj.get("value").ok_or(bad("value is missing"))? {
                Value::Array(items) if operator == "IN" => {
                    items.iter().map(text).collect::<Result<Vec<_>, _>>()?
                }
                Value::Array(_) => return Err(bad("only IN takes a list of values")),
                single if operator != "IN" => vec![text(single)?],
                _ => return Err(bad("IN takes a list of values")),
            };
            conditions.push(Condition::new(field, operator, &values)?);
        }
        Self::new(conditions)
    }
}

impl fmt::Display for Filtering {
    /// Graph's JSON form, times as strings as in Meta's example.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[")?;
        for (i, c) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(",")?;
            }
            write!(
                f,
                r#"{{"field":"{}","operator":"{}","value":"#,
                c.field(),
                c.operator()
            )?;
            match c {
                Condition::CreatedAfter(t) | Condition::CreatedBefore(t) => write!(f, "\"{t}\"")?,
                Condition::In(_, values) => {
                    f.write_str("[")?;
                    for (j, v) in values.iter().enumerate() {
                        if j > 0 {
                            f.write_str(",")?;
                        }
                        write!(f, "\"{v}\"")?;
                    }
                    f.write_str("]")?;
                }
            }
            f.write_str("}")?;
        }
        f.write_str("]")
    }
}

/// `sort` on the WABA list edges.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    /// Oldest first.
    CreationTimeAscending,
    /// Newest first.
    CreationTimeDescending,
}

impl Sort {
    /// Parses Graph's value.
    pub fn parse(s: &str) -> Result<Self, InputError> {
        match s {
            "creation_time_ascending" => Ok(Self::CreationTimeAscending),
            "creation_time_descending" => Ok(Self::CreationTimeDescending),
            _ => Err(InputError::Sort),
        }
    }

    /// Graph's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::CreationTimeAscending => "creation_time_ascending",
            Self::CreationTimeDescending => "creation_time_descending",
        }
    }
}

/// Page size, 1..=100.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit(u8);

impl Limit {
    /// Parses a decimal limit in 1..=[`MAX_LIMIT`].
    pub fn parse(s: &str) -> Result<Self, InputError> {
        if s.is_empty() || s.len() > 3 || !s.bytes().all(|b| b.is_ascii_digit()) {
            return Err(InputError::Limit);
        }
        let n: u8 = s.parse().map_err(|_| InputError::Limit)?;
        Self::new(n)
    }

    /// Checks `n` is in 1..=[`MAX_LIMIT`].
    pub fn new(n: u8) -> Result<Self, InputError> {
        if (1..=MAX_LIMIT).contains(&n) {
            Ok(Self(n))
        } else {
            Err(InputError::Limit)
        }
    }

    /// The page size.
    pub fn get(self) -> u8 {
        self.0
    }
}

/// An opaque paging cursor: 1..=512 characters of `A-Z a-z 0-9 _ - =`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Cursor(String);

impl Cursor {
    /// Validates a cursor.
    pub fn parse(s: &str) -> Result<Self, InputError> {
        let ok = !s.is_empty()
            && s.len() <= MAX_CURSOR_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'='));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(InputError::Cursor)
        }
    }

    /// The cursor text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Where a list request starts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PageCursor {
    /// The page after this cursor.
    After(Cursor),
    /// The page before this cursor.
    Before(Cursor),
}

/// The two WABA list edges of a business.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ListEdge {
    /// `client_whatsapp_business_accounts`: WABAs shared with the partner.
    Client,
    /// `owned_whatsapp_business_accounts`: WABAs the partner owns.
    Owned,
}

impl ListEdge {
    /// Parses the edge's path segment.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "client_whatsapp_business_accounts" => Some(Self::Client),
            "owned_whatsapp_business_accounts" => Some(Self::Owned),
            _ => None,
        }
    }

    /// The edge's path segment.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Client => "client_whatsapp_business_accounts",
            Self::Owned => "owned_whatsapp_business_accounts",
        }
    }
}

/// A validated query on a WABA list edge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// `fields`.
    pub fields: Option<Fields>,
    /// `filtering`.
    pub filtering: Option<Filtering>,
    /// `sort`.
    pub sort: Option<Sort>,
    /// `limit`.
    pub limit: Option<Limit>,
    /// `after` or `before`.
    pub cursor: Option<PageCursor>,
}

impl ListQuery {
    /// Builds a query from decoded `(name, value)` pairs, refusing unknown or repeated
    /// parameters.
    #[cfg(feature = "json")]
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, InputError> {
        let mut q = ListQuery::default();
        each_once(pairs, |key, value| {
            match key {
                "fields" => q.fields = Some(Fields::parse_waba(value)?),
                "filtering" => q.filtering = Some(Filtering::from_json(value)?),
                "sort" => q.sort = Some(Sort::parse(value)?),
                _ => page_param(&mut q.limit, &mut q.cursor, key, value)?,
            }
            Ok(())
        })?;
        Ok(q)
    }

    /// The query as `(name, value)` pairs in a fixed order, ready to encode.
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        let mut filters = Vec::new();
        if let Some(f) = &self.filtering {
            filters.push(("filtering", f.to_string()));
        }
        if let Some(s) = self.sort {
            filters.push(("sort", s.as_str().to_owned()));
        }
        canonical(
            self.fields.as_ref(),
            filters,
            self.limit,
            self.cursor.as_ref(),
        )
    }
}

/// Takes `limit`, `after` or `before`; any other parameter is unknown.
fn page_param(
    limit: &mut Option<Limit>,
    cursor: &mut Option<PageCursor>,
    key: &str,
    value: &str,
) -> Result<(), InputError> {
    match key {
        "limit" => *limit = Some(Limit::parse(value)?),
        "after" | "before" => PageCursor::set(cursor, key, value)?,
        other => return Err(InputError::unknown_parameter(other)),
    }
    Ok(())
}

/// Calls `f` for each pair, refusing a parameter given twice.
fn each_once<'a>(
    pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    mut f: impl FnMut(&'a str, &'a str) -> Result<(), InputError>,
) -> Result<(), InputError> {
    let mut seen: Vec<&str> = Vec::new();
    for (key, value) in pairs {
        if seen.contains(&key) {
            return Err(InputError::DuplicateParameter(key.to_owned()));
        }
        seen.push(key);
        f(key, value)?;
    }
    Ok(())
}

/// A query's pairs in the one canonical order: `fields`, the edge's own `filters`, `limit`,
/// then the cursor.
fn canonical(
    fields: Option<&Fields>,
    filters: Vec<(&'static str, String)>,
    limit: Option<Limit>,
    cursor: Option<&PageCursor>,
) -> Vec<(&'static str, String)> {
    let mut out = Vec::new();
    if let Some(f) = fields {
        out.push(("fields", f.to_string()));
    }
    out.extend(filters);
    if let Some(l) = limit {
        out.push(("limit", l.get().to_string()));
    }
    match cursor {
        Some(PageCursor::After(c)) => out.push(("after", c.as_str().to_owned())),
        Some(PageCursor::Before(c)) => out.push(("before", c.as_str().to_owned())),
        None => {}
    }
    out
}

impl PageCursor {
    /// Sets `slot` from an `after` or `before` parameter; both are refused.
    fn set(slot: &mut Option<PageCursor>, key: &str, value: &str) -> Result<(), InputError> {
        if slot.is_some() {
            return Err(InputError::BothCursors);
        }
        let c = Cursor::parse(value)?;
        *slot = Some(if key == "after" {
            PageCursor::After(c)
        } else {
            PageCursor::Before(c)
        });
        Ok(())
    }
}

/// A validated query on a WABA's `phone_numbers` edge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PhoneQuery {
    /// `fields` (phone number fields).
    pub fields: Option<Fields>,
    /// `limit`.
    pub limit: Option<Limit>,
    /// `after` or `before`.
    pub cursor: Option<PageCursor>,
}

impl PhoneQuery {
    /// Builds a query from decoded `(name, value)` pairs, refusing unknown or repeated
    /// parameters.
    pub fn from_pairs<'a>(
        pairs: impl IntoIterator<Item = (&'a str, &'a str)>,
    ) -> Result<Self, InputError> {
        let mut q = PhoneQuery::default();
        each_once(pairs, |key, value| {
            match key {
                "fields" => q.fields = Some(Fields::parse_phone(value)?),
                _ => page_param(&mut q.limit, &mut q.cursor, key, value)?,
            }
            Ok(())
        })?;
        Ok(q)
    }

    /// The query's pairs, canonical: `fields`, `limit`, the cursor.
    pub fn to_pairs(&self) -> Vec<(&'static str, String)> {
        canonical(
            self.fields.as_ref(),
            Vec::new(),
            self.limit,
            self.cursor.as_ref(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_tokens_and_codes() {
        for good in ["v26.0", "v1.0", "v100.12"] {
            assert_eq!(GraphVersion::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "26.0", "v26", "v26.0.1", "v.0", "v2600.0", "v26.100", "va.0", "",
        ] {
            assert_eq!(GraphVersion::parse(bad), Err(InputError::Version), "{bad}");
        }
        assert!(AccessToken::parse("EAAB|x-y_z.0").is_ok());
        for bad in ["", "a b", "a&b", "é", &"a".repeat(MAX_TOKEN_LEN + 1)] {
            assert_eq!(AccessToken::parse(bad), Err(InputError::Token), "{bad}");
        }
        assert!(format!("{:?}", AccessToken::parse("EAAsecret").unwrap()).contains("redacted"));
        assert!(SignupCode::parse("AQD-x_y.z~#").is_ok());
        for bad in ["", "a&b", "a=b", &"a".repeat(MAX_CODE_LEN + 1)] {
            assert_eq!(SignupCode::parse(bad), Err(InputError::Code), "{bad}");
        }
    }

    #[test]
    fn phone_queries_are_canonical_and_strict() {
        let q = PhoneQuery::from_pairs([
            ("after", "QUZU"),
            ("limit", "5"),
            ("fields", "status,id,status"),
        ])
        .unwrap();
        let pairs: Vec<(&str, String)> = q.to_pairs();
        assert_eq!(
            pairs,
            [
                ("fields", "status,id".to_owned()),
                ("limit", "5".to_owned()),
                ("after", "QUZU".to_owned())
            ]
        );
        assert_eq!(
            PhoneQuery::from_pairs([("after", "a"), ("before", "b")]),
            Err(InputError::BothCursors)
        );
        assert_eq!(
            PhoneQuery::from_pairs([("limit", "1"), ("limit", "2")]),
            Err(InputError::DuplicateParameter("limit".into()))
        );
        assert!(matches!(
            PhoneQuery::from_pairs([("filtering", "[]")]),
            Err(InputError::UnknownParameter(_))
        ));
        assert!(matches!(
            PhoneQuery::from_pairs([("fields", "account_review_status")]),
            Err(InputError::UnknownField(_))
        ));
    }

    #[test]
    fn fields_parse_and_print_canonically() {
        let f = Fields::parse_waba(
            "id,name, account_review_status,phone_numbers{display_phone_number,status,status},name",
        )
        .unwrap();
        assert_eq!(
            f.to_string(),
            "id,name,account_review_status,phone_numbers{display_phone_number,status}"
        );
        assert!(f.contains("phone_numbers"));
        let f = Fields::parse_waba("phone_numbers,phone_numbers{id}").unwrap();
        assert_eq!(f.to_string(), "phone_numbers{id}");
    }

    #[test]
    fn fields_outside_the_allowlist_are_refused() {
        use InputError::*;
        let cases: &[(&str, InputError)] = &[
            ("access_token", UnknownField("access_token".into())),
            (
                "id,owner_business_info",
                UnknownField("owner_business_info".into()),
            ),
            (
                "phone_numbers{access_token}",
                UnknownField("phone_numbers.access_token".into()),
            ),
            ("name{id}", FieldSyntax("only phone_numbers expands")),
            ("phone_numbers{id{x}}", FieldSyntax("nested expansion")),
            ("phone_numbers{id", FieldSyntax("unclosed `{`")),
            ("id}", FieldSyntax("unbalanced `}`")),
            ("", FieldSyntax("empty field name")),
            ("id,,name", FieldSyntax("empty field name")),
            (
                "ID",
                FieldSyntax("field names hold only a-z and underscores"),
            ),
            (
                "phone_numbers.limit(5){id}",
                FieldSyntax("field names hold only a-z and underscores"),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(Fields::parse_waba(input).as_ref(), Err(want), "{input}");
        }
        assert_eq!(Fields::parse_waba(&"id,".repeat(400)), Err(FieldsTooLong));
        assert!(Fields::parse_phone("phone_numbers").is_err());
        assert!(Fields::parse_phone("status,quality_rating").is_ok());
    }

    #[cfg(feature = "json")]
    #[test]
    fn meta_filtering_examples_parse() {
        let f = Filtering::from_json(
            r#"[ { "field" : "creation_time", "operator" : "GREATER_THAN", "value" : "1604962813" } ]"#,
        )
        .unwrap();
        assert_eq!(f.conditions(), [Condition::CreatedAfter(1_604_962_813)]);
        assert_eq!(
            f.to_string(),
            r#"[{"field":"creation_time","operator":"GREATER_THAN","value":"1604962813"}]"#
        );
        assert_eq!(Filtering::from_json(&f.to_string()), Ok(f));
        // Meta's client-edge examples: ownership_type IN, marketing_messages_onboarding_status IN.
        for json in [
            r#"[{'field':'ownership_type', 'operator': 'IN', 'value': ['SELF', 'CLIENT_OWNED']}]"#,
            r#"[ { 'field':'marketing_messages_onboarding_status', 'operator':'IN', 'value':['ELIGIBLE'] } ]"#,
        ] {
            let f = Filtering::from_json(&json.replace('\'', "\"")).unwrap();
            assert_eq!(Filtering::from_json(&f.to_string()), Ok(f.clone()));
        }
        // A range is two conditions.
        let r = Filtering::created(Some(1), Some(3)).unwrap().unwrap();
        assert_eq!(Filtering::from_json(&r.to_string()), Ok(r.clone()));
        let none = |_| None;
        assert!(r.matches(2, none) && !r.matches(1, none) && !r.matches(3, none));
        let own = Filtering::from_json(
            r#"[{"field":"ownership_type","operator":"IN","value":["CLIENT_OWNED"]}]"#,
        )
        .unwrap();
        assert!(own.matches(0, |_| Some("CLIENT_OWNED")) && !own.matches(0, |_| Some("SELF")));
        assert!(!own.matches(0, none));
    }

    #[cfg(feature = "json")]
    #[test]
    fn bad_filtering_is_refused() {
        for bad in [
            "",
            "{",
            "[]",
            r#"{"field":"creation_time","operator":"LESS_THAN","value":1}"#,
            r#"[{"field":"name","operator":"LESS_THAN","value":1}]"#,
            r#"[{"field":"creation_time","operator":"EQUALS","value":1}]"#,
            r#"[{"field":"creation_time","operator":"LESS_THAN","value":-1}]"#,
            r#"[{"field":"creation_time","operator":"LESS_THAN","value":"1e9"}]"#,
            r#"[{"field":"creation_time","operator":"LESS_THAN","value":1.5}]"#,
            r#"[{"field":"creation_time","operator":"LESS_THAN","value":99999999999}]"#,
            r#"[{"field":"creation_time","operator":"LESS_THAN"}]"#,
            r#"[{"field":"creation_time","operator":"LESS_THAN","value":[1,2]}]"#,
            r#"[{"field":"creation_time","operator":"IN_RANGE","value":[1,2]}]"#,
            r#"[{"field":"creation_time","operator":"LESS_THAN","value":1,"extra":true}]"#,
            r#"[{"field":"creation_time","operator":"LESS_THAN","value":1},{"field":"creation_time","operator":"LESS_THAN","value":1}]"#,
            r#"[{"field":"creation_time","operator":"GREATER_THAN","value":5},{"field":"creation_time","operator":"LESS_THAN","value":5}]"#,
            r#"[{"field":"ownership_type","operator":"IN","value":"SELF"}]"#,
            r#"[{"field":"ownership_type","operator":"IN","value":[]}]"#,
            r#"[{"field":"ownership_type","operator":"IN","value":["self"]}]"#,
            r#"[{"field":"ownership_type","operator":"EQUAL","value":["SELF"]}]"#,
            r#"[{"field":"name","operator":"IN","value":["X"]}]"#,
        ] {
            assert!(
                matches!(Filtering::from_json(bad), Err(InputError::Filtering(_))),
                "{bad}"
            );
        }
    }

    #[test]
    fn sort_limit_and_cursor_bounds() {
        assert_eq!(
            Sort::parse("creation_time_descending"),
            Ok(Sort::CreationTimeDescending)
        );
        assert_eq!(Sort::parse("name_ascending"), Err(InputError::Sort));
        for ok in ["1", "25", "100", "007"] {
            assert!(Limit::parse(ok).is_ok(), "{ok}");
        }
        for bad in ["0", "101", "-1", "", "1.0", "256", "+5", "1000", " 5"] {
            assert_eq!(Limit::parse(bad), Err(InputError::Limit), "{bad}");
        }
        assert!(Cursor::parse("QVFIUm9fLW==").is_ok());
        for bad in ["", "a/b", "a&b=c", "..", "a%2F", "a b", &"A".repeat(513)] {
            assert_eq!(Cursor::parse(bad), Err(InputError::Cursor), "{bad}");
        }
        assert!(Cursor::parse(&"A".repeat(512)).is_ok());
    }

    #[cfg(feature = "json")]
    #[test]
    fn list_query_refuses_what_graph_would_not_take() {
        let q = ListQuery::from_pairs([
            ("limit", "100"),
            ("sort", "creation_time_ascending"),
            ("after", "QVFI"),
            ("fields", "id,name"),
        ])
        .unwrap();
        let pairs = q.to_pairs();
        assert_eq!(pairs[0], ("fields", "id,name".to_owned()));
        assert_eq!(pairs.last().unwrap(), &("after", "QVFI".to_owned()));
        use InputError::*;
        // IN_RANGE is not documented for these edges: a range is two conditions, on both.
        let range = r#"[{"field":"creation_time","operator":"IN_RANGE","value":[1,2]}]"#;
        let two = r#"[{"field":"creation_time","operator":"GREATER_THAN","value":"1"},{"field":"creation_time","operator":"LESS_THAN","value":"9"}]"#;
        assert!(matches!(
            ListQuery::from_pairs([("filtering", range)]),
            Err(Filtering(_))
        ));
        assert!(ListQuery::from_pairs([("filtering", two)]).is_ok());
        assert_eq!(
            ListQuery::from_pairs([("access_token", "x")]),
            Err(UnknownParameter("access_token".into()))
        );
        assert_eq!(
            ListQuery::from_pairs([("limit", "5"), ("limit", "6")]),
            Err(DuplicateParameter("limit".into()))
        );
        assert_eq!(
            ListQuery::from_pairs([("after", "a"), ("before", "b")]),
            Err(BothCursors)
        );
    }
}
