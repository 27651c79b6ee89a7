//! Plane's webhook deliveries, as Plane CE 1.3.1 builds them (`plane/bgtasks/webhook_task.py`,
//! `shared/plane-api.md` §7, the real deliveries in `tests/fixtures/plane/webhooks/`): the
//! payload `{event, action, webhook_id, workspace_id, data, activity}` written by Python's
//! `json.dumps` with its defaults, Plane's own headers, and the HMAC-SHA256 signature of the
//! body.
//!
//! `data` is re-read from the world when the delivery is made, as Plane's Celery task re-reads
//! the database: for `created`/`updated` the whole object as it is *now* (so several
//! deliveries of one edit all carry the final state), for `deleted` only `{"id": …}`.
//!
//! The simulator builds deliveries but does not send them: a test hands [`Delivery::body`] and
//! [`Delivery::headers`] to whatever receives webhooks. When to build one is the test's call;
//! what real Plane sends for which change is in `shared/plane-api.md` §7 (for instance no
//! delivery at all for archiving, for timeline drags, and — in 1.3.1 — for deleting a work
//! item).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::json::Json;
use super::shapes;
use super::world::World;

/// One webhook POST as Plane would send it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Delivery {
    /// The raw request body: ASCII JSON (`json.dumps` defaults), exactly the signed bytes.
    pub body: Vec<u8>,
    /// The headers Plane itself sets, in its order: `Content-Type`, `User-Agent`,
    /// `X-Plane-Delivery`, `X-Plane-Event` and, when the webhook has a secret,
    /// `X-Plane-Signature`. The transport headers `requests` adds are in
    /// [`Delivery::wire_headers`].
    pub headers: Vec<(String, String)>,
}

impl Delivery {
    /// The value of a header of [`Delivery::headers`], by case-insensitive name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as text (always ASCII).
    pub fn text(&self) -> &str {
        std::str::from_utf8(&self.body).expect("json.dumps writes ASCII")
    }

    /// The body parsed, keys in order.
    pub fn json(&self) -> Json {
        Json::parse(self.text()).expect("the body is JSON")
    }

    /// Every header of the real request, in the order the captured deliveries show them
    /// (`requests.post` puts its session defaults first, then Plane's headers, then
    /// `Content-Length`), for a client that writes the request itself. `host` is the
    /// receiver's `host[:port]`.
    pub fn wire_headers(&self, host: &str) -> Vec<(String, String)> {
        let mut headers = vec![
            ("Host".to_owned(), host.to_owned()),
            ("User-Agent".to_owned(), "Autopilot".to_owned()),
            ("Accept-Encoding".to_owned(), "gzip, deflate".to_owned()),
            ("Accept".to_owned(), "*/*".to_owned()),
            ("Connection".to_owned(), "keep-alive".to_owned()),
        ];
        headers.extend(
            self.headers
                .iter()
                .filter(|(k, _)| !k.eq_ignore_ascii_case("User-Agent"))
                .cloned(),
        );
        headers.push(("Content-Length".to_owned(), self.body.len().to_string()));
        headers
    }
}

/// The `activity` of a delivery, apart from its `actor` object. The default (every value
/// `null`, the key owner as actor) is what Plane sends for `created` and for a project's
/// `deleted`; an `updated` delivery names one changed request key, e.g.
/// `WebhookActivity::change("target_date", "2026-12-24", "2026-12-31")`.
#[derive(Clone, Debug, PartialEq)]
pub struct WebhookActivity {
    /// The request key that changed (`state`, `target_date`, `labels`, …), or `None`.
    pub field: Option<String>,
    /// The value before, as Plane's view dumped the instance (ids and dates as strings).
    pub old_value: Json,
    /// The value the request sent.
    pub new_value: Json,
    /// The user who made the change (id); `None` = the API key's owner.
    pub actor: Option<String>,
    /// Always `null` from the views that send webhooks.
    pub old_identifier: Option<String>,
    pub new_identifier: Option<String>,
}

impl Default for WebhookActivity {
    fn default() -> WebhookActivity {
        WebhookActivity {
            field: None,
            old_value: Json::Null,
            new_value: Json::Null,
            actor: None,
            old_identifier: None,
            new_identifier: None,
        }
    }
}

