//! A counting HTTP/1.1 proxy placed between calplanebot and a CalDAV server, so tests can assert
//! how many requests of each method a run sent and what the server answered ("an unchanged
//! second run sends no PUT"), and — through [`ProxyFault`] — make the server appear to fail.
//!
//! std only: a listener thread plus a thread per client connection. Every request is read whole
//! (Content-Length or chunked body), forwarded on a fresh upstream connection with
//! `Connection: close`, and the whole answer (Content-Length, chunked or until close) is recorded
//! and sent back re-framed with Content-Length. Client connections are kept alive, so a client
//! that reuses connections still can against an HTTP/1.0 server like Radicale.
//!
//! The proxy does not answer `Expect: 100-continue` itself: it passes the header on, so a client
//! that sends it sees the same stall as against Radicale directly (`shared/caldav.md`).
//!
//! Faults ([`ProxyFault`], selected by a [`FaultRule`]) make the server look broken in the ways
//! real servers and networks break: an error status (with `Retry-After`), a server that accepts
//! and never answers, a slow one, a dropped connection, a body cut short, a made-up answer, and
//! a gigantic answer streamed without ever being held in memory.
//!
//! In front of an HTTPS server ([`CountingProxy::start_tls`]) the proxy speaks TLS on both sides
//! with rustls (the version and `ring` provider ureq uses): to the client it presents the
//! server's own certificate and key, so a client that trusts the server's self-signed
//! certificate trusts the proxy too, and it connects upstream trusting only that certificate.
//! Its URL is then `https://localhost:PORT`; it listens on `127.0.0.1` and, where the machine
//! has it, on `[::1]` with the same port, so a client reaches it whichever address `localhost`
//! resolves to first. Faults that drop or cut a connection close the TCP connection without a
//! TLS `close_notify`, which a client sees as an unexpected end of the stream.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Ipv6Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use rustls::pki_types::pem::PemObject as _;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};

use crate::caldav_server::{CalDavServer, TlsFiles};

/// Largest request or response head (start line + headers) accepted.
const MAX_HEAD: u64 = 64 * 1024;

/// Largest body accepted in either direction.
const MAX_BODY: u64 = 256 * 1024 * 1024;

/// How long to wait for the upstream server to accept a connection.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the upstream server may stay silent while answering.
const UPSTREAM_READ_TIMEOUT: Duration = Duration::from_secs(120);

/// How often a sleeping fault ([`ProxyFault::Hang`], [`ProxyFault::Delay`]) checks whether the
/// proxy is being dropped.
const PAUSE_STEP: Duration = Duration::from_millis(20);

/// The start of a [`ProxyFault::HugeBody`]: what a CalDAV listing looks like.
const HUGE_PREFIX: &str = "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n\
<d:multistatus xmlns:d=\"DAV:\" xmlns:c=\"urn:ietf:params:xml:ns:caldav\">\n";

/// The padding of a [`ProxyFault::HugeBody`], repeated (and cut) to the promised length; the
/// multistatus is never closed.
const HUGE_UNIT: &str = "<d:response><d:href>/padding/huge.ics</d:href><d:propstat><d:prop>\
<d:getetag>\"0\"</d:getetag></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat>\
</d:response>\n";

/// One request that went through the proxy, in the order the answers were ready (a request
/// that gets no answer — [`ProxyFault::Hang`], [`ProxyFault::DropConnection`] — is recorded
/// when the proxy decides not to answer it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxiedRequest {
    pub method: String,
    /// The request target as an origin-form path (with the query, if any), not decoded.
    pub path: String,
    /// The status the client received: the server's, or the proxy's own (502 when the server
    /// could not be reached, the injected status for a [`ProxyFault`]); 0 when the client got
    /// no answer at all.
    pub status: u16,
    /// `true` if a [`ProxyFault`] shaped this exchange (see [`ProxiedRequest::forwarded`] for
    /// whether the server saw the request anyway).
    pub injected: bool,
    /// `true` if the request reached the server (it may have taken effect even when the client
    /// saw an injected answer, e.g. with [`ProxyFault::ReplaceBody`]).
    pub forwarded: bool,
    /// The request's `Authorization` header with any Basic credentials replaced by
    /// `Basic (redacted)` (a Digest answer carries no secret); `None` when it sent none.
    pub authorization: Option<String>,
}

/// A failure the proxy can simulate for a request. Faults that forward the request say so;
/// the others never let the server see it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ProxyFault {
    /// Answer with this status and a short text body without contacting the server.
    Status(u16),
    /// Like [`ProxyFault::Status`], with these extra headers (e.g. `Retry-After` on a 503).
    StatusWithHeaders(u16, Vec<(String, String)>),
    /// Accept the request, send nothing for this long, then close the connection (a server
    /// that hangs; for client timeouts). Not forwarded. Ends early when the proxy is dropped.
    Hang(Duration),
    /// Wait this long, then forward the request and relay the answer as usual (a slow server,
    /// or a window in which a test changes the server's data under a request in flight).
    Delay(Duration),
    /// Close the connection without answering. Not forwarded.
    DropConnection,
    /// Forward the request, then send the answer's head with the full `Content-Length` but only
    /// the first half of its body, and close the connection. A bodiless answer is sent whole.
    TruncatedBody,
    /// Forward the request (so a write takes effect), but answer with this status,
    /// `Content-Type` and body instead of the server's answer. The answer is sent even when the
    /// server could not be reached.
    ReplaceBody {
        status: u16,
        content_type: String,
        body: Vec<u8>,
    },
    /// Answer with this status, `Content-Type` and body without contacting the server (a
    /// server that refuses a request in its own words, e.g. a PROPPATCH answered 207 whose
    /// propstat says 403).
    Answer {
        status: u16,
        content_type: String,
        body: Vec<u8>,
    },
    /// Answer this status with a `Content-Length: bytes` body of XML — the start of a
    /// `DAV:multistatus` followed by repeated `response` elements, never closed — generated on
    /// the fly (never buffered), then close the connection. Not forwarded. Stops when the
    /// client hangs up.
    HugeBody { status: u16, bytes: u64 },
}

