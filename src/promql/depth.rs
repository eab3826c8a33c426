//! Bounds on how deep a query may nest, so that no query text can overflow a thread's stack.
//!
//! Prometheus has no such limit because Go stacks grow to 1 GB; Rust threads have a fixed
//! stack and overflowing it aborts the whole process, every role in it. The parser crate, the
//! 2.42 check, `prettify` and the evaluator all recurse over the AST, and the parser types a
//! chain `a + b + c + …` by recursing down its left side at every new operator. So: a cheap
//! scan of the text refuses what would nest too deep before the parser runs, the parsed tree's
//! depth is measured without recursion, and every recursive walk runs on a stack that grows
//! on demand (`stacker`), so the limit, not the thread it happens to run on, decides.

use super::QueryError;
use promql_parser::parser::{Expr, NumberLiteral};

/// Levels of nesting (brackets, function calls, aggregations, operators) a query may have.
/// Real queries stay far below; generated ones (`a or b or …` over a few hundred terms) fit.
pub const MAX_EXPR_DEPTH: usize = 1000;

/// Operator tokens one query may hold: the parser's recursion follows an operator chain.
pub const MAX_OPERATORS: usize = 4 * MAX_EXPR_DEPTH;

/// Stack a recursive walk wants left before it recurses; less than that and it moves to a
/// fresh segment. A level of the evaluator takes well under this in a debug build.
const RED_ZONE: usize = 256 * 1024;

/// Size of each fresh stack segment.
const SEGMENT: usize = 8 * 1024 * 1024;

/// Stack the parser and `prettify` may need for a query within the limits: the parser's
/// typing walk down a chain of `MAX_OPERATORS` operators, or `prettify` at full depth (a
/// test runs both with just this much stack, in a debug build). A thread with more left runs
/// them in place; a tokio worker (2 MiB) mostly does.
const WHOLE_WALK: usize = 1024 * 1024;

/// Runs a walk whose depth is bounded by the limits above but not checked level by level
/// (the parser crate's, `prettify`).
pub(crate) fn on_deep_stack<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(WHOLE_WALK, SEGMENT, f)
}

/// Called at every level of a recursive walk of our own (the evaluator).
pub(crate) fn each_level<R>(f: impl FnOnce() -> R) -> R {
    stacker::maybe_grow(RED_ZONE, SEGMENT, f)
}

/// Refuses query text that nests brackets deeper than [`MAX_EXPR_DEPTH`] or holds more than
/// [`MAX_OPERATORS`] operators, before the parser sees it. Counting is lexical and errs on
/// the side of counting too much (a `-` in `1e-3` counts as an operator).
pub(crate) fn check_text(query: &str) -> Result<(), QueryError> {
    let shape = scan(query);
    if shape.max_brackets > MAX_EXPR_DEPTH {
        return Err(QueryError::Parse(format!(
            "1:1: parse error: brackets are nested {} levels deep; at most {MAX_EXPR_DEPTH} are allowed",
            shape.max_brackets
        )));
    }
    if shape.operators > MAX_OPERATORS {
        return Err(QueryError::Parse(format!(
            "1:1: parse error: the query has {} operators; at most {MAX_OPERATORS} are allowed",
            shape.operators
        )));
    }
    Ok(())
}

#[derive(Debug, Default, PartialEq)]
struct Shape {
    max_brackets: usize,
    operators: usize,
}

fn scan(query: &str) -> Shape {
    let b = query.as_bytes();
    let mut shape = Shape::default();
    let (mut depth, mut braces) = (0usize, 0usize);
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        match c {
            b'"' | b'\'' | b'`' => {
                i += 1;
                while i < b.len() && b[i] != c {
                    // Backquoted strings are raw; the others take escapes.
                    i += if c != b'`' && b[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'#' => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'(' | b'[' | b'{' => {
                depth += 1;
                shape.max_brackets = shape.max_brackets.max(depth);
                braces += usize::from(c == b'{');
            }
            b')' | b']' | b'}' => {
                depth = depth.saturating_sub(1);
                if c == b'}' {
                    braces = braces.saturating_sub(1);
                }
            }
            // Inside braces `=`, `!=`, `=~`, `!~` are label matchers, not operators.
            _ if braces > 0 => {}
            b'+' | b'-' | b'*' | b'/' | b'%' | b'^' | b'<' | b'>' => {
                shape.operators += 1;
                if b.get(i + 1) == Some(&b'=') {
                    i += 1;
                }
            }
            b'=' | b'!' if b.get(i + 1) == Some(&b'=') => {
                shape.operators += 1;
                i += 1;
            }
            _ if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b':') {
                    i += 1;
                }
                let word = &query[start..i];
                if ["and", "or", "unless", "atan2"].iter().any(|k| word.eq_ignore_ascii_case(k)) {
                    shape.operators += 1;
                }
                continue;
            }
            _ => {}
        }
        i += 1;
    }
    shape
}

