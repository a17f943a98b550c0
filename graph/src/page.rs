//! List pages: `{"data": [...], "paging": {"cursors": {...}, "next": ..., "previous": ...}}`.

use serde::{Deserialize, Serialize};

/// One page of an edge (a list) in Graph.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
pub struct Page<T> {
    /// The items of this page; may be short or empty even when more pages follow.
    #[serde(default = "Vec::new")]
    pub data: Vec<T>,
    /// Cursors and links to the neighbouring pages.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paging: Option<Paging>,
}

/// Cursor paging information.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Paging {
    /// Cursors around this page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cursors: Option<Cursors>,
    /// Absolute URL of the next page, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next: Option<String>,
    /// Absolute URL of the previous page, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
}

/// The cursors that point before the first and after the last item of a page.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(default)]
pub struct Cursors {
    /// Cursor before the first item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    /// Cursor after the last item.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<String>,
}

impl<T> Page<T> {
    /// Whether Graph says another page follows.
    pub fn has_next(&self) -> bool {
        self.paging.as_ref().is_some_and(|p| p.next.is_some())
    }

    /// The cursor to pass as `after` for the next page, when there is a next page: from
    /// `cursors.after`, or from the `after` parameter of `next` when a short or empty page
    /// comes without cursors.
    pub fn after_cursor(&self) -> Option<String> {
        let paging = self.paging.as_ref()?;
        let next = paging.next.as_deref()?;
        paging
            .cursors
            .as_ref()
            .and_then(|c| c.after.clone())
            .or_else(|| query_param(next, "after"))
    }

    /// The cursor to pass as `before` for the previous page, when there is one.
    pub fn before_cursor(&self) -> Option<String> {
        let paging = self.paging.as_ref()?;
        let previous = paging.previous.as_deref()?;
        paging
            .cursors
            .as_ref()
            .and_then(|c| c.before.clone())
            .or_else(|| query_param(previous, "before"))
    }
}

/// The percent-decoded value of parameter `name` in `url`'s query. Only reads the text: the
/// URL is never fetched.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1.split('#').next()?;
    let raw = query
        .split('&')
        .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))?;
    percent_decode(raw)
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3)?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_come_from_paging_or_from_the_link() {
        let page: Page<serde_json::Value> = serde_json::from_str(
            r#"{"data":[],"paging":{"next":"https://graph.facebook.com/v26.0/1/x?access_token=T&limit=25&after=QVFI%3D"}}"#,
        )
        .unwrap();
        assert_eq!(page.after_cursor().as_deref(), Some("QVFI="));
        assert_eq!(page.before_cursor(), None);
        let page: Page<serde_json::Value> = serde_json::from_str(
            r#"{"data":[1],"paging":{"cursors":{"before":"B","after":"A"},"previous":"https://x/?before=B"}}"#,
        )
        .unwrap();
        assert_eq!(page.after_cursor(), None, "no next: no cursor to follow");
        assert_eq!(page.before_cursor().as_deref(), Some("B"));
        assert_eq!(
            query_param("https://x/?a=1&ab=2", "ab").as_deref(),
            Some("2")
        );
        assert_eq!(query_param("https://x/?a=%zz", "a"), None);
    }
}
