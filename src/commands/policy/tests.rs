//! The policy document: ARNs per reference kind, optional statements, KMS
//! narrowing, `s3:ListBucket` for optional objects.

use super::*;
use crate::reference::parse_reference;

fn scope() -> Scope {
    Scope {
        region: "us-east-1".into(),
        account: "123456789012".into(),
        partition: "aws".into(),
    }
}

fn req(r: &str) -> Request {
    Request::for_target(&parse_reference(r).unwrap().target)
}

#[test]
fn arns_for_each_kind() {
    let requests = vec![
        req("ssm:/prod/db/password"),
        req("ssm:/prod/db/password:3"),
        req("ssm:plain"),
        req("arn:aws:ssm:eu-west-1:999:parameter/eu/x"),
        req("arn:aws-cn:ssm:cn-north-1:210987654321:parameter/cn/x"),
        req("arn:aws:ssm:us-west-2::parameter/no/account"),
        req("sm:prod/api#TOKEN"),
        req("arn:aws:secretsmanager:us-west-2:999:secret:other-AbCdEf:K::"),
        req("s3://cfg-bucket/app/prod.env#X"),
        Request::SsmPath {
            path: "/myapp/prod/".into(),
            region: None,
            role: None,
        },
    ];
    let doc = document(
        &requests,
        &OptionalObjects::new(),
        &scope(),
        &BTreeSet::new(),
    );
    let text = doc.to_string();
    for arn in [
        "arn:aws:ssm:us-east-1:123456789012:parameter/prod/db/password",
        "arn:aws:ssm:us-east-1:123456789012:parameter/plain",
        // the ARN's own partition and account, not the configured ones
        "arn:aws:ssm:eu-west-1:999:parameter/eu/x\"",
        "arn:aws-cn:ssm:cn-north-1:210987654321:parameter/cn/x\"",
        // an empty account field is the caller's
        "arn:aws:ssm:us-west-2:123456789012:parameter/no/account\"",
        "arn:aws:ssm:us-east-1:123456789012:parameter/myapp/prod\"",
        "arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/api-??????",
        "arn:aws:secretsmanager:us-west-2:999:secret:other-AbCdEf\"",
        "arn:aws:s3:::cfg-bucket/app/prod.env\"",
        "arn:aws:s3:::cfg-bucket/app/prod.env.instruction",
        "ssm.us-east-1.amazonaws.com",
        "ssm.eu-west-1.amazonaws.com",
    ] {
        assert!(text.contains(arn), "{arn} missing from {text}");
    }
    // the two versions of one parameter are one resource
    assert_eq!(text.matches("parameter/prod/db/password").count(), 1);
    assert!(!text.contains("123456789012:parameter/eu/x"), "{text}");
    let sids: Vec<&str> = doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["Sid"].as_str().unwrap())
        .collect();
    assert_eq!(
        sids,
        [
            "ReadSsmParameters",
            "ReadSsmPaths",
            "DecryptSecureStringsWithCustomerKeysOptional",
            "ReadSecrets",
            "BatchReadSecretsOptional",
            "DecryptSecretsWithCustomerKeysOptional",
            "ReadS3Objects",
            "DecryptWithKms"
        ]
    );
}

fn statement<'a>(doc: &'a Value, sid: &str) -> Option<&'a Value> {
    doc["Statement"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["Sid"] == sid)
}

#[test]
fn secrets_under_customer_keys_get_an_optional_decrypt_via_secrets_manager() {
    let doc = document(
        &[
            req("sm:prod/api#TOKEN"),
            req("sm:prod/other"),
            req("arn:aws:secretsmanager:eu-west-1:999:secret:x-AbCdEf"),
        ],
        &OptionalObjects::new(),
        &scope(),
        &BTreeSet::new(),
    );
    let s = statement(&doc, "DecryptSecretsWithCustomerKeysOptional").expect("statement");
    assert!(s["Sid"].as_str().unwrap().ends_with(OPTIONAL_SID_SUFFIX));
    assert_eq!(s["Effect"], "Allow");
    assert_eq!(s["Action"], json!(["kms:Decrypt"]));
    assert_eq!(s["Resource"], "*");
    assert_eq!(
        s["Condition"],
        json!({"StringEquals": {"kms:ViaService": [
            "secretsmanager.eu-west-1.amazonaws.com",
            "secretsmanager.us-east-1.amazonaws.com",
        ]}})
    );
    // only with Secrets Manager references
    for other in ["ssm:/a", "s3://cfg-bucket/a", "kms:AQID"] {
        let doc = document(
            &[req(other)],
            &OptionalObjects::new(),
            &scope(),
            &BTreeSet::new(),
        );
        assert!(
            statement(&doc, "DecryptSecretsWithCustomerKeysOptional").is_none(),
            "{other}: {doc}"
        );
    }
}

