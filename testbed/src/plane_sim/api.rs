//! The simulated Plane REST API (v1): routing, the request pipeline of Plane's `BaseAPIView`
//! (authenticate → permissions → throttle → method → handler), pagination and the handlers.
//!
//! Order matters and follows DRF's `APIView.initial`: a missing key is 401 and a wrong key 403
//! before anything else; a project the key's owner is not a member of is 403 before the rate
//! limit counts the request; a 404 for a missing object or a 400 for a bad cursor *is* counted
//! (the captures carry `X-RateLimit-*` on those). Unknown paths never reach a view: Django's
//! 404 page (`{"error": "Page not found."}`), or a 301 to the same path with a trailing slash
//! (`APPEND_SLASH`) when that path exists.

use std::collections::{HashMap, VecDeque};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::clock;
use super::cost::{RowKind, Served};
use super::json::Json;
use super::shapes::{self, Shape};
use super::world::{PRIORITIES, ROLE_ADMIN, ROLE_MEMBER, SeedIssue, SeedProject, World};

/// Plane's default and maximum `per_page` (`get_per_page(1000, 1000)` in its paginator).
pub(crate) const PLANE_MAX_PER_PAGE: u32 = 1000;

/// One parsed HTTP request.
#[derive(Clone, Debug, Default)]
pub(crate) struct Request {
    pub method: String,
    /// As received (percent-encoded), without the query.
    pub path: String,
    /// As received, without the `?`.
    pub query: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    /// A header value by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .rev()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One HTTP response, before the server adds `Date`, `Content-Length` and `Connection`.
#[derive(Clone, Debug)]
pub(crate) struct Response {
    pub status: u16,
    pub content_type: &'static str,
    /// Headers in the order Plane sends them (`Retry-After`, `Allow`, `X-RateLimit-*`).
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    /// The work-item rows a GET rendered, for the cost accounting (`None` for anything else).
    pub served: Option<Served>,
}

impl Response {
    pub fn json(status: u16, body: &Json) -> Response {
        Response {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: body.to_compact().into_bytes(),
            served: None,
        }
    }

    fn empty(status: u16) -> Response {
        Response {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: Vec::new(),
            served: None,
        }
    }

    fn header(mut self, name: &str, value: impl Into<String>) -> Response {
        self.headers.push((name.to_owned(), value.into()));
        self
    }
}

/// DRF's error shape, `{"detail": …}`.
fn detail(status: u16, message: &str) -> Response {
    Response::json(status, &Json::obj().with("detail", Json::str(message)))
}

/// Plane's error shape, `{"error": …}`.
fn error(status: u16, message: &str) -> Response {
    Response::json(status, &Json::obj().with("error", Json::str(message)))
}

/// `ObjectDoesNotExist`, as `BaseAPIView.handle_exception` answers it.
fn does_not_exist() -> Response {
    error(404, "The requested resource does not exist.")
}

/// Any other uncaught exception (an unknown `order_by` field, a `per_page=0` division by zero).
fn server_error() -> Response {
    error(500, "Something went wrong please try again later")
}

/// The body of Plane's 429.
pub(crate) fn rate_limited_body() -> Json {
    Json::obj()
        .with("error_code", Json::Int(5900))
        .with("error_message", Json::str("RATE_LIMIT_EXCEEDED"))
}

/// The sliding-window throttle of DRF's `SimpleRateThrottle`, per API key.
#[derive(Debug)]
pub(crate) struct Throttle {
    /// Requests per window; `None` = unlimited, and then no `X-RateLimit-*` headers.
    pub limit: Option<u32>,
    pub window: Duration,
    /// Newest first, like DRF's cached history.
    history: HashMap<String, VecDeque<Instant>>,
}

impl Throttle {
    pub fn new(limit: Option<u32>) -> Throttle {
        Throttle {
            limit,
            window: Duration::from_secs(60),
            history: HashMap::new(),
        }
    }

    /// Lets a request through (returning its `X-RateLimit-*` headers) or answers 429.
    fn check(&mut self, key: &str) -> Result<Vec<(String, String)>, Response> {
        let Some(limit) = self.limit else {
            return Ok(Vec::new());
        };
        let now = Instant::now();
        let history = self.history.entry(key.to_owned()).or_default();
        while history
            .back()
            .is_some_and(|oldest| now.duration_since(*oldest) >= self.window)
        {
            history.pop_back();
        }
        if history.len() >= limit as usize {
            // DRF's `wait()`: the time until the oldest request leaves the window, shared among
            // the requests still available (one, normally). None available (the limit was
            // lowered below the history) gives no wait and so no Retry-After at all.
            let remaining = history.back().map_or(self.window, |oldest| {
                self.window.saturating_sub(now.duration_since(*oldest))
            });
            let available = i64::from(limit) - history.len() as i64 + 1;
            let mut response = Response::json(429, &rate_limited_body());
            if available > 0 {
                let wait = (remaining.as_secs_f64() / available as f64).ceil() as u64;
                response = response.header("Retry-After", wait.to_string());
            }
            return Err(response);
        }
        history.push_front(now);
        let remaining = limit as usize - history.len();
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let reset = (epoch + self.window).as_secs();
        Ok(vec![
            ("X-RateLimit-Remaining".to_owned(), remaining.to_string()),
            ("X-RateLimit-Reset".to_owned(), reset.to_string()),
        ])
    }
}

/// The query string, decoded; `get` returns the last value like Django's `QueryDict.get`.
struct Query(Vec<(String, String)>);

impl Query {
    fn parse(raw: &str) -> Query {
        Query(
            raw.split('&')
                .filter(|pair| !pair.is_empty())
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    (form_decode(k), form_decode(v))
                })
                .collect(),
        )
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A comma list (`fields`, `expand`): empty items dropped, nothing trimmed.
    fn list(&self, name: &str) -> Vec<String> {
        self.get(name)
            .unwrap_or_default()
            .split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    }

