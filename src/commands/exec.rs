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
    flags.watch = args.watch.clone();
    flags.on_change = args.on_change.clone();
    flags.stop_signal = args.stop_signal.clone();
    flags.stop_timeout = args.stop_timeout.clone();
    if crate::config::watch_config(&flags, &env)?.is_some() {
        // --watch: the environment is kept to resolve again.
        let (config, outcome, baseline) = pipeline::resolve_watched(&flags, env.clone())?;
        let child = outcome.into_result().map_err(Error::Resolution)?;
        let watch = config.watch.expect("--watch is set");
        return crate::watch::run(&args.command, config, watch, env, child, baseline);
    }
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
