//! The email message (Alertmanager's `notify/email`): the configured headers (Subject, To and
//! From filled in from the templates), `Message-Id`, `Date`, and a multipart/alternative body
//! with a text part (when `text` is set) and an HTML part (when `html` is), each
//! quoted-printable as Go's `mime/quotedprintable` writes it.

use super::{Notification, NotifyError, Renderer};
use crate::config::alertmanager::receivers::Email;
use std::fmt::Write;

/// A message ready for SMTP.
pub struct Message {
    /// The envelope sender's address.
    pub from: String,
    /// The envelope recipients' addresses.
    pub to: Vec<String>,
    /// Headers and body, CRLF line ends.
    pub data: String,
}

pub fn render(e: &Email, _n: &Notification<'_>, r: &Renderer<'_>) -> Result<Message, NotifyError> {
    let to_text = r.text("to", &e.to)?;
    let to = parse_address_list(&to_text)
        .map_err(|m| NotifyError::Permanent(format!("parse 'to' addresses: {m}")))?;
    let from_text = r.text("from", &e.from)?;
    let from = match parse_address_list(&from_text) {
        Ok(list) if list.len() == 1 => list.into_iter().next().unwrap_or_default(),
        Ok(list) => {
            return Err(NotifyError::Permanent(format!(
                "must be exactly one 'from' address (got: {})",
                list.len()
            )));
        }
        Err(m) => return Err(NotifyError::Permanent(format!("parse 'from' addresses: {m}"))),
    };
    let mut data = String::new();
    for (name, text) in &e.headers {
        let value = r.text(&format!("header {name:?}"), text)?;
        let _ = write!(data, "{name}: {}\r\n", q_encode(&value));
    }
    if !e.headers.contains_key("Message-Id") {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let _ = write!(data, "Message-Id: <{nanos}.{}@{}>\r\n", fastrand::u64(..), hostname());
    }
    let _ = write!(data, "Date: {}\r\n", chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S +0000"));
    let boundary: String = (0..30).map(|_| format!("{:02x}", fastrand::u8(..))).collect();
    let _ = write!(data, "Content-Type: multipart/alternative;  boundary={boundary}\r\n");
    data.push_str("MIME-Version: 1.0\r\n\r\n");
    let mut parts = Vec::new();
    if !e.text.is_empty() {
        parts.push(("text/plain; charset=UTF-8", r.text("text", &e.text)?));
    }
    if !e.html.is_empty() {
        parts.push(("text/html; charset=UTF-8", r.html("html", &e.html)?));
    }
    for (i, (content_type, body)) in parts.iter().enumerate() {
        if i > 0 {
            data.push_str("\r\n");
        }
        let _ = write!(
            data,
            "--{boundary}\r\nContent-Transfer-Encoding: quoted-printable\r\nContent-Type: {content_type}\r\n\r\n"
        );
        data.push_str(&quoted_printable(body));
    }
    let _ = write!(data, "\r\n--{boundary}--\r\n");
    Ok(Message { from, to, data })
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .ok()
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_string())
}

