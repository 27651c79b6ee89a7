//! The scheduling files an operator installs, checked as the machine will read them: the
//! systemd units in `systemd/` (the template pair as an instance) pass `systemd-analyze
//! verify`, their sandboxing scores at most 2.0 in `systemd-analyze security`, the timers fire
//! every five minutes; the cron entries in
//! `cron/` parse, run every five minutes, and report an overlapping run to syslog.
//!
//! `systemd-analyze` works on unit files without systemd running (CI runs in a container); the
//! Debian package `systemd` brings it, and `scripts/test` installs it.

use std::collections::BTreeSet;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const UNITS: [&str; 3] = [
    "calplanebot.service",
    "calplanebot.timer",
    "calplanebot-webhook.service",
];
/// The template pair (one instance per configuration), and the instance name the tests install
/// them as: systemd reads a template through an instance, with `%i` set.
const TEMPLATES: [(&str, &str); 2] = [
    ("calplanebot@.service", "calplanebot@alice.service"),
    ("calplanebot@.timer", "calplanebot@alice.timer"),
];
const SERVICES: [&str; 3] = [
    "calplanebot.service",
    "calplanebot-webhook.service",
    "calplanebot@alice.service",
];
/// The highest `systemd-analyze security` exposure level accepted (0.0 best, 10.0 worst).
const MAX_EXPOSURE: f64 = 2.0;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(relative: &str) -> String {
    let path = repo().join(relative);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A directory under Cargo's temp dir for one test, removed at the end.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("units-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Runs `systemd-analyze`; its absence fails the test rather than skipping it.
fn systemd_analyze<I, S>(args: I) -> Output
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut command = Command::new("systemd-analyze");
    command
        .args(args)
        .env("SYSTEMD_COLORS", "0")
        .env("SYSTEMD_PAGER", "")
        .env("SYSTEMD_LOG_COLOR", "0");
    match command.output() {
        Ok(output) => output,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
            "systemd-analyze is not installed. These tests check the units in systemd/ with it; \
             it comes with the Debian package `systemd`, which scripts/test installs \
             (by hand: apt-get install systemd)"
        ),
        Err(e) => panic!("cannot run systemd-analyze: {e}"),
    }
}

/// A path written into a unit file as it is: no quoting, no `%` specifiers.
fn unit_safe(path: &Path) -> &str {
    let text = path.to_str().expect("a UTF-8 path");
    assert!(
        !text.contains(|c: char| c.is_whitespace() || "%\\\"'$;".contains(c)),
        "{text}: this test writes the path into unit files unquoted; build from a directory \
         whose path has no blanks, quotes, %, $, ; or \\"
    );
    text
}

/// The units as an operator installs them, in `dir`, with each installed file they name that
/// a CI machine does not have replaced by the repository's own: the built binary, the hook
/// wrapper. (`verify` checks only that each Exec*= program exists and is executable — here
/// /usr/local/bin/calplanebot, and /bin/sh for the webhook unit; it reads neither
/// EnvironmentFile= nor LoadCredential=, so /etc/calplanebot needs no stand-ins.)
fn install_units(dir: &Path) -> Vec<PathBuf> {
    let stand_ins = [
        (
            "/usr/local/bin/calplanebot",
            PathBuf::from(env!("CARGO_BIN_EXE_calplanebot")),
        ),
        (
            "/usr/local/lib/calplanebot/calplanebot-hook",
            repo().join("webhook/calplanebot-hook"),
        ),
    ];
    let units: Vec<(&str, String)> = UNITS
        .iter()
        .map(|name| (*name, read(&format!("systemd/{name}"))))
        .chain(
            TEMPLATES
                .iter()
                .map(|(template, instance)| (*instance, read(&format!("systemd/{template}")))),
        )
        .collect();
    for (installed, _) in &stand_ins {
        assert!(
            units.iter().any(|(_, text)| text.contains(installed)),
            "no unit names {installed} any more: update this test's stand-ins"
        );
    }
    units
        .into_iter()
        .map(|(name, mut text)| {
            for (installed, local) in &stand_ins {
                text = text.replace(installed, unit_safe(local));
            }
            let path = dir.join(name);
            std::fs::write(&path, text).unwrap();
            path
        })
        .collect()
}

