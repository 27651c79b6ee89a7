//! A Plane API simulator: the only Plane the tests and the demo ever talk to, so it reproduces
//! the real server (Plane Community Edition 1.3.1, `shared/plane-api.md` and the captures in
//! `tests/fixtures/plane/api/`) down to error bodies, key order and paging arithmetic.
//!
//! It serves `/api/v1/` on `127.0.0.1` over plain HTTP/1.1:
//! - `users/me/`, `workspaces/{slug}/projects/[{id}/]`,
//!   `workspaces/{slug}/projects/{id}/work-items/[{id}/]` (and the deprecated `issues/` alias),
//!   `workspaces/{slug}/work-items/{IDENT}-{N}/`, `.../states/`, `.../labels/`,
//!   `workspaces/{slug}/members/` (403 for a Guest's key) and `.../projects/{id}/members/`
//!   (alias `project-members/`);
//! - `PATCH` and `DELETE` on one work item (a soft delete);
//! - `fields`, `expand`, `order_by`, `per_page`/`cursor` pagination (at most 1000 a page, or
//!   the cap [`PlaneSim::set_max_per_page`] sets), Plane's exclusions
//!   (deleted, archived, draft, triage, archived project), 401/403/404 as Plane answers them,
//!   the sliding-window rate limit with its headers, and `Connection: close` on every answer.
//!
//! Tests drive it through [`PlaneSim`]: edit the [`World`] between runs, read the
//! [`RecordedRequest`]s, inject [`Fault`]s, and build the webhook [`Delivery`] Plane would post
//! for a change ([`PlaneSim::webhook_delivery`]; built, not sent). What it leaves out is listed
//! in `tests/fixtures/plane/README.md`.
//!
//! ## What a client costs Plane
//!
//! So a test or the benchmark can tell what a client asks of the real server, not only how many
//! requests it sends:
//! - [`PlaneSim::cost`] returns a [`PlaneCost`]: requests answered, and the work-item rows
//!   rendered by list and detail GETs by kind — `rows_expanded` (a relation expanded, as
//!   `expand=state,labels,assignees`), `rows_plain` (`labels`/`assignees` as id lists) and
//!   `rows_probe` (a `fields=` probe keeping neither, as `fields=id,updated_at`) — plus
//!   `server_seconds`. [`PlaneCost::since`] (or `-`) of two snapshots is one run's cost;
//!   [`PlaneSim::reset_cost`] starts again from zero.
//! - [`PlaneSim::set_cost_model`] gives each request simulated server time ([`CostModel`];
//!   [`CostModel::plane_ce_lab`] is the lab server's measurements: 0.11 s / 0.22 s / 0.56 s for
//!   a 50-item project as a probe / plain / expanded). Without a model (the default) everything
//!   is free, as before.
//! - [`PlaneSim::set_workers`] spends that time for real: each request sleeps its server time
//!   times [`Workers::sleep_scale`] while holding one of [`Workers::count`] workers (2 by
//!   default, like the deployment's two gunicorn workers); a request beyond that waits. Then a
//!   benchmark's wall time shows what parallel fetching gains on a 2-worker Plane, and no more.
//!   Off by default, so tests do not slow down.
//! - [`PlaneSim::max_in_flight`] is the largest number of requests the simulator was serving at
//!   once (read, not yet answered), so a test can show a client used at most N connections.

mod api;
pub(crate) mod clock;
mod cost;
pub mod json;
mod server;
mod shapes;
mod webhook;
mod world;

use std::io;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

pub use cost::{CostModel, PlaneCost, Workers};
pub use webhook::{Delivery, WebhookActivity, webhook_signature};
pub use world::{
    DEFAULT_TOKEN, PRIORITIES, ROLE_ADMIN, ROLE_GUEST, ROLE_MEMBER, STATE_GROUPS, Seed, SeedIssue,
    SeedLabel, SeedProject, SeedState, SeedUser, World, generated_id,
};

use server::{Shared, State};

/// One request the simulator answered (or failed on purpose). Requests are recorded when
/// answered, so a request held by [`Fault::Hang`] is recorded after those answered meanwhile.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// The path as sent (percent-encoded), without the query.
    pub path: String,
    /// The raw query string, without `?`.
    pub query: String,
    /// The status the simulator answered with (also for a faulted request).
    pub status: u16,
    /// When the simulator had read the request (before any worker or fault delay).
    pub received: Instant,
    /// When the simulator recorded its answer, just before writing it.
    pub answered: Instant,
}