/// The addresses of an RFC 5322 address list (`a@b, Name <c@d>, "Q, Name" <e@f>`): the part
/// in angle brackets when there is one.
pub fn parse_address_list(text: &str) -> Result<Vec<String>, String> {
    let mut items = Vec::new();
    let (mut current, mut quoted, mut angle) = (String::new(), false, false);
    for c in text.chars() {
        match c {
            '"' if !angle => quoted = !quoted,
            '<' if !quoted => angle = true,
            '>' if !quoted => angle = false,
            ',' if !quoted && !angle => {
                items.push(std::mem::take(&mut current));
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    items.push(current);
    let mut out = Vec::new();
    for item in items {
        let item = item.trim();
        if item.is_empty() {
            return Err(format!("mail: no address in {text:?}"));
        }
        let addr = match (item.rfind('<'), item.rfind('>')) {
            (Some(a), Some(b)) if a < b => item[a + 1..b].trim(),
            (None, None) => item,
            _ => return Err(format!("mail: unclosed angle-addr in {item:?}")),
        };
        match addr.split_once('@') {
            Some((local, domain))
                if !local.is_empty() && !domain.is_empty() && !addr.contains(char::is_whitespace) =>
            {
                out.push(addr.to_string())
            }
            _ => return Err(format!("mail: missing @ in addr-spec {addr:?}")),
        }
    }
    Ok(out)
}

/// `mime.QEncoding.Encode("utf-8", s)`: unchanged when printable ASCII, otherwise RFC 2047
/// encoded words of at most 75 characters.
pub fn q_encode(s: &str) -> String {
    if s.bytes().all(|b| (b' '..=b'~').contains(&b) || b == b'\t') {
        return s.to_string();
    }
    const PREFIX: &str = "=?utf-8?q?";
    const MAX_CONTENT: usize = 75 - PREFIX.len() - 2;
    let mut words = Vec::new();
    let mut word = String::new();
    for c in s.chars() {
        let mut enc = String::new();
        let mut buf = [0u8; 4];
        for &b in c.encode_utf8(&mut buf).as_bytes() {
            match b {
                b' ' => enc.push('_'),
                b'!'..=b'~' if b != b'=' && b != b'?' && b != b'_' => enc.push(b as char),
                _ => {
                    let _ = write!(enc, "={b:02X}");
                }
            }
        }
        if word.len() + enc.len() > MAX_CONTENT && !word.is_empty() {
            words.push(std::mem::take(&mut word));
        }
        word.push_str(&enc);
    }
    words.push(word);
    words.iter().map(|w| format!("{PREFIX}{w}?=")).collect::<Vec<_>>().join(" ")
}

/// Go's `mime/quotedprintable.Writer` (text mode): lines of at most 76 characters with `=`
/// soft breaks, line ends as CRLF, trailing spaces and tabs encoded.
pub fn quoted_printable(s: &str) -> String {
    const MAX: usize = 76;
    let mut out = String::with_capacity(s.len() + s.len() / 10);
    let mut line: Vec<u8> = Vec::with_capacity(MAX);
    let mut cr = false;
    fn soft_break(out: &mut String, line: &mut Vec<u8>) {
        line.push(b'=');
        flush(out, line);
    }
    fn flush(out: &mut String, line: &mut Vec<u8>) {
        out.push_str(&String::from_utf8_lossy(line));
        out.push_str("\r\n");
        line.clear();
    }
    fn encode(out: &mut String, line: &mut Vec<u8>, b: u8) {
        if MAX - 1 - line.len() < 3 {
            soft_break(out, line);
        }
        line.extend_from_slice(format!("={b:02X}").as_bytes());
    }
    fn last_byte(out: &mut String, line: &mut Vec<u8>) {
        if let Some(&b) = line.last()
            && (b == b' ' || b == b'\t')
        {
            line.pop();
            encode(out, line, b);
        }
    }
    for &b in s.as_bytes() {
        if b == b'\n' || b == b'\r' {
            if cr && b == b'\n' {
                cr = false;
                continue;
            }
            cr = b == b'\r';
            last_byte(&mut out, &mut line);
            flush(&mut out, &mut line);
            continue;
        }
        cr = false;
        if (b'!'..=b'~').contains(&b) && b != b'=' || b == b' ' || b == b'\t' {
            if line.len() == MAX - 1 {
                soft_break(&mut out, &mut line);
            }
            line.push(b);
        } else {
            encode(&mut out, &mut line, b);
        }
    }
    last_byte(&mut out, &mut line);
    out.push_str(&String::from_utf8_lossy(&line));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quoted_printable_matches_gos_writer() {
        // Recorded from Alertmanager 0.25's text part.
        let text = "* Instance host1 down (host1:9100) <http://prom.example:9090/graph?g0.expr=up%3D%3D0>\nreceiver=all";
        assert_eq!(
            quoted_printable(text),
            "* Instance host1 down (host1:9100) <http://prom.example:9090/graph?g0.expr=\r\n=3Dup%3D%3D0>\r\nreceiver=3Dall"
        );
        assert_eq!(quoted_printable("a \nb\té"), "a=20\r\nb\t=C3=A9");
    }

    #[test]
    fn headers_and_addresses() {
        assert_eq!(q_encode("[FIRING:2] TestAlert"), "[FIRING:2] TestAlert");
        assert_eq!(q_encode("Jürgen <j@example.com>"), "=?utf-8?q?J=C3=BCrgen_<j@example.com>?=");
        assert_eq!(
            parse_address_list("ops@example.com, Second Person <second@example.com>, \"A, B\" <ab@x>")
                .unwrap(),
            vec!["ops@example.com", "second@example.com", "ab@x"]
        );
        assert!(parse_address_list("nobody").is_err());
        assert!(parse_address_list("").is_err());
    }
}
