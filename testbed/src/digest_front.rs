//! Starts lighttpd (the Debian package `lighttpd`) as an HTTP Digest front (RFC 7616): a reverse
//! proxy that demands Digest credentials for every path and method and hands each authenticated
//! request, with the user name in `X-Remote-User`, to a plain-HTTP upstream — Radicale with
//! `[auth] type = http_x_remote_user` in the integration tests. calplanebot's Digest client is
//! tested against this real server instead of against our own reading of the RFC.
//!
//! Why lighttpd and not Apache: Debian 12's lighttpd 1.4.69 offers `algorithm=MD5` and
//! `algorithm=SHA-256` (also both at once: two challenges), Apache's `mod_auth_digest` only MD5.
//! lighttpd runs in the foreground (`-D`) as whoever starts it: the generated config sets no
//! `server.username`, includes none of Debian's files and keeps every file it reads or writes
//! (config, htdigest file, logs, upload dir, an empty document root) in a private temp directory.
//!
//! What lighttpd 1.4.69 does with Digest, read from its source (`src/mod_auth.c`) and checked by
//! the tests below:
//! - The nonce is `<hex unix time>:<hex hash>`. The server keeps no state: it checks the age only,
//!   600 s. An older (or future, or unparsable) nonce gets 401 with `stale=true` and a single
//!   challenge for the algorithm the client used; a nonce between 540 and 600 s old still works,
//!   and the answer carries `Authentication-Info: nextnonce="…"`. `nc` and `cnonce` are not
//!   tracked: a replayed request is accepted.
//! - Any nonce of that form with a fresh time is accepted, made up or not. `nonce_secret`, the
//!   option meant to prevent that, breaks every login in 1.4.69 (fixed in 1.4.77), so it is off.
//! - `uri=` must equal the request target byte for byte, else 400 (not 401); `qop=auth-int` is
//!   400; a wrong password or an unknown user is 401 with a fresh challenge and
//!   `Connection: close`, sent about a second late (`auth.delay-invalid-creds`, left on as in a
//!   real deployment). The `Authorization` header is passed on to the upstream too.
//!
//! The user name reaches the upstream through `setenv.set-request-header`, a fixed value: with
//! exactly one user in the htdigest file and `require => "user=NAME"` on every path, a request
//! that gets past `mod_auth` is that user's. The same setting overwrites a client's own
//! `X-Remote-User` and removes its `_` spellings, which Radicale's server (Python's `wsgiref`)
//! would otherwise fold into the same `HTTP_X_REMOTE_USER` variable.
//!
//! Every [`DigestFront`] runs under a tiny `sh` watchdog that stops lighttpd as soon as this
//! process closes its end of a pipe, so a server is not left behind even if a test binary is
//! killed. There is no fallback when `/usr/sbin/lighttpd` is missing: [`DigestFront::start`]
//! fails with a message that names the package to install.

use crate::launch::{
    Launch, LaunchError, Watchdog, free_loopback_port, remove_server_dir, start_on_free_port,
    unique_temp_dir,
};
use crate::lighttpd::{self, Lighttpd, access_log_setting, config_string};
use sha2::{Digest as _, Sha256};
use std::fmt::Write as _;
use std::fs;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ureq::http;

pub use crate::lighttpd::LIGHTTPD_EXECUTABLE;

/// The realm of every front's challenges.
pub const REALM: &str = "calplanebot-test";

/// The header the upstream reads the authenticated user from (Radicale's `http_x_remote_user`).
pub const REMOTE_USER_HEADER: &str = "X-Remote-User";

/// The hash a front's challenges name (RFC 7616 section 3.3 `algorithm`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DigestAlgorithm {
    /// `algorithm=MD5` only.
    Md5,
    /// `algorithm=SHA-256` only.
    Sha256,
    /// Two challenges, `SHA-256` first and then `MD5` (lighttpd's order); either is accepted.
    Both,
}

impl DigestAlgorithm {
    /// The value of lighttpd's `auth.require` `"algorithm"` option.
    fn lighttpd_value(self) -> &'static str {
        match self {
            DigestAlgorithm::Md5 => "MD5",
            DigestAlgorithm::Sha256 => "SHA-256",
            DigestAlgorithm::Both => "SHA-256|MD5",
        }
    }

    /// The hashes offered, in the order lighttpd sends their challenges.
    fn hashes(self) -> &'static [Hash] {
        match self {
            DigestAlgorithm::Md5 => &[Hash::Md5],
            DigestAlgorithm::Sha256 => &[Hash::Sha256],
            DigestAlgorithm::Both => &[Hash::Sha256, Hash::Md5],
        }
    }

    /// The `algorithm=` values of the challenges, in the order lighttpd sends them.
    pub fn challenge_names(self) -> Vec<&'static str> {
        self.hashes().iter().map(|hash| hash.name()).collect()
    }
}

/// One hash function a challenge can name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Hash {
    Md5,
    Sha256,
}

impl Hash {
    /// The `algorithm=` token (RFC 7616 section 6.1).
    fn name(self) -> &'static str {
        match self {
            Hash::Md5 => "MD5",
            Hash::Sha256 => "SHA-256",
        }
    }

    /// The hash of `data` in lower-case hex, as Digest and htdigest files write it.
    fn hex(self, data: &[u8]) -> String {
        match self {
            Hash::Md5 => hex(&md5(data)),
            Hash::Sha256 => hex(&Sha256::digest(data)),
        }
    }
}

/// A running lighttpd that authenticates one user with HTTP Digest and proxies to an upstream.
///
/// Dropping it stops the server and removes its directory, unless the thread is panicking or
/// the start failed: then the directory (with `error.log` and `access.log`) is kept.
pub struct DigestFront {
    dir: PathBuf,
    addr: SocketAddr,
    upstream: SocketAddr,
    username: String,
    algorithm: DigestAlgorithm,
    server: Option<Watchdog>,
    agent: ureq::Agent,
    keep_dir: bool,
}

