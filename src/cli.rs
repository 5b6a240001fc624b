//! The command line as the user types it (clap). What it means is decided in
//! `config.rs`; what each command does, in `commands/`.

use std::ffi::OsString;

use clap::{Args, Parser, Subcommand};

use crate::config::Flags;

#[derive(Parser, Debug)]
#[command(
    name = "envseal",
    version,
    about = "Put AWS secrets (SSM, Secrets Manager, S3+KMS) into an application's environment, in memory, then exec it.",
    after_help = "Examples:\n  DB_PASSWORD=ssm:/prod/db/password envseal exec -- gunicorn app:app\n  envseal check --from ssm:/myapp/prod/\n\nExit codes: 111 envseal did not start the application (bad configuration, or a reference that could not be resolved), 126 command not executable, 127 command not found; otherwise the application's own."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Resolve every reference, then replace envseal with CMD.
    #[command(
        after_help = "Example:\n  DB_PASSWORD=ssm:/prod/db/password \\\n  ENVSEAL_FROM=ssm:/myapp/prod/ envseal exec -- gunicorn app:app"
    )]
    Exec(ExecArgs),
    /// Resolve every reference and print one line per variable: name,
    /// reference, status, length and a SHA-256 fingerprint — never a value.
    #[command(
        after_help = "Example:\n  DB_PASSWORD=ssm:/prod/db/password envseal check --from ssm:/myapp/prod/"
    )]
    Check(CheckArgs),
    /// Print the resolved variables. THIS PRINTS SECRET VALUES.
    #[command(
        after_help = "This command prints secret values to stdout; do not run it where stdout is logged.\n\nExample:\n  eval \"$(envseal export --from ssm:/myapp/dev/)\""
    )]
    Export(ExportArgs),
    /// Print the least-privilege IAM policy (JSON) that the configured references need.
    #[command(
        after_help = "Example:\n  DB_PASSWORD=ssm:/prod/db/password envseal policy --from ssm:/myapp/prod/ > policy.json"
    )]
    Policy(PolicyArgs),
    /// Encrypt a dotenv/JSON document client-side with KMS and upload it (S3 encryption client V2 format).
    #[command(
        after_help = "Example:\n  envseal push s3://cfg-bucket/myapp/prod.env --kms-key alias/myapp prod.env"
    )]
    Push(PushArgs),
    /// Download and decrypt a document to stdout. THIS PRINTS SECRET VALUES.
    #[command(after_help = "Example:\n  envseal pull s3://cfg-bucket/myapp/prod.env > prod.env")]
    Pull(PullArgs),
    /// Copy this executable to DEST (mode 0755, atomic rename), e.g. from a Kubernetes init container.
    #[command(after_help = "Example:\n  envseal install /shared/envseal")]
    Install(InstallArgs),
}

#[derive(Args, Debug)]
pub struct PolicyArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Look up what cannot be known offline (e.g. the KMS key behind an S3 object) with AWS calls.
    #[arg(long)]
    pub resolve: bool,
    /// Print the policy of this role (the reads of the references read through it) instead of the base identity's (its own reads and sts:AssumeRole).
    #[arg(long = "role", value_name = "ARN")]
    pub role: Option<String>,
}

#[derive(Args, Debug)]
pub struct PushArgs {
    /// s3://BUCKET/KEY
    #[arg(value_name = "S3_URL")]
    pub target: String,
    /// KMS key id, ARN or alias/NAME
    #[arg(long = "kms-key", value_name = "KEY")]
    pub kms_key: String,
    /// The document to upload; `-` or absent for stdin.
    #[arg(value_name = "FILE")]
    pub file: Option<OsString>,
    /// error, warn (default), info, debug, trace; the AWS SDK's own log lines from debug on [env: ENVSEAL_LOG]
    #[arg(long = "log-level", value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Overall deadline, e.g. 30s [env: ENVSEAL_TIMEOUT]
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
}

#[derive(Args, Debug)]
pub struct PullArgs {
    /// s3://BUCKET/KEY; with #NAME, one value of the document; ?encryption=kms|envelope|none forces the format
    #[arg(value_name = "S3_URL")]
    pub target: String,
    /// error, warn (default), info, debug, trace; the AWS SDK's own log lines from debug on [env: ENVSEAL_LOG]
    #[arg(long = "log-level", value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// Overall deadline, e.g. 30s [env: ENVSEAL_TIMEOUT]
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
}

#[derive(Args, Debug)]
pub struct InstallArgs {
    /// A directory (the binary is written as DEST/envseal) or a file path.
    #[arg(value_name = "DEST")]
    pub dest: OsString,
}

