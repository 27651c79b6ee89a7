//! The demo's guided tour (`scripts/demo`, `cargo run --example demo`): a whole calplanebot
//! sync on a machine with no Plane or CalDAV server of its own, told in one or two screens.
//!
//! It starts the Plane simulator (seeded from `examples/demo-workspace.json`), a real Radicale
//! behind the request-counting proxy, and lighttpd serving a temporary feed directory, then runs
//! the real calplanebot five times: the first sync, `feeds`, a sync with nothing changed, a dry
//! run after three edits in "Plane", and the sync that applies them. By default it runs each
//! with `--format json` and tells what happened in a few lines (calendars and events created,
//! three events read back from Radicale as a calendar app shows them, the feed URLs, one line
//! per planned change with the field that changed); `--verbose` prints each run's own full
//! output instead (the plan with its field diffs, the feed diffs, the log).
//!
//! Why here and not in the example: the example and `tests/demo.rs` run the same tour, each
//! with its own way to start calplanebot (the example re-runs itself as calplanebot; the test
//! runs the binary cargo built), and the test checks what a newcomer reads.
//!
//! calplanebot reaches Radicale through the [`CountingProxy`], so the tour can count CalDAV
//! requests by method; every URL printed is Radicale's own (the proxy's origin is replaced), as
//! those are the ones that keep working with `--serve`.

use std::collections::{BTreeMap, HashMap};
use std::io::{self, Read as _, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use serde_json::Value;

use crate::calendar_user::CalendarUser;
use crate::feed_server::{FeedServer, file_stamps};
use crate::plane_sim::clock::{format_date, parse_date};
use crate::plane_sim::{PlaneSim, Seed, World};
use crate::proxy::CountingProxy;
use crate::radicale::Radicale;

/// The demo's feed secret: the feed file names are the same on every run of the demo.
pub const FEED_SECRET: &str = "calplanebot-demo-feed-secret-0123456789abcdef";

/// How the tour runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// The Plane simulator's seed (`examples/demo-workspace.json`).
    pub seed: PathBuf,
    /// Print each calplanebot run's full output instead of a summary.
    pub verbose: bool,
    /// The caller keeps the returned [`Servers`] running: the closing lines say so.
    pub serve: bool,
}

/// The servers of a finished tour; they run until this is dropped (`--serve` holds it).
pub struct Servers {
    sim: PlaneSim,
    radicale: Radicale,
    proxy: CountingProxy,
    feed_server: Option<FeedServer>,
    /// Dropped last: lighttpd stops before its directory goes.
    dir: DemoDir,
}

impl Servers {
    /// The Radicale the calendars live in.
    pub fn radicale(&self) -> &Radicale {
        &self.radicale
    }

    /// The web server serving the feeds (none without lighttpd).
    pub fn feed_server(&self) -> Option<&FeedServer> {
        self.feed_server.as_ref()
    }

    /// The request-counting proxy calplanebot reaches Radicale through.
    pub fn proxy(&self) -> &CountingProxy {
        &self.proxy
    }
}

/// Runs the tour, writing everything it says to `out`. `calplanebot` makes a [`Command`] that
/// runs calplanebot (arguments and environment are added). Fails when a server does not start,
/// or when a calplanebot run does not exit 0 (its output has been written to `out` then).
pub fn run(
    options: &Options,
    calplanebot: &dyn Fn() -> Command,
    out: &mut dyn Write,
) -> io::Result<Servers> {
    let seed = Seed::from_file(&options.seed)?;
    writeln!(
        out,
        "Starting the Plane simulator, Radicale (the first time installs it into ./.venv from \
         PyPI) and lighttpd…"
    )?;
    let sim = PlaneSim::start(seed)?;
    let radicale = Radicale::start()?;
    let proxy = CountingProxy::start(radicale.addr())?;
    let dir = DemoDir::create()?;
    let feed_server = match FeedServer::start(&dir.feeds()) {
        Ok(server) => Some(server),
        Err(error) => {
            writeln!(out, "The feeds are written but not served: {error}")?;
            None
        }
    };
    let servers = Servers {
        sim,
        radicale,
        proxy,
        feed_server,
        dir,
    };
    let mut tour = Tour {
        servers: &servers,
        calplanebot,
        verbose: options.verbose,
        out,
        samples: Vec::new(),
    };
    tour.what_runs_where()?;
    tour.first_sync()?;
    tour.feeds()?;
    tour.nothing_changed()?;
    tour.edits_and_dry_run()?;
    tour.apply()?;
    tour.what_next(options.serve)?;
    Ok(servers)
}