impl DigestFront {
    /// Starts lighttpd on a free 127.0.0.1 port as a reverse proxy to `upstream` (plain HTTP),
    /// requiring Digest credentials of `username`/`password` (realm [`REALM`]) for every path and
    /// method, and returns once an unauthenticated request is answered with 401 and a Digest
    /// challenge. Fails if `/usr/sbin/lighttpd` is missing (install the Debian package
    /// `lighttpd`), if `username` is not made of ASCII letters, digits and `._@+-`, or if the
    /// server does not come up within 10 s (the error holds the log's tail).
    pub fn start(
        upstream: SocketAddr,
        username: &str,
        password: &str,
        algorithm: DigestAlgorithm,
    ) -> io::Result<DigestFront> {
        if !Path::new(LIGHTTPD_EXECUTABLE).is_file() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{LIGHTTPD_EXECUTABLE} not found: install the Debian package `lighttpd` \
                     (1.4.69 in Debian 12, `apt-get install lighttpd`); the Digest front is the \
                     real server"
                ),
            ));
        }
        check_username(username)?;
        let addr = free_loopback_port()?;
        let mut front = DigestFront {
            dir: unique_temp_dir("digest-front")?,
            addr,
            upstream,
            username: username.to_string(),
            algorithm,
            server: None,
            agent: ureq::Agent::config_builder()
                // The readiness probe expects 401.
                .http_status_as_error(false)
                .max_redirects(0)
                .timeout_global(Some(Duration::from_secs(2)))
                .build()
                .into(),
            keep_dir: false,
        };
        if let Err(e) = front.prepare(password) {
            front.keep_dir = true;
            return Err(e);
        }
        start_on_free_port(&mut front)?;
        Ok(front)
    }

    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The only user the front lets in.
    pub fn username(&self) -> &str {
        &self.username
    }

    pub fn algorithm(&self) -> DigestAlgorithm {
        self.algorithm
    }

    /// The server's directory: `lighttpd.conf`, `htdigest`, the logs, `upload/`, `htdocs/`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// lighttpd's error log; its stdout and stderr go there too (startup errors such as a port
    /// already in use are written before the log is opened).
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(lighttpd::ERROR_LOG)
    }

    /// Where lighttpd writes one line per request, in its default format:
    /// `host vhost user [time] "request line" status bytes "referer" "user-agent"`; `user` is
    /// the authenticated user or `-`.
    pub fn access_log_path(&self) -> PathBuf {
        self.dir.join("access.log")
    }

    /// The access log so far (the readiness probes included). A line is written through a pipe
    /// as each request ends, so it may appear a moment after the client has its response.
    pub fn access_log(&self) -> String {
        read_lossy(&self.access_log_path())
    }

    /// Whether the server process is running (it may have died on its own).
    pub fn is_running(&mut self) -> bool {
        self.server.as_mut().is_some_and(Watchdog::is_running)
    }

    fn htdigest_path(&self) -> PathBuf {
        self.dir.join("htdigest")
    }

    fn upload_dir(&self) -> PathBuf {
        self.dir.join("upload")
    }

    fn document_root(&self) -> PathBuf {
        self.dir.join("htdocs")
    }

    /// Writes the htdigest file and creates the directories the config names.
    fn prepare(&self, password: &str) -> io::Result<()> {
        fs::create_dir(self.upload_dir())?;
        fs::create_dir(self.document_root())?;
        fs::write(
            self.htdigest_path(),
            htdigest_text(&self.username, password, self.algorithm),
        )
    }

    /// The complete lighttpd configuration for the current port.
    fn config_text(&self) -> io::Result<String> {
        let quoted = |path: PathBuf| config_string(&path.to_string_lossy());
        let access_log = access_log_setting(&self.access_log_path())?;
        let user = config_string(&self.username)?;
        let mut text = String::new();
        let mut line = |s: String| {
            text.push_str(&s);
            text.push('\n');
        };
        line(
            "# Written by calplanebot-testbed (digest_front.rs); no Debian defaults included."
                .into(),
        );
        line(format!("server.bind = \"{}\"", self.addr.ip()));
        line(format!("server.port = {}", self.addr.port()));
        line(format!(
            "server.document-root = {}",
            quoted(self.document_root())?
        ));
        line(format!("server.errorlog = {}", quoted(self.log_path())?));
        // Request bodies are buffered in full before they are proxied; big ones go to files here
        // instead of /var/tmp.
        line(format!(
            "server.upload-dirs = ( {} )",
            quoted(self.upload_dir())?
        ));
        // Forward the request target byte for byte: by default lighttpd would decode %2F and
        // %7E and drop `..` segments before proxying.
        line("server.http-parseopts = ( \"url-normalize\" => \"disable\" )".into());
        // Only the modules listed, not the implicit indexfile/dirlisting/staticfile.
        line("server.compat-module-load = \"disable\"".into());
        line(
            "server.modules = ( \"mod_auth\", \"mod_authn_file\", \"mod_setenv\", \
             \"mod_proxy\", \"mod_accesslog\" )"
                .into(),
        );
        line(access_log);
        line("auth.backend = \"htdigest\"".into());
        line(format!(
            "auth.backend.htdigest.userfile = {}",
            quoted(self.htdigest_path())?
        ));
        // "" is a prefix of every path, `OPTIONS *` included.
        line(format!(
            "auth.require = ( \"\" => ( \"method\" => \"digest\", \"realm\" => {}, \
             \"algorithm\" => \"{}\", \"require\" => {} ) )",
            config_string(REALM)?,
            self.algorithm.lighttpd_value(),
            config_string(&format!("user={}", self.username))?
        ));
        // Runs after mod_auth has let the request in; an empty value removes the header.
        line(format!(
            "setenv.set-request-header = ( \"{REMOTE_USER_HEADER}\" => {user}, \
             \"X_Remote_User\" => \"\", \"X-Remote_User\" => \"\", \"X_Remote-User\" => \"\" )"
        ));
        line(format!(
            "proxy.server = ( \"\" => ( ( \"host\" => \"{}\", \"port\" => {} ) ) )",
            self.upstream.ip(),
            self.upstream.port()
        ));
        Ok(text)
    }

    /// Stops the server and its watchdog.
    fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop();
        }
    }
}

impl Launch for DigestFront {
    /// Starts lighttpd on `addr` and waits until it answers with a Digest challenge.
    fn launch_on(&mut self, addr: SocketAddr) -> Result<(), LaunchError> {
        self.addr = addr;
        let lighttpd = Lighttpd {
            dir: &self.dir,
            config_text: &self.config_text()?,
            addr,
            awaited: "answering with a Digest challenge",
        };
        self.server = Some(lighttpd.start(|| self.probe().is_ok())?);
        Ok(())
    }

    fn keep_dir(&mut self) {
        self.keep_dir = true;
    }
}

impl DigestFront {
    /// `GET /` without credentials must get 401 and a Digest challenge for [`REALM`].
    fn probe(&self) -> Result<(), String> {
        let request = http::Request::builder()
            .method("GET")
            .uri(format!("{}/", self.url()))
            .body(())
            .map_err(|e| e.to_string())?;
        let response = self.agent.run(request).map_err(|e| e.to_string())?;
        let challenge = response
            .headers()
            .get_all(http::header::WWW_AUTHENTICATE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find(|v| v.starts_with("Digest "));
        match (response.status().as_u16(), challenge) {
            (401, Some(challenge)) if challenge.contains(&format!("realm=\"{REALM}\"")) => Ok(()),
            (status, challenge) => Err(format!("{status} with challenge {challenge:?}")),
        }
    }
}

impl Drop for DigestFront {
    fn drop(&mut self) {
        self.stop();
        remove_server_dir(&self.dir, "Digest front", self.keep_dir);
    }
}

impl std::fmt::Debug for DigestFront {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DigestFront")
            .field("addr", &self.addr)
            .field("upstream", &self.upstream)
            .field("username", &self.username)
            .field("algorithm", &self.algorithm)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// User names are limited to what needs no escaping anywhere they go: the htdigest file
/// (`user:realm:hash`), `require => "user=NAME"` (split at `|`), a config string and a header.
fn check_username(username: &str) -> io::Result<()> {
    let fits = |c: char| c.is_ascii_alphanumeric() || "._@+-".contains(c);
    if username.is_empty() || !username.chars().all(fits) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "Digest front user name {username:?}: use ASCII letters, digits and `._@+-` only"
            ),
        ));
    }
    Ok(())
}