/// Which requests a fault applies to, and how many times: among the requests that match the
/// method, path prefix and body text, the first `skip` pass, the next `times` get the fault. Rules are tried
/// in the order they were added; a request a rule lets pass (skip) can still meet a later rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultRule {
    fault: ProxyFault,
    method: Option<String>,
    path_prefix: Option<String>,
    body_contains: Option<String>,
    skip: usize,
    remaining: usize,
}

impl FaultRule {
    /// Applies `fault` to the next request, whatever its method and path.
    pub fn new(fault: ProxyFault) -> Self {
        FaultRule {
            fault,
            method: None,
            path_prefix: None,
            body_contains: None,
            skip: 0,
            remaining: 1,
        }
    }

    /// Only requests with this method (exact match, e.g. `"PUT"`).
    pub fn method(mut self, method: &str) -> Self {
        self.method = Some(method.to_string());
        self
    }

    /// Only requests whose path starts with `prefix`.
    pub fn path_prefix(mut self, prefix: &str) -> Self {
        self.path_prefix = Some(prefix.to_string());
        self
    }

    /// Only requests whose body contains `text` (as bytes, e.g. `"sync-collection"` to single
    /// out one kind of REPORT, as a server without that report would).
    pub fn body_contains(mut self, text: &str) -> Self {
        self.body_contains = Some(text.to_string());
        self
    }

    /// Applies to the next `n` matching requests instead of one.
    pub fn times(mut self, n: usize) -> Self {
        self.remaining = n;
        self
    }

    /// Applies to every matching request (after the skipped ones) until the faults are cleared.
    pub fn always(self) -> Self {
        self.times(usize::MAX)
    }

    /// Lets the first `n` matching requests pass before the fault applies.
    pub fn skip(mut self, n: usize) -> Self {
        self.skip = n;
        self
    }

    fn matches(&self, method: &str, path: &str, body: &[u8]) -> bool {
        self.remaining > 0
            && self.method.as_deref().is_none_or(|m| m == method)
            && self
                .path_prefix
                .as_deref()
                .is_none_or(|p| path.starts_with(p))
            && self.body_contains.as_deref().is_none_or(|text| {
                text.is_empty() || body.windows(text.len()).any(|w| w == text.as_bytes())
            })
    }
}

/// A running proxy on 127.0.0.1 in front of one upstream server. Stops on drop.
pub struct CountingProxy {
    shared: Arc<Shared>,
    accept_threads: Vec<JoinHandle<()>>,
}

struct Shared {
    upstream: SocketAddr,
    own_addr: SocketAddr,
    /// Every address the proxy listens on (`own_addr` first), to wake the accept loops on drop.
    listen_addrs: Vec<SocketAddr>,
    /// `None`: plain HTTP on both sides.
    tls: Option<ProxyTls>,
    /// The `Host` header sent upstream.
    upstream_host: String,
    /// Origins by which the upstream server may name itself in `Location` headers.
    upstream_origins: Vec<String>,
    /// The proxy's own origin, what [`CountingProxy::url`] returns.
    own_origin: String,
    requests: Mutex<Vec<ProxiedRequest>>,
    /// Requests by method as they arrive, before any answer (so also those still in flight).
    received: Mutex<BTreeMap<String, usize>>,
    faults: Mutex<Vec<FaultRule>>,
    /// Clones of open client connections, shut down on drop to end their threads.
    clients: Mutex<HashMap<u64, TcpStream>>,
    stopping: AtomicBool,
}

