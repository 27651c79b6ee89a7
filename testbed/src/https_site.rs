//! What the two web servers that serve a feed directory the way README.md tells an operator to
//! ([`crate::nginx`], [`crate::caddy`]) share: the README's site name and feed directory, which
//! a test swaps for its own in the README's configuration ([`fill_in`]); a certificate for that
//! name made with openssl; and [`SiteClient`], which reaches the site by its name on loopback,
//! over HTTPS trusting only the test's certificate, and over plain HTTP for the port-80
//! redirect.
//!
//! Why a client of its own rather than ureq: ureq (with its `gzip` feature, on in this build)
//! decodes a gzip body and drops `Content-Encoding`, and cannot be told not to, while a test of
//! a server's compression needs the bytes as they were sent. The client must also send the
//! site's name (in SNI and `Host`) to 127.0.0.1: nginx picks its `server` block, Caddy its site
//! and certificate by that name. So: rustls, as the testbed's TLS proxy uses it, over a
//! `TcpStream`, one HTTP/1.1 request per connection (`Connection: close`), chunked bodies
//! decoded, every other byte as received.

use crate::feed_server::FeedResponse;
use crate::launch::wait_or_kill;
use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, ServerName};
use std::fs;
use std::io::{self, Read as _};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

/// The host name README.md's configurations serve feeds under; the test's certificate is made
/// for it and the client sends it.
pub const SITE_NAME: &str = "cal.example.com";

/// The feed directory README.md's configurations serve (and the units may write).
pub const README_FEED_DIR: &str = "/var/lib/calplanebot-feeds";

/// How long one request may take, connection included.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// The largest answer read: feeds in tests are a few kilobytes.
const MAX_RESPONSE: u64 = 16 * 1024 * 1024;

/// How long openssl may take to make the certificate (some milliseconds).
const CERTIFICATE_TIMEOUT: Duration = Duration::from_secs(30);

/// The openssl command (the Debian package `openssl`), found on `PATH`.
const OPENSSL: &str = "openssl";

/// `text` with every occurrence of `placeholder` replaced by `value`. A placeholder that is not
/// there is an error naming it: README.md's configuration changed and the launcher (`what`)
/// must learn the new one, rather than run a configuration that is not the README's.
pub(crate) fn fill_in(
    text: &str,
    placeholder: &str,
    value: &str,
    what: &str,
) -> io::Result<String> {
    if !text.contains(placeholder) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{what}: the configuration has no {placeholder:?} to replace; README.md changed, \
                 so update the placeholders in testbed/src/{what}.rs"
            ),
        ));
    }
    Ok(text.replace(placeholder, value))
}

/// `path` as it can go into an nginx or Caddy configuration unquoted: no blanks, quotes,
/// braces, `$`, `;`, `#` or backslash.
pub(crate) fn config_path(path: &Path) -> io::Result<&str> {
    let text = path.to_str().unwrap_or("\"");
    if text.contains(|c: char| c.is_whitespace() || "\"'{}$;#\\".contains(c)) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{path:?} cannot go into a web server's configuration unquoted"),
        ));
    }
    Ok(text)
}

