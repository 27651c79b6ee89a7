//! Unit tests of the feed target: which feeds a run wants, what it may remove, and runs over a
//! real directory (write, carry over, remove, patch).

use super::*;
use chrono::{NaiveDate, TimeZone};
use std::path::PathBuf;
use std::time::Duration;

const WS: &str = "acme";
const P1: &str = "8063616e-4508-4635-b20d-f71dd7c779d3";
const P2: &str = "11111111-2222-4333-8444-555555555555";
const ALICE: &str = "00000000-0000-4000-8000-0000000000a1";
const BOB: &str = "00000000-0000-4000-8000-0000000000b2";
const CAROL: &str = "00000000-0000-4000-8000-0000000000c3";

fn secret() -> Secret {
    Secret::new("feed-secret-0123456789abcdef0123456789")
}

fn issue(n: u32, project: &str, day: u32, assignees: &[&str]) -> FeedEvent {
    let id = format!("9d577c4e-d35e-4940-9f10-{n:012}");
    let fields = ManagedFields {
        uid: event::uid_for(&id, None),
        summary: format!("[{n}] Task {n}"),
        description: "---\nPriority: None\nProject: P".into(),
        dtstart: NaiveDate::from_ymd_opt(2026, 12, day),
        dtend: NaiveDate::from_ymd_opt(2026, 12, day + 1),
        status: Some("CONFIRMED".into()),
        color: None,
        categories: vec![],
        url: Some(format!("https://plane/acme/projects/{project}/issues/{id}")),
        workspace: Some(WS.into()),
        project: Some(project.into()),
        view: None,
    };
    FeedEvent::new(
        &fields,
        Utc.with_ymd_and_hms(2026, 11, 20, 8, 0, n).unwrap(),
        assignees.iter().map(|a| a.to_string()).collect(),
    )
}

fn source(p2: Option<Vec<FeedEvent>>) -> Source {
    Source {
        workspace: WS.into(),
        projects: vec![
            ProjectEvents {
                id: P1.into(),
                name: "Website".into(),
                events: Some(vec![
                    issue(2, P1, 5, &[ALICE]),
                    issue(1, P1, 9, &[ALICE, BOB]),
                ]),
            },
            ProjectEvents {
                id: P2.into(),
                name: "Ops".into(),
                events: p2,
            },
        ],
        members: [(ALICE, "alice"), (BOB, "bob"), (CAROL, "carol")]
            .into_iter()
            .map(|(id, name)| MemberRef {
                id: id.into(),
                display_name: name.into(),
            })
            .collect(),
    }
}

/// A run that saw everything: both projects listed, the members list read.
fn whole() -> Truth {
    Truth {
        may_remove: true,
        projects: Some([P1, P2].into_iter().map(String::from).collect()),
        members: Some([ALICE, BOB, CAROL].into_iter().map(String::from).collect()),
        complete: true,
    }
}

fn options() -> Options {
    Options {
        dry_run: false,
        guard: GuardLimits {
            max_delete: 20,
            max_percent: 50,
            force: false,
        },
        text: true,
    }
}