/// Locks a mutex, ignoring poisoning: a panicking connection thread must not hide the record.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl CountingProxy {
    /// Starts a plain HTTP proxy on a free loopback port that forwards to `upstream`.
    pub fn start(upstream: SocketAddr) -> io::Result<CountingProxy> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let own_addr = listener.local_addr()?;
        CountingProxy::serve(
            vec![listener],
            upstream,
            None,
            upstream.to_string(),
            vec![format!("http://{upstream}")],
            format!("http://{own_addr}"),
        )
    }

    /// Starts an HTTPS proxy in front of the HTTPS server at `upstream` whose identity is `tls`:
    /// clients get the server's own certificate (so trusting the server means trusting the
    /// proxy), and the upstream connection trusts that certificate only, checked for
    /// `tls.server_name`. Listens on `127.0.0.1` and, if the machine has it, on `[::1]` with the
    /// same port.
    pub fn start_tls(upstream: SocketAddr, tls: &TlsFiles) -> io::Result<CountingProxy> {
        let proxy_tls = ProxyTls::new(tls)?;
        let listeners = bind_loopback_dual_stack()?;
        let port = listeners[0].local_addr()?.port();
        let name = &tls.server_name;
        CountingProxy::serve(
            listeners,
            upstream,
            Some(proxy_tls),
            format!("{name}:{}", upstream.port()),
            vec![
                format!("https://{name}:{}", upstream.port()),
                format!("https://{upstream}"),
            ],
            format!("https://{name}:{port}"),
        )
    }

    /// A proxy in front of `server`: plain for a plain HTTP server, [`CountingProxy::start_tls`]
    /// with the server's identity for an HTTPS one.
    pub fn start_for(server: &CalDavServer) -> io::Result<CountingProxy> {
        match server.tls() {
            None => CountingProxy::start(server.addr()),
            Some(tls) => CountingProxy::start_tls(server.addr(), tls),
        }
    }

    fn serve(
        listeners: Vec<TcpListener>,
        upstream: SocketAddr,
        tls: Option<ProxyTls>,
        upstream_host: String,
        upstream_origins: Vec<String>,
        own_origin: String,
    ) -> io::Result<CountingProxy> {
        let listen_addrs = listeners
            .iter()
            .map(TcpListener::local_addr)
            .collect::<io::Result<Vec<_>>>()?;
        let shared = Arc::new(Shared {
            upstream,
            own_addr: listen_addrs[0],
            listen_addrs,
            tls,
            upstream_host,
            upstream_origins,
            own_origin,
            requests: Mutex::new(Vec::new()),
            received: Mutex::new(BTreeMap::new()),
            faults: Mutex::new(Vec::new()),
            clients: Mutex::new(HashMap::new()),
            stopping: AtomicBool::new(false),
        });
        let mut proxy = CountingProxy {
            shared,
            accept_threads: Vec::new(),
        };
        // Client ids are unique across the listeners.
        let next_id = Arc::new(AtomicU64::new(0));
        for (i, listener) in listeners.into_iter().enumerate() {
            let accept_shared = Arc::clone(&proxy.shared);
            let next_id = Arc::clone(&next_id);
            let suffix = if i == 0 {
                String::new()
            } else {
                format!("-{i}")
            };
            // On error, dropping `proxy` stops the threads already running.
            let thread = thread::Builder::new()
                .name(format!(
                    "proxy-accept-{}{suffix}",
                    proxy.shared.own_addr.port()
                ))
                .spawn(move || accept_loop(&listener, &accept_shared, &next_id))?;
            proxy.accept_threads.push(thread);
        }
        Ok(proxy)
    }

    /// `http://127.0.0.1:PORT`, or `https://localhost:PORT` for a TLS proxy (the server name
    /// of the certificate); without a trailing slash.
    pub fn url(&self) -> String {
        self.shared.own_origin.clone()
    }

    pub fn addr(&self) -> SocketAddr {
        self.shared.own_addr
    }

    /// Every request so far, in the order the answers were ready.
    pub fn requests(&self) -> Vec<ProxiedRequest> {
        lock(&self.shared.requests).clone()
    }

    /// How many requests used `method` (injected faults included).
    pub fn count(&self, method: &str) -> usize {
        lock(&self.shared.requests)
            .iter()
            .filter(|r| r.method == method)
            .count()
    }

    /// Request counts by method.
    pub fn counts(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for request in lock(&self.shared.requests).iter() {
            *counts.entry(request.method.clone()).or_insert(0) += 1;
        }
        counts
    }

    /// How many requests with `method` have arrived so far, including those not answered yet
    /// (held by [`ProxyFault::Delay`] or [`ProxyFault::Hang`], or still at the server): lets a
    /// test act while a request is in flight.
    pub fn received(&self, method: &str) -> usize {
        lock(&self.shared.received)
            .get(method)
            .copied()
            .unwrap_or(0)
    }

    /// Forgets the recorded and received requests (faults stay armed).
    pub fn reset(&self) {
        lock(&self.shared.requests).clear();
        lock(&self.shared.received).clear();
    }

    /// Arms a fault; rules are tried in the order they were added, first match wins.
    pub fn inject(&self, rule: FaultRule) {
        lock(&self.shared.faults).push(rule);
    }

    /// Disarms all faults.
    pub fn clear_faults(&self) {
        lock(&self.shared.faults).clear();
    }
}

impl Drop for CountingProxy {
    fn drop(&mut self) {
        self.shared.stopping.store(true, Ordering::SeqCst);
        // Wake the blocking accept()s so the threads see the flag.
        for addr in &self.shared.listen_addrs {
            let _ = TcpStream::connect_timeout(addr, Duration::from_secs(1));
        }
        for thread in self.accept_threads.drain(..) {
            let _ = thread.join();
        }
        for (_, client) in lock(&self.shared.clients).drain() {
            let _ = client.shutdown(Shutdown::Both);
        }
    }
}

impl std::fmt::Debug for CountingProxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CountingProxy")
            .field("addr", &self.shared.own_addr)
            .field("upstream", &self.shared.upstream)
            .field("tls", &self.shared.tls.is_some())
            .finish_non_exhaustive()
    }
}

/// The TLS side of a proxy: its server identity towards clients, its trust towards upstream.
struct ProxyTls {
    server: Arc<rustls::ServerConfig>,
    client: Arc<rustls::ClientConfig>,
    server_name: ServerName<'static>,
}

