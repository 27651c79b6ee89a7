//! A CalDAV service that leads its clients from HTTPS down to plain HTTP on the same host, the
//! way Nextcloud does behind a TLS proxy without `'overwriteprotocol' => 'https'`: it believes it
//! speaks `http://` and says so in its redirects and hrefs. Issue 12, point 5 is about the
//! password crossing in clear text then.
//!
//! Two real listeners on one address: an HTTPS one (rustls, with a certificate made for that
//! address) and the plain-HTTP one its answers point to. The HTTPS side answers every request
//! with the [`Lure`] — a redirect, or a multistatus naming the principal on the plain side; the
//! plain side answers what the server behind the proxy would: `401` with a Basic challenge to a
//! request without credentials. Both record every request, with its `Authorization` header, so
//! a test can assert that nothing carrying credentials (ideally nothing at all) went over plain
//! HTTP.
//!
//! - **The address.** Plain HTTP to loopback is exempt from calplanebot's plain-HTTP rule by
//!   design, so a test that means to exercise the rule for a *remote* host binds both listeners
//!   on an address of this machine that is not loopback ([`non_loopback_address`]). The
//!   downgrade refusal holds for loopback too, so `127.0.0.1` makes a test of that alone.
//! - **The certificate.** Self-signed, for the address as an IP SAN (a client checks IP
//!   addresses against those only), made with Python's `cryptography` from the testbed's virtual
//!   environment (installed for Xandikos's `--autocert`), so no Rust crate for certificates is
//!   needed. A client trusts it the way it trusts a private CA (`CALDAV_CA_FILE`).
//! - **HTTP.** One request per connection (`Connection: close`), body read by `Content-Length`:
//!   enough for a client that sends a PROPFIND and follows what it is told.

use std::io::{self, BufRead as _, BufReader, Read as _, Write as _};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::launch::unique_temp_dir;

/// Makes a self-signed certificate for one IP address (`argv[2]`) in the directory `argv[1]`:
/// `cert.pem` and `key.pem` (P-256, PKCS#8), valid from an hour ago for a day.
const MAKE_CERTIFICATE: &str = "import datetime, ipaddress, pathlib, sys
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
directory, address = pathlib.Path(sys.argv[1]), ipaddress.ip_address(sys.argv[2])
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(address))])
now = datetime.datetime.now(datetime.timezone.utc)
certificate = (
    x509.CertificateBuilder()
    .subject_name(name)
    .issuer_name(name)
    .public_key(key.public_key())
    .serial_number(x509.random_serial_number())
    .not_valid_before(now - datetime.timedelta(hours=1))
    .not_valid_after(now + datetime.timedelta(days=1))
    .add_extension(x509.SubjectAlternativeName([x509.IPAddress(address)]), critical=False)
    .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    .sign(key, hashes.SHA256())
)
(directory / 'cert.pem').write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
(directory / 'key.pem').write_bytes(key.private_bytes(
    serialization.Encoding.PEM,
    serialization.PrivateFormat.PKCS8,
    serialization.NoEncryption(),
))
";

/// How long one connection may stay silent before it is dropped.
const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest request head or body read.
const MAX_MESSAGE: u64 = 1024 * 1024;

/// An address of this machine that is not loopback, where a listener can be bound: the source
/// address of the default route (a UDP `connect` sends nothing; the destination is a
/// documentation address). `None` on a machine without a network.
pub fn non_loopback_address() -> Option<IpAddr> {
    let socket = UdpSocket::bind("0.0.0.0:0").ok()?;
    socket.connect("198.51.100.1:9").ok()?;
    let address = socket.local_addr().ok()?.ip();
    let usable = !address.is_loopback()
        && !address.is_unspecified()
        && TcpListener::bind((address, 0)).is_ok();
    usable.then_some(address)
}

/// What the HTTPS side answers to every request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lure {
    /// `301 Moved Permanently` with `Location: http://ADDRESS:PLAIN/remote.php/dav/`, as
    /// Nextcloud answers `/.well-known/caldav`.
    Redirect,
    /// `207 Multi-Status` naming `http://ADDRESS:PLAIN/remote.php/dav/principals/users/alice/`
    /// as the current user's principal (to a request with credentials; `401` without).
    Principal,
}

