//! `calplanebot check` (issue 5, point 3) against the Plane simulator and a real Radicale: every
//! check passes on a good configuration, each kind of broken configuration fails its own line
//! with a hint, the exit status says which kind, no secret is printed, and nothing is written.

#[macro_use]
mod support;

use base64::Engine as _;
use serde_json::json;
use support::{Env, Run, ServerKind, line};

fn seed() -> serde_json::Value {
    json!({
        "workspace": "acme",
        "users": [{"first_name": "Ada", "last_name": "L", "email": "ada@acme.test", "display_name": "ada"}],
        "projects": [
            {"identifier": "WEB", "name": "Website"},
            {"identifier": "OPS", "name": "Operations"},
            {"identifier": "PUB", "name": "Public", "is_member": false},
            {"identifier": "ARC", "name": "Archived", "archived_at": "2026-10-01T00:00:00Z"}
        ],
        "issues": [
            {"project": "WEB", "name": "Launch", "target_date": "2026-12-01"},
            {"project": "OPS", "name": "Rotate keys", "target_date": "2026-12-05"}
        ]
    })
}

/// `check` with fast failure: no retries, short connect timeout.
fn check(env: &Env, extra: &[(&str, &str)]) -> Run {
    let mut vars = vec![
        ("CALPLANEBOT_RETRIES", "0"),
        ("CALPLANEBOT_CONNECT_TIMEOUT", "2"),
        ("RUST_LOG", "trace"),
    ];
    vars.extend_from_slice(extra);
    env.run_with(&["check"], &vars)
}

/// The `hint:` line right under the failure of `label`.
fn hint<'a>(run: &'a Run, label: &str) -> &'a str {
    let prefix = format!("✗ {label}");
    let mut lines = run.stdout.lines();
    lines
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no failure of {label:?} in\n{}", run.stdout));
    let next = lines.next().unwrap_or_default();
    assert!(next.starts_with("  hint: "), "{}", run.stdout);
    next
}

fn last_line(run: &Run) -> &str {
    run.stdout.lines().last().unwrap_or_default()
}

/// No secret, in any form the binary could leak it, on stdout or stderr (the runs above are
/// at RUST_LOG=trace). `extra` are secrets a test set itself.
fn assert_no_secret(env: &Env, run: &Run, extra: &[&str]) {
    let password = env.server.password().to_string();
    let token = env.sim.token();
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{password}", env.server.username()));
    let mut secrets = vec![password.as_str(), token.as_str(), basic.as_str()];
    secrets.extend_from_slice(extra);
    for secret in secrets {
        assert!(!run.stdout.contains(secret), "a secret on stdout");
        assert!(!run.stderr.contains(secret), "a secret on stderr");
    }
}

