//! The feed target: subscription calendars (`.ics` files) in a directory that any web server
//! serves, for calendars that cannot be written over CalDAV (Google Calendar, Outlook) and for
//! people who want their own issues (design.md, "Feeds").
//!
//! Three kinds of feed come from one Plane fetch and the CalDAV mapping: one per project, one
//! per workspace member (the dated issues assigned to them), one for the workspace. A feed's
//! file name is `{token}.ics`, the token an HMAC of the feed's identity under
//! `CALPLANEBOT_FEED_SECRET`: stable without state, unguessable, revoked by a new secret. A
//! file name is a bearer secret, so it never reaches a log line or the plan.
//!
//! Like the CalDAV side, the target is planned (pure: [`plan`]) and then applied ([`apply`]):
//! a feed whose bytes would not change is not written (same bytes, same mtime, so web servers'
//! ETag and Last-Modified keep working); a project whose fetch failed keeps its events in every
//! feed (carried over from the files); a stale file goes only when it carries this workspace's
//! mark, never in a run that listed no project, and under the deletion guard; anything else in
//! the directory is never touched.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

use crate::config::Secret;
use crate::mapping::event::{self, ManagedFields, PROJECT_MARK, WORKSPACE_MARK};
use crate::mapping::ics::{self, Component, Property};
use crate::reconcile::plan::GuardLimits;

/// How often a subscriber should fetch a feed (RFC 7986 §5.7; `X-PUBLISHED-TTL` for Outlook).
const REFRESH: &str = "PT15M";
/// Largest existing feed file read back (a workspace of 100,000 issues is ~100 MiB; more is
/// not a file calplanebot wrote).
const MAX_FILE: u64 = 512 * 1024 * 1024;

/// The kinds of feed (design.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Project,
    Member,
    Workspace,
}

impl Kind {
    pub fn name(self) -> &'static str {
        match self {
            Kind::Project => "project",
            Kind::Member => "member",
            Kind::Workspace => "workspace",
        }
    }
}