/// Lines of systemd-analyze's output that are about these units (anything else, such as a
/// remark about one of the host's own units, is only shown).
fn about_units<'a>(output: &'a str, dir: &Path) -> Vec<&'a str> {
    let dir = dir.to_str().unwrap();
    let (ours, others): (Vec<&str>, Vec<&str>) = output
        .lines()
        .filter(|line| !line.trim().is_empty())
        .partition(|line| {
            line.contains(dir)
                || UNITS.iter().any(|unit| line.contains(unit))
                || TEMPLATES.iter().any(|(_, unit)| line.contains(unit))
        });
    for line in others {
        eprintln!("systemd-analyze, not about calplanebot's units: {line}");
    }
    ours
}

#[test]
fn units_pass_systemd_analyze_verify() {
    let scratch = Scratch::new("verify");
    let units = install_units(scratch.path());
    let mut args = vec![OsStr::new("verify").to_owned(), "--man=no".into()];
    args.extend(units.iter().map(|unit| unit.as_os_str().to_owned()));
    let output = systemd_analyze(&args);
    let printed = text(&output);
    let complaints = about_units(&printed, scratch.path());
    assert!(
        output.status.success() && complaints.is_empty(),
        "systemd-analyze verify --man=no {UNITS:?} {TEMPLATES:?} ({}):\n{printed}",
        output.status
    );
}

/// The number in "→ Overall exposure level for NAME: 1.4 OK 🙂".
fn exposure(output: &str, unit: &str) -> Option<f64> {
    let marker = format!("Overall exposure level for {unit}:");
    let rest = &output[output.find(&marker)? + marker.len()..];
    rest.split_whitespace().next()?.parse().ok()
}

