//! The reference and source grammar: every form, ARNs, options, and what is
//! refused.

use super::*;

fn ssm(name: &str, selector: Option<&str>, region: Option<&str>) -> Target {
    Target::Ssm(SsmParam {
        name: name.into(),
        selector: selector.map(Into::into),
        region: region.map(Into::into),
        partition: None,
        account: None,
        role: None,
    })
}

/// An SSM parameter named by ARN: region, partition and account kept.
fn ssm_from_arn(name: &str, selector: Option<&str>, arn: (&str, &str, Option<&str>)) -> Target {
    let (partition, region, account) = arn;
    Target::Ssm(SsmParam {
        name: name.into(),
        selector: selector.map(Into::into),
        region: Some(region.into()),
        partition: Some(partition.into()),
        account: account.map(Into::into),
        role: None,
    })
}

fn reason(input: &str) -> String {
    parse_reference(input).unwrap_err().reason
}

#[test]
fn ssm_forms() {
    let r = parse_reference("ssm:/prod/db/password").unwrap();
    assert_eq!(r.target, ssm("/prod/db/password", None, None));
    assert!(!r.optional);
    assert_eq!(
        parse_reference("ssm:/prod/db:3").unwrap().target,
        ssm("/prod/db", Some("3"), None)
    );
    assert_eq!(
        parse_reference("ssm:plain:live").unwrap().target,
        ssm("plain", Some("live"), None)
    );
    let r = parse_reference("ssm:/a/b?optional").unwrap();
    assert!(r.optional);
    assert_eq!(r.target, ssm("/a/b", None, None));
    assert!(parse_reference("ssm:/a/b:2&optional").is_err()); // '&' only inside '?…'
    assert!(parse_reference("ssm:/a/b:2?version-stage=x&optional").is_err());
}

#[test]
fn ssm_arn() {
    let acct = ("aws", "eu-west-1", Some("123456789012"));
    let r = parse_reference("arn:aws:ssm:eu-west-1:123456789012:parameter/prod/db/pw").unwrap();
    assert_eq!(r.target, ssm_from_arn("/prod/db/pw", None, acct));
    let r =
        parse_reference("arn:aws:ssm:eu-west-1:123456789012:parameter/plain:4?optional").unwrap();
    assert_eq!(r.target, ssm_from_arn("plain", Some("4"), acct));
    assert!(r.optional);
    // Partition and account are kept (policy ARNs are built from them);
    // an empty account field means the caller's.
    let r = parse_reference("arn:aws-cn:ssm:cn-north-1:210987654321:parameter/x").unwrap();
    assert_eq!(
        r.target,
        ssm_from_arn("x", None, ("aws-cn", "cn-north-1", Some("210987654321")))
    );
    let r = parse_reference("arn:aws:ssm:us-east-1::parameter/x").unwrap();
    assert_eq!(
        r.target,
        ssm_from_arn("x", None, ("aws", "us-east-1", None))
    );
}

/// What goes to the API as `Name`: the ARN when it names an account
/// (shared parameters are read by ARN), the name otherwise.
#[test]
fn ssm_request_names() {
    let name = |r: &str| match parse_reference(r).unwrap().target {
        Target::Ssm(p) => (p.api_name(), p.request_name()),
        other => panic!("{other:?}"),
    };
    assert_eq!(
        name("arn:aws:ssm:eu-west-1:210987654321:parameter/prod/db/pw:3"),
        (
            "/prod/db/pw:3".to_owned(),
            "arn:aws:ssm:eu-west-1:210987654321:parameter/prod/db/pw:3".to_owned()
        )
    );
    assert_eq!(
        name("arn:aws-cn:ssm:cn-north-1:210987654321:parameter/plain").1,
        "arn:aws-cn:ssm:cn-north-1:210987654321:parameter/plain"
    );
    assert_eq!(name("arn:aws:ssm:us-east-1::parameter/x").1, "x");
    assert_eq!(name("ssm:/a/b:label").1, "/a/b:label");
}

