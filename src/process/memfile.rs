//! `?file`: values in in-memory files. Each `?file` variable's contents go
//! into a memfd (`memfd_create(2)`), and the variable becomes the file's
//! path, `/proc/self/fd/N`. The descriptor is not close-on-exec, so the
//! application inherits it under the same number — through `execve`, and
//! through `fork` + `execve` under `--init`, where the supervisor keeps its
//! own copy open until the application has exited — and the path names the
//! same file in the application. Nothing touches a disk.
//!
//! A file is written in full, then (when `sealed`) sealed against writes,
//! shrinking, growing and further seals: nobody, not even the application,
//! can change it. An unsealed file can be rewritten in place under the same
//! path ([`MemFile::rewrite`]), for `--watch` with `--on-change signal:…`.
//!
//! The memfd is named after the variable (`/proc/PID/fd/N` shows
//! `/memfd:DB_TLS_KEY (deleted)`), never after its value. The contents are
//! written from the caller's buffer (a `SecretBytes`, zeroized on drop):
//! no copy is made here.

use std::ffi::{CString, OsString};
use std::fs::File;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::{FileExt, MetadataExt};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg, SealFlag};
use nix::sys::memfd::{memfd_create, MFdFlags};

use crate::environment::ChildEnv;
use crate::error::Error;

/// The longest memfd name the kernel takes (249 bytes, without the NUL).
const MAX_NAME: usize = 249;

/// The lowest descriptor a file gets: 0, 1 and 2 are stdin, stdout and
/// stderr even when envseal was started with one of them closed.
const LOWEST_FD: RawFd = 3;

/// What failed while making or changing a file: the step and the error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemFileError {
    pub step: &'static str,
    pub reason: String,
}

impl MemFileError {
    fn new(step: &'static str, reason: impl ToString) -> Self {
        MemFileError {
            step,
            reason: reason.to_string(),
        }
    }
}

/// One in-memory file, open in this process (closed on drop).
#[derive(Debug)]
pub struct MemFile {
    file: File,
    sealed: bool,
}

impl MemFile {
    /// A memfd named `name` (truncated to the kernel's limit) holding
    /// `contents`, inheritable across `execve`, at descriptor 3 or above;
    /// sealed when `sealed`.
    pub fn create(name: &str, contents: &[u8], sealed: bool) -> Result<MemFile, MemFileError> {
        let fd = new_memfd(&memfd_name(name))
            .map_err(|e| MemFileError::new("memfd_create", e.desc()))?;
        let fd = above_stdio(fd).map_err(|e| MemFileError::new("fcntl(F_DUPFD)", e.desc()))?;
        let file = File::from(fd);
        file.write_all_at(contents, 0)
            .map_err(|e| MemFileError::new("write", e))?;
        if sealed {
            let seals = SealFlag::F_SEAL_WRITE
                | SealFlag::F_SEAL_SHRINK
                | SealFlag::F_SEAL_GROW
                | SealFlag::F_SEAL_SEAL;
            fcntl(&file, FcntlArg::F_ADD_SEALS(seals))
                .map_err(|e| MemFileError::new("fcntl(F_ADD_SEALS)", e.desc()))?;
        }
        Ok(MemFile { file, sealed })
    }

    pub fn fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }

    /// `/proc/self/fd/N`: the path the application opens.
    pub fn path(&self) -> OsString {
        OsString::from(format!("/proc/self/fd/{}", self.fd()))
    }

    pub fn is_sealed(&self) -> bool {
        self.sealed
    }

    /// Replaces the contents in place (same descriptor, same path): truncates,
    /// then writes from offset 0. Refused for a sealed file. A reader that
    /// reads meanwhile can see a partial file: tell the application to
    /// re-read after this returns.
    pub fn rewrite(&self, contents: &[u8]) -> Result<(), MemFileError> {
        if self.sealed {
            return Err(MemFileError::new("rewrite", "the file is sealed"));
        }
        self.file
            .set_len(0)
            .map_err(|e| MemFileError::new("ftruncate", e))?;
        self.file
            .write_all_at(contents, 0)
            .map_err(|e| MemFileError::new("write", e))
    }

    /// Checks that [`MemFile::path`] reaches this file: it does not when
    /// `/proc` is not mounted (a bare chroot), and the application could not
    /// open the path then.
    pub fn check_path(&self) -> Result<(), MemFileError> {
        let step = "find it under /proc/self/fd";
        let own = self
            .file
            .metadata()
            .map_err(|e| MemFileError::new("fstat", e))?;
        let path = self.path();
        match std::fs::metadata(&path) {
            Ok(m) if m.dev() == own.dev() && m.ino() == own.ino() => Ok(()),
            Ok(_) => Err(MemFileError::new(
                step,
                format!("{} is another file: is /proc a real procfs?", path.to_string_lossy()),
            )),
            Err(e) => Err(MemFileError::new(
                step,
                format!(
                    "{}: {e}: the application opens the file by this path, which needs /proc mounted",
                    path.to_string_lossy()
                ),
            )),
        }
    }

    /// The whole contents, from offset 0 (tests).
    #[cfg(test)]
    fn read_all(&self) -> zeroize::Zeroizing<Vec<u8>> {
        let len = self.file.metadata().unwrap().len() as usize;
        let mut buf = zeroize::Zeroizing::new(vec![0u8; len]);
        self.file.read_exact_at(&mut buf, 0).unwrap();
        buf
    }
}

