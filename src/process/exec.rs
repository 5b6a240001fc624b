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
                Value::File { path: Some(p), .. } => bytes.extend_from_slice(p.as_bytes()),
                Value::File { path: None, .. } => {
                    bytes.zeroize();
                    return Err(Error::MemFile {
                        variable: name.to_string_lossy().into_owned(),
                        step: "exec",
                        reason: "its in-memory file was not made (process::memfile::materialise)"
                            .into(),
                    });
                }
            }
            match CString::new(bytes) {
                Ok(c) => out.push(c),
                Err(e) => {
                    e.into_vec().zeroize();
                    return Err(Error::NulInVariable {
                        variable: name.to_string_lossy().into_owned(),
                    });
                }
            }
        }
        Ok(EnvBlock(out))
    }

    pub fn as_slice(&self) -> &[CString] {
        &self.0
    }

    /// Sizes only (never a value): what `execve` has to copy for this
    /// environment and `args`, and the largest variable by name.
    pub fn sizes(&self, args: &[CString]) -> ExecSizes {
        let mut sizes = ExecSizes {
            total: 0,
            variables: self.0.len(),
            largest: None,
        };
        let pointer = std::mem::size_of::<usize>();
        for s in args.iter().chain(&self.0) {
            sizes.total += s.as_bytes_with_nul().len() + pointer;
        }
        sizes.total += 2 * pointer; // the NULL ends of argv and envp
        for c in &self.0 {
            let bytes = c.as_bytes_with_nul();
            if !matches!(&sizes.largest, Some((_, n)) if bytes.len() <= *n) {
                let name = bytes.split(|b| *b == b'=').next().unwrap_or_default();
                sizes.largest = Some((String::from_utf8_lossy(name).into_owned(), bytes.len()));
            }
        }
        sizes
    }
}

/// The kernel's limit for one argument or `NAME=VALUE` string
/// (`MAX_ARG_STRLEN`, 32 pages).
pub const MAX_ARG_STRLEN: usize = 128 * 1024;

/// What an `execve` would copy: total bytes (strings with their NULs and
/// pointers), the number of variables, the largest variable (name, bytes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecSizes {
    pub total: usize,
    pub variables: usize,
    pub largest: Option<(String, usize)>,
}

impl ExecSizes {
    /// Why `execve` said E2BIG, in words and numbers.
    pub fn e2big_reason(&self) -> String {
        let mut reason = format!(
            "the environment is too large for the kernel (E2BIG): {} variables and the arguments take {} bytes",
            self.variables, self.total
        );
        match &self.largest {
            Some((name, len)) if *len > MAX_ARG_STRLEN => reason.push_str(&format!(
                "; {name} alone is {len} bytes, over the kernel's limit of {MAX_ARG_STRLEN} bytes (128 KiB) for one variable"
            )),
            Some((name, len)) => reason.push_str(&format!(
                "; the largest is {name} ({len} bytes); the total limit is a quarter of the stack size limit (ulimit -s: 2 MiB of the usual 8 MiB)"
            )),
            None => {}
        }
        reason.push_str("; resolve fewer or smaller values");
        reason
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
    let sizes = block.sizes(&args);
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
            reason: sizes.e2big_reason(),
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

    #[test]
    fn e2big_reason_names_sizes_never_values() {
        let secret = "s".repeat(MAX_ARG_STRLEN + 10);
        let inherited = crate::plan::split_inherited(
            vec![
                (OsString::from("SMALL"), OsString::from("x")),
                (OsString::from("HUGE"), OsString::from(secret.as_str())),
            ],
            &[],
        );
        let outcome = crate::environment::assemble(
            inherited,
            &[],
            crate::config::Collision::Override,
            &std::collections::HashMap::new(),
        );
        let env = outcome.into_result().unwrap();
        let block = EnvBlock::new(&env).unwrap();
        let args = vec![CString::new("/bin/true").unwrap()];
        let sizes = block.sizes(&args);
        assert_eq!(sizes.variables, 2);
        assert_eq!(
            sizes.largest,
            Some(("HUGE".to_owned(), "HUGE=".len() + secret.len() + 1))
        );
        let reason = sizes.e2big_reason();
        assert!(reason.contains("E2BIG"), "{reason}");
        assert!(reason.contains("HUGE alone is 131088 bytes"), "{reason}");
        assert!(reason.contains(&sizes.total.to_string()), "{reason}");
        assert!(!reason.contains("ssss"), "{reason}");
    }
}
