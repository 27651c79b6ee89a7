//! The benchmark: how many requests, how much time and how much memory a calplanebot run costs
//! on a big workspace, against real CalDAV servers, next to the lower bound of requests.
//!
//! Run: `cargo run --release --example bench` (100 projects × 100 issues, 80% dated, 20
//! members with the issues assigned round-robin, Radicale and Xandikos; `-- --quick` for
//! 10 × 50, `--projects P --issues N --dated-percent D`, `--server radicale|xandikos|both`,
//! `--plane-rate-limit N`, `--json`).
//!
//! Besides CalDAV runs it measures the feed target (`CALPLANEBOT_FEED_DIR`) the same way: a
//! feeds-only first run (every feed written), a feeds-only run with nothing changed (no file
//! written), and a run of both targets with nothing changed, next to the CalDAV-only one. The
//! feed files written are counted from the directory itself (inode, mtime and size before and
//! after the run).
//!
//! Each run is the real calplanebot code in a child process of its own (this program re-runs
//! itself with a hidden first argument and calls `calplanebot::commands::main`), so its CPU time and
//! peak RSS are its own: the child reads them from `/proc/self` just before it exits. Requests
//! are counted where they arrive: by the Plane simulator, and by a counting proxy in front of
//! the CalDAV server. Nothing is timed in-process except "local work": mapping and planning
//! 10,000 issues with no I/O.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use calplanebot::mapping::event::{self, MappingContext};
use calplanebot::plane::{self, IssueItem};
use calplanebot::reconcile::plan::{
    ActualEvent, CalendarJob, CalendarState, CalendarTarget, ProjectScope,
};
use calplanebot_testbed::caldav_server::{CalDavServer, ServerKind};
use calplanebot_testbed::plane_sim::{PlaneSim, Seed};
use calplanebot_testbed::proxy::CountingProxy;
use serde_json::{Value, json};

/// The hidden first argument of a child run.
const CHILD: &str = "__calplanebot";
/// Where a child writes its own CPU time and peak RSS.
const STATS_ENV: &str = "CALPLANEBOT_BENCH_STATS";
const WEBHOOK_SECRET: &str = "plane_wh_bench0123456789abcdef0123456789";
const FEED_SECRET: &str = "calplanebot-bench-feed-secret";
/// Workspace members of the benchmark workspace; issue `k` is assigned to member `k % MEMBERS`.
const MEMBERS: usize = 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(CHILD) {
        return child(&args[2..]);
    }
    let options = Options::parse(&args[1..])?;
    let mut results = Vec::new();
    let started = Instant::now();
    for kind in &options.servers {
        eprintln!(
            "== {} ({} projects × {} issues, {}% dated)",
            kind.name(),
            options.projects,
            options.issues,
            options.dated_percent
        );
        results.push(bench_server(&options, *kind)?);
    }
    let local = local_work(10_000);
    let machine = machine();
    let total = started.elapsed().as_secs_f64();
    if options.json {
        let doc = json!({
            "machine": machine,
            "workload": {"projects": options.projects, "issues_per_project": options.issues,
                         "dated_percent": options.dated_percent,
                         "plane_rate_limit_per_minute": options.plane_rate_limit},
            "servers": results,
            "local_work_10000_issues_ms": local,
            "bench_seconds": total,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print_report(&options, &machine, &results, &local, total);
    }
    Ok(())
}

// -------------------------------------------------------------------------------------------
// The child: one run of the real calplanebot, reporting its own CPU time and peak RSS.
// -------------------------------------------------------------------------------------------

fn child(args: &[String]) -> Result<(), Box<dyn std::error::Error>> {
    let mut argv = vec!["calplanebot".to_string()];
    argv.extend_from_slice(args);
    let code = calplanebot::commands::main(argv);
    if let Some(path) = std::env::var_os(STATS_ENV) {
        let status = std::fs::read_to_string("/proc/self/status")?;
        let peak_kib: u64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmHWM:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(0);
        // Fields 14 and 15 of /proc/self/stat: user and system time of all threads, in clock
        // ticks (USER_HZ, 100 on Linux). The command name (field 2) may hold spaces: split
        // after its closing parenthesis.
        let stat = std::fs::read_to_string("/proc/self/stat")?;
        let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
        let fields: Vec<u64> = rest
            .split_whitespace()
            .map(|f| f.parse().unwrap_or(0))
            .collect();
        let ticks = fields.get(11).copied().unwrap_or(0) + fields.get(12).copied().unwrap_or(0);
        std::fs::write(path, format!("{peak_kib} {ticks}\n"))?;
    }
    std::process::exit(if code == std::process::ExitCode::SUCCESS {
        0
    } else {
        1
    });
}

/// What one child run cost.
#[derive(Clone, Debug, serde::Serialize)]
struct RunCost {
    name: String,
    exit_ok: bool,
    wall_seconds: f64,
    cpu_seconds: f64,
    peak_rss_mib: f64,
    plane: BTreeMap<String, usize>,
    plane_bound: usize,
    caldav: BTreeMap<String, usize>,
    caldav_bound: usize,
    /// The part of the CalDAV bound that is discovery (0 when the cache answered).
    caldav_discovery: usize,
    /// The feed directory after the run, when the run wrote feeds.
    feeds: Option<FeedCost>,
}

/// What a run did to the feed directory.
#[derive(Clone, Debug, serde::Serialize)]
struct FeedCost {
    /// Feed files new or replaced (another inode, mtime or size than before the run).
    written: usize,
    /// Feed files in the directory after the run, and their total size.
    files: usize,
    bytes: u64,
}

/// Which targets a run writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Targets {
    CalDav,
    /// `CALPLANEBOT_FEED_DIR` and no `CALDAV_URL`.
    Feeds,
    Both,
}

