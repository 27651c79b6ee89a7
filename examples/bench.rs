//! The benchmark: how many requests, how much time and how much memory a calplanebot run costs
//! on a big workspace, against real CalDAV servers, next to the lower bound of requests.
//!
//! Run: `cargo run --release --example bench` (100 projects × 100 issues, 80% dated, 20
//! members with the issues assigned round-robin, Radicale and Xandikos; `-- --quick` for
//! 10 × 50, `--projects P --issues N --dated-percent D`, `--server radicale|xandikos|both`,
//! `--plane-rate-limit N`, `--json`, `--concurrency-runs`, `--plane-only`,
//! `--plane-sleep-scale S`).
//!
//! The runs, per server, in this order (p projects, d dated issues; Plane's bound is the
//! projects page plus one work-items page per 1000 issues of each project):
//!
//! - **first sync**: CalDAV discovery (2) + the home (1) + p MKCALENDAR + d PUT + p REPORT (the
//!   in-run check of each created calendar, issue 14);
//! - **no change**: 1 CalDAV request, the home's PROPFIND (the listing snapshot answers);
//! - the feed runs: feeds only (first run, then nothing changed), and CalDAV + feeds with
//!   nothing changed (a members page more), their feed files counted from the directory itself
//!   (inode, mtime and size before and after the run). The feed directory is part of the
//!   configuration, which names the listing snapshot: the first run with both targets has none
//!   and lists in full (bound: as with the snapshot off, below);
//! - **1% changed**: 1 + one write per changed event (a third of the changed issues lose their
//!   date; they stay in Plane's list, undated, so their deletions need no question to Plane);
//! - **no change after 1%**: 1 + one `sync-collection` REPORT per calendar the previous run
//!   wrote, which confirms those writes;
//! - **webhook** for one issue: Plane 1, CalDAV 2 (GET, PUT);
//! - **sync after the webhook**: 3 — the PROPFIND, the changed calendar's `sync-collection`
//!   and a multiget of the event the webhook wrote (not the sync's own write);
//! - then, as "before", the old behaviour with `CALPLANEBOT_FULL_LISTING_EVERY=0` (discovery
//!   and every calendar listed in full, no snapshot kept): **no change, snapshot off** (2 + 1 +
//!   per calendar one PROPFIND and a multiget per 100 events), **1% changed, snapshot off** (a
//!   fresh 1% change: that listing + the writes) and **webhook, snapshot off**. They come last
//!   because a run with the snapshot off keeps none: every run above starts from the valid
//!   snapshot its predecessor left;
//! - last, an **assignee view** of one member (issue 15; named by e-mail, so Plane adds the
//!   members list): first sync (discovery, the home, 1 MKCALENDAR, a PUT per event of theirs,
//!   the in-run check), no change (1), webhook for one of their issues (Plane 2, CalDAV 2).
//!
//! First, **the Plane side** (issue 23), feeds only, on a simulator priced as the lab's Plane CE
//! 1.3.1 (`CostModel::plane_ce_lab`: 2 workers, each request sleeping its server time × the
//! sleep scale, 0.25 unless `--plane-sleep-scale`): the first run; **no change, before** (no
//! Plane snapshot and one project at a time: the behaviour before issue 23); **no change**
//! (each project's probe, four at once); **1% changed** (only the changed projects read in
//! full); a **label renamed** (Plane moves no work item), then a webhook for one of its issues,
//! then the next full refresh. Each with its requests, full-read and probe pages, projects read
//! in full, rows served with and without expand, simulated server seconds and wall time.
//!
//! The report gives each run's wall and CPU time, peak RSS, requests by kind against their
//! bound, and the size of the listing snapshot file (`listing-*.json` in the bench's
//! `CALPLANEBOT_CACHE_DIR`), then a before/after table (snapshot off and on) for the no-change,
//! 1%-change and webhook runs, next to the README's no-change figure before issue 14.
//! `--concurrency-runs` adds the first sync again on fresh servers, straight to them (past the
//! proxy, requests not counted), with `--concurrency 1` and 4 (about 14 minutes at full size).
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
use calplanebot_testbed::plane_sim::{CostModel, PlaneSim, Seed, Workers};
use calplanebot_testbed::proxy::CountingProxy;
use serde_json::{Value, json};

/// The hidden first argument of a child run.
const CHILD: &str = "__calplanebot";
/// Where a child writes its own CPU time and peak RSS.
const STATS_ENV: &str = "CALPLANEBOT_BENCH_STATS";
const WEBHOOK_SECRET: &str = "plane_wh_bench0123456789abcdef0123456789";
const FEED_SECRET: &str = "calplanebot-bench-feed-secret-0123456789abcdef";
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
    let plane = bench_plane(&options)?;
    let servers: &[ServerKind] = if options.plane_only {
        &[]
    } else {
        &options.servers
    };
    for kind in servers {
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
            "plane_side": plane,
            "local_work_10000_issues_ms": local,
            "bench_seconds": total,
        });
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print_report(&options, &machine, &results, &local, total);
        print_plane(&plane);
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
    /// The run's memory goal (MiB of peak RSS), when it has one.
    rss_bound_mib: Option<f64>,
    /// The part of the CalDAV bound that is discovery (0 when the snapshot or the cache
    /// answered).
    caldav_discovery: usize,
    /// `false` for a run straight to the server, past the counting proxy.
    caldav_counted: bool,
    /// When the CalDAV requests are not the bound: each request (method, path, status), the
    /// first [`LISTED_REQUESTS`], to see which calendar cost more.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    caldav_requests: Vec<String>,
    /// The feed directory after the run, when the run wrote feeds.
    feeds: Option<FeedCost>,
    /// The size of the listing snapshot file after the run (0: none).
    snapshot_bytes: u64,
}

