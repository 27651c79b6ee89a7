//! End to end, what differs between CalDAV servers and deployments (issue 6): discovery from
//! every URL form an operator may paste, single-calendar mode, TLS with a private CA or the
//! system trust store, HTTP Digest through a real lighttpd in front of Radicale, and servers
//! that refuse MKCALENDAR. The rest of the suite runs on both servers as well.

#[macro_use]
mod support;

use calplanebot_testbed::caldav_server::CalDavServer;
use calplanebot_testbed::calendar_user::CalendarUser;
use calplanebot_testbed::digest_front::{DigestAlgorithm, DigestFront};
use calplanebot_testbed::plane_sim::PlaneSim;
use calplanebot_testbed::plane_sim::Seed;
use calplanebot_testbed::proxy::{CountingProxy, FaultRule, ProxyFault};
use calplanebot_testbed::radicale::{Radicale, RadicaleAuth, RadicaleOptions};
use serde_json::json;
use support::{Env, Run, ServerKind, calendars, prop};

fn seed() -> serde_json::Value {
    json!({
        "workspace": "acme",
        "projects": [
            {"identifier": "WEB", "name": "Website"},
            {"identifier": "OPS", "name": "Operations"}
        ],
        "issues": [
            {"project": "WEB", "name": "Launch", "target_date": "2026-12-01", "priority": "urgent"},
            {"project": "WEB", "name": "Docs", "target_date": "2026-12-02"},
            {"project": "WEB", "name": "Someday"},
            {"project": "OPS", "name": "Rotate keys", "target_date": "2026-12-05"}
        ]
    })
}

/// The first line of `text` containing `needle`.
fn line_with<'a>(text: &'a str, needle: &str) -> &'a str {
    text.lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no line with {needle:?} in\n{text}"))
}

/// The resource names in a collection, sorted.
fn names_in(env: &Env, collection: &str) -> Vec<String> {
    let mut names: Vec<String> = env
        .user
        .list_objects(collection)
        .expect("the calendar lists")
        .into_iter()
        .map(|(href, _)| href.rsplit('/').next().unwrap_or_default().to_string())
        .collect();
    names.sort();
    names
}

on_both_servers!(discovery_works_from_every_url_form);
/// The server root, `/.well-known/caldav` (a redirect), the principal and the calendar home
/// all lead to the same calendar home: `check` says how, and a sync from each form lands in
/// the same per-project calendars (the second form onwards finds nothing to do).
fn discovery_works_from_every_url_form(server: ServerKind) {
    let env = Env::start(server, seed());
    let origin = env.proxy.url();
    let home = format!("{origin}{}", env.home());
    let principal = format!("{origin}{}", env.server.principal_href());
    let forms = [
        ("root", format!("{origin}/"), "principal"),
        (
            "well-known",
            format!("{origin}/.well-known/caldav"),
            "redirected to",
        ),
        ("principal", principal.clone(), "principal"),
        ("home", home.clone(), "principal"),
    ];
    for (i, (form, url, says)) in forms.iter().enumerate() {
        let run = env.run_with(&["check"], &[("CALDAV_URL", url.as_str())]);
        assert_eq!(run.code, 0, "{form}: {}", run.stdout);
        let discovery = line_with(&run.stdout, "✓ discovery:");
        assert!(
            discovery.ends_with(&format!("calendar home {home} (one calendar per project)")),
            "{form}: {discovery}"
        );
        assert!(discovery.contains(says), "{form}: {discovery}");
        assert!(
            discovery.contains(&format!("principal {principal}")),
            "{form}: {discovery}"
        );

        let run = env.run_with(&["sync"], &[("CALDAV_URL", url.as_str())]);
        assert_eq!(run.code, 0, "{form}: {}", run.stderr);
        let expected = if i == 0 {
            "3 created, 0 updated, 0 deleted, 0 unchanged"
        } else {
            "0 created, 0 updated, 0 deleted, 3 unchanged"
        };
        assert!(run.stdout.contains(expected), "{form}: {}", run.stdout);
    }
    // Redirects are followed by hand with the PROPFIND re-sent, never turned into a GET.
    assert_eq!(env.caldav_count("GET"), 0);
    let names: Vec<Option<String>> = calendars(&env).into_iter().map(|(_, n)| n).collect();
    let mut expected = vec![
        Some("Plane: Operations".to_string()),
        Some("Plane: Website".to_string()),
    ];
    expected.sort();
    let mut names = names;
    names.sort();
    assert_eq!(
        names, expected,
        "one calendar per project, whatever the form"
    );
}

