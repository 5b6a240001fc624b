//! Templates: a value with `{{REF}}` segments
//! (`postgres://app:{{sm:prod/db#password}}@db:5432/app`). Pure: splits the
//! value into literal text and the references to substitute; the
//! references themselves are parsed by [`super::parse_reference`].
//!
//! A `{{…}}` whose content (whitespace trimmed) does not start like a
//! reference is literal text, so that Go, Jinja or Mustache templates in
//! ordinary configuration pass through. An unclosed `{{` followed by a
//! reference is an error.

use super::{looks_like_reference, ParseError};

/// One piece of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part<'a> {
    /// Literal text, kept as it is.
    Text(&'a str),
    /// The reference inside `{{ }}`, whitespace trimmed.
    Ref(&'a str),
}

/// True when `value` has a `{{` followed (after whitespace) by something that
/// starts like a reference: the value is then a template (or a malformed one).
pub fn has_reference_segment(value: &str) -> bool {
    let mut from = 0;
    while let Some(at) = value[from..].find("{{") {
        let inner = &value[from + at + 2..];
        if looks_like_reference(inner.trim_start()) {
            return true;
        }
        from += at + 1;
    }
    false
}

/// Splits `value` into text and references. `Ok(None)`: no reference segment
/// at all (the value is plain). The error never quotes the value.
pub fn parse_template(value: &str) -> Result<Option<Vec<Part<'_>>>, ParseError> {
    let mut parts = Vec::new();
    let mut text_from = 0;
    let mut from = 0;
    let mut any = false;
    while let Some(at) = value[from..].find("{{") {
        let open = from + at;
        let inner = open + 2;
        let Some(len) = value[inner..].find("}}") else {
            if looks_like_reference(value[inner..].trim_start()) {
                return Err(ParseError {
                    reason: "unclosed '{{' before a reference (expected {{REFERENCE}})".into(),
                });
            }
            break;
        };
        let content = value[inner..inner + len].trim();
        if looks_like_reference(content) {
            if open > text_from {
                parts.push(Part::Text(&value[text_from..open]));
            }
            parts.push(Part::Ref(content));
            any = true;
            from = inner + len + 2;
            text_from = from;
        } else {
            // Not a reference: literal; look again from the next character
            // (so that `{{{ssm:/x}}}` still finds its reference).
            from = open + 1;
        }
    }
    if !any {
        return Ok(None);
    }
    if text_from < value.len() {
        parts.push(Part::Text(&value[text_from..]));
    }
    Ok(Some(parts))
}

#[cfg(test)]
mod tests {
    use super::*;
    use Part::{Ref, Text};

    fn parts(value: &str) -> Vec<Part<'_>> {
        parse_template(value).unwrap().unwrap()
    }

    #[test]
    fn segments_and_text() {
        assert_eq!(
            parts("postgres://app:{{sm:prod/db#password}}@db:5432/app"),
            vec![
                Text("postgres://app:"),
                Ref("sm:prod/db#password"),
                Text("@db:5432/app")
            ]
        );
        assert_eq!(
            parts("{{ ssm:/a }}{{\tsm:b#K\n}}"),
            vec![Ref("ssm:/a"), Ref("sm:b#K")]
        );
        assert_eq!(
            parts("u={{ssm:///x}}&v={{ref+awssecrets://y#/K+}}"),
            vec![
                Text("u="),
                Ref("ssm:///x"),
                Text("&v="),
                Ref("ref+awssecrets://y#/K+")
            ]
        );
        assert_eq!(
            parts("{{ .Foo }} and {{ssm:/a}}"),
            vec![Text("{{ .Foo }} and "), Ref("ssm:/a")]
        );
        assert_eq!(
            parts("{{{ssm:/a}}}"),
            vec![Text("{"), Ref("ssm:/a"), Text("}")]
        );
        assert_eq!(
            parts("x{{arn:aws:ssm:us-east-1:1:parameter/p}}"),
            vec![Text("x"), Ref("arn:aws:ssm:us-east-1:1:parameter/p")]
        );
    }

    #[test]
    fn values_without_reference_segments_are_plain() {
        for plain in [
            "",
            "no braces",
            "{{ .Values.image }}",
            "{{ range .Items }}{{ end }}",
            "{{",
            "}}{{",
            "{{ unclosed go template",
            "{{ssm}}",
            "{{ s3 }}",
            "{{}}",
        ] {
            assert_eq!(parse_template(plain).unwrap(), None, "{plain:?}");
            assert!(!has_reference_segment(plain), "{plain:?}");
        }
    }

    #[test]
    fn unclosed_reference_is_an_error_without_the_value() {
        for bad in ["{{ssm:/a", "pw={{ sm:x#hunter2", "{{ok}} {{s3://b/k }"] {
            let e = parse_template(bad).unwrap_err();
            assert!(e.reason.contains("unclosed"), "{bad}: {e}");
            assert!(!e.reason.contains("hunter2"));
            assert!(has_reference_segment(bad), "{bad:?}");
        }
    }
}
