//! `plane-sim --seed FILE [--port N]`: runs the Plane API simulator on its own, for the demo
//! and for trying calplanebot by hand. Prints the base URL on stdout and serves until killed.

use std::process::ExitCode;

use calplanebot_testbed::plane_sim::{PlaneSim, Seed};

const USAGE: &str = "usage: plane-sim --seed FILE [--port N]";

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("plane-sim: {message}");
            ExitCode::from(2)
        }
    }
}

fn run() -> Result<(), String> {
    let mut seed_path = None;
    let mut port = 0u16;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--seed" => seed_path = Some(args.next().ok_or(USAGE)?),
            "--port" => {
                let value = args.next().ok_or(USAGE)?;
                port = value.parse().map_err(|_| format!("bad port {value:?}"))?;
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                return Ok(());
            }
            other => return Err(format!("unexpected argument {other:?}\n{USAGE}")),
        }
    }
    let seed_path = seed_path.ok_or(USAGE)?;
    let seed = Seed::from_file(&seed_path).map_err(|e| e.to_string())?;
    let sim = PlaneSim::start_on_port(seed, port).map_err(|e| e.to_string())?;
    println!("{}", sim.base_url());
    let (projects, issues) = sim.with_world(|w| (w.projects.len(), w.issues.len()));
    eprintln!(
        "plane-sim: workspace {:?}, {projects} projects, {issues} issues from {seed_path}; \
         stop with Ctrl-C",
        sim.workspace_slug()
    );
    loop {
        std::thread::park();
    }
}