impl ProxyTls {
    fn new(tls: &TlsFiles) -> io::Result<ProxyTls> {
        let certs = read_certificates(&tls.cert_pem)?;
        let key = PrivateKeyDer::from_pem_file(&tls.key_pem)
            .map_err(|e| invalid_file(&tls.key_pem, &e))?;
        // Explicit provider: the process-wide default may be unset, or ambiguous.
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server = rustls::ServerConfig::builder_with_provider(Arc::clone(&provider))
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_no_client_auth()
            .with_single_cert(certs.clone(), key)
            .map_err(|e| invalid_file(&tls.key_pem, &e))?;
        let mut roots = rustls::RootCertStore::empty();
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| invalid_file(&tls.cert_pem, &e))?;
        }
        let client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(io::Error::other)?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let server_name = ServerName::try_from(tls.server_name.clone()).map_err(|e| {
            io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("TLS server name {:?}: {e}", tls.server_name),
            )
        })?;
        Ok(ProxyTls {
            server: Arc::new(server),
            client: Arc::new(client),
            server_name,
        })
    }
}

/// Every certificate in a PEM file (at least one).
fn read_certificates(path: &Path) -> io::Result<Vec<CertificateDer<'static>>> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| invalid_file(path, &e))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid_file(path, &e))?;
    if certs.is_empty() {
        return Err(invalid_file(path, &"no certificate"));
    }
    Ok(certs)
}

fn invalid_file(path: &Path, error: &dyn std::fmt::Display) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("{}: {error}", path.display()),
    )
}

/// A listener on a free port of `127.0.0.1` and, when the machine has an IPv6 loopback, one on
/// `[::1]` with the same port: `localhost` may resolve to either first. A port whose IPv6 twin
/// is taken is given up for another.
fn bind_loopback_dual_stack() -> io::Result<Vec<TcpListener>> {
    for _ in 0..10 {
        let v4 = TcpListener::bind("127.0.0.1:0")?;
        let port = v4.local_addr()?.port();
        match TcpListener::bind((Ipv6Addr::LOCALHOST, port)) {
            Ok(v6) => return Ok(vec![v4, v6]),
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => continue,
            // No IPv6 loopback here: clients cannot try `::1` either.
            Err(_) => return Ok(vec![v4]),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AddrInUse,
        "no port free on both 127.0.0.1 and [::1]",
    ))
}

/// A byte stream to a client or to the upstream server: plain TCP or TLS over it.
trait Stream: Read + Write + Send {}

impl<S: Read + Write + Send> Stream for S {}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, next_id: &AtomicU64) {
    for stream in listener.incoming() {
        if shared.stopping.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let id = next_id.fetch_add(1, Ordering::Relaxed);
        if let Ok(clone) = stream.try_clone() {
            lock(&shared.clients).insert(id, clone);
        }
        let client_shared = Arc::clone(shared);
        let spawned = thread::Builder::new()
            .name(format!("proxy-client-{id}"))
            .spawn(move || {
                let _ = serve_client(&client_shared, stream);
                lock(&client_shared.clients).remove(&id);
            });
        if spawned.is_err() {
            lock(&shared.clients).remove(&id);
        }
    }
}

/// Why reading a message failed.
#[derive(Debug)]
enum ReadError {
    /// Head or body beyond the caps.
    TooLarge(&'static str),
    /// Not HTTP/1.x as we understand it.
    Malformed(String),
    Io(io::Error),
}

impl From<io::Error> for ReadError {
    fn from(error: io::Error) -> Self {
        ReadError::Io(error)
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::TooLarge(what) => write!(f, "{what} too large"),
            ReadError::Malformed(why) => write!(f, "malformed message: {why}"),
            ReadError::Io(e) => write!(f, "{e}"),
        }
    }
}

type Headers = Vec<(String, String)>;

/// A request as received from the client.
struct Request {
    method: String,
    /// Origin-form target forwarded upstream.
    path: String,
    version: String,
    headers: Headers,
    body: Vec<u8>,
    /// The client framed a body (Content-Length or chunked), even if empty.
    has_body: bool,
}

/// An answer to send back to the client.
struct Response {
    status: u16,
    reason: String,
    headers: Headers,
    body: Vec<u8>,
}

impl Response {
    /// An answer made up by the proxy itself.
    fn own(status: u16, text: &str) -> Response {
        Response {
            status,
            reason: reason_phrase(status).to_string(),
            headers: vec![("Content-Type".into(), "text/plain; charset=utf-8".into())],
            body: format!("{text}\n").into_bytes(),
        }
    }

    /// The answer of [`ProxyFault::Status`] and [`ProxyFault::StatusWithHeaders`].
    fn injected(status: u16, headers: Headers) -> Response {
        let mut response = Response::own(status, "fault injected by calplanebot-testbed proxy");
        response.headers.extend(headers);
        response
    }
}