/// The demo's own temporary directory: the feed directory, calplanebot's lock file and cache.
/// Removed on drop.
struct DemoDir(PathBuf);

impl DemoDir {
    fn create() -> io::Result<DemoDir> {
        static TOURS: AtomicUsize = AtomicUsize::new(0);
        let mut name = format!("calplanebot-demo-{}", std::process::id());
        // A second tour in one process (the tests run two).
        let n = TOURS.fetch_add(1, Ordering::Relaxed);
        if n > 0 {
            name.push_str(&format!("-{n}"));
        }
        let dir = std::env::temp_dir().join(name);
        // A directory left by a killed demo of a process with the same id.
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("feeds"))?;
        Ok(DemoDir(dir))
    }

    fn feeds(&self) -> PathBuf {
        self.0.join("feeds")
    }
}

impl Drop for DemoDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// An issue whose event the tour shows before and after the edits.
struct Sample {
    issue_id: String,
    /// `WEB-1`, as Plane names it.
    key: String,
    /// `[1] 🚀 Launch new homepage`: the event's title.
    title: String,
    project: String,
    due: String,
}

/// What one calplanebot run did.
struct Run {
    status: ExitStatus,
    /// stdout (the JSON document) by default; everything it printed with `--verbose`.
    stdout: String,
    stderr: String,
    seconds: f64,
    plane_requests: usize,
    caldav: BTreeMap<String, usize>,
    feeds_written: usize,
    feeds: usize,
}

impl Run {
    fn caldav_requests(&self) -> usize {
        self.caldav.values().sum()
    }

    /// `36 CalDAV requests (3 MKCALENDAR, 3 PROPFIND, 27 PUT, 3 REPORT)`.
    fn caldav_text(&self) -> String {
        let total = self.caldav_requests();
        let methods: Vec<String> = self
            .caldav
            .iter()
            .map(|(method, n)| format!("{n} {method}"))
            .collect();
        let mut text = format!("{total} CalDAV request{}", plural(total));
        if total > 0 {
            text.push_str(&format!(" ({})", methods.join(", ")));
        }
        text
    }

    /// `exit 0 in 0.46 s`.
    fn outcome(&self) -> String {
        format!("{} in {:.2} s", exit_text(self.status), self.seconds)
    }
}

struct Tour<'a> {
    servers: &'a Servers,
    calplanebot: &'a dyn Fn() -> Command,
    verbose: bool,
    out: &'a mut dyn Write,
    samples: Vec<Sample>,
}

