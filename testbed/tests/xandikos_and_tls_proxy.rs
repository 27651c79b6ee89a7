//! Tests of the Xandikos launcher (its own TLS, Basic auth, empty calendar home, restart) and of
//! the counting proxy speaking TLS on both sides in front of it.

use std::io::{self, BufRead, BufReader, Write};
use std::net::{Ipv6Addr, SocketAddr, TcpListener, TcpStream};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use calplanebot_testbed::caldav_server::{CalDavServer, trusting_only};
use calplanebot_testbed::calendar_user::{CalendarUser, basic_auth};
use calplanebot_testbed::proxy::{CountingProxy, FaultRule, ProxiedRequest, ProxyFault};
use calplanebot_testbed::xandikos::{self, XANDIKOS_ENV, XANDIKOS_VERSION, Xandikos};
use ureq::http;

type TestResult = Result<(), Box<dyn std::error::Error>>;

fn event(uid: &str, summary: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calplanebot//testbed//EN\r\n\
         BEGIN:VEVENT\r\nUID:{uid}\r\nDTSTAMP:20260101T000000Z\r\n\
         DTSTART;VALUE=DATE:20260105\r\nDTEND;VALUE=DATE:20260106\r\n\
         SUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
    )
}

fn start() -> Result<CalDavServer, Box<dyn std::error::Error>> {
    Ok(CalDavServer::Xandikos(Xandikos::start()?))
}

/// An agent like calplanebot's: statuses as answers, WebDAV methods, no redirects, and only
/// `roots` trusted (`None`: ureq's built-in public roots).
fn agent(roots: Option<ureq::tls::TlsConfig>) -> ureq::Agent {
    let mut config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .allow_non_standard_methods(true)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(10)));
    if let Some(tls) = roots {
        config = config.tls_config(tls);
    }
    config.build().into()
}

/// Sends a PROPFIND with `body` and returns status and body.
fn propfind(
    agent: &ureq::Agent,
    url: &str,
    authorization: &str,
    depth: &str,
    body: &str,
) -> Result<(u16, String), ureq::Error> {
    let request = http::Request::builder()
        .method("PROPFIND")
        .uri(url)
        .header("Authorization", authorization)
        .header("Depth", depth)
        .header("Content-Type", "application/xml; charset=utf-8")
        .body(body.to_string())
        .expect("a valid request");
    let mut response = agent.run(request)?;
    let status = response.status().as_u16();
    Ok((status, response.body_mut().read_to_string()?))
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
fn xandikos_is_installed_at_the_pinned_version() -> TestResult {
    let executable = xandikos::ensure_installed()?;
    let output = Command::new(&executable).arg("--version").output()?;
    assert!(output.status.success(), "{output:?}");
    if std::env::var_os(XANDIKOS_ENV).is_none() {
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            text.starts_with(&format!("xandikos {XANDIKOS_VERSION}")),
            "{text}"
        );
    }
    Ok(())
}

#[test]
fn serves_https_with_its_own_certificate_for_localhost_on_127_0_0_1_only() -> TestResult {
    let started = Instant::now();
    let server = start()?;
    eprintln!("xandikos ready after {:?}", started.elapsed());
    let tls = server.tls().expect("xandikos speaks TLS");
    assert_eq!(tls.server_name, "localhost");
    let url = server.url();
    assert_eq!(url, format!("https://localhost:{}", server.addr().port()));
    assert_eq!(server.addr().ip().to_string(), "127.0.0.1");

    let cert = std::fs::read_to_string(&tls.cert_pem)?;
    assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"), "{cert}");
    let key = std::fs::read_to_string(&tls.key_pem)?;
    assert!(key.starts_with("-----BEGIN RSA PRIVATE KEY-----"));
    assert!(tls.cert_pem.starts_with(server.scratch_dir()));
    // The certificate made beforehand is the one --autocert serves.
    let log = std::fs::read_to_string(server.log_path())?;
    assert!(log.contains("Reusing self-signed certificate"), "{log}");

    // Nothing on [::1]: the server binds 127.0.0.1 only, whatever `localhost` resolves to.
    let v6 = SocketAddr::from((Ipv6Addr::LOCALHOST, server.addr().port()));
    assert!(TcpStream::connect_timeout(&v6, Duration::from_secs(1)).is_err());
    Ok(())
}