    fn shape(&self) -> Shape {
        let fields = self.list("fields");
        Shape {
            fields: (!fields.is_empty()).then_some(fields),
            expand: self.list("expand"),
        }
    }
}

fn percent_decode(s: &str, plus_is_space: bool) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3])
                    .ok()
                    .and_then(|h| u8::from_str_radix(h, 16).ok());
                match hex {
                    Some(b) => {
                        out.push(b);
                        i += 3;
                        continue;
                    }
                    None => out.push(b'%'),
                }
            }
            b'+' if plus_is_space => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn form_decode(s: &str) -> String {
    percent_decode(s, true)
}

/// Python's `int(str)`: surrounding whitespace, an optional sign, digits with single `_`
/// between them. Saturates instead of growing without bound.
fn python_int(s: &str) -> Option<i128> {
    let s = s.trim();
    let (negative, digits) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    if digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let mut value: i128 = 0;
    for c in digits.chars().filter(|c| *c != '_') {
        let d = c.to_digit(10)?;
        value = value.saturating_mul(10).saturating_add(i128::from(d));
    }
    Some(if negative { -value } else { value })
}

/// A pagination cursor `value:page:is_prev` (Plane's `Cursor.from_string`).
struct Cursor {
    value: f64,
    page: i128,
    is_prev: bool,
}

impl Cursor {
    fn parse(s: &str) -> Option<Cursor> {
        let bits: Vec<&str> = s.split(':').collect();
        let [value, page, is_prev] = bits[..] else {
            return None;
        };
        let value = if value.contains('.') {
            value.trim().parse::<f64>().ok()?
        } else {
            python_int(value)? as f64
        };
        Some(Cursor {
            value,
            page: python_int(page)?,
            is_prev: python_int(is_prev)? != 0,
        })
    }
}

/// Plane's `BasePaginator.paginate` with `OffsetPaginator` (default and maximum `max_per_page`
/// a page: 1000 in CE, `get_per_page(max, max)`), over rows already filtered and ordered.
/// Errors happen where Plane's happen, including the 400 naming the maximum, the 500 of
/// `per_page=0` (a division by zero) and of Django's refusal of negative slices.
fn paginate<T>(
    query: &Query,
    max_per_page: u32,
    rows: &[T],
    render: impl Fn(&T) -> Json,
) -> Result<Json, Response> {
    let max = i128::from(max_per_page);
    let per_page = match query.get("per_page") {
        None => max,
        Some(raw) => python_int(raw).ok_or_else(|| detail(400, "Invalid per_page parameter."))?,
    };
    if per_page > max {
        return Err(detail(
            400,
            &format!("Invalid per_page value. Cannot exceed {max}."),
        ));
    }
    let default_cursor = format!("{per_page}:0:0");
    let cursor = Cursor::parse(query.get("cursor").unwrap_or(&default_cursor))
        .ok_or_else(|| detail(400, "Invalid cursor parameter."))?;
    let limit = per_page;
    let offset = cursor.page.saturating_mul(limit);
    if offset < 0 {
        return Err(detail(400, "Error in parsing"));
    }
    if limit < 0 || (cursor.is_prev && cursor.value != limit as f64 && limit + 1 > 0) {
        // "Negative indexing is not supported." from Django's QuerySet slicing.
        return Err(server_error());
    }
    let total = rows.len() as i128;
    if limit == 0 && total > 0 {
        return Err(server_error());
    }
    let start = offset.min(total) as usize;
    let end = offset.saturating_add(limit).min(total) as usize;
    let results: Vec<Json> = rows[start..end].iter().map(render).collect();
    let has_next = total - offset > limit;
    let total_pages = if total > 0 {
        (total + limit - 1) / limit
    } else {
        0
    };
    Ok(Json::obj()
        .with("grouped_by", Json::Null)
        .with("sub_grouped_by", Json::Null)
        .with("total_count", Json::Int(total as i64))
        .with(
            "next_cursor",
            Json::str(format!("{limit}:{}:0", cursor.page.saturating_add(1))),
        )
        .with(
            "prev_cursor",
            Json::str(format!("{limit}:{}:1", cursor.page.saturating_sub(1))),
        )
        .with("next_page_results", Json::Bool(has_next))
        .with("prev_page_results", Json::Bool(cursor.page > 0))
        .with("count", Json::Int(results.len() as i64))
        .with("total_pages", Json::Int(total_pages as i64))
        .with("total_results", Json::Int(total as i64))
        .with("extra_stats", Json::Null)
        .with("results", Json::Arr(results)))
}