/// The children of one node, for the walks below that keep their own stack.
fn push_children<'a>(e: &'a Expr, out: &mut Vec<&'a Expr>) {
    match e {
        Expr::Aggregate(a) => {
            out.push(&a.expr);
            if let Some(p) = &a.param {
                out.push(p);
            }
        }
        Expr::Unary(u) => out.push(&u.expr),
        Expr::Binary(b) => {
            out.push(&b.lhs);
            out.push(&b.rhs);
        }
        Expr::Paren(p) => out.push(&p.expr),
        Expr::Subquery(s) => out.push(&s.expr),
        Expr::Call(c) => out.extend(c.args.args.iter().map(|a| &**a)),
        Expr::NumberLiteral(_)
        | Expr::StringLiteral(_)
        | Expr::VectorSelector(_)
        | Expr::MatrixSelector(_)
        | Expr::Extension(_) => {}
    }
}

/// The number of levels of the tree (a lone selector is 1), counted without recursion.
pub(crate) fn expr_depth(expr: &Expr) -> usize {
    let mut deepest = 0;
    let mut todo = vec![(expr, 1usize)];
    let mut children = Vec::new();
    while let Some((e, level)) = todo.pop() {
        deepest = deepest.max(level);
        push_children(e, &mut children);
        todo.extend(children.drain(..).map(|c| (c, level + 1)));
    }
    deepest
}

