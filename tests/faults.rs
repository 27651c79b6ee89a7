//! Fault injection, end to end: the real binary against the Plane simulator and a real Radicale
//! behind the counting proxy, with Plane and CalDAV failing in every way a five-minute job meets
//! over years — errors, rate limits, hangs, dropped and truncated answers, unreadable and huge
//! listings, concurrent edits, UID conflicts, mass deletions, overlapping runs, SIGKILL, plain
//! HTTP and hostile data. Each case checks the exit status and what the calendars hold
//! afterwards: nothing lost, nothing duplicated, and a clean run converging on what Plane says.
//!
//! Runs use `--retry-delay 0.05` and short `--timeout`s so the suite stays fast. Calendars are
//! read back with the test's own "calendar user", never with calplanebot's parser.

#[macro_use]
mod support;

use std::collections::BTreeMap;
use std::fs::{File, TryLockError};
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use calplanebot_testbed::plane_sim::{Fault, FaultRule, SeedIssue};
use calplanebot_testbed::proxy::{self, ProxyFault};
use serde_json::{Value, json};
use support::{Env, Run, ServerKind, finish, prop, props, with_alarm};

// ---------------------------------------------------------------------------------------------
// The world, the runs, and what a correct calendar holds.
// ---------------------------------------------------------------------------------------------

/// Two projects, six dated issues and an undated one.
fn seed() -> Value {
    json!({
        "workspace": "acme",
        "projects": [{"identifier": "WEB", "name": "Website"}, {"identifier": "OPS", "name": "Operations"}],
        "issues": [
            {"project": "WEB", "name": "Launch", "target_date": "2026-12-01"},
            {"project": "WEB", "name": "Docs", "target_date": "2026-12-02"},
            {"project": "WEB", "name": "Beta", "target_date": "2026-12-03", "priority": "high"},
            {"project": "WEB", "name": "Polish", "target_date": "2026-12-04"},
            {"project": "WEB", "name": "Someday"},
            {"project": "OPS", "name": "Rotate keys", "target_date": "2026-12-05"},
            {"project": "OPS", "name": "Backup check", "target_date": "2026-12-06"}
        ]
    })
}

/// A seed whose project `identifier` has `dated` issues `Task 0…` (all due 2027-01-15) and
/// `undated` issues without a date (which only make the list longer), besides `seed()`'s.
fn seed_with(identifier: &str, dated: usize, undated: usize) -> Value {
    let mut seed = seed();
    let issues = seed["issues"].as_array_mut().unwrap();
    for n in 0..dated {
        issues.push(json!({"project": identifier, "name": format!("Task {n}"), "target_date": "2027-01-15"}));
    }
    for n in 0..undated {
        issues.push(json!({"project": identifier, "name": format!("Undated {n}")}));
    }
    seed
}

const PROJECTS: [&str; 2] = ["WEB", "OPS"];

/// Network settings every run gets unless the test names its own.
const FAST: [(&str, &str); 3] = [
    ("--retry-delay", "0.05"),
    ("--timeout", "5"),
    ("--connect-timeout", "2"),
];

/// `sync ARGS`, with [`FAST`] settings the args do not override.
fn sync_args<'a>(args: &[&'a str]) -> Vec<&'a str> {
    let mut all = vec!["sync"];
    for (flag, value) in FAST {
        if !args.contains(&flag) {
            all.extend([flag, value]);
        }
    }
    all.extend_from_slice(args);
    all
}

fn sync(env: &Env, args: &[&str]) -> Run {
    env.run_with(&sync_args(args), &[])
}

/// Starts `sync ARGS` without waiting for it.
fn spawn_sync(env: &Env, args: &[&str]) -> Child {
    env.command(&sync_args(args), &[])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

/// Plane moves on between runs: in WEB one issue is deleted and one renamed and re-dated; in
/// OPS one is added and one renamed. A run applies one create, two updates, one delete.
fn plane_moves_on(env: &Env) {
    let (launch, docs, backup) = (
        env.issue_id("Launch"),
        env.issue_id("Docs"),
        env.issue_id("Backup check"),
    );
    env.sim.with_world(|w| {
        w.delete_issue(&launch);
        let docs = w.issue_mut(&docs);
        docs.name = "Docs v2".into();
        docs.target_date = Some("2026-12-12".into());
        w.issue_mut(&backup).name = "Backup check (weekly)".into();
        let ops = w.project("OPS").unwrap().id.clone();
        w.add_issue(SeedIssue::new(ops, "New in ops").due("2026-12-24"));
    });
}

/// What the test reads of one stored event.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Shown {
    uid: String,
    summary: String,
    dtstart: String,
}

/// href → event.
type Events = BTreeMap<String, Shown>;

/// The events Plane says project `identifier`'s calendar must hold: one per listable dated
/// issue, at calplanebot's resource name.
fn desired(env: &Env, identifier: &str) -> Events {
    let calendar = env.calendar_href(identifier);
    env.sim.with_world(|w| {
        let project = w.project(identifier).unwrap().id.clone();
        w.issues
            .iter()
            .filter(|i| i.project == project && w.is_listable(i))
            .filter_map(|i| {
                let date = i.target_date.as_ref()?;
                Some((
                    format!("{calendar}plane-issue-{}.ics", i.id),
                    Shown {
                        uid: format!("plane-issue-{}@calplanebot", i.id),
                        summary: format!("[{}] {}", i.sequence_id, i.name),
                        dtstart: date.replace('-', ""),
                    },
                ))
            })
            .collect()
    })
}

/// Every object in project `identifier`'s calendar (foreign ones included), read back from
/// Radicale; empty when the calendar does not exist.
fn stored(env: &Env, identifier: &str) -> Events {
    stored_raw(env, identifier)
        .into_iter()
        .map(|(href, (_, ics))| {
            let dtstart = props(&ics, "DTSTART")
                .first()
                .map(|(_, v)| v.clone())
                .unwrap_or_default();
            let shown = Shown {
                uid: prop(&ics, "UID").unwrap_or_default(),
                summary: prop(&ics, "SUMMARY").unwrap_or_default(),
                dtstart,
            };
            (href, shown)
        })
        .collect()
}

/// href → (etag, body) of every object in the calendar: for "byte for byte unchanged".
fn stored_raw(env: &Env, identifier: &str) -> BTreeMap<String, (String, String)> {
    let calendar = env.calendar_href(identifier);
    let calendars = env.user.list_calendars(&env.home()).unwrap();
    if !calendars.iter().any(|(href, _)| *href == calendar) {
        return BTreeMap::new();
    }
    env.user
        .list_objects(&calendar)
        .unwrap()
        .into_iter()
        .map(|(href, _)| {
            let stored = env.user.get(&href).unwrap().expect("a listed object");
            (href, stored)
        })
        .collect()
}

/// Every event stored `before` is still there, unless Plane no longer wants it.
fn assert_nothing_lost(env: &Env, before: &[Events]) {
    for (identifier, before) in PROJECTS.iter().zip(before) {
        let (now, wanted) = (stored(env, identifier), desired(env, identifier));
        for href in before.keys() {
            assert!(
                now.contains_key(href) || !wanted.contains_key(href),
                "{href} lost"
            );
        }
    }
}

fn assert_calendar_matches_plane(env: &Env, identifier: &str) {
    assert_eq!(
        stored(env, identifier),
        desired(env, identifier),
        "calendar of {identifier} (left: stored, right: Plane)"
    );
}

