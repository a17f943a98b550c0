//! Configuration: flags with `WABA_*` environment equivalents, checked once at start-up.
//!
//! Secrets (the System User token, the admin token) are read as values or from files, are
//! held in [`Secret`] which never prints, and are hidden from `--help`.

use clap::Parser;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use waba_graph::input::GraphVersion;
use waba_graph::{ObjectId, Secret};

/// Command line and environment, as clap reads them.
#[derive(Debug, Clone, Parser)]
#[command(
    name = "waba-proxy",
    version,
    // A flag given twice: the last one counts (wrappers can override defaults).
    args_override_self = true,
    about = "The waba-onboard sidecar: holds the partner's System User token and forwards an \
             allowlist of Graph reads, deciding per caller what it may see."
)]
pub struct Args {
    /// Address to listen on.
    #[arg(long, env = "WABA_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,

    /// Graph API base URL.
    #[arg(
        long,
        env = "WABA_GRAPH_URL",
        default_value = "https://graph.facebook.com"
    )]
    pub graph_url: String,

    /// Graph API version used for every upstream call (clients may name any version).
    #[arg(long, env = "WABA_GRAPH_VERSION", default_value = "v26.0")]
    pub graph_version: String,

    /// The partner's System User token. Prefer --system-user-token-file.
    #[arg(long, env = "WABA_SYSTEM_USER_TOKEN", hide_env_values = true)]
    pub system_user_token: Option<String>,

    /// File holding the System User token (one line).
    #[arg(long, env = "WABA_SYSTEM_USER_TOKEN_FILE")]
    pub system_user_token_file: Option<PathBuf>,

    /// The partner's business id: the only business the list routes serve.
    #[arg(long, env = "WABA_BUSINESS_ID")]
    pub business_id: String,

    /// The partner's Meta app id; when set, signup tokens of other apps are refused.
    #[arg(long, env = "WABA_APP_ID")]
    pub app_id: Option<String>,

    /// Admin token for the partner console (all routes). Admin routes are off without it.
    #[arg(long, env = "WABA_ADMIN_TOKEN", hide_env_values = true)]
    pub admin_token: Option<String>,

    /// File holding the admin token (one line).
    #[arg(long, env = "WABA_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,

    /// Origins allowed by CORS (repeat the flag, or comma-separate in the variable).
    #[arg(long = "cors-origin", env = "WABA_CORS_ORIGINS", value_delimiter = ',')]
    pub cors_origins: Vec<String>,

    /// Public base URL of this proxy, used in rewritten paging links
    /// (default: http://{Host header of the request}).
    #[arg(long, env = "WABA_PUBLIC_URL")]
    pub public_url: Option<String>,

    /// Timeout of one upstream Graph call, in milliseconds.
    #[arg(long, env = "WABA_UPSTREAM_TIMEOUT_MS", default_value_t = 10_000)]
    pub upstream_timeout_ms: u64,

    /// Timeout of a whole client request, in milliseconds.
    #[arg(long, env = "WABA_REQUEST_TIMEOUT_MS", default_value_t = 15_000)]
    pub request_timeout_ms: u64,

    /// Requests served at once; more are answered 503 at once.
    #[arg(long, env = "WABA_MAX_CONCURRENCY", default_value_t = 512)]
    pub max_concurrency: usize,

    /// Graph calls a client without a known credential (by IP address, IPv6 by /64) may
    /// cause per minute: `debug_token` of tokens not in the cache, code exchanges, signup
    /// reports.
    #[arg(long, env = "WABA_DEBUG_TOKEN_PER_MINUTE", default_value_t = 30)]
    pub debug_token_per_minute: u32,

    /// The same Graph calls per minute for all such clients together.
    #[arg(
        long,
        env = "WABA_DEBUG_TOKEN_GLOBAL_PER_MINUTE",
        default_value_t = 600
    )]
    pub debug_token_global_per_minute: u32,

    /// Milliseconds the proxy waits on a client: for a request's whole head, on an idle
    /// keep-alive connection, and for a write the client does not read.
    #[arg(long, env = "WABA_CLIENT_TIMEOUT_MS", default_value_t = 10_000)]
    pub client_timeout_ms: u64,

    /// Largest request head (request line and headers) in bytes; more is answered 431.
    #[arg(long, env = "WABA_MAX_HEADER_BYTES", default_value_t = 16 * 1024)]
    pub max_header_bytes: usize,

    /// Open connections at most; further ones wait to be accepted.
    #[arg(long, env = "WABA_MAX_CONNECTIONS", default_value_t = 1024)]
    pub max_connections: usize,

    /// Open connections per client address (IPv6 by /64); further ones are closed at once.
    #[arg(long, env = "WABA_MAX_CONNECTIONS_PER_CLIENT", default_value_t = 128)]
    pub max_connections_per_client: usize,

    /// Seconds a signup token's `debug_token` answer is trusted (never past its expiry).
    #[arg(long, env = "WABA_TOKEN_CACHE_SECS", default_value_t = 300)]
    pub token_cache_secs: u64,

    /// Milliseconds an answer is reused for identical reads (WABAs, phones, lists); 0 turns
    /// the sharing off. Concurrent identical reads always make one Graph call when on.
    #[arg(long, env = "WABA_CACHE_TTL_MS", default_value_t = 3_000)]
    pub cache_ttl_ms: u64,

    /// Directory of static files to serve at `/` (e.g. `www/`).
    #[arg(long, env = "WABA_WWW")]
    pub www: Option<PathBuf>,

    /// The app secret, for exchanging signup codes (the code flow). Prefer --app-secret-file.
    #[arg(long, env = "WABA_APP_SECRET", hide_env_values = true)]
    pub app_secret: Option<String>,

    /// File holding the app secret (one line).
    #[arg(long, env = "WABA_APP_SECRET_FILE")]
    pub app_secret_file: Option<PathBuf>,

    /// Key that encrypts business tokens at rest: 32 bytes, base64 or 64 hex digits.
    /// Prefer --token-key-file.
    #[arg(long, env = "WABA_TOKEN_KEY", hide_env_values = true)]
    pub token_key: Option<String>,

    /// File holding the token key.
    #[arg(long, env = "WABA_TOKEN_KEY_FILE")]
    pub token_key_file: Option<PathBuf>,

    /// The verify token Meta's webhook subscription handshake must present (you choose it
    /// and enter it in the app dashboard with the callback URL). Prefer --webhook-verify-token-file.
    #[arg(long, env = "WABA_WEBHOOK_VERIFY_TOKEN", hide_env_values = true)]
    pub webhook_verify_token: Option<String>,

    /// File holding the webhook verify token.
    #[arg(long, env = "WABA_WEBHOOK_VERIFY_TOKEN_FILE")]
    pub webhook_verify_token_file: Option<PathBuf>,

    /// Where the proxy keeps its records: a SQLite file (created if missing; one proxy
    /// process), or a PostgreSQL URL shared by several replicas
    /// (`postgres://user:password@host:5432/waba?sslmode=require`). Prefer
    /// --database-url-file for a URL with a password.
    #[arg(long, env = "WABA_DATABASE", hide_env_values = true)]
    pub database: Option<String>,

    /// File holding the --database value (a mounted secret).
    #[arg(long, env = "WABA_DATABASE_URL_FILE")]
    pub database_url_file: Option<PathBuf>,

    /// PEM file of the certificate authorities that sign the PostgreSQL server's
    /// certificate (TLS with `sslmode=require`); the system's roots when not given.
    #[arg(long, env = "WABA_DATABASE_CA_FILE")]
    pub database_ca_file: Option<PathBuf>,

    /// PostgreSQL connections each replica keeps at most.
    #[arg(long, env = "WABA_DATABASE_POOL_SIZE", default_value_t = 16)]
    pub database_pool_size: usize,

    /// Seconds a code-flow session credential works.
    #[arg(long, env = "WABA_SESSION_TTL_SECS", default_value_t = 3600)]
    pub session_ttl_secs: u64,

    /// Seconds between passes of the newly-shared tracker over the client WABA list; 0 turns
    /// the background passes off (POST /admin/tracker/pass still runs one).
    #[arg(long, env = "WABA_TRACKER_INTERVAL_SECS", default_value_t = 0)]
    pub tracker_interval_secs: u64,

    /// Seconds a replica holds the tracker's lease for a pass: one pass per interval runs
    /// across replicas, and when the replica running it dies another runs one after this.
    #[arg(long, env = "WABA_TRACKER_LEASE_SECS", default_value_t = 120)]
    pub tracker_lease_secs: u64,

    /// Run the partner's post-signup steps (subscribe, assign, share credit, register,
    /// sync) for every onboarding; `false` turns the whole pipeline off.
    #[arg(long, env = "WABA_PIPELINE", default_value_t = true, action = clap::ArgAction::Set)]
    pub pipeline: bool,

    /// Subscribe the app to each shared WABA's webhooks (`POST /{waba-id}/subscribed_apps`).
    #[arg(long, env = "WABA_PIPELINE_SUBSCRIBE", default_value_t = true, action = clap::ArgAction::Set)]
    pub pipeline_subscribe: bool,

    /// Register each verified number with a two-step verification PIN (needs --token-key,
    /// which seals the PINs).
    #[arg(long, env = "WABA_PIPELINE_REGISTER", default_value_t = true, action = clap::ArgAction::Set)]
    pub pipeline_register: bool,

    /// Request the contacts and history sync of WhatsApp Business app (coexistence) numbers.
    #[arg(long, env = "WABA_PIPELINE_SYNC", default_value_t = true, action = clap::ArgAction::Set)]
    pub pipeline_sync: bool,

    /// The partner's System User id: when set, it is assigned to each shared WABA
    /// (`POST /{waba-id}/assigned_users`, tasks MANAGE).
    #[arg(long, env = "WABA_SYSTEM_USER_ID")]
    pub system_user_id: Option<String>,

    /// A Solution Partner's extended credit line id: when set, it is shared with each WABA
    /// (`whatsapp_credit_sharing_and_attach`).
    #[arg(long, env = "WABA_CREDIT_LINE_ID")]
    pub credit_line_id: Option<String>,

    /// The currency the credit line is shared in (`waba_currency`).
    #[arg(long, env = "WABA_CREDIT_CURRENCY", default_value = "USD")]
    pub credit_currency: String,

    /// An alternate callback URL for the WABAs' webhooks (`override_callback_uri`).
    #[arg(long, env = "WABA_OVERRIDE_CALLBACK_URI")]
    pub override_callback_uri: Option<String>,

    /// The verify token Meta presents to the alternate callback URL.
    /// Prefer --override-verify-token-file.
    #[arg(long, env = "WABA_OVERRIDE_VERIFY_TOKEN", hide_env_values = true)]
    pub override_verify_token: Option<String>,

    /// File holding the alternate callback's verify token.
    #[arg(long, env = "WABA_OVERRIDE_VERIFY_TOKEN_FILE")]
    pub override_verify_token_file: Option<PathBuf>,

    /// Register and deregister attempts the pipeline makes by itself per number in Meta's
    /// 72-hour window (Meta allows 10; the rest stay for people).
    #[arg(long, env = "WABA_REGISTER_MAX_ATTEMPTS", default_value_t = 3)]
    pub register_max_attempts: u32,

    /// Milliseconds between the pipeline runner's looks for due steps.
    #[arg(long, env = "WABA_PIPELINE_INTERVAL_MS", default_value_t = 1_000)]
    pub pipeline_interval_ms: u64,

    /// Seconds a WABA found by webhook or tracker waits before its steps run, so the
    /// business's own signup (which brings its token) takes it over.
    #[arg(long, env = "WABA_DISCOVERY_GRACE_SECS", default_value_t = 60)]
    pub discovery_grace_secs: u64,

    /// Log format: `json` (one object a line) or `text`.
    #[arg(long, env = "WABA_LOG_FORMAT", default_value = "json")]
    pub log_format: String,

    /// Allow webhook endpoints in loopback, private and link-local networks (refused
    /// otherwise, against server-side request forgery).
    #[arg(long, env = "WABA_OUTBOUND_ALLOW_PRIVATE_NETWORKS")]
    pub outbound_allow_private_networks: bool,

    /// Accept only `https://` webhook endpoints.
    #[arg(long, env = "WABA_OUTBOUND_REQUIRE_HTTPS")]
    pub outbound_require_https: bool,

    /// Milliseconds one delivery attempt may take, connecting included.
    #[arg(long, env = "WABA_OUTBOUND_TIMEOUT_MS", default_value_t = 15_000)]
    pub outbound_timeout_ms: u64,

    /// Milliseconds between the sender's looks for due deliveries.
    #[arg(long, env = "WABA_OUTBOUND_POLL_MS", default_value_t = 1_000)]
    pub outbound_poll_ms: u64,

    /// Waits before each retry of a failed delivery (`250ms`, `5s`, `5m`, `2h`, `1d`), the
    /// last repeating; a delivery is given up when it still fails after their sum. The
    /// default is Standard Webhooks' example schedule (about 75 hours).
    #[arg(
        long,
        env = "WABA_OUTBOUND_RETRY_SCHEDULE",
        default_value = "5s,5m,30m,2h,5h,10h,14h,20h,24h"
    )]
    pub outbound_retry_schedule: String,

    /// Failed attempts in a row that open an endpoint's circuit.
    #[arg(long, env = "WABA_OUTBOUND_CIRCUIT_FAILURES", default_value_t = 5)]
    pub outbound_circuit_failures: u32,

    /// How long an open circuit first waits before its probe (doubling after each failed
    /// probe).
    #[arg(long, env = "WABA_OUTBOUND_CIRCUIT_COOLDOWN", default_value = "1m")]
    pub outbound_circuit_cooldown: String,

    /// The longest an open circuit waits between probes.
    #[arg(long, env = "WABA_OUTBOUND_CIRCUIT_MAX_COOLDOWN", default_value = "1h")]
    pub outbound_circuit_max_cooldown: String,

    /// An endpoint failing every attempt for this long is paused until the admin resumes it.
    #[arg(long, env = "WABA_OUTBOUND_PAUSE_AFTER", default_value = "5d")]
    pub outbound_pause_after: String,

    /// How long delivered and given-up deliveries (with their attempts) are kept.
    #[arg(long, env = "WABA_OUTBOUND_RETENTION", default_value = "30d")]
    pub outbound_retention: String,
}

