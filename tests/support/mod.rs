//! Shared set-up of the end-to-end tests: the Plane simulator, a real CalDAV server (Radicale
//! or Xandikos) behind a counting proxy, a "calendar user" acting like a person's calendar app,
//! and a runner for the real `calplanebot` binary with a hermetic environment.
//!
//! Every test that talks to a CalDAV server runs once per server: write it as
//! `fn name(server: ServerKind)` and put `on_both_servers!(name);` above it.

#![allow(dead_code)] // each test binary uses a different part of this module

use std::process::Command;

use calplanebot_testbed::caldav_server::CalDavServer;
pub use calplanebot_testbed::caldav_server::ServerKind;
use calplanebot_testbed::calendar_user::CalendarUser;
use calplanebot_testbed::plane_sim::{PlaneSim, Seed};
use calplanebot_testbed::proxy::CountingProxy;

/// Turns `fn name(server: ServerKind)` into two tests, `name::radicale` and `name::xandikos`.
#[macro_export]
macro_rules! on_both_servers {
    ($($name:ident),+ $(,)?) => {
        $(
            mod $name {
                #[test]
                fn radicale() {
                    super::$name(calplanebot_testbed::caldav_server::ServerKind::Radicale)
                }
                #[test]
                fn xandikos() {
                    super::$name(calplanebot_testbed::caldav_server::ServerKind::Xandikos)
                }
            }
        )+
    };
}

/// The webhook secret the tests configure (the form Plane generates).
/// The feed secret of the tests' feed runs ([`Env::feeds_command`]).
pub const FEED_SECRET: &str = "feed-secret-for-tests-0123456789abcdef";
pub const WEBHOOK_SECRET: &str = "plane_wh_0123456789abcdef0123456789abcdef";

pub struct Env {
    pub sim: PlaneSim,
    pub server: CalDavServer,
    pub proxy: CountingProxy,
    pub user: CalendarUser,
}

