//! `envseal push`: a dotenv or JSON document, encrypted client-side and
//! uploaded to S3.
//!
//! It is written as the S3 Encryption Client V2 envelope (GenerateDataKey
//! AES_256 under the given key, AES-256-GCM, `kms+context`) in object
//! metadata, with SSE-KMS under the same key, so that every AWS SDK
//! encryption client can read it (`backend::s3::push`).

use std::ffi::OsString;
use std::io::Read;

use tracing::info;
use zeroize::Zeroizing;

use super::{s3_target, start_transfer, write_stdout};
use crate::backend::s3;
use crate::cli::PushArgs;
use crate::document;
use crate::error::Error;
use crate::pipeline;
use crate::reference::Encryption;

pub fn run(args: &PushArgs, env: Vec<(OsString, OsString)>) -> Result<i32, Error> {
    let (timeout, aws) = start_transfer(&args.log_level, &args.timeout, &env)?;
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
    let key_arn = pipeline::within(timeout, async {
        let aws = super::load_aws(&aws, object.role.as_ref()).await?;
        s3::push(&aws, object, kms_key, &document).await
    })
    .map_err(|failure| Error::Transfer {
        target: args.target.clone(),
        failure,
    })?;
    info!(bucket = %object.bucket, key = %object.key, keys, "pushed");
    let line = format!(
        "envseal: pushed s3://{}/{} ({keys} keys, {} bytes), data key and SSE-KMS under {key_arn}\n",
        object.bucket,
        object.key,
        document.len()
    );
    write_stdout(line.as_bytes())?;
    Ok(0)
}

/// FILE, or stdin for `-` or no FILE.
fn read_document(file: Option<&OsString>) -> Result<Zeroizing<Vec<u8>>, Error> {
    let mut buf = Zeroizing::new(Vec::new());
    match file {
        Some(path) if path != "-" => {
            let input = |action, e: std::io::Error| Error::Input {
                action,
                source: path.to_string_lossy().into_owned(),
                reason: e.to_string(),
            };
            let mut f = std::fs::File::open(path).map_err(|e| input("open", e))?;
            f.read_to_end(&mut buf).map_err(|e| input("read", e))?;
        }
        _ => {
            std::io::stdin()
                .lock()
                .read_to_end(&mut buf)
                .map_err(|e| Error::Input {
                    action: "read",
                    source: "stdin".to_owned(),
                    reason: e.to_string(),
                })?;
        }
    }
    Ok(buf)
}