/// Parses `250ms`, `5s`, `5m`, `2h` or `1d` into milliseconds.
fn duration_ms(text: &str) -> Option<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit())?;
    let (n, unit) = t.split_at(split);
    let n: u64 = n.parse().ok()?;
    let scale = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(scale)
}

/// The outbound webhooks' settings from `args`.
fn outbound_config(args: &Args) -> Result<crate::outbound::OutboundConfig, ConfigError> {
    let secs = |setting: &'static str, text: &str| {
        duration_ms(text)
            .filter(|ms| (1_000..=30 * 86_400_000).contains(ms))
            .map(|ms| (ms / 1_000) as i64)
            .ok_or_else(|| {
                bad(
                    setting,
                    "must be a duration from 1s to 30d, like 5s, 10m, 2h or 1d",
                )
            })
    };
    let schedule = args
        .outbound_retry_schedule
        .split(',')
        .map(|t| {
            secs(
                "--outbound-retry-schedule / WABA_OUTBOUND_RETRY_SCHEDULE",
                t,
            )
        })
        .collect::<Result<Vec<i64>, _>>()?;
    if schedule.len() > 50 {
        return Err(bad(
            "--outbound-retry-schedule / WABA_OUTBOUND_RETRY_SCHEDULE",
            "at most 50 waits",
        ));
    }
    if args.outbound_timeout_ms == 0 || args.outbound_timeout_ms > 120_000 {
        return Err(bad(
            "--outbound-timeout-ms / WABA_OUTBOUND_TIMEOUT_MS",
            "must be from 1 to 120000",
        ));
    }
    if args.outbound_poll_ms == 0 || args.outbound_poll_ms > 60_000 {
        return Err(bad(
            "--outbound-poll-ms / WABA_OUTBOUND_POLL_MS",
            "must be from 1 to 60000",
        ));
    }
    if args.outbound_circuit_failures == 0 {
        return Err(bad(
            "--outbound-circuit-failures / WABA_OUTBOUND_CIRCUIT_FAILURES",
            "must be above 0",
        ));
    }
    let cooldown = secs(
        "--outbound-circuit-cooldown / WABA_OUTBOUND_CIRCUIT_COOLDOWN",
        &args.outbound_circuit_cooldown,
    )?;
    let max_cooldown = secs(
        "--outbound-circuit-max-cooldown / WABA_OUTBOUND_CIRCUIT_MAX_COOLDOWN",
        &args.outbound_circuit_max_cooldown,
    )?
    .max(cooldown);
    Ok(crate::outbound::OutboundConfig {
        retention: secs(
            "--outbound-retention / WABA_OUTBOUND_RETENTION",
            &args.outbound_retention,
        )?,
        guard: crate::outbound::Guard {
            allow_private: args.outbound_allow_private_networks,
            require_https: args.outbound_require_https,
        },
        timeout: Duration::from_millis(args.outbound_timeout_ms),
        poll: Duration::from_millis(args.outbound_poll_ms),
        policy: crate::store::outbox::RetryPolicy {
            window: schedule.iter().sum(),
            schedule,
            circuit_failures: args.outbound_circuit_failures,
            cooldown,
            max_cooldown,
            pause_after: secs(
                "--outbound-pause-after / WABA_OUTBOUND_PAUSE_AFTER",
                &args.outbound_pause_after,
            )?,
        },
    })
}