#[test]
fn ssm_malformed() {
    assert_eq!(reason("ssm:"), "empty parameter name");
    assert!(reason("ssm:/a/b:").contains("empty version"));
    assert!(reason("ssm:/a b").contains("invalid character"));
    assert!(reason("ssm:/a/b#x").contains("no '#KEY'"));
    assert!(reason("ssm:/a/b/").contains("bundle"));
    assert!(reason("ssm:/a/b:1:2").contains("more than one"));
    assert!(reason("ssm:/a/b:01").contains("positive"));
    assert!(reason("ssm:/a?bogus").contains("unknown option"));
    assert!(reason("ssm:a/b").contains("must start with '/'"));
    assert!(reason("ssm:/a//b").contains("//"));
    assert!(reason("arn:aws:ssm::1:parameter/x").contains("region"));
    assert!(reason("arn:aws:ssm:us-east-1:1:document/x").contains("parameter/NAME"));
    assert!(reason("ssm:/a/b\n").contains("control"));
}

#[test]
fn sm_forms() {
    let r = parse_reference("sm:prod/api#TOKEN").unwrap();
    let Target::Secret(s) = r.target else {
        panic!()
    };
    assert_eq!(s.version.secret_id, "prod/api");
    assert_eq!(s.key.as_deref(), Some("TOKEN"));
    assert_eq!(s.version.version_stage, None);

    let r = parse_reference("sm:prod/api?version-stage=AWSPREVIOUS#TOKEN").unwrap();
    let Target::Secret(s) = r.target else {
        panic!()
    };
    assert_eq!(s.version.version_stage.as_deref(), Some("AWSPREVIOUS"));
    assert_eq!(s.key.as_deref(), Some("TOKEN"));

    let r = parse_reference("sm:prod/api#TOKEN?version-id=abc&optional").unwrap();
    assert!(r.optional);
    let Target::Secret(s) = r.target else {
        panic!()
    };
    assert_eq!(s.version.version_id.as_deref(), Some("abc"));
    assert_eq!(s.key.as_deref(), Some("TOKEN"));
}

#[test]
fn sm_ecs_arn() {
    let arn = "arn:aws:secretsmanager:us-west-2:123456789012:secret:dev/likz/api-AbCdEf";
    let r = parse_reference(&format!("{arn}:TOKEN::")).unwrap();
    let Target::Secret(s) = r.target else {
        panic!()
    };
    assert_eq!(s.version.secret_id, arn);
    assert_eq!(s.version.region.as_deref(), Some("us-west-2"));
    assert_eq!(s.key.as_deref(), Some("TOKEN"));
    assert_eq!(s.version.version_stage, None);

    let r = parse_reference(&format!("{arn}::AWSPREVIOUS:")).unwrap();
    let Target::Secret(s) = r.target else {
        panic!()
    };
    assert_eq!(s.key, None);
    assert_eq!(s.version.version_stage.as_deref(), Some("AWSPREVIOUS"));

    let r = parse_reference(&format!("{arn}:K:AWSCURRENT:vid")).unwrap();
    let Target::Secret(s) = r.target else {
        panic!()
    };
    assert_eq!(s.version.version_id.as_deref(), Some("vid"));

    // sm: + ARN is the same thing
    let r2 = parse_reference(&format!("sm:{arn}#TOKEN")).unwrap();
    let Target::Secret(s2) = r2.target else {
        panic!()
    };
    assert_eq!(s2.version.secret_id, arn);
    assert_eq!(s2.key.as_deref(), Some("TOKEN"));

    assert!(parse_reference(&format!("{arn}:a:b:c:d")).is_err());
    assert!(parse_reference(&format!("{arn}:K#K"))
        .unwrap_err()
        .reason
        .contains("twice"));
}

#[test]
fn sm_malformed() {
    assert_eq!(reason("sm:"), "empty secret id");
    assert!(reason("sm:a#").contains("empty key"));
    assert!(reason("sm:a?version-stage").contains("needs a value"));
    assert!(reason("sm:a b").contains("invalid character"));
    assert!(reason("sm:a:b").contains("':'"));
    assert!(reason("sm:a?encryption=kms").contains("encryption"));
}

/// Regression (found in review): a repeated option silently took the last value
/// (`?version-stage=AWSCURRENT&version-stage=AWSPREVIOUS` read the
/// previous version); an ambiguous reference is now refused.
#[test]
fn repeated_options_are_refused() {
    assert!(reason("sm:a?version-stage=A&version-stage=B").contains("twice"));
    assert!(reason("sm:a?version-id=1&version-id=2").contains("twice"));
    assert!(reason("s3://bucket/k?encryption=kms&encryption=none").contains("twice"));
    // Saying optional twice is not ambiguous.
    assert!(
        parse_reference("ssm:/a?optional&optional")
            .unwrap()
            .optional
    );
}