impl WebhookActivity {
    /// The activity of one changed key of an update request.
    pub fn change(field: &str, old_value: impl Into<Json>, new_value: impl Into<Json>) -> Self {
        WebhookActivity {
            field: Some(field.to_owned()),
            old_value: old_value.into(),
            new_value: new_value.into(),
            ..WebhookActivity::default()
        }
    }

    /// Builder: the change was made by this user (an id of the world's users).
    pub fn by(mut self, user_id: &str) -> Self {
        self.actor = Some(user_id.to_owned());
        self
    }
}

/// `X-Plane-Signature`: the lowercase hex HMAC-SHA256 of `body` under `secret` (its UTF-8
/// bytes), with no prefix. Also for tests that sign a body of their own.
pub fn webhook_signature(secret: &str, body: &[u8]) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC accepts keys of any length");
    mac.update(body);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

impl World {
    /// The payload Plane would post for `event` (`issue` or `project`) and `action`
    /// (`created`, `updated` or `deleted`) on the object `id`, as it stands in the world now.
    ///
    /// Panics, naming the reason, where Plane would send nothing: an unknown event or action,
    /// or `created`/`updated` for an object the world does not hold or has soft-deleted (the
    /// task re-reads it through `objects`, which hides deleted rows, and gives up silently).
    /// An archived issue is still found and sent. `issue` `deleted` gives `{"id": …}` whether
    /// or not the issue exists; note that Plane 1.3.1 sends no delivery at all when a work
    /// item is deleted (dropped in PR #6951, restored by the open PR #8055).
    pub fn webhook_payload(
        &self,
        event: &str,
        action: &str,
        id: &str,
        activity: &WebhookActivity,
    ) -> Json {
        let data = match (event, action) {
            ("issue" | "project", "deleted") => Json::obj().with("id", Json::str(id)),
            ("issue", "created" | "updated") => {
                let issue = self.issue(id).unwrap_or_else(|| {
                    panic!("webhook {event} {action}: the world has no issue {id}")
                });
                if let Some(deleted_at) = &issue.deleted_at {
                    panic!(
                        "webhook {event} {action}: issue {id} was deleted at {deleted_at}; Plane \
                         re-reads the issue through Issue.objects, which hides deleted rows, so \
                         it sends no delivery"
                    );
                }
                shapes::issue_for_webhook(self, issue)
            }
            ("project", "created" | "updated") => {
                let project = self
                    .projects
                    .iter()
                    .find(|p| p.id == id)
                    .unwrap_or_else(|| {
                        panic!("webhook {event} {action}: the world has no project {id}")
                    });
                shapes::project_for_webhook(self, project)
            }
            ("issue" | "project", _) => {
                panic!("webhook {event} {action}: Plane's actions are created, updated and deleted")
            }
            _ => {
                panic!("webhook {event} {action}: only the issue and project events are simulated")
            }
        };
        let actor = match &activity.actor {
            Some(actor) => self
                .user(actor)
                .unwrap_or_else(|| panic!("webhook activity: the world has no user {actor}")),
            None => self.owner(),
        };
        let activity = Json::obj()
            .with("field", Json::opt_str(activity.field.as_deref()))
            .with("new_value", activity.new_value.clone())
            .with("old_value", activity.old_value.clone())
            .with("actor", shapes::user_lite(actor))
            .with(
                "old_identifier",
                Json::opt_str(activity.old_identifier.as_deref()),
            )
            .with(
                "new_identifier",
                Json::opt_str(activity.new_identifier.as_deref()),
            );
        Json::obj()
            .with("event", Json::str(event))
            .with("action", Json::str(action))
            .with("webhook_id", Json::str(&self.webhook_id))
            .with("workspace_id", Json::str(&self.workspace_id))
            .with("data", data)
            .with("activity", activity)
    }

    /// The delivery Plane would post for `event`/`action` on `id` (see
    /// [`World::webhook_payload`]), with a null activity, signed with `secret` (no
    /// `X-Plane-Signature` when `secret` is empty, as Plane signs only with a secret).
    pub fn webhook_delivery(
        &mut self,
        event: &str,
        action: &str,
        id: &str,
        secret: &str,
    ) -> Delivery {
        self.webhook_delivery_with(event, action, id, secret, &WebhookActivity::default())
    }

