//! `execve` with `execvp`-style PATH lookup, the environment passed as a value
//! (the process environment is never mutated).

use std::ffi::{CString, OsStr, OsString};
use std::os::unix::ffi::{OsStrExt, OsStringExt};

use nix::errno::Errno;
use zeroize::Zeroize;

use crate::environment::{ChildEnv, Value};
use crate::error::Error;

/// `execvp`'s default search path when PATH is unset.
const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The environment as `KEY=VALUE` C strings; zeroized on drop.
pub struct EnvBlock(Vec<CString>);

impl EnvBlock {
    pub fn new(env: &ChildEnv) -> Result<EnvBlock, Error> {
        let mut out = Vec::with_capacity(env.entries().len());
        for (name, value) in env.entries() {
            let mut bytes = name.as_bytes().to_vec();
            bytes.push(b'=');
            match value {
                Value::Plain(v) => bytes.extend_from_slice(v.as_bytes()),
                Value::Resolved { value, .. } => bytes.extend_from_slice(value.expose().as_bytes()),
            }
            match CString::new(bytes) {
                Ok(c) => out.push(c),
                Err(e) => {
                    e.into_vec().zeroize();
                    return Err(Error::Other(format!(
                        "variable {} contains a NUL byte",
                        name.to_string_lossy()
                    )));
                }
            }
        }
        Ok(EnvBlock(out))
    }

    pub fn as_slice(&self) -> &[CString] {
        &self.0
    }
}

impl Drop for EnvBlock {
    fn drop(&mut self) {
        for c in self.0.drain(..) {
            c.into_bytes().zeroize();
        }
    }
}

/// Where CMD would be executed from: the candidates `execvp` would try.
pub fn candidates(program: &OsStr, path: Option<&OsStr>) -> Vec<OsString> {
    if program.as_bytes().contains(&b'/') {
        return vec![program.to_owned()];
    }
    let path = path.map(OsStr::as_bytes).unwrap_or(DEFAULT_PATH.as_bytes());
    path.split(|b| *b == b':')
        .map(|dir| {
            let dir = if dir.is_empty() { b".".as_slice() } else { dir };
            let mut full = dir.to_vec();
            full.push(b'/');
            full.extend_from_slice(program.as_bytes());
            OsString::from_vec(full)
        })
        .collect()
}

fn cstring(s: &OsStr) -> Result<CString, Error> {
    CString::new(s.as_bytes()).map_err(|_| Error::Config(format!("{s:?} contains a NUL byte")))
}

/// Replaces this process with `command`. Returns only on failure.
pub fn exec(command: &[OsString], env: &ChildEnv) -> Error {
    let Some(program) = command.first() else {
        return Error::Config("no command given".into());
    };
    let args: Result<Vec<CString>, Error> = command.iter().map(|a| cstring(a)).collect();
    let args = match args {
        Ok(a) => a,
        Err(e) => return e,
    };
    let block = match EnvBlock::new(env) {
        Ok(b) => b,
        Err(e) => return e,
    };
    let mut denied = None;
    let mut last = Errno::ENOENT;
    for candidate in candidates(program, env.var("PATH")) {
        let Ok(path) = CString::new(candidate.as_bytes()) else {
            continue;
        };
        let Err(errno) = nix::unistd::execve(&path, &args, block.as_slice());
        match errno {
            Errno::ENOENT | Errno::ENOTDIR => {}
            Errno::EACCES | Errno::EPERM | Errno::EISDIR => denied = Some(errno),
            other => {
                last = other;
                break;
            }
        }
    }
    drop(block);
    let program = program.to_string_lossy().into_owned();
    match (last, denied) {
        (Errno::ENOENT, None) => Error::Exec {
            program,
            not_found: true,
            reason: "command not found".into(),
        },
        (Errno::ENOENT, Some(e)) => Error::Exec {
            program,
            not_found: false,
            reason: format!("not executable ({})", e.desc()),
        },
        (Errno::E2BIG, _) => Error::Exec {
            program,
            not_found: false,
            reason: "the environment and arguments are larger than the kernel accepts (E2BIG); resolve fewer or smaller values".into(),
        },
        (Errno::ENOEXEC, _) => Error::Exec {
            program,
            not_found: false,
            reason: "exec format error (not a binary and no #! line)".into(),
        },
        (e, _) => Error::Exec {
            program,
            not_found: false,
            reason: e.desc().to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_lookup_candidates() {
        assert_eq!(
            candidates(OsStr::new("./app"), Some(OsStr::new("/bin"))),
            vec![OsString::from("./app")]
        );
        assert_eq!(
            candidates(OsStr::new("app"), Some(OsStr::new("/a::/b"))),
            vec![
                OsString::from("/a/app"),
                OsString::from("./app"),
                OsString::from("/b/app")
            ]
        );
        assert_eq!(candidates(OsStr::new("app"), None).len(), 6);
    }
}