/// The variable name as a memfd name: cut at the kernel's limit (on a
/// character boundary); never empty.
fn memfd_name(name: &str) -> CString {
    let mut end = name.len().min(MAX_NAME);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    CString::new(&name[..end])
        .ok()
        .filter(|c| !c.as_bytes().is_empty())
        .unwrap_or_else(|| c"envseal".to_owned())
}

/// A sealable memfd that can never be executed (`MFD_NOEXEC_SEAL`, Linux
/// 6.3+, which `vm.memfd_noexec = 2` requires); before 6.3 the kernel does
/// not know the flag (`EINVAL`) and the memfd is made without it.
fn new_memfd(name: &CString) -> Result<OwnedFd, Errno> {
    let noexec = MFdFlags::from_bits_retain(nix::libc::MFD_NOEXEC_SEAL);
    match memfd_create(name.as_c_str(), MFdFlags::MFD_ALLOW_SEALING | noexec) {
        Err(Errno::EINVAL) => memfd_create(name.as_c_str(), MFdFlags::MFD_ALLOW_SEALING),
        other => other,
    }
}

/// `fd` itself, or a duplicate at 3 or above (not close-on-exec, as
/// `F_DUPFD` makes it) when it landed on 0, 1 or 2.
fn above_stdio(fd: OwnedFd) -> Result<OwnedFd, Errno> {
    if fd.as_raw_fd() >= LOWEST_FD {
        return Ok(fd);
    }
    let dup = fcntl(&fd, FcntlArg::F_DUPFD(LOWEST_FD))?;
    // SAFETY: F_DUPFD returned a new descriptor that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(dup) })
}

/// The files of one environment, by variable name. Kept open for as long as
/// the application runs; dropping closes them (in this process only).
#[derive(Debug, Default)]
pub struct MemFiles(Vec<(String, MemFile)>);

impl MemFiles {
    pub fn get(&self, variable: &str) -> Option<&MemFile> {
        self.0.iter().find(|(n, _)| n == variable).map(|(_, f)| f)
    }