impl Tour<'_> {
    fn what_runs_where(&mut self) -> io::Result<()> {
        let s = self.servers;
        let (slug, projects) = s
            .sim
            .with_world(|w| (w.workspace.clone(), w.projects.len()));
        let out = &mut *self.out;
        writeln!(out)?;
        writeln!(
            out,
            "calplanebot demo: Plane issues with due dates become events in CalDAV calendars and \
             .ics feeds."
        )?;
        writeln!(out, "What runs where (all on this machine, 127.0.0.1):")?;
        writeln!(
            out,
            "  Plane   {}   Plane simulator, the REST API calplanebot reads (workspace {slug:?}, \
             {projects} projects)",
            s.sim.base_url()
        )?;
        writeln!(
            out,
            "  CalDAV  {}/  Radicale: user {}, password {}; web interface at /.web/",
            s.radicale.url(),
            s.radicale.username(),
            s.radicale.password(),
        )?;
        match &s.feed_server {
            Some(server) => writeln!(
                out,
                "  Feeds   {}/  lighttpd serving the feed directory {}",
                server.base_url(),
                s.dir.feeds().display()
            )?,
            None => writeln!(out, "  Feeds   {} (not served)", s.dir.feeds().display())?,
        }
        writeln!(
            out,
            "  calplanebot reaches Radicale through a request-counting proxy (port {}); the URLs \
             shown are Radicale's.",
            s.proxy.addr().port()
        )
    }

    fn first_sync(&mut self) -> io::Result<()> {
        self.samples = choose_samples(&self.servers.sim);
        self.heading("1. The first sync", &["sync"])?;
        let run = self.calplanebot(&["sync"])?;
        let Some(doc) = self.document(&run)? else {
            return self.show_samples("Three of the events, read back from Radicale:");
        };
        let plan = &doc["plan"];
        let calendars: Vec<(String, String)> = array(&plan["calendars"])
            .iter()
            .filter(|c| c["action"] == "create")
            .map(|c| (text(&c["url"]), text(&c["displayname"])))
            .collect();
        let created = changes(plan, "create");
        writeln!(
            self.out,
            "   {}: {} calendar{} and {} event{} created in Radicale, {} of {} feed files written",
            run.outcome(),
            calendars.len(),
            plural(calendars.len()),
            created.len(),
            plural(created.len()),
            run.feeds_written,
            run.feeds
        )?;
        self.cost(&run)?;
        for line in run.stderr.lines() {
            if let Some((_, skipped)) = line.split_once("skipping project ") {
                writeln!(self.out, "   skipped project {skipped}")?;
            }
        }
        writeln!(
            self.out,
            "   The calendars (add the CalDAV account to a calendar app, or browse Radicale's web \
             interface):"
        )?;
        let width = calendars.iter().map(|(_, n)| n.chars().count()).max();
        for (url, name) in &calendars {
            let events = created
                .iter()
                .filter(|c| text(&c["url"]).starts_with(url.as_str()))
                .count();
            writeln!(
                self.out,
                "     {name:<width$}  {events:>3} event{}  {}",
                plural(events),
                self.public(url),
                width = width.unwrap_or(0)
            )?;
        }
        self.show_samples(
            "Three of the events, read back from Radicale as a calendar app shows them:",
        )
    }

    fn feeds(&mut self) -> io::Result<()> {
        self.heading("2. The feeds to hand out", &["feeds"])?;
        let run = self.calplanebot(&["feeds"])?;
        let Some(doc) = self.document(&run)? else {
            return Ok(());
        };
        writeln!(
            self.out,
            "   {}; a calendar app subscribes to one of these (each file name is a secret):",
            run.outcome()
        )?;
        for feed in array(&doc) {
            let events = feed["events"].as_u64().unwrap_or(0);
            writeln!(
                self.out,
                "   {:<9} {} ({events} event{})",
                text(&feed["kind"]),
                text(&feed["name"]),
                plural(events as usize)
            )?;
            match (feed["url"].as_str(), feed["webcal"].as_str()) {
                (Some(url), Some(webcal)) => {
                    writeln!(self.out, "             {url}\n             {webcal}")?;
                }
                _ => writeln!(
                    self.out,
                    "             {}",
                    self.servers.dir.feeds().join(text(&feed["file"])).display()
                )?,
            }
        }
        Ok(())
    }

    fn nothing_changed(&mut self) -> io::Result<()> {
        self.heading("3. Sync again, nothing changed in Plane", &["sync"])?;
        let run = self.calplanebot(&["sync"])?;
        let Some(doc) = self.document(&run)? else {
            return Ok(());
        };
        let plan = &doc["plan"];
        let planned = array(&plan["changes"]).len() + array(&plan["calendars"]).len();
        let what = if planned == 0 {
            "nothing changed".to_string()
        } else {
            format!("{planned} changes")
        };
        writeln!(
            self.out,
            "   {}: {what}: {} CalDAV request{}, {} Plane request{}; {} events unchanged, {} of {} \
             feed files rewritten",
            run.outcome(),
            run.caldav_requests(),
            plural(run.caldav_requests()),
            run.plane_requests,
            plural(run.plane_requests),
            plan["unchanged"].as_u64().unwrap_or(0),
            run.feeds_written,
            run.feeds
        )
    }

    fn edits_and_dry_run(&mut self) -> io::Result<()> {
        writeln!(self.out)?;
        writeln!(
            self.out,
            "4. Three edits in Plane (made in the simulator, as a person would in Plane's web app):"
        )?;
        let edits = self.edit_samples();
        for edit in edits {
            writeln!(self.out, "   {edit}")?;
        }
        self.heading(
            "   The plan, before anything is written",
            &["sync", "--dry-run"],
        )?;
        let run = self.calplanebot(&["sync", "--dry-run"])?;
        let Some(doc) = self.document(&run)? else {
            return Ok(());
        };
        let plan = &doc["plan"];
        let projects = self.project_names();
        for change in array(&plan["changes"]) {
            writeln!(self.out, "   {}", change_line(change, &projects))?;
        }
        // calplanebot's own summary line, from its JSON report.
        writeln!(
            self.out,
            "   {}: {}",
            run.outcome(),
            doc["report"]["summary"].as_str().unwrap_or("no summary")
        )
    }

    fn apply(&mut self) -> io::Result<()> {
        self.heading("5. Apply it", &["sync"])?;
        let run = self.calplanebot(&["sync"])?;
        if let Some(doc) = self.document(&run)? {
            let report = &doc["report"];
            writeln!(
                self.out,
                "   {}: {} updated, {} deleted, {} created, {} unchanged; {} of {} feed files \
                 rewritten",
                run.outcome(),
                report["updated"].as_u64().unwrap_or(0),
                report["deleted"].as_u64().unwrap_or(0),
                report["created"].as_u64().unwrap_or(0),
                report["unchanged"].as_u64().unwrap_or(0),
                run.feeds_written,
                run.feeds
            )?;
            self.cost(&run)?;
        }
        self.show_samples("The three events in Radicale now:")
    }

    fn what_next(&mut self, serve: bool) -> io::Result<()> {
        let s = self.servers;
        let radicale = s.radicale.url();
        let mut ports = vec![s.radicale.addr().port()];
        if let Some(server) = &s.feed_server {
            ports.push(server.addr().port());
        }
        let forwards: Vec<String> = ports
            .iter()
            .map(|port| format!("-L {port}:127.0.0.1:{port}"))
            .collect();
        let out = &mut *self.out;
        writeln!(out)?;
        if serve {
            writeln!(
                out,
                "What next: the servers keep running until Ctrl-C. In a calendar app on this \
                 machine:"
            )?;
        } else {
            writeln!(
                out,
                "What next: the servers stop as the demo exits: the URLs above no longer answer."
            )?;
            writeln!(
                out,
                "  scripts/demo --serve   runs the same tour and keeps the servers up until \
                 Ctrl-C; then, in a calendar app:"
            )?;
        }
        writeln!(
            out,
            "  - subscribe to a feed: a webcal:// URL from step 2 (or its http:// URL), or"
        )?;
        writeln!(
            out,
            "  - add a CalDAV account: server {radicale}/, user {} and the password shown at the \
             top.",
            s.radicale.username()
        )?;
        writeln!(
            out,
            "  On a headless machine, forward the ports{} from your own machine, then open the \
             same URLs there:",
            if serve { "" } else { " that --serve prints" }
        )?;
        writeln!(out, "    ssh {} user@this-machine", forwards.join(" "))?;
        if !self.verbose {
            writeln!(
                out,
                "  scripts/demo --verbose   shows each calplanebot run's own output (the plan \
                 with field diffs, the log)"
            )?;
        }
        if serve {
            writeln!(out, "Ctrl-C stops the servers.")?;
        }
        out.flush()
    }

    /// The numbered line naming the command a step runs.
    /// What a run cost: its Plane and CalDAV requests, on a line of its own.
    fn cost(&mut self, run: &Run) -> io::Result<()> {
        writeln!(
            self.out,
            "   {} Plane request{}, {}",
            run.plane_requests,
            plural(run.plane_requests),
            run.caldav_text()
        )
    }

    fn heading(&mut self, title: &str, args: &[&str]) -> io::Result<()> {
        let mut shown = args.join(" ");
        if !self.verbose {
            shown.push_str(" --format json");
        }
        if !title.starts_with(' ') {
            writeln!(self.out)?;
        }
        writeln!(self.out, "{title}: calplanebot {shown}")
    }

    /// Runs calplanebot with `args` (plus `--format json` unless verbose) in the demo's
    /// configuration, as a deployment sets it: environment variables, nothing else inherited.
    /// With `--verbose` its output is printed as it came, followed by a line of counts.
    fn calplanebot(&mut self, args: &[&str]) -> io::Result<Run> {
        let s = self.servers;
        s.sim.reset_requests();
        s.proxy.reset();
        let mut command = (self.calplanebot)();
        command.args(args);
        if !self.verbose {
            command.args(["--format", "json"]);
        }
        command
            .env_clear()
            .envs(self.configuration())
            .stdin(Stdio::null());
        let feeds = s.dir.feeds();
        let before = file_stamps(&feeds);
        let started = Instant::now();
        let (status, stdout, stderr) = if self.verbose {
            // stdout and stderr into one pipe, so the log lines stay where they were printed.
            let (mut reader, writer) = io::pipe()?;
            command.stdout(writer.try_clone()?).stderr(writer);
            let mut child = command.spawn()?;
            // The command holds the pipe's write ends: without this the read never ends.
            drop(command);
            let mut all = Vec::new();
            reader.read_to_end(&mut all)?;
            (child.wait()?, lossy(all), String::new())
        } else {
            let output = command.output()?;
            (output.status, lossy(output.stdout), lossy(output.stderr))
        };
        let seconds = started.elapsed().as_secs_f64();
        let after = file_stamps(&feeds);
        let run = Run {
            status,
            stdout,
            stderr,
            seconds,
            plane_requests: s.sim.requests().len(),
            caldav: s.proxy.counts(),
            feeds_written: after
                .iter()
                .filter(|(name, stamp)| before.get(*name) != Some(stamp))
                .count(),
            feeds: after.len(),
        };
        if self.verbose {
            let output = self.public(&run.stdout);
            write!(self.out, "{output}")?;
            writeln!(
                self.out,
                "--- {}; Plane: {} request{}; {}; feeds: {} of {} files written",
                run.outcome(),
                run.plane_requests,
                plural(run.plane_requests),
                run.caldav_text(),
                run.feeds_written,
                run.feeds
            )?;
        }
        if !run.status.success() {
            if !self.verbose {
                let output = self.public(&format!("{}{}", run.stderr, run.stdout));
                write!(self.out, "{output}")?;
                writeln!(self.out, "--- {}", run.outcome())?;
            }
            return Err(io::Error::other(format!(
                "calplanebot {} ended with {}",
                args.join(" "),
                exit_text(run.status)
            )));
        }
        Ok(run)
    }

    /// The run's JSON document, `None` with `--verbose` (the run printed its own text).
    fn document(&self, run: &Run) -> io::Result<Option<Value>> {
        if self.verbose {
            return Ok(None);
        }
        serde_json::from_str(&run.stdout)
            .map(Some)
            .map_err(|e| io::Error::other(format!("calplanebot's JSON: {e}")))
    }

    /// calplanebot's settings for the demo's servers.
    fn configuration(&self) -> Vec<(&'static str, String)> {
        let s = self.servers;
        let mut vars = vec![
            ("PLANE_BASE_URL", s.sim.base_url()),
            ("PLANE_API_TOKEN", s.sim.token()),
            ("PLANE_WORKSPACE_SLUG", s.sim.workspace_slug()),
            ("CALDAV_URL", format!("{}/", s.proxy.url())),
            ("CALDAV_USERNAME", s.radicale.username().to_string()),
            ("CALDAV_PASSWORD", s.radicale.password().to_string()),
            ("CALPLANEBOT_FEED_DIR", path_text(&s.dir.feeds())),
            ("CALPLANEBOT_FEED_SECRET", FEED_SECRET.to_string()),
            ("CALPLANEBOT_LOCK_FILE", path_text(&s.dir.0.join("lock"))),
            ("CALPLANEBOT_CACHE_DIR", path_text(&s.dir.0.join("cache"))),
        ];
        if let Some(server) = &s.feed_server {
            vars.push(("CALPLANEBOT_FEED_BASE_URL", server.base_url()));
        }
        vars
    }

    /// `text` with the proxy's origin replaced by Radicale's.
    fn public(&self, text: &str) -> String {
        text.replace(&self.servers.proxy.url(), &self.servers.radicale.url())
    }

    /// Project ids to names, for the plan's lines.
    fn project_names(&self) -> HashMap<String, String> {
        self.servers.sim.with_world(|w| {
            w.projects
                .iter()
                .map(|p| (p.id.clone(), p.name.clone()))
                .collect()
        })
    }

    /// Renames the first sample's issue, moves the second's due date a week later and removes
    /// the third's; returns a line per edit.
    fn edit_samples(&mut self) -> Vec<String> {
        let samples = &self.samples;
        self.servers.sim.with_world(|w| {
            let mut lines = Vec::new();
            if let Some(sample) = samples.first() {
                let issue = w.issue_mut(&sample.issue_id);
                let old = issue.name.clone();
                issue.name = format!("{old} (renamed)");
                lines.push(format!(
                    "{:<6} renamed: {old:?} → {:?}",
                    sample.key, issue.name
                ));
            }
            if let Some(sample) = samples.get(1) {
                let moved = parse_date(&sample.due).map(|day| format_date(day + 7));
                w.issue_mut(&sample.issue_id).target_date = moved.clone();
                lines.push(format!(
                    "{:<6} due date moved a week: {} → {}",
                    sample.key,
                    sample.due,
                    moved.as_deref().unwrap_or("none")
                ));
            }
            if let Some(sample) = samples.get(2) {
                w.issue_mut(&sample.issue_id).target_date = None;
                lines.push(format!(
                    "{:<6} due date removed (was {})",
                    sample.key, sample.due
                ));
            }
            lines
        })
    }

    /// The sample events as Radicale holds them: date, title, project.
    fn show_samples(&mut self, title: &str) -> io::Result<()> {
        let stored = self.read_back()?;
        writeln!(self.out, "   {title}")?;
        for sample in &self.samples {
            match stored.get(&sample.issue_id) {
                Some((date, summary)) => writeln!(
                    self.out,
                    "     {date}  {summary}  (project {})",
                    sample.project
                )?,
                None => writeln!(
                    self.out,
                    "     {:<10}  {}  (project {}): no event any more",
                    "-", sample.title, sample.project
                )?,
            }
        }
        Ok(())
    }

    /// Every event calplanebot owns in Radicale, read as a calendar app reads them (straight
    /// from Radicale, not through the proxy): issue id → (date, title).
    fn read_back(&self) -> io::Result<HashMap<String, (String, String)>> {
        let r = &self.servers.radicale;
        let user = CalendarUser::new(&r.url(), r.username(), r.password());
        let mut events = HashMap::new();
        for (calendar, _) in user.list_calendars(&format!("/{}/", r.username()))? {
            for (href, _) in user.list_objects(&calendar)? {
                let Some((_, ics)) = user.get(&href)? else {
                    continue;
                };
                let Some(event) = EventLine::parse(&ics) else {
                    continue;
                };
                // calplanebot's UIDs: `plane-issue-{issue_id}@calplanebot` (README, identity).
                let issue_id = event
                    .uid
                    .strip_prefix("plane-issue-")
                    .and_then(|rest| rest.strip_suffix("@calplanebot"));
                if let Some(issue_id) = issue_id {
                    events.insert(issue_id.to_string(), (event.date, event.summary));
                }
            }
        }
        Ok(events)
    }
}