/// A deliberate failure, for the requests a [`FaultRule`] selects.
#[derive(Clone, Debug, PartialEq)]
pub enum Fault {
    /// Answer this status with this body (sent as `application/json`).
    Status(u16, String),
    /// Answer Plane's 429 body, with `Retry-After` when given (the live server once sent a
    /// 429 without it).
    RateLimited { retry_after: Option<u64> },
    /// Wait this long, then answer normally (for client timeouts; ends early when the
    /// simulator is dropped).
    Hang(Duration),
    /// Answer normally but close the connection halfway through the promised body.
    TruncatedBody,
    /// Answer with the first half of the real body, correctly framed: broken JSON.
    InvalidJson,
}

impl Fault {
    /// Plane's 500 (`{"error":"Something went wrong please try again later"}`).
    pub fn server_error() -> Fault {
        Fault::Status(
            500,
            r#"{"error":"Something went wrong please try again later"}"#.to_owned(),
        )
    }
}

/// Which requests fail, and how: the requests matching `method` (any when `None`, compared
/// case-insensitively), `path_contains` and `query_contains` are counted; the first `skip` of
/// them pass, the next `times` get `fault`, later ones pass again.
#[derive(Clone, Debug, PartialEq)]
pub struct FaultRule {
    pub method: Option<String>,
    pub path_contains: String,
    pub query_contains: Option<String>,
    pub skip: usize,
    pub times: usize,
    pub fault: Fault,
}

impl FaultRule {
    /// The next request whose path contains `path_contains` gets `fault` (skip 0, times 1).
    pub fn new(path_contains: &str, fault: Fault) -> FaultRule {
        FaultRule {
            method: None,
            path_contains: path_contains.to_owned(),
            query_contains: None,
            skip: 0,
            times: 1,
            fault,
        }
    }

    pub fn method(mut self, method: &str) -> FaultRule {
        self.method = Some(method.to_owned());
        self
    }

    pub fn query_contains(mut self, fragment: &str) -> FaultRule {
        self.query_contains = Some(fragment.to_owned());
        self
    }

    pub fn skip(mut self, skip: usize) -> FaultRule {
        self.skip = skip;
        self
    }

    pub fn times(mut self, times: usize) -> FaultRule {
        self.times = times;
        self
    }

    fn matches(&self, method: &str, path: &str, query: &str) -> bool {
        self.method
            .as_deref()
            .is_none_or(|m| m.eq_ignore_ascii_case(method))
            && path.contains(&self.path_contains)
            && self
                .query_contains
                .as_deref()
                .is_none_or(|q| query.contains(q))
    }
}

/// A running simulator on `127.0.0.1:<port>`; dropping it stops the server.
pub struct PlaneSim {
    addr: SocketAddr,
    shared: Arc<Shared>,
    listener: Option<JoinHandle<()>>,
}

impl PlaneSim {
    /// Starts a simulator of `seed` on an ephemeral port.
    pub fn start(seed: Seed) -> io::Result<PlaneSim> {
        PlaneSim::start_on_port(seed, 0)
    }