fn serve_client(shared: &Shared, stream: TcpStream) -> io::Result<()> {
    // For hanging up without a (TLS) goodbye; also what `Drop` shuts down.
    let control = stream.try_clone()?;
    let stream: Box<dyn Stream> = match &shared.tls {
        None => Box::new(stream),
        Some(tls) => {
            let connection =
                rustls::ServerConnection::new(Arc::clone(&tls.server)).map_err(io::Error::other)?;
            Box::new(rustls::StreamOwned::new(connection, stream))
        }
    };
    // Requests and answers alternate: the answer is written through the reader's stream.
    let mut reader = BufReader::new(stream);
    loop {
        let request = match read_request(&mut reader) {
            Ok(Some(request)) => request,
            Ok(None) => return Ok(()), // The client closed the connection between requests.
            Err(ReadError::Io(e)) => return Err(e),
            Err(e @ ReadError::TooLarge(_)) => {
                let status = if matches!(e, ReadError::TooLarge("head")) {
                    431
                } else {
                    413
                };
                return write_response(
                    reader.get_mut(),
                    &Response::own(status, &e.to_string()),
                    false,
                    true,
                );
            }
            Err(e @ ReadError::Malformed(_)) => {
                return write_response(
                    reader.get_mut(),
                    &Response::own(400, &e.to_string()),
                    false,
                    true,
                );
            }
        };
        *lock(&shared.received)
            .entry(request.method.clone())
            .or_insert(0) += 1;
        let close = wants_close(&request.version, &request.headers);
        let head_request = request.method == "HEAD";
        let record = |status: u16, injected: bool, forwarded: bool| {
            lock(&shared.requests).push(ProxiedRequest {
                method: request.method.clone(),
                path: request.path.clone(),
                status,
                injected,
                forwarded,
                authorization: header_values(&request.headers, "authorization")
                    .next()
                    .map(redact_basic),
            });
        };
        let fault = take_fault(shared, &request);
        let injected = fault.is_some();
        let mut forwarded = false;
        let mut relay = || {
            forwarded = true;
            let mut response = forward(shared, &request).unwrap_or_else(|e| {
                Response::own(502, &format!("proxy: upstream {}: {e}", shared.upstream))
            });
            rewrite_locations(&mut response, &shared.upstream_origins, &shared.own_origin);
            response
        };
        let response = match fault {
            None => relay(),
            Some(ProxyFault::Status(status)) => Response::injected(status, Vec::new()),
            Some(ProxyFault::StatusWithHeaders(status, headers)) => {
                Response::injected(status, headers)
            }
            Some(ProxyFault::Delay(delay)) => {
                pause(shared, delay);
                relay()
            }
            Some(ProxyFault::ReplaceBody {
                status,
                content_type,
                body,
            }) => {
                // The server's own answer is read (so the write is complete) and thrown away.
                drop(relay());
                Response {
                    status,
                    reason: reason_phrase(status).to_string(),
                    headers: vec![("Content-Type".into(), content_type)],
                    body,
                }
            }
            Some(ProxyFault::Answer {
                status,
                content_type,
                body,
            }) => Response {
                status,
                reason: reason_phrase(status).to_string(),
                headers: vec![("Content-Type".into(), content_type)],
                body,
            },
            Some(ProxyFault::Hang(duration)) => {
                record(0, true, false);
                pause(shared, duration);
                return hang_up(&control);
            }
            Some(ProxyFault::DropConnection) => {
                record(0, true, false);
                return hang_up(&control);
            }
            Some(ProxyFault::TruncatedBody) => {
                let response = relay();
                record(response.status, true, true);
                let _ = write_truncated(reader.get_mut(), &response, head_request);
                return hang_up(&control);
            }
            Some(ProxyFault::HugeBody { status, bytes }) => {
                record(status, true, false);
                let _ = write_huge(shared, reader.get_mut(), status, bytes, head_request);
                return hang_up(&control);
            }
        };
        record(response.status, injected, forwarded);
        write_response(reader.get_mut(), &response, head_request, close)?;
        if close {
            return Ok(());
        }
    }
}

/// Sleeps for `duration`, or less if the proxy is being dropped.
fn pause(shared: &Shared, duration: Duration) {
    let until = std::time::Instant::now() + duration;
    while !shared.stopping.load(Ordering::SeqCst) {
        let left = until.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() {
            return;
        }
        thread::sleep(left.min(PAUSE_STEP));
    }
}

/// Ends a client connection abruptly: no (further) answer on it.
fn hang_up(stream: &TcpStream) -> io::Result<()> {
    let _ = stream.shutdown(Shutdown::Both);
    Ok(())
}

/// Sends the head of `response` with its full Content-Length but only half of its body.
fn write_truncated(
    writer: &mut impl Write,
    response: &Response,
    head_request: bool,
) -> io::Result<()> {
    let length = response.body.len() as u64;
    writer.write_all(response_head(response, head_request, true, length).as_bytes())?;
    if !head_request && has_body(response.status) {
        writer.write_all(&response.body[..response.body.len() / 2])?;
    }
    writer.flush()
}

/// Sends a `bytes`-long XML body generated block by block (see [`ProxyFault::HugeBody`]).
fn write_huge(
    shared: &Shared,
    writer: &mut impl Write,
    status: u16,
    bytes: u64,
    head_request: bool,
) -> io::Result<()> {
    let response = Response {
        status,
        reason: reason_phrase(status).to_string(),
        headers: vec![(
            "Content-Type".into(),
            "application/xml; charset=utf-8".into(),
        )],
        body: Vec::new(),
    };
    writer.write_all(response_head(&response, head_request, true, bytes).as_bytes())?;
    if head_request || !has_body(status) {
        return writer.flush();
    }
    let prefix = HUGE_PREFIX.as_bytes();
    let block = HUGE_UNIT.repeat(64 * 1024 / HUGE_UNIT.len()).into_bytes();
    let mut left = bytes;
    let first = left.min(prefix.len() as u64);
    writer.write_all(&prefix[..first as usize])?;
    left -= first;
    while left > 0 && !shared.stopping.load(Ordering::SeqCst) {
        let n = left.min(block.len() as u64);
        writer.write_all(&block[..n as usize])?;
        left -= n;
    }
    writer.flush()
}

