//! `match[]` selectors (`up`, `{job="node"}`, `{__name__=~".+"}`) as store matchers.

use crate::store::{MatchOp, Matcher};
use promql_parser::label::MatchOp as ParsedOp;
use promql_parser::parser::Expr;

pub fn parse_match(text: &str) -> Result<Vec<Matcher>, String> {
    let expr = crate::promql::parse(text).map_err(|e| format!("invalid parameter \"match[]\": {e}"))?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(format!("invalid parameter \"match[]\": {text:?} is not a series selector"));
    };
    let mut out = Vec::new();
    for m in &vs.matchers.matchers {
        let (op, value) = match &m.op {
            ParsedOp::Equal => (MatchOp::Equal, m.value.clone()),
            ParsedOp::NotEqual => (MatchOp::NotEqual, m.value.clone()),
            ParsedOp::Re(_) => (MatchOp::Regex, m.value.clone()),
            ParsedOp::NotRe(_) => (MatchOp::NotRegex, m.value.clone()),
        };
        out.push(
            Matcher::new(op, m.name.clone(), value)
                .map_err(|e| format!("invalid parameter \"match[]\": {e}"))?,
        );
    }
    if let Some(name) = &vs.name
        && !out.iter().any(|m| m.name == "__name__")
    {
        out.push(Matcher::equal("__name__", name.clone()));
    }
    if out.iter().all(|m| m.matches_empty()) {
        return Err(
            "invalid parameter \"match[]\": match[] must contain at least one non-empty matcher".into()
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selectors() {
        assert_eq!(parse_match("up").unwrap().len(), 1);
        let m = parse_match("{__name__=~\".+\",job!=\"x\"}").unwrap();
        assert_eq!(m.len(), 2);
        assert!(parse_match("{job=~\".*\"}").is_err(), "matches everything, as Prometheus refuses");
        assert!(parse_match("rate(up[5m])").is_err());
        assert!(parse_match("up{").is_err());
    }
}
