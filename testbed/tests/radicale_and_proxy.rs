//! Tests of the testbed itself against a real Radicale: the launcher (install once, private
//! instances, restart), the counting proxy (counts, statuses, keep-alive, re-framing, every kind
//! of fault) and the calendar user (the client tests use to look at calendars).

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use calplanebot_testbed::calendar_user::{CalendarUser, basic_auth};
use calplanebot_testbed::proxy::{CountingProxy, FaultRule, ProxiedRequest, ProxyFault};
use calplanebot_testbed::radicale::{self, RADICALE_ENV, RADICALE_VERSION, Radicale};

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn event(uid: &str, summary: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calplanebot//testbed//EN\r\n\
         BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n\
         DTSTART;VALUE=DATE:20260105\r\nDTEND;VALUE=DATE:20260106\r\n\
         SUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

fn user_of(radicale: &Radicale, base_url: &str) -> CalendarUser {
    CalendarUser::new(base_url, radicale.username(), radicale.password())
}

fn recorded(method: &str, path: &str, status: u16) -> ProxiedRequest {
    ProxiedRequest {
        method: method.into(),
        path: path.into(),
        status,
        injected: false,
        forwarded: true,
        authorization: Some("Basic (redacted)".into()),
    }
}

#[test]
fn wrong_password_gets_401_and_the_right_one_is_accepted() -> TestResult {
    let radicale = Radicale::start()?;
    assert_eq!(radicale.username(), "alice");
    assert!(radicale.url().starts_with("http://127.0.0.1:"));
    assert!(!radicale.url().ends_with('/'));

    let intruder = CalendarUser::new(&radicale.url(), "alice", "not-the-password");
    assert_eq!(intruder.mkcalendar("/alice/work/", "Work")?, 401);
    let error = intruder.list_calendars("/alice/").unwrap_err();
    assert!(error.to_string().contains("401"), "{error}");

    let alice = user_of(&radicale, &radicale.url());
    assert_eq!(alice.mkcalendar("/alice/work/", "Work")?, 201);
    Ok(())
}

#[test]
fn mkcalendar_with_a_displayname_shows_in_list_calendars() -> TestResult {
    let radicale = Radicale::start()?;
    let alice = user_of(&radicale, &radicale.url());
    assert_eq!(
        alice.mkcalendar("/alice/plane-web/", "Plane · Web & API")?,
        201
    );
    // Radicale answers `@` as `%40` in hrefs; list_calendars decodes it.
    assert_eq!(alice.mkcalendar("/alice/team@x/", "Team")?, 201);
    assert_eq!(alice.mkcalendar("/alice/plane-web/", "Again")?, 409);

    let mut calendars = alice.list_calendars("/alice/")?;
    calendars.sort();
    assert_eq!(
        calendars,
        vec![
            (
                "/alice/plane-web/".to_string(),
                Some("Plane · Web & API".to_string())
            ),
            ("/alice/team@x/".to_string(), Some("Team".to_string())),
        ]
    );
    assert_eq!(alice.list_objects("/alice/plane-web/")?, vec![]);
    Ok(())
}

#[test]
fn put_get_delete_through_the_proxy_are_counted_with_their_statuses() -> TestResult {
    let radicale = Radicale::start()?;
    let proxy = CountingProxy::start(radicale.addr())?;
    assert!(proxy.url().starts_with("http://127.0.0.1:"));
    assert_ne!(proxy.url(), radicale.url());
    let alice = user_of(&radicale, &proxy.url());
    assert_eq!(alice.mkcalendar("/alice/plane-x/", "X")?, 201);
    assert_eq!(proxy.count("MKCALENDAR"), 1);
    proxy.reset();
    assert!(proxy.requests().is_empty());

    let href = "/alice/plane-x/plane-issue-y@1.ics";
    assert_eq!(alice.put(href, &event("y-1", "First"))?, 201);
    let (etag, body) = alice.get(href)?.expect("the event just PUT");
    assert!(
        body.contains("UID:y-1") && body.contains("SUMMARY:First"),
        "{body}"
    );
    assert_eq!(
        alice.list_objects("/alice/plane-x/")?,
        vec![(href.to_string(), etag.clone())]
    );
    assert_eq!(alice.put(href, &event("y-1", "Second"))?, 204);
    let (new_etag, body) = alice.get(href)?.expect("the updated event");
    assert_ne!(new_etag, etag);
    assert!(body.contains("SUMMARY:Second"), "{body}");
    // Radicale answers DELETE with 200 and a multistatus body.
    assert_eq!(alice.delete(href)?, 200);
    assert_eq!(alice.get(href)?, None);

    let path = "/alice/plane-x/plane-issue-y@1.ics";
    assert_eq!(
        proxy.requests(),
        vec![
            recorded("PUT", path, 201),
            recorded("GET", path, 200),
            recorded("PROPFIND", "/alice/plane-x/", 207),
            recorded("PUT", path, 204),
            recorded("GET", path, 200),
            recorded("DELETE", path, 200),
            recorded("GET", path, 404),
        ]
    );
    let counts = proxy.counts();
    assert_eq!(counts.get("GET"), Some(&3));
    assert_eq!(counts.get("PUT"), Some(&2));
    assert_eq!(counts.get("DELETE"), Some(&1));
    assert_eq!(counts.get("PROPFIND"), Some(&1));
    assert_eq!(counts.len(), 4, "{counts:?}");
    assert_eq!(proxy.count("REPORT"), 0);

    // The server itself, asked directly, agrees.
    assert_eq!(user_of(&radicale, &radicale.url()).get(href)?, None);
    Ok(())
}

/// One HTTP answer as a raw client sees it; header names lower-cased.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Reads one HTTP answer framed by Content-Length.
fn read_answer(reader: &mut impl BufRead) -> io::Result<Answer> {
    let mut status_line = String::new();
    reader.read_line(&mut status_line)?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').expect("a header line");
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .map_or(0, |(_, value)| value.parse().expect("a Content-Length"));
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    let body = String::from_utf8_lossy(&body).into_owned();
    Ok(Answer {
        status,
        headers,
        body,
    })
}

#[test]
fn proxy_keeps_client_connections_alive_and_reframes_chunked_uploads() -> TestResult {
    let radicale = Radicale::start()?;
    let proxy = CountingProxy::start(radicale.addr())?;
    let alice = user_of(&radicale, &radicale.url());
    assert_eq!(alice.mkcalendar("/alice/cal/", "Cal")?, 201);

    let auth = basic_auth(radicale.username(), radicale.password());
    let ics = event("chunked-1", "Sent in chunks");
    let (first, second) = ics.split_at(40);
    let stream = TcpStream::connect(proxy.addr())?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    write!(
        writer,
        "PUT /alice/cal/chunked.ics HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\
         Content-Type: text/calendar\r\nTransfer-Encoding: chunked\r\n\r\n\
         {:x}\r\n{first}\r\n{:x};ext=1\r\n{second}\r\n0\r\n\r\n",
        first.len(),
        second.len()
    )?;
    let answer = read_answer(&mut reader)?;
    assert_eq!(answer.status, 201);
    assert_eq!(answer.header("connection"), Some("keep-alive"));
    assert!(answer.header("etag").is_some(), "{:?}", answer.headers);

    // Same connection, although Radicale itself closes after every answer.
    write!(
        writer,
        "GET /alice/cal/chunked.ics HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\r\n"
    )?;
    let answer = read_answer(&mut reader)?;
    assert_eq!(answer.status, 200);
    assert!(
        answer.body.contains("SUMMARY:Sent in chunks"),
        "{}",
        answer.body
    );

    write!(
        writer,
        "DELETE /alice/cal/chunked.ics HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\n\
         Connection: close\r\n\r\n"
    )?;
    let answer = read_answer(&mut reader)?;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("connection"), Some("close"));
    assert!(answer.body.contains("multistatus"), "{}", answer.body);
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest)?; // The proxy closes after `Connection: close`.
    assert!(rest.is_empty());

    assert_eq!(
        proxy
            .requests()
            .iter()
            .map(|r| (r.method.as_str(), r.status))
            .collect::<Vec<_>>(),
        vec![("PUT", 201), ("GET", 200), ("DELETE", 200)]
    );
    Ok(())
}

