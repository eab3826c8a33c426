//! The SMTP conversation Alertmanager 0.25 has with its smarthost (Go's `net/smtp` driven by
//! `notify/email`): implicit TLS on port 465, `EHLO` with `hello`, `STARTTLS` when
//! `require_tls` (and only then), authentication with the first mechanism the server lists
//! that the config has credentials for (CRAM-MD5, PLAIN, LOGIN), then one message.

use super::NotifyError;
use super::email::Message;
use crate::config::alertmanager::receivers::Email;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufStream};
use tokio::net::TcpStream;

/// How long one reply may take.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// A reply longer than this is not SMTP.
const MAX_REPLY_BYTES: usize = 64 * 1024;

fn smtp_err(m: impl Into<String>) -> NotifyError {
    NotifyError::Smtp(m.into())
}

pub async fn send(config: &Email, message: &Message) -> Result<(), NotifyError> {
    let (host, port) = config
        .smarthost
        .rsplit_once(':')
        .ok_or_else(|| NotifyError::Permanent(format!("invalid smarthost {:?}", config.smarthost)))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let tcp = TcpStream::connect((
        host,
        port.parse::<u16>().map_err(|e| NotifyError::Permanent(format!("smarthost port: {e}")))?,
    ))
    .await
    .map_err(|e| smtp_err(format!("establish connection to server: {e}")))?;
    if port == "465" {
        let tls = tls_connect(config, host, tcp).await?;
        let mut s = BufStream::new(tls);
        reply(&mut s, 220).await?;
        let ext = hello(&mut s, config).await?;
        return finish(&mut s, config, &ext, host, true, message).await;
    }
    let mut s = BufStream::new(tcp);
    reply(&mut s, 220).await?;
    let ext = hello(&mut s, config).await?;
    if config.require_tls {
        if !has_ext(&ext, "STARTTLS") {
            return Err(smtp_err(format!(
                "'require_tls' is true (default) but {:?} does not advertise the STARTTLS extension",
                config.smarthost
            )));
        }
        command(&mut s, "STARTTLS", 220).await?;
        let tls = tls_connect(config, host, s.into_inner()).await?;
        let mut s = BufStream::new(tls);
        let ext = hello(&mut s, config).await?;
        return finish(&mut s, config, &ext, host, true, message).await;
    }
    finish(&mut s, config, &ext, host, false, message).await
}

async fn tls_connect(
    config: &Email,
    host: &str,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, NotifyError> {
    let tls = crate::http::client_tls::rustls_config(&config.tls_config)
        .map_err(|e| NotifyError::Permanent(format!("parse TLS configuration: {e}")))?;
    let name =
        config.tls_config.server_name.clone().filter(|n| !n.is_empty()).unwrap_or_else(|| host.to_string());
    let server_name = rustls::pki_types::ServerName::try_from(name.clone())
        .map_err(|e| NotifyError::Permanent(format!("TLS server name {name:?}: {e}")))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(tls));
    tokio::time::timeout(REPLY_TIMEOUT, connector.connect(server_name, tcp))
        .await
        .map_err(|_| smtp_err("TLS handshake timed out"))?
        .map_err(|e| smtp_err(format!("TLS handshake: {e}")))
}

/// One reply: its code and its lines' texts.
async fn read_reply<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut BufStream<S>,
) -> Result<(u16, Vec<String>), NotifyError> {
    let mut lines = Vec::new();
    let mut total = 0;
    loop {
        let mut line = String::new();
        let n = tokio::time::timeout(REPLY_TIMEOUT, s.read_line(&mut line))
            .await
            .map_err(|_| smtp_err("the server did not reply in time"))?
            .map_err(|e| smtp_err(format!("read: {e}")))?;
        if n == 0 {
            return Err(smtp_err("the server closed the connection"));
        }
        total += n;
        if total > MAX_REPLY_BYTES {
            return Err(smtp_err("the server's reply is too long"));
        }
        let line = line.trim_end_matches(['\r', '\n']);
        let code = line
            .get(..3)
            .and_then(|c| c.parse::<u16>().ok())
            .ok_or_else(|| smtp_err(format!("malformed reply {line:?}")))?;
        let more = line.as_bytes().get(3) == Some(&b'-');
        lines.push(line.get(4..).unwrap_or("").to_string());
        if !more {
            return Ok((code, lines));
        }
    }
}