/// One request a listener received.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub target: String,
    /// The `Authorization` header, verbatim, if the request carried one.
    pub authorization: Option<String>,
}

/// The two listeners. Stops on drop and removes the certificate's directory.
pub struct DowngradingFront {
    address: IpAddr,
    https_port: u16,
    plain_port: u16,
    dir: PathBuf,
    https_seen: Arc<Mutex<Vec<Seen>>>,
    plain_seen: Arc<Mutex<Vec<Seen>>>,
    stopping: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl DowngradingFront {
    /// Makes a certificate for `address` and starts both listeners on free ports of it.
    pub fn start(address: IpAddr, lure: Lure) -> io::Result<DowngradingFront> {
        let dir = unique_temp_dir("downgrade")?;
        let tls = match make_certificate(&dir, address) {
            Ok(tls) => tls,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let https = TcpListener::bind((address, 0))?;
        let plain = TcpListener::bind((address, 0))?;
        let plain_port = plain.local_addr()?.port();
        let mut front = DowngradingFront {
            address,
            https_port: https.local_addr()?.port(),
            plain_port,
            dir,
            https_seen: Arc::default(),
            plain_seen: Arc::default(),
            stopping: Arc::default(),
            threads: Vec::new(),
        };
        let plain_origin = format!("http://{}", SocketAddr::new(address, plain_port));
        let stopping = Arc::clone(&front.stopping);
        let seen = Arc::clone(&front.https_seen);
        front.threads.push(thread::spawn(move || {
            serve(&https, &stopping, &seen, move |stream, record| {
                let mut stream = rustls::StreamOwned::new(
                    rustls::ServerConnection::new(Arc::clone(&tls)).map_err(io::Error::other)?,
                    stream,
                );
                let seen = read_request(&mut stream)?;
                let answer = lure_answer(lure, &plain_origin, seen.authorization.is_some());
                record(seen);
                stream.write_all(answer.as_bytes())?;
                stream.conn.send_close_notify();
                stream.flush()
            });
        }));
        let stopping = Arc::clone(&front.stopping);
        let seen = Arc::clone(&front.plain_seen);
        front.threads.push(thread::spawn(move || {
            serve(&plain, &stopping, &seen, |mut stream, record| {
                let seen = read_request(&mut stream)?;
                // What the server behind the proxy answers: credentials, please.
                let answer = if seen.authorization.is_none() {
                    response(
                        "401 Unauthorized",
                        &[("WWW-Authenticate", "Basic realm=\"Nextcloud\"")],
                        "",
                    )
                } else {
                    response("403 Forbidden", &[], "")
                };
                record(seen);
                stream.write_all(answer.as_bytes())?;
                stream.flush()
            });
        }));
        Ok(front)
    }

    /// `https://ADDRESS:PORT` (IPv6 in brackets), without a trailing slash.
    pub fn https_url(&self) -> String {
        format!("https://{}", SocketAddr::new(self.address, self.https_port))
    }

    /// `http://ADDRESS:PORT` of the plain listener, without a trailing slash.
    pub fn plain_url(&self) -> String {
        format!("http://{}", SocketAddr::new(self.address, self.plain_port))
    }

    /// The certificate (PEM) a client must trust, as its only CA.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.join("cert.pem")
    }

    /// Every request the HTTPS listener received.
    pub fn https_requests(&self) -> Vec<Seen> {
        self.https_seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Every request the plain-HTTP listener received.
    pub fn plain_requests(&self) -> Vec<Seen> {
        self.plain_seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

impl Drop for DowngradingFront {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking accept()s so the threads see the flag.
        for port in [self.https_port, self.plain_port] {
            let addr = SocketAddr::new(self.address, port);
            let _ = TcpStream::connect_timeout(&addr, Duration::from_secs(1));
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl std::fmt::Debug for DowngradingFront {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DowngradingFront")
            .field("https", &self.https_url())
            .field("plain", &self.plain_url())
            .finish_non_exhaustive()
    }
}

/// Accepts connections until `stopping`, one thread each; `handle` reads one request, records
/// it through the function it is given, and answers.
fn serve(
    listener: &TcpListener,
    stopping: &Arc<AtomicBool>,
    seen: &Arc<Mutex<Vec<Seen>>>,
    handle: impl Fn(TcpStream, &dyn Fn(Seen)) -> io::Result<()> + Send + Sync + Clone + 'static,
) {
    for stream in listener.incoming() {
        if stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let seen = Arc::clone(seen);
        let handle = handle.clone();
        thread::spawn(move || {
            let _ = stream.set_read_timeout(Some(READ_TIMEOUT));
            let closer = stream.try_clone();
            let record =
                |request: Seen| seen.lock().unwrap_or_else(|e| e.into_inner()).push(request);
            let _ = handle(stream, &record);
            if let Ok(stream) = closer {
                let _ = stream.shutdown(Shutdown::Both);
            }
        });
    }
}

/// Reads one request head and its `Content-Length` body.
fn read_request(stream: &mut impl io::Read) -> io::Result<Seen> {
    let mut reader = BufReader::new(stream.take(MAX_MESSAGE));
    let mut start = String::new();
    reader.read_line(&mut start)?;
    let mut words = start.split_whitespace();
    let (Some(method), Some(target)) = (words.next(), words.next()) else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("not an HTTP request: {start:?}"),
        ));
    };
    let mut seen = Seen {
        method: method.to_string(),
        target: target.to_string(),
        authorization: None,
    };
    let mut length = 0;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line.trim_end().is_empty() {
            break;
        }
        let Some((name, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        if name.eq_ignore_ascii_case("authorization") {
            seen.authorization = Some(value.to_string());
        } else if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().unwrap_or(0);
        }
    }
    io::copy(&mut reader.by_ref().take(length), &mut io::sink())?;
    Ok(seen)
}

fn lure_answer(lure: Lure, plain_origin: &str, authorized: bool) -> String {
    match lure {
        Lure::Redirect => response(
            "301 Moved Permanently",
            &[("Location", &format!("{plain_origin}/remote.php/dav/"))],
            "",
        ),
        Lure::Principal if !authorized => response(
            "401 Unauthorized",
            &[("WWW-Authenticate", "Basic realm=\"Nextcloud\"")],
            "",
        ),
        Lure::Principal => response(
            "207 Multi-Status",
            &[("Content-Type", "application/xml; charset=utf-8")],
            &format!(
                "<?xml version=\"1.0\"?>\n<d:multistatus xmlns:d=\"DAV:\"><d:response>\
                 <d:href>/remote.php/dav/</d:href><d:propstat><d:prop><d:resourcetype>\
                 <d:collection/></d:resourcetype><d:current-user-principal><d:href>\
                 {plain_origin}/remote.php/dav/principals/users/alice/</d:href>\
                 </d:current-user-principal></d:prop><d:status>HTTP/1.1 200 OK</d:status>\
                 </d:propstat></d:response></d:multistatus>\n"
            ),
        ),
    }
}

fn response(status: &str, headers: &[(&str, &str)], body: &str) -> String {
    let mut text = format!("HTTP/1.1 {status}\r\n");
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    text
}

/// Makes `cert.pem` and `key.pem` for `address` in `dir` and loads them into a server config.
fn make_certificate(dir: &Path, address: IpAddr) -> io::Result<Arc<rustls::ServerConfig>> {
    let xandikos = crate::xandikos::ensure_installed()?;
    let python = crate::xandikos::python_of(&xandikos).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!(
                "no Python interpreter behind {} to make a certificate with",
                xandikos.display()
            ),
        )
    })?;
    let output = Command::new(&python)
        .arg("-c")
        .arg(MAKE_CERTIFICATE)
        .arg(dir)
        .arg(address.to_string())
        .stdin(Stdio::null())
        .output()?;
    if !output.status.success() {
        return Err(io::Error::other(format!(
            "making a certificate for {address} with {} failed ({}): {}",
            python.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        )));
    }
    let invalid =
        |e: &dyn std::fmt::Display| io::Error::new(io::ErrorKind::InvalidData, e.to_string());
    let certificate =
        CertificateDer::from_pem_file(dir.join("cert.pem")).map_err(|e| invalid(&e))?;
    let key = PrivateKeyDer::from_pem_file(dir.join("key.pem")).map_err(|e| invalid(&e))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(io::Error::other)?
        .with_no_client_auth()
        .with_single_cert(vec![certificate], key)
        .map_err(|e| invalid(&e))?;
    Ok(Arc::new(config))
}
