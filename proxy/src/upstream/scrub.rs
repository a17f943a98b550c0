//! Removes secrets from anything that leaves the proxy: Graph's error messages, bodies,
//! links. Known secrets are replaced wherever they appear; so is the value of any
//! `access_token=`/`input_token=`/`client_secret=` parameter, and anything shaped like a Meta
//! access token (`EAA` followed by 20 or more letters and digits).

use aho_corasick::AhoCorasick;
use waba_graph::Secret;

/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";

/// Parameters whose values are secrets wherever they appear.
const SECRET_PARAMS: [&str; 4] = ["access_token=", "input_token=", "client_secret=", "code="];
/// How a Meta access token starts.
const TOKEN_PREFIX: &str = "EAA";

/// Scrubs known secrets and secret-shaped text.
#[derive(Debug, Clone, Default)]
pub struct Scrubber {
    secrets: Vec<Secret>,
    /// Finds whether a text holds anything the scrubber would touch (a known secret, a secret
    /// parameter, a token's prefix) in one pass; most answers hold none and are left as they
    /// are without a copy. `None` for a default scrubber, which checks the slow way.
    suspects: Option<AhoCorasick>,
}

impl Scrubber {
    /// A scrubber for these secrets (the System User token, the admin token, ...).
    pub fn new(secrets: Vec<Secret>) -> Self {
        let patterns = secrets
            .iter()
            .map(Secret::expose)
            .filter(|s| s.len() >= 4)
            .chain(SECRET_PARAMS)
            .chain([TOKEN_PREFIX]);
        let suspects = AhoCorasick::new(patterns).ok();
        Self { secrets, suspects }
    }

    /// `text` with every secret replaced, including the request's own `extra` secrets
    /// (the caller's token, an `input_token`).
    pub fn scrub(&self, text: &str, extra: &[&str]) -> String {
        match self.is_clean(text, extra) {
            true => text.to_owned(),
            false => self.scrub_all(text, extra),
        }
    }

    /// Like [`Scrubber::scrub`], keeping `text` itself when nothing in it needs scrubbing.
    pub fn scrub_owned(&self, text: String, extra: &[&str]) -> String {
        match self.is_clean(&text, extra) {
            true => text,
            false => self.scrub_all(&text, extra),
        }
    }

    /// Whether `text` surely holds nothing to scrub.
    fn is_clean(&self, text: &str, extra: &[&str]) -> bool {
        let Some(suspects) = &self.suspects else {
            return false;
        };
        !suspects.is_match(text)
            && !extra
                .iter()
                .filter(|s| s.len() >= 4)
                .any(|s| memchr::memmem::find(text.as_bytes(), s.as_bytes()).is_some())
    }

    fn scrub_all(&self, text: &str, extra: &[&str]) -> String {
        let mut out = text.to_owned();
        let known = self
            .secrets
            .iter()
            .map(Secret::expose)
            .chain(extra.iter().copied());
        for secret in known.filter(|s| s.len() >= 4) {
            if out.contains(secret) {
                out = out.replace(secret, REDACTED);
            }
        }
        for param in SECRET_PARAMS {
            out = redact_param(&out, param);
        }
        redact_token_shapes(&out)
    }
}

/// Replaces the value after each `name` (up to a delimiter) with [`REDACTED`].
fn redact_param(text: &str, name: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find(name) {
        // Only whole parameter names: `code=` must not match inside `zipcode=`.
        let boundary = i == 0
            || !rest.as_bytes()[i - 1].is_ascii_alphanumeric() && rest.as_bytes()[i - 1] != b'_';
        let end_name = i + name.len();
        out.push_str(&rest[..end_name]);
        rest = &rest[end_name..];
        if !boundary {
            continue;
        }
        let len = rest
            .find(|c: char| {
                matches!(c, '&' | '"' | '\'' | '<' | '>' | '\\' | ')' | ',' | ';')
                    || c.is_whitespace()
            })
            .unwrap_or(rest.len());
        if len > 0 {
            out.push_str(REDACTED);
        }
        rest = &rest[len..];
    }
    out.push_str(rest);
    out
}

/// Replaces `EAA…` runs of 20+ alphanumerics (Meta's token shape).
fn redact_token_shapes(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut i = 0;
    let mut last = 0;
    while i + 3 <= bytes.len() {
        let starts_word = i == 0 || !bytes[i - 1].is_ascii_alphanumeric();
        if starts_word && &bytes[i..i + 3] == TOKEN_PREFIX.as_bytes() {
            let run = bytes[i..]
                .iter()
                .take_while(|b| b.is_ascii_alphanumeric())
                .count();
            if run >= 23 {
                out.push_str(&text[last..i]);
                out.push_str(REDACTED);
                i += run;
                last = i;
                continue;
            }
        }
        i += 1;
    }
    out.push_str(&text[last..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scrubs_known_and_shaped_secrets() {
        let s = Scrubber::new(vec![Secret::new("sys-token-123")]);
        assert_eq!(s.scrub("bad sys-token-123!", &[]), "bad [redacted]!");
        assert_eq!(s.scrub("user tok9 here", &["tok9"]), "user [redacted] here");
        assert_eq!(
            s.scrub(
                "https://graph.facebook.com/v21.0/1/x?access_token=abc&limit=5",
                &[]
            ),
            "https://graph.facebook.com/v21.0/1/x?access_token=[redacted]&limit=5"
        );
        assert_eq!(
            s.scrub("expired (access_token=xyz)", &[]),
            "expired (access_token=[redacted])"
        );
        assert_eq!(
            s.scrub("token EAAFl0123456789abcdefghijkLMN was bad", &[]),
            "token [redacted] was bad"
        );
        assert_eq!(
            s.scrub("zipcode=12345 EAAshort", &[]),
            "zipcode=12345 EAAshort"
        );
        assert_eq!(s.scrub("no secrets", &[]), "no secrets");
        assert_eq!(
            s.scrub_owned("a sys-token-123 and tok9".into(), &["tok9"]),
            "a [redacted] and [redacted]"
        );
        assert_eq!(s.scrub_owned("clean".into(), &["tok9"]), "clean");
        // A default scrubber (no automaton) still scrubs.
        assert_eq!(
            Scrubber::default().scrub("x access_token=abc", &[]),
            "x access_token=[redacted]"
        );
        // Idempotent.
        let once = s.scrub("access_token=abc", &[]);
        assert_eq!(s.scrub(&once, &[]), once);
    }
}
