//! End to end: assignee views (`--assignee` / `CALPLANEBOT_ASSIGNEE`). One calendar per person
//! in the calendar home, or one view in a shared calendar (single-calendar mode) next to the
//! team's events and a user's own; reassigning moves events on sync and webhook runs; `check`
//! and `--dry-run` say which calendar each view fills; resolution without the members list.

#[macro_use]
mod support;

use std::collections::{BTreeMap, BTreeSet};

use calplanebot::mapping::event::view_id;
use calplanebot_testbed::proxy::{FaultRule, ProxyFault};
use serde_json::json;
use support::{Env, NO_OP, Run, ServerKind, assert_summary, calendars, line, prop};

const ALICE: &str = "00000000-0000-4000-8000-0000000000a1";
const BOB: &str = "00000000-0000-4000-8000-0000000000b2";
const CAROL: &str = "00000000-0000-4000-8000-0000000000c3";

/// Alice (the key's owner) has three dated issues over two projects (one shared with Bob) and
/// an undated one; Bob two dated; Carol one; one dated issue has nobody.
fn seed() -> serde_json::Value {
    json!({
        "workspace": "acme",
        "users": [
            {"id": ALICE, "first_name": "Alice", "last_name": "A", "email": "alice@example.com"},
            {"id": BOB, "first_name": "Bob", "last_name": "B", "email": "bob@example.com", "display_name": "Bobby"},
            {"id": CAROL, "first_name": "Carol", "last_name": "C", "email": "carol@example.com", "display_name": "carol"}
        ],
        "projects": [
            {"identifier": "WEB", "name": "Website"},
            {"identifier": "OPS", "name": "Operations"}
        ],
        "issues": [
            {"project": "WEB", "name": "Launch", "target_date": "2026-12-01", "assignees": [ALICE]},
            {"project": "WEB", "name": "Pairing", "target_date": "2026-12-02", "assignees": [ALICE, BOB]},
            {"project": "OPS", "name": "Invoices", "target_date": "2026-12-03", "assignees": [BOB]},
            {"project": "OPS", "name": "Audit", "target_date": "2026-12-04", "assignees": [CAROL]},
            {"project": "OPS", "name": "Rotate keys", "target_date": "2026-12-05", "assignees": [ALICE]},
            {"project": "OPS", "name": "Backup check", "target_date": "2026-12-06"},
            {"project": "WEB", "name": "Someday", "assignees": [ALICE]}
        ]
    })
}

/// Alice's display name as the seed generates it (the e-mail's local part).
const ALICE_NAME: &str = "alice";
const BOB_NAME: &str = "Bobby";

/// The calendar of member `id` in the home.
fn member_calendar(env: &Env, id: &str) -> String {
    format!("{}plane-member-{id}/", env.home())
}

/// The full URL of a collection behind the proxy.
fn url(env: &Env, href: &str) -> String {
    format!("{}{href}", env.proxy.url())
}

/// Runs `calplanebot ARGS` with `extra` and asserts it succeeded.
fn ok(env: &Env, args: &[&str], extra: &[(&str, &str)]) -> Run {
    let run = env.run_with(args, extra);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    run
}

/// The dated issues (id → name) Plane holds now, of `member` only when given.
fn dated(env: &Env, member: Option<&str>) -> BTreeMap<String, String> {
    env.sim.with_world(|w| {
        w.issues
            .iter()
            .filter(|i| i.target_date.is_some() && w.is_listable(i))
            .filter(|i| member.is_none_or(|m| i.assignees.iter().any(|a| a == m)))
            .map(|i| (i.id.clone(), i.name.clone()))
            .collect()
    })
}

/// The hrefs in a collection.
fn hrefs(env: &Env, collection: &str) -> BTreeSet<String> {
    env.user
        .list_objects(collection)
        .expect("the calendar lists")
        .into_iter()
        .map(|(href, _)| href)
        .collect()
}

/// href → etag of a collection's objects.
fn etags(env: &Env, collection: &str) -> BTreeMap<String, String> {
    env.user
        .list_objects(collection)
        .expect("the calendar lists")
        .into_iter()
        .collect()
}

/// The events of one view in a calendar: href → (UID, issue name).
type Events = BTreeMap<String, (String, String)>;

