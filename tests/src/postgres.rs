//! A fresh database on the PostgreSQL server `cargo xtask test` starts
//! (`WABA_TEST_POSTGRES_URL`, with `WABA_TEST_POSTGRES_CA` the certificate authority of its
//! TLS certificate), so each test has its own.

use std::sync::atomic::{AtomicU32, Ordering};

/// The server's URL, if the tests were given one. Under CI (`CI` set) it must be: the
/// PostgreSQL tests are part of the suite there, never skipped.
pub fn server_url() -> Option<String> {
    match std::env::var("WABA_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            assert!(
                std::env::var_os("CI").is_none(),
                "WABA_TEST_POSTGRES_URL is not set: run the tests through `cargo xtask test`, \
                 which starts PostgreSQL"
            );
            None
        }
    }
}

/// The CA file of the server's TLS certificate.
pub fn ca_file() -> Option<std::path::PathBuf> {
    std::env::var_os("WABA_TEST_POSTGRES_CA").map(Into::into)
}

/// The URL of a new, empty database on the test server; `None` (with a line saying the
/// PostgreSQL half of the test is skipped, and why) when no server was given.
pub async fn fresh_database() -> Option<String> {
    static COUNT: AtomicU32 = AtomicU32::new(0);
    let Some(url) = server_url() else {
        eprintln!(
            "skipped on PostgreSQL: WABA_TEST_POSTGRES_URL is not set \
             (`cargo xtask test` starts a server and sets it)"
        );
        return None;
    };
    let name = format!(
        "waba_t{}_{}_{}",
        std::process::id(),
        COUNT.fetch_add(1, Ordering::Relaxed),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos())
    );
    let (client, conn) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL server: {e}"));
    let driver = tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap_or_else(|e| panic!("cannot create database {name}: {e}"));
    drop(client);
    let _ = driver.await;
    Some(with_database(&url, &name))
}

/// `url` naming database `name` instead of its own.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let path_start = base[scheme_end..]
        .find('/')
        .map_or(base.len(), |i| scheme_end + i);
    let mut out = format!("{}/{name}", &base[..path_start]);
    if !query.is_empty() {
        out.push('?');
        out.push_str(query);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_url_names_another_database() {
        assert_eq!(
            super::with_database("postgres://u:p@127.0.0.1:5/waba", "x"),
            "postgres://u:p@127.0.0.1:5/x"
        );
        assert_eq!(
            super::with_database("postgres://u:p@h:5/waba?sslmode=require", "x"),
            "postgres://u:p@h:5/x?sslmode=require"
        );
        assert_eq!(super::with_database("postgres://h", "x"), "postgres://h/x");
    }
}
