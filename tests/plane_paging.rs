//! Plane's page size, end to end (issue 14, point 5): calplanebot asks for 1000 items a page
//! (Plane CE's maximum), so a project of up to 1000 work items costs one request. A Plane that
//! refuses 1000 with a 400 naming `per_page` (Plane Cloud may cap at 100) gets pages of 100
//! instead, and the cache remembers it so that later runs never repeat the refused request.

#[macro_use]
mod support;

use calplanebot_testbed::plane_sim::{Fault, FaultRule, RecordedRequest};
use serde_json::json;
use support::{Env, ServerKind};

/// Two projects: WEB with 3 dated and `undated` undated issues (listed, but making no event,
/// so a long list stays cheap for the CalDAV server), OPS with one dated issue.
fn seed(undated: usize) -> serde_json::Value {
    let mut issues = vec![
        json!({"project": "WEB", "name": "Launch", "target_date": "2026-12-01"}),
        json!({"project": "WEB", "name": "Docs", "target_date": "2026-12-03"}),
        json!({"project": "WEB", "name": "Review", "target_date": "2026-12-04"}),
        json!({"project": "OPS", "name": "Rotate keys", "target_date": "2026-12-05"}),
    ];
    for n in 0..undated {
        issues.push(json!({"project": "WEB", "name": format!("Undated {n}")}));
    }
    json!({
        "workspace": "acme",
        "projects": [
            {"identifier": "WEB", "name": "Website"},
            {"identifier": "OPS", "name": "Operations"}
        ],
        "issues": issues
    })
}

/// The Plane list requests (projects and work items), as (path kind, `per_page` asked, status).
fn list_requests(env: &Env) -> Vec<(&'static str, String, u16)> {
    let per_page = |r: &RecordedRequest| {
        r.query
            .split('&')
            .find_map(|pair| pair.strip_prefix("per_page="))
            .unwrap_or("(none)")
            .to_string()
    };
    env.sim
        .requests()
        .iter()
        .filter_map(|r| {
            let kind = if r.path.ends_with("/work-items/") {
                "work-items"
            } else if r.path.ends_with("/projects/") {
                "projects"
            } else {
                return None;
            };
            Some((kind, per_page(r), r.status))
        })
        .collect()
}

/// The cache file of the run's configuration (there is one per configuration), if written.
fn cache_file(env: &Env) -> Option<String> {
    let dir = env.scratch("cache");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .ok()?
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("calendars-"))
        })
        .collect();
    assert!(files.len() <= 1, "{files:?}");
    files.pop().map(|p| std::fs::read_to_string(p).unwrap())
}

fn remembered_per_page(env: &Env) -> Option<u64> {
    let cache: serde_json::Value = serde_json::from_str(&cache_file(env)?).unwrap();
    assert!(
        cache["plane_per_page"].is_null() || cache["plane_url"] == env.sim.base_url().as_str(),
        "{cache}"
    );
    cache["plane_per_page"].as_u64()
}

const REFUSED: &str =
    "Plane refused per_page=1000 (Invalid per_page value. Cannot exceed 100.); using 100";

on_both_servers!(a_project_of_up_to_1000_issues_costs_one_request);
/// Against Plane CE (the simulator's default), a project of 953 work items is one request.
fn a_project_of_up_to_1000_issues_costs_one_request(server: ServerKind) {
    let env = Env::start(server, seed(950));
    let run = env.sync(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("4 created"), "{}", run.stdout);
    assert_eq!(
        list_requests(&env),
        [
            ("projects", "1000".to_string(), 200),
            ("work-items", "1000".to_string(), 200),
            ("work-items", "1000".to_string(), 200),
        ]
    );
    assert_eq!(env.sim.requests().len(), 3, "{:?}", env.sim.requests());
    assert!(!run.stderr.contains("refused"), "{}", run.stderr);
    // Nothing to remember: the cache holds no page size.
    assert_eq!(remembered_per_page(&env), None);
    assert!(!cache_file(&env).unwrap_or_default().contains("plane_"));
}