/// The token of a feed: the first 32 lowercase hex digits of
/// HMAC-SHA256(secret, "{kind}:{workspace_slug}:{id}"), `id` the project id, the member id or
/// the workspace slug.
pub fn token(secret: &Secret, kind: Kind, workspace: &str, id: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(format!("{}:{workspace}:{id}", kind.name()).as_bytes());
    mac.finalize().into_bytes()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The file name of a feed: `{token}.ics`.
pub fn file_name(token: &str) -> String {
    format!("{token}.ics")
}

/// Whether `name` has the form of a feed file name calplanebot writes.
pub fn is_feed_file_name(name: &str) -> bool {
    name.strip_suffix(".ics").is_some_and(|token| {
        token.len() == 32
            && token
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// One dated issue's event, as every feed that holds it carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedEvent {
    pub fields: ManagedFields,
    /// The issue's `updated_at`: a feed is the same bytes as long as nothing changed.
    pub dtstamp: DateTime<Utc>,
    /// Member ids of the assignees.
    pub assignees: Vec<String>,
}

/// What one project contributes to the feeds.
#[derive(Clone, Debug)]
pub struct ProjectEvents {
    pub id: String,
    pub name: String,
    /// `None` when the project's issues could not be read completely: its events are carried
    /// over from the existing files, unchanged.
    pub events: Option<Vec<FeedEvent>>,
}

/// A workspace member who gets a feed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MemberRef {
    pub id: String,
    pub display_name: String,
}

/// Everything the feeds of one run are made of.
#[derive(Clone, Debug)]
pub struct Source {
    pub workspace: String,
    pub projects: Vec<ProjectEvents>,
    pub members: Vec<MemberRef>,
}

/// One feed as this run wants it, before carry-over.
#[derive(Clone, Debug)]
pub struct Feed {
    pub kind: Kind,
    /// Project id, member id or workspace slug.
    pub id: String,
    /// The calendar's name (`NAME`, `X-WR-CALNAME`).
    pub name: String,
    pub token: String,
    pub events: Vec<Component>,
    /// Projects whose events are taken from this feed's existing file instead.
    pub carried: BTreeSet<String>,
}

impl Feed {
    pub fn file_name(&self) -> String {
        file_name(&self.token)
    }
}

/// The feeds a run wants: one per project, one per member (every member, even with no issue),
/// one for the workspace.
pub fn desired_feeds(source: &Source, secret: &Secret) -> Vec<Feed> {
    let workspace = &source.workspace;
    let failed: BTreeSet<String> = source
        .projects
        .iter()
        .filter(|p| p.events.is_none())
        .map(|p| p.id.clone())
        .collect();
    let feed = |kind: Kind, id: &str, name: String, events: Vec<Component>, carried| Feed {
        kind,
        id: id.to_string(),
        name,
        token: token(secret, kind, workspace, id),
        events,
        carried,
    };
    let vevent = |e: &FeedEvent| event::vevent(&e.fields, e.dtstamp);
    let all = || {
        source
            .projects
            .iter()
            .flat_map(|p| p.events.iter().flatten())
    };
    let mut feeds = Vec::with_capacity(source.projects.len() + source.members.len() + 1);
    for project in &source.projects {
        let events = project.events.iter().flatten().map(vevent).collect();
        let carried = failed
            .iter()
            .filter(|id| **id == project.id)
            .cloned()
            .collect();
        feeds.push(feed(
            Kind::Project,
            &project.id,
            format!("Plane: {}", project.name),
            events,
            carried,
        ));
    }
    for member in &source.members {
        let events = all()
            .filter(|e| e.assignees.contains(&member.id))
            .map(vevent)
            .collect();
        feeds.push(feed(
            Kind::Member,
            &member.id,
            format!("Plane: {}", member.display_name),
            events,
            failed.clone(),
        ));
    }
    feeds.push(feed(
        Kind::Workspace,
        workspace,
        format!("Plane: {workspace}"),
        all().map(vevent).collect(),
        failed,
    ));
    feeds
}

/// A feed file (design.md, "Feeds"): the calendar's properties, then the events sorted by
/// (DTSTART, UID), so the same events always give the same bytes.
pub fn render(name: &str, workspace: &str, mut events: Vec<Component>) -> String {
    events.sort_by_cached_key(|e| {
        let value = |p: &str| e.property(p).map(|p| p.value().to_string());
        (value("DTSTART"), value("UID"))
    });
    let text = |name: &str, value: &str| Property::new(name, &[], &ics::escape_text(value));
    // QUIRK: ical.js and Python icalendar (and the calendar apps built on them) take NAME and
    // X-WR-CALNAME verbatim, so a `\,` would show as such: only a backslash and a line break
    // are escaped there (RFC 5545 readers accept a bare comma in a single TEXT value).
    let title = |name: &str, value: &str| {
        let value = ics::normalize_text(value)
            .replace('\\', "\\\\")
            .replace('\n', "\\n");
        Property::new(name, &[], &value)
    };
    let mut calendar = Component::new("VCALENDAR");
    calendar.properties = vec![
        Property::new("VERSION", &[], "2.0"),
        Property::new("PRODID", &[], event::PRODID),
        Property::new("CALSCALE", &[], "GREGORIAN"),
        Property::new("METHOD", &[], "PUBLISH"),
        title("NAME", name),
        title("X-WR-CALNAME", name),
        Property::new("REFRESH-INTERVAL", &[("VALUE", "DURATION")], REFRESH),
        Property::new("X-PUBLISHED-TTL", &[], REFRESH),
        text(WORKSPACE_MARK, workspace),
    ];
    calendar.children = events;
    calendar.to_ics()
}

/// The feed files of the directory that carry this workspace's mark, by file name, parsed.
/// Files of another form, another workspace or that do not parse are not ours: not listed.
pub fn read_existing(dir: &Path, workspace: &str) -> std::io::Result<BTreeMap<String, Component>> {
    let mut ours = BTreeMap::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(ours),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        // A symlink or a directory under a feed's name is not a file calplanebot wrote.
        if !is_feed_file_name(&name) || !entry.file_type()?.is_file() {
            continue;
        }
        if entry.metadata()?.len() > MAX_FILE {
            continue;
        }
        let Ok(bytes) = std::fs::read(entry.path()) else {
            continue;
        };
        let Ok(calendar) = ics::parse_bytes(&bytes) else {
            continue;
        };
        let marked = calendar
            .property(WORKSPACE_MARK)
            .is_some_and(|p| ics::unescape_text(p.value()) == workspace);
        if calendar.name == "VCALENDAR" && marked {
            ours.insert(name, calendar);
        }
    }
    Ok(ours)
}

/// A feed file to write.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FeedWrite {
    pub kind: Kind,
    pub name: String,
    pub events: usize,
    #[serde(skip)]
    pub file_name: String,
    /// The current content, `None` for a new feed.
    #[serde(skip)]
    pub before: Option<String>,
    #[serde(skip)]
    pub after: String,
}