/// What one view should have written into `calendar`: href → (UID, issue name), for the
/// issues `issues`; `view` None is the team view.
fn expected_events(
    calendar: &str,
    view: Option<&str>,
    issues: &BTreeMap<String, String>,
) -> Events {
    issues
        .iter()
        .map(|(id, name)| {
            let stem = match view {
                Some(view) => format!("plane-issue-{id}-{view}"),
                None => format!("plane-issue-{id}"),
            };
            (
                format!("{calendar}{stem}.ics"),
                (format!("{stem}@calplanebot"), name.clone()),
            )
        })
        .collect()
}

/// Asserts that `calendar` holds exactly `events` (plus the hrefs of `others`), each at its
/// href with its UID, the view's mark (none for the team view) and its issue's name.
fn assert_events(
    env: &Env,
    calendar: &str,
    views: &[(Option<&str>, &Events)],
    others: &BTreeSet<String>,
) {
    let mut want: BTreeSet<String> = others.clone();
    for (_, events) in views {
        want.extend(events.keys().cloned());
    }
    assert_eq!(hrefs(env, calendar), want, "the objects of {calendar}");
    for (view, events) in views {
        for (href, (uid, name)) in events.iter() {
            let (_, ics) = env.user.get(href).unwrap().expect("the event is there");
            assert_eq!(prop(&ics, "UID").as_deref(), Some(uid.as_str()), "{ics}");
            assert_eq!(prop(&ics, "X-CALPLANEBOT-VIEW").as_deref(), *view, "{ics}");
            assert!(prop(&ics, "X-CALPLANEBOT-WORKSPACE").is_some(), "{ics}");
            assert!(prop(&ics, "X-CALPLANEBOT-PROJECT").is_some(), "{ics}");
            let summary = prop(&ics, "SUMMARY").unwrap_or_default();
            assert!(summary.ends_with(name.as_str()), "{name:?}: {ics}");
        }
    }
}

/// A signed "issue updated" delivery for issue `id`, run with `CALPLANEBOT_ASSIGNEE=who`.
fn webhook_as(env: &Env, id: &str, who: &str) -> Run {
    let delivery = env
        .sim
        .webhook_delivery("issue", "updated", id, support::WEBHOOK_SECRET);
    let signature = delivery
        .header("X-Plane-Signature")
        .expect("a signed delivery")
        .to_string();
    let run = env.webhook(
        &delivery.body,
        Some(&signature),
        &[("CALPLANEBOT_ASSIGNEE", who)],
    );
    assert_eq!(run.code, 0, "{}", run.stderr);
    run
}

on_both_servers!(assignee_me_gets_one_calendar_with_exactly_their_dated_issues);
fn assignee_me_gets_one_calendar_with_exactly_their_dated_issues(server: ServerKind) {
    let env = Env::start(server, seed());
    let before = calendars(&env);
    let run = ok(&env, &["sync", "--assignee", "me"], &[]);
    assert_summary(&run, "3 created, 0 updated, 0 deleted");
    let calendar = member_calendar(&env, ALICE);
    let mut want = before.clone();
    want.push((calendar.clone(), Some(format!("Plane: {ALICE_NAME}"))));
    want.sort();
    assert_eq!(
        calendars(&env),
        want,
        "one new calendar, no per-project one"
    );
    let view = view_id(&[ALICE]);
    let alices = dated(&env, Some(ALICE));
    assert_eq!(
        alices.values().cloned().collect::<BTreeSet<_>>(),
        ["Launch", "Pairing", "Rotate keys"]
            .map(String::from)
            .into(),
        "the seed as the test means it"
    );
    let events = expected_events(&calendar, Some(&view), &alices);
    assert_events(&env, &calendar, &[(Some(&view), &events)], &BTreeSet::new());
    let after_first = etags(&env, &calendar);

    let run = ok(&env, &["sync", "--assignee", "me"], &[]);
    assert_summary(&run, NO_OP);

    // The same person by e-mail (any case), display name and id: the same calendar, unchanged.
    for who in ["ALICE@Example.COM", ALICE_NAME, ALICE] {
        env.proxy.reset();
        let run = ok(&env, &["sync"], &[("CALPLANEBOT_ASSIGNEE", who)]);
        assert_summary(&run, NO_OP);
        assert_eq!(env.writes(), 0, "{who}: {:?}", env.proxy.counts());
        assert_eq!(calendars(&env), want, "{who}");
        assert_eq!(etags(&env, &calendar), after_first, "{who}");
    }

    // Nobody by that name: exit 2 naming it, nothing written.
    env.proxy.reset();
    let run = env.run_with(&["sync", "--assignee", "nobody@example.com"], &[]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("nobody@example.com"), "{}", run.stderr);
    assert_eq!(env.writes(), 0, "{:?}", env.proxy.counts());
    assert_eq!(calendars(&env), want);
    assert_eq!(etags(&env, &calendar), after_first);
}