#[test]
fn proxy_rewrites_upstream_locations_and_reframes_answers() -> TestResult {
    // A stand-in upstream: one answer read until close, one chunked answer.
    let upstream = TcpListener::bind("127.0.0.1:0")?;
    let upstream_addr = upstream.local_addr()?;
    let answers = [
        format!("HTTP/1.0 302 Found\r\nLocation: http://{upstream_addr}/alice/\r\n\r\nmoved"),
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n".to_string(),
    ];
    let server = thread::spawn(move || -> io::Result<Vec<String>> {
        let mut heads = Vec::new();
        for answer in answers {
            let (stream, _) = upstream.accept()?;
            let mut reader = BufReader::new(stream.try_clone()?);
            let mut head = String::new();
            loop {
                let mut line = String::new();
                reader.read_line(&mut line)?;
                head.push_str(&line);
                if line == "\r\n" || line.is_empty() {
                    break;
                }
            }
            heads.push(head);
            (&stream).write_all(answer.as_bytes())?;
        }
        Ok(heads)
    });

    let proxy = CountingProxy::start(upstream_addr)?;
    let stream = TcpStream::connect(proxy.addr())?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    write!(
        writer,
        "GET /.well-known/caldav HTTP/1.1\r\nHost: x\r\n\r\n"
    )?;
    let answer = read_answer(&mut reader)?;
    assert_eq!(answer.status, 302);
    assert_eq!(
        answer.header("location"),
        Some(format!("{}/alice/", proxy.url()).as_str())
    );
    assert_eq!(answer.body, "moved");
    write!(writer, "GET /x HTTP/1.1\r\nHost: x\r\n\r\n")?;
    let answer = read_answer(&mut reader)?;
    assert_eq!(answer.status, 200);
    assert_eq!(answer.header("transfer-encoding"), None);
    assert_eq!(answer.body, "hello");

    let heads = server.join().expect("upstream thread")?;
    for head in &heads {
        assert!(head.contains("Connection: close\r\n"), "{head}");
        assert!(
            head.contains(&format!("Host: {upstream_addr}\r\n")),
            "{head}"
        );
    }
    Ok(())
}

