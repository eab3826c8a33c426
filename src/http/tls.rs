use crate::config::TlsConfig;
use std::io::BufReader;
use std::sync::Arc;

pub fn acceptor(config: &TlsConfig) -> Result<tokio_rustls::TlsAcceptor, String> {
    acceptor_alpn(config, &[b"http/1.1"])
}

/// An acceptor offering `protocols` by ALPN, in preference order (the balancer offers `h2`).
pub fn acceptor_alpn(config: &TlsConfig, protocols: &[&[u8]]) -> Result<tokio_rustls::TlsAcceptor, String> {
    let open = |path: &std::path::Path| {
        std::fs::File::open(path).map(BufReader::new).map_err(|e| format!("{}: {e}", path.display()))
    };
    let certs = rustls_pemfile::certs(&mut open(&config.cert_file)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: bad certificate PEM: {e}", config.cert_file.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no certificate found", config.cert_file.display()));
    }
    // The key's path is shown nowhere (it is a `Secret`): these errors name the setting.
    let key_path = std::path::Path::new(config.key_file.expose());
    let key_file = std::fs::File::open(key_path).map(BufReader::new).map_err(|e| format!("key_file: {e}"))?;
    let key = rustls_pemfile::private_key(&mut { key_file })
        .map_err(|e| format!("key_file: bad key PEM: {e}"))?
        .ok_or_else(|| "key_file: no private key found".to_string())?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| format!("certificate and key do not match: {e}"))?;
    server.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
    Ok(tokio_rustls::TlsAcceptor::from(Arc::new(server)))
}
