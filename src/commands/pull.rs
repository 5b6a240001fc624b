//! `envseal pull`: an S3 object read exactly as `exec` reads it
//! (`backend::s3`), printed whole or as one value (`#NAME`).

use std::ffi::OsString;

use super::{s3_target, start_transfer, write_stdout};
use crate::backend::s3;
use crate::cli::PullArgs;
use crate::document;
use crate::error::{Error, FailureKind, FetchError};
use crate::pipeline;

pub fn run(args: &PullArgs, env: Vec<(OsString, OsString)>) -> Result<i32, Error> {
    let (timeout, aws) = start_transfer(&args.log_level, &args.timeout, &env)?;
    let target = s3_target(&args.target)?;
    let object = &target.object;
    let failed = |failure| Error::Transfer {
        target: args.target.clone(),
        failure,
    };
    let bytes = pipeline::within(timeout, async {
        let aws = super::load_aws(&aws, object.role.as_ref()).await?;
        s3::fetch_one(&aws, object).await
    })
    .map_err(failed)?;
    match &target.field {
        None => write_stdout(&bytes)?,
        Some(field) => {
            let value = document::lookup(&bytes, field)
                .map_err(|e| failed(FetchError::new(FailureKind::InvalidValue, e.to_string())))?;
            let mut line = zeroize::Zeroizing::new(value.expose().as_bytes().to_vec());
            line.push(b'\n');
            write_stdout(&line)?;
        }
    }
    Ok(0)
}
