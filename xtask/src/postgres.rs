//! A throwaway PostgreSQL server for the proxy's store tests and multi-replica tests.
//!
//! [`Postgres::start`] runs Debian's own binaries (`/usr/lib/postgresql/<version>/bin`, the
//! newest version found; not the `pg_ctl` wrapper some machines have in `/usr/local/bin`) on a
//! fresh data directory under `target/pg/`, on a free loopback port, with password (SCRAM)
//! authentication over TCP and TLS under a certificate signed by a CA made for the run.
//! Tests log in as the superuser [`USER`] (password [`PASSWORD`]) to the database [`DATABASE`].
//! Dropping the [`Postgres`] stops the server and removes its directory; a watchdog process
//! does the same if xtask dies first (Ctrl-C, a kill), so no server outlives its run.
//!
//! `initdb` and the server refuse to run as root: as root, they run as Debian's `postgres`
//! system user (`runuser -u postgres -- ...`); otherwise as the current user. A cluster that
//! apt's postinst may have started on port 5432 is neither used nor touched.

use crate::run::{Res, output};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The environment variable that gives the tests the server's URL.
pub const URL_VAR: &str = "WABA_TEST_POSTGRES_URL";
/// The environment variable that gives the tests the path of the CA certificate.
pub const CA_VAR: &str = "WABA_TEST_POSTGRES_CA";
/// The role the tests log in as (a superuser that may create databases).
pub const USER: &str = "waba";
/// [`USER`]'s password.
pub const PASSWORD: &str = "waba-test";
/// The database the URL names (owned by [`USER`]).
pub const DATABASE: &str = "waba";
/// Enough for three proxy replicas with pools of 20 connections each, plus the tests' own.
const MAX_CONNECTIONS: u32 = 200;
/// The system user that runs the server when xtask runs as root (Debian's package makes it).
const SYSTEM_USER: &str = "postgres";
/// The bootstrap superuser `initdb` creates (reached over the unix socket, no password).
const SUPERUSER: &str = "postgres";

/// A running PostgreSQL server made for one run; dropping it stops the server and removes
/// its files.
pub struct Postgres {
    /// `postgres://waba:waba-test@127.0.0.1:<port>/waba`.
    pub url: String,
    /// The CA certificate that signed the server's (whose names are IP 127.0.0.1 and DNS
    /// localhost), for `sslmode=verify-full`; readable by everyone.
    pub ca_file: PathBuf,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
    /// The run's directory: `data/` (the cluster, its log `data/server.log` and its unix
    /// socket) and `ca.crt`.
    pub dir: PathBuf,
    /// The server's version, as `postgres --version` says it.
    pub version: String,
    data: PathBuf,
    tools: Tools,
    server: Option<Child>,
    watchdog: Option<Child>,
    stopped: bool,
}

/// `with_postgres(f)`: starts a server, runs `f` with it, and stops it (also when `f` panics).
/// An error says the server could not start or stop.
pub fn with_postgres<T>(f: impl FnOnce(&Postgres) -> T) -> Result<T, String> {
    let pg = Postgres::start()?;
    let out = f(&pg);
    pg.stop()?;
    Ok(out)
}

/// `cargo xtask postgres`: starts a server, prints how to reach it, waits for Enter, Ctrl-C or
/// the end of stdin, and stops it.
pub fn command(args: &[String]) -> Res {
    if let Some(a) = args.first() {
        return Err(format!("`postgres` takes no options (got `{a}`)"));
    }
    crate::setup::postgres()?;
    let pg = Postgres::start()?;
    println!();
    println!("{} is running for the tests:", pg.version);
    println!("  {URL_VAR}={}", pg.url);
    println!("  {CA_VAR}={}", pg.ca_file.display());
    println!("the store tests against it:");
    println!(
        "  {URL_VAR}='{}' {CA_VAR}='{}' cargo test -p waba-proxy",
        pg.url,
        pg.ca_file.display()
    );
    println!("psql over TLS, checking the certificate:");
    println!(
        "  PGSSLMODE=verify-full PGSSLROOTCERT='{}' psql '{}'",
        pg.ca_file.display(),
        pg.url
    );
    println!("(server log: {})", pg.data.join("server.log").display());
    println!("Press Enter (or Ctrl-C) to stop it.");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    pg.stop()
}