on_both_servers!(every_check_passes_against_plane_and_radicale_and_nothing_is_written);
fn every_check_passes_against_plane_and_radicale_and_nothing_is_written(server: ServerKind) {
    let env = Env::start(server, seed());
    let run = check(&env, &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 8, "{}", run.stdout);
    assert!(
        lines[..7].iter().all(|l| l.starts_with("✓ ")),
        "{}",
        run.stdout
    );
    assert_eq!(lines[7], "all 7 checks passed");
    assert!(
        line(&run, "✓", "Plane API and token").contains("ada <ada@acme.test>"),
        "{}",
        run.stdout
    );
    assert_eq!(
        line(&run, "✓", "Plane workspace"),
        "✓ Plane workspace: \"acme\" has 4 projects, 2 synced (members, not archived)"
    );
    assert!(
        line(&run, "✓", "discovery").ends_with(&format!(
            "calendar home {}{} (one calendar per project)",
            env.proxy.url(),
            env.home()
        )),
        "{}",
        run.stdout
    );
    assert_eq!(
        line(&run, "✓", "calendar home:"),
        "✓ calendar home: 0 calendars, 0 named \"Plane: …\""
    );
    assert!(run.stderr.contains("PROPFIND"), "trace logging is on");
    assert_no_secret(&env, &run, &[]);
    assert_eq!(env.writes(), 0, "{:?}", env.proxy.counts());
    let methods: Vec<String> = env.proxy.counts().into_keys().collect();
    assert_eq!(methods, ["PROPFIND"], "check only reads");
    let plane_methods: Vec<String> = env.sim.requests().into_iter().map(|r| r.method).collect();
    assert!(
        plane_methods.iter().all(|m| m == "GET"),
        "{plane_methods:?}"
    );

    // After a sync, the calendar home holds the two project calendars.
    assert_eq!(env.sync(&[]).code, 0);
    env.proxy.reset();
    let run = check(&env, &[]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(
        line(&run, "✓", "calendar home:"),
        "✓ calendar home: 2 calendars, 2 named \"Plane: …\""
    );
    assert_eq!(env.writes(), 0, "{:?}", env.proxy.counts());
}

on_both_servers!(a_wrong_plane_token_fails_its_line_with_a_hint_and_skips_the_workspace);
fn a_wrong_plane_token_fails_its_line_with_a_hint_and_skips_the_workspace(server: ServerKind) {
    let env = Env::start(server, seed());
    let run = check(&env, &[("PLANE_API_TOKEN", "plane_api_wrong")]);
    assert_eq!(run.code, 5, "{}", run.stdout);
    assert!(
        line(&run, "✗", "Plane API and token").contains("Given API token is not valid"),
        "{}",
        run.stdout
    );
    assert!(hint(&run, "Plane API and token").contains("PLANE_API_TOKEN"));
    assert_eq!(
        line(&run, "-", "Plane workspace"),
        "- Plane workspace: skipped (needs the Plane API and token check)"
    );
    // CalDAV is checked all the same.
    assert!(line(&run, "✓", "calendar home:").contains("0 calendars"));
    assert_eq!(last_line(&run), "1 of 7 checks failed, 1 skipped");
    assert_no_secret(&env, &run, &["plane_api_wrong"]);
    assert_eq!(env.writes(), 0);
}

on_both_servers!(a_wrong_workspace_slug_fails_the_workspace_line);
fn a_wrong_workspace_slug_fails_the_workspace_line(server: ServerKind) {
    let env = Env::start(server, seed());
    let run = check(&env, &[("PLANE_WORKSPACE_SLUG", "other")]);
    assert_eq!(run.code, 5, "{}", run.stdout);
    assert!(line(&run, "✓", "Plane API and token").contains("ada"));
    line(&run, "✗", "Plane workspace");
    assert!(hint(&run, "Plane workspace").contains("PLANE_WORKSPACE_SLUG"));
    assert_eq!(last_line(&run), "1 of 7 checks failed");
}

on_both_servers!(a_wrong_caldav_password_fails_the_credentials_line);
fn a_wrong_caldav_password_fails_the_credentials_line(server: ServerKind) {
    let env = Env::start(server, seed());
    let run = check(&env, &[("CALDAV_PASSWORD", "not-the-password")]);
    assert_eq!(run.code, 5, "{}", run.stdout);
    line(&run, "✓", "CalDAV server");
    assert!(
        line(&run, "✗", "CalDAV credentials").contains("HTTP 401"),
        "{}",
        run.stdout
    );
    assert!(hint(&run, "CalDAV credentials").contains("CALDAV_USERNAME and CALDAV_PASSWORD"));
    line(&run, "-", "discovery");
    line(&run, "-", "calendar home:");
    assert_eq!(last_line(&run), "1 of 7 checks failed, 2 skipped");
    assert_no_secret(&env, &run, &["not-the-password"]);
    assert_eq!(env.writes(), 0);
}

on_both_servers!(an_unreachable_caldav_server_fails_the_server_line_quickly);
fn an_unreachable_caldav_server_fails_the_server_line_quickly(server: ServerKind) {
    let env = Env::start(server, seed());
    // A port that was free a moment ago: nothing listens on it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}/");
    let started = std::time::Instant::now();
    let run = check(&env, &[("CALDAV_URL", url.as_str())]);
    assert!(started.elapsed() < std::time::Duration::from_secs(20));
    assert_eq!(run.code, 5, "{}", run.stdout);
    assert!(
        line(&run, "✗", "CalDAV server").contains("cannot reach the CalDAV server"),
        "{}",
        run.stdout
    );
    assert!(hint(&run, "CalDAV server").contains("CALDAV_URL"));
    for label in ["CalDAV credentials", "discovery", "calendar home:"] {
        line(&run, "-", label);
    }
    // Plane is checked all the same.
    line(&run, "✓", "Plane workspace");
    assert_eq!(last_line(&run), "1 of 7 checks failed, 3 skipped");
    assert_no_secret(&env, &run, &[]);
}

on_both_servers!(an_unreachable_plane_fails_the_plane_line);
fn an_unreachable_plane_fails_the_plane_line(server: ServerKind) {
    let env = Env::start(server, seed());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("http://127.0.0.1:{port}");
    let run = check(&env, &[("PLANE_BASE_URL", url.as_str())]);
    assert_eq!(run.code, 5, "{}", run.stdout);
    assert!(line(&run, "✗", "Plane API and token").contains("cannot reach Plane"));
    assert!(hint(&run, "Plane API and token").contains("PLANE_BASE_URL"));
    line(&run, "✓", "calendar home:");
}

on_both_servers!(a_missing_variable_exits_2_naming_it_and_contacts_no_server);
fn a_missing_variable_exits_2_naming_it_and_contacts_no_server(server: ServerKind) {
    let env = Env::start(server, seed());
    let mut command = env.command(&["check"], &[]);
    command.env_remove("CALDAV_USERNAME");
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(2), "{stdout}");
    assert!(
        stdout.starts_with("✗ configuration: CALDAV_USERNAME is not set"),
        "{stdout}"
    );
    assert!(stdout.lines().nth(1).unwrap().starts_with("  hint: "));
    assert!(
        stdout.ends_with("1 of 7 checks failed, 6 skipped\n"),
        "{stdout}"
    );
    assert!(env.sim.requests().is_empty());
    assert!(env.proxy.requests().is_empty());
}

