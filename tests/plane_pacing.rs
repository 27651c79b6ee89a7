//! Plane's rate limit, end to end: a workspace with more projects than the per-window budget
//! syncs completely without ever provoking a 429, because calplanebot paces itself by
//! `X-RateLimit-Remaining` (the simulator's window is shortened to keep the test fast).

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