#[test]
fn kms_keys_narrow_only_when_every_object_has_an_sse_kms_key() {
    let k1 = "arn:aws:kms:us-east-1:1:key/k1".to_owned();
    let k2 = "arn:aws:kms:us-east-1:1:key/k2".to_owned();
    let all = [
        (
            "s3://cfg-bucket/one".to_owned(),
            ObjectKey::SseKms(k1.clone()),
        ),
        (
            "s3://cfg-bucket/two".to_owned(),
            ObjectKey::SseKms(k2.clone()),
        ),
    ];
    assert_eq!(
        narrowed_kms_keys(&all),
        BTreeSet::from([k1.clone(), k2.clone()])
    );
    // one object without SSE-KMS (e.g. client-side encrypted only), or a
    // HeadObject that failed: the keys are not known, `*` stays
    for odd in [
        ObjectKey::NoSseKms,
        ObjectKey::Failed("access denied".into()),
    ] {
        let heads = [all[0].clone(), ("s3://cfg-bucket/odd".to_owned(), odd)];
        let keys = narrowed_kms_keys(&heads);
        assert!(keys.is_empty(), "{keys:?}");
        let doc = document(
            &[req("s3://cfg-bucket/one"), req("s3://cfg-bucket/odd")],
            &OptionalObjects::new(),
            &scope(),
            &keys,
        );
        assert_eq!(statement(&doc, "DecryptWithKms").unwrap()["Resource"], "*");
    }
}

#[test]
fn nothing_configured_is_an_empty_policy() {
    let doc = document(&[], &OptionalObjects::new(), &scope(), &BTreeSet::new());
    assert_eq!(doc["Statement"].as_array().unwrap().len(), 0);
}

#[test]
fn resolved_kms_keys_narrow_the_decrypt_statement() {
    let keys: BTreeSet<String> = ["arn:aws:kms:us-east-1:1:key/k".to_owned()].into();
    let doc = document(
        &[req("s3://cfg-bucket/a")],
        &OptionalObjects::new(),
        &scope(),
        &keys,
    );
    assert!(doc.to_string().contains("arn:aws:kms:us-east-1:1:key/k"));
    let doc = document(
        &[req("s3://cfg-bucket/a"), req("kms:AQID")],
        &OptionalObjects::new(),
        &scope(),
        &keys,
    );
    assert!(doc.to_string().contains("\"Resource\":\"*\""));
}

fn optional(objects: &[(&str, &str)]) -> OptionalObjects {
    objects
        .iter()
        .map(|(b, k)| (b.to_string(), k.to_string()))
        .collect()
}

