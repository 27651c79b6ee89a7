//! End to end: subscription feeds (issue 13) written by the real `calplanebot sync` from the
//! Plane simulator, with and without a CalDAV target, read back from the directory with the
//! test's own minimal iCalendar reader.

#[macro_use]
mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use calplanebot_testbed::plane_sim::{Fault, FaultRule};
use serde_json::json;
use support::{Env, Run, ServerKind, prop, props};

const ALICE: &str = "00000000-0000-4000-8000-0000000000a1";
const BOB: &str = "00000000-0000-4000-8000-0000000000b2";
const CAROL: &str = "00000000-0000-4000-8000-0000000000c3";
const SECRET: &str = support::FEED_SECRET;

fn seed() -> serde_json::Value {
    json!({
        "workspace": "acme",
        "users": [
            {"id": ALICE, "first_name": "Alice", "last_name": "A", "email": "alice@acme.test", "display_name": "alice"},
            {"id": BOB, "first_name": "Bob", "last_name": "B", "email": "bob@acme.test", "display_name": "bob"},
            {"id": CAROL, "first_name": "Carol", "last_name": "C", "email": "carol@acme.test", "display_name": "carol"}
        ],
        "projects": [
            {"identifier": "WEB", "name": "Website"},
            {"identifier": "OPS", "name": "Operations"}
        ],
        "issues": [
            {"project": "WEB", "name": "Launch", "target_date": "2026-12-01", "priority": "urgent", "assignees": [ALICE, BOB]},
            {"project": "WEB", "name": "Docs", "target_date": "2026-12-03", "assignees": [ALICE]},
            {"project": "WEB", "name": "Someday", "assignees": [ALICE]},
            {"project": "OPS", "name": "Rotate keys", "target_date": "2026-12-05", "assignees": [BOB]},
            {"project": "OPS", "name": "Backup check", "target_date": "2026-12-06"}
        ]
    })
}

/// The feed directory of a test, created empty.
fn feed_dir(env: &Env) -> PathBuf {
    let dir = env.scratch("feeds");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the binary with feeds in `dir`, and CalDAV only when `caldav`.
fn run(env: &Env, dir: &Path, caldav: bool, args: &[&str]) -> Run {
    env.run_feeds(dir, caldav, args, &[])
}

/// Runs `calplanebot webhook` with feeds only, on the delivery Plane would send now for an
/// update of issue `id`.
fn deliver(env: &Env, dir: &Path, id: &str) -> Run {
    let delivery = env
        .sim
        .webhook_delivery("issue", "updated", id, support::WEBHOOK_SECRET);
    let signature = delivery.header("X-Plane-Signature").unwrap().to_string();
    let dir = dir.display().to_string();
    let mut command = env.command(
        &["webhook"],
        &[
            ("PLANE_WEBHOOK_SECRET", support::WEBHOOK_SECRET),
            ("PLANE_WEBHOOK_SIGNATURE", signature.as_str()),
            ("CALPLANEBOT_FEED_DIR", dir.as_str()),
            ("CALPLANEBOT_FEED_SECRET", SECRET),
        ],
    );
    for name in ["CALDAV_URL", "CALDAV_USERNAME", "CALDAV_PASSWORD"] {
        command.env_remove(name);
    }
    let mut child = command
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary runs");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(&delivery.body)
            .expect("the body is written");
    }
    support::finish(child, "webhook")
}

/// Every file of the directory: name → (bytes, mtime).
fn files(dir: &Path) -> BTreeMap<String, (Vec<u8>, std::time::SystemTime)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            (
                name,
                (
                    std::fs::read(e.path()).unwrap(),
                    e.metadata().unwrap().modified().unwrap(),
                ),
            )
        })
        .collect()
}

/// The feeds of the directory by calendar name: their SUMMARY values, sorted.
fn feeds_by_name(dir: &Path) -> BTreeMap<String, Vec<String>> {
    files(dir)
        .into_iter()
        .filter(|(name, _)| name.ends_with(".ics"))
        .filter_map(|(_, (bytes, _))| {
            let text = String::from_utf8(bytes).unwrap();
            let name = prop(&text, "X-WR-CALNAME")?;
            let mut summaries: Vec<String> = props(&text, "SUMMARY")
                .into_iter()
                .map(|(_, v)| support::unescape(&v))
                .map(|s| s.split_once("] ").map_or(s.clone(), |(_, t)| t.to_string()))
                .collect();
            summaries.sort();
            Some((name, summaries))
        })
        .collect()
}

