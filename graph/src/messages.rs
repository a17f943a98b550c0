//! Every text the status model and the signup page show, by message id: where a template
//! comes from, and how its values are filled in.
//!
//! A template names its values in braces (`{number} is {status}: {what}`); [`text`] fills
//! them in. The templates are the package's message catalogs (`wasm/js/locales/{tag}.js`,
//! each `export default {locale, dir, sdk, messages}`), English (`en.js`) the one every
//! other follows. In the browser the wasm module hands [`set_lookup`] its reader of the
//! catalog the page chose (English for any id it lacks): the browser module holds no text of
//! its own. Natively (the proxy, with the `json` feature) texts are English, read from
//! `en.js` as compiled in. An id ending in `.one`, `.other`, ... is one plural form of a
//! counted text, picked in the browser by `Intl.PluralRules`.

use std::sync::OnceLock;

/// The template of an id in the chosen language, when there is one.
pub type Lookup = fn(&str) -> Option<String>;

static LOOKUP: OnceLock<Lookup> = OnceLock::new();

/// Sets where templates come from (once per process or page; later calls are ignored: the
/// browser module's lookup reads whichever catalog is active).
pub fn set_lookup(lookup: Lookup) {
    let _ = LOOKUP.set(lookup);
}

/// The English catalog as shipped (`wasm/js/locales/en.js`): every message id and its
/// template.
pub const ENGLISH_CATALOG: &str = include_str!("../../wasm/js/locales/en.js");

/// The `{locale, dir, sdk, messages}` object of a catalog file's text (`export default
/// {...};`), as JSON text.
pub fn catalog_json(file: &str) -> Option<&str> {
    file.trim_end()
        .strip_prefix("export default ")?
        .strip_suffix(';')
}

/// The English templates by id, read once from [`ENGLISH_CATALOG`].
#[cfg(any(feature = "json", test))]
pub(crate) fn english_templates() -> &'static std::collections::HashMap<String, String> {
    static TEMPLATES: OnceLock<std::collections::HashMap<String, String>> = OnceLock::new();
    TEMPLATES.get_or_init(|| {
        #[derive(serde::Deserialize)]
        struct Catalog {
            messages: std::collections::HashMap<String, String>,
        }
        catalog_json(ENGLISH_CATALOG)
            .and_then(|json| serde_json::from_str::<Catalog>(json).ok())
            .map(|c| c.messages)
            .unwrap_or_default()
    })
}

/// The English template of `id`, or `id` itself when it has none (and always in the browser
/// module, which reads its catalogs through [`set_lookup`] instead).
pub fn english(id: &str) -> &str {
    #[cfg(any(feature = "json", test))]
    if let Some(template) = english_templates().get(id) {
        return template;
    }
    id
}

/// The template of `id` in the chosen language (English when none is chosen or the catalog
/// lacks it).
pub fn template(id: &str) -> String {
    match LOOKUP.get().and_then(|lookup| lookup(id)) {
        Some(translated) => translated,
        None => english(id).to_owned(),
    }
}

/// The text of `id` with `values` filled in.
pub fn text(id: &str, values: &[(&str, &str)]) -> String {
    fill(&template(id), values)
}

/// `template` with each `{name}` of `values` replaced by its value (values are not read
/// again: a value holding braces stays as it is); other braces are kept.
pub fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    // Byte searches: braces are ASCII, and the browser module pays for a char search.
    while let Some(open) = rest.bytes().position(|b| b == b'{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let named = after.bytes().position(|b| b == b'}').and_then(|close| {
            let name = &after[..close];
            values
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value, close))
        });
        match named {
            Some((value, close)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// The names a template fills in, in order (for checking that a translation keeps them).
pub fn placeholders(template: &str) -> Vec<&str> {
    let mut names = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let after = &rest[open + 1..];
        match after.find('}') {
            Some(close)
                if close > 0
                    && after[..close]
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b == b'_') =>
            {
                names.push(&after[..close]);
                rest = &after[close + 1..];
            }
            _ => rest = after,
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_replaces_named_values_once() {
        assert_eq!(
            fill(
                "{number} is {status}: {what}",
                &[
                    ("number", "+1 {status}"),
                    ("status", "PENDING"),
                    ("what", "x")
                ]
            ),
            "+1 {status} is PENDING: x"
        );
        assert_eq!(
            fill("POST /{phone-number-id}/register {", &[("phone", "1")]),
            "POST /{phone-number-id}/register {"
        );
    }

    #[test]
    fn placeholders_skip_literal_braces() {
        assert_eq!(
            placeholders(english("phone.register")),
            Vec::<&str>::new(),
            "the path's braces are not a value"
        );
        assert_eq!(
            placeholders(english("panel.review_changed")),
            ["name", "before", "after"]
        );
    }

    #[test]
    fn english_is_read_from_its_catalog() {
        assert!(english_templates().len() > 100);
        assert_eq!(english("panel.newest"), "Newest");
        assert_eq!(english("no.such.id"), "no.such.id");
    }
}