#[test]
fn injected_fault_answers_without_reaching_the_server() -> TestResult {
    let radicale = Radicale::start()?;
    let proxy = CountingProxy::start(radicale.addr())?;
    let alice = user_of(&radicale, &proxy.url());
    assert_eq!(alice.mkcalendar("/alice/cal/", "Cal")?, 201);
    proxy.reset();

    proxy.inject(
        FaultRule::new(ProxyFault::Status(503))
            .method("PUT")
            .times(2),
    );
    let href = "/alice/cal/a.ics";
    assert_eq!(alice.put(href, &event("a", "A"))?, 503);
    assert_eq!(alice.get(href)?, None); // GET does not match the rule.
    assert_eq!(alice.put(href, &event("a", "A"))?, 503);
    assert_eq!(alice.put(href, &event("a", "A"))?, 201); // The rule ran out.

    let requests = proxy.requests();
    let summary: Vec<_> = requests
        .iter()
        .map(|r| (r.method.as_str(), r.status, r.injected))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("PUT", 503, true),
            ("GET", 404, false),
            ("PUT", 503, true),
            ("PUT", 201, false)
        ]
    );
    assert_eq!(proxy.count("PUT"), 3);
    Ok(())
}

#[test]
fn two_instances_at_once_have_their_own_port_storage_and_password() -> TestResult {
    let (a, b) = thread::scope(|s| {
        let a = s.spawn(Radicale::start);
        let b = s.spawn(Radicale::start);
        (a.join().expect("start a"), b.join().expect("start b"))
    });
    let (a, b) = (a?, b?);
    assert_ne!(a.addr().port(), b.addr().port());
    assert_ne!(a.storage_dir(), b.storage_dir());
    assert_ne!(a.password(), b.password());

    assert_eq!(
        user_of(&a, &a.url()).mkcalendar("/alice/only-a/", "A")?,
        201
    );
    let on_b = user_of(&b, &b.url());
    assert_eq!(on_b.mkcalendar("/alice/only-b/", "B")?, 201);
    assert_eq!(
        on_b.list_calendars("/alice/")?,
        vec![("/alice/only-b/".into(), Some("B".into()))]
    );
    // Each password opens only its own instance.
    assert_eq!(
        CalendarUser::new(&b.url(), "alice", a.password()).mkcalendar("/alice/c/", "C")?,
        401
    );
    assert!(
        a.storage_dir()
            .join("collection-root/alice/only-a")
            .is_dir()
    );
    Ok(())
}

