//! One shop per data directory: `mercato up` holds an exclusive lock on `DIR/mercato.lock` for
//! as long as it runs, so a second shop on the same files (a second recovery worker, a second
//! catalog cache that the first one's writes never invalidate) is refused, naming the first.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

use anyhow::Context as _;

/// The lock file's name in the data directory.
pub const LOCK_FILE: &str = "mercato.lock";

/// The held lock; dropping it (or the process ending, however it ends) releases it.
#[derive(Debug)]
pub struct DataDirLock {
    _file: File,
}

impl DataDirLock {
    /// Takes the lock of `dir`, and writes this process's id into the file for the next one to
    /// name. Creating the file is also the first write into `dir`, so an unwritable directory
    /// is reported here with the operating system's reason.
    pub fn acquire(dir: &Path) -> anyhow::Result<Self> {
        let path = dir.join(LOCK_FILE);
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .with_context(|| format!("cannot write in the data directory {}", dir.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = match holder.trim() {
                    "" => "another mercato".to_owned(),
                    pid => format!("another mercato (pid {pid})"),
                };
                anyhow::bail!(
                    "the data directory {} is in use by {holder}: stop it, or give this shop another --data-dir",
                    dir.display()
                );
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .with_context(|| format!("cannot write {}", path.display()))?;
        Ok(Self { _file: file })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_on_the_same_directory_names_the_holder_until_the_first_is_dropped() {
        let dir = tempfile::tempdir().unwrap();
        let first = DataDirLock::acquire(dir.path()).unwrap();
        let err = DataDirLock::acquire(dir.path()).unwrap_err().to_string();
        assert!(err.contains(&format!("in use by another mercato (pid {})", std::process::id())), "{err}");
        drop(first);
        DataDirLock::acquire(dir.path()).unwrap();
    }
}
