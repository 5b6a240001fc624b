//! `envseal push` and `envseal pull`: encrypted documents in S3.
//!
//! `push` writes the S3 Encryption Client V2 envelope (GenerateDataKey
//! AES_256 under the given key, AES-256-GCM, `kms+context`) as object
//! metadata and asks for SSE-KMS with the same key, so that every AWS SDK
//! encryption client can read it. `pull` reads an object exactly as `exec`
//! does (`backend::s3`) and prints it.

use std::ffi::OsString;
use std::future::Future;
use std::io::{Read, Write};
use std::time::Duration;

use tracing::info;
use zeroize::Zeroizing;

use crate::aws::Aws;
use crate::backend::{classify, s3};
use crate::cli::{PullArgs, PushArgs};
use crate::config::{self, Config, Flags};
use crate::document::{self, envelope};
use crate::error::{Error, FailureKind, FetchError};
use crate::reference::{self, Encryption, S3Ref, Target};

pub fn push(args: &PushArgs, env: Vec<(OsString, OsString)>) -> Result<i32, Error> {
    let timeout = start(&args.log_level, &args.timeout, &env)?;
    let target = s3_target(&args.target)?;
    if target.field.is_some() || target.object.encryption != Encryption::Auto {
        return Err(Error::Config(
            "push takes s3://BUCKET/KEY without #NAME or ?encryption= (it always writes the V2 envelope)"
                .into(),
        ));
    }
    let kms_key = args.kms_key.trim();
    if kms_key.is_empty() {
        return Err(Error::Config(
            "--kms-key needs a key id, key ARN or alias/NAME".into(),
        ));
    }
    let document = read_document(args.file.as_ref())?;
    if document.len() as u64 > s3::MAX_OBJECT_BYTES {
        return Err(Error::Config(format!(
            "the document is larger than {} MiB, which envseal would refuse to read",
            s3::MAX_OBJECT_BYTES / (1024 * 1024)
        )));
    }
    let keys = document::parse_document(&document)
        .map_err(|e| {
            Error::Config(format!(
                "the document does not parse; nothing was uploaded: {e}"
            ))
        })?
        .len();
    let object = &target.object;
    let key_arn = block_on(timeout, async {
        let aws = Aws::load().await;
        upload(&aws, object, kms_key, &document).await
    })
    .map_err(|e| failed(&args.target, e))?;
    info!(bucket = %object.bucket, key = %object.key, keys, "pushed");
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "envseal: pushed s3://{}/{} ({keys} keys, {} bytes), data key and SSE-KMS under {key_arn}",
        object.bucket,
        object.key,
        document.len()
    )
    .and_then(|_| out.flush())
    .map_err(|e| Error::Other(format!("cannot write to stdout: {e}")))?;
    Ok(0)
}

pub fn pull(args: &PullArgs, env: Vec<(OsString, OsString)>) -> Result<i32, Error> {
    let timeout = start(&args.log_level, &args.timeout, &env)?;
    let target = s3_target(&args.target)?;
    let object = &target.object;
    let bytes = block_on(timeout, async {
        let aws = Aws::load().await;
        s3::fetch_one(&aws, object).await
    })
    .map_err(|e| failed(&args.target, e))?;
    let mut out = std::io::stdout().lock();
    let written = match &target.field {
        None => out.write_all(&bytes),
        Some(field) => {
            let value = document::lookup(&bytes, field).map_err(|e| {
                failed(
                    &args.target,
                    FetchError::new(FailureKind::InvalidValue, e.to_string()),
                )
            })?;
            out.write_all(value.expose().as_bytes())
                .and_then(|_| out.write_all(b"\n"))
        }
    };
    written
        .and_then(|_| out.flush())
        .map_err(|e| Error::Other(format!("cannot write to stdout: {e}")))?;
    Ok(0)
}

/// Logging (`--log-level` / `ENVSEAL_LOG`, `ENVSEAL_LOG_FORMAT`) and the
/// deadline (`--timeout` / `ENVSEAL_TIMEOUT`).
fn start(
    log_level: &Option<String>,
    timeout: &Option<String>,
    env: &[(OsString, OsString)],
) -> Result<Duration, Error> {
    let flags = Flags {
        log_level: log_level.clone(),
        ..Flags::default()
    };
    let (level, format) = Config::logging(&flags, env)?;
    crate::init_logging(level, format);
    let timeout = timeout.clone().or_else(|| {
        env.iter()
            .rev()
            .find(|(k, _)| k == "ENVSEAL_TIMEOUT")
            .and_then(|(_, v)| v.to_str().map(str::to_owned))
    });
    match timeout {
        None => Ok(config::DEFAULT_TIMEOUT),
        Some(t) => config::parse_duration(&t).ok_or_else(|| {
            Error::Config(format!(
                "timeout {t:?} is not a duration like 30s, 500ms or 2m"
            ))
        }),
    }
}

fn s3_target(text: &str) -> Result<S3Ref, Error> {
    let reference = reference::parse_reference(text)
        .map_err(|e| Error::Config(format!("{text:?} is not an s3://BUCKET/KEY URL: {e}")))?;
    match reference.target {
        Target::S3(s3) if !reference.optional => Ok(s3),
        Target::S3(_) => Err(Error::Config(
            "?optional makes no sense here: a missing object is an error".into(),
        )),
        _ => Err(Error::Config(format!(
            "{text:?} is not an s3://BUCKET/KEY URL"
        ))),
    }
}

