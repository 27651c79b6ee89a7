//! Starts lighttpd (the Debian package `lighttpd`) as a plain static file server for one feed
//! directory (`CALPLANEBOT_FEED_DIR`), configured the way design.md's "Feeds" section asks a
//! deployment to serve it, so that end-to-end tests read feeds over real HTTP as Google Calendar,
//! Outlook, Apple Calendar and Thunderbird do.
//!
//! What the generated config gives, and the tests below check:
//! - `.ics` files as `text/calendar; charset=utf-8` (RFC 5545 section 8.1; without a charset some
//!   readers guess Latin-1);
//! - no directory listing: a file name is a bearer secret, so `GET /` answers 403 (lighttpd's
//!   answer for a directory without index file when `mod_dirlisting` is not loaded);
//! - no dot files: `GET /.anything` answers 403, so a writer's temporary file is never served;
//! - `Cache-Control: max-age=300` ([`CACHE_CONTROL`]), a short cache, on every answer;
//! - lighttpd's default `ETag` (inode, mtime, size) and `Last-Modified`, so a conditional GET
//!   (`If-None-Match`, `If-Modified-Since`) of an unchanged file answers 304 — the point of
//!   "a run with nothing changed rewrites no file".
//!
//! Like [`crate::digest_front`], lighttpd runs in the foreground as whoever starts it, under the
//! `sh` watchdog, with every file it writes (config, logs) in a private temp directory removed on
//! drop; the served directory is the caller's and is never written to.

use crate::digest_front::read_lossy;
use crate::launch::{
    Launch, LaunchError, Watchdog, remove_server_dir, start_on_free_port, unique_temp_dir,
};
use crate::lighttpd::{self, LIGHTTPD_EXECUTABLE, Lighttpd, access_log_setting, config_string};
use std::fs;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ureq::http;

/// The `Cache-Control` value on every answer: calendar apps poll, so keep caches short.
pub const CACHE_CONTROL: &str = "max-age=300";

/// The `Content-Type` of a `.ics` file.
pub const ICS_CONTENT_TYPE: &str = "text/calendar; charset=utf-8";

/// A running lighttpd serving one directory as static files on 127.0.0.1.
///
/// Dropping it stops the server and removes its own directory (config and logs, not the served
/// directory), unless the thread is panicking or the start failed: then it is kept.
pub struct FeedServer {
    served: PathBuf,
    dir: PathBuf,
    addr: SocketAddr,
    server: Option<Watchdog>,
    agent: ureq::Agent,
    keep_dir: bool,
}

/// One answer of [`FeedServer::get`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedResponse {
    pub status: u16,
    /// Every header, names in lower case, in the order received.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl FeedResponse {
    /// The first value of the header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

