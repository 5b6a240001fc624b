//! `--init`: stay as the parent of the application, like tini.

use std::ffi::OsString;

use crate::environment::ChildEnv;
use crate::error::Error;

pub fn run(_command: &[OsString], _env: ChildEnv) -> Result<i32, Error> {
    Err(Error::Config(
        "--init / ENVSEAL_INIT is not supported yet; the application was not started".into(),
    ))
}
