//! What a client costs the simulated Plane: the work-item rows it was served by kind (expanded,
//! plain, `fields=` probe), the server time of a cost model, the workers that spend that time
//! for real, and the most requests served at once. These are what let the tests and the
//! benchmark say how hard a client works the real server, not only how many requests it sends.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use calplanebot_testbed::plane_sim::{
    CostModel, Fault, FaultRule, PlaneCost, PlaneSim, Seed, Workers,
};

const PL01: &str = "49975212-2829-4bac-a2c3-f2a9c0d6b458";
const PL01_FIRST: &str = "fc661d4e-a81e-4a2d-b5d4-a3ce86fb9224";
const MISSING: &str = "00000000-0000-4000-8000-000000000000";

/// The probe captures' world: one project of 50 work items.
fn perf_sim() -> PlaneSim {
    PlaneSim::start(Seed::lab_2026_12_07_perf()).unwrap()
}

fn items(query: &str) -> String {
    format!("/api/v1/workspaces/perf/projects/{PL01}/work-items/{query}")
}

/// Sends one request on a fresh connection and returns the status; every answer must close
/// the connection, as the real deployment's do.
fn send(sim: &PlaneSim, method: &str, target: &str, body: &str) -> u16 {
    let base = sim.base_url();
    let addr = base.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let request = format!(
        "{method} {target} HTTP/1.1\r\nHost: {addr}\r\nX-API-Key: {}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        sim.token(),
        body.len()
    );
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let (head, _) = raw.split_once("\r\n\r\n").expect("a response head");
    assert!(
        head.to_ascii_lowercase().contains("\r\nconnection: close"),
        "{head}"
    );
    head.split(' ').nth(1).unwrap().parse().unwrap()
}

fn get(sim: &PlaneSim, target: &str) -> u16 {
    send(sim, "GET", target, "")
}

#[test]
fn rows_are_counted_by_kind_and_one_run_is_a_snapshot_difference() {
    let sim = perf_sim();
    let probe = items("?per_page=1000&fields=id,updated_at");
    let newest = items("?per_page=1&order_by=-updated_at&fields=id,updated_at");
    let plain = items(
        "?per_page=1000&fields=id,name,sequence_id,project,state,labels,assignees,priority,\
         start_date,target_date,updated_at,description_html&order_by=created_at",
    );
    let expanded = items("?per_page=100&expand=state,labels,assignees");
    for target in [&probe, &newest, &plain, &expanded] {
        assert_eq!(get(&sim, target), 200, "{target}");
    }
    assert_eq!(
        sim.cost(),
        PlaneCost {
            requests: 4,
            rows_expanded: 50,
            rows_plain: 50,
            rows_probe: 51,
            server_seconds: 0.0,
        },
        "without a cost model, requests are free"
    );
    // One run: details and lookups are one row each; a miss, other routes and writes none.
    let before = sim.cost();
    let detail = items(&format!("{PL01_FIRST}/?expand=state,labels,assignees"));
    assert_eq!(get(&sim, &detail), 200);
    assert_eq!(get(&sim, "/api/v1/workspaces/perf/work-items/PL01-7/"), 200);
    assert_eq!(get(&sim, &items(&format!("{MISSING}/"))), 404);
    assert_eq!(get(&sim, "/api/v1/users/me/"), 200);
    let labels = format!("/api/v1/workspaces/perf/projects/{PL01}/labels/");
    assert_eq!(get(&sim, &labels), 200);
    let patch = send(
        &sim,
        "PATCH",
        &items(&format!("{PL01_FIRST}/")),
        r#"{"priority": "low"}"#,
    );
    assert_eq!(patch, 200);
    let run = sim.cost().since(&before);
    assert_eq!(
        run,
        PlaneCost {
            requests: 6,
            rows_expanded: 1,
            rows_plain: 1,
            ..PlaneCost::default()
        }
    );
    assert_eq!(sim.cost() - before, run);
    // A fault answered in front of the API is a request without rows or server time.
    sim.set_cost_model(Some(CostModel::plane_ce_lab()));
    sim.inject_fault(FaultRule::new("/work-items/", Fault::server_error()));
    let before = sim.cost();
    assert_eq!(get(&sim, &expanded), 500);
    assert_eq!(
        sim.cost().since(&before),
        PlaneCost {
            requests: 1,
            ..PlaneCost::default()
        }
    );
    sim.reset_cost();
    assert_eq!(sim.cost(), PlaneCost::default());
}

#[test]
fn the_lab_cost_model_prices_a_probe_a_plain_and_an_expanded_read() {
    let sim = perf_sim();
    sim.set_cost_model(Some(CostModel::plane_ce_lab()));
    let seconds = |target: &str| {
        let before = sim.cost();
        assert_eq!(get(&sim, target), 200, "{target}");
        sim.cost().since(&before).server_seconds
    };
    let started = Instant::now();
    let probe = seconds(&items("?per_page=1000&fields=id,updated_at"));
    let newest = seconds(&items(
        "?per_page=1&order_by=-updated_at&fields=id,updated_at",
    ));
    let plain = seconds(&items("?per_page=1000"));
    let expanded = seconds(&items("?per_page=1000&expand=state,labels,assignees"));
    let me = seconds("/api/v1/users/me/");
    // The README's 0.11 s, 0.22 s and 0.56 s for 50 items; capture 91's 95 ms.
    for (got, want) in [
        (probe, 0.11),
        (newest, 0.09),
        (plain, 0.22),
        (expanded, 0.56),
        (me, 0.04),
    ] {
        assert!((got - want).abs() < 0.005, "{got} s, want about {want} s");
    }
    assert!(
        started.elapsed() < Duration::from_millis(500),
        "counted, not slept, without workers: {:?}",
        started.elapsed()
    );
}

#[test]
fn two_workers_bound_what_parallel_fetching_gains() {
    let sim = perf_sim();
    sim.set_cost_model(Some(CostModel::plane_ce_lab()));
    // An expanded 50-item read sleeps 0.56 s × 0.5 = 0.28 s on one of two workers.
    sim.set_workers(Some(Workers {
        count: 2,
        sleep_scale: 0.5,
    }));
    let expanded = items("?per_page=1000&expand=state,labels,assignees");
    let clients = 4;
    let start = std::sync::Barrier::new(clients);
    let began = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..clients {
            scope.spawn(|| {
                start.wait();
                assert_eq!(get(&sim, &expanded), 200);
            });
        }
    });
    let wall = began.elapsed();
    // Two rounds of two, not one round of four, and not four in a row.
    assert!(wall >= Duration::from_millis(560), "{wall:?}");
    assert!(wall < Duration::from_millis(1000), "{wall:?}");
    assert_eq!(sim.max_in_flight(), 4, "the other two waited for a worker");
    let cost = sim.cost();
    assert_eq!(cost.rows_expanded, 200);
    assert!((cost.server_seconds - 4.0 * 0.56).abs() < 1e-9, "{cost:?}");
    // One client at a time never has two requests in flight.
    sim.reset_cost();
    assert_eq!(sim.max_in_flight(), 0);
    sim.set_workers(None);
    for _ in 0..3 {
        assert_eq!(get(&sim, &items("?fields=id,updated_at")), 200);
    }
    assert_eq!(sim.max_in_flight(), 1);
    assert_eq!(sim.in_flight(), 0);
}