    /// Starts a simulator of `seed` on `port` (0 = ephemeral).
    pub fn start_on_port(seed: Seed, port: u16) -> io::Result<PlaneSim> {
        let rate_limit = seed.rate_limit_per_minute;
        let world = World::from_seed(seed)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, format!("seed: {e}")))?;
        let listener = TcpListener::bind(("127.0.0.1", port))?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                world,
                throttle: api::Throttle::new(rate_limit),
                max_per_page: api::PLANE_MAX_PER_PAGE,
                requests: Vec::new(),
                faults: Vec::new(),
                edits: Vec::new(),
                cost_model: None,
                cost: PlaneCost::default(),
            }),
            stop: AtomicBool::new(false),
            floor: cost::Floor::default(),
        });
        let serving = Arc::clone(&shared);
        let listener = thread::Builder::new()
            .name("plane-sim".to_owned())
            .spawn(move || server::serve(listener, serving))?;
        Ok(PlaneSim {
            addr,
            shared,
            listener: Some(listener),
        })
    }

    /// `http://127.0.0.1:PORT` (no trailing slash, no `/api/v1`).
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The valid API key.
    pub fn token(&self) -> String {
        self.shared.lock().world.token.clone()
    }

    pub fn workspace_slug(&self) -> String {
        self.shared.lock().world.workspace.clone()
    }

    /// Reads or edits the world between requests. `f` runs under the simulator's lock: calling
    /// another `PlaneSim` method from inside it would deadlock.
    pub fn with_world<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        f(&mut self.shared.lock().world)
    }

    /// Every request answered so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// How many recorded requests have this method (case-insensitive) and a path containing
    /// `path_contains`.
    pub fn count(&self, method: &str, path_contains: &str) -> usize {
        self.shared
            .lock()
            .requests
            .iter()
            .filter(|r| r.method.eq_ignore_ascii_case(method) && r.path.contains(path_contains))
            .count()
    }

    /// Forgets the recorded requests (faults and the rate-limit window stay).
    pub fn reset_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// Adds a fault rule; rules are checked in the order they were added.
    pub fn inject_fault(&self, rule: FaultRule) {
        self.shared.lock().faults.push((rule, 0));
    }

    /// Edits the world right after the simulator answered the request `rule` selects (the
    /// first `rule.skip` matching requests pass; `rule.fault` and `rule.times` are ignored), once:
    /// a change made in Plane between two requests of a client, e.g. an issue deleted between
    /// two pages of a list walk. The answer to that request is already on its way unchanged.
    pub fn edit_after(&self, rule: FaultRule, edit: impl FnOnce(&mut World) + Send + 'static) {
        self.shared.lock().edits.push(server::PendingEdit {
            rule,
            seen: 0,
            edit: Some(Box::new(edit)),
        });
    }

    /// Removes every fault rule.
    pub fn clear_faults(&self) {
        self.shared.lock().faults.clear();
    }

    /// The webhook delivery Plane would post now for `event` (`issue` or `project`),
    /// `action` (`created`, `updated` or `deleted`) and the object `id`, signed with `secret`
    /// (unsigned when empty). `data` is the object as the world holds it at this moment; the
    /// activity's field and values are null (see [`PlaneSim::webhook_delivery_with`]). Panics
    /// where Plane would send nothing, e.g. an update of a deleted issue
    /// ([`World::webhook_payload`]).
    pub fn webhook_delivery(&self, event: &str, action: &str, id: &str, secret: &str) -> Delivery {
        self.webhook_delivery_with(event, action, id, secret, &WebhookActivity::default())
    }

    /// [`PlaneSim::webhook_delivery`] with an explicit activity (changed field, old and new
    /// value, actor).
    pub fn webhook_delivery_with(
        &self,
        event: &str,
        action: &str,
        id: &str,
        secret: &str,
        activity: &WebhookActivity,
    ) -> Delivery {
        self.shared
            .lock()
            .world
            .webhook_delivery_with(event, action, id, secret, activity)
    }

    /// Requests a window allowed per key; `None` = unlimited (and no `X-RateLimit-*` headers).
    pub fn set_rate_limit(&self, per_minute: Option<u32>) {
        self.shared.lock().throttle.limit = per_minute;
    }

    /// The largest `per_page` a list answers, 1000 by default (Plane CE). A larger one is
    /// refused as CE refuses it, with 400 `{"detail":"Invalid per_page value. Cannot exceed
    /// N."}`: a Plane capped at N (Plane Cloud may cap at 100, plane-api.md §3). Without
    /// `per_page`, a list has pages of N.
    pub fn set_max_per_page(&self, max: u32) {
        self.shared.lock().max_per_page = max;
    }

    /// What the simulator has served so far (see the module docs, "What a client costs
    /// Plane"). Take a snapshot before a run and [`PlaneCost::since`] after it.
    pub fn cost(&self) -> PlaneCost {
        self.shared.lock().cost
    }

    /// Starts the cost and [`PlaneSim::max_in_flight`] again from now (the recorded requests,
    /// faults, cost model and workers stay).
    pub fn reset_cost(&self) {
        self.shared.lock().cost = PlaneCost::default();
        self.shared.floor.reset_max_in_flight();
    }

    /// The server time each request costs from now on; `None` (the default) = free.
    pub fn set_cost_model(&self, model: Option<CostModel>) {
        self.shared.lock().cost_model = model;
    }

    /// Serves requests with at most `workers.count` at once, each sleeping its cost model's
    /// server time scaled by `workers.sleep_scale`; `None` (the default) = no limit, no sleep.
    /// Requests already waiting for a worker see the change.
    pub fn set_workers(&self, workers: Option<Workers>) {
        self.shared.floor.set_workers(workers);
    }

    /// The most requests served at once (read and not yet answered, waiting for a worker
    /// included) since the start or [`PlaneSim::reset_cost`].
    pub fn max_in_flight(&self) -> usize {
        self.shared.floor.max_in_flight()
    }

    /// The requests being served right now.
    pub fn in_flight(&self) -> usize {
        self.shared.floor.in_flight()
    }

    /// The throttle's window, 60 s by default (Plane's rate `N/minute`; `N/second` is a 1 s
    /// window). Lets tests watch the window slide without waiting a minute.
    pub fn set_rate_limit_window(&self, window: Duration) {
        self.shared.lock().throttle.window = window;
    }
}

impl Drop for PlaneSim {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the listener blocked in accept().
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(listener) = self.listener.take() {
            let _ = listener.join();
        }
    }
}

impl std::fmt::Debug for PlaneSim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlaneSim")
            .field("base_url", &self.base_url())
            .finish_non_exhaustive()
    }
}