    pub fn iter(&self) -> impl Iterator<Item = (&str, &MemFile)> {
        self.0.iter().map(|(n, f)| (n.as_str(), f))
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// For `--on-change signal:…`: writes the `?file` contents of `env` (a
    /// new resolution of the same references) into these files in place, and
    /// sets each of its file variables to the same path as before. Checked
    /// before anything is written: every file variable of `env` has a file
    /// here, and none is sealed (make them with `materialise(env, false)`).
    pub fn rewrite_from(&self, env: &mut ChildEnv) -> Result<(), Error> {
        for (name, _, _) in env.files_mut() {
            let name = name.to_string_lossy();
            let refused = |reason: &str| Error::MemFile {
                variable: name.clone().into_owned(),
                step: "rewrite",
                reason: reason.to_owned(),
            };
            match self.get(&name) {
                None => return Err(refused("the running application has no such file")),
                Some(f) if f.is_sealed() => return Err(refused("the file is sealed")),
                Some(_) => {}
            }
        }
        for (name, contents, path) in env.files_mut() {
            let name = name.to_string_lossy();
            let Some(file) = self.get(&name) else {
                continue;
            };
            file.rewrite(contents.expose())
                .map_err(|e| Error::MemFile {
                    variable: name.clone().into_owned(),
                    step: e.step,
                    reason: e.reason,
                })?;
            *path = Some(file.path());
        }
        Ok(())
    }
}

/// Makes a file of every `?file` variable of `env` and sets the variable to
/// its path. All or nothing: on the first failure the files made so far are
/// closed and the error names the variable.
pub fn materialise(env: &mut ChildEnv, sealed: bool) -> Result<MemFiles, Error> {
    let mut files = MemFiles::default();
    for (name, contents, path) in env.files_mut() {
        let name = name.to_string_lossy().into_owned();
        let fail = |e: MemFileError| Error::MemFile {
            variable: name.clone(),
            step: e.step,
            reason: e.reason,
        };
        let file = MemFile::create(&name, contents.expose(), sealed).map_err(fail)?;
        file.check_path().map_err(fail)?;
        tracing::debug!(variable = %name, fd = file.fd(), sealed, "in-memory file");
        *path = Some(file.path());
        files.0.push((name, file));
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;
    use std::io::Write;

    fn seals(file: &MemFile) -> SealFlag {
        SealFlag::from_bits_truncate(fcntl(&file.file, FcntlArg::F_GET_SEALS).unwrap())
    }

    #[test]
    fn sealed_file_holds_the_contents_and_refuses_changes() {
        let contents = b"-----BEGIN KEY-----\n\0\xff binary ok\n";
        let file = MemFile::create("TLS_KEY", contents, true).unwrap();
        assert!(file.fd() >= LOWEST_FD);
        assert_eq!(&file.read_all()[..], contents);
        assert!(file.is_sealed());
        let all = SealFlag::F_SEAL_WRITE
            | SealFlag::F_SEAL_SHRINK
            | SealFlag::F_SEAL_GROW
            | SealFlag::F_SEAL_SEAL;
        assert_eq!(seals(&file) & all, all);
        // Never executable where the kernel has F_SEAL_EXEC (6.3+).
        let raw = fcntl(&file.file, FcntlArg::F_GET_SEALS).unwrap();
        if raw & nix::libc::F_SEAL_EXEC != 0 {
            assert_eq!(file.file.metadata().unwrap().mode() & 0o111, 0);
        }
        // Not close-on-exec: the application inherits it.
        let flags = fcntl(&file.file, FcntlArg::F_GETFD).unwrap();
        assert_eq!(flags & nix::libc::FD_CLOEXEC, 0);
        // The kernel refuses every change, through the path too.
        assert!(file.file.write_at(b"x", 0).is_err());
        assert!(file.file.set_len(1).is_err());
        let mut other = std::fs::OpenOptions::new()
            .write(true)
            .open(file.path())
            .unwrap();
        let e = other.write(b"x").unwrap_err();
        assert_eq!(e.raw_os_error(), Some(nix::libc::EPERM));
        assert!(file.rewrite(b"new").is_err());
        assert_eq!(&file.read_all()[..], contents);
        file.check_path().unwrap();
        let read_back = std::fs::read(file.path()).unwrap();
        assert_eq!(read_back, contents);
    }

    #[test]
    fn unsealed_file_is_rewritten_in_place() {
        let file = MemFile::create("CONFIG", b"first version, long", false).unwrap();
        assert!(!file.is_sealed());
        let write_seals = SealFlag::F_SEAL_WRITE
            | SealFlag::F_SEAL_SHRINK
            | SealFlag::F_SEAL_GROW
            | SealFlag::F_SEAL_SEAL;
        assert!((seals(&file) & write_seals).is_empty());
        let path = file.path();
        file.rewrite(b"second").unwrap();
        assert_eq!(file.path(), path);
        assert_eq!(&file.read_all()[..], b"second");
        assert_eq!(std::fs::read(&path).unwrap(), b"second");
        file.rewrite(b"third, longer than the second").unwrap();
        assert_eq!(
            std::fs::read(&path).unwrap(),
            b"third, longer than the second"
        );
        file.rewrite(b"").unwrap();
        assert!(std::fs::read(&path).unwrap().is_empty());
    }

    /// An environment with `?file` variables resolved to these values.
    fn env_with_files(files: &[(&str, &str)]) -> ChildEnv {
        use crate::plan::{Answer, Fetched, Request};
        use crate::secret::Secret;
        let inherited = crate::plan::split_inherited(
            files.iter().map(|(name, _)| {
                (
                    OsString::from(name),
                    OsString::from(format!("ssm:/{name}?file")),
                )
            }),
            &[],
        );
        let mut answers: std::collections::HashMap<Request, Answer> = Default::default();
        for (r, (_, value)) in inherited.refs.iter().zip(files) {
            answers.insert(
                Request::for_target(&r.reference.target),
                Ok(Fetched::Text(Secret::from(*value))),
            );
        }
        crate::environment::assemble(inherited, &[], crate::config::Collision::Override, &answers)
            .into_result()
            .unwrap()
    }

    #[test]
    fn rewrite_from_a_new_resolution_keeps_the_paths() {
        let mut first = env_with_files(&[("A", "a-1"), ("B", "b-1")]);
        let files = materialise(&mut first, false).unwrap();
        let mut second = env_with_files(&[("A", "a-2, longer"), ("B", "")]);
        files.rewrite_from(&mut second).unwrap();
        for name in ["A", "B"] {
            assert_eq!(second.var(name), first.var(name), "same path");
        }
        assert_eq!(
            std::fs::read(first.var("A").unwrap()).unwrap(),
            b"a-2, longer"
        );
        assert!(std::fs::read(first.var("B").unwrap()).unwrap().is_empty());
        // A variable the application has no file for: refused, nothing written.
        let mut third = env_with_files(&[("A", "a-3"), ("NEW", "n")]);
        match files.rewrite_from(&mut third) {
            Err(Error::MemFile { variable, .. }) => assert_eq!(variable, "NEW"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            std::fs::read(first.var("A").unwrap()).unwrap(),
            b"a-2, longer"
        );
        // Sealed files are never rewritten.
        let mut sealed_env = env_with_files(&[("S", "s-1")]);
        let sealed = materialise(&mut sealed_env, true).unwrap();
        let mut again = env_with_files(&[("S", "s-2")]);
        assert!(sealed.rewrite_from(&mut again).is_err());
        assert_eq!(std::fs::read(sealed_env.var("S").unwrap()).unwrap(), b"s-1");
    }

    #[test]
    fn names_are_cut_at_the_kernel_limit() {
        assert_eq!(memfd_name("DB_KEY").as_bytes(), b"DB_KEY");
        assert_eq!(memfd_name(&"N".repeat(400)).as_bytes().len(), MAX_NAME);
        let wide = "é".repeat(200); // 400 bytes, 2 per char
        assert_eq!(memfd_name(&wide).as_bytes().len(), 248);
        assert_eq!(memfd_name("").as_bytes(), b"envseal");
        MemFile::create(&"N".repeat(400), b"v", true).unwrap();
    }

    #[test]
    fn the_memfd_is_named_after_the_variable() {
        let file = MemFile::create("API_CERT", b"value-not-in-name", true).unwrap();
        let link = std::fs::read_link(file.path()).unwrap();
        let link = link.to_string_lossy();
        assert!(link.starts_with("/memfd:API_CERT"), "{link}");
        assert!(!link.contains("value"), "{link}");
    }

    #[test]
    fn materialise_sets_paths_and_keeps_files_open() {
        use crate::plan::{Answer, Fetched, Request};
        use crate::secret::Secret;
        let inherited = crate::plan::split_inherited(
            vec![
                (OsString::from("PLAIN"), OsString::from("as-is")),
                (OsString::from("CERT"), OsString::from("ssm:/tls/cert?file")),
                (OsString::from("TOKEN"), OsString::from("ssm:/api/token")),
            ],
            &[],
        );
        let mut answers: std::collections::HashMap<Request, Answer> = Default::default();
        for r in &inherited.refs {
            let value = if r.name == "CERT" {
                "cert-bytes"
            } else {
                "tok"
            };
            answers.insert(
                Request::for_target(&r.reference.target),
                Ok(Fetched::Text(Secret::from(value))),
            );
        }
        let outcome = crate::environment::assemble(
            inherited,
            &[],
            crate::config::Collision::Override,
            &answers,
        );
        let mut env = outcome.into_result().unwrap();
        assert_eq!(env.var("CERT"), None, "no path before the file exists");
        let files = materialise(&mut env, true).unwrap();
        assert_eq!(files.len(), 1);
        let path = env.var("CERT").unwrap().to_owned();
        let fd = files.get("CERT").unwrap().fd();
        assert_eq!(path, OsString::from(format!("/proc/self/fd/{fd}")));
        assert_eq!(files.get("CERT").unwrap().path(), path);
        assert_eq!(std::fs::read(&path).unwrap(), b"cert-bytes");
        assert_eq!(env.var("TOKEN"), Some(OsStr::new("tok")));
        assert_eq!(env.var("PLAIN"), Some(OsStr::new("as-is")));
        // The environment block carries the path, not the contents.
        let block = crate::process::exec::EnvBlock::new(&env).unwrap();
        let cert = format!("CERT={}", path.to_string_lossy());
        assert!(block
            .as_slice()
            .iter()
            .any(|c| c.to_bytes() == cert.as_bytes()));
        assert!(!block
            .as_slice()
            .iter()
            .any(|c| c.to_bytes().windows(10).any(|w| w == b"cert-bytes")));
    }
}
