//! Optional HTTPS (`--features tls`): a rustls acceptor from PEM files. Without the
//! feature, asking for TLS is a start-up error, never a silent plain-HTTP listener.

use crate::config::HttpConfig;

#[cfg(feature = "tls")]
pub type Acceptor = tokio_rustls::TlsAcceptor;

/// Stand-in so the server loop has one shape with and without the feature; it is never
/// constructed without it.
#[cfg(not(feature = "tls"))]
#[derive(Clone)]
pub enum Acceptor {}

#[cfg(not(feature = "tls"))]
impl Acceptor {
    pub async fn accept(
        &self,
        _stream: tokio::net::TcpStream,
    ) -> std::io::Result<tokio::net::TcpStream> {
        match *self {}
    }
}

#[cfg(not(feature = "tls"))]
pub fn acceptor(cfg: &HttpConfig) -> Result<Option<Acceptor>, String> {
    if cfg.tls_cert.is_some() {
        return Err("this ipv6wgm was built without TLS support (cargo feature `tls`)".into());
    }
    Ok(None)
}

#[cfg(feature = "tls")]
pub fn acceptor(cfg: &HttpConfig) -> Result<Option<Acceptor>, String> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let (Some(cert), Some(key)) = (&cfg.tls_cert, &cfg.tls_key) else {
        return Ok(None);
    };
    let certs = CertificateDer::pem_file_iter(cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", cert.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate found", cert.display()));
    }
    let key = PrivateKeyDer::from_pem_file(key).map_err(|e| format!("{}: {e}", key.display()))?;
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| format!("TLS configuration: {e}"))?;
    Ok(Some(tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(
        config,
    ))))
}
