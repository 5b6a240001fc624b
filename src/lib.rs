//! envseal: a container entrypoint that reads secrets from AWS, puts them into
//! the application's environment in memory, and `execve`s the application.
//!
//! # Layout
//!
//! The data flows one way; one module per step:
//!
//! - `cli`         — the command line as typed (clap)
//! - `config`      — flags + `ENVSEAL_*` → one [`config::Config`]
//! - `reference`   — the reference grammar → [`reference::Reference`] / [`reference::Source`] (pure)
//! - `environment` — which inherited variables are references; naming, precedence,
//!   collisions → the child's environment (pure)
//! - `plan`        — deduplicated [`plan::Request`]s, split per backend
//! - `resolve`     — runs the plan under one deadline on a current-thread runtime
//! - `aws`         — SDK configuration, loaded once and only when needed; clients per region
//! - `backend/`    — `ssm`, `secrets_manager`: AWS calls only, batching and fallbacks
//! - `document/`   — dotenv, JSON and S3 envelope decoding (pure)
//! - `output`      — what `check` and `export` print
//! - `policy`      — the least-privilege IAM policy for the configured references
//! - `s3cmd`       — `push` and `pull` of encrypted documents
//! - `process/`    — `exec` (execve with PATH lookup), `init` (supervisor), `install` (no AWS in here)
//! - `secret`      — the redacting, zeroizing value type
//! - `error`       — the error enum and exit codes

pub mod aws;
pub mod backend;
pub mod cli;
pub mod config;
pub mod document;
pub mod environment;
pub mod error;
pub mod output;
pub mod plan;
pub mod policy;
pub mod process;
pub mod reference;
pub mod resolve;
pub mod s3cmd;
pub mod secret;

use std::ffi::OsString;

use clap::Parser;

use crate::config::{Config, Flags, LogFormat};
use crate::error::Error;

/// Runs envseal with these arguments and this inherited environment; returns
/// the exit code (when it returns at all: `exec` replaces the process).
pub fn run(args: Vec<OsString>, env: Vec<(OsString, OsString)>) -> i32 {
    let cli = match cli::Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() {
                error::EXIT_RESOLUTION
            } else {
                0
            };
            let _ = e.print();
            return code;
        }
    };
    match dispatch(cli.command, env) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{e}");
            e.exit_code()
        }
    }
}

fn dispatch(command: cli::Command, env: Vec<(OsString, OsString)>) -> Result<i32, Error> {
    match command {
        cli::Command::Exec(args) => {
            let mut flags = args.common.flags(args.init);
            flags.init_pgroup = args.init_pgroup;
            let (config, outcome) = resolve_all(&flags, env)?;
            let child = outcome.into_result().map_err(Error::Resolution)?;
            if config.init {
                let options = process::init::Options {
                    pgroup: config.init_pgroup,
                };
                return process::init::run(&args.command, child, options);
            }
            Err(process::exec::exec(&args.command, &child))
        }
        cli::Command::Check(args) => {
            let flags = args.common.flags(false);
            let format = output::CheckFormat::parse(&args.format)?;
            output::check(&flags, env, format)
        }
        cli::Command::Export(args) => {
            let flags = args.common.flags(false);
            let format = output::ExportFormat::parse(&args.format)?;
            let child = resolve_all(&flags, env)?
                .1
                .into_result()
                .map_err(Error::Resolution)?;
            output::export(&child, format)?;
            Ok(0)
        }
        cli::Command::Policy(args) => {
            let flags = args.common.flags(false);
            policy::print(&flags, env, args.resolve)
        }
        cli::Command::Push(args) => s3cmd::push(&args, env),
        cli::Command::Pull(args) => s3cmd::pull(&args, env),
        cli::Command::Install(args) => process::install::install(&args.dest),
    }
}

/// Starts logging on stderr. envseal's own events at the configured level;
/// everything else (the SDK, hyper, rustls) at most at debug.
pub fn init_logging(level: tracing::Level, format: LogFormat) {
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::prelude::*;
    let others = if level > tracing::Level::DEBUG {
        tracing::Level::DEBUG
    } else {
        level
    };
    let filter = Targets::new()
        .with_target("envseal", level)
        .with_default(others);
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .with_target(true);
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Text => registry.with(layer).try_init(),
        LogFormat::Json => registry.with(layer.json().flatten_event(true)).try_init(),
    };
}

/// Configuration, references, fetch, assembly: the child's environment and
/// every failure.
pub fn resolve_all(
    flags: &Flags,
    env: Vec<(OsString, OsString)>,
) -> Result<(Config, environment::Outcome), Error> {
    let (level, format) = Config::logging(flags, &env)?;
    init_logging(level, format);
    let config = match Config::new(flags, &env) {
        // Malformed sources: list the malformed per-variable references of
        // the same run with them, so that one run names every mistake.
        Err(Error::Resolution(mut failures)) => {
            failures.extend(environment::split_inherited(env).failures);
            return Err(Error::Resolution(failures));
        }
        other => other?,
    };
    let inherited = environment::split_inherited(env);
    let requests = environment::requests(&inherited.refs, &config.sources);
    let plan = plan::Plan::new(&requests);
    tracing::debug!(
        references = inherited.refs.len(),
        bundles = config.sources.len(),
        requests = plan.len(),
        "planned"
    );
    let answers = resolve::fetch(&plan, config.timeout);
    let outcome = environment::assemble(inherited, &config.sources, config.collision, &answers);
    Ok((config, outcome))
}