on_both_servers!(a_plane_capped_at_100_is_read_in_pages_of_100_and_the_cache_remembers_it);
/// A Plane capped at 100: the first run is refused once, reads every list in pages of 100 and
/// succeeds; the cache remembers 100, and the next runs (and `check`) ask for 100 at once.
/// A dry run, which writes nothing, falls back too but remembers nothing.
fn a_plane_capped_at_100_is_read_in_pages_of_100_and_the_cache_remembers_it(server: ServerKind) {
    let env = Env::start(server, seed(250));
    env.sim.set_max_per_page(100);

    let dry = env.sync(&["--dry-run"]);
    assert_eq!(dry.code, 0, "{}", dry.stderr);
    assert!(dry.stderr.contains(REFUSED), "{}", dry.stderr);
    assert_eq!(remembered_per_page(&env), None, "a dry run writes nothing");
    env.sim.reset_requests();

    let first = env.sync(&[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(first.stdout.contains("4 created"), "{}", first.stdout);
    assert_eq!(first.stderr.matches(REFUSED).count(), 1, "{}", first.stderr);
    let p = |n: &'static str, status: u16| (n, "100".to_string(), status);
    let expected_walks = [
        p("projects", 200),
        // WEB: 253 items, three pages of 100.
        p("work-items", 200),
        p("work-items", 200),
        p("work-items", 200),
        p("work-items", 200),
    ];
    let mut refused_then_walks = vec![("projects", "1000".to_string(), 400)];
    refused_then_walks.extend(expected_walks.clone());
    assert_eq!(list_requests(&env), refused_then_walks);
    assert_eq!(remembered_per_page(&env), Some(100));

    // The next run starts at 100: no refused request.
    env.sim.reset_requests();
    let second = env.sync(&[]);
    assert_eq!(second.code, 0, "{}", second.stderr);
    assert!(second.stdout.contains("0 created"), "{}", second.stdout);
    assert!(!second.stderr.contains("refused"), "{}", second.stderr);
    assert_eq!(list_requests(&env), expected_walks);
    assert_eq!(remembered_per_page(&env), Some(100));

    // `check` reads the remembered size too (and writes nothing).
    env.sim.reset_requests();
    let check = env.run_with(&["check"], &[]);
    assert_eq!(check.code, 0, "{}", check.stdout);
    assert!(
        check
            .stdout
            .contains("asked for 100 items a page (Plane refused 1000)"),
        "{}",
        check.stdout
    );
    assert_eq!(list_requests(&env), [p("projects", 200)]);
}

#[test]
/// Without CalDAV there is no calendar to remember, but the page size is remembered all the
/// same, in the configuration's own cache file; `calplanebot feeds` starts from it too.
fn a_feeds_only_configuration_remembers_the_page_size_too() {
    let env = Env::start(ServerKind::Radicale, seed(150));
    env.sim.set_max_per_page(100);
    let dir = env.scratch("feeds");
    std::fs::create_dir_all(&dir).unwrap();
    let first = env.feeds_only(&dir, &["sync"]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert!(first.stderr.contains(REFUSED), "{}", first.stderr);
    let cache = cache_file(&env).expect("a cache file");
    let cache: serde_json::Value = serde_json::from_str(&cache).unwrap();
    assert_eq!(cache["caldav_url"], "", "{cache}");
    assert_eq!(cache["calendars"], json!({}), "{cache}");
    assert_eq!(cache["plane_per_page"], 100, "{cache}");

    for args in [&["sync"][..], &["feeds"]] {
        env.sim.reset_requests();
        let run = env.feeds_only(&dir, args);
        assert_eq!(run.code, 0, "{args:?}: {}", run.stderr);
        let asked: Vec<String> = list_requests(&env).into_iter().map(|r| r.1).collect();
        assert_eq!(asked, ["100", "100", "100", "100"], "{args:?}");
    }
    assert_eq!(env.caldav_count("PROPFIND"), 0, "no CalDAV at all");
}

on_both_servers!(a_400_that_does_not_name_per_page_is_still_an_error);
/// Only a refusal naming `per_page` makes calplanebot fall back: any other 400 fails as it did,
/// with no second attempt and nothing remembered.
fn a_400_that_does_not_name_per_page_is_still_an_error(server: ServerKind) {
    let env = Env::start(server, seed(0));
    let web = env.project_id("WEB");
    env.sim.inject_fault(
        FaultRule::new(
            &format!("/projects/{web}/work-items/"),
            Fault::Status(400, r#"{"detail":"Invalid cursor parameter."}"#.into()),
        )
        .times(100),
    );
    let run = env.sync(&[]);
    assert_eq!(run.code, 1, "WEB failed, OPS synced: {}", run.stderr);
    assert!(run.stderr.contains("HTTP 400"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("nothing is deleted in project Website (WEB)"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("refused"), "{}", run.stderr);
    // The two projects are read at once: in either order.
    let mut asked = list_requests(&env);
    asked.sort();
    assert_eq!(
        asked,
        [
            ("projects", "1000".to_string(), 200),
            ("work-items", "1000".to_string(), 200),
            ("work-items", "1000".to_string(), 400),
        ],
        "one attempt for WEB, at 1000"
    );
    assert_eq!(remembered_per_page(&env), None);

    // The projects list refused that way stops the run, as before.
    env.sim.clear_faults();
    env.sim.reset_requests();
    env.sim.inject_fault(
        FaultRule::new(
            "/projects/",
            Fault::Status(400, r#"{"detail":"Invalid cursor parameter."}"#.into()),
        )
        .times(100),
    );
    let run = env.sync(&[]);
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(run.stderr.contains("HTTP 400"), "{}", run.stderr);
    assert_eq!(list_requests(&env), [("projects", "1000".to_string(), 400)]);
}