/// The v1 routes the simulator serves (paths under `/api/v1/`, Django `path()` converters:
/// `<str:>` is one non-empty segment, `<uuid:>` a lowercase UUID).
#[derive(Clone, Debug, PartialEq)]
enum Route {
    Me,
    Projects {
        slug: String,
    },
    Project {
        slug: String,
        project: String,
    },
    WorkItems {
        slug: String,
        project: String,
    },
    WorkItem {
        slug: String,
        project: String,
        issue: String,
    },
    WorkItemByKey {
        slug: String,
        identifier: String,
        sequence: String,
    },
    States {
        slug: String,
        project: String,
    },
    Labels {
        slug: String,
        project: String,
    },
    WorkspaceMembers {
        slug: String,
    },
    ProjectMembers {
        slug: String,
        project: String,
    },
}

impl Route {
    fn resolve(path: &str) -> Option<Route> {
        let rest = path.strip_prefix("/api/v1/")?.strip_suffix('/')?;
        let segments: Vec<&str> = rest.split('/').collect();
        if segments.iter().any(|s| s.is_empty()) {
            return None;
        }
        let own = |s: &str| s.to_owned();
        let items = |s: &str| s == "work-items" || s == "issues";
        Some(match segments[..] {
            ["users", "me"] => Route::Me,
            ["workspaces", slug, "projects"] => Route::Projects { slug: own(slug) },
            ["workspaces", slug, "members"] => Route::WorkspaceMembers { slug: own(slug) },
            ["workspaces", slug, "projects", project] if is_uuid(project) => Route::Project {
                slug: own(slug),
                project: own(project),
            },
            ["workspaces", slug, "projects", project, kind] if is_uuid(project) => {
                let (slug, project) = (own(slug), own(project));
                match kind {
                    k if items(k) => Route::WorkItems { slug, project },
                    "states" => Route::States { slug, project },
                    "labels" => Route::Labels { slug, project },
                    "members" | "project-members" => Route::ProjectMembers { slug, project },
                    _ => return None,
                }
            }
            ["workspaces", slug, "projects", project, kind, issue]
                if is_uuid(project) && items(kind) && is_uuid(issue) =>
            {
                Route::WorkItem {
                    slug: own(slug),
                    project: own(project),
                    issue: own(issue),
                }
            }
            // `<str:project_identifier>-<str:issue_identifier>`: the regex is greedy, so the
            // split is on the last `-`. The `search/` route (not simulated) has no `-`.
            ["workspaces", slug, kind, key] if items(kind) => {
                let (identifier, sequence) = key.rsplit_once('-')?;
                if identifier.is_empty() || sequence.is_empty() {
                    return None;
                }
                Route::WorkItemByKey {
                    slug: own(slug),
                    identifier: own(identifier),
                    sequence: own(sequence),
                }
            }
            _ => return None,
        })
    }

    /// The view's `http_method_names`, as its `Allow` header lists them.
    fn allow(&self) -> &'static str {
        match self {
            Route::Me | Route::WorkItemByKey { .. } | Route::WorkspaceMembers { .. } => "GET",
            Route::Projects { .. }
            | Route::WorkItems { .. }
            | Route::States { .. }
            | Route::Labels { .. }
            | Route::ProjectMembers { .. } => "GET, POST",
            Route::Project { .. } | Route::WorkItem { .. } => "GET, PATCH, DELETE",
        }
    }
}

/// Django's `<uuid:>` converter.
fn is_uuid(s: &str) -> bool {
    s.len() == 36
        && s.bytes().enumerate().all(|(i, b)| match i {
            8 | 13 | 18 | 23 => b == b'-',
            _ => b.is_ascii_digit() || (b'a'..=b'f').contains(&b),
        })
}

/// Answers one request against the world; list answers hold at most `max_per_page` items.
pub(crate) fn handle(
    world: &mut World,
    throttle: &mut Throttle,
    max_per_page: u32,
    request: &Request,
) -> Response {
    let path = percent_decode(&request.path, false);
    let Some(route) = Route::resolve(&path) else {
        let with_slash = format!("{path}/");
        if !path.ends_with('/') && Route::resolve(&with_slash).is_some() {
            let query = if request.query.is_empty() {
                String::new()
            } else {
                format!("?{}", request.query)
            };
            let mut redirect =
                Response::empty(301).header("Location", format!("{}/{query}", request.path));
            redirect.content_type = "text/html; charset=utf-8";
            return redirect;
        }
        // Django's handler404 (`JsonResponse`, so Python's default separators).
        let body = Json::obj().with("error", Json::str("Page not found."));
        let mut response = Response::json(404, &body);
        response.body = body.to_python_default().into_bytes();
        return response;
    };
    let mut response = answer(world, throttle, max_per_page, request, &route);
    let at = response
        .headers
        .iter()
        .position(|(k, _)| k != "Retry-After")
        .unwrap_or(response.headers.len());
    response
        .headers
        .insert(at, ("Allow".to_owned(), route.allow().to_owned()));
    response
}

