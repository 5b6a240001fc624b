//! The dotenv reader: quoting, escapes, comments, and errors that never
//! quote a value.

use super::*;

fn kv(doc: &str) -> Vec<(String, String)> {
    parse(doc.as_bytes())
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.expose().to_owned()))
        .collect()
}

fn one(doc: &str) -> String {
    let v = kv(doc);
    assert_eq!(v.len(), 1, "{doc:?}");
    v[0].1.clone()
}

fn err(doc: &str) -> DocumentError {
    parse(doc.as_bytes()).unwrap_err()
}

#[test]
fn basic_lines_in_order() {
    let doc = "# comment\n\nB=2\n  A=1\nexport C=three\n\t# indented comment\n";
    assert_eq!(
        kv(doc),
        vec![
            ("B".into(), "2".into()),
            ("A".into(), "1".into()),
            ("C".into(), "three".into()),
        ]
    );
    assert!(kv("").is_empty());
    assert!(kv("\n\n# only comments\n").is_empty());
}

#[test]
fn keys() {
    assert_eq!(kv("job.title=x")[0].0, "job.title");
    assert_eq!(kv("my-key=x")[0].0, "my-key");
    assert_eq!(kv("_x9=x")[0].0, "_x9");
    assert_eq!(kv("export=1")[0].0, "export");
    assert_eq!(kv("exportA=1")[0].0, "exportA");
    assert_eq!(kv("export \t A=1")[0].0, "A");
    assert_eq!(kv("KEY = value")[0], ("KEY".into(), "value".into()));
    for bad in [
        "1A=x",
        "-A=x",
        ".A=x",
        "MY KEY=x",
        "A$B=x",
        "=x",
        "export =x",
        "Ä=x",
    ] {
        assert_eq!(
            err(bad),
            DocumentError::MalformedLine {
                line: 1,
                reason: BAD_KEY
            },
            "{bad}"
        );
    }
}

#[test]
fn unquoted_values() {
    assert_eq!(one("A=  spaced value  "), "spaced value");
    assert_eq!(one("A=value # comment"), "value");
    assert_eq!(one("A=value\t# comment"), "value");
    assert_eq!(one("A=pa#ss"), "pa#ss");
    assert_eq!(one("A=#notacomment"), "#notacomment");
    assert_eq!(one("A= # only a comment"), "");
    assert_eq!(one("A="), "");
    assert_eq!(one("A=a=b=c"), "a=b=c");
    assert_eq!(one("A=it's"), "it's");
    assert_eq!(one("A=x\"y"), "x\"y");
    assert_eq!(one("A=$HOME"), "$HOME");
    assert_eq!(one("A=a\\nb"), "a\\nb");
    assert_eq!(one("A=café ☃"), "café ☃");
}

#[test]
fn single_quotes_are_literal() {
    assert_eq!(
        one("A='a\\nb $X \"q\" # not comment'"),
        "a\\nb $X \"q\" # not comment"
    );
    assert_eq!(one("A='  padded  '"), "  padded  ");
    assert_eq!(one("A=''"), "");
    assert_eq!(one("A='x' # comment"), "x");
    assert_eq!(one("A='line1\nline2\n'"), "line1\nline2\n");
}