#[test]
fn s3_forms() {
    let r = parse_reference("s3://cfg-bucket/myapp/prod.env#DB_URL?encryption=kms").unwrap();
    let Target::S3(s) = r.target else { panic!() };
    assert_eq!(s.object.bucket, "cfg-bucket");
    assert_eq!(s.object.key, "myapp/prod.env");
    assert_eq!(s.object.encryption, Encryption::Kms);
    assert_eq!(s.field.as_deref(), Some("DB_URL"));
    assert!(reason("s3://Bad_Bucket/k").contains("bucket"));
    assert!(reason("s3://bucket").contains("s3://BUCKET/KEY"));
    assert!(reason("s3://bucket/").contains("empty object key"));
    assert!(reason("s3://bucket/k?encryption=rot13").contains("unknown encryption"));
}

#[test]
fn kms_forms() {
    let r = parse_reference("kms:AQIDBA==").unwrap();
    assert_eq!(
        r.target,
        Target::Kms(KmsBlob {
            ciphertext: vec![1, 2, 3, 4],
            region: None,
            role: None
        })
    );
    assert!(reason("kms:not base64!").contains("base64"));
    assert!(reason("kms:").contains("empty"));
    assert!(reason("kms:AQID#x").contains("'#KEY'"));
}

#[test]
fn detection() {
    assert!(looks_like_reference("ssm:/x"));
    assert!(looks_like_reference(
        "arn:aws:secretsmanager:us-east-1:1:secret:x"
    ));
    assert!(looks_like_reference(
        "arn:aws-cn:ssm:cn-north-1:1:parameter/x"
    ));
    assert!(!looks_like_reference("arn:aws:iam::1:role/x"));
    assert!(!looks_like_reference("postgres://host/db"));
    assert!(!looks_like_reference("plain"));
}

#[test]
fn sources() {
    let s = parse_source("ssm:/myapp/prod").unwrap();
    assert_eq!(
        s.bundle,
        Bundle::SsmPath {
            path: "/myapp/prod/".into(),
            region: None,
            role: None,
        }
    );
    let s = parse_source("arn:aws:ssm:eu-west-1:1:parameter/myapp/prod/").unwrap();
    assert_eq!(
        s.bundle,
        Bundle::SsmPath {
            path: "/myapp/prod/".into(),
            region: Some("eu-west-1".into()),
            role: None,
        }
    );
    let s = parse_source("sm:prod/api?optional").unwrap();
    assert!(s.optional);
    assert!(matches!(s.bundle, Bundle::Secret(_)));
    let s = parse_source(" s3://cfg-bucket/myapp/prod.env ").unwrap();
    assert!(matches!(s.bundle, Bundle::S3(_)));
    assert!(parse_source("ssm:relative/").is_err());
    assert!(parse_source("sm:prod/api#KEY").is_err());
    assert!(parse_source("kms:AQID").is_err());
    assert!(parse_source("https://x").is_err());
    assert!(parse_source("").is_err());
}