/// FILE, or stdin for `-` or no FILE.
fn read_document(file: Option<&OsString>) -> Result<Zeroizing<Vec<u8>>, Error> {
    let mut buf = Zeroizing::new(Vec::new());
    match file {
        Some(path) if path != "-" => {
            let mut f = std::fs::File::open(path).map_err(|e| {
                Error::Other(format!("cannot open {}: {e}", path.to_string_lossy()))
            })?;
            f.read_to_end(&mut buf).map_err(|e| {
                Error::Other(format!("cannot read {}: {e}", path.to_string_lossy()))
            })?;
        }
        _ => {
            std::io::stdin()
                .lock()
                .read_to_end(&mut buf)
                .map_err(|e| Error::Other(format!("cannot read stdin: {e}")))?;
        }
    }
    Ok(buf)
}

/// Runs AWS work on the shared current-thread runtime under one deadline.
fn block_on<T>(
    deadline: Duration,
    work: impl Future<Output = Result<T, FetchError>>,
) -> Result<T, FetchError> {
    let runtime = crate::resolve::runtime()?;
    let result = runtime.block_on(async { tokio::time::timeout(deadline, work).await });
    drop(runtime);
    result.unwrap_or_else(|_| {
        Err(FetchError::new(
            FailureKind::Timeout,
            format!(
                "no answer within the {} deadline",
                config::format_duration(deadline)
            ),
        ))
    })
}

fn failed(target: &str, e: FetchError) -> Error {
    Error::Other(format!("{target}: {} ({})", e.reason, e.kind.as_str()))
}

/// GenerateDataKey, encrypt, PutObject. Returns the KMS key's ARN.
async fn upload(
    aws: &Aws,
    object: &reference::S3Object,
    kms_key: &str,
    document: &[u8],
) -> Result<String, FetchError> {
    let region = s3::kms_arn_region(kms_key);
    let kms = aws.kms(region.as_deref())?;
    let context = envelope::encryption_context_for_push(kms_key);
    let generated = kms
        .generate_data_key()
        .key_id(kms_key)
        .key_spec(aws_sdk_kms::types::DataKeySpec::Aes256)
        .set_encryption_context(Some(context.into_iter().collect()))
        .send()
        .await
        .map_err(|e| {
            let mut e = classify(&e);
            e.reason = format!("KMS GenerateDataKey: {}", e.reason);
            e
        })?;
    let plaintext = Zeroizing::new(
        generated
            .plaintext
            .map(aws_smithy_types::Blob::into_inner)
            .unwrap_or_default(),
    );
    let mut data_key = Zeroizing::new([0u8; 32]);
    if plaintext.len() != data_key.len() {
        return Err(FetchError::new(
            FailureKind::Service,
            format!(
                "KMS GenerateDataKey returned a {}-byte data key, expected 32",
                plaintext.len()
            ),
        ));
    }
    data_key.copy_from_slice(&plaintext);
    let wrapped = generated
        .ciphertext_blob
        .map(aws_smithy_types::Blob::into_inner)
        .filter(|b| !b.is_empty())
        .ok_or_else(|| {
            FetchError::new(
                FailureKind::Service,
                "KMS GenerateDataKey returned no CiphertextBlob",
            )
        })?;
    let key_arn = generated.key_id.unwrap_or_else(|| kms_key.to_owned());
    let mut iv = [0u8; 12];
    getrandom::getrandom(&mut iv).map_err(|e| {
        FetchError::new(
            FailureKind::Service,
            format!("no randomness for the IV: {e}"),
        )
    })?;
    let (body, metadata) = envelope::encrypt_v2(&data_key, &wrapped, kms_key, document, iv);
    aws.s3()?
        .put_object()
        .bucket(&object.bucket)
        .key(&object.key)
        .body(aws_sdk_s3::primitives::ByteStream::from(body))
        .set_metadata(Some(metadata.into_iter().collect()))
        .server_side_encryption(aws_sdk_s3::types::ServerSideEncryption::AwsKms)
        .ssekms_key_id(&key_arn)
        .send()
        .await
        .map_err(|e| {
            let mut e = classify(&e);
            e.reason = format!("S3 PutObject: {}", e.reason);
            e
        })?;
    Ok(key_arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_s3_objects() {
        let t = s3_target("s3://cfg/app/prod.env").unwrap();
        assert_eq!(t.object.bucket, "cfg");
        assert_eq!(t.object.key, "app/prod.env");
        assert_eq!(t.field, None);
        let t = s3_target("s3://cfg/app/prod.env?encryption=kms#A").unwrap();
        assert_eq!(t.object.encryption, Encryption::Kms);
        assert_eq!(t.field.as_deref(), Some("A"));
        for bad in [
            "ssm:/x",
            "s3://cfg/",
            "s3://cfg/x?optional",
            "cfg/x",
            "kms:AAAA",
        ] {
            assert!(matches!(s3_target(bad), Err(Error::Config(_))), "{bad}");
        }
    }

    #[test]
    fn timeouts_from_flag_or_environment() {
        let env = vec![(OsString::from("ENVSEAL_TIMEOUT"), OsString::from("2m"))];
        assert_eq!(start(&None, &None, &env).unwrap(), Duration::from_secs(120));
        assert_eq!(
            start(&None, &Some("500ms".into()), &env).unwrap(),
            Duration::from_millis(500)
        );
        assert_eq!(start(&None, &None, &[]).unwrap(), config::DEFAULT_TIMEOUT);
        assert!(start(&None, &Some("soon".into()), &[]).is_err());
        assert!(start(&Some("loud".into()), &None, &[]).is_err());
    }
}