/// The fault for this request, if a rule selects it (see [`FaultRule`]): a matching rule that
/// still has requests to skip lets this one pass on to the next rule.
fn take_fault(shared: &Shared, request: &Request) -> Option<ProxyFault> {
    let mut faults = lock(&shared.faults);
    let mut index = None;
    for (i, rule) in faults.iter_mut().enumerate() {
        if !rule.matches(&request.method, &request.path, &request.body) {
            continue;
        }
        if rule.skip > 0 {
            rule.skip -= 1;
            continue;
        }
        index = Some(i);
        break;
    }
    let index = index?;
    faults[index].remaining -= 1;
    let fault = faults[index].fault.clone();
    if faults[index].remaining == 0 {
        faults.remove(index);
    }
    Some(fault)
}

/// Reads one request; `None` on a clean end of the connection before it.
fn read_request(reader: &mut impl BufRead) -> Result<Option<Request>, ReadError> {
    let Some((start, headers)) = read_head(reader)? else {
        return Ok(None);
    };
    let mut parts = start.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(ReadError::Malformed(format!("request line {start:?}")));
    };
    if !version.starts_with("HTTP/1.") || method.is_empty() {
        return Err(ReadError::Malformed(format!("request line {start:?}")));
    }
    let framing = body_framing(&headers)?;
    let has_body = !matches!(framing, Framing::None);
    let body = read_body(reader, framing)?;
    Ok(Some(Request {
        method: method.to_string(),
        path: origin_form(target).to_string(),
        version: version.to_string(),
        headers,
        body,
        has_body,
    }))
}

/// Reads a start line and headers, at most [`MAX_HEAD`] bytes. `None` on EOF before any byte.
fn read_head(reader: &mut impl BufRead) -> Result<Option<(String, Headers)>, ReadError> {
    let mut limited = reader.take(MAX_HEAD);
    let mut start = String::new();
    let mut headers = Headers::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        let n = limited.read_until(b'\n', &mut line)?;
        if n == 0 || line.last() != Some(&b'\n') {
            if start.is_empty() && headers.is_empty() && line.is_empty() {
                return Ok(None);
            }
            return Err(if limited.limit() == 0 {
                ReadError::TooLarge("head")
            } else {
                ReadError::Malformed("connection closed inside the head".into())
            });
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\r', '\n']);
        if start.is_empty() {
            // RFC 9112 §2.2: empty lines before the start line are ignored.
            if !text.is_empty() {
                start = text.to_string();
            }
            continue;
        }
        if text.is_empty() {
            return Ok(Some((start, headers)));
        }
        let Some((name, value)) = text.split_once(':') else {
            return Err(ReadError::Malformed(format!("header line {text:?}")));
        };
        headers.push((name.trim().to_string(), value.trim().to_string()));
    }
}

/// How a message's body is delimited.
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// The framing a request declares (RFC 9112 §6.3: chunked wins over Content-Length).
fn body_framing(headers: &Headers) -> Result<Framing, ReadError> {
    if is_chunked(headers) {
        return Ok(Framing::Chunked);
    }
    let mut length = None;
    for value in header_values(headers, "content-length") {
        let parsed: u64 = value
            .parse()
            .map_err(|_| ReadError::Malformed(format!("Content-Length {value:?}")))?;
        if length.is_some_and(|l| l != parsed) {
            return Err(ReadError::Malformed("conflicting Content-Length".into()));
        }
        length = Some(parsed);
    }
    Ok(length.map_or(Framing::None, Framing::Length))
}

fn is_chunked(headers: &Headers) -> bool {
    header_values(headers, "transfer-encoding")
        .flat_map(|v| v.split(','))
        .last()
        .is_some_and(|coding| coding.trim().eq_ignore_ascii_case("chunked"))
}

fn read_body(reader: &mut impl BufRead, framing: Framing) -> Result<Vec<u8>, ReadError> {
    let mut body = Vec::new();
    match framing {
        Framing::None => {}
        Framing::Length(length) => {
            if length > MAX_BODY {
                return Err(ReadError::TooLarge("body"));
            }
            reader.take(length).read_to_end(&mut body)?;
            if body.len() as u64 != length {
                return Err(ReadError::Malformed(
                    "connection closed inside the body".into(),
                ));
            }
        }
        Framing::UntilClose => {
            reader.take(MAX_BODY + 1).read_to_end(&mut body)?;
            if body.len() as u64 > MAX_BODY {
                return Err(ReadError::TooLarge("body"));
            }
        }
        Framing::Chunked => read_chunked(reader, &mut body)?,
    }
    Ok(body)
}

/// Decodes a chunked body (RFC 9112 §7.1); chunk extensions and trailers are dropped.
fn read_chunked(reader: &mut impl BufRead, body: &mut Vec<u8>) -> Result<(), ReadError> {
    let mut line = Vec::new();
    loop {
        line.clear();
        reader.take(4096).read_until(b'\n', &mut line)?;
        let text = String::from_utf8_lossy(&line);
        let size_text = text.split(';').next().unwrap_or("").trim();
        let size = u64::from_str_radix(size_text, 16)
            .map_err(|_| ReadError::Malformed(format!("chunk size {size_text:?}")))?;
        if size == 0 {
            // Trailer section up to the empty line.
            loop {
                line.clear();
                let n = reader.take(MAX_HEAD).read_until(b'\n', &mut line)?;
                if n == 0 || line == b"\r\n" || line == b"\n" {
                    return Ok(());
                }
            }
        }
        if body.len() as u64 + size > MAX_BODY {
            return Err(ReadError::TooLarge("body"));
        }
        let before = body.len();
        reader.take(size).read_to_end(body)?;
        if (body.len() - before) as u64 != size {
            return Err(ReadError::Malformed(
                "connection closed inside a chunk".into(),
            ));
        }
        line.clear();
        reader.take(2).read_until(b'\n', &mut line)?;
        if line != b"\r\n" && line != b"\n" {
            return Err(ReadError::Malformed("chunk not followed by CRLF".into()));
        }
    }
}