fn answer(
    world: &mut World,
    throttle: &mut Throttle,
    max_per_page: u32,
    request: &Request,
    route: &Route,
) -> Response {
    // Authentication (APIKeyAuthentication): no key → anonymous → NotAuthenticated → 401;
    // an unknown key → AuthenticationFailed → 403.
    let Some(key) = request.header("X-Api-Key").filter(|k| !k.is_empty()) else {
        return detail(401, "Authentication credentials were not provided.");
    };
    if key != world.token {
        return detail(403, "Given API token is not valid");
    }
    if !permitted(world, route) {
        return detail(403, "You do not have permission to perform this action.");
    }
    let rate_headers = match throttle.check(key) {
        Ok(headers) => headers,
        Err(too_many) => return too_many,
    };
    let query = Query::parse(&request.query);
    let mut response = match (request.method.as_str(), route) {
        ("GET", route) => get(world, route, &query, max_per_page).unwrap_or_else(|e| e),
        ("PATCH", Route::WorkItem { project, issue, .. }) => {
            patch_issue(world, project, issue, &request.body)
        }
        ("DELETE", Route::WorkItem { project, issue, .. }) => delete_issue(world, project, issue),
        (method, _) => detail(405, &format!("Method \"{method}\" not allowed.")),
    };
    response.headers.extend(rate_headers);
    response
}

/// Plane's permission classes: `ProjectBasePermission` (workspace membership) for projects,
/// `WorkSpaceAdminPermission` (workspace role Admin or Member: not Guest) for the workspace
/// members, `ProjectEntityPermission` and `ProjectMemberPermission` (active project
/// membership, by id or by identifier) for the rest.
fn permitted(world: &World, route: &Route) -> bool {
    let member_of = |project: &SeedProject| project.is_member;
    match route {
        Route::Me => true,
        Route::Projects { slug } | Route::Project { slug, .. } => *slug == world.workspace,
        Route::WorkspaceMembers { slug } => {
            *slug == world.workspace && matches!(world.owner().role, Some(ROLE_ADMIN | ROLE_MEMBER))
        }
        Route::WorkItems { slug, project }
        | Route::WorkItem { slug, project, .. }
        | Route::States { slug, project }
        | Route::Labels { slug, project }
        | Route::ProjectMembers { slug, project } => {
            *slug == world.workspace
                && world
                    .projects
                    .iter()
                    .any(|p| p.id == *project && member_of(p))
        }
        Route::WorkItemByKey {
            slug, identifier, ..
        } => {
            *slug == world.workspace
                && world
                    .projects
                    .iter()
                    .any(|p| p.identifier == *identifier && member_of(p))
        }
    }
}

fn project_by_id<'w>(world: &'w World, id: &str) -> &'w SeedProject {
    world
        .projects
        .iter()
        .find(|p| p.id == id)
        .expect("the permission check found this project")
}

fn get(
    world: &World,
    route: &Route,
    query: &Query,
    max_per_page: u32,
) -> Result<Response, Response> {
    let shape = query.shape();
    // The work-item rows rendered: one for a detail or lookup, a page's for a list.
    let row_kind = RowKind::of(&shape);
    let one_row = Some(Served {
        kind: row_kind,
        rows: 1,
        list: false,
    });
    let mut served = None;
    let body = match route {
        Route::Me => shapes::user_lite(world.owner()),
        Route::Projects { .. } => {
            if query.get("external_id").is_some_and(|v| !v.is_empty())
                && query.get("external_source").is_some_and(|v| !v.is_empty())
            {
                // Seed projects carry no external ids.
                return Err(does_not_exist());
            }
            let visible: Vec<&SeedProject> = world
                .projects
                .iter()
                .filter(|p| p.is_member || p.network == 2)
                .collect();
            let ordered = order_projects(visible, query.get("order_by").unwrap_or("sort_order"))?;
            paginate(query, max_per_page, &ordered, |p| {
                shapes::project(world, p, true, &shape)
            })?
        }
        Route::Project { project, .. } => {
            let project = world
                .projects
                .iter()
                .find(|p| p.id == *project && (p.is_member || p.network == 2))
                .ok_or_else(does_not_exist)?;
            shapes::project(world, project, false, &shape)
        }
        Route::WorkItems { project, .. } => {
            let external_id = query.get("external_id").filter(|v| !v.is_empty());
            let external_source = query.get("external_source").filter(|v| !v.is_empty());
            if let (Some(id), Some(source)) = (external_id, external_source) {
                // `Issue.objects` (not `issue_objects`): only soft-deleted rows are hidden.
                let issue = world
                    .issues
                    .iter()
                    .find(|i| {
                        i.project == *project
                            && i.deleted_at.is_none()
                            && i.external_id.as_deref() == Some(id)
                            && i.external_source.as_deref() == Some(source)
                    })
                    .ok_or_else(does_not_exist)?;
                served = one_row;
                shapes::issue(world, issue, &shape)
            } else {
                let listable: Vec<&SeedIssue> = world
                    .issues
                    .iter()
                    .filter(|i| i.project == *project && world.is_listable(i))
                    .collect();
                let ordered = order_issues(
                    world,
                    listable,
                    query.get("order_by").unwrap_or("-created_at"),
                )?;
                let page = paginate(query, max_per_page, &ordered, |i| {
                    shapes::issue(world, i, &shape)
                })?;
                let rows = page
                    .get("results")
                    .and_then(Json::as_array)
                    .map_or(0, <[Json]>::len);
                served = Some(Served {
                    kind: row_kind,
                    rows: rows as u64,
                    list: true,
                });
                page
            }
        }
        Route::WorkItem { project, issue, .. } => {
            let issue = world
                .issues
                .iter()
                .find(|i| i.id == *issue && i.project == *project && world.is_listable(i))
                .ok_or_else(does_not_exist)?;
            served = one_row;
            shapes::issue(world, issue, &shape)
        }
        Route::WorkItemByKey {
            identifier,
            sequence,
            ..
        } => {
            // Django converts the sequence with `int()`; a ValueError is a 500 in 1.3.1.
            let sequence = python_int(sequence).ok_or_else(server_error)?;
            let issue = world
                .issues
                .iter()
                .find(|i| {
                    i64::try_from(sequence).is_ok_and(|s| s == i.sequence_id)
                        && world.is_listable(i)
                        && world
                            .projects
                            .iter()
                            .any(|p| p.id == i.project && p.identifier == *identifier)
                })
                .ok_or_else(does_not_exist)?;
            served = one_row;
            shapes::issue(world, issue, &shape)
        }
        Route::States { project, .. } => {
            let project = project_by_id(world, project);
            let mut states: Vec<_> = if project.archived_at.is_some() {
                Vec::new()
            } else {
                project
                    .states
                    .iter()
                    .filter(|s| s.group != "triage")
                    .collect()
            };
            // State's model ordering is `sequence`.
            states.sort_by(|a, b| {
                a.sequence
                    .unwrap_or(0.0)
                    .total_cmp(&b.sequence.unwrap_or(0.0))
            });
            paginate(query, max_per_page, &states, |s| {
                shapes::state(world, project, s, &shape)
            })?
        }
        // Bare arrays, not paginated; `fields`/`expand` do not apply (the views build the list
        // themselves). Both are ordered newest user first (`-created_at`, captures 60, 61).
        Route::WorkspaceMembers { .. } => Json::Arr(
            world
                .users_newest_first()
                .into_iter()
                .map(shapes::workspace_member)
                .collect(),
        ),
        Route::ProjectMembers { project, .. } => {
            let project = project_by_id(world, project);
            Json::Arr(
                world
                    .users_newest_first()
                    .into_iter()
                    .filter(|u| world.is_project_member(project, &u.id))
                    .map(shapes::user_lite)
                    .collect(),
            )
        }
        Route::Labels { project, .. } => {
            let project = project_by_id(world, project);
            // Inferred from the sibling views: archived projects list no labels.
            let labels = if project.archived_at.is_some() {
                Vec::new()
            } else {
                shapes::labels_newest_first(project)
            };
            paginate(query, max_per_page, &labels, |l| {
                shapes::label(world, project, l, &shape)
            })?
        }
    };
    let mut response = Response::json(200, &body);
    response.served = served;
    Ok(response)
}

