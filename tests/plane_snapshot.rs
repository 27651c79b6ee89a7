//! End to end: the Plane side at its limit (issue 23). A run in which nothing changed in Plane
//! asks each project the cheap probe and reads none in full; an edit of any field an event
//! shows — even one Plane makes without moving `updated_at` — sends exactly its project to a
//! full read and shows in the next run; deletions are still confirmed one by one (issue 12); a
//! damaged, foreign or old Plane snapshot, or a failing probe, still gives correct runs; an
//! issue webhook keeps the snapshot true in one request; projects are read in parallel, and a
//! 429 pauses every connection.
//!
//! The suite runs a second time with `CALPLANEBOT_TEST_FULL_LISTING_EVERY=0` (both snapshots
//! off): then every run reads every project in full, and the tests that count reads assert
//! that instead ([`expect_reads`]).

#[macro_use]
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use calplanebot_testbed::plane_sim::{
    CostModel, Fault, FaultRule, RecordedRequest, SeedIssue, Workers, World,
};
use serde_json::json;
use support::{Env, NO_OP, ServerKind, assert_summary, categories, prop, props};

const ALICE: &str = "00000000-0000-4000-8000-0000000000a1";
const BOB: &str = "00000000-0000-4000-8000-0000000000b2";
const PROJECTS: [&str; 4] = ["WEB", "OPS", "APP", "DOC"];

fn seed() -> serde_json::Value {
    json!({
        "workspace": "acme",
        "users": [
            {"id": ALICE, "first_name": "Alice", "last_name": "A", "email": "alice@acme.test", "display_name": "alice"},
            {"id": BOB, "first_name": "Bob", "last_name": "B", "email": "bob@acme.test", "display_name": "bob"}
        ],
        "projects": [
            {"identifier": "WEB", "name": "Website", "labels": [
                {"name": "bug", "color": "#ff0000"},
                {"name": "frontend", "color": "#00ff00"}
            ]},
            {"identifier": "OPS", "name": "Operations"},
            {"identifier": "APP", "name": "Mobile app"},
            {"identifier": "DOC", "name": "Documentation"}
        ],
        "issues": [
            {"project": "WEB", "name": "Launch", "start_date": "2026-11-20", "target_date": "2026-12-01",
             "priority": "high", "state": "Todo", "labels": ["bug"], "assignees": [ALICE],
             "description_html": "<p>First text</p>"},
            {"project": "WEB", "name": "Polish", "target_date": "2026-12-02"},
            {"project": "WEB", "name": "Undated"},
            {"project": "OPS", "name": "Rotate keys", "target_date": "2026-12-05", "state": "Todo"},
            {"project": "OPS", "name": "Backup check", "target_date": "2026-12-06"},
            {"project": "APP", "name": "Release", "target_date": "2026-12-07"},
            {"project": "DOC", "name": "Guide", "target_date": "2026-12-08"}
        ]
    })
}

/// Whether this pass keeps the snapshots (scripts/test's second pass turns them off).
fn snapshot_on() -> bool {
    std::env::var("CALPLANEBOT_TEST_FULL_LISTING_EVERY").as_deref() != Ok("0")
}

/// The project id of a request for a project's work-item list (not a detail GET).
fn listed_project(request: &RecordedRequest) -> Option<&str> {
    let rest = request.path.split("/projects/").nth(1)?;
    let (project, tail) = rest.split_once('/')?;
    (request.method == "GET" && tail == "work-items/").then_some(project)
}

/// The identifiers of the projects whose work-item list was asked with `marker` in the query,
/// once per request (pages included), sorted.
fn lists_asked(env: &Env, marker: &str) -> Vec<String> {
    let requests = env.sim.requests();
    let mut all: Vec<String> = requests
        .iter()
        .filter(|r| r.query.contains(marker))
        .filter_map(listed_project)
        .map(|id| {
            env.sim
                .with_world(|w| w.project(id).unwrap().identifier.clone())
        })
        .collect();
    all.sort();
    all
}

/// Projects read in full (`expand=`), by identifier.
fn full_reads(env: &Env) -> Vec<String> {
    lists_asked(env, "expand=")
}

/// Projects probed (`fields=id,updated_at,…` without `expand`), by identifier.
fn probes(env: &Env) -> Vec<String> {
    lists_asked(env, "fields=id,updated_at")
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut all: Vec<String> = names.iter().map(|s| s.to_string()).collect();
    all.sort();
    all
}

/// What a run after a first one must have asked Plane: with the snapshot, each of `projects`
/// probed once and exactly `changed` read in full; without it, every project read in full and
/// none probed.
fn expect_reads(env: &Env, projects: &[&str], changed: &[&str]) {
    if snapshot_on() {
        assert_eq!(probes(env), sorted(projects), "one probe per project");
        assert_eq!(full_reads(env), sorted(changed), "full reads");
    } else {
        assert_eq!(
            probes(env),
            Vec::<String>::new(),
            "no probe without a snapshot"
        );
        assert_eq!(full_reads(env), sorted(projects), "every project in full");
    }
}

