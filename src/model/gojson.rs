//! JSON as Go's `encoding/json` writes it (Prometheus's and Alertmanager's request bodies): struct fields in
//! declaration order (some left out when empty), map keys sorted, `<`, `>`, `&`, U+2028 and
//! U+2029 escaped, and the trailing newline `json.Encoder` adds.

use std::collections::BTreeMap;
use std::fmt::Write;

/// Go's string encoding with HTML escaping.
pub fn string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// A JSON object built field by field, in the order Go's struct declares them.
#[derive(Default)]
pub struct Object {
    buf: String,
}

impl Object {
    pub fn new() -> Self {
        Object { buf: String::from("{") }
    }

    fn key(&mut self, key: &str) {
        if self.buf.len() > 1 {
            self.buf.push(',');
        }
        self.buf.push_str(&string(key));
        self.buf.push(':');
    }

    /// A string field, always written.
    pub fn str(mut self, key: &str, value: &str) -> Self {
        self.key(key);
        self.buf.push_str(&string(value));
        self
    }

    /// A string field with `omitempty`.
    pub fn str_opt(self, key: &str, value: &str) -> Self {
        if value.is_empty() { self } else { self.str(key, value) }
    }

    /// A bool field with `omitempty`.
    pub fn true_opt(mut self, key: &str, value: bool) -> Self {
        if value {
            self.key(key);
            self.buf.push_str("true");
        }
        self
    }

    pub fn bool(mut self, key: &str, value: bool) -> Self {
        self.key(key);
        self.buf.push_str(if value { "true" } else { "false" });
        self
    }

    /// Already-encoded JSON.
    pub fn raw(mut self, key: &str, json: &str) -> Self {
        self.key(key);
        self.buf.push_str(json);
        self
    }

    /// A `map[string]string`, keys sorted; `omit_empty` leaves an empty map out.
    pub fn map(self, key: &str, map: &BTreeMap<String, String>, omit_empty: bool) -> Self {
        if omit_empty && map.is_empty() {
            return self;
        }
        let json = map_json(map);
        self.raw(key, &json)
    }

    /// A slice of encoded values with `omitempty`.
    pub fn array_opt(self, key: &str, items: &[String]) -> Self {
        if items.is_empty() {
            return self;
        }
        let json = format!("[{}]", items.join(","));
        self.raw(key, &json)
    }

    pub fn finish(mut self) -> String {
        self.buf.push('}');
        self.buf
    }
}

pub fn map_json(map: &BTreeMap<String, String>) -> String {
    let mut o = Object::new();
    for (k, v) in map {
        o = o.str(k, v);
    }
    o.finish()
}

pub fn string_array(items: &[String]) -> String {
    format!("[{}]", items.iter().map(|s| string(s)).collect::<Vec<_>>().join(","))
}

/// What `json.Encoder.Encode` writes: the value and a newline.
pub fn encoded(json: String) -> String {
    json + "\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strings_are_escaped_as_go_escapes_them() {
        assert_eq!(string("<a href=\"x\">&</a>\n"), r#""\u003ca href=\"x\"\u003e\u0026\u003c/a\u003e\n""#);
        assert_eq!(string("\u{1}\u{2028}é"), r#""\u0001\u2028é""#);
        let o = Object::new().str("b", "1").str_opt("skip", "").true_opt("no", false).str("a", "2").finish();
        assert_eq!(o, r#"{"b":"1","a":"2"}"#);
    }
}
