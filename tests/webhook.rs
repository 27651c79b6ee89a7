//! End to end: `calplanebot webhook` (issue 4) fed Plane-shaped signed deliveries made by the
//! Plane simulator, against a real Radicale behind the counting proxy — and once through the
//! real Debian `webhook` shim with the repository's own hooks file and wrapper.

#[macro_use]
mod support;

use std::time::{Duration, Instant};

use calplanebot_testbed::plane_sim::SeedIssue;
use serde_json::json;
use support::{Env, ServerKind, WEBHOOK_SECRET, prop, with_alarm};

fn seed() -> serde_json::Value {
    json!({
        "workspace": "acme",
        "users": [
            {"id": "00000000-0000-4000-8000-0000000000a1", "first_name": "Alice", "last_name": "A", "email": "alice@acme.test", "display_name": "alice"}
        ],
        "projects": [
            {"identifier": "WEB", "name": "Website"},
            {"identifier": "OPS", "name": "Operations"}
        ],
        "issues": [
            {"project": "WEB", "name": "Existing", "target_date": "2026-12-01", "priority": "high"},
            {"project": "WEB", "name": "Second", "target_date": "2026-12-02"},
            {"project": "OPS", "name": "Ops task", "target_date": "2026-12-05"},
            {"project": "WEB", "name": "Undated"}
        ]
    })
}

/// A delivery as Plane would send it now, signed with the configured secret.
fn delivery(env: &Env, event: &str, action: &str, id: &str) -> (Vec<u8>, String) {
    let delivery = env.sim.webhook_delivery(event, action, id, WEBHOOK_SECRET);
    let signature = delivery
        .header("X-Plane-Signature")
        .expect("a signed delivery")
        .to_string();
    (delivery.body, signature)
}

fn deliver(env: &Env, event: &str, action: &str, id: &str) -> support::Run {
    let (body, signature) = delivery(env, event, action, id);
    env.webhook(&body, Some(&signature), &[])
}

fn add_issue(env: &Env, project: &str, name: &str, due: &str) -> String {
    let project = env.project_id(project);
    env.sim
        .with_world(|w| w.add_issue(SeedIssue::new(project, name).due(due)))
}

fn reset_counts(env: &Env) {
    env.sim.reset_requests();
    env.proxy.reset();
}

fn plane_requests(env: &Env) -> usize {
    env.sim.requests().len()
}

fn caldav_requests(env: &Env) -> usize {
    env.proxy.counts().values().sum()
}

on_both_servers!(
    a_new_dated_issue_gets_its_event_in_three_requests_and_a_date_move_updates_it_in_place
);
fn a_new_dated_issue_gets_its_event_in_three_requests_and_a_date_move_updates_it_in_place(
    server: ServerKind,
) {
    let env = Env::start(server, seed());
    assert_eq!(env.sync(&[]).code, 0);
    reset_counts(&env);

    let id = add_issue(&env, "WEB", "Fresh from a webhook", "2027-03-01");
    let started = Instant::now();
    let run = deliver(&env, "issue", "created", &id);
    let took = started.elapsed();
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("1 created"), "{}", run.stdout);
    let (_, ics) = env
        .event("WEB", "Fresh from a webhook")
        .expect("the event exists");
    assert_eq!(prop(&ics, "DTSTART").as_deref(), Some("20270301"));
    assert!(
        prop(&ics, "SUMMARY")
            .unwrap()
            .contains("Fresh from a webhook")
    );
    // One Plane GET (the issue with its project), one CalDAV GET (no event yet), one PUT.
    assert_eq!(plane_requests(&env), 1, "{:?}", env.sim.requests());
    assert_eq!(env.caldav_count("GET"), 1);
    assert_eq!(env.caldav_count("PUT"), 1);
    assert_eq!(caldav_requests(&env), 2, "{:?}", env.proxy.counts());
    eprintln!(
        "single-issue webhook run: {} Plane + {} CalDAV requests, {:.3} s wall (debug build)",
        plane_requests(&env),
        caldav_requests(&env),
        took.as_secs_f64()
    );

    // The user adds a reminder in their calendar app; then the date moves in Plane.
    let href = env.event_href("WEB", "Fresh from a webhook");
    let status = env.user.put(&href, &with_alarm(&ics)).expect("PUT works");
    assert!(
        (200..300).contains(&status),
        "the user's edit is stored: {status}"
    );
    env.sim
        .with_world(|w| w.issue_mut(&id).target_date = Some("2027-03-15".into()));
    reset_counts(&env);
    let run = deliver(&env, "issue", "updated", &id);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("1 updated"), "{}", run.stdout);
    let (_, moved) = env.event("WEB", "Fresh from a webhook").expect("same href");
    assert_eq!(prop(&moved, "DTSTART").as_deref(), Some("20270315"));
    assert!(moved.contains("BEGIN:VALARM"), "the reminder survives");
    assert_eq!(env.caldav_count("PUT"), 1);
    assert_eq!(env.caldav_count("DELETE"), 0);
    assert_eq!(caldav_requests(&env), 2);
    assert_eq!(plane_requests(&env), 1);

    // The same delivery again: nothing to write.
    reset_counts(&env);
    let run = deliver(&env, "issue", "updated", &id);
    assert_eq!(run.code, 0);
    assert_eq!(env.writes(), 0);
    assert!(
        run.stdout.contains("0 created, 0 updated, 0 deleted"),
        "{}",
        run.stdout
    );
}

