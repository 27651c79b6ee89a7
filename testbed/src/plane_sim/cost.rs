//! What answering costs the simulated Plane, so tests and the benchmark can tell the truth about
//! a client's load on the real server: the work-item rows each answer rendered (expanded, plain,
//! or as a cheap `fields=` probe), the server time a [`CostModel`] gives a request, and the
//! [`Workers`] that spend that time for real, a bounded number at once, like the deployment's
//! two gunicorn workers. The [`Floor`] also counts the requests in flight, so a test can show how
//! many connections a client used at most.
//!
//! Why three kinds of rows: the real server (captures `90`-`92`, README "the cheap probe of a
//! project") took about 0.11 s for 50 items as `fields=id,updated_at`, 0.22 s for the full field
//! list without `expand`, and 0.56 s with `expand=state,labels,assignees`. The simulator reads
//! the difference as the per-row work Plane's `IssueSerializer` does: expanding a relation costs
//! the most, rendering the many-to-many `labels`/`assignees` lists costs a query per row, and a
//! row without them costs almost nothing beyond the request itself.

use std::ops::Sub;
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::shapes::Shape;

/// Simulated server seconds for each request, from the real server's timings (seconds; the
/// captures' machine had 2 cores and other work, so read them as ratios). A request costs
/// `per_request`, a work-item list `per_work_item_list` more, and every work-item row rendered
/// by a list or detail GET its kind's rate divided by 50.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct CostModel {
    /// Any request that reached the API (authentication, routing, an error answer, a write).
    pub per_request: f64,
    /// The fixed part of a work-item list beyond any request: its count and ordering queries.
    pub per_work_item_list: f64,
    /// 50 rows whose shape keeps neither `labels` nor `assignees` and expands nothing (the
    /// `fields=id,updated_at` probe).
    pub probe_per_50_rows: f64,
    /// 50 rows with `labels`/`assignees` as id lists, nothing expanded.
    pub plain_per_50_rows: f64,
    /// 50 rows with at least one relation expanded (`expand=state,labels,assignees`).
    pub expanded_per_50_rows: f64,
}

impl CostModel {
    /// The lab server of the captures (Plane CE 1.3.1, 2 workers): a 50-item project costs
    /// 0.11 s as a probe, 0.22 s plain and 0.56 s expanded (README, captures `90`, `92`), and a
    /// one-row probe 0.09 s (`91`: 95 ms), so most of a probe is the list's fixed cost. The
    /// split between the request and the list is fitted to the small answers (`users/me/` 31
    /// ms, states 46 ms, a work-item detail 37-63 ms, an empty page 70 ms).
    pub fn plane_ce_lab() -> CostModel {
        CostModel {
            per_request: 0.04,
            per_work_item_list: 0.05,
            probe_per_50_rows: 0.02,
            plain_per_50_rows: 0.13,
            expanded_per_50_rows: 0.47,
        }
    }

    /// The server time of one answer (`served` = the work-item rows it rendered, if any).
    pub(crate) fn seconds(&self, served: Option<&Served>) -> f64 {
        let Some(served) = served else {
            return self.per_request;
        };
        let per_50 = match served.kind {
            RowKind::Probe => self.probe_per_50_rows,
            RowKind::Plain => self.plain_per_50_rows,
            RowKind::Expanded => self.expanded_per_50_rows,
        };
        let list = if served.list {
            self.per_work_item_list
        } else {
            0.0
        };
        self.per_request + list + per_50 * served.rows as f64 / 50.0
    }
}

/// How the simulator spends server time: at most `count` requests are served at once (a request
/// beyond that waits for a worker, as behind gunicorn), and each sleeps its [`CostModel`] time
/// times `sleep_scale` while it holds its worker (0.1 keeps a benchmark short and its ratios).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Workers {
    pub count: usize,
    pub sleep_scale: f64,
}

impl Default for Workers {
    /// The lab deployment: 2 workers, real time.
    fn default() -> Workers {
        Workers {
            count: 2,
            sleep_scale: 1.0,
        }
    }
}

/// What the simulator served since it started (or since [`super::PlaneSim::reset_cost`]).
/// Rows are work items rendered by GETs of the work-item list, detail and lookup routes.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct PlaneCost {
    /// Every request answered, faulted ones included.
    pub requests: u64,
    /// Rows with at least one relation expanded.
    pub rows_expanded: u64,
    /// Rows with `labels`/`assignees` id lists, nothing expanded.
    pub rows_plain: u64,
    /// Rows of a `fields=` probe: no `labels`, no `assignees`, nothing expanded.
    pub rows_probe: u64,
    /// The [`CostModel`]'s server time of those requests (0 without a model). Faults answered
    /// in front of the API (a status, a 429, broken bodies) cost nothing.
    pub server_seconds: f64,
}