#[test]
fn services_are_sandboxed_to_an_exposure_of_at_most_2() {
    let scratch = Scratch::new("security");
    let units = install_units(scratch.path());
    // --threshold is in tenths: the command itself fails above MAX_EXPOSURE.
    let threshold = format!("--threshold={}", (MAX_EXPOSURE * 10.0).round() as u32);
    let mut failures = Vec::new();
    for service in SERVICES {
        let unit = units.iter().find(|u| u.ends_with(service)).unwrap();
        let output = systemd_analyze([
            OsStr::new("security"),
            OsStr::new("--offline=true"),
            OsStr::new(&threshold),
            OsStr::new("--no-pager"),
            unit.as_os_str(),
        ]);
        let printed = text(&output);
        let score = exposure(&printed, service);
        match score {
            Some(score) => eprintln!("systemd-analyze security: {service}: exposure {score:.1}"),
            None => eprintln!("systemd-analyze security: {service}: no exposure level found"),
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let complaints = about_units(&stderr, scratch.path());
        if !output.status.success()
            || !complaints.is_empty()
            || !score.is_some_and(|score| score <= MAX_EXPOSURE)
        {
            failures.push(format!(
                "{service}: exposure {score:?}, at most {MAX_EXPOSURE} wanted; \
                 systemd-analyze security --offline=true {threshold} ({}):\n{printed}",
                output.status
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A unit file's settings as (section, key, value), continuation lines joined.
fn settings(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut result = Vec::new();
    let mut pending = String::new();
    for line in text.lines() {
        let line = line.trim();
        if pending.is_empty() && (line.is_empty() || line.starts_with(['#', ';'])) {
            continue;
        }
        if let Some(continued) = line.strip_suffix('\\') {
            pending.push_str(continued);
            pending.push(' ');
            continue;
        }
        let line = std::mem::take(&mut pending) + line;
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = name.to_string();
        } else if let Some((key, value)) = line.split_once('=') {
            result.push((
                section.clone(),
                key.trim().to_string(),
                value.trim().to_string(),
            ));
        } else {
            panic!("not a unit file line: {line}");
        }
    }
    result
}

fn values(settings: &[(String, String, String)], section: &str, key: &str) -> Vec<String> {
    settings
        .iter()
        .filter(|(s, k, _)| s == section && k == key)
        .map(|(_, _, v)| v.clone())
        .collect()
}

/// The one value of `key` in `section`.
fn value(settings: &[(String, String, String)], section: &str, key: &str) -> String {
    match values(settings, section, key).as_slice() {
        [one] => one.clone(),
        other => panic!("[{section}] {key}=: one setting wanted, found {other:?}"),
    }
}

/// The value of a field in systemd-analyze's "name: value" output.
fn field(output: &Output, name: &str) -> String {
    let printed = text(output);
    assert!(output.status.success(), "{printed}");
    printed
        .lines()
        .find_map(|line| {
            let (key, value) = line.split_once(':')?;
            (key.trim() == name).then(|| value.trim().to_string())
        })
        .unwrap_or_else(|| panic!("no {name:?} in:\n{printed}"))
}

#[test]
fn timer_fires_every_five_minutes_catches_up_and_spreads_runs_by_at_most_a_minute() {
    for (timer, service) in [
        ("calplanebot.timer", "calplanebot.service"),
        // A timer template starts the service instance of its own name.
        ("calplanebot@.timer", "calplanebot@%i.service"),
    ] {
        check_timer(&read(&format!("systemd/{timer}")), service);
    }
}

fn check_timer(text: &str, service: &str) {
    let timer = settings(text);
    // Nothing but the calendar starts it, and it starts calplanebot.service.
    let triggers: Vec<&String> = timer
        .iter()
        .filter(|(section, key, _)| section == "Timer" && key.starts_with("On"))
        .map(|(_, key, _)| key)
        .collect();
    assert_eq!(triggers, ["OnCalendar"], "the timer's triggers");
    assert!(
        values(&timer, "Timer", "Unit")
            .iter()
            .all(|unit| unit == service)
    );

    let calendar = value(&timer, "Timer", "OnCalendar");
    let normalized = field(
        &systemd_analyze(["calendar", "--iterations=2", &calendar]),
        "Normalized form",
    );
    assert_eq!(normalized, "*-*-* *:00/5:00", "OnCalendar={calendar}");

    let persistent = value(&timer, "Timer", "Persistent");
    assert!(
        ["true", "yes", "on", "1"].contains(&persistent.to_ascii_lowercase().as_str()),
        "Persistent={persistent}: a run missed while the machine was off must be caught up"
    );

    let delay = value(&timer, "Timer", "RandomizedDelaySec");
    let micros: u64 = field(&systemd_analyze(["timespan", &delay]), "μs")
        .parse()
        .expect("microseconds");
    assert!(
        micros <= 60_000_000,
        "RandomizedDelaySec={delay}: at most 60 s, or runs drift into the next period"
    );
}

#[test]
fn both_services_share_one_user_and_the_run_lock_directory() {
    let sync = settings(&read("systemd/calplanebot.service"));
    let webhook = settings(&read("systemd/calplanebot-webhook.service"));
    for unit in [&sync, &webhook] {
        assert_eq!(value(unit, "Service", "DynamicUser"), "yes");
    }
    // A dynamic user without User= is named after its unit.
    let user = |unit: &[(String, String, String)], name: &str| {
        values(unit, "Service", "User")
            .pop()
            .unwrap_or(name.to_string())
    };
    assert_eq!(
        user(&sync, "calplanebot"),
        user(&webhook, "calplanebot-webhook")
    );
    for key in [
        "RuntimeDirectory",
        "CacheDirectory",
        "Group",
        "ReadWritePaths",
    ] {
        assert_eq!(
            value(&sync, "Service", key),
            value(&webhook, "Service", key),
            "{key}"
        );
    }
}

/// Where the units let a feed directory be, and the group that may write it: what README.md's
/// "Scheduling" has the operator create, and what the env example names.
const FEED_DIR: &str = "/var/lib/calplanebot-feeds";
const FEED_GROUP: &str = "calplanebot-feeds";

/// Issue 20: every service that runs calplanebot may write the feed directory (through its
/// group, since a dynamic user owns nothing that outlives a run) and nothing else of it, the web
/// server reads it (not a StateDirectory=, whose /var/lib/private no one else enters), a unit
/// without one still starts ("-"), and the feed secret arrives as an optional credential.
#[test]
fn every_service_may_write_the_feed_directory_and_gets_the_feed_secret_as_a_credential() {
    for (file, secret) in [
        ("calplanebot.service", "/etc/calplanebot/feed-secret"),
        (
            "calplanebot-webhook.service",
            "/etc/calplanebot/feed-secret",
        ),
        ("calplanebot@.service", "/etc/calplanebot/%i.feed-secret"),
    ] {
        let unit = settings(&read(&format!("systemd/{file}")));
        assert_eq!(value(&unit, "Service", "Group"), FEED_GROUP, "{file}");
        assert_eq!(
            values(&unit, "Service", "ReadWritePaths"),
            [format!("-{FEED_DIR}")],
            "{file}"
        );
        assert!(
            values(&unit, "Service", "StateDirectory").is_empty(),
            "{file}: a StateDirectory= of a dynamic user is unreadable to the web server"
        );
        assert!(
            values(&unit, "Service", "LoadCredential").contains(&format!("feed-secret:{secret}")),
            "{file}"
        );
        // The defaults that make the credentials optional: a newline, an empty secret (the
        // CalDAV password too, for a configuration with feeds only).
        assert_eq!(
            values(&unit, "Service", "SetCredential"),
            ["feed-secret:\\n", "caldav-password:\\n"],
            "{file}"
        );
        assert!(
            values(&unit, "Service", "Environment")
                .contains(&"CALPLANEBOT_FEED_SECRET_FILE=%d/feed-secret".to_string()),
            "{file}"
        );
    }

    let example = read("systemd/calplanebot.env.example");
    for line in [
        format!("#CALPLANEBOT_FEED_DIR={FEED_DIR}"),
        "#CALPLANEBOT_FEED_BASE_URL=https://cal.example.com/plane".to_string(),
    ] {
        assert!(
            example.lines().any(|l| l == line),
            "calplanebot.env.example: no line {line:?}"
        );
    }
    assert!(
        !example.lines().any(|l| l
            .trim_start_matches('#')
            .starts_with("CALPLANEBOT_FEED_SECRET")),
        "calplanebot.env.example: the units set CALPLANEBOT_FEED_SECRET_FILE themselves"
    );

    // README.md has the operator make that directory with that group, writable by the group
    // (the service), setgid (files keep the group), traversable but not listable by others
    // (the web server).
    let readme = read("README.md");
    for command in [
        format!("groupadd --system {FEED_GROUP}"),
        format!("install -d -o root -g {FEED_GROUP} -m 2771 {FEED_DIR}"),
    ] {
        assert!(readme.contains(&command), "README.md: no `{command}`");
    }
}

/// The per-configuration template: `/etc/calplanebot/NAME.env` and its own secrets, its own run
/// lock and cache directories, the service account of calplanebot.service, and otherwise
/// exactly calplanebot.service's settings, sandboxing included.
#[test]
fn the_template_runs_each_configuration_under_its_own_lock_and_cache_and_the_same_sandbox() {
    let single = settings(&read("systemd/calplanebot.service"));
    let template = settings(&read("systemd/calplanebot@.service"));
    assert_eq!(
        value(&template, "Service", "EnvironmentFile"),
        "/etc/calplanebot/%i.env"
    );
    assert_eq!(
        values(&template, "Service", "LoadCredential"),
        [
            "plane-api-token:/etc/calplanebot/%i.plane-api-token",
            "caldav-password:/etc/calplanebot/%i.caldav-password",
            "feed-secret:/etc/calplanebot/%i.feed-secret"
        ]
    );
    for key in ["RuntimeDirectory", "CacheDirectory"] {
        assert_eq!(
            value(&template, "Service", key),
            format!("{}/%i", value(&single, "Service", key)),
            "{key}: one directory per instance"
        );
    }
    // The dynamic user of calplanebot.service is named after its unit.
    assert_eq!(value(&template, "Service", "User"), "calplanebot");
    assert!(values(&single, "Service", "User").is_empty());
    let per_instance = [
        "EnvironmentFile",
        "LoadCredential",
        "RuntimeDirectory",
        "CacheDirectory",
        "User",
        "Description",
    ];
    let shared = |unit: &[(String, String, String)]| -> Vec<(String, String, String)> {
        unit.iter()
            .filter(|(_, key, _)| !per_instance.contains(&key.as_str()))
            .cloned()
            .collect()
    };
    assert_eq!(
        shared(&template),
        shared(&single),
        "every other setting, sandboxing included, as in calplanebot.service"
    );
    // The two timers differ only in their description.
    let timer = |name: &str| {
        settings(&read(&format!("systemd/{name}")))
            .into_iter()
            .filter(|(_, key, _)| key != "Description")
            .collect::<Vec<_>>()
    };
    assert_eq!(timer("calplanebot@.timer"), timer("calplanebot.timer"));
}

#[test]
fn webhook_unit_binds_only_the_loopback_port_it_listens_on() {
    let unit = settings(&read("systemd/calplanebot-webhook.service"));
    let exec = value(&unit, "Service", "ExecStart");
    let words: Vec<&str> = exec.split_whitespace().collect();
    let after = |flag: &str| {
        let at = words.iter().position(|w| *w == flag);
        at.and_then(|at| words.get(at + 1).copied())
            .unwrap_or_else(|| panic!("no {flag} in ExecStart={exec}"))
    };
    assert_eq!(after("-ip"), "127.0.0.1");
    let port = after("-port");
    assert_eq!(
        values(&unit, "Service", "SocketBindAllow"),
        [format!("tcp:{port}")]
    );
    assert_eq!(values(&unit, "Service", "SocketBindDeny"), ["any"]);
}

/// One crontab: its `NAME=value` lines, its jobs, and its commented-out alternative jobs.
struct Crontab {
    env: Vec<(String, String)>,
    jobs: Vec<Job>,
    alternatives: Vec<Job>,
}

struct Job {
    minute: String,
    others: Vec<String>,
    user: Option<String>,
    command: String,
}

/// `with_user`: /etc/cron.d files name the user after the five time fields.
fn crontab(text: &str, with_user: bool) -> Crontab {
    let job = |line: &str| {
        let mut rest = line.trim_start();
        let mut fields = Vec::new();
        for _ in 0..if with_user { 6 } else { 5 } {
            let (field, tail) = rest.split_once([' ', '\t']).expect("a cron job line");
            fields.push(field.to_string());
            rest = tail.trim_start();
        }
        Job {
            minute: fields[0].clone(),
            others: fields[1..5].to_vec(),
            user: fields.get(5).cloned(),
            command: rest.to_string(),
        }
    };
    let mut tab = Crontab {
        env: Vec::new(),
        jobs: Vec::new(),
        alternatives: Vec::new(),
    };
    for line in text.lines().map(str::trim_start).filter(|l| !l.is_empty()) {
        if let Some(commented) = line.strip_prefix('#') {
            if commented.starts_with(|c: char| c == '*' || c == '@' || c.is_ascii_digit()) {
                tab.alternatives.push(job(commented));
            }
        } else if line.starts_with(|c: char| c == '*' || c == '@' || c.is_ascii_digit()) {
            tab.jobs.push(job(line));
        } else {
            let (name, value) = line.split_once('=').expect("NAME=value");
            tab.env
                .push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    tab
}

/// The minutes a crontab minute field (`*`, `*/n`, `a-b/n`, lists) stands for.
fn minutes(field: &str) -> BTreeSet<u32> {
    let mut set = BTreeSet::new();
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (range, step.parse::<u32>().expect("a step")),
            None => (part, 1),
        };
        let (first, last) = match range {
            "*" => (0, 59),
            _ => match range.split_once('-') {
                Some((a, b)) => (a.parse().unwrap(), b.parse().unwrap()),
                None => {
                    let at = range.parse().unwrap();
                    (at, if part.contains('/') { 59 } else { at })
                }
            },
        };
        set.extend((first..=last).step_by(step as usize));
    }
    set
}

fn check_cron_job(job: &Job, file: &str, user: Option<&str>) {
    assert_eq!(
        minutes(&job.minute),
        (0..60).step_by(5).collect::<BTreeSet<u32>>(),
        "{file}: minute field {:?}: every five minutes wanted",
        job.minute
    );
    assert_eq!(job.others, ["*", "*", "*", "*"], "{file}: time fields");
    assert_eq!(job.user.as_deref(), user, "{file}: user field");
    // cron turns an unescaped % into a newline and feeds the rest to stdin.
    assert!(!job.command.contains('%'), "{file}: % in {}", job.command);
    let output = Command::new("sh")
        .args(["-n", "-c", &job.command])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{file}: sh -n: {}\n{}",
        text(&output),
        job.command
    );
    for needed in [
        "calplanebot sync",
        "CALPLANEBOT_LOCK_FILE=",
        "logger -t calplanebot",
    ] {
        assert!(
            job.command.contains(needed),
            "{file}: no {needed:?} in {}",
            job.command
        );
    }
}

fn check_crontab(file: &str, user: Option<&str>) -> Crontab {
    let tab = crontab(&read(file), user.is_some());
    assert_eq!(tab.jobs.len(), 1, "{file}: one job wanted");
    for job in tab.jobs.iter().chain(&tab.alternatives) {
        check_cron_job(job, file, user);
    }
    // The alternatives differ from the job by --metrics-file only.
    assert!(
        !tab.alternatives.is_empty(),
        "{file}: the --metrics-file alternative"
    );
    for alternative in &tab.alternatives {
        let (before, after) = alternative
            .command
            .split_once(" --metrics-file ")
            .expect("--metrics-file");
        let after = after.split_once(' ').expect("a path").1;
        assert_eq!(format!("{before} {after}"), tab.jobs[0].command, "{file}");
    }
    // README.md installs calplanebot into /usr/local/bin, which cron's default PATH lacks.
    let path = tab.env.iter().find(|(name, _)| name == "PATH");
    assert!(
        path.is_some_and(|(_, path)| path.split(':').any(|dir| dir == "/usr/local/bin")),
        "{file}: a PATH with /usr/local/bin"
    );
    tab
}

#[test]
fn cron_d_entry_runs_every_five_minutes_as_calplanebot_and_parses() {
    check_crontab("cron/calplanebot", Some("calplanebot"));
}

#[test]
fn user_crontab_line_runs_every_five_minutes_and_parses() {
    check_crontab("cron/crontab.example", None);
}

/// Runs a crontab's job the way cron does (`sh -c`, a bare environment with the crontab's
/// variables), with `calplanebot` the built binary and `logger` a stand-in that keeps its
/// arguments and input, while another run holds the lock at `lock`. Returns what reached
/// `logger`.
fn run_while_locked(tab: &Crontab, command: &str, home: &Path, lock: &Path) -> (String, String) {
    let bin = home.join("bin");
    std::fs::create_dir_all(&bin).unwrap();
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_calplanebot"), bin.join("calplanebot")).unwrap();
    let logged = home.join("logger");
    let script = home.join("logger.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s\\n' \"$*\" >'{0}.args'\nexec cat >'{0}.input'\n",
            logged.display()
        ),
    )
    .unwrap();
    // Installed by another process: a file this process once had open for writing can fail
    // to execute ("Text file busy") while another test's child still holds that descriptor.
    let installed = Command::new("install")
        .args(["-m", "0755"])
        .arg(&script)
        .arg(bin.join("logger"))
        .status()
        .unwrap();
    assert!(installed.success());

    std::fs::create_dir_all(lock.parent().unwrap()).unwrap();
    let holder = std::fs::File::create(lock).unwrap();
    holder.lock().unwrap();

    let mut sh = Command::new("/bin/sh");
    sh.arg("-c").arg(command).env_clear();
    sh.env("HOME", home).env("LOGNAME", "calplanebot");
    sh.env("SHELL", "/bin/sh");
    for (name, value) in &tab.env {
        sh.env(name, value);
    }
    let path = tab.env.iter().find(|(name, _)| name == "PATH").unwrap();
    sh.env("PATH", format!("{}:{}", bin.display(), path.1));
    let output = sh.output().unwrap();
    drop(holder);
    assert!(output.status.success(), "{}", text(&output));
    // Everything went to logger; cron would have nothing to mail.
    assert_eq!(text(&output), "", "output that cron would mail");
    let read = |suffix: &str| {
        std::fs::read_to_string(format!("{}.{suffix}", logged.display()))
            .unwrap_or_else(|e| panic!("logger was not run ({e})"))
    };
    (read("args"), read("input"))
}

/// Settings that pass calplanebot's configuration check; the servers are never asked.
fn write_env_file(path: &Path, secrets: &Path) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(secrets.join("token"), "plane_api_x\n").unwrap();
    std::fs::write(secrets.join("password"), "x\n").unwrap();
    std::fs::write(
        path,
        format!(
            "PLANE_BASE_URL=http://127.0.0.1:9\nPLANE_WORKSPACE_SLUG=acme\n\
             PLANE_API_TOKEN_FILE={}\nCALDAV_URL=http://127.0.0.1:9/\n\
             CALDAV_USERNAME=plane-bot\nCALDAV_PASSWORD_FILE={}\n",
            secrets.join("token").display(),
            secrets.join("password").display()
        ),
    )
    .unwrap();
}

fn assert_logged_overlap(args: &str, input: &str) {
    assert_eq!(args.trim(), "-t calplanebot");
    assert!(
        input.contains("another calplanebot run holds the lock"),
        "logged: {input}"
    );
    assert!(
        input.contains("calplanebot sync: exit status 4"),
        "logged: {input}"
    );
}

#[test]
fn cron_d_entry_skips_an_overlapping_run_and_logs_why() {
    let scratch = Scratch::new("cron-d");
    let tab = check_crontab("cron/calplanebot", Some("calplanebot"));
    let home = scratch.path().join("var-lib-calplanebot");
    let env_file = scratch.path().join("calplanebot.env");
    write_env_file(&env_file, scratch.path());
    let mut command = tab.jobs[0].command.clone();
    for (installed, local) in [
        ("/etc/calplanebot/calplanebot.env", env_file.as_path()),
        ("/var/lib/calplanebot", home.as_path()),
    ] {
        assert!(command.contains(installed), "{installed} in {command}");
        command = command.replace(installed, local.to_str().unwrap());
    }
    let (args, input) = run_while_locked(&tab, &command, &home, &home.join("run.lock"));
    assert_logged_overlap(&args, &input);
}

#[test]
fn user_crontab_line_skips_an_overlapping_run_and_logs_why() {
    let scratch = Scratch::new("crontab");
    let tab = check_crontab("cron/crontab.example", None);
    let home = scratch.path();
    write_env_file(&home.join(".config/calplanebot/env"), home);
    let (args, input) = run_while_locked(
        &tab,
        &tab.jobs[0].command,
        home,
        &home.join(".cache/calplanebot/run.lock"),
    );
    assert_logged_overlap(&args, &input);
}