/// Other tools' forms parse to exactly what envseal's own do; an error says
/// what the form was read as; vals' other providers are references (and
/// refused), not plain strings.
#[test]
fn other_tools_forms() {
    for (theirs, ours) in [
        ("ssm:///prod/db", "ssm:/prod/db"),
        ("ssm://name:2", "ssm:name:2"),
        ("ref+awsssm://prod/db+", "ssm:/prod/db"),
        ("ref+awssecrets://prod/api#/TOKEN", "sm:prod/api#TOKEN"),
        (
            "ref+awssecrets://prod/api?version_stage=AWSPREVIOUS#/TOKEN",
            "sm:prod/api#TOKEN?version-stage=AWSPREVIOUS",
        ),
        ("ref+s3://bucket/k.env#/A", "s3://bucket/k.env#A"),
    ] {
        assert_eq!(parse_reference(theirs), parse_reference(ours), "{theirs}");
    }
    let e = reason("ref+awsssm://prod//db");
    assert!(
        e.contains("'//'") && e.contains("(read as ssm:/prod//db)"),
        "{e}"
    );
    assert!(reason("ref+awsssm://a?bogus").contains("unknown option 'bogus'"));
    // vals' region and role_arn are envseal's ?region= and ?role-arn=.
    assert_eq!(
        parse_reference("ref+awsssm://prod/db?region=eu-west-1"),
        parse_reference("ssm:/prod/db?region=eu-west-1")
    );
    let role = "arn:aws:iam::210987654321:role/reader";
    assert_eq!(
        parse_reference(&format!("ref+awssecrets://prod/api?role_arn={role}#/T+")),
        parse_reference(&format!("sm:prod/api#T?role-arn={role}"))
    );
    assert_eq!(
        parse_source("ref+awsssm://app/?region=eu-west-1"),
        parse_source("ssm:/app/?region=eu-west-1")
    );
    assert!(looks_like_reference("ref+vault://kv/x"));
    assert!(looks_like_reference("ssm://x"));
    assert!(!looks_like_reference("ref+nothing"));
    assert!(reason("ref+vault://kv/x").contains("'vault'"));
    assert_eq!(
        parse_source("ssm:///app/prod/").unwrap(),
        parse_source("ssm:/app/prod/").unwrap()
    );
    assert_eq!(
        parse_source(" ref+awsssm://app/prod/ ").unwrap(),
        parse_source("ssm:/app/prod/").unwrap()
    );
    assert_eq!(
        parse_source("ref+awssecrets://app/cfg").unwrap(),
        parse_source("sm:app/cfg").unwrap()
    );
}

