//! `envseal exec`: resolve every reference, then replace envseal with the
//! application (or, with `--init`, stay as its parent).

use std::ffi::OsString;

use crate::cli::ExecArgs;
use crate::error::Error;
use crate::pipeline;
use crate::process;

pub fn run(args: &ExecArgs, env: Vec<(OsString, OsString)>) -> Result<i32, Error> {
    let mut flags = args.common.flags(args.init);
    flags.init_pgroup = args.init_pgroup;
    let (config, outcome) = pipeline::resolve(&flags, env)?;
    let child = outcome.into_result().map_err(Error::Resolution)?;
    if config.init {
        let options = process::init::Options {
            pgroup: config.init_pgroup,
        };
        return process::init::run(&args.command, child, options);
    }
    Err(process::exec::exec(&args.command, &child))
}
