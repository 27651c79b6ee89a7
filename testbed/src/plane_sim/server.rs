//! The simulator's HTTP/1.1 server on `std::net`: a listener thread and a thread per
//! connection. Each connection carries one exchange and is closed after the answer
//! (`Connection: close`), as the live Plane deployment behind gunicorn/uvicorn did. The request
//! is read whole (Content-Length or chunked body) before answering. Faults are applied here,
//! around the API, because they stand for the network or a proxy misbehaving.
//!
//! A request is in flight from when it has been read until its answer is about to be written,
//! so the count never exceeds the connections a client holds open. A request that reaches the
//! API first waits for a worker (when [`super::Workers`] are set), is answered under the state
//! lock, then holds its worker for its simulated server time (outside that lock, so other
//! workers answer meanwhile).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use super::api::{self, Request, Response, Throttle};
use super::clock;
use super::cost::{CostModel, Floor, PlaneCost};
use super::json::Json;
use super::world::World;
use super::{Fault, FaultRule, RecordedRequest};

/// Longest request head accepted (request line + headers).
const MAX_HEAD: usize = 64 * 1024;
/// How long a connection may stay silent before it is dropped.
const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Everything the server threads share with the [`super::PlaneSim`] handle.
pub(crate) struct Shared {
    pub state: Mutex<State>,
    pub stop: AtomicBool,
    /// The requests in flight and the workers (its own lock, never taken under `state`'s).
    pub floor: Floor,
}

impl Shared {
    /// The state, even if a thread panicked while holding it (a test's assertion inside
    /// `with_world` must not wedge the server for the next test).
    pub fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

pub(crate) struct State {
    pub world: World,
    pub throttle: Throttle,
    /// The largest `per_page` a list answers (Plane CE: 1000).
    pub max_per_page: u32,
    pub requests: Vec<RecordedRequest>,
    /// Each rule with the number of matching requests seen so far.
    pub faults: Vec<(FaultRule, usize)>,
    /// World edits waiting for a request (see [`super::PlaneSim::edit_after`]).
    pub edits: Vec<PendingEdit>,
    /// The server time of a request; `None` = free.
    pub cost_model: Option<CostModel>,
    /// What has been served (see [`super::PlaneSim::cost`]).
    pub cost: PlaneCost,
}

/// A change to the world, made by someone working in Plane.
pub(crate) type WorldEdit = Box<dyn FnOnce(&mut World) + Send>;

/// An edit of the world made right after the simulator answered the request a rule selects
/// (its `fault` is ignored): someone working in Plane while a client walks a list.
pub(crate) struct PendingEdit {
    pub rule: FaultRule,
    pub seen: usize,
    pub edit: Option<WorldEdit>,
}

impl State {
    /// Counts the request against every matching rule and returns the fault of the first rule
    /// whose failing window (`skip` passed, `times` not yet used up) it falls in.
    fn fault_for(&mut self, request: &Request) -> Option<Fault> {
        let mut fired = None;
        for (rule, seen) in &mut self.faults {
            if !rule.matches(&request.method, &request.path, &request.query) {
                continue;
            }
            let index = *seen;
            *seen += 1;
            if fired.is_none() && index >= rule.skip && index - rule.skip < rule.times {
                fired = Some(rule.fault.clone());
            }
        }
        fired
    }

    fn record(&mut self, request: &Request, status: u16, received: Instant) {
        self.requests.push(RecordedRequest {
            method: request.method.clone(),
            path: request.path.clone(),
            query: request.query.clone(),
            status,
            received,
            answered: Instant::now(),
        });
    }

    /// Records an answer (to a request read at `received`) and makes the world edits waiting
    /// for this request.
    fn answered(&mut self, request: &Request, response: Response, received: Instant) -> Response {
        self.record(request, response.status, received);
        for pending in &mut self.edits {
            if !pending
                .rule
                .matches(&request.method, &request.path, &request.query)
            {
                continue;
            }
            let index = pending.seen;
            pending.seen += 1;
            if index == pending.rule.skip
                && let Some(edit) = pending.edit.take()
            {
                edit(&mut self.world);
            }
        }
        response
    }
}

/// Accepts connections until `shared.stop` is set (and a connection wakes the listener).
pub(crate) fn serve(listener: TcpListener, shared: Arc<Shared>) {
    for stream in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        let shared = Arc::clone(&shared);
        thread::spawn(move || {
            // A client that hangs up early is its own business.
            let _ = exchange(stream, &shared);
        });
    }
}

/// How a fault changes an otherwise normal answer on the wire.
#[derive(Clone, Copy, PartialEq)]
enum Mangle {
    None,
    /// Promise the whole body, send half, close.
    Truncate,
    /// Send half the body, framed as if it were all of it.
    CutJson,
}