async fn reply<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut BufStream<S>,
    want: u16,
) -> Result<Vec<String>, NotifyError> {
    let (code, lines) = read_reply(s).await?;
    if code != want {
        return Err(smtp_err(format!("{code} {}", lines.join(" "))));
    }
    Ok(lines)
}

async fn write<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut BufStream<S>,
    data: &str,
) -> Result<(), NotifyError> {
    let io = async {
        s.write_all(data.as_bytes()).await?;
        s.flush().await
    };
    tokio::time::timeout(REPLY_TIMEOUT, io)
        .await
        .map_err(|_| smtp_err("write timed out"))?
        .map_err(|e| smtp_err(format!("write: {e}")))
}

async fn command<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut BufStream<S>,
    line: &str,
    want: u16,
) -> Result<Vec<String>, NotifyError> {
    if line.contains(['\r', '\n']) {
        return Err(NotifyError::Permanent("smtp: A line must not contain CR or LF".into()));
    }
    write(s, &format!("{line}\r\n")).await?;
    reply(s, want).await
}

/// `EHLO`, falling back to `HELO`; the extensions the server lists.
async fn hello<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut BufStream<S>,
    config: &Email,
) -> Result<Vec<String>, NotifyError> {
    match command(s, &format!("EHLO {}", config.hello), 250).await {
        Ok(lines) => Ok(lines.into_iter().skip(1).collect()),
        Err(_) => command(s, &format!("HELO {}", config.hello), 250).await.map(|_| Vec::new()),
    }
}

fn ext_args<'a>(ext: &'a [String], name: &str) -> Option<&'a str> {
    ext.iter().find_map(|l| {
        let (k, v) = l.split_once(' ').unwrap_or((l.as_str(), ""));
        k.eq_ignore_ascii_case(name).then_some(v)
    })
}

fn has_ext(ext: &[String], name: &str) -> bool {
    ext_args(ext, name).is_some()
}

