/// Formats like Go's `strconv.FormatFloat(v, 'g', -1, 64)`: the shortest digits that round-trip,
/// in exponent form when the decimal exponent is below -4 or at least 6 (Go fixes the %e
/// threshold at 6 for shortest formatting).
pub fn format_go_float(v: f64) -> String {
    if v.is_nan() {
        return "NaN".to_string();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".to_string() } else { "-Inf".to_string() };
    }
    if v == 0.0 {
        return if v.is_sign_negative() { "-0".to_string() } else { "0".to_string() };
    }
    // Rust's `{:e}` gives the shortest round-tripping mantissa, e.g. "2.70553174016e11".
    let sci = format!("{v:e}");
    let (mantissa, exp) = match sci.split_once('e') {
        Some((m, e)) => (m, e.parse::<i32>().unwrap_or(0)),
        None => (sci.as_str(), 0),
    };
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        let abs = exp.unsigned_abs();
        if abs < 10 { format!("{mantissa}e{sign}0{abs}") } else { format!("{mantissa}e{sign}{abs}") }
    } else {
        format!("{v}")
    }
}

/// Go's `strconv.FormatFloat(v, 'e', -1, 64)`: the shortest exponent form, `1e+00`, `4.2e+01`.
pub fn format_go_float_e(v: f64) -> String {
    if v.is_nan() {
        return "NaN".into();
    }
    if v.is_infinite() {
        return if v > 0.0 { "+Inf".into() } else { "-Inf".into() };
    }
    let s = format!("{v:e}");
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    let sign = if exp < 0 { '-' } else { '+' };
    format!("{mantissa}e{sign}{:02}", exp.abs())
}

#[cfg(test)]
mod tests {
    use super::format_go_float;

    #[test]
    fn matches_go_g_formatting() {
        let cases: &[(f64, &str)] = &[
            (0.0, "0"),
            (1.0, "1"),
            (100.0, "100"),
            (123456.0, "123456"),
            (1e6, "1e+06"),
            (1_056_768.0, "1.056768e+06"),
            (270553174016.0, "2.70553174016e+11"),
            (0.01, "0.01"),
            (0.0001, "0.0001"),
            (0.00001, "1e-05"),
            (1.5e-7, "1.5e-07"),
            (3.3662310000000004, "3.3662310000000004"),
            (1.7956630426587808e9, "1.7956630426587808e+09"),
            (-2.5, "-2.5"),
            (1e21, "1e+21"),
            (1e100, "1e+100"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
        ];
        for (v, want) in cases {
            assert_eq!(format_go_float(*v), *want, "formatting {v}");
        }
    }
}