#[test]
fn basic_auth_over_tls_and_an_empty_calendar_home() -> TestResult {
    let server = start()?;
    let CalDavServer::Xandikos(xandikos) = &server else {
        unreachable!()
    };
    let trusted = agent(Some(trusting_only(xandikos.certificate())));
    let auth = basic_auth(server.username(), server.password());

    // RFC 6764 discovery: principal, then calendar home.
    let (status, body) = propfind(
        &trusted,
        &format!("{}/", server.url()),
        &auth,
        "0",
        r#"<propfind xmlns="DAV:"><prop><current-user-principal/></prop></propfind>"#,
    )?;
    assert_eq!(status, 207, "{body}");
    assert!(body.contains("<ns0:href>/alice/</ns0:href>"), "{body}");
    assert_eq!(server.principal_href(), "/alice/");
    let (status, body) = propfind(
        &trusted,
        &format!("{}{}", server.url(), server.principal_href()),
        &auth,
        "0",
        r#"<propfind xmlns="DAV:"><prop><C:calendar-home-set xmlns:C="urn:ietf:params:xml:ns:caldav"/></prop></propfind>"#,
    )?;
    assert_eq!(status, 207, "{body}");
    assert!(body.contains("/alice/calendars/"), "{body}");
    assert_eq!(server.home_href(), "/alice/calendars/");

    // A wrong password and no credentials at all: 401 with a Basic challenge.
    for authorization in [basic_auth("alice", "not-the-password"), String::new()] {
        let request = http::Request::builder()
            .method("PROPFIND")
            .uri(format!("{}/", server.url()))
            .header("Depth", "0")
            .header("Authorization", authorization)
            .body(())?;
        let mut response = trusted.run(request)?;
        assert_eq!(response.status(), 401);
        let challenge = response.headers().get("www-authenticate").cloned();
        assert_eq!(
            challenge.as_ref().and_then(|v| v.to_str().ok()),
            Some("Basic realm=\"Xandikos\"")
        );
        let _ = response.body_mut().read_to_vec()?;
    }
    let intruder = CalendarUser::with_root_certificate(
        &server.url(),
        "alice",
        "not-the-password",
        &server.tls().expect("tls").cert_pem,
    )?;
    assert_eq!(intruder.mkcalendar("/alice/calendars/work/", "Work")?, 401);

    // The home exists and holds no calendar; alice can create one and write into it.
    let alice = CalendarUser::for_server(&server);
    assert_eq!(alice.list_calendars(&server.home_href())?, vec![]);
    assert_eq!(alice.mkcalendar("/alice/calendars/work/", "Work")?, 201);
    // QUIRK: Xandikos 0.4.10 answers a second MKCALENDAR with 403 (Radicale: 409).
    assert_eq!(alice.mkcalendar("/alice/calendars/work/", "Again")?, 403);
    assert_eq!(
        alice.list_calendars(&server.home_href())?,
        vec![(
            "/alice/calendars/work/".to_string(),
            Some("Work".to_string())
        )]
    );
    let href = "/alice/calendars/work/plane-issue-1.ics";
    assert_eq!(alice.put(href, &event("u-1", "First"))?, 201);
    let (etag, body) = alice.get(href)?.expect("the event just PUT");
    assert!(body.contains("SUMMARY:First"), "{body}");
    assert_eq!(
        alice.list_objects("/alice/calendars/work/")?,
        vec![(href.to_string(), etag)]
    );
    assert_eq!(alice.put(href, &event("u-1", "Second"))?, 204);
    assert_eq!(alice.delete(href)?, 204);
    assert_eq!(alice.get(href)?, None);
    Ok(())
}

#[test]
fn a_client_that_does_not_trust_the_certificate_is_refused() -> TestResult {
    let server = start()?;
    let other = start()?;
    let url = format!("{}/", server.url());
    let auth = basic_auth(server.username(), server.password());

    // ureq's public roots (webpki-roots) do not include a self-signed certificate.
    let error = propfind(&agent(None), &url, &auth, "0", "").unwrap_err();
    assert!(error.to_string().contains("UnknownIssuer"), "{error}");

    // Neither does another instance's certificate.
    let CalDavServer::Xandikos(other_xandikos) = &other else {
        unreachable!()
    };
    let wrong_root = agent(Some(trusting_only(other_xandikos.certificate())));
    let error = propfind(&wrong_root, &url, &auth, "0", "").unwrap_err();
    assert!(
        error.to_string().contains("BadSignature") || error.to_string().contains("UnknownIssuer"),
        "{error}"
    );

    let error = CalendarUser::new(&server.url(), "alice", server.password())
        .list_calendars("/alice/calendars/")
        .unwrap_err();
    assert!(error.to_string().contains("certificate"), "{error}");
    Ok(())
}