/// How many requests a run off its bound lists.
const LISTED_REQUESTS: usize = 60;

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

/// A run's lower bounds: Plane requests, CalDAV requests, and the part of the latter that is
/// discovery (2 when the run must find the calendar home, 0 when the snapshot recorded it).
#[derive(Clone, Copy, Debug)]
struct Bounds {
    plane: usize,
    caldav: usize,
    discovery: usize,
    /// Largest peak RSS the run may reach, when it has a memory goal (issue 20: the feed runs).
    rss_mib: Option<f64>,
}

/// Issue 20's memory goals at the benchmark's size: a feeds-only run, first or with nothing
/// changed, and a run with CalDAV and feeds.
const FEEDS_ONLY_RSS_MIB: f64 = 48.0;
const CALDAV_AND_FEEDS_RSS_MIB: f64 = 64.0;

/// Turns the listing snapshot off for one run: the old behaviour, every calendar listed in full.
const SNAPSHOT_OFF: (&str, &str) = ("CALPLANEBOT_FULL_LISTING_EVERY", "0");

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
    let pages = 1 + p * options.issues.div_ceil(plane::PER_PAGE as usize).max(1);
    let bounds = |plane: usize, caldav: usize, discovery: usize| Bounds {
        plane,
        caldav,
        discovery,
        rss_mib: None,
    };
    let within = |rss_mib: f64, bounds: Bounds| Bounds {
        rss_mib: Some(rss_mib),
        ..bounds
    };
    // Snapshot on, after a run that left it valid: the home's PROPFIND and nothing else.
    let unchanged = bounds(pages, 1, 0);
    let mut runs = Vec::new();

    // With the snapshot on (the default). Every run below leaves a valid snapshot for the
    // next: the runs with the snapshot off, which keep none, come last.
    eprintln!("   first sync ({dated} events)…");
    // Discovery, the home, a calendar and a PUT per event, and the in-run check of each
    // created calendar (one initial sync-collection REPORT).
    runs.push(bench.sync("first sync", &[], bounds(pages, 2 + 1 + p + dated + p, 2))?);

    eprintln!("   second sync, nothing changed…");
    runs.push(bench.sync("no change", &[], unchanged)?);

    // The feed target: the same Plane fetch plus one members page.
    eprintln!("   feeds only, first run…");
    runs.push(bench.run_command(
        "feeds only, first run",
        Targets::Feeds,
        &["sync", "-q"],
        &[],
        None,
        within(FEEDS_ONLY_RSS_MIB, bounds(pages + 1, 0, 0)),
    )?);
    eprintln!("   feeds only, nothing changed…");
    runs.push(bench.run_command(
        "feeds only, no change",
        Targets::Feeds,
        &["sync", "-q"],
        &[],
        None,
        within(FEEDS_ONLY_RSS_MIB, bounds(pages + 1, 0, 0)),
    )?);
    eprintln!("   CalDAV and feeds, nothing changed…");
    // Nothing changed, but this is the first run of this configuration: the feed directory is
    // part of the configuration, which names the calendar cache and the listing snapshot, so
    // the run has neither and discovers and lists in full, as with the snapshot off. (It keeps
    // its own in a cache directory of its own, so each directory holds one snapshot.)
    runs.push(bench.run_command(
        "CalDAV + feeds, no change",
        Targets::Both,
        &["sync", "-q"],
        &[],
        None,
        within(
            CALDAV_AND_FEEDS_RSS_MIB,
            bounds(pages + 1, full_listing(&sim), 2),
        ),
    )?);

    let change = change_one_percent(&sim, 0);
    eprintln!("   sync after {} changes…", change.events);
    // The home's PROPFIND, then only the writes: nothing else changed since the snapshot.
    // Plane: the pages only; an issue that lost its date is still in the list, undated, so
    // deleting its event needs no question to Plane.
    // Plane: each project's probe, and a full read of each project with a change.
    runs.push(bench.sync(
        "1% changed",
        &[],
        bounds(pages + change.calendars, 1 + change.events, 0),
    )?);

    eprintln!("   sync after that, nothing changed…");
    // One sync-collection REPORT per calendar the previous run wrote: it confirms those
    // writes, with the ETags recorded, and reads nothing.
    runs.push(bench.sync(
        "no change after 1%",
        &[],
        bounds(pages, 1 + change.calendars, 0),
    )?);

    eprintln!("   webhook run for one issue…");
    runs.push(bench.webhook("webhook (1 issue)", &[])?);

    eprintln!("   sync after the webhook…");
    // The webhook's write is not the sync's own: the calendar's change report names it, and
    // our event there is read again (one multiget).
    runs.push(bench.sync("sync after webhook", &[], bounds(pages, 3, 0))?);
    let snapshot = bench.snapshot_file();

    // The old behaviour, as "before": with `CALPLANEBOT_FULL_LISTING_EVERY=0` every run
    // discovers the home and lists every calendar in full, and keeps no snapshot.
    eprintln!("   nothing changed, snapshot off…");
    runs.push(bench.sync(
        "no change, snapshot off",
        &[SNAPSHOT_OFF],
        bounds(pages, full_listing(&sim), 2),
    )?);

    let listing = full_listing(&sim);
    let change = change_one_percent(&sim, 1);
    eprintln!("   sync after {} changes, snapshot off…", change.events);
    runs.push(bench.sync(
        "1% changed, snapshot off",
        &[SNAPSHOT_OFF],
        bounds(pages, listing + change.events, 2),
    )?);

    eprintln!("   webhook run for one issue, snapshot off…");
    runs.push(bench.webhook("webhook (1 issue), snapshot off", &[SNAPSHOT_OFF])?);

    // An assignee view (issue 15): one member's calendar of their dated issues across every
    // project, named by e-mail, so each run also reads the members list (one page). Last: its
    // webhook changes an issue the team's calendars then lag behind on.
    let (member, mine) = member_and_dated(&sim, "member00");
    let view = [("CALPLANEBOT_ASSIGNEE", "member00@bench.example")];
    eprintln!("   assignee view, first sync ({mine} events)…");
    // Discovery, the home, one calendar, a PUT per event and the calendar's in-run check.
    runs.push(bench.sync(
        "assignee view, first sync",
        &view,
        bounds(pages + 1, 2 + 1 + 1 + mine + 1, 2),
    )?);
    eprintln!("   assignee view, nothing changed…");
    runs.push(bench.sync("assignee view, no change", &view, bounds(pages + 1, 1, 0))?);
    eprintln!("   assignee view, webhook run for one of the member's issues…");
    // The work item and the members list; a GET and a PUT (the calendar is cached).
    runs.push(bench.webhook_of("assignee view, webhook", &view, Some(&member), 2)?);
    drop(bench);
    drop(proxy);
    drop(server);

    let speedup = if options.concurrency_runs {
        let (direct, speedup) = first_sync_by_concurrency(options, kind, &sim, pages)?;
        runs.extend(direct);
        Some(speedup)
    } else {
        None
    };
    let before_after = before_after(&runs);
    Ok(json!({
        "server": kind.name(),
        "dated_issues": dated,
        "runs": runs,
        "before_after": before_after,
        "snapshot_file": snapshot,
        "speedup_concurrency_4_over_1": speedup,
    }))
}

