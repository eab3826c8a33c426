//! `Secret`: the one type of every configured password, token, credential and private key
//! path. It serializes and debug-prints as Prometheus's `<secret>` and has no `Display`, so
//! `/api/v1/status/config`, a `{:?}` in a log line or an error message cannot show the value;
//! the code that needs the value asks for it by name (`expose`).
//!
//! `tests::every_secret_named_field_is_a_secret` walks the whole config schema (obsd's TOML and
//! the Prometheus YAML) and fails on a field named like a secret that is a plain string.

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};
use std::fmt;

/// What a secret shows as: Prometheus's `config.Secret` marshals to this.
pub const REDACTED: &str = "<secret>";

/// The name `Secret` deserializes as a newtype under, so a schema walk can tell it from a
/// plain string.
pub const SERDE_NAME: &str = "obsd::config::Secret";

#[derive(Clone, Default, PartialEq, Eq, Hash)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value itself, for the one place that uses it (an auth header, a file to open).
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_newtype_struct(SERDE_NAME, SecretVisitor)
    }
}

struct SecretVisitor;

/// serde's default for a value of the wrong type quotes the value in the error
/// (`invalid type: integer `1234`, expected …`); a secret's error says only what was wrong.
fn wrong_type<E: de::Error>(kind: &str) -> E {
    E::custom(format!("invalid type: {kind}, expected a string (value not shown: it is a secret)"))
}

impl<'de> Visitor<'de> for SecretVisitor {
    type Value = Secret;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Secret, D::Error> {
        d.deserialize_string(SecretVisitor)
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Secret, E> {
        Ok(Secret(v.to_string()))
    }

    fn visit_string<E: de::Error>(self, v: String) -> Result<Secret, E> {
        Ok(Secret(v))
    }

    fn visit_bool<E: de::Error>(self, _: bool) -> Result<Secret, E> {
        Err(wrong_type("boolean"))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Secret, E> {
        Err(wrong_type("integer"))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Secret, E> {
        Err(wrong_type("integer"))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Secret, E> {
        Err(wrong_type("float"))
    }

    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Secret, E> {
        Err(wrong_type("bytes"))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Secret, E> {
        Err(wrong_type("null"))
    }

    fn visit_none<E: de::Error>(self) -> Result<Secret, E> {
        Err(wrong_type("null"))
    }

    fn visit_seq<A: de::SeqAccess<'de>>(self, _: A) -> Result<Secret, A::Error> {
        Err(wrong_type("sequence"))
    }

    fn visit_map<A: de::MapAccess<'de>>(self, _: A) -> Result<Secret, A::Error> {
        Err(wrong_type("map"))
    }
}

/// Whether a config key names something secret: a `_`-separated word of it is one of these.
/// `password_file`, `credentials_file` and `bearer_token_file` match too, though their paths
/// are shown, as Prometheus shows them.
pub fn is_secret_name(key: &str) -> bool {
    key.to_ascii_lowercase().split(|c: char| !c.is_ascii_alphanumeric()).any(|word| {
        matches!(
            word,
            "password" | "passwd" | "secret" | "token" | "credentials" | "auth" | "authorization" | "key"
        )
    })
}

/// A URL as it may be shown (a metric label, `check-config`): a password in its user info is
/// replaced by `xxxxx`, as Go's `url.URL.Redacted` (which Prometheus uses) does.
pub fn redacted_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_string() };
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let Some((userinfo, host)) = authority.rsplit_once('@') else { return url.to_string() };
    match userinfo.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:xxxxx@{host}{path}"),
        None => url.to_string(),
    }
}

/// A config error about a secret-named key, with every quoted value in it replaced: serde's
/// messages quote what they got (`invalid type: string "hunter2", expected struct BasicAuth`),
/// and a password under the wrong key would be printed to the terminal and the journal.
pub fn redact_message(key: &str, message: &str) -> String {
    if !is_secret_name(key) {
        return message.to_string();
    }
    let mut out = String::with_capacity(message.len());
    let mut rest = message;
    while let Some(start) = rest.find(['"', '`']) {
        let quote = rest[start..].chars().next().unwrap_or('"');
        let Some(len) = quoted_len(&rest[start + 1..], quote) else { break };
        out.push_str(&rest[..start]);
        out.push_str(REDACTED);
        rest = &rest[start + 1 + len + 1..];
    }
    out.push_str(rest);
    out
}