#[test]
fn optional_s3_objects_get_list_bucket_narrowed_to_their_keys() {
    let requests = [
        req("s3://cfg-bucket/app/prod.env?optional"),
        req("s3://cfg-bucket/app/extra.env?optional"),
        req("s3://cfg-bucket/app/required.env"),
        req("s3://other-bucket/flags.json?optional"),
        req("ssm:/a?optional"),
    ];
    let doc = document(
        &requests,
        &optional(&[
            ("cfg-bucket", "app/prod.env"),
            ("cfg-bucket", "app/extra.env"),
            ("other-bucket", "flags.json"),
        ]),
        &scope(),
        &BTreeSet::new(),
    );
    // one statement per bucket, numbered when there are several
    let first = statement(&doc, "ListBucketForOptionalObjects1").expect("statement");
    assert_eq!(
        first,
        &json!({
            "Sid": "ListBucketForOptionalObjects1",
            "Effect": "Allow",
            "Action": ["s3:ListBucket"],
            "Resource": "arn:aws:s3:::cfg-bucket",
            "Condition": {"StringEquals": {"s3:prefix": ["app/extra.env", "app/prod.env"]}},
        })
    );
    let second = statement(&doc, "ListBucketForOptionalObjects2").expect("statement");
    assert_eq!(second["Resource"], "arn:aws:s3:::other-bucket");
    assert_eq!(
        second["Condition"],
        json!({"StringEquals": {"s3:prefix": ["flags.json"]}})
    );
    // a required statement: without it `?optional` fails closed on real S3
    assert!(!first["Sid"]
        .as_str()
        .unwrap()
        .ends_with(OPTIONAL_SID_SUFFIX));
    // the required object is not listable
    assert!(!doc.to_string().contains("\"app/required.env\"]"), "{doc}");

    // one bucket: one statement, no number; the partition is the scope's
    let cn = Scope {
        partition: "aws-cn".into(),
        ..scope()
    };
    let doc = document(
        &[req("s3://cfg-bucket/a?optional")],
        &optional(&[("cfg-bucket", "a")]),
        &cn,
        &BTreeSet::new(),
    );
    let s = statement(&doc, LIST_FOR_OPTIONAL_SID).expect("statement");
    assert_eq!(s["Resource"], "arn:aws-cn:s3:::cfg-bucket");

    // no optional S3 reference: no ListBucket at all
    let doc = document(
        &[req("s3://cfg-bucket/a"), req("ssm:/x?optional")],
        &OptionalObjects::new(),
        &scope(),
        &BTreeSet::new(),
    );
    assert!(!doc.to_string().contains("s3:ListBucket"), "{doc}");
}

#[test]
fn optional_objects_come_from_optional_references_and_sources() {
    let env: Vec<(OsString, OsString)> = [
        ("A", "s3://bkt-one/opt.env?optional"),
        ("B", "s3://bkt-one/req.env"),
        ("C", "s3://bkt-two/k.json#X?optional"),
        ("D", "ssm:/p?optional"),
    ]
    .iter()
    .map(|(k, v)| (OsString::from(k), OsString::from(v)))
    .collect();
    let inherited = split_inherited(env, &[]);
    assert!(inherited.failures.is_empty(), "{:?}", inherited.failures);
    let sources: Vec<SourceSpec> = [
        "s3://bkt-three/bundle.env?optional",
        "s3://bkt-three/required.env",
    ]
    .iter()
    .map(|raw| SourceSpec {
        raw: raw.to_string(),
        source: crate::reference::parse_source(raw).unwrap(),
    })
    .collect();
    assert_eq!(
        optional_objects(&inherited.refs, &sources),
        optional(&[
            ("bkt-one", "opt.env"),
            ("bkt-two", "k.json"),
            ("bkt-three", "bundle.env")
        ])
    );
}

#[test]
fn watching_adds_describe_secret_on_the_same_secrets() {
    let requests = vec![req("sm:prod/api#TOKEN"), req("ssm:/prod/db")];
    let mut doc = document(
        &requests,
        &OptionalObjects::new(),
        &scope(),
        &BTreeSet::new(),
    );
    let before = doc["Statement"].as_array().unwrap().len();
    add_watch_statements(&mut doc, &requests, &scope());
    let statements = doc["Statement"].as_array().unwrap();
    assert_eq!(statements.len(), before + 1);
    let watch = statements.last().unwrap();
    assert_eq!(watch["Action"], json!(["secretsmanager:DescribeSecret"]));
    assert_eq!(
        watch["Resource"],
        json!(["arn:aws:secretsmanager:us-east-1:123456789012:secret:prod/api-??????"])
    );
    // Nothing to add without a secret.
    let requests = vec![req("ssm:/prod/db")];
    let mut doc = document(
        &requests,
        &OptionalObjects::new(),
        &scope(),
        &BTreeSet::new(),
    );
    let before = doc.clone();
    add_watch_statements(&mut doc, &requests, &scope());
    assert_eq!(doc, before);
}
