//! Writing a small file whole or not at all: a temp file beside it, then a rename, so a reader
//! (the next run, the node-exporter collector) never sees half a file; and reading one back
//! with a size cap ([`read`]).
//!
//! The temp file gets an unpredictable name and is created with `O_CREAT | O_EXCL`
//! (`create_new`), so nothing that already exists at that name is opened: a symlink planted
//! there (the cache and metrics directories may be writable by others) is not followed, and
//! no one else's file is written through it (issue 12, point 7).

use std::fs::{File, OpenOptions};
use std::io::{self, Write as _};
use std::os::unix::fs::{OpenOptionsExt as _, PermissionsExt as _};
use std::path::{Path, PathBuf};

/// How many fresh names are tried when the one drawn is taken.
const ATTEMPTS: u32 = 16;

/// The bytes of the file at `path`, `None` when there is none; an error (as text, for a
/// warning) when it cannot be read or is larger than `max` bytes: nothing bigger is read.
pub fn read(path: &Path, max: u64) -> Result<Option<Vec<u8>>, String> {
    let file = match std::fs::File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let mut bytes = Vec::new();
    use std::io::Read as _;
    file.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| e.to_string())?;
    if bytes.len() as u64 > max {
        return Err(format!("larger than {max} bytes"));
    }
    Ok(Some(bytes))
}

/// A JSON state file (a cache, a snapshot): `Ok(None)` when it does not exist; an error that
/// says it is not `what` when it is larger than `max` bytes or not that JSON.
pub fn read_json<T: serde::de::DeserializeOwned>(
    path: &Path,
    max: u64,
    what: &str,
) -> Result<Option<T>, String> {
    let Some(bytes) = read(path, max)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| format!("not {what} ({e})"))
}

/// Saves a state file that changed (`dirty`) as compact JSON, atomically and private (0600);
/// a failure is only a warning naming `what` it was and what `then` happens, and leaves it
/// dirty.
pub fn save_json<T: serde::Serialize>(
    path: Option<&Path>,
    value: &T,
    dirty: &mut bool,
    what: &str,
    then: &str,
) {
    let Some(path) = path.filter(|_| *dirty) else {
        return;
    };
    match write_json(path, value, 0o600) {
        Ok(()) => *dirty = false,
        Err(error) => log::warn!(
            "cannot write the {what} {}: {error}; {then}",
            path.display()
        ),
    }
}

/// Writes `value` as compact JSON to `path` atomically, with `mode` ([`write`]), streamed:
/// the text is never held whole.
pub fn write_json<T: serde::Serialize>(path: &Path, value: &T, mode: u32) -> io::Result<()> {
    write_with(path, Temp::Beside, mode, |writer| {
        serde_json::to_writer(writer, value).map_err(io::Error::other)
    })
}

/// Replaces `path` with `bytes`, with permissions `mode` whatever the umask, creating missing
/// parent directories.
pub fn write(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    write_pieces(path, Temp::Beside, mode, std::iter::once(bytes))
}

/// Where the temp file of a write goes, in the target's directory.
#[derive(Clone, Copy, Debug)]
pub enum Temp<'a> {
    /// `{path}.{16 hex}.tmp`.
    Beside,
    /// `{prefix}{16 hex}`: a name that does not carry the target's (a feed's name is a bearer
    /// secret, and a web server may serve the directory).
    Named(&'a str),
}

/// Replaces `path` with the bytes of `pieces`, written one after the other (a large file is
/// never held whole), like [`write`].
pub fn write_pieces<'p>(
    path: &Path,
    temp: Temp<'_>,
    mode: u32,
    pieces: impl IntoIterator<Item = &'p [u8]>,
) -> io::Result<()> {
    write_with(path, temp, mode, |writer| {
        for piece in pieces {
            writer.write_all(piece)?;
        }
        Ok(())
    })
}