/// A checked configuration, nested by the component that uses it.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// How to reach Graph, with the System User token.
    pub upstream: crate::upstream::Config,
    /// The partner's business.
    pub business_id: ObjectId,
    /// The partner's app.
    pub app_id: Option<ObjectId>,
    /// The app secret: signs Meta's webhooks and exchanges codes.
    pub app_secret: Option<Secret>,
    /// The admin token, when admin routes are on.
    pub admin_token: Option<Secret>,
    /// CORS origins.
    pub cors_origins: Vec<String>,
    /// Public base URL, without a trailing slash.
    pub public_url: Option<String>,
    /// Concurrent requests.
    pub max_concurrency: usize,
    /// Graph calls per client without a known credential, per minute.
    pub debug_token_per_minute: u32,
    /// The same for all such clients together.
    pub debug_token_global_per_minute: u32,
    /// What one connection, and all of them, may hold.
    pub connections: crate::server::Limits,
    /// Signup token cache lifetime.
    pub token_cache: Duration,
    /// Static files.
    pub www: Option<PathBuf>,
    /// JSON logs.
    pub json_logs: bool,
    /// The SQLite file or the PostgreSQL URL (a URL's password is a secret).
    pub database: Secret,
    /// How to reach PostgreSQL, when the database is a URL.
    pub postgres: crate::store::PostgresOptions,
    /// The code flow's settings, when all are given.
    pub code_flow: Option<CodeFlowConfig>,
    /// The webhook subscription's verify token.
    pub webhook_verify_token: Option<Secret>,
    /// Between tracker passes; `None` when off.
    pub tracker_interval: Option<Duration>,
    /// How long a replica holds the tracker's lease.
    pub tracker_lease: Duration,
    /// The post-signup pipeline; `None` when off.
    pub pipeline: Option<PipelineConfig>,
    /// The partner's own webhooks (their secrets are sealed with the code flow's token key).
    pub outbound: crate::outbound::OutboundConfig,
}