/// Sends `request` to the upstream server on a fresh connection and reads the whole answer.
fn forward(shared: &Shared, request: &Request) -> Result<Response, ReadError> {
    let tcp = TcpStream::connect_timeout(&shared.upstream, UPSTREAM_CONNECT_TIMEOUT)?;
    tcp.set_read_timeout(Some(UPSTREAM_READ_TIMEOUT))?;
    let mut upstream: Box<dyn Stream> = match &shared.tls {
        None => Box::new(tcp),
        Some(tls) => {
            let connection =
                rustls::ClientConnection::new(Arc::clone(&tls.client), tls.server_name.clone())
                    .map_err(io::Error::other)?;
            Box::new(rustls::StreamOwned::new(connection, tcp))
        }
    };
    let mut head = format!("{} {} HTTP/1.1\r\n", request.method, request.path);
    let dropped = connection_tokens(&request.headers);
    for (name, value) in &request.headers {
        let lower = name.to_ascii_lowercase();
        // Host and Content-Length are set below; a second Content-Length is a 400 on aiohttp.
        if is_hop_by_hop(&lower)
            || dropped.contains(&lower)
            || lower == "host"
            || lower == "content-length"
        {
            continue;
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("Host: {}\r\n", shared.upstream_host));
    if request.has_body || !request.body.is_empty() {
        head.push_str(&format!("Content-Length: {}\r\n", request.body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    upstream.write_all(head.as_bytes())?;
    upstream.write_all(&request.body)?;
    upstream.flush()?;

    let mut reader = BufReader::new(upstream);
    loop {
        let Some((start, headers)) = read_head(&mut reader)? else {
            return Err(ReadError::Malformed(
                "upstream closed without answering".into(),
            ));
        };
        let mut parts = start.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .filter(|_| version.starts_with("HTTP/1."))
            .ok_or_else(|| ReadError::Malformed(format!("status line {start:?}")))?;
        let reason = parts.next().unwrap_or("").to_string();
        if (100..200).contains(&status) {
            continue; // Interim answers (100 Continue) are not relayed.
        }
        let framing = if request.method == "HEAD" || status == 204 || status == 304 {
            Framing::None
        } else {
            match body_framing(&headers)? {
                Framing::None => Framing::UntilClose,
                framing => framing,
            }
        };
        let body = read_body(&mut reader, framing)?;
        return Ok(Response {
            status,
            reason,
            headers,
            body,
        });
    }
}

/// Writes `response` re-framed with Content-Length.
fn write_response(
    writer: &mut impl Write,
    response: &Response,
    head_request: bool,
    close: bool,
) -> io::Result<()> {
    let length = response.body.len() as u64;
    writer.write_all(response_head(response, head_request, close, length).as_bytes())?;
    if !head_request && has_body(response.status) {
        writer.write_all(&response.body)?;
    }
    writer.flush()
}

/// Whether an answer with this status carries a body (RFC 9110 §6.4.1).
fn has_body(status: u16) -> bool {
    status != 204 && status != 304
}

/// The status line and headers of `response`, announcing a body of `length` bytes.
fn response_head(response: &Response, head_request: bool, close: bool, length: u64) -> String {
    let mut head = format!("HTTP/1.1 {} {}\r\n", response.status, response.reason);
    let dropped = connection_tokens(&response.headers);
    for (name, value) in &response.headers {
        let lower = name.to_ascii_lowercase();
        if is_hop_by_hop(&lower) || dropped.contains(&lower) {
            continue;
        }
        // A HEAD answer's Content-Length describes the GET body: pass it on unchanged.
        if lower == "content-length" && !head_request {
            continue;
        }
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !head_request && has_body(response.status) {
        head.push_str(&format!("Content-Length: {length}\r\n"));
    }
    head.push_str(if close {
        "Connection: close\r\n\r\n"
    } else {
        "Connection: keep-alive\r\n\r\n"
    });
    head
}

/// Makes absolute `Location`/`Content-Location` URLs that point at the upstream server (by one
/// of its origins `from`) point at the proxy (`to`), so a client following them stays behind
/// the proxy.
fn rewrite_locations(response: &mut Response, from: &[String], to: &str) {
    for (name, value) in &mut response.headers {
        let lower = name.to_ascii_lowercase();
        if lower != "location" && lower != "content-location" {
            continue;
        }
        for origin in from {
            let Some(rest) = value.strip_prefix(origin.as_str()) else {
                continue;
            };
            if rest.is_empty() || rest.starts_with('/') || rest.starts_with('?') {
                *value = format!("{to}{rest}");
                break;
            }
        }
    }
}

/// Whether the connection ends after this exchange (RFC 9112 §9.3).
fn wants_close(version: &str, headers: &Headers) -> bool {
    let tokens = connection_tokens(headers);
    if tokens.iter().any(|t| t == "close") {
        return true;
    }
    version == "HTTP/1.0" && !tokens.iter().any(|t| t == "keep-alive")
}

/// Lower-cased tokens of all Connection headers.
fn connection_tokens(headers: &Headers) -> Vec<String> {
    header_values(headers, "connection")
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1).
fn is_hop_by_hop(lower_name: &str) -> bool {
    matches!(
        lower_name,
        "connection"
            | "keep-alive"
            | "proxy-connection"
            | "te"
            | "trailer"
            | "transfer-encoding"
            | "upgrade"
            | "proxy-authorization"
            | "proxy-authenticate"
    )
}

fn header_values<'a>(headers: &'a Headers, lower_name: &'a str) -> impl Iterator<Item = &'a str> {
    headers
        .iter()
        .filter(move |(name, _)| name.eq_ignore_ascii_case(lower_name))
        .map(|(_, value)| value.as_str())
}

/// An `Authorization` value fit for a test log: Basic credentials are a password in base64.
fn redact_basic(value: &str) -> String {
    match value.split_once(' ') {
        Some((scheme, _)) if scheme.eq_ignore_ascii_case("basic") => "Basic (redacted)".into(),
        _ => value.to_string(),
    }
}

/// `http://host:port/a?b` → `/a?b`; origin-form stays as it is.
fn origin_form(target: &str) -> &str {
    match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |i| &rest[i..]),
        None => target,
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        409 => "Conflict",
        412 => "Precondition Failed",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_chunked_bodies_with_extensions_and_trailers() {
        let raw = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nTrailer: x\r\n\r\nNEXT";
        let mut reader = BufReader::new(&raw[..]);
        let body = read_body(&mut reader, Framing::Chunked).unwrap();
        assert_eq!(body, b"Wikipedia");
        let mut rest = String::new();
        reader.read_to_string(&mut rest).unwrap();
        assert_eq!(rest, "NEXT");
    }

    #[test]
    fn rejects_heads_over_the_cap() {
        let mut raw = b"GET / HTTP/1.1\r\n".to_vec();
        while raw.len() as u64 <= MAX_HEAD {
            raw.extend_from_slice(b"X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n");
        }
        let result = read_request(&mut BufReader::new(&raw[..]));
        assert!(matches!(result, Err(ReadError::TooLarge("head"))));
    }

    #[test]
    fn rewrites_only_locations_pointing_at_upstream() {
        let upstream = ["http://127.0.0.1:1000".to_string()];
        let mut response = Response::own(302, "");
        response.headers = vec![
            ("Location".into(), "http://127.0.0.1:1000/alice/".into()),
            ("Content-Location".into(), "http://127.0.0.1:10000/x".into()),
            ("X-Other".into(), "http://127.0.0.1:1000/".into()),
        ];
        rewrite_locations(&mut response, &upstream, "http://127.0.0.1:2000");
        assert_eq!(response.headers[0].1, "http://127.0.0.1:2000/alice/");
        assert_eq!(response.headers[1].1, "http://127.0.0.1:10000/x");
        assert_eq!(response.headers[2].1, "http://127.0.0.1:1000/");

        // Behind TLS the server may name itself by its certificate's name or its address.
        let upstream = [
            "https://localhost:1000".to_string(),
            "https://127.0.0.1:1000".to_string(),
        ];
        response.headers = vec![
            ("Location".into(), "https://localhost:1000/alice/".into()),
            ("Content-Location".into(), "https://127.0.0.1:1000?x".into()),
        ];
        rewrite_locations(&mut response, &upstream, "https://localhost:2000");
        assert_eq!(response.headers[0].1, "https://localhost:2000/alice/");
        assert_eq!(response.headers[1].1, "https://localhost:2000?x");
    }

    #[test]
    fn keep_alive_follows_the_http_version() {
        let none = Headers::new();
        let close = vec![("Connection".to_string(), "close".to_string())];
        let keep = vec![("Connection".to_string(), "Keep-Alive".to_string())];
        assert!(!wants_close("HTTP/1.1", &none));
        assert!(wants_close("HTTP/1.1", &close));
        assert!(wants_close("HTTP/1.0", &none));
        assert!(!wants_close("HTTP/1.0", &keep));
    }

    #[test]
    fn fault_rules_match_method_and_path_and_run_out() {
        let mut rule = FaultRule::new(ProxyFault::Status(503))
            .method("PUT")
            .path_prefix("/alice/")
            .times(2);
        assert!(rule.matches("PUT", "/alice/x.ics", b""));
        assert!(!rule.matches("GET", "/alice/x.ics", b""));
        assert!(!rule.matches("PUT", "/bob/x.ics", b""));
        rule.remaining = 0;
        assert!(!rule.matches("PUT", "/alice/x.ics", b""));
    }

    /// A server without sync-collection: only the REPORTs asking for it are refused.
    #[test]
    fn fault_rules_match_on_body_text() {
        let rule = FaultRule::new(ProxyFault::Status(403))
            .method("REPORT")
            .body_contains("sync-collection")
            .always();
        let sync = br#"<d:sync-collection xmlns:d="DAV:"><d:sync-token/></d:sync-collection>"#;
        let multiget = br#"<c:calendar-multiget xmlns:c="urn:ietf:params:xml:ns:caldav"/>"#;
        assert!(rule.matches("REPORT", "/alice/cal/", sync));
        assert!(!rule.matches("REPORT", "/alice/cal/", multiget));
        assert!(!rule.matches("REPORT", "/alice/cal/", b""));
        assert!(!rule.matches("PROPFIND", "/alice/cal/", sync));
        // A non-UTF-8 body is searched as bytes.
        assert!(rule.matches("REPORT", "/", b"\xff\xfesync-collection\xff"));
        // Without the condition any body matches.
        let any = FaultRule::new(ProxyFault::Status(403)).method("REPORT");
        assert!(any.matches("REPORT", "/alice/cal/", multiget));
    }
}
