//! `--watch`, `--on-change`, `--stop-signal`, `--stop-timeout` and their
//! `ENVSEAL_*` variables → [`WatchConfig`], validated before anything starts.

use std::ffi::OsString;
use std::time::Duration;

use super::{env_var, parse_duration, Flags};
use crate::error::Error;

/// The shortest `--watch` interval: below it, checks would cost more API
/// rate than any rotation is worth.
pub const MIN_INTERVAL: Duration = Duration::from_secs(1);

/// `--stop-timeout` when not set.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// What `--watch` does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchConfig {
    /// Time between two checks (each ±10 %).
    pub interval: Duration,
    pub on_change: OnChange,
    /// The signal that asks the application to stop before a restart.
    pub stop_signal: i32,
    /// How long a stopping application has before SIGKILL.
    pub stop_timeout: Duration,
}

/// `--on-change`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnChange {
    /// Stop the application and start it again with the new environment.
    Restart,
    /// Rewrite `?file` contents in place, then send this signal.
    Signal(i32),
}

/// `None` without `--watch`/`ENVSEAL_WATCH`; the other three settings are
/// validated whether or not watching is on, so that a typo is never silent.
pub fn watch_config(
    flags: &Flags,
    env: &[(OsString, OsString)],
) -> Result<Option<WatchConfig>, Error> {
    let pick = |flag: &Option<String>, var: &str| flag.clone().or_else(|| env_var(env, var));
    let interval = match pick(&flags.watch, "ENVSEAL_WATCH").as_deref() {
        None | Some("") => None,
        Some(t) => {
            let d = parse_duration(t).ok_or_else(|| {
                Error::Config(format!(
                    "watch interval {t:?} is not a duration like 30s, 5m or 1h"
                ))
            })?;
            if d < MIN_INTERVAL {
                return Err(Error::Config(format!(
                    "watch interval {t:?} is below the minimum of 1s"
                )));
            }
            Some(d)
        }
    };
    let on_change = match pick(&flags.on_change, "ENVSEAL_ON_CHANGE").as_deref() {
        None | Some("restart") => OnChange::Restart,
        Some(other) => match other.strip_prefix("signal:") {
            Some(name) => OnChange::Signal(parse_signal(name).ok_or_else(|| {
                Error::Config(format!(
                    "on-change {other:?}: {name:?} is not a signal name"
                ))
            })?),
            None => {
                return Err(Error::Config(format!(
                    "on-change {other:?} is not one of restart, signal:NAME (e.g. signal:HUP)"
                )))
            }
        },
    };
    let stop_signal = match pick(&flags.stop_signal, "ENVSEAL_STOP_SIGNAL") {
        None => nix::libc::SIGTERM,
        Some(name) => parse_signal(&name)
            .ok_or_else(|| Error::Config(format!("stop signal {name:?} is not a signal name")))?,
    };
    let stop_timeout = match pick(&flags.stop_timeout, "ENVSEAL_STOP_TIMEOUT") {
        None => DEFAULT_STOP_TIMEOUT,
        Some(t) => parse_duration(&t).ok_or_else(|| {
            Error::Config(format!(
                "stop timeout {t:?} is not a duration like 10s, 500ms or 1m"
            ))
        })?,
    };
    Ok(interval.map(|interval| WatchConfig {
        interval,
        on_change,
        stop_signal,
        stop_timeout,
    }))
}

/// `HUP`, `SIGHUP`, `sighup`, `1`, `RTMIN+3`, `SIGRTMIN+3` → the signal's
/// number (a stop signal of KILL simply skips the grace period).
pub fn parse_signal(name: &str) -> Option<i32> {
    use std::str::FromStr;
    let upper = name.trim().to_ascii_uppercase();
    let bare = upper.strip_prefix("SIG").unwrap_or(&upper);
    if let Ok(n) = bare.parse::<i32>() {
        return (1..=nix::libc::SIGRTMAX()).contains(&n).then_some(n);
    }
    if let Some(offset) = bare.strip_prefix("RTMIN") {
        let n = match offset {
            "" => 0,
            o => o.strip_prefix('+')?.parse::<i32>().ok()?,
        };
        let signo = nix::libc::SIGRTMIN() + n;
        return (signo <= nix::libc::SIGRTMAX()).then_some(signo);
    }
    nix::sys::signal::Signal::from_str(&format!("SIG{bare}"))
        .ok()
        .map(|s| s as i32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        pairs
            .iter()
            .map(|(k, v)| (OsString::from(k), OsString::from(v)))
            .collect()
    }

    #[test]
    fn signal_names() {
        assert_eq!(parse_signal("HUP"), Some(nix::libc::SIGHUP));
        assert_eq!(parse_signal("SIGTERM"), Some(nix::libc::SIGTERM));
        assert_eq!(parse_signal("sigusr1"), Some(nix::libc::SIGUSR1));
        assert_eq!(parse_signal("9"), Some(9));
        assert_eq!(parse_signal("RTMIN+3"), Some(nix::libc::SIGRTMIN() + 3));
        assert_eq!(parse_signal("SIGRTMIN"), Some(nix::libc::SIGRTMIN()));
        assert_eq!(parse_signal("HUPP"), None);
        assert_eq!(parse_signal("0"), None);
        assert_eq!(parse_signal("RTMIN+99"), None);
        assert_eq!(parse_signal(""), None);
    }

    #[test]
    fn watch_settings_flags_win_and_are_validated() {
        assert_eq!(watch_config(&Flags::default(), &[]).unwrap(), None);
        let w = watch_config(&Flags::default(), &env(&[("ENVSEAL_WATCH", "5m")]))
            .unwrap()
            .unwrap();
        assert_eq!(w.interval, Duration::from_secs(300));
        assert_eq!(w.on_change, OnChange::Restart);
        assert_eq!(w.stop_signal, nix::libc::SIGTERM);
        assert_eq!(w.stop_timeout, DEFAULT_STOP_TIMEOUT);
        let flags = Flags {
            watch: Some("2s".into()),
            on_change: Some("signal:HUP".into()),
            stop_signal: Some("INT".into()),
            stop_timeout: Some("3s".into()),
            ..Flags::default()
        };
        let vars = env(&[
            ("ENVSEAL_WATCH", "1h"),
            ("ENVSEAL_ON_CHANGE", "restart"),
            ("ENVSEAL_STOP_SIGNAL", "QUIT"),
            ("ENVSEAL_STOP_TIMEOUT", "1m"),
        ]);
        let w = watch_config(&flags, &vars).unwrap().unwrap();
        assert_eq!(w.interval, Duration::from_secs(2));
        assert_eq!(w.on_change, OnChange::Signal(nix::libc::SIGHUP));
        assert_eq!(w.stop_signal, nix::libc::SIGINT);
        assert_eq!(w.stop_timeout, Duration::from_secs(3));
        for bad in [
            ("ENVSEAL_WATCH", "soon"),
            ("ENVSEAL_WATCH", "500ms"),
            ("ENVSEAL_ON_CHANGE", "reload"),
            ("ENVSEAL_ON_CHANGE", "signal:NOPE"),
            ("ENVSEAL_STOP_SIGNAL", "TERMINATE"),
            ("ENVSEAL_STOP_TIMEOUT", "forever"),
        ] {
            let mut vars = env(&[("ENVSEAL_WATCH", "10s")]);
            vars.push((OsString::from(bad.0), OsString::from(bad.1)));
            assert!(watch_config(&Flags::default(), &vars).is_err(), "{bad:?}");
        }
    }
}
