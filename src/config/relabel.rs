//! Relabel configurations as Prometheus writes them (model/relabel/relabel.go in 2.42): every
//! action, the same defaults, the fully-anchored regular expression, and the checks Prometheus
//! makes at load time. Applying them to a label set is the scrape engine's (`scrape::relabel`).

use regex::Regex;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    #[default]
    Replace,
    Keep,
    Drop,
    KeepEqual,
    DropEqual,
    HashMod,
    LabelMap,
    LabelDrop,
    LabelKeep,
    Lowercase,
    Uppercase,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Replace => "replace",
            Action::Keep => "keep",
            Action::Drop => "drop",
            Action::KeepEqual => "keepequal",
            Action::DropEqual => "dropequal",
            Action::HashMod => "hashmod",
            Action::LabelMap => "labelmap",
            Action::LabelDrop => "labeldrop",
            Action::LabelKeep => "labelkeep",
            Action::Lowercase => "lowercase",
            Action::Uppercase => "uppercase",
        }
    }
}

/// A regex as Prometheus configs write it: the config text is kept for display, matching
/// is always anchored at both ends.
#[derive(Debug, Clone)]
pub struct AnchoredRegex {
    pub source: String,
    pub regex: Regex,
}

impl AnchoredRegex {
    pub fn new(source: &str) -> Result<Self, regex::Error> {
        Ok(AnchoredRegex { source: source.to_string(), regex: Regex::new(&format!("^(?s:{source})$"))? })
    }
}

impl Default for AnchoredRegex {
    fn default() -> Self {
        AnchoredRegex::new("(.*)").unwrap_or_else(|_| unreachable!("default relabel regex compiles"))
    }
}

impl Serialize for AnchoredRegex {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.source)
    }
}

impl<'de> Deserialize<'de> for AnchoredRegex {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        AnchoredRegex::new(&s).map_err(|e| serde::de::Error::custom(format!("invalid regex {s:?}: {e}")))
    }
}

fn default_separator() -> String {
    ";".into()
}
fn default_replacement() -> String {
    "$1".into()
}

#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RelabelConfig {
    #[serde(default)]
    pub source_labels: Vec<String>,
    #[serde(default = "default_separator")]
    pub separator: String,
    #[serde(default)]
    pub regex: AnchoredRegex,
    #[serde(default)]
    pub modulus: u64,
    #[serde(default)]
    pub target_label: String,
    #[serde(default = "default_replacement")]
    pub replacement: String,
    #[serde(default)]
    pub action: Action,
}

impl RelabelConfig {
    /// The checks Prometheus 2.42 makes when it loads a relabel config, with its messages.
    pub fn validate(&self) -> Result<(), String> {
        use Action::*;
        let action = self.action.name();
        if self.action == HashMod && self.modulus == 0 {
            return Err("relabel configuration for hashmod requires non-zero modulus".into());
        }
        let needs_target =
            matches!(self.action, Replace | HashMod | Lowercase | Uppercase | KeepEqual | DropEqual);
        if needs_target && self.target_label.is_empty() {
            return Err(format!("relabel configuration for {action} action requires 'target_label' value"));
        }
        let checked_target = matches!(self.action, Lowercase | Uppercase | HashMod | KeepEqual | DropEqual)
            || self.action == Replace && !self.target_label.contains('$');
        if checked_target && !crate::model::labels::is_valid_label_name(&self.target_label) {
            return Err(format!("{:?} is invalid 'target_label' for {action} action", self.target_label));
        }
        let defaults = self.regex.source == "(.*)"
            && self.modulus == 0
            && self.separator == ";"
            && self.replacement == "$1";
        if matches!(self.action, KeepEqual | DropEqual) && !defaults {
            return Err(format!(
                "{action} action requires only 'source_labels' and `target_label`, and no other fields"
            ));
        }
        if matches!(self.action, LabelDrop | LabelKeep)
            && (!self.source_labels.is_empty()
                || !self.target_label.is_empty()
                || self.modulus != 0
                || self.separator != ";"
                || self.replacement != "$1")
        {
            return Err(format!("{action} action requires only 'regex', and no other fields"));
        }
        Ok(())
    }
}