on_both_servers!(reassigning_moves_the_event_between_personal_calendars);
fn reassigning_moves_the_event_between_personal_calendars(server: ServerKind) {
    let env = Env::start(server, seed());
    let (a_who, b_who) = ("alice@example.com", BOB_NAME);
    let (a_cal, b_cal) = (member_calendar(&env, ALICE), member_calendar(&env, BOB));
    let (a_view, b_view) = (view_id(&[ALICE]), view_id(&[BOB]));
    let a_events = || expected_events(&a_cal, Some(&a_view), &dated(&env, Some(ALICE)));
    let b_events = || expected_events(&b_cal, Some(&b_view), &dated(&env, Some(BOB)));
    let none = BTreeSet::new();

    let run = ok(&env, &["sync", "--assignee", a_who], &[]);
    assert_summary(&run, "3 created, 0 updated, 0 deleted");
    let run = ok(&env, &["sync", "--assignee", b_who], &[]);
    assert_summary(&run, "2 created, 0 updated, 0 deleted");
    assert_events(&env, &a_cal, &[(Some(&a_view), &a_events())], &none);
    assert_events(&env, &b_cal, &[(Some(&b_view), &b_events())], &none);
    let (a_before, b_before) = (etags(&env, &a_cal), etags(&env, &b_cal));

    // Launch goes from Alice to Bob: A's next sync drops it, B's next sync adds it.
    let launch = env.issue_id("Launch");
    let a_launch = format!("{a_cal}plane-issue-{launch}-{a_view}.ics");
    let b_launch = format!("{b_cal}plane-issue-{launch}-{b_view}.ics");
    env.sim
        .with_world(|w| w.issue_mut(&launch).assignees = vec![BOB.to_string()]);
    let run = ok(&env, &["sync", "--assignee", a_who], &[]);
    assert_summary(&run, "0 created, 0 updated, 1 deleted");
    assert_events(&env, &a_cal, &[(Some(&a_view), &a_events())], &none);
    assert!(!hrefs(&env, &a_cal).contains(&a_launch));
    let run = ok(&env, &["sync", "--assignee", b_who], &[]);
    assert_summary(&run, "1 created, 0 updated, 0 deleted");
    assert_events(&env, &b_cal, &[(Some(&b_view), &b_events())], &none);
    assert!(hrefs(&env, &b_cal).contains(&b_launch));
    // The other events were not rewritten.
    let mut a_others = a_before.clone();
    a_others.remove(&a_launch);
    assert_eq!(etags(&env, &a_cal), a_others);
    let mut b_now = etags(&env, &b_cal);
    b_now.remove(&b_launch);
    assert_eq!(b_now, b_before);

    // And back to Alice, by webhook deliveries to both configurations.
    env.sim
        .with_world(|w| w.issue_mut(&launch).assignees = vec![ALICE.to_string()]);
    webhook_as(&env, &launch, a_who);
    webhook_as(&env, &launch, b_who);
    assert_events(&env, &a_cal, &[(Some(&a_view), &a_events())], &none);
    assert_events(&env, &b_cal, &[(Some(&b_view), &b_events())], &none);
    assert!(hrefs(&env, &a_cal).contains(&a_launch));
    assert!(!hrefs(&env, &b_cal).contains(&b_launch));
    let mut a_now = etags(&env, &a_cal);
    a_now.remove(&a_launch);
    assert_eq!(a_now, a_others, "A's other events untouched");
    assert_eq!(etags(&env, &b_cal), b_before, "B's other events untouched");
    // The webhooks left nothing for the next syncs to do.
    assert_summary(&ok(&env, &["sync", "--assignee", a_who], &[]), NO_OP);
    assert_summary(&ok(&env, &["sync", "--assignee", b_who], &[]), NO_OP);
}

/// An event a person made in their calendar app.
const FOREIGN: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//Example//Calendar app//EN\r\nBEGIN:VEVENT\r\nUID:dentist-2026-12@example.com\r\nDTSTAMP:20261101T090000Z\r\nDTSTART:20261204T090000Z\r\nDTEND:20261204T100000Z\r\nSUMMARY:Dentist\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n";