/// The partner's post-signup steps and how they run.
#[derive(Debug, Clone)]
pub struct PipelineConfig {
    /// Which steps each onboarding gets.
    pub plan: waba_graph::pipeline::PlanConfig,
    /// The System User assigned to each WABA.
    pub system_user_id: Option<ObjectId>,
    /// The credit line shared with each WABA, and its currency.
    pub credit_line: Option<(ObjectId, String)>,
    /// The alternate callback URL and its verify token.
    pub override_callback: Option<(String, Secret)>,
    /// Register attempts per number in Meta's window.
    pub register_max_attempts: u32,
    /// Between the runner's looks for due steps.
    pub interval: Duration,
    /// How long a discovered WABA waits for its business's own signup.
    pub discovery_grace: Duration,
    /// Registration was asked for, but without a token key no PIN can be kept sealed.
    pub register_needs_key: bool,
}

/// The longest a discovered WABA waits for its business's own signup.
pub const MAX_DISCOVERY_GRACE_SECS: u64 = 86_400;

/// What the code flow needs besides the app's id and secret (which [`Config`] holds once).
#[derive(Debug, Clone)]
pub struct CodeFlowConfig {
    /// Seals business tokens.
    pub key: crate::sealing::TokenKey,
    /// The key as configured (base64 or hex), so it is scrubbed like every other secret.
    pub key_text: Secret,
    /// Session credential lifetime.
    pub session_ttl: Duration,
}

/// Parses a 32-byte key given as base64 (standard or URL-safe, padded or not) or hex.
fn key_bytes(text: &str) -> Option<[u8; 32]> {
    use base64::Engine as _;
    let t = text.trim();
    let mut out = [0u8; 32];
    if hex::decode_to_slice(t, &mut out).is_ok() {
        return Some(out);
    }
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::STANDARD_NO_PAD,
        base64::engine::general_purpose::URL_SAFE,
        base64::engine::general_purpose::URL_SAFE_NO_PAD,
    ];
    engines
        .iter()
        .find_map(|e| e.decode(t).ok())
        .and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok())
}

/// A setting that is wrong; the message names it.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {setting}: {problem}")]
pub struct ConfigError {
    /// The flag (and its variable).
    pub setting: &'static str,
    /// What is wrong, without the value when it is a secret.
    pub problem: String,
}

fn bad(setting: &'static str, problem: impl Into<String>) -> ConfigError {
    ConfigError {
        setting,
        problem: problem.into(),
    }
}

/// Reads a secret from its value or its file; checks it can go into an HTTP header.
fn secret(
    setting: &'static str,
    value: Option<String>,
    file: Option<PathBuf>,
) -> Result<Option<Secret>, ConfigError> {
    let Some(raw) = value_or_file(setting, value, file)? else {
        return Ok(None);
    };
    let token = raw.trim();
    if token.is_empty() {
        return Err(bad(setting, "is empty"));
    }
    if token.len() > 4096 || !token.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(bad(
            setting,
            "must be printable ASCII without spaces (the value is not shown)",
        ));
    }
    Ok(Some(Secret::new(token)))
}

