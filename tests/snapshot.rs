//! End to end: the listing snapshot (issue 14). A run in which nothing changed asks the CalDAV
//! server one question; a changed calendar is read from its change report; a damaged, foreign
//! or forged snapshot, or a server without sync-collection, still gives correct runs.

#[macro_use]
mod support;

use std::collections::BTreeMap;

use calplanebot_testbed::proxy::{FaultRule, ProxyFault};
use serde_json::json;
use support::{Env, NO_OP, ServerKind, assert_summary, prop};

fn seed() -> serde_json::Value {
    json!({
        "workspace": "acme",
        "users": [
            {"id": "00000000-0000-4000-8000-0000000000a1", "first_name": "Alice", "last_name": "A", "email": "alice@acme.test", "display_name": "alice"}
        ],
        "projects": [
            {"identifier": "WEB", "name": "Website"},
            {"identifier": "OPS", "name": "Operations"},
            {"identifier": "APP", "name": "Mobile app"}
        ],
        "issues": [
            {"project": "WEB", "name": "Launch", "target_date": "2026-12-01"},
            {"project": "WEB", "name": "Polish", "target_date": "2026-12-02"},
            {"project": "WEB", "name": "Undated"},
            {"project": "OPS", "name": "Rotate keys", "target_date": "2026-12-05"},
            {"project": "OPS", "name": "Backup check", "target_date": "2026-12-06"},
            {"project": "APP", "name": "Release", "target_date": "2026-12-07"}
        ]
    })
}

/// Requests by method since the last reset.
fn counts(env: &Env) -> BTreeMap<String, usize> {
    env.proxy.counts()
}

fn total(env: &Env) -> usize {
    counts(env).values().sum()
}

/// The paths of the requests of `method` since the last reset.
fn paths(env: &Env, method: &str) -> Vec<String> {
    env.proxy
        .requests()
        .into_iter()
        .filter(|r| r.method == method)
        .map(|r| r.path)
        .collect()
}

fn listing_file(env: &Env) -> std::path::PathBuf {
    let dir = env.scratch("cache");
    std::fs::read_dir(&dir)
        .expect("the cache directory exists")
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("listing-"))
        })
        .expect("a listing snapshot was written")
}

fn sync_ok(env: &Env, extra: &[(&str, &str)]) -> support::Run {
    let run = env.run_with(&["sync"], extra);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    run
}

/// A calendar user changes the SUMMARY of `issue`'s event; returns the event's href and the
/// SUMMARY calplanebot wrote, which the next run must restore.
fn user_edits_summary(env: &Env, project: &str, issue: &str) -> (String, String) {
    let href = env.event_href(project, issue);
    let (_, ics) = env.event(project, issue).unwrap();
    let right = prop(&ics, "SUMMARY").unwrap();
    let edited = ics.replace(
        &format!("SUMMARY:{right}"),
        "SUMMARY:Edited in a calendar app",
    );
    assert_ne!(edited, ics);
    assert_eq!(env.user.put(&href, &edited).unwrap() / 100, 2);
    (href, right)
}

/// Renames `issue` in Plane; returns its event's href (which the name no longer finds).
fn plane_renames(env: &Env, project: &str, issue: &str, name: &str) -> String {
    let id = env.issue_id(issue);
    let href = env.event_href(project, issue);
    let name = name.to_string();
    env.sim.with_world(|w| w.issue_mut(&id).name = name);
    href
}

/// Every owned event of the three calendars, by summary, read back from the server.
fn summaries(env: &Env) -> Vec<String> {
    let mut all = Vec::new();
    for project in ["WEB", "OPS", "APP"] {
        // `list_objects` gives (href, etag): each event is read by its href.
        for (href, _) in env.user.list_objects(&env.calendar_href(project)).unwrap() {
            let (_, ics) = env.user.get(&href).unwrap().expect("a listed event");
            all.push(prop(&ics, "SUMMARY").expect("a SUMMARY"));
        }
    }
    all.sort();
    all
}

on_both_servers!(a_run_with_nothing_changed_makes_one_caldav_request);
fn a_run_with_nothing_changed_makes_one_caldav_request(server: ServerKind) {
    let env = Env::start(server, seed());
    let first = sync_ok(&env, &[]);
    assert_summary(&first, "5 created");
    let before = summaries(&env);

    env.proxy.reset();
    let second = sync_ok(&env, &[]);
    assert_summary(&second, NO_OP);
    assert_eq!(
        counts(&env),
        BTreeMap::from([("PROPFIND".to_string(), 1)]),
        "one PROPFIND of the home and nothing else"
    );
    assert_eq!(paths(&env, "PROPFIND"), vec![env.home()]);
    // And again: a snapshot confirmed once stays confirmed.
    env.proxy.reset();
    sync_ok(&env, &[]);
    assert_eq!(total(&env), 1);
    assert_eq!(summaries(&env), before);
}

