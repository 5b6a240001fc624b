//! envseal: a container entrypoint that reads secrets from AWS, puts them into
//! the application's environment in memory, and `execve`s the application.
//!
//! # Layout
//!
//! The data flows one way: arguments and environment → configuration →
//! references → a fetch plan → AWS → decrypted, decoded documents → the
//! child's environment → exec. The modules below are listed so that each
//! imports only from modules further down the list; nothing imports
//! `lib.rs`, which parses the command line and dispatches.
//!
//! - `commands/`   — one module per subcommand: `exec`, `check`, `export`,
//!   `policy`, `push`, `pull`, `install`; nothing below imports them
//! - `cli`         — the command line as typed (clap)
//! - `watch`       — `--watch`: the check loop (its own thread), re-resolve,
//!   restart or signal through `process::init`
//! - `pipeline`    — config → plan → fetch → assemble, shared by every
//!   resolving command; the one runtime-under-a-deadline helper
//! - `log`         — logging on stderr (other crates' events reduced to one line)
//! - `process/`    — `exec` (execve with PATH lookup), `init` (supervisor); no AWS in here
//! - `environment` — fetched answers → the child's environment: naming,
//!   precedence, collisions (pure)
//! - `backend/`    — every AWS call: `client` (SDK configuration, clients,
//!   the HTTPS connector), `trust`, `credentials`, `retry`; `ssm`,
//!   `secrets_manager`, `s3` (also push and HeadObject), `kms`, `sts`
//! - `config`      — flags + `ENVSEAL_*` + the `AWS_*` that envseal reads →
//!   one [`config::Config`]
//! - `plan`        — which inherited variables are references; deduplicated
//!   [`plan::Request`]s split per backend; [`plan::Fetched`] /
//!   [`plan::Answer`], what a backend hands to `environment`
//! - `reference`   — the reference grammar → [`reference::Reference`] /
//!   [`reference::Source`] (pure); `compat` (other tools' forms → envseal's),
//!   `template` (`{{REF}}` segments in a value)
//! - `glob`        — `--ignore` / `ENVSEAL_IGNORE` name patterns (pure)
//! - `s3ec/`       — S3 Encryption Client ciphertext → plaintext: `envelope`
//!   (metadata → envelope), `cipher` (AES open, V3 key, push-side encrypt),
//!   `sniff` (KMS blobs, Encryption SDK messages), `format` (the shared
//!   field names, algorithms, errors) (pure)
//! - `document/`   — plaintext → key/values: `dotenv`, `json`, with `error`
//!   and `text` shared by both (pure)
//! - `secret`      — the redacting, zeroizing value type
//! - `error`       — the error enum and exit codes
//! - `fuzzing`     — the fuzz targets' oracles (`fuzz/`), run on the seeds by
//!   `cargo test`; not part of the API

pub mod backend;
pub mod cli;
pub mod commands;
pub mod config;
pub mod document;
pub mod environment;
pub mod error;
#[doc(hidden)]
pub mod fuzzing;
pub mod glob;
pub mod log;
pub mod pipeline;
pub mod plan;
pub mod process;
pub mod reference;
pub mod s3ec;
pub mod secret;
pub mod watch;

use std::ffi::OsString;

use clap::Parser;

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
    use cli::Command;
    match command {
        Command::Exec(args) => commands::exec::run(&args, env),
        Command::Check(args) => commands::check::run(&args, env),
        Command::Export(args) => commands::export::run(&args, env),
        Command::Policy(args) => commands::policy::run(&args, env),
        Command::Push(args) => commands::push::run(&args, env),
        Command::Pull(args) => commands::pull::run(&args, env),
        Command::Install(args) => commands::install::run(&args),
    }
}