/// The value given directly or read from `file` (not both), if either is.
fn value_or_file(
    setting: &'static str,
    value: Option<String>,
    file: Option<PathBuf>,
) -> Result<Option<String>, ConfigError> {
    match (value, file) {
        (Some(_), Some(_)) => Err(bad(setting, "give the value or the file, not both")),
        (Some(v), None) => Ok(Some(v)),
        (None, Some(path)) => std::fs::read_to_string(&path)
            .map(Some)
            .map_err(|e| bad(setting, format!("cannot read {}: {e}", path.display()))),
        (None, None) => Ok(None),
    }
}

/// The `--database` value: a SQLite path (default `waba-onboard.db`) or a PostgreSQL URL.
fn database(value: Option<String>, file: Option<PathBuf>) -> Result<Secret, ConfigError> {
    const SETTING: &str = "--database / WABA_DATABASE";
    let raw = value_or_file(SETTING, value, file)?.unwrap_or_else(|| "waba-onboard.db".into());
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > 4096 {
        return Err(bad(SETTING, "must be a file path or a postgres:// URL"));
    }
    // The value may hold a password: no message repeats it.
    if crate::store::is_postgres_url(raw) {
        let Some(parsed) = crate::store::postgres_config(raw) else {
            return Err(bad(
                SETTING,
                "is not a valid postgres:// URL (postgres://user:password@host:5432/database)",
            ));
        };
        // An unencoded @ in the password moves the rest of it into the host.
        let at_in_host = parsed
            .get_hosts()
            .iter()
            .any(|h| matches!(h, tokio_postgres::config::Host::Tcp(name) if name.contains('@')));
        if at_in_host {
            return Err(bad(
                SETTING,
                "has an @ in its user or password: write it as %40",
            ));
        }
    } else if raw.contains("://") || raw.contains('=') || raw.contains('@') {
        // A typo'd URL or a libpq connection string would silently become a local file,
        // each replica with its own records.
        return Err(bad(
            SETTING,
            "is neither a file path nor a postgres:// URL (postgres://user:password@host:5432/database)",
        ));
    }
    Ok(Secret::new(raw))
}

/// The password of a PostgreSQL URL, if it has one: as parsed, and as written (percent-encoded),
/// so the scrubber knows both.
fn database_password(database: &str) -> Vec<String> {
    if !crate::store::is_postgres_url(database) {
        return Vec::new();
    }
    let mut out = Vec::new();
    if let Some(p) = crate::store::postgres_config(database)
        .as_ref()
        .and_then(tokio_postgres::Config::get_password)
    {
        out.push(String::from_utf8_lossy(p).into_owned());
    }
    if let Some((_, rest)) = database.split_once("://")
        && let Some((userinfo, _)) = rest.rsplit_once('@')
        && let Some((_, written)) = userinfo.split_once(':')
    {
        out.push(written.to_owned());
    }
    out.retain(|p| !p.is_empty());
    out.dedup();
    out
}

/// The database as logs and errors may name it: a SQLite path, or a URL with neither its
/// password nor its query (`postgres://waba@db:5432/waba`).
pub fn database_label(database: &Secret) -> String {
    let raw = database.expose();
    if !crate::store::is_postgres_url(raw) {
        return raw.to_owned();
    }
    let (scheme, rest) = raw.split_once("://").unwrap_or(("postgres", raw));
    let (userinfo, place) = rest.rsplit_once('@').unwrap_or(("", rest));
    let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
    let place = place.split_once('?').map_or(place, |(p, _)| p);
    if user.is_empty() {
        format!("{scheme}://{place}")
    } else {
        format!("{scheme}://{user}@{place}")
    }
}

fn base_url(setting: &'static str, raw: &str) -> Result<String, ConfigError> {
    let url = raw.trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| bad(setting, "must start with http:// or https://"))?;
    if rest.is_empty() || rest.contains(['?', '#', '@', ' ']) {
        return Err(bad(
            setting,
            "must be a plain base URL (no query, fragment or user)",
        ));
    }
    Ok(url.to_owned())
}