/// The first sync again on fresh servers, straight to the server, with `--concurrency 1`
/// and 4: sequential writes against the default. Returns the two runs and the speed-up.
fn first_sync_by_concurrency(
    options: &Options,
    kind: ServerKind,
    sim: &PlaneSim,
    pages: usize,
) -> Result<(Vec<RunCost>, f64), Box<dyn std::error::Error>> {
    let p = options.projects;
    let mut runs = Vec::new();
    for concurrency in ["1", "4"] {
        eprintln!("   first sync again, --concurrency {concurrency}…");
        let server = CalDavServer::start(kind)?;
        let proxy = CountingProxy::start_for(&server)?;
        let bench = Bench {
            options,
            sim,
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
        runs.push(bench.run_command(
            &format!("first sync, direct, -j {concurrency}"),
            Targets::CalDav,
            &["sync", "-q", "--concurrency", concurrency],
            &[("CALDAV_URL", direct.as_str())],
            None,
            Bounds {
                plane: pages,
                caldav: 2 + 1 + p + dated_now + p,
                discovery: 2,
                rss_mib: None,
            },
        )?);
    }
    let speedup = runs[0].wall_seconds / runs[1].wall_seconds;
    Ok((runs, speedup))
}

/// A sync over existing calendars with the snapshot off (the old behaviour): discovery (2),
/// the home (1), and per calendar one PROPFIND and one multiget per 100 events, counted from
/// what the last sync stored (every dated issue of the project, now).
fn full_listing(sim: &PlaneSim) -> usize {
    let per_project: BTreeMap<String, usize> = sim.with_world(|w| {
        let mut counts: BTreeMap<String, usize> =
            w.projects.iter().map(|p| (p.id.clone(), 0)).collect();
        for issue in w.issues.iter().filter(|i| i.target_date.is_some()) {
            *counts.entry(issue.project.clone()).or_insert(0) += 1;
        }
        counts
    });
    2 + 1
        + per_project
            .values()
            .map(|events| 1 + events.div_ceil(100))
            .sum::<usize>()
}

/// The before/after rows of the report: each run with the snapshot off next to the same run
/// with it on.
fn before_after(runs: &[RunCost]) -> Value {
    let find = |name: &str| runs.iter().find(|r| r.name == name);
    let side = |run: Option<&RunCost>| {
        run.map_or(Value::Null, |r| {
            json!({"run": r.name, "wall_seconds": r.wall_seconds,
                   "plane_requests": r.plane.values().sum::<usize>(),
                   "caldav_requests": r.caldav.values().sum::<usize>()})
        })
    };
    let rows: Vec<Value> = [
        ("no change", "no change, snapshot off", "no change"),
        ("1% changed", "1% changed, snapshot off", "1% changed"),
        (
            "webhook (1 issue)",
            "webhook (1 issue), snapshot off",
            "webhook (1 issue)",
        ),
    ]
    .into_iter()
    .map(|(row, off, on)| json!({"row": row, "before": side(find(off)), "after": side(find(on))}))
    .collect();
    json!({
        "rows": rows,
        "historic_no_change": {
            "wall_seconds": HISTORIC_NO_CHANGE.0,
            "caldav_requests": HISTORIC_NO_CHANGE.1,
            "source": "README, before issue 14; 100 projects × 100 issues, Radicale",
        },
    })
}

/// The no-change run of the full benchmark before issue 14 (README): wall seconds and CalDAV
/// requests.
const HISTORIC_NO_CHANGE: (f64, usize) = (19.0, 203);

impl Bench<'_> {
    /// A CalDAV-only `sync -q`.
    fn sync(
        &self,
        name: &str,
        extra: &[(&str, &str)],
        bounds: Bounds,
    ) -> Result<RunCost, Box<dyn std::error::Error>> {
        self.run_command(name, Targets::CalDav, &["sync", "-q"], extra, None, bounds)
    }

    /// Moves one dated issue to another date and delivers Plane's webhook for it: one work-item
    /// request, and a GET and a PUT of its event (the calendar's location is cached).
    fn webhook(
        &self,
        name: &str,
        extra: &[(&str, &str)],
    ) -> Result<RunCost, Box<dyn std::error::Error>> {
        self.webhook_of(name, extra, None, 1)
    }

    /// [`Bench::webhook`] for a dated issue of `member` (any when `None`), with a bound of
    /// `plane` Plane requests.
    fn webhook_of(
        &self,
        name: &str,
        extra: &[(&str, &str)],
        member: Option<&str>,
        plane: usize,
    ) -> Result<RunCost, Box<dyn std::error::Error>> {
        let id = self.sim.with_world(|w| {
            let id = w
                .issues
                .iter()
                .find(|i| {
                    i.target_date.is_some()
                        && member.is_none_or(|m| i.assignees.iter().any(|a| a == m))
                })
                .expect("a dated issue")
                .id
                .clone();
            let issue = w.issue_mut(&id);
            issue.target_date = Some(other_date(issue.target_date.as_deref(), "2027-06-30"));
            id
        });
        let delivery = self
            .sim
            .webhook_delivery("issue", "updated", &id, WEBHOOK_SECRET);
        let signature = delivery
            .header("X-Plane-Signature")
            .unwrap_or_default()
            .to_string();
        let mut vars = vec![
            ("PLANE_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ("PLANE_WEBHOOK_SIGNATURE", signature.as_str()),
        ];
        vars.extend_from_slice(extra);
        self.run_command(
            name,
            Targets::CalDav,
            &["webhook", "-q"],
            &vars,
            Some(&delivery.body),
            Bounds {
                plane,
                caldav: 2,
                discovery: 0,
                rss_mib: None,
            },
        )
    }

    /// The listing snapshot of the CalDAV-only runs (`listing-*.json`): its name and size.
    fn snapshot_file(&self) -> Value {
        snapshot_files(&self.cache_dir(Targets::CalDav))
            .into_iter()
            .next()
            .map_or(
                Value::Null,
                |(name, bytes)| json!({"name": name, "bytes": bytes}),
            )
    }

    /// `CALPLANEBOT_CACHE_DIR`: one per configuration, so each holds one listing snapshot.
    fn cache_dir(&self, targets: Targets) -> PathBuf {
        match targets {
            Targets::CalDav => self.dir.join("cache"),
            Targets::Feeds => self.dir.join("cache-feeds"),
            Targets::Both => self.dir.join("cache-both"),
        }
    }

    /// One child run, next to its lower `bounds`.
    fn run_command(
        &self,
        name: &str,
        targets: Targets,
        args: &[&str],
        extra: &[(&str, &str)],
        stdin: Option<&[u8]>,
        bounds: Bounds,
    ) -> Result<RunCost, Box<dyn std::error::Error>> {
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
        let counted = !extra.iter().any(|(name, _)| *name == "CALDAV_URL");
        let requests = self.proxy.requests();
        let caldav_requests = if counted && requests.len() != bounds.caldav {
            requests
                .iter()
                .take(LISTED_REQUESTS)
                .map(|r| format!("{} {} {}", r.method, r.path, r.status))
                .collect()
        } else {
            Vec::new()
        };
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
            plane_bound: bounds.plane,
            caldav: self.proxy.counts().into_iter().collect(),
            caldav_bound: bounds.caldav,
            rss_bound_mib: bounds.rss_mib,
            caldav_discovery: bounds.discovery,
            caldav_counted: counted,
            caldav_requests,
            feeds,
            snapshot_bytes: snapshot_files(&self.cache_dir(targets))
                .iter()
                .map(|(_, bytes)| bytes)
                .sum(),
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
            // The calendar-location cache and the listing snapshot (`listing-*.json`).
            (
                "CALPLANEBOT_CACHE_DIR",
                self.cache_dir(targets).display().to_string(),
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

/// What [`change_one_percent`] changed.
struct Change {
    /// Events changed: one write each.
    events: usize,
    /// Calendars (projects) written.
    calendars: usize,
}

/// Changes 1% of the dated issues' events (at least one): a third get a new date, a third a
/// new name, a third lose their date (their events are deleted; the issues stay in Plane's
/// list, undated, so no deletion needs confirming). `round` makes each call's new date differ from the last
/// call's, so every change is one write.
fn change_one_percent(sim: &PlaneSim, round: u32) -> Change {
    sim.with_world(|w| {
        let dated: Vec<usize> = (0..w.issues.len())
            .filter(|&i| w.issues[i].target_date.is_some())
            .collect();
        let n = (w.issues.len() / 100).max(1).min(dated.len());
        // Spread over the workspace: every (len / n)-th dated issue.
        let step = (dated.len() / n).max(1);
        let wanted = format!("2027-09-{:02}", 9 + round);
        let mut calendars = std::collections::BTreeSet::new();
        let ids: Vec<String> = dated
            .iter()
            .step_by(step)
            .take(n)
            .map(|&i| w.issues[i].id.clone())
            .collect();
        for (k, id) in ids.iter().enumerate() {
            // As Plane saves an edit: `updated_at` moves.
            let issue = w.issue_mut(id);
            calendars.insert(issue.project.clone());
            match k % 3 {
                0 => issue.target_date = Some(other_date(issue.target_date.as_deref(), &wanted)),
                1 => issue.name = format!("{} (renamed)", issue.name),
                _ => issue.target_date = None,
            }
        }
        Change {
            events: n,
            calendars: calendars.len(),
        }
    })
}

/// `wanted`, or the day after it when the issue is due that day already (a new date must
/// change the event).
fn other_date(current: Option<&str>, wanted: &str) -> String {
    if current != Some(wanted) {
        return wanted.to_string();
    }
    chrono::NaiveDate::parse_from_str(wanted, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.succ_opt())
        .map_or_else(|| "2027-01-01".to_string(), |d| d.to_string())
}

/// The listing snapshots (`listing-*.json`) in `cache`, by name, with their sizes.
fn snapshot_files(cache: &Path) -> Vec<(String, u64)> {
    let Ok(entries) = std::fs::read_dir(cache) else {
        return Vec::new();
    };
    let mut files: Vec<(String, u64)> = entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            let listing = name.starts_with("listing-") && name.ends_with(".json");
            listing.then(|| Some((name, entry.metadata().ok()?.len())))?
        })
        .collect();
    files.sort();
    files
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

/// The id of the member with this display name, and how many listed dated issues they have.
fn member_and_dated(sim: &PlaneSim, display_name: &str) -> (String, usize) {
    sim.with_world(|w| {
        let id = w
            .users
            .iter()
            .find(|u| u.display_name == display_name)
            .expect("the member exists")
            .id
            .clone();
        let dated = w
            .issues
            .iter()
            .filter(|i| i.target_date.is_some() && w.is_listable(i))
            .filter(|i| i.assignees.contains(&id))
            .count();
        (id, dated)
    })
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
        span: calplanebot::mapping::event::Span::Due,
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
                        url: format!("https://dav.example/cal/{}", event::resource_name(id, None)),
                        etag: Some("\"1\"".into()),
                        data: event::render_new(fields, chrono::Utc::now()),
                    },
                )
            })
            .collect();
        let job = CalendarJob {
            view: None,
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
    let mut misses = Vec::new();
    for result in results {
        let server = result["server"].as_str().unwrap_or("");
        println!();
        println!("{server} — {} dated issues", result["dated_issues"]);
        println!(
            "{:<32} {:>8} {:>7} {:>8} {:>13} {:>15} {:>13} {:>9} {:>9}  CalDAV by kind",
            "run",
            "wall s",
            "CPU s",
            "RSS MiB",
            "Plane (bound)",
            "CalDAV (bound)",
            "feeds written",
            "feed MiB",
            "snap KiB"
        );
        for run in result["runs"].as_array().into_iter().flatten() {
            let run: RunCostView = RunCostView(run);
            let feeds = &run.0["feeds"];
            let counted = run.0["caldav_counted"].as_bool() != Some(false);
            let missed = run.total("plane") != run.u("plane_bound")
                || (counted && run.total("caldav") != run.u("caldav_bound"));
            if missed {
                misses.push(format!("{server}: {}", run.name()));
            }
            let rss_bound = run.0["rss_bound_mib"].as_f64();
            let over = rss_bound.is_some_and(|bound| run.f("peak_rss_mib") > bound);
            if over {
                misses.push(format!("{server}: {} (peak RSS)", run.name()));
            }
            println!(
                "{:<32} {:>8.2} {:>7.2} {:>8.1} {:>13} {:>15} {:>13} {:>9} {:>9}  {}{}{}",
                run.name(),
                run.f("wall_seconds"),
                run.f("cpu_seconds"),
                run.f("peak_rss_mib"),
                format!("{} ({})", run.total("plane"), run.u("plane_bound")),
                if counted {
                    format!("{} ({})", run.total("caldav"), run.u("caldav_bound"))
                } else {
                    format!("- ({})", run.u("caldav_bound"))
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
                match run.u("snapshot_bytes") {
                    0 => "-".to_string(),
                    bytes => format!("{:.1}", bytes as f64 / 1024.0),
                },
                run.kinds("caldav"),
                if run.0["exit_ok"].as_bool() == Some(true) {
                    ""
                } else {
                    "  FAILED"
                },
                if missed { "  NOT THE BOUND" } else { "" }
            );
            if over {
                println!("{:<32} peak RSS above its goal", "");
            }
        }
        print_memory(result);
        let snapshot = &result["snapshot_file"];
        match snapshot["bytes"].as_u64() {
            Some(bytes) => println!(
                "listing snapshot after \"sync after webhook\": {} in the cache dir, {:.1} KiB",
                snapshot["name"].as_str().unwrap_or(""),
                bytes as f64 / 1024.0
            ),
            None => println!("listing snapshot: none in the cache dir"),
        }
        for run in result["runs"].as_array().into_iter().flatten() {
            let listed = run["caldav_requests"].as_array().into_iter().flatten();
            for (k, request) in listed.enumerate() {
                if k == 0 {
                    println!(
                        "CalDAV requests of \"{}\":",
                        run["name"].as_str().unwrap_or("")
                    );
                }
                println!("    {}", request.as_str().unwrap_or(""));
            }
        }
        if let Some(speedup) = result["speedup_concurrency_4_over_1"].as_f64() {
            println!("speed-up of the first sync, --concurrency 4 over 1: {speedup:.2}×");
        }
        print_before_after(&result["before_after"]);
    }
    println!();
    println!(
        "local work, {} issues, no I/O: parse + map {:.1} ms, plan (steady state) {:.1} ms, total {:.1} ms (target < 200 ms)",
        local["issues"],
        local["parse_and_map_ms"].as_f64().unwrap_or(0.0),
        local["plan_ms"].as_f64().unwrap_or(0.0),
        local["total_ms"].as_f64().unwrap_or(0.0)
    );
    println!(
        "Runs in order; the listing snapshot is on (the default) except in the \"snapshot off\" runs"
    );
    println!(
        "(CALPLANEBOT_FULL_LISTING_EVERY=0: discovery and every calendar listed in full, no snapshot"
    );
    println!(
        "kept — the behaviour before issue 14). Those come last, so every run with the snapshot on"
    );
    println!("starts from the valid snapshot its predecessor left.");
    println!(
        "CalDAV bounds include discovery (2 PROPFIND) where the run has no recorded calendar home."
    );
    println!(
        "Feed runs read one members page more than CalDAV-only runs; \"feeds written\" counts the files"
    );
    println!("replaced or created (inode, mtime or size changed), of the files after the run.");
    println!("\"snap KiB\": the listing snapshot file (listing-*.json) after the run.");
    if options.concurrency_runs {
        println!(
            "\"direct\" runs bypass the counting proxy (its new upstream connection per request would"
        );
        println!("hide keep-alive), so their requests are not counted.");
    } else {
        println!(
            "The first sync again with --concurrency 1 and 4 was not run (--concurrency-runs)."
        );
    }
    if misses.is_empty() {
        println!("Every run made exactly its lower bound of requests.");
    } else {
        println!("Runs off their lower bound: {}", misses.join("; "));
    }
    println!("bench took {total:.0} s");
}

/// The short table of the same runs with the listing snapshot off (before issue 14) and on.
/// Issue 20's memory rows: each feed run's peak RSS against its goal, beside the CalDAV-only
/// runs of the same server.
fn print_memory(result: &Value) {
    let runs: Vec<&Value> = result["runs"].as_array().into_iter().flatten().collect();
    let rss = |name: &str| {
        runs.iter()
            .find(|r| r["name"] == name)
            .and_then(|r| r["peak_rss_mib"].as_f64())
    };
    println!("peak RSS, feed target (issue 20 goals) beside the CalDAV-only runs:");
    for (name, goal) in [
        ("feeds only, first run", Some(FEEDS_ONLY_RSS_MIB)),
        ("feeds only, no change", Some(FEEDS_ONLY_RSS_MIB)),
        ("CalDAV + feeds, no change", Some(CALDAV_AND_FEEDS_RSS_MIB)),
        ("first sync", None),
        ("no change", None),
        ("no change, snapshot off", None),
    ] {
        let Some(value) = rss(name) else { continue };
        match goal {
            Some(goal) => println!(
                "    {name:<28} {value:>6.1} MiB (goal ≤ {goal:.0} MiB{})",
                if value <= goal { ", met" } else { ", NOT MET" }
            ),
            None => println!("    {name:<28} {value:>6.1} MiB (CalDAV only)"),
        }
    }
}

fn print_before_after(table: &Value) {
    let side = |side: &Value| {
        if side.is_null() {
            return "-".to_string();
        }
        format!(
            "{:.2} s, {} Plane + {} CalDAV",
            side["wall_seconds"].as_f64().unwrap_or(0.0),
            side["plane_requests"],
            side["caldav_requests"]
        )
    };
    println!();
    println!(
        "{:<20} {:<34} {:<34}",
        "before/after", "snapshot off (before)", "snapshot on (after)"
    );
    for row in table["rows"].as_array().into_iter().flatten() {
        println!(
            "{:<20} {:<34} {:<34}",
            row["row"].as_str().unwrap_or(""),
            side(&row["before"]),
            side(&row["after"])
        );
    }
    let historic = &table["historic_no_change"];
    println!(
        "{:<20} {:.1} s / {} requests ({})",
        "no change, historic",
        historic["wall_seconds"].as_f64().unwrap_or(0.0),
        historic["caldav_requests"],
        historic["source"].as_str().unwrap_or("")
    );
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
// The Plane side (issue 23): what a run costs the Plane server, with the simulator priced as
// the lab's Plane CE 1.3.1 (`CostModel::plane_ce_lab`, 2 workers).
// -------------------------------------------------------------------------------------------

/// One feeds-only run of the Plane section: its Plane requests, full reads and probes, and what
/// the simulated server spent on them.
#[derive(Clone, Debug, serde::Serialize)]
struct PlaneRun {
    name: String,
    exit_ok: bool,
    wall_seconds: f64,
    requests: usize,
    /// Work-item list requests with `expand` (full reads, pages included), and probes.
    full_read_pages: usize,
    probe_pages: usize,
    /// Projects read in full.
    projects_read: usize,
    rows_expanded: u64,
    rows_plain: u64,
    rows_probe: u64,
    /// Simulated Plane server time (seconds at full scale, whatever the sleep scale).
    server_seconds: f64,
    /// Concurrent requests the simulator served at most.
    max_in_flight: usize,
    /// Feed files that hold the renamed label (the label-rename runs), else `None`.
    renamed_label_in: Option<usize>,
}

/// The Plane section: a feeds-only configuration (no CalDAV: the Plane side alone), first with
/// today's behaviour before issue 23 (`CALPLANEBOT_FULL_LISTING_EVERY=0`: no Plane snapshot,
/// every project read in full; `--concurrency 1`: one after another), then as it is now.
fn bench_plane(options: &Options) -> Result<Value, Box<dyn std::error::Error>> {
    let seed = workspace_seed(options);
    let sim = PlaneSim::start(Seed::from_json(&seed.to_string())?)?;
    sim.set_rate_limit(options.plane_rate_limit);
    sim.set_cost_model(Some(CostModel::plane_ce_lab()));
    sim.set_workers(Some(Workers {
        count: 2,
        sleep_scale: options.plane_sleep_scale,
    }));
    let dir = std::env::temp_dir().join(format!("calplanebot-bench-plane-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("feeds"))?;
    let run = |name: &str, args: &[&str], extra: &[(&str, &str)]| {
        plane_run(&sim, &dir, name, args, extra)
    };
    let before = [SNAPSHOT_OFF];
    let mut runs = Vec::new();
    eprintln!("== the Plane side (feeds only, simulated Plane CE server time)");
    eprintln!("   first run…");
    runs.push(run("first run", &["sync", "-q"], &[])?);
    eprintln!("   nothing changed, before (no Plane snapshot, one project at a time)…");
    runs.push(run(
        "no change, before",
        &["sync", "-q", "--concurrency", "1"],
        &before,
    )?);
    eprintln!("   nothing changed…");
    runs.push(run("no change", &["sync", "-q"], &[])?);
    let change = change_one_percent(&sim, 7);
    eprintln!(
        "   {} changes in {} projects…",
        change.events, change.calendars
    );
    let mut changed = run("1% changed", &["sync", "-q"], &[])?;
    changed.name = format!("1% changed ({} projects)", change.calendars);
    runs.push(changed);
    eprintln!("   nothing changed after that…");
    runs.push(run("no change after 1%", &["sync", "-q"], &[])?);

    // A label renamed: Plane moves no work item's `updated_at`.
    let labelled = sim.with_world(|w| {
        let project = w.projects[0].id.clone();
        let label = w.projects[0]
            .labels
            .iter_mut()
            .find(|l| l.name == "bug")
            .expect("a bug label");
        label.name = "defect".into();
        let label = label.id.clone();
        w.issues
            .iter()
            .find(|i| i.project == project && i.target_date.is_some() && i.labels.contains(&label))
            .map(|i| i.id.clone())
            .expect("a dated issue with the label")
    });
    eprintln!("   a label renamed: the next run…");
    runs.push(run("label renamed: next run", &["sync", "-q"], &[])?);
    eprintln!("   a label renamed: a webhook for one of its issues…");
    let delivery = sim.webhook_delivery("issue", "updated", &labelled, WEBHOOK_SECRET);
    let signature = delivery
        .header("X-Plane-Signature")
        .unwrap_or_default()
        .to_string();
    runs.push(plane_run_with_stdin(
        &sim,
        &dir,
        "label renamed: webhook (1 issue)",
        &["webhook", "-q"],
        &[
            ("PLANE_WEBHOOK_SECRET", WEBHOOK_SECRET),
            ("PLANE_WEBHOOK_SIGNATURE", signature.as_str()),
        ],
        Some(&delivery.body),
    )?);
    // The next full refresh: every record older than the period (1 s here) is read in full.
    std::thread::sleep(Duration::from_millis(1100));
    eprintln!("   a label renamed: the next full refresh…");
    runs.push(run(
        "label renamed: full refresh",
        &["sync", "-q"],
        &[("CALPLANEBOT_FULL_LISTING_EVERY", "1")],
    )?);
    let _ = std::fs::remove_dir_all(&dir);
    let find = |name: &str| runs.iter().find(|r| r.name == name).cloned();
    let ratio = match (find("no change, before"), find("no change")) {
        (Some(before), Some(after)) => json!({
            "server_seconds": after.server_seconds / before.server_seconds.max(1e-9),
            "wall_seconds": after.wall_seconds / before.wall_seconds.max(1e-9),
            "requests_before": before.requests,
            "requests_after": after.requests,
        }),
        _ => Value::Null,
    };
    Ok(json!({
        "sleep_scale": options.plane_sleep_scale,
        "changed_projects": change.calendars,
        "runs": runs,
        "no_change_after_over_before": ratio,
    }))
}

fn plane_run(
    sim: &PlaneSim,
    dir: &Path,
    name: &str,
    args: &[&str],
    extra: &[(&str, &str)],
) -> Result<PlaneRun, Box<dyn std::error::Error>> {
    plane_run_with_stdin(sim, dir, name, args, extra, None)
}

/// One feeds-only child run against `sim`, its cost read from the simulator.
fn plane_run_with_stdin(
    sim: &PlaneSim,
    dir: &Path,
    name: &str,
    args: &[&str],
    extra: &[(&str, &str)],
    stdin: Option<&[u8]>,
) -> Result<PlaneRun, Box<dyn std::error::Error>> {
    sim.reset_requests();
    sim.reset_cost();
    let mut command = Command::new(std::env::current_exe()?);
    command.arg(CHILD).args(args).env_clear();
    let vars = [
        ("PATH", std::env::var("PATH").unwrap_or_default()),
        ("PLANE_BASE_URL", sim.base_url()),
        ("PLANE_API_TOKEN", sim.token()),
        ("PLANE_WORKSPACE_SLUG", sim.workspace_slug()),
        (
            "CALPLANEBOT_LOCK_FILE",
            dir.join("lock").display().to_string(),
        ),
        (
            "CALPLANEBOT_CACHE_DIR",
            dir.join("cache").display().to_string(),
        ),
        ("CALPLANEBOT_MAX_DELETE", "100000".to_string()),
        ("CALPLANEBOT_TIMEOUT", "300".to_string()),
        (
            "CALPLANEBOT_FEED_DIR",
            dir.join("feeds").display().to_string(),
        ),
        ("CALPLANEBOT_FEED_SECRET", FEED_SECRET.to_string()),
    ];
    for (key, value) in vars {
        command.env(key, value);
    }
    for (key, value) in extra {
        command.env(key, value);
    }
    command
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = command.spawn()?;
    if let Some(body) = stdin {
        child.stdin.take().expect("piped").write_all(body)?;
    }
    let output = child.wait_with_output()?;
    let wall = started.elapsed();
    if !output.status.success() {
        eprintln!(
            "   {name} failed:\n{}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let requests = sim.requests();
    let lists: Vec<_> = requests
        .iter()
        .filter(|r| r.path.ends_with("/work-items/"))
        .collect();
    let full: Vec<_> = lists
        .iter()
        .filter(|r| r.query.contains("expand="))
        .collect();
    let projects_read = full
        .iter()
        .map(|r| r.path.as_str())
        .collect::<std::collections::BTreeSet<_>>()
        .len();
    let cost = sim.cost();
    let renamed_label_in = name.starts_with("label renamed").then(|| {
        std::fs::read_dir(dir.join("feeds"))
            .into_iter()
            .flatten()
            .filter_map(|e| e.ok())
            .filter(|e| std::fs::read_to_string(e.path()).is_ok_and(|text| text.contains("defect")))
            .count()
    });
    Ok(PlaneRun {
        name: name.to_string(),
        exit_ok: output.status.success(),
        wall_seconds: wall.as_secs_f64(),
        requests: requests.len(),
        full_read_pages: full.len(),
        probe_pages: lists.len() - full.len(),
        projects_read,
        rows_expanded: cost.rows_expanded,
        rows_plain: cost.rows_plain,
        rows_probe: cost.rows_probe,
        server_seconds: cost.server_seconds,
        max_in_flight: sim.max_in_flight(),
        renamed_label_in,
    })
}

/// The Plane section's table, and today's no-change run against the one before issue 23.
fn print_plane(plane: &Value) {
    println!();
    println!(
        "the Plane side — feeds only, simulated Plane CE server (2 workers, lab prices; sleeps × {})",
        plane["sleep_scale"]
    );
    println!(
        "  {:<36} {:>8} {:>6} {:>6} {:>8} {:>22} {:>9} {:>7} {:>6}",
        "run",
        "requests",
        "full",
        "probe",
        "projects",
        "rows exp/plain/probe",
        "server s",
        "wall s",
        "conns"
    );
    for run in plane["runs"].as_array().into_iter().flatten() {
        let u = |k: &str| run[k].as_u64().unwrap_or(0);
        let f = |k: &str| run[k].as_f64().unwrap_or(0.0);
        let label = match run["renamed_label_in"].as_u64() {
            Some(n) => format!(" ({n} feeds show the new label name)"),
            None => String::new(),
        };
        println!(
            "  {:<36} {:>8} {:>6} {:>6} {:>8} {:>22} {:>9.2} {:>7.2} {:>6}{}{label}",
            run["name"].as_str().unwrap_or(""),
            u("requests"),
            u("full_read_pages"),
            u("probe_pages"),
            u("projects_read"),
            format!(
                "{}/{}/{}",
                u("rows_expanded"),
                u("rows_plain"),
                u("rows_probe")
            ),
            f("server_seconds"),
            f("wall_seconds"),
            u("max_in_flight"),
            if run["exit_ok"].as_bool() == Some(true) {
                ""
            } else {
                "  FAILED"
            }
        );
    }
    let ratio = &plane["no_change_after_over_before"];
    if !ratio.is_null() {
        println!(
            "  no change, now over before: Plane server time × {:.2} (goal ≤ 0.25), wall × {:.2} (goal ≤ 0.3), requests {} (before {})",
            ratio["server_seconds"].as_f64().unwrap_or(0.0),
            ratio["wall_seconds"].as_f64().unwrap_or(0.0),
            ratio["requests_after"],
            ratio["requests_before"]
        );
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
    /// Also the first sync again on fresh servers, straight to them, `--concurrency 1` and 4.
    concurrency_runs: bool,
    /// The Plane section's simulated server sleeps this share of the lab's server time.
    plane_sleep_scale: f64,
    /// Only the Plane section (no CalDAV server).
    plane_only: bool,
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
            concurrency_runs: false,
            plane_sleep_scale: 0.25,
            plane_only: false,
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
                "--concurrency-runs" => options.concurrency_runs = true,
                "--plane-only" => options.plane_only = true,
                "--plane-sleep-scale" => {
                    options.plane_sleep_scale = value()?
                        .parse::<f64>()
                        .map_err(|e| format!("{arg}: {e}"))?
                        .clamp(0.0, 10.0);
                }
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
