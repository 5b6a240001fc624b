//! The reference forms of the tools people migrate from, rewritten into
//! envseal's own syntax before parsing (pure), so that the rest of the code
//! sees one grammar:
//!
//! - ssm-env: `ssm://NAME` → `ssm:NAME` (`ssm:///prod/db` is `/prod/db`);
//! - vals: `ref+awsssm://PATH` → `ssm:/PATH`, `ref+awssecrets://ID[#/KEY]` →
//!   `sm:ID[#KEY]`, `ref+s3://BUCKET/KEY[#/NAME]` → `s3://BUCKET/KEY[#NAME]`;
//!   one trailing `+` (vals' terminator) is dropped; vals' query options are
//!   renamed to envseal's where there is an equivalent and refused where
//!   there is none.
//!
//! Anything else is returned as it is.

use std::borrow::Cow;

use super::{err, ParseError};

/// The vals providers envseal reads, and what it says of the others.
const VALS_PROVIDERS: &str = "awsssm, awssecrets, s3";

/// True when `value` starts like a vals reference: `ref+PROVIDER://`.
pub fn is_vals(value: &str) -> bool {
    vals_provider(value).is_some()
}

/// `(provider, body)` of `ref+PROVIDER://BODY`.
fn vals_provider(value: &str) -> Option<(&str, &str)> {
    let rest = value.strip_prefix("ref+")?;
    let (provider, body) = rest.split_once("://")?;
    let valid = !provider.is_empty()
        && provider
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit());
    valid.then_some((provider, body))
}

/// Rewrites another tool's reference form into envseal's; envseal's own
/// forms (and anything else) come back unchanged and borrowed.
pub fn normalize(input: &str) -> Result<Cow<'_, str>, ParseError> {
    if let Some(name) = input.strip_prefix("ssm://") {
        // ssm-env: the rest is the parameter name (`ssm:///prod/db` → `/prod/db`).
        return Ok(Cow::Owned(format!("ssm:{name}")));
    }
    if !input.starts_with("ref+") {
        return Ok(Cow::Borrowed(input));
    }
    let Some((provider, body)) = vals_provider(input) else {
        return err("malformed vals reference (expected ref+PROVIDER://…)");
    };
    if !matches!(provider, "awsssm" | "awssecrets" | "s3") {
        return err(format!(
            "vals provider '{provider}' is not supported by envseal (it reads {VALS_PROVIDERS})"
        ));
    }
    // One trailing '+' ends a vals reference; a name that itself ends in '+'
    // is written with two.
    let body = body.strip_suffix('+').unwrap_or(body);
    let (path, query, fragment) = split_url(body);
    let mut options: Vec<String> = Vec::new();
    let mut selector: Option<&str> = None;
    for item in query.map(|q| q.split('&')).into_iter().flatten() {
        let (key, value) = match item.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (item, None),
        };
        let renamed = match (provider, key) {
            (_, "region") => "region",
            (_, "role_arn") => "role-arn",
            ("awssecrets", "version_stage") => "version-stage",
            ("awssecrets", "version_id") => "version-id",
            ("awsssm", "version") => {
                match value {
                    Some(v) if !v.is_empty() && selector.is_none() => selector = Some(v),
                    Some(v) if !v.is_empty() => return err("vals option 'version' given twice"),
                    _ => return err("vals option 'version' needs a value"),
                }
                continue;
            }
            ("s3", "version_id") => {
                return err("vals option 'version_id' has no envseal equivalent: envseal reads the current version of an S3 object")
            }
            (_, "profile") => {
                return err("vals option 'profile' has no envseal equivalent: set AWS_PROFILE for envseal instead")
            }
            (
                _,
                "mode" | "recursive" | "version" | "version_stage" | "version_id" | "alg" | "key"
                | "context" | "generation" | "format" | "encode",
            ) => {
                return err(format!(
                    "vals option '{key}' has no envseal equivalent for ref+{provider}://"
                ))
            }
            // envseal's own options (`optional`, `encryption`…) are checked
            // by its parser, which refuses unknown ones.
            (_, other) => other,
        };
        options.push(match value {
            Some(v) => format!("{renamed}={v}"),
            None => renamed.to_owned(),
        });
    }
    let key = match fragment {
        None => None,
        Some(f) => Some(vals_key(f)?),
    };
    let mut out = match provider {
        "awsssm" => {
            if key.is_some() {
                return err("vals' '#/KEY' on ref+awsssm:// reads a parameter under a path: write the parameter's full name instead (ref+awsssm://PATH/KEY)");
            }
            if path.is_empty() {
                return err("empty parameter name in ref+awsssm://");
            }
            let slash = if path.starts_with('/') { "" } else { "/" };
            let mut s = format!("ssm:{slash}{path}");
            if let Some(v) = selector {
                s.push(':');
                s.push_str(v);
            }
            s
        }
        "awssecrets" => {
            if path.is_empty() {
                return err("empty secret id in ref+awssecrets://");
            }
            format!("sm:{path}")
        }
        _ => format!("s3://{path}"),
    };
    if let Some(k) = key {
        out.push('#');
        out.push_str(k);
    }
    if !options.is_empty() {
        out.push('?');
        out.push_str(&options.join("&"));
    }
    Ok(Cow::Owned(out))
}

/// vals' `#/KEY`: one level of its JSON pointer (envseal reads one top-level
/// key); `#KEY` (envseal's own form) is taken as it is.
fn vals_key(fragment: &str) -> Result<&str, ParseError> {
    let key = fragment.strip_prefix('/').unwrap_or(fragment);
    if key.is_empty() {
        return err("empty key after '#'");
    }
    if fragment.starts_with('/') && key.contains('/') {
        return err(format!(
            "vals' nested key '#{fragment}' is not supported: envseal reads one top-level key (#/KEY)"
        ));
    }
    Ok(key)
}