on_both_servers!(team_and_personal_views_share_one_calendar_in_every_order);
fn team_and_personal_views_share_one_calendar_in_every_order(server: ServerKind) {
    share_one_calendar(server, false);
    share_one_calendar(server, true);
}

/// The team configuration (no assignee) and Alice's (`--assignee me`) write into one calendar
/// that also holds a foreign event: after every run, the calendar holds exactly what each
/// configuration wrote on its last run, and the foreign event as it was.
fn share_one_calendar(server: ServerKind, personal_first: bool) {
    let env = Env::start(server, seed());
    let calendar = format!("{}shared/", env.home());
    assert_eq!(env.user.mkcalendar(&calendar, "Shared").unwrap(), 201);
    let foreign_href = format!("{calendar}dentist.ics");
    assert_eq!(env.user.put(&foreign_href, FOREIGN).unwrap() / 100, 2);
    let foreign = env.user.get(&foreign_href).unwrap().expect("stored");
    let calendar_url = url(&env, &calendar);
    let single = [("CALDAV_CALENDAR_URL", calendar_url.as_str())];
    let view = view_id(&[ALICE]);
    let others = BTreeSet::from([foreign_href.clone()]);

    // What each configuration wrote on its last run (empty until it ran).
    let mut team = BTreeMap::new();
    let mut personal = BTreeMap::new();
    let run_one = |is_personal: bool, team: &mut BTreeMap<_, _>, personal: &mut BTreeMap<_, _>| {
        let label = if is_personal { "personal" } else { "team" };
        let run = if is_personal {
            ok(&env, &["sync", "--assignee", "me"], &single)
        } else {
            ok(&env, &["sync"], &single)
        };
        if is_personal {
            *personal = expected_events(&calendar, Some(&view), &dated(&env, Some(ALICE)));
        } else {
            *team = expected_events(&calendar, None, &dated(&env, None));
        }
        assert_events(
            &env,
            &calendar,
            &[(None, &*team), (Some(&view), &*personal)],
            &others,
        );
        assert_eq!(
            env.user.get(&foreign_href).unwrap().as_ref(),
            Some(&foreign),
            "{label}: the foreign event is untouched"
        );
        run
    };
    let order = if personal_first {
        [true, false]
    } else {
        [false, true]
    };

    let first = run_one(order[0], &mut team, &mut personal);
    let n = if order[0] { 3 } else { 6 };
    assert_summary(&first, &format!("{n} created, 0 updated, 0 deleted"));
    let second = run_one(order[1], &mut team, &mut personal);
    let n = if order[1] { 3 } else { 6 };
    assert_summary(&second, &format!("{n} created, 0 updated, 0 deleted"));
    assert_summary(&run_one(order[0], &mut team, &mut personal), NO_OP);

    // Plane changes: a rename, Rotate keys from Alice to Carol, Someday gets a due date.
    let (pairing, rotate, someday) = (
        env.issue_id("Pairing"),
        env.issue_id("Rotate keys"),
        env.issue_id("Someday"),
    );
    env.sim.with_world(|w| {
        w.issue_mut(&pairing).name = "Pairing session".into();
        w.issue_mut(&rotate).assignees = vec![CAROL.to_string()];
        w.issue_mut(&someday).target_date = Some("2026-12-09".into());
    });
    let first = run_one(order[0], &mut team, &mut personal);
    let second = run_one(order[1], &mut team, &mut personal);
    for (is_personal, run) in [(order[0], &first), (order[1], &second)] {
        // Personal: Someday created, Rotate keys deleted; team: Someday created.
        let summary = if is_personal {
            "1 created, 1 updated, 1 deleted"
        } else {
            "1 created"
        };
        assert_summary(run, summary);
        if !is_personal {
            assert_summary(run, "0 deleted");
        }
    }
    assert_summary(&run_one(order[0], &mut team, &mut personal), NO_OP);
    assert_summary(&run_one(order[1], &mut team, &mut personal), NO_OP);
    assert_eq!(team.len(), 7);
    assert_eq!(personal.len(), 3);

    // Neither configuration reads the other's events, even listing in full: a REPORT that
    // names one of the other view's hrefs would fail here.
    let launch = env.issue_id("Launch");
    let full = [single[0], ("CALPLANEBOT_FULL_LISTING_EVERY", "0")];
    for (args, theirs) in [
        (&["sync"][..], format!("plane-issue-{launch}-{view}.ics")),
        (
            &["sync", "--assignee", "me"][..],
            format!("plane-issue-{launch}.ics"),
        ),
    ] {
        env.proxy.clear_faults();
        env.proxy.inject(
            FaultRule::new(ProxyFault::Answer {
                status: 500,
                content_type: "text/plain".into(),
                body: b"read another view's event".to_vec(),
            })
            .method("REPORT")
            .body_contains(&theirs)
            .always(),
        );
        env.proxy.reset();
        let run = ok(&env, args, &full);
        assert_summary(&run, NO_OP);
        assert!(
            env.proxy.requests().iter().all(|r| !r.injected),
            "{args:?} asked for {theirs}: {:?}",
            env.proxy.counts()
        );
    }
    env.proxy.clear_faults();
}