/// Issue 21, point 5: `check` lists every missing setting on its configuration line, one per
/// line, with their hints below; a feed directory replaces the CalDAV settings by the feed
/// secret. No server is needed: nothing is contacted.
#[test]
fn check_lists_every_missing_setting() {
    let run = |vars: &[(&str, &str)]| {
        let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_calplanebot"));
        command.arg("check").env_clear().envs(vars.iter().copied());
        let output = command.output().unwrap();
        assert_eq!(output.status.code(), Some(2));
        String::from_utf8(output.stdout).unwrap()
    };
    let stdout = run(&[]);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[..7],
        [
            "✗ configuration: 6 settings are missing or invalid:",
            "  - PLANE_BASE_URL is not set (set it in the environment or pass --plane-base-url)",
            "  - PLANE_API_TOKEN is not set (set it in the environment or pass --plane-api-token)",
            "  - PLANE_WORKSPACE_SLUG is not set (set it in the environment or pass --plane-workspace-slug)",
            "  - CALDAV_URL is not set (set it in the environment or pass --caldav-url)",
            "  - CALDAV_USERNAME is not set (set it in the environment or pass --caldav-username)",
            "  - CALDAV_PASSWORD is not set (set it in the environment or pass --caldav-password)",
        ],
        "{stdout}"
    );
    let hints: Vec<&&str> = lines.iter().filter(|l| l.starts_with("  hint: ")).collect();
    assert_eq!(hints.len(), 4, "{stdout}");
    assert!(stdout.contains("calplanebot help config"), "{stdout}");
    assert!(stdout.contains("PLANE_API_TOKEN_FILE"), "{stdout}");
    assert!(stdout.contains("Finding your CALDAV_URL"), "{stdout}");
    assert!(
        stdout.ends_with("1 of 7 checks failed, 6 skipped\n"),
        "{stdout}"
    );

    // Feeds only: the CalDAV settings are not missing, the feed secret is; a bad URL is
    // listed with the missing ones.
    let dir = std::env::temp_dir();
    let stdout = run(&[
        ("CALPLANEBOT_FEED_DIR", dir.to_str().unwrap()),
        ("PLANE_BASE_URL", "plane.example.com"),
    ]);
    let problems: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("  - "))
        .collect();
    assert_eq!(problems.len(), 4, "{stdout}");
    assert!(problems[0].starts_with("PLANE_BASE_URL must be an http:// or https:// URL"));
    assert!(problems[1].starts_with("PLANE_API_TOKEN is not set"));
    assert!(problems[2].starts_with("PLANE_WORKSPACE_SLUG is not set"));
    assert!(problems[3].starts_with("CALPLANEBOT_FEED_SECRET is not set"));
    assert!(!stdout.contains("CALDAV_URL is not set"), "{stdout}");
}

on_both_servers!(single_calendar_mode_checks_that_calendar_instead_of_the_home);
fn single_calendar_mode_checks_that_calendar_instead_of_the_home(server: ServerKind) {
    let env = Env::start(server, seed());
    let href = format!("{}team/", env.home());
    assert_eq!(env.user.mkcalendar(&href, "Team").unwrap(), 201);
    let url = format!("{}{href}", env.proxy.url());
    let run = check(&env, &[("CALDAV_CALENDAR_URL", url.as_str())]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    assert_eq!(
        line(&run, "-", "discovery"),
        "- discovery: skipped (single-calendar mode: CALDAV_CALENDAR_URL is set)"
    );
    assert_eq!(
        line(&run, "✓", "single calendar"),
        format!("✓ single calendar: \"Team\" at {url}, takes events")
    );
    assert_eq!(last_line(&run), "all 6 checks passed, 1 skipped");
    assert_no_secret(&env, &run, &[]);
    assert_eq!(env.writes(), 0);

    let missing = format!("{}{}nope/", env.proxy.url(), env.home());
    let run = check(&env, &[("CALDAV_CALENDAR_URL", missing.as_str())]);
    assert_eq!(run.code, 5, "{}", run.stdout);
    assert!(
        line(&run, "✗", "single calendar").contains("404"),
        "{}",
        run.stdout
    );
    assert!(hint(&run, "single calendar").contains("no calendar at"));

    // The calendar home is a collection, but not a calendar.
    let home = format!("{}{}", env.proxy.url(), env.home());
    let run = check(&env, &[("CALDAV_CALENDAR_URL", home.as_str())]);
    assert_eq!(run.code, 5, "{}", run.stdout);
    assert!(line(&run, "✗", "single calendar").contains("not a calendar"));
    assert_eq!(env.writes(), 0);
}