#[test]
fn double_quotes_escapes() {
    assert_eq!(
        one(r#"A="n\n r\r t\t q\" b\\ d\$ keep\x keep\'""#),
        "n\n r\r t\t q\" b\\ d$ keep\\x keep\\'"
    );
    assert_eq!(one(r##"A="#not comment""##), "#not comment");
    assert_eq!(one(r#"A="x"   # comment"#), "x");
    assert_eq!(one(r##"A="x"#c"##), "x");
    assert_eq!(one(r#"A="""#), "");
    assert_eq!(one("A=\"$NOT_EXPANDED\""), "$NOT_EXPANDED");
    assert_eq!(
        one("A=\"ends with backslash\\\\\""),
        "ends with backslash\\"
    );
}

#[test]
fn multi_line_values() {
    let doc = "A=\"-----BEGIN KEY-----\nabc\n-----END KEY-----\"\nB=after\n";
    assert_eq!(
        kv(doc),
        vec![
            (
                "A".into(),
                "-----BEGIN KEY-----\nabc\n-----END KEY-----".into()
            ),
            ("B".into(), "after".into()),
        ]
    );
    // Line numbers keep counting through a multi-line value.
    let doc = "A=\"1\n2\n3\"\nbad line\n";
    assert_eq!(
        err(doc),
        DocumentError::MalformedLine {
            line: 4,
            reason: NO_EQUALS
        }
    );
    // An escaped quote does not end the value.
    assert_eq!(one("A=\"a\\\"\nb\""), "a\"\nb");
}

#[test]
fn crlf_and_bom() {
    let doc = b"\xEF\xBB\xBFA=1\r\nB=\"x\r\ny\"\r\nC='z' # c\r\n\r\n";
    let v: Vec<(String, String)> = parse(doc)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.expose().to_owned()))
        .collect();
    assert_eq!(
        v,
        vec![
            ("A".into(), "1".into()),
            ("B".into(), "x\ny".into()),
            ("C".into(), "z".into()),
        ]
    );
    // A BOM not at the start is not skipped: it starts an invalid key.
    assert!(parse(b"A=1\n\xEF\xBB\xBFB=2").is_err());
}

#[test]
fn malformed_lines_name_the_line() {
    assert_eq!(
        err("A=1\njust some text\n"),
        DocumentError::MalformedLine {
            line: 2,
            reason: NO_EQUALS
        }
    );
    assert_eq!(
        err("A=1\nexport B\n"),
        DocumentError::MalformedLine {
            line: 2,
            reason: NO_EQUALS
        }
    );
    assert_eq!(
        err("A=1\n\nB=\"never closed\nC=2\n"),
        DocumentError::UnterminatedQuote { line: 3 }
    );
    assert_eq!(err("A='x"), DocumentError::UnterminatedQuote { line: 1 });
    assert_eq!(
        err("A=1\nB=\"x\"garbage\n"),
        DocumentError::TrailingCharacters { line: 2 }
    );
    assert_eq!(
        err("B='x\ny' garbage\n"),
        DocumentError::TrailingCharacters { line: 2 }
    );
    assert_eq!(err("A=1\nB=x\0y\n"), DocumentError::NulInValue { line: 2 });
    assert_eq!(err("B=\"x\0y\""), DocumentError::NulInValue { line: 1 });
}

#[test]
fn duplicate_keys() {
    assert_eq!(
        err("A=1\nB=2\nexport A=3\n"),
        DocumentError::DuplicateKey {
            key: "A".into(),
            first_line: 1,
            second_line: 3
        }
    );
    // Keys are case-sensitive here (renaming happens later).
    assert_eq!(kv("a=1\nA=2").len(), 2);
}

#[test]
fn invalid_utf8_names_the_line() {
    assert_eq!(
        parse(b"A=1\nB=2\nC=\xff\xfe\n").unwrap_err(),
        DocumentError::InvalidUtf8 { line: 3 }
    );
    assert_eq!(
        parse(b"\xEF\xBB\xBFA=\xc3").unwrap_err(),
        DocumentError::InvalidUtf8 { line: 1 }
    );
}

#[test]
fn errors_never_show_values_or_line_text() {
    let secret = "hunter2-S3CR3T";
    let docs = [
        format!("A={secret}\n{secret} no equals\n"),
        format!("A={secret}\n{secret} x=y\n"),
        format!("A=\"{secret}\n"),
        format!("A='{secret}'{secret}\n"),
        format!("A=\"{secret}\"{secret}\n"),
        format!("A={secret}\0\n"),
        format!("A={secret}\nA={secret}\n"),
        format!("A={secret}\n1{secret}={secret}\n"),
    ];
    for doc in &docs {
        let e = parse(doc.as_bytes()).unwrap_err();
        for shown in [e.to_string(), format!("{e:?}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(!shown.contains("S3CR3T"), "{shown}");
        }
    }
    let mut bytes = format!("A={secret}").into_bytes();
    bytes.push(0xff);
    let e = parse(&bytes).unwrap_err();
    assert!(!e.to_string().contains("hunter2"));
}

#[test]
fn values_are_secrets() {
    let v = parse(b"A=hunter2").unwrap();
    assert_eq!(format!("{:?}", v[0].1), "[REDACTED]");
}