#[derive(Args, Debug, Clone, Default)]
pub struct CommonArgs {
    /// A bundle source (repeatable; commas separate several): ssm:/PATH/, sm:SECRET, s3://BUCKET/KEY.
    #[arg(long = "from", value_name = "SOURCE")]
    pub from: Vec<String>,
    /// Overall deadline for resolution, e.g. 30s, 500ms, 2m; throttled and failed requests are retried until then [env: ENVSEAL_TIMEOUT] [default: 30s]
    #[arg(long, value_name = "DURATION")]
    pub timeout: Option<String>,
    /// Time limit of one AWS request attempt; a stalled one is abandoned and retried on a new connection [env: ENVSEAL_ATTEMPT_TIMEOUT] [default: 5s]
    #[arg(long = "attempt-timeout", value_name = "DURATION")]
    pub attempt_timeout: Option<String>,
    /// Wait a random time in [0, DURATION) before the first request, to spread a fleet's starts (the deadline starts after it) [env: ENVSEAL_SPLAY] [default: 0]
    #[arg(long, value_name = "DURATION")]
    pub splay: Option<String>,
    /// How long a throttled process waits, per request the service throttled, before trying again; about the tasks that start together divided by the service's rate (200 tasks at SSM's 40/s: 5s) [env: ENVSEAL_THROTTLE_WINDOW] [default: 5s]
    #[arg(long = "throttle-window", value_name = "DURATION")]
    pub throttle_window: Option<String>,
    /// Pass variables whose name matches PATTERN (* and ? globs; repeatable, commas separate several) through untouched, even when their value looks like a reference [env: ENVSEAL_IGNORE]
    #[arg(long = "ignore", value_name = "PATTERN")]
    pub ignore: Vec<String>,
    /// What a bundle does to an inherited plain variable of the same name: override, keep, error [env: ENVSEAL_COLLISION]
    #[arg(long, value_name = "POLICY")]
    pub collision: Option<String>,
    /// error, warn (default), info, debug, trace; the AWS SDK's own log lines from debug on [env: ENVSEAL_LOG]
    #[arg(long = "log-level", value_name = "LEVEL")]
    pub log_level: Option<String>,
    /// text (default) or json, on stderr [env: ENVSEAL_LOG_FORMAT]
    #[arg(long = "log-format", value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// Assume this role (STS AssumeRole, once) for every reference without a ?role-arn= of its own [env: ENVSEAL_ROLE_ARN]
    #[arg(long = "role-arn", value_name = "ARN")]
    pub role_arn: Option<String>,
    /// The external id of --role-arn's AssumeRole [env: ENVSEAL_ROLE_EXTERNAL_ID]
    #[arg(long = "role-external-id", value_name = "ID")]
    pub role_external_id: Option<String>,
}

#[derive(Args, Debug)]
pub struct ExecArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Stay as the parent: forward signals, reap zombies [env: ENVSEAL_INIT]
    #[arg(long)]
    pub init: bool,
    /// --init (implied), with CMD in a process group of its own that receives every forwarded signal [env: ENVSEAL_INIT_PGROUP]
    #[arg(long = "init-pgroup")]
    pub init_pgroup: bool,
    /// --init (implied), and every INTERVAL (±10 %, at least 1s) check whether a secret changed; on a change resolve again and act as --on-change says [env: ENVSEAL_WATCH]
    #[arg(long, value_name = "INTERVAL")]
    pub watch: Option<String>,
    /// With --watch: restart (default: stop signal, --stop-timeout, SIGKILL, start again) or signal:NAME (rewrite ?file contents in place, send NAME) [env: ENVSEAL_ON_CHANGE]
    #[arg(long = "on-change", value_name = "ACTION")]
    pub on_change: Option<String>,
    /// With --watch: the signal that stops the application before a restart [env: ENVSEAL_STOP_SIGNAL] [default: TERM]
    #[arg(long = "stop-signal", value_name = "SIGNAL")]
    pub stop_signal: Option<String>,
    /// With --watch: how long a stopping application has before SIGKILL [env: ENVSEAL_STOP_TIMEOUT] [default: 10s]
    #[arg(long = "stop-timeout", value_name = "DURATION")]
    pub stop_timeout: Option<String>,
    /// The command and its arguments.
    #[arg(
        value_name = "CMD",
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub command: Vec<OsString>,
}

#[derive(Args, Debug)]
pub struct CheckArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// text (default) or json
    #[arg(long, value_name = "FORMAT", default_value = "text")]
    pub format: String,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// shell (default), dotenv or json
    #[arg(long, value_name = "FORMAT", default_value = "shell")]
    pub format: String,
}

impl CommonArgs {
    pub fn flags(&self, init: bool) -> Flags {
        Flags {
            from: self.from.clone(),
            timeout: self.timeout.clone(),
            attempt_timeout: self.attempt_timeout.clone(),
            splay: self.splay.clone(),
            throttle_window: self.throttle_window.clone(),
            collision: self.collision.clone(),
            log_level: self.log_level.clone(),
            log_format: self.log_format.clone(),
            init,
            init_pgroup: false,
            ignore: self.ignore.clone(),
            role_arn: self.role_arn.clone(),
            role_external_id: self.role_external_id.clone(),
            ..Flags::default()
        }
    }
}