/// The issues the tour follows: in each of the first three projects calplanebot syncs (the
/// key's user is a member, not archived), the dated issue with the lowest number.
fn choose_samples(sim: &PlaneSim) -> Vec<Sample> {
    sim.with_world(|w: &mut World| {
        let w = &*w;
        w.projects
            .iter()
            .filter(|p| p.is_member && p.archived_at.is_none())
            .filter_map(|project| {
                let issue = w
                    .issues
                    .iter()
                    .filter(|i| i.project == project.id && i.target_date.is_some())
                    .filter(|i| w.is_listable(i))
                    .min_by_key(|i| i.sequence_id)?;
                Some(Sample {
                    issue_id: issue.id.clone(),
                    key: format!("{}-{}", project.identifier, issue.sequence_id),
                    title: format!("[{}] {}", issue.sequence_id, issue.name),
                    project: project.name.clone(),
                    due: issue.target_date.clone().unwrap_or_default(),
                })
            })
            .take(3)
            .collect()
    })
}

/// One planned change as a line: `~ 2026-12-15  [1] Title  (project P)  changed: date (was …)`.
fn change_line(change: &Value, projects: &HashMap<String, String>) -> String {
    let action = text(&change["action"]);
    let (sign, fields) = match action.as_str() {
        "create" => ("+", &change["fields"]),
        "update" => ("~", &change["after"]),
        _ => ("-", &change["before"]),
    };
    let project_id = text(&fields["project"]);
    let project = projects.get(&project_id).unwrap_or(&project_id);
    let what = match action.as_str() {
        "create" => "new event".to_string(),
        "update" => format!(
            "changed: {}",
            changed_fields(&change["before"], &change["after"]).join(", ")
        ),
        _ => "deleted: not a dated issue in Plane any more".to_string(),
    };
    format!(
        "{sign} {}  {}  (project {project})  {what}",
        text(&fields["dtstart"]),
        text(&fields["summary"])
    )
}