/// A stale feed file to remove (its feed is no longer wanted: a project or member gone).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FeedRemove {
    pub name: String,
    #[serde(skip)]
    pub file_name: String,
}

/// What the feed target will do.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct FeedPlan {
    pub writes: Vec<FeedWrite>,
    pub removes: Vec<FeedRemove>,
    pub unchanged: usize,
    /// Why stale files are kept this run, when they are.
    pub kept: Option<String>,
}

/// Plans the feed directory: `desired` against the `existing` files of this workspace.
/// `listed_projects` is how many projects Plane listed this run: with none, nothing is removed
/// (an empty answer never wipes feeds).
pub fn plan(
    desired: Vec<Feed>,
    existing: &BTreeMap<String, Component>,
    workspace: &str,
    listed_projects: usize,
    guard: GuardLimits,
) -> FeedPlan {
    let mut out = FeedPlan::default();
    let mut wanted = BTreeSet::new();
    for feed in desired {
        let file_name = feed.file_name();
        let old = existing.get(&file_name);
        let mut events = feed.events;
        if let Some(old) = old {
            events.extend(
                old.children_named("VEVENT")
                    .filter(|e| {
                        e.property(PROJECT_MARK)
                            .is_some_and(|p| feed.carried.contains(&ics::unescape_text(p.value())))
                    })
                    .cloned(),
            );
        }
        let count = events.len();
        let after = render(&feed.name, workspace, events);
        let before = old.map(Component::to_ics);
        wanted.insert(file_name.clone());
        if before.as_deref() == Some(after.as_str()) {
            out.unchanged += 1;
            continue;
        }
        out.writes.push(FeedWrite {
            kind: feed.kind,
            name: feed.name,
            events: count,
            file_name,
            before,
            after,
        });
    }
    let stale: Vec<FeedRemove> = existing
        .iter()
        .filter(|(file_name, _)| !wanted.contains(*file_name))
        .map(|(file_name, calendar)| FeedRemove {
            name: calendar
                .property("X-WR-CALNAME")
                .map(|p| ics::unescape_text(p.value()))
                .unwrap_or_default(),
            file_name: file_name.clone(),
        })
        .collect();
    if stale.is_empty() {
        return out;
    }
    if listed_projects == 0 {
        out.kept = Some(format!(
            "Plane listed no project, so the {} feeds no longer wanted are kept",
            stale.len()
        ));
    } else if stale.len() > guard.max_delete && !guard.force {
        out.kept = Some(format!(
            "{} feeds are no longer wanted, more than --max-delete {}: kept (--force-delete removes them)",
            stale.len(),
            guard.max_delete
        ));
    } else {
        out.removes = stale;
    }
    out
}

/// A feed a patch writes into: which one, and its calendar name if it must be created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedRef {
    pub kind: Kind,
    pub name: String,
    pub token: String,
}

