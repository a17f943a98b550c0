//! `cargo xtask image`: the container image of `waba-proxy` (`deploy/container/Containerfile`),
//! built with Debian's podman on `FROM scratch` from a static `x86_64-unknown-linux-musl`
//! release binary, the site and Debian's CA bundle.
//!
//! `podman run` does not work on the project's machines (crun refuses their cgroup setup), so
//! [`test`] checks an image the other way round: it exports a container's filesystem and runs
//! the binary it holds inside that filesystem (`unshare --root`, as the image's user, in its
//! working directory, with its environment) against graph-sim.

use crate::project_root;
use crate::run::{Res, cargo, cmd, output, run};
use crate::setup::MUSL_TARGET;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Where `cargo xtask image` tags its image (`:<version>` and `:latest`).
pub const REPOSITORY: &str = "localhost/waba-proxy";
/// The Containerfile, relative to the project root.
const CONTAINERFILE: &str = "deploy/container/Containerfile";
/// The image's user and group (no name needed: scratch has no user database of its own).
const USER_ID: u32 = 65532;
/// The binary's path inside the image.
const BINARY: &str = "usr/local/bin/waba-proxy";
/// The site's path inside the image (`WABA_WWW`).
const SITE: &str = "srv/www";

/// `cargo xtask image`: installs what is missing, builds the image, tags it
/// `localhost/waba-proxy:<version>` and `:latest`, and prints its size. `--test` runs the
/// test step of `cargo xtask test` instead ([`test`]).
pub fn command(args: &[String]) -> Res {
    match args.first().map(String::as_str) {
        None => {}
        Some("--test") if args.len() == 1 => {
            crate::setup::all()?;
            return test();
        }
        Some(other) => return Err(format!("unknown image option `{other}`")),
    }
    crate::setup::all()?;
    let version = workspace_version()?;
    let tags = [
        format!("{REPOSITORY}:{version}"),
        format!("{REPOSITORY}:latest"),
    ];
    let previous = image_id(&tags[0]);
    let image = build(&tags)?;
    // A rebuild moves the tags: the image they left, if nothing else names it, goes.
    if let Some(old) = previous.filter(|old| *old != image.id) {
        let _ = Command::new("podman")
            .args(["image", "rm", &old])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    println!(
        "image {}: {} (podman image inspect), waba-proxy binary {}",
        tags.join(", "),
        megabytes(image.size),
        megabytes(image.binary_size)
    );
    println!(
        "save it with `podman save --format docker-archive -o waba-proxy.tar {}`, or push it \
         to a registry with `podman push`",
        tags[0]
    );
    Ok(())
}

/// A built image.
pub struct Built {
    /// The image id.
    pub id: String,
    /// Its size as `podman image inspect` reports it, in bytes.
    pub size: u64,
    /// The size of the binary in it, in bytes.
    pub binary_size: u64,
}

fn megabytes(bytes: u64) -> String {
    format!("{:.1} MB ({bytes} bytes)", bytes as f64 / 1_000_000.0)
}

/// The workspace's version (`[workspace.package] version`).
fn workspace_version() -> Result<String, String> {
    crate::setup::manifest_value("version = \"")
        .ok_or_else(|| "Cargo.toml has no `version = \"...\"`".into())
}

/// The id of the image named `image`, if there is one.
fn image_id(image: &str) -> Option<String> {
    output(
        "podman",
        &["image", "inspect", "--format", "{{.Id}}", image],
    )
    .map(|id| id.trim().to_owned())
    .filter(|id| !id.is_empty())
}

/// One field of `podman image inspect` (a Go template).
fn inspect(image: &str, template: &str) -> Result<String, String> {
    output("podman", &["image", "inspect", "--format", template, image])
        .ok_or_else(|| format!("`podman image inspect --format '{template}' {image}` failed"))
}

/// The static release binary for the image, stripped of its symbols.
fn build_binary() -> Result<PathBuf, String> {
    let mut build = cargo(&[
        "build",
        "--release",
        "-p",
        "waba-proxy",
        "--bin",
        "waba-proxy",
        "--target",
        MUSL_TARGET,
    ]);
    build.env("CARGO_PROFILE_RELEASE_STRIP", "symbols");
    run(build)?;
    Ok(project_root().join(format!("target/{MUSL_TARGET}/release/waba-proxy")))
}

fn write_file(path: &Path, content: &str) -> Res {
    std::fs::write(path, content).map_err(|e| format!("{}: {e}", path.display()))
}

fn make_dir(path: &Path) -> Res {
    std::fs::create_dir_all(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn set_mode(path: &Path, mode: u32) -> Res {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Prepares the build context of the Containerfile in `target/container/context/`.
fn prepare_context(binary: &Path) -> Result<PathBuf, String> {
    let context = project_root().join("target/container/context");
    if context.exists() {
        std::fs::remove_dir_all(&context).map_err(|e| format!("{}: {e}", context.display()))?;
    }
    let rootfs = context.join("rootfs");
    for dir in ["etc/ssl/certs", SITE, "tmp"] {
        make_dir(&rootfs.join(dir))?;
    }
    set_mode(&rootfs.join("tmp"), 0o1777)?;
    make_dir(&context.join("data"))?;
    set_mode(&context.join("data"), 0o750)?;
    std::fs::copy(
        project_root().join(CONTAINERFILE),
        context.join("Containerfile"),
    )
    .map_err(|e| format!("{CONTAINERFILE}: {e}"))?;
    std::fs::copy(binary, context.join("waba-proxy"))
        .map_err(|e| format!("{}: {e}", binary.display()))?;
    // The names a process list or a file listing shows for the image's ids.
    write_file(
        &rootfs.join("etc/passwd"),
        &format!(
            "root:x:0:0:root:/root:/sbin/nologin\n\
             waba:x:{USER_ID}:{USER_ID}:waba-proxy:/data:/sbin/nologin\n"
        ),
    )?;
    write_file(
        &rootfs.join("etc/group"),
        &format!("root:x:0:\nwaba:x:{USER_ID}:\n"),
    )?;
    // reqwest's TLS finds the roots at Debian's path (and SSL_CERT_FILE names it).
    let bundle = Path::new("/etc/ssl/certs/ca-certificates.crt");
    std::fs::copy(bundle, rootfs.join("etc/ssl/certs/ca-certificates.crt")).map_err(|e| {
        format!(
            "{}: {e} (Debian's ca-certificates package provides it)",
            bundle.display()
        )
    })?;
    crate::site::assemble(&rootfs.join(SITE))?;
    Ok(context)
}

/// A UTC time in RFC 3339 from seconds since the epoch (for the `created` label).
fn rfc3339(epoch: u64) -> String {
    let (days, secs) = (epoch / 86_400, epoch % 86_400);
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// Builds the binary, the site (the npm package when it is not built yet) and the image, with
/// `tags`. Its times are the last commit's, so the same sources give the same image.
pub fn build(tags: &[String]) -> Result<Built, String> {
    let binary = build_binary()?;
    if !crate::package::package_dir()
        .join("web/waba_onboard_bg.wasm")
        .exists()
    {
        crate::package::build()?;
    }
    let context = prepare_context(&binary)?;
    let git = |args: &[&str]| {
        let mut c = cmd("git", args);
        c.stderr(Stdio::null());
        c.output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    let epoch = git(&["log", "-1", "--format=%ct"])
        .and_then(|t| t.parse::<u64>().ok())
        .unwrap_or(0);
    let revision = match git(&["rev-parse", "HEAD"]) {
        Some(head)
            if git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty()) =>
        {
            format!("{head}-dirty")
        }
        Some(head) => head,
        None => "unknown".into(),
    };
    let mut podman = cmd("podman", &["build", "--format", "docker", "--layers=false"]);
    podman
        .args(["--timestamp", &epoch.to_string()])
        .args(["--build-arg", &format!("VERSION={}", workspace_version()?)])
        .args(["--build-arg", &format!("REVISION={revision}")])
        .args(["--build-arg", &format!("CREATED={}", rfc3339(epoch))])
        .arg("--file")
        .arg(context.join("Containerfile"));
    for tag in tags {
        podman.args(["--tag", tag]);
    }
    podman.arg(&context);
    run(podman)?;
    let first = tags.first().ok_or("no tag to build")?;
    let id = inspect(first, "{{.Id}}")?.trim().to_owned();
    let size = inspect(first, "{{.Size}}")?
        .trim()
        .parse()
        .map_err(|e| format!("image size: {e}"))?;
    let binary_size = std::fs::metadata(&binary)
        .map_err(|e| format!("{}: {e}", binary.display()))?
        .len();
    Ok(Built {
        id,
        size,
        binary_size,
    })
}

/// Removes what the test made in podman's storage, however the test ends.
struct PodmanLeftovers {
    container: Option<String>,
    image: String,
}

impl Drop for PodmanLeftovers {
    fn drop(&mut self) {
        let quiet = |args: &[&str]| {
            let _ = Command::new("podman")
                .args(args)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        };
        if let Some(name) = &self.container {
            quiet(&["rm", "--force", name]);
        }
        // Only the test's tag: an image `cargo xtask image` tagged as well stays.
        quiet(&["image", "rm", &self.image]);
    }
}

/// A process killed when the test ends, however it ends.
struct Running(Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// What the image's configuration says, as `podman image inspect` shows it.
struct ImageConfig {
    user: String,
    working_dir: String,
    entrypoint: Vec<String>,
    cmd: Vec<String>,
    env: Vec<(String, String)>,
}

fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(str::to_owned)
        .collect()
}

/// Reads the image's configuration and checks what the Containerfile promises: a numeric
/// non-root user, the exposed port, the health check, the labels.
fn check_config(image: &str) -> Result<ImageConfig, String> {
    let user = inspect(image, "{{.Config.User}}")?.trim().to_owned();
    let uid = user
        .split(':')
        .next()
        .and_then(|u| u.parse::<u32>().ok())
        .ok_or_else(|| format!("the image's user `{user}` is not numeric"))?;
    if uid == 0 {
        return Err("the image runs as root".into());
    }
    let ports = inspect(
        image,
        "{{range $p, $v := .Config.ExposedPorts}}{{println $p}}{{end}}",
    )?;
    if !lines(&ports).iter().any(|p| p == "8080/tcp") {
        return Err(format!("the image exposes {ports:?}, not 8080/tcp"));
    }
    let health = inspect(image, "{{json .HealthCheck}}")?;
    if !health.contains("--healthcheck") {
        return Err(format!(
            "the image's HEALTHCHECK is `{}` (built without --format docker?)",
            health.trim()
        ));
    }
    let labels = inspect(
        image,
        "{{range $k, $v := .Labels}}{{printf \"%s=%s\\n\" $k $v}}{{end}}",
    )?;
    for label in [
        "title",
        "description",
        "version",
        "revision",
        "created",
        "source",
        "licenses",
    ] {
        let key = format!("org.opencontainers.image.{label}=");
        if !lines(&labels)
            .iter()
            .any(|l| l.starts_with(&key) && l.len() > key.len())
        {
            return Err(format!("the image has no label {key}..."));
        }
    }
    let env = lines(&inspect(
        image,
        "{{range .Config.Env}}{{println .}}{{end}}",
    )?)
    .into_iter()
    .filter_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        Some((k.to_owned(), v.to_owned()))
    })
    .collect();
    Ok(ImageConfig {
        user,
        working_dir: inspect(image, "{{.Config.WorkingDir}}")?.trim().to_owned(),
        entrypoint: lines(&inspect(
            image,
            "{{range .Config.Entrypoint}}{{println .}}{{end}}",
        )?),
        cmd: lines(&inspect(
            image,
            "{{range .Config.Cmd}}{{println .}}{{end}}",
        )?),
        env,
    })
}

/// Whether an ELF file asks for a program interpreter (a dynamic loader): `PT_INTERP` among
/// its program headers. A static or static-pie binary has none.
fn has_interpreter(elf: &[u8]) -> Result<bool, String> {
    let field = |at: usize, len: usize| -> Result<u64, String> {
        let bytes = elf.get(at..at + len).ok_or("truncated ELF file")?;
        Ok(bytes
            .iter()
            .rev()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    };
    // 64-bit little-endian ELF only: the image is x86_64.
    if elf.get(..6) != Some(&[0x7f, b'E', b'L', b'F', 2, 1][..]) {
        return Err("not a 64-bit little-endian ELF file".into());
    }
    let table = usize::try_from(field(0x20, 8)?).map_err(|e| e.to_string())?;
    let size = usize::try_from(field(0x36, 2)?).map_err(|e| e.to_string())?;
    let count = usize::try_from(field(0x38, 2)?).map_err(|e| e.to_string())?;
    for i in 0..count {
        const PT_INTERP: u64 = 3;
        if field(table + i * size, 4)? == PT_INTERP {
            return Ok(true);
        }
    }
    Ok(false)
}

fn owner_and_mode(path: &Path) -> Result<(u32, u32), String> {
    use std::os::unix::fs::MetadataExt;
    let m = std::fs::symlink_metadata(path).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok((m.uid(), m.mode() & 0o7777))
}

/// Checks the exported filesystem: a static binary, the user's names, its data folder, the
/// site, the CA roots, a /tmp anyone may write.
fn check_filesystem(root: &Path) -> Res {
    let binary = root.join(BINARY);
    let elf = std::fs::read(&binary).map_err(|e| format!("{}: {e}", binary.display()))?;
    if has_interpreter(&elf)? {
        return Err(format!(
            "/{BINARY} is dynamically linked (it names a program interpreter)"
        ));
    }
    println!(
        "image: /{BINARY} is static ({} bytes, no program interpreter)",
        elf.len()
    );
    let passwd = std::fs::read_to_string(root.join("etc/passwd"))
        .map_err(|e| format!("/etc/passwd: {e}"))?;
    if !passwd.contains(&format!(":{USER_ID}:{USER_ID}:")) {
        return Err(format!("/etc/passwd names no user {USER_ID}"));
    }
    let (owner, mode) = owner_and_mode(&root.join("data"))?;
    if owner != USER_ID || mode & 0o700 != 0o700 {
        return Err(format!(
            "/data belongs to {owner} with mode {mode:o}, not to {USER_ID} with rwx"
        ));
    }
    let (_, tmp) = owner_and_mode(&root.join("tmp"))?;
    if tmp != 0o1777 {
        return Err(format!("/tmp has mode {tmp:o}, not 1777"));
    }
    for file in [
        "signup.html",
        "console.html",
        "console.js",
        "console-funnel.js",
        "config.js",
        "site.css",
        "pkg/waba-onboard-embed.js",
        "pkg/waba-onboard-signup.js",
        "pkg/waba-onboard.css",
        "pkg/web/waba_onboard.js",
        "pkg/web/waba_onboard_bg.wasm",
        "pkg/console/waba_onboard.js",
        "pkg/console/waba_onboard_bg.wasm",
    ] {
        let path = root.join(SITE).join(file);
        let (owner, _) = owner_and_mode(&path)?;
        if owner != 0 {
            return Err(format!(
                "/{SITE}/{file} belongs to {owner}: the site must not be writable by the user"
            ));
        }
    }
    let bundle = std::fs::read_to_string(root.join("etc/ssl/certs/ca-certificates.crt"))
        .map_err(|e| format!("/etc/ssl/certs/ca-certificates.crt: {e}"))?;
    let roots = bundle.matches("-----BEGIN CERTIFICATE-----").count();
    if roots < 10 {
        return Err(format!("the CA bundle holds only {roots} certificates"));
    }
    println!("image: user {USER_ID}, /data its own, site in /{SITE}, {roots} CA roots");
    Ok(())
}

/// One HTTP/1.1 GET on loopback: the status and the body (as text).
fn http_get(port: u16, path: &str, bearer: Option<&str>) -> Result<(u16, String), String> {
    let fail = |e: std::io::Error| format!("GET {path}: {e}");
    let mut stream = TcpStream::connect(("127.0.0.1", port)).map_err(fail)?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(fail)?;
    let auth = bearer
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n{auth}Connection: close\r\n\r\n"
    )
    .map_err(fail)?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).map_err(fail)?;
    let text = String::from_utf8_lossy(&answer);
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("GET {path}: no HTTP status in {:?}", text.lines().next()))?;
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

fn expect(port: u16, path: &str, bearer: Option<&str>, want_in_body: &str) -> Res {
    let (status, body) = http_get(port, path, bearer)?;
    if status != 200 || !body.contains(want_in_body) {
        let short: String = body.chars().take(300).collect();
        return Err(format!(
            "GET {path}: {status}, expected 200 with `{want_in_body}`: {short}"
        ));
    }
    println!("image: GET {path} -> 200");
    Ok(())
}

/// Runs `args` inside the exported root as the image would: its user, its working directory,
/// an environment made only of the image's and `env`.
fn in_image(
    root: &Path,
    config: &ImageConfig,
    args: &[String],
    env: &[(String, String)],
) -> Command {
    let (uid, gid) = config
        .user
        .split_once(':')
        .unwrap_or((&config.user, &config.user));
    let mut c = Command::new("unshare");
    c.arg(format!("--root={}", root.display()))
        .arg(format!(
            "--wd={}",
            if config.working_dir.is_empty() {
                "/"
            } else {
                &config.working_dir
            }
        ))
        .args(["--setuid", uid, "--setgid", gid])
        .args(args)
        .env_clear()
        .envs(config.env.iter().map(|(k, v)| (k, v)))
        .envs(env.iter().map(|(k, v)| (k, v)));
    c
}

/// The test step: builds the image, checks its configuration, exports a container's
/// filesystem, checks it, then runs the binary in it against graph-sim and proves it serves
/// (`/healthz`, `/readyz`, a Graph read, a page of the site, the image's health check).
pub fn test() -> Res {
    crate::setup::container()?;
    if output("id", &["-u"]).is_none_or(|id| id.trim() != "0") {
        return Err(
            "the container test runs the image's binary inside its exported filesystem \
             (unshare --root), which needs root"
                .into(),
        );
    }
    let pid = std::process::id();
    let tag = format!("{REPOSITORY}:test-{pid}");
    let mut leftovers = PodmanLeftovers {
        container: None,
        image: tag.clone(),
    };
    let image = build(std::slice::from_ref(&tag))?;
    println!(
        "image {tag}: {} (podman image inspect), binary {}",
        megabytes(image.size),
        megabytes(image.binary_size)
    );
    let config = check_config(&tag)?;

    let name = format!("waba-proxy-test-{pid}");
    run(cmd("podman", &["create", "--name", &name, &tag]))?;
    leftovers.container = Some(name.clone());
    let dir = project_root().join("target/container/test");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let root = dir.join("rootfs");
    make_dir(&root)?;
    let tar = dir.join("rootfs.tar");
    let mut export = cmd("podman", &["export", "--output"]);
    export.arg(&tar).arg(&name);
    run(export)?;
    let mut untar = cmd("tar", &["--extract", "--numeric-owner", "--file"]);
    untar.arg(&tar).arg("--directory").arg(&root);
    run(untar)?;
    let _ = std::fs::remove_file(&tar);
    drop(leftovers);
    check_filesystem(&root)?;

    // The secrets as Kubernetes mounts them: files of root's, readable by the pod's group.
    let secrets = root.join("run/secrets");
    make_dir(&secrets)?;
    let admin_token = "image-test-admin-token";
    for (file, value) in [
        ("system_user_token", crate::demo::DEMO_SYSTEM_USER_TOKEN),
        ("admin_token", admin_token),
    ] {
        let path = secrets.join(file);
        write_file(&path, value)?;
        std::os::unix::fs::chown(&path, Some(0), Some(USER_ID))
            .map_err(|e| format!("{}: {e}", path.display()))?;
        set_mode(&path, 0o440)?;
    }

    run(cargo(&[
        "build",
        "-p",
        "waba-testkit",
        "--bin",
        "graph-sim",
    ]))?;
    let ports = crate::demo::Ports::free()?;
    let _sim = Running(crate::demo::start_sim(ports)?);
    // What `podman run -e ...` would add. WABA_LISTEN moves from the image's 0.0.0.0:8080 to a
    // free loopback port: without a network namespace of its own, that stands in for `-p`.
    let listen = format!("127.0.0.1:{}", ports.proxy);
    let env: Vec<(String, String)> = [
        ("WABA_LISTEN", listen.as_str()),
        ("WABA_GRAPH_URL", &format!("http://127.0.0.1:{}", ports.sim)),
        ("WABA_BUSINESS_ID", crate::demo::DEMO_BUSINESS_ID),
        (
            "WABA_SYSTEM_USER_TOKEN_FILE",
            "/run/secrets/system_user_token",
        ),
        ("WABA_ADMIN_TOKEN_FILE", "/run/secrets/admin_token"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let entry: Vec<String> = config
        .entrypoint
        .iter()
        .chain(&config.cmd)
        .cloned()
        .collect();
    if entry.first().map(String::as_str) != Some(&format!("/{BINARY}")) {
        return Err(format!("the image's entrypoint is {entry:?}"));
    }
    let log_path = dir.join("waba-proxy.log");
    let log =
        std::fs::File::create(&log_path).map_err(|e| format!("{}: {e}", log_path.display()))?;
    let mut proxy = in_image(&root, &config, &entry, &env);
    proxy.stdout(Stdio::null()).stderr(log);
    println!(
        "$ unshare --root={} --wd={} --setuid/--setgid {} {} (the image's environment, plus {})",
        root.display(),
        config.working_dir,
        config.user,
        entry.join(" "),
        env.iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut proxy = Running(
        proxy
            .spawn()
            .map_err(|e| format!("cannot start waba-proxy in the image: {e}"))?,
    );
    let served = crate::demo::wait_listening(ports.proxy, &mut proxy.0, "waba-proxy (image)")
        .and_then(|()| serves(ports.proxy, admin_token))
        .and_then(|()| health_check(&root, &config, &env, true));
    if let Err(e) = served {
        let log = std::fs::read_to_string(&log_path).unwrap_or_default();
        let tail: Vec<&str> = log.lines().rev().take(20).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "{e}\nwaba-proxy's log ends with:\n{}",
            tail.join("\n")
        ));
    }
    let rss_kb = std::fs::read_to_string(format!("/proc/{}/status", proxy.0.id()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        });
    if let Some(kb) = rss_kb {
        println!(
            "image: waba-proxy's RSS after these requests: {:.1} MiB",
            kb as f64 / 1024.0
        );
    }
    let (owner, _) = owner_and_mode(&root.join("data/waba-onboard.db"))?;
    if owner != USER_ID {
        return Err(format!("/data/waba-onboard.db belongs to {owner}"));
    }
    println!("image: the database is /data/waba-onboard.db, the user's");
    drop(proxy);
    health_check(&root, &config, &env, false)?;
    println!("image: the health check fails once the proxy is gone");
    Ok(())
}

/// The proxy in the image serves: up, ready (Graph accepts its token), a Graph read, a page.
fn serves(port: u16, admin_token: &str) -> Res {
    expect(port, "/healthz", None, "ok")?;
    expect(port, "/readyz", None, "\"status\":\"ready\"")?;
    expect(
        port,
        "/graph/102289599326934?fields=id,name,account_review_status",
        Some(admin_token),
        "\"id\":\"102289599326934\"",
    )?;
    expect(port, "/signup.html", None, "config.js")
}

/// Runs the image's HEALTHCHECK command (`waba-proxy --healthcheck`) in the image and checks
/// its exit status.
fn health_check(root: &Path, config: &ImageConfig, env: &[(String, String)], up: bool) -> Res {
    let args = [format!("/{BINARY}"), "--healthcheck".to_owned()];
    let status = in_image(root, config, &args, env)
        .stderr(Stdio::null())
        .status()
        .map_err(|e| format!("cannot run the health check: {e}"))?;
    match (status.success(), up) {
        (true, true) => {
            println!("image: HEALTHCHECK (waba-proxy --healthcheck) -> healthy");
            Ok(())
        }
        (false, false) => Ok(()),
        (_, true) => Err(format!(
            "the health check failed ({status}) while the proxy serves"
        )),
        (_, false) => Err("the health check passed with no proxy running".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::{rfc3339, workspace_version};

    #[test]
    fn the_manifest_names_the_version_and_the_wasm_bindgen_pin() {
        let version = workspace_version().unwrap_or_default();
        assert!(version.split('.').count() == 3, "{version:?}");
        let pin = crate::setup::pinned_wasm_bindgen().unwrap_or_default();
        assert!(pin.starts_with("0.2."), "{pin:?}");
    }

    #[test]
    fn rfc3339_from_epoch() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_796_398_245), "2026-12-04T15:30:45Z");
    }
}
