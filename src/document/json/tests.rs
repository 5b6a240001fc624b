//! The JSON reader: top-level objects, numbers as written, duplicate keys,
//! and errors that never quote a value.

use super::*;

fn kv(doc: &str) -> Vec<(String, String)> {
    parse(doc.as_bytes())
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k, v.expose().to_owned()))
        .collect()
}

fn err(doc: &str) -> DocumentError {
    parse(doc.as_bytes()).unwrap_err()
}

#[test]
fn strings_numbers_booleans_in_document_order() {
    let doc = r#"{
            "zeta": "last-first",
            "db_password": "hunter2",
            "port": 5432,
            "ratio": 1.5,
            "exp": 1e3,
            "big": 18446744073709551615,
            "neg": -7,
            "debug": true,
            "off": false,
            "empty": "",
            "escaped": "a\"b\\c\nd\u00e9\u2603",
            "spaces": "  kept  "
        }"#;
    assert_eq!(
        kv(doc),
        vec![
            ("zeta".into(), "last-first".into()),
            ("db_password".into(), "hunter2".into()),
            ("port".into(), "5432".into()),
            ("ratio".into(), "1.5".into()),
            ("exp".into(), "1e3".into()),
            ("big".into(), "18446744073709551615".into()),
            ("neg".into(), "-7".into()),
            ("debug".into(), "true".into()),
            ("off".into(), "false".into()),
            ("empty".into(), "".into()),
            ("escaped".into(), "a\"b\\c\nd\u{e9}\u{2603}".into()),
            ("spaces".into(), "  kept  ".into()),
        ]
    );
    assert!(kv("{}").is_empty());
    assert!(kv(" \r\n{ } \n").is_empty());
    assert_eq!(kv("\u{feff}{\"a\":\"b\"}"), vec![("a".into(), "b".into())]);
    // Keys are kept exactly as written, whatever they contain.
    assert_eq!(kv(r#"{"job title/x":"y"}"#)[0].0, "job title/x");
}

/// PRODUCT §4: numbers are used as their JSON text, exactly as written.
#[test]
fn numbers_keep_their_source_text() {
    for n in [
        "1e3",
        "1E3",
        "1e+3",
        "2.5e-7",
        "1.50",
        "-0",
        "0",
        "-0.0",
        "12345678901234567890123",
        "-98765432109876543210.000100",
        "1e999",
        "5432",
    ] {
        assert_eq!(
            kv(&format!("{{\"n\": {n} , \"m\":{n}}}")),
            vec![("n".into(), n.into()), ("m".into(), n.into())],
            "{n}"
        );
    }
    assert_eq!(
        kv(r#"{"t":true,"f":false,"n":1.50}"#),
        vec![
            ("t".into(), "true".into()),
            ("f".into(), "false".into()),
            ("n".into(), "1.50".into())
        ]
    );
    // Only the top level is read as text; nested numbers are still an
    // unsupported value (an array), whatever they look like.
    assert!(matches!(
        err(r#"{"a":[1e3]}"#),
        DocumentError::JsonUnsupportedValue { .. }
    ));
}

#[test]
fn unsupported_values_name_the_key() {
    for (v, found) in [
        ("null", "null"),
        ("[1,2]", "an array"),
        ("{\"x\":1}", "an object"),
    ] {
        let e = err(&format!("{{\"ok\":\"1\",\"bad_key\":{v}}}"));
        assert_eq!(
            e,
            DocumentError::JsonUnsupportedValue {
                key: "bad_key".into(),
                found
            }
        );
        assert!(e.to_string().contains("\"bad_key\""), "{e}");
    }
    assert_eq!(
        err(r#"{"k":"a\u0000b"}"#),
        DocumentError::JsonNulInValue { key: "k".into() }
    );
}

#[test]
fn duplicate_keys_name_the_key() {
    let e = err(r#"{"a":"1","b":"2","a":"3"}"#);
    assert_eq!(e, DocumentError::JsonDuplicateKey { key: "a".into() });
    assert!(e.to_string().contains("\"a\""));
    // Only the top level counts; the same name nested is another error.
    assert!(matches!(
        err(r#"{"a":{"a":1,"a":2}}"#),
        DocumentError::JsonUnsupportedValue { .. }
    ));
    // Escapes are decoded before comparing.
    assert_eq!(
        err(r#"{"a":"1","\u0061":"2"}"#),
        DocumentError::JsonDuplicateKey { key: "a".into() }
    );
}

#[test]
fn not_an_object() {
    for (doc, found) in [
        ("[1]", "an array"),
        ("\"hunter2\"", "a string"),
        ("42", "a number"),
        ("-1", "a number"),
        ("true", "a boolean"),
        ("null", "null"),
        ("", "empty"),
        ("  \n", "empty"),
    ] {
        assert_eq!(err(doc), DocumentError::JsonNotObject { found }, "{doc}");
    }
    assert!(matches!(err("hunter2"), DocumentError::JsonSyntax { .. }));
    assert!(!err("\"hunter2\"").to_string().contains("hunter2"));
}

#[test]
fn invalid_utf8() {
    assert_eq!(
        parse(b"{\"a\":\"1\",\n\"b\":\"\xff\"}").unwrap_err(),
        DocumentError::JsonInvalidUtf8 { line: 2 }
    );
}

#[test]
fn syntax_errors_have_positions() {
    let cases: &[(&str, usize, usize)] = &[
        ("{\"a\":1,}", 1, 8),
        ("{\"a\" 1}", 1, 6),
        ("{\"a\":1 \"b\":2}", 1, 8),
        ("{\"a\":1}\n x", 2, 2),
        ("{\"a\":1", 1, 7),
        ("{\n\"a\":\"unterminated", 2, 17),
        ("{\n  \"a\": tru }", 2, 11),
        ("{a:1}", 1, 2),
        ("{\"a\":01}", 1, 7),
        ("{\"a\":\"x\"}}", 1, 10),
        ("{\"a\":-}", 1, 7),
        ("{\"a\":1.}", 1, 8),
        ("{\"a\":.5}", 1, 6),
        ("{\"a\":1e}", 1, 8),
        ("{\"a\":1e+}", 1, 9),
        ("{\"a\":+1}", 1, 6),
        ("{\"a\":-01}", 1, 8),
        ("{\"a\":0x10}", 1, 7),
    ];
    for &(doc, line, column) in cases {
        match err(doc) {
            DocumentError::JsonSyntax {
                line: l, column: c, ..
            } => assert_eq!((l, c), (line, column), "{doc:?}"),
            other => panic!("{doc:?}: {other:?}"),
        }
    }
    assert_eq!(
        err("{\"a\":1,}"),
        DocumentError::JsonSyntax {
            line: 1,
            column: 8,
            reason: "expected a string key"
        }
    );
    assert_eq!(
        err("{\"a\":1}\n x"),
        DocumentError::JsonSyntax {
            line: 2,
            column: 2,
            reason: "unexpected characters after the object"
        }
    );
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let doc = format!("{{\"a\":{}{}}}", "[".repeat(100_000), "]".repeat(100_000));
    assert!(matches!(err(&doc), DocumentError::JsonSyntax { .. }));
}

#[test]
fn errors_never_show_values() {
    let docs = [
        r#"{"k":"hunter2","k":"hunter2"}"#,
        r#"{"k":["hunter2"]}"#,
        r#"{"k":"hunter2" "x":1}"#,
        r#"{"k":"hunter2\u0000"}"#,
        r#"{"k":hunter2}"#,
        r#"{"k":"hunter2\q"}"#,
        r#"{"k":"hunter2"} hunter2"#,
        r#"["hunter2"]"#,
        "{\"k\":\"hunter2",
    ];
    for doc in docs {
        let e = err(doc);
        for shown in [e.to_string(), format!("{e:?}")] {
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }
}
