//! Rewrites Graph's `paging` so that `next`/`previous` point at this proxy: same route,
//! the request's validated parameters, Graph's cursor, and no token. Graph's own links are
//! read for their cursor only and never followed.

use waba_graph::input::Cursor;
use waba_graph::{Page, Paging};

/// `page`'s paging with links to `{base}/graph/{path}?{params}&after=...` (and `before=`).
pub fn rewrite<T>(
    page: &Page<T>,
    base: &str,
    path: &str,
    params: &[(&str, String)],
) -> Option<Paging> {
    let graph = page.paging.as_ref()?;
    let link = |key: &str, cursor: Option<String>| -> Option<String> {
        let cursor = Cursor::parse(&cursor?).ok()?;
        let mut q = form_urlencoded::Serializer::new(String::new());
        for (k, v) in params
            .iter()
            .filter(|(k, _)| *k != "after" && *k != "before")
        {
            q.append_pair(k, v);
        }
        q.append_pair(key, cursor.as_str());
        Some(format!("{base}/graph/{path}?{}", q.finish()))
    };
    let cursors = graph.cursors.as_ref().map(|c| waba_graph::Cursors {
        before: c
            .before
            .as_deref()
            .and_then(|s| Cursor::parse(s).ok())
            .map(|c| c.as_str().to_owned()),
        after: c
            .after
            .as_deref()
            .and_then(|s| Cursor::parse(s).ok())
            .map(|c| c.as_str().to_owned()),
    });
    Some(Paging {
        cursors,
        next: link("after", page.after_cursor()),
        previous: link("before", page.before_cursor()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_point_at_the_proxy_without_tokens() {
        let page: Page<serde_json::Value> = serde_json::from_str(
            r#"{"data":[],"paging":{"cursors":{"before":"QkVG","after":"QUZU"},
               "next":"https://graph.facebook.com/v26.0/1/client_whatsapp_business_accounts?access_token=EAAsecret&after=QUZU",
               "previous":"https://evil.example/?before=QkVG"}}"#,
        )
        .unwrap();
        let p = rewrite(
            &page,
            "https://proxy.example",
            "805021500648488/client_whatsapp_business_accounts",
            &[("limit", "100".into()), ("after", "old".into())],
        )
        .unwrap();
        assert_eq!(
            p.next.as_deref(),
            Some(
                "https://proxy.example/graph/805021500648488/client_whatsapp_business_accounts?limit=100&after=QUZU"
            )
        );
        assert_eq!(
            p.previous.as_deref(),
            Some(
                "https://proxy.example/graph/805021500648488/client_whatsapp_business_accounts?limit=100&before=QkVG"
            )
        );
        let bad: Page<serde_json::Value> = serde_json::from_str(
            r#"{"data":[],"paging":{"cursors":{"after":"a&access_token=x"},"next":"https://g/?after=x"}}"#,
        )
        .unwrap();
        let p = rewrite(&bad, "http://p", "1/x", &[]).unwrap();
        assert_eq!(p.next, None, "an unsafe cursor gives no link");
    }
}