/// One issue's event, put into or taken out of the feeds (a webhook run): `event` is the new
/// VEVENT (`None` when the issue has no date any more, or is gone), `into` the feeds that
/// want it (its project, the workspace, its assignees).
#[derive(Clone, Debug)]
pub struct Patch {
    pub uid: String,
    pub event: Option<Component>,
    pub into: Vec<FeedRef>,
}

/// Plans a patch of the directory: every feed of this workspace that holds `patch.uid` loses
/// that VEVENT, and every feed of `patch.into` gets the new one (a missing one is created, unless
/// there is nothing to put in it). Only the files touched are read in full; the others are
/// searched for the UID's bytes.
pub fn plan_patch(dir: &Path, workspace: &str, patch: &Patch) -> std::io::Result<FeedPlan> {
    let mut out = FeedPlan::default();
    let into: BTreeMap<String, &FeedRef> = patch
        .into
        .iter()
        .map(|f| (file_name(&f.token), f))
        .collect();
    let mut candidates: BTreeSet<String> = into.keys().cloned().collect();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let Some(name) = entry.file_name().to_str().map(str::to_string) else {
            continue;
        };
        if !is_feed_file_name(&name) || candidates.contains(&name) || !entry.file_type()?.is_file()
        {
            continue;
        }
        let holds =
            std::fs::read(entry.path()).is_ok_and(|bytes| contains(&bytes, patch.uid.as_bytes()));
        if holds {
            candidates.insert(name);
        }
    }
    for name in candidates {
        let path = dir.join(&name);
        let current = match std::fs::symlink_metadata(&path) {
            Ok(meta) if meta.is_file() && meta.len() <= MAX_FILE => {
                let parsed = std::fs::read(&path)
                    .ok()
                    .and_then(|bytes| ics::parse_bytes(&bytes).ok());
                match parsed {
                    Some(calendar)
                        if calendar.name == "VCALENDAR"
                            && calendar
                                .property(WORKSPACE_MARK)
                                .is_some_and(|p| ics::unescape_text(p.value()) == workspace) =>
                    {
                        Some(calendar)
                    }
                    // Not a feed of this workspace: never touched.
                    _ => continue,
                }
            }
            Ok(_) => continue,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let wanted = into.get(&name);
        if current.is_none() && (wanted.is_none() || patch.event.is_none()) {
            continue;
        }
        let uid_of = |e: &Component| e.property("UID").map(|p| ics::unescape_text(p.value()));
        let mut events: Vec<Component> = current
            .iter()
            .flat_map(|c| c.children_named("VEVENT"))
            .filter(|e| uid_of(e).as_deref() != Some(patch.uid.as_str()))
            .cloned()
            .collect();
        if let (Some(_), Some(event)) = (wanted, &patch.event) {
            events.push(event.clone());
        }
        let calendar_name = match (wanted, &current) {
            (Some(wanted), _) => wanted.name.clone(),
            (None, Some(current)) => current
                .property("X-WR-CALNAME")
                .map(|p| ics::unescape_text(p.value()))
                .unwrap_or_default(),
            (None, None) => continue,
        };
        let count = events.len();
        let after = render(&calendar_name, workspace, events);
        let before = current.as_ref().map(Component::to_ics);
        if before.as_deref() == Some(after.as_str()) {
            out.unchanged += 1;
            continue;
        }
        out.writes.push(FeedWrite {
            kind: wanted.map_or_else(|| kind_of(current.as_ref()), |w| w.kind),
            name: calendar_name,
            events: count,
            file_name: name,
            before,
            after,
        });
    }
    Ok(out)
}

/// A feed's kind when only its file is known: the workspace feed has no project or member
/// in its name's shape, so this is a best guess for the plan's text only.
fn kind_of(calendar: Option<&Component>) -> Kind {
    let events: Vec<&Component> = calendar
        .iter()
        .flat_map(|c| c.children_named("VEVENT"))
        .collect();
    let projects: BTreeSet<&str> = events
        .iter()
        .filter_map(|e| e.property(PROJECT_MARK).map(|p| p.value()))
        .collect();
    if projects.len() == 1 {
        Kind::Project
    } else {
        Kind::Member
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|w| w == needle)
}

