//! Where the proxy may send the partner's webhooks: the guard against server-side request
//! forgery (an endpoint URL aimed at the proxy's own network).
//!
//! Refused unless the operator allows private networks (`--outbound-allow-private-networks`):
//! loopback, private (RFC 1918, IPv6 unique local), link-local (cloud metadata services
//! live there), carrier-grade NAT, benchmarking, documentation, multicast, broadcast and
//! unspecified addresses, IPv4 inside IPv6 included. A URL naming such an address is refused
//! when the endpoint is saved and again before each attempt; a host name is resolved at each
//! attempt and only its allowed addresses are dialled, so a name that later resolves
//! inward (DNS rebinding) reaches nothing.

use futures_util::future::BoxFuture;
use hyper_util::client::legacy::connect::dns::Name;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::task::{Context, Poll};

/// The longest endpoint URL accepted.
pub const MAX_URL_BYTES: usize = 2048;

/// Why an endpoint URL is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    /// Not an absolute `http(s)://host/...` URL, or longer than [`MAX_URL_BYTES`].
    #[error("the endpoint URL must be an absolute http:// or https:// URL of at most 2048 bytes")]
    Malformed,
    /// `http://` while the operator requires `https://`.
    #[error("the endpoint URL must use https:// on this proxy")]
    NotHttps,
    /// A user name or password in the URL (they would be shown wherever the URL is).
    #[error("the endpoint URL must not carry a user name or password")]
    Credentials,
    /// A fragment (never sent) in the URL.
    #[error("the endpoint URL must not have a #fragment")]
    Fragment,
    /// A host the resolver would read as an IPv4 address written another way (`2130706433`,
    /// `0x7f.1`, `127.1`): ambiguous, so refused.
    #[error(
        "the endpoint URL's host looks like an IPv4 address: write it as four decimal numbers (a.b.c.d)"
    )]
    NumericHost,
    /// The host is a cloud metadata service: never, whatever the flags.
    #[error("the endpoint URL points at a cloud metadata service")]
    Metadata,
    /// The host is a loopback, private, link-local or otherwise internal address.
    #[error(
        "the endpoint URL points into a private, loopback or link-local network (the operator may allow it with --outbound-allow-private-networks)"
    )]
    Private,
}

/// What the guard allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Guard {
    /// Private networks are allowed (the operator's flag).
    pub allow_private: bool,
    /// Only `https://` endpoints.
    pub require_https: bool,
}

impl Guard {
    /// Checks `url` as far as it can without resolving its host; the parsed URI.
    pub fn check(&self, url: &str) -> Result<axum::http::Uri, UrlError> {
        if url.len() > MAX_URL_BYTES || url.bytes().any(|b| b <= b' ' || b == 0x7f) {
            return Err(UrlError::Malformed);
        }
        if url.contains('#') {
            return Err(UrlError::Fragment);
        }
        let uri: axum::http::Uri = url.parse().map_err(|_| UrlError::Malformed)?;
        match uri.scheme_str() {
            Some("https") => {}
            Some("http") if self.require_https => return Err(UrlError::NotHttps),
            Some("http") => {}
            _ => return Err(UrlError::Malformed),
        }
        let authority = uri.authority().ok_or(UrlError::Malformed)?;
        if authority.as_str().contains('@') {
            return Err(UrlError::Credentials);
        }
        let host = authority.host().trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty() {
            return Err(UrlError::Malformed);
        }
        let literal = host.trim_start_matches('[').trim_end_matches(']');
        match literal.parse::<IpAddr>() {
            Ok(ip) if metadata(ip) => return Err(UrlError::Metadata),
            Ok(ip) if !self.allow_private && blocked(ip) => return Err(UrlError::Private),
            Ok(_) => {}
            // As the WHATWG URL standard reads hosts: a last label that is a number makes
            // the host an IPv4 address, which getaddrinfo would read too (`127.1`).
            Err(_) if numeric(&host) => return Err(UrlError::NumericHost),
            Err(_) => {
                let local = host == "localhost" || host.ends_with(".localhost");
                if local && !self.allow_private {
                    return Err(UrlError::Private);
                }
            }
        }
        Ok(uri)
    }
}

/// Whether the last label of `host` is a number (decimal, or hex with `0x`).
fn numeric(host: &str) -> bool {
    let last = host.rsplit('.').next().unwrap_or_default();
    let digits = last.strip_prefix("0x").map_or((last, 10), |hex| (hex, 16));
    !last.is_empty() && digits.0.chars().all(|c| c.is_digit(digits.1))
}

/// Whether `ip` is a cloud metadata service (AWS, GCP, Azure, and AWS's IPv6 one), refused
/// even where private networks are allowed.
pub fn metadata(ip: IpAddr) -> bool {
    let v4 = match ip {
        IpAddr::V4(v4) => Some(v4),
        IpAddr::V6(v6) => v6.to_ipv4_mapped(),
    };
    v4 == Some(Ipv4Addr::new(169, 254, 169, 254))
        || ip == IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254))
}

/// Whether `ip` is one the guard refuses.
pub fn blocked(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => blocked_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped().or_else(|| compatible_v4(v6)) {
            Some(v4) => blocked_v4(v4),
            None => {
                v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_multicast()
                    || v6.is_unique_local()
                    || v6.is_unicast_link_local()
                    // Documentation (2001:db8::/32) and NAT64 (64:ff9b::/96, which reaches
                    // IPv4 addresses through a translator).
                    || matches!(v6.segments(), [0x2001, 0x0db8, ..])
                    || matches!(v6.segments(), [0x0064, 0xff9b, 0, 0, 0, 0, ..])
                    // Local-use NAT64 (64:ff9b:1::/48), 6to4 (2002::/16, an IPv4 address
                    // inside), deprecated site-local (fec0::/10).
                    || matches!(v6.segments(), [0x0064, 0xff9b, 0x0001, ..])
                    || v6.segments()[0] == 0x2002
                    || (v6.segments()[0] & 0xffc0) == 0xfec0
            }
        },
    }
}