/// The managed fields that differ between two JSON `ManagedFields`, named as a calendar app
/// names them, with the old value of the title and the date.
fn changed_fields(before: &Value, after: &Value) -> Vec<String> {
    let empty = serde_json::Map::new();
    let old = before.as_object().unwrap_or(&empty);
    let new = after.as_object().unwrap_or(&empty);
    let mut keys: Vec<&String> = new.keys().collect();
    keys.extend(old.keys().filter(|k| !new.contains_key(*k)));
    // What a person looks at first, first; fields not listed after them.
    const ORDER: [&str; 4] = ["summary", "dtstart", "dtend", "description"];
    keys.sort_by_key(|key| ORDER.iter().position(|k| k == key).unwrap_or(ORDER.len()));
    let differs = |key: &str| old.get(key) != new.get(key);
    keys.into_iter()
        .filter(|key| differs(key))
        .filter_map(|key| {
            let was = old.get(key.as_str()).map(text).unwrap_or_default();
            Some(match key.as_str() {
                "summary" => format!("title (was {was:?})"),
                "dtstart" => format!("date (was {was})"),
                // An all-day event's end moves with its start.
                "dtend" if differs("dtstart") => return None,
                "dtend" => "end date".to_string(),
                "categories" => "labels".to_string(),
                "color" => "colour".to_string(),
                "url" => "link".to_string(),
                other => other.to_string(),
            })
        })
        .collect()
}

