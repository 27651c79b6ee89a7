//! Tests of the uniform server API ([`CalDavServer`]) against both servers, and of the Radicale
//! variations ([`RadicaleOptions`]): authentication by `X-Remote-User`, and an account that may
//! write into existing calendars but not create new ones.

use std::time::Duration;

use calplanebot_testbed::caldav_server::{CalDavServer, ServerKind};
use calplanebot_testbed::calendar_user::{CalendarUser, basic_auth};
use calplanebot_testbed::proxy::{CountingProxy, FaultRule, ProxyFault};
use calplanebot_testbed::radicale::{Radicale, RadicaleAuth, RadicaleOptions};
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

/// Sends a bodiless request with exactly these headers; returns the status.
fn status_of(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
) -> Result<u16, Box<dyn std::error::Error>> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .allow_non_standard_methods(true)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let mut builder = http::Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let mut response = agent.run(builder.body(())?)?;
    let _ = response.body_mut().read_to_vec()?;
    Ok(response.status().as_u16())
}

#[test]
fn server_kinds_have_names() {
    assert_eq!(
        ServerKind::ALL,
        [ServerKind::Radicale, ServerKind::Xandikos]
    );
    assert_eq!(ServerKind::Radicale.name(), "radicale");
    assert_eq!(ServerKind::Xandikos.to_string(), "xandikos");
}

#[test]
fn every_server_starts_with_an_empty_home_and_behaves_alike() -> TestResult {
    for kind in ServerKind::ALL {
        let mut server = CalDavServer::start(kind)?;
        assert_eq!(server.kind(), kind);
        assert_eq!(server.username(), "alice");
        assert_eq!(server.principal_href(), "/alice/");
        let url = server.url();
        assert!(!url.ends_with('/'), "{url}");
        match kind {
            ServerKind::Radicale => {
                assert_eq!(url, format!("http://{}", server.addr()));
                assert_eq!(server.home_href(), "/alice/");
                assert!(server.tls().is_none());
            }
            ServerKind::Xandikos => {
                assert_eq!(url, format!("https://localhost:{}", server.addr().port()));
                assert_eq!(server.home_href(), "/alice/calendars/");
                let tls = server.tls().expect("xandikos speaks TLS");
                assert!(tls.cert_pem.is_file() && tls.key_pem.is_file());
            }
        }
        assert!(server.scratch_dir().is_dir());
        assert!(server.log_path().starts_with(server.scratch_dir()));
        assert!(server.log_path().is_file());
        assert!(server.is_running());

        let alice = CalendarUser::for_server(&server);
        let home = server.home_href();
        assert_eq!(alice.list_calendars(&home)?, vec![], "{kind}");
        let calendar = format!("{home}plane-web/");
        assert_eq!(alice.mkcalendar(&calendar, "Web")?, 201, "{kind}");
        let href = format!("{calendar}plane-issue-1.ics");
        assert_eq!(alice.put(&href, &event("u-1", "One"))?, 201, "{kind}");

        // Through a proxy of the right kind, counted.
        let proxy = CountingProxy::start_for(&server)?;
        assert_eq!(
            proxy.url().starts_with("https://"),
            server.tls().is_some(),
            "{kind}"
        );
        let behind = CalendarUser::for_server(&server).through(&proxy.url());
        assert_eq!(behind.list_objects(&calendar)?.len(), 1, "{kind}");
        proxy.inject(FaultRule::new(ProxyFault::Status(503)).method("PUT"));
        assert_eq!(behind.put(&href, &event("u-1", "Two"))?, 503, "{kind}");
        assert_eq!(proxy.count("PROPFIND"), 1);
        assert_eq!(proxy.count("PUT"), 1);

        server.stop();
        assert!(!server.is_running());
        server.restart()?;
        let (_, body) = alice.get(&href)?.expect("the event survives a restart");
        assert!(body.contains("SUMMARY:One"), "{kind}: {body}");

        let dir = server.scratch_dir().to_path_buf();
        std::fs::write(dir.join("calplanebot.lock"), "")?;
        drop(proxy);
        drop(server);
        assert!(!dir.exists(), "{kind}: {} still exists", dir.display());
    }
    Ok(())
}

