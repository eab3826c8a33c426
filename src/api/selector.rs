//! `match[]` selectors (`up`, `{job="node"}`, `{__name__=~".+"}`) as store matchers.

use crate::model::Matcher;
use promql_parser::parser::Expr;

pub fn parse_match(text: &str) -> Result<Vec<Matcher>, String> {
    let expr = crate::promql::parse(text).map_err(|e| format!("invalid parameter \"match[]\": {e}"))?;
    let Expr::VectorSelector(vs) = expr else {
        return Err(format!("invalid parameter \"match[]\": {text:?} is not a series selector"));
    };
    let out = crate::promql::matchers_of(&vs).map_err(|e| format!("invalid parameter \"match[]\": {e}"))?;
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