impl Config {
    /// Checks `args`, reading secret files.
    pub fn from_args(args: Args) -> Result<Self, ConfigError> {
        // A token key is only accepted with the code flow (checked below).
        let outbound = outbound_config(&args)?;
        let pipeline = pipeline_config(
            &args,
            args.token_key.is_some() || args.token_key_file.is_some(),
        )?;
        let system_user_token = secret(
            "--system-user-token / WABA_SYSTEM_USER_TOKEN",
            args.system_user_token,
            args.system_user_token_file,
        )?
        .ok_or_else(|| {
            bad(
                "--system-user-token / WABA_SYSTEM_USER_TOKEN",
                "is required (or --system-user-token-file)",
            )
        })?;
        let admin_token = secret(
            "--admin-token / WABA_ADMIN_TOKEN",
            args.admin_token,
            args.admin_token_file,
        )?;
        if admin_token
            .as_ref()
            .is_some_and(|a| a.expose() == system_user_token.expose())
        {
            return Err(bad(
                "--admin-token / WABA_ADMIN_TOKEN",
                "must differ from the System User token",
            ));
        }
        let business_id = ObjectId::parse(&args.business_id)
            .map_err(|e| bad("--business-id / WABA_BUSINESS_ID", e.to_string()))?;
        let app_id = args
            .app_id
            .map(|a| ObjectId::parse(&a))
            .transpose()
            .map_err(|e| bad("--app-id / WABA_APP_ID", e.to_string()))?;
        let graph_version = GraphVersion::parse(&args.graph_version).map_err(|_| {
            bad(
                "--graph-version / WABA_GRAPH_VERSION",
                "must look like v26.0",
            )
        })?;
        let mut cors_origins = Vec::new();
        for origin in args
            .cors_origins
            .iter()
            .map(|o| o.trim())
            .filter(|o| !o.is_empty())
        {
            if origin == "*" {
                return Err(bad(
                    "--cors-origin / WABA_CORS_ORIGINS",
                    "a wildcard is not allowed: list the partner's origins",
                ));
            }
            let url = base_url("--cors-origin / WABA_CORS_ORIGINS", origin)?;
            if url.splitn(4, '/').nth(3).is_some() {
                return Err(bad(
                    "--cors-origin / WABA_CORS_ORIGINS",
                    format!("`{origin}` is not an origin (scheme://host[:port], no path)"),
                ));
            }
            cors_origins.push(url);
        }
        if args.upstream_timeout_ms == 0 || args.request_timeout_ms == 0 {
            return Err(bad(
                "--upstream-timeout-ms / --request-timeout-ms",
                "must be above 0",
            ));
        }
        if args.max_concurrency == 0 {
            return Err(bad(
                "--max-concurrency / WABA_MAX_CONCURRENCY",
                "must be above 0",
            ));
        }
        for (name, value) in [
            (
                "--debug-token-per-minute / WABA_DEBUG_TOKEN_PER_MINUTE",
                u64::from(args.debug_token_per_minute),
            ),
            (
                "--debug-token-global-per-minute / WABA_DEBUG_TOKEN_GLOBAL_PER_MINUTE",
                u64::from(args.debug_token_global_per_minute),
            ),
            (
                "--client-timeout-ms / WABA_CLIENT_TIMEOUT_MS",
                args.client_timeout_ms,
            ),
            (
                "--max-connections / WABA_MAX_CONNECTIONS",
                args.max_connections as u64,
            ),
            (
                "--max-connections-per-client / WABA_MAX_CONNECTIONS_PER_CLIENT",
                args.max_connections_per_client as u64,
            ),
        ] {
            if value == 0 {
                return Err(bad(name, "must be above 0"));
            }
        }
        if !(crate::server::MIN_HEADER_BYTES..=crate::server::MAX_HEADER_BYTES)
            .contains(&args.max_header_bytes)
        {
            return Err(bad(
                "--max-header-bytes / WABA_MAX_HEADER_BYTES",
                format!(
                    "must be between {} and {}",
                    crate::server::MIN_HEADER_BYTES,
                    crate::server::MAX_HEADER_BYTES
                ),
            ));
        }
        if let Some(dir) = args.www.as_ref().filter(|d| !d.is_dir()) {
            return Err(bad(
                "--www / WABA_WWW",
                format!("{} is not a directory", dir.display()),
            ));
        }
        let json_logs = match args.log_format.as_str() {
            "json" => true,
            "text" => false,
            _ => {
                return Err(bad(
                    "--log-format / WABA_LOG_FORMAT",
                    "must be json or text",
                ));
            }
        };
        let app_secret = secret(
            "--app-secret / WABA_APP_SECRET",
            args.app_secret,
            args.app_secret_file,
        )?;
        let key = secret(
            "--token-key / WABA_TOKEN_KEY",
            args.token_key,
            args.token_key_file,
        )?
        .map(|k| {
            key_bytes(k.expose()).map(|b| (crate::sealing::TokenKey::new(&b), k.clone())).ok_or_else(|| {
                bad(
                    "--token-key / WABA_TOKEN_KEY",
                    "must be 32 bytes as base64 or 64 hex digits (e.g. `openssl rand -base64 32`)",
                )
            })
        })
        .transpose()?;
        if args.session_ttl_secs == 0 {
            return Err(bad(
                "--session-ttl-secs / WABA_SESSION_TTL_SECS",
                "must be above 0",
            ));
        }
        let code_flow = match (&app_id, &app_secret, key) {
            (Some(_), Some(_), Some((key, key_text))) => Some(CodeFlowConfig {
                key,
                key_text,
                session_ttl: Duration::from_secs(args.session_ttl_secs),
            }),
            (_, _, None) => None,
            _ => {
                return Err(bad(
                    "--token-key / WABA_TOKEN_KEY",
                    "the code flow needs --app-id and --app-secret too",
                ));
            }
        };
        let webhook_verify_token = secret(
            "--webhook-verify-token / WABA_WEBHOOK_VERIFY_TOKEN",
            args.webhook_verify_token,
            args.webhook_verify_token_file,
        )?;
        let database = database(args.database.clone(), args.database_url_file.clone())?;
        if args.database_pool_size == 0 || args.database_pool_size > 1000 {
            return Err(bad(
                "--database-pool-size / WABA_DATABASE_POOL_SIZE",
                "must be from 1 to 1000",
            ));
        }
        Ok(Config {
            outbound,
            pipeline,
            database,
            postgres: crate::store::PostgresOptions {
                pool_size: args.database_pool_size,
                ca_file: args.database_ca_file,
                ..crate::store::PostgresOptions::default()
            },
            tracker_lease: Duration::from_secs(args.tracker_lease_secs.max(1)),
            code_flow,
            app_secret,
            webhook_verify_token,
            tracker_interval: (args.tracker_interval_secs > 0)
                .then(|| Duration::from_secs(args.tracker_interval_secs)),
            listen: args.listen,
            upstream: crate::upstream::Config {
                graph_url: base_url("--graph-url / WABA_GRAPH_URL", &args.graph_url)?,
                graph_version,
                system_user_token,
                upstream_timeout: Duration::from_millis(args.upstream_timeout_ms),
                request_timeout: Duration::from_millis(args.request_timeout_ms),
                cache_ttl: Duration::from_millis(args.cache_ttl_ms),
            },
            business_id,
            app_id,
            admin_token,
            cors_origins,
            public_url: args
                .public_url
                .as_deref()
                .map(|u| base_url("--public-url / WABA_PUBLIC_URL", u))
                .transpose()?,
            max_concurrency: args.max_concurrency,
            debug_token_per_minute: args.debug_token_per_minute,
            debug_token_global_per_minute: args.debug_token_global_per_minute,
            connections: crate::server::Limits {
                client_timeout: Duration::from_millis(args.client_timeout_ms),
                max_header_bytes: args.max_header_bytes,
                max_connections: args.max_connections,
                max_connections_per_client: args.max_connections_per_client,
            },
            token_cache: Duration::from_secs(args.token_cache_secs),
            www: args.www,
            json_logs,
        })
    }

