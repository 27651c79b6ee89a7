//! `--help` is a map (issue 21, point 4): the top level shows the commands and where settings
//! come from in at most 80 lines; each command's help groups its options under headings, in
//! one order, with the required settings marked; `calplanebot config` and `help config` print
//! every setting. Runs the real binary with an empty environment (no server needed).

use std::process::Command;

/// The binary's stdout for `args`, which must succeed, run without any setting.
fn stdout(args: &[&str]) -> String {
    let output = Command::new(env!("CARGO_BIN_EXE_calplanebot"))
        .args(args)
        .env_clear()
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// The help text of the option `flag` (`--help` puts it on the line below the flag).
fn option_help<'a>(help: &'a str, flag: &str) -> &'a str {
    let mut lines = help.lines();
    lines
        .find(|line| line.trim_start().split([' ', ',']).any(|word| word == flag))
        .unwrap_or_else(|| panic!("{flag} is not in\n{help}"));
    lines.next().unwrap().trim()
}

/// The headings (`Name:` at the start of a line) in the order shown.
fn headings(help: &str) -> Vec<&str> {
    help.lines()
        .filter(|line| line.ends_with(':') && !line.starts_with(' ') && !line.starts_with("Usage"))
        .map(|line| line.trim_end_matches(':'))
        .collect()
}

const REQUIRED: [&str; 6] = [
    "PLANE_BASE_URL",
    "PLANE_API_TOKEN",
    "PLANE_WORKSPACE_SLUG",
    "CALDAV_URL",
    "CALDAV_USERNAME",
    "CALDAV_PASSWORD",
];

#[test]
fn top_level_help_is_the_commands_and_where_settings_come_from_in_80_lines() {
    for flag in ["--help", "-h"] {
        let help = stdout(&[flag]);
        let lines = help.lines().count();
        assert!(lines <= 80, "{flag}: {lines} lines\n{help}");
        for command in ["sync", "webhook", "check", "feeds", "config", "man"] {
            assert!(
                help.lines()
                    .any(|l| l.starts_with(&format!("  {command} "))),
                "{flag}: {command} is not listed\n{help}"
            );
        }
        // The settings are not listed, only where they come from.
        assert!(!help.contains("--plane-base-url"), "{help}");
        assert!(!help.contains("[env:"), "{help}");
        for variable in REQUIRED {
            assert!(help.contains(variable), "{flag}: {variable}\n{help}");
        }
        for pointer in [
            "calplanebot help config",
            "calplanebot check",
            "sync --dry-run",
            "-v, --verbose",
            "Exit status:",
        ] {
            assert!(help.contains(pointer), "{flag}: {pointer:?}\n{help}");
        }
    }
}

#[test]
fn sync_help_groups_its_options_under_headings_and_marks_the_required_settings() {
    let help = stdout(&["sync", "--help"]);
    assert_eq!(
        headings(&help),
        [
            "Sync",
            "Plane",
            "CalDAV",
            "Subscription feeds",
            "Events",
            "Safety",
            "Network and cache",
            "Output",
            "Exit status"
        ],
        "{help}"
    );
    for flag in [
        "--plane-base-url",
        "--plane-api-token",
        "--plane-workspace-slug",
    ] {
        assert!(
            option_help(&help, flag).contains("(required"),
            "{flag}: {help}"
        );
    }
    for flag in ["--caldav-url", "--caldav-username", "--caldav-password"] {
        assert!(
            option_help(&help, flag).contains("(required unless feeds only"),
            "{flag}: {help}"
        );
    }
    assert!(option_help(&help, "--feed-secret").contains("(required with --feed-dir"));
    for optional in [
        "--plane-web-url",
        "--caldav-calendar-url",
        "--feed-dir",
        "--timeout",
    ] {
        assert!(
            !option_help(&help, optional).contains("required"),
            "{optional}"
        );
    }
    // What the listing snapshot changed (issue 21, point 4).
    assert!(option_help(&help, "--cache-dir").contains("listing snapshot"));
    assert!(option_help(&help, "--concurrency").contains("read and written"));
    assert!(option_help(&help, "--concurrency").contains("listing snapshot"));
    // Each group holds its own options.
    let group = |name: &str| -> String {
        help.split(&format!("\n{name}:\n"))
            .nth(1)
            .unwrap()
            .split("\n\n")
            .next()
            .unwrap()
            .to_string()
    };
    assert!(group("Sync").contains("--dry-run") && group("Sync").contains("--project"));
    assert!(group("Safety").contains("--force-delete") && group("Safety").contains("--max-delete"));
    assert!(group("Output").contains("--format") && group("Output").contains("--help"));
    assert!(!group("Plane").contains("--caldav"));
}