impl FeedServer {
    /// Starts lighttpd on a free 127.0.0.1 port serving `dir` (which must exist; it is served
    /// as it is at each request, so files written later are served too) and returns once the
    /// server answers. Fails if `/usr/sbin/lighttpd` is missing (install the Debian package
    /// `lighttpd`) or if the server does not come up within 10 s (the error holds the log's tail).
    pub fn start(dir: &Path) -> io::Result<FeedServer> {
        if !Path::new(LIGHTTPD_EXECUTABLE).is_file() {
            return Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "{LIGHTTPD_EXECUTABLE} not found: install the Debian package `lighttpd` \
                     (`apt-get install lighttpd`); the feed server is the real server"
                ),
            ));
        }
        let served = fs::canonicalize(dir)?;
        if !served.is_dir() {
            return Err(io::Error::new(
                io::ErrorKind::NotADirectory,
                format!("{} is not a directory", served.display()),
            ));
        }
        let mut server = FeedServer {
            served,
            dir: unique_temp_dir("feed-server")?,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            server: None,
            agent: ureq::Agent::config_builder()
                // Tests look at 304, 403 and 404 themselves.
                .http_status_as_error(false)
                .max_redirects(0)
                .timeout_global(Some(Duration::from_secs(5)))
                .build()
                .into(),
            keep_dir: false,
        };
        start_on_free_port(&mut server)?;
        Ok(server)
    }

    /// `http://127.0.0.1:PORT/{file_name}`; `file_name` is used as it is (feed names need no
    /// escaping: `{token}.ics`, hex digits).
    pub fn url(&self, file_name: &str) -> String {
        format!("{}/{file_name}", self.base_url())
    }

    /// `http://127.0.0.1:PORT`, no trailing slash: what `CALPLANEBOT_FEED_BASE_URL` would be.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The directory served (canonicalised).
    pub fn served_dir(&self) -> &Path {
        &self.served
    }

    /// The server's own directory: `lighttpd.conf`, `error.log`, `access.log`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// lighttpd's error log; its stdout and stderr go there too.
    pub fn log_path(&self) -> PathBuf {
        self.dir.join(lighttpd::ERROR_LOG)
    }

    /// One line per request, lighttpd's default format
    /// (`host vhost user [time] "request line" status bytes "referer" "user-agent"`), written as
    /// each request ends, so a line may appear a moment after the client has its answer.
    pub fn access_log(&self) -> String {
        read_lossy(&self.dir.join("access.log"))
    }

    /// `GET /{file_name}` with `headers` added (e.g. `("If-None-Match", etag)`), no redirects
    /// followed; any status is an `Ok`.
    pub fn get(&self, file_name: &str, headers: &[(&str, &str)]) -> io::Result<FeedResponse> {
        let mut request = http::Request::builder()
            .method("GET")
            .uri(self.url(file_name));
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let request = request.body(()).map_err(io::Error::other)?;
        let mut response = self.agent.run(request).map_err(io::Error::other)?;
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let body = response
            .body_mut()
            .read_to_vec()
            .map_err(io::Error::other)?;
        Ok(FeedResponse {
            status: response.status().as_u16(),
            headers,
            body,
        })
    }

    /// Whether the server process is running (it may have died on its own).
    pub fn is_running(&mut self) -> bool {
        self.server.as_mut().is_some_and(Watchdog::is_running)
    }

    /// The complete lighttpd configuration for the current port.
    fn config_text(&self) -> io::Result<String> {
        let quoted = |path: &Path| config_string(&path.to_string_lossy());
        let access_log = access_log_setting(&self.dir.join("access.log"))?;
        let lines = [
            "# Written by calplanebot-testbed (feed_server.rs); no Debian defaults included."
                .to_string(),
            format!("server.bind = \"{}\"", self.addr.ip()),
            format!("server.port = {}", self.addr.port()),
            format!("server.document-root = {}", quoted(&self.served)?),
            format!("server.errorlog = {}", quoted(&self.log_path())?),
            // Only the modules listed: no implicit mod_indexfile or mod_dirlisting, so a
            // directory is never listed.
            "server.compat-module-load = \"disable\"".to_string(),
            "server.modules = ( \"mod_access\", \"mod_setenv\", \"mod_staticfile\", \
             \"mod_accesslog\" )"
                .to_string(),
            // Only what is listed gets a type; everything else is application/octet-stream.
            format!("mimetype.assign = ( \".ics\" => \"{ICS_CONTENT_TYPE}\" )"),
            format!("setenv.add-response-header = ( \"Cache-Control\" => \"{CACHE_CONTROL}\" )"),
            // lighttpd caches a file's stat (and so its ETag) for a second or two by default;
            // tests rewrite a feed and read it at once, so look at the file on every request.
            "server.stat-cache-engine = \"disable\"".to_string(),
            // lighttpd's defaults, spelled out because the 304 depends on them.
            "static-file.etags = \"enable\"".to_string(),
            "etag.use-inode = \"enable\"".to_string(),
            "etag.use-mtime = \"enable\"".to_string(),
            "etag.use-size = \"enable\"".to_string(),
            // A writer's temporary files (and any other dot file) are never served.
            "$HTTP[\"url\"] =~ \"/\\.\" { url.access-deny = ( \"\" ) }".to_string(),
            access_log,
        ];
        Ok(lines.join("\n") + "\n")
    }

    /// Stops the server and its watchdog.
    fn stop(&mut self) {
        if let Some(server) = self.server.take() {
            server.stop();
        }
    }
}

impl Launch for FeedServer {
    /// Starts lighttpd on `addr` and waits until `GET /` is answered with 403.
    fn launch_on(&mut self, addr: SocketAddr) -> Result<(), LaunchError> {
        self.addr = addr;
        let lighttpd = Lighttpd {
            dir: &self.dir,
            config_text: &self.config_text()?,
            addr,
            awaited: "refusing to list its directory",
        };
        let ready = || self.get("", &[]).is_ok_and(|reply| reply.status == 403);
        self.server = Some(lighttpd.start(ready)?);
        Ok(())
    }

    fn keep_dir(&mut self) {
        self.keep_dir = true;
    }
}

impl Drop for FeedServer {
    fn drop(&mut self) {
        self.stop();
        remove_server_dir(&self.dir, "feed server", self.keep_dir);
    }
}

impl std::fmt::Debug for FeedServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FeedServer")
            .field("addr", &self.addr)
            .field("served", &self.served)
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