on_both_servers!(wrong_missing_and_malformed_deliveries_are_rejected_before_any_request);
fn wrong_missing_and_malformed_deliveries_are_rejected_before_any_request(server: ServerKind) {
    let env = Env::start(server, seed());
    assert_eq!(env.sync(&[]).code, 0);
    let id = env.issue_id("Existing");
    env.sim
        .with_world(|w| w.issue_mut(&id).target_date = Some("2027-05-05".into()));
    let (body, signature) = delivery(&env, "issue", "updated", &id);
    let before = env.event("WEB", "Existing").expect("synced");
    reset_counts(&env);

    let mut tampered = body.clone();
    let at = tampered.len() / 2;
    tampered[at] ^= 0x01;
    let cases: Vec<(&str, Vec<u8>, Option<String>, &str)> = vec![
        (
            "one byte changed",
            tampered,
            Some(signature.clone()),
            "does not match",
        ),
        ("no signature", body.clone(), None, "no signature"),
        (
            "signature too short",
            body.clone(),
            Some(signature[..63].to_string()),
            "not 64 hexadecimal digits",
        ),
        (
            "signed with another secret",
            body.clone(),
            Some(
                env.sim
                    .webhook_delivery("issue", "updated", &id, "plane_wh_not_the_secret")
                    .header("X-Plane-Signature")
                    .unwrap()
                    .to_string(),
            ),
            "does not match",
        ),
    ];
    for (what, body, signature, says) in cases {
        let run = env.webhook(&body, signature.as_deref(), &[]);
        assert_eq!(run.code, 6, "{what}: {}", run.stderr);
        assert!(run.stderr.contains(says), "{what}: {}", run.stderr);
        assert!(
            run.stderr.contains("nothing was fetched or written"),
            "{what}"
        );
        assert!(!run.stderr.contains(WEBHOOK_SECRET) && !run.stdout.contains(WEBHOOK_SECRET));
    }

    // Correctly signed, but not a Plane delivery.
    for garbage in [
        &b"not json"[..],
        b"[]",
        b"{\"event\": \"issue\", \"data\": {\"id\": \"x\"}}",
    ] {
        let run = env.webhook(garbage, Some(&sign(garbage)), &[]);
        assert_eq!(run.code, 6, "{}", run.stderr);
        assert!(run.stderr.contains("rejected"), "{}", run.stderr);
    }
    let run = env.webhook(b"", Some(&sign(b"")), &[]);
    assert_eq!(run.code, 6);
    assert!(run.stderr.contains("empty"), "{}", run.stderr);

    assert_eq!(plane_requests(&env), 0, "nothing was fetched");
    assert_eq!(caldav_requests(&env), 0, "nothing was read or written");
    assert_eq!(env.event("WEB", "Existing"), Some(before.clone()));

    // No secret configured (issue 12, point 6): fail closed, before any request.
    let run = env.webhook(&body, None, &[("PLANE_WEBHOOK_SECRET", "")]);
    assert_eq!(run.code, 6, "{}", run.stderr);
    assert!(
        run.stderr.contains("PLANE_WEBHOOK_SECRET is not set")
            && run.stderr.contains("nothing was fetched or written"),
        "{}",
        run.stderr
    );
    assert_eq!(plane_requests(&env), 0, "nothing was fetched");
    assert_eq!(caldav_requests(&env), 0, "nothing was read or written");
    assert_eq!(env.event("WEB", "Existing"), Some(before));

    // Only the operator's explicit, unsafe opt-out makes an unsigned delivery count.
    let run = env.webhook(
        &body,
        None,
        &[
            ("PLANE_WEBHOOK_SECRET", ""),
            ("CALPLANEBOT_WEBHOOK_UNSIGNED", "1"),
        ],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("is not checked"), "{}", run.stderr);
    let (_, after) = env.event("WEB", "Existing").unwrap();
    assert_eq!(prop(&after, "DTSTART").as_deref(), Some("20270505"));
}