/// The outcome of one run of the binary.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Env {
    pub fn start(kind: ServerKind, seed: serde_json::Value) -> Env {
        let server = CalDavServer::start(kind).expect("the CalDAV server starts");
        Env::with_server(server, seed)
    }

    /// The simulator seeded with `seed`, `server` behind a counting proxy, a calendar user.
    pub fn with_server(server: CalDavServer, seed: serde_json::Value) -> Env {
        let seed = Seed::from_json(&seed.to_string()).expect("a valid seed");
        let sim = PlaneSim::start(seed).expect("the Plane simulator starts");
        let proxy = CountingProxy::start_for(&server).expect("the proxy starts");
        let user = CalendarUser::for_server(&server);
        Env {
            sim,
            server,
            proxy,
            user,
        }
    }

    pub fn kind(&self) -> ServerKind {
        self.server.kind()
    }

    /// A file or directory inside the server's private temp dir (gone with the test).
    pub fn scratch(&self, name: &str) -> std::path::PathBuf {
        self.server.scratch_dir().join(name)
    }

    /// The environment a real deployment would set (secrets included). A TLS server's
    /// certificate is trusted through `CALDAV_CA_FILE`, as for a private CA.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        let mut vars = vec![
            ("PLANE_BASE_URL", self.sim.base_url()),
            ("PLANE_API_TOKEN", self.sim.token()),
            ("PLANE_WORKSPACE_SLUG", self.sim.workspace_slug()),
            ("CALDAV_URL", format!("{}/", self.proxy.url())),
            ("CALDAV_USERNAME", self.server.username().to_string()),
            ("CALDAV_PASSWORD", self.server.password().to_string()),
            (
                "CALPLANEBOT_LOCK_FILE",
                self.scratch("calplanebot.lock").display().to_string(),
            ),
            (
                "CALPLANEBOT_CACHE_DIR",
                self.scratch("cache").display().to_string(),
            ),
        ];
        if let Some(tls) = self.server.tls() {
            vars.push(("CALDAV_CA_FILE", tls.cert_pem.display().to_string()));
        }
        // scripts/test runs the end-to-end tests a second time with the listing snapshot off.
        if let Ok(every) = std::env::var("CALPLANEBOT_TEST_FULL_LISTING_EVERY") {
            vars.push(("CALPLANEBOT_FULL_LISTING_EVERY", every));
        }
        vars
    }

    /// Runs `calplanebot webhook` with `body` on stdin and the shim's variables: the
    /// signature (when given) and the secret [`WEBHOOK_SECRET`], plus `extra`.
    pub fn webhook(&self, body: &[u8], signature: Option<&str>, extra: &[(&str, &str)]) -> Run {
        let mut vars: Vec<(&str, &str)> = vec![("PLANE_WEBHOOK_SECRET", WEBHOOK_SECRET)];
        if let Some(signature) = signature {
            vars.push(("PLANE_WEBHOOK_SIGNATURE", signature));
        }
        vars.extend_from_slice(extra);
        let mut child = self
            .command(&["webhook"], &vars)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the binary runs");
        {
            use std::io::Write as _;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(body).expect("the body is written");
        }
        finish(child, &format!("webhook < ({} bytes)", body.len()))
    }

    /// Runs `calplanebot ARGS` with only the variables of [`Env::vars`] plus `extra`.
    pub fn run_with(&self, args: &[&str], extra: &[(&str, &str)]) -> Run {
        let child = self
            .command(args, extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("the binary runs");
        finish(child, &args.join(" "))
    }

    /// The command [`Env::run_with`] runs, for tests that spawn the binary and act while it runs.
    pub fn command(&self, args: &[&str], extra: &[(&str, &str)]) -> Command {
        let mut command = Command::new(env!("CARGO_BIN_EXE_calplanebot"));
        command.args(args).env_clear();
        for (name, value) in self.vars() {
            command.env(name, value);
        }
        for (name, value) in extra {
            command.env(name, value);
        }
        command
    }

    /// The command of a run with feeds in `dir` (secret [`FEED_SECRET`]), CalDAV only when
    /// `caldav`, and `extra` variables on top (they win over the defaults); stdout and stderr
    /// piped.
    pub fn feeds_command(
        &self,
        dir: &std::path::Path,
        caldav: bool,
        args: &[&str],
        extra: &[(&str, &str)],
    ) -> Command {
        let dir = dir.display().to_string();
        let mut command = self.command(
            args,
            &[
                ("CALPLANEBOT_FEED_DIR", dir.as_str()),
                ("CALPLANEBOT_FEED_SECRET", FEED_SECRET),
                (
                    "CALPLANEBOT_FEED_BASE_URL",
                    "https://cal.example.com/feeds/",
                ),
            ],
        );
        if !caldav {
            for name in [
                "CALDAV_URL",
                "CALDAV_USERNAME",
                "CALDAV_PASSWORD",
                "CALDAV_CA_FILE",
            ] {
                command.env_remove(name);
            }
        }
        for (name, value) in extra {
            command.env(name, value);
        }
        command
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        command
    }

    /// Runs the binary as [`Env::feeds_command`] sets it up.
    pub fn run_feeds(
        &self,
        dir: &std::path::Path,
        caldav: bool,
        args: &[&str],
        extra: &[(&str, &str)],
    ) -> Run {
        let child = self
            .feeds_command(dir, caldav, args, extra)
            .spawn()
            .expect("the binary runs");
        finish(child, &args.join(" "))
    }

    /// Runs the binary with feeds only (no CalDAV variables) into `dir`.
    pub fn feeds_only(&self, dir: &std::path::Path, args: &[&str]) -> Run {
        self.run_feeds(dir, false, args, &[])
    }

    pub fn sync(&self, args: &[&str]) -> Run {
        let mut all = vec!["sync"];
        all.extend_from_slice(args);
        self.run_with(&all, &[])
    }

    pub fn project_id(&self, identifier: &str) -> String {
        self.sim.with_world(|w| {
            w.project(identifier)
                .unwrap_or_else(|| panic!("no project {identifier}"))
                .id
                .clone()
        })
    }

    pub fn issue_id(&self, name: &str) -> String {
        self.sim.with_world(|w| {
            w.issues
                .iter()
                .find(|i| i.name == name)
                .unwrap_or_else(|| panic!("no issue {name:?}"))
                .id
                .clone()
        })
    }

    /// The calendar home's path: `/alice/` on Radicale, `/alice/calendars/` on Xandikos.
    pub fn home(&self) -> String {
        self.server.home_href()
    }

    pub fn calendar_href(&self, identifier: &str) -> String {
        format!("{}plane-{}/", self.home(), self.project_id(identifier))
    }

    pub fn event_href(&self, identifier: &str, issue_name: &str) -> String {
        format!(
            "{}plane-issue-{}.ics",
            self.calendar_href(identifier),
            self.issue_id(issue_name)
        )
    }

    /// The stored event of an issue: (etag, body).
    pub fn event(&self, identifier: &str, issue_name: &str) -> Option<(String, String)> {
        self.user
            .get(&self.event_href(identifier, issue_name))
            .expect("GET works")
    }

    /// calplanebot's own CalDAV client, with the credentials and trust a run would have,
    /// talking to the server through the proxy: for tests of the library API against a real
    /// server.
    pub fn dav_client(&self) -> calplanebot::caldav::DavClient {
        let roots = self.server.tls().map(|tls| {
            let pem = std::fs::read(&tls.cert_pem).expect("the certificate is readable");
            ureq::tls::parse_pem(&pem)
                .filter_map(|item| match item {
                    Ok(ureq::tls::PemItem::Certificate(certificate)) => {
                        Some(certificate.der().to_vec())
                    }
                    _ => None,
                })
                .collect::<Vec<_>>()
        });
        calplanebot::caldav::DavClient::new(
            self.server.username(),
            &calplanebot::config::Secret::new(self.server.password()),
            &calplanebot::config::Network::default(),
            roots.as_deref(),
        )
    }

    /// Requests by method that reached the CalDAV server since the last reset.
    pub fn caldav_count(&self, method: &str) -> usize {
        self.proxy.count(method)
    }

    pub fn writes(&self) -> usize {
        ["PUT", "DELETE", "MKCALENDAR", "PROPPATCH", "MOVE", "COPY"]
            .iter()
            .map(|m| self.proxy.count(m))
            .sum()
    }
}

