//! End to end: `--span start-to-due` (issue 15, point 4). An issue with a start date on or
//! before its due date becomes an all-day event over the whole stretch; otherwise the seed rule
//! holds. Switching the setting updates events in place: same href, alarms kept. Feeds follow.

#[macro_use]
mod support;

use serde_json::json;
use support::{Env, ServerKind, props, with_alarm};

fn seed() -> serde_json::Value {
    json!({
        "workspace": "acme",
        "projects": [{"identifier": "WEB", "name": "Website"}],
        "issues": [
            {"project": "WEB", "name": "Stretch", "start_date": "2026-12-01", "target_date": "2026-12-03"},
            {"project": "WEB", "name": "Backwards", "start_date": "2026-12-05", "target_date": "2026-12-03"},
            {"project": "WEB", "name": "Same day", "start_date": "2026-12-04", "target_date": "2026-12-04"},
            {"project": "WEB", "name": "No start", "target_date": "2026-12-06"}
        ]
    })
}

/// (DTSTART, DTEND) of an issue's stored event, as written.
fn days(env: &Env, issue: &str) -> (String, String) {
    let (_, ics) = env.event("WEB", issue).expect("the event exists");
    let one = |name: &str| {
        let all = props(&ics, name);
        assert_eq!(all.len(), 1, "{name} once: {ics}");
        assert!(all[0].0.eq_ignore_ascii_case("VALUE=DATE"), "{ics}");
        all[0].1.clone()
    };
    (one("DTSTART"), one("DTEND"))
}

fn pair(a: &str, b: &str) -> (String, String) {
    (a.to_string(), b.to_string())
}

fn sync_ok(env: &Env, span: &str) -> String {
    let run = env.run_with(&["sync", "--span", span], &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    run.stdout
}

on_both_servers!(start_to_due_covers_the_stretch_and_switching_updates_in_place);
fn start_to_due_covers_the_stretch_and_switching_updates_in_place(server: ServerKind) {
    let env = Env::start(server, seed());
    let out = sync_ok(&env, "start-to-due");
    assert!(out.contains("4 created"), "{out}");
    assert_eq!(days(&env, "Stretch"), pair("20261201", "20261204"));
    // A start after the due date: the seed rule.
    assert_eq!(days(&env, "Backwards"), pair("20261203", "20261204"));
    assert_eq!(days(&env, "Same day"), pair("20261204", "20261205"));
    assert_eq!(days(&env, "No start"), pair("20261206", "20261207"));

    // A user adds an alarm to the stretch; the mode goes back to `due` and forth again: the
    // event is updated in place each time, alarm and href kept, nothing created or deleted.
    let href = env.event_href("WEB", "Stretch");
    let (_, ics) = env.event("WEB", "Stretch").unwrap();
    assert_eq!(env.user.put(&href, &with_alarm(&ics)).unwrap() / 100, 2);
    let out = sync_ok(&env, "due");
    assert!(
        out.contains("0 created, 1 updated, 0 deleted"),
        "only the stretch changes: {out}"
    );
    assert_eq!(days(&env, "Stretch"), pair("20261203", "20261204"));
    let out = sync_ok(&env, "start-to-due");
    assert!(out.contains("0 created, 1 updated, 0 deleted"), "{out}");
    assert_eq!(days(&env, "Stretch"), pair("20261201", "20261204"));
    let (_, now) = env.user.get(&href).unwrap().expect("same href");
    assert!(now.contains("BEGIN:VALARM"), "the alarm is kept: {now}");
    let objects = env.user.list_objects(&env.calendar_href("WEB")).unwrap();
    assert_eq!(objects.len(), 4, "{objects:?}");
    // And the setting is stable: nothing to do.
    let out = sync_ok(&env, "start-to-due");
    assert!(out.contains("0 created, 0 updated, 0 deleted"), "{out}");
}

/// A signed "issue updated" delivery for `issue`, run with `--span start-to-due`.
fn spanned_webhook(env: &Env, issue: &str) -> support::Run {
    let id = env.issue_id(issue);
    let delivery = env
        .sim
        .webhook_delivery("issue", "updated", &id, support::WEBHOOK_SECRET);
    let signature = delivery
        .header("X-Plane-Signature")
        .unwrap_or_default()
        .to_string();
    let run = env.webhook(
        &delivery.body,
        Some(&signature),
        &[("CALPLANEBOT_SPAN", "start-to-due")],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    run
}

on_both_servers!(a_webhook_says_why_a_start_after_the_due_date_is_not_spanned);
fn a_webhook_says_why_a_start_after_the_due_date_is_not_spanned(server: ServerKind) {
    let env = Env::start(server, seed());
    sync_ok(&env, "start-to-due");
    let run = spanned_webhook(&env, "Backwards");
    assert!(
        run.stderr
            .contains("starts on 2026-12-05, after its due date 2026-12-03"),
        "{}",
        run.stderr
    );
    assert_eq!(days(&env, "Backwards"), pair("20261203", "20261204"));
    // A webhook of the stretch under the same setting leaves it spanned.
    let run = spanned_webhook(&env, "Stretch");
    assert!(!run.stderr.contains("after its due date"), "{}", run.stderr);
    assert_eq!(days(&env, "Stretch"), pair("20261201", "20261204"));
}

on_both_servers!(feeds_follow_the_span_setting);
fn feeds_follow_the_span_setting(server: ServerKind) {
    let env = Env::start(server, seed());
    let dir = env.scratch("feeds");
    std::fs::create_dir_all(&dir).unwrap();
    let dir_text = dir.display().to_string();
    let vars = [
        ("CALPLANEBOT_FEED_DIR", dir_text.as_str()),
        (
            "CALPLANEBOT_FEED_SECRET",
            "span-test-feed-secret-0123456789",
        ),
        ("CALPLANEBOT_SPAN", "start-to-due"),
    ];
    let run = env.run_with(&["sync"], &vars);
    assert_eq!(run.code, 0, "{}", run.stderr);
    let mut feeds = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        if text.contains("Stretch") {
            feeds += 1;
            assert!(
                text.contains("DTSTART;VALUE=DATE:20261201\r\n"),
                "the feed spans the stretch: {text}"
            );
        }
    }
    assert!(
        feeds >= 2,
        "the project's and the workspace's feed: {feeds}"
    );
    assert_eq!(days(&env, "Stretch"), pair("20261201", "20261204"));
}