/// The signature of `body` under the tests' secret, as Plane computes it.
fn sign(body: &[u8]) -> String {
    calplanebot_testbed::plane_sim::webhook_signature(WEBHOOK_SECRET, body)
}

on_both_servers!(an_issue_gone_from_plane_loses_its_event_and_a_live_one_keeps_it);
fn an_issue_gone_from_plane_loses_its_event_and_a_live_one_keeps_it(server: ServerKind) {
    let env = Env::start(server, seed());
    assert_eq!(env.sync(&[]).code, 0);
    let existing = env.issue_id("Existing");
    let second = env.issue_id("Second");
    let ops = env.issue_id("Ops task");

    // Deleted in Plane; a (future) delete delivery names only the id.
    env.sim.with_world(|w| w.delete_issue(&existing));
    let existing_href = env.event_href("WEB", "Existing");
    reset_counts(&env);
    let run = deliver(&env, "issue", "deleted", &existing);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stdout.contains("1 deleted"), "{}", run.stdout);
    assert_eq!(env.user.get(&existing_href).unwrap(), None);
    assert_eq!(env.caldav_count("DELETE"), 1);

    // Archived in Plane (no delivery of its own): an older update delivery arrives → 404.
    env.sim.with_world(|w| w.archive_issue(&second));
    let run = deliver(&env, "issue", "updated", &second);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(env.event("WEB", "Second"), None);

    // A delete delivery for an issue Plane still has: Plane is the truth, the event stays.
    reset_counts(&env);
    let before = env.event("OPS", "Ops task").expect("synced");
    let run = deliver(&env, "issue", "deleted", &ops);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(env.writes(), 0);
    assert_eq!(env.event("OPS", "Ops task"), Some(before));

    // The date removed in Plane: the event goes.
    env.sim.with_world(|w| w.issue_mut(&ops).target_date = None);
    let run = deliver(&env, "issue", "updated", &ops);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(env.event("OPS", "Ops task"), None);

    // A delete delivery for an issue that never had an event: nothing to do.
    let undated = env.issue_id("Undated");
    reset_counts(&env);
    let run = deliver(&env, "issue", "deleted", &undated);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(env.writes(), 0);
    assert_eq!(plane_requests(&env), 0, "no event, no question to Plane");
}

