//! Plane's rate limit, end to end: a workspace with more projects than the per-window budget
//! syncs completely without ever provoking a 429, because calplanebot paces itself by
//! `X-RateLimit-Remaining`, with every project read at once (the simulator's window is
//! shortened to keep the test fast, except for Plane Cloud's 60 a minute).

#[macro_use]
mod support;

use std::time::Duration;

use serde_json::json;
use support::{Env, ServerKind};

on_both_servers!(a_workspace_bigger_than_the_budget_syncs_without_a_single_429);
fn a_workspace_bigger_than_the_budget_syncs_without_a_single_429(server: ServerKind) {
    let projects: Vec<_> = (0..24)
        .map(|n| json!({"identifier": format!("P{n}"), "name": format!("Project {n}")}))
        .collect();
    let issues: Vec<_> = (0..24)
        .map(|n| json!({"project": format!("P{n}"), "name": format!("Task {n}"), "target_date": "2026-12-10"}))
        .collect();
    let env = Env::start(
        server,
        json!({"workspace": "acme", "projects": projects, "issues": issues}),
    );
    // 10 requests per 2-second window; the run needs 25.
    env.sim.set_rate_limit(Some(10));
    env.sim.set_rate_limit_window(Duration::from_secs(2));
    let run = env.sync(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("24 created"), "{}", run.stdout);
    let statuses: Vec<u16> = env.sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses.len(), 25, "{statuses:?}");
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert!(
        run.stderr.contains("rate limit is used up; waiting"),
        "{}",
        run.stderr
    );
}

#[test]
/// Plane Cloud's budget, 60 requests a minute, and a workspace of 70 projects read four at a
/// time: the first run needs 72 requests (the projects list, each project's work items, and
/// the workspace's members for the member feeds), so it waits out the window once and ends correctly, with not a single 429.
fn seventy_projects_at_sixty_a_minute_end_correctly_without_a_429() {
    let projects: Vec<_> = (0..70)
        .map(|n| json!({"identifier": format!("P{n}"), "name": format!("Project {n}")}))
        .collect();
    let issues: Vec<_> = (0..70)
        .map(|n| json!({"project": format!("P{n}"), "name": format!("Task {n}"), "target_date": "2026-12-10"}))
        .collect();
    let env = Env::start(
        ServerKind::Radicale,
        json!({"workspace": "acme", "projects": projects, "issues": issues}),
    );
    env.sim.set_rate_limit(Some(60));
    env.sim.set_rate_limit_window(Duration::from_secs(60));
    let dir = env.scratch("feeds");
    std::fs::create_dir_all(&dir).unwrap();
    let run = env.feeds_only(&dir, &["sync", "--concurrency", "4"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let statuses: Vec<u16> = env.sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses.len(), 72, "{statuses:?}");
    let lists = env
        .sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/work-items/"))
        .count();
    assert_eq!(lists, 70, "one work-item list per project");
    assert_eq!(env.sim.count("GET", "/members/"), 1, "the members list");
    assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    assert!(
        run.stderr.contains("rate limit is used up; waiting"),
        "{}",
        run.stderr
    );
    // Every project's feed, the workspace's, and the one member's (the key's owner, with no
    // events: no issue has an assignee).
    let feeds = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "ics"))
        .count();
    assert_eq!(
        feeds, 72,
        "70 project feeds, the workspace's and the member's"
    );
}