on_both_servers!(check_and_dry_run_name_each_views_calendar);
fn check_and_dry_run_name_each_views_calendar(server: ServerKind) {
    let env = Env::start(server, seed());
    let run = ok(&env, &["check", "--assignee", "me"], &[]);
    let views = line(&run, "✓", "assignee views");
    assert!(views.contains(ALICE_NAME), "{views}");
    assert!(views.contains("3 dated issues"), "{views}");
    assert_eq!(env.writes(), 0, "{:?}", env.proxy.counts());

    let run = ok(
        &env,
        &["sync", "--dry-run", "--assignee", "me", "--assignee", BOB],
        &[],
    );
    let lines: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("assignee view "))
        .collect();
    assert_eq!(lines.len(), 2, "{}", run.stdout);
    for (name, id, n) in [(ALICE_NAME, ALICE, 3), (BOB_NAME, BOB, 2)] {
        let prefix = format!("assignee view \"{name}\": {n} dated issues into ");
        let line = lines
            .iter()
            .find(|l| l.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no line {prefix:?} in\n{}", run.stdout));
        assert!(
            line.ends_with(&format!("plane-member-{id}/")),
            "{line}: the member's calendar"
        );
    }
    assert_summary(&run, "would create 5, update 0, delete 0");
    assert_eq!(env.writes(), 0, "{:?}", env.proxy.counts());
    assert_eq!(env.caldav_count("MKCALENDAR"), 0);
    assert_eq!(env.caldav_count("PUT"), 0);
    assert_eq!(calendars(&env), Vec::new());
}

on_both_servers!(without_the_members_list_views_resolve_from_me_and_the_assignees_seen);
fn without_the_members_list_views_resolve_from_me_and_the_assignees_seen(server: ServerKind) {
    let env = Env::start(server, seed());
    // The key's owner is a Guest of the workspace: Plane refuses it the members list.
    env.sim.with_world(|w| w.users[0].role = Some(5));
    let none = BTreeSet::new();

    let run = ok(&env, &["sync", "--assignee", "me"], &[]);
    assert_summary(&run, "3 created, 0 updated, 0 deleted");
    let a_cal = member_calendar(&env, ALICE);
    let a_view = view_id(&[ALICE]);
    let a_events = expected_events(&a_cal, Some(&a_view), &dated(&env, Some(ALICE)));
    assert_events(&env, &a_cal, &[(Some(&a_view), &a_events)], &none);

    // Bob by id: he is an assignee of the issues seen.
    let run = ok(&env, &["sync", "--assignee", BOB], &[]);
    assert_summary(&run, "2 created, 0 updated, 0 deleted");
    let b_cal = member_calendar(&env, BOB);
    let b_view = view_id(&[BOB]);
    let b_events = expected_events(&b_cal, Some(&b_view), &dated(&env, Some(BOB)));
    assert_events(&env, &b_cal, &[(Some(&b_view), &b_events)], &none);
    assert_eq!(
        calendars(&env),
        vec![
            (a_cal.clone(), Some(format!("Plane: {ALICE_NAME}"))),
            (b_cal.clone(), Some(format!("Plane: {BOB_NAME}"))),
        ]
    );

    // An e-mail needs the members list.
    env.proxy.reset();
    let run = env.run_with(&["sync", "--assignee", "bob@example.com"], &[]);
    assert_eq!(run.code, 2, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stderr.contains("bob@example.com"), "{}", run.stderr);
    assert!(
        run.stderr.contains("may not read the workspace's members"),
        "says the members list is not readable: {}",
        run.stderr
    );
    assert_eq!(env.writes(), 0, "{:?}", env.proxy.counts());
}