#[test]
fn radicale_with_remote_user_header_trusts_the_header_only() -> TestResult {
    let radicale = Radicale::start_with(RadicaleOptions {
        auth: RadicaleAuth::RemoteUserHeader,
        ..RadicaleOptions::default()
    })?;
    let url = format!("{}/alice/", radicale.url());
    let basic = basic_auth(radicale.username(), radicale.password());

    // The header logs alice in, no password asked.
    assert_eq!(
        status_of(
            "PROPFIND",
            &url,
            &[("X-Remote-User", "alice"), ("Depth", "0")]
        )?,
        207
    );
    // Without it, even the right password is nobody.
    let anonymous = status_of("PROPFIND", &url, &[("Depth", "0")])?;
    let with_password = status_of(
        "PROPFIND",
        &url,
        &[("Authorization", &basic), ("Depth", "0")],
    )?;
    assert_eq!(anonymous, 403);
    assert_eq!(with_password, 403);
    // Another user named in the header cannot touch alice's collections.
    assert_eq!(
        status_of(
            "MKCALENDAR",
            &format!("{url}stolen/"),
            &[("X-Remote-User", "mallory")]
        )?,
        403
    );

    // for_server sends the header the authenticating front would add.
    let server = CalDavServer::Radicale(radicale);
    let alice = CalendarUser::for_server(&server);
    assert_eq!(alice.mkcalendar("/alice/work/", "Work")?, 201);
    assert_eq!(alice.put("/alice/work/1.ics", &event("u-1", "One"))?, 201);
    assert_eq!(alice.list_objects("/alice/work/")?.len(), 1);
    Ok(())
}

#[test]
fn radicale_without_calendar_creation_refuses_mkcalendar_but_writes_existing_calendars()
-> TestResult {
    let mut radicale = Radicale::start_with(RadicaleOptions {
        allow_calendar_creation: false,
        ..RadicaleOptions::default()
    })?;
    assert_eq!(
        radicale.create_calendar_on_disk("work", "Work · Team")?,
        "/alice/work/"
    );
    assert!(radicale.is_running());
    let server = CalDavServer::Radicale(radicale);
    let alice = CalendarUser::for_server(&server);

    // Discovery still works: the root and the principal are readable.
    let auth = basic_auth(server.username(), server.password());
    assert_eq!(
        status_of(
            "PROPFIND",
            &format!("{}/", server.url()),
            &[("Authorization", &auth), ("Depth", "0")]
        )?,
        207
    );
    assert_eq!(
        alice.list_calendars("/alice/")?,
        vec![("/alice/work/".to_string(), Some("Work · Team".to_string()))]
    );

    // No new calendar; the existing one is just that, existing.
    assert_eq!(alice.mkcalendar("/alice/plane-web/", "Web")?, 403);
    assert_eq!(alice.mkcalendar("/alice/work/", "Again")?, 409);
    assert_eq!(alice.list_calendars("/alice/")?.len(), 1);

    // Items in the existing calendar: create, update, read, delete.
    let href = "/alice/work/plane-issue-1.ics";
    assert_eq!(alice.put(href, &event("u-1", "One"))?, 201);
    assert_eq!(alice.put(href, &event("u-1", "Two"))?, 204);
    let (etag, body) = alice.get(href)?.expect("the event");
    assert!(body.contains("SUMMARY:Two"), "{body}");
    assert_eq!(
        alice.list_objects("/alice/work/")?,
        vec![(href.to_string(), etag)]
    );
    assert_eq!(alice.delete(href)?, 200);
    // The calendar's own properties stay writable (PROPPATCH needs the same `w`).
    let proppatch = http::Request::builder()
        .method("PROPPATCH")
        .uri(format!("{}/alice/work/", server.url()))
        .header("Authorization", &auth)
        .header("Content-Type", "application/xml; charset=utf-8")
        .body(
            r#"<?xml version="1.0" encoding="utf-8"?>
<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:displayname>Renamed</D:displayname></D:prop></D:set></D:propertyupdate>"#,
        )?;
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .allow_non_standard_methods(true)
        .build()
        .into();
    assert_eq!(agent.run(proppatch)?.status(), 207);
    assert_eq!(
        alice.list_calendars("/alice/")?,
        vec![("/alice/work/".to_string(), Some("Renamed".to_string()))]
    );
    // Nothing can be written outside the existing calendars.
    assert_eq!(
        alice.put("/alice/elsewhere/1.ics", &event("u-2", "X"))?,
        403
    );
    Ok(())
}

#[test]
fn calendars_created_on_disk_appear_without_restart_when_creation_is_allowed() -> TestResult {
    let mut radicale = Radicale::start()?;
    assert!(
        radicale
            .create_calendar_on_disk("../escape", "Nope")
            .is_err()
    );
    let href = radicale.create_calendar_on_disk("team@x", "Team")?;
    assert!(radicale.create_calendar_on_disk("team@x", "Twice").is_err());
    let alice = CalendarUser::new(&radicale.url(), radicale.username(), radicale.password());
    assert_eq!(
        alice.list_calendars("/alice/")?,
        vec![(href.clone(), Some("Team".to_string()))]
    );
    assert_eq!(
        alice.put(&format!("{href}1.ics"), &event("u-1", "One"))?,
        201
    );
    Ok(())
}