    /// [`World::webhook_delivery`] with an explicit activity. Each delivery gets a fresh
    /// `X-Plane-Delivery` id (deterministic, and without using up the ids of new objects).
    pub fn webhook_delivery_with(
        &mut self,
        event: &str,
        action: &str,
        id: &str,
        secret: &str,
        activity: &WebhookActivity,
    ) -> Delivery {
        let body = self
            .webhook_payload(event, action, id, activity)
            .to_python_default()
            .into_bytes();
        let mut headers = vec![
            ("Content-Type".to_owned(), "application/json".to_owned()),
            ("User-Agent".to_owned(), "Autopilot".to_owned()),
            ("X-Plane-Delivery".to_owned(), self.new_delivery_id()),
            ("X-Plane-Event".to_owned(), event.to_owned()),
        ];
        if !secret.is_empty() {
            headers.push((
                "X-Plane-Signature".to_owned(),
                webhook_signature(secret, &body),
            ));
        }
        Delivery { body, headers }
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::plane_sim::{PlaneSim, Seed, SeedIssue, SeedProject};

    /// The secret the captured deliveries were signed with.
    const LAB_SECRET: &str = "plane_wh_lab0000000000000000000000000000001";
    const PROBE: &str = "006c0b3e-e09a-4824-a12d-e7e673cdfda2";
    const SEED01: &str = "bcefa3a3-ead4-4c43-b915-d3966e01acac";
    const USER: &str = "9be036ed-f8f9-4d2c-a2bb-a38f3d9b2105";
    const BACKLOG: &str = "00cbf0d2-f58d-491f-9ce1-c2a99eba5d9a";
    const DONE: &str = "20ae997a-3434-4803-9b41-ad11749d8e0d";

    fn fixture(name: &str) -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../tests/fixtures/plane/webhooks")
            .join(name)
    }

    /// A captured delivery: its body and its headers.
    fn capture(stem: &str) -> (Vec<u8>, Json) {
        let body = std::fs::read(fixture(&format!("{stem}.body"))).unwrap();
        let headers = std::fs::read_to_string(fixture(&format!("{stem}.headers.json"))).unwrap();
        let headers = Json::parse(&headers)
            .unwrap()
            .get("headers")
            .unwrap()
            .clone();
        (body, headers)
    }