struct Scratch(PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn scratch(name: &str) -> Scratch {
    let dir = std::env::temp_dir().join(format!("calplanebot-feeds-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    Scratch(dir)
}

fn open(dir: &Path) -> FeedDirectory {
    let identity = Identity {
        plane_url: "https://plane.example.com".into(),
        workspace: WS.into(),
        plane_key: Secret::new("plane_api_0123"),
        content: String::new(),
    };
    let access = Access {
        write: true,
        ..Access::default()
    };
    FeedDirectory::open(dir, &identity, &secret(), access, Duration::ZERO).unwrap()
}

fn run(dir: &Path, source: &Source, truth: &Truth, options: Options) -> (Outcome, String) {
    let mut out = Vec::new();
    let outcome = write_all(&mut open(dir), source, truth, options, &mut out).unwrap();
    (outcome, String::from_utf8(out).unwrap())
}

/// The managed fields of a feed event (read back from its text).
fn fields_of(event: &FeedEvent) -> ManagedFields {
    event::read_event(&format!(
        "BEGIN:VCALENDAR\r\n{}END:VCALENDAR\r\n",
        event.event.text
    ))
    .unwrap()
}

fn path_of(dir: &Path, feed: &FeedId) -> PathBuf {
    dir.join(Namer::new(secret(), WS).file_name(feed))
}

/// The UIDs of a feed file, in order.
fn uids(path: &Path) -> Vec<String> {
    let mut uids = Vec::new();
    file::for_each_event(path, |b| uids.push(b.uid)).unwrap();
    uids
}

/// Every feed file of the directory with its bytes and mtime.
fn snapshot(dir: &Path) -> BTreeMap<String, (Vec<u8>, std::time::SystemTime)> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| file::is_feed_file_name(&e.file_name().to_string_lossy()))
        .map(|e| {
            (
                e.file_name().to_string_lossy().into_owned(),
                (
                    std::fs::read(e.path()).unwrap(),
                    e.metadata().unwrap().modified().unwrap(),
                ),
            )
        })
        .collect()
}

#[test]
fn tokens_are_stable_unguessable_names_bound_to_kind_workspace_id_secret_and_nonce() {
    let a = token(&secret(), Kind::Project, WS, P1);
    assert_eq!(a, token(&secret(), Kind::Project, WS, P1));
    assert_eq!(a.len(), 32);
    assert_eq!(
        Namer::new(secret(), WS).file_name(&FeedId::project(P1)),
        format!("{a}.ics"),
        "an unrevoked feed keeps the name of before issue 20"
    );
    for other in [
        token(&Secret::new("rotated"), Kind::Project, WS, P1),
        token(&secret(), Kind::Member, WS, P1),
        token(&secret(), Kind::Project, "other", P1),
        token(&secret(), Kind::Project, WS, P2),
    ] {
        assert_ne!(a, other);
    }
    // HMAC-SHA256("feed-secret", "workspace:acme:acme"), computed independently
    // (Python: hmac.new(b"feed-secret", b"workspace:acme:acme", "sha256").hexdigest()[:32]).
    assert_eq!(
        token(&Secret::new("feed-secret"), Kind::Workspace, WS, WS),
        "812615bebf33c0ecfdad3794e2eb38d8"
    );
    let feed = FeedId::member(ALICE);
    assert_eq!(FeedId::from_mark(&feed.mark()), Some(feed));
    assert_eq!(FeedId::from_mark("calendar:x"), None);
    assert_eq!(FeedId::from_mark("project:"), None);
}

#[test]
fn every_project_member_and_the_workspace_get_a_feed_with_their_events() {
    let source = source(Some(vec![issue(3, P2, 1, &[BOB])]));
    let feeds: Vec<(Kind, String, usize)> = wanted_feeds(&source)
        .into_iter()
        .map(|w| {
            let events = events_for(&source, &w.feed).len();
            (w.feed.kind, w.name, events)
        })
        .collect();
    let expected = [
        (Kind::Project, "Plane: Website", 2),
        (Kind::Project, "Plane: Ops", 1),
        (Kind::Member, "Plane: alice", 2),
        (Kind::Member, "Plane: bob", 2),
        (Kind::Member, "Plane: carol", 0),
        (Kind::Workspace, "Plane: acme", 3),
    ];
    assert_eq!(
        feeds,
        expected.map(|(k, n, e)| (k, n.to_string(), e)).to_vec()
    );
}

#[test]
fn a_run_writes_every_feed_sorted_and_a_run_with_nothing_changed_writes_nothing() {
    let dir = scratch("write");
    let source = source(Some(vec![issue(3, P2, 1, &[BOB])]));
    let (first, plan) = run(&dir.0, &source, &whole(), options());
    assert_eq!((first.written, first.unchanged, first.removed), (6, 0, 0));
    assert!(
        plan.contains("+ feed workspace \"Plane: acme\" (3 events)"),
        "{plan}"
    );
    let workspace = std::fs::read_to_string(path_of(&dir.0, &FeedId::workspace(WS))).unwrap();
    for line in [
        "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n",
        "METHOD:PUBLISH\r\n",
        "NAME:Plane: acme\r\n",
        "X-WR-CALNAME:Plane: acme\r\n",
        "REFRESH-INTERVAL;VALUE=DURATION:PT15M\r\n",
        "X-PUBLISHED-TTL:PT15M\r\n",
        "X-CALPLANEBOT-WORKSPACE:acme\r\n",
        "X-CALPLANEBOT-FEED:workspace:acme\r\n",
        "DTSTAMP:20261120T080003Z\r\n",
    ] {
        assert!(workspace.contains(line), "{line:?} in {workspace}");
    }
    assert!(workspace.ends_with("END:VEVENT\r\nEND:VCALENDAR\r\n"));
    // Sorted by DTSTART, then UID: issue 3 (Dec 1), 2 (Dec 5), 1 (Dec 9).
    let order = uids(&path_of(&dir.0, &FeedId::workspace(WS)));
    assert!(order[0].ends_with("000000000003@calplanebot"), "{order:?}");
    assert!(order[2].ends_with("000000000001@calplanebot"), "{order:?}");
    let before = snapshot(&dir.0);
    std::thread::sleep(Duration::from_millis(20));
    let (second, plan) = run(&dir.0, &source, &whole(), options());
    assert_eq!((second.written, second.unchanged), (0, 6), "{plan}");
    assert_eq!(snapshot(&dir.0), before, "same bytes, same mtime");
}

#[test]
fn a_project_that_failed_keeps_its_events_in_every_feed_and_its_feed_untouched() {
    let dir = scratch("carry");
    let before = source(Some(vec![issue(3, P2, 1, &[BOB]), issue(4, P2, 2, &[])]));
    run(&dir.0, &before, &whole(), options());
    let ops = std::fs::read(path_of(&dir.0, &FeedId::project(P2))).unwrap();
    // P2's walk fails; meanwhile P1 changed.
    let mut after = source(None);
    let renamed = ManagedFields {
        summary: "[2] renamed".into(),
        ..fields_of(&after.projects[0].events.as_ref().unwrap()[0])
    };
    after.projects[0].events.as_mut().unwrap()[0] = FeedEvent::new(
        &renamed,
        Utc.with_ymd_and_hms(2026, 11, 21, 8, 0, 0).unwrap(),
        vec![ALICE.into()],
    );
    let truth = Truth {
        complete: false,
        ..whole()
    };
    let (outcome, _) = run(&dir.0, &after, &truth, options());
    assert!(
        outcome.failures.is_empty() && outcome.removed == 0,
        "{outcome:?}"
    );
    assert_eq!(uids(&path_of(&dir.0, &FeedId::project(P2))).len(), 2);
    assert_eq!(
        std::fs::read(path_of(&dir.0, &FeedId::project(P2))).unwrap(),
        ops,
        "the failed project's feed is byte for byte what it was"
    );
    assert_eq!(uids(&path_of(&dir.0, &FeedId::workspace(WS))).len(), 4);
    assert_eq!(
        uids(&path_of(&dir.0, &FeedId::member(BOB))).len(),
        2,
        "bob keeps issue 3"
    );
}

#[test]
fn what_a_run_may_remove_follows_what_it_saw() {
    let written: BTreeSet<FeedId> = [FeedId::project(P1)].into_iter().collect();
    let head = |feed: Option<FeedId>| Head {
        workspace: Some(WS.into()),
        feed,
        name: None,
    };
    let gone_member = head(Some(FeedId::member("00000000-0000-4000-8000-00000000dead")));
    let gone_project = head(Some(FeedId::project(
        "99999999-2222-4333-8444-555555555555",
    )));
    let old_copy = head(Some(FeedId::project(P1)));
    let unmarked = head(None);
    let guest = Truth {
        members: None,
        ..whole()
    };
    let scoped = Truth {
        complete: false,
        ..whole()
    };
    let nothing_listed = Truth {
        projects: None,
        ..whole()
    };
    use Removal::{Retired, Stale};
    let cases: [(&Head, bool, &Truth, Option<Removal>); 14] = [
        // A person who left: only a whole run (members list, every project, no --project).
        (&gone_member, false, &whole(), Some(Stale)),
        (&gone_member, false, &guest, None),
        (&gone_member, false, &scoped, None),
        (&gone_member, false, &nothing_listed, None),
        // A project gone from a complete listing goes, even in a scoped or Guest run.
        (&gone_project, false, &whole(), Some(Stale)),
        (&gone_project, false, &scoped, Some(Stale)),
        (&gone_project, false, &guest, Some(Stale)),
        (&gone_project, false, &nothing_listed, None),
        // An old name of a feed written this run: retired (rotation, revocation) always;
        // otherwise only on the whole truth.
        (&old_copy, true, &scoped, Some(Retired)),
        (&old_copy, false, &scoped, None),
        (&old_copy, false, &whole(), Some(Stale)),
        // A file from before feeds said which they are.
        (&unmarked, false, &guest, None),
        (&unmarked, false, &whole(), Some(Stale)),
        (&unmarked, true, &guest, Some(Retired)),
    ];
    for (n, (head, retired, truth, expected)) in cases.into_iter().enumerate() {
        assert_eq!(
            removal(head, retired, truth, &written),
            expected,
            "case {n}"
        );
    }
    // A retired file of a feed not written this run (a person not seen by a Guest's run)
    // stays until its feed is written under its new name.
    assert_eq!(removal(&gone_member, true, &guest, &written), None);
}

#[test]
fn stale_feeds_go_with_the_whole_truth_under_the_guard_and_never_after_a_failed_write() {
    let dir = scratch("remove");
    let full = source(Some(vec![issue(3, P2, 1, &[BOB])]));
    run(&dir.0, &full, &whole(), options());
    // Ops is deleted in Plane and carol leaves the workspace.
    let mut gone = full.clone();
    gone.projects.pop();
    gone.members.pop();
    let truth = Truth {
        projects: Some([P1.to_string()].into_iter().collect()),
        members: Some([ALICE, BOB].into_iter().map(String::from).collect()),
        ..whole()
    };
    // A foreign file at a wanted feed's name: that feed fails, and nothing is removed.
    let alice = path_of(&dir.0, &FeedId::member(ALICE));
    std::fs::write(&alice, "not a calendar").unwrap();
    let (failed, plan) = run(&dir.0, &gone, &truth, options());
    assert_eq!(failed.failures.len(), 1, "{failed:?}");
    assert!(
        failed.failures[0].error.contains("Move it away"),
        "{failed:?}"
    );
    assert_eq!(failed.removed, 0);
    assert_eq!(failed.status(), Status::PartialFailure);
    assert!(
        plan.contains("none of the 2 feeds no longer wanted is removed"),
        "{plan}"
    );
    assert_eq!(std::fs::read(&alice).unwrap(), b"not a calendar");
    std::fs::remove_file(&alice).unwrap();
    // Above the guard's share (2 of 5 is fine; force a tighter share): kept, refused.
    let tight = Options {
        guard: GuardLimits {
            max_delete: 1,
            ..options().guard
        },
        ..options()
    };
    let (refused, plan) = run(&dir.0, &gone, &truth, tight);
    assert!(refused.refused && refused.removed == 0, "{refused:?}");
    assert_eq!(refused.status(), Status::Refused);
    assert!(plan.contains("! feeds: 2 of the"), "{plan}");
    // A dry run says what would go and removes nothing.
    let dry = Options {
        dry_run: true,
        ..options()
    };
    let before = snapshot(&dir.0);
    let (would, plan) = run(&dir.0, &gone, &truth, dry);
    assert_eq!(would.removed, 2, "{plan}");
    assert!(plan.contains("- feed project \"Plane: Ops\""), "{plan}");
    assert!(plan.contains("- feed member \"Plane: carol\""), "{plan}");
    assert_eq!(snapshot(&dir.0), before);
    // Within the guard: both go.
    let (removed, _) = run(&dir.0, &gone, &truth, options());
    assert_eq!(removed.removed, 2, "{removed:?}");
    assert!(!path_of(&dir.0, &FeedId::project(P2)).exists());
    assert!(!path_of(&dir.0, &FeedId::member(CAROL)).exists());
    assert_eq!(snapshot(&dir.0).len(), 4);
}

#[test]
fn a_patch_replaces_or_drops_one_event_creates_a_missing_feed_and_removes_nothing() {
    let dir = scratch("patch");
    let full = source(Some(vec![issue(3, P2, 1, &[BOB])]));
    run(&dir.0, &full, &whole(), options());
    let before = snapshot(&dir.0);
    // Issue 1 (P1, alice and bob) is reassigned to carol and renamed.
    let fields = ManagedFields {
        summary: "[1] moved".into(),
        ..fields_of(&full.projects[0].events.as_ref().unwrap()[1])
    };
    let uid = fields.uid.clone();
    let stamp = Utc.with_ymd_and_hms(2026, 11, 22, 8, 0, 0).unwrap();
    let into = vec![
        (FeedId::project(P1), "Plane: Website".to_string()),
        (FeedId::workspace(WS), "Plane: acme".to_string()),
        (FeedId::member(CAROL), "Plane: carol".to_string()),
    ];
    let one = Patch {
        uid: uid.clone(),
        event: Some(event::vevent(&fields, stamp)),
        into,
    };
    let mut out = Vec::new();
    let outcome = patch(&mut open(&dir.0), WS, &one, options(), &mut out).unwrap();
    assert_eq!((outcome.written, outcome.removed), (5, 0), "{outcome:?}");
    let holds = |feed: FeedId| uids(&path_of(&dir.0, &feed)).contains(&uid);
    assert!(holds(FeedId::member(CAROL)) && holds(FeedId::workspace(WS)));
    assert!(!holds(FeedId::member(ALICE)) && !holds(FeedId::member(BOB)));
    let after = snapshot(&dir.0);
    let ops = Namer::new(secret(), WS).file_name(&FeedId::project(P2));
    assert_eq!(
        after[&ops], before[&ops],
        "a feed without the issue is untouched"
    );
    // The patch wrote what a full run writes.
    let mut moved = full.clone();
    moved.projects[0].events.as_mut().unwrap()[1] =
        FeedEvent::new(&fields, stamp, vec![CAROL.into()]);
    let (full_run, plan) = run(&dir.0, &moved, &whole(), options());
    assert_eq!(full_run.written, 0, "{plan}");
    // The issue loses its date: it leaves every feed; no feed is removed, even one left empty.
    let gone = Patch {
        uid: uid.clone(),
        event: None,
        into: Vec::new(),
    };
    let outcome = patch(&mut open(&dir.0), WS, &gone, options(), &mut out).unwrap();
    assert_eq!((outcome.written, outcome.removed), (3, 0), "{outcome:?}");
    assert!(path_of(&dir.0, &FeedId::member(CAROL)).exists());
    assert!(uids(&path_of(&dir.0, &FeedId::member(CAROL))).is_empty());
}