/// The bin directory of the newest PostgreSQL under `/usr/lib/postgresql/` (Debian's layout)
/// that has `initdb`, else `pg_config --bindir` if that has it.
pub fn bin_dir() -> Option<PathBuf> {
    let mut best: Option<(Vec<u32>, PathBuf)> = None;
    for entry in std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
    {
        let Ok(entry) = entry else { continue };
        let bin = entry.path().join("bin");
        if !bin.join("initdb").is_file() {
            continue;
        }
        let version: Vec<u32> = entry
            .file_name()
            .to_string_lossy()
            .split('.')
            .map(|p| p.parse().unwrap_or(0))
            .collect();
        if best.as_ref().is_none_or(|(v, _)| version > *v) {
            best = Some((version, bin));
        }
    }
    best.map(|(_, bin)| bin).or_else(|| {
        let bin = PathBuf::from(output("pg_config", &["--bindir"])?.trim());
        bin.join("initdb").is_file().then_some(bin)
    })
}

/// How to run PostgreSQL's programs: from which directory, as which user.
struct Tools {
    bin: PathBuf,
    /// Run them as [`SYSTEM_USER`] (xtask is root), with these uid and gid.
    as_postgres: Option<(u32, u32)>,
}

impl Tools {
    /// `tool` (from the bin directory) as the server's user, in `/`, with no `PG*` variables
    /// of the caller's that could redirect it.
    fn cmd(&self, tool: &str) -> Command {
        let mut c = self.as_server_user(self.bin.join(tool).as_os_str());
        clear_pg_env(&mut c);
        c
    }

    fn as_server_user(&self, program: &std::ffi::OsStr) -> Command {
        let mut c = if self.as_postgres.is_some() {
            let mut c = Command::new("runuser");
            c.args(["-u", SYSTEM_USER, "--"]).arg(program);
            c
        } else {
            Command::new(program)
        };
        c.current_dir("/").stdin(Stdio::null());
        c
    }

    /// Hands `path` to the server's user (nothing to do when xtask is not root).
    fn give(&self, path: &Path, mode: u32) -> Res {
        if let Some((uid, gid)) = self.as_postgres {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
                .map_err(|e| format!("cannot chown {}: {e}", path.display()))?;
        }
        set_mode(path, mode)
    }
}

fn clear_pg_env(c: &mut Command) {
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("PG") {
            c.env_remove(key);
        }
    }
}

fn set_mode(path: &Path, mode: u32) -> Res {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("cannot chmod {}: {e}", path.display()))
}