/// Creates the calendar `team/` (displayname `Team`) in the home, as a user would.
fn team_calendar(env: &Env) -> String {
    let href = format!("{}team/", env.home());
    let status = env
        .user
        .mkcalendar(&href, "Team")
        .expect("MKCALENDAR works");
    assert!((200..300).contains(&status), "MKCALENDAR {status}");
    href
}

on_both_servers!(a_calendar_url_means_single_calendar_mode);
/// CALDAV_URL naming a calendar means single-calendar mode: every project's events go into
/// that calendar, no calendar is created, `check` says so, a webhook run finds it again from
/// the cache, and the calendar keeps its name.
fn a_calendar_url_means_single_calendar_mode(server: ServerKind) {
    let env = Env::start(server, seed());
    let team = team_calendar(&env);
    let url = format!("{}{team}", env.proxy.url());
    let vars = [("CALDAV_URL", url.as_str())];

    let run = env.run_with(&["check"], &vars);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let discovery = line_with(&run.stdout, "✓ discovery:");
    assert!(
        discovery.contains("CALDAV_URL is the calendar \"Team\" itself: single-calendar mode"),
        "{discovery}"
    );
    assert!(
        line_with(&run.stdout, "✓ single calendar:").contains("takes events"),
        "{}",
        run.stdout
    );

    let run = env.run_with(&["sync"], &vars);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("single-calendar mode"),
        "the log says which mode: {}",
        run.stderr
    );
    assert!(run.stdout.contains("3 created"), "{}", run.stdout);
    assert_eq!(env.caldav_count("MKCALENDAR"), 0);
    assert_eq!(
        calendars(&env),
        vec![(team.clone(), Some("Team".to_string()))]
    );
    let names = names_in(&env, &team);
    assert_eq!(names.len(), 3, "{names:?}");
    for name in ["Launch", "Docs", "Rotate keys"] {
        let href = format!("{team}plane-issue-{}.ics", env.issue_id(name));
        let (_, ics) = env.user.get(&href).unwrap().expect("the event is there");
        // The scope marks keep the projects apart inside the one calendar.
        let project = if name == "Rotate keys" { "OPS" } else { "WEB" };
        assert_eq!(
            prop(&ics, "X-CALPLANEBOT-PROJECT").as_deref(),
            Some(env.project_id(project).as_str())
        );
    }

    // A webhook run: the cache remembers the calendar, so no discovery and no listing.
    let launch = env.issue_id("Launch");
    env.sim
        .with_world(|w| w.issue_mut(&launch).target_date = Some("2026-12-24".into()));
    let delivery = env
        .sim
        .webhook_delivery("issue", "updated", &launch, support::WEBHOOK_SECRET);
    env.proxy.reset();
    let signature = delivery.header("X-Plane-Signature").expect("signed");
    let run = env.webhook(&delivery.body, Some(signature), &vars);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(env.caldav_count("PROPFIND"), 0, "{:?}", env.proxy.counts());
    assert_eq!(env.caldav_count("PUT"), 1);
    let (_, ics) = env
        .user
        .get(&format!("{team}plane-issue-{launch}.ics"))
        .unwrap()
        .unwrap();
    assert_eq!(prop(&ics, "DTSTART").as_deref(), Some("20261224"));
    // Never renamed to a project's name.
    assert_eq!(calendars(&env)[0].1.as_deref(), Some("Team"));

    let run = env.run_with(&["sync", "--dry-run"], &vars);
    assert!(run.stdout.contains("would create 0, update 0, delete 0"));
}