/// A value to order rows by. Rows compare only within one field, so variants never mix.
#[derive(Clone, Debug, PartialEq, PartialOrd)]
enum SortKey {
    Num(f64),
    Text(String),
}

fn num(v: impl Into<f64>) -> Option<SortKey> {
    Some(SortKey::Num(v.into()))
}

fn text(v: &str) -> Option<SortKey> {
    Some(SortKey::Text(v.to_owned()))
}

fn time(v: Option<&str>) -> Option<SortKey> {
    v.and_then(clock::parse_timestamp)
        .map(|t| SortKey::Num(t as f64))
}

fn date(v: Option<&str>) -> Option<SortKey> {
    v.and_then(clock::parse_date)
        .map(|d| SortKey::Num(d as f64))
}

/// Orders rows by one key, as PostgreSQL does: NULLs last ascending, first descending. The
/// sort is stable, so ties keep the incoming order.
fn order_by_key<T>(rows: &mut [T], descending: bool, key: impl Fn(&T) -> Option<SortKey>) {
    rows.sort_by(|a, b| {
        let (ka, kb) = (key(a), key(b));
        let ordering = match (&ka, &kb) {
            (None, None) => std::cmp::Ordering::Equal,
            (None, Some(_)) => std::cmp::Ordering::Greater,
            (Some(_), None) => std::cmp::Ordering::Less,
            (Some(x), Some(y)) => x.partial_cmp(y).unwrap_or(std::cmp::Ordering::Equal),
        };
        if descending {
            ordering.reverse()
        } else {
            ordering
        }
    });
}

/// The work-item list's `order_by` (`IssueListCreateAPIEndpoint.get` in 1.3.1): Plane's special
/// orders for priority, state and the many-to-many names, any model field otherwise, and an
/// uncaught `FieldError` (500) for anything else.
fn order_issues<'w>(
    world: &World,
    mut rows: Vec<&'w SeedIssue>,
    order_by: &str,
) -> Result<Vec<&'w SeedIssue>, Response> {
    order_by_key(&mut rows, true, |i| time(i.created_at.as_deref()));
    let (descending, field) = match order_by.strip_prefix('-') {
        Some(field) => (true, field),
        None => (false, order_by),
    };
    let project_of = |i: &SeedIssue| world.projects.iter().find(|p| p.id == i.project);
    let state_of = |i: &SeedIssue| {
        let id = i.state.as_deref()?;
        project_of(i)?.states.iter().find(|s| s.id == id).cloned()
    };
    match field {
        "priority" => {
            let rank = |i: &&SeedIssue| {
                let index = PRIORITIES
                    .iter()
                    .position(|p| *p == i.priority)
                    .unwrap_or(4);
                if descending { 4 - index } else { index }
            };
            rows.sort_by_key(rank);
        }
        "state__name" | "state__group" => {
            const ORDER: [&str; 5] = ["backlog", "unstarted", "started", "completed", "cancelled"];
            let rank = |i: &&SeedIssue| {
                let group = state_of(i).map(|s| s.group);
                let index = ORDER
                    .iter()
                    .position(|g| Some(*g) == group.as_deref())
                    .unwrap_or(ORDER.len());
                match (descending, index) {
                    (true, i) if i < ORDER.len() => ORDER.len() - 1 - i,
                    (_, i) => i,
                }
            };
            rows.sort_by_key(rank);
        }
        "labels__name" => order_by_key(&mut rows, descending, |i| {
            let project = project_of(i)?;
            let names = project.labels.iter().filter(|l| i.labels.contains(&l.id));
            names.map(|l| l.name.clone()).max().map(SortKey::Text)
        }),
        "assignees__first_name" => order_by_key(&mut rows, descending, |i| {
            let names = world.users.iter().filter(|u| i.assignees.contains(&u.id));
            names.map(|u| u.first_name.clone()).max().map(SortKey::Text)
        }),
        _ => {
            let key = issue_field_key(field).ok_or_else(server_error)?;
            order_by_key(&mut rows, descending, |i| key(world, i));
        }
    }
    Ok(rows)
}