/// The `.ics` files of `dir` with what changes when one is written (calplanebot writes a new
/// file and renames it over the old one): inode, mtime (seconds, nanoseconds) and size. How
/// the demo and the benchmark count the feed files a run wrote.
pub fn file_stamps(dir: &Path) -> std::collections::BTreeMap<String, (u64, i64, i64, u64)> {
    use std::os::unix::fs::MetadataExt as _;
    let Ok(entries) = fs::read_dir(dir) else {
        return Default::default();
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let meta = entry.metadata().ok()?;
            let name = entry.file_name().into_string().ok()?;
            name.ends_with(".ics").then(|| {
                (
                    name,
                    (meta.ino(), meta.mtime(), meta.mtime_nsec(), meta.size()),
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    //! The real lighttpd serving a temp directory.

    use super::*;
    use std::net::TcpStream;
    use std::time::SystemTime;

    const FEED: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calplanebot//test//EN\r\n\
        BEGIN:VEVENT\r\nUID:plane-issue-1@calplanebot\r\nDTSTAMP:20260101T000000Z\r\n\
        DTSTART;VALUE=DATE:20260102\r\nSUMMARY:Grüße\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

    const NAME: &str = "0123456789abcdef0123456789abcdef.ics";

    /// A served directory removed on drop.
    struct Served(PathBuf);

    impl Drop for Served {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn served_with_feed() -> Served {
        let dir = unique_temp_dir("feed-dir").expect("a temp dir");
        fs::write(dir.join(NAME), FEED).expect("write the feed");
        Served(dir)
    }

    #[test]
    fn a_feed_is_served_as_text_calendar_with_cache_headers() {
        let served = served_with_feed();
        let server = FeedServer::start(&served.0).expect("start lighttpd");
        let reply = server.get(NAME, &[]).expect("GET");
        assert_eq!(reply.status, 200, "{reply:?}");
        assert_eq!(reply.body, FEED.as_bytes());
        assert_eq!(reply.header("Content-Type"), Some(ICS_CONTENT_TYPE));
        assert_eq!(reply.header("Cache-Control"), Some(CACHE_CONTROL));
        assert!(reply.header("ETag").is_some(), "{reply:?}");
        assert!(reply.header("Last-Modified").is_some(), "{reply:?}");
        assert!(server.url(NAME).ends_with(&format!("/{NAME}")));
    }

    #[test]
    fn the_directory_is_not_listed_and_dot_files_are_not_served() {
        let served = served_with_feed();
        fs::write(served.0.join(".tmp-feed.ics"), FEED).expect("write a temp file");
        fs::create_dir(served.0.join("sub")).expect("a subdirectory");
        let server = FeedServer::start(&served.0).expect("start lighttpd");
        for target in ["", "sub/", ".tmp-feed.ics"] {
            let reply = server.get(target, &[]).expect("GET");
            assert!(
                reply.status == 403 || reply.status == 404,
                "/{target}: {reply:?}"
            );
            let body = String::from_utf8_lossy(&reply.body);
            assert!(!body.contains(NAME), "/{target} lists {NAME}: {body}");
            assert!(!body.contains(".tmp-feed"), "/{target}: {body}");
        }
        assert_eq!(server.get("missing.ics", &[]).expect("GET").status, 404);
    }

    #[test]
    fn a_conditional_get_of_an_unchanged_feed_answers_304_and_200_after_a_change() {
        let served = served_with_feed();
        let server = FeedServer::start(&served.0).expect("start lighttpd");
        let first = server.get(NAME, &[]).expect("GET");
        let etag = first.header("ETag").expect("an ETag").to_string();
        let last_modified = first
            .header("Last-Modified")
            .expect("Last-Modified")
            .to_string();

        let by_etag = server.get(NAME, &[("If-None-Match", &etag)]).expect("GET");
        assert_eq!(by_etag.status, 304, "{by_etag:?}");
        assert!(by_etag.body.is_empty());
        assert_eq!(by_etag.header("ETag"), Some(etag.as_str()));
        let by_date = server
            .get(NAME, &[("If-Modified-Since", &last_modified)])
            .expect("GET");
        assert_eq!(by_date.status, 304, "{by_date:?}");

        // Another content with another mtime, written the way the feed writer does (rename).
        let changed = FEED.replace("Grüße", "Grüße, again");
        let temp = served.0.join(".new");
        fs::write(&temp, &changed).expect("write");
        let later = SystemTime::now() + Duration::from_secs(2);
        fs::File::options()
            .write(true)
            .open(&temp)
            .and_then(|f| f.set_modified(later))
            .expect("set mtime");
        fs::rename(&temp, served.0.join(NAME)).expect("rename");
        let after = server.get(NAME, &[("If-None-Match", &etag)]).expect("GET");
        assert_eq!(after.status, 200, "{after:?}");
        assert_eq!(after.body, changed.as_bytes());
        assert_ne!(after.header("ETag"), Some(etag.as_str()));
        let after = server
            .get(NAME, &[("If-Modified-Since", &last_modified)])
            .expect("GET");
        assert_eq!(after.status, 200, "{after:?}");
    }

    #[test]
    fn dropping_the_server_stops_lighttpd_and_keeps_the_served_directory() {
        let served = served_with_feed();
        let mut server = FeedServer::start(&served.0).expect("start lighttpd");
        assert!(server.is_running());
        let dir = server.dir().to_path_buf();
        let addr = server.addr();
        assert!(dir.join("lighttpd.conf").is_file());
        drop(server);
        assert!(!dir.exists(), "{} still there", dir.display());
        assert!(served.0.join(NAME).is_file());
        assert!(TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err());
    }
}