impl PlaneCost {
    /// Every work-item row, of any kind.
    pub fn rows(&self) -> u64 {
        self.rows_expanded + self.rows_plain + self.rows_probe
    }

    /// What was served between `earlier` (a snapshot of the same simulator) and `self`.
    pub fn since(&self, earlier: &PlaneCost) -> PlaneCost {
        *self - *earlier
    }

    pub(crate) fn add(&mut self, served: Option<&Served>, seconds: f64) {
        self.requests += 1;
        self.server_seconds += seconds;
        if let Some(served) = served {
            let rows = match served.kind {
                RowKind::Probe => &mut self.rows_probe,
                RowKind::Plain => &mut self.rows_plain,
                RowKind::Expanded => &mut self.rows_expanded,
            };
            *rows += served.rows;
        }
    }
}

impl Sub for PlaneCost {
    type Output = PlaneCost;

    fn sub(self, earlier: PlaneCost) -> PlaneCost {
        PlaneCost {
            requests: self.requests.saturating_sub(earlier.requests),
            rows_expanded: self.rows_expanded.saturating_sub(earlier.rows_expanded),
            rows_plain: self.rows_plain.saturating_sub(earlier.rows_plain),
            rows_probe: self.rows_probe.saturating_sub(earlier.rows_probe),
            server_seconds: (self.server_seconds - earlier.server_seconds).max(0.0),
        }
    }
}

/// How a work-item row was rendered, for its cost.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum RowKind {
    Probe,
    Plain,
    Expanded,
}

/// The fields of a work item whose `expand` renders a related object (state, parent, estimate
/// point, the common workspace/project/users) or the many-to-many lists: the expansions that
/// cost Plane queries. Expanding any other kept field just renders `null`.
const ISSUE_RELATIONS: [&str; 9] = [
    "state",
    "parent",
    "estimate_point",
    "workspace",
    "project",
    "created_by",
    "updated_by",
    "labels",
    "assignees",
];

impl RowKind {
    /// The kind of the work-item rows a request's `fields`/`expand` asks for.
    pub(crate) fn of(shape: &Shape) -> RowKind {
        if ISSUE_RELATIONS.iter().any(|name| shape.expands(name)) {
            RowKind::Expanded
        } else if shape.keeps("labels") || shape.keeps("assignees") {
            RowKind::Plain
        } else {
            RowKind::Probe
        }
    }
}

/// The work-item rows one answer rendered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Served {
    pub kind: RowKind,
    pub rows: u64,
    /// A list (with its fixed cost), not a detail or lookup.
    pub list: bool,
}

/// The requests in flight and the workers serving them. Its lock is never held together with
/// the simulator's state lock.
#[derive(Default)]
pub(crate) struct Floor {
    state: Mutex<FloorState>,
    freed: Condvar,
}

#[derive(Default)]
struct FloorState {
    /// Requests read and not yet answered (waiting for a worker included).
    in_flight: usize,
    max_in_flight: usize,
    /// Requests holding a worker.
    busy: usize,
    workers: Option<Workers>,
}

impl Floor {
    fn lock(&self) -> MutexGuard<'_, FloorState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a request as in flight until the guard is dropped.
    pub fn enter(&self) -> InFlight<'_> {
        let mut state = self.lock();
        state.in_flight += 1;
        state.max_in_flight = state.max_in_flight.max(state.in_flight);
        InFlight { floor: self }
    }

    pub fn in_flight(&self) -> usize {
        self.lock().in_flight
    }

    pub fn max_in_flight(&self) -> usize {
        self.lock().max_in_flight
    }

    /// Starts a new maximum from the requests in flight now.
    pub fn reset_max_in_flight(&self) {
        let mut state = self.lock();
        state.max_in_flight = state.in_flight;
    }

    pub fn set_workers(&self, workers: Option<Workers>) {
        self.lock().workers = workers;
        self.freed.notify_all();
    }

    /// Waits for a free worker (at once without [`Workers`]) and returns it with the sleep
    /// scale; gives up waiting when `stopped` says the simulator is going away.
    pub fn worker(&self, stopped: impl Fn() -> bool) -> Worker<'_> {
        let mut state = self.lock();
        loop {
            let Some(workers) = state.workers else {
                return Worker {
                    floor: self,
                    sleep_scale: None,
                    counted: false,
                };
            };
            if state.busy < workers.count.max(1) || stopped() {
                state.busy += 1;
                return Worker {
                    floor: self,
                    sleep_scale: Some(workers.sleep_scale),
                    counted: true,
                };
            }
            state = self
                .freed
                .wait_timeout(state, Duration::from_millis(20))
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .0;
        }
    }
}

