//! Outbound TLS as Prometheus's `tls_config` sets it up, for scrapes and Alertmanager alike.
//!
//! TLS is configured on rustls directly so every `tls_config` field means what it means in
//! Go's `tls.Config`: `ca_file` replaces the built-in roots (Mozilla's, as webpki-roots ships
//! them), `server_name` is the name the certificate must be valid for, whatever the address,
//! `insecure_skip_verify` accepts any certificate, `min_version` the oldest protocol, and
//! `cert_file`/`key_file` are the client certificate. One difference: with `server_name` the
//! TLS SNI still carries the address's host name (none for an IP address); only the
//! certificate check uses `server_name`.

use crate::config::prometheus_common::TlsConfig;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::WebPkiSupportedAlgorithms;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use std::io::BufReader;
use std::sync::Arc;

/// An HTTP client error with every cause after it (`error sending request: connection
/// refused`), as the targets page and the logs show it.
pub fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A `tls_config` that cannot be set up: the setting and why.
#[derive(Debug, Clone, thiserror::Error)]
#[error("tls_config.{setting}: {detail}")]
pub struct ClientTlsError {
    pub setting: &'static str,
    pub detail: String,
}

fn tls_error(setting: &'static str, detail: impl ToString) -> ClientTlsError {
    ClientTlsError { setting, detail: detail.to_string() }
}

/// The rustls client configuration `tls` asks for.
pub fn rustls_config(tls: &TlsConfig) -> Result<rustls::ClientConfig, ClientTlsError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let versions: &[&rustls::SupportedProtocolVersion] = match tls.min_version.as_deref() {
        None | Some("") | Some("TLS10") | Some("TLS11") | Some("TLS12") => rustls::DEFAULT_VERSIONS,
        Some("TLS13") => &[&rustls::version::TLS13],
        Some(other) => return Err(tls_error("min_version", format!("unknown TLS version {other:?}"))),
    };
    let verifier: Arc<dyn ServerCertVerifier> = if tls.insecure_skip_verify {
        Arc::new(AcceptAny { algorithms: provider.signature_verification_algorithms })
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match &tls.ca_file {
            Some(path) => {
                let file =
                    std::fs::File::open(path).map_err(|e| tls_error("ca_file", format!("{path}: {e}")))?;
                for cert in rustls_pemfile::certs(&mut BufReader::new(file)) {
                    let cert = cert.map_err(|e| tls_error("ca_file", format!("{path}: {e}")))?;
                    roots.add(cert).map_err(|e| tls_error("ca_file", format!("{path}: {e}")))?;
                }
                if roots.is_empty() {
                    return Err(tls_error("ca_file", format!("{path}: no certificate found")));
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        let webpki =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                .build()
                .map_err(|e| tls_error("ca_file", e))?;
        let name = match tls.server_name.as_deref().filter(|n| !n.is_empty()) {
            Some(n) => Some(
                ServerName::try_from(n.to_string())
                    .map_err(|e| tls_error("server_name", format!("{n:?}: {e}")))?,
            ),
            None => None,
        };
        Arc::new(NamedVerifier { inner: webpki, name })
    };
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(versions)
        .map_err(|e| tls_error("min_version", e))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert_path), Some(key_path)) => {
            let file = std::fs::File::open(cert_path)
                .map_err(|e| tls_error("cert_file", format!("{cert_path}: {e}")))?;
            let certs = rustls_pemfile::certs(&mut BufReader::new(file))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| tls_error("cert_file", format!("{cert_path}: {e}")))?;
            // The key's path is a secret: these errors name the setting only.
            let file = std::fs::File::open(key_path.expose()).map_err(|e| tls_error("key_file", e))?;
            let key = rustls_pemfile::private_key(&mut BufReader::new(file))
                .map_err(|e| tls_error("key_file", e))?
                .ok_or_else(|| tls_error("key_file", "no private key found"))?;
            builder.with_client_auth_cert(certs, key).map_err(|e| tls_error("cert_file", e))
        }
        (None, None) => Ok(builder.with_no_client_auth()),
        (Some(_), None) => Err(tls_error("key_file", "cert_file is set but key_file is not")),
        (None, Some(_)) => Err(tls_error("cert_file", "key_file is set but cert_file is not")),
    }
}

/// Web PKI verification against `server_name` when it is set, else against the address.
#[derive(Debug)]
struct NamedVerifier {
    inner: Arc<rustls::client::WebPkiServerVerifier>,
    name: Option<ServerName<'static>>,
}

impl ServerCertVerifier for NamedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let name = self.name.as_ref().unwrap_or(server_name);
        self.inner.verify_server_cert(end_entity, intermediates, name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// `insecure_skip_verify`: any certificate is accepted; the handshake signatures are still
/// checked, so the connection is at least with the holder of the certificate's key.
#[derive(Debug)]
struct AcceptAny {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
