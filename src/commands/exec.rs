//! `envseal exec`: resolve every reference, then replace envseal with the
//! application (or, with `--init`, stay as its parent). `?file` values are
//! put into in-memory files first (`process::memfile`).

use std::ffi::OsString;

use crate::cli::ExecArgs;
use crate::error::Error;
use crate::pipeline;
use crate::process;

pub fn run(args: &ExecArgs, env: Vec<(OsString, OsString)>) -> Result<i32, Error> {
    let mut flags = args.common.flags(args.init);
    flags.init_pgroup = args.init_pgroup;
    let (config, outcome) = pipeline::resolve(&flags, env)?;
    let mut child = outcome.into_result().map_err(Error::Resolution)?;
    // `?file` variables: their files stay open here (the supervisor's copy
    // under --init) until the application has exited.
    let files = process::memfile::materialise(&mut child, true)?;
    if config.init {
        let options = process::init::Options {
            pgroup: config.init_pgroup,
        };
        let code = process::init::run(&args.command, child, options);
        drop(files);
        return code;
    }
    let error = process::exec::exec(&args.command, &child);
    drop(files);
    Err(error)
}