/// Replaces `path` with what `fill` writes, like [`write`].
fn write_with(
    path: &Path,
    temp: Temp<'_>,
    mode: u32,
    fill: impl FnOnce(&mut io::BufWriter<File>) -> io::Result<()>,
) -> io::Result<()> {
    let dir = match path.parent().filter(|p| !p.as_os_str().is_empty()) {
        Some(parent) => {
            std::fs::create_dir_all(parent)?;
            parent
        }
        None => Path::new("."),
    };
    let (file, temp) = create_temp(path, temp, mode)?;
    let result = (|| {
        // The mode given at open is cut by the umask; this sets it exactly.
        file.set_permissions(std::fs::Permissions::from_mode(mode))?;
        let mut writer = io::BufWriter::with_capacity(64 * 1024, file);
        fill(&mut writer)?;
        let file = writer.into_inner().map_err(|e| e.into_error())?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
        return result;
    }
    // Makes the rename itself durable. Best effort: the file is whole either way, and some
    // filesystems cannot sync a directory.
    if let Ok(dir) = File::open(dir) {
        let _ = dir.sync_all();
    }
    Ok(())
}

/// Creates a new, empty temp file beside `path` (same directory, so the rename stays on one
/// filesystem), trying fresh names while the drawn one exists.
fn create_temp(path: &Path, how: Temp<'_>, mode: u32) -> io::Result<(File, PathBuf)> {
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let temp = temp_name(path, how);
        match open_new(&temp, mode) {
            Ok(file) => return Ok((file, temp)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => last = Some(e),
            Err(e) => return Err(e),
        }
    }
    Err(last.unwrap_or_else(|| io::Error::from(io::ErrorKind::AlreadyExists)))
}

/// Opens `path` for writing only if nothing exists there: `O_CREAT | O_EXCL`, which also
/// refuses a symlink (even a dangling one) instead of following it (POSIX `open`).
fn open_new(path: &Path, mode: u32) -> io::Result<File> {
    OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
}

/// `{path}.{16 hex digits}.tmp`: unpredictable to another user, from the process's random
/// hasher keys (std's `RandomState`), the pid, the time and a counter; no crate needed.
fn temp_name(path: &Path, how: Temp<'_>) -> PathBuf {
    use std::hash::{BuildHasher as _, Hasher as _};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u32(std::process::id());
    hasher.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos()),
    );
    match how {
        Temp::Beside => {
            let mut name = path.as_os_str().to_owned();
            name.push(format!(".{:016x}.tmp", hasher.finish()));
            PathBuf::from(name)
        }
        Temp::Named(prefix) => path.with_file_name(format!("{prefix}{:016x}", hasher.finish())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fresh directory of its own for each test.
    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("calplanebot-atomic-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    /// Issue 12, point 7: the old temp name, `{path}.{pid}.tmp`, was predictable, and
    /// `File::create` followed a symlink planted there into any file the process could write
    /// (then renamed the symlink over the target). Neither happens now.
    #[test]
    fn a_symlink_at_the_old_predictable_temp_name_is_not_followed() {
        let dir = scratch("symlink");
        let victim = dir.join("victim");
        std::fs::write(&victim, "not yours").unwrap();
        let path = dir.join("metrics.prom");
        let planted = dir.join(format!("metrics.prom.{}.tmp", std::process::id()));
        std::os::unix::fs::symlink(&victim, &planted).unwrap();

        write(&path, b"new content\n", 0o644).unwrap();

        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "not yours");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "new content\n");
        let meta = std::fs::symlink_metadata(&path).unwrap();
        assert!(meta.file_type().is_file(), "{meta:?}");
        assert_eq!(meta.permissions().mode() & 0o7777, 0o644);
        // Only the planted link is left beside them: no temp file of ours.
        assert_eq!(
            names(&dir),
            [
                "metrics.prom".to_string(),
                format!("metrics.prom.{}.tmp", std::process::id()),
                "victim".to_string()
            ]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_temp_file_is_opened_only_if_nothing_is_there() {
        let dir = scratch("exclusive");
        let (existing, dangling, target) = (
            dir.join("existing"),
            dir.join("dangling"),
            dir.join("would-be-created"),
        );
        std::os::unix::fs::symlink(&target, &dangling).unwrap();
        std::fs::write(&existing, "kept").unwrap();
        for path in [&existing, &dangling] {
            let error = open_new(path, 0o600).expect_err("exists");
            assert_eq!(error.kind(), io::ErrorKind::AlreadyExists, "{path:?}");
        }
        assert_eq!(std::fs::read_to_string(&existing).unwrap(), "kept");
        assert!(!target.exists(), "the dangling link was not followed");
        // Names are drawn afresh every time, beside the target.
        let path = dir.join("cache.json");
        let (a, b) = (
            temp_name(&path, Temp::Beside),
            temp_name(&path, Temp::Beside),
        );
        assert_ne!(a, b);
        assert_eq!(a.parent(), Some(dir.as_path()));
        assert!(a.to_string_lossy().starts_with(&*path.to_string_lossy()));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_mode_is_exact_and_no_temp_file_is_left_on_success_or_failure() {
        let dir = scratch("leftovers");
        let path = dir.join("sub").join("cache.json");
        // 0o666 would lose its group and other write bits to a usual umask of 022.
        write(&path, b"{}", 0o666).unwrap();
        write(&path, b"{\"again\":1}", 0o666).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{\"again\":1}");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o7777;
        assert_eq!(mode, 0o666);
        assert_eq!(names(&dir.join("sub")), ["cache.json"]);
        // The rename fails onto a directory that is not empty: the temp file goes too.
        let blocked = dir.join("blocked");
        std::fs::create_dir_all(blocked.join("inside")).unwrap();
        assert!(write(&blocked, b"x", 0o644).is_err());
        assert_eq!(names(&dir), ["blocked", "sub"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
