//! The bounds a scrape holds a label block to while the parser reads it (`label_limit`,
//! `label_name_length_limit`, `label_value_length_limit`, the scrape deadline), with
//! Prometheus's error texts.

/// Limits a scraped label block is held to while it is read (0: none), so a line with a huge
/// label set fails at its first violation instead of after all of it is parsed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LabelLimits {
    /// Labels counting `__name__`, as Prometheus's `label_limit` counts them.
    pub count: usize,
    pub name_length: usize,
    pub value_length: usize,
}

impl LabelLimits {
    pub fn is_none(&self) -> bool {
        *self == LabelLimits::default()
    }
}

/// Prometheus's `label_limit` error (`verifyLabelLimits`).
pub fn label_limit_error(metric: &str, labels: usize, limit: usize) -> String {
    format!("label_limit exceeded (metric: {}, number of labels: {labels}, limit: {limit})", first_50(metric))
}

pub fn label_name_length_error(metric: &str, name: &str, limit: usize) -> String {
    format!(
        "label_name_length_limit exceeded (metric: {}, label name: {}, length: {}, limit: {limit})",
        first_50(metric),
        first_50(name),
        name.len()
    )
}

pub fn label_value_length_error(metric: &str, name: &str, value: &str, limit: usize) -> String {
    format!(
        "label_value_length_limit exceeded (metric: {}, label name: {}, value: {:?}, length: {}, limit: {limit})",
        first_50(metric),
        first_50(name),
        first_50(value),
        value.len()
    )
}

/// Go's `%.50s`: at most 50 characters.
fn first_50(text: &str) -> &str {
    text.char_indices().nth(50).map_or(text, |(i, _)| &text[..i])
}

/// What a scrape holds a label block to while it is read.
#[derive(Debug, Clone, Copy)]
pub struct LabelCheck<'m> {
    pub limits: LabelLimits,
    /// For the limit messages.
    pub metric: &'m str,
    pub deadline: Option<std::time::Instant>,
}