#[test]
fn every_command_lists_its_own_options_first_then_the_settings_in_one_order() {
    for (command, own) in [
        ("webhook", Some("Webhook")),
        ("feeds", Some("Feed URLs")),
        ("check", None),
    ] {
        let help = stdout(&[command, "--help"]);
        let mut expected: Vec<&str> = own.into_iter().collect();
        expected.extend([
            "Plane",
            "CalDAV",
            "Subscription feeds",
            "Events",
            "Safety",
            "Network and cache",
            "Output",
            "Exit status",
        ]);
        assert_eq!(headings(&help), expected, "{command}\n{help}");
    }
}

#[test]
fn config_and_help_config_print_every_setting_of_every_command() {
    let table = stdout(&["config"]);
    assert_eq!(stdout(&["help", "config"]).matches(&table).count(), 1);
    let mut variables = Vec::new();
    for command in ["sync", "webhook", "check", "feeds"] {
        let help = stdout(&[command, "--help"]);
        for part in help.split("[env: ").skip(1) {
            let variable = part.split([']', '=']).next().unwrap().to_string();
            if !variables.contains(&variable) {
                variables.push(variable);
            }
        }
    }
    assert!(variables.len() >= 35, "{variables:?}");
    for variable in variables.iter().map(String::as_str).chain(["RUST_LOG"]) {
        assert!(
            table
                .lines()
                .any(|l| l.starts_with(&format!("  {variable}  "))),
            "{variable} is not in\n{table}"
        );
    }
    // The settings one command reads say so; required ones are marked.
    assert!(table.contains("CALPLANEBOT_METRICS_FILE  --metrics-file <PATH>  (sync only)"));
    assert!(
        table.contains(
            "CALPLANEBOT_MAX_DELETE  --max-delete <N>  [default: 20]  (sync, webhook only)"
        )
    );
    assert!(table.matches("(required").count() >= 7, "{table}");
    // The man page carries the same variables.
    let man = stdout(&["man"]);
    for variable in &variables {
        assert!(
            man.contains(&format!("\\fB{}\\fR", variable.replace('-', "\\-"))),
            "{variable}"
        );
    }
}

/// The README's quick start (the env-file block after `<!-- tests/help.rs: quick start -->`)
/// sets exactly the settings an empty environment reports missing, in the same order.
#[test]
fn the_readme_quick_start_sets_exactly_what_an_empty_environment_misses() {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let (_, after) = readme
        .split_once("<!-- tests/help.rs: quick start -->\n```sh\n")
        .expect("README.md: the quick start block");
    let block = after.split("\n```").next().unwrap();
    let set: Vec<&str> = block
        .lines()
        .filter_map(|line| line.split_once('=').map(|(name, _)| name))
        .collect();
    assert_eq!(set, REQUIRED, "{block}");

    let output = Command::new(env!("CARGO_BIN_EXE_calplanebot"))
        .arg("sync")
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let missing: Vec<&str> = stderr
        .lines()
        .filter_map(|line| line.split_once("] - ")?.1.split_once(" is not set"))
        .map(|(variable, _)| variable)
        .collect();
    assert_eq!(missing, set, "{stderr}");
}
