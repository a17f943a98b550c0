//! The message catalogs the package ships (`wasm/js/locales/{tag}.js`) and the partner
//! console's own (`www/locales/{tag}.js`), each set against its English (`en.js`): each
//! catalog has every id, keeps every value a template fills in, gives each counted text its
//! language's plural forms, and says its language, direction and Meta's SDK locale.

use std::collections::BTreeSet;
use std::path::PathBuf;
use waba_graph::messages::{catalog_json, placeholders};

/// Each catalog: its tag, direction, Meta's SDK locale, and the plural categories
/// `Intl.PluralRules` gives its language (CLDR).
const CATALOGS: [(&str, &str, &str, &[&str]); 5] = [
    ("es", "ltr", "es_LA", &["one", "many", "other"]),
    ("pt-BR", "ltr", "pt_BR", &["one", "many", "other"]),
    ("id", "ltr", "id_ID", &["other"]),
    ("hi", "ltr", "hi_IN", &["one", "other"]),
    (
        "ar",
        "rtl",
        "ar_AR",
        &["zero", "one", "two", "few", "many", "other"],
    ),
];

const PLURAL: [&str; 6] = ["zero", "one", "two", "few", "many", "other"];

/// The base of a plural form's id (`panel.shown` of `panel.shown.one`).
fn plural_base(id: &str) -> Option<&str> {
    let (base, form) = id.rsplit_once('.')?;
    PLURAL.contains(&form).then_some(base)
}

/// The package's catalogs, from this crate's folder.
const PACKAGE: &str = "../wasm/js/locales";
/// The partner console's catalogs.
const CONSOLE: &str = "../www/locales";

fn catalog(dir: &str, tag: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join(dir)
        .join(format!("{tag}.js"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    let json =
        catalog_json(&text).unwrap_or_else(|| panic!("{tag}: not `export default {{...}};`"));
    serde_json::from_str(json).unwrap_or_else(|e| panic!("{tag}: {e}"))
}

fn sorted(names: Vec<&str>) -> Vec<&str> {
    let mut names = names;
    names.sort_unstable();
    names
}

/// The ids of the catalogs in `dir`'s English (`en.js`), after checking every other catalog
/// there against it.
fn check_against_english(dir: &str) -> BTreeSet<String> {
    let en = catalog(dir, "en");
    assert_eq!(
        (&en["locale"], &en["dir"], &en["sdk"]),
        (&"en".into(), &"ltr".into(), &"en_US".into())
    );
    let en = en["messages"].as_object().expect("English messages");
    let single: BTreeSet<&str> = en
        .keys()
        .map(String::as_str)
        .filter(|id| plural_base(id).is_none())
        .collect();
    let counted: BTreeSet<&str> = en.keys().filter_map(|id| plural_base(id)).collect();
    for base in &counted {
        assert!(
            en.contains_key(&format!("{base}.other")),
            "English {base}.other"
        );
    }
    let english = |id: &str| {
        en.get(id)
            .and_then(|t| t.as_str())
            .unwrap_or_else(|| panic!("no English {id}"))
    };
    for (tag, direction, sdk, forms) in CATALOGS {
        let c = catalog(dir, tag);
        assert_eq!(c["locale"], tag, "{tag}");
        assert_eq!(c["dir"], direction, "{tag}");
        assert_eq!(c["sdk"], sdk, "{tag}");
        let messages = c["messages"].as_object().expect("messages");
        for id in &single {
            let t = messages
                .get(*id)
                .and_then(|v| v.as_str())
                .unwrap_or_else(|| panic!("{tag} lacks {id}"));
            assert!(!t.trim().is_empty(), "{tag} {id} is empty");
            assert_eq!(
                sorted(placeholders(t)),
                sorted(placeholders(english(id))),
                "{tag} {id}: {t}"
            );
        }
        for base in &counted {
            let other = english(&format!("{base}.other"));
            for form in forms {
                let id = format!("{base}.{form}");
                let t = messages
                    .get(&id)
                    .and_then(|v| v.as_str())
                    .unwrap_or_else(|| panic!("{tag} lacks {id}"));
                // A form for one may say "one" in words; every other value stays.
                let without_count = |t| {
                    sorted(
                        placeholders(t)
                            .into_iter()
                            .filter(|p| *p != "count")
                            .collect(),
                    )
                };
                assert_eq!(without_count(t), without_count(other), "{tag} {id}: {t}");
                if *form == "other" {
                    assert!(placeholders(t).contains(&"count"), "{tag} {id}: {t}");
                }
            }
        }
        for id in messages.keys() {
            let known = single.contains(id.as_str())
                || plural_base(id).is_some_and(|b| {
                    counted.contains(b) && forms.contains(&id.rsplit_once('.').map_or("", |x| x.1))
                });
            assert!(known, "{tag} has {id}, which no text uses");
        }
    }
    en.keys().cloned().collect()
}

#[test]
fn every_catalog_has_every_message_with_its_values() {
    let ids = check_against_english(PACKAGE);
    assert!(
        !ids.iter().any(|id| id.starts_with("console.")),
        "the console's texts are in its own catalogs"
    );
}

#[test]
fn every_console_catalog_has_every_console_message_with_its_values() {
    let ids = check_against_english(CONSOLE);
    for id in &ids {
        assert!(id.starts_with("console."), "{id} is not a console text");
    }
    // Every id the console names literally is in a catalog: its own or the package's.
    let package = check_against_english(PACKAGE);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../www");
    for file in ["console.html", "console.js", "console-funnel.js"] {
        let text =
            std::fs::read_to_string(root.join(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        for quoted in text.split('"').skip(1).step_by(2) {
            let named = ["console.", "panel.", "step_name.", "progress."]
                .iter()
                .any(|p| quoted.starts_with(p))
                && !quoted.ends_with('.')
                && quoted
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'_' || b == b'.');
            // A file name (`console.css`) is not a text.
            if !named || root.join(quoted).exists() {
                continue;
            }
            let counted = |base: &str| ids.contains(&format!("{base}.other"));
            assert!(
                ids.contains(quoted) || package.contains(quoted) || counted(quoted),
                "{file} names {quoted}, which no catalog has"
            );
        }
    }
}

#[test]
fn a_translation_reaches_the_model_and_keeps_what_it_fills_in() {
    let c = catalog(PACKAGE, "es");
    let template = c["messages"]["phone.problem"]
        .as_str()
        .expect("es phone.problem");
    let filled = waba_graph::messages::fill(
        template,
        &[("number", "+1 555"), ("status", "PENDING"), ("what", "x")],
    );
    assert!(
        filled.contains("+1 555") && filled.contains("PENDING"),
        "{filled}"
    );
    assert_ne!(
        filled, "+1 555 is PENDING: x",
        "the Spanish template is not English"
    );
}