fn expected(entries: &[(&str, &[&str])]) -> BTreeMap<String, Vec<String>> {
    entries
        .iter()
        .map(|(name, summaries)| {
            let mut summaries: Vec<String> = summaries.iter().map(|s| s.to_string()).collect();
            summaries.sort();
            (name.to_string(), summaries)
        })
        .collect()
}

#[test]
fn feeds_only_writes_every_feed_and_a_run_with_nothing_changed_rewrites_nothing() {
    let env = Env::start(ServerKind::Radicale, seed());
    let dir = feed_dir(&env);
    std::fs::write(dir.join("index.html"), "not calplanebot's").unwrap();
    let first = run(&env, &dir, false, &["sync"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(
        first
            .stdout
            .contains("feeds: 6 written, 0 removed, 0 unchanged"),
        "{}",
        first.stdout
    );
    assert_eq!(
        env.proxy.counts().values().sum::<usize>(),
        0,
        "no CalDAV request"
    );
    assert_eq!(
        feeds_by_name(&dir),
        expected(&[
            ("Plane: Website", &["Launch", "Docs"]),
            ("Plane: Operations", &["Rotate keys", "Backup check"]),
            ("Plane: alice", &["Launch", "Docs"]),
            ("Plane: bob", &["Launch", "Rotate keys"]),
            ("Plane: carol", &[]),
            (
                "Plane: acme",
                &["Launch", "Docs", "Rotate keys", "Backup check"]
            ),
        ])
    );
    // File names are secrets: never in the log.
    for name in files(&dir).keys().filter(|n| n.ends_with(".ics")) {
        let token = name.trim_end_matches(".ics");
        assert!(!first.stderr.contains(token), "{token} in the log");
        assert!(!first.stdout.contains(token), "{token} in the plan");
    }

    // Nothing changed: no file is written (same bytes, same mtime).
    let before = files(&dir);
    std::thread::sleep(std::time::Duration::from_millis(20));
    let second = run(&env, &dir, false, &["sync"]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(
        second
            .stdout
            .contains("feeds: 0 written, 0 removed, 6 unchanged"),
        "{}",
        second.stdout
    );
    assert_eq!(files(&dir), before);

    // Reassigning moves the event from one member feed to the other.
    let docs = env.issue_id("Docs");
    env.sim
        .with_world(|w| w.issue_mut(&docs).assignees = vec![CAROL.to_string()]);
    let third = run(&env, &dir, false, &["sync"]);
    assert_eq!(third.code, 0, "{}", third.stderr);
    let now = feeds_by_name(&dir);
    assert_eq!(now["Plane: alice"], ["Launch"]);
    assert_eq!(now["Plane: carol"], ["Docs"]);
    assert_eq!(
        std::fs::read_to_string(dir.join("index.html")).unwrap(),
        "not calplanebot's"
    );
}

#[test]
fn a_failed_project_keeps_its_events_in_every_feed_and_calplanebot_feeds_lists_the_urls() {
    let env = Env::start(ServerKind::Radicale, seed());
    let dir = feed_dir(&env);
    assert_eq!(run(&env, &dir, false, &["sync"]).code, 0);
    let before = feeds_by_name(&dir);
    // OPS changes in Plane, but its walk fails this run: OPS's events stay as they were.
    let rotate = env.issue_id("Rotate keys");
    env.sim
        .with_world(|w| w.issue_mut(&rotate).name = "Rotate keys now".into());
    let ops = env.project_id("OPS");
    env.sim.inject_fault(
        FaultRule::new(
            &format!("/projects/{ops}/work-items/"),
            Fault::server_error(),
        )
        .times(100),
    );
    let failed = run(&env, &dir, false, &["sync", "--retries", "0"]);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert_eq!(feeds_by_name(&dir), before);
    env.sim.clear_faults();

    // `feeds` lists every feed with its URLs, and writes nothing.
    let listing = files(&dir);
    let listed = run(&env, &dir, false, &["feeds", "--format", "json"]);
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    assert_eq!(files(&dir), listing);
    let feeds: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    let feeds = feeds.as_array().unwrap();
    assert_eq!(feeds.len(), 6);
    for feed in feeds {
        let file = feed["file"].as_str().unwrap();
        assert!(listing.contains_key(file), "{file} is written");
        assert_eq!(
            feed["url"].as_str().unwrap(),
            format!("https://cal.example.com/feeds/{file}")
        );
        assert_eq!(
            feed["webcal"].as_str().unwrap(),
            format!("webcal://cal.example.com/feeds/{file}")
        );
    }
    let bob = feeds.iter().find(|f| f["name"] == "Plane: bob").unwrap();
    assert_eq!(
        (bob["kind"].as_str(), bob["events"].as_u64()),
        (Some("member"), Some(2))
    );
}

on_both_servers!(both_targets_from_one_fetch);
/// CalDAV and feeds together: one Plane fetch serves both.
fn both_targets_from_one_fetch(server: ServerKind) {
    let env = Env::start(server, seed());
    let dir = feed_dir(&env);
    let run = run(&env, &dir, true, &["sync"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout.contains("4 created, 0 updated, 0 deleted"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("feeds: 6 written"), "{}", run.stdout);
    assert!(env.event("WEB", "Launch").is_some());
    assert_eq!(feeds_by_name(&dir)["Plane: acme"].len(), 4);
    // One walk per project, not one per target.
    let walks = env
        .sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/work-items/"))
        .count();
    assert_eq!(walks, 2);
}

#[test]
fn check_reports_the_feed_target_with_or_without_caldav() {
    let env = Env::start(ServerKind::Radicale, seed());
    let dir = feed_dir(&env);
    let feeds_only = run(&env, &dir, false, &["check"]);
    assert_eq!(
        feeds_only.code, 0,
        "{}{}",
        feeds_only.stdout, feeds_only.stderr
    );
    assert!(
        feeds_only.stdout.contains("no CalDAV; feeds"),
        "{}",
        feeds_only.stdout
    );
    assert!(
        feeds_only
            .stdout
            .lines()
            .any(|l| l.contains("feed directory") && l.contains("https://cal.example.com/feeds/")),
        "{}",
        feeds_only.stdout
    );
    assert!(
        !feeds_only.stdout.contains("CalDAV server"),
        "{}",
        feeds_only.stdout
    );
    // check writes nothing that stays.
    assert!(files(&dir).is_empty());

    let both = run(&env, &dir, true, &["check"]);
    assert_eq!(both.code, 0, "{}{}", both.stdout, both.stderr);
    assert!(both.stdout.contains("CalDAV server"), "{}", both.stdout);
    assert!(both.stdout.contains("feed directory"), "{}", both.stdout);

    // A feed URL is a secret: plain http to another host fails the check.
    let mut command = env.command(
        &["check"],
        &[
            ("CALPLANEBOT_FEED_DIR", dir.to_str().unwrap()),
            ("CALPLANEBOT_FEED_SECRET", SECRET),
            ("CALPLANEBOT_FEED_BASE_URL", "http://cal.example.com/feeds"),
        ],
    );
    command.env_remove("CALDAV_URL");
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(5), "{stdout}");
    assert!(stdout.contains("plain http://"), "{stdout}");

    // Issue 20: once a run has written the directory, a configuration with another span (or
    // another secret) is not its writer, and check says so, writing nothing.
    assert_eq!(run(&env, &dir, false, &["sync"]).code, 0);
    let before = files(&dir);
    let mut command = env.command(
        &["check"],
        &[
            ("CALPLANEBOT_FEED_DIR", dir.to_str().unwrap()),
            ("CALPLANEBOT_FEED_SECRET", SECRET),
            ("CALPLANEBOT_SPAN", "start-to-due"),
        ],
    );
    command.env_remove("CALDAV_URL");
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(5), "{stdout}");
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("✗") && l.contains("another configuration")),
        "{stdout}"
    );
    assert_eq!(files(&dir), before, "check writes nothing");
}

/// A seed that exercises every row of the mapping table.
fn mapping_seed() -> serde_json::Value {
    json!({
        "workspace": "acme",
        "users": [
            {"id": ALICE, "first_name": "Alice", "last_name": "A", "email": "alice@acme.test", "display_name": "alice"},
            {"id": BOB, "first_name": "Bob", "last_name": "B", "email": "bob@acme.test", "display_name": "bob"}
        ],
        "projects": [
            {"identifier": "WEB", "name": "Web, app; Ops", "labels": [
                {"name": "bug", "color": "#ff0000"},
                {"name": "frontend, ui", "color": "#00ff00"}
            ]}
        ],
        "issues": [
            {"project": "WEB", "name": "Launch landing page 🚀", "target_date": "2026-12-31", "priority": "urgent",
             "state": "In Progress", "labels": ["frontend, ui", "bug"], "assignees": [ALICE, BOB],
             "description_html": "<p>Ship it &amp; celebrate</p><ul><li><p>hero</p></li></ul>"},
            {"project": "WEB", "name": "修复登录问题", "target_date": "2028-02-29", "priority": "high", "state": "Done"},
            {"project": "WEB", "name": "Comma, semi; back\\slash", "target_date": "2026-12-05", "priority": "low", "state": "Cancelled"},
            {"project": "WEB", "name": "No priority", "target_date": "2027-01-11", "priority": "none", "state": "Backlog"}
        ]
    })
}

#[test]
fn two_real_parsers_read_every_feed_over_http_and_an_unchanged_feed_answers_304() {
    use calplanebot_testbed::feed_readers::{EventJson, read_with_both};
    use calplanebot_testbed::feed_server::FeedServer;
    let env = Env::start(ServerKind::Radicale, mapping_seed());
    let dir = feed_dir(&env);
    let synced = run(&env, &dir, false, &["sync"]);
    assert_eq!(synced.code, 0, "{}", synced.stderr);
    let server = FeedServer::start(&dir).expect("lighttpd serves the feeds");
    let web = env.project_id("WEB");
    let workspace_file = files(&dir)
        .into_iter()
        .find(|(_, (bytes, _))| String::from_utf8_lossy(bytes).contains("X-WR-CALNAME:Plane: acme"))
        .map(|(name, _)| name)
        .expect("the workspace feed");

    // Every feed reads with both parsers, and both read the same.
    let mut read = BTreeMap::new();
    for name in files(&dir).keys().filter(|n| n.ends_with(".ics")) {
        let [icaljs, python] = read_with_both(&server.url(name)).expect("both parsers read it");
        for feed in [&icaljs, &python] {
            assert_eq!(feed.http_status, 200);
            assert_eq!(
                feed.content_type.as_deref(),
                Some("text/calendar; charset=utf-8"),
                "{}",
                feed.reader
            );
            assert_eq!(feed.calendar.method.as_deref(), Some("PUBLISH"));
            assert_eq!(feed.calendar.version.as_deref(), Some("2.0"));
            assert_eq!(feed.calendar.refresh_interval.as_deref(), Some("PT15M"));
            assert_eq!(feed.calendar.x_published_ttl.as_deref(), Some("PT15M"));
            assert_eq!(
                feed.calendar.x_calplanebot_workspace.as_deref(),
                Some("acme")
            );
            assert_eq!(feed.calendar.name, feed.calendar.x_wr_calname);
        }
        assert_eq!(icaljs.events, python.events, "{name}: the parsers disagree");
        read.insert(icaljs.calendar.name.clone().unwrap(), icaljs);
    }
    let names: Vec<&str> = read.keys().map(String::as_str).collect();
    assert_eq!(
        names,
        [
            "Plane: Web, app; Ops",
            "Plane: acme",
            "Plane: alice",
            "Plane: bob"
        ],
        "a name with a comma reads as written"
    );
    assert_eq!(read["Plane: alice"].events.len(), 1);
    assert_eq!(read["Plane: acme"].events.len(), 4);

    // Every mapping row of design.md, as the parsers read it.
    let event = |name: &str| -> EventJson {
        read["Plane: acme"]
            .events
            .iter()
            .find(|e| e.summary.as_deref().is_some_and(|s| s.ends_with(name)))
            .unwrap_or_else(|| panic!("no event {name}"))
            .clone()
    };
    let launch = event("] Launch landing page 🚀");
    let id = env.issue_id("Launch landing page 🚀");
    let seq = env.sim.with_world(|w| w.issue(&id).unwrap().sequence_id);
    assert_eq!(
        launch.uid.as_deref(),
        Some(format!("plane-issue-{id}@calplanebot").as_str())
    );
    assert_eq!(
        launch.summary.as_deref(),
        Some(format!("[{seq}] Launch landing page 🚀").as_str())
    );
    assert_eq!(
        launch.description.as_deref(),
        Some(
            "Ship it & celebrate\n- hero\n---\nPriority: Urgent\nState: In Progress\nAssignees: alice, bob\nLabels: bug, frontend, ui\nProject: Web, app; Ops"
        )
    );
    // All-day, DTEND exclusive: the day after, across a year end.
    assert_eq!(
        (
            launch.dtstart.as_deref(),
            launch.dtstart_is_date,
            launch.dtend.as_deref(),
            launch.dtend_is_date
        ),
        (Some("2026-12-31"), true, Some("2027-01-01"), true)
    );
    assert_eq!(launch.status.as_deref(), Some("CONFIRMED"));
    assert_eq!(launch.color.as_deref(), Some("red"));
    let mut categories = launch.categories.clone();
    categories.sort();
    assert_eq!(categories, ["bug", "frontend, ui"]);
    assert_eq!(
        launch.url.as_deref(),
        Some(format!("{}/acme/projects/{web}/issues/{id}", env.sim.base_url()).as_str())
    );
    assert_eq!(launch.workspace.as_deref(), Some("acme"));
    assert_eq!(launch.project.as_deref(), Some(web.as_str()));
    // DTSTAMP is the issue's updated_at, not the time of the run.
    let updated = env
        .sim
        .with_world(|w| w.issue(&id).unwrap().updated_at.clone().unwrap());
    assert_eq!(
        launch.dtstamp.as_deref().map(|s| &s[..16]),
        Some(&updated[..16])
    );
    let cjk = event("] 修复登录问题");
    assert_eq!(
        (cjk.status.as_deref(), cjk.color.as_deref()),
        (Some("CANCELLED"), Some("orange"))
    );
    assert_eq!(
        (cjk.dtstart.as_deref(), cjk.dtend.as_deref()),
        (Some("2028-02-29"), Some("2028-03-01"))
    );
    let punct = event("] Comma, semi; back\\slash");
    assert_eq!(
        (punct.status.as_deref(), punct.color.as_deref()),
        (Some("CANCELLED"), Some("green"))
    );
    let none = event("] No priority");
    assert_eq!(none.color, None);
    assert!(none.categories.is_empty());

    // An unchanged feed: a second run rewrites nothing, and the web server answers 304.
    let first = server.get(&workspace_file, &[]).unwrap();
    let etag = first.header("ETag").expect("an ETag").to_string();
    let last_modified = first
        .header("Last-Modified")
        .expect("a Last-Modified")
        .to_string();
    let again = run(&env, &dir, false, &["sync"]);
    assert_eq!(again.code, 0, "{}", again.stderr);
    let conditional = server
        .get(&workspace_file, &[("If-None-Match", etag.as_str())])
        .unwrap();
    assert_eq!(conditional.status, 304);
    let conditional = server
        .get(
            &workspace_file,
            &[("If-Modified-Since", last_modified.as_str())],
        )
        .unwrap();
    assert_eq!(conditional.status, 304);
}

#[test]
fn a_webhook_patches_the_feeds_that_hold_the_issue_with_one_plane_request() {
    let env = Env::start(ServerKind::Radicale, seed());
    let dir = feed_dir(&env);
    assert_eq!(run(&env, &dir, false, &["sync"]).code, 0);
    let docs = env.issue_id("Docs");
    // Docs moves from alice to carol, and its date changes.
    env.sim.with_world(|w| {
        let issue = w.issue_mut(&docs);
        issue.assignees = vec![CAROL.to_string()];
        issue.target_date = Some("2026-12-24".into());
    });
    let untouched = files(&dir)
        .into_iter()
        .filter(|(_, (bytes, _))| {
            String::from_utf8_lossy(bytes).contains("X-WR-CALNAME:Plane: Operations")
        })
        .collect::<Vec<_>>();
    env.sim.reset_requests();
    let webhook = deliver(&env, &dir, &docs);
    assert_eq!(webhook.code, 0, "{}", webhook.stderr);
    assert_eq!(
        env.sim.requests().len(),
        1,
        "one Plane request: {:?}",
        env.sim.requests()
    );
    let now = feeds_by_name(&dir);
    assert_eq!(now["Plane: alice"], ["Launch"]);
    assert_eq!(now["Plane: carol"], ["Docs"]);
    assert_eq!(now["Plane: acme"].len(), 4);
    // A feed that does not hold the issue is not rewritten.
    for (name, (bytes, mtime)) in untouched {
        let (now_bytes, now_mtime) = files(&dir).remove(&name).unwrap();
        assert_eq!((now_bytes, now_mtime), (bytes, mtime));
    }
    // The same as a full sync would write: the next sync has nothing to do.
    let sync = run(&env, &dir, false, &["sync"]);
    assert!(
        sync.stdout
            .contains("feeds: 0 written, 0 removed, 6 unchanged"),
        "{}",
        sync.stdout
    );

    // The date removed: the event leaves every feed.
    env.sim
        .with_world(|w| w.issue_mut(&docs).target_date = None);
    let removed = deliver(&env, &dir, &docs);
    assert_eq!(removed.code, 0, "{}", removed.stderr);
    let now = feeds_by_name(&dir);
    assert!(
        now.values().all(|s| !s.contains(&"Docs".to_string())),
        "{now:?}"
    );
    let sync = run(&env, &dir, false, &["sync"]);
    assert!(sync.stdout.contains("feeds: 0 written"), "{}", sync.stdout);
}

#[test]
fn a_dry_run_shows_feed_changes_and_writes_nothing() {
    let env = Env::start(ServerKind::Radicale, seed());
    let dir = feed_dir(&env);
    let dry = run(&env, &dir, false, &["sync", "--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(
        dry.stdout
            .contains("+ feed workspace \"Plane: acme\" (4 events)"),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout
            .contains("feeds, dry run: would write 6, remove 0"),
        "{}",
        dry.stdout
    );
    // Issue 21: the closing log line says it was a dry run and what it would write, and so
    // does the JSON document.
    assert!(
        dry.stderr.contains("dry run done, nothing written")
            && dry.stderr.contains("would write 6 feeds, remove 0"),
        "{}",
        dry.stderr
    );
    assert!(!dry.stderr.contains("feeds written"), "{}", dry.stderr);
    let json = run(
        &env,
        &dir,
        false,
        &["sync", "--dry-run", "--format", "json"],
    );
    assert_eq!(json.code, 0, "{}", json.stderr);
    let doc: serde_json::Value = serde_json::from_str(&json.stdout).expect("one JSON document");
    assert_eq!(doc["report"]["dry_run"], true);
    assert_eq!(doc["report"]["feeds_written"], 6);
    assert!(doc["plan"].is_null(), "no CalDAV target: {doc}");
    let summary = doc["report"]["feeds_summary"].as_str().unwrap();
    assert!(
        summary.contains("dry run: would write 6, remove 0"),
        "{summary}"
    );
    assert!(files(&dir).is_empty(), "a dry run writes nothing");
    assert_eq!(run(&env, &dir, false, &["sync"]).code, 0);
    let before = files(&dir);
    let docs = env.issue_id("Docs");
    env.sim
        .with_world(|w| w.issue_mut(&docs).name = "Docs, revised".into());
    let dry = run(&env, &dir, false, &["sync", "--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(
        dry.stdout.contains("~ feed project \"Plane: Website\""),
        "{}",
        dry.stdout
    );
    assert!(
        dry.stdout.contains("+SUMMARY:[2] Docs\\, revised"),
        "{}",
        dry.stdout
    );
    assert_eq!(files(&dir), before, "a dry run writes nothing");
}

#[test]
fn without_the_members_list_member_feeds_follow_the_assignees_seen() {
    let env = Env::start(ServerKind::Radicale, seed());
    // The key's owner is a Guest of the workspace: Plane refuses it the members list.
    env.sim.with_world(|w| w.users[0].role = Some(5));
    let dir = feed_dir(&env);
    let run = run(&env, &dir, false, &["sync"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(
        run.stderr
            .matches("may not read the workspace's members")
            .count(),
        1,
        "said once: {}",
        run.stderr
    );
    let names: Vec<String> = feeds_by_name(&dir).into_keys().collect();
    // carol has no issue: without the list, she has no feed yet.
    assert_eq!(
        names,
        [
            "Plane: Operations",
            "Plane: Website",
            "Plane: acme",
            "Plane: alice",
            "Plane: bob"
        ]
    );
}

#[test]
fn a_caldav_server_that_is_down_does_not_stop_the_feeds() {
    let env = Env::start(ServerKind::Radicale, seed());
    let dir = feed_dir(&env);
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{closed}/");
    let dir_text = dir.display().to_string();
    let output = env
        .command(
            &["sync", "--retries", "0", "--connect-timeout", "1"],
            &[
                ("CALDAV_URL", url.as_str()),
                ("CALPLANEBOT_FEED_DIR", dir_text.as_str()),
                ("CALPLANEBOT_FEED_SECRET", SECRET),
            ],
        )
        .output()
        .unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    assert!(stderr.contains("no calendar was changed"), "{stderr}");
    assert!(stdout.contains("feeds: 6 written"), "{stdout}");
    assert_eq!(feeds_by_name(&dir).len(), 6);
}

on_both_servers!(an_issue_deleted_between_two_pages_stays_in_every_target_with_one_question);
/// The deletion rule of issue 12 holds for feeds: an issue the walk skipped (another was
/// deleted between two pages) stays in the feeds and in the calendar, and the one detail
/// request that proves it alive serves both targets.
fn an_issue_deleted_between_two_pages_stays_in_every_target_with_one_question(server: ServerKind) {
    let mut seed = seed();
    let issues = seed["issues"].as_array_mut().unwrap();
    for n in 0..146 {
        issues.push(
            json!({"project": "WEB", "name": format!("Task {n}"), "target_date": "2027-01-15"}),
        );
    }
    let env = Env::start(server, seed);
    // A Plane that lists at most 100 a page (as Plane Cloud may): WEB's list is two pages.
    env.sim.set_max_per_page(100);
    let dir = feed_dir(&env);
    assert_eq!(run(&env, &dir, true, &["sync"]).code, 0);
    let web = env.project_id("WEB");
    let skipped = env.sim.with_world(|w| {
        let mut listable: Vec<_> = w
            .issues
            .iter()
            .filter(|i| i.project == web && w.is_listable(i))
            .map(|i| (i.created_at.clone(), i.id.clone(), i.name.clone()))
            .collect();
        listable.sort();
        listable[100].clone()
    });
    let deleted = env.issue_id("Task 3");
    // A full read comes (an issue of the second page was renamed, which a probe sees), and
    // someone deletes an issue of the first page between its two pages.
    let renamed = env.issue_id("Task 145");
    env.sim
        .with_world(|w| w.issue_mut(&renamed).name = "Task 145, renamed".into());
    env.sim.edit_after(
        FaultRule::new(
            &format!("/projects/{web}/work-items/"),
            Fault::server_error(),
        )
        .method("GET")
        // The full read's first page (with the Plane snapshot on, a probe comes first).
        .query_contains("expand="),
        move |w| w.delete_issue(&deleted),
    );
    env.sim.reset_requests();
    let sync = run(&env, &dir, true, &["sync"]);
    assert_eq!(sync.code, 0, "{}", sync.stderr);
    assert!(
        feeds_by_name(&dir)["Plane: Website"].contains(&skipped.2),
        "the skipped live issue stays in the feed"
    );
    assert!(
        env.event("WEB", &skipped.2).is_some(),
        "and in the calendar"
    );
    assert_eq!(
        env.sim
            .count("GET", &format!("/projects/{web}/work-items/{}/", skipped.1)),
        1,
        "one question serves both targets"
    );
    // Next run: the deleted one is gone from both, after one confirming 404.
    let sync = run(&env, &dir, true, &["sync"]);
    assert_eq!(sync.code, 0, "{}", sync.stderr);
    assert!(!feeds_by_name(&dir)["Plane: Website"].contains(&"Task 3".to_string()));
    assert_eq!(env.event("WEB", "Task 3"), None);
}