#[test]
fn restart_keeps_port_credentials_and_data_and_an_outage_shows_as_502() -> TestResult {
    let mut radicale = Radicale::start()?;
    let proxy = CountingProxy::start(radicale.addr())?;
    let alice = user_of(&radicale, &proxy.url());
    assert_eq!(alice.mkcalendar("/alice/cal/", "Kept")?, 201);
    assert_eq!(
        alice.put("/alice/cal/e.ics", &event("e", "Kept event"))?,
        201
    );
    let before = alice.get("/alice/cal/e.ics")?;
    let (addr, url) = (radicale.addr(), radicale.url());

    radicale.stop();
    assert!(!radicale.is_running());
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(2)).is_err());
    let error = alice.get("/alice/cal/e.ics").unwrap_err();
    assert!(error.to_string().contains("502"), "{error}");
    assert_eq!(proxy.requests().last().map(|r| r.status), Some(502));

    radicale.restart()?;
    assert!(radicale.is_running());
    assert_eq!((radicale.addr(), radicale.url()), (addr, url));
    assert_eq!(alice.get("/alice/cal/e.ics")?, before);
    assert_eq!(
        alice.list_calendars("/alice/")?,
        vec![("/alice/cal/".into(), Some("Kept".into()))]
    );
    Ok(())
}

#[test]
fn drop_stops_the_server_and_removes_its_directory() -> TestResult {
    let mut radicale = Radicale::start()?;
    let dir = radicale
        .storage_dir()
        .parent()
        .expect("instance dir")
        .to_path_buf();
    assert!(dir.join("config").is_file() && radicale.log_path().is_file());
    assert!(radicale.is_running());
    drop(radicale);
    assert!(!dir.exists(), "{} still exists", dir.display());
    Ok(())
}

#[test]
fn concurrent_ensure_installed_agrees_on_one_working_executable() -> TestResult {
    let paths: Vec<io::Result<PathBuf>> = thread::scope(|s| {
        let threads: Vec<_> = (0..8)
            .map(|_| s.spawn(radicale::ensure_installed))
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("installer thread"))
            .collect()
    });
    let first = paths[0].as_ref().map_err(|e| e.to_string())?.clone();
    for path in &paths {
        assert_eq!(path.as_ref().map_err(|e| e.to_string())?, &first);
    }
    let output = Command::new(&first).arg("--version").output()?;
    assert!(output.status.success());
    if std::env::var_os(RADICALE_ENV).is_none() {
        let version = String::from_utf8_lossy(&output.stdout);
        assert!(version.starts_with(RADICALE_VERSION), "{version}");
    }
    Ok(())
}