/// Runs `c` to completion, its output kept for the error.
fn quiet(mut c: Command, what: &str) -> Result<String, String> {
    let out = c
        .output()
        .map_err(|e| format!("{what}: cannot run {:?}: {e}", c.get_program()))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "{what} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

fn is_root() -> bool {
    output("id", &["-u"]).is_some_and(|o| o.trim() == "0")
}

fn system_user_ids() -> Result<(u32, u32), String> {
    let id =
        |flag: &str| output("id", &[flag, SYSTEM_USER]).and_then(|o| o.trim().parse::<u32>().ok());
    id("-u").zip(id("-g")).ok_or_else(|| {
        format!(
            "xtask runs as root, so PostgreSQL must run as the `{SYSTEM_USER}` system user, \
             which does not exist (Debian's `postgresql` package creates it)"
        )
    })
}

/// Stops the server and removes `dir` once its stdin closes, that is once xtask is gone,
/// however it went (the normal path stops the server first, leaving it nothing to do). In its
/// own process group, so the terminal's Ctrl-C does not reach it; and it ignores hangups.
const WATCHDOG: &str = r#"trap '' HUP INT
dir=$1 data=$2
shift 2
cat >/dev/null
if [ -f "$data/postmaster.pid" ]; then
  "$@" -D "$data" -m fast -w -t 60 stop || "$@" -D "$data" -m immediate -w -t 60 stop
fi
rm -rf "$dir"
"#;

/// Numbers the servers one xtask starts.
static COUNTER: AtomicU32 = AtomicU32::new(0);

impl Postgres {
    /// Creates, configures and starts a server on a free port, and checks that [`Self::url`]
    /// logs in over TLS with [`Self::ca_file`] verifying the server's name.
    pub fn start() -> Result<Postgres, String> {
        Self::start_inner().map_err(|e| format!("cannot start PostgreSQL for the tests: {e}"))
    }

    fn start_inner() -> Result<Postgres, String> {
        let started = Instant::now();
        let bin = bin_dir().ok_or(
            "initdb not found under /usr/lib/postgresql/*/bin: `cargo xtask setup` installs \
             Debian's `postgresql` (or `sudo apt-get install postgresql`)",
        )?;
        let tools = Tools {
            bin,
            as_postgres: if is_root() {
                Some(system_user_ids()?)
            } else {
                None
            },
        };
        let mut postgres = Command::new(tools.bin.join("postgres"));
        postgres.arg("--version");
        let version = quiet(postgres, "postgres --version")
            .map(|v| v.trim().replace("postgres (PostgreSQL)", "PostgreSQL"))
            .unwrap_or_else(|_| "PostgreSQL".into());
        let dir = make_dir(&tools)?;
        let mut pg = Postgres {
            url: String::new(),
            ca_file: dir.join("ca.crt"),
            port: 0,
            data: dir.join("data"),
            dir,
            version,
            tools,
            server: None,
            watchdog: None,
            stopped: false,
        };
        // From here on, dropping `pg` (an error below) stops whatever was started.
        pg.watchdog = Some(pg.spawn_watchdog()?);
        pg.init()?;
        pg.certificates()?;
        pg.configure()?;
        pg.launch()?;
        pg.create_role()?;
        pg.check_login()?;
        println!(
            "postgres: {} ready on 127.0.0.1:{} in {:.1} s (data: {})",
            pg.version,
            pg.port,
            started.elapsed().as_secs_f64(),
            pg.data.display()
        );
        Ok(pg)
    }

    /// Sets [`URL_VAR`] and [`CA_VAR`] for `c`.
    pub fn set_env(&self, c: &mut Command) {
        c.env(URL_VAR, &self.url).env(CA_VAR, &self.ca_file);
    }

    /// Stops the server and removes its files, saying what failed.
    pub fn stop(mut self) -> Res {
        self.shutdown()
    }

    fn spawn_watchdog(&self) -> Result<Child, String> {
        let mut c = Command::new("sh");
        c.arg("-c")
            .arg(WATCHDOG)
            .arg("xtask-postgres-watchdog")
            .arg(&self.dir)
            .arg(&self.data);
        if self.tools.as_postgres.is_some() {
            c.args(["runuser", "-u", SYSTEM_USER, "--"]);
        }
        c.arg(self.tools.bin.join("pg_ctl"))
            .current_dir("/")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0);
        clear_pg_env(&mut c);
        c.spawn()
            .map_err(|e| format!("cannot start the watchdog (sh): {e}"))
    }

    fn init(&self) -> Res {
        let mut initdb = self.tools.cmd("initdb");
        initdb
            .arg("-D")
            .arg(&self.data)
            .args(["-U", SUPERUSER, "-E", "UTF8", "--no-locale", "--no-sync"])
            .args(["--auth-host=scram-sha-256", "--auth-local=trust"]);
        quiet(initdb, "initdb").map(drop)
    }

    /// A CA and a server certificate signed by it (names: IP 127.0.0.1, DNS localhost), made
    /// with the `openssl` CLI from a config of our own (not the system's).
    fn certificates(&self) -> Res {
        let dir = &self.dir;
        let conf = dir.join("openssl.cnf");
        std::fs::write(&conf, OPENSSL_CONF).map_err(|e| format!("{}: {e}", conf.display()))?;
        let serial = format!(
            "0x{:x}",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos())
                .unwrap_or(1)
        );
        let openssl = |args: &[&str]| {
            let mut c = Command::new("openssl");
            c.args(args)
                .current_dir(dir)
                .env("OPENSSL_CONF", &conf)
                .stdin(Stdio::null());
            quiet(c, "openssl").map_err(|e| {
                format!("{e} (`cargo xtask setup` installs Debian's `openssl` when missing)")
            })
        };
        let new_key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"];
        openssl(
            &[
                &["req", "-config", "openssl.cnf", "-x509", "-nodes"],
                &new_key[..],
                &["-keyout", "ca.key", "-out", "ca.crt", "-days", "30"],
            ]
            .concat(),
        )?;
        openssl(
            &[
                &["req", "-config", "openssl.cnf", "-new", "-nodes"],
                &new_key[..],
                &["-keyout", "server.key", "-out", "server.csr"],
                &["-subj", "/CN=localhost"],
            ]
            .concat(),
        )?;
        openssl(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-set_serial",
            &serial,
            "-days",
            "30",
            "-extfile",
            "openssl.cnf",
            "-extensions",
            "server_ext",
            "-out",
            "server.crt",
        ])?;
        for (name, mode) in [("server.key", 0o600), ("server.crt", 0o644)] {
            let to = self.data.join(name);
            std::fs::rename(dir.join(name), &to)
                .map_err(|e| format!("cannot move {name} to {}: {e}", to.display()))?;
            self.tools.give(&to, mode)?;
        }
        set_mode(&self.ca_file, 0o644)?;
        for leftover in ["ca.key", "server.csr", "openssl.cnf"] {
            let _ = std::fs::remove_file(dir.join(leftover));
        }
        Ok(())
    }

    /// Settings for tests: loopback only, the socket in the data directory, durability off,
    /// TLS on.
    fn configure(&self) -> Res {
        let quoted = |p: &Path| format!("'{}'", p.display().to_string().replace('\'', "''"));
        let settings = format!(
            "\n# cargo xtask: a throwaway server for the tests\n\
             listen_addresses = '127.0.0.1'\n\
             unix_socket_directories = {}\n\
             max_connections = {MAX_CONNECTIONS}\n\
             fsync = off\n\
             synchronous_commit = off\n\
             full_page_writes = off\n\
             ssl = on\n\
             ssl_cert_file = 'server.crt'\n\
             ssl_key_file = 'server.key'\n",
            quoted(&self.data)
        );
        let conf = self.data.join("postgresql.conf");
        let mut text =
            std::fs::read_to_string(&conf).map_err(|e| format!("{}: {e}", conf.display()))?;
        text.push_str(&settings);
        std::fs::write(&conf, text).map_err(|e| format!("{}: {e}", conf.display()))
    }

    /// Starts the server as a child of xtask (so xtask reaps it: no zombie is left where the
    /// init process does not reap orphans) in its own process group (so the terminal's Ctrl-C
    /// leaves its stopping to the watchdog, which also removes its files), and waits until it
    /// accepts connections; another free port if the one picked was taken in between.
    fn launch(&mut self) -> Res {
        let log = self.data.join("server.log");
        for attempt in 1..=3 {
            let port = crate::demo::free_port()?;
            let log_file = std::fs::File::create(&log)
                .and_then(|f| Ok((f.try_clone()?, f)))
                .map_err(|e| format!("{}: {e}", log.display()))?;
            self.tools.give(&log, 0o600)?;
            let mut c = self.tools.cmd("postgres");
            c.arg("-D")
                .arg(&self.data)
                .args(["-p", &port.to_string()])
                .stdout(log_file.0)
                .stderr(log_file.1)
                .process_group(0);
            let server = c
                .spawn()
                .map_err(|e| format!("cannot run {:?}: {e}", c.get_program()))?;
            self.server = Some(server);
            match self.wait_ready(port) {
                Ok(()) => {
                    self.port = port;
                    self.url = format!("postgres://{USER}:{PASSWORD}@127.0.0.1:{port}/{DATABASE}");
                    return Ok(());
                }
                Err(e) => {
                    let text = std::fs::read_to_string(&log).unwrap_or_default();
                    let exited = self
                        .server
                        .as_mut()
                        .is_some_and(|s| s.try_wait().is_ok_and(|status| status.is_some()));
                    if exited && attempt < 3 && text.contains("could not bind") {
                        self.server = None;
                        continue;
                    }
                    let tail: Vec<&str> = text.lines().rev().take(20).collect();
                    let tail: Vec<&str> = tail.into_iter().rev().collect();
                    return Err(format!(
                        "{e}\nthe server's log ({}):\n{}",
                        log.display(),
                        tail.join("\n")
                    ));
                }
            }
        }
        Err("no free port".into())
    }

    /// Polls `pg_isready` on the unix socket until the server accepts connections (or exits,
    /// or 60 s pass).
    fn wait_ready(&mut self, port: u16) -> Res {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(server) = &mut self.server
                && let Ok(Some(status)) = server.try_wait()
            {
                return Err(format!("the server exited ({status})"));
            }
            let mut ready = Command::new(self.tools.bin.join("pg_isready"));
            clear_pg_env(&mut ready);
            ready
                .arg("-q")
                .arg("-h")
                .arg(&self.data)
                .args(["-p", &port.to_string(), "-t", "5"])
                .stdin(Stdio::null());
            if ready.status().is_ok_and(|s| s.success()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                return Err("the server did not accept connections within 60 s".into());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn create_role(&self) -> Res {
        let mut psql = self.tools.cmd("psql");
        psql.args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.data)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                SUPERUSER,
                "-d",
                "postgres",
            ])
            .args([
                "-c",
                &format!("CREATE ROLE {USER} LOGIN SUPERUSER CREATEDB PASSWORD '{PASSWORD}'"),
                "-c",
                &format!("CREATE DATABASE {DATABASE} OWNER {USER}"),
            ]);
        quiet(psql, "psql (creating the tests' role and database)").map(drop)
    }

    /// Logs in with [`Self::url`] over TCP, as the tests will, with TLS verifying the server.
    fn check_login(&self) -> Res {
        let mut psql = Command::new(self.tools.bin.join("psql"));
        clear_pg_env(&mut psql);
        psql.args(["-X", "-A", "-t", "-d", &self.url, "-c"])
            .arg("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .env("PGSSLMODE", "verify-full")
            .env("PGSSLROOTCERT", &self.ca_file)
            .env("PGCONNECT_TIMEOUT", "10")
            .current_dir("/")
            .stdin(Stdio::null());
        let out = quiet(psql, "psql (logging in over TLS with the tests' URL)")?;
        if out.trim() == "t" {
            Ok(())
        } else {
            Err(format!(
                "the tests' connection is not over TLS (psql: {out:?})"
            ))
        }
    }

    /// Stops the server (fast shutdown, waiting for it to end), removes the run's directory,
    /// and lets the watchdog go. Does nothing the second time.
    fn shutdown(&mut self) -> Res {
        if std::mem::replace(&mut self.stopped, true) {
            return Ok(());
        }
        let started = Instant::now();
        let mut errors = Vec::new();
        if self.data.join("postmaster.pid").exists() {
            let stop = |mode: &str| {
                let mut c = self.tools.cmd("pg_ctl");
                c.arg("-D")
                    .arg(&self.data)
                    .args(["-m", mode, "-w", "-t", "60", "stop"]);
                quiet(c, "pg_ctl stop")
            };
            if let Err(e) = stop("fast") {
                errors.push(e);
                if let Err(e) = stop("immediate") {
                    errors.push(e);
                }
            }
        }
        if let Some(mut server) = self.server.take() {
            // Stopped above: reaps it (or `runuser`, which reaps it), killing what hangs on.
            let deadline = Instant::now() + Duration::from_secs(10);
            while matches!(server.try_wait(), Ok(None)) {
                if Instant::now() > deadline {
                    errors.push("the server did not exit: killed".to_owned());
                    let _ = server.kill();
                    let _ = server.wait();
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        if let Err(e) = std::fs::remove_dir_all(&self.dir)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            errors.push(format!("cannot remove {}: {e}", self.dir.display()));
        }
        if let Some(mut watchdog) = self.watchdog.take() {
            drop(watchdog.stdin.take());
            let _ = watchdog.wait();
        }
        if errors.is_empty() {
            if self.port != 0 {
                println!(
                    "postgres: stopped and removed in {:.1} s",
                    started.elapsed().as_secs_f64()
                );
            }
            Ok(())
        } else {
            let e = format!("stopping PostgreSQL: {}", errors.join("; "));
            eprintln!("xtask: {e}");
            Err(e)
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

/// The config of the certificates: a CA, and a server certificate for 127.0.0.1 and localhost
/// that TLS clients (libpq, rustls's webpki) accept.
const OPENSSL_CONF: &str = "\
[req]
distinguished_name = dn
prompt = no
x509_extensions = ca_ext

[dn]
CN = waba-onboard test CA

[ca_ext]
basicConstraints = critical,CA:TRUE
keyUsage = critical,keyCertSign,cRLSign
subjectKeyIdentifier = hash

[server_ext]
subjectAltName = IP:127.0.0.1,DNS:localhost
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
";

/// Makes the run's directory (with `data/` handed to the server's user) under `target/pg/`,
/// after removing what runs whose xtask is gone left there. Falls back to the system's temp
/// directory when the server's user cannot reach `target/pg/` (a parent directory without
/// `o+x`: xtask does not change permissions above the folder it makes) or when the unix
/// socket's path would be too long there.
fn make_dir(tools: &Tools) -> Result<PathBuf, String> {
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let pid = std::process::id();
    let target = crate::project_root().join("target/pg");
    remove_stale(&target, tools);
    let mut why = String::new();
    for (base, name) in [
        (target, format!("{pid}-{n}")),
        (std::env::temp_dir(), format!("waba-onboard-pg-{pid}-{n}")),
    ] {
        match try_dir(&base, &name, tools) {
            Ok(dir) => {
                if !why.is_empty() {
                    println!("postgres: {why}; using {} instead", dir.display());
                }
                return Ok(dir);
            }
            Err(e) => {
                if why.is_empty() {
                    why = e;
                } else {
                    return Err(format!("{why}; {e}"));
                }
            }
        }
    }
    Err(why)
}

fn try_dir(base: &Path, name: &str, tools: &Tools) -> Result<PathBuf, String> {
    let is_ours = !base.exists();
    std::fs::create_dir_all(base).map_err(|e| format!("cannot create {}: {e}", base.display()))?;
    if is_ours {
        set_mode(base, 0o755)?;
    }
    let dir = base.join(name);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::create_dir(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let data = dir.join("data");
    let checked = (|| {
        set_mode(&dir, 0o755)?;
        std::fs::create_dir(&data).map_err(|e| format!("cannot create {}: {e}", data.display()))?;
        tools.give(&data, 0o700)?;
        // The socket's path (`<data>/.s.PGSQL.<port>`) must fit in 107 bytes.
        if data.as_os_str().len() + "/.s.PGSQL.65535".len() > 107 {
            return Err(format!(
                "{} is too long a path for the server's unix socket",
                data.display()
            ));
        }
        if tools.as_postgres.is_some() {
            let mut test = tools.as_server_user("test".as_ref());
            test.arg("-w").arg(&data);
            if !test.status().is_ok_and(|s| s.success()) {
                return Err(format!(
                    "the `{SYSTEM_USER}` user cannot write to {} (a parent directory lacks o+x?)",
                    data.display()
                ));
            }
        }
        Ok(())
    })();
    match checked {
        Ok(()) => Ok(dir),
        Err(e) => {
            let _ = std::fs::remove_dir_all(&dir);
            Err(e)
        }
    }
}

/// Removes `target/pg/<pid>-<n>` directories whose xtask process is gone (stopping a server
/// still running there): only a killed watchdog leaves them.
fn remove_stale(target: &Path, tools: &Tools) {
    for entry in std::fs::read_dir(target).into_iter().flatten().flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name.split('-').next().and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let data = entry.path().join("data");
        if data.join("postmaster.pid").exists() {
            let mut c = tools.cmd("pg_ctl");
            c.arg("-D")
                .arg(&data)
                .args(["-m", "immediate", "-w", "-t", "60", "stop"]);
            let _ = quiet(c, "pg_ctl stop");
        }
        println!(
            "postgres: removing {} (left by an earlier run)",
            entry.path().display()
        );
        let _ = std::fs::remove_dir_all(entry.path());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Logs in with `url` over TLS checked against `ca`; the server's answer to `sql`.
    fn psql(pg: &Postgres, url: &str, sql: &str) -> Result<String, String> {
        let mut c = Command::new(pg.tools.bin.join("psql"));
        clear_pg_env(&mut c);
        c.args(["-X", "-A", "-t", "-w", "-d", url, "-c", sql])
            .env("PGSSLMODE", "verify-full")
            .env("PGSSLROOTCERT", &pg.ca_file)
            .stdin(Stdio::null());
        quiet(c, "psql").map(|out| out.trim().to_owned())
    }

    /// Runs under `cargo xtask test` (which sets [`URL_VAR`] once it has a server): a second
    /// server starts, checks passwords, and leaves neither process nor files behind.
    #[test]
    fn a_server_starts_checks_passwords_and_leaves_nothing() {
        if std::env::var_os(URL_VAR).is_none() {
            eprintln!("skipped: {URL_VAR} is unset (`cargo xtask test` sets it)");
            return;
        }
        let (dir, postmaster) = with_postgres(|pg| {
            assert!(pg.url.starts_with("postgres://waba:waba-test@127.0.0.1:"));
            let ssl = "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()";
            assert_eq!(psql(pg, &pg.url, ssl).as_deref(), Ok("t"));
            let by_name = pg.url.replace("127.0.0.1", "localhost");
            assert_eq!(
                psql(pg, &by_name, "SELECT current_user").as_deref(),
                Ok("waba")
            );
            let wrong = pg.url.replace(PASSWORD, "not-the-password");
            let refused = psql(pg, &wrong, "SELECT 1").expect_err("a wrong password logs in");
            assert!(
                refused.contains("password authentication failed"),
                "{refused}"
            );
            let pid = std::fs::read_to_string(pg.data.join("postmaster.pid"))
                .ok()
                .and_then(|t| t.lines().next().and_then(|l| l.trim().parse::<u32>().ok()));
            (
                pg.dir.clone(),
                pid.expect("postmaster.pid names the server"),
            )
        })
        .expect("the server starts and stops");
        assert!(!dir.exists(), "{} is left", dir.display());
        assert!(
            !Path::new(&format!("/proc/{postmaster}")).exists(),
            "the server (pid {postmaster}) is left"
        );
    }
}
