//! TLS on the listeners (rustls): a certificate chain and its private key, from PEM
//! files named in the config. HTTP/2 and HTTP/1.1 are offered by ALPN.

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::ServerConfig;

/// The PEM files of the listeners' certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    pub key: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("server.tls_cert {path:?}: {reason}")]
    Cert { path: PathBuf, reason: String },
    #[error("server.tls_key {path:?}: {reason}")]
    Key { path: PathBuf, reason: String },
}

fn cert_error(path: &Path, reason: impl ToString) -> TlsError {
    TlsError::Cert { path: path.to_path_buf(), reason: reason.to_string() }
}

/// Reads the files and builds the acceptor; each error names the setting, the file and
/// what is wrong with it.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, TlsError> {
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| cert_error(&files.cert, e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_error(&files.cert, e))?;
    if certs.is_empty() {
        return Err(cert_error(&files.cert, "holds no PEM certificate (-----BEGIN CERTIFICATE-----)"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| TlsError::Key { path: files.key.clone(), reason: format!("no usable PEM private key: {e}") })?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .and_then(|b| b.with_no_client_auth().with_single_cert(certs, key))
        .map_err(|e| TlsError::Key {
            path: files.key.clone(),
            reason: format!("does not fit the certificate in {}: {e}", files.cert.display()),
        })?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}
