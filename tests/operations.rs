//! What operators watch and script (issue 5): the metrics file, `--dry-run --exit-code`, log
//! lines under systemd and elsewhere, no progress bars off a terminal, completions and the man
//! page.

#[macro_use]
mod support;

use std::collections::BTreeMap;
use std::process::{Command, Stdio};

use calplanebot_testbed::plane_sim::{Fault, FaultRule, SeedIssue};
use serde_json::json;
use support::{Env, ServerKind};

fn seed() -> serde_json::Value {
    json!({
        "workspace": "acme",
        "users": [{"id": "00000000-0000-4000-8000-0000000000a1", "first_name": "Alice", "last_name": "A", "email": "alice@acme.test", "display_name": "alice"}],
        "projects": [{"identifier": "WEB", "name": "Website"}, {"identifier": "OPS", "name": "Operations"}],
        "issues": [
            {"project": "WEB", "name": "One", "target_date": "2026-12-01"},
            {"project": "WEB", "name": "Two", "target_date": "2026-12-02"},
            {"project": "OPS", "name": "Three", "target_date": "2026-12-03"},
            {"project": "OPS", "name": "Undated"}
        ]
    })
}

/// One sample of a Prometheus text file: name, labels (raw), value.
type Sample = (String, String, f64);

/// Parses Prometheus text format strictly enough to fail on anything malformed: every line is
/// `# HELP name text`, `# TYPE name gauge|counter`, or `name[{label="value",…}] number`.
fn parse_prometheus(text: &str) -> Vec<Sample> {
    let is_name = |n: &str| {
        !n.is_empty()
            && n.chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && n.chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
    };
    let mut typed = BTreeMap::new();
    let mut samples = Vec::new();
    assert!(text.ends_with('\n'), "the file ends with a newline");
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, help) = rest.split_once(' ').expect("HELP has a text");
            assert!(is_name(name) && !help.is_empty(), "{line}");
        } else if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, kind) = rest.split_once(' ').expect("TYPE has a type");
            assert!(is_name(name), "{line}");
            assert!(["gauge", "counter"].contains(&kind), "{line}");
            typed.insert(name.to_string(), kind.to_string());
        } else {
            let (series, value) = line.rsplit_once(' ').expect("a sample has a value");
            let (name, labels) = match series.split_once('{') {
                Some((name, labels)) => {
                    let labels = labels.strip_suffix('}').expect("labels close");
                    for pair in labels.split(',') {
                        let (key, val) = pair.split_once('=').expect("label=value");
                        assert!(is_name(key), "{line}");
                        assert!(val.starts_with('"') && val.ends_with('"'), "{line}");
                    }
                    (name, labels)
                }
                None => (series, ""),
            };
            assert!(is_name(name), "{line}");
            assert!(typed.contains_key(name), "TYPE before sample: {line}");
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("number: {line}"));
            samples.push((name.to_string(), labels.to_string(), value));
        }
    }
    samples
}

fn value(samples: &[Sample], name: &str, labels: &str) -> f64 {
    samples
        .iter()
        .find(|(n, l, _)| n == name && l == labels)
        .unwrap_or_else(|| panic!("{name}{{{labels}}} in the metrics"))
        .2
}