/// The date, title and UID of the first event of an iCalendar object (lines unfolded, text
/// unescaped, RFC 5545 sections 3.1 and 3.3.11).
struct EventLine {
    uid: String,
    date: String,
    summary: String,
}

impl EventLine {
    fn parse(ics: &str) -> Option<EventLine> {
        let unfolded = ics
            .replace("\r\n", "\n")
            .replace("\n ", "")
            .replace("\n\t", "");
        let mut in_event = false;
        let (mut uid, mut date, mut summary) = (None, None, None);
        for line in unfolded.lines() {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let name = name.split(';').next().unwrap_or("").to_ascii_uppercase();
            match (name.as_str(), value) {
                ("BEGIN", "VEVENT") => in_event = true,
                ("END", "VEVENT") if in_event => break,
                ("UID", _) if in_event => uid = Some(value.to_string()),
                ("SUMMARY", _) if in_event => summary = Some(unescape(value)),
                ("DTSTART", _) if in_event => date = Some(iso_date(value)),
                _ => {}
            }
        }
        Some(EventLine {
            uid: uid?,
            date: date?,
            summary: summary?,
        })
    }
}

/// `20261201` → `2026-12-01` (a date-time keeps its time: `2026-12-01T0900…`).
fn iso_date(value: &str) -> String {
    if value.len() >= 8
        && value.is_char_boundary(8)
        && value[..8].bytes().all(|b| b.is_ascii_digit())
    {
        format!(
            "{}-{}-{}{}",
            &value[..4],
            &value[4..6],
            &value[6..8],
            &value[8..]
        )
    } else {
        value.to_string()
    }
}

