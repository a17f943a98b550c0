//! TLS for the proxy's own connections (to Graph, to PostgreSQL): rustls with aws-lc-rs,
//! trusting the system's roots or one CA file's.

use rustls::RootCertStore;
use rustls_pki_types::pem::PemObject;
use std::path::Path;
use std::sync::Arc;

/// Which certificates a connection trusts.
pub enum Roots<'a> {
    /// The system's (read when the configuration is made).
    System,
    /// Those in one PEM file.
    File(&'a Path),
    /// None: for a client that only speaks plain HTTP.
    Nothing,
}

/// A client configuration trusting `roots`. The error names the file, never anything secret.
pub fn client_config(roots: Roots<'_>) -> Result<rustls::ClientConfig, String> {
    let mut store = RootCertStore::empty();
    match roots {
        Roots::File(path) => {
            let unusable = |e: &dyn std::fmt::Display| format!("{}: {e}", path.display());
            let pem = std::fs::read(path).map_err(|e| unusable(&e))?;
            for cert in <rustls_pki_types::CertificateDer<'_> as PemObject>::pem_slice_iter(&pem) {
                store
                    .add(cert.map_err(|e| unusable(&e))?)
                    .map_err(|e| unusable(&e))?;
            }
        }
        Roots::System => {
            for cert in rustls_native_certs::load_native_certs().certs {
                // A system certificate rustls cannot read is not one to trust.
                let _ = store.add(cert);
            }
            // Every TLS connection would fail: say why at start-up instead.
            if store.is_empty() {
                return Err(
                    "no trusted certificate in the system's store: install the CA \
                    bundle (Debian's ca-certificates) or point SSL_CERT_FILE at one"
                        .into(),
                );
            }
        }
        Roots::Nothing => {}
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(store)
        .with_no_client_auth())
}
