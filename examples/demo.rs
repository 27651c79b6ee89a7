//! The demo: a whole calplanebot sync on a machine with no Plane or CalDAV server of your own.
//!
//! It starts the project's Plane simulator (seeded from `examples/demo-workspace.json`) and a
//! real Radicale (installed into `./.venv` on first use) behind a request-counting proxy, and a
//! real lighttpd (the tests' feed server) serving a temporary feed directory. Then it runs
//! calplanebot's real `sync` with both targets, CalDAV and subscription feeds, lists the feeds
//! with their `http://` and `webcal://` URLs (`calplanebot feeds`), syncs again, changes a few
//! issues in "Plane", previews the change with `--dry-run`, and applies it. After each run it
//! prints the requests made to Plane and to CalDAV, the feed files written, and the wall time.
//!
//! Run: `cargo run --example demo` (add `-- --serve` to keep the servers running so you can
//! point a calendar app at Radicale or subscribe to a feed). Without lighttpd (the Debian
//! package `lighttpd`) the feeds are written but not served.

use std::path::{Path, PathBuf};
use std::time::Instant;

use calplanebot_testbed::feed_server::FeedServer;
use calplanebot_testbed::plane_sim::{PlaneSim, Seed};
use calplanebot_testbed::proxy::CountingProxy;
use calplanebot_testbed::radicale::Radicale;

/// The demo's feed secret: the feed URLs are the same on every run of the demo.
const FEED_SECRET: &str = "calplanebot-demo-feed-secret-0123456789abcdef";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let serve = std::env::args().any(|a| a == "--serve");
    let seed_path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/demo-workspace.json");
    let sim = PlaneSim::start(Seed::from_file(seed_path)?)?;
    eprintln!("starting Radicale (the first time installs it into ./.venv from PyPI)…");
    let radicale = Radicale::start()?;
    let proxy = CountingProxy::start(radicale.addr())?;
    let feeds = FeedDir::create()?;
    let feed_server = match FeedServer::start(&feeds.0) {
        Ok(server) => Some(server),
        Err(error) => {
            eprintln!("the feeds are written but not served: {error}");
            None
        }
    };
    println!(
        "Plane simulator: {}  (workspace {:?})",
        sim.base_url(),
        sim.workspace_slug()
    );
    println!(
        "Radicale:        {}  (user {:?}, password {:?})",
        radicale.url(),
        radicale.username(),
        radicale.password()
    );
    match &feed_server {
        Some(server) => println!(
            "Feeds:           {}  (lighttpd serving {})",
            server.base_url(),
            feeds.0.display()
        ),
        None => println!("Feeds:           {}", feeds.0.display()),
    }

    let demo = Demo {
        sim: &sim,
        proxy: &proxy,
        radicale: &radicale,
        feed_dir: &feeds.0,
        feed_base_url: feed_server.as_ref().map(FeedServer::base_url),
    };
    demo.run("first sync, CalDAV and feeds", &["sync"]);
    demo.run("the feeds to hand out", &["feeds"]);
    demo.run("second sync, nothing changed in Plane", &["sync"]);

    // Change the workspace the way people do: move a date, close an issue, drop a date.
    sim.with_world(|world| {
        let mut dated = world.issues.iter_mut().filter(|i| {
            i.target_date.is_some() && i.deleted_at.is_none() && i.archived_at.is_none()
        });
        if let Some(issue) = dated.next() {
            issue.target_date = Some("2027-01-15".into());
            issue.name = format!("{} (moved)", issue.name);
        }
        if let Some(issue) = dated.next() {
            issue.priority = "urgent".into();
        }
        if let Some(issue) = dated.next() {
            issue.target_date = None;
        }
    });
    demo.run(
        "dry run after three changes in Plane",
        &["sync", "--dry-run"],
    );
    demo.run("sync after three changes in Plane", &["sync"]);

    if serve {
        println!(
            "\nServers keep running; point a CalDAV client at {} — Ctrl-C to stop.",
            radicale.url()
        );
        if feed_server.is_some() {
            println!(
                "The feed server keeps running too: subscribe a calendar app on this machine to a URL listed by `calplanebot feeds` above."
            );
        }
        loop {
            std::thread::park();
        }
    }
    Ok(())
}

/// The demo's feed directory, a fresh temporary directory removed at the end of the demo.
struct FeedDir(PathBuf);

impl FeedDir {
    fn create() -> std::io::Result<FeedDir> {
        let dir =
            std::env::temp_dir().join(format!("calplanebot-demo-feeds-{}", std::process::id()));
        std::fs::create_dir(&dir)?;
        Ok(FeedDir(dir))
    }
}

impl Drop for FeedDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct Demo<'a> {
    sim: &'a PlaneSim,
    proxy: &'a CountingProxy,
    radicale: &'a Radicale,
    feed_dir: &'a Path,
    /// The feed server's `http://127.0.0.1:PORT`, when it runs.
    feed_base_url: Option<String>,
}

impl Demo<'_> {
    fn run(&self, title: &str, args: &[&str]) {
        println!("\n=== {title}: calplanebot {}", args.join(" "));
        self.sim.reset_requests();
        self.proxy.reset();
        let token = self.sim.token();
        let plane_url = self.sim.base_url();
        let caldav_url = format!("{}/", self.proxy.url());
        let slug = self.sim.workspace_slug();
        let feed_dir = self.feed_dir.display().to_string();
        let mut argv = vec!["calplanebot"];
        argv.extend_from_slice(args);
        argv.extend_from_slice(&[
            "--plane-base-url",
            &plane_url,
            "--plane-api-token",
            &token,
            "--plane-workspace-slug",
            &slug,
            "--caldav-url",
            &caldav_url,
            "--caldav-username",
            self.radicale.username(),
            "--caldav-password",
            self.radicale.password(),
            "--feed-dir",
            &feed_dir,
            "--feed-secret",
            FEED_SECRET,
        ]);
        if let Some(base_url) = &self.feed_base_url {
            argv.extend_from_slice(&["--feed-base-url", base_url]);
        }
        let before = calplanebot_testbed::feed_server::file_stamps(self.feed_dir);
        let started = Instant::now();
        let status = calplanebot::commands::main(argv);
        let seconds = started.elapsed().as_secs_f64();
        let after = calplanebot_testbed::feed_server::file_stamps(self.feed_dir);
        let written = after
            .iter()
            .filter(|(name, stamp)| before.get(*name) != Some(stamp))
            .count();
        let plane = self.sim.requests();
        let caldav = self.proxy.counts();
        println!(
            "--- exit status {status:?}; wall time {seconds:.2} s; Plane: {} requests; CalDAV: {} requests {:?}; feeds: {written} of {} files written",
            plane.len(),
            caldav.values().sum::<usize>(),
            caldav,
            after.len()
        );
    }
}