on_both_servers!(single_calendar_mode_with_nothing_changed_makes_one_request);
fn single_calendar_mode_with_nothing_changed_makes_one_request(server: ServerKind) {
    let env = Env::start(server, seed());
    let calendar = format!("{}plane-single/", env.home());
    assert_eq!(env.user.mkcalendar(&calendar, "Team").unwrap() / 100, 2);
    let url = format!("{}{calendar}", env.proxy.url());
    let vars = [("CALDAV_CALENDAR_URL", url.as_str())];
    let first = sync_ok(&env, &vars);
    assert_summary(&first, "5 created");
    // The calendar existed before the run, so its writes are confirmed by the next run's
    // change report, without reading a single event back.
    env.proxy.reset();
    sync_ok(&env, &vars);
    assert_eq!(
        counts(&env),
        BTreeMap::from([("PROPFIND".to_string(), 1), ("REPORT".to_string(), 1)]),
        "the calendar's properties and its change report"
    );
    env.proxy.reset();
    sync_ok(&env, &vars);
    assert_eq!(
        counts(&env),
        BTreeMap::from([("PROPFIND".to_string(), 1)]),
        "one Depth 0 PROPFIND of the calendar"
    );
    assert_eq!(paths(&env, "PROPFIND"), vec![calendar.clone()]);
    assert_eq!(env.user.list_objects(&calendar).unwrap().len(), 5);
}

on_both_servers!(a_users_edit_is_restored_reading_only_that_calendars_changes);
fn a_users_edit_is_restored_reading_only_that_calendars_changes(server: ServerKind) {
    let env = Env::start(server, seed());
    sync_ok(&env, &[]);
    sync_ok(&env, &[]);
    let (href, right) = user_edits_summary(&env, "WEB", "Launch");

    env.proxy.reset();
    let run = sync_ok(&env, &[]);
    assert_summary(&run, "0 created, 1 updated");
    assert_eq!(
        prop(&env.event("WEB", "Launch").unwrap().1, "SUMMARY").unwrap(),
        right
    );
    assert_eq!(env.caldav_count("PUT"), 1);
    assert_eq!(paths(&env, "PUT"), vec![href]);
    assert_eq!(paths(&env, "PROPFIND"), vec![env.home()], "no full listing");
    let web = env.calendar_href("WEB");
    let reports = paths(&env, "REPORT");
    assert!(!reports.is_empty());
    assert!(
        reports.iter().all(|p| *p == web),
        "only the edited calendar's changes are read: {reports:?}"
    );
    assert_eq!(env.writes(), 1);

    // The next run confirms the write from the change report, and the one after costs one
    // request again.
    env.proxy.reset();
    let run = sync_ok(&env, &[]);
    assert_summary(&run, NO_OP);
    assert_eq!(env.writes(), 0);
    assert!(paths(&env, "REPORT").iter().all(|p| *p == web));
    env.proxy.reset();
    sync_ok(&env, &[]);
    assert_eq!(total(&env), 1);
}

on_both_servers!(a_foreign_event_added_to_our_calendar_is_read_about_and_left_alone);
fn a_foreign_event_added_to_our_calendar_is_read_about_and_left_alone(server: ServerKind) {
    let env = Env::start(server, seed());
    sync_ok(&env, &[]);
    sync_ok(&env, &[]);
    let web = env.calendar_href("WEB");
    let foreign_href = format!("{web}dentist.ics");
    let foreign = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Someone//EN\r\nBEGIN:VEVENT\r\nUID:dentist-1@example.org\r\nDTSTAMP:20261201T090000Z\r\nDTSTART;VALUE=DATE:20261203\r\nSUMMARY:Dentist\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
    assert_eq!(env.user.put(&foreign_href, foreign).unwrap() / 100, 2);
    let stored = env.user.get(&foreign_href).unwrap().unwrap();

    env.proxy.reset();
    let run = sync_ok(&env, &[]);
    assert_summary(&run, NO_OP);
    assert_eq!(env.writes(), 0);
    assert_eq!(paths(&env, "PROPFIND"), vec![env.home()]);
    let reports = paths(&env, "REPORT");
    assert!(!reports.is_empty(), "the change was read");
    assert!(reports.iter().all(|p| *p == web), "{reports:?}");
    assert_eq!(env.user.get(&foreign_href).unwrap().unwrap(), stored);
    // The foreign event is now part of the recorded state: the next runs are one request.
    env.proxy.reset();
    sync_ok(&env, &[]);
    assert_eq!(total(&env), 1);
    assert_eq!(env.user.get(&foreign_href).unwrap().unwrap(), stored);
}