on_both_servers!(the_metrics_file_matches_the_run_and_counts_failures_in_a_row);
fn the_metrics_file_matches_the_run_and_counts_failures_in_a_row(server: ServerKind) {
    let env = Env::start(server, seed());
    let dir = env.scratch("metrics");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("calplanebot.prom");
    let metrics = path.display().to_string();
    let read = || parse_prometheus(&std::fs::read_to_string(&path).unwrap());

    let run = env.sync(&["--metrics-file", &metrics]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("3 created, 0 updated, 0 deleted, 0 unchanged, 0 failed")
    );
    eprintln!(
        "--- metrics file\n{}",
        std::fs::read_to_string(&path).unwrap()
    );
    let samples = read();
    assert_eq!(value(&samples, "calplanebot_last_run_success", ""), 1.0);
    assert_eq!(value(&samples, "calplanebot_last_run_exit_status", ""), 0.0);
    assert_eq!(
        value(
            &samples,
            "calplanebot_last_run_events",
            r#"action="created""#
        ),
        3.0
    );
    assert_eq!(
        value(
            &samples,
            "calplanebot_last_run_events",
            r#"action="updated""#
        ),
        0.0
    );
    assert_eq!(
        value(
            &samples,
            "calplanebot_last_run_events",
            r#"action="deleted""#
        ),
        0.0
    );
    assert_eq!(
        value(
            &samples,
            "calplanebot_last_run_events",
            r#"action="unchanged""#
        ),
        0.0
    );
    assert_eq!(
        value(
            &samples,
            "calplanebot_last_run_events",
            r#"action="failed""#
        ),
        0.0
    );
    assert_eq!(value(&samples, "calplanebot_last_run_issues_seen", ""), 4.0);
    assert_eq!(
        value(
            &samples,
            "calplanebot_last_run_requests",
            r#"server="plane""#
        ),
        env.sim.requests().len() as f64
    );
    assert_eq!(
        value(
            &samples,
            "calplanebot_last_run_requests",
            r#"server="caldav""#
        ),
        env.proxy.counts().values().sum::<usize>() as f64
    );
    assert_eq!(
        value(&samples, "calplanebot_consecutive_failed_runs", ""),
        0.0
    );
    let started = value(&samples, "calplanebot_last_run_start_timestamp_seconds", "");
    assert!(started > 1.7e9, "a Unix time: {started}");
    assert!(value(&samples, "calplanebot_last_run_duration_seconds", "") > 0.0);
    assert_eq!(
        value(&samples, "calplanebot_last_success_timestamp_seconds", ""),
        started
    );

    // Plane fails twice in a row: the counter goes up, the last success stays.
    env.sim.inject_fault(
        FaultRule::new("/projects/", Fault::server_error())
            .query_contains("per_page")
            .times(100),
    );
    for expected in [1.0, 2.0] {
        let run = env.run_with(&["--retries", "0", "sync", "--metrics-file", &metrics], &[]);
        assert_ne!(run.code, 0, "{}", run.stderr);
        let samples = read();
        assert_eq!(value(&samples, "calplanebot_last_run_success", ""), 0.0);
        assert_eq!(
            value(&samples, "calplanebot_last_run_exit_status", ""),
            f64::from(run.code)
        );
        assert_eq!(
            value(&samples, "calplanebot_consecutive_failed_runs", ""),
            expected
        );
        assert_eq!(
            value(&samples, "calplanebot_last_success_timestamp_seconds", ""),
            started
        );
    }

    // Plane is back, one issue changed: success, counter back to 0, counts match the summary.
    env.sim.clear_faults();
    let id = env.issue_id("One");
    env.sim
        .with_world(|w| w.issue_mut(&id).target_date = Some("2027-01-01".into()));
    let web = env.project_id("WEB");
    env.sim
        .with_world(|w| w.add_issue(SeedIssue::new(web, "Four").due("2027-01-02")));
    let run = env.sync(&["--metrics-file", &metrics]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(
        run.stdout
            .contains("1 created, 1 updated, 0 deleted, 2 unchanged, 0 failed"),
        "{}",
        run.stdout
    );
    let samples = read();
    assert_eq!(
        value(&samples, "calplanebot_consecutive_failed_runs", ""),
        0.0
    );
    assert_eq!(
        value(
            &samples,
            "calplanebot_last_run_events",
            r#"action="created""#
        ),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            "calplanebot_last_run_events",
            r#"action="updated""#
        ),
        1.0
    );
    assert_eq!(
        value(
            &samples,
            "calplanebot_last_run_events",
            r#"action="unchanged""#
        ),
        2.0
    );
    assert_eq!(value(&samples, "calplanebot_last_run_issues_seen", ""), 5.0);

    // A dry run leaves the file alone.
    let before = std::fs::read_to_string(&path).unwrap();
    assert_eq!(env.sync(&["--dry-run", "--metrics-file", &metrics]).code, 0);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
}