    /// What the operator should know about this configuration, for the log once it is set up.
    pub fn warnings(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.pipeline.as_ref().is_some_and(|p| p.register_needs_key) {
            out.push(
                "numbers are not registered: the pipeline keeps each number's PIN sealed with \
                 --token-key, which needs the code flow (--app-id, --app-secret); or set \
                 --pipeline-register false",
            );
        }
        out
    }

    /// Every secret value the proxy holds, for scrubbing.
    pub fn secrets(&self) -> Vec<Secret> {
        let mut out = vec![self.upstream.system_user_token.clone()];
        out.extend(
            database_password(self.database.expose())
                .into_iter()
                .map(Secret::new),
        );
        out.extend(self.admin_token.clone());
        out.extend(self.app_secret.clone());
        out.extend(self.webhook_verify_token.clone());
        out.extend(self.code_flow.as_ref().map(|c| c.key_text.clone()));
        out.extend(
            self.pipeline
                .as_ref()
                .and_then(|p| p.override_callback.as_ref())
                .map(|o| o.1.clone()),
        );
        out
    }
}

/// The pipeline's settings, checked; `None` when it is off.
fn pipeline_config(args: &Args, key: bool) -> Result<Option<PipelineConfig>, ConfigError> {
    if !args.pipeline {
        return Ok(None);
    }
    let id = |setting: &'static str, v: &Option<String>| {
        v.as_deref()
            .map(ObjectId::parse)
            .transpose()
            .map_err(|e| bad(setting, e.to_string()))
    };
    let system_user_id = id(
        "--system-user-id / WABA_SYSTEM_USER_ID",
        &args.system_user_id,
    )?;
    let credit_line = id(
        "--credit-line-id / WABA_CREDIT_LINE_ID",
        &args.credit_line_id,
    )?;
    let currency = args.credit_currency.trim();
    if currency.len() != 3 || !currency.bytes().all(|b| b.is_ascii_uppercase()) {
        return Err(bad(
            "--credit-currency / WABA_CREDIT_CURRENCY",
            "must be an ISO 4217 code such as USD",
        ));
    }
    let verify = secret(
        "--override-verify-token / WABA_OVERRIDE_VERIFY_TOKEN",
        args.override_verify_token.clone(),
        args.override_verify_token_file.clone(),
    )?;
    let override_callback = match (&args.override_callback_uri, verify) {
        (None, None) => None,
        (Some(uri), Some(token)) => {
            if !uri.starts_with("https://") || uri.len() > 2048 || uri.contains(char::is_whitespace)
            {
                return Err(bad(
                    "--override-callback-uri / WABA_OVERRIDE_CALLBACK_URI",
                    "must be an https:// URL Meta can reach",
                ));
            }
            Some((uri.clone(), token))
        }
        _ => {
            return Err(bad(
                "--override-callback-uri / WABA_OVERRIDE_CALLBACK_URI",
                "needs --override-verify-token too (and the other way round)",
            ));
        }
    };
    if !(1..=waba_graph::pipeline::META_REGISTER_LIMIT).contains(&args.register_max_attempts) {
        return Err(bad(
            "--register-max-attempts / WABA_REGISTER_MAX_ATTEMPTS",
            "must be between 1 and 10 (Meta's limit in 72 hours)",
        ));
    }
    if args.pipeline_interval_ms == 0 {
        return Err(bad(
            "--pipeline-interval-ms / WABA_PIPELINE_INTERVAL_MS",
            "must be above 0",
        ));
    }
    if args.discovery_grace_secs > MAX_DISCOVERY_GRACE_SECS {
        return Err(bad(
            "--discovery-grace-secs / WABA_DISCOVERY_GRACE_SECS",
            "must be at most 86400 (a day)",
        ));
    }
    Ok(Some(PipelineConfig {
        plan: waba_graph::pipeline::PlanConfig {
            subscribe: args.pipeline_subscribe,
            assign_system_user: system_user_id.is_some(),
            share_credit_line: credit_line.is_some(),
            register: args.pipeline_register && key,
            sync: args.pipeline_sync,
        },
        system_user_id,
        credit_line: credit_line.map(|c| (c, currency.to_owned())),
        override_callback,
        register_max_attempts: args.register_max_attempts,
        register_needs_key: args.pipeline_register && !key,
        interval: Duration::from_millis(args.pipeline_interval_ms),
        discovery_grace: Duration::from_secs(args.discovery_grace_secs),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> Args {
        let mut argv = vec![
            "waba-proxy",
            "--system-user-token",
            "EAAsystem",
            "--business-id",
            "805021500648488",
        ];
        argv.extend_from_slice(extra);
        Args::try_parse_from(argv).unwrap()
    }

    #[test]
    fn a_database_url_is_a_secret_named_without_its_password() {
        let url = "postgres://waba:s3cr3t-pw@db.internal:6432/records?sslmode=verify-full";
        let c = Config::from_args(args(&["--database", url])).unwrap();
        assert!(!format!("{c:?}").contains("s3cr3t-pw"));
        assert!(c.secrets().iter().any(|s| s.expose() == "s3cr3t-pw"));
        assert_eq!(
            database_label(&c.database),
            "postgres://waba@db.internal:6432/records"
        );
        assert!(!format!("{:?}", c.secrets()).contains("s3cr3t-pw"));
        let file = Config::from_args(args(&[])).unwrap();
        assert_eq!(file.database.expose(), "waba-onboard.db");
        assert_eq!(database_label(&file.database), "waba-onboard.db");
        let bad = Config::from_args(args(&[
            "--database",
            "postgres://waba:s3cr3t-pw@db:5432/x?sslmode=sometimes",
        ]))
        .unwrap_err()
        .to_string();
        assert!(
            bad.contains("--database") && !bad.contains("s3cr3t-pw"),
            "{bad}"
        );
        let zero = Config::from_args(args(&["--database-pool-size", "0"]));
        assert!(zero.is_err());
        for wrong in [
            "postgres://waba:Tr0ub@dor@db.internal:5432/waba",
            "postgres:/waba:Tr0ub@db/waba",
            "host=db user=waba password=Tr0ub dbname=waba",
        ] {
            let e = Config::from_args(args(&["--database", wrong]))
                .unwrap_err()
                .to_string();
            assert!(!e.contains("Tr0ub") && !e.contains("dor"), "{e}");
        }
        let encoded = Config::from_args(args(&[
            "--database",
            "postgres://waba:Tr0ub%40dor@db.internal/waba",
        ]))
        .unwrap();
        assert_eq!(
            database_label(&encoded.database),
            "postgres://waba@db.internal/waba"
        );
        let secrets: Vec<String> = encoded
            .secrets()
            .iter()
            .map(|s| s.expose().to_owned())
            .collect();
        assert!(secrets.contains(&"Tr0ub@dor".to_owned()), "{secrets:?}");
        assert!(secrets.contains(&"Tr0ub%40dor".to_owned()), "{secrets:?}");
    }

    #[test]
    fn good_config_and_redacted_debug() {
        let c = Config::from_args(args(&[
            "--admin-token",
            "adm1n",
            "--cors-origin",
            "https://partner.example",
        ]))
        .unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("EAAsystem") && !shown.contains("adm1n"),
            "{shown}"
        );
        assert_eq!(c.cors_origins, ["https://partner.example"]);
        assert_eq!(c.upstream.graph_url, "https://graph.facebook.com");
    }

    #[test]
    fn the_pipeline_follows_its_flags() {
        let c = Config::from_args(args(&[])).unwrap();
        assert_eq!(c.warnings().len(), 1, "registration needs a token key");
        let p = c.pipeline.unwrap();
        assert!(p.plan.subscribe && p.plan.sync);
        assert!(!p.plan.register, "no token key: no PIN can be sealed");
        assert!(!p.plan.assign_system_user && !p.plan.share_credit_line);
        let c = Config::from_args(args(&[
            "--system-user-id",
            "61550000000001",
            "--credit-line-id",
            "58501441721238",
            "--pipeline-subscribe",
            "false",
        ]))
        .unwrap();
        let p = c.pipeline.unwrap();
        assert!(p.plan.assign_system_user && p.plan.share_credit_line && !p.plan.subscribe);
        assert_eq!(p.credit_line.unwrap().1, "USD");
        let off = Config::from_args(args(&["--pipeline", "false"])).unwrap();
        assert!(off.pipeline.is_none());
        let with_override = Config::from_args(args(&[
            "--override-callback-uri",
            "https://partner.example/hook",
            "--override-verify-token",
            "vt-9f2",
        ]))
        .unwrap();
        assert!(
            with_override
                .secrets()
                .iter()
                .any(|s| s.expose() == "vt-9f2"),
            "the override's verify token is scrubbed like every secret"
        );
    }

    #[test]
    fn bad_settings_are_named_and_secrets_not_shown() {
        let cases: &[(&[&str], &str)] = &[
            (&["--graph-version", "26"], "--graph-version"),
            (&["--cors-origin", "*"], "--cors-origin"),
            (
                &["--cors-origin", "https://a.example/path"],
                "--cors-origin",
            ),
            (&["--graph-url", "ftp://x"], "--graph-url"),
            (&["--admin-token", "EAAsystem"], "--admin-token"),
            (&["--admin-token", "has space"], "--admin-token"),
            (&["--app-id", "abc"], "--app-id"),
            (&["--www", "/definitely/not/here"], "--www"),
            (&["--upstream-timeout-ms", "0"], "--upstream-timeout-ms"),
            (&["--register-max-attempts", "0"], "--register-max-attempts"),
            (
                &["--register-max-attempts", "11"],
                "--register-max-attempts",
            ),
            (&["--credit-currency", "usd"], "--credit-currency"),
            (&["--credit-line-id", "x1"], "--credit-line-id"),
            (&["--system-user-id", "12x"], "--system-user-id"),
            (
                &["--override-callback-uri", "https://partner.example/hook"],
                "--override-callback-uri",
            ),
            (
                &[
                    "--override-callback-uri",
                    "http://partner.example/hook",
                    "--override-verify-token",
                    "has space",
                ],
                "--override",
            ),
            (&["--pipeline-interval-ms", "0"], "--pipeline-interval-ms"),
            (
                &["--discovery-grace-secs", "86401"],
                "--discovery-grace-secs",
            ),
        ];
        for (extra, setting) in cases {
            let e = Config::from_args(args(extra)).unwrap_err().to_string();
            assert!(
                e.starts_with("invalid configuration: ") && e.contains(setting),
                "{e}"
            );
            assert!(!e.contains("has space") && !e.contains("EAAsystem"), "{e}");
        }
        let mut a = args(&[]);
        a.system_user_token = None;
        assert!(
            Config::from_args(a)
                .unwrap_err()
                .to_string()
                .contains("is required")
        );
        let mut a = args(&[]);
        a.business_id = "12a".into();
        assert!(
            Config::from_args(a)
                .unwrap_err()
                .to_string()
                .contains("--business-id")
        );
    }
}
