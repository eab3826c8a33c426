//! A bound on flow nesting (`[`, `{`) in YAML files obsd reads, checked before the parser
//! sees them: the YAML scanner's time grows with the square of the nesting (100,000 levels
//! took 40–75 s of CPU before the deserializer's own depth limit refused the file).

/// Deeper flow nesting than any Prometheus file has; the deserializer stops at 128 anyway.
pub const MAX_FLOW_DEPTH: usize = 100;

/// The error for YAML text whose `[`/`{` nesting goes past [`MAX_FLOW_DEPTH`], with its line.
pub fn check(text: &str) -> Result<(), String> {
    let mut depth = 0usize;
    let mut line = 1;
    let mut quote: Option<char> = None;
    let mut prev = '\n';
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (_, '\n') => {
                line += 1;
                // A plain scalar cannot span a flow-less line break inside quotes in a way that
                // matters here; single-line quotes end at the line for this count.
                if quote == Some('#') {
                    quote = None;
                }
            }
            (Some('#'), _) => {}
            (Some('"'), '\\') => {
                chars.next();
            }
            (Some(q), c) if c == q => quote = None,
            (Some(_), _) => {}
            (None, '"' | '\'') => quote = Some(c),
            (None, '#') if prev.is_whitespace() => quote = Some('#'),
            (None, '[' | '{') => {
                depth += 1;
                if depth > MAX_FLOW_DEPTH {
                    return Err(format!(
                        "line {line}: flow collections ([ ], {{ }}) nested deeper than {MAX_FLOW_DEPTH} levels"
                    ));
                }
            }
            (None, ']' | '}') => depth = depth.saturating_sub(1),
            _ => {}
        }
        prev = c;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_flow_nesting_is_refused_with_its_line() {
        let deep = format!("a: 1\nb: {}1{}\n", "[".repeat(101), "]".repeat(101));
        assert_eq!(
            check(&deep).unwrap_err(),
            "line 2: flow collections ([ ], { }) nested deeper than 100 levels"
        );
        assert!(check(&format!("b: {}1{}\n", "{a: ".repeat(100), "}".repeat(100))).is_ok());
    }

    #[test]
    fn brackets_in_strings_and_comments_do_not_count() {
        let text = format!("a: \"{0}\"\nb: '{0}'\nc: 1 # {0}\nd: [x, {{y: z}}]\n", "[".repeat(500));
        assert!(check(&text).is_ok());
        assert!(check("a: \"\\\"[[[\"\n").is_ok());
    }
}