/// `?file` on every reference form, combined with other options and `#KEY`
/// in either order; refused on every bundle form, naming what to do.
#[test]
fn file_option() {
    for input in [
        "ssm:/a/b?file",
        "ssm:/a/b:3?optional&file",
        "arn:aws:ssm:eu-west-1:123456789012:parameter/a?file",
        "sm:prod/tls#KEY?file",
        "sm:prod/tls?file#KEY",
        "sm:prod/tls?version-stage=AWSPREVIOUS&file",
        "arn:aws:secretsmanager:eu-west-1:1:secret:prod/tls:KEY::?file",
        "s3://bucket/cert.p12?encryption=none&file",
        "s3://bucket/app.env#KEY?file=true",
        "kms:AQID?file",
        "ssm:/a?region=eu-west-1&file",
        "sm:prod/tls#KEY?role-arn=arn:aws:iam::210987654321:role/r&file&external-id=ext-42",
    ] {
        let r = parse_reference(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert!(r.file, "{input}");
    }
    let r = parse_reference("ssm:/a/b?optional&file").unwrap();
    assert!(r.optional && r.file);
    assert_eq!(r.target, ssm("/a/b", None, None));
    assert!(!parse_reference("ssm:/a/b").unwrap().file);
    assert!(!parse_reference("ssm:/a/b?file=false").unwrap().file);
    assert_eq!(
        parse_reference("sm:prod/tls#KEY?file").unwrap().target,
        parse_reference("sm:prod/tls#KEY").unwrap().target
    );
    assert!(parse_reference("ssm:/a?file=yes").is_err());
    for source in [
        "ssm:/app/?file",
        "sm:prod/api?file",
        "s3://bucket/app.env?optional&file",
        "arn:aws:ssm:eu-west-1:1:parameter/app/?file",
        "arn:aws:secretsmanager:eu-west-1:1:secret:prod/api?file",
    ] {
        let e = parse_source(source).unwrap_err();
        assert!(e.reason.contains("bundle"), "{source}: {e}");
        assert!(e.reason.contains("?file"), "{source}: {e}");
    }
}

#[test]
fn role_and_region_options() {
    let role = "arn:aws:iam::210987654321:role/reader";
    let r = parse_reference(&format!(
        "ssm:/prod/db?role-arn={role}&external-id=ext-42&optional"
    ))
    .unwrap();
    assert!(r.optional);
    let Target::Ssm(p) = &r.target else { panic!() };
    assert_eq!(
        p.role,
        Some(Role {
            arn: role.into(),
            external_id: Some("ext-42".into())
        })
    );
    assert_eq!(p.role.as_ref().unwrap().account(), "210987654321");
    let r = parse_reference("ssm:/prod/db?region=eu-west-1").unwrap();
    let Target::Ssm(p) = &r.target else { panic!() };
    assert_eq!(p.region.as_deref(), Some("eu-west-1"));
    assert_eq!(p.role, None);
    // every kind takes both
    for input in [
        "sm:prod/api?region=us-gov-west-1#K",
        "s3://cfg-bucket/a.env?region=cn-north-1&role-arn=arn:aws-cn:iam::210987654321:role/p/r",
        "kms:AQID?region=ap-southeast-2",
        "arn:aws:ssm:eu-west-1:1:parameter/x?region=eu-west-1",
    ] {
        assert!(parse_reference(input).is_ok(), "{input}");
    }
    let r = parse_reference("s3://cfg-bucket/a.env?region=eu-west-2").unwrap();
    let Target::S3(s) = &r.target else { panic!() };
    assert_eq!(s.object.region.as_deref(), Some("eu-west-2"));
    let s = parse_source(&format!("ssm:/app/?region=eu-west-1&role-arn={role}")).unwrap();
    assert_eq!(
        s.bundle,
        Bundle::SsmPath {
            path: "/app/".into(),
            region: Some("eu-west-1".into()),
            role: Some(Role {
                arn: role.into(),
                external_id: None
            }),
        }
    );
    // an ARN's region wins; another ?region= is an error
    assert!(reason("arn:aws:ssm:eu-west-1:1:parameter/x?region=us-east-1").contains("conflicts"));
    assert!(
        reason("arn:aws:secretsmanager:eu-west-1:1:secret:x?region=us-east-1")
            .contains("conflicts")
    );
    for (bad, why) in [
        ("ssm:/x?region=EU-WEST-1", "invalid region"),
        ("ssm:/x?region=useast1", "invalid region"),
        ("ssm:/x?region=", "needs a value"),
        ("ssm:/x?region=eu-west-1&region=eu-west-1", "twice"),
        ("ssm:/x?external-id=abc", "needs 'role-arn'"),
        ("ssm:/x?role-arn=arn:aws:iam::12345:role/r", "12 digits"),
        (
            "ssm:/x?role-arn=arn:aws:iam::123456789012:user/r",
            "not a role",
        ),
        (
            "ssm:/x?role-arn=arn:aws-iso:iam::123456789012:role/r",
            "partition",
        ),
        (
            "ssm:/x?role-arn=arn:aws:s3::123456789012:role/r",
            "not an IAM ARN",
        ),
        (
            "ssm:/x?role-arn=arn:aws:iam::123456789012:role/",
            "role name",
        ),
        (
            "ssm:/x?role-arn=arn:aws:iam::123456789012:role/a b",
            "role name",
        ),
        (
            "ssm:/x?role-arn=arn:aws:iam::123456789012:role/r&external-id=x",
            "external id",
        ),
    ] {
        let r = reason(bad);
        assert!(r.contains(why), "{bad}: {r}");
    }
}

#[test]
fn region_and_session_name_shapes() {
    for ok in [
        "us-east-1",
        "eu-central-2",
        "us-gov-west-1",
        "cn-northwest-1",
        "us-isob-east-1",
    ] {
        assert!(valid_region(ok), "{ok}");
    }
    for bad in [
        "",
        "us",
        "us-east",
        "US-EAST-1",
        "us-east-1a",
        "u-east-1",
        "us--1",
    ] {
        assert!(!valid_region(bad), "{bad}");
    }
    assert!(valid_session_name("envseal"));
    assert!(valid_session_name("ci@build=7,x.y-z_w+"));
    assert!(!valid_session_name("a"));
    assert!(!valid_session_name(&"a".repeat(65)));
    assert!(!valid_session_name("has space"));
    assert!(!valid_session_name("slash/no"));
}

#[test]
fn default_role_fills_only_references_without_one() {
    let base = Role::new("arn:aws:iam::111111111111:role/base", None).unwrap();
    let own = "arn:aws:iam::222222222222:role/own";
    let mut t = parse_reference("sm:x").unwrap().target;
    t.default_role(&base);
    let Target::Secret(s) = &t else { panic!() };
    assert_eq!(s.version.role.as_ref(), Some(&base));
    let mut t = parse_reference(&format!("kms:AQID?role-arn={own}"))
        .unwrap()
        .target;
    t.default_role(&base);
    let Target::Kms(k) = &t else { panic!() };
    assert_eq!(k.role.as_ref().unwrap().arn, own);
}
