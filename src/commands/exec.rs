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
    let child = outcome.into_result().map_err(Error::Resolution)?;
    if config.init {
        let options = process::init::Options {
            pgroup: config.init_pgroup,
        };
        return process::init::run(&args.command, child, options);
    }
    Err(process::exec::exec(&args.command, &child))
}