#[test]
fn concurrent_installs_into_a_fresh_venv_run_pip_once() -> TestResult {
    if std::env::var_os(RADICALE_ENV).is_some() {
        eprintln!("skipped: {RADICALE_ENV} is set, so nothing may be installed");
        return Ok(());
    }
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH)?.as_nanos();
    let root = std::env::temp_dir().join(format!(
        "calplanebot-install-test-{}-{nanos}",
        std::process::id()
    ));
    let venv = root.join("venv");
    let results = thread::scope(|s| {
        let threads: Vec<_> = (0..4)
            .map(|_| s.spawn(|| radicale::install_into(&venv)))
            .collect();
        threads
            .into_iter()
            .map(|t| t.join().expect("installer thread"))
            .collect::<Vec<_>>()
    });
    let mut installs = Vec::new();
    for result in results {
        installs.push(result.map_err(|e| e.to_string())?);
    }
    assert_eq!(
        installs.iter().filter(|i| i.installed_now).count(),
        1,
        "{installs:?}"
    );
    assert!(
        installs
            .iter()
            .all(|i| i.executable == venv.join("bin/radicale"))
    );
    assert!(!radicale::install_into(&venv)?.installed_now);
    assert!(root.join("venv.lock").is_file());
    std::fs::remove_dir_all(&root)?;
    Ok(())
}

#[test]
fn restart_on_a_port_taken_meanwhile_fails_with_the_log_tail() -> TestResult {
    let mut radicale = Radicale::start()?;
    radicale.stop();
    let squatter = TcpListener::bind(radicale.addr())?;
    let error = radicale.restart().unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::AddrInUse, "{error}");
    assert!(
        error.to_string().contains("Address already in use"),
        "{error}"
    );
    assert!(
        error
            .to_string()
            .contains(&radicale.log_path().display().to_string()),
        "{error}"
    );
    assert!(!radicale.is_running());

    drop(squatter);
    radicale.restart()?;
    assert!(radicale.is_running());
    Ok(())
}

/// A stand-in upstream that answers every connection with `answer` and counts the connections
/// it accepted (so a test can tell whether the proxy forwarded anything).
fn stand_in_upstream(answer: &'static str) -> io::Result<(SocketAddr, Arc<AtomicUsize>)> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let accepted = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            counter.fetch_add(1, Ordering::SeqCst);
            let mut reader = BufReader::new(&stream);
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
            }
            let _ = (&stream).write_all(answer.as_bytes());
        }
    });
    Ok((addr, accepted))
}

/// A raw client connection to the proxy that sent one bodiless request (and asked for the
/// connection to close after the answer).
fn send_raw(proxy: &CountingProxy, method: &str, path: &str) -> io::Result<BufReader<TcpStream>> {
    let stream = TcpStream::connect(proxy.addr())?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        &stream,
        "{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
    )?;
    Ok(BufReader::new(stream))
}

/// An answer read to the end of the connection: status, lower-cased headers, body.
type RawAnswer = (u16, Vec<(String, String)>, Vec<u8>);

/// Reads an answer's head (status, lower-cased headers) and then everything up to the end of the
/// connection.
fn read_until_close(reader: &mut BufReader<TcpStream>) -> io::Result<RawAnswer> {
    let mut status_line = String::new();
    reader.read_line(&mut status_line)?;
    let status = status_line
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut headers = Vec::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        let line = line.trim_end();
        if line.is_empty() {
            break;
        }
        let (name, value) = line.split_once(':').expect("a header line");
        headers.push((name.to_ascii_lowercase(), value.trim().to_string()));
    }
    let mut body = Vec::new();
    reader.read_to_end(&mut body)?;
    Ok((status, headers, body))
}

const STAND_IN_OK: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";