/// `PATH[?QUERY][#FRAGMENT]` or `PATH[#FRAGMENT][?QUERY]`.
fn split_url(body: &str) -> (&str, Option<&str>, Option<&str>) {
    match (body.find('?'), body.find('#')) {
        (None, None) => (body, None, None),
        (None, Some(h)) => (&body[..h], None, Some(&body[h + 1..])),
        (Some(q), None) => (&body[..q], Some(&body[q + 1..]), None),
        (Some(q), Some(h)) if q < h => (&body[..q], Some(&body[q + 1..h]), Some(&body[h + 1..])),
        (Some(q), Some(h)) => (&body[..h], Some(&body[q + 1..]), Some(&body[h + 1..q])),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(input: &str) -> String {
        normalize(input)
            .unwrap_or_else(|e| panic!("{input}: {e}"))
            .into_owned()
    }

    fn refused(input: &str) -> String {
        normalize(input).unwrap_err().reason
    }

    #[test]
    fn envseal_forms_are_borrowed_unchanged() {
        for own in [
            "ssm:/prod/db",
            "ssm:name:3",
            "sm:prod/api#TOKEN?optional",
            "s3://b/k#A",
            "kms:AAAA",
            "arn:aws:ssm:us-east-1:1:parameter/x",
            "plain text",
            "",
        ] {
            assert!(
                matches!(normalize(own), Ok(Cow::Borrowed(s)) if s == own),
                "{own}"
            );
        }
    }

    #[test]
    fn ssm_env_forms() {
        assert_eq!(n("ssm:///prod/db"), "ssm:/prod/db");
        assert_eq!(
            n("ssm://prod.app.cookie-secret"),
            "ssm:prod.app.cookie-secret"
        );
        assert_eq!(n("ssm://secret:2"), "ssm:secret:2");
        assert_eq!(n("ssm:///prod/db?optional"), "ssm:/prod/db?optional");
    }

    #[test]
    fn vals_ssm() {
        assert_eq!(n("ref+awsssm://myteam/mykey"), "ssm:/myteam/mykey");
        assert_eq!(n("ref+awsssm:///myteam/mykey"), "ssm:/myteam/mykey");
        assert_eq!(n("ref+awsssm://myteam/mykey+"), "ssm:/myteam/mykey");
        assert_eq!(n("ref+awsssm://a/b?version=3"), "ssm:/a/b:3");
        assert_eq!(
            n("ref+awsssm://a/b?region=us-west-2"),
            "ssm:/a/b?region=us-west-2"
        );
        assert_eq!(n("ref+awsssm://a/b?optional"), "ssm:/a/b?optional");
        assert!(refused("ref+awsssm://a/doc#/foo").contains("full name"));
        assert!(refused("ref+awsssm://a?mode=singleparam").contains("'mode'"));
        assert!(refused("ref+awsssm://a?recursive=true").contains("'recursive'"));
        assert!(refused("ref+awsssm://a?profile=prod").contains("AWS_PROFILE"));
        assert!(refused("ref+awsssm://a?version=").contains("needs a value"));
        assert!(refused("ref+awsssm://a?version=1&version=2").contains("twice"));
        assert!(refused("ref+awsssm://").contains("empty"));
    }

    #[test]
    fn vals_secrets() {
        assert_eq!(n("ref+awssecrets://myteam/mykey"), "sm:myteam/mykey");
        assert_eq!(
            n("ref+awssecrets://prod/db#/password"),
            "sm:prod/db#password"
        );
        assert_eq!(
            n("ref+awssecrets://prod/db#/password+"),
            "sm:prod/db#password"
        );
        assert_eq!(
            n("ref+awssecrets://prod/db?version_stage=AWSPREVIOUS#/password"),
            "sm:prod/db#password?version-stage=AWSPREVIOUS"
        );
        assert_eq!(
            n("ref+awssecrets://prod/db#/password?version_id=v1&optional"),
            "sm:prod/db#password?version-id=v1&optional"
        );
        assert_eq!(
            n("ref+awssecrets://x?role_arn=arn:aws:iam::1:role/r"),
            "sm:x?role-arn=arn:aws:iam::1:role/r"
        );
        // A name ending in '+' is written with a second '+'.
        assert_eq!(n("ref+awssecrets://a+b++"), "sm:a+b+");
        assert!(refused("ref+awssecrets://prod/db#/a/b").contains("nested"));
        assert!(refused("ref+awssecrets://prod/db#/").contains("empty key"));
        assert!(refused("ref+awssecrets://x?version=1").contains("'version'"));
    }

    #[test]
    fn vals_s3_and_other_providers() {
        assert_eq!(
            n("ref+s3://bucket/app/prod.env"),
            "s3://bucket/app/prod.env"
        );
        assert_eq!(
            n("ref+s3://bucket/app.json#/DB+"),
            "s3://bucket/app.json#DB"
        );
        assert!(refused("ref+s3://b/k?version_id=1").contains("current version"));
        assert!(refused("ref+vault://mykv/foo#/bar").contains("'vault'"));
        assert!(refused("ref+vault://kv/x?profile=p").contains("'vault'"));
        assert!(refused("ref+echo://x").contains("awsssm, awssecrets, s3"));
        assert!(refused("ref+nothing").contains("ref+PROVIDER://"));
        assert!(is_vals("ref+awsssm://x"));
        assert!(is_vals("ref+vault://x"));
        assert!(!is_vals("ref+"));
        assert!(!is_vals("ref+Bad://x"));
        assert!(!is_vals("refs/heads/main"));
    }
}