on_both_servers!(one_issue_changed_in_plane_costs_the_home_propfind_and_one_put);
fn one_issue_changed_in_plane_costs_the_home_propfind_and_one_put(server: ServerKind) {
    let env = Env::start(server, seed());
    sync_ok(&env, &[]);
    sync_ok(&env, &[]);
    let release = plane_renames(&env, "APP", "Release", "Release 2.0");
    env.proxy.reset();
    let run = sync_ok(&env, &[]);
    assert_summary(&run, "0 created, 1 updated");
    assert_eq!(
        counts(&env),
        BTreeMap::from([("PROPFIND".to_string(), 1), ("PUT".to_string(), 1)])
    );
    assert!(
        prop(&env.user.get(&release).unwrap().unwrap().1, "SUMMARY")
            .unwrap()
            .ends_with("Release 2.0")
    );
    // A deleted issue: one DELETE, after Plane confirmed it is gone.
    let gone = env.issue_id("Backup check");
    let href = env.event_href("OPS", "Backup check");
    env.sim.with_world(|w| w.delete_issue(&gone));
    env.proxy.reset();
    let run = sync_ok(&env, &[]);
    assert_summary(&run, "1 deleted");
    assert_eq!(env.caldav_count("DELETE"), 1);
    assert_eq!(env.user.get(&href).unwrap(), None);
    assert_eq!(env.writes(), 1);
}

// A correct run whatever the snapshot holds: the events afterwards are exactly Plane's, and
// the only writes are the one a user's edit and a Plane change call for.
on_both_servers!(a_missing_damaged_foreign_or_forged_snapshot_gives_a_correct_full_run);
fn a_missing_damaged_foreign_or_forged_snapshot_gives_a_correct_full_run(server: ServerKind) {
    let env = Env::start(server, seed());
    sync_ok(&env, &[]);
    sync_ok(&env, &[]);
    let file = listing_file(&env);
    let good = std::fs::read_to_string(&file).unwrap();
    let web = env.calendar_href("WEB");
    let ops = env.calendar_href("OPS");
    let mut cases: Vec<(&str, Option<String>)> = vec![
        ("deleted", None),
        ("garbage", Some("\u{0}\u{1}garbage{{{".into())),
        ("truncated", Some(good[..good.len() / 2].to_string())),
        (
            "another workspace",
            Some(good.replace("\"acme\"", "\"other\"")),
        ),
        (
            "a forged href outside the calendar",
            Some(good.replacen(
                &format!("{web}plane-issue-"),
                &format!("{ops}plane-issue-"),
                1,
            )),
        ),
    ];
    assert_ne!(
        cases[4].1.as_deref(),
        Some(good.as_str()),
        "the forgery changes the file"
    );
    let launch = env.issue_id("Launch");
    let launch_href = env.event_href("WEB", "Launch");
    for (round, (what, contents)) in cases.drain(..).enumerate() {
        match &contents {
            None => std::fs::remove_file(&file).unwrap(),
            Some(text) => std::fs::write(&file, text).unwrap(),
        }
        // One change in Plane and one user edit, which a correct run must both put right.
        let title = format!("Launch, round {round}");
        env.sim
            .with_world(|w| w.issue_mut(&launch).name = title.clone());
        let (_, summary) = user_edits_summary(&env, "OPS", "Rotate keys");
        env.proxy.reset();
        let run = sync_ok(&env, &[]);
        assert!(
            run.stdout.contains("0 created, 2 updated, 0 deleted"),
            "{what}: {}",
            run.stdout
        );
        assert_eq!(env.writes(), 2, "{what}: exactly the two updates");
        assert!(
            env.caldav_count("PROPFIND") >= 4,
            "{what}: every calendar listed in full: {:?}",
            counts(&env)
        );
        assert!(
            prop(&env.user.get(&launch_href).unwrap().unwrap().1, "SUMMARY")
                .unwrap()
                .ends_with(&title),
            "{what}"
        );
        assert_eq!(
            prop(&env.event("OPS", "Rotate keys").unwrap().1, "SUMMARY").unwrap(),
            summary,
            "{what}"
        );
        assert_eq!(summaries(&env).len(), 5, "{what}");
    }
    // Another CALDAV_URL (the server without the proxy's path form): not this snapshot's.
    sync_ok(&env, &[]);
    env.proxy.reset();
    let other_url = format!("{}{}", env.proxy.url(), env.home());
    let run = sync_ok(&env, &[("CALDAV_URL", other_url.as_str())]);
    assert_summary(&run, NO_OP);
    assert!(env.caldav_count("PROPFIND") >= 4, "{:?}", counts(&env));
    assert_eq!(env.writes(), 0);
}

