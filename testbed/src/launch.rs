//! What the server launchers (`radicale`, `webhook_shim`) share: a free loopback port, a
//! private temp directory, the tail of a server's log, and the error that says "try another
//! port".

use std::fs::{self, File};
use std::io::{self, Read as _, Seek as _, SeekFrom};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

pub(crate) enum LaunchError {
    /// The server could not bind its port: worth retrying with another one.
    PortTaken(io::Error),
    Other(io::Error),
}

impl From<io::Error> for LaunchError {
    fn from(error: io::Error) -> Self {
        LaunchError::Other(error)
    }
}

/// A port on 127.0.0.1 that was free a moment ago (bind to port 0, read it, release it).
pub(crate) fn free_loopback_port() -> io::Result<SocketAddr> {
    TcpListener::bind("127.0.0.1:0")?.local_addr()
}

pub(crate) static INSTANCE_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A new, empty directory under the system temp dir, `calplanebot-{what}-…`: pid, a counter
/// and the time make the name unique across threads, test binaries and runs.
pub(crate) fn unique_temp_dir(what: &str) -> io::Result<PathBuf> {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let n = INSTANCE_COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!(
        "calplanebot-{what}-{}-{n}-{nanos}",
        std::process::id()
    ));
    fs::create_dir(&dir)?;
    Ok(dir)
}

/// The last lines the server wrote to its log since `from` (byte offset).
pub(crate) fn log_tail(path: &Path, from: u64) -> String {
    let mut text = String::new();
    if let Ok(mut file) = File::open(path) {
        let _ = file.seek(SeekFrom::Start(from));
        let mut bytes = Vec::new();
        let _ = file.read_to_end(&mut bytes);
        text = String::from_utf8_lossy(&bytes).into_owned();
    }
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