#[test]
fn restart_keeps_data_certificate_and_port_and_drop_removes_the_directory() -> TestResult {
    let mut server = start()?;
    let alice = CalendarUser::for_server(&server);
    assert_eq!(alice.mkcalendar("/alice/calendars/kept/", "Kept")?, 201);
    let cert_before = std::fs::read(&server.tls().expect("tls").cert_pem)?;
    let url = server.url();

    server.stop();
    assert!(!server.is_running());
    assert!(TcpStream::connect_timeout(&server.addr(), Duration::from_secs(1)).is_err());
    server.restart()?;
    assert!(server.is_running());
    assert_eq!(server.url(), url);
    assert_eq!(
        std::fs::read(&server.tls().expect("tls").cert_pem)?,
        cert_before
    );
    assert_eq!(
        alice.list_calendars(&server.home_href())?,
        vec![(
            "/alice/calendars/kept/".to_string(),
            Some("Kept".to_string())
        )]
    );

    let dir = server.scratch_dir().to_path_buf();
    assert!(dir.join("htpasswd").is_file());
    let htpasswd = std::fs::read_to_string(dir.join("htpasswd"))?;
    assert!(htpasswd.starts_with("alice:{SHA}"), "{htpasswd}");
    drop(server);
    assert!(!dir.exists(), "{} still exists", dir.display());
    Ok(())
}

#[test]
fn tls_proxy_forwards_counts_and_injects_faults() -> TestResult {
    let server = start()?;
    let proxy = CountingProxy::start_for(&server)?;
    assert!(
        proxy.url().starts_with("https://localhost:"),
        "{}",
        proxy.url()
    );
    assert_eq!(
        proxy.url(),
        format!("https://localhost:{}", proxy.addr().port())
    );
    let alice = CalendarUser::for_server(&server).through(&proxy.url());
    assert_eq!(alice.base_url(), proxy.url());

    assert_eq!(alice.mkcalendar("/alice/calendars/plane-x/", "X")?, 201);
    let href = "/alice/calendars/plane-x/plane-issue-1.ics";
    assert_eq!(alice.put(href, &event("u-1", "First"))?, 201);
    let (etag, _) = alice.get(href)?.expect("the event just PUT");
    assert_eq!(
        alice.list_objects("/alice/calendars/plane-x/")?,
        vec![(href.to_string(), etag)]
    );
    assert_eq!(alice.delete(href)?, 204);
    assert_eq!(
        proxy.requests(),
        vec![
            recorded("MKCALENDAR", "/alice/calendars/plane-x/", 201),
            recorded("PUT", href, 201),
            recorded("GET", href, 200),
            recorded("PROPFIND", "/alice/calendars/plane-x/", 207),
            recorded("DELETE", href, 204),
        ]
    );

    // An injected 503 with Retry-After, over TLS; the server never sees the PUT.
    proxy.reset();
    proxy.inject(
        FaultRule::new(ProxyFault::StatusWithHeaders(
            503,
            vec![("Retry-After".into(), "1".into())],
        ))
        .method("PUT"),
    );
    assert_eq!(alice.put(href, &event("u-1", "Blocked"))?, 503);
    assert_eq!(alice.get(href)?, None);
    let requests = proxy.requests();
    assert_eq!(requests[0].status, 503);
    assert!(requests[0].injected && !requests[0].forwarded);

    // A dropped connection and a truncated body are transport errors for the client.
    proxy.inject(FaultRule::new(ProxyFault::DropConnection).method("GET"));
    assert!(alice.get(href).is_err());
    assert_eq!(alice.put(href, &event("u-1", "Again"))?, 201);
    proxy.inject(FaultRule::new(ProxyFault::TruncatedBody).method("GET"));
    assert!(alice.get(href).is_err());
    let (_, body) = alice.get(href)?.expect("the event");
    assert!(body.contains("SUMMARY:Again"), "{body}");
    assert_eq!(proxy.count("GET"), 4);
    Ok(())
}

#[test]
fn tls_proxy_keeps_client_connections_alive() -> TestResult {
    let server = start()?;
    let proxy = CountingProxy::start_for(&server)?;
    let tls = server.tls().expect("tls");

    // Three requests on one TLS connection, read with a plain rustls client.
    let mut roots = rustls::RootCertStore::empty();
    let pem = std::fs::read(&tls.cert_pem)?;
    roots.add(rustls::pki_types::CertificateDer::from(
        ureq::tls::Certificate::from_pem(&pem)?.der().to_vec(),
    ))?;
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connection = rustls::ClientConnection::new(Arc::new(config), "localhost".try_into()?)?;
    let tcp = TcpStream::connect(proxy.addr())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut stream = BufReader::new(rustls::StreamOwned::new(connection, tcp));
    let auth = basic_auth(server.username(), server.password());
    for _ in 0..3 {
        write!(
            stream.get_mut(),
            "PROPFIND /alice/ HTTP/1.1\r\nHost: localhost\r\nDepth: 0\r\n\
             Authorization: {auth}\r\n\r\n"
        )?;
        stream.get_mut().flush()?;
        let answer = read_answer(&mut stream)?;
        assert_eq!(answer.status, 207, "{}", answer.body);
        assert!(
            answer
                .headers
                .contains(&("connection".into(), "keep-alive".into())),
            "{:?}",
            answer.headers
        );
    }
    assert_eq!(proxy.count("PROPFIND"), 3);
    Ok(())
}