type IssueKey = fn(&World, &SeedIssue) -> Option<SortKey>;

/// The sort key of an `Issue` model field (or annotation) by name.
fn issue_field_key(field: &str) -> Option<IssueKey> {
    Some(match field {
        "id" | "pk" => |_, i| text(&i.id),
        "created_at" => |_, i| time(i.created_at.as_deref()),
        "updated_at" => |_, i| time(i.updated_at.as_deref()),
        "completed_at" => |_, i| time(i.completed_at.as_deref()),
        "deleted_at" => |_, i| time(i.deleted_at.as_deref()),
        "start_date" => |_, i| date(i.start_date.as_deref()),
        "target_date" => |_, i| date(i.target_date.as_deref()),
        "archived_at" => |_, i| date(i.archived_at.as_deref()),
        "name" => |_, i| text(&i.name),
        "description_html" => |_, i| text(&i.description_html),
        "sequence_id" => |_, i| num(i.sequence_id as f64),
        "sort_order" => |_, i| num(i.sort_order),
        "is_draft" => |_, i| num(u8::from(i.is_draft)),
        "external_source" => |_, i| i.external_source.as_deref().and_then(text),
        "external_id" => |_, i| i.external_id.as_deref().and_then(text),
        // A relation orders by the related model's ordering; State's is `sequence`.
        "state" => |w, i| {
            let id = i.state.as_deref()?;
            let project = w.projects.iter().find(|p| p.id == i.project)?;
            let state = project.states.iter().find(|s| s.id == id)?;
            state.sequence.and_then(num)
        },
        "state_id" => |_, i| i.state.as_deref().and_then(text),
        "parent" | "parent_id" => |_, i| i.parent.as_deref().and_then(text),
        "created_by" | "created_by_id" => |_, i| i.created_by.as_deref().and_then(text),
        "updated_by" | "updated_by_id" => |_, i| i.updated_by.as_deref().and_then(text),
        "project" | "project_id" => |_, i| text(&i.project),
        "workspace" | "workspace_id" => |w, _| text(&w.workspace_id),
        "point" | "estimate_point" | "estimate_point_id" | "type" | "type_id" | "cycle_id" => {
            |_, _| None
        }
        "link_count" | "attachment_count" => |_, _| num(0),
        "sub_issues_count" => |w, i| {
            let children = w
                .issues
                .iter()
                .filter(|c| c.parent.as_deref() == Some(&i.id) && w.is_listable(c));
            num(children.count() as f64)
        },
        _ => return None,
    })
}

/// The project list's `order_by` (default `sort_order`, the member's own order).
fn order_projects<'w>(
    mut rows: Vec<&'w SeedProject>,
    order_by: &str,
) -> Result<Vec<&'w SeedProject>, Response> {
    let (descending, field) = match order_by.strip_prefix('-') {
        Some(field) => (true, field),
        None => (false, order_by),
    };
    let key: fn(&SeedProject) -> Option<SortKey> = match field {
        "id" | "pk" => |p| text(&p.id),
        "name" => |p| text(&p.name),
        "identifier" => |p| text(&p.identifier),
        "description" => |p| text(&p.description),
        "created_at" => |p| time(p.created_at.as_deref()),
        "updated_at" => |p| time(p.updated_at.as_deref()),
        "archived_at" => |p| time(p.archived_at.as_deref()),
        "network" => |p| num(p.network as f64),
        "sort_order" => |p| p.sort_order.and_then(num),
        "member_role" => |p| p.member_role.and_then(|r| num(r as f64)),
        "is_member" => |p| num(u8::from(p.is_member)),
        "total_members" => |p| num(p.total_members as f64),
        "emoji" => |p| p.emoji.as_deref().and_then(text),
        _ => return Err(server_error()),
    };
    order_by_key(&mut rows, descending, |p| key(p));
    Ok(rows)
}