/// An iCalendar TEXT value unescaped (`\,` `\;` `\\` `\n`).
fn unescape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut chars = value.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n' | 'N') => out.push(' '),
            Some(other) => out.push(other),
            None => out.push('\\'),
        }
    }
    out
}

fn changes<'v>(plan: &'v Value, action: &str) -> Vec<&'v Value> {
    array(&plan["changes"])
        .iter()
        .filter(|c| c["action"] == action)
        .collect()
}

fn array(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

/// A JSON string as it is, anything else as JSON (`null` for a missing value).
fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn lossy(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

fn path_text(path: &Path) -> String {
    path.display().to_string()
}

/// `exit 0`, or the signal that ended the process.
fn exit_text(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(signal)) => format!("killed by signal {signal}"),
        (None, None) => "no exit status".to_string(),
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_reads_as_date_title_and_uid_through_folds_and_escapes() {
        let ics = "BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nUID:plane-issue-1@calplanebot\r\n\
                   SUMMARY:[3] Review legal copy: terms\\, privacy\\; cookie\r\n  banner\r\n\
                   DTSTART;VALUE=DATE:20261231\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";
        let event = EventLine::parse(ics).expect("an event");
        assert_eq!(event.uid, "plane-issue-1@calplanebot");
        assert_eq!(event.date, "2026-12-31");
        assert_eq!(
            event.summary,
            "[3] Review legal copy: terms, privacy; cookie banner"
        );
    }

    #[test]
    fn a_changed_date_is_one_field_and_other_fields_keep_their_names() {
        let before = serde_json::json!({"summary": "[1] A", "dtstart": "2026-12-08",
            "dtend": "2026-12-09", "color": "red", "categories": ["x"]});
        let after = serde_json::json!({"summary": "[1] A", "dtstart": "2026-12-15",
            "dtend": "2026-12-16", "color": "orange", "categories": ["x"]});
        assert_eq!(
            changed_fields(&before, &after),
            ["date (was 2026-12-08)", "colour"]
        );
        let renamed = serde_json::json!({"summary": "[1] B", "dtstart": "2026-12-08",
            "dtend": "2026-12-09", "color": "red", "categories": ["x"]});
        assert_eq!(changed_fields(&before, &renamed), ["title (was \"[1] A\")"]);
    }
}