/// A self-signed certificate for [`SITE_NAME`] (P-256, not a CA, valid for two days), made by
/// openssl in `dir`: `cert.pem` and `key.pem`, returned in that order. The certificate is also
/// the one root a client must trust.
pub(crate) fn make_certificate(dir: &Path) -> io::Result<(PathBuf, PathBuf)> {
    let config = dir.join("openssl.cnf");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let log_path = dir.join("openssl.log");
    // CA:FALSE: rustls (webpki) refuses a CA certificate as a server's own.
    fs::write(
        &config,
        format!(
            "[req]\ndistinguished_name = dn\nprompt = no\nx509_extensions = site\n\
             [dn]\nCN = {SITE_NAME}\n\
             [site]\nbasicConstraints = critical, CA:FALSE\nsubjectAltName = DNS:{SITE_NAME}\n\
             keyUsage = critical, digitalSignature\nextendedKeyUsage = serverAuth\n"
        ),
    )?;
    let log = fs::File::create(&log_path)?;
    let mut command = Command::new(OPENSSL);
    command
        .args(["req", "-x509", "-config"])
        .arg(&config)
        .args(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"])
        .args(["-nodes", "-days", "2", "-keyout"])
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log);
    let mut child = command.spawn().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!(
                "cannot run {OPENSSL} to make the test certificate ({e}): install the Debian \
                 package `openssl` (scripts/test does)"
            ),
        )
    })?;
    let status = wait_or_kill(&mut child, CERTIFICATE_TIMEOUT, Duration::from_millis(10))?;
    if !status.is_some_and(|s| s.success()) || !cert.is_file() || !key.is_file() {
        return Err(io::Error::other(format!(
            "{OPENSSL} req failed ({status:?}) making a certificate for {SITE_NAME}; log {}:\n{}",
            log_path.display(),
            fs::read_to_string(&log_path).unwrap_or_default()
        )));
    }
    Ok((cert, key))
}

/// A client of one site: [`SITE_NAME`] at 127.0.0.1, HTTPS on one port and plain HTTP on
/// another, trusting only the certificates of one PEM file.
pub struct SiteClient {
    https: SocketAddr,
    http: SocketAddr,
    tls: Arc<rustls::ClientConfig>,
}

impl SiteClient {
    /// A client of the site listening on `https` and `http`, trusting the certificates in
    /// `ca_pem` and nothing else.
    pub(crate) fn new(https: SocketAddr, http: SocketAddr, ca_pem: &Path) -> io::Result<Self> {
        let invalid = |e: &dyn std::fmt::Display| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{}: {e}", ca_pem.display()),
            )
        };
        let mut roots = rustls::RootCertStore::empty();
        for certificate in CertificateDer::pem_file_iter(ca_pem).map_err(|e| invalid(&e))? {
            roots
                .add(certificate.map_err(|e| invalid(&e))?)
                .map_err(|e| invalid(&e))?;
        }
        // Explicit provider: the process-wide default may be unset, or ambiguous.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let tls = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(SiteClient {
            https,
            http,
            tls: Arc::new(tls),
        })
    }

    /// `https://cal.example.com:PORT{path}`, for messages: the address a request goes to.
    pub fn https_url(&self, path: &str) -> String {
        format!("https://{SITE_NAME}:{}{path}", self.https.port())
    }

    /// `GET {path}` over HTTPS with `headers` added (e.g. `("If-None-Match", etag)`), nothing
    /// else asked for: no `Accept-Encoding` unless given. Any status is an `Ok`; the body is
    /// as sent (still gzip if the server compressed it), de-chunked.
    pub fn get(&self, path: &str, headers: &[(&str, &str)]) -> io::Result<FeedResponse> {
        let stream = connect(self.https)?;
        let name = ServerName::try_from(SITE_NAME).map_err(io::Error::other)?;
        let connection =
            rustls::ClientConnection::new(Arc::clone(&self.tls), name).map_err(io::Error::other)?;
        let mut tls = rustls::StreamOwned::new(connection, stream);
        exchange(&mut tls, self.https.port(), path, headers)
    }

    /// `GET {path}` over plain HTTP, on the port README.md's `listen 80` stands for.
    pub fn get_plain(&self, path: &str, headers: &[(&str, &str)]) -> io::Result<FeedResponse> {
        let mut stream = connect(self.http)?;
        exchange(&mut stream, self.http.port(), path, headers)
    }
}

impl std::fmt::Debug for SiteClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SiteClient")
            .field("https", &self.https)
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, REQUEST_TIMEOUT)?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT))?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT))?;
    Ok(stream)
}

