//! Variable-name patterns of `--ignore` / `ENVSEAL_IGNORE`: `*` matches any
//! run of characters (also none), `?` exactly one, everything else itself
//! (case-sensitive, like variable names). Pure.

use std::fmt;

/// A validated pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Glob(String);

impl Glob {
    /// Checks that `pattern` can match a variable name: not empty, no `=`,
    /// no NUL or other control character, no whitespace, and no `[`/`]`
    /// (character classes are not supported, so they would only ever match
    /// themselves: refused rather than silently never matching).
    pub fn parse(pattern: &str) -> Result<Glob, String> {
        if pattern.is_empty() {
            return Err("empty pattern".into());
        }
        if let Some(c) = pattern
            .chars()
            .find(|c| *c == '=' || c.is_control() || c.is_whitespace())
        {
            return Err(format!(
                "{c:?} cannot appear in a variable name (patterns are names with * and ?)"
            ));
        }
        if pattern.contains(['[', ']']) {
            return Err("character classes ([…]) are not supported; use * and ?".into());
        }
        Ok(Glob(pattern.to_owned()))
    }

    pub fn matches(&self, name: &str) -> bool {
        glob_match(&self.0, name)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Glob {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// True when `name` matches `pattern` as a whole (`*`: any run, `?`: one
/// character). Linear backtracking on the last `*`: no exponential case.
pub fn glob_match(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    let (mut pi, mut ni) = (0, 0);
    // Where the last `*` was, and where in `name` it started matching.
    let mut star: Option<(usize, usize)> = None;
    while ni < n.len() {
        match p.get(pi) {
            Some('*') => {
                star = Some((pi, ni));
                pi += 1;
            }
            Some(&c) if c == '?' || c == n[ni] => {
                pi += 1;
                ni += 1;
            }
            _ => match star {
                // Let the last `*` take one more character and retry.
                Some((sp, sn)) => {
                    pi = sp + 1;
                    ni = sn + 1;
                    star = Some((sp, sn + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_star_and_question_mark() {
        assert!(glob_match("MODEL_URI", "MODEL_URI"));
        assert!(!glob_match("MODEL_URI", "MODEL_URIS"));
        assert!(!glob_match("MODEL_URI", "model_uri"));
        assert!(glob_match("*_URL", "UPSTREAM_URL"));
        assert!(glob_match("*_URL", "_URL"));
        assert!(!glob_match("*_URL", "UPSTREAM_URLS"));
        assert!(glob_match("MODEL_*", "MODEL_"));
        assert!(glob_match("MODEL_*", "MODEL_URI_V3"));
        assert!(glob_match("*", ""));
        assert!(glob_match("*", "ANY"));
        assert!(glob_match("A?C", "ABC"));
        assert!(!glob_match("A?C", "AC"));
        assert!(!glob_match("A?C", "ABBC"));
        assert!(glob_match("*A*B*", "xxAyyByy"));
        assert!(!glob_match("*A*B*", "xxByyAyy"));
        assert!(glob_match("S3_*_??", "S3_BUCKET_V1"));
        assert!(glob_match("**", "X"));
        assert!(glob_match("é?", "éü"), "? is one character, not one byte");
        assert!(!glob_match("", "X"));
        assert!(glob_match("", ""));
    }

    #[test]
    fn backtracking_stays_linear_enough() {
        let name = "A".repeat(2000);
        let pattern = format!("{}B", "*A".repeat(20));
        assert!(!glob_match(&pattern, &name));
    }

    #[test]
    fn malformed_patterns() {
        for bad in ["", "A=B", "A\0", "A\nB", "A B", " ", "[AB]*", "A]"] {
            assert!(Glob::parse(bad).is_err(), "{bad:?}");
        }
        for own in ["*", "?", "A*B?C", "**??", "é*"] {
            assert!(
                Glob::parse(own).unwrap().matches(own),
                "a pattern matches itself"
            );
        }
        let g = Glob::parse("MODEL_*").unwrap();
        assert!(g.matches("MODEL_URI"));
        assert_eq!(g.to_string(), "MODEL_*");
    }
}