/// The IPv4 address of a deprecated IPv4-compatible IPv6 address (`::a.b.c.d`).
fn compatible_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    (s[..6] == [0; 6] && (s[6] != 0 || s[7] > 1)).then(|| {
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        Ipv4Addr::new(a, b, c, d)
    })
}

fn blocked_v4(v4: Ipv4Addr) -> bool {
    let [a, b, ..] = v4.octets();
    v4.is_loopback()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_unspecified()
        || v4.is_broadcast()
        || v4.is_multicast()
        || v4.is_documentation()
        || a == 0
        // Carrier-grade NAT 100.64.0.0/10, IETF protocol assignments 192.0.0.0/24,
        // benchmarking 198.18.0.0/15, reserved 240/4.
        || (a == 100 && (64..128).contains(&b))
        || v4.octets()[..3] == [192, 0, 0]
        || (a == 198 && (b == 18 || b == 19))
        || a >= 240
}

/// A resolver that dials only addresses the guard allows.
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    /// Private networks are allowed.
    pub allow_private: bool,
}

impl tower::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = std::io::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let allow = self.allow_private;
        Box::pin(async move {
            let found: Vec<SocketAddr> = tokio::net::lookup_host((name.as_str(), 0))
                .await?
                .filter(|a| !metadata(a.ip()) && (allow || !blocked(a.ip())))
                .collect();
            if found.is_empty() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    "the endpoint's host has no address outside private networks",
                ));
            }
            Ok(found.into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STRICT: Guard = Guard {
        allow_private: false,
        require_https: false,
    };

    #[test]
    fn internal_addresses_are_refused() {
        for url in [
            "http://127.0.0.1/hook",
            "http://127.1.2.3:8080/",
            "http://10.0.0.5/",
            "http://172.16.9.1/",
            "http://192.168.1.1/",
            "http://169.254.170.2/",
            "http://100.64.0.1/",
            "http://0.0.0.0/",
            "http://[::1]/",
            "http://[::]/",
            "http://[fe80::1]/",
            "http://[fd00::1]/",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:169.254.170.2]/",
            "http://[64:ff9b::a9fe:a9fe]/",
            "http://localhost:9000/",
            "http://api.localhost/",
            "http://255.255.255.255/",
            "http://224.0.0.1/",
            "http://192.0.0.8/",
            "http://[2002:7f00:1::]/",
            "http://[64:ff9b:1::a00:1]/",
            "http://[fec0::1]/",
            "http://LOCALHOST./",
        ] {
            assert_eq!(STRICT.check(url).err(), Some(UrlError::Private), "{url}");
        }
    }

    #[test]
    fn public_hosts_pass_and_the_flag_allows_private_ones() {
        for url in [
            "https://hooks.example.com/waba",
            "http://93.184.216.34/x?y=1",
            "https://[2606:4700::1111]/",
        ] {
            assert!(STRICT.check(url).is_ok(), "{url}");
        }
        let open = Guard {
            allow_private: true,
            require_https: false,
        };
        assert!(open.check("http://127.0.0.1:9/").is_ok());
        assert!(open.check("http://localhost/").is_ok());
        for url in [
            "http://169.254.169.254/latest/meta-data/",
            "http://[::ffff:169.254.169.254]/",
            "http://[fd00:ec2::254]/",
        ] {
            assert_eq!(open.check(url).err(), Some(UrlError::Metadata), "{url}");
        }
    }

    #[test]
    fn hosts_the_resolver_would_read_as_ipv4_are_refused() {
        for url in [
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://127.1/",
            "http://0/",
            "http://hooks.example.0x10/",
        ] {
            assert_eq!(
                STRICT.check(url).err(),
                Some(UrlError::NumericHost),
                "{url}"
            );
        }
        assert!(STRICT.check("http://hooks.example.com/").is_ok());
        assert!(STRICT.check("http://x0x.example/").is_ok());
    }

    #[test]
    fn malformed_urls_are_refused_with_their_reason() {
        assert_eq!(STRICT.check("ftp://x/").err(), Some(UrlError::Malformed));
        assert_eq!(STRICT.check("/relative").err(), Some(UrlError::Malformed));
        assert_eq!(
            STRICT.check("https://a b.example/").err(),
            Some(UrlError::Malformed)
        );
        assert_eq!(
            STRICT.check("https://user:pw@example.com/").err(),
            Some(UrlError::Credentials)
        );
        assert_eq!(
            STRICT.check("https://example.com/#x").err(),
            Some(UrlError::Fragment)
        );
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_BYTES));
        assert_eq!(STRICT.check(&long).err(), Some(UrlError::Malformed));
        let https = Guard {
            allow_private: false,
            require_https: true,
        };
        assert_eq!(
            https.check("http://example.com/").err(),
            Some(UrlError::NotHttps)
        );
    }

    #[tokio::test]
    async fn the_resolver_drops_private_addresses() {
        use tower::Service as _;
        let name: Name = "localhost".parse().expect("a name");
        let refused = GuardedResolver {
            allow_private: false,
        }
        .call(name.clone())
        .await;
        assert_eq!(
            refused.err().map(|e| e.kind()),
            Some(std::io::ErrorKind::PermissionDenied)
        );
        let allowed = GuardedResolver {
            allow_private: true,
        }
        .call(name)
        .await
        .expect("localhost resolves");
        assert!(allowed.into_iter().all(|a| a.ip().is_loopback()));
    }
}