/// `PATCH …/work-items/{id}/` with the fields a sync tool or a test edits: name,
/// description_html, priority, state, labels, assignees, start_date, target_date, sort_order,
/// external_id, external_source. Others are ignored (read-only or not simulated).
fn patch_issue(world: &mut World, project_id: &str, issue_id: &str, body: &[u8]) -> Response {
    // `Issue.objects`: archived, draft and triage issues can be patched; deleted ones cannot.
    let Some(index) = world
        .issues
        .iter()
        .position(|i| i.id == issue_id && i.project == project_id && i.deleted_at.is_none())
    else {
        return does_not_exist();
    };
    let data = if body.iter().all(u8::is_ascii_whitespace) {
        Json::obj()
    } else {
        match std::str::from_utf8(body)
            .map_err(|e| e.to_string())
            .and_then(|text| Json::parse(text).map_err(|e| e.to_string()))
        {
            Ok(data) => data,
            Err(e) => return detail(400, &format!("JSON parse error - {e}")),
        }
    };
    let Json::Obj(entries) = &data else {
        let body = Json::obj().with(
            "non_field_errors",
            Json::Arr(vec![Json::str(
                "Invalid data. Expected a dictionary, but got list.",
            )]),
        );
        return Response::json(400, &body);
    };
    let project = project_by_id(world, project_id).clone();
    let mut issue = world.issues[index].clone();
    let mut errors = Json::obj();
    let mut fail = |field: &str, message: String| {
        errors.set(field, Json::Arr(vec![Json::Str(message)]));
    };
    let mut new_state: Option<Option<String>> = None;
    for (key, value) in entries {
        match (key.as_str(), value) {
            ("name", Json::Str(s)) if s.trim().is_empty() => {
                fail("name", "This field may not be blank.".to_owned());
            }
            ("name", Json::Str(s)) if s.chars().count() > 255 => fail(
                "name",
                "Ensure this field has no more than 255 characters.".to_owned(),
            ),
            ("name", Json::Str(s)) => issue.name = s.clone(),
            ("name", _) => fail("name", "Not a valid string.".to_owned()),
            ("description_html", Json::Str(s)) => issue.description_html = s.clone(),
            ("description_html", _) => fail("description_html", "Not a valid string.".to_owned()),
            ("priority", Json::Str(s)) if PRIORITIES.contains(&s.as_str()) => {
                issue.priority = s.clone();
            }
            ("priority", v) => fail(
                "priority",
                format!(
                    "\"{}\" is not a valid choice.",
                    v.as_str().unwrap_or_default()
                ),
            ),
            ("state", Json::Null) => new_state = Some(None),
            ("state", Json::Str(id)) => {
                let anywhere = world
                    .projects
                    .iter()
                    .any(|p| p.states.iter().any(|s| s.id == *id));
                if anywhere {
                    new_state = Some(Some(id.clone()));
                } else {
                    fail(
                        "state",
                        format!("Invalid pk \"{id}\" - object does not exist."),
                    );
                }
            }
            ("state", _) => fail("state", "Incorrect type.".to_owned()),
            ("labels", Json::Arr(ids)) => {
                let known = |id: &str| project.labels.iter().any(|l| l.id == id);
                match ids.iter().map(|v| v.as_str()).collect::<Option<Vec<_>>>() {
                    Some(ids) => {
                        issue.labels = ids
                            .into_iter()
                            .filter(|id| known(id))
                            .map(str::to_owned)
                            .collect()
                    }
                    None => fail("labels", "Incorrect type.".to_owned()),
                }
            }
            ("assignees", Json::Arr(ids)) => {
                let users = &world.users;
                match ids.iter().map(|v| v.as_str()).collect::<Option<Vec<_>>>() {
                    Some(ids) => {
                        issue.assignees = ids
                            .into_iter()
                            .filter(|id| users.iter().any(|u| u.id == *id))
                            .map(str::to_owned)
                            .collect();
                    }
                    None => fail("assignees", "Incorrect type.".to_owned()),
                }
            }
            ("labels" | "assignees", _) => fail(key, "Expected a list of items.".to_owned()),
            ("start_date" | "target_date", Json::Null) => set_date(&mut issue, key, None),
            ("start_date" | "target_date", Json::Str(d)) if clock::parse_date(d).is_some() => {
                set_date(&mut issue, key, Some(d.clone()));
            }
            ("start_date" | "target_date", _) => fail(
                key,
                "Date has wrong format. Use one of these formats instead: YYYY-MM-DD.".to_owned(),
            ),
            ("sort_order", Json::Int(n)) => issue.sort_order = *n as f64,
            ("sort_order", Json::Float(f)) => issue.sort_order = *f,
            ("sort_order", _) => fail("sort_order", "A valid number is required.".to_owned()),
            ("external_id", v) => issue.external_id = v.as_str().map(str::to_owned),
            ("external_source", v) => issue.external_source = v.as_str().map(str::to_owned),
            _ => {}
        }
    }
    if !errors.keys().is_empty() {
        return Response::json(400, &errors);
    }
    // `IssueSerializer.validate`: only dates both present in this request are compared.
    let start = data.get("start_date").and_then(Json::as_str);
    let target = data.get("target_date").and_then(Json::as_str);
    if let (Some(start), Some(target)) = (start, target)
        && clock::parse_date(start) > clock::parse_date(target)
    {
        return non_field_error("Start date cannot exceed target date");
    }
    if let Some(Some(state)) = &new_state
        && !project.states.iter().any(|s| s.id == *state)
    {
        return non_field_error("State is not valid please pass a valid state_id");
    }
    let group_of = |state: &Option<String>| {
        project
            .states
            .iter()
            .find(|s| Some(&s.id) == state.as_ref())
            .map(|s| s.group.clone())
    };
    let now = world.now();
    if let Some(state) = new_state {
        // `Issue.save()` gives a state-less issue the project's default state.
        let state = state.or_else(|| {
            project
                .states
                .iter()
                .find(|s| s.default)
                .map(|s| s.id.clone())
        });
        let was_completed = group_of(&issue.state).as_deref() == Some("completed");
        let is_completed = group_of(&state).as_deref() == Some("completed");
        if is_completed && !was_completed {
            issue.completed_at = Some(now.clone());
        } else if !is_completed {
            issue.completed_at = None;
        }
        issue.state = state;
    }
    issue.updated_at = Some(now);
    issue.updated_by = Some(world.owner().id.clone());
    world.issues[index] = issue;
    Response::json(
        200,
        &shapes::issue(world, &world.issues[index], &Shape::default()),
    )
}