fn sync_ok(env: &Env, args: &[&str]) -> support::Run {
    let run = env.sync(args);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    run
}

/// The stored event of issue `id` in `project`'s calendar.
fn event_of(env: &Env, project: &str, id: &str) -> Option<String> {
    let href = format!("{}plane-issue-{id}.ics", env.calendar_href(project));
    env.user.get(&href).expect("GET works").map(|(_, ics)| ics)
}

/// `(href, etag)` of every event of `project`'s calendar, sorted: equal lists mean nothing was
/// written.
fn etags(env: &Env, project: &str) -> Vec<(String, String)> {
    let mut all = env.user.list_objects(&env.calendar_href(project)).unwrap();
    all.sort();
    all
}

/// Every owned event of the seed's calendars, by summary, read back from the server.
fn summaries(env: &Env) -> Vec<String> {
    let mut all = Vec::new();
    for project in PROJECTS {
        // `list_objects` gives (href, etag): each event is read by its href.
        for (href, _) in env.user.list_objects(&env.calendar_href(project)).unwrap() {
            let (_, ics) = env.user.get(&href).unwrap().expect("a listed event");
            all.push(prop(&ics, "SUMMARY").expect("a SUMMARY"));
        }
    }
    all.sort();
    all
}

/// The Plane snapshot file of the configuration (there is one, with the snapshot on).
fn plane_snapshot_file(env: &Env) -> Option<PathBuf> {
    std::fs::read_dir(env.scratch("cache"))
        .ok()?
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("plane-") && n.ends_with(".json"))
        })
}

