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

/// The certificates `roots` names. The error names the file, never anything secret. The
/// system's store may be empty: whoever needs TLS decides whether that may start.
pub fn trusted(roots: Roots<'_>) -> Result<RootCertStore, String> {
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
        }
        Roots::Nothing => {}
    }
    Ok(store)
}

/// A client configuration trusting `store`.
pub fn client_config(store: RootCertStore) -> Result<rustls::ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(store)
        .with_no_client_auth())
}