on_both_servers!(a_server_refusing_mkcalendar_gets_the_documented_message);
/// A server that answers MKCALENDAR with 405 (as Google's CalDAV does, RFC 4791 §5.3.1):
/// the run exits 1 naming single-calendar mode, writes no event, and single-calendar mode
/// into an existing calendar then works.
fn a_server_refusing_mkcalendar_gets_the_documented_message(server: ServerKind) {
    let env = Env::start(server, seed());
    let team = team_calendar(&env);
    env.proxy.inject(
        FaultRule::new(ProxyFault::StatusWithHeaders(
            405,
            vec![("Allow".into(), "OPTIONS, PROPFIND, GET, PUT, DELETE".into())],
        ))
        .method("MKCALENDAR")
        .always(),
    );
    let run = env.sync(&[]);
    assert_mkcalendar_refused(&run, 405);
    assert_eq!(env.caldav_count("PUT"), 0);
    assert_eq!(calendars(&env).len(), 1);

    let url = format!("{}{team}", env.proxy.url());
    let run = env.run_with(&["sync"], &[("CALDAV_CALENDAR_URL", url.as_str())]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("3 created"), "{}", run.stdout);
}

fn assert_mkcalendar_refused(run: &Run, status: u16) {
    assert_eq!(run.code, 1, "{}", run.stderr);
    let message = format!(
        "the CalDAV server refused to create the calendar {{}} (HTTP {status}): create it yourself, or use single-calendar mode (CALDAV_CALENDAR_URL) for servers that cannot create calendars"
    );
    let (before, after) = message.split_once("{}").unwrap();
    assert!(
        run.stderr
            .lines()
            .chain(run.stdout.lines())
            .any(|l| l.contains(before) && l.contains(after)),
        "{}\n{}",
        run.stdout,
        run.stderr
    );
}

/// A Radicale whose rights let alice write events but not create calendars refuses MKCALENDAR
/// with 403 (a real refusal, not a fault injected by the proxy).
#[test]
fn radicale_without_calendar_creation_rights_gets_the_documented_message() {
    let radicale = Radicale::start_with(RadicaleOptions {
        allow_calendar_creation: false,
        ..RadicaleOptions::default()
    })
    .expect("Radicale starts");
    let mut env = Env::with_server(CalDavServer::Radicale(radicale), seed());
    let run = env.sync(&[]);
    assert_mkcalendar_refused(&run, 403);
    assert_eq!(env.caldav_count("PUT"), 0);

    let CalDavServer::Radicale(radicale) = &mut env.server else {
        unreachable!()
    };
    let team = radicale
        .create_calendar_on_disk("team", "Team")
        .expect("the calendar is made");
    assert_eq!(
        env.caldav_count("MKCALENDAR"),
        2,
        "one per project, both refused"
    );
    let url = format!("{}{team}", env.proxy.url());
    env.proxy.reset();
    let run = env.run_with(&["sync"], &[("CALDAV_URL", url.as_str())]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("3 created"), "{}", run.stdout);
    assert_eq!(env.caldav_count("MKCALENDAR"), 0);
}

