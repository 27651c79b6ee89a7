//! Is the Plane simulator faithful? Every GET captured from a real Plane server
//! (`tests/fixtures/plane/api/`) is replayed against a simulator seeded with the same world, and
//! status, body (key order and byte length included) and the telling headers must match. The
//! rest pins the behaviour `shared/plane-api.md` documents beyond the captures: exclusions,
//! ordering, `fields`/`expand`, paging edge cases, auth, the rate limit (also under concurrent
//! clients) and fault injection.
//!
//! The HTTP client here is a few lines of `std::net`, so the simulator is judged on the bytes
//! it sends, not on what a client library forgives.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use calplanebot_testbed::plane_sim::json::Json;
use calplanebot_testbed::plane_sim::{
    CostModel, Fault, FaultRule, PlaneSim, ROLE_GUEST, ROLE_MEMBER, Seed, SeedIssue, SeedProject,
    SeedState, SeedUser, Workers,
};

// ---------------------------------------------------------------------------------------------
// A tiny HTTP client.

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Json {
        let text = std::str::from_utf8(&self.body).expect("UTF-8 body");
        Json::parse(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
    }

    fn text(&self) -> &str {
        std::str::from_utf8(&self.body).unwrap()
    }
}

/// Sends one request on a fresh connection and reads until the server closes it.
fn send(sim: &PlaneSim, method: &str, target: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let base = sim.base_url();
    let addr = base.strip_prefix("http://").unwrap();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    let mut head =
        format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\n");
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !body.is_empty() {
        head.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    head.push_str("\r\n");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(body.as_bytes()).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .expect("a response head");
    let head = std::str::from_utf8(&raw[..split]).unwrap();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap();
    let status = status_line.split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .map(|l| {
            let (k, v) = l.split_once(':').unwrap();
            (k.trim().to_owned(), v.trim().to_owned())
        })
        .collect();
    Reply {
        status,
        headers,
        body: raw[split + 4..].to_vec(),
    }
}

fn get_with_key(sim: &PlaneSim, target: &str, key: &str) -> Reply {
    send(sim, "GET", target, &[("X-Api-Key", key)], "")
}

fn get(sim: &PlaneSim, target: &str) -> Reply {
    let reply = get_with_key(sim, target, &sim.token());
    // Every answer of the live deployment closes the connection and is JSON.
    assert_eq!(reply.header("connection"), Some("close"), "{target}");
    assert_eq!(
        reply.header("content-length"),
        Some(reply.body.len().to_string().as_str())
    );
    reply
}

// ---------------------------------------------------------------------------------------------
// The lab world the captures were taken from.

const ALPHA: &str = "8063616e-4508-4635-b20d-f71dd7c779d3";
const BETA: &str = "2f843118-1eeb-4d94-a92e-44c32c03bddc";
const GAMMA: &str = "bcefa3a3-ead4-4c43-b915-d3966e01acac";
const USER: &str = "9be036ed-f8f9-4d2c-a2bb-a38f3d9b2105";
const BACKLOG: &str = "00cbf0d2-f58d-491f-9ce1-c2a99eba5d9a";
const DONE: &str = "20ae997a-3434-4803-9b41-ad11749d8e0d";
const FIX_LOGIN: &str = "873ca394-d0d9-4286-be60-f3e2f7a8a7b6";
const SHIP_CALDAV: &str = "9d577c4e-d35e-4940-9f10-02bd22540b3b";
const DELETED: &str = "eaeb2141-cea1-4b9b-9d94-f3e86d9d5c1b";

/// The world of the captures, rebuilt from what they show (ids, names, timestamps).
fn lab_seed() -> Seed {
    Seed::lab()
}

fn lab_sim() -> PlaneSim {
    PlaneSim::start(lab_seed()).expect("simulator starts")
}

/// The lab world plus the project the paging-error captures (`27-*`) were taken in.
fn lab_sim_with_gamma() -> PlaneSim {
    let mut seed = lab_seed();
    seed.projects.push(SeedProject {
        id: GAMMA.to_owned(),
        identifier: "GAMMA".to_owned(),
        name: "Gamma Paging".to_owned(),
        ..SeedProject::default()
    });
    PlaneSim::start(seed).unwrap()
}

// ---------------------------------------------------------------------------------------------
// The captures.

struct Capture {
    method: String,
    target: String,
    /// The `X-API-Key` the capture sent (`<lab token>` = the valid one).
    key: Option<String>,
    status: u16,
    headers: Vec<(String, String)>,
    body: Json,
}

impl Capture {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/plane/api")
}

fn capture(name: &str) -> Capture {
    let path = fixtures_dir().join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    let json = Json::parse(&text).unwrap();
    let request = json.get("request").unwrap();
    let response = json.get("response").unwrap();
    let url = request.get("url").unwrap().as_str().unwrap();
    let target = url
        .strip_prefix("http://127.0.0.1:18000")
        .unwrap()
        .to_owned();
    let key = request
        .get("headers")
        .unwrap()
        .get("X-API-Key")
        .and_then(Json::as_str)
        .map(str::to_owned);
    let headers = response
        .get("headers")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| {
            let pair = pair.as_array().unwrap();
            (
                pair[0].as_str().unwrap().to_owned(),
                pair[1].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    Capture {
        method: request.get("method").unwrap().as_str().unwrap().to_owned(),
        target,
        key,
        status: response.get("status").unwrap().as_i64().unwrap() as u16,
        headers,
        body: response.get("body").unwrap().clone(),
    }
}

/// Sends the captured request to the simulator and compares the answers.
fn replay(sim: &PlaneSim, name: &str) {
    let capture = capture(name);
    let key = match capture.key.as_deref() {
        Some("<lab token>") => Some(sim.token()),
        other => other.map(str::to_owned),
    };
    let headers: Vec<(&str, &str)> = key.iter().map(|k| ("X-API-Key", k.as_str())).collect();
    let reply = send(sim, &capture.method, &capture.target, &headers, "");
    assert_eq!(
        reply.status,
        capture.status,
        "{name}: status; body {}",
        reply.text()
    );
    assert_eq!(reply.json(), capture.body, "{name}: body");
    // Same bytes on the wire: compact separators, Python float and string forms.
    assert_eq!(
        reply.header("Content-Length"),
        capture.header("Content-Length"),
        "{name}: Content-Length"
    );
    for header in ["Content-Type", "Allow", "Connection", "Retry-After"] {
        assert_eq!(
            reply.header(header),
            capture.header(header),
            "{name}: {header}"
        );
    }
    for header in ["X-RateLimit-Remaining", "X-RateLimit-Reset"] {
        assert_eq!(
            reply.header(header).is_some(),
            capture.header(header).is_some(),
            "{name}: presence of {header}"
        );
    }
}

#[test]
fn lab_captures_are_reproduced_exactly() {
    let sim = lab_sim();
    for name in [
        "02-states-list.json",
        "10-projects-list.json",
        "10-project-detail.json",
        "11-work-items-list.json",
        "12-work-items-list-expand.json",
        "13-work-items-page1-per_page2.json",
        "13-work-items-page2.json",
        "13-work-items-page3-last.json",
        "14-work-item-detail-expand.json",
        "15-work-item-by-identifier-ALPHA-1.json",
        "16-deleted-work-item-404.json",
        "17-labels-list.json",
        "20-no-key-401.json",
        "21-bad-key.json",
        "22-unknown-project.json",
        "25-users-me.json",
    ] {
        replay(&sim, name);
    }
}

#[test]
fn paging_error_captures_are_reproduced_exactly() {
    let sim = lab_sim_with_gamma();
    replay(&sim, "27-invalid-cursor.json");
    replay(&sim, "27-per_page-5000.json");
}

#[test]
fn the_patch_capture_is_reproduced_apart_from_the_clock() {
    let capture = capture("05-patch-state-completed.json");
    let sim = lab_sim();
    sim.with_world(|w| {
        let issue = w.issue_mut_keep_updated_at(FIX_LOGIN);
        issue.state = Some(BACKLOG.to_owned());
        issue.completed_at = None;
    });
    let reply = send(
        &sim,
        "PATCH",
        &capture.target,
        &[("X-API-Key", &sim.token())],
        &format!(r#"{{"state": "{DONE}"}}"#),
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    let mut got = reply.json();
    let mut want = capture.body.clone();
    assert_eq!(got.keys(), want.keys());
    for stamp in ["updated_at", "completed_at"] {
        let value = got.get(stamp).and_then(Json::as_str).unwrap().to_owned();
        assert!(value.as_str() > "2026-11-22T03:46:11", "{stamp} = {value}");
        got.set(stamp, Json::Null);
        want.set(stamp, Json::Null);
    }
    assert_eq!(got, want);
    assert_eq!(reply.header("Allow"), capture.header("Allow"));
    // The list now shows the change.
    let listed = get(
        &sim,
        &format!("/api/v1/workspaces/acme/projects/{ALPHA}/work-items/"),
    );
    let results = listed.json();
    let fix = results
        .get("results")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i.get("id").and_then(Json::as_str) == Some(FIX_LOGIN))
        .unwrap()
        .clone();
    assert_eq!(fix.get("state").and_then(Json::as_str), Some(DONE));
}

#[test]
fn rate_limit_captures_are_reproduced() {
    let mut seed = lab_seed();
    seed.rate_limit_per_minute = Some(5);
    let sim = PlaneSim::start(seed).unwrap();
    let target = "/api/v1/workspaces/acme/projects/";
    for remaining in (0..5).rev() {
        let reply = get(&sim, target);
        assert_eq!(reply.status, 200);
        assert_eq!(
            reply.header("X-RateLimit-Remaining"),
            Some(remaining.to_string().as_str())
        );
        let reset: u64 = reply.header("X-RateLimit-Reset").unwrap().parse().unwrap();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        assert!(
            (now + 59..=now + 61).contains(&reset),
            "reset {reset}, now {now}"
        );
    }
    replay(&sim, "30-ratelimit-5pm-req6.json");
    replay(&sim, "30-ratelimit-5pm-req7.json");
}

// ---------------------------------------------------------------------------------------------
// Beyond the captures: what plane-api.md documents.

fn ids(reply: &Reply) -> Vec<String> {
    reply
        .json()
        .get("results")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.get("id").unwrap().as_str().unwrap().to_owned())
        .collect()
}

fn names(reply: &Reply) -> Vec<String> {
    reply
        .json()
        .get("results")
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.get("name").unwrap().as_str().unwrap().to_owned())
        .collect()
}

fn work_items(project: &str, query: &str) -> String {
    format!("/api/v1/workspaces/acme/projects/{project}/work-items/{query}")
}

fn not_found() -> Json {
    Json::parse(r#"{"error":"The requested resource does not exist."}"#).unwrap()
}

/// A world with one issue of every hidden kind next to a visible one, plus an archived
/// project, a public project the owner is not in and a secret one.
fn exclusion_sim() -> (PlaneSim, Vec<String>) {
    let seed = Seed::from_json(
        r#"{
          "users": [{"first_name": "Ada", "last_name": "L", "email": "ada@acme.test"}],
          "projects": [
            {"identifier": "WEB", "name": "Web"},
            {"identifier": "OLD", "name": "Old", "archived_at": "2026-11-01T10:00:00Z"},
            {"identifier": "PUB", "name": "Public, not mine", "is_member": false},
            {"identifier": "SEC", "name": "Secret", "is_member": false, "network": 0}
          ],
          "issues": [
            {"project": "WEB", "name": "Visible", "target_date": "2026-12-01"},
            {"project": "WEB", "name": "Archived", "archived_at": "2026-11-20"},
            {"project": "WEB", "name": "Deleted", "deleted_at": "2026-11-20T10:00:00Z"},
            {"project": "WEB", "name": "Triage", "state": "Triage"},
            {"project": "WEB", "name": "Draft", "is_draft": true},
            {"project": "OLD", "name": "In an archived project"},
            {"project": "PUB", "name": "In a public project"}
          ]
        }"#,
    )
    .unwrap();
    let sim = PlaneSim::start(seed).unwrap();
    let ids = sim.with_world(|w| w.issues.iter().map(|i| i.id.clone()).collect());
    (sim, ids)
}

#[test]
fn hidden_issues_are_absent_from_lists_and_404_in_detail() {
    let (sim, ids) = exclusion_sim();
    let (web, old, public) = sim.with_world(|w| {
        (
            w.projects[0].id.clone(),
            w.projects[1].id.clone(),
            w.projects[2].id.clone(),
        )
    });
    let list = get(&sim, &work_items(&web, ""));
    assert_eq!(names(&list), ["Visible"]);
    assert_eq!(list.json().get("total_count"), Some(&Json::Int(1)));
    for (index, id) in ids.iter().enumerate().take(5).skip(1) {
        let detail = get(&sim, &work_items(&web, &format!("{id}/")));
        assert_eq!(detail.status, 404, "issue #{index}");
        assert_eq!(detail.json(), not_found());
        // The deprecated alias behaves the same.
        let alias = get(
            &sim,
            &format!("/api/v1/workspaces/acme/projects/{web}/issues/{id}/"),
        );
        assert_eq!(alias.status, 404);
    }
    for key in ["WEB-2", "WEB-3", "WEB-4", "WEB-5"] {
        let by_key = get(&sim, &format!("/api/v1/workspaces/acme/work-items/{key}/"));
        assert_eq!(by_key.status, 404, "{key}");
        assert_eq!(by_key.json(), not_found());
    }
    assert_eq!(
        get(&sim, "/api/v1/workspaces/acme/issues/WEB-1/").status,
        200
    );
    // The archived project: listed, but no issues and no states.
    let archived = get(&sim, &work_items(&old, ""));
    assert_eq!(archived.status, 200);
    assert_eq!(archived.json().get("count"), Some(&Json::Int(0)));
    let states = get(
        &sim,
        &format!("/api/v1/workspaces/acme/projects/{old}/states/"),
    );
    assert_eq!(states.json().get("total_count"), Some(&Json::Int(0)));
    let detail = get(&sim, &work_items(&old, &format!("{}/", ids[5])));
    assert_eq!(detail.status, 404);
    // The public project the owner is not a member of: listed, but 403 for its issues.
    let forbidden = get(&sim, &work_items(&public, ""));
    assert_eq!(forbidden.status, 403);
    assert_eq!(
        forbidden.text(),
        r#"{"detail":"You do not have permission to perform this action."}"#
    );
    assert_eq!(
        get(&sim, "/api/v1/workspaces/acme/work-items/PUB-1/").status,
        403
    );
}

#[test]
fn project_list_shows_archived_and_public_non_member_projects() {
    let (sim, _) = exclusion_sim();
    let list = get(&sim, "/api/v1/workspaces/acme/projects/");
    let json = list.json();
    let results = json.get("results").unwrap().as_array().unwrap();
    let by_identifier = |ident: &str| {
        results
            .iter()
            .find(|p| p.get("identifier").and_then(Json::as_str) == Some(ident))
    };
    assert_eq!(results.len(), 3, "the secret project is invisible");
    assert!(by_identifier("SEC").is_none());
    let old = by_identifier("OLD").unwrap();
    assert_eq!(
        old.get("archived_at").and_then(Json::as_str),
        Some("2026-11-01T10:00:00Z")
    );
    let public = by_identifier("PUB").unwrap();
    assert_eq!(public.get("is_member"), Some(&Json::Bool(false)));
    assert_eq!(public.get("sort_order"), Some(&Json::Null));
    assert_eq!(public.get("member_role"), Some(&Json::Null));
    // Ordered by the member's sort_order: NULL (non-member) last.
    assert_eq!(
        results
            .last()
            .unwrap()
            .get("identifier")
            .and_then(Json::as_str),
        Some("PUB")
    );
    // The project key set matches the capture.
    let captured = capture("10-projects-list.json").body;
    let captured_project = &captured.get("results").unwrap().as_array().unwrap()[0];
    assert_eq!(public.keys(), captured_project.keys());
    // A secret project's detail is a 404 (not 403: projects need only workspace membership).
    let secret = sim.with_world(|w| w.projects[3].id.clone());
    let detail = get(&sim, &format!("/api/v1/workspaces/acme/projects/{secret}/"));
    assert_eq!(detail.status, 404);
}

#[test]
fn order_by_follows_plane() {
    let sim = lab_sim();
    let list = |query: &str| get(&sim, &work_items(ALPHA, query));
    let seq = |reply: &Reply| -> Vec<i64> {
        reply
            .json()
            .get("results")
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r.get("sequence_id").unwrap().as_i64().unwrap())
            .collect()
    };
    assert_eq!(seq(&list("")), [4, 3, 2, 1], "default -created_at");
    assert_eq!(seq(&list("?order_by=created_at")), [1, 2, 3, 4]);
    assert_eq!(seq(&list("?order_by=-sequence_id")), [4, 3, 2, 1]);
    // Dates: NULLs last ascending, first descending (PostgreSQL).
    assert_eq!(seq(&list("?order_by=target_date")), [2, 1, 3, 4]);
    assert_eq!(seq(&list("?order_by=-target_date")), [4, 3, 1, 2]);
    assert_eq!(seq(&list("?order_by=priority")), [1, 2, 3, 4]);
    assert_eq!(seq(&list("?order_by=-priority")), [4, 3, 2, 1]);
    assert_eq!(seq(&list("?order_by=name")), [2, 1, 3, 4]);
    assert_eq!(seq(&list("?order_by=-updated_at")), [1, 2, 4, 3]);
    let unknown = list("?order_by=bogus");
    assert_eq!(unknown.status, 500);
    assert_eq!(
        unknown.text(),
        r#"{"error":"Something went wrong please try again later"}"#
    );
    // Filters are silently ignored on CE.
    for filter in [
        "?priority=urgent",
        "?updated_at__gt=2026-11-22T03:46:11Z",
        "?state__group=completed",
    ] {
        assert_eq!(seq(&list(filter)), [4, 3, 2, 1], "{filter}");
    }
}

#[test]
fn fields_and_expand_interplay() {
    let sim = lab_sim();
    let detail =
        |query: &str| get(&sim, &work_items(ALPHA, &format!("{SHIP_CALDAV}/{query}"))).json();

    let both = detail("?fields=id,name,state,nonsense&expand=state");
    assert_eq!(both.keys(), ["id", "name", "state"]);
    assert_eq!(
        both.get("state").unwrap().keys(),
        ["id", "name", "color", "group"]
    );
    // expand acts only on kept fields.
    let dropped = detail("?fields=id,name&expand=state,labels");
    assert_eq!(dropped.keys(), ["id", "name"]);
    // Unknown expand values are ignored; unexpanded m2m are uuid lists.
    let plain = detail("?expand=type_of_thing");
    assert_eq!(plain, detail(""));
    assert!(
        plain.get("labels").unwrap().as_array().unwrap()[0]
            .as_str()
            .is_some()
    );
    let unexpanded_keys = capture("11-work-items-list.json").body;
    let first = &unexpanded_keys.get("results").unwrap().as_array().unwrap()[0];
    assert_eq!(plain.keys(), first.keys());
    // The order of m2m keys follows the expand list (BaseSerializer inserts them).
    let keys = detail("?expand=assignees,labels")
        .keys()
        .iter()
        .map(|k| k.to_string())
        .collect::<Vec<_>>();
    assert_eq!(&keys[keys.len() - 2..], ["assignees", "labels"]);
    let keys = detail("?expand=labels")
        .keys()
        .iter()
        .map(|k| k.to_string())
        .collect::<Vec<_>>();
    assert_eq!(&keys[keys.len() - 2..], ["labels", "assignees"]);
    // Expanded labels are full label objects, newest first.
    let labels = detail("?expand=labels");
    let labels = labels.get("labels").unwrap().as_array().unwrap();
    assert_eq!(
        labels
            .iter()
            .map(|l| l.get("name").unwrap().as_str().unwrap())
            .collect::<Vec<_>>(),
        ["calendar", "feature"]
    );
    // A kept field without an expansion serializer becomes its (absent) `_id`: null.
    assert_eq!(detail("?expand=name").get("name"), Some(&Json::Null));
    // The same on the list and the by-identifier route.
    let list = get(
        &sim,
        &work_items(ALPHA, "?fields=id,project&expand=project"),
    )
    .json();
    for item in list.get("results").unwrap().as_array().unwrap() {
        assert_eq!(item.keys(), ["id", "project"]);
        assert_eq!(
            item.get("project")
                .unwrap()
                .get("identifier")
                .and_then(Json::as_str),
            Some("ALPHA")
        );
    }
    let by_key = get(
        &sim,
        "/api/v1/workspaces/acme/work-items/ALPHA-3/?fields=id,assignees&expand=assignees",
    )
    .json();
    assert_eq!(by_key.keys(), ["id", "assignees"]);
    // Assignees expand to UserLite.
    sim.with_world(|w| w.issue_mut(SHIP_CALDAV).assignees = vec![USER.to_owned()]);
    let assigned = detail("?expand=assignees");
    let users = assigned.get("assignees").unwrap().as_array().unwrap();
    assert_eq!(
        users[0].keys(),
        [
            "id",
            "first_name",
            "last_name",
            "email",
            "avatar",
            "avatar_url",
            "display_name"
        ]
    );
    assert_eq!(users[0], capture("25-users-me.json").body);
    // A null state expands to {} (a serializer without an instance).
    sim.with_world(|w| w.issue_mut(SHIP_CALDAV).state = None);
    assert_eq!(detail("?expand=state").get("state"), Some(&Json::obj()));
    assert_eq!(detail("").get("state"), Some(&Json::Null));
}

#[test]
fn paging_edge_cases() {
    let sim = lab_sim();
    let list = |query: &str| get(&sim, &work_items(ALPHA, query));
    let detail = |text: &str| format!(r#"{{"detail":"{text}"}}"#);

    let bad = list("?per_page=abc");
    assert_eq!(
        (bad.status, bad.text()),
        (400, detail("Invalid per_page parameter.").as_str())
    );
    let too_many = list("?per_page=1001");
    assert_eq!(
        (too_many.status, too_many.text()),
        (
            400,
            detail("Invalid per_page value. Cannot exceed 1000.").as_str()
        )
    );
    assert_eq!(list("?per_page=1000").status, 200);
    let zero = list("?per_page=0");
    assert_eq!(zero.status, 500);
    assert_eq!(
        zero.text(),
        r#"{"error":"Something went wrong please try again later"}"#
    );
    for cursor in ["garbage", "2:1", "2:x:0", "", "2:1:0:0"] {
        let reply = list(&format!("?per_page=2&cursor={cursor}"));
        assert_eq!(
            (reply.status, reply.text()),
            (400, detail("Invalid cursor parameter.").as_str()),
            "cursor {cursor:?}"
        );
    }
    let negative = list("?per_page=2&cursor=2:-1:0");
    assert_eq!(
        (negative.status, negative.text()),
        (400, detail("Error in parsing").as_str())
    );
    // The offset uses the request's per_page, not the cursor's value.
    let odd = list("?per_page=3&cursor=2:1:0").json();
    assert_eq!(odd.get("count"), Some(&Json::Int(1)));
    assert_eq!(odd.get("next_cursor").and_then(Json::as_str), Some("3:2:0"));
    // Walking with per_page=1 visits every item once and stops on next_page_results.
    let mut cursor = None::<String>;
    let mut seen = Vec::new();
    loop {
        let query = match &cursor {
            Some(c) => format!("?per_page=1&cursor={c}"),
            None => "?per_page=1".to_owned(),
        };
        let page = list(&query);
        seen.extend(ids(&page));
        let json = page.json();
        assert_eq!(json.get("total_pages"), Some(&Json::Int(4)));
        if json.get("next_page_results") != Some(&Json::Bool(true)) {
            assert!(json.get("next_cursor").unwrap().as_str().is_some());
            break;
        }
        cursor = json.get("next_cursor").unwrap().as_str().map(str::to_owned);
    }
    assert_eq!(seen.len(), 4);
    // Envelope keys, exactly and in order.
    let captured = capture("13-work-items-page3-last.json").body;
    assert_eq!(list("?per_page=2").json().keys(), captured.keys());
}

#[test]
fn authentication_and_routing() {
    let sim = lab_sim();
    let me = "/api/v1/users/me/";
    // The header name is case-insensitive.
    for name in ["x-api-key", "X-API-KEY", "X-Api-Key"] {
        assert_eq!(
            send(&sim, "GET", me, &[(name, &sim.token())], "").status,
            200
        );
    }
    // A Bearer token is not an API key on CE v1.
    let bearer = format!("Bearer {}", sim.token());
    let reply = send(&sim, "GET", me, &[("Authorization", &bearer)], "");
    assert_eq!(reply.status, 401);
    // An unknown workspace is a 403, like an unknown project.
    let other = get(&sim, "/api/v1/workspaces/elsewhere/projects/");
    assert_eq!(other.status, 403);
    assert_eq!(
        other.text(),
        r#"{"detail":"You do not have permission to perform this action."}"#
    );
    assert_eq!(
        get(&sim, "/api/v1/workspaces/acme/work-items/NOPE-1/").status,
        403
    );
    // The identifier is case-sensitive; an unknown sequence is a 404.
    assert_eq!(
        get(&sim, "/api/v1/workspaces/acme/work-items/alpha-1/").status,
        403
    );
    assert_eq!(
        get(&sim, "/api/v1/workspaces/acme/work-items/ALPHA-99/").status,
        404
    );
    // Unknown paths never reach a view: Django's JSON 404 page.
    let unknown = get(&sim, "/api/v1/workspaces/acme/cycles/");
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.text(), r#"{"error": "Page not found."}"#);
    assert_eq!(
        get(
            &sim,
            &format!("/api/v1/workspaces/acme/projects/{}/", ALPHA.to_uppercase())
        )
        .status,
        404,
        "<uuid:> matches lowercase only"
    );
    // A missing trailing slash redirects (APPEND_SLASH).
    let redirect = get(&sim, "/api/v1/users/me?x=1");
    assert_eq!(redirect.status, 301);
    assert_eq!(redirect.header("Location"), Some("/api/v1/users/me/?x=1"));
    // Methods the simulator does not implement: 405 after authentication.
    let post = send(
        &sim,
        "POST",
        &work_items(ALPHA, ""),
        &[("X-Api-Key", &sim.token())],
        r#"{"name": "new"}"#,
    );
    assert_eq!(post.status, 405);
    assert_eq!(post.text(), r#"{"detail":"Method \"POST\" not allowed."}"#);
    assert_eq!(post.header("Allow"), Some("GET, POST"));
    let anonymous_post = send(&sim, "POST", &work_items(ALPHA, ""), &[], "{}");
    assert_eq!(anonymous_post.status, 401);
}

#[test]
fn rate_limit_counts_only_permitted_requests_and_slides() {
    let sim = lab_sim();
    sim.set_rate_limit(Some(3));
    sim.set_rate_limit_window(Duration::from_secs(2));
    let me = "/api/v1/users/me/";
    assert_eq!(get(&sim, me).header("X-RateLimit-Remaining"), Some("2"));
    // Rejected by authentication or permission: not counted, no headers.
    let wrong = get_with_key(&sim, me, "wrong");
    assert_eq!(wrong.status, 403);
    assert!(wrong.header("X-RateLimit-Remaining").is_none());
    let forbidden = get(&sim, &work_items(GAMMA, ""));
    assert_eq!(forbidden.status, 403);
    assert!(forbidden.header("X-RateLimit-Remaining").is_none());
    // A 404 of a view is counted (the capture of a deleted item carries the headers).
    let missing = get(&sim, &work_items(ALPHA, &format!("{DELETED}/")));
    assert_eq!(missing.status, 404);
    assert_eq!(missing.header("X-RateLimit-Remaining"), Some("1"));
    assert_eq!(get(&sim, me).header("X-RateLimit-Remaining"), Some("0"));
    let refused = get(&sim, me);
    assert_eq!(refused.status, 429);
    assert_eq!(
        refused.text(),
        r#"{"error_code":5900,"error_message":"RATE_LIMIT_EXCEEDED"}"#
    );
    let retry: u64 = refused.header("Retry-After").unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
    assert!(refused.header("X-RateLimit-Remaining").is_none());
    assert!(refused.header("X-RateLimit-Reset").is_none());
    // Refused requests do not extend the window: after it slides, requests pass again.
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(get(&sim, me).header("X-RateLimit-Remaining"), Some("2"));
    // A limit lowered below the history: 429 without Retry-After (DRF has no wait to give).
    get(&sim, me);
    sim.set_rate_limit(Some(1));
    let no_wait = get(&sim, me);
    assert_eq!(no_wait.status, 429);
    assert!(no_wait.header("Retry-After").is_none());
    sim.set_rate_limit(None);
    let unlimited = get(&sim, me);
    assert_eq!(unlimited.status, 200);
    assert!(unlimited.header("X-RateLimit-Remaining").is_none());
}

#[test]
fn fault_on_the_second_page_only() {
    let sim = lab_sim();
    let path = format!("/projects/{ALPHA}/work-items/");
    sim.inject_fault(
        FaultRule::new(&path, Fault::server_error())
            .method("get")
            .skip(1)
            .times(1),
    );
    let page1 = get(&sim, &work_items(ALPHA, "?per_page=2"));
    assert_eq!(page1.status, 200);
    let page2 = get(&sim, &work_items(ALPHA, "?per_page=2&cursor=2:1:0"));
    assert_eq!(page2.status, 500);
    assert_eq!(
        page2.text(),
        r#"{"error":"Something went wrong please try again later"}"#
    );
    let retry = get(&sim, &work_items(ALPHA, "?per_page=2&cursor=2:1:0"));
    assert_eq!(retry.status, 200);
    assert_eq!(retry.json(), capture("13-work-items-page2.json").body);
    // Other paths never matched the rule.
    assert_eq!(get(&sim, "/api/v1/users/me/").status, 200);
    let statuses: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [200, 500, 200, 200]);
    let recorded = &sim.requests()[1];
    assert_eq!(recorded.method, "GET");
    assert_eq!(recorded.path, work_items(ALPHA, ""));
    assert_eq!(recorded.query, "per_page=2&cursor=2:1:0");
    assert_eq!(sim.count("GET", "/work-items/"), 3);
    assert_eq!(sim.count("get", "/users/me/"), 1);
    sim.reset_requests();
    assert!(sim.requests().is_empty());
}

#[test]
fn fault_kinds() {
    let sim = lab_sim();
    let me = "/api/v1/users/me/";
    // Selected by query fragment and method.
    sim.inject_fault(
        FaultRule::new("/work-items/", Fault::RateLimited { retry_after: None })
            .query_contains("cursor=2:1:0"),
    );
    sim.inject_fault(FaultRule::new(me, Fault::Status(503, "{}".into())).method("PATCH"));
    let limited = get(&sim, &work_items(ALPHA, "?per_page=2&cursor=2:1:0"));
    assert_eq!(limited.status, 429);
    assert!(limited.header("Retry-After").is_none());
    assert_eq!(limited.json(), capture("30-ratelimit-5pm-req6.json").body);
    assert_eq!(get(&sim, me).status, 200, "GET does not match a PATCH rule");
    sim.clear_faults();

    sim.inject_fault(FaultRule::new(
        me,
        Fault::RateLimited {
            retry_after: Some(7),
        },
    ));
    assert_eq!(get(&sim, me).header("Retry-After"), Some("7"));

    sim.inject_fault(FaultRule::new(me, Fault::Hang(Duration::from_millis(400))));
    let started = Instant::now();
    assert_eq!(get(&sim, me).status, 200);
    assert!(started.elapsed() >= Duration::from_millis(400));

    sim.inject_fault(FaultRule::new(me, Fault::TruncatedBody));
    let truncated = get_with_key(&sim, me, &sim.token());
    let promised: usize = truncated.header("Content-Length").unwrap().parse().unwrap();
    assert!(truncated.body.len() < promised);

    sim.inject_fault(FaultRule::new(me, Fault::InvalidJson));
    let broken = get(&sim, me);
    assert_eq!(broken.status, 200);
    assert!(Json::parse(broken.text()).is_err());

    // Afterwards everything is normal again, and every faulted request was recorded.
    assert_eq!(get(&sim, me).json(), capture("25-users-me.json").body);
    let statuses: Vec<u16> = sim.requests().iter().map(|r| r.status).collect();
    assert_eq!(statuses, [429, 200, 429, 200, 200, 200, 200]);
}

#[test]
fn world_edits_show_up_in_the_api() {
    let sim = lab_sim();
    // A new issue is newest: first in the default order, last with order_by=created_at.
    let new_id = sim.with_world(|w| {
        w.add_issue(SeedIssue {
            labels: vec!["bug".into()],
            ..SeedIssue::new("ALPHA", "Brand new").due("2026-12-31")
        })
    });
    let list = get(&sim, &work_items(ALPHA, ""));
    assert_eq!(ids(&list)[0], new_id);
    let by_key = get(&sim, "/api/v1/workspaces/acme/work-items/ALPHA-6/").json();
    assert_eq!(
        by_key.get("id").and_then(Json::as_str),
        Some(new_id.as_str())
    );
    assert_eq!(
        by_key.get("target_date").and_then(Json::as_str),
        Some("2026-12-31")
    );
    // Deleting hides it; the detail is 404.
    sim.with_world(|w| w.delete_issue(&new_id));
    assert!(!ids(&get(&sim, &work_items(ALPHA, ""))).contains(&new_id));
    assert_eq!(
        get(&sim, &work_items(ALPHA, &format!("{new_id}/"))).status,
        404
    );
    // An edit bumps updated_at; a "bulk" edit does not.
    let before = sim.with_world(|w| w.issue(SHIP_CALDAV).unwrap().updated_at.clone());
    sim.with_world(|w| {
        w.issue_mut_keep_updated_at(SHIP_CALDAV).target_date = Some("2027-01-04".into())
    });
    let dragged = get(&sim, &work_items(ALPHA, &format!("{SHIP_CALDAV}/"))).json();
    assert_eq!(
        dragged.get("target_date").and_then(Json::as_str),
        Some("2027-01-04")
    );
    assert_eq!(
        dragged.get("updated_at").and_then(Json::as_str),
        before.as_deref()
    );
    sim.with_world(|w| w.issue_mut(SHIP_CALDAV).name = "Renamed".into());
    let renamed = get(&sim, &work_items(ALPHA, &format!("{SHIP_CALDAV}/"))).json();
    assert!(renamed.get("updated_at").and_then(Json::as_str) > before.as_deref());
    // Archiving a project hides its issues but keeps it listed.
    sim.with_world(|w| w.project_mut("ALPHA").archived_at = Some("2026-11-22T05:00:00Z".into()));
    assert_eq!(
        get(&sim, &work_items(ALPHA, "")).json().get("count"),
        Some(&Json::Int(0))
    );
    assert_eq!(
        get(&sim, "/api/v1/workspaces/acme/projects/")
            .json()
            .get("count"),
        Some(&Json::Int(2))
    );
    // Leaving the project: 403.
    sim.with_world(|w| w.project_mut("ALPHA").is_member = false);
    assert_eq!(get(&sim, &work_items(ALPHA, "")).status, 403);
}

#[test]
fn patch_and_delete_of_a_work_item() {
    let sim = lab_sim();
    let key = sim.token();
    let target = work_items(ALPHA, &format!("{SHIP_CALDAV}/"));
    let patch = |body: &str| send(&sim, "PATCH", &target, &[("X-Api-Key", &key)], body);
    let dates = patch(r#"{"start_date": "2026-12-10", "target_date": "2026-12-01"}"#);
    assert_eq!(dates.status, 400);
    assert_eq!(
        dates.text(),
        r#"{"non_field_errors":["Start date cannot exceed target date"]}"#
    );
    let bad = patch(r#"{"priority": "whenever"}"#);
    assert_eq!(
        bad.text(),
        r#"{"priority":["\"whenever\" is not a valid choice."]}"#
    );
    let moved = patch(r#"{"target_date": "2027-02-01", "labels": []}"#);
    assert_eq!(moved.status, 200);
    let json = moved.json();
    assert_eq!(
        json.get("target_date").and_then(Json::as_str),
        Some("2027-02-01")
    );
    assert_eq!(json.get("labels"), Some(&Json::Arr(Vec::new())));
    assert_eq!(json.get("updated_by").and_then(Json::as_str), Some(USER));
    // Entering the completed group sets completed_at; leaving it clears it.
    let done = patch(&format!(r#"{{"state": "{DONE}"}}"#)).json();
    assert!(done.get("completed_at").and_then(Json::as_str).is_some());
    let reopened = patch(&format!(r#"{{"state": "{BACKLOG}"}}"#)).json();
    assert_eq!(reopened.get("completed_at"), Some(&Json::Null));
    let deleted = send(&sim, "DELETE", &target, &[("X-Api-Key", &key)], "");
    assert_eq!(deleted.status, 204);
    assert!(deleted.body.is_empty());
    assert_eq!(get(&sim, &target).status, 404);
    assert_eq!(patch(r#"{"name": "x"}"#).status, 404);
}

#[test]
fn states_and_labels_lists() {
    let mut seed = lab_seed();
    seed.projects[0].states.push(SeedState {
        name: "Intake".into(),
        group: "triage".into(),
        sequence: Some(5000.0),
        ..SeedState::default()
    });
    let sim = PlaneSim::start(seed).unwrap();
    let states = get(
        &sim,
        &format!("/api/v1/workspaces/acme/projects/{ALPHA}/states/"),
    );
    assert_eq!(
        states.json(),
        capture("02-states-list.json").body,
        "triage hidden"
    );
    let shaped = get(
        &sim,
        &format!("/api/v1/workspaces/acme/projects/{ALPHA}/states/?fields=name,group&per_page=2"),
    )
    .json();
    assert_eq!(shaped.get("total_pages"), Some(&Json::Int(3)));
    let first = &shaped.get("results").unwrap().as_array().unwrap()[0];
    assert_eq!(first.keys(), ["name", "group"]);
    // BETA got Plane's default states (Triage hidden), Backlog the default.
    let beta = get(
        &sim,
        &format!("/api/v1/workspaces/acme/projects/{BETA}/states/"),
    );
    assert_eq!(
        names(&beta),
        ["Backlog", "Todo", "In Progress", "Done", "Cancelled"]
    );
    let beta_labels = get(
        &sim,
        &format!("/api/v1/workspaces/acme/projects/{BETA}/labels/"),
    );
    assert_eq!(beta_labels.json().get("count"), Some(&Json::Int(0)));
}

#[test]
fn the_demo_seed_is_a_plausible_workspace() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/demo-workspace.json");
    let seed = Seed::from_file(&path).expect("the demo seed parses");
    assert_eq!(seed.workspace, "acme");
    assert_eq!(seed.rate_limit_per_minute, Some(60));
    let sim = PlaneSim::start(seed).expect("the demo seed resolves");
    let projects = get(&sim, "/api/v1/workspaces/acme/projects/").json();
    let projects = projects.get("results").unwrap().as_array().unwrap();
    assert_eq!(projects.len(), 5);
    let members = projects
        .iter()
        .filter(|p| p.get("is_member") == Some(&Json::Bool(true)))
        .count();
    let archived = projects
        .iter()
        .filter(|p| !p.get("archived_at").unwrap().is_null())
        .count();
    assert_eq!(
        (members, archived),
        (4, 1),
        "3 live member projects + 1 archived, 1 public"
    );
    sim.with_world(|w| {
        let total = w.issues.len();
        assert!((36..=46).contains(&total), "{total} issues");
        let dated = w.issues.iter().filter(|i| i.target_date.is_some()).count();
        let share = dated as f64 / total as f64;
        assert!((0.65..=0.85).contains(&share), "{dated} of {total} dated");
        assert!(
            w.issues
                .iter()
                .any(|i| i.target_date.as_deref() == Some("2026-12-31"))
        );
        assert_eq!(
            w.issues.iter().filter(|i| i.archived_at.is_some()).count(),
            1
        );
        assert_eq!(
            w.issues.iter().filter(|i| i.deleted_at.is_some()).count(),
            1
        );
        assert!(w.issues.iter().any(|i| {
            i.name
                .chars()
                .any(|c| ('\u{4e00}'..='\u{9fff}').contains(&c))
        }));
        assert!(
            w.issues
                .iter()
                .any(|i| i.name.contains(',') && i.name.contains(';'))
        );
        for issue in w.issues.iter().filter(|i| i.target_date.is_some()) {
            let date = issue.target_date.as_deref().unwrap();
            assert!(("2026-11-01".."2027-03-01").contains(&date), "{date}");
        }
    });
    // Every listed issue renders, expanded as calplanebot asks for it.
    for project in projects
        .iter()
        .filter(|p| p.get("is_member") == Some(&Json::Bool(true)))
    {
        let id = project.get("id").and_then(Json::as_str).unwrap();
        let page = get(
            &sim,
            &work_items(
                id,
                "?per_page=100&expand=state,labels,assignees&order_by=created_at",
            ),
        );
        assert_eq!(page.status, 200);
    }
}

// ---------------------------------------------------------------------------------------------
// The lab of 2026-12-02 (captures 60-67): a fresh database, a second member, two assignees.

const ALPHA_2: &str = "ec601b96-eb0b-419e-8619-ce0d7fe44a7b";
const ADMIN_2: &str = "8007022e-74f4-49aa-a657-7bf1004510ea";
const BEA: &str = "ff870aaf-5915-402a-9ef5-72d65e82eea9";
const OFFSITE: &str = "fd15a77b-d8b9-4b09-8444-0560afc0c8a8";

/// The world of captures 60-67 ([`Seed::lab_2026_12_02`]).
fn lab_2026_12_02_seed() -> Seed {
    Seed::lab_2026_12_02()
}

#[test]
fn members_and_assignee_captures_are_reproduced_exactly() {
    let sim = PlaneSim::start(lab_2026_12_02_seed()).unwrap();
    for name in [
        "60-workspace-members.json",
        "61-project-members.json",
        "66-work-items-list-product-fields.json",
        "66-work-items-list-product-nofields.json",
        "67-work-item-detail-expand-assignees.json",
    ] {
        replay(&sim, name);
    }
}

fn keys_of(value: &Json) -> Vec<&str> {
    value.keys()
}

#[test]
fn members_lists_are_bare_arrays_newest_user_first() {
    let sim = PlaneSim::start(lab_2026_12_02_seed()).unwrap();
    let workspace = get(&sim, "/api/v1/workspaces/acme/members/");
    let members = workspace.json();
    let members = members.as_array().expect("a bare array, no envelope");
    for member in members {
        assert_eq!(
            keys_of(member),
            [
                "id",
                "first_name",
                "last_name",
                "email",
                "avatar",
                "avatar_url",
                "display_name",
                "role"
            ]
        );
    }
    let ids: Vec<&str> = members
        .iter()
        .map(|m| m.get("id").unwrap().as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [BEA, ADMIN_2],
        "newest user first, not by role or name"
    );
    // The project list, under both routes: the same users without `role`.
    let project = get(
        &sim,
        &format!("/api/v1/workspaces/acme/projects/{ALPHA_2}/members/"),
    );
    let alias = get(
        &sim,
        &format!("/api/v1/workspaces/acme/projects/{ALPHA_2}/project-members/"),
    );
    assert_eq!(project.json(), alias.json());
    assert_eq!(alias.header("Allow"), Some("GET, POST"));
    for (listed, member) in project.json().as_array().unwrap().iter().zip(members) {
        let mut without_role = member.clone();
        without_role.remove("role");
        assert_eq!(*listed, without_role);
    }
    // Not paginated: paging and shaping parameters change nothing.
    assert_eq!(
        get(
            &sim,
            "/api/v1/workspaces/acme/members/?per_page=1&fields=id&expand=role"
        )
        .json(),
        workspace.json()
    );
    // A user added later is newest; one left out of a project's members is not listed there.
    let mut seed = lab_2026_12_02_seed();
    seed.users.push(SeedUser {
        first_name: "Cy".into(),
        email: "cy@acme.test".into(),
        role: Some(ROLE_GUEST),
        created_at: Some("2026-12-03T09:00:00+01:00".into()),
        ..SeedUser::default()
    });
    seed.projects[0].members = Some(vec!["bea.member@acme.test".into()]);
    let sim = PlaneSim::start(seed).unwrap();
    let members = get(&sim, "/api/v1/workspaces/acme/members/").json();
    let roles: Vec<(&str, i64)> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m.get("display_name").unwrap().as_str().unwrap(),
                m.get("role").unwrap().as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(roles, [("cy", 5), ("bea", 15), ("labadmin", 20)]);
    let project = get(
        &sim,
        &format!("/api/v1/workspaces/acme/projects/{ALPHA_2}/members/"),
    )
    .json();
    let names: Vec<&str> = project
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m.get("display_name").unwrap().as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["bea", "labadmin"],
        "the owner is a member (is_member)"
    );
}

#[test]
fn a_guest_key_may_not_list_the_workspace_members_but_reads_its_projects() {
    let forbidden_body = r#"{"detail":"You do not have permission to perform this action."}"#;
    let members = "/api/v1/workspaces/acme/members/";
    // In the seed: the key's owner is a Guest.
    let mut seed = lab_2026_12_02_seed();
    seed.users[0].role = Some(ROLE_GUEST);
    let sim = PlaneSim::start(seed).unwrap();
    let refused = get(&sim, members);
    assert_eq!((refused.status, refused.text()), (403, forbidden_body));
    assert_eq!(refused.header("Allow"), Some("GET"));
    assert!(
        refused.header("X-RateLimit-Remaining").is_none(),
        "refused by permission: not counted"
    );
    // Everything a project member may read still answers.
    for target in [
        "/api/v1/users/me/".to_owned(),
        "/api/v1/workspaces/acme/projects/".to_owned(),
        format!("/api/v1/workspaces/acme/projects/{ALPHA_2}/members/"),
        work_items(ALPHA_2, "?expand=state,labels,assignees"),
        work_items(ALPHA_2, &format!("{OFFSITE}/")),
    ] {
        assert_eq!(get(&sim, &target).status, 200, "{target}");
    }
    let project = get(
        &sim,
        &format!("/api/v1/workspaces/acme/projects/{ALPHA_2}/"),
    )
    .json();
    assert_eq!(
        project.get("member_role"),
        Some(&Json::Int(ROLE_GUEST)),
        "a guest's project role defaults to its workspace role"
    );
    // Between requests: promoted to Member, the list answers; an unknown workspace is 403.
    sim.with_world(|w| w.users[0].role = Some(ROLE_MEMBER));
    assert_eq!(get(&sim, members).status, 200);
    let elsewhere = get(&sim, "/api/v1/workspaces/elsewhere/members/");
    assert_eq!((elsewhere.status, elsewhere.text()), (403, forbidden_body));
    // A role Plane does not know is a seed error.
    let mut seed = lab_2026_12_02_seed();
    seed.users[1].role = Some(10);
    let error = PlaneSim::start(seed).unwrap_err().to_string();
    assert!(error.contains("role 10"), "{error}");
    let mut seed = lab_2026_12_02_seed();
    seed.projects[0].members = Some(vec!["nobody".into()]);
    let error = PlaneSim::start(seed).unwrap_err().to_string();
    assert!(error.contains("unknown member"), "{error}");
}

#[test]
fn expanded_assignees_are_newest_user_first_and_ids_keep_the_assignment_order() {
    let sim = PlaneSim::start(lab_2026_12_02_seed()).unwrap();
    let detail =
        |query: &str| get(&sim, &work_items(ALPHA_2, &format!("{OFFSITE}/{query}"))).json();
    let ids = |value: &Json| -> Vec<String> {
        value
            .get("assignees")
            .unwrap()
            .as_array()
            .unwrap()
            .iter()
            .map(|a| match a.get("id") {
                Some(id) => id.as_str().unwrap().to_owned(),
                None => a.as_str().unwrap().to_owned(),
            })
            .collect()
    };
    // Assigned admin first, then Bea (capture 64's id list), expanded Bea first (67).
    assert_eq!(ids(&detail("")), [ADMIN_2, BEA]);
    assert_eq!(ids(&detail("?expand=assignees")), [BEA, ADMIN_2]);
    let patched = capture("64-patch-assignees-add-member.json").body;
    assert_eq!(ids(&patched), [ADMIN_2, BEA]);
    // Reassigned in the other order: the expanded order does not change.
    sim.with_world(|w| {
        w.issue_mut(OFFSITE).assignees = vec![BEA.to_owned(), ADMIN_2.to_owned()];
    });
    assert_eq!(ids(&detail("")), [BEA, ADMIN_2]);
    assert_eq!(ids(&detail("?expand=assignees")), [BEA, ADMIN_2]);
    // `updated_at` is a field like any other: kept or dropped by `fields`.
    let kept = detail("?fields=id,updated_at&expand=assignees");
    assert_eq!(kept.keys(), ["id", "updated_at"]);
    let stamp = kept.get("updated_at").and_then(Json::as_str).unwrap();
    assert!(
        stamp > "2026-12-02T16:53:17.566535Z" && stamp.ends_with('Z'),
        "{stamp}"
    );
    assert_eq!(detail("?fields=id,assignees").keys(), ["id", "assignees"]);
}

#[test]
fn the_assignee_and_start_date_patch_captures_are_reproduced_apart_from_the_clock() {
    let sim = PlaneSim::start(lab_2026_12_02_seed()).unwrap();
    sim.with_world(|w| {
        let issue = w.issue_mut_keep_updated_at(OFFSITE);
        issue.assignees = vec![ADMIN_2.to_owned()];
        issue.start_date = Some("2026-12-05".to_owned());
    });
    for name in [
        "64-patch-assignees-add-member.json",
        "65-patch-start-date.json",
    ] {
        let path = fixtures_dir().join(name);
        let exchange = Json::parse(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let request_body = exchange.get("request").unwrap().get("body").unwrap();
        let capture = capture(name);
        let reply = send(
            &sim,
            "PATCH",
            &capture.target,
            &[("X-Api-Key", &sim.token())],
            &request_body.to_compact(),
        );
        assert_eq!(reply.status, 200, "{name}: {}", reply.text());
        let mut got = reply.json();
        let mut want = capture.body.clone();
        let stamp = got
            .get("updated_at")
            .and_then(Json::as_str)
            .unwrap()
            .to_owned();
        assert!(stamp.as_str() > "2026-12-02T16:53:17", "{name}: {stamp}");
        got.set("updated_at", Json::Null);
        want.set("updated_at", Json::Null);
        assert_eq!(got, want, "{name}");
        assert_eq!(reply.header("Allow"), capture.header("Allow"), "{name}");
    }
}

// ---------------------------------------------------------------------------------------------
// The cheap probe of a project (captures 90-92, workspace `perf`).

const PL01: &str = "49975212-2829-4bac-a2c3-f2a9c0d6b458";
/// The item capture 90 lists first and 91 names as the newest change (sequence 50).
const PL01_NEWEST: &str = "da7b782a-986f-48bf-adb0-62b113d57ebc";
const PL01_FIRST: &str = "fc661d4e-a81e-4a2d-b5d4-a3ce86fb9224";

fn perf_sim() -> PlaneSim {
    PlaneSim::start(Seed::lab_2026_12_07_perf()).unwrap()
}

fn perf_items(query: &str) -> String {
    format!("/api/v1/workspaces/perf/projects/{PL01}/work-items/{query}")
}

#[test]
fn probe_captures_are_reproduced_exactly() {
    let sim = perf_sim();
    for name in [
        "90-work-items-probe-ids-updated_at.json",
        "91-work-items-newest-updated.json",
        "92-work-items-full-no-expand.json",
    ] {
        replay(&sim, name);
    }
}

#[test]
fn the_probe_keeps_the_envelope_and_the_serializers_key_order() {
    let sim = perf_sim();
    let probe = get(&sim, &perf_items("?per_page=1000&fields=id,updated_at")).json();
    let newest = get(
        &sim,
        &perf_items("?per_page=1&order_by=-updated_at&fields=id,updated_at"),
    )
    .json();
    for envelope in [&probe, &newest] {
        assert_eq!(
            envelope.keys(),
            capture("90-work-items-probe-ids-updated_at.json")
                .body
                .keys(),
            "envelope keys and order"
        );
        // per_page=1 still counts the whole project.
        assert_eq!(envelope.get("total_count"), Some(&Json::Int(50)));
        assert_eq!(envelope.get("total_results"), Some(&Json::Int(50)));
    }
    let results = newest.get("results").unwrap().as_array().unwrap();
    assert_eq!(results.len(), 1);
    assert_eq!(results[0].keys(), ["id", "updated_at"]);
    assert_eq!(newest.get("total_pages"), Some(&Json::Int(50)));
    assert_eq!(newest.get("next_cursor"), Some(&Json::str("1:1:0")));
    // The order of `fields` does not matter: keys come in the serializer's order.
    let swapped = get(&sim, &perf_items("?per_page=1000&fields=updated_at,id")).json();
    assert_eq!(swapped, probe);
    // Also for one work item, and with an expansion `fields` leaves nothing to act on.
    let detail = get(
        &sim,
        &perf_items(&format!(
            "{PL01_FIRST}/?fields=updated_at,id&expand=state,labels,assignees"
        )),
    )
    .json();
    assert_eq!(detail.keys(), ["id", "updated_at"]);
    assert_eq!(
        detail.get("updated_at"),
        Some(&Json::str("2026-12-07T21:13:20.159778Z"))
    );
}

#[test]
fn the_newest_change_probe_follows_edits_and_ignores_label_renames() {
    let sim = perf_sim();
    let newest_probe = perf_items("?per_page=1&order_by=-updated_at&fields=id,updated_at");
    let newest = |sim: &PlaneSim| {
        let page = get(sim, &newest_probe).json();
        let item = page.get("results").unwrap().as_array().unwrap()[0].clone();
        (
            item.get("id").unwrap().as_str().unwrap().to_owned(),
            item.get("updated_at").unwrap().as_str().unwrap().to_owned(),
        )
    };
    let (id, captured_stamp) = newest(&sim);
    assert_eq!(id, PL01_NEWEST);
    // Renaming a label touches no work item's `updated_at` (README, captures 90-92).
    sim.with_world(|w| w.project_mut("PL01").labels[0].name = "renamed".to_owned());
    assert_eq!(
        newest(&sim),
        (PL01_NEWEST.to_owned(), captured_stamp.clone())
    );
    // A PATCH of labels moves the item's `updated_at`: it becomes the newest change.
    let label = sim.with_world(|w| w.project("PL01").unwrap().labels[1].id.clone());
    let patched = send(
        &sim,
        "PATCH",
        &perf_items(&format!("{PL01_FIRST}/")),
        &[("X-API-Key", &sim.token())],
        &format!(r#"{{"labels": ["{label}"]}}"#),
    );
    assert_eq!(patched.status, 200, "{}", patched.text());
    let (id, stamp) = newest(&sim);
    assert_eq!(id, PL01_FIRST);
    assert!(stamp > captured_stamp, "{stamp} after {captured_stamp}");
    // Rendered like every timestamp: UTC, `Z`, microseconds unless they are zero.
    let (date, time) = stamp.split_once('T').unwrap();
    assert_eq!(date.len(), 10, "{stamp}");
    assert!(time.ends_with('Z'), "{stamp}");
    assert!(matches!(time.len(), 9 | 16), "{stamp}");
    // The whole probe still lists all 50, in the default order (newest created first).
    let probe = get(&sim, &perf_items("?per_page=1000&fields=id,updated_at"));
    let listed = ids(&probe);
    assert_eq!(listed.len(), 50);
    assert_eq!(listed.first().map(String::as_str), Some(PL01_NEWEST));
    assert_eq!(listed.last().map(String::as_str), Some(PL01_FIRST));
}

// ---------------------------------------------------------------------------------------------
// The rate limit under concurrent clients.

/// Sends `per_client` requests from each of `clients` threads at once.
fn concurrently(sim: &PlaneSim, clients: usize, per_client: usize, target: &str) -> Vec<Reply> {
    let start = std::sync::Barrier::new(clients);
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                scope.spawn(|| {
                    start.wait();
                    (0..per_client)
                        .map(|_| get(sim, target))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect()
    })
}

#[test]
fn concurrent_clients_share_one_rate_limit_window() {
    let sim = lab_sim();
    sim.set_rate_limit(Some(5));
    let replies = concurrently(&sim, 6, 3, &work_items(ALPHA, "?fields=id,updated_at"));
    let (passed, refused): (Vec<&Reply>, Vec<&Reply>) =
        replies.iter().partition(|r| r.status == 200);
    assert_eq!((passed.len(), refused.len()), (5, 13));
    // Each passing request took its own place in the window.
    let mut remaining: Vec<&str> = passed
        .iter()
        .map(|r| r.header("X-RateLimit-Remaining").unwrap())
        .collect();
    remaining.sort_unstable();
    assert_eq!(remaining, ["0", "1", "2", "3", "4"]);
    for refusal in &refused {
        assert_eq!(refusal.status, 429);
        assert_eq!(refusal.json(), capture("30-ratelimit-5pm-req6.json").body);
        let retry: u64 = refusal.header("Retry-After").unwrap().parse().unwrap();
        assert!((59..=60).contains(&retry), "Retry-After {retry}");
        assert!(refusal.header("X-RateLimit-Remaining").is_none());
    }
    assert_eq!(sim.requests().len(), 18, "every request recorded once");
}

#[test]
fn a_request_is_refused_while_another_is_still_being_served() {
    let sim = lab_sim();
    sim.set_rate_limit(Some(1));
    // Work-item lists are slow (0.6 s each), everything else free; 2 workers, real time.
    sim.set_cost_model(Some(CostModel {
        per_request: 0.0,
        per_work_item_list: 0.6,
        probe_per_50_rows: 0.0,
        plain_per_50_rows: 0.0,
        expanded_per_50_rows: 0.0,
    }));
    sim.set_workers(Some(Workers::default()));
    std::thread::scope(|scope| {
        let slow = scope.spawn(|| get(&sim, &work_items(ALPHA, "")));
        let deadline = Instant::now() + Duration::from_secs(10);
        while sim.in_flight() == 0 {
            assert!(Instant::now() < deadline, "the slow request never arrived");
            std::thread::sleep(Duration::from_millis(5));
        }
        let asked = Instant::now();
        let refused = get(&sim, "/api/v1/users/me/");
        assert_eq!(refused.status, 429);
        assert!(refused.header("Retry-After").is_some());
        assert!(
            asked.elapsed() < Duration::from_millis(400),
            "answered on the second worker, not after the slow one: {:?}",
            asked.elapsed()
        );
        assert_eq!(sim.in_flight(), 1, "the slow request is still being served");
        let slow = slow.join().unwrap();
        assert_eq!(slow.status, 200);
        assert_eq!(slow.header("X-RateLimit-Remaining"), Some("0"));
    });
    assert_eq!(sim.max_in_flight(), 2);
    let cost = sim.cost();
    assert_eq!((cost.requests, cost.rows_plain), (2, 4));
    assert!((cost.server_seconds - 0.6).abs() < 1e-9, "{cost:?}");
}