/// Drops a tree too deep for the compiler's recursive drop, one node at a time.
pub(crate) fn dismantle(expr: Expr) {
    let leaf = || Expr::NumberLiteral(NumberLiteral { val: 0.0 });
    let mut todo = vec![expr];
    while let Some(mut e) = todo.pop() {
        match &mut e {
            Expr::Aggregate(a) => {
                todo.push(std::mem::replace(&mut *a.expr, leaf()));
                if let Some(p) = a.param.take() {
                    todo.push(*p);
                }
            }
            Expr::Unary(u) => todo.push(std::mem::replace(&mut *u.expr, leaf())),
            Expr::Binary(b) => {
                todo.push(std::mem::replace(&mut *b.lhs, leaf()));
                todo.push(std::mem::replace(&mut *b.rhs, leaf()));
            }
            Expr::Paren(p) => todo.push(std::mem::replace(&mut *p.expr, leaf())),
            Expr::Subquery(s) => todo.push(std::mem::replace(&mut *s.expr, leaf())),
            Expr::Call(c) => todo.extend(c.args.args.drain(..).map(|a| *a)),
            Expr::NumberLiteral(_)
            | Expr::StringLiteral(_)
            | Expr::VectorSelector(_)
            | Expr::MatrixSelector(_)
            | Expr::Extension(_) => {}
        }
        // `e` now holds only leaves and drops in one level.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::promql::{Engine, EngineOptions, MemoryQueryable};

    fn nested(open: &str, inner: &str, close: &str, n: usize) -> String {
        format!("{}{inner}{}", open.repeat(n), close.repeat(n))
    }

    fn chain(term: &str, op: &str, terms: usize) -> String {
        vec![term; terms].join(op)
    }

    /// The queries of the finding: each aborted the process (SIGABRT, stack overflow).
    fn hostile() -> Vec<(&'static str, String)> {
        vec![
            ("abs x4000", nested("abs(", "1", ")", 4000)),
            ("sum x5000", nested("sum(", "up", ")", 5000)),
            ("1+1 x20000", chain("1", "+", 20_000)),
            ("parens x100000", nested("(", "1", ")", 100_000)),
            ("unary x50000", format!("{}1", "-".repeat(50_000))),
            ("or x10000", chain("up", " or ", 10_000)),
            // Within the operator budget, but deeper than the tree may be.
            ("1+1 x3000", chain("1", "+", 3000)),
            ("abs x1200", nested("abs(", "vector(1)", ")", 1200)),
        ]
    }

    /// Queries at the limit, of every shape that recurses: they must evaluate on a thread
    /// with a small stack, which only works if every level can move to a fresh segment.
    fn at_limit() -> Vec<(&'static str, String)> {
        let d = MAX_EXPR_DEPTH;
        vec![
            ("abs", nested("abs(", "vector(1)", ")", d - 2)),
            ("sum", nested("sum(", "vector(1)", ")", d - 2)),
            ("scalar chain", chain("1", "+", d)),
            ("vector chain", chain("vector(1)", " + ", d - 1)),
            ("or chain", chain("vector(1)", " or ", d - 1)),
            ("parens", nested("(", "1", ")", d - 1)),
            ("unary", format!("{}1", "-".repeat(d - 1))),
            ("unary on vectors", format!("{}vector(1)", "-".repeat(d - 2))),
            ("subqueries", nested("max_over_time(", "vector(1)", "[2m:1m])", (d - 2) / 2)),
            ("label_replace", nested("label_replace(", "vector(1)", ", \"a\", \"b\", \"\", \"\")", d - 2)),
        ]
    }

    #[test]
    fn hostile_depth_is_refused_as_a_parse_error() {
        for (what, q) in hostile() {
            let r = std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let engine = Engine::new(EngineOptions::default());
                    match engine.instant_query(&MemoryQueryable::new(), &q, 0) {
                        Err(QueryError::Parse(m)) => m,
                        other => format!("not refused: {other:?}"),
                    }
                })
                .unwrap()
                .join()
                .unwrap();
            assert!(r.contains("levels deep") || r.contains("operators; at most"), "{what}: {r}");
        }
    }

    #[test]
    fn queries_at_the_limit_evaluate_on_a_small_stack() {
        for (what, q) in at_limit() {
            let parsed = crate::promql::parse(&q).unwrap();
            // The parser folds some shapes (a run of unary minus on a number) into fewer nodes.
            assert!(expr_depth(&parsed) <= MAX_EXPR_DEPTH, "{what}");
            dismantle(parsed);
            let r = std::thread::Builder::new()
                .stack_size(256 * 1024)
                .spawn(move || {
                    let engine = Engine::new(EngineOptions::default());
                    let r = engine.range_query(&MemoryQueryable::new(), &q, 0, 120_000, 60_000);
                    let text = crate::promql::format_query(&q);
                    (r.map(|_| ()).map_err(|e| e.to_string()), text.is_ok())
                })
                .unwrap()
                .join()
                .unwrap();
            assert_eq!(r, (Ok(()), true), "{what}");
        }
    }

    /// The parser and `prettify` at the limits, run in place with just `WHOLE_WALK` of stack
    /// left (`maybe_grow` does not move them while that much is left).
    #[test]
    fn whole_walks_fit_in_their_red_zone() {
        let chain = chain("1", "+", MAX_OPERATORS);
        let deep = nested("abs(", "vector(1)", ")", MAX_EXPR_DEPTH - 2);
        let r = std::thread::Builder::new()
            .stack_size(WHOLE_WALK + 64 * 1024)
            .spawn(move || {
                let refused = matches!(crate::promql::parse(&chain), Err(QueryError::Parse(_)));
                let shown = crate::promql::format_query(&deep);
                (refused, shown.is_ok())
            })
            .unwrap()
            .join()
            .unwrap();
        assert_eq!(r, (true, true));
    }

    #[test]
    fn the_scan_counts_brackets_and_operators_but_not_strings_comments_or_matchers() {
        let s = scan(r#"sum by (a) (rate(x{a!="(((",b=~"-+-"}[5m])) + on() 1e-3 # ((((+"#);
        assert_eq!(s, Shape { max_brackets: 3, operators: 2 });
        let s = scan("a and b or c unless d == e != f >= g <= h < i > j ^ k % l / m * n - o + atan2");
        assert_eq!(s.operators, 16);
        assert_eq!(scan(r#"x{a="\"(("} or `((\`"#).operators, 1);
        assert_eq!(scan(r#"x{a="\"(("} or `((\`"#).max_brackets, 1);
    }

    #[test]
    fn dismantle_drops_a_tree_deeper_than_the_stack() {
        let mut e = Expr::NumberLiteral(NumberLiteral { val: 1.0 });
        for _ in 0..1_000_000 {
            e = Expr::Paren(promql_parser::parser::ParenExpr { expr: Box::new(e) });
        }
        assert_eq!(expr_depth(&e), 1_000_001);
        dismantle(e);
    }
}