/// One htdigest line per algorithm: `user:realm:hex(H(user:realm:password))`. lighttpd picks
/// the line whose hash length fits the algorithm the client chose.
fn htdigest_text(username: &str, password: &str, algorithm: DigestAlgorithm) -> String {
    let a1 = format!("{username}:{REALM}:{password}");
    let mut text = String::new();
    for hash in algorithm.hashes() {
        let _ = writeln!(text, "{username}:{REALM}:{}", hash.hex(a1.as_bytes()));
    }
    text
}

pub(crate) fn read_lossy(path: &Path) -> String {
    fs::read(path)
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default()
}

/// Lower-case hex, as Digest and htdigest files write hashes.
fn hex(bytes: &[u8]) -> String {
    bytes.iter().fold(String::new(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// MD5 (RFC 1321), which the htdigest file and the MD5 tests need and the testbed has no crate
/// for. Written from the RFC's description; checked against its test suite (appendix A.5).
fn md5(message: &[u8]) -> [u8; 16] {
    // Section 3.4: T[i] = floor(2^32 * |sin(i)|), i = 1..=64; and the per-round shift amounts.
    let t: [u32; 64] =
        std::array::from_fn(|i| ((i as f64 + 1.0).sin().abs() * 4_294_967_296.0) as u32);
    const SHIFTS: [[u32; 4]; 4] = [
        [7, 12, 17, 22],
        [5, 9, 14, 20],
        [4, 11, 16, 23],
        [6, 10, 15, 21],
    ];

    // Section 3.1 and 3.2: pad with 0x80, zeros to 56 mod 64, then the bit length (little endian).
    let mut data = message.to_vec();
    data.push(0x80);
    while data.len() % 64 != 56 {
        data.push(0);
    }
    data.extend_from_slice(&((message.len() as u64).wrapping_mul(8)).to_le_bytes());

    // Section 3.3: the initial state A, B, C, D.
    let mut state: [u32; 4] = [0x6745_2301, 0xefcd_ab89, 0x98ba_dcfe, 0x1032_5476];
    for block in data.chunks_exact(64) {
        let x: [u32; 16] = std::array::from_fn(|i| {
            u32::from_le_bytes([
                block[4 * i],
                block[4 * i + 1],
                block[4 * i + 2],
                block[4 * i + 3],
            ])
        });
        let [mut a, mut b, mut c, mut d] = state;
        for i in 0..64 {
            // Section 3.4: the four auxiliary functions and the order the words are taken in.
            let (f, k) = match i / 16 {
                0 => ((b & c) | (!b & d), i),
                1 => ((b & d) | (c & !d), (5 * i + 1) % 16),
                2 => (b ^ c ^ d, (3 * i + 5) % 16),
                _ => (c ^ (b | !d), (7 * i) % 16),
            };
            let sum = a.wrapping_add(f).wrapping_add(x[k]).wrapping_add(t[i]);
            a = d;
            d = c;
            c = b;
            b = b.wrapping_add(sum.rotate_left(SHIFTS[i / 16][i % 4]));
        }
        for (word, add) in state.iter_mut().zip([a, b, c, d]) {
            *word = word.wrapping_add(add);
        }
    }
    let mut digest = [0u8; 16];
    for (chunk, word) in digest.chunks_exact_mut(4).zip(state) {
        chunk.copy_from_slice(&word.to_le_bytes());
    }
    digest
}

#[cfg(test)]
mod tests {
    //! The real lighttpd in front of a recording upstream written here (no Radicale needed), with
    //! Digest responses computed by the tests (and by curl, when it is installed).

    use super::*;
    use std::collections::{BTreeMap, HashMap};
    use std::io::{Read as _, Write as _};
    use std::net::{TcpListener, TcpStream};
    use std::process::Command;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::{Arc, Mutex};
    use std::thread::{self, JoinHandle};
    use std::time::Instant;
    use std::time::{SystemTime, UNIX_EPOCH};

    const USER: &str = "alice";
    const PASSWORD: &str = "correct horse battery staple";

    /// What the upstream answers when no other answer was set for a path.
    const MULTISTATUS: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
        <multistatus xmlns=\"DAV:\"><response><href>/alice/</href>\
        <status>HTTP/1.1 200 OK</status></response></multistatus>\n";

    const PROPFIND_BODY: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
        <propfind xmlns=\"DAV:\"><prop><getetag/><resourcetype/></prop></propfind>\n";

    const EVENT: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calplanebot//test//EN\r\n\
        BEGIN:VEVENT\r\nUID:plane-1@calplanebot\r\nDTSTAMP:20260101T000000Z\r\n\
        DTSTART;VALUE=DATE:20260102\r\nSUMMARY:Ship it\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

    // ---- a recording upstream ----------------------------------------------------------------

    /// One request as the upstream received it.
    #[derive(Clone, Debug)]
    struct Recorded {
        method: String,
        target: String,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl Recorded {
        /// Every value of the header `name` (case-insensitive), in the order received.
        fn header(&self, name: &str) -> Vec<&str> {
            self.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .collect()
        }
    }

    /// An answer the upstream gives for one path.
    #[derive(Clone, Debug)]
    struct Canned {
        status: u16,
        reason: &'static str,
        headers: Vec<(&'static str, &'static str)>,
        body: &'static str,
    }

    #[derive(Default)]
    struct UpstreamState {
        requests: Vec<Recorded>,
        canned: HashMap<String, Canned>,
    }

    /// A std-only HTTP/1.1 server on 127.0.0.1 that records every request and answers 207 with
    /// [`MULTISTATUS`] (or what [`Upstream::answer`] set for the path), closing each connection
    /// as lighttpd's mod_proxy expects.
    struct Upstream {
        addr: SocketAddr,
        state: Arc<Mutex<UpstreamState>>,
        stop: Arc<AtomicBool>,
        thread: Option<JoinHandle<()>>,
    }

    impl Upstream {
        fn start() -> Upstream {
            let listener = TcpListener::bind("127.0.0.1:0").expect("bind the upstream");
            let addr = listener.local_addr().expect("the upstream's address");
            let state = Arc::new(Mutex::new(UpstreamState::default()));
            let stop = Arc::new(AtomicBool::new(false));
            let thread = {
                let (state, stop) = (Arc::clone(&state), Arc::clone(&stop));
                thread::spawn(move || {
                    for stream in listener.incoming() {
                        if stop.load(Ordering::SeqCst) {
                            break;
                        }
                        if let Ok(stream) = stream {
                            serve(stream, &state);
                        }
                    }
                })
            };
            Upstream {
                addr,
                state,
                stop,
                thread: Some(thread),
            }
        }

        fn answer(&self, path: &str, canned: Canned) {
            let mut state = self.state.lock().expect("upstream state");
            state.canned.insert(path.to_string(), canned);
        }

        fn requests(&self) -> Vec<Recorded> {
            self.state.lock().expect("upstream state").requests.clone()
        }
    }

    impl Drop for Upstream {
        fn drop(&mut self) {
            self.stop.store(true, Ordering::SeqCst);
            // Wake the accept loop.
            let _ = TcpStream::connect(self.addr);
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }

    /// Reads one request (lighttpd always sends `Content-Length`: it buffers request bodies),
    /// records it and answers.
    fn serve(mut stream: TcpStream, state: &Mutex<UpstreamState>) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let mut data = Vec::new();
        let mut buf = [0u8; 65536];
        let head_end = loop {
            if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                break i;
            }
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => return,
                Ok(n) => data.extend_from_slice(&buf[..n]),
            }
        };
        let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
        let mut lines = head.split("\r\n");
        let mut request_line = lines.next().unwrap_or_default().split(' ');
        let method = request_line.next().unwrap_or_default().to_string();
        let target = request_line.next().unwrap_or_default().to_string();
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.to_string(), v.trim().to_string()))
            .collect();
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("Content-Length"))
            .and_then(|(_, v)| v.parse().ok())
            .unwrap_or(0);
        let mut body = data[head_end + 4..].to_vec();
        while body.len() < length {
            match stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => body.extend_from_slice(&buf[..n]),
            }
        }
        let canned = {
            let mut state = state.lock().expect("upstream state");
            let path = target.split('?').next().unwrap_or_default();
            let canned = state.canned.get(path).cloned();
            state.requests.push(Recorded {
                method,
                target,
                headers,
                body,
            });
            canned
        };
        let canned = canned.unwrap_or(Canned {
            status: 207,
            reason: "Multi-Status",
            headers: vec![("Content-Type", "application/xml; charset=utf-8")],
            body: MULTISTATUS,
        });
        let mut response = format!("HTTP/1.1 {} {}\r\n", canned.status, canned.reason);
        for (name, value) in &canned.headers {
            response.push_str(&format!("{name}: {value}\r\n"));
        }
        response.push_str(&format!(
            "Content-Length: {}\r\nConnection: close\r\n\r\n{}",
            canned.body.len(),
            canned.body
        ));
        let _ = stream.write_all(response.as_bytes());
    }

    // ---- a Digest client -----------------------------------------------------------------------

    /// The parameters of one `WWW-Authenticate: Digest …` challenge.
    #[derive(Clone, Debug)]
    struct Challenge(BTreeMap<String, String>);

    impl Challenge {
        fn get(&self, name: &str) -> Option<&str> {
            self.0.get(name).map(String::as_str)
        }

        fn param(&self, name: &str) -> &str {
            self.get(name)
                .unwrap_or_else(|| panic!("challenge without {name}: {self:?}"))
        }
    }

    /// Parses `Digest k=v, k="v", …` (RFC 7235 auth-params, quoted strings with `\` escapes).
    fn parse_challenge(header: &str) -> Challenge {
        let rest = header
            .strip_prefix("Digest ")
            .unwrap_or_else(|| panic!("not a Digest challenge: {header}"));
        let mut params = BTreeMap::new();
        let mut chars = rest.chars().peekable();
        loop {
            while chars.next_if(|c| *c == ' ' || *c == ',').is_some() {}
            let name: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
            if name.is_empty() || chars.next() != Some('=') {
                break;
            }
            let mut value = String::new();
            if chars.next_if_eq(&'"').is_some() {
                while let Some(c) = chars.next() {
                    match c {
                        '"' => break,
                        '\\' => value.extend(chars.next()),
                        c => value.push(c),
                    }
                }
            } else {
                value = std::iter::from_fn(|| chars.next_if(|c| *c != ',')).collect();
            }
            params.insert(name.trim().to_ascii_lowercase(), value.trim().to_string());
        }
        Challenge(params)
    }

    /// H() of RFC 7616 section 3.4.1 for the challenge's algorithm, as lower-case hex.
    fn hash_hex(algorithm: &str, data: &str) -> String {
        let hash = match algorithm {
            "MD5" => Hash::Md5,
            "SHA-256" => Hash::Sha256,
            other => panic!("no hash for algorithm {other}"),
        };
        hash.hex(data.as_bytes())
    }

    /// What a client answers `challenge` with (RFC 7616 section 3.4, qop=auth).
    struct Credentials<'a> {
        username: &'a str,
        password: &'a str,
        method: &'a str,
        uri: &'a str,
        nc: u32,
        cnonce: &'a str,
    }

    fn authorization(challenge: &Challenge, c: &Credentials) -> String {
        let algorithm = challenge.get("algorithm").unwrap_or("MD5");
        let realm = challenge.param("realm");
        let nonce = challenge.param("nonce");
        let qop = challenge.param("qop");
        assert_eq!(qop, "auth", "lighttpd offers qop=auth only");
        let ha1 = hash_hex(algorithm, &format!("{}:{realm}:{}", c.username, c.password));
        let ha2 = hash_hex(algorithm, &format!("{}:{}", c.method, c.uri));
        let nc = format!("{:08x}", c.nc);
        let response = hash_hex(
            algorithm,
            &format!("{ha1}:{nonce}:{nc}:{}:{qop}:{ha2}", c.cnonce),
        );
        format!(
            "Digest username=\"{}\", realm=\"{realm}\", nonce=\"{nonce}\", uri=\"{}\", \
             algorithm={algorithm}, qop={qop}, nc={nc}, cnonce=\"{}\", response=\"{response}\"",
            c.username, c.uri, c.cnonce
        )
    }

    /// A response as the client saw it.
    struct Reply {
        status: u16,
        headers: Vec<(String, String)>,
        body: Vec<u8>,
    }

    impl std::fmt::Debug for Reply {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.debug_struct("Reply")
                .field("status", &self.status)
                .field("headers", &self.headers)
                .field("body", &String::from_utf8_lossy(&self.body))
                .finish()
        }
    }

    impl Reply {
        fn header(&self, name: &str) -> Vec<&str> {
            self.headers
                .iter()
                .filter(|(n, _)| n.eq_ignore_ascii_case(name))
                .map(|(_, v)| v.as_str())
                .collect()
        }

        fn challenges(&self) -> Vec<Challenge> {
            self.header("WWW-Authenticate")
                .into_iter()
                .map(parse_challenge)
                .collect()
        }
    }

    fn agent() -> ureq::Agent {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .allow_non_standard_methods(true)
            .max_redirects(0)
            .timeout_global(Some(Duration::from_secs(10)))
            .build()
            .into()
    }

    /// Sends `method` to `front` at `target` (path and query) with these headers and body.
    fn send(
        front: &DigestFront,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Reply {
        let url = format!("{}{target}", front.url());
        let mut builder = http::Request::builder().method(method).uri(&url);
        for (name, value) in headers {
            builder = builder.header(*name, *value);
        }
        let agent = agent();
        let sent = match body {
            Some(body) => agent.run(builder.body(body).expect("a request")),
            None => agent.run(builder.body(()).expect("a request")),
        };
        let mut response = sent.unwrap_or_else(|e| panic!("{method} {url}: {e}"));
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .body_mut()
            .with_config()
            .limit(16 << 20)
            .read_to_vec()
            .unwrap_or_else(|e| panic!("{method} {url}: body: {e}"));
        Reply {
            status,
            headers,
            body,
        }
    }

    /// The challenges an unauthenticated `GET /` gets.
    fn fresh_challenges(front: &DigestFront) -> Vec<Challenge> {
        let reply = send(front, "GET", "/", &[], None);
        assert_eq!(reply.status, 401, "{reply:?}");
        reply.challenges()
    }

    /// The fresh challenge for `algorithm` ("MD5" or "SHA-256").
    fn fresh_challenge(front: &DigestFront, algorithm: &str) -> Challenge {
        fresh_challenges(front)
            .into_iter()
            .find(|c| c.get("algorithm") == Some(algorithm))
            .unwrap_or_else(|| panic!("no {algorithm} challenge from {front:?}"))
    }

    /// Sends the request with a correct Digest `Authorization` for `algorithm`.
    fn send_as_alice(
        front: &DigestFront,
        algorithm: &str,
        method: &str,
        target: &str,
        headers: &[(&str, &str)],
        body: Option<&[u8]>,
    ) -> Reply {
        let challenge = fresh_challenge(front, algorithm);
        let authorization = authorization(
            &challenge,
            &Credentials {
                username: USER,
                password: PASSWORD,
                method,
                uri: target,
                nc: 1,
                cnonce: "0a4f113b",
            },
        );
        let mut all = headers.to_vec();
        all.push(("Authorization", authorization.as_str()));
        send(front, method, target, &all, body)
    }

    fn start_pair(algorithm: DigestAlgorithm) -> (Upstream, DigestFront) {
        let upstream = Upstream::start();
        let front = DigestFront::start(upstream.addr, USER, PASSWORD, algorithm)
            .unwrap_or_else(|e| panic!("{e}"));
        (upstream, front)
    }

    /// Waits until the access log has a line containing every one of `parts`, and returns it.
    fn access_log_line(front: &DigestFront, parts: &[&str]) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let log = front.access_log();
            if let Some(line) = log.lines().find(|l| parts.iter().all(|p| l.contains(p))) {
                return line.to_string();
            }
            assert!(
                Instant::now() < deadline,
                "no access log line with {parts:?}:\n{log}"
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn unix_now() -> u64 {
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("after 1970")
            .as_secs()
    }

    // ---- tests ---------------------------------------------------------------------------------

    #[test]
    fn md5_matches_the_rfc_1321_test_suite() {
        let suite = [
            ("", "d41d8cd98f00b204e9800998ecf8427e"),
            ("a", "0cc175b9c0f1b6a831c399e269772661"),
            ("abc", "900150983cd24fb0d6963f7d28e17f72"),
            ("message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
            (
                "abcdefghijklmnopqrstuvwxyz",
                "c3fcd3d76192e4007dfb496cca67e13b",
            ),
            (
                "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789",
                "d174ab98d277d9f5a5611c2c9f419d9f",
            ),
            (
                "12345678901234567890123456789012345678901234567890123456789012345678901234567890",
                "57edf4a22be3c955ac49da2e2107b67a",
            ),
        ];
        for (input, expected) in suite {
            assert_eq!(hex(&md5(input.as_bytes())), expected, "MD5({input:?})");
        }
    }

    #[test]
    fn the_config_names_only_files_in_the_private_directory() {
        let (_upstream, front) = start_pair(DigestAlgorithm::Sha256);
        let config = fs::read_to_string(front.dir().join("lighttpd.conf")).expect("the config");
        let dir = front.dir().display().to_string();
        for line in config.lines() {
            for path in line.split('"').filter(|s| s.starts_with('/')) {
                assert!(path.starts_with(&dir), "{path} outside {dir}: {line}");
            }
        }
        for forbidden in [
            "include",
            "server.username",
            "server.groupname",
            "server.chroot",
        ] {
            assert!(
                !config.lines().any(|l| l.starts_with(forbidden)),
                "{forbidden} in:\n{config}"
            );
        }
        let htdigest = fs::read_to_string(front.dir().join("htdigest")).expect("htdigest");
        let expected = hash_hex("SHA-256", &format!("{USER}:{REALM}:{PASSWORD}"));
        assert_eq!(htdigest, format!("{USER}:{REALM}:{expected}\n"));
    }

    #[test]
    fn without_credentials_every_method_gets_401_with_a_digest_challenge() {
        for algorithm in [
            DigestAlgorithm::Md5,
            DigestAlgorithm::Sha256,
            DigestAlgorithm::Both,
        ] {
            let (upstream, front) = start_pair(algorithm);
            for method in [
                "PROPFIND",
                "REPORT",
                "PUT",
                "DELETE",
                "MKCALENDAR",
                "OPTIONS",
            ] {
                let reply = send(
                    &front,
                    method,
                    "/alice/calendar/",
                    &[(REMOTE_USER_HEADER, USER)],
                    Some(b"<x/>"),
                );
                assert_eq!(reply.status, 401, "{algorithm:?} {method}: {reply:?}");
                let challenges = reply.challenges();
                let names: Vec<&str> = challenges.iter().map(|c| c.param("algorithm")).collect();
                assert_eq!(names, algorithm.challenge_names(), "{reply:?}");
                for challenge in &challenges {
                    assert_eq!(challenge.param("realm"), REALM);
                    assert_eq!(challenge.param("qop"), "auth");
                    assert_eq!(challenge.param("charset"), "UTF-8");
                    assert_eq!(challenge.get("stale"), None);
                    assert_eq!(challenge.get("opaque"), None);
                    // "<hex unix time>:<hex hash>"
                    let (time, hash) = challenge.param("nonce").split_once(':').expect("a colon");
                    let time = u64::from_str_radix(time, 16).expect("hex time");
                    assert!(time.abs_diff(unix_now()) < 5, "nonce time {time}");
                    let hash_len = if challenge.param("algorithm") == "MD5" {
                        32
                    } else {
                        64
                    };
                    assert_eq!(hash.len(), hash_len, "{challenge:?}");
                }
            }
            assert!(upstream.requests().is_empty(), "{:?}", upstream.requests());
        }
    }

    #[test]
    fn a_digest_propfind_and_put_reach_upstream_intact_with_the_user() {
        for (algorithm, choices) in [
            (DigestAlgorithm::Md5, &["MD5"][..]),
            (DigestAlgorithm::Sha256, &["SHA-256"][..]),
            (DigestAlgorithm::Both, &["SHA-256", "MD5"][..]),
        ] {
            let (upstream, front) = start_pair(algorithm);
            for &choice in choices {
                let before = upstream.requests().len();
                let reply = send_as_alice(
                    &front,
                    choice,
                    "PROPFIND",
                    "/alice/calendar/",
                    &[
                        ("Depth", "1"),
                        ("Content-Type", "application/xml; charset=utf-8"),
                    ],
                    Some(PROPFIND_BODY.as_bytes()),
                );
                assert_eq!(reply.status, 207, "{algorithm:?}/{choice}: {reply:?}");
                assert_eq!(reply.body, MULTISTATUS.as_bytes());

                let reply = send_as_alice(
                    &front,
                    choice,
                    "PUT",
                    "/alice/calendar/plane-1.ics",
                    &[
                        ("If-Match", "\"etag-41\""),
                        ("Content-Type", "text/calendar; charset=utf-8"),
                    ],
                    Some(EVENT.as_bytes()),
                );
                assert_eq!(reply.status, 207, "{reply:?}");

                let requests = upstream.requests();
                let [propfind, put] = &requests[before..] else {
                    panic!("{algorithm:?}/{choice}: upstream got {requests:#?}");
                };
                assert_eq!(propfind.method, "PROPFIND");
                assert_eq!(propfind.target, "/alice/calendar/");
                assert_eq!(propfind.header("Depth"), ["1"]);
                assert_eq!(
                    propfind.header("Content-Type"),
                    ["application/xml; charset=utf-8"]
                );
                assert_eq!(propfind.body, PROPFIND_BODY.as_bytes());
                assert_eq!(propfind.header(REMOTE_USER_HEADER), [USER]);
                assert_eq!(put.method, "PUT");
                assert_eq!(put.target, "/alice/calendar/plane-1.ics");
                assert_eq!(put.header("If-Match"), ["\"etag-41\""]);
                assert_eq!(put.body, EVENT.as_bytes());
                assert_eq!(put.header(REMOTE_USER_HEADER), [USER]);
                // No 100-continue dance reaches the upstream.
                assert!(put.header("Expect").is_empty(), "{put:?}");
            }
            access_log_line(
                &front,
                &[
                    " alice ",
                    "\"PUT /alice/calendar/plane-1.ics HTTP/1.1\" 207",
                ],
            );
        }
    }

    /// One WebDAV exchange through the front: the request, what the upstream answers, and the
    /// response header the client must see unchanged.
    struct Exchange {
        method: &'static str,
        target: &'static str,
        headers: &'static [(&'static str, &'static str)],
        body: Option<&'static str>,
        answer: Canned,
        expected_header: Option<(&'static str, &'static str)>,
    }

    fn answer(
        status: u16,
        reason: &'static str,
        headers: &[(&'static str, &'static str)],
        body: &'static str,
    ) -> Canned {
        Canned {
            status,
            reason,
            headers: headers.to_vec(),
            body,
        }
    }

    #[test]
    fn webdav_statuses_headers_and_bodies_pass_through_unchanged() {
        const MKCALENDAR: &str = "<?xml version=\"1.0\"?><C:mkcalendar xmlns:D=\"DAV:\" \
            xmlns:C=\"urn:ietf:params:xml:ns:caldav\"><D:set><D:prop>\
            <D:displayname>Plane</D:displayname></D:prop></D:set></C:mkcalendar>";
        const REPORT: &str = "<?xml version=\"1.0\"?><C:calendar-query xmlns:D=\"DAV:\" \
            xmlns:C=\"urn:ietf:params:xml:ns:caldav\"><D:prop><D:getetag/></D:prop>\
            <C:filter><C:comp-filter name=\"VCALENDAR\"/></C:filter></C:calendar-query>";
        const PROPPATCH: &str = "<?xml version=\"1.0\"?><D:propertyupdate xmlns:D=\"DAV:\">\
            <D:set><D:prop><D:displayname>Renamed</D:displayname></D:prop></D:set>\
            </D:propertyupdate>";
        let xml = [("Content-Type", "application/xml; charset=utf-8")];
        let exchanges = [
            Exchange {
                method: "MKCALENDAR",
                target: "/alice/new/",
                headers: &[("Content-Type", "application/xml")],
                body: Some(MKCALENDAR),
                answer: answer(
                    201,
                    "Created",
                    &[("Location", "http://x.example/a/new/")],
                    "",
                ),
                expected_header: Some(("Location", "http://x.example/a/new/")),
            },
            Exchange {
                method: "MKCALENDAR",
                target: "/alice/conflict/",
                headers: &[],
                body: Some(MKCALENDAR),
                answer: answer(409, "Conflict", &[], "conflict"),
                expected_header: None,
            },
            Exchange {
                method: "REPORT",
                target: "/alice/calendar/",
                headers: &[("Depth", "1")],
                body: Some(REPORT),
                answer: answer(207, "Multi-Status", &xml, MULTISTATUS),
                expected_header: Some(("Content-Type", "application/xml; charset=utf-8")),
            },
            Exchange {
                method: "PROPPATCH",
                target: "/alice/calendar/",
                headers: &[],
                body: Some(PROPPATCH),
                answer: answer(207, "Multi-Status", &xml, MULTISTATUS),
                expected_header: None,
            },
            Exchange {
                method: "PUT",
                target: "/alice/calendar/taken.ics",
                headers: &[("If-None-Match", "*")],
                body: Some(EVENT),
                answer: answer(412, "Precondition Failed", &[("ETag", "\"now\"")], "no"),
                expected_header: Some(("ETag", "\"now\"")),
            },
            Exchange {
                method: "PUT",
                target: "/alice/calendar/created.ics",
                headers: &[("If-None-Match", "*")],
                body: Some(EVENT),
                answer: answer(201, "Created", &[("ETag", "\"fresh-1\"")], ""),
                expected_header: Some(("ETag", "\"fresh-1\"")),
            },
            Exchange {
                method: "DELETE",
                target: "/alice/calendar/gone.ics",
                headers: &[("If-Match", "\"fresh-1\"")],
                body: None,
                answer: answer(204, "No Content", &[], ""),
                expected_header: None,
            },
            Exchange {
                method: "PROPFIND",
                target: "/radicale-says-no/",
                headers: &[("Depth", "0")],
                body: None,
                answer: answer(
                    401,
                    "Unauthorized",
                    &[("WWW-Authenticate", "Basic realm=\"R\"")],
                    "",
                ),
                expected_header: Some(("WWW-Authenticate", "Basic realm=\"R\"")),
            },
            // Percent-encoding and dot segments are forwarded as sent (`url-normalize` is off).
            Exchange {
                method: "PROPFIND",
                target: "/alice%40example.com/ca%7el%2Fx%20y/../z/?q=1%2f",
                headers: &[("Depth", "0")],
                body: None,
                answer: answer(207, "Multi-Status", &xml, MULTISTATUS),
                expected_header: None,
            },
        ];
        let (upstream, front) = start_pair(DigestAlgorithm::Sha256);
        for exchange in &exchanges {
            let Exchange { method, target, .. } = exchange;
            let path = target.split('?').next().unwrap_or_default();
            upstream.answer(path, exchange.answer.clone());
            let before = upstream.requests().len();
            let reply = send_as_alice(
                &front,
                "SHA-256",
                method,
                target,
                exchange.headers,
                exchange.body.map(str::as_bytes),
            );
            assert_eq!(
                reply.status, exchange.answer.status,
                "{method} {target}: {reply:?}"
            );
            assert_eq!(
                reply.body,
                exchange.answer.body.as_bytes(),
                "{method} {target}"
            );
            if let Some((name, value)) = exchange.expected_header {
                assert_eq!(reply.header(name), [value], "{method} {target}: {reply:?}");
            }
            let requests = upstream.requests();
            let [seen] = &requests[before..] else {
                panic!("{method} {target}: upstream got {requests:#?}");
            };
            assert_eq!(&seen.method, method);
            assert_eq!(&seen.target, target);
            assert_eq!(seen.body, exchange.body.unwrap_or_default().as_bytes());
            for (name, value) in exchange.headers {
                assert_eq!(seen.header(name), [*value], "{method} {target}");
            }
            assert_eq!(seen.header(REMOTE_USER_HEADER), [USER]);
        }
    }

    #[test]
    fn a_large_body_with_expect_100_continue_arrives_intact() {
        let (upstream, front) = start_pair(DigestAlgorithm::Md5);
        // Bigger than what lighttpd keeps in memory: it goes through upload/.
        let body: Vec<u8> = (0..3 << 20)
            .map(|i: u32| b"BEGIN:VEVENT\r\n"[(i % 14) as usize])
            .collect();
        let reply = send(
            &front,
            "PUT",
            "/alice/calendar/big.ics",
            &[("Expect", "100-continue")],
            Some(&body),
        );
        assert_eq!(reply.status, 401, "without credentials: {reply:?}");
        assert!(upstream.requests().is_empty());

        let reply = send_as_alice(
            &front,
            "MD5",
            "PUT",
            "/alice/calendar/big.ics",
            &[("Expect", "100-continue"), ("If-None-Match", "*")],
            Some(&body),
        );
        assert_eq!(reply.status, 207, "{reply:?}");
        let requests = upstream.requests();
        let [put] = &requests[..] else {
            panic!("upstream got {} requests", requests.len());
        };
        assert!(
            put.body == body,
            "body differs: {} bytes of {}",
            put.body.len(),
            body.len()
        );
        assert!(put.header("Expect").is_empty(), "{:?}", put.headers);
        assert_eq!(put.header("If-None-Match"), ["*"]);
    }

    #[test]
    fn wrong_credentials_get_401_and_nothing_reaches_upstream() {
        let (upstream, front) = start_pair(DigestAlgorithm::Both);
        let attempts = [
            ("wrong password", USER, "Tr0ub4dor&3", "SHA-256"),
            ("wrong password, MD5", USER, "Tr0ub4dor&3", "MD5"),
            ("unknown user", "mallory", PASSWORD, "SHA-256"),
            ("user name in another case", "Alice", PASSWORD, "SHA-256"),
        ];
        for (case, username, password, algorithm) in attempts {
            let challenge = fresh_challenge(&front, algorithm);
            let authorization = authorization(
                &challenge,
                &Credentials {
                    username,
                    password,
                    method: "PROPFIND",
                    uri: "/alice/",
                    nc: 1,
                    cnonce: "c1",
                },
            );
            let reply = send(
                &front,
                "PROPFIND",
                "/alice/",
                &[("Authorization", &authorization), ("Depth", "0")],
                None,
            );
            assert_eq!(reply.status, 401, "{case}: {reply:?}");
            let challenges = reply.challenges();
            assert_eq!(challenges.len(), 2, "{case}: {reply:?}");
            assert!(
                challenges.iter().all(|c| c.get("stale").is_none()),
                "{case}"
            );
            assert_eq!(reply.header("Connection"), ["close"], "{case}");
        }
        // Basic credentials are not Digest credentials.
        let basic = format!("Basic {}", {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(format!("{USER}:{PASSWORD}"))
        });
        let reply = send(&front, "GET", "/alice/", &[("Authorization", &basic)], None);
        assert_eq!(reply.status, 401, "Basic: {reply:?}");
        assert!(upstream.requests().is_empty(), "{:?}", upstream.requests());
    }

    #[test]
    fn a_client_x_remote_user_never_reaches_upstream() {
        let (upstream, front) = start_pair(DigestAlgorithm::Sha256);
        let reply = send_as_alice(
            &front,
            "SHA-256",
            "PROPFIND",
            "/mallory/",
            &[
                ("X-Remote-User", "mallory"),
                ("x-remote-user", "eve"),
                // Python's wsgiref (Radicale's server) turns these into HTTP_X_REMOTE_USER too.
                ("X_Remote_User", "mallory"),
                ("X-Remote_User", "mallory"),
                ("X_Remote-User", "mallory"),
                ("Depth", "0"),
            ],
            None,
        );
        assert_eq!(reply.status, 207, "{reply:?}");
        let requests = upstream.requests();
        let [seen] = &requests[..] else {
            panic!("upstream got {requests:#?}");
        };
        let as_wsgi = |name: &str| name.to_ascii_uppercase().replace('-', "_");
        // lighttpd keeps the client's spelling of the name (ureq sends it in lower case).
        let remote_user: Vec<&str> = seen
            .headers
            .iter()
            .filter(|(n, _)| as_wsgi(n) == "X_REMOTE_USER")
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(remote_user, [USER], "{:#?}", seen.headers);
        access_log_line(&front, &[" alice ", "\"PROPFIND /mallory/ HTTP/1.1\" 207"]);

        // Without credentials the header opens nothing.
        let reply = send(
            &front,
            "PROPFIND",
            "/alice/",
            &[("X-Remote-User", USER)],
            None,
        );
        assert_eq!(reply.status, 401);
        assert_eq!(upstream.requests().len(), 1);
    }

    /// A request for `target` answering `challenge` correctly, as alice.
    fn propfind_with(front: &DigestFront, challenge: &Challenge, target: &str) -> Reply {
        let authorization = authorization(
            challenge,
            &Credentials {
                username: USER,
                password: PASSWORD,
                method: "PROPFIND",
                uri: target,
                nc: 1,
                cnonce: "5ccc069c403ebaf9f0171e9517f40e41",
            },
        );
        send(
            front,
            "PROPFIND",
            target,
            &[("Authorization", &authorization), ("Depth", "0")],
            None,
        )
    }

    /// `challenge` with its nonce replaced.
    fn with_nonce(challenge: &Challenge, nonce: String) -> Challenge {
        let mut changed = challenge.clone();
        changed.0.insert("nonce".to_string(), nonce);
        changed
    }

    #[test]
    fn an_expired_future_or_malformed_nonce_gets_401_stale_true() {
        let (upstream, front) = start_pair(DigestAlgorithm::Both);
        let challenge = fresh_challenge(&front, "SHA-256");
        let hash = challenge
            .param("nonce")
            .split_once(':')
            .expect("a colon")
            .1
            .to_string();
        let now = unix_now();
        let cases = [
            ("expired 11 minutes ago", format!("{:x}:{hash}", now - 660)),
            ("from the year 1970", format!("1:{hash}")),
            ("an hour in the future", format!("{:x}:{hash}", now + 3600)),
            (
                "no time in it",
                "deadbeefdeadbeefdeadbeefdeadbeef".to_string(),
            ),
            ("not hex", "not-a-nonce".to_string()),
        ];
        for (case, nonce) in cases {
            let reply = propfind_with(&front, &with_nonce(&challenge, nonce), "/alice/");
            assert_eq!(reply.status, 401, "{case}: {reply:?}");
            // One challenge, for the algorithm the client used, with stale=true.
            let challenges = reply.challenges();
            let [stale] = &challenges[..] else {
                panic!("{case}: {reply:?}");
            };
            assert_eq!(stale.param("algorithm"), "SHA-256", "{case}");
            assert_eq!(stale.param("stale"), "true", "{case}");
            assert_ne!(stale.param("nonce"), challenge.param("nonce"), "{case}");
            // The stale challenge's nonce works.
            let reply = propfind_with(&front, stale, "/alice/");
            assert_eq!(reply.status, 207, "{case}, retried: {reply:?}");
        }
        assert_eq!(upstream.requests().len(), 5);
    }

    #[test]
    fn nonces_are_checked_for_age_only_and_nc_replays_are_accepted() {
        // Pins lighttpd 1.4.69's behaviour for the client's authors: no nonce state at all.
        let (upstream, front) = start_pair(DigestAlgorithm::Md5);
        let challenge = fresh_challenge(&front, "MD5");

        // The same Authorization header (same nonce, nc and cnonce) three times.
        let authorization = authorization(
            &challenge,
            &Credentials {
                username: USER,
                password: PASSWORD,
                method: "REPORT",
                uri: "/alice/calendar/",
                nc: 1,
                cnonce: "replayed",
            },
        );
        for attempt in 1..=3 {
            let reply = send(
                &front,
                "REPORT",
                "/alice/calendar/",
                &[("Authorization", &authorization), ("Depth", "1")],
                Some(b"<x/>"),
            );
            assert_eq!(reply.status, 207, "replay {attempt}: {reply:?}");
        }

        // A nonce the server never issued, with a fresh time in it.
        let forged = with_nonce(&challenge, format!("{:x}:made-up", unix_now() - 5));
        let reply = propfind_with(&front, &forged, "/alice/");
        assert_eq!(reply.status, 207, "forged nonce: {reply:?}");
        assert!(reply.header("Authentication-Info").is_empty(), "{reply:?}");

        // Between 540 and 600 seconds old: accepted, with the next nonce to use.
        let old = with_nonce(&challenge, format!("{:x}:made-up", unix_now() - 570));
        let reply = propfind_with(&front, &old, "/alice/");
        assert_eq!(reply.status, 207, "9.5 minute old nonce: {reply:?}");
        let info = reply.header("Authentication-Info");
        let [info] = &info[..] else {
            panic!("no Authentication-Info: {reply:?}");
        };
        let next = info
            .strip_prefix("nextnonce=\"")
            .and_then(|s| s.strip_suffix('"'))
            .unwrap_or_else(|| panic!("Authentication-Info: {info}"));
        let reply = propfind_with(&front, &with_nonce(&challenge, next.to_string()), "/alice/");
        assert_eq!(reply.status, 207, "nextnonce: {reply:?}");
        assert_eq!(upstream.requests().len(), 6);
    }

    #[test]
    fn a_digest_for_another_uri_or_with_auth_int_gets_400() {
        let (upstream, front) = start_pair(DigestAlgorithm::Sha256);
        let challenge = fresh_challenge(&front, "SHA-256");
        let for_other_uri = authorization(
            &challenge,
            &Credentials {
                username: USER,
                password: PASSWORD,
                method: "PROPFIND",
                uri: "/alice/other/",
                nc: 1,
                cnonce: "c",
            },
        );
        let reply = send(
            &front,
            "PROPFIND",
            "/alice/",
            &[("Authorization", &for_other_uri)],
            None,
        );
        assert_eq!(reply.status, 400, "uri mismatch: {reply:?}");

        let auth_int = for_other_uri
            .replace("uri=\"/alice/other/\"", "uri=\"/alice/\"")
            .replace("qop=auth", "qop=auth-int");
        let reply = send(
            &front,
            "PROPFIND",
            "/alice/",
            &[("Authorization", &auth_int)],
            None,
        );
        assert_eq!(reply.status, 400, "qop=auth-int: {reply:?}");
        assert!(upstream.requests().is_empty());
    }

    #[test]
    fn curl_digest_gets_through_with_md5_and_sha256() {
        let curl = Path::new("/usr/bin/curl");
        if !curl.is_file() {
            eprintln!(
                "SKIPPED: /usr/bin/curl not found (Debian package `curl`); an independent Digest client"
            );
            return;
        }
        for algorithm in [DigestAlgorithm::Md5, DigestAlgorithm::Sha256] {
            let (upstream, front) = start_pair(algorithm);
            let output = Command::new(curl)
                .args(["--silent", "--show-error", "--digest", "--user"])
                .arg(format!("{USER}:{PASSWORD}"))
                .args([
                    "--request",
                    "PROPFIND",
                    "--header",
                    "Depth: 1",
                    "--data-binary",
                ])
                .arg(PROPFIND_BODY)
                .args(["--output", "/dev/null", "--write-out", "%{http_code}"])
                .arg(format!("{}/alice/", front.url()))
                .output()
                .expect("run curl");
            let status = String::from_utf8_lossy(&output.stdout);
            assert_eq!(
                status,
                "207",
                "{algorithm:?}: curl said {}\nlog:\n{}",
                String::from_utf8_lossy(&output.stderr),
                read_lossy(&front.log_path())
            );
            let requests = upstream.requests();
            let [seen] = &requests[..] else {
                panic!("upstream got {requests:#?}");
            };
            assert_eq!(seen.body, PROPFIND_BODY.as_bytes());
            assert_eq!(seen.header(REMOTE_USER_HEADER), [USER]);
            // The Authorization header passes through to the upstream as well.
            let sent = seen.header("Authorization").join("");
            let name = algorithm.challenge_names()[0];
            assert!(sent.contains(&format!("algorithm={name}")), "{sent}");
        }
    }

    #[test]
    fn a_user_name_that_needs_escaping_is_refused() {
        let upstream = Upstream::start();
        for username in ["", "al:ice", "a|b", "a\"b", "al ice", "ålice"] {
            let error = DigestFront::start(upstream.addr, username, PASSWORD, DigestAlgorithm::Md5)
                .expect_err(username);
            assert_eq!(
                error.kind(),
                io::ErrorKind::InvalidInput,
                "{username:?}: {error}"
            );
        }
    }

    #[test]
    fn dropping_the_front_stops_lighttpd_and_removes_its_directory() {
        let (_upstream, mut front) = start_pair(DigestAlgorithm::Md5);
        assert!(front.is_running());
        let dir = front.dir().to_path_buf();
        let addr = front.addr();
        assert!(dir.join("error.log").is_file());
        drop(front);
        assert!(!dir.exists(), "{} still there", dir.display());
        assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err());
    }
}