/// One HTTP answer as a raw client sees it; header names lower-cased.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

/// Reads one HTTP/1.1 answer framed by Content-Length.
fn read_answer(reader: &mut impl BufRead) -> io::Result<Answer> {
    let mut line = String::new();
    reader.read_line(&mut line)?;
    let status = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| io::Error::other(format!("status line {line:?}")))?;
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line)?;
        let text = line.trim_end();
        if text.is_empty() {
            break;
        }
        let (name, value) = text.split_once(':').unwrap_or((text, ""));
        headers.push((name.trim().to_ascii_lowercase(), value.trim().to_string()));
    }
    let length: usize = headers
        .iter()
        .find(|(name, _)| name == "content-length")
        .and_then(|(_, value)| value.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(Answer {
        status,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

#[test]
fn tls_proxy_refuses_untrusting_clients_and_keeps_serving() -> TestResult {
    let server = start()?;
    let proxy = CountingProxy::start_for(&server)?;
    let error = CalendarUser::new(&proxy.url(), "alice", server.password())
        .list_calendars(&server.home_href())
        .unwrap_err();
    assert!(error.to_string().contains("certificate"), "{error}");
    let alice = CalendarUser::for_server(&server).through(&proxy.url());
    assert_eq!(alice.list_calendars(&server.home_href())?, vec![]);
    assert_eq!(proxy.count("PROPFIND"), 1);
    Ok(())
}

/// Hands out a dead address first, then the real one — what a resolver answering `::1` before
/// `127.0.0.1` does for a server listening on `127.0.0.1` only.
#[derive(Debug)]
struct DeadAddressFirst {
    dead: SocketAddr,
    live: SocketAddr,
}

impl ureq::unversioned::resolver::Resolver for DeadAddressFirst {
    fn resolve(
        &self,
        _uri: &http::Uri,
        _config: &ureq::config::Config,
        _timeout: ureq::unversioned::transport::NextTimeout,
    ) -> Result<ureq::unversioned::resolver::ResolvedSocketAddrs, ureq::Error> {
        let mut addrs = self.empty();
        addrs.push(self.dead);
        addrs.push(self.live);
        Ok(addrs)
    }
}

#[test]
fn ureq_tries_the_next_address_when_the_first_refuses() -> TestResult {
    let server = start()?;
    let CalDavServer::Xandikos(xandikos) = &server else {
        unreachable!()
    };
    // A port nobody listens on, on ::1 when the machine has it (else on 127.0.0.1).
    let dead = match TcpListener::bind((Ipv6Addr::LOCALHOST, 0)) {
        Ok(listener) => listener.local_addr()?,
        Err(_) => TcpListener::bind("127.0.0.1:0")?.local_addr()?,
    };
    let config = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .allow_non_standard_methods(true)
        .tls_config(trusting_only(xandikos.certificate()))
        .timeout_global(Some(Duration::from_secs(10)))
        .build();
    let agent = ureq::Agent::with_parts(
        config,
        ureq::unversioned::transport::DefaultConnector::new(),
        DeadAddressFirst {
            dead,
            live: server.addr(),
        },
    );
    let auth = basic_auth(server.username(), server.password());
    let (status, _) = propfind(&agent, &format!("{}/", server.url()), &auth, "0", "")?;
    assert_eq!(status, 207);
    Ok(())
}

#[test]
fn restart_on_a_port_taken_meanwhile_fails_with_the_log_tail() -> TestResult {
    let mut xandikos = Xandikos::start()?;
    xandikos.stop();
    let squatter = TcpListener::bind(xandikos.addr())?;
    let error = xandikos.restart().unwrap_err();
    assert_eq!(error.kind(), io::ErrorKind::AddrInUse, "{error}");
    assert!(
        error.to_string().contains("address already in use"),
        "{error}"
    );
    let log = xandikos.log_path().display().to_string();
    assert!(error.to_string().contains(&log), "{error}");
    drop(squatter);
    xandikos.restart()?;
    assert!(xandikos.is_running());
    Ok(())
}
