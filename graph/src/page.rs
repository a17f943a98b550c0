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

    /// The cursor to pass as `after` for the next page, when there is a next page.
    pub fn after_cursor(&self) -> Option<&str> {
        let paging = self.paging.as_ref()?;
        paging.next.as_ref()?;
        paging.cursors.as_ref()?.after.as_deref()
    }
}
