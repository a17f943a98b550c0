//! Removes secrets from anything that leaves the proxy: Graph's error messages, bodies,
//! links. Known secrets are replaced wherever they appear; so is the value of any
//! `access_token=`/`input_token=`/`client_secret=` parameter, and anything shaped like a Meta
//! access token (`EAA` followed by 20 or more letters and digits).

use waba_graph::Secret;

/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";

/// Scrubs known secrets and secret-shaped text.
#[derive(Debug, Clone, Default)]
pub struct Scrubber {
    secrets: Vec<Secret>,
}

impl Scrubber {
    /// A scrubber for these secrets (the System User token, the admin token, ...).
    pub fn new(secrets: Vec<Secret>) -> Self {
        Self { secrets }
    }

    /// `text` with every secret replaced, including the request's own `extra` secrets
    /// (the caller's token, an `input_token`).
    pub fn scrub(&self, text: &str, extra: &[&str]) -> String {
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
        for param in ["access_token=", "input_token=", "client_secret=", "code="] {
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
        if starts_word && &bytes[i..i + 3] == b"EAA" {
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
        // Idempotent.
        let once = s.scrub("access_token=abc", &[]);
        assert_eq!(s.scrub(&once, &[]), once);
    }
}