/// Xandikos serves HTTPS with its own self-signed certificate. Without CALDAV_CA_FILE and with
/// a system trust store that lacks it, the run stops at once (no retries: nothing reaches the
/// server) with a message naming CALDAV_CA_FILE; the certificate in the system trust store
/// (`SSL_CERT_FILE`, honoured like OpenSSL does) works without CALDAV_CA_FILE; another CA in
/// CALDAV_CA_FILE is refused.
#[test]
fn tls_trusts_the_ca_file_or_the_system_store_and_nothing_else() {
    let env = Env::start(ServerKind::Xandikos, seed());
    let cert = env
        .server
        .tls()
        .expect("Xandikos serves TLS")
        .cert_pem
        .clone();
    let other_ca = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/tls/private-ca.pem"
    );
    let cert = cert.display().to_string();
    // An empty CALDAV_CA_FILE means "not set"; SSL_CERT_FILE picks the "system" store.
    for (label, vars) in [
        (
            "system store without the certificate",
            vec![("CALDAV_CA_FILE", ""), ("SSL_CERT_FILE", other_ca)],
        ),
        (
            "another CA in CALDAV_CA_FILE",
            vec![("CALDAV_CA_FILE", other_ca)],
        ),
    ] {
        let run = env.run_with(&["sync", "--retries", "3"], &vars);
        assert_eq!(run.code, 5, "{label}: {}", run.stderr);
        assert!(
            run.stderr
                .contains("cannot verify the TLS certificate of the CalDAV server"),
            "{label}: {}",
            run.stderr
        );
        assert!(run.stderr.contains("set CALDAV_CA_FILE"), "{label}");
        assert!(!run.stderr.contains("retrying"), "{label}: not retried");
        let run = env.run_with(&["check"], &vars);
        assert_eq!(run.code, 5, "{label}: {}", run.stdout);
        assert!(
            line_with(&run.stdout, "✗ CalDAV server").contains("TLS certificate"),
            "{}",
            run.stdout
        );
        assert!(
            run.stdout.contains("update-ca-certificates"),
            "{}",
            run.stdout
        );
    }
    assert_eq!(env.proxy.requests().len(), 0, "no request got through");

    let run = env.run_with(
        &["sync"],
        &[("CALDAV_CA_FILE", ""), ("SSL_CERT_FILE", cert.as_str())],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("3 created"), "{}", run.stdout);
}

/// Radicale trusting `X-Remote-User`, behind a real lighttpd that does the Digest auth, behind
/// the counting proxy; the calendar user talks to Radicale directly.
struct DigestEnv {
    env: Env,
    front: DigestFront,
}

fn digest_env(algorithm: DigestAlgorithm) -> DigestEnv {
    let radicale = Radicale::start_with(RadicaleOptions {
        auth: RadicaleAuth::RemoteUserHeader,
        ..RadicaleOptions::default()
    })
    .expect("Radicale starts");
    let server = CalDavServer::Radicale(radicale);
    let front = DigestFront::start(
        server.addr(),
        server.username(),
        server.password(),
        algorithm,
    )
    .expect("lighttpd starts");
    let seed = Seed::from_json(&seed().to_string()).expect("a valid seed");
    let env = Env {
        sim: PlaneSim::start(seed).expect("the simulator starts"),
        proxy: CountingProxy::start(front.addr()).expect("the proxy starts"),
        user: CalendarUser::for_server(&server),
        server,
    };
    DigestEnv { env, front }
}

/// HTTP Digest through lighttpd (MD5, SHA-256, and both offered): Basic goes first on
/// loopback, the 401 names Digest, and every later request of the run answers the challenge
/// without another 401; a second run converges; a wrong password exits 5 after one Digest try.
#[test]
fn digest_auth_through_a_real_lighttpd() {
    for algorithm in [
        DigestAlgorithm::Md5,
        DigestAlgorithm::Sha256,
        DigestAlgorithm::Both,
    ] {
        let DigestEnv { env, front } = digest_env(algorithm);
        let run = env.sync(&[]);
        assert_eq!(run.code, 0, "{algorithm:?}: {}", run.stderr);
        assert!(run.stdout.contains("3 created"), "{}", run.stdout);
        let statuses: Vec<u16> = env.proxy.requests().iter().map(|r| r.status).collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == 401).count(),
            1,
            "{algorithm:?}: one challenge per run: {statuses:?}"
        );
        assert_eq!(statuses[0], 401, "{statuses:?}");
        let sent: Vec<String> = env
            .proxy
            .requests()
            .iter()
            .skip(1)
            .map(|r| r.authorization.clone().unwrap_or_default())
            .collect();
        let expected = match algorithm {
            DigestAlgorithm::Md5 => "algorithm=MD5,",
            DigestAlgorithm::Sha256 | DigestAlgorithm::Both => "algorithm=SHA-256,",
        };
        assert!(
            sent.iter()
                .all(|a| a.starts_with("Digest ") && a.contains(expected)),
            "{algorithm:?}: {sent:?}"
        );
        // The nonce count goes up with every request on one nonce.
        assert!(
            sent.last()
                .unwrap()
                .contains(&format!("nc={:08x}", sent.len()))
        );
        assert!(front.access_log().contains("alice"));
        assert_eq!(
            names_in(&env, &env.calendar_href("WEB")).len(),
            2,
            "the events are in Radicale"
        );

        env.proxy.reset();
        let run = env.sync(&[]);
        assert!(run.stdout.contains("3 unchanged"), "{}", run.stdout);
        let run = env.run_with(&["check"], &[]);
        assert_eq!(run.code, 0, "{}", run.stdout);

        env.proxy.reset();
        let run = env.run_with(&["sync"], &[("CALDAV_PASSWORD", "wrong")]);
        assert_eq!(run.code, 5, "{}", run.stderr);
        assert!(
            run.stderr.contains("refused the credentials (HTTP 401)"),
            "{}",
            run.stderr
        );
        assert!(!run.stderr.contains("wrong"), "no secret in the log");
        assert_eq!(
            env.proxy.requests().len(),
            2,
            "Basic, then one Digest try: {:?}",
            env.proxy.counts()
        );
    }
}

