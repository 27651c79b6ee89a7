//! The demo: a whole calplanebot sync on a machine with no Plane or CalDAV server of your own.
//!
//! It starts the project's Plane simulator (seeded from `examples/demo-workspace.json`) and a
//! real Radicale (installed into `./.venv` on first use) behind a request-counting proxy, then
//! runs calplanebot's real `sync` twice, changes a few issues in "Plane", previews the change
//! with `--dry-run`, and applies it. After each run it prints the requests made to Plane and to
//! CalDAV and the wall time.
//!
//! Run: `cargo run --example demo` (add `-- --serve` to keep the servers running so you can
//! point a calendar app at Radicale).

use std::time::Instant;

use calplanebot_testbed::plane_sim::{PlaneSim, Seed};
use calplanebot_testbed::proxy::CountingProxy;
use calplanebot_testbed::radicale::Radicale;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let serve = std::env::args().any(|a| a == "--serve");
    let seed_path = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/demo-workspace.json");
    let sim = PlaneSim::start(Seed::from_file(seed_path)?)?;
    eprintln!("starting Radicale (the first time installs it into ./.venv from PyPI)…");
    let radicale = Radicale::start()?;
    let proxy = CountingProxy::start(radicale.addr())?;
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

    let demo = Demo {
        sim: &sim,
        proxy: &proxy,
        radicale: &radicale,
    };
    demo.run("first sync", &["sync"]);
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
        loop {
            std::thread::park();
        }
    }
    Ok(())
}

struct Demo<'a> {
    sim: &'a PlaneSim,
    proxy: &'a CountingProxy,
    radicale: &'a Radicale,
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
        ]);
        let started = Instant::now();
        let status = calplanebot::commands::main(argv);
        let seconds = started.elapsed().as_secs_f64();
        let plane = self.sim.requests();
        let caldav = self.proxy.counts();
        println!(
            "--- exit status {status:?}; wall time {seconds:.2} s; Plane: {} requests; CalDAV: {} requests {:?}",
            plane.len(),
            caldav.values().sum::<usize>(),
            caldav
        );
    }
}