on_both_servers!(a_burst_of_five_deliveries_for_one_issue_ends_in_one_put);
fn a_burst_of_five_deliveries_for_one_issue_ends_in_one_put(server: ServerKind) {
    let env = Env::start(server, seed());
    assert_eq!(env.sync(&[]).code, 0);
    let id = add_issue(&env, "WEB", "Edited in the web app", "2027-02-02");
    // One edit in the web app: one delivery per changed field, all sent at once.
    let deliveries: Vec<(Vec<u8>, String)> = (0..5)
        .map(|n| {
            delivery(
                &env,
                "issue",
                if n == 0 { "created" } else { "updated" },
                &id,
            )
        })
        .collect();
    reset_counts(&env);
    let codes: Vec<i32> = std::thread::scope(|scope| {
        let handles: Vec<_> = deliveries
            .iter()
            .map(|(body, signature)| scope.spawn(|| env.webhook(body, Some(signature), &[]).code))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(codes, vec![0; 5]);
    assert_eq!(env.caldav_count("PUT"), 1, "{:?}", env.proxy.counts());
    assert_eq!(env.writes(), 1);
    assert_eq!(plane_requests(&env), 5, "each run reads the issue fresh");
    assert!(env.event("WEB", "Edited in the web app").is_some());
}

on_both_servers!(project_deliveries_rename_the_calendar_and_never_delete);
fn project_deliveries_rename_the_calendar_and_never_delete(server: ServerKind) {
    let env = Env::start(server, seed());
    assert_eq!(env.sync(&[]).code, 0);
    let web = env.project_id("WEB");
    env.sim
        .with_world(|w| w.project_mut("WEB").name = "Web Site".into());
    let run = deliver(&env, "project", "updated", &web);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let calendars = env.user.list_calendars(&env.home()).unwrap();
    assert!(
        calendars
            .iter()
            .any(|(href, name)| *href == env.calendar_href("WEB")
                && name.as_deref() == Some("Plane: Web Site")),
        "{calendars:?}"
    );
    let (_, ics) = env.event("WEB", "Existing").unwrap();
    assert!(
        ics.contains("Web Site"),
        "the events show the new name: {ics}"
    );
    assert!(env.event("OPS", "Ops task").is_some());

    // Deleted project: nothing is deleted, nothing is even asked.
    reset_counts(&env);
    let run = deliver(&env, "project", "deleted", &web);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("deletes nothing"), "{}", run.stderr);
    assert_eq!(plane_requests(&env) + caldav_requests(&env), 0);
    assert!(env.event("WEB", "Existing").is_some());

    // A project that is no longer syncable (archived): nothing to do.
    env.sim
        .with_world(|w| w.project_mut("WEB").archived_at = Some("2026-11-22T00:00:00Z".into()));
    let run = deliver(&env, "project", "updated", &web);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("nothing to do"), "{}", run.stderr);
    assert!(env.event("WEB", "Existing").is_some());
}

on_both_servers!(other_events_need_no_request);
fn other_events_need_no_request(server: ServerKind) {
    let env = Env::start(server, seed());
    reset_counts(&env);
    for event in ["cycle", "module", "issue_comment"] {
        let body = format!(
            r#"{{"event": "{event}", "action": "created", "webhook_id": "068ac1b0-1fc4-43d8-b64a-71d22d35ebdc", "data": {{"id": "11111111-1111-1111-1111-111111111111"}}}}"#
        );
        let run = env.webhook(body.as_bytes(), Some(&sign(body.as_bytes())), &[]);
        assert_eq!(run.code, 0, "{}", run.stderr);
    }
    assert_eq!(plane_requests(&env) + caldav_requests(&env), 0);
}

on_both_servers!(without_a_cache_the_calendar_is_discovered_created_and_remembered);
fn without_a_cache_the_calendar_is_discovered_created_and_remembered(server: ServerKind) {
    let env = Env::start(server, seed());
    // No sync yet: no calendar, no cache.
    let id = add_issue(&env, "OPS", "First ever", "2027-04-04");
    let run = deliver(&env, "issue", "created", &id);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(env.caldav_count("MKCALENDAR"), 1);
    assert!(env.event("OPS", "First ever").is_some());
    let calendars = env.user.list_calendars(&env.home()).unwrap();
    assert!(
        calendars
            .iter()
            .any(|(_, name)| name.as_deref() == Some("Plane: Operations")),
        "{calendars:?}"
    );

    // The next delivery for that project uses the remembered calendar.
    let next = add_issue(&env, "OPS", "Second ever", "2027-04-05");
    reset_counts(&env);
    let run = deliver(&env, "issue", "created", &next);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(caldav_requests(&env), 2, "{:?}", env.proxy.counts());

    // The calendar is deleted behind calplanebot's back: that run fails and forgets the
    // calendar; the next one discovers again and recreates it.
    env.user.delete(&env.calendar_href("OPS")).unwrap();
    let third = add_issue(&env, "OPS", "Third ever", "2027-04-06");
    let run = deliver(&env, "issue", "created", &third);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let run = deliver(&env, "issue", "created", &third);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(env.event("OPS", "Third ever").is_some());
    // The full sync then brings back the rest.
    assert_eq!(env.sync(&[]).code, 0);
    assert!(env.event("OPS", "First ever").is_some());
}

