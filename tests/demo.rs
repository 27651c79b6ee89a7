//! The demo a newcomer runs first (`scripts/demo`, issue 21): its default output is a guided
//! tour of at most 150 lines that holds the feed URLs, three sample events, the plan of three
//! edits as one line per event, and the next steps; `--verbose` keeps each run's full output.
//!
//! The tour is `calplanebot_testbed::demo::run`, the function `examples/demo.rs` runs; here it
//! starts the binary cargo built instead of the example re-running itself.

use std::process::Command;

use calplanebot_testbed::demo::{self, Options, Servers};

fn tour(verbose: bool) -> (String, Servers) {
    let options = Options {
        seed: concat!(env!("CARGO_MANIFEST_DIR"), "/examples/demo-workspace.json").into(),
        verbose,
        serve: false,
    };
    let calplanebot = || Command::new(env!("CARGO_BIN_EXE_calplanebot"));
    let mut out = Vec::new();
    let result = demo::run(&options, &calplanebot, &mut out);
    let text = String::from_utf8(out).expect("the tour writes UTF-8");
    match result {
        Ok(servers) => (text, servers),
        Err(error) => panic!("the tour failed: {error}\n{text}"),
    }
}

#[test]
fn the_default_tour_fits_two_screens_and_holds_what_a_newcomer_needs() {
    let (out, servers) = tour(false);
    let lines = out.lines().count();
    assert!(lines <= 150, "{lines} lines:\n{out}");

    // Three sample events as a calendar shows them, before and after the edits.
    for sample in [
        "     2026-12-01  [1] 🚀 Launch new homepage  (project Website Relaunch)\n",
        "     2026-12-08  [1] Release 3.2 to App Store  (project Mobile App)\n",
        "     2026-12-03  [1] Renew TLS certificates  (project Operations)\n",
        "     2026-12-01  [1] 🚀 Launch new homepage (renamed)  (project Website Relaunch)\n",
        "     2026-12-15  [1] Release 3.2 to App Store  (project Mobile App)\n",
    ] {
        assert!(out.contains(sample), "no {sample:?} in:\n{out}");
    }

    // The feeds, each with an http:// URL that answers and its webcal:// twin.
    let feed_server = servers.feed_server().expect("lighttpd serves the feeds");
    let base = format!("{}/", feed_server.base_url());
    let feed_files: Vec<&str> = out
        .lines()
        .filter_map(|line| line.trim().strip_prefix(base.as_str()))
        .collect();
    assert_eq!(feed_files.len(), 8, "{out}");
    for file in &feed_files {
        let webcal = format!("webcal://{}/{file}", feed_server.addr());
        assert!(out.contains(&webcal), "no {webcal} in:\n{out}");
        let reply = feed_server.get(file, &[]).expect("GET a feed");
        assert_eq!(reply.status, 200, "{file}: {reply:?}");
    }

    // The calendars at Radicale's own URLs, not the proxy's.
    let radicale = servers.radicale().url();
    let calendars = out
        .lines()
        .filter(|line| line.contains(&format!("{radicale}/alice/plane-")))
        .count();
    assert_eq!(calendars, 3, "{out}");
    let proxy = servers.proxy().url();
    assert!(
        !out.contains(&format!("{proxy}/")),
        "a proxy URL in:\n{out}"
    );

    // The runs: first sync, nothing changed, the plan as one line per event, the applying run.
    for expected in [
        "3 calendars and 27 events created in Radicale",
        "nothing changed: 1 CalDAV request, 5 Plane requests",
        "~ 2026-12-01  [1] 🚀 Launch new homepage (renamed)  (project Website Relaunch)  \
         changed: title (was \"[1] 🚀 Launch new homepage\")",
        "~ 2026-12-15  [1] Release 3.2 to App Store  (project Mobile App)  changed: date (was \
         2026-12-08)",
        "- 2026-12-03  [1] Renew TLS certificates  (project Operations)  deleted",
        "2 updated, 1 deleted, 0 created, 24 unchanged",
    ] {
        assert!(out.contains(expected), "no {expected:?} in:\n{out}");
    }
    assert_eq!(out.matches("exit 0 in ").count(), 5, "{out}");
    assert!(!out.contains("ExitCode"), "{out}");

    // The next steps.
    let port = servers.radicale().addr().port();
    for expected in [
        "the URLs above no longer answer",
        "scripts/demo --serve",
        &format!("ssh -L {port}:127.0.0.1:{port} -L "),
        "scripts/demo --verbose",
    ] {
        assert!(out.contains(expected), "no {expected:?} in:\n{out}");
    }
}

#[test]
fn the_verbose_tour_keeps_each_runs_full_output() {
    let (out, servers) = tour(true);
    for expected in [
        // The text plan with its field diff and the feed diffs.
        "+ calendar \"Plane: Website Relaunch\"",
        "-DTSTART: 2026-12-08",
        "+DTSTART: 2026-12-15",
        "~ feed project \"Plane: Website Relaunch\"",
        "dry run: would create 0, update 2, delete 1; 24 unchanged (nothing written)",
        "--- exit 0 in ",
        "36 CalDAV requests (3 MKCALENDAR, 3 PROPFIND, 27 PUT, 3 REPORT)",
    ] {
        assert!(out.contains(expected), "no {expected:?} in:\n{out}");
    }
    let proxy = servers.proxy().url();
    assert!(
        !out.contains(&format!("{proxy}/")),
        "a proxy URL in:\n{out}"
    );
    assert!(!out.contains("ExitCode"), "{out}");
}