fn hmac_md5(key: &[u8], message: &[u8]) -> [u8; 16] {
    use md5::{Digest, Md5};
    let mut block = [0u8; 64];
    if key.len() > 64 {
        block[..16].copy_from_slice(&Md5::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let mut inner = Md5::new();
    inner.update(block.map(|b| b ^ 0x36));
    inner.update(message);
    let mut outer = Md5::new();
    outer.update(block.map(|b| b ^ 0x5c));
    outer.update(inner.finalize());
    outer.finalize().into()
}

async fn authenticate<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut BufStream<S>,
    config: &Email,
    mechanisms: &str,
    host: &str,
    encrypted: bool,
) -> Result<(), NotifyError> {
    let password = match &config.auth_password {
        Some(p) => p.read(false).map_err(|e| smtp_err(format!("auth_password_file: {e}")))?,
        None => String::new(),
    };
    let mut refusal = None;
    for mechanism in mechanisms.split_whitespace() {
        match mechanism.to_ascii_uppercase().as_str() {
            "CRAM-MD5" => {
                let Some(secret) = &config.auth_secret else {
                    refusal.get_or_insert("missing secret for CRAM-MD5 auth mechanism");
                    continue;
                };
                let challenge = command(s, "AUTH CRAM-MD5", 334).await?;
                let challenge = B64
                    .decode(challenge.first().map(String::as_str).unwrap_or("").trim())
                    .map_err(|e| smtp_err(format!("CRAM-MD5 challenge: {e}")))?;
                let digest: String = hmac_md5(secret.expose().as_bytes(), &challenge)
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect();
                let answer = B64.encode(format!("{} {digest}", config.auth_username));
                command(s, &answer, 235).await?;
                return Ok(());
            }
            "PLAIN" => {
                if password.is_empty() {
                    refusal.get_or_insert("missing password for PLAIN auth mechanism");
                    continue;
                }
                // Go's PlainAuth refuses to send a password in the clear except to localhost.
                if !encrypted && !matches!(host, "localhost" | "127.0.0.1" | "::1") {
                    return Err(smtp_err("unencrypted connection"));
                }
                let token =
                    B64.encode(format!("{}\0{}\0{password}", config.auth_identity, config.auth_username));
                command(s, &format!("AUTH PLAIN {token}"), 235).await?;
                return Ok(());
            }
            "LOGIN" => {
                if password.is_empty() {
                    refusal.get_or_insert("missing password for LOGIN auth mechanism");
                    continue;
                }
                let prompt = command(s, "AUTH LOGIN", 334).await?;
                expect_prompt(&prompt, "username:")?;
                let prompt = command(s, &B64.encode(&config.auth_username), 334).await?;
                expect_prompt(&prompt, "password:")?;
                command(s, &B64.encode(&password), 235).await?;
                return Ok(());
            }
            _ => {}
        }
    }
    Err(smtp_err(
        refusal.map(str::to_string).unwrap_or_else(|| format!("unknown auth mechanism: {mechanisms}")),
    ))
}

/// Alertmanager's LOGIN accepts only the prompts `Username:` and `Password:`.
fn expect_prompt(lines: &[String], want: &str) -> Result<(), NotifyError> {
    let got = B64.decode(lines.first().map(String::as_str).unwrap_or("").trim()).unwrap_or_default();
    if String::from_utf8_lossy(&got).eq_ignore_ascii_case(want) {
        Ok(())
    } else {
        Err(smtp_err("LOGIN auth: unexpected server challenge"))
    }
}

async fn finish<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut BufStream<S>,
    config: &Email,
    ext: &[String],
    host: &str,
    encrypted: bool,
    message: &Message,
) -> Result<(), NotifyError> {
    if !config.auth_username.is_empty()
        && let Some(mechanisms) = ext_args(ext, "AUTH")
    {
        authenticate(s, config, mechanisms, host, encrypted).await?;
    }
    let mut mail = format!("MAIL FROM:<{}>", message.from);
    if has_ext(ext, "8BITMIME") {
        mail.push_str(" BODY=8BITMIME");
    }
    if has_ext(ext, "SMTPUTF8") {
        mail.push_str(" SMTPUTF8");
    }
    command(s, &mail, 250).await?;
    for to in &message.to {
        let (code, lines) = {
            write(s, &format!("RCPT TO:<{to}>\r\n")).await?;
            read_reply(s).await?
        };
        if code != 250 && code != 251 {
            return Err(smtp_err(format!("{code} {}", lines.join(" "))));
        }
    }
    command(s, "DATA", 354).await?;
    // Dot-stuffing: a line starting with "." gets another.
    let mut data = String::with_capacity(message.data.len() + 8);
    for (i, line) in message.data.split("\r\n").enumerate() {
        if i > 0 {
            data.push_str("\r\n");
        }
        if line.starts_with('.') {
            data.push('.');
        }
        data.push_str(line);
    }
    if !data.ends_with("\r\n") {
        data.push_str("\r\n");
    }
    data.push_str(".\r\n");
    write(s, &data).await?;
    reply(s, 250).await?;
    let _ = command(s, "QUIT", 221).await;
    Ok(())
}

#[cfg(test)]
mod tests {
    #[test]
    fn hmac_md5_matches_rfc_2202() {
        let digest = super::hmac_md5(b"Jefe", b"what do ya want for nothing?");
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex, "750c783e6ab0b503eaa86e310a5db738");
    }
}