/// A signed delivery `issue ACTION` for `id`, run with `CALPLANEBOT_ASSIGNEE=who` and `extra`.
fn deliver_as(env: &Env, action: &str, id: &str, who: &str, extra: &[(&str, &str)]) -> Run {
    let delivery = env
        .sim
        .webhook_delivery("issue", action, id, support::WEBHOOK_SECRET);
    let signature = delivery
        .header("X-Plane-Signature")
        .expect("a signed delivery")
        .to_string();
    let mut vars = vec![("CALPLANEBOT_ASSIGNEE", who)];
    vars.extend_from_slice(extra);
    let run = env.webhook(&delivery.body, Some(&signature), &vars);
    assert_eq!(run.code, 0, "{}", run.stderr);
    run
}

on_both_servers!(a_deleted_issue_leaves_every_persons_calendar_by_webhook);
fn a_deleted_issue_leaves_every_persons_calendar_by_webhook(server: ServerKind) {
    let env = Env::start(server, seed());
    let who = format!("me,{BOB_NAME}");
    let name = [("CALPLANEBOT_CALENDAR_NAME", "My Plane work")];
    let run = ok(
        &env,
        &["sync", "--assignee", "me", "--assignee", BOB_NAME],
        &name,
    );
    assert_summary(&run, "5 created, 0 updated, 0 deleted");
    let (alice_cal, bob_cal) = (member_calendar(&env, ALICE), member_calendar(&env, BOB));
    let named: Vec<_> = calendars(&env)
        .into_iter()
        .filter(|(href, _)| *href == alice_cal || *href == bob_cal)
        .map(|(_, name)| name)
        .collect();
    assert_eq!(
        named,
        [
            Some("My Plane work".to_string()),
            Some("My Plane work".to_string())
        ],
        "--calendar-name names each view's calendar"
    );
    let (alice_view, bob_view) = (view_id(&[ALICE]), view_id(&[BOB]));

    // Pairing (Alice's and Bob's) is deleted in Plane: the delivery names no project, the
    // webhook finds the event in a person's calendar and deletes it from both.
    let pairing = env.issue_id("Pairing");
    env.sim.with_world(|w| w.delete_issue(&pairing));
    let run = deliver_as(&env, "deleted", &pairing, &who, &name);
    assert_summary(&run, "0 created, 0 updated, 2 deleted");
    let expect = |view: &str, cal: &str, member: &str| {
        expected_events(cal, Some(view), &dated(&env, Some(member)))
    };
    assert_events(
        &env,
        &alice_cal,
        &[(Some(&alice_view), &expect(&alice_view, &alice_cal, ALICE))],
        &BTreeSet::new(),
    );
    assert_events(
        &env,
        &bob_cal,
        &[(Some(&bob_view), &expect(&bob_view, &bob_cal, BOB))],
        &BTreeSet::new(),
    );

    // Without the cache (a webhook on another machine, or the cache wiped), the calendars are
    // found in the home: Audit moves from Carol to Bob and comes into Bob's calendar only.
    let audit = env.issue_id("Audit");
    env.sim
        .with_world(|w| w.issue_mut(&audit).assignees = vec![BOB.to_string()]);
    let no_cache = [name[0], ("CALPLANEBOT_CACHE_DIR", "")];
    let run = deliver_as(&env, "updated", &audit, &who, &no_cache);
    assert_summary(&run, "1 created, 0 updated, 0 deleted");
    assert_eq!(
        hrefs(&env, &bob_cal),
        expect(&bob_view, &bob_cal, BOB).keys().cloned().collect(),
        "Bob's calendar holds Invoices and Audit"
    );
    assert_eq!(dated(&env, Some(BOB)).len(), 2);
    // The runs after the webhooks have nothing left to do.
    let run = ok(
        &env,
        &["sync"],
        &[("CALPLANEBOT_ASSIGNEE", who.as_str()), name[0]],
    );
    assert_summary(&run, NO_OP);
}