on_both_servers!(single_calendar_mode_needs_no_discovery);
fn single_calendar_mode_needs_no_discovery(server: ServerKind) {
    let env = Env::start(server, seed());
    let calendar = format!("{}shared/", env.home());
    env.user.mkcalendar(&calendar, "Team").unwrap();
    let url = format!("{}{calendar}", env.proxy.url());
    let id = add_issue(&env, "WEB", "Shared one", "2027-06-01");
    let (body, signature) = delivery(&env, "issue", "created", &id);
    reset_counts(&env);
    let run = env.webhook(&body, Some(&signature), &[("CALDAV_CALENDAR_URL", &url)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(caldav_requests(&env), 2, "{:?}", env.proxy.counts());
    let href = format!("{calendar}plane-issue-{id}.ics");
    assert!(env.user.get(&href).unwrap().is_some());

    // Deleted in Plane: found in the one calendar, deleted.
    env.sim.with_world(|w| w.delete_issue(&id));
    let (body, signature) = delivery(&env, "issue", "deleted", &id);
    let run = env.webhook(&body, Some(&signature), &[("CALDAV_CALENDAR_URL", &url)]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(env.user.get(&href).unwrap(), None);
}

on_both_servers!(through_the_real_webhook_shim);
/// The real Debian `webhook` binary, the repository's `webhook/hooks.json` and wrapper, and the
/// real calplanebot binary: what an operator installs.
fn through_the_real_webhook_shim(server: ServerKind) {
    let env = Env::start(server, seed());
    assert_eq!(env.sync(&[]).code, 0);
    let repo = env!("CARGO_MANIFEST_DIR");
    let mut vars: Vec<(String, String)> = env
        .vars()
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
    vars.push(("PLANE_WEBHOOK_SECRET".into(), WEBHOOK_SECRET.into()));
    vars.push((
        "CALPLANEBOT_HOOK_COMMAND".into(),
        format!("{repo}/webhook/calplanebot-hook"),
    ));
    vars.push((
        "CALPLANEBOT_BIN".into(),
        env!("CARGO_BIN_EXE_calplanebot").into(),
    ));
    let shim = calplanebot_testbed::webhook_shim::WebhookShim::start(
        std::path::Path::new(&format!("{repo}/webhook/hooks.json")),
        &vars,
    )
    .expect("the webhook shim starts (Debian package `webhook`)");

    let post = |event: &str, action: &str, id: &str, secret: &str| {
        let delivery = env.sim.webhook_delivery(event, action, id, secret);
        let headers: Vec<(&str, &str)> = delivery
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        shim.post(&headers, &delivery.body)
            .expect("the shim answers")
    };
    let wait_for = |what: &str, check: &dyn Fn() -> bool| {
        let started = Instant::now();
        while !check() {
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "{what} within 2 s; shim log:\n{}",
                shim.log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        started.elapsed()
    };

    // A new dated issue: in Radicale within 2 seconds of the POST.
    let id = add_issue(&env, "WEB", "Via the shim", "2027-07-07");
    let started = Instant::now();
    let (status, _) = post("issue", "created", &id, WEBHOOK_SECRET);
    assert_eq!(status, 200, "{}", shim.log());
    wait_for("the event", &|| env.event("WEB", "Via the shim").is_some());
    eprintln!(
        "shim: event stored {:.3} s after the POST",
        started.elapsed().as_secs_f64()
    );

    // Wrongly signed: 403 from the shim, calplanebot never runs, nothing changes.
    env.sim
        .with_world(|w| w.issue_mut(&id).target_date = Some("2027-08-08".into()));
    let before = env.event("WEB", "Via the shim").unwrap();
    // The event is on the server a moment before the proxy has relayed the PUT's answer and
    // recorded it: let the run that stored it end before counting from zero.
    std::thread::sleep(Duration::from_millis(300));
    reset_counts(&env);
    let (status, _) = post("issue", "updated", &id, "plane_wh_wrong");
    assert_eq!(status, 403, "{}", shim.log());
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(plane_requests(&env) + caldav_requests(&env), 0);
    assert_eq!(env.event("WEB", "Via the shim"), Some(before));

    // Correctly signed date move: the event is updated in place.
    let href = env.event_href("WEB", "Via the shim");
    let (status, _) = post("issue", "updated", &id, WEBHOOK_SECRET);
    assert_eq!(status, 200);
    wait_for("the moved date", &|| {
        env.user
            .get(&href)
            .unwrap()
            .is_some_and(|(_, ics)| prop(&ics, "DTSTART").as_deref() == Some("20270808"))
    });
    assert_eq!(env.caldav_count("DELETE"), 0);
}

on_both_servers!(an_archived_project_keeps_its_events_on_the_webhook_path_as_in_sync);
/// Issue 12, point 2: Plane answers 404 for an issue of an archived project, exactly as for a
/// deleted issue. `sync` deletes nothing of an archived project; a webhook run must not either.
fn an_archived_project_keeps_its_events_on_the_webhook_path_as_in_sync(server: ServerKind) {
    let env = Env::start(server, seed());
    assert_eq!(env.sync(&[]).code, 0);
    let existing = env.issue_id("Existing");
    let before = env.event("WEB", "Existing").expect("synced");
    // A delivery made while the project was live arrives after it was archived.
    let (body, signature) = delivery(&env, "issue", "updated", &existing);
    env.sim.with_world(|w| {
        w.project_mut("WEB").archived_at = Some("2026-12-01T09:00:00Z".into());
    });
    reset_counts(&env);
    let run = env.webhook(&body, Some(&signature), &[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert!(run.stderr.contains("archived"), "{}", run.stderr);
    assert_eq!(env.writes(), 0);
    assert_eq!(env.event("WEB", "Existing"), Some(before.clone()));
    // `sync` agrees: nothing of the archived project is deleted.
    let run = env.sync(&[]);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(env.event("WEB", "Existing"), Some(before));

    // A truly deleted issue of a live project still loses its event on the webhook path.
    let ops = env.issue_id("Ops task");
    env.sim.with_world(|w| w.delete_issue(&ops));
    let run = deliver(&env, "issue", "deleted", &ops);
    assert_eq!(run.code, 0, "{}", run.stderr);
    assert_eq!(env.event("OPS", "Ops task"), None);
}

on_both_servers!(an_unreadable_work_item_is_a_partial_failure_not_a_configuration_error);
/// Issue 12, point 9: a work item Plane sends in a form calplanebot cannot read fails the run
/// with status 1 (the README's "partial failure"), not 2 (configuration), and keeps its event.
fn an_unreadable_work_item_is_a_partial_failure_not_a_configuration_error(server: ServerKind) {
    use calplanebot_testbed::plane_sim::{Fault, FaultRule};
    let env = Env::start(server, seed());
    assert_eq!(env.sync(&[]).code, 0);
    let existing = env.issue_id("Existing");
    let web = env.project_id("WEB");
    let before = env.event("WEB", "Existing").expect("synced");
    let (body, signature) = delivery(&env, "issue", "updated", &existing);
    let broken = json!({
        "id": existing, "project": web, "name": "Existing", "sequence_id": 1,
        "priority": "blocker", "state": null, "labels": [], "assignees": [],
        "target_date": "2026-12-01"
    });
    env.sim.inject_fault(
        FaultRule::new(
            &format!("/work-items/{existing}/"),
            Fault::Status(200, broken.to_string()),
        )
        .method("GET"),
    );
    reset_counts(&env);
    let run = env.webhook(&body, Some(&signature), &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("could not be read"), "{}", run.stderr);
    assert!(run.stderr.contains("priority"), "{}", run.stderr);
    assert_eq!(env.writes(), 0);
    assert_eq!(env.event("WEB", "Existing"), Some(before));
}