fn feed_dir(env: &Env) -> PathBuf {
    let dir = env.scratch("feeds");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The VEVENT of issue `id` in the feed named `calendar` (X-WR-CALNAME), if any.
fn feed_event(dir: &Path, calendar: &str, id: &str) -> Option<String> {
    let feed = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ics"))
        .map(|p| std::fs::read_to_string(p).unwrap())
        .find(|text| prop(text, "X-WR-CALNAME").as_deref() == Some(calendar))
        .unwrap_or_else(|| panic!("no feed {calendar:?}"));
    feed.split("BEGIN:VEVENT")
        .skip(1)
        .find(|event| event.contains(&format!("plane-issue-{id}")))
        .map(|event| format!("BEGIN:VEVENT{}", event.split("END:VEVENT").next().unwrap()))
}

fn feeds_ok(env: &Env, dir: &Path, args: &[&str]) -> support::Run {
    let mut all = vec!["sync"];
    all.extend_from_slice(args);
    let run = env.feeds_only(dir, &all);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    run
}

/// The `Assignees:` line of an event's description, if any.
fn assignees_line(ics: &str) -> Option<String> {
    prop(ics, "DESCRIPTION")?
        .lines()
        .find(|l| l.starts_with("Assignees: "))
        .map(str::to_string)
}

// 1. Nothing changed.

on_both_servers!(a_run_with_nothing_changed_probes_each_project_and_reads_none_in_full);
fn a_run_with_nothing_changed_probes_each_project_and_reads_none_in_full(server: ServerKind) {
    let env = Env::start(server, seed());
    // A dry run keeps nothing: the first real run reads every project in full.
    let dry = sync_ok(&env, &["--dry-run"]);
    assert_summary(&dry, "would create 6");
    assert_eq!(
        plane_snapshot_file(&env),
        None,
        "a dry run saves no snapshot"
    );
    env.sim.reset_requests();
    let first = sync_ok(&env, &[]);
    assert_summary(&first, "6 created");
    assert_eq!(probes(&env), Vec::<String>::new(), "nothing to probe yet");
    assert_eq!(
        full_reads(&env),
        sorted(&PROJECTS),
        "the first run reads all"
    );
    let before = summaries(&env);
    for _ in 0..2 {
        env.sim.reset_requests();
        let run = sync_ok(&env, &[]);
        assert_summary(&run, NO_OP);
        expect_reads(&env, &PROJECTS, &[]);
        assert_eq!(
            env.sim.requests().len(),
            1 + PROJECTS.len(),
            "the projects list and one page per project: {:?}",
            env.sim.requests()
        );
        assert_eq!(summaries(&env), before);
    }
    assert_eq!(plane_snapshot_file(&env).is_some(), snapshot_on());
}

#[test]
fn feeds_only_with_nothing_changed_probes_each_project_and_reads_none_in_full() {
    let env = Env::start(ServerKind::Radicale, seed());
    let dir = feed_dir(&env);
    feeds_ok(&env, &dir, &[]);
    let launch = env.issue_id("Launch");
    let before = feed_event(&dir, "Plane: Website", &launch).expect("Launch is in the feed");
    env.sim.reset_requests();
    let run = feeds_ok(&env, &dir, &[]);
    assert!(
        run.stdout.contains("0 written, 0 removed"),
        "{}",
        run.stdout
    );
    expect_reads(&env, &PROJECTS, &[]);
    let lists: usize = env
        .sim
        .requests()
        .iter()
        .filter(|r| listed_project(r).is_some())
        .count();
    assert_eq!(lists, PROJECTS.len(), "{:?}", env.sim.requests());
    assert_eq!(
        feed_event(&dir, "Plane: Website", &launch).as_deref(),
        Some(before.as_str())
    );
}

// 2. Each field an event shows, edited in turn.

/// One edit of issue "Launch" (WEB) made in Plane, and what its event shows afterwards.
struct Edit {
    what: &'static str,
    apply: fn(&mut World, &str),
    shows: fn(&str),
}

fn edits() -> Vec<Edit> {
    vec![
        Edit {
            what: "name",
            apply: |w, id| w.issue_mut(id).name = "Launch, renamed".into(),
            shows: |ics| {
                let summary = prop(ics, "SUMMARY").unwrap();
                assert!(summary.ends_with("] Launch, renamed"), "{summary}");
            },
        },
        Edit {
            what: "target_date",
            apply: |w, id| w.issue_mut(id).target_date = Some("2026-12-15".into()),
            shows: |ics| assert_eq!(props(ics, "DTEND")[0].1, "20261216"),
        },
        Edit {
            what: "start_date",
            apply: |w, id| w.issue_mut(id).start_date = Some("2026-11-25".into()),
            shows: |ics| assert_eq!(props(ics, "DTSTART")[0].1, "20261125"),
        },
        Edit {
            what: "state (to a completed one)",
            apply: |w, id| {
                let done = w.state_id("WEB", "Done").unwrap();
                w.issue_mut(id).state = Some(done);
            },
            shows: |ics| {
                assert_eq!(prop(ics, "STATUS").unwrap(), "CANCELLED");
                assert!(prop(ics, "DESCRIPTION").unwrap().contains("\nState: Done"));
            },
        },
        Edit {
            what: "priority",
            apply: |w, id| w.issue_mut(id).priority = "urgent".into(),
            shows: |ics| {
                assert_eq!(prop(ics, "COLOR").unwrap(), "red");
                assert!(
                    prop(ics, "DESCRIPTION")
                        .unwrap()
                        .contains("\nPriority: Urgent")
                );
            },
        },
        Edit {
            what: "a label added",
            apply: |w, id| {
                let frontend = w.label_id("WEB", "frontend").unwrap();
                w.issue_mut(id).labels.push(frontend);
            },
            shows: |ics| {
                let mut found = categories(ics);
                found.sort();
                assert_eq!(found, ["bug", "frontend"]);
            },
        },
        Edit {
            what: "a label removed",
            apply: |w, id| {
                let bug = w.label_id("WEB", "bug").unwrap();
                w.issue_mut(id).labels.retain(|l| *l != bug);
            },
            shows: |ics| assert_eq!(categories(ics), ["frontend"]),
        },
        Edit {
            what: "an assignee added",
            apply: |w, id| w.issue_mut(id).assignees.push(BOB.into()),
            shows: |ics| {
                let line = assignees_line(ics).expect("an Assignees line");
                assert!(line.contains("alice") && line.contains("bob"), "{line}");
            },
        },
        Edit {
            what: "an assignee removed",
            apply: |w, id| w.issue_mut(id).assignees.retain(|a| a != ALICE),
            shows: |ics| assert_eq!(assignees_line(ics).unwrap(), "Assignees: bob"),
        },
        Edit {
            what: "description",
            apply: |w, id| w.issue_mut(id).description_html = "<p>Second text</p>".into(),
            shows: |ics| {
                let description = prop(ics, "DESCRIPTION").unwrap();
                assert!(description.starts_with("Second text\n"), "{description}");
                assert!(!description.contains("First text"), "{description}");
            },
        },
    ]
}

on_both_servers!(each_field_an_event_shows_edited_in_plane_shows_and_reads_only_its_project);
fn each_field_an_event_shows_edited_in_plane_shows_and_reads_only_its_project(server: ServerKind) {
    let env = Env::start(server, seed());
    let span = ["--span", "start-to-due"];
    sync_ok(&env, &span);
    let id = env.issue_id("Launch");
    for edit in edits() {
        env.sim.with_world(|w| (edit.apply)(w, &id));
        env.sim.reset_requests();
        let run = sync_ok(&env, &span);
        assert_summary(&run, "0 created, 1 updated, 0 deleted");
        let ics = event_of(&env, "WEB", &id).expect("the event is there");
        eprintln!("after the edit of the {}:\n{ics}", edit.what);
        (edit.shows)(&ics);
        expect_reads(&env, &PROJECTS, &["WEB"]);
    }
}

#[test]
fn each_field_edited_in_plane_shows_in_the_feed_and_reads_only_its_project() {
    let env = Env::start(ServerKind::Radicale, seed());
    let dir = feed_dir(&env);
    let span = ["--span", "start-to-due"];
    feeds_ok(&env, &dir, &span);
    let id = env.issue_id("Launch");
    for edit in edits() {
        env.sim.with_world(|w| (edit.apply)(w, &id));
        env.sim.reset_requests();
        feeds_ok(&env, &dir, &span);
        let event = feed_event(&dir, "Plane: Website", &id).expect("the event is in the feed");
        eprintln!("after the edit of the {}:\n{event}", edit.what);
        (edit.shows)(&event);
        expect_reads(&env, &PROJECTS, &["WEB"]);
    }
}

// 3. Changes Plane makes without moving updated_at.

on_both_servers!(a_date_dragged_and_an_auto_close_without_updated_at_show_in_the_next_run);
fn a_date_dragged_and_an_auto_close_without_updated_at_show_in_the_next_run(server: ServerKind) {
    let env = Env::start(server, seed());
    sync_ok(&env, &[]);
    sync_ok(&env, &[]);
    // A timeline drag (bulk_update): the due date moves, updated_at does not.
    let polish = env.issue_id("Polish");
    env.sim.with_world(|w| {
        w.issue_mut_keep_updated_at(&polish).target_date = Some("2026-12-20".into())
    });
    env.sim.reset_requests();
    let run = sync_ok(&env, &[]);
    assert_summary(&run, "0 created, 1 updated, 0 deleted");
    let ics = event_of(&env, "WEB", &polish).unwrap();
    assert_eq!(props(&ics, "DTSTART")[0].1, "20261220");
    expect_reads(&env, &PROJECTS, &["WEB"]);

    // The daily auto-close: the state changes, updated_at does not.
    let rotate = env.issue_id("Rotate keys");
    env.sim.with_world(|w| {
        let cancelled = w.state_id("OPS", "Cancelled").unwrap();
        w.issue_mut_keep_updated_at(&rotate).state = Some(cancelled);
    });
    env.sim.reset_requests();
    let run = sync_ok(&env, &[]);
    assert_summary(&run, "0 created, 1 updated, 0 deleted");
    let ics = event_of(&env, "OPS", &rotate).unwrap();
    assert_eq!(prop(&ics, "STATUS").unwrap(), "CANCELLED");
    assert!(
        prop(&ics, "DESCRIPTION")
            .unwrap()
            .contains("\nState: Cancelled")
    );
    expect_reads(&env, &PROJECTS, &["OPS"]);
}

// 4. Items deleted, archived, moved, created.

/// The detail GETs of work item `id` since the last reset: their statuses.
fn detail_gets(env: &Env, id: &str) -> Vec<u16> {
    let tail = format!("/work-items/{id}/");
    env.sim
        .requests()
        .iter()
        .filter(|r| r.method == "GET" && r.path.ends_with(&tail))
        .map(|r| r.status)
        .collect()
}

on_both_servers!(a_deleted_and_an_archived_item_go_each_after_one_detail_get_says_404);
fn a_deleted_and_an_archived_item_go_each_after_one_detail_get_says_404(server: ServerKind) {
    let env = Env::start(server, seed());
    sync_ok(&env, &[]);
    sync_ok(&env, &[]);
    let polish = env.issue_id("Polish");
    let backup = env.issue_id("Backup check");
    env.sim.with_world(|w| {
        w.delete_issue(&polish);
        w.archive_issue(&backup);
    });
    env.sim.reset_requests();
    let run = sync_ok(&env, &[]);
    assert_summary(&run, "0 created, 0 updated, 2 deleted");
    assert_eq!(event_of(&env, "WEB", &polish), None);
    assert_eq!(event_of(&env, "OPS", &backup), None);
    assert_eq!(
        detail_gets(&env, &polish),
        [404],
        "the deletion is confirmed"
    );
    assert_eq!(
        detail_gets(&env, &backup),
        [404],
        "the archiving is confirmed"
    );
    expect_reads(&env, &PROJECTS, &["WEB", "OPS"]);
    // The others stay.
    assert!(event_of(&env, "WEB", &env.issue_id("Launch")).is_some());
    assert!(event_of(&env, "OPS", &env.issue_id("Rotate keys")).is_some());

    // And the next run agrees, without a question.
    env.sim.reset_requests();
    let run = sync_ok(&env, &[]);
    assert_summary(&run, NO_OP);
    expect_reads(&env, &PROJECTS, &[]);
}

on_both_servers!(an_item_moved_to_another_project_and_one_created_show_in_the_next_run);
fn an_item_moved_to_another_project_and_one_created_show_in_the_next_run(server: ServerKind) {
    let env = Env::start(server, seed());
    sync_ok(&env, &[]);
    sync_ok(&env, &[]);
    let release = env.issue_id("Release");
    let doc = env.project_id("DOC");
    let app = env.project_id("APP");
    // Release moves from APP to DOC; a new item is created in APP (so that APP still lists
    // something: a project listing nothing at all trips the deletion guard, issue 9).
    let created = env.sim.with_world(|w| {
        let todo = w.state_id(&doc, "Todo").unwrap();
        let issue = w.issue_mut(&release);
        issue.project = doc.clone();
        issue.state = Some(todo);
        w.add_issue(SeedIssue::new(app, "Fresh one").due("2026-12-24"))
    });
    env.sim.reset_requests();
    let run = sync_ok(&env, &[]);
    assert_summary(&run, "2 created, 0 updated, 1 deleted");
    assert_eq!(event_of(&env, "APP", &release), None, "gone from APP");
    let moved = event_of(&env, "DOC", &release).expect("the moved item is in DOC");
    assert!(prop(&moved, "SUMMARY").unwrap().ends_with("] Release"));
    let fresh = event_of(&env, "APP", &created).expect("the new item is in APP");
    assert_eq!(props(&fresh, "DTSTART")[0].1, "20261224");
    expect_reads(&env, &PROJECTS, &["APP", "DOC"]);
    let mut all = summaries(&env);
    all.iter_mut()
        .for_each(|s| *s = s.split_once("] ").unwrap().1.to_string());
    all.sort();
    assert_eq!(
        all,
        sorted(&[
            "Backup check",
            "Fresh one",
            "Guide",
            "Launch",
            "Polish",
            "Release",
            "Rotate keys"
        ])
    );

    env.sim.reset_requests();
    let run = sync_ok(&env, &[]);
    assert_summary(&run, NO_OP);
    expect_reads(&env, &PROJECTS, &[]);
}

// 5. A damaged, foreign or old snapshot.

/// The snapshot is kept for an hour in these tests, whatever the pass: they are about the file.
const KEEP: [(&str, &str); 1] = [("CALPLANEBOT_FULL_LISTING_EVERY", "1h")];

/// Runs sync with the snapshot kept; exit 0.
fn sync_keeping(env: &Env, extra: &[(&str, &str)]) -> support::Run {
    let mut vars = KEEP.to_vec();
    vars.extend_from_slice(extra);
    let run = env.run_with(&["sync"], &vars);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    run
}

/// A first run that leaves a snapshot; its file and parsed contents.
fn with_snapshot(env: &Env) -> (PathBuf, serde_json::Value) {
    sync_keeping(env, &[]);
    let file = plane_snapshot_file(env).expect("a Plane snapshot was written");
    let contents = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    // It is used as it is: the next run reads nothing in full.
    env.sim.reset_requests();
    sync_keeping(env, &[]);
    assert_eq!(full_reads(env), Vec::<String>::new());
    (file, contents)
}

/// After the snapshot was replaced: the run reads every project in full, warns when `warns`,
/// and its result is right (nothing to change, every event as it was, no `TAMPERED` anywhere).
fn assert_correct_full_run(env: &Env, before: &[String], warns: bool) {
    env.sim.reset_requests();
    let run = sync_keeping(env, &[]);
    assert_summary(&run, NO_OP);
    assert_eq!(full_reads(env), sorted(&PROJECTS), "every project in full");
    assert_eq!(
        run.stderr.contains("ignoring the Plane snapshot"),
        warns,
        "{}",
        run.stderr
    );
    assert_eq!(summaries(env), before);
    assert!(!summaries(env).iter().any(|s| s.contains("TAMPERED")));
    // The run wrote a good snapshot again.
    env.sim.reset_requests();
    let run = sync_keeping(env, &[]);
    assert!(!run.stderr.contains("ignoring the Plane snapshot"));
    assert_eq!(full_reads(env), Vec::<String>::new());
}

on_both_servers!(a_damaged_snapshot_is_ignored_as_a_whole_with_a_warning);
fn a_damaged_snapshot_is_ignored_as_a_whole_with_a_warning(server: ServerKind) {
    let env = Env::start(server, seed());
    let (file, contents) = with_snapshot(&env);
    let before = summaries(&env);
    let web = env.project_id("WEB");
    let ops = env.project_id("OPS");
    let launch = env.issue_id("Launch");

    // A record naming another project's issue (its name edited too: it must never show).
    let mut moved = contents.clone();
    let projects = moved["projects"].as_object_mut().unwrap();
    let mut issue = projects[&web]["issues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == launch.as_str())
        .unwrap()
        .clone();
    issue["name"] = json!("TAMPERED");
    let print = projects[&web]["fingerprints"][&launch].clone();
    projects[&ops]["issues"].as_array_mut().unwrap().push(issue);
    projects[&ops]["fingerprints"][&launch] = print;
    std::fs::write(&file, serde_json::to_vec(&moved).unwrap()).unwrap();
    assert_correct_full_run(&env, &before, true);

    // Garbage bytes.
    std::fs::write(&file, b"\x00\xff\xfegarbage{{{").unwrap();
    assert_correct_full_run(&env, &before, true);

    // A truncated file.
    let text = std::fs::read(&file).unwrap();
    std::fs::write(&file, &text[..text.len() / 2]).unwrap();
    assert_correct_full_run(&env, &before, true);
}

on_both_servers!(a_snapshot_of_another_api_key_is_not_used);
fn a_snapshot_of_another_api_key_is_not_used(server: ServerKind) {
    let env = Env::start(server, seed());
    let (_file, _) = with_snapshot(&env);
    let before = summaries(&env);
    // The key is rotated: the same configuration (same files), another key.
    let key = "plane_api_rotated0123456789abcdef0123456789";
    env.sim.with_world(|w| w.token = key.to_string());
    env.sim.reset_requests();
    let run = sync_keeping(&env, &[("PLANE_API_TOKEN", key)]);
    assert_summary(&run, NO_OP);
    assert_eq!(full_reads(&env), sorted(&PROJECTS), "every project in full");
    assert!(
        run.stderr.contains("another Plane, workspace or API key"),
        "{}",
        run.stderr
    );
    assert_eq!(summaries(&env), before);
    env.sim.reset_requests();
    sync_keeping(&env, &[("PLANE_API_TOKEN", key)]);
    assert_eq!(full_reads(&env), Vec::<String>::new(), "its own snapshot");
}

on_both_servers!(an_old_record_or_an_edited_fingerprint_sends_its_project_to_a_full_read);
fn an_old_record_or_an_edited_fingerprint_sends_its_project_to_a_full_read(server: ServerKind) {
    let env = Env::start(server, seed());
    let (file, contents) = with_snapshot(&env);
    let before = summaries(&env);
    let web = env.project_id("WEB");
    let ops = env.project_id("OPS");

    // WEB's record is older than the period (1 h): read in full, without a warning.
    let mut old = contents.clone();
    let read_at = old["projects"][&web]["read_at"].as_i64().unwrap();
    old["projects"][&web]["read_at"] = json!(read_at - 3601);
    std::fs::write(&file, serde_json::to_vec(&old).unwrap()).unwrap();
    env.sim.reset_requests();
    let run = sync_keeping(&env, &[]);
    assert_summary(&run, NO_OP);
    assert!(!run.stderr.contains("ignoring the Plane snapshot"));
    assert_eq!(full_reads(&env), ["WEB"]);
    assert_eq!(summaries(&env), before);

    // Every record older than the period: all read in full.
    let contents: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let mut old = contents.clone();
    for record in old["projects"].as_object_mut().unwrap().values_mut() {
        record["read_at"] = json!(record["read_at"].as_i64().unwrap() - 7200);
    }
    std::fs::write(&file, serde_json::to_vec(&old).unwrap()).unwrap();
    env.sim.reset_requests();
    let run = sync_keeping(&env, &[]);
    assert_summary(&run, NO_OP);
    assert_eq!(full_reads(&env), sorted(&PROJECTS));
    assert_eq!(
        probes(&env),
        Vec::<String>::new(),
        "no probe of an old record"
    );

    // OPS's record with a fingerprint edited (the name TAMPERED too): the probe disagrees,
    // OPS is read in full, the edited name never shows.
    let contents: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    let mut edited = contents.clone();
    let rotate = env.issue_id("Rotate keys");
    edited["projects"][&ops]["fingerprints"][&rotate] = json!("[\"2020-01-01\",null,null,null]");
    for issue in edited["projects"][&ops]["issues"].as_array_mut().unwrap() {
        if issue["id"] == rotate.as_str() {
            issue["name"] = json!("TAMPERED");
        }
    }
    std::fs::write(&file, serde_json::to_vec(&edited).unwrap()).unwrap();
    env.sim.reset_requests();
    let run = sync_keeping(&env, &[]);
    assert_summary(&run, NO_OP);
    assert_eq!(full_reads(&env), ["OPS"]);
    assert_eq!(summaries(&env), before);
}

// 6. A failing probe.

on_both_servers!(a_project_whose_probe_fails_is_read_in_full_and_loses_nothing);
fn a_project_whose_probe_fails_is_read_in_full_and_loses_nothing(server: ServerKind) {
    let env = Env::start(server, seed());
    sync_ok(&env, &[]);
    sync_ok(&env, &[]);
    let web_events = etags(&env, "WEB");
    let web = env.project_id("WEB");
    env.sim.inject_fault(
        FaultRule::new(
            &format!("/projects/{web}/work-items/"),
            Fault::server_error(),
        )
        .method("GET")
        .query_contains("fields=id,updated_at")
        .times(1000),
    );
    let rotate = env.issue_id("Rotate keys");
    env.sim
        .with_world(|w| w.issue_mut(&rotate).name = "Rotate keys now".into());
    env.sim.reset_requests();
    let run = sync_ok(&env, &[]);
    assert_summary(&run, "0 created, 1 updated, 0 deleted");
    let failed_probes = env
        .sim
        .requests()
        .iter()
        .filter(|r| r.status == 500)
        .count();
    if snapshot_on() {
        assert!(failed_probes >= 1, "WEB's probe failed");
        assert!(run.stderr.contains("reading project"), "{}", run.stderr);
        // WEB read in full after its probe failed; OPS (changed) too; the others not.
        assert_eq!(full_reads(&env), ["OPS", "WEB"]);
    } else {
        assert_eq!(failed_probes, 0, "nothing probes without a snapshot");
        assert_eq!(full_reads(&env), sorted(&PROJECTS));
    }
    assert_eq!(
        etags(&env, "WEB"),
        web_events,
        "WEB's events stay, each with its etag"
    );
    let ics = event_of(&env, "OPS", &rotate).unwrap();
    assert!(
        prop(&ics, "SUMMARY")
            .unwrap()
            .ends_with("] Rotate keys now")
    );
}

on_both_servers!(a_project_plane_cannot_list_at_all_is_left_untouched);
fn a_project_plane_cannot_list_at_all_is_left_untouched(server: ServerKind) {
    let env = Env::start(server, seed());
    sync_ok(&env, &[]);
    sync_ok(&env, &[]);
    let web_events = etags(&env, "WEB");
    let web = env.project_id("WEB");
    // Probe and full read both fail; meanwhile an item of WEB is deleted in Plane, and one
    // of OPS renamed.
    env.sim.inject_fault(
        FaultRule::new(
            &format!("/projects/{web}/work-items/"),
            Fault::server_error(),
        )
        .method("GET")
        .query_contains("order_by=created_at")
        .times(1000),
    );
    let polish = env.issue_id("Polish");
    let rotate = env.issue_id("Rotate keys");
    env.sim.with_world(|w| {
        w.delete_issue(&polish);
        w.issue_mut(&rotate).name = "Rotate keys now".into();
    });
    env.sim.reset_requests();
    let run = env.sync(&[]);
    assert_ne!(
        run.code, 0,
        "a project that could not be read fails the run"
    );
    assert!(
        run.stderr.contains("nothing is deleted in project"),
        "{}",
        run.stderr
    );
    assert_eq!(
        etags(&env, "WEB"),
        web_events,
        "WEB's events stay, each with its etag"
    );
    let ics = event_of(&env, "OPS", &rotate).unwrap();
    assert!(
        prop(&ics, "SUMMARY")
            .unwrap()
            .ends_with("] Rotate keys now")
    );

    // Once Plane answers again, the deletion comes through (confirmed by one 404).
    env.sim.clear_faults();
    env.sim.reset_requests();
    let run = sync_ok(&env, &[]);
    assert_summary(&run, "0 created, 0 updated, 1 deleted");
    assert_eq!(detail_gets(&env, &polish), [404]);
    assert_eq!(event_of(&env, "WEB", &polish), None);
}

// 7. The webhook keeps the snapshot true.

on_both_servers!(an_issue_webhook_costs_one_plane_request_and_the_next_sync_reads_nothing_in_full);
fn an_issue_webhook_costs_one_plane_request_and_the_next_sync_reads_nothing_in_full(
    server: ServerKind,
) {
    let env = Env::start(server, seed());
    sync_ok(&env, &[]);
    sync_ok(&env, &[]);
    let launch = env.issue_id("Launch");
    env.sim.with_world(|w| {
        let issue = w.issue_mut(&launch);
        issue.name = "Launch via webhook".into();
        issue.target_date = Some("2026-12-11".into());
    });
    let delivery = env
        .sim
        .webhook_delivery("issue", "updated", &launch, support::WEBHOOK_SECRET);
    let signature = delivery.header("X-Plane-Signature").unwrap().to_string();
    env.sim.reset_requests();
    let run = env.webhook(&delivery.body, Some(&signature), &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(env.sim.requests().len(), 1, "{:?}", env.sim.requests());
    let ics = event_of(&env, "WEB", &launch).unwrap();
    assert!(
        prop(&ics, "SUMMARY")
            .unwrap()
            .ends_with("] Launch via webhook")
    );

    env.sim.reset_requests();
    let run = sync_ok(&env, &[]);
    assert_summary(&run, NO_OP);
    // The probe of WEB finds what the webhook recorded: no project is read in full.
    expect_reads(&env, &PROJECTS, &[]);
    let ics = event_of(&env, "WEB", &launch).unwrap();
    assert_eq!(props(&ics, "DTSTART")[0].1, "20261211");
}

// 8. Parallel reads and a 429.

fn many_projects(n: usize) -> serde_json::Value {
    let projects: Vec<_> = (0..n)
        .map(|i| json!({"identifier": format!("P{i}"), "name": format!("Project {i}")}))
        .collect();
    let issues: Vec<_> = (0..n)
        .map(|i| json!({"project": format!("P{i}"), "name": format!("Task {i}"), "target_date": "2026-12-10"}))
        .collect();
    json!({"workspace": "acme", "projects": projects, "issues": issues})
}

/// The project feeds of a directory, by calendar name, sorted.
fn project_feeds(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "ics"))
        .filter_map(|p| prop(&std::fs::read_to_string(p).unwrap(), "X-WR-CALNAME"))
        .filter(|name| name.starts_with("Plane: Project "))
        .collect();
    names.sort();
    names
}

/// What [`project_feeds`] finds when every project of [`many_projects`] has its feed.
fn every_project_feed(n: usize) -> Vec<String> {
    let mut names: Vec<String> = (0..n).map(|i| format!("Plane: Project {i}")).collect();
    names.sort();
    names
}

#[test]
fn twelve_projects_are_read_three_at_a_time_with_concurrency_three() {
    let env = Env::start(ServerKind::Radicale, many_projects(12));
    // Every request takes the lab server's time, scaled down: long enough for reads to overlap.
    env.sim.set_cost_model(Some(CostModel::plane_ce_lab()));
    env.sim.set_workers(Some(Workers {
        count: 16,
        sleep_scale: 1.0,
    }));
    let dir = feed_dir(&env);
    env.sim.reset_cost();
    feeds_ok(&env, &dir, &["--concurrency", "3"]);
    assert_eq!(project_feeds(&dir), every_project_feed(12));
    let most = env.sim.max_in_flight();
    assert!(
        (2..=3).contains(&most),
        "at most 3 at once, and parallel: {most}"
    );

    // The same with the probes of a second run.
    env.sim.reset_cost();
    env.sim.reset_requests();
    feeds_ok(&env, &dir, &["--concurrency", "3"]);
    let most = env.sim.max_in_flight();
    assert!(
        (2..=3).contains(&most),
        "at most 3 at once, and parallel: {most}"
    );
    let lists = env
        .sim
        .requests()
        .iter()
        .filter(|r| listed_project(r).is_some())
        .count();
    assert_eq!(lists, 12);
}

#[test]
fn a_429_with_retry_after_pauses_every_connection() {
    let env = Env::start(ServerKind::Radicale, many_projects(12));
    // Each list takes about 0.1 s (the lab server's time), so a thread that went on sending
    // during the pause would be seen doing so.
    env.sim.set_cost_model(Some(CostModel::plane_ce_lab()));
    env.sim.set_workers(Some(Workers {
        count: 16,
        sleep_scale: 1.0,
    }));
    let p5 = env.project_id("P5");
    env.sim.inject_fault(
        FaultRule::new(
            &format!("/projects/{p5}/work-items/"),
            Fault::RateLimited {
                retry_after: Some(2),
            },
        )
        .method("GET"),
    );
    let dir = feed_dir(&env);
    let started = Instant::now();
    feeds_ok(&env, &dir, &["--concurrency", "3"]);
    assert!(started.elapsed() >= Duration::from_secs(2));
    assert_eq!(project_feeds(&dir), every_project_feed(12));
    let requests = env.sim.requests();
    let limited = requests
        .iter()
        .position(|r| r.status == 429)
        .expect("the 429 was sent");
    let at = requests[limited].answered;
    let later: Vec<Duration> = requests
        .iter()
        .filter(|r| r.received > at)
        .map(|r| r.received - at)
        .collect();
    // Requests already on their way when the 429 was answered (sent by the other two threads
    // before the client read it) arrive within moments; every other waits out the Retry-After.
    let grace = Duration::from_millis(250);
    let on_their_way = later.iter().filter(|d| **d < grace).count();
    assert!(on_their_way <= 2, "{later:?}");
    assert!(
        later
            .iter()
            .all(|d| *d < grace || *d >= Duration::from_secs(2)),
        "a request went during the pause: {later:?}"
    );
    assert!(
        later.iter().any(|d| *d >= Duration::from_secs(2)),
        "the rest came after the pause, P5's retry included: {later:?}"
    );
    let p5_lists = requests
        .iter()
        .filter(|r| listed_project(r) == Some(p5.as_str()))
        .map(|r| r.status)
        .collect::<Vec<_>>();
    assert_eq!(p5_lists, [429, 200]);
}
