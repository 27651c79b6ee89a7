//! The binary's failure paths and exit statuses: configuration errors, refused credentials,
//! unreachable servers, `--project` selection, `_FILE` secrets — and that no secret reaches
//! stdout, stderr or `--help` at any verbosity.

#[macro_use]
mod support;

use base64::Engine as _;
use serde_json::json;
use support::{Env, ServerKind};

fn seed() -> serde_json::Value {
    json!({
        "workspace": "acme",
        "projects": [{"identifier": "WEB", "name": "Website"}, {"identifier": "OPS", "name": "Operations"}],
        "issues": [
            {"project": "WEB", "name": "Launch", "target_date": "2026-12-01"},
            {"project": "OPS", "name": "Rotate keys", "target_date": "2026-12-05"}
        ]
    })
}

/// A loopback port nothing listens on.
fn closed_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

fn assert_no_secret(env: &Env, run: &support::Run) {
    let password = env.server.password().to_string();
    let token = env.sim.token();
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{password}", env.server.username()));
    for secret in [password.as_str(), token.as_str(), basic.as_str()] {
        assert!(!run.stdout.contains(secret), "secret on stdout");
        assert!(!run.stderr.contains(secret), "secret on stderr");
    }
}

/// Issue 21, point 5: an empty environment is one error that names every setting a first run
/// needs, one line each, and exits 2, for every command that needs a configuration.
#[test]
fn an_empty_environment_names_every_required_setting_at_once_and_exits_2() {
    for command in ["sync", "webhook", "feeds"] {
        let mut run = std::process::Command::new(env!("CARGO_BIN_EXE_calplanebot"));
        run.arg(command).env_clear();
        for keep in ["PATH", "HOME"] {
            if let Some(value) = std::env::var_os(keep) {
                run.env(keep, value);
            }
        }
        let output = run.output().unwrap();
        assert_eq!(output.status.code(), Some(2), "{command}");
        assert!(output.stdout.is_empty(), "{command}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 7, "{command}: {stderr}");
        assert!(
            lines[0].ends_with(
                "6 settings are missing or invalid (`calplanebot help config` lists them all):"
            ),
            "{stderr}"
        );
        for (line, variable) in lines[1..].iter().zip([
            "PLANE_BASE_URL",
            "PLANE_API_TOKEN",
            "PLANE_WORKSPACE_SLUG",
            "CALDAV_URL",
            "CALDAV_USERNAME",
            "CALDAV_PASSWORD",
        ]) {
            let flag = variable.to_lowercase().replace('_', "-");
            assert!(
                line.ends_with(&format!(
                    "] - {variable} is not set (set it in the environment or pass --{flag})"
                )),
                "{command}: {line}"
            );
        }
    }
}

on_both_servers!(usage_errors_exit_2_and_help_lists_the_exit_statuses);
fn usage_errors_exit_2_and_help_lists_the_exit_statuses(server: ServerKind) {
    let env = Env::start(server, seed());
    let run = env.run_with(&["sync", "--format", "yaml"], &[]);
    assert_eq!(run.code, 2);
    let run = env.run_with(&["sync", "--project", "NOPE"], &[]);
    assert_eq!(run.code, 2);
    assert!(
        run.stderr
            .contains("--project \"NOPE\" matches no syncable project"),
        "{}",
        run.stderr
    );
    assert_eq!(env.writes(), 0);

    let help = env.run_with(&["sync", "--help"], &[]);
    assert_eq!(help.code, 0);
    assert!(help.stdout.contains("Exit status:"), "{}", help.stdout);
    assert!(
        help.stdout.contains("[env: PLANE_API_TOKEN]"),
        "{}",
        help.stdout
    );
    assert_no_secret(&env, &help);
}

on_both_servers!(a_wrong_plane_token_exits_5_with_a_hint_and_changes_nothing);
fn a_wrong_plane_token_exits_5_with_a_hint_and_changes_nothing(server: ServerKind) {
    let env = Env::start(server, seed());
    let run = env.run_with(&["sync"], &[("PLANE_API_TOKEN", "plane_api_wrong")]);
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(
        run.stderr.contains("check PLANE_API_TOKEN"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("nothing was changed"), "{}", run.stderr);
    assert!(!run.stderr.contains("plane_api_wrong"));
    assert_eq!(env.proxy.requests().len(), 0, "CalDAV is not touched");
}

on_both_servers!(a_wrong_caldav_password_exits_5_with_a_hint);
fn a_wrong_caldav_password_exits_5_with_a_hint(server: ServerKind) {
    let env = Env::start(server, seed());
    let run = env.run_with(&["sync"], &[("CALDAV_PASSWORD", "not-the-password")]);
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("check CALDAV_USERNAME and CALDAV_PASSWORD"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("not-the-password"));
    assert_eq!(env.writes(), 0);
}

on_both_servers!(unreachable_servers_exit_5);
fn unreachable_servers_exit_5(server: ServerKind) {
    let env = Env::start(server, seed());
    let caldav = format!("http://127.0.0.1:{}/", closed_port());
    let run = env.run_with(&["sync"], &[("CALDAV_URL", caldav.as_str())]);
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(
        run.stderr.contains("cannot reach the CalDAV server"),
        "{}",
        run.stderr
    );

    let plane = format!("http://127.0.0.1:{}", closed_port());
    let run = env.run_with(&["sync"], &[("PLANE_BASE_URL", plane.as_str())]);
    assert_eq!(run.code, 5, "{}", run.stderr);
    assert!(run.stderr.contains("cannot reach Plane"), "{}", run.stderr);
    assert_eq!(env.proxy.requests().len(), 0);
}

on_both_servers!(secrets_never_reach_the_output_even_at_trace_level);
fn secrets_never_reach_the_output_even_at_trace_level(server: ServerKind) {
    let env = Env::start(server, seed());
    let run = env.run_with(&["sync", "-vv"], &[("RUST_LOG", "trace")]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stderr.contains("PROPFIND"),
        "trace logging is on: {}",
        run.stderr
    );
    assert_no_secret(&env, &run);
    let json = env.run_with(
        &["sync", "--dry-run", "--format", "json"],
        &[("RUST_LOG", "trace")],
    );
    assert_no_secret(&env, &json);
}

on_both_servers!(project_selection_syncs_only_the_named_project);
fn project_selection_syncs_only_the_named_project(server: ServerKind) {
    let env = Env::start(server, seed());
    let run = env.sync(&["--project", "ops"]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("1 created"), "{}", run.stdout);
    let calendars = env.user.list_calendars(&env.home()).unwrap();
    assert_eq!(calendars.len(), 1);
    assert_eq!(calendars[0].0, env.calendar_href("OPS"));
    // A scoped run never deletes another project's events.
    let web = env.project_id("WEB");
    assert_eq!(env.sync(&["--project", &web]).code, 0);
    assert_eq!(
        env.sync(&["--project", "OPS"])
            .stdout
            .lines()
            .last()
            .unwrap(),
        "0 created, 0 updated, 0 deleted, 1 unchanged, 0 failed"
    );
    assert!(env.event("WEB", "Launch").is_some());
}

on_both_servers!(secrets_can_come_from_files);
fn secrets_can_come_from_files(server: ServerKind) {
    let env = Env::start(server, seed());
    let dir = env.scratch("secrets");
    std::fs::create_dir_all(&dir).unwrap();
    let token_file = dir.join("token");
    let password_file = dir.join("password");
    std::fs::write(&token_file, format!("{}\n", env.sim.token())).unwrap();
    std::fs::write(&password_file, env.server.password()).unwrap();
    let mut command = env.command(&["sync"], &[]);
    command
        .env_remove("PLANE_API_TOKEN")
        .env_remove("CALDAV_PASSWORD")
        .env("PLANE_API_TOKEN_FILE", &token_file)
        .env("CALDAV_PASSWORD_FILE", &password_file);
    let output = command.output().unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(env.event("WEB", "Launch").is_some());
}

on_both_servers!(a_plane_429_is_waited_out_for_its_retry_after);
fn a_plane_429_is_waited_out_for_its_retry_after(server: ServerKind) {
    use calplanebot_testbed::plane_sim::{Fault, FaultRule};
    let env = Env::start(server, seed());
    env.sim.inject_fault(FaultRule::new(
        "/projects/",
        Fault::RateLimited {
            retry_after: Some(1),
        },
    ));
    let started = std::time::Instant::now();
    let run = env.sync(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    assert!(run.stderr.contains("429"), "{}", run.stderr);
    let statuses: Vec<u16> = env.sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses[..2], [429, 200], "{statuses:?}");
    assert!(env.event("WEB", "Launch").is_some());
}