/// Waits for a spawned run of the binary and prints what it said (shown when a test fails).
pub fn finish(child: std::process::Child, label: &str) -> Run {
    let output = child.wait_with_output().expect("the binary ends");
    let run = Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    eprintln!(
        "$ calplanebot ({label}) -> {}\n--- stdout\n{}--- stderr\n{}",
        run.code, run.stdout, run.stderr
    );
    run
}

/// The values of property `name` in an iCalendar text: unfolded, parameters kept raw, values
/// TEXT-unescaped. A deliberately independent, minimal reading (not calplanebot's parser).
pub fn props(ics: &str, name: &str) -> Vec<(String, String)> {
    let unfolded = ics
        .replace("\r\n", "\n")
        .replace("\n ", "")
        .replace("\n\t", "");
    unfolded
        .lines()
        .filter_map(|line| {
            let (head, value) = split_value(line)?;
            let (prop, params) = head.split_once(';').unwrap_or((head, ""));
            prop.eq_ignore_ascii_case(name)
                .then(|| (params.to_string(), value.to_string()))
        })
        .collect()
}

/// The first value of `name`, unescaped.
pub fn prop(ics: &str, name: &str) -> Option<String> {
    props(ics, name)
        .into_iter()
        .next()
        .map(|(_, v)| unescape(&v))
}

fn split_value(line: &str) -> Option<(&str, &str)> {
    let mut quoted = false;
    for (i, c) in line.char_indices() {
        match c {
            '"' => quoted = !quoted,
            ':' if !quoted => return Some((&line[..i], &line[i + 1..])),
            _ => {}
        }
    }
    None
}

pub fn unescape(value: &str) -> String {
    let mut out = String::new();
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') | Some('N') => out.push('\n'),
                Some(other) => out.push(other),
                None => out.push('\\'),
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// Splits a CATEGORIES value on unescaped commas, then unescapes each part.
pub fn categories(ics: &str) -> Vec<String> {
    let mut all = Vec::new();
    for (_, value) in props(ics, "CATEGORIES") {
        let mut part = String::new();
        let mut chars = value.chars();
        while let Some(c) = chars.next() {
            match c {
                '\\' => {
                    part.push('\\');
                    if let Some(n) = chars.next() {
                        part.push(n);
                    }
                }
                ',' => all.push(unescape(&std::mem::take(&mut part))),
                _ => part.push(c),
            }
        }
        all.push(unescape(&part));
    }
    all
}

/// Inserts a VALARM into the (first) VEVENT, as a calendar app does when a user adds a reminder.
pub fn with_alarm(ics: &str) -> String {
    let alarm = "BEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:Reminder\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\n";
    let at = ics.find("END:VEVENT").expect("a VEVENT");
    format!("{}{alarm}{}", &ics[..at], &ics[at..])
}

/// `(href, displayname)` of the calendars in the home, sorted.
pub fn calendars(env: &Env) -> Vec<(String, Option<String>)> {
    let mut all = env
        .user
        .list_calendars(&env.home())
        .expect("the home lists");
    all.sort();
    all
}

/// The line of `check`'s output that starts with `mark label`.
pub fn line<'a>(run: &'a Run, mark: &str, label: &str) -> &'a str {
    let prefix = format!("{mark} {label}");
    run.stdout
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no line {prefix:?} in\n{}", run.stdout))
}

/// The summary of a run that changed nothing.
pub const NO_OP: &str = "0 created, 0 updated, 0 deleted";

/// The run's stdout holds `summary` (a plan's summary line, or part of it).
pub fn assert_summary(run: &Run, summary: &str) {
    assert!(
        run.stdout.contains(summary),
        "expected {summary:?} in\n{}",
        run.stdout
    );
}