/// Length of a quoted value up to (not including) its closing `quote`, skipping `\"` escapes.
fn quoted_len(text: &str, quote: char) -> Option<usize> {
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            '\\' if !escaped => escaped = true,
            c if c == quote && !escaped => return Some(i),
            _ => escaped = false,
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::prometheus::PrometheusFile;

    /// A file path beside a secret that Prometheus shows as it is (`password_file`,
    /// `bearer_token_file`); a private key's path (`key_file`) is not one of them.
    fn is_shown_path(key: &str) -> bool {
        key.ends_with("_file") && key != "key_file"
    }

    #[test]
    fn shows_as_prometheus_secret_everywhere_but_expose() {
        let s = Secret::new("hunter2");
        assert_eq!(format!("{s:?}"), "<secret>");
        assert_eq!(format!("{:?}", Some((String::from("admin"), s.clone()))), "Some((\"admin\", <secret>))");
        assert_eq!(serde_json::to_string(&s).unwrap(), "\"<secret>\"");
        assert_eq!(serde_norway::to_string(&s).unwrap().trim(), "<secret>");
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn reads_from_toml_yaml_and_json_strings_only() {
        #[derive(Deserialize)]
        struct T {
            p: Secret,
        }
        assert_eq!(toml::from_str::<T>("p = \"a\"").unwrap().p.expose(), "a");
        assert_eq!(serde_norway::from_str::<T>("p: b").unwrap().p.expose(), "b");
        assert_eq!(serde_json::from_str::<T>("{\"p\": \"c\"}").unwrap().p.expose(), "c");
        let spanned: toml::Spanned<Secret> =
            toml::from_str::<std::collections::BTreeMap<String, toml::Spanned<Secret>>>("p = \"d\"")
                .unwrap()
                .remove("p")
                .unwrap();
        assert_eq!(spanned.get_ref().expose(), "d");
        // What obsd prints of a TOML error is its message (the location is printed apart).
        for wrong in ["p = 982451653", "p = [\"982451653\"]", "p = { x = \"982451653\" }"] {
            let err = toml::from_str::<T>(wrong).err().expect("not a string").message().to_string();
            assert!(!err.contains("982451653") && err.contains("secret"), "{err}");
        }
        // A YAML plain scalar is a string when a string is wanted, as in Prometheus.
        assert_eq!(serde_norway::from_str::<T>("p: 982451653").unwrap().p.expose(), "982451653");
        let err = serde_norway::from_str::<T>("p: [982451653]").err().expect("not a string").to_string();
        assert!(!err.contains("982451653"), "{err}");
    }

    #[test]
    fn urls_lose_their_password() {
        assert_eq!(
            redacted_url("https://u:p%40ss@mimir:9009/push?x=a@b"),
            "https://u:xxxxx@mimir:9009/push?x=a@b"
        );
        assert_eq!(redacted_url("http://u@host/"), "http://u@host/");
        assert_eq!(redacted_url("http://host/p@q"), "http://host/p@q");
        assert_eq!(redacted_url("not a url"), "not a url");
    }

    #[test]
    fn secret_names_and_message_redaction() {
        for name in
            ["password", "bearer_token", "stats_auth", "basic_auth_users", "authorization", "key_file"]
        {
            assert!(is_secret_name(name), "{name}");
        }
        for name in ["max_header_bytes", "keep_alive", "cert_file", "monkey", "author"] {
            assert!(!is_secret_name(name), "{name}");
        }
        assert!(is_shown_path("password_file") && !is_shown_path("key_file") && !is_shown_path("password"));
        let m = "invalid type: string \"hun\\\"ter2\", expected struct BasicAuth or `x`";
        assert_eq!(
            redact_message("scrape_configs[0].basic_auth", m),
            "invalid type: string <secret>, expected struct BasicAuth or <secret>"
        );
        assert_eq!(redact_message("replica.lookback_delta", m), m);
        assert_eq!(redact_message("a.password", "unterminated \"quote"), "unterminated \"quote");
    }

    /// Leaves that may stay plain strings under a secret-named key: who, not how
    /// (`basic_auth.username`), the scheme (`authorization.type`), and shown file paths.
    fn may_be_plain(leaf: &str) -> bool {
        matches!(leaf, "username" | "type") || is_shown_path(leaf)
    }

    fn check_schema(what: &str, leaves: &[walk::Leaf]) {
        let mut unprotected = Vec::new();
        for leaf in leaves {
            let fields: Vec<&str> = leaf.fields().collect();
            let under_secret = fields.iter().any(|f| is_secret_name(f) && !is_shown_path(f));
            let name = fields.last().copied().unwrap_or("");
            if under_secret && !may_be_plain(name) && !leaf.secret {
                unprotected.push(leaf.path());
            }
        }
        assert!(
            unprotected.is_empty(),
            "{what}: these fields are named like secrets but are not `Secret`, so \
             /api/v1/status/config and Debug output would show them: {unprotected:?}"
        );
    }

    #[test]
    fn every_secret_named_field_is_a_secret() {
        let (_, toml_leaves) = walk::fill::<super::super::raw::RawConfig>();
        let (_, yaml_leaves) = walk::fill::<PrometheusFile>();
        // The walk reached the corners where secrets live, so passing is not vacuous.
        let secrets: Vec<String> =
            toml_leaves.iter().chain(&yaml_leaves).filter(|l| l.secret).map(|l| l.path()).collect();
        for expected in [
            "exporter.listen.basic_auth_users.{}",
            "exporter.listen.tls.key_file",
            "balancer.stats_auth[]",
            "balancer.frontends[].tls.key_file",
            "federation.remote_write[].basic_auth.password",
            "federation.remote_write[].bearer_token",
            "replica.scrape_configs[].basic_auth.password",
            "replica.scrape_configs[].authorization.credentials",
            "replica.scrape_configs[].bearer_token",
            "replica.scrape_configs[].tls_config.key_file",
            "scrape_configs[].basic_auth.password",
        ] {
            assert!(secrets.iter().any(|s| s == expected), "{expected} not found among {secrets:?}");
        }
        assert!(
            toml_leaves.len() > 150 && yaml_leaves.len() > 40,
            "{} {}",
            toml_leaves.len(),
            yaml_leaves.len()
        );
        check_schema("obsd TOML", &toml_leaves);
        check_schema("Prometheus YAML", &yaml_leaves);
    }

    #[test]
    fn a_fully_filled_config_shows_no_secret() {
        let (file, leaves) = walk::fill::<PrometheusFile>();
        let shown = crate::config::prometheus::status_yaml(&file);
        let debug = format!("{file:?}");
        let mut plain_shown = 0;
        for leaf in &leaves {
            if leaf.secret {
                assert!(!shown.contains(&leaf.value), "{} leaked into status: {shown}", leaf.path());
                assert!(!debug.contains(&leaf.value), "{} leaked into Debug: {debug}", leaf.path());
            } else if shown.contains(&leaf.value) {
                plain_shown += 1;
            }
        }
        assert!(shown.contains("<secret>") && plain_shown > 20, "{shown}");
        let (raw, leaves) = walk::fill::<super::super::raw::RawConfig>();
        let debug = format!("{raw:?}");
        for leaf in leaves.iter().filter(|l| l.secret) {
            assert!(!debug.contains(&leaf.value), "{} leaked into Debug", leaf.path());
        }
    }

    /// A serde `Deserializer` that builds a value of any config type with every field present:
    /// each string a unique marker, each map and list one entry, each `Option` `Some`. It
    /// records where every string went and whether it was a `Secret`. A string a custom
    /// parser refuses (a duration, a size) is retried with ordinary values.
    mod walk {
        use serde::de::value::{BorrowedStrDeserializer, StringDeserializer};
        use serde::de::{self, DeserializeOwned, DeserializeSeed, IntoDeserializer, Visitor};
        use std::cell::RefCell;
        use std::collections::HashMap;
        use std::fmt;

        #[derive(Debug)]
        pub struct Leaf {
            pub segments: Vec<String>,
            pub secret: bool,
            pub value: String,
        }

        impl Leaf {
            pub fn path(&self) -> String {
                let mut out = String::new();
                for s in &self.segments {
                    if !(out.is_empty() || s.starts_with('[') || s.starts_with('{')) {
                        out.push('.');
                    }
                    if s == "{}" {
                        out.push('.');
                    }
                    out.push_str(s);
                }
                out
            }

            /// The struct field names on the way to this leaf (map keys and list indexes left
            /// out).
            pub fn fields(&self) -> impl Iterator<Item = &str> {
                self.segments.iter().map(String::as_str).filter(|s| *s != "[]" && *s != "{}")
            }
        }

        #[derive(Debug)]
        pub struct Error(String);

        impl fmt::Display for Error {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl std::error::Error for Error {}

        impl de::Error for Error {
            fn custom<T: fmt::Display>(msg: T) -> Self {
                Error(msg.to_string())
            }
        }

        /// What a string that its parser refused is tried as next, in order.
        const FALLBACKS: [&str; 4] = ["1s", "1", "", "127.0.0.1:1"];
        const SPANNED: &str = "$__serde_spanned_private_Spanned";

        #[derive(Default)]
        struct State {
            leaves: RefCell<Vec<Leaf>>,
            fallback: RefCell<HashMap<String, usize>>,
            last_string: RefCell<String>,
        }

        impl State {
            fn string(&self, segments: &[String], secret: bool) -> String {
                let key = segments.join("/");
                *self.last_string.borrow_mut() = key.clone();
                let n = self.leaves.borrow().len();
                let value = match self.fallback.borrow().get(&key) {
                    Some(&i) => FALLBACKS[i].to_string(),
                    None => format!("mk{n:04}q"),
                };
                self.leaves.borrow_mut().push(Leaf {
                    segments: segments.to_vec(),
                    secret,
                    value: value.clone(),
                });
                value
            }
        }

        pub fn fill<T: DeserializeOwned>() -> (T, Vec<Leaf>) {
            let state = State::default();
            for _ in 0..1000 {
                state.leaves.borrow_mut().clear();
                match T::deserialize(De { state: &state, path: Vec::new() }) {
                    Ok(v) => return (v, state.leaves.into_inner()),
                    Err(e) => {
                        let culprit = state.last_string.borrow().clone();
                        let mut fallback = state.fallback.borrow_mut();
                        let next = fallback.get(&culprit).map_or(0, |i| i + 1);
                        assert!(next < FALLBACKS.len(), "cannot fill {culprit}: {e}");
                        fallback.insert(culprit, next);
                    }
                }
            }
            panic!("the walk did not settle")
        }

        struct De<'a> {
            state: &'a State,
            path: Vec<String>,
        }

        impl<'a> De<'a> {
            fn at(&self, segment: &str) -> De<'a> {
                let mut path = self.path.clone();
                path.push(segment.to_string());
                De { state: self.state, path }
            }
        }

        impl<'de> de::Deserializer<'de> for De<'_> {
            type Error = Error;

            fn deserialize_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
                // toml::Value and serde_norway::Value: a string is one of their shapes.
                let s = self.state.string(&self.path, false);
                v.visit_string(s)
            }

            fn deserialize_bool<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
                v.visit_bool(true)
            }

            fn deserialize_i64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
                v.visit_i64(1)
            }

            fn deserialize_u64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
                v.visit_u64(1)
            }

            fn deserialize_f64<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
                v.visit_f64(1.0)
            }

            fn deserialize_str<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
                let s = self.state.string(&self.path, false);
                v.visit_string(s)
            }

            fn deserialize_string<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
                self.deserialize_str(v)
            }

            fn deserialize_option<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
                v.visit_some(self)
            }

            fn deserialize_newtype_struct<V: Visitor<'de>>(
                self,
                name: &'static str,
                v: V,
            ) -> Result<V::Value, Error> {
                if name == super::SERDE_NAME {
                    let s = self.state.string(&self.path, true);
                    let inner: StringDeserializer<Error> = s.into_deserializer();
                    return v.visit_newtype_struct(inner);
                }
                v.visit_newtype_struct(self)
            }

            fn deserialize_seq<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
                v.visit_seq(Seq { items: vec![self.at("[]")] })
            }

            fn deserialize_tuple<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value, Error> {
                v.visit_seq(Seq { items: (0..len).map(|i| self.at(&format!("[{i}]"))).rev().collect() })
            }

            fn deserialize_tuple_struct<V: Visitor<'de>>(
                self,
                _: &'static str,
                len: usize,
                v: V,
            ) -> Result<V::Value, Error> {
                self.deserialize_tuple(len, v)
            }

            fn deserialize_map<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
                let value = self.at("{}");
                v.visit_map(Fields { entries: vec![("mapkey", value)] })
            }

            fn deserialize_struct<V: Visitor<'de>>(
                self,
                name: &'static str,
                fields: &'static [&'static str],
                v: V,
            ) -> Result<V::Value, Error> {
                // toml's Spanned is a struct of start, end and the value: the value keeps the
                // field's path.
                let entries = if name == SPANNED {
                    fields.iter().map(|f| (*f, De { state: self.state, path: self.path.clone() })).collect()
                } else {
                    fields.iter().map(|f| (*f, self.at(f))).collect()
                };
                let mut entries: Vec<_> = entries;
                entries.reverse();
                v.visit_map(Fields { entries })
            }

            fn deserialize_enum<V: Visitor<'de>>(
                self,
                _: &'static str,
                variants: &'static [&'static str],
                v: V,
            ) -> Result<V::Value, Error> {
                v.visit_enum(Enum { variant: variants.first().copied().unwrap_or(""), de: self })
            }

            fn deserialize_identifier<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
                v.visit_str("identifier")
            }

            fn deserialize_ignored_any<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
                v.visit_unit()
            }

            fn deserialize_i32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
                v.visit_i64(1)
            }

            fn deserialize_u32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
                v.visit_u64(1)
            }

            fn deserialize_u16<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
                v.visit_u64(1)
            }

            fn deserialize_f32<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
                v.visit_f64(1.0)
            }

            fn deserialize_unit<V: Visitor<'de>>(self, v: V) -> Result<V::Value, Error> {
                v.visit_unit()
            }

            serde::forward_to_deserialize_any! {
                i8 i16 i128 u8 u128 char bytes byte_buf unit_struct
            }
        }

        struct Seq<'a> {
            /// In reverse order: `pop` takes the next.
            items: Vec<De<'a>>,
        }

        impl<'de> de::SeqAccess<'de> for Seq<'_> {
            type Error = Error;

            fn next_element_seed<T: DeserializeSeed<'de>>(
                &mut self,
                seed: T,
            ) -> Result<Option<T::Value>, Error> {
                self.items.pop().map(|de| seed.deserialize(de)).transpose()
            }
        }

        struct Fields<'a> {
            /// In reverse order: `pop` takes the next.
            entries: Vec<(&'static str, De<'a>)>,
        }

        impl<'de> de::MapAccess<'de> for Fields<'_> {
            type Error = Error;

            fn next_key_seed<K: DeserializeSeed<'de>>(&mut self, seed: K) -> Result<Option<K::Value>, Error> {
                match self.entries.last() {
                    Some((key, _)) => seed.deserialize(BorrowedStrDeserializer::<Error>::new(key)).map(Some),
                    None => Ok(None),
                }
            }

            fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
                match self.entries.pop() {
                    Some((_, de)) => seed.deserialize(de),
                    None => Err(de::Error::custom("value without a key")),
                }
            }
        }

        struct Enum<'a> {
            variant: &'static str,
            de: De<'a>,
        }

        impl<'de, 'a> de::EnumAccess<'de> for Enum<'a> {
            type Error = Error;
            type Variant = De<'a>;

            fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, De<'a>), Error> {
                let value = seed.deserialize(BorrowedStrDeserializer::<Error>::new(self.variant))?;
                Ok((value, self.de))
            }
        }

        impl<'de> de::VariantAccess<'de> for De<'_> {
            type Error = Error;

            fn unit_variant(self) -> Result<(), Error> {
                Ok(())
            }

            fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, seed: T) -> Result<T::Value, Error> {
                seed.deserialize(self)
            }

            fn tuple_variant<V: Visitor<'de>>(self, len: usize, v: V) -> Result<V::Value, Error> {
                de::Deserializer::deserialize_tuple(self, len, v)
            }

            fn struct_variant<V: Visitor<'de>>(
                self,
                fields: &'static [&'static str],
                v: V,
            ) -> Result<V::Value, Error> {
                de::Deserializer::deserialize_struct(self, "", fields, v)
            }
        }
    }
}