on_both_servers!(without_sync_collection_every_run_stays_correct);
fn without_sync_collection_every_run_stays_correct(server: ServerKind) {
    let env = Env::start(server, seed());
    // SabreDAV 1.8: no sync-collection at all.
    env.proxy.inject(
        FaultRule::new(ProxyFault::Status(403))
            .method("REPORT")
            .body_contains("sync-collection")
            .always(),
    );
    sync_ok(&env, &[]);
    env.proxy.reset();
    sync_ok(&env, &[]);
    let after_first = counts(&env);
    // The calendars made by the first run could not be checked by a change report: listed in
    // full once, then the ctag shortcut holds.
    env.proxy.reset();
    let run = sync_ok(&env, &[]);
    assert_summary(&run, NO_OP);
    assert_eq!(
        total(&env),
        1,
        "ctag-only shortcut; before: {after_first:?}"
    );

    let (_, summary) = user_edits_summary(&env, "WEB", "Polish");
    let release = plane_renames(&env, "APP", "Release", "Release 3");
    env.proxy.reset();
    let run = sync_ok(&env, &[]);
    assert_summary(&run, "0 created, 2 updated, 0 deleted");
    assert_eq!(
        prop(&env.event("WEB", "Polish").unwrap().1, "SUMMARY").unwrap(),
        summary
    );
    assert!(
        prop(&env.user.get(&release).unwrap().unwrap().1, "SUMMARY")
            .unwrap()
            .ends_with("Release 3")
    );
    // The unchanged calendar (OPS) was not listed.
    assert!(
        !paths(&env, "PROPFIND").contains(&env.calendar_href("OPS")),
        "{:?}",
        paths(&env, "PROPFIND")
    );
    for _ in 0..2 {
        let run = sync_ok(&env, &[]);
        assert_summary(&run, NO_OP);
    }
    env.proxy.reset();
    sync_ok(&env, &[]);
    assert_eq!(total(&env), 1);
}

on_both_servers!(the_snapshot_is_off_with_zero_and_ages_out_after_the_bound);
fn the_snapshot_is_off_with_zero_and_ages_out_after_the_bound(server: ServerKind) {
    let env = Env::start(server, seed());
    let off = [("CALPLANEBOT_FULL_LISTING_EVERY", "0")];
    sync_ok(&env, &off);
    env.proxy.reset();
    sync_ok(&env, &off);
    assert!(env.caldav_count("PROPFIND") >= 4, "{:?}", counts(&env));
    let written = std::fs::read_dir(env.scratch("cache"))
        .map(|d| {
            d.filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("listing-")
            })
            .count()
        })
        .unwrap_or(0);
    assert_eq!(written, 0, "no snapshot is kept with 0");

    // A bound of one second: a run two seconds later lists everything in full again.
    let short = [("CALPLANEBOT_FULL_LISTING_EVERY", "1s")];
    sync_ok(&env, &short);
    std::thread::sleep(std::time::Duration::from_millis(2100));
    env.proxy.reset();
    sync_ok(&env, &short);
    assert!(env.caldav_count("PROPFIND") >= 4, "{:?}", counts(&env));
}

on_both_servers!(a_write_that_met_a_412_sends_its_calendar_to_a_full_listing);
fn a_write_that_met_a_412_sends_its_calendar_to_a_full_listing(server: ServerKind) {
    let env = Env::start(server, seed());
    sync_ok(&env, &[]);
    sync_ok(&env, &[]);
    plane_renames(&env, "APP", "Release", "Release 4");
    env.proxy
        .inject(FaultRule::new(ProxyFault::Status(412)).method("PUT"));
    env.proxy.reset();
    let run = sync_ok(&env, &[]);
    assert_summary(&run, "1 updated");
    assert_eq!(env.caldav_count("GET"), 1, "re-read once after the 412");
    env.proxy.reset();
    let run = sync_ok(&env, &[]);
    assert_summary(&run, NO_OP);
    let app = env.calendar_href("APP");
    assert!(
        paths(&env, "PROPFIND").contains(&app),
        "the calendar is listed in full: {:?}",
        paths(&env, "PROPFIND")
    );
    assert!(!paths(&env, "PROPFIND").contains(&env.calendar_href("WEB")));
}