fn exchange(mut stream: TcpStream, shared: &Shared) -> io::Result<()> {
    stream.set_read_timeout(Some(READ_TIMEOUT))?;
    let request = match read_request(&mut stream) {
        Ok(Some(request)) => request,
        Ok(None) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::InvalidData => {
            let body = Json::obj().with("detail", Json::str("Bad request"));
            let response = Response::json(400, &body);
            return write_response(&mut stream, &response, false, Mangle::None);
        }
        Err(e) => return Err(e),
    };
    let received = Instant::now();
    let in_flight = shared.floor.enter();
    let fault = shared.lock().fault_for(&request);
    let mut mangle = Mangle::None;
    let response = match fault {
        Some(Fault::Status(status, body)) => Some(Response {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: body.into_bytes(),
            served: None,
        }),
        Some(Fault::RateLimited { retry_after }) => {
            let mut response = Response::json(429, &api::rate_limited_body());
            if let Some(seconds) = retry_after {
                response
                    .headers
                    .push(("Retry-After".to_owned(), seconds.to_string()));
            }
            Some(response)
        }
        Some(Fault::Hang(duration)) => {
            sleep_unless_stopped(duration, shared);
            None
        }
        Some(Fault::TruncatedBody) => {
            mangle = Mangle::Truncate;
            None
        }
        Some(Fault::InvalidJson) => {
            mangle = Mangle::CutJson;
            None
        }
        None => None,
    };
    let response = match response {
        // Answered in front of the API: no worker, no server time.
        Some(faulted) => {
            let mut state = shared.lock();
            state.cost.add(None, 0.0);
            state.answered(&request, faulted, received)
        }
        None => {
            let worker = shared.floor.worker(|| shared.stop.load(Ordering::SeqCst));
            let (response, seconds) = {
                let mut state = shared.lock();
                let state = &mut *state;
                let response = api::handle(
                    &mut state.world,
                    &mut state.throttle,
                    state.max_per_page,
                    &request,
                );
                let served = response.served.as_ref();
                let seconds = state.cost_model.map_or(0.0, |model| model.seconds(served));
                state.cost.add(served, seconds);
                (state.answered(&request, response, received), seconds)
            };
            sleep_unless_stopped(worker.sleep_for(seconds), shared);
            response
        }
    };
    drop(in_flight);
    write_response(&mut stream, &response, request.method == "HEAD", mangle)
}

fn sleep_unless_stopped(duration: Duration, shared: &Shared) {
    let until = Instant::now() + duration;
    while !shared.stop.load(Ordering::SeqCst) {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        thread::sleep(left.min(Duration::from_millis(20)));
    }
}

/// Reads one request; `None` when the client closed without sending one.
fn read_request(stream: &mut TcpStream) -> io::Result<Option<Request>> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_owned());
    let mut reader = BufReader::new(stream);
    let mut head_len = 0;
    let mut line = String::new();
    let mut request_line = String::new();
    let mut headers = Vec::new();
    loop {
        line.clear();
        let n = reader.read_line(&mut line)?;
        head_len += n;
        if n == 0 {
            if request_line.is_empty() {
                return Ok(None);
            }
            return Err(bad("connection closed inside the request head"));
        }
        if head_len > MAX_HEAD {
            return Err(bad("request head too long"));
        }
        let trimmed = line.trim_end_matches(['\r', '\n']);
        if request_line.is_empty() {
            if trimmed.is_empty() {
                continue; // RFC 9112 §2.2: ignore empty lines before the request line.
            }
            request_line = trimmed.to_owned();
            continue;
        }
        if trimmed.is_empty() {
            break;
        }
        let (name, value) = trimmed.split_once(':').ok_or_else(|| bad("bad header"))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(bad("bad request line"));
    };
    // An absolute-form target (from a proxy) keeps only its path and query.
    let target = match target.split_once("://") {
        Some((_, rest)) => rest.find('/').map_or("/", |at| &rest[at..]),
        None => target,
    };
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let mut request = Request {
        method: method.to_ascii_uppercase(),
        path: path.to_owned(),
        query: query.to_owned(),
        headers,
        body: Vec::new(),
    };
    let chunked = request
        .header("Transfer-Encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    if chunked {
        request.body = read_chunked(&mut reader)?;
    } else if let Some(length) = request.header("Content-Length") {
        let length: usize = length.parse().map_err(|_| bad("bad Content-Length"))?;
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        request.body = body;
    }
    Ok(Some(request))
}

fn read_chunked(reader: &mut impl BufRead) -> io::Result<Vec<u8>> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "bad chunk");
    let mut body = Vec::new();
    let mut line = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let size_text = line.trim().split(';').next().unwrap_or_default();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad())?;
        if size == 0 {
            // Trailers, up to the empty line.
            loop {
                line.clear();
                if reader.read_line(&mut line)? == 0 || line.trim().is_empty() {
                    return Ok(body);
                }
            }
        }
        let start = body.len();
        body.resize(start + size, 0);
        reader.read_exact(&mut body[start..])?;
        line.clear();
        reader.read_line(&mut line)?;
    }
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        204 => "No Content",
        301 => "Moved Permanently",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Unknown",
    }
}

fn write_response(
    stream: &mut TcpStream,
    response: &Response,
    head_only: bool,
    mangle: Mangle,
) -> io::Result<()> {
    let mut body: &[u8] = &response.body;
    let mut declared = body.len();
    match mangle {
        Mangle::None => {}
        Mangle::Truncate => body = &body[..body.len() / 2],
        Mangle::CutJson => {
            body = if body.len() >= 2 {
                &body[..body.len() / 2]
            } else {
                b"{"
            };
            declared = body.len();
        }
    }
    let now = clock::now_micros() / 1_000_000;
    let mut head = format!(
        "HTTP/1.1 {} {}\r\nDate: {}\r\nServer: plane-sim\r\nContent-Type: {}\r\n",
        response.status,
        reason(response.status),
        clock::http_date(now),
        response.content_type
    );
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(
        "X-Frame-Options: DENY\r\nX-Content-Type-Options: nosniff\r\n\
         Referrer-Policy: same-origin\r\nCross-Origin-Opener-Policy: same-origin\r\n",
    );
    head.push_str(&format!(
        "Content-Length: {declared}\r\nConnection: close\r\n\r\n"
    ));
    stream.write_all(head.as_bytes())?;
    if !head_only {
        stream.write_all(body)?;
    }
    stream.flush()?;
    stream.shutdown(Shutdown::Write)?;
    // Drain what the client may still send so closing does not reset the connection before
    // it has read the answer.
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let _ = io::copy(&mut stream.take(64 * 1024), &mut io::sink());
    Ok(())
}
