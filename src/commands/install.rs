//! `envseal install DEST`: copy this executable, atomically — for Kubernetes
//! init containers that put envseal into a shared volume.
//!
//! The bytes go to a temporary name in the destination directory, are synced,
//! made 0755, and renamed over DEST, so that the main container never sees a
//! half-written binary. On any failure the temporary file is removed.

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::cli::InstallArgs;
use crate::error::Error;

/// The file name used when DEST is a directory.
pub const FILE_NAME: &str = "envseal";

pub fn run(args: &InstallArgs) -> Result<i32, Error> {
    install(&args.dest)
}

pub fn install(dest: &OsString) -> Result<i32, Error> {
    let target = target_path(Path::new(dest));
    let fail = |step: &'static str, e: io::Error| Error::Install {
        dest: target.display().to_string(),
        step,
        reason: e.to_string(),
    };
    let mut source = open_self().map_err(|e| fail("cannot open the running executable", e))?;
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    fs::create_dir_all(&dir).map_err(|e| fail("cannot create the directory", e))?;
    let (temp, file) = create_temp(&dir).map_err(|e| fail("cannot create a file there", e))?;
    let written = write_temp(&mut source, file).and_then(|()| {
        fs::rename(&temp, &target)?;
        // Make the rename itself durable; a directory that cannot be synced
        // (some network filesystems) does not undo the install.
        if let Ok(d) = File::open(&dir) {
            let _ = d.sync_all();
        }
        Ok(())
    });
    if let Err(e) = written {
        let _ = fs::remove_file(&temp);
        return Err(fail("cannot write the binary", e));
    }
    Ok(0)
}

/// DEST itself, or DEST/envseal when DEST is a directory (or ends in `/`).
fn target_path(dest: &Path) -> PathBuf {
    let names_dir = dest.as_os_str().as_encoded_bytes().ends_with(b"/");
    if names_dir || dest.is_dir() {
        dest.join(FILE_NAME)
    } else {
        dest.to_path_buf()
    }
}

/// The running binary: `/proc/self/exe` (right even when the file on disk was
/// replaced since); without `/proc` (a bare chroot), the path in argv[0] when
/// it is one.
fn open_self() -> io::Result<File> {
    File::open("/proc/self/exe").or_else(|proc_error| {
        match std::env::args_os().next().map(PathBuf::from) {
            Some(argv0) if argv0.components().count() > 1 => File::open(argv0),
            _ => Err(proc_error),
        }
    })
}

/// A new file beside the target. The name is unique per process and attempt:
/// init containers are often PID 1 each time, and a crashed attempt may have
/// left its file behind in a volume that outlives it.
fn create_temp(dir: &Path) -> io::Result<(PathBuf, File)> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let mut attempt = 0u32;
    loop {
        let name = format!(
            ".{FILE_NAME}.{}.{nanos:x}.{attempt}.tmp",
            std::process::id()
        );
        let path = dir.join(name);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o700)
            .open(&path)
        {
            Ok(file) => return Ok((path, file)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 100 => attempt += 1,
            Err(e) => return Err(e),
        }
    }
}

fn write_temp(source: &mut File, mut file: File) -> io::Result<()> {
    io::copy(source, &mut file)?;
    // Explicitly, whatever the umask took away at creation.
    file.set_permissions(fs::Permissions::from_mode(0o755))?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn directories_get_the_file_name() {
        let tmp = std::env::temp_dir();
        assert_eq!(target_path(&tmp), tmp.join("envseal"));
        assert_eq!(
            target_path(Path::new("/no/such/dir/")),
            Path::new("/no/such/dir/envseal")
        );
        assert_eq!(
            target_path(Path::new("/no/such/file")),
            Path::new("/no/such/file")
        );
    }
}