on_both_servers!(dry_run_exit_code_says_whether_changes_are_pending);
fn dry_run_exit_code_says_whether_changes_are_pending(server: ServerKind) {
    let env = Env::start(server, seed());
    let run = env.sync(&["--dry-run", "--exit-code"]);
    assert_eq!(run.code, 7, "{}", run.stderr);
    assert!(run.stdout.contains("would create 3,"), "{}", run.stdout);
    assert_eq!(env.writes(), 0);
    assert_eq!(env.sync(&[]).code, 0);
    let run = env.sync(&["--dry-run", "--exit-code"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    // Without --exit-code a dry run with changes is a success, and --exit-code needs --dry-run.
    let id = env.issue_id("Two");
    env.sim
        .with_world(|w| w.issue_mut(&id).target_date = Some("2027-02-02".into()));
    assert_eq!(env.sync(&["--dry-run"]).code, 0);
    assert_eq!(env.sync(&["--dry-run", "--exit-code"]).code, 7);
    let run = env.sync(&["--exit-code"]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("--dry-run"), "{}", run.stderr);
}

/// A run that fails at once (nothing listens on the Plane URL), with stderr into `file`.
fn failing_run(file: &std::fs::File, journal_stream: Option<String>) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut command = Command::new(env!("CARGO_BIN_EXE_calplanebot"));
    command
        .args(["--retries", "0", "sync"])
        .env_clear()
        .env("PLANE_BASE_URL", format!("http://127.0.0.1:{port}"))
        .env("PLANE_API_TOKEN", "plane_api_secret_value")
        .env("PLANE_WORKSPACE_SLUG", "acme")
        .env("CALDAV_URL", format!("http://127.0.0.1:{port}/"))
        .env("CALDAV_USERNAME", "bot")
        .env("CALDAV_PASSWORD", "caldav_secret_value")
        .env("CALPLANEBOT_CACHE_DIR", "")
        .env(
            "CALPLANEBOT_LOCK_FILE",
            std::env::temp_dir().join(format!("calplanebot-ops-{port}.lock")),
        )
        .stdout(Stdio::null())
        .stderr(file.try_clone().unwrap());
    if let Some(stream) = journal_stream {
        command.env("JOURNAL_STREAM", stream);
    }
    let status = command.status().unwrap();
    assert_eq!(status.code(), Some(5));
}

#[test]
fn log_lines_carry_no_time_or_colour_in_the_journal_and_a_time_elsewhere() {
    use std::os::unix::fs::MetadataExt as _;
    let dir = std::env::temp_dir().join(format!("calplanebot-logs-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();

    // Not under systemd, not a terminal (a file, as cron's redirection): timestamped lines.
    let path = dir.join("plain.log");
    let file = std::fs::File::create(&path).unwrap();
    failing_run(&file, None);
    let plain = std::fs::read_to_string(&path).unwrap();
    assert!(plain.lines().count() > 0);
    for line in plain.lines() {
        assert!(
            line.starts_with("[20") && line.contains("Z "),
            "a timestamp first: {line:?}"
        );
    }

    // JOURNAL_STREAM naming this very stderr: systemd's journal, which stamps lines itself.
    let path = dir.join("journal.log");
    let file = std::fs::File::create(&path).unwrap();
    let meta = file.metadata().unwrap();
    failing_run(&file, Some(format!("{}:{}", meta.dev(), meta.ino())));
    let journal = std::fs::read_to_string(&path).unwrap();
    assert!(journal.lines().count() > 0);
    for line in journal.lines() {
        assert!(
            line.starts_with("[ERROR]")
                || line.starts_with("[WARN ]")
                || line.starts_with("[INFO ]"),
            "no timestamp: {line:?}"
        );
    }

    // JOURNAL_STREAM inherited but stderr redirected elsewhere: not the journal.
    let path = dir.join("inherited.log");
    let file = std::fs::File::create(&path).unwrap();
    failing_run(&file, Some(format!("{}:{}", meta.dev(), meta.ino())));
    let inherited = std::fs::read_to_string(&path).unwrap();
    assert!(
        inherited.lines().all(|l| l.starts_with("[20")),
        "{inherited}"
    );

    for text in [&plain, &journal, &inherited] {
        assert!(
            !text.contains('\u{1b}'),
            "no colour or cursor codes: {text:?}"
        );
        assert!(!text.contains('\r'), "no progress bar redraws: {text:?}");
        assert!(!text.contains("secret_value"), "no secrets: {text}");
    }
    std::fs::remove_dir_all(dir).unwrap();
}

on_both_servers!(a_run_off_a_terminal_draws_no_progress_bar);
fn a_run_off_a_terminal_draws_no_progress_bar(server: ServerKind) {
    let env = Env::start(server, seed());
    let web = env.project_id("WEB");
    env.sim.with_world(|w| {
        for n in 0..30 {
            w.add_issue(SeedIssue::new(web.clone(), format!("Bulk {n}")).due("2027-03-03"));
        }
    });
    // The test harness pipes stderr: the binary must see it is no terminal.
    let run = env.sync(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("33 created"), "{}", run.stdout);
    for control in ['\r', '\u{1b}'] {
        assert!(
            !run.stderr.contains(control) && !run.stdout.contains(control),
            "no {control:?} in the output: {:?}",
            run.stderr
        );
    }
    // One summary line at info level with the counts and the duration.
    let summary: Vec<&str> = run
        .stderr
        .lines()
        .filter(|l| l.contains("33 created") && l.contains(" s ("))
        .collect();
    assert_eq!(summary.len(), 1, "{}", run.stderr);
    assert!(summary[0].contains("INFO"), "{}", summary[0]);

    // Issue 12, point 15: stdout and stderr into one destination (the journal, a terminal,
    // `>> log 2>&1`): the summary is there once, and the log line keeps the numbers.
    env.sim.with_world(|w| {
        w.add_issue(SeedIssue::new(web.clone(), "One more").due("2027-03-04"));
    });
    let path = env.scratch("both.log");
    let file = std::fs::File::create(&path).unwrap();
    let status = env
        .command(&["sync"], &[])
        .stdout(file.try_clone().unwrap())
        .stderr(file)
        .status()
        .unwrap();
    let both = std::fs::read_to_string(&path).unwrap();
    eprintln!("{both}");
    assert_eq!(status.code(), Some(0));
    assert_eq!(
        both.matches("1 created, 0 updated, 0 deleted").count(),
        1,
        "{both}"
    );
    assert!(
        both.lines()
            .any(|l| l.contains("INFO") && l.contains(" s (") && l.contains("CalDAV requests")),
        "{both}"
    );
}

#[test]
fn completions_and_the_man_page_come_from_the_command_line_definition() {
    let bin = env!("CARGO_BIN_EXE_calplanebot");
    for (shell, marker) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef calplanebot"),
        ("fish", "complete -c calplanebot"),
    ] {
        let out = Command::new(bin)
            .args(["completions", shell])
            .env_clear()
            .output()
            .unwrap();
        assert!(out.status.success(), "{shell}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.contains(marker),
            "{shell}: {}",
            &text[..text.len().min(300)]
        );
        for word in ["sync", "webhook", "check", "dry-run", "max-delete"] {
            assert!(text.contains(word), "{shell} completes {word}");
        }
    }
    let out = Command::new(bin).arg("man").env_clear().output().unwrap();
    assert!(out.status.success());
    let page = String::from_utf8(out.stdout).unwrap();
    assert!(
        page.starts_with(".ie") || page.contains(".TH calplanebot"),
        "{}",
        &page[..200]
    );
    for word in ["PLANE_BASE_URL", "CALDAV_URL", "sync", "webhook"] {
        assert!(page.contains(word), "the man page mentions {word}");
    }
    assert_eq!(
        Command::new(bin)
            .args(["completions", "tcsh"])
            .env_clear()
            .output()
            .unwrap()
            .status
            .code(),
        Some(2)
    );
}