impl Targets {
    fn caldav(self) -> bool {
        matches!(self, Targets::CalDav | Targets::Both)
    }

    fn feeds(self) -> bool {
        matches!(self, Targets::Feeds | Targets::Both)
    }
}

// -------------------------------------------------------------------------------------------
// One server: the runs and their lower bounds.
// -------------------------------------------------------------------------------------------

struct Bench<'a> {
    options: &'a Options,
    sim: &'a PlaneSim,
    server: &'a CalDavServer,
    proxy: &'a CountingProxy,
    dir: PathBuf,
}

fn bench_server(options: &Options, kind: ServerKind) -> Result<Value, Box<dyn std::error::Error>> {
    let seed = workspace_seed(options);
    let dated = count_dated(&seed);
    let sim = PlaneSim::start(Seed::from_json(&seed.to_string())?)?;
    sim.set_rate_limit(options.plane_rate_limit);
    let server = CalDavServer::start(kind)?;
    let proxy = CountingProxy::start_for(&server)?;
    let bench = Bench {
        options,
        sim: &sim,
        server: &server,
        proxy: &proxy,
        dir: server.scratch_dir().join("bench"),
    };
    std::fs::create_dir_all(bench.feed_dir())?;
    let p = options.projects;
    // Plane: the projects page, then per project one work-items page per `PER_PAGE` (1000)
    // issues; the simulator accepts 1000 a page, as Plane CE does.
    let pages = |issues: usize| 1 + p * issues.div_ceil(plane::PER_PAGE as usize).max(1);
    // A sync over existing calendars: discovery + the home + per calendar one PROPFIND and a
    // multiget per 100 events.
    let listing = |events_per_calendar: usize| 1 + p * (1 + events_per_calendar.div_ceil(100));
    let per_calendar = dated / p;
    let mut runs = Vec::new();

    eprintln!("   first sync ({dated} events)…");
    let first = bench.run(
        "first sync",
        &["sync", "-q"],
        &[],
        pages(options.issues),
        2 + 1 + p + dated,
        2,
    )?;
    runs.push(first.clone());

    eprintln!("   second sync, nothing changed…");
    runs.push(bench.run(
        "no change",
        &["sync", "-q"],
        &[],
        pages(options.issues),
        2 + listing(per_calendar),
        2,
    )?);

    // The feed target: the same Plane fetch plus one members page.
    eprintln!("   feeds only, first run…");
    runs.push(bench.run_targets(
        "feeds only, first run",
        Targets::Feeds,
        pages(options.issues) + 1,
        0,
    )?);
    eprintln!("   feeds only, nothing changed…");
    runs.push(bench.run_targets(
        "feeds only, no change",
        Targets::Feeds,
        pages(options.issues) + 1,
        0,
    )?);
    eprintln!("   CalDAV and feeds, nothing changed…");
    runs.push(bench.run_targets(
        "CalDAV + feeds, no change",
        Targets::Both,
        pages(options.issues) + 1,
        2 + listing(per_calendar),
    )?);

    let (changed, undated) = change_one_percent(&sim);
    eprintln!("   sync after {changed} changes…");
    runs.push(bench.run(
        "1% changed",
        &["sync", "-q"],
        &[],
        pages(options.issues) + undated,
        2 + listing(per_calendar) + changed,
        2,
    )?);

    eprintln!("   webhook run for one issue…");
    let id = sim.with_world(|w| {
        let issue = w
            .issues
            .iter_mut()
            .find(|i| i.target_date.is_some())
            .expect("a dated issue");
        issue.target_date = Some("2027-06-30".into());
        issue.id.clone()
    });
    let delivery = sim.webhook_delivery("issue", "updated", &id, WEBHOOK_SECRET);
    let signature = delivery
        .header("X-Plane-Signature")
        .unwrap_or_default()
        .to_string();
    runs.push(bench.run_with_stdin(
        "webhook (1 issue)",
        &["webhook", "-q"],
        &[
            ("PLANE_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ("PLANE_WEBHOOK_SIGNATURE", &signature),
        ],
        Some(&delivery.body),
        1,
        2,
        0,
    )?);
    drop(bench);
    drop(proxy);
    drop(server);

    // The first sync again on fresh servers: sequential writes against the default.
    let mut first_by_concurrency = Vec::new();
    for concurrency in ["1", "4"] {
        eprintln!("   first sync again, --concurrency {concurrency}…");
        let server = CalDavServer::start(kind)?;
        let proxy = CountingProxy::start_for(&server)?;
        let bench = Bench {
            options,
            sim: &sim,
            server: &server,
            proxy: &proxy,
            dir: server.scratch_dir().join("bench"),
        };
        std::fs::create_dir_all(&bench.dir)?;
        let dated_now =
            sim.with_world(|w| w.issues.iter().filter(|i| i.target_date.is_some()).count());
        // Straight to the server, without the counting proxy: the proxy opens a new upstream
        // connection (a new TLS handshake for Xandikos) per request, which would hide what
        // keep-alive and concurrency do. Requests are not counted in these two runs.
        let direct = format!("{}/", server.url());
        first_by_concurrency.push(bench.run(
            &format!("first sync, direct, -j {concurrency}"),
            &["sync", "-q", "--concurrency", concurrency],
            &[("CALDAV_URL", direct.as_str())],
            pages(options.issues),
            2 + 1 + p + dated_now,
            2,
        )?);
    }
    let speedup = first_by_concurrency[0].wall_seconds / first_by_concurrency[1].wall_seconds;
    runs.extend(first_by_concurrency);
    Ok(json!({
        "server": kind.name(),
        "dated_issues": dated,
        "runs": runs,
        "speedup_concurrency_4_over_1": speedup,
    }))
}

impl Bench<'_> {
    fn run(
        &self,
        name: &str,
        args: &[&str],
        extra: &[(&str, &str)],
        plane_bound: usize,
        caldav_bound: usize,
        discovery: usize,
    ) -> Result<RunCost, Box<dyn std::error::Error>> {
        self.run_with_stdin(
            name,
            args,
            extra,
            None,
            plane_bound,
            caldav_bound,
            discovery,
        )
    }

    /// A `sync` writing `targets`.
    fn run_targets(
        &self,
        name: &str,
        targets: Targets,
        plane_bound: usize,
        caldav_bound: usize,
    ) -> Result<RunCost, Box<dyn std::error::Error>> {
        let discovery = if targets.caldav() { 2 } else { 0 };
        self.run_command(
            name,
            targets,
            &["sync", "-q"],
            &[],
            None,
            (plane_bound, caldav_bound, discovery),
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn run_with_stdin(
        &self,
        name: &str,
        args: &[&str],
        extra: &[(&str, &str)],
        stdin: Option<&[u8]>,
        plane_bound: usize,
        caldav_bound: usize,
        discovery: usize,
    ) -> Result<RunCost, Box<dyn std::error::Error>> {
        self.run_command(
            name,
            Targets::CalDav,
            args,
            extra,
            stdin,
            (plane_bound, caldav_bound, discovery),
        )
    }

    /// One child run; `bounds` are the Plane and CalDAV lower bounds and the discovery part
    /// of the latter.
    fn run_command(
        &self,
        name: &str,
        targets: Targets,
        args: &[&str],
        extra: &[(&str, &str)],
        stdin: Option<&[u8]>,
        bounds: (usize, usize, usize),
    ) -> Result<RunCost, Box<dyn std::error::Error>> {
        let (plane_bound, caldav_bound, discovery) = bounds;
        self.sim.reset_requests();
        self.proxy.reset();
        let stats = self.dir.join("stats");
        let _ = std::fs::remove_file(&stats);
        let mut command = Command::new(std::env::current_exe()?);
        command.arg(CHILD).args(args).env_clear();
        for (name, value) in self.vars(&stats, targets) {
            command.env(name, value);
        }
        for (name, value) in extra {
            command.env(name, value);
        }
        command
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let feeds_before = calplanebot_testbed::feed_server::file_stamps(&self.feed_dir());
        let started = Instant::now();
        let mut child = command.spawn()?;
        if let Some(body) = stdin {
            child.stdin.take().expect("piped").write_all(body)?;
        }
        let output = child.wait_with_output()?;
        let wall = started.elapsed();
        let feeds = targets.feeds().then(|| {
            let after = calplanebot_testbed::feed_server::file_stamps(&self.feed_dir());
            FeedCost {
                written: after
                    .iter()
                    .filter(|(name, stamp)| feeds_before.get(*name) != Some(stamp))
                    .count(),
                files: after.len(),
                bytes: after.values().map(|stamp| stamp.3).sum(),
            }
        });
        if !output.status.success() {
            eprintln!(
                "   {name} failed:\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        let text = std::fs::read_to_string(&stats).unwrap_or_default();
        let mut parts = text
            .split_whitespace()
            .map(|v| v.parse::<u64>().unwrap_or(0));
        let (peak_kib, ticks) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
        let mut plane = BTreeMap::new();
        for request in self.sim.requests() {
            let kind = if request.path.ends_with("/projects/") {
                "projects page"
            } else if request.path.ends_with("/work-items/") {
                "work-items page"
            } else if request.path.ends_with("/members/") {
                "members page"
            } else {
                "one work item"
            };
            *plane.entry(kind.to_string()).or_insert(0) += 1;
        }
        Ok(RunCost {
            name: name.to_string(),
            exit_ok: output.status.success(),
            wall_seconds: wall.as_secs_f64(),
            cpu_seconds: ticks as f64 / 100.0,
            peak_rss_mib: peak_kib as f64 / 1024.0,
            plane,
            plane_bound,
            caldav: self.proxy.counts().into_iter().collect(),
            caldav_bound,
            caldav_discovery: discovery,
            feeds,
        })
    }

    /// The directory the feed runs write (`CALPLANEBOT_FEED_DIR`).
    fn feed_dir(&self) -> PathBuf {
        self.dir.join("feeds")
    }

    fn vars(&self, stats: &Path, targets: Targets) -> Vec<(&'static str, String)> {
        let mut vars = vec![
            ("PATH", std::env::var("PATH").unwrap_or_default()),
            ("PLANE_BASE_URL", self.sim.base_url()),
            ("PLANE_API_TOKEN", self.sim.token()),
            ("PLANE_WORKSPACE_SLUG", self.sim.workspace_slug()),
            (
                "CALPLANEBOT_LOCK_FILE",
                self.dir.join("lock").display().to_string(),
            ),
            (
                "CALPLANEBOT_CACHE_DIR",
                self.dir.join("cache").display().to_string(),
            ),
            // Big runs: no deletion guard in the way of the 1% change, generous timeouts.
            ("CALPLANEBOT_MAX_DELETE", "100000".to_string()),
            ("CALPLANEBOT_TIMEOUT", "120".to_string()),
            (STATS_ENV, stats.display().to_string()),
        ];
        if targets.caldav() {
            vars.extend([
                ("CALDAV_URL", format!("{}/", self.proxy.url())),
                ("CALDAV_USERNAME", self.server.username().to_string()),
                ("CALDAV_PASSWORD", self.server.password().to_string()),
            ]);
            if let Some(tls) = self.server.tls() {
                vars.push(("CALDAV_CA_FILE", tls.cert_pem.display().to_string()));
            }
        }
        if targets.feeds() {
            vars.extend([
                (
                    "CALPLANEBOT_FEED_DIR",
                    self.feed_dir().display().to_string(),
                ),
                ("CALPLANEBOT_FEED_SECRET", FEED_SECRET.to_string()),
            ]);
        }
        let _ = self.options;
        vars
    }
}

/// Changes 1% of the issues (at least one): a third get a new date, a third a new name, a
/// third lose their date. Returns how many events that changes (one write each) and how many
/// of them lose their date (their events are deleted, each confirmed gone with one request for
/// the work item, since it left the list of dated issues).
fn change_one_percent(sim: &PlaneSim) -> (usize, usize) {
    sim.with_world(|w| {
        let dated: Vec<usize> = (0..w.issues.len())
            .filter(|&i| w.issues[i].target_date.is_some())
            .collect();
        let n = (w.issues.len() / 100).max(1).min(dated.len());
        // Spread over the workspace: every (len / n)-th dated issue.
        let step = (dated.len() / n).max(1);
        for (k, &i) in dated.iter().step_by(step).take(n).enumerate() {
            let issue = &mut w.issues[i];
            match k % 3 {
                0 => issue.target_date = Some("2027-09-09".into()),
                1 => issue.name = format!("{} (renamed)", issue.name),
                _ => issue.target_date = None,
            }
        }
        (n, (0..n).filter(|k| k % 3 == 2).count())
    })
}

// -------------------------------------------------------------------------------------------
// The workspace.
// -------------------------------------------------------------------------------------------

/// P projects × N issues, `dated_percent` of them with a due date, each assigned to one of
/// [`MEMBERS`] members in turn; deterministic.
fn workspace_seed(options: &Options) -> Value {
    let priorities = ["urgent", "high", "medium", "low", "none"];
    let states = ["Backlog", "Todo", "In Progress", "Done", "Cancelled"];
    let users: Vec<Value> = (0..MEMBERS)
        .map(|u| {
            json!({"first_name": "Member", "last_name": format!("{u:02}"),
                   "email": format!("member{u:02}@bench.example"),
                   "display_name": format!("member{u:02}")})
        })
        .collect();
    let mut projects = Vec::new();
    let mut issues = Vec::new();
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for p in 0..options.projects {
        let identifier = format!("P{p:03}");
        projects.push(json!({
            "identifier": identifier,
            "name": format!("Project {p} — Ünïcode & <markup>"),
            "labels": [{"name": "bug", "color": "#ff0000"}, {"name": "feature", "color": "#00ff00"}]
        }));
        for i in 0..options.issues {
            let dated = (next() % 100) < options.dated_percent as u64;
            let mut issue = json!({
                "project": identifier,
                "name": format!("Work item {i} of project {p}: ship the thing, carefully; twice"),
                "priority": priorities[(next() % 5) as usize],
                "state": states[(next() % 5) as usize],
                // Round-robin, outside the random sequence: the rest of the seed is as it was
                // before the workspace had members.
                "assignees": [format!("member{:02}", issues.len() % MEMBERS)],
            });
            if dated {
                let day = 1 + next() % 28;
                let month = 1 + next() % 12;
                issue["target_date"] = json!(format!("2027-{month:02}-{day:02}"));
            }
            if next() % 2 == 0 {
                issue["labels"] = json!(["bug"]);
            }
            if next() % 3 == 0 {
                issue["description_html"] = json!(format!(
                    "<p>Steps for item {i}:</p><ul><li><p>one &amp; two</p></li><li><p>three</p></li></ul><p>{}</p>",
                    "Lorem ipsum dolor sit amet. ".repeat(8)
                ));
            }
            issues.push(issue);
        }
    }
    json!({"workspace": "bench", "users": users, "projects": projects, "issues": issues})
}

fn count_dated(seed: &Value) -> usize {
    seed["issues"].as_array().map_or(0, |a| {
        a.iter().filter(|i| i.get("target_date").is_some()).count()
    })
}

// -------------------------------------------------------------------------------------------
// Local work: mapping and planning without I/O.
// -------------------------------------------------------------------------------------------

/// Milliseconds for: parsing `n` work items from Plane JSON, mapping them to events, and
/// planning a run in which every event is stored already (the steady state: every stored
/// event is parsed and compared). Best of three.
fn local_work(n: usize) -> Value {
    let project = plane::Project {
        id: "00000000-0000-4000-8000-00000000beef".into(),
        identifier: "BIG".into(),
        name: "Big project".into(),
    };
    let items: Vec<Value> = (0..n)
        .map(|i| {
            json!({
                "id": format!("00000000-0000-4000-8000-{i:012}"),
                "sequence_id": i + 1,
                "name": format!("Work item {i}: ship the thing, carefully; twice"),
                "description_html": "<p>Steps:</p><ul><li><p>one &amp; two</p></li></ul>",
                "priority": "high",
                "target_date": "2027-03-15",
                "project": project.id,
                "state": {"id": "00000000-0000-4000-8000-00000000000a", "name": "Todo", "group": "unstarted"},
                "labels": [{"id": "00000000-0000-4000-8000-00000000000b", "name": "bug"}],
                "assignees": [],
            })
        })
        .collect();
    let page = serde_json::to_string(&json!({ "results": items })).expect("serialises");
    let ctx = MappingContext {
        workspace_slug: "bench",
        web_url: "https://plane.example.com",
    };
    let mut best = [f64::MAX; 3];
    for _ in 0..3 {
        let started = Instant::now();
        let parsed: Value = serde_json::from_str(&page).expect("parses");
        let issues: Vec<plane::Issue> = parsed["results"]
            .as_array()
            .expect("results")
            .iter()
            .filter_map(|item| match plane::issue_from_json(item, &project.id) {
                IssueItem::Dated(issue) => Some(issue),
                _ => None,
            })
            .collect();
        let desired: BTreeMap<String, event::ManagedFields> = issues
            .iter()
            .map(|issue| {
                (
                    issue.id.clone(),
                    event::desired_event(issue, &project, &ctx),
                )
            })
            .collect();
        let mapped = started.elapsed();
        // What the server holds after the first sync (rendered outside the timing below).
        let actual: BTreeMap<String, ActualEvent> = desired
            .iter()
            .map(|(id, fields)| {
                (
                    id.clone(),
                    ActualEvent {
                        url: format!("https://dav.example/cal/{}", event::resource_name(id)),
                        etag: Some("\"1\"".into()),
                        data: event::render_new(fields, chrono::Utc::now()),
                    },
                )
            })
            .collect();
        let job = CalendarJob {
            target: CalendarTarget {
                url: "https://dav.example/cal/".into(),
                displayname: Some("Plane: Big project".into()),
                state: CalendarState::Exists {
                    displayname: Some("Plane: Big project".into()),
                },
            },
            scopes: vec![ProjectScope {
                project: project.clone(),
                deletions: Ok(()),
                keep: Default::default(),
                unconfirmed: Default::default(),
                listed_nothing: false,
            }],
            desired,
            actual,
            copies: Vec::new(),
        };
        let planning = Instant::now();
        let plan = calplanebot::reconcile::plan::plan_changes(std::slice::from_ref(&job), "bench");
        let planned = planning.elapsed();
        assert!(plan.changes.is_empty(), "the steady state plans nothing");
        best[0] = best[0].min(ms(mapped));
        best[1] = best[1].min(ms(planned));
        best[2] = best[2].min(ms(mapped + planned));
        assert_eq!(issues.len(), n);
    }
    json!({"issues": n, "parse_and_map_ms": best[0], "plan_ms": best[1], "total_ms": best[2]})
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

// -------------------------------------------------------------------------------------------
// Output.
// -------------------------------------------------------------------------------------------

fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .map(|l| l.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_default();
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem_gib = meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kib| kib / 1024.0 / 1024.0);
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    json!({"cpu": model, "cores": cores, "memory_gib": (mem_gib * 10.0).round() / 10.0,
           "build": if cfg!(debug_assertions) { "debug" } else { "release" }})
}

fn print_report(options: &Options, machine: &Value, results: &[Value], local: &Value, total: f64) {
    println!(
        "calplanebot benchmark — {} projects × {} issues ({}% dated); Plane rate limit: {}",
        options.projects,
        options.issues,
        options.dated_percent,
        options
            .plane_rate_limit
            .map_or("none (simulator unlimited)".to_string(), |n| format!(
                "{n}/min"
            ))
    );
    println!(
        "machine: {} cores, {} GiB, {} ({} build)",
        machine["cores"],
        machine["memory_gib"],
        machine["cpu"].as_str().unwrap_or(""),
        machine["build"].as_str().unwrap_or("")
    );
    for result in results {
        println!();
        println!(
            "{} — {} dated issues",
            result["server"].as_str().unwrap_or(""),
            result["dated_issues"]
        );
        println!(
            "{:<28} {:>8} {:>7} {:>8} {:>13} {:>15} {:>13} {:>9}  CalDAV by kind",
            "run",
            "wall s",
            "CPU s",
            "RSS MiB",
            "Plane (bound)",
            "CalDAV (bound)",
            "feeds written",
            "feed MiB"
        );
        for run in result["runs"].as_array().into_iter().flatten() {
            let run: RunCostView = RunCostView(run);
            let feeds = &run.0["feeds"];
            println!(
                "{:<28} {:>8.2} {:>7.2} {:>8.1} {:>13} {:>15} {:>13} {:>9}  {}{}",
                run.name(),
                run.f("wall_seconds"),
                run.f("cpu_seconds"),
                run.f("peak_rss_mib"),
                format!("{} ({})", run.total("plane"), run.u("plane_bound")),
                if run.total("caldav") == 0 {
                    format!("- ({})", run.u("caldav_bound"))
                } else {
                    format!("{} ({})", run.total("caldav"), run.u("caldav_bound"))
                },
                if feeds.is_null() {
                    "-".to_string()
                } else {
                    format!("{} of {}", feeds["written"], feeds["files"])
                },
                feeds["bytes"]
                    .as_f64()
                    .map_or("-".to_string(), |bytes| format!(
                        "{:.1}",
                        bytes / 1024.0 / 1024.0
                    )),
                run.kinds("caldav"),
                if run.0["exit_ok"].as_bool() == Some(true) {
                    ""
                } else {
                    "  FAILED"
                }
            );
        }
        println!(
            "speed-up of the first sync, --concurrency 4 over 1: {:.2}×",
            result["speedup_concurrency_4_over_1"]
                .as_f64()
                .unwrap_or(0.0)
        );
    }
    println!();
    println!(
        "local work, {} issues, no I/O: parse + map {:.1} ms, plan (steady state) {:.1} ms, total {:.1} ms (target < 200 ms)",
        local["issues"],
        local["parse_and_map_ms"].as_f64().unwrap_or(0.0),
        local["plan_ms"].as_f64().unwrap_or(0.0),
        local["total_ms"].as_f64().unwrap_or(0.0)
    );
    println!("CalDAV bounds include discovery (2 PROPFIND; 0 for a webhook run with the cache).");
    println!(
        "Feed runs read one members page more than CalDAV-only runs; \"feeds written\" counts the files"
    );
    println!("replaced or created (inode, mtime or size changed), of the files after the run.");
    println!(
        "\"direct\" runs bypass the counting proxy (its new upstream connection per request would"
    );
    println!("hide keep-alive), so their requests are not counted.");
    println!("bench took {total:.0} s");
}

struct RunCostView<'a>(&'a Value);

impl RunCostView<'_> {
    fn name(&self) -> &str {
        self.0["name"].as_str().unwrap_or("")
    }
    fn f(&self, key: &str) -> f64 {
        self.0[key].as_f64().unwrap_or(0.0)
    }
    fn u(&self, key: &str) -> u64 {
        self.0[key].as_u64().unwrap_or(0)
    }
    fn total(&self, key: &str) -> u64 {
        self.0[key]
            .as_object()
            .map_or(0, |m| m.values().filter_map(Value::as_u64).sum())
    }
    fn kinds(&self, key: &str) -> String {
        self.0[key]
            .as_object()
            .map(|m| {
                m.iter()
                    .map(|(k, v)| format!("{k} {v}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            })
            .unwrap_or_default()
    }
}

// -------------------------------------------------------------------------------------------
// Options.
// -------------------------------------------------------------------------------------------

struct Options {
    projects: usize,
    issues: usize,
    dated_percent: usize,
    servers: Vec<ServerKind>,
    plane_rate_limit: Option<u32>,
    json: bool,
}

impl Options {
    fn parse(args: &[String]) -> Result<Options, String> {
        let mut options = Options {
            projects: 100,
            issues: 100,
            dated_percent: 80,
            servers: ServerKind::ALL.to_vec(),
            plane_rate_limit: None,
            json: false,
        };
        let mut args = args.iter();
        while let Some(arg) = args.next() {
            let mut value = || {
                args.next()
                    .cloned()
                    .ok_or_else(|| format!("{arg} needs a value"))
            };
            let number = |v: String| v.parse::<usize>().map_err(|e| format!("{arg}: {e}"));
            match arg.as_str() {
                "--projects" => options.projects = number(value()?)?.max(1),
                "--issues" => options.issues = number(value()?)?.max(1),
                "--dated-percent" => options.dated_percent = number(value()?)?.min(100),
                "--plane-rate-limit" => {
                    options.plane_rate_limit = Some(number(value()?)? as u32);
                }
                "--server" => {
                    options.servers = match value()?.as_str() {
                        "radicale" => vec![ServerKind::Radicale],
                        "xandikos" => vec![ServerKind::Xandikos],
                        "both" => ServerKind::ALL.to_vec(),
                        other => {
                            return Err(format!("--server {other}: radicale, xandikos or both"));
                        }
                    }
                }
                "--quick" => {
                    options.projects = 10;
                    options.issues = 50;
                }
                "--json" => options.json = true,
                other => {
                    return Err(format!(
                        "unknown option {other} (see the top of examples/bench.rs)"
                    ));
                }
            }
        }
        Ok(options)
    }
}