    fn captured_header<'h>(headers: &'h Json, name: &str) -> &'h str {
        headers.get(name).and_then(Json::as_str).unwrap()
    }

    /// The lab world of the API captures (`Seed::lab`) as it stood when the webhook captures
    /// were taken: the work item `ALPHA-6` "Webhook probe" just created, and the project
    /// `SEED01` created two minutes later (the capture-time name of the project the paging
    /// captures call GAMMA), both rebuilt from what the deliveries show.
    fn webhook_lab_seed() -> Seed {
        let mut seed = Seed::lab();
        seed.webhook_id = "068ac1b0-1fc4-43d8-b64a-71d22d35ebdc".to_owned();
        seed.issues.push(SeedIssue {
            id: PROBE.to_owned(),
            sequence_id: 6,
            priority: "high".to_owned(),
            target_date: Some("2026-12-24".to_owned()),
            sort_order: 95535.0,
            created_at: Some("2026-11-22T03:47:49.694578Z".to_owned()),
            updated_at: Some("2026-11-22T03:47:49.810132Z".to_owned()),
            ..SeedIssue::new("ALPHA", "Webhook probe")
        });
        seed.projects.push(SeedProject {
            id: SEED01.to_owned(),
            identifier: "SEED01".to_owned(),
            name: "Seed project 01".to_owned(),
            created_at: Some("2026-11-22T03:49:36.981311Z".to_owned()),
            updated_at: Some("2026-11-22T03:49:36.981337Z".to_owned()),
            logo_props: Json::parse(
                r##"{"icon": {"name": "cached", "color": "#e57a00"}, "in_use": "icon"}"##,
            )
            .unwrap(),
            ..SeedProject::default()
        });
        seed
    }

    fn webhook_lab_world() -> World {
        World::from_seed(webhook_lab_seed()).unwrap()
    }

    /// Asserts a delivery equals a capture byte for byte, signature and Plane's headers
    /// included (`X-Plane-Delivery` is random in Plane, so only its form is compared).
    fn assert_reproduces(delivery: &Delivery, stem: &str) {
        let (body, headers) = capture(stem);
        assert_eq!(
            delivery.text(),
            std::str::from_utf8(&body).unwrap(),
            "{stem}: body"
        );
        assert_eq!(delivery.body, body, "{stem}: body bytes");
        for name in [
            "Content-Type",
            "User-Agent",
            "X-Plane-Event",
            "X-Plane-Signature",
        ] {
            assert_eq!(
                delivery.header(name),
                Some(captured_header(&headers, name)),
                "{stem}: {name}"
            );
        }
        let id = delivery.header("X-Plane-Delivery").unwrap();
        assert!(is_uuid4(id), "{stem}: X-Plane-Delivery {id}");
        // The full header list, in the captured order (names and the fixed values).
        let wire = delivery.wire_headers(captured_header(&headers, "Host"));
        let names: Vec<&str> = wire.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, headers.keys(), "{stem}: header order");
        for (name, value) in &wire {
            if name != "X-Plane-Delivery" {
                assert_eq!(value, captured_header(&headers, name), "{stem}: {name}");
            }
        }
    }

    fn is_uuid4(s: &str) -> bool {
        let groups: Vec<&str> = s.split('-').collect();
        groups.iter().map(|g| g.len()).eq([8, 4, 4, 4, 12])
            && s.chars()
                .all(|c| c == '-' || matches!(c, '0'..='9' | 'a'..='f'))
            && groups[2].starts_with('4')
            && groups[3].starts_with(['8', '9', 'a', 'b'])
    }

    #[test]
    fn plane_sim_webhook_issue_created_is_the_capture_byte_for_byte() {
        let mut world = webhook_lab_world();
        let delivery = world.webhook_delivery("issue", "created", PROBE, LAB_SECRET);
        assert_reproduces(&delivery, "1795319269894-0001");
        assert_eq!(
            delivery.header("X-Plane-Signature"),
            Some("56a4a4da6c4cda46048a7da12a4fd1ba9808ab2d7e65d00fad283151ced00371")
        );
    }

    /// One PATCH of state and due date: two deliveries, both carrying the issue after the
    /// whole request, each naming one changed key.
    #[test]
    fn plane_sim_webhook_issue_updates_are_the_captures_byte_for_byte() {
        let mut world = webhook_lab_world();
        let issue = world.issue_mut_keep_updated_at(PROBE);
        issue.state = Some(DONE.to_owned());
        issue.target_date = Some("2026-12-31".to_owned());
        issue.completed_at = Some("2026-11-22T03:47:52.847461Z".to_owned());
        issue.updated_at = Some("2026-11-22T03:47:52.902436Z".to_owned());
        issue.updated_by = Some(USER.to_owned());
        let state = WebhookActivity::change("state", BACKLOG, DONE);
        let delivery = world.webhook_delivery_with("issue", "updated", PROBE, LAB_SECRET, &state);
        assert_reproduces(&delivery, "1795319272980-0002");
        let due = WebhookActivity::change("target_date", "2026-12-24", "2026-12-31").by(USER);
        let delivery = world.webhook_delivery_with("issue", "updated", PROBE, LAB_SECRET, &due);
        assert_reproduces(&delivery, "1795319273014-0003");
    }

    /// The deliveries of the 2026-12-02 captures: adding a second assignee (`PATCH` 64), then
    /// moving `start_date` (65). `data.assignees` keeps the assignment order (the admin first),
    /// unlike the expanded REST answers, which put the newest user first.
    #[test]
    fn plane_sim_webhook_assignee_and_start_date_updates_are_the_captures_byte_for_byte() {
        const OFFSITE: &str = "fd15a77b-d8b9-4b09-8444-0560afc0c8a8";
        const ADMIN: &str = "8007022e-74f4-49aa-a657-7bf1004510ea";
        const BEA: &str = "ff870aaf-5915-402a-9ef5-72d65e82eea9";
        let mut world = World::from_seed(Seed::lab_2026_12_02()).unwrap();
        let issue = world.issue_mut_keep_updated_at(OFFSITE);
        issue.start_date = Some("2026-12-05".to_owned());
        issue.updated_at = Some("2026-12-02T16:53:14.495535Z".to_owned());
        let ids = |ids: &[&str]| Json::Arr(ids.iter().map(|id| Json::str(*id)).collect());
        let assignees = WebhookActivity::change("assignees", ids(&[ADMIN]), ids(&[ADMIN, BEA]));
        let delivery =
            world.webhook_delivery_with("issue", "updated", OFFSITE, LAB_SECRET, &assignees);
        assert_reproduces(&delivery, "1796230394544-0135");
        let issue = world.issue_mut_keep_updated_at(OFFSITE);
        issue.start_date = Some("2026-12-06".to_owned());
        issue.updated_at = Some("2026-12-02T16:53:17.524628Z".to_owned());
        let start = WebhookActivity::change("start_date", "2026-12-05", "2026-12-06");
        let delivery = world.webhook_delivery_with("issue", "updated", OFFSITE, LAB_SECRET, &start);
        assert_reproduces(&delivery, "1796230397611-0136");
    }

    #[test]
    fn plane_sim_webhook_project_created_is_the_capture_byte_for_byte() {
        let mut world = webhook_lab_world();
        let delivery = world.webhook_delivery("project", "created", SEED01, LAB_SECRET);
        assert_reproduces(&delivery, "1795319377232-0005");
    }

    #[test]
    fn plane_sim_webhook_deletes_name_only_the_id() {
        let mut world = webhook_lab_world();
        world.delete_issue(PROBE);
        for (event, id) in [("issue", PROBE), ("project", SEED01), ("issue", "gone")] {
            let delivery = world.webhook_delivery(event, "deleted", id, LAB_SECRET);
            let json = delivery.json();
            assert_eq!(
                json.keys(),
                [
                    "event",
                    "action",
                    "webhook_id",
                    "workspace_id",
                    "data",
                    "activity"
                ]
            );
            assert_eq!(
                json.get("data").unwrap().to_python_default(),
                format!(r#"{{"id": "{id}"}}"#)
            );
            assert_eq!(json.get("action").and_then(Json::as_str), Some("deleted"));
            assert_eq!(delivery.header("x-plane-event"), Some(event));
            let activity = json.get("activity").unwrap();
            assert!(activity.get("field").unwrap().is_null());
            assert_eq!(
                activity
                    .get("actor")
                    .unwrap()
                    .get("id")
                    .and_then(Json::as_str),
                Some(USER)
            );
        }
        // The documented test vector of shared/plane-api.md §7 (shortened actor).
        let body = r#"{"event": "project", "action": "deleted", "webhook_id": "11111111-1111-1111-1111-111111111111", "workspace_id": "22222222-2222-2222-2222-222222222222", "data": {"id": "33333333-3333-3333-3333-333333333333"}, "activity": {"field": null, "new_value": null, "old_value": null, "actor": {"id": "44444444-4444-4444-4444-444444444444", "display_name": "J\u00f6rg"}, "old_identifier": null, "new_identifier": null}}"#;
        assert_eq!(
            webhook_signature("plane_wh_00000000000000000000000000000000", body.as_bytes()),
            "05b96e3800fbe1e0ce619ae0111fbb41e69a94089b57bf121079ad27a4e38554"
        );
        assert_eq!(Json::parse(body).unwrap().to_python_default(), body);
    }

    #[test]
    #[should_panic(expected = "sends no delivery")]
    fn plane_sim_webhook_update_of_a_deleted_issue_panics() {
        let mut world = webhook_lab_world();
        world.delete_issue(PROBE);
        world.webhook_delivery("issue", "updated", PROBE, LAB_SECRET);
    }

    #[test]
    fn plane_sim_webhook_body_is_ascii_with_surrogate_pairs() {
        let mut world = webhook_lab_world();
        world.users[0].display_name = "Jörg".to_owned();
        let id = world.add_issue(SeedIssue {
            description_html: "<p>Caf&#233; 🎉 <b>ok</b> &amp; done</p>".to_owned(),
            labels: vec!["bug".to_owned()],
            assignees: vec![USER.to_owned()],
            ..SeedIssue::new("ALPHA", "Geburtstag 🎂 von Jörg")
        });
        let delivery = world.webhook_delivery("issue", "created", &id, LAB_SECRET);
        let text = delivery.text();
        assert!(text.is_ascii());
        assert!(
            text.contains(r#""name": "Geburtstag \ud83c\udf82 von J\u00f6rg""#),
            "{text}"
        );
        assert!(text.contains(r#""display_name": "J\u00f6rg""#), "{text}");
        assert!(
            text.contains(r#""description_stripped": "Caf\u00e9 \ud83c\udf89 ok & done""#),
            "{text}"
        );
        assert!(
            text.contains(
                r##""labels": [{"id": "3b4ae928-8976-4fe6-96d8-170b865867a2", "name": "bug", "color": "#e5484d"}]"##
            ),
            "{text}"
        );
        // Parsing gives the characters back.
        let data = delivery.json().get("data").unwrap().clone();
        assert_eq!(
            data.get("name").and_then(Json::as_str),
            Some("Geburtstag 🎂 von Jörg")
        );
        let assignees = data.get("assignees").unwrap().as_array().unwrap();
        assert_eq!(
            assignees[0].get("display_name").and_then(Json::as_str),
            Some("Jörg")
        );
    }

    #[test]
    fn plane_sim_webhook_headers_and_signature() {
        let mut world = webhook_lab_world();
        let first = world.webhook_delivery("issue", "created", PROBE, "s3cret");
        let names: Vec<&str> = first.headers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "Content-Type",
                "User-Agent",
                "X-Plane-Delivery",
                "X-Plane-Event",
                "X-Plane-Signature"
            ]
        );
        assert_eq!(first.header("content-type"), Some("application/json"));
        assert_eq!(first.header("USER-AGENT"), Some("Autopilot"));
        assert_eq!(first.header("X-Plane-Event"), Some("issue"));
        assert_eq!(first.header("X-Missing"), None);
        // A fresh HMAC over the raw body verifies the signature.
        let signature = first.header("X-Plane-Signature").unwrap();
        let mut mac = Hmac::<Sha256>::new_from_slice(b"s3cret").unwrap();
        mac.update(&first.body);
        let expected: Vec<u8> = (0..signature.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&signature[i..i + 2], 16).unwrap())
            .collect();
        assert!(mac.verify_slice(&expected).is_ok());
        assert_eq!(signature.len(), 64);
        assert!(
            signature
                .chars()
                .all(|c| matches!(c, '0'..='9' | 'a'..='f'))
        );
        // Another delivery of the same change: same body, a new delivery id.
        let second = world.webhook_delivery("issue", "created", PROBE, "s3cret");
        assert_eq!(second.body, first.body);
        assert_ne!(
            second.header("X-Plane-Delivery"),
            first.header("X-Plane-Delivery")
        );
        assert!(is_uuid4(second.header("X-Plane-Delivery").unwrap()));
        // Without a secret, Plane sends no signature.
        let unsigned = world.webhook_delivery("issue", "created", PROBE, "");
        assert_eq!(unsigned.header("X-Plane-Signature"), None);
        assert_eq!(unsigned.body, first.body);
    }

    #[test]
    fn plane_sim_webhook_data_is_the_world_as_it_is_now() {
        let sim = PlaneSim::start(webhook_lab_seed()).unwrap();
        let webhook_id = sim.with_world(|w| w.webhook_id.clone());
        assert_eq!(webhook_id, "068ac1b0-1fc4-43d8-b64a-71d22d35ebdc");
        // Archived (Plane still finds it) and moved: the delivery shows both.
        sim.with_world(|w| {
            w.archive_issue(PROBE);
            w.issue_mut(PROBE).target_date = Some("2027-01-15".to_owned());
        });
        let delivery = sim.webhook_delivery("issue", "updated", PROBE, LAB_SECRET);
        let data = delivery.json().get("data").unwrap().clone();
        assert!(data.get("archived_at").and_then(Json::as_str).is_some());
        assert_eq!(
            data.get("target_date").and_then(Json::as_str),
            Some("2027-01-15")
        );
        assert_eq!(data.get("updated_by").and_then(Json::as_str), Some(USER));
        // A seed without a webhook id gets a stable one, the same on every run.
        let a = World::from_seed(Seed::lab()).unwrap();
        let b = World::from_seed(Seed::lab()).unwrap();
        assert_eq!(a.webhook_id, b.webhook_id);
        assert!(is_uuid4(&a.webhook_id), "{}", a.webhook_id);
    }
}
