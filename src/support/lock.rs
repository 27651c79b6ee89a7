//! One run at a time per configuration: an exclusive lock on a file (`flock`-style, through
//! `std::fs::File::try_lock`), held for the whole run. The kernel releases it when the process
//! ends in any way, SIGKILL included, so a crashed run never leaves a stale lock behind.

use std::fs::{File, OpenOptions, TryLockError};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Held while the run lasts; dropping it releases the lock.
#[derive(Debug)]
pub struct RunLock {
    _file: File,
}

#[derive(Debug, thiserror::Error)]
pub enum LockError {
    #[error("another calplanebot run holds the lock {path} (waited {waited:.0} s)")]
    Busy { path: PathBuf, waited: f64 },
    #[error(
        "cannot open the lock file {path}: {source} (set CALPLANEBOT_LOCK_FILE or --lock-file)"
    )]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

const POLL: Duration = Duration::from_millis(100);

/// Takes the lock at `path`, waiting up to `wait` for another run to finish.
pub fn acquire(path: &Path, wait: Duration) -> Result<RunLock, LockError> {
    let io = |source| LockError::Io {
        path: path.to_path_buf(),
        source,
    };
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(io)?;
    }
    // A lock file another user made (a shared feed directory written by two services that run
    // as different dynamic users) may not be writable: `flock` works on a descriptor opened for
    // reading too.
    let file = match OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
    {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => OpenOptions::new()
            .read(true)
            .open(path)
            .map_err(|_| io(e))?,
        opened => opened.map_err(io)?,
    };
    let started = Instant::now();
    let mut announced = false;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(RunLock { _file: file }),
            Err(TryLockError::WouldBlock) => {
                let waited = started.elapsed();
                if waited >= wait {
                    return Err(LockError::Busy {
                        path: path.to_path_buf(),
                        waited: waited.as_secs_f64(),
                    });
                }
                if !announced {
                    log::info!(
                        "another calplanebot run holds {}; waiting up to {:.0} s",
                        path.display(),
                        wait.as_secs_f64()
                    );
                    announced = true;
                }
                std::thread::sleep(POLL.min(wait - waited));
            }
            Err(TryLockError::Error(source)) => return Err(io(source)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_waits_then_gives_up_and_gets_it_after_release() {
        let dir = std::env::temp_dir().join(format!("calplanebot-lock-{}", std::process::id()));
        let path = dir.join("sub/run.lock");
        let first = acquire(&path, Duration::ZERO).expect("free lock");
        let started = Instant::now();
        match acquire(&path, Duration::from_millis(300)) {
            Err(LockError::Busy { .. }) => {}
            other => panic!("{other:?}"),
        }
        assert!(started.elapsed() >= Duration::from_millis(300));
        drop(first);
        assert!(acquire(&path, Duration::ZERO).is_ok());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_lock_file_that_is_only_readable_still_locks() {
        let dir = std::env::temp_dir().join(format!("calplanebot-lock-ro-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("ro.lock");
        std::fs::write(&path, "").unwrap();
        use std::os::unix::fs::PermissionsExt as _;
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
        // Root may write any file: the fallback is then not needed, and the test shows only
        // that the lock still works.
        let first = acquire(&path, Duration::ZERO).expect("a read-only lock file locks");
        assert!(matches!(
            acquire(&path, Duration::ZERO),
            Err(LockError::Busy { .. })
        ));
        drop(first);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_unusable_path_is_an_io_error() {
        let err = acquire(Path::new("/proc/calplanebot/x.lock"), Duration::ZERO).unwrap_err();
        assert!(err.to_string().contains("CALPLANEBOT_LOCK_FILE"), "{err}");
    }
}
