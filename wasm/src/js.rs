//! Reading and writing plain JS objects with `js_sys::Reflect`.
//!
//! The model's types derive serde for the native proxy, but in the browser serde's generated
//! code (one visitor per type, plus float formatting for its error messages) cost more than
//! half of the package's 80 KB budget. These readers build the same `waba-graph` types field
//! by field through a handful of shared, non-generic helpers, with the same rules: ids are
//! strings, integer numbers up to 2^53 are accepted and written as exact strings, anything
//! else is refused.

use js_sys::{Array, Object, Reflect};
use waba_graph::id::{IdError, ObjectId, RawId};
use waba_graph::time::UnixTime;
use wasm_bindgen::{JsCast, JsValue};

/// Largest integer a JS number holds exactly.
const MAX_SAFE: f64 = 9_007_199_254_740_991.0;

/// A JS object to read fields from.
#[derive(Clone)]
pub struct Obj(JsValue);

impl Obj {
    /// `Some` when `v` is an object (not null, not an array... arrays are objects too).
    pub fn new(v: JsValue) -> Option<Self> {
        (v.is_object()).then_some(Self(v))
    }

    /// The object itself.
    pub fn value(&self) -> &JsValue {
        &self.0
    }

    /// A field, `undefined` when absent.
    pub fn get(&self, key: &str) -> JsValue {
        Reflect::get(&self.0, &JsValue::from_str(key)).unwrap_or(JsValue::UNDEFINED)
    }

    /// A string field.
    pub fn str(&self, key: &str) -> Option<String> {
        self.get(key).as_string()
    }

    /// A field that Graph writes as text or as a number (time zone ids): as text.
    pub fn text(&self, key: &str) -> Option<String> {
        let v = self.get(key);
        v.as_string().or_else(|| v.as_f64().and_then(integer_text))
    }

    /// An id field: a string, or an integer number up to 2^53.
    pub fn id(&self, key: &str) -> Result<Option<ObjectId>, IdError> {
        match raw_id(&self.get(key))? {
            Some(r) => ObjectId::parse(&r.0).map(Some),
            None => Ok(None),
        }
    }

    /// An id-like field kept as text.
    pub fn raw_id(&self, key: &str) -> Result<Option<RawId>, IdError> {
        raw_id(&self.get(key))
    }

    /// An array of id-like values kept as text; `None` when absent, an error when an item is
    /// not an id.
    pub fn raw_ids(&self, key: &str) -> Result<Option<Vec<RawId>>, IdError> {
        let v = self.get(key);
        if v.is_undefined() || v.is_null() {
            return Ok(None);
        }
        let mut ids = Vec::new();
        for item in list(&v) {
            ids.extend(raw_id(&item)?);
        }
        Ok(Some(ids))
    }

    /// A boolean field.
    pub fn bool(&self, key: &str) -> Option<bool> {
        self.get(key).as_bool()
    }

    /// An integer field (whole JS number).
    pub fn int(&self, key: &str) -> Option<i64> {
        self.get(key)
            .as_f64()
            .filter(|n| n.fract() == 0.0 && n.abs() <= MAX_SAFE)
            .map(|n| n as i64)
    }

    /// A time field: unix seconds as a number, or text Graph writes (ISO 8601 or digits).
    pub fn time(&self, key: &str) -> Option<UnixTime> {
        let v = self.get(key);
        match v.as_string() {
            Some(s) => UnixTime::parse(&s),
            None => self.int(key).map(UnixTime),
        }
    }

    /// An object field.
    pub fn obj(&self, key: &str) -> Option<Obj> {
        Obj::new(self.get(key))
    }

    /// An array field's items (empty when absent or not an array).
    pub fn list(&self, key: &str) -> Vec<JsValue> {
        list(&self.get(key))
    }

    /// An array field of strings (other items skipped).
    pub fn strings(&self, key: &str) -> Vec<String> {
        self.list(key)
            .iter()
            .filter_map(JsValue::as_string)
            .collect()
    }
}

/// Items of an array, or nothing.
pub fn list(v: &JsValue) -> Vec<JsValue> {
    if Array::is_array(v) {
        v.unchecked_ref::<Array>().iter().collect()
    } else {
        Vec::new()
    }
}

fn integer_text(n: f64) -> Option<String> {
    (n.fract() == 0.0 && n.abs() <= MAX_SAFE).then(|| {
        let digits = waba_graph::decimal(n.abs() as u64);
        if n < 0.0 {
            ["-", &digits].concat()
        } else {
            digits
        }
    })
}

/// An id as text: a string as is; an integer number up to 2^53 in decimal; otherwise an
/// error (a larger number was already rounded by JSON.parse and cannot be trusted).
pub fn raw_id(v: &JsValue) -> Result<Option<RawId>, IdError> {
    if v.is_undefined() || v.is_null() {
        return Ok(None);
    }
    if let Some(s) = v.as_string() {
        return Ok(Some(RawId(s)));
    }
    match v.as_f64() {
        Some(n) => integer_text(n)
            .map(|t| Some(RawId(t)))
            .ok_or(IdError::Inexact),
        None => Err(IdError::NotDigits),
    }
}

/// Builds a plain object.
pub struct Out(Object);

impl Out {
    /// An empty object.
    pub fn new() -> Self {
        Self(Object::new())
    }

    /// Sets `key` to `value`.
    pub fn set(self, key: &str, value: impl Into<JsValue>) -> Self {
        let _ = Reflect::set(&self.0, &JsValue::from_str(key), &value.into());
        self
    }

    /// Sets `key` when `value` is `Some`.
    pub fn opt(self, key: &str, value: Option<impl Into<JsValue>>) -> Self {
        match value {
            Some(v) => self.set(key, v),
            None => self,
        }
    }

    /// The object.
    pub fn done(self) -> JsValue {
        self.0.into()
    }
}

impl Default for Out {
    fn default() -> Self {
        Self::new()
    }
}

/// An array of strings.
pub fn string_array(items: &[String]) -> JsValue {
    items
        .iter()
        .map(|s| JsValue::from_str(s))
        .collect::<Array>()
        .into()
}