#[test]
fn hang_accepts_and_answers_nothing_until_it_closes() -> TestResult {
    let (upstream, accepted) = stand_in_upstream(STAND_IN_OK)?;
    let proxy = CountingProxy::start(upstream)?;
    proxy.inject(FaultRule::new(ProxyFault::Hang(Duration::from_millis(1500))).method("GET"));
    let mut reader = send_raw(&proxy, "GET", "/slow")?;
    // Nothing arrives while the proxy hangs (a read with a short timeout gives up)...
    reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(300)))?;
    let mut byte = [0u8; 1];
    let early = reader.read(&mut byte);
    assert!(
        matches!(&early, Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut)),
        "{early:?}"
    );
    assert_eq!(proxy.received("GET"), 1);
    // ...and then the connection just ends, without a byte of answer.
    reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_secs(20)))?;
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest)?;
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "not forwarded");
    assert_eq!(
        proxy.requests(),
        vec![ProxiedRequest {
            method: "GET".into(),
            path: "/slow".into(),
            status: 0,
            injected: true,
            forwarded: false,
            authorization: None,
        }]
    );
    Ok(())
}

#[test]
fn a_hang_ends_when_the_proxy_is_dropped() -> TestResult {
    let (upstream, _) = stand_in_upstream(STAND_IN_OK)?;
    let proxy = CountingProxy::start(upstream)?;
    proxy.inject(FaultRule::new(ProxyFault::Hang(Duration::from_secs(3600))));
    let mut reader = send_raw(&proxy, "GET", "/forever")?;
    while proxy.received("GET") == 0 {
        thread::sleep(Duration::from_millis(5));
    }
    drop(proxy);
    let mut rest = Vec::new();
    reader.read_to_end(&mut rest)?; // Within the 20 s read timeout, not an hour.
    assert!(rest.is_empty());
    Ok(())
}

#[test]
fn drop_connection_closes_without_answering_or_forwarding() -> TestResult {
    let (upstream, accepted) = stand_in_upstream(STAND_IN_OK)?;
    let proxy = CountingProxy::start(upstream)?;
    proxy.inject(
        FaultRule::new(ProxyFault::DropConnection)
            .method("DELETE")
            .path_prefix("/cal/"),
    );
    let mut reader = send_raw(&proxy, "DELETE", "/cal/a.ics")?;
    let mut rest = Vec::new();
    let _ = reader.read_to_end(&mut rest); // EOF or a reset: either way, no answer.
    assert!(rest.is_empty(), "{}", String::from_utf8_lossy(&rest));
    // The rule ran out: the next request is forwarded.
    let (status, _, body) = read_until_close(&mut send_raw(&proxy, "DELETE", "/cal/a.ics")?)?;
    assert_eq!((status, body.as_slice()), (200, &b"ok"[..]));
    assert_eq!(accepted.load(Ordering::SeqCst), 1);
    let summary: Vec<_> = proxy
        .requests()
        .iter()
        .map(|r| (r.status, r.injected, r.forwarded))
        .collect();
    assert_eq!(summary, vec![(0, true, false), (200, false, true)]);
    Ok(())
}

#[test]
fn status_with_headers_answers_with_them_and_skip_lets_requests_pass() -> TestResult {
    let (upstream, accepted) = stand_in_upstream(STAND_IN_OK)?;
    let proxy = CountingProxy::start(upstream)?;
    let retry_after = vec![("Retry-After".to_string(), "2".to_string())];
    proxy.inject(
        FaultRule::new(ProxyFault::StatusWithHeaders(503, retry_after))
            .method("PUT")
            .skip(1)
            .times(2),
    );
    // A request the first rule skips can still meet a later rule.
    proxy.inject(FaultRule::new(ProxyFault::Status(418)).method("PUT"));
    let mut statuses = Vec::new();
    for _ in 0..5 {
        let stream = TcpStream::connect(proxy.addr())?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        write!(
            &stream,
            "PUT /cal/a.ics HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nConnection: close\r\n\r\nx"
        )?;
        let (status, headers, _) = read_until_close(&mut BufReader::new(stream))?;
        let retry = headers
            .iter()
            .find(|(name, _)| name == "retry-after")
            .map(|(_, value)| value.clone());
        statuses.push((status, retry));
    }
    assert_eq!(
        statuses,
        vec![
            (418, None),
            (503, Some("2".into())),
            (503, Some("2".into())),
            (200, None),
            (200, None),
        ]
    );
    assert_eq!(accepted.load(Ordering::SeqCst), 2);
    Ok(())
}