/// Sends one request on `stream` and reads the answer until the server closes the connection.
fn exchange(
    stream: &mut (impl io::Read + io::Write),
    port: u16,
    path: &str,
    headers: &[(&str, &str)],
) -> io::Result<FeedResponse> {
    let mut request = format!(
        "GET {path} HTTP/1.1\r\nHost: {SITE_NAME}:{port}\r\nUser-Agent: calplanebot-testbed\r\n\
         Connection: close\r\n"
    );
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.flush()?;
    let mut raw = Vec::new();
    match stream.take(MAX_RESPONSE).read_to_end(&mut raw) {
        Ok(_) => {}
        // A peer that closes without TLS close_notify: what was read is checked by its length.
        Err(e) if e.kind() == io::ErrorKind::UnexpectedEof && !raw.is_empty() => {}
        Err(e) => return Err(e),
    }
    parse_response(&raw)
}

/// An HTTP/1.1 answer as received on a connection the server closed after it: status, headers
/// (names in lower case), and the body, de-chunked or cut to `Content-Length`.
fn parse_response(raw: &[u8]) -> io::Result<FeedResponse> {
    let bad = |what: &str| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!(
                "{what} in the answer: {:?}",
                String::from_utf8_lossy(&raw[..raw.len().min(300)])
            ),
        )
    };
    let end = find(raw, b"\r\n\r\n").ok_or_else(|| bad("no end of headers"))?;
    let head = std::str::from_utf8(&raw[..end]).map_err(|_| bad("non-UTF-8 headers"))?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| bad("a malformed header"))?;
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    let rest = &raw[end + 4..];
    let body = if status < 200 || status == 204 || status == 304 {
        Vec::new()
    } else if header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"))
    {
        dechunk(rest).ok_or_else(|| bad("a malformed chunked body"))?
    } else if let Some(length) = header("content-length") {
        let length: usize = length.parse().map_err(|_| bad("a bad Content-Length"))?;
        rest.get(..length)
            .ok_or_else(|| bad("a body shorter than its Content-Length"))?
            .to_vec()
    } else {
        rest.to_vec()
    };
    Ok(FeedResponse {
        status,
        headers,
        body,
    })
}

/// The data of a chunked body (RFC 9112 section 7.1); trailers are dropped. `None` if it is cut
/// short or malformed.
fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let line_end = find(data, b"\r\n")?;
        let line = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(line.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(body);
        }
        body.extend_from_slice(data.get(..size)?);
        data = data.get(size..)?.strip_prefix(b"\r\n")?;
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

#[cfg(test)]
mod tests {
    //! The parts that need no server: the answer parser and the placeholders.

    use super::*;

    #[test]
    fn a_chunked_answer_is_dechunked_and_header_names_are_lower_case() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: text/calendar\r\n\
                    Transfer-Encoding: chunked\r\n\r\n4;ext=1\r\nBEGI\r\n3\r\nN:V\r\n0\r\n\r\n";
        let reply = parse_response(raw).unwrap();
        assert_eq!(reply.status, 200);
        assert_eq!(reply.body, b"BEGIN:V");
        assert_eq!(reply.header("content-type"), Some("text/calendar"));
        assert_eq!(reply.headers[0].0, "content-type");
    }

    #[test]
    fn a_body_is_cut_to_its_content_length_and_a_304_has_none() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabcdef";
        assert_eq!(parse_response(raw).unwrap().body, b"abc");
        let short = b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc";
        assert!(parse_response(short).is_err());
        let not_modified = b"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n";
        assert!(parse_response(not_modified).unwrap().body.is_empty());
        let cut = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n9\r\nabc";
        assert!(parse_response(cut).is_err());
    }

    #[test]
    fn a_missing_placeholder_is_an_error_naming_it() {
        assert_eq!(
            fill_in("root /a/b;", "/a", "/x", "nginx").unwrap(),
            "root /x/b;"
        );
        let error = fill_in("root /c;", "/a/b", "/x", "nginx").unwrap_err();
        assert!(error.to_string().contains("\"/a/b\""), "{error}");
        assert!(config_path(Path::new("/tmp/a b")).is_err());
        assert!(config_path(Path::new("/tmp/$x")).is_err());
        assert_eq!(config_path(Path::new("/tmp/ab")).unwrap(), "/tmp/ab");
    }
}