/// Every calendar holds exactly what Plane says, and a dry run finds nothing to do.
fn assert_converged(env: &Env) {
    for identifier in PROJECTS {
        assert_calendar_matches_plane(env, identifier);
    }
    let dry = sync(env, &["--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(
        dry.stdout
            .contains("dry run: would create 0, update 0, delete 0"),
        "{}",
        dry.stdout
    );
}

/// A run without faults succeeds, then everything has converged.
fn clean_run_converges(env: &Env) {
    env.sim.clear_faults();
    env.proxy.clear_faults();
    let run = sync(env, &[]);
    assert_eq!(run.code, 0, "clean run: {}", run.stderr);
    assert_converged(env);
}

/// A started environment whose calendars already hold what Plane says.
fn synced(server: ServerKind, seed: Value) -> Env {
    first_sync(Env::start(server, seed))
}

/// [`synced`] against a Plane that lists at most 100 items a page (as Plane Cloud may): a list
/// of more than 100 spans pages. The first sync learned it (one refused request) and the cache
/// remembers it, so every later run asks for pages of 100 from its first request.
fn synced_in_pages_of_100(server: ServerKind, seed: Value) -> Env {
    let env = Env::start(server, seed);
    env.sim.set_max_per_page(100);
    first_sync(env)
}

fn first_sync(env: Env) -> Env {
    let run = sync(&env, &[]);
    assert_eq!(run.code, 0, "first sync: {}", run.stderr);
    assert_converged(&env);
    env.proxy.reset();
    env.sim.reset_requests();
    env
}

fn work_items_path(env: &Env, identifier: &str) -> String {
    format!("/projects/{}/work-items/", env.project_id(identifier))
}

/// Plane requests (any status) for one project's work-item list.
fn page_requests(env: &Env, identifier: &str) -> Vec<(String, u16)> {
    let path = work_items_path(env, identifier);
    env.sim
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with(&path))
        .map(|r| (r.query, r.status))
        .collect()
}

/// [`page_requests`] of the full reads only (with `expand`): with the Plane snapshot on, a run
/// first probes each project (no `expand`), and reads in full only a project that changed (or
/// whose probe failed).
fn full_read_requests(env: &Env, identifier: &str) -> Vec<(String, u16)> {
    page_requests(env, identifier)
        .into_iter()
        .filter(|(query, _)| query.contains("expand="))
        .collect()
}

/// The proxied requests for one path: (method, status).
fn requests_to(env: &Env, path: &str) -> Vec<(String, u16)> {
    env.proxy
        .requests()
        .into_iter()
        .filter(|r| r.path == path)
        .map(|r| (r.method, r.status))
        .collect()
}

fn lines_starting_with<'a>(text: &'a str, start: &str) -> Vec<&'a str> {
    text.lines().filter(|l| l.starts_with(start)).collect()
}