#[test]
fn delay_holds_a_request_while_the_server_changes_then_forwards_it() -> TestResult {
    let radicale = Radicale::start()?;
    let proxy = CountingProxy::start(radicale.addr())?;
    let direct = user_of(&radicale, &radicale.url());
    let through_proxy = user_of(&radicale, &proxy.url());
    assert_eq!(direct.mkcalendar("/alice/cal/", "Cal")?, 201);
    let href = "/alice/cal/a.ics";
    assert_eq!(direct.put(href, &event("a", "Before"))?, 201);
    proxy.inject(
        FaultRule::new(ProxyFault::Delay(Duration::from_millis(1500)))
            .method("GET")
            .path_prefix(href),
    );
    let reading = thread::spawn(move || through_proxy.get(href));
    while proxy.received("GET") == 0 {
        thread::sleep(Duration::from_millis(5));
    }
    // The GET is held: not answered yet, so a change made now is what it will read.
    assert!(proxy.requests().is_empty());
    assert_eq!(direct.put(href, &event("a", "During"))?, 204);
    let (_, body) = reading.join().expect("reader thread")?.expect("the event");
    assert!(body.contains("SUMMARY:During"), "{body}");
    assert_eq!(
        proxy.requests(),
        vec![ProxiedRequest {
            method: "GET".into(),
            path: href.into(),
            status: 200,
            injected: true,
            forwarded: true,
            authorization: Some("Basic (redacted)".into()),
        }]
    );
    Ok(())
}

#[test]
fn truncated_body_promises_the_whole_length_and_sends_half() -> TestResult {
    let radicale = Radicale::start()?;
    let proxy = CountingProxy::start(radicale.addr())?;
    let alice = user_of(&radicale, &radicale.url());
    assert_eq!(alice.mkcalendar("/alice/cal/", "Cal")?, 201);
    assert_eq!(alice.put("/alice/cal/a.ics", &event("a", "Whole"))?, 201);
    let (_, whole) = alice.get("/alice/cal/a.ics")?.expect("the event");
    proxy.inject(FaultRule::new(ProxyFault::TruncatedBody).method("GET"));

    let stream = TcpStream::connect(proxy.addr())?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    write!(
        &stream,
        "GET /alice/cal/a.ics HTTP/1.1\r\nHost: x\r\nAuthorization: {}\r\n\r\n",
        basic_auth(radicale.username(), radicale.password())
    )?;
    let (status, headers, body) = read_until_close(&mut BufReader::new(stream))?;
    assert_eq!(status, 200);
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .map(|(_, value)| value.parse().expect("a number"))
        .expect("a Content-Length");
    assert_eq!(length, whole.len());
    assert_eq!(body.len(), whole.len() / 2);
    assert!(whole.as_bytes().starts_with(&body));
    let request = &proxy.requests()[0];
    assert_eq!(
        (request.status, request.injected, request.forwarded),
        (200, true, true)
    );
    Ok(())
}