/// The project mark of the event with this UID, from any feed of this workspace: where a
/// deleted issue (whose delivery names no project) was.
pub fn project_of(dir: &Path, workspace: &str, uid: &str) -> std::io::Result<Option<String>> {
    for (_, calendar) in read_existing(dir, workspace)? {
        let found = calendar
            .children_named("VEVENT")
            .find(|e| {
                e.property("UID")
                    .is_some_and(|p| ics::unescape_text(p.value()) == uid)
            })
            .and_then(|e| e.property(PROJECT_MARK))
            .map(|p| ics::unescape_text(p.value()));
        if found.is_some() {
            return Ok(found);
        }
    }
    Ok(None)
}

/// Something the feed target could not do.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FeedFailure {
    pub name: String,
    pub error: String,
}

/// Writes and removes what `plan` says, each file atomically (a new file beside it, created
/// with `O_EXCL`, fsynced, renamed; mode 0644). Failures are returned, each with its feed; the
/// error text never names the file, whose name is a bearer secret.
pub fn apply(dir: &Path, plan: &FeedPlan) -> Vec<FeedFailure> {
    let mut failures = Vec::new();
    for write in &plan.writes {
        let path: PathBuf = dir.join(&write.file_name);
        if let Err(e) = crate::support::atomic_file::write(&path, write.after.as_bytes(), 0o644) {
            failures.push(FeedFailure {
                name: write.name.clone(),
                error: format!("cannot write the feed: {}", e.kind()),
            });
        }
    }
    for remove in &plan.removes {
        match std::fs::remove_file(dir.join(&remove.file_name)) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => failures.push(FeedFailure {
                name: remove.name.clone(),
                error: format!("cannot remove the stale feed: {}", e.kind()),
            }),
        }
    }
    failures
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{NaiveDate, TimeZone};

    const WS: &str = "acme";
    const P1: &str = "8063616e-4508-4635-b20d-f71dd7c779d3";
    const P2: &str = "11111111-2222-4333-8444-555555555555";
    const ALICE: &str = "00000000-0000-4000-8000-0000000000a1";
    const BOB: &str = "00000000-0000-4000-8000-0000000000b2";

    fn secret() -> Secret {
        Secret::new("feed-secret")
    }

    fn issue(n: u32, project: &str, day: u32, assignees: &[&str]) -> FeedEvent {
        let id = format!("9d577c4e-d35e-4940-9f10-{n:012}");
        FeedEvent {
            fields: ManagedFields {
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
            },
            dtstamp: Utc.with_ymd_and_hms(2026, 11, 20, 8, 0, n).unwrap(),
            assignees: assignees.iter().map(|a| a.to_string()).collect(),
        }
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
            members: vec![
                MemberRef {
                    id: ALICE.into(),
                    display_name: "alice".into(),
                },
                MemberRef {
                    id: BOB.into(),
                    display_name: "bob".into(),
                },
                MemberRef {
                    id: "00000000-0000-4000-8000-0000000000c3".into(),
                    display_name: "carol".into(),
                },
            ],
        }
    }

    fn limits() -> GuardLimits {
        GuardLimits {
            max_delete: 20,
            max_percent: 50,
            force: false,
        }
    }

    /// The files a plan would leave, as the next run reads them.
    fn written(plan: &FeedPlan) -> BTreeMap<String, Component> {
        plan.writes
            .iter()
            .map(|w| (w.file_name.clone(), ics::parse(&w.after).unwrap()))
            .collect()
    }

    fn uids(calendar: &Component) -> Vec<String> {
        calendar
            .children_named("VEVENT")
            .map(|e| e.property("UID").unwrap().value().to_string())
            .collect()
    }

    #[test]
    fn tokens_are_stable_unguessable_names_bound_to_kind_workspace_id_and_secret() {
        let a = token(&secret(), Kind::Project, WS, P1);
        assert_eq!(a, token(&secret(), Kind::Project, WS, P1));
        assert_eq!(a.len(), 32);
        assert!(is_feed_file_name(&file_name(&a)));
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
            token(&secret(), Kind::Workspace, WS, WS),
            "812615bebf33c0ecfdad3794e2eb38d8"
        );
        for name in [
            "a.ics",
            "feed.ics",
            &format!("{}.ICS", a),
            &format!("{}x.ics", &a[..31]),
        ] {
            assert!(!is_feed_file_name(name), "{name}");
        }
    }

    #[test]
    fn every_project_member_and_the_workspace_get_a_feed_with_their_events_sorted() {
        let feeds = desired_feeds(&source(Some(vec![issue(3, P2, 1, &[BOB])])), &secret());
        let kinds: Vec<(Kind, &str, usize)> = feeds
            .iter()
            .map(|f| (f.kind, f.name.as_str(), f.events.len()))
            .collect();
        assert_eq!(
            kinds,
            [
                (Kind::Project, "Plane: Website", 2),
                (Kind::Project, "Plane: Ops", 1),
                (Kind::Member, "Plane: alice", 2),
                (Kind::Member, "Plane: bob", 2),
                (Kind::Member, "Plane: carol", 0),
                (Kind::Workspace, "Plane: acme", 3),
            ]
        );
        let plan = plan(feeds, &BTreeMap::new(), WS, 2, limits());
        assert_eq!(plan.writes.len(), 6);
        let workspace = plan.writes.last().unwrap();
        let text = &workspace.after;
        for line in [
            "BEGIN:VCALENDAR\r\nVERSION:2.0\r\n",
            "METHOD:PUBLISH\r\n",
            "NAME:Plane: acme\r\n",
            "X-WR-CALNAME:Plane: acme\r\n",
            "REFRESH-INTERVAL;VALUE=DURATION:PT15M\r\n",
            "X-PUBLISHED-TTL:PT15M\r\n",
            "X-CALPLANEBOT-WORKSPACE:acme\r\n",
            "DTSTAMP:20261120T080003Z\r\n",
        ] {
            assert!(text.contains(line), "{line:?} in {text}");
        }
        // Sorted by DTSTART, then UID: issue 3 (Dec 1), 2 (Dec 5), 1 (Dec 9).
        let order = uids(&ics::parse(text).unwrap());
        assert!(order[0].ends_with("000000000003@calplanebot"), "{order:?}");
        assert!(order[2].ends_with("000000000001@calplanebot"), "{order:?}");
    }

    #[test]
    fn a_run_with_nothing_changed_writes_nothing() {
        let source = source(Some(vec![issue(3, P2, 1, &[BOB])]));
        let first = plan(
            desired_feeds(&source, &secret()),
            &BTreeMap::new(),
            WS,
            2,
            limits(),
        );
        let files = written(&first);
        let second = plan(desired_feeds(&source, &secret()), &files, WS, 2, limits());
        assert_eq!(
            (second.writes.len(), second.unchanged),
            (0, 6),
            "{second:?}"
        );
    }

    #[test]
    fn a_project_that_failed_keeps_its_events_in_every_feed() {
        let before = source(Some(vec![issue(3, P2, 1, &[BOB]), issue(4, P2, 2, &[])]));
        let files = written(&plan(
            desired_feeds(&before, &secret()),
            &BTreeMap::new(),
            WS,
            2,
            limits(),
        ));
        // P2's walk fails; meanwhile P1 changed.
        let mut after = source(None);
        after.projects[0].events.as_mut().unwrap()[0].fields.summary = "[2] renamed".into();
        let plan = plan(desired_feeds(&after, &secret()), &files, WS, 2, limits());
        let next = {
            let mut next = files.clone();
            next.extend(written(&plan));
            next
        };
        let feed = |kind, id: &str| &next[&file_name(&token(&secret(), kind, WS, id))];
        assert_eq!(
            uids(feed(Kind::Project, P2)).len(),
            2,
            "P2's own feed is carried whole"
        );
        assert_eq!(uids(feed(Kind::Workspace, WS)).len(), 4);
        assert_eq!(uids(feed(Kind::Member, BOB)).len(), 2, "bob keeps issue 3");
        assert!(plan.removes.is_empty());
        // The feed of P2 is byte for byte what it was.
        assert!(
            plan.writes.iter().all(|w| w.name != "Plane: Ops"),
            "{plan:?}"
        );
    }

    #[test]
    fn stale_feeds_go_only_with_a_listing_and_under_the_guard() {
        let before = source(Some(vec![issue(3, P2, 1, &[BOB])]));
        let files = written(&plan(
            desired_feeds(&before, &secret()),
            &BTreeMap::new(),
            WS,
            2,
            limits(),
        ));
        let mut gone = before.clone();
        gone.projects.pop();
        gone.members.pop();
        let removed = plan(desired_feeds(&gone, &secret()), &files, WS, 1, limits());
        let names: Vec<&str> = removed.removes.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names.len(), 2, "{names:?}");
        assert!(names.contains(&"Plane: Ops") && names.contains(&"Plane: carol"));
        // No project listed: nothing is removed.
        let none = plan(desired_feeds(&gone, &secret()), &files, WS, 0, limits());
        assert!(none.removes.is_empty() && none.kept.is_some());
        // More than --max-delete: kept, unless forced.
        let tight = GuardLimits {
            max_delete: 1,
            ..limits()
        };
        let guarded = plan(desired_feeds(&gone, &secret()), &files, WS, 1, tight);
        assert!(guarded.removes.is_empty() && guarded.kept.is_some());
        let forced = plan(
            desired_feeds(&gone, &secret()),
            &files,
            WS,
            1,
            GuardLimits {
                force: true,
                ..tight
            },
        );
        assert_eq!(forced.removes.len(), 2);
    }

    #[test]
    fn only_marked_feed_files_of_this_workspace_are_read_and_nothing_else_is_touched() {
        let dir = std::env::temp_dir().join(format!("calplanebot-feed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let source = source(Some(vec![issue(3, P2, 1, &[BOB])]));
        let first = plan(
            desired_feeds(&source, &secret()),
            &BTreeMap::new(),
            WS,
            2,
            limits(),
        );
        assert!(apply(&dir, &first).is_empty());
        let other_ws = render("Plane: x", "globex", Vec::new());
        let foreign = "0123456789abcdef0123456789abcdef.ics";
        std::fs::write(dir.join(foreign), &other_ws).unwrap();
        std::fs::write(dir.join("index.html"), "hello").unwrap();
        std::fs::write(
            dir.join("fedcba9876543210fedcba9876543210.ics"),
            "not a calendar",
        )
        .unwrap();
        let existing = read_existing(&dir, WS).unwrap();
        assert_eq!(existing.len(), 6);
        // Every feed of this workspace is stale now: the others are still not touched.
        let mut empty = source.clone();
        empty.projects.truncate(1);
        empty.members.clear();
        let mut gone = plan(desired_feeds(&empty, &secret()), &existing, WS, 1, limits());
        gone.writes.clear();
        assert_eq!(gone.removes.len(), 4);
        assert!(apply(&dir, &gone).is_empty());
        assert_eq!(
            std::fs::read_to_string(dir.join(foreign)).unwrap(),
            other_ws
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("index.html")).unwrap(),
            "hello"
        );
        let mode = std::os::unix::fs::PermissionsExt::mode(
            &std::fs::metadata(dir.join(first.writes[0].file_name.clone()))
                .unwrap()
                .permissions(),
        );
        assert_eq!(mode & 0o777, 0o644);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