on_both_servers!(one_configuration_for_two_people_in_a_single_calendar_holds_each_item_once);
fn one_configuration_for_two_people_in_a_single_calendar_holds_each_item_once(server: ServerKind) {
    let env = Env::start(server, seed());
    let calendar = format!("{}ours/", env.home());
    assert_eq!(env.user.mkcalendar(&calendar, "Ours").unwrap(), 201);
    let calendar_url = url(&env, &calendar);
    let who = format!("me,{BOB_NAME}");
    let vars = [
        ("CALDAV_CALENDAR_URL", calendar_url.as_str()),
        ("CALPLANEBOT_ASSIGNEE", who.as_str()),
    ];
    let run = ok(&env, &["sync"], &vars);
    // Launch, Pairing (both of theirs: once), Rotate keys, Invoices.
    assert_summary(&run, "4 created, 0 updated, 0 deleted");
    assert!(
        run.stdout.contains(&format!(
            "assignee view \"{ALICE_NAME}, {BOB_NAME}\": 4 dated issues into {calendar_url}"
        )),
        "{}",
        run.stdout
    );
    let view = view_id(&[BOB, ALICE]);
    let theirs = |env: &Env| {
        let mut both = dated(env, Some(ALICE));
        both.extend(dated(env, Some(BOB)));
        expected_events(&calendar, Some(&view), &both)
    };
    assert_eq!(theirs(&env).len(), 4);
    assert_events(
        &env,
        &calendar,
        &[(Some(&view), &theirs(&env))],
        &BTreeSet::new(),
    );

    // Webhooks in single-calendar mode: Invoices goes to Carol (out), Audit to Bob (in).
    let (invoices, audit) = (env.issue_id("Invoices"), env.issue_id("Audit"));
    env.sim.with_world(|w| {
        w.issue_mut(&invoices).assignees = vec![CAROL.to_string()];
        w.issue_mut(&audit).assignees = vec![BOB.to_string(), CAROL.to_string()];
    });
    let single = [vars[0]];
    let run = deliver_as(&env, "updated", &invoices, &who, &single);
    assert_summary(&run, "0 created, 0 updated, 1 deleted");
    let run = deliver_as(&env, "updated", &audit, &who, &single);
    assert_summary(&run, "1 created, 0 updated, 0 deleted");
    assert_events(
        &env,
        &calendar,
        &[(Some(&view), &theirs(&env))],
        &BTreeSet::new(),
    );
    let run = ok(&env, &["sync"], &vars);
    assert_summary(&run, NO_OP);
}

on_both_servers!(when_plane_cannot_say_who_is_who_nothing_is_written);
fn when_plane_cannot_say_who_is_who_nothing_is_written(server: ServerKind) {
    use calplanebot_testbed::plane_sim::{Fault, FaultRule};
    let env = Env::start(server, seed());
    let run = ok(&env, &["sync", "--assignee", BOB_NAME], &[]);
    assert_summary(&run, "2 created");
    let bob_cal = member_calendar(&env, BOB);
    let before = etags(&env, &bob_cal);
    // Bob is taken off Invoices, but Plane cannot say who Bob is this time: a members list
    // that keeps failing, one that is not a list, a users/me/ that is not a user. Each run
    // stops before the calendar is touched (exit 5) and says why; Invoices' event stays.
    let invoices = env.issue_id("Invoices");
    env.sim
        .with_world(|w| w.issue_mut(&invoices).assignees = vec![CAROL.to_string()]);
    let cases: [(&str, &str, Fault, &str); 3] = [
        ("/members/", BOB_NAME, Fault::server_error(), "500"),
        (
            "/members/",
            BOB_NAME,
            Fault::Status(200, r#"{"results": []}"#.into()),
            "not a members list",
        ),
        (
            "/users/me/",
            "me",
            Fault::Status(200, r#"{"id": "not-a-uuid"}"#.into()),
            "not a user object",
        ),
    ];
    for (path, who, fault, says) in cases {
        env.sim.clear_faults();
        env.sim.inject_fault(FaultRule::new(path, fault).times(100));
        env.proxy.reset();
        let run = env.run_with(&["sync", "--assignee", who, "--retry-delay", "0"], &[]);
        assert_eq!(run.code, 5, "{path}: {}\n{}", run.stdout, run.stderr);
        assert!(run.stderr.contains(says), "{path}: {}", run.stderr);
        assert!(run.stderr.contains("nothing was changed"), "{}", run.stderr);
        assert_eq!(env.writes(), 0, "{path}: {:?}", env.proxy.counts());
        assert_eq!(etags(&env, &bob_cal), before, "{path}");
    }
    // Plane answers again: the next run catches up.
    env.sim.clear_faults();
    let run = ok(&env, &["sync", "--assignee", BOB_NAME], &[]);
    assert_summary(&run, "0 created, 0 updated, 1 deleted");
}