#[test]
fn replace_body_forwards_the_write_but_answers_the_replacement() -> TestResult {
    let radicale = Radicale::start()?;
    let proxy = CountingProxy::start(radicale.addr())?;
    let alice = user_of(&radicale, &proxy.url());
    assert_eq!(alice.mkcalendar("/alice/cal/", "Cal")?, 201);
    proxy.inject(
        FaultRule::new(ProxyFault::ReplaceBody {
            status: 207,
            content_type: "application/json".into(),
            body: br#"{"not": "xml"}"#.to_vec(),
        })
        .method("PROPFIND"),
    );
    let (status, headers, body) =
        read_until_close(&mut send_raw(&proxy, "PROPFIND", "/alice/cal/")?)?;
    assert_eq!(status, 207);
    assert!(
        headers.contains(&("content-type".into(), "application/json".into())),
        "{headers:?}"
    );
    assert_eq!(body, br#"{"not": "xml"}"#);

    proxy.inject(
        FaultRule::new(ProxyFault::ReplaceBody {
            status: 500,
            content_type: "text/plain".into(),
            body: b"lost answer".to_vec(),
        })
        .method("PUT"),
    );
    assert_eq!(alice.put("/alice/cal/a.ics", &event("a", "Landed"))?, 500);
    // The server got the PUT all the same.
    let (_, body) = alice.get("/alice/cal/a.ics")?.expect("the PUT took effect");
    assert!(body.contains("SUMMARY:Landed"), "{body}");
    let requests = proxy.requests();
    let summary: Vec<_> = requests
        .iter()
        .map(|r| (r.method.as_str(), r.status, r.injected, r.forwarded))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("MKCALENDAR", 201, false, true),
            // Forwarded too (Radicale answered 401 to the credential-less request).
            ("PROPFIND", 207, true, true),
            ("PUT", 500, true, true),
            ("GET", 200, false, true),
        ]
    );
    Ok(())
}

/// The peak resident memory of this process (`VmHWM`), in bytes.
fn peak_rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| {
            rest.trim()
                .trim_end_matches("kB")
                .trim()
                .parse::<u64>()
                .ok()
        })
        .map_or(0, |kib| kib * 1024)
}

#[test]
fn huge_body_streams_the_promised_bytes_without_buffering_them() -> TestResult {
    const BYTES: u64 = 200 * 1024 * 1024;
    let (upstream, accepted) = stand_in_upstream(STAND_IN_OK)?;
    let proxy = CountingProxy::start(upstream)?;
    proxy.inject(FaultRule::new(ProxyFault::HugeBody {
        status: 207,
        bytes: BYTES,
    }));
    let mut reader = send_raw(&proxy, "PROPFIND", "/alice/cal/")?;
    let mut head = String::new();
    loop {
        let mut line = String::new();
        reader.read_line(&mut line)?;
        head.push_str(&line);
        if line == "\r\n" || line.is_empty() {
            break;
        }
    }
    assert!(head.starts_with("HTTP/1.1 207 "), "{head}");
    assert!(
        head.contains(&format!("Content-Length: {BYTES}\r\n")),
        "{head}"
    );
    assert!(head.contains("Content-Type: application/xml"), "{head}");
    // Read it all in small pieces, keeping only the start.
    let mut start = Vec::new();
    let mut total = 0u64;
    let mut buffer = vec![0u8; 64 * 1024];
    loop {
        let n = reader.read(&mut buffer)?;
        if n == 0 {
            break;
        }
        if start.len() < 4096 {
            start.extend_from_slice(&buffer[..n.min(4096)]);
        }
        total += n as u64;
    }
    assert_eq!(total, BYTES);
    let start = String::from_utf8_lossy(&start);
    assert!(start.starts_with("<?xml version=\"1.0\""), "{start}");
    assert!(start.contains("<d:multistatus xmlns:d=\"DAV:\""), "{start}");
    assert!(start.contains("<d:response><d:href>"), "{start}");
    assert_eq!(accepted.load(Ordering::SeqCst), 0, "not forwarded");
    // Proxy and client share this process: neither held the body.
    let peak = peak_rss();
    assert!(peak < BYTES / 2, "peak RSS {peak} bytes");

    // A client that hangs up early ends the stream; the proxy goes on serving.
    proxy.inject(FaultRule::new(ProxyFault::HugeBody {
        status: 207,
        bytes: BYTES,
    }));
    let started = Instant::now();
    let mut reader = send_raw(&proxy, "REPORT", "/alice/cal/")?;
    let mut first = vec![0u8; 1024];
    reader.read_exact(&mut first)?;
    drop(reader);
    let (status, _, body) = read_until_close(&mut send_raw(&proxy, "GET", "/after")?)?;
    assert_eq!((status, body.as_slice()), (200, &b"ok"[..]));
    assert!(started.elapsed() < Duration::from_secs(60));
    Ok(())
}