fn set_date(issue: &mut SeedIssue, field: &str, value: Option<String>) {
    if field == "start_date" {
        issue.start_date = value;
    } else {
        issue.target_date = value;
    }
}

fn non_field_error(message: &str) -> Response {
    let body = Json::obj().with("non_field_errors", Json::Arr(vec![Json::str(message)]));
    Response::json(400, &body)
}

/// `DELETE …/work-items/{id}/`: a soft delete, 204.
fn delete_issue(world: &mut World, project_id: &str, issue_id: &str) -> Response {
    let Some(index) = world
        .issues
        .iter()
        .position(|i| i.id == issue_id && i.project == project_id && i.deleted_at.is_none())
    else {
        return does_not_exist();
    };
    world.issues[index].deleted_at = Some(world.now());
    Response::empty(204)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_follow_django_patterns() {
        let p = "8063616e-4508-4635-b20d-f71dd7c779d3";
        assert_eq!(Route::resolve("/api/v1/users/me/"), Some(Route::Me));
        assert!(matches!(
            Route::resolve(&format!("/api/v1/workspaces/acme/projects/{p}/issues/")),
            Some(Route::WorkItems { .. })
        ));
        assert_eq!(
            Route::resolve("/api/v1/workspaces/acme/work-items/MY-APP-12/"),
            Some(Route::WorkItemByKey {
                slug: "acme".into(),
                identifier: "MY-APP".into(),
                sequence: "12".into()
            })
        );
        assert_eq!(Route::resolve("/api/v1/users/me"), None);
        assert_eq!(
            Route::resolve(
                "/api/v1/workspaces/acme/projects/8063616E-4508-4635-b20d-f71dd7c779d3/"
            ),
            None
        );
        assert_eq!(
            Route::resolve("/api/v1/workspaces/acme/work-items/search/"),
            None
        );
    }

    #[test]
    fn python_int_and_cursor() {
        assert_eq!(python_int(" 12 "), Some(12));
        assert_eq!(python_int("1_000"), Some(1000));
        assert_eq!(python_int("-3"), Some(-3));
        assert_eq!(python_int("2.5"), None);
        assert_eq!(python_int(""), None);
        let c = Cursor::parse("2:1:0").unwrap();
        assert_eq!((c.value, c.page, c.is_prev), (2.0, 1, false));
        assert!(Cursor::parse("garbage").is_none());
        assert!(Cursor::parse("2:x:0").is_none());
        assert!(Cursor::parse("2.5:1:1").is_some());
    }

    #[test]
    fn pages_follow_the_requests_per_page_up_to_the_servers_cap() {
        let rows: Vec<i64> = (0..250).collect();
        let page = |raw: &str, max: u32| {
            paginate(&Query::parse(raw), max, &rows, |n| Json::Int(*n))
                .map(|json| json.to_compact())
                .map_err(|refused| (refused.status, String::from_utf8(refused.body).unwrap()))
        };
        // CE: 1000 is accepted, 1001 refused naming the cap.
        assert!(
            page("per_page=1000", 1000)
                .unwrap()
                .contains(r#""count":250"#)
        );
        assert_eq!(
            page("per_page=1001", 1000).unwrap_err(),
            (
                400,
                r#"{"detail":"Invalid per_page value. Cannot exceed 1000."}"#.into()
            )
        );
        // A server capped at 100 refuses 1000 the same way, and pages by the request's per_page.
        assert_eq!(
            page("per_page=1000", 100).unwrap_err(),
            (
                400,
                r#"{"detail":"Invalid per_page value. Cannot exceed 100."}"#.into()
            )
        );
        let second = page("per_page=100&cursor=100:1:0", 100).unwrap();
        assert!(second.contains(r#""next_cursor":"100:2:0""#), "{second}");
        assert!(second.contains(r#""results":[100,"#), "{second}");
        // Without per_page, a page holds the cap.
        assert!(page("", 100).unwrap().contains(r#""count":100"#));
    }

    #[test]
    fn throttle_counts_and_refuses() {
        let mut t = Throttle::new(Some(2));
        let first = t.check("k").unwrap();
        assert_eq!(first[0], ("X-RateLimit-Remaining".into(), "1".into()));
        assert_eq!(t.check("k").unwrap()[0].1, "0");
        let refused = t.check("k").unwrap_err();
        assert_eq!(refused.status, 429);
        assert_eq!(refused.headers[0], ("Retry-After".into(), "60".into()));
        // Another key has its own window.
        assert!(t.check("other").is_ok());
    }

    #[test]
    fn percent_decoding() {
        assert_eq!(percent_decode("a%2Cb+c%", true), "a,b c%");
        assert_eq!(percent_decode("a+b", false), "a+b");
    }
}