/// A request in flight; dropping it ends that.
pub(crate) struct InFlight<'a> {
    floor: &'a Floor,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.floor.lock().in_flight -= 1;
    }
}

/// A worker held by one request; dropping it frees the worker.
pub(crate) struct Worker<'a> {
    floor: &'a Floor,
    /// `None` without [`Workers`]: server time is counted, never slept.
    sleep_scale: Option<f64>,
    counted: bool,
}

impl Worker<'_> {
    /// How long this worker sleeps for `seconds` of server time.
    pub fn sleep_for(&self, seconds: f64) -> Duration {
        let scaled = seconds * self.sleep_scale.unwrap_or(0.0);
        Duration::try_from_secs_f64(scaled).unwrap_or(Duration::ZERO)
    }
}

impl Drop for Worker<'_> {
    fn drop(&mut self) {
        if self.counted {
            self.floor.lock().busy -= 1;
            self.floor.freed.notify_one();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(fields: &[&str], expand: &[&str]) -> Shape {
        Shape {
            fields: (!fields.is_empty()).then(|| fields.iter().map(|f| f.to_string()).collect()),
            expand: expand.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn rows_are_classified_by_what_the_shape_renders() {
        assert_eq!(
            RowKind::of(&shape(&["id", "updated_at"], &[])),
            RowKind::Probe
        );
        // An expansion of a field `fields` dropped acts on nothing: still a probe.
        assert_eq!(
            RowKind::of(&shape(&["id", "updated_at"], &["state", "labels"])),
            RowKind::Probe
        );
        assert_eq!(RowKind::of(&shape(&[], &[])), RowKind::Plain);
        assert_eq!(
            RowKind::of(&shape(&["id", "name", "labels"], &[])),
            RowKind::Plain
        );
        // Expanding a plain column renders null: no related object, no extra cost.
        assert_eq!(RowKind::of(&shape(&[], &["name"])), RowKind::Plain);
        assert_eq!(
            RowKind::of(&shape(&[], &["state", "labels", "assignees"])),
            RowKind::Expanded
        );
        assert_eq!(
            RowKind::of(&shape(&["id", "state"], &["state"])),
            RowKind::Expanded
        );
    }

    #[test]
    fn a_snapshot_difference_is_one_runs_cost() {
        let served = Served {
            kind: RowKind::Plain,
            rows: 3,
            list: true,
        };
        let mut cost = PlaneCost::default();
        cost.add(Some(&served), 0.5);
        let before = cost;
        cost.add(Some(&served), 0.25);
        cost.add(None, 0.25);
        let run = cost.since(&before);
        assert_eq!(
            run,
            PlaneCost {
                requests: 2,
                rows_plain: 3,
                server_seconds: 0.5,
                ..PlaneCost::default()
            }
        );
        assert_eq!(cost.rows(), 6);
    }

    #[test]
    fn workers_bound_the_requests_served_at_once() {
        let floor = Floor::default();
        let no_pool = floor.worker(|| false);
        assert_eq!(
            no_pool.sleep_for(1.0),
            Duration::ZERO,
            "no workers: no sleep"
        );
        drop(no_pool);
        floor.set_workers(Some(Workers {
            count: 2,
            sleep_scale: 0.5,
        }));
        let first = floor.worker(|| false);
        let _second = floor.worker(|| false);
        assert_eq!(first.sleep_for(1.0), Duration::from_millis(500));
        std::thread::scope(|scope| {
            let third = scope.spawn(|| drop(floor.worker(|| false)));
            std::thread::sleep(Duration::from_millis(100));
            assert!(!third.is_finished(), "a third request waits for a worker");
            drop(first);
            third.join().unwrap();
        });
        let _a = floor.enter();
        let b = floor.enter();
        drop(b);
        let _c = floor.enter();
        assert_eq!((floor.in_flight(), floor.max_in_flight()), (2, 2));
        floor.reset_max_in_flight();
        assert_eq!(floor.max_in_flight(), 2);
    }
}