on_both_servers!(writes_to_different_calendars_overlap_and_concurrency_1_writes_one_at_a_time);
/// With the default concurrency, writes into two calendars are in flight at the same time
/// (each PUT is held 0.5 s by the proxy); with `--concurrency 1` never more than one is.
fn writes_to_different_calendars_overlap_and_concurrency_1_writes_one_at_a_time(
    server: ServerKind,
) {
    for (concurrency, most_expected) in [("4", 2), ("1", 1)] {
        let env = Env::start(server, seed());
        env.proxy.inject(
            FaultRule::new(ProxyFault::Delay(std::time::Duration::from_millis(500)))
                .method("PUT")
                .always(),
        );
        let child = env
            .command(&["sync", "--concurrency", concurrency], &[])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the binary runs");
        let mut most = 0;
        // Sample how many PUTs have arrived but not been answered, until all three are done.
        while env.proxy.count("PUT") < 3 {
            let answered = env.proxy.count("PUT");
            most = most.max(env.proxy.received("PUT").saturating_sub(answered));
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
        let run = support::finish(child, "sync with held PUTs");
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(most, most_expected, "--concurrency {concurrency}");
    }
}

/// A VEVENT as calplanebot would write it, for tests that PUT through the library.
fn sync_event(n: u32, summary: &str) -> String {
    format!(
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//calplanebot//test//EN\r\nBEGIN:VEVENT\r\nUID:plane-issue-{n}@calplanebot\r\nDTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:202612{n:02}\r\nDTEND;VALUE=DATE:202612{:02}\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
        n + 1
    )
}

/// `(resource name, etag)` of a sync's changes, sorted: the names compare decoded, whatever
/// the server's spelling of the href.
fn names_with_etags(changed: &[(String, Option<String>)]) -> Vec<(String, Option<String>)> {
    let mut named: Vec<(String, Option<String>)> = changed
        .iter()
        .map(|(href, etag)| (last_name(href), etag.clone()))
        .collect();
    named.sort();
    named
}

fn last_name(href: &str) -> String {
    calplanebot::caldav::xml::href_path(href)
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_string()
}

on_both_servers!(sync_collection_reports_exactly_what_changed_since_a_token);
/// Issue 14: the building blocks of a cheap "did anything change?" run, on a real server. A
/// calendar's getctag and sync-token change with its members; a sync-collection from the old
/// token names exactly the changed and added events, with the ETags a PROPFIND and a multiget
/// report, and the deleted one; from the new token nothing; from no token everything. A token
/// the server never issued, or a server refusing sync-collection, is `Unavailable`. A
/// truncated answer (507) is continued from the token it returned.
fn sync_collection_reports_exactly_what_changed_since_a_token(server: ServerKind) {
    use calplanebot::caldav::{Precondition, SyncOutcome, is_member_of};

    let env = Env::start(server, seed());
    let dav = env.dav_client();
    let href = format!("{}plane-sync/", env.home());
    let calendar = format!("{}{href}", env.proxy.url());
    dav.make_calendar(&calendar, "Plane: Sync")
        .expect("MKCALENDAR works");
    let event_url = |n: u32| format!("{calendar}plane-issue-{n}.ics");
    let mut etags = Vec::new();
    for n in 1..=3 {
        let etag = dav
            .put(
                &event_url(n),
                &sync_event(n, &format!("Event {n}")),
                Precondition::Absent,
            )
            .expect("PUT works")
            .expect("both servers send the ETag");
        etags.push(etag);
    }
    let before = dav
        .calendar_at(&calendar)
        .expect("PROPFIND works")
        .expect("a calendar");
    let (Some(old_ctag), Some(old_token)) = (before.ctag.clone(), before.sync_token.clone()) else {
        panic!("{server:?} reports getctag and sync-token: {before:?}");
    };
    // The home's listing says the same.
    let listed = dav
        .calendars(&format!("{}{}", env.proxy.url(), env.home()))
        .unwrap();
    let listed = listed.iter().find(|c| c.url == calendar).expect("listed");
    assert_eq!(
        (&listed.ctag, &listed.sync_token),
        (&before.ctag, &before.sync_token)
    );

    dav.put(
        &event_url(1),
        &sync_event(1, "Event 1 changed"),
        Precondition::Matches(&etags[0]),
    )
    .expect("the update works");
    dav.delete(&event_url(2), &etags[1])
        .expect("the delete works");
    dav.put(
        &event_url(4),
        &sync_event(4, "Event 4"),
        Precondition::Absent,
    )
    .expect("the create works");

    let after = dav.calendar_at(&calendar).unwrap().unwrap();
    assert!(
        after.ctag.is_some() && after.ctag != Some(old_ctag.clone()),
        "{after:?}"
    );
    assert!(
        after.sync_token.is_some() && after.sync_token != Some(old_token.clone()),
        "{after:?}"
    );

    // What a PROPFIND of the members and a multiget say now.
    let stored: std::collections::BTreeMap<String, String> = env
        .user
        .list_objects(&href)
        .expect("PROPFIND works")
        .into_iter()
        .map(|(href, etag)| (last_name(&href), etag))
        .collect();
    assert_eq!(stored.len(), 3, "{stored:?}");

    env.proxy.reset();
    let SyncOutcome::Changes {
        changed,
        removed,
        token: new_token,
    } = dav
        .sync_collection(&calendar, &old_token)
        .expect("REPORT works")
    else {
        panic!("{server:?} answers from its own token");
    };
    assert_eq!(env.proxy.count("REPORT"), 1, "one round");
    assert_eq!(
        names_with_etags(&changed),
        ["plane-issue-1.ics", "plane-issue-4.ics"]
            .map(|name| (name.to_string(), Some(stored[name].clone())))
    );
    assert_eq!(
        removed.iter().map(|h| last_name(h)).collect::<Vec<_>>(),
        ["plane-issue-2.ics"]
    );
    assert_eq!(Some(&new_token), after.sync_token.as_ref());
    for href in changed.iter().map(|(h, _)| h).chain(&removed) {
        let url = calplanebot::caldav::resolve(&calendar, href);
        assert!(is_member_of(&calendar, &url), "{url}");
    }
    let hrefs: Vec<String> = changed.iter().map(|(h, _)| h.clone()).collect();
    let fetched = dav.multiget(&calendar, &hrefs).expect("multiget works");
    let mut fetched: Vec<(String, Option<String>)> = fetched
        .into_iter()
        .map(|event| (last_name(&event.url), event.etag))
        .collect();
    fetched.sort();
    assert_eq!(fetched, names_with_etags(&changed), "the multiget agrees");

    // Nothing changed since the new token.
    match dav.sync_collection(&calendar, &new_token).unwrap() {
        SyncOutcome::Changes {
            changed, removed, ..
        } => assert!(
            changed.is_empty() && removed.is_empty(),
            "{changed:?} {removed:?}"
        ),
        other => panic!("{other:?}"),
    }

    // An initial sync lists every member. QUIRK: Radicale lists the deleted one as a 404 too
    // (RFC 6578 §3.4 forbids it); `sync_collection` drops it.
    let SyncOutcome::Changes {
        changed, removed, ..
    } = dav.sync_collection(&calendar, "").unwrap()
    else {
        panic!("an initial sync works");
    };
    assert!(removed.is_empty(), "{removed:?}");
    let all: Vec<(String, Option<String>)> = stored
        .iter()
        .map(|(name, etag)| (name.clone(), Some(etag.clone())))
        .collect();
    assert_eq!(names_with_etags(&changed), all);

    // A token the server never issued: Radicale 403, Xandikos 412 (fixtures README).
    env.proxy.reset();
    let made_up = "http://example.com/made-up/42";
    let SyncOutcome::Unavailable(why) = dav.sync_collection(&calendar, made_up).unwrap() else {
        panic!("{server:?} cannot answer from a made-up token");
    };
    let status = match server {
        ServerKind::Radicale => 403,
        ServerKind::Xandikos => 412,
    };
    assert_eq!(
        why,
        format!("the server does not know the sync-token (HTTP {status}, DAV:valid-sync-token)")
    );
    assert_eq!(env.proxy.requests().last().map(|r| r.status), Some(status));

    // A truncated answer (RFC 6578 §3.6), made up by the proxy for the first round (asked
    // from a token of its own): a 507 for the calendar, event 3 changed, event 4 removed, and
    // the old token to go on from. The second round is the server's own answer from that
    // token, and has the last word.
    let truncated = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><d:multistatus xmlns:d="DAV:"><d:response><d:href>{href}</d:href><d:status>HTTP/1.1 507 Insufficient Storage</d:status></d:response><d:response><d:href>{href}plane-issue-3.ics</d:href><d:propstat><d:prop><d:getetag>"page-1"</d:getetag></d:prop><d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response><d:response><d:href>{href}plane-issue-4.ics</d:href><d:status>HTTP/1.1 404 Not Found</d:status></d:response><d:sync-token>{}</d:sync-token></d:multistatus>"#,
        old_token.replace('&', "&amp;").replace('<', "&lt;")
    );
    env.proxy.inject(
        FaultRule::new(ProxyFault::Answer {
            status: 207,
            content_type: "application/xml; charset=utf-8".into(),
            body: truncated.into_bytes(),
        })
        .method("REPORT")
        .body_contains("sync-collection"),
    );
    env.proxy.reset();
    let SyncOutcome::Changes {
        changed,
        removed,
        token,
    } = dav.sync_collection(&calendar, "proxy-token").unwrap()
    else {
        panic!("a truncated answer is continued");
    };
    assert_eq!(env.proxy.count("REPORT"), 2, "two rounds");
    assert_eq!(
        names_with_etags(&changed),
        [
            (
                "plane-issue-1.ics".to_string(),
                Some(stored["plane-issue-1.ics"].clone())
            ),
            (
                "plane-issue-3.ics".to_string(),
                Some("\"page-1\"".to_string())
            ),
            // Removed in the first round, re-added by the second.
            (
                "plane-issue-4.ics".to_string(),
                Some(stored["plane-issue-4.ics"].clone())
            ),
        ]
    );
    assert_eq!(
        removed.iter().map(|h| last_name(h)).collect::<Vec<_>>(),
        ["plane-issue-2.ics"]
    );
    assert_eq!(token, new_token);

    // A server without sync-collection (SabreDAV 1.8): 403 to those REPORTs only.
    env.proxy.inject(
        FaultRule::new(ProxyFault::Status(403))
            .method("REPORT")
            .body_contains("sync-collection")
            .always(),
    );
    let SyncOutcome::Unavailable(why) = dav.sync_collection(&calendar, &new_token).unwrap() else {
        panic!("a refused sync-collection is Unavailable");
    };
    assert_eq!(
        why,
        "the server answered the sync-collection REPORT with HTTP 403"
    );
    // The multiget, a REPORT too, still goes through.
    assert_eq!(dav.multiget(&calendar, &hrefs).unwrap().len(), 2);
}