/// Waits (polling) until `done` holds; panics after a minute so a broken case cannot hang.
fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting until {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

// ---------------------------------------------------------------------------------------------
// Case 1–5: Plane fails.
// ---------------------------------------------------------------------------------------------

on_both_servers!(plane_500_once_on_the_projects_list_is_retried);
/// Case 1: a 500 on the projects list is retried and the run completes.
fn plane_500_once_on_the_projects_list_is_retried(server: ServerKind) {
    let env = Env::start(server, seed());
    env.sim
        .inject_fault(FaultRule::new("/workspaces/acme/projects/", Fault::server_error()).times(1));
    let run = sync(&env, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let first: Vec<(String, u16)> = env
        .sim
        .requests()
        .into_iter()
        .take(2)
        .map(|r| (r.path, r.status))
        .collect();
    let projects = "/api/v1/workspaces/acme/projects/".to_string();
    assert_eq!(first, [(projects.clone(), 500), (projects, 200)]);
    assert_converged(&env);
}

on_both_servers!(plane_500_on_every_attempt_at_a_second_page_deletes_nothing_in_that_project);
/// Case 2: every attempt at one project's second page fails: that project deletes nothing (its
/// creates and updates still happen), the other syncs, exit 1; the page was tried retries+1
/// times.
fn plane_500_on_every_attempt_at_a_second_page_deletes_nothing_in_that_project(server: ServerKind) {
    // 100 undated issues make WEB's list two pages of 100 long without making events.
    let env = synced_in_pages_of_100(server, seed_with("WEB", 0, 100));
    let launch = env.event_href("WEB", "Launch");
    plane_moves_on(&env);
    env.sim.inject_fault(
        FaultRule::new(&work_items_path(&env, "WEB"), Fault::server_error())
            .query_contains("cursor=")
            .times(1000),
    );
    let run = sync(&env, &["--retries", "2"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("HTTP 500"), "{}", run.stderr);
    assert!(run.stderr.contains("Website"), "{}", run.stderr);
    // (With the Plane snapshot on, WEB's probe failed the same way first.)
    let second_pages: Vec<u16> = full_read_requests(&env, "WEB")
        .into_iter()
        .filter(|(query, _)| query.contains("cursor="))
        .map(|(_, status)| status)
        .collect();
    assert_eq!(second_pages, [500, 500, 500], "retries + 1 attempts");
    // Nothing deleted in WEB, its update applied; OPS synced completely.
    assert!(
        env.user.get(&launch).unwrap().is_some(),
        "Launch was deleted"
    );
    let docs = env.event("WEB", "Docs v2").expect("Docs' event").1;
    assert!(
        prop(&docs, "SUMMARY").unwrap().ends_with("] Docs v2"),
        "{docs}"
    );
    assert_calendar_matches_plane(&env, "OPS");
    clean_run_converges(&env);
    assert!(env.user.get(&launch).unwrap().is_none());
}

on_both_servers!(plane_429_with_retry_after_on_a_page_is_waited_out);
/// Case 3: a 429 with `Retry-After: 1` on a work-item page is waited out.
fn plane_429_with_retry_after_on_a_page_is_waited_out(server: ServerKind) {
    let env = synced(server, seed());
    plane_moves_on(&env);
    // On OPS's full read (a probe comes first when the Plane snapshot is on).
    env.sim.inject_fault(
        FaultRule::new(
            &work_items_path(&env, "OPS"),
            Fault::RateLimited {
                retry_after: Some(1),
            },
        )
        .query_contains("expand="),
    );
    let run = sync(&env, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let statuses: Vec<u16> = full_read_requests(&env, "OPS")
        .iter()
        .map(|r| r.1)
        .collect();
    assert_eq!(statuses, [429, 200]);
    // It waited Plane's second, not its own 0.05 s back-off.
    assert!(
        run.stderr.contains("HTTP 429; retrying in 1.0 s"),
        "{}",
        run.stderr
    );
    assert_converged(&env);
}

/// The documented bound of a hung server: (retries + 1) × (timeout + largest back-off), plus
/// generous slack for process start and a loaded machine.
fn hang_bound(retries: u32, timeout: f64, retry_delay: f64) -> Duration {
    let largest_backoff = retry_delay * f64::from(1u32 << retries);
    Duration::from_secs_f64(f64::from(retries + 1) * (timeout + largest_backoff) + 10.0)
}

on_both_servers!(plane_hang_once_is_retried);
/// Case 4a: Plane hangs once (longer than `--timeout`): retried, exit 0.
fn plane_hang_once_is_retried(server: ServerKind) {
    let env = synced(server, seed());
    plane_moves_on(&env);
    env.sim.inject_fault(FaultRule::new(
        "/workspaces/acme/projects/",
        Fault::Hang(Duration::from_secs(4)),
    ));
    let run = sync(&env, &["--timeout", "1"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_converged(&env);
}

on_both_servers!(plane_hang_on_every_attempt_at_the_projects_list_exits_5_in_bounded_time);
/// Case 4b: the projects list hangs on every attempt: exit 5 within the bound, nothing changed.
fn plane_hang_on_every_attempt_at_the_projects_list_exits_5_in_bounded_time(server: ServerKind) {
    let env = synced(server, seed());
    let before: Vec<_> = PROJECTS.iter().map(|p| stored_raw(&env, p)).collect();
    plane_moves_on(&env);
    env.sim.inject_fault(
        FaultRule::new(
            "/workspaces/acme/projects/",
            Fault::Hang(Duration::from_secs(120)),
        )
        .times(1000),
    );
    let started = Instant::now();
    let run = sync(&env, &["--timeout", "1", "--retries", "2"]);
    let took = started.elapsed();
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(took < hang_bound(2, 1.0, 0.05), "took {took:?}");
    assert!(run.stderr.contains("cannot reach Plane"), "{}", run.stderr);
    assert_eq!(env.proxy.requests(), [], "CalDAV untouched");
    let after: Vec<_> = PROJECTS.iter().map(|p| stored_raw(&env, p)).collect();
    assert_eq!(after, before);
    clean_run_converges(&env);
}

on_both_servers!(plane_hang_on_every_attempt_at_one_projects_page_exits_1_in_bounded_time);
/// Case 4c: one project's page hangs on every attempt: exit 1 within the bound, nothing deleted
/// there; a clean run converges.
fn plane_hang_on_every_attempt_at_one_projects_page_exits_1_in_bounded_time(server: ServerKind) {
    let env = synced(server, seed());
    let launch = env.event_href("WEB", "Launch");
    plane_moves_on(&env);
    env.sim.inject_fault(
        FaultRule::new(
            &work_items_path(&env, "WEB"),
            Fault::Hang(Duration::from_secs(120)),
        )
        .times(1000),
    );
    let started = Instant::now();
    let run = sync(&env, &["--timeout", "1", "--retries", "2"]);
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(took < hang_bound(2, 1.0, 0.05), "took {took:?}");
    assert!(run.stderr.contains("Website"), "{}", run.stderr);
    assert!(
        env.user.get(&launch).unwrap().is_some(),
        "Launch was deleted"
    );
    clean_run_converges(&env);
}

on_both_servers!(plane_truncated_body_once_is_retried);
/// Case 5a: a body cut short (connection closed mid-body) is retried.
fn plane_truncated_body_once_is_retried(server: ServerKind) {
    let env = synced(server, seed());
    plane_moves_on(&env);
    env.sim.inject_fault(
        FaultRule::new(&work_items_path(&env, "WEB"), Fault::TruncatedBody)
            .query_contains("expand="),
    );
    let run = sync(&env, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(full_read_requests(&env, "WEB").len(), 2, "one retry");
    assert_converged(&env);
}

on_both_servers!(plane_invalid_json_on_one_page_fails_that_project_only);
/// Case 5b: a complete answer that is not JSON fails that project (not retried: asking again
/// would not help), nothing is deleted there, the other project syncs.
fn plane_invalid_json_on_one_page_fails_that_project_only(server: ServerKind) {
    let env = synced(server, seed());
    let launch = env.event_href("WEB", "Launch");
    plane_moves_on(&env);
    env.sim.inject_fault(
        FaultRule::new(&work_items_path(&env, "WEB"), Fault::InvalidJson).times(1000),
    );
    let run = sync(&env, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("Website"), "{}", run.stderr);
    // Not retried (with the Plane snapshot on, neither was WEB's probe, which failed alike).
    assert_eq!(full_read_requests(&env, "WEB").len(), 1, "not retried");
    assert!(
        env.user.get(&launch).unwrap().is_some(),
        "Launch was deleted"
    );
    assert_calendar_matches_plane(&env, "OPS");
    clean_run_converges(&env);
}

// ---------------------------------------------------------------------------------------------
// Case 6–8: CalDAV fails.
// ---------------------------------------------------------------------------------------------

on_both_servers!(caldav_503_once_on_a_put_is_retried);
/// Case 6a: a 503 on one PUT is retried.
fn caldav_503_once_on_a_put_is_retried(server: ServerKind) {
    let env = synced(server, seed());
    plane_moves_on(&env);
    env.proxy
        .inject(proxy::FaultRule::new(ProxyFault::Status(503)).method("PUT"));
    let run = sync(&env, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let puts: Vec<(u16, bool)> = env
        .proxy
        .requests()
        .iter()
        .filter(|r| r.method == "PUT")
        .map(|r| (r.status, r.injected))
        .collect();
    // Three writes planned (two updates, one create), the first one twice.
    assert_eq!(puts.len(), 4, "{puts:?}");
    assert_eq!(puts[0], (503, true));
    assert!(
        puts[1..].iter().all(|(s, i)| (200..300).contains(s) && !i),
        "{puts:?}"
    );
    assert_converged(&env);
}

on_both_servers!(caldav_dropped_connection_on_every_put_exits_1_and_the_next_run_converges);
/// Case 6b: every PUT loses its connection: the run gives up on the server after the writes in
/// flight used their attempts (the other writes are reported, not attempted), exits 1, loses
/// nothing; a clean run converges.
fn caldav_dropped_connection_on_every_put_exits_1_and_the_next_run_converges(server: ServerKind) {
    let env = synced(server, seed());
    let before: Vec<Events> = PROJECTS.iter().map(|p| stored(&env, p)).collect();
    plane_moves_on(&env);
    env.proxy.inject(
        proxy::FaultRule::new(ProxyFault::DropConnection)
            .method("PUT")
            .always(),
    );
    let run = sync(&env, &["--retries", "2"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    // One write per calendar may be in flight (two calendars here) when the run gives up:
    // each makes retries + 1 attempts, and no further write starts.
    let puts = env.proxy.received("PUT");
    assert!((3..=2 * 3).contains(&puts), "{puts} PUTs");
    // Four writes planned (two updates, a create, a delete): each one done or reported.
    let failed = lines_starting_with(&run.stdout, "! failed to");
    assert_eq!(
        failed.len() + env.proxy.count("DELETE"),
        4,
        "every write reported: {}",
        run.stdout
    );
    assert_nothing_lost(&env, &before);
    clean_run_converges(&env);
}

on_both_servers!(caldav_server_down_before_the_run_exits_5_and_loses_nothing);
/// Case 7a: the CalDAV server is down before the run: exit 5, and once it is back, every calendar is
/// exactly as before.
fn caldav_server_down_before_the_run_exits_5_and_loses_nothing(server: ServerKind) {
    let mut env = synced(server, seed());
    let before: Vec<_> = PROJECTS.iter().map(|p| stored_raw(&env, p)).collect();
    plane_moves_on(&env);
    env.server.stop();
    // Through the proxy (which answers 502, as a reverse proxy in front of a dead server does)…
    let run = sync(&env, &["--retries", "1"]);
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(run.stderr.contains("nothing was changed"), "{}", run.stderr);
    // …and directly (connection refused).
    let direct = format!("{}/", env.server.url());
    let run = env.run_with(
        &sync_args(&["--retries", "1"]),
        &[("CALDAV_URL", direct.as_str())],
    );
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot reach the CalDAV server"),
        "{}",
        run.stderr
    );
    env.server.restart().expect("the CalDAV server restarts");
    let after: Vec<_> = PROJECTS.iter().map(|p| stored_raw(&env, p)).collect();
    assert_eq!(after, before);
    clean_run_converges(&env);
}

on_both_servers!(caldav_hang_on_every_put_after_the_listing_exits_1_and_the_next_run_converges);
/// Case 7b: the server stops answering after the listing (every PUT hangs past the timeout):
/// exit 1, the attempts of the writes in flight (one per calendar) and no more; a clean run converges.
fn caldav_hang_on_every_put_after_the_listing_exits_1_and_the_next_run_converges(
    server: ServerKind,
) {
    let env = synced(server, seed());
    let before: Vec<Events> = PROJECTS.iter().map(|p| stored(&env, p)).collect();
    plane_moves_on(&env);
    env.proxy.inject(
        proxy::FaultRule::new(ProxyFault::Hang(Duration::from_secs(10)))
            .method("PUT")
            .always(),
    );
    let started = Instant::now();
    let run = sync(&env, &["--timeout", "1", "--retries", "1"]);
    let took = started.elapsed();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let puts = env.proxy.received("PUT");
    assert!(
        (2..=2 * 2).contains(&puts),
        "one write per calendar in flight, retries + 1 times each: {puts}"
    );
    assert!(took < hang_bound(1, 1.0, 0.05), "took {took:?}");
    assert!(
        lines_starting_with(&run.stdout, "! failed to").len() >= 3,
        "the writes not attempted are reported: {}",
        run.stdout
    );
    assert_nothing_lost(&env, &before);
    clean_run_converges(&env);
}

on_both_servers!(caldav_server_stopping_during_a_write_exits_1_and_the_next_run_converges);
/// Case 7c: the CalDAV server really stops while a write is in flight (held by the proxy): exit 1;
/// after a restart a clean run converges and nothing is lost.
fn caldav_server_stopping_during_a_write_exits_1_and_the_next_run_converges(server: ServerKind) {
    let mut env = synced(server, seed());
    let before: Vec<Events> = PROJECTS.iter().map(|p| stored(&env, p)).collect();
    plane_moves_on(&env);
    env.proxy
        .inject(proxy::FaultRule::new(ProxyFault::Delay(Duration::from_secs(2))).method("PUT"));
    let child = spawn_sync(&env, &["--retries", "1"]);
    wait_until("the first PUT is in flight", || {
        env.proxy.received("PUT") > 0
    });
    env.server.stop();
    let run = finish(child, "the server stops meanwhile");
    assert_eq!(run.code, 1, "{}", run.stderr);
    env.server.restart().expect("the CalDAV server restarts");
    assert_nothing_lost(&env, &before);
    clean_run_converges(&env);
}

/// Case 8: a broken listing of WEB's calendar fails that calendar only (exit 1, nothing
/// deleted there, the error names it); OPS syncs; a clean run converges. The run lists every
/// calendar in full (`--full-listing-every 0`): the full listing is what is under test (a
/// broken change report: [`caldav_change_report_that_is_not_xml_fails_that_calendar`]).
fn broken_listing(server: ServerKind, rule: impl FnOnce(&Env) -> proxy::FaultRule) {
    let env = synced(server, seed());
    let launch = env.event_href("WEB", "Launch");
    plane_moves_on(&env);
    env.proxy.inject(rule(&env));
    let run = sync(&env, &["--full-listing-every", "0"]);
    web_failed_alone(&env, &run, &launch);
}

/// Case 8's outcome: exit 1 naming WEB's calendar, WEB's `launch` event kept, OPS in sync, and
/// a clean run converges.
fn web_failed_alone(env: &Env, run: &Run, launch: &str) {
    assert_eq!(run.code, 1, "{}", run.stderr);
    let calendar = env.calendar_href("WEB");
    assert!(
        run.stderr.contains(&calendar),
        "names {calendar}: {}",
        run.stderr
    );
    assert!(
        env.user.get(launch).unwrap().is_some(),
        "Launch was deleted"
    );
    assert_calendar_matches_plane(env, "OPS");
    clean_run_converges(env);
}

fn web_listing(env: &Env, method: &str, fault: ProxyFault) -> proxy::FaultRule {
    proxy::FaultRule::new(fault)
        .method(method)
        .path_prefix(&env.calendar_href("WEB"))
        .always()
}

fn xml_answer(body: &str) -> ProxyFault {
    ProxyFault::ReplaceBody {
        status: 207,
        content_type: "application/xml; charset=utf-8".into(),
        body: body.as_bytes().to_vec(),
    }
}

on_both_servers!(caldav_listing_that_is_not_xml_fails_that_calendar);
/// Case 8, not XML at all.
fn caldav_listing_that_is_not_xml_fails_that_calendar(server: ServerKind) {
    broken_listing(server, |env| {
        web_listing(
            env,
            "PROPFIND",
            ProxyFault::ReplaceBody {
                status: 207,
                content_type: "application/json".into(),
                body: br#"{"error": "maintenance"}"#.to_vec(),
            },
        )
    });
}

on_both_servers!(caldav_listing_with_xml_cut_short_fails_that_calendar);
/// Case 8, XML cut off in the middle (the HTTP framing is complete).
fn caldav_listing_with_xml_cut_short_fails_that_calendar(server: ServerKind) {
    broken_listing(server, |env| {
        let href = env.event_href("WEB", "Beta");
        let cut = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<d:multistatus xmlns:d=\"DAV:\" \
             xmlns:c=\"urn:ietf:params:xml:ns:caldav\"><d:response><d:href>{href}</d:href>\
             <d:propstat><d:prop><d:getetag>\"1\"</d:getetag><c:calendar-data>BEGIN:VCALENDAR\n\
             VERSION:2.0\nBEGIN:VEV"
        );
        web_listing(env, "REPORT", xml_answer(&cut))
    });
}

on_both_servers!(caldav_listing_truncated_on_the_wire_fails_that_calendar);
/// Case 8, the connection closes halfway through the announced body, on every attempt.
fn caldav_listing_truncated_on_the_wire_fails_that_calendar(server: ServerKind) {
    broken_listing(server, |env| {
        web_listing(env, "REPORT", ProxyFault::TruncatedBody)
    });
}

on_both_servers!(caldav_listing_with_a_doctype_and_entities_fails_that_calendar);
/// Case 8, a DOCTYPE declaring entities (billion laughs, kept small).
fn caldav_listing_with_a_doctype_and_entities_fails_that_calendar(server: ServerKind) {
    broken_listing(server, |env| {
        let calendar = env.calendar_href("WEB");
        let body = format!(
            "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<!DOCTYPE d:multistatus [\n\
             <!ENTITY a \"aaaaaaaaaaaaaaaa\">\n<!ENTITY b \"&a;&a;&a;&a;&a;&a;&a;&a;\">\n\
             <!ENTITY c \"&b;&b;&b;&b;&b;&b;&b;&b;\">\n]>\n\
             <d:multistatus xmlns:d=\"DAV:\"><d:response><d:href>{calendar}&c;.ics</d:href>\
             <d:propstat><d:prop><d:getetag>\"&c;\"</d:getetag></d:prop>\
             <d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response></d:multistatus>\n"
        );
        web_listing(env, "PROPFIND", xml_answer(&body))
    });
}

on_both_servers!(caldav_change_report_that_is_not_xml_fails_that_calendar);
/// Case 8 with the listing snapshot: WEB changed (a user edited an event), so its change report
/// is read, and the server answers it with something that is not XML. That calendar fails
/// (exit 1, nothing deleted there, the error names it); OPS syncs; a clean run converges.
fn caldav_change_report_that_is_not_xml_fails_that_calendar(server: ServerKind) {
    let env = synced(server, seed());
    let launch = env.event_href("WEB", "Launch");
    let (_, ics) = env.user.get(&launch).unwrap().unwrap();
    assert!(matches!(
        env.user.put(&launch, &with_alarm(&ics)).unwrap(),
        200..=299
    ));
    plane_moves_on(&env);
    env.proxy.inject(
        web_listing(
            &env,
            "REPORT",
            ProxyFault::ReplaceBody {
                status: 207,
                content_type: "application/xml".into(),
                body: b"maintenance".to_vec(),
            },
        )
        .body_contains("sync-collection"),
    );
    let run = sync(&env, &[]);
    assert!(
        env.proxy
            .requests()
            .iter()
            .any(|r| r.method == "REPORT" && r.injected),
        "the change report was asked for: {:?}",
        env.proxy.counts()
    );
    web_failed_alone(&env, &run, &launch);
}

/// Peak resident memory (`VmHWM`) of a running process, in bytes.
fn peak_rss_of(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024)
}

on_both_servers!(caldav_listing_of_100_mb_fails_that_calendar_with_bounded_memory);
/// Case 8, a 100 MB listing: refused at the cap, with the process's memory bounded.
fn caldav_listing_of_100_mb_fails_that_calendar_with_bounded_memory(server: ServerKind) {
    const HUGE: u64 = 100 * 1000 * 1000;
    let env = synced(server, seed());
    let launch = env.event_href("WEB", "Launch");
    plane_moves_on(&env);
    env.proxy.inject(web_listing(
        &env,
        "PROPFIND",
        ProxyFault::HugeBody {
            status: 207,
            bytes: HUGE,
        },
    ));
    let child = spawn_sync(&env, &["--timeout", "30", "--full-listing-every", "0"]);
    let pid = child.id();
    let peak = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (peak, done) = (Arc::clone(&peak), Arc::clone(&done));
        thread::spawn(move || {
            while !done.load(Ordering::SeqCst) {
                if let Some(rss) = peak_rss_of(pid) {
                    peak.fetch_max(rss, Ordering::SeqCst);
                }
                thread::sleep(Duration::from_millis(2));
            }
        })
    };
    let run = finish(child, "100 MB listing");
    done.store(true, Ordering::SeqCst);
    watcher.join().unwrap();
    let peak = peak.load(Ordering::SeqCst);
    eprintln!("peak RSS of the run: {peak} bytes");
    assert!(peak > 0, "VmHWM was read");
    assert!(peak < 150 * 1000 * 1000, "peak RSS {peak} bytes");
    web_failed_alone(&env, &run, &launch);
}

// ---------------------------------------------------------------------------------------------
// Case 9–10: someone else writes to the calendar.
// ---------------------------------------------------------------------------------------------

on_both_servers!(precondition_failed_on_an_update_is_re_read_and_retried_keeping_the_alarm);
/// Case 9a: a 412 on the first PUT of an update: re-read, re-planned, written once more; the
/// user's alarm survives.
fn precondition_failed_on_an_update_is_re_read_and_retried_keeping_the_alarm(server: ServerKind) {
    let env = synced(server, seed());
    let href = env.event_href("WEB", "Docs");
    let (_, ics) = env.event("WEB", "Docs").unwrap();
    assert!(matches!(
        env.user.put(&href, &with_alarm(&ics)).unwrap(),
        200..=299
    ));
    plane_moves_on(&env);
    env.proxy.inject(
        proxy::FaultRule::new(ProxyFault::Status(412))
            .method("PUT")
            .path_prefix(&href),
    );
    let run = sync(&env, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let path = requests_to(&env, &href);
    assert_eq!(path.len(), 3, "{path:?}");
    assert_eq!(path[0], ("PUT".to_string(), 412));
    assert_eq!(path[1], ("GET".to_string(), 200));
    assert!(
        path[2].0 == "PUT" && (200..300).contains(&path[2].1),
        "{path:?}"
    );
    let (_, ics) = env.user.get(&href).unwrap().unwrap();
    assert!(
        prop(&ics, "SUMMARY").unwrap().ends_with("] Docs v2"),
        "{ics}"
    );
    assert_eq!(prop(&ics, "TRIGGER").as_deref(), Some("-PT15M"), "{ics}");
    assert_converged(&env);
}

on_both_servers!(a_concurrent_user_edit_is_kept_under_the_update);
/// Case 9b: a user really adds an alarm between the listing and the write (the PUT is held by
/// the proxy meanwhile): the server answers 412 and the update lands on top of the user's
/// version.
fn a_concurrent_user_edit_is_kept_under_the_update(server: ServerKind) {
    let env = synced(server, seed());
    let href = env.event_href("WEB", "Docs");
    let docs = env.issue_id("Docs");
    env.sim
        .with_world(|w| w.issue_mut(&docs).name = "Docs v2".into());
    env.proxy.inject(
        proxy::FaultRule::new(ProxyFault::Delay(Duration::from_millis(1500)))
            .method("PUT")
            .path_prefix(&href),
    );
    let child = spawn_sync(&env, &["--timeout", "10"]);
    wait_until("the update's PUT is in flight", || {
        env.proxy.received("PUT") > 0
    });
    let (_, ics) = env.user.get(&href).unwrap().unwrap();
    assert!(matches!(
        env.user.put(&href, &with_alarm(&ics)).unwrap(),
        200..=299
    ));
    let run = finish(child, "user edits meanwhile");
    assert_eq!(run.code, 0, "{}", run.stderr);
    let path = requests_to(&env, &href);
    assert_eq!(path.first(), Some(&("PUT".to_string(), 412)), "{path:?}");
    let (_, ics) = env.user.get(&href).unwrap().unwrap();
    assert!(
        prop(&ics, "SUMMARY").unwrap().ends_with("] Docs v2"),
        "{ics}"
    );
    assert_eq!(prop(&ics, "TRIGGER").as_deref(), Some("-PT15M"), "{ics}");
    assert_converged(&env);
}

/// A calendar app moved Docs' event to `moved.ics` (optionally rewriting it first): our
/// resource name is gone, the UID lives on there. Returns moved.ics's href.
fn user_moves_docs(env: &Env, rewrite: impl Fn(&str) -> String) -> String {
    let href = env.event_href("WEB", "Docs");
    let moved = format!("{}moved.ics", env.calendar_href("WEB"));
    let (_, ics) = env.user.get(&href).unwrap().unwrap();
    assert!(matches!(env.user.delete(&href).unwrap(), 200..=299));
    assert!(matches!(
        env.user.put(&moved, &rewrite(&ics)).unwrap(),
        200..=299
    ));
    moved
}

/// Docs' UID.
fn docs_uid(env: &Env) -> String {
    format!("plane-issue-{}@calplanebot", env.issue_id("Docs"))
}

/// The objects in WEB's calendar whose UID is `uid`.
fn holders_of(env: &Env, uid: &str) -> Vec<String> {
    stored(env, "WEB")
        .into_iter()
        .filter(|(_, shown)| shown.uid == uid)
        .map(|(href, _)| href)
        .collect()
}

on_both_servers!(uid_conflict_with_our_own_moved_event_updates_it_in_place);
/// Case 10a: our UID, with our marks, under another name: updated in place there, exactly one
/// object with that UID; the next run changes nothing and does not loop.
fn uid_conflict_with_our_own_moved_event_updates_it_in_place(server: ServerKind) {
    let env = synced(server, seed());
    let moved = user_moves_docs(&env, str::to_string);
    let uid = docs_uid(&env);
    let docs = env.issue_id("Docs");
    env.sim
        .with_world(|w| w.issue_mut(&docs).name = "Docs v2".into());
    let own = env.event_href("WEB", "Docs v2");
    // The server cannot answer the question "which events carry calplanebot's UIDs" this time
    // (the listing's first REPORT to WEB's calendar): the run goes on without it, plans a
    // create at our name, meets the UID there and updates the holder in place.
    env.proxy.inject(
        proxy::FaultRule::new(ProxyFault::Status(403))
            .method("REPORT")
            .body_contains("calendar-query")
            .path_prefix(&env.calendar_href("WEB")),
    );
    let run = sync(&env, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("carry calplanebot's UIDs"),
        "{}",
        run.stderr
    );
    assert_eq!(holders_of(&env, &uid), std::slice::from_ref(&moved));
    let (_, ics) = env.user.get(&moved).unwrap().unwrap();
    assert!(
        prop(&ics, "SUMMARY").unwrap().ends_with("] Docs v2"),
        "{ics}"
    );
    // The calendar is Plane's view, with Docs' event living at moved.ics.
    let mut expected = desired(&env, "WEB");
    let docs_event = expected.remove(&own).unwrap();
    expected.insert(moved.clone(), docs_event);
    assert_eq!(stored(&env, "WEB"), expected);
    let puts: Vec<(String, u16)> = env
        .proxy
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .map(|r| (r.path, r.status))
        .collect();
    assert_eq!(puts.len(), 2, "{puts:?}");
    // QUIRK: no-uid-conflict is 409 on Radicale, 412 on Xandikos.
    let conflict = match server {
        ServerKind::Radicale => 409,
        ServerKind::Xandikos => 412,
    };
    assert_eq!(puts[0], (own.clone(), conflict), "no-uid-conflict");
    assert!(
        puts[1].0 == moved && (200..300).contains(&puts[1].1),
        "{puts:?}"
    );

    // Issue 12, point 3: with the server answering, the listing finds the event by its UID.
    // A change goes straight to moved.ics, no create is tried at our name.
    env.sim
        .with_world(|w| w.issue_mut(&docs).name = "Docs v3".into());
    env.proxy.reset();
    let run = sync(&env, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let puts: Vec<(String, u16)> = env
        .proxy
        .requests()
        .into_iter()
        .filter(|r| r.method == "PUT")
        .map(|r| (r.path, r.status))
        .collect();
    assert_eq!(puts.len(), 1, "{puts:?}");
    assert!(
        puts[0].0 == moved && (200..300).contains(&puts[0].1),
        "{puts:?}"
    );
    let (etag, _) = env.user.get(&moved).unwrap().unwrap();
    let expected = {
        let mut expected = desired(&env, "WEB");
        let docs_event = expected.remove(&env.event_href("WEB", "Docs v3")).unwrap();
        expected.insert(moved.clone(), docs_event);
        expected
    };
    assert_eq!(stored(&env, "WEB"), expected);

    // The next runs see the event where it is, up to date: no write at all, no loop.
    for _ in 0..2 {
        env.proxy.reset();
        let run = sync(&env, &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
        assert_eq!(env.writes(), 0, "no write: {:?}", env.proxy.counts());
        assert_eq!(env.user.get(&moved).unwrap().unwrap().0, etag);
        assert_eq!(stored(&env, "WEB"), expected);
    }
}

on_both_servers!(uid_conflict_with_a_foreign_event_is_reported_and_left_alone);
/// Case 10b: our UID under another name, but another workspace's event: reported (exit 1),
/// left byte for byte alone, and the next run does the same without looping.
fn uid_conflict_with_a_foreign_event_is_reported_and_left_alone(server: ServerKind) {
    let env = synced(server, seed());
    let uid = docs_uid(&env);
    let moved = user_moves_docs(&env, |ics| {
        ics.replace(
            "X-CALPLANEBOT-WORKSPACE:acme",
            "X-CALPLANEBOT-WORKSPACE:globex",
        )
    });
    let before = env.user.get(&moved).unwrap().unwrap();
    assert!(before.1.contains("WORKSPACE:globex"), "{}", before.1);
    let mut expected = desired(&env, "WEB");
    let docs_event = expected.remove(&env.event_href("WEB", "Docs")).unwrap();
    expected.insert(moved.clone(), docs_event);
    for attempt in 0..2 {
        env.proxy.reset();
        let run = sync(&env, &[]);
        assert_eq!(run.code, 1, "run {attempt}: {}", run.stderr);
        let report = format!("{}{}", run.stdout, run.stderr);
        assert!(report.contains("moved.ics"), "names the holder: {report}");
        assert_eq!(env.user.get(&moved).unwrap().unwrap(), before);
        assert_eq!(holders_of(&env, &uid), std::slice::from_ref(&moved));
        assert_eq!(stored(&env, "WEB"), expected);
        // Found by its UID when listing: withheld and reported, no PUT tried at our name.
        assert_eq!(env.writes(), 0, "no loop: {:?}", env.proxy.counts());
        assert!(report.contains("calplanebot does not own"), "{report}");
    }
}

// ---------------------------------------------------------------------------------------------
// Case 11: the deletion guard.
// ---------------------------------------------------------------------------------------------

on_both_servers!(deletion_guard_refuses_30_of_40_and_force_delete_applies_them);
/// Case 11a: 30 of 40 events would go: all refused (exit 3), creates and updates applied;
/// `--force-delete` applies them.
fn deletion_guard_refuses_30_of_40_and_force_delete_applies_them(server: ServerKind) {
    let env = synced(server, seed_with("OPS", 38, 0));
    let gone: Vec<String> = (0..30)
        .map(|n| env.issue_id(&format!("Task {n}")))
        .collect();
    let gone_hrefs: Vec<String> = (0..30)
        .map(|n| env.event_href("OPS", &format!("Task {n}")))
        .collect();
    let gone_summaries: Vec<String> = env.sim.with_world(|w| {
        gone.iter()
            .map(|id| {
                let issue = w.issue(id).unwrap();
                format!("[{}] {}", issue.sequence_id, issue.name)
            })
            .collect()
    });
    let renamed = env.issue_id("Task 35");
    env.sim.with_world(|w| {
        for id in &gone {
            w.delete_issue(id);
        }
        w.issue_mut(&renamed).name = "Task 35 renamed".into();
        let ops = w.project("OPS").unwrap().id.clone();
        w.add_issue(SeedIssue::new(ops, "Fresh").due("2027-02-02"));
    });
    let run = sync(&env, &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("--force-delete"), "{}", run.stderr);
    let refused = lines_starting_with(&run.stdout, "!");
    for summary in &gone_summaries {
        assert!(
            refused.iter().any(|l| l.contains(summary.as_str())),
            "no ! line for {summary}: {}",
            run.stdout
        );
    }
    for href in &gone_hrefs {
        assert!(env.user.get(href).unwrap().is_some(), "{href} deleted");
    }
    let (_, ics) = env.event("OPS", "Task 35 renamed").unwrap();
    assert!(
        prop(&ics, "SUMMARY")
            .unwrap()
            .ends_with("] Task 35 renamed")
    );
    assert!(env.event("OPS", "Fresh").is_some());
    assert_eq!(env.caldav_count("DELETE"), 0);

    let run = sync(&env, &["--force-delete"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(env.caldav_count("DELETE"), 30);
    assert_converged(&env);
}

on_both_servers!(deletion_guard_max_delete_counts_the_total_across_calendars);
/// Case 11b: `--max-delete` bounds the run's total: 3 + 3 deletions in two calendars are
/// refused with `--max-delete 5` (no calendar alone exceeds it) and applied with 6.
fn deletion_guard_max_delete_counts_the_total_across_calendars(server: ServerKind) {
    let mut seed = seed_with("WEB", 8, 0);
    for n in 0..8 {
        seed["issues"].as_array_mut().unwrap().push(
            json!({"project": "OPS", "name": format!("Chore {n}"), "target_date": "2027-01-16"}),
        );
    }
    let env = synced(server, seed);
    let names = [
        "Task 0", "Task 1", "Task 2", "Chore 0", "Chore 1", "Chore 2",
    ];
    let hrefs: Vec<String> = names
        .iter()
        .map(|n| env.event_href(if n.starts_with("Task") { "WEB" } else { "OPS" }, n))
        .collect();
    let ids: Vec<String> = names.iter().map(|n| env.issue_id(n)).collect();
    env.sim
        .with_world(|w| ids.iter().for_each(|id| w.delete_issue(id)));
    let run = sync(&env, &["--max-delete", "5"]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("--force-delete"), "{}", run.stderr);
    for href in &hrefs {
        assert!(env.user.get(href).unwrap().is_some(), "{href} deleted");
    }
    let run = sync(&env, &["--max-delete", "6"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_converged(&env);
}

on_both_servers!(deletion_guard_refuses_to_empty_a_calendar_on_an_empty_list);
/// Case 11c: a project whose list comes back empty never wipes its calendar, even for two
/// events.
fn deletion_guard_refuses_to_empty_a_calendar_on_an_empty_list(server: ServerKind) {
    let env = synced(server, seed());
    let ops: Vec<String> = ["Rotate keys", "Backup check"]
        .iter()
        .map(|n| env.issue_id(n))
        .collect();
    let before = stored_raw(&env, "OPS");
    let docs = env.issue_id("Docs");
    env.sim.with_world(|w| {
        ops.iter().for_each(|id| w.delete_issue(id));
        w.issue_mut(&docs).name = "Docs v2".into();
    });
    let run = sync(&env, &[]);
    assert_eq!(run.code, 3, "{}", run.stderr);
    assert!(run.stderr.contains("--force-delete"), "{}", run.stderr);
    assert!(
        lines_starting_with(&run.stdout, "!").len() >= 2,
        "{}",
        run.stdout
    );
    assert_eq!(stored_raw(&env, "OPS"), before);
    assert_calendar_matches_plane(&env, "WEB");
    let run = sync(&env, &["--force-delete"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_converged(&env);
}

// ---------------------------------------------------------------------------------------------
// Case 12–13: runs that overlap or die.
// ---------------------------------------------------------------------------------------------

/// A fresh directory for a test's lock file.
fn temp_dir(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "calplanebot-faults-{name}-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Whether some process holds the lock on `path` (we would block taking it).
fn lock_is_held(path: &std::path::Path) -> bool {
    let Ok(file) = File::open(path) else {
        return false;
    };
    matches!(file.try_lock(), Err(TryLockError::WouldBlock))
}

on_both_servers!(a_second_run_waits_for_the_lock_or_exits_4);
/// Case 12: a second run exits 4 at once with `--lock-wait 0` and writes nothing; with
/// `--lock-wait 30` it waits and succeeds; every event is PUT exactly once; dry runs take no
/// lock.
fn a_second_run_waits_for_the_lock_or_exits_4(server: ServerKind) {
    let env = Env::start(server, seed());
    let dir = temp_dir("lock");
    let lock = dir.join("run.lock");
    let lock_arg = lock.to_str().unwrap();
    env.sim.inject_fault(FaultRule::new(
        "/workspaces/acme/projects/",
        Fault::Hang(Duration::from_secs(3)),
    ));
    let first = spawn_sync(&env, &["--lock-file", lock_arg, "--timeout", "20"]);
    wait_until("the first run holds the lock", || lock_is_held(&lock));

    let second = sync(&env, &["--lock-file", lock_arg, "--lock-wait", "0"]);
    assert_eq!(second.code, 4, "{}", second.stderr);
    assert!(
        second
            .stderr
            .contains("another calplanebot run holds the lock"),
        "{}",
        second.stderr
    );
    assert_eq!(env.writes(), 0);

    assert!(lock_is_held(&lock), "the first run still runs");
    let third = spawn_sync(&env, &["--lock-file", lock_arg, "--lock-wait", "30"]);
    let first = finish(first, "holds the lock");
    let third = finish(third, "waits for the lock");
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(third.code, 0, "{}", third.stderr);
    let dated = PROJECTS
        .iter()
        .map(|p| desired(&env, p).len())
        .sum::<usize>();
    assert_eq!(env.caldav_count("PUT"), dated, "{:?}", env.proxy.requests());
    assert_converged(&env);

    // A dry run takes no lock: it runs while someone (this test) holds it.
    let held = File::options().write(true).open(&lock).unwrap();
    held.lock().unwrap();
    let dry = sync(
        &env,
        &["--dry-run", "--lock-file", lock_arg, "--lock-wait", "0"],
    );
    assert_eq!(dry.code, 0, "a dry run takes no lock: {}", dry.stderr);
    let real = sync(&env, &["--lock-file", lock_arg, "--lock-wait", "0"]);
    assert_eq!(real.code, 4, "{}", real.stderr);
    drop(held);
    let _ = std::fs::remove_dir_all(&dir);
}

on_both_servers!(a_run_killed_mid_write_is_completed_by_the_next_run_without_duplicates);
/// Case 13: a run killed with SIGKILL in the middle of 200 creates leaves nothing a second run
/// cannot converge from: exactly one event per issue, right; a third run writes nothing.
fn a_run_killed_mid_write_is_completed_by_the_next_run_without_duplicates(server: ServerKind) {
    let env = Env::start(server, seed_with("OPS", 198, 0));
    assert_eq!(desired(&env, "OPS").len(), 200);
    let mut child = spawn_sync(&env, &[]);
    wait_until("60 PUTs went through", || env.proxy.count("PUT") >= 60);
    child.kill().expect("SIGKILL");
    let killed = finish(child, "killed");
    assert_eq!(killed.code, -1, "killed by a signal");
    let partial = stored(&env, "OPS").len();
    assert!(
        (1..200).contains(&partial),
        "the kill came mid-run: {partial} events"
    );

    let run = sync(&env, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_converged(&env);
    env.proxy.reset();
    let run = sync(&env, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(env.writes(), 0, "{:?}", env.proxy.counts());
}

// ---------------------------------------------------------------------------------------------
// Case 14–15: transport and data hygiene.
// ---------------------------------------------------------------------------------------------

on_both_servers!(plain_http_to_a_remote_host_is_refused_before_any_connection);
/// Case 14: credentials never go over plain http:// to a host that is not loopback unless
/// allowed; the refusal connects nowhere. `https://` passes the check (shown with a `.invalid`
/// host, which can never resolve, so nothing is reached either).
fn plain_http_to_a_remote_host_is_refused_before_any_connection(server: ServerKind) {
    let env = Env::start(server, seed());
    for (variable, url) in [
        ("CALDAV_URL", "http://caldav.example.com/"),
        ("PLANE_BASE_URL", "http://plane.example.com"),
    ] {
        let run = env.run_with(&sync_args(&[]), &[(variable, url)]);
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(run.stderr.contains(variable), "{}", run.stderr);
        assert!(
            run.stderr.contains("--allow-insecure-http"),
            "{}",
            run.stderr
        );
    }
    assert_eq!(env.sim.requests(), [], "Plane untouched");
    assert_eq!(env.proxy.requests(), [], "CalDAV untouched");

    // Accepted by the check: https, and http with the option or its variable. Each run then
    // fails to reach the unresolvable host (exit 5), not on configuration (exit 2).
    let https = [("CALDAV_URL", "https://caldav.invalid/")];
    let allowed = [("CALDAV_URL", "http://caldav.invalid/")];
    let allowed_env = [
        ("CALDAV_URL", "http://caldav.invalid/"),
        ("CALPLANEBOT_ALLOW_INSECURE_HTTP", "1"),
    ];
    for (extra, args) in [
        (&https[..], &["--retries", "0"][..]),
        (
            &allowed[..],
            &["--retries", "0", "--allow-insecure-http"][..],
        ),
        (&allowed_env[..], &["--retries", "0"][..]),
    ] {
        let run = env.run_with(&sync_args(args), extra);
        assert_eq!(run.code, 5, "{extra:?}: {}", run.stderr);
        assert!(
            !run.stderr.contains("--allow-insecure-http"),
            "{}",
            run.stderr
        );
    }
    assert_eq!(env.proxy.requests(), []);
    assert_eq!(env.user.list_calendars(&env.home()).unwrap(), []);
}

/// Case 14b (issue 12, point 5): a server behind a TLS proxy that believes it speaks plain HTTP
/// (Nextcloud without `overwriteprotocol`) leads calplanebot from https:// down to http:// on the
/// same host — by a redirect of the discovery PROPFIND, or by naming the principal there. The
/// password must not cross in clear text: the run stops with a message that says what to fix,
/// and the plain-HTTP listener receives no request carrying credentials — none at all.
///
/// Real listeners, real TLS: `downgrade::DowngradingFront` serves HTTPS with a certificate for
/// its address (trusted through `CALDAV_CA_FILE`, as a private CA) and points to a plain-HTTP
/// listener on the same address, which challenges for Basic like the server behind the proxy.
/// On `127.0.0.1` the run shows that the downgrade is refused even to loopback (which the
/// plain-HTTP rule exempts); on this machine's non-loopback address, that the password never
/// reaches a remote plain-HTTP host. A machine without one runs the loopback half only.
#[test]
fn credentials_never_follow_the_server_from_https_down_to_plain_http() {
    use calplanebot_testbed::downgrade::{self, DowngradingFront, Lure};
    use calplanebot_testbed::plane_sim::{PlaneSim, Seed};

    let sim = PlaneSim::start(Seed::from_json(&seed().to_string()).unwrap()).unwrap();
    let mut addresses = vec![std::net::IpAddr::from([127, 0, 0, 1])];
    match downgrade::non_loopback_address() {
        Some(address) => addresses.push(address),
        None => eprintln!("no non-loopback address on this machine: loopback only"),
    }
    let password = "s3cret-over-tls-only";
    let basic = base64::Engine::encode(
        &base64::engine::general_purpose::STANDARD,
        format!("alice:{password}"),
    );
    for address in addresses {
        for lure in [Lure::Redirect, Lure::Principal] {
            let label = format!("{address} {lure:?}");
            let front = DowngradingFront::start(address, lure).expect("the listeners start");
            let scratch = std::env::temp_dir().join(format!(
                "calplanebot-downgrade-test-{}-{address}-{lure:?}",
                std::process::id()
            ));
            let child = std::process::Command::new(env!("CARGO_BIN_EXE_calplanebot"))
                .args(sync_args(&["--retries", "0"]))
                .env_clear()
                .env("PLANE_BASE_URL", sim.base_url())
                .env("PLANE_API_TOKEN", sim.token())
                .env("PLANE_WORKSPACE_SLUG", sim.workspace_slug())
                .env(
                    "CALDAV_URL",
                    format!("{}/.well-known/caldav", front.https_url()),
                )
                .env("CALDAV_USERNAME", "alice")
                .env("CALDAV_PASSWORD", password)
                .env("CALDAV_CA_FILE", front.ca_file())
                .env("CALPLANEBOT_LOCK_FILE", scratch.join("lock"))
                .env("CALPLANEBOT_CACHE_DIR", scratch.join("cache"))
                .env("RUST_LOG", "trace")
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("the binary runs");
            let run = finish(child, &label);
            let _ = std::fs::remove_dir_all(&scratch);

            let plain = front.plain_requests();
            let carrying: Vec<_> = plain.iter().filter(|r| r.authorization.is_some()).collect();
            assert_eq!(
                carrying,
                Vec::<&downgrade::Seen>::new(),
                "{label}: credentials over plain HTTP; stderr:\n{}",
                run.stderr
            );
            assert_eq!(plain, [], "{label}: nothing at all goes over plain HTTP");
            // The client had the credentials to lose: it sent them over TLS, where they belong.
            let https = front.https_requests();
            assert!(!https.is_empty(), "{label}");
            assert!(
                https
                    .iter()
                    .all(|r| r.authorization.as_deref() == Some(&format!("Basic {basic}"))),
                "{label}: {https:?}"
            );
            assert_eq!(run.code, 5, "{label}: {}", run.stderr);
            for expected in [
                "from https:// down to plain http://",
                "'overwriteprotocol' => 'https'",
                "set CALDAV_URL to the https:// URL",
                &front.plain_url(),
            ] {
                assert!(
                    run.stderr.contains(expected),
                    "{label}: {expected:?} in {}",
                    run.stderr
                );
            }
            for secret in [password, basic.as_str()] {
                assert!(!run.stdout.contains(secret), "{label}: a secret on stdout");
                assert!(!run.stderr.contains(secret), "{label}: a secret on stderr");
            }
        }
    }
}

on_both_servers!(an_issue_with_an_unknown_enum_value_is_skipped_and_keeps_its_event);
/// Case 15a: an issue whose priority is a value calplanebot does not know is skipped with a
/// warning naming it, and its event is kept as it is; the rest of the project syncs (a deleted
/// issue's event included). Exit status: 0, the item is reported on stderr.
fn an_issue_with_an_unknown_enum_value_is_skipped_and_keeps_its_event(server: ServerKind) {
    let env = synced(server, seed());
    let beta = env.issue_id("Beta");
    let beta_href = env.event_href("WEB", "Beta");
    let beta_before = env.user.get(&beta_href).unwrap().unwrap();
    plane_moves_on(&env);
    env.sim.with_world(|w| {
        let issue = w.issue_mut(&beta);
        issue.priority = "blocker".into();
        issue.name = "Beta renamed".into();
    });
    let run = sync(&env, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(&beta),
        "names the issue: {}",
        run.stderr
    );
    assert_eq!(env.user.get(&beta_href).unwrap().unwrap(), beta_before);
    // Everything else converged: Plane's view, except Beta as it was.
    let mut expected = desired(&env, "WEB");
    let shown = expected.get_mut(&beta_href).unwrap();
    shown.summary = prop(&beta_before.1, "SUMMARY").unwrap();
    assert_eq!(stored(&env, "WEB"), expected);
    assert_calendar_matches_plane(&env, "OPS");
}

on_both_servers!(an_item_with_a_wrong_json_type_is_skipped_and_keeps_its_event);
/// Case 15b: a page in which one item has a wrong JSON type (`target_date` a number): the item
/// is skipped with a warning, its event kept; the other items sync.
fn an_item_with_a_wrong_json_type_is_skipped_and_keeps_its_event(server: ServerKind) {
    let env = synced(server, seed());
    let rotate = env.issue_id("Rotate keys");
    let rotate_href = env.event_href("OPS", "Rotate keys");
    let rotate_before = env.user.get(&rotate_href).unwrap().unwrap();
    plane_moves_on(&env);
    // The page as Plane would send it now (asked with the query calplanebot uses), one item
    // broken.
    let run = sync(&env, &["--dry-run"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let query = full_read_requests(&env, "OPS").remove(0).0;
    let url = format!(
        "{}/api/v1/workspaces/acme{}?{query}",
        env.sim.base_url(),
        work_items_path(&env, "OPS")
    );
    let text = ureq::get(&url)
        .header("X-Api-Key", &env.sim.token())
        .call()
        .expect("the page")
        .body_mut()
        .read_to_string()
        .expect("a text body");
    let mut page: Value = serde_json::from_str(&text).expect("JSON");
    let items = page["results"].as_array_mut().expect("a results list");
    let item = items
        .iter_mut()
        .find(|i| i["id"] == rotate.as_str())
        .expect("Rotate keys on the page");
    item["target_date"] = json!(20261205);
    item["name"] = json!("Rotate keys, broken");
    env.sim.inject_fault(
        FaultRule::new(
            &work_items_path(&env, "OPS"),
            Fault::Status(200, page.to_string()),
        )
        .query_contains("expand="),
    );
    let run = sync(&env, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains(&rotate),
        "names the item: {}",
        run.stderr
    );
    assert_eq!(env.user.get(&rotate_href).unwrap().unwrap(), rotate_before);
    let mut expected = desired(&env, "OPS");
    expected.get_mut(&rotate_href).unwrap().summary = prop(&rotate_before.1, "SUMMARY").unwrap();
    assert_eq!(stored(&env, "OPS"), expected);
    assert_calendar_matches_plane(&env, "WEB");
}

// ---------------------------------------------------------------------------------------------
// Issue 12: a list walk over a live table.
// ---------------------------------------------------------------------------------------------

on_both_servers!(an_issue_deleted_between_two_pages_never_costs_a_live_issue_its_event);
/// Issue 12, point 1: offset pagination skips an item when another is deleted between two
/// page requests, and the last page's `total_count` already counts the deletion, so the walk
/// looks complete. The skipped issue is alive: its event must stay. Every deletion for an
/// absence is confirmed with one detail request first.
fn an_issue_deleted_between_two_pages_never_costs_a_live_issue_its_event(server: ServerKind) {
    // 150 dated issues in WEB: two pages of 100, in creation order.
    let env = synced_in_pages_of_100(server, seed_with("WEB", 146, 0));
    let web = env.project_id("WEB");
    let listing = |env: &Env| {
        env.sim
            .requests()
            .into_iter()
            .filter(|r| r.path.ends_with(&work_items_path(env, "WEB")))
            // The full reads (a probe asks for no `expand`).
            .filter(|r| r.query.contains("expand="))
            .map(|r| r.query)
            .collect::<Vec<_>>()
    };
    let gone = env.issue_id("Task 3");
    // The first item of the second page: after one deletion on the first page, page two
    // starts one item later, and this one is never listed.
    let skipped = env.sim.with_world(|w| {
        let mut listable: Vec<_> = w
            .issues
            .iter()
            .filter(|i| i.project == web && w.is_listable(i))
            .map(|i| (i.created_at.clone(), i.id.clone()))
            .collect();
        listable.sort();
        listable[100].1.clone()
    });
    let skipped_name = env
        .sim
        .with_world(|w| w.issue(&skipped).unwrap().name.clone());
    let skipped_href = env.event_href("WEB", &skipped_name);
    let before = env.user.get(&skipped_href).unwrap().expect("synced");

    // Someone deletes an issue of the first page while the walk is between its two pages of
    // a full read (one comes: an issue of the second page was renamed, which a probe sees).
    let renamed = env.issue_id("Task 145");
    env.sim
        .with_world(|w| w.issue_mut(&renamed).name = "Task 145, renamed".into());
    let deleted = gone.clone();
    env.sim.edit_after(
        FaultRule::new(&work_items_path(&env, "WEB"), Fault::server_error())
            .method("GET")
            .query_contains("expand="),
        move |w| w.delete_issue(&deleted),
    );
    let run = sync(&env, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let pages = listing(&env);
    assert_eq!(pages.len(), 2, "two pages: {pages:?}");
    // The walk missed the live issue, but nothing of it was deleted.
    assert_eq!(env.caldav_count("DELETE"), 0, "{}", run.stdout);
    assert_eq!(env.user.get(&skipped_href).unwrap(), Some(before));
    // It was asked about once, by id, and found alive.
    assert_eq!(
        env.sim.count(
            "GET",
            &format!("{}{skipped}/", work_items_path(&env, "WEB"))
        ),
        1
    );
    assert!(
        run.stderr
            .contains("was missing from Plane's list but exists"),
        "{}",
        run.stderr
    );

    // The next run sees the deletion in the list, confirms it (404), and deletes that event.
    env.proxy.reset();
    env.sim.reset_requests();
    let run = sync(&env, &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("0 created, 0 updated, 1 deleted"),
        "{}",
        run.stdout
    );
    assert_eq!(
        env.sim
            .count("GET", &format!("{}{gone}/", work_items_path(&env, "WEB"))),
        1,
        "the deletion was confirmed by id"
    );
    assert_eq!(env.event("WEB", "Task 3"), None);
    assert_converged(&env);
}
