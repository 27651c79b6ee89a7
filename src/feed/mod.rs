//! The feed target: subscription calendars (`.ics` files) in a directory that any web server
//! serves, for calendars that cannot be written over CalDAV (Google Calendar, Outlook) and for
//! people who want their own issues (design.md, "Feeds").
//!
//! Three kinds of feed come from one Plane fetch and the CalDAV mapping: one per project, one
//! per workspace member (the dated issues assigned to them), one for the workspace. A feed's
//! file name is `{token}.ics`, the token an HMAC of the feed's identity under
//! `CALPLANEBOT_FEED_SECRET` (and, once revoked, a nonce of its own): stable without state,
//! unguessable. A file name is a bearer secret, so it never reaches a log line or the plan.
//!
//! A feed URL is a promise to a subscriber (issue 20), so:
//! - a feed whose bytes would not change is not written (same bytes, same mtime: web servers'
//!   ETag and Last-Modified keep working); a project whose fetch failed keeps its events in
//!   every feed (carried over from the files);
//! - a feed is removed only by a run that saw the whole truth ([`Truth`]), never by a webhook,
//!   never in a run where a write failed, and under the deletion guard; a file at a feed's name
//!   that is not this workspace's is never overwritten; anything else in the directory is never
//!   touched;
//! - the directory is one configuration's, with one secret, locked while written
//!   ([`directory`]);
//! - memory: each event is rendered once ([`FeedEvent`]), and feeds are compared and written
//!   one at a time, streaming against the file on disk ([`file`]).

pub mod directory;
pub mod file;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Read as _, Write};
use std::path::Path;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use serde::Serialize;
use sha2::Sha256;

pub use directory::{Access, DirectoryError, FeedDirectory, Identity};
pub use file::{EventText, is_feed_file_name};

use crate::config::Secret;
use crate::exit::Status;
use crate::mapping::event::{self, ManagedFields};
use crate::mapping::ics::Component;
use crate::reconcile::plan::{self, GuardLimits};
use crate::reconcile::render;
use file::{FeedText, Found, Head};

/// The kinds of feed (design.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
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

    fn from_name(name: &str) -> Option<Kind> {
        match name {
            "project" => Some(Kind::Project),
            "member" => Some(Kind::Member),
            "workspace" => Some(Kind::Workspace),
            _ => None,
        }
    }
}

/// Which feed: its kind and the id of what it is about (project id, member id, workspace
/// slug). Every feed file says it in its head (`X-CALPLANEBOT-FEED:{kind}:{id}`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FeedId {
    pub kind: Kind,
    pub id: String,
}

impl FeedId {
    pub fn new(kind: Kind, id: &str) -> FeedId {
        FeedId {
            kind,
            id: id.to_string(),
        }
    }

    pub fn project(id: &str) -> FeedId {
        FeedId::new(Kind::Project, id)
    }

    pub fn member(id: &str) -> FeedId {
        FeedId::new(Kind::Member, id)
    }

    pub fn workspace(slug: &str) -> FeedId {
        FeedId::new(Kind::Workspace, slug)
    }

    /// The value of the head's mark.
    pub fn mark(&self) -> String {
        format!("{}:{}", self.kind.name(), self.id)
    }

    /// Reads the head's mark back.
    pub fn from_mark(mark: &str) -> Option<FeedId> {
        let (kind, id) = mark.split_once(':')?;
        Some(FeedId::new(Kind::from_name(kind)?, id)).filter(|f| !f.id.is_empty())
    }
}

/// The token of a feed: the first 32 lowercase hex digits of
/// HMAC-SHA256(secret, "{kind}:{workspace_slug}:{id}"), plus `:{nonce}` once the feed was
/// revoked.
pub fn token(secret: &Secret, kind: Kind, workspace: &str, id: &str) -> String {
    hmac_hex(secret, &format!("{}:{workspace}:{id}", kind.name()))
}

fn hmac_hex(secret: &Secret, message: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(message.as_bytes());
    mac.finalize().into_bytes()[..16]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// How a directory names its feeds: the secret, the workspace, and the nonces of revoked
/// feeds (by revocation key, see [`Namer::revocation_key`]).
#[derive(Clone, Debug)]
pub struct Namer {
    secret: Secret,
    workspace: String,
    revoked: BTreeMap<String, String>,
}

impl Namer {
    pub fn new(secret: Secret, workspace: &str) -> Namer {
        Namer {
            secret,
            workspace: workspace.to_string(),
            revoked: BTreeMap::new(),
        }
    }

    fn with_revoked(mut self, revoked: BTreeMap<String, String>) -> Namer {
        self.revoked = revoked;
        self
    }

    /// The feed's file name, `{token}.ics`.
    pub fn file_name(&self, feed: &FeedId) -> String {
        let base = format!("{}:{}:{}", feed.kind.name(), self.workspace, feed.id);
        let token = match self.revoked.get(&self.revocation_key(feed)) {
            Some(nonce) => hmac_hex(&self.secret, &format!("{base}:{nonce}")),
            None => hmac_hex(&self.secret, &base),
        };
        format!("{token}.ics")
    }

    /// Where the record files a revoked feed's nonce: an HMAC, so the record does not say
    /// which feed it is.
    fn revocation_key(&self, feed: &FeedId) -> String {
        hmac_hex(
            &self.secret,
            &format!(
                "revoked:{}:{}:{}",
                feed.kind.name(),
                self.workspace,
                feed.id
            ),
        )
    }
}

/// `n` random bytes from the kernel (`/dev/urandom`), as hex.
pub fn random_hex(n: usize) -> io::Result<String> {
    let mut bytes = vec![0u8; n];
    std::fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// One dated issue's event, rendered once, as every feed that holds it carries it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FeedEvent {
    pub event: EventText,
    /// The project id (its mark).
    pub project: String,
    /// Member ids of the assignees.
    pub assignees: Vec<String>,
}

impl FeedEvent {
    /// The event of `fields`, stamped with the issue's `updated_at` (so a feed is the same
    /// bytes as long as nothing changed).
    pub fn new(fields: &ManagedFields, dtstamp: DateTime<Utc>, assignees: Vec<String>) -> Self {
        FeedEvent {
            event: EventText::of(&event::vevent(fields, dtstamp)),
            project: fields.project.clone().unwrap_or_default(),
            assignees,
        }
    }
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

impl MemberRef {
    /// A member of the workspace's members list.
    pub fn of_member(member: &crate::plane::Member) -> MemberRef {
        MemberRef {
            id: member.id.clone(),
            display_name: member.label().to_string(),
        }
    }

    /// An assignee of a work item (a webhook run; a key that may not read the members list).
    pub fn of_assignee(assignee: &crate::plane::Assignee) -> MemberRef {
        MemberRef {
            id: assignee.id.clone(),
            display_name: assignee.name.clone(),
        }
    }

    /// The member's feed and its calendar name.
    pub fn feed(&self) -> (FeedId, String) {
        (FeedId::member(&self.id), calendar_name(&self.display_name))
    }
}

/// The calendar name of a feed (`NAME`, `X-WR-CALNAME`): `Plane: {project, person or
/// workspace}`. Sync and webhook both name feeds through it.
pub fn calendar_name(label: &str) -> String {
    format!("Plane: {label}")
}

/// Everything the feeds of one run are made of.
#[derive(Clone, Debug)]
pub struct Source {
    pub workspace: String,
    pub projects: Vec<ProjectEvents>,
    pub members: Vec<MemberRef>,
}

/// One feed as a run wants it.
#[derive(Clone, Debug)]
pub struct Wanted {
    pub feed: FeedId,
    /// The calendar's name.
    pub name: String,
    /// Projects whose events are taken from this feed's existing file instead.
    pub carried: BTreeSet<String>,
}

/// The feeds a run wants: one per project, one per member (every member, even with no issue),
/// one for the workspace.
pub fn wanted_feeds(source: &Source) -> Vec<Wanted> {
    let failed: BTreeSet<String> = source
        .projects
        .iter()
        .filter(|p| p.events.is_none())
        .map(|p| p.id.clone())
        .collect();
    let mut feeds = Vec::with_capacity(source.projects.len() + source.members.len() + 1);
    for project in &source.projects {
        feeds.push(Wanted {
            feed: FeedId::project(&project.id),
            name: calendar_name(&project.name),
            carried: failed
                .iter()
                .filter(|id| **id == project.id)
                .cloned()
                .collect(),
        });
    }
    for member in &source.members {
        let (feed, name) = member.feed();
        feeds.push(Wanted {
            feed,
            name,
            carried: failed.clone(),
        });
    }
    feeds.push(Wanted {
        feed: FeedId::workspace(&source.workspace),
        name: calendar_name(&source.workspace),
        carried: failed,
    });
    feeds
}

/// The events of this run that `feed` holds.
pub fn events_for<'a>(source: &'a Source, feed: &FeedId) -> Vec<&'a FeedEvent> {
    source
        .projects
        .iter()
        .flat_map(|p| p.events.iter().flatten())
        .filter(|e| match feed.kind {
            Kind::Project => e.project == feed.id,
            Kind::Member => e.assignees.contains(&feed.id),
            Kind::Workspace => true,
        })
        .collect()
}

/// What a run knows for certain, which decides what it may remove (issue 20, point 1).
#[derive(Clone, Debug, Default)]
pub struct Truth {
    /// Whether this run may remove feeds at all (not a project webhook's run).
    pub may_remove: bool,
    /// The ids of the syncable projects of a complete projects listing; `None` when Plane
    /// listed none (an empty answer never removes a feed).
    pub projects: Option<BTreeSet<String>>,
    /// The workspace's members, when the members list was read (not the assignees seen).
    pub members: Option<BTreeSet<String>>,
    /// Every project was selected (no `--project`) and read completely.
    pub complete: bool,
}

impl Truth {
    /// Whether the run saw everything: the members list, every project, no `--project`.
    fn whole(&self) -> bool {
        self.complete && self.members.is_some() && self.projects.is_some()
    }

    /// Whether `feed`'s subject is gone: a project the complete listing no longer shows, a
    /// person no longer a member (seen by a whole run).
    fn gone(&self, feed: &FeedId) -> bool {
        match feed.kind {
            Kind::Project => self
                .projects
                .as_ref()
                .is_some_and(|p| !p.contains(&feed.id)),
            Kind::Member => {
                self.whole() && self.members.as_ref().is_some_and(|m| !m.contains(&feed.id))
            }
            // The workspace's own feed is always wanted.
            Kind::Workspace => false,
        }
    }
}

/// How a run treats the feeds.
#[derive(Clone, Copy, Debug)]
pub struct Options {
    pub dry_run: bool,
    pub guard: GuardLimits,
    /// Print the plan's lines (text output).
    pub text: bool,
}

/// Something the feed target could not do, named by feed (never by file).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FeedFailure {
    pub name: String,
    pub error: String,
}

/// What the feed target did (or, in a dry run, would do).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Outcome {
    pub written: usize,
    pub removed: usize,
    pub unchanged: usize,
    pub failures: Vec<FeedFailure>,
    /// Why feeds no longer wanted are kept, when the guard or a failed write keeps them.
    pub kept: Vec<String>,
    /// The deletion guard refused this run's removals.
    pub refused: bool,
}

impl Outcome {
    /// The feed target's exit status.
    pub fn status(&self) -> Status {
        if !self.failures.is_empty() {
            Status::PartialFailure
        } else if self.refused {
            Status::Refused
        } else {
            Status::Success
        }
    }
}

/// One feed's write: compared with the file at its name, then written unless it holds the same
/// bytes. A file there that is not a feed of this workspace is never overwritten: the feed
/// fails, with a hint.
struct Put<'a> {
    kind: &'static str,
    name: &'a str,
    file_name: &'a str,
    text: FeedText<'a>,
}

fn put(
    dir: &Path,
    workspace: &str,
    found: Option<&Found>,
    feed: Put<'_>,
    options: Options,
    out: &mut dyn Write,
    outcome: &mut Outcome,
) -> bool {
    let path = dir.join(feed.file_name);
    let sign = match found {
        // No file yet: a new feed.
        None => '+',
        // One of ours: rewritten only when its bytes differ.
        Some(Found::Calendar(head)) if head.is_ours(workspace) => {
            match file::holds(&path, &feed.text) {
                Ok(true) => {
                    outcome.unchanged += 1;
                    return true;
                }
                Ok(false) => '~',
                Err(e) => {
                    return fail(
                        outcome,
                        feed.name,
                        format!("cannot read the feed: {}", e.kind()),
                    );
                }
            }
        }
        // Another workspace's feed, or a file calplanebot did not write: left alone.
        Some(_) => {
            return fail(
                outcome,
                feed.name,
                "a file calplanebot did not write (no mark of this workspace) is at this feed's name in CALPLANEBOT_FEED_DIR: it is left alone. Move it away if it is not needed, and the next run writes the feed".into(),
            );
        }
    };
    if options.text {
        let mut line = change_line(sign, feed.kind, feed.name, feed.text.events.len());
        if sign == '~'
            && let Ok(before) = file::read_text(&path)
        {
            line.push_str(&render::text_diff(&before, &feed.text.to_text()));
        }
        let _ = out.write_all(line.as_bytes());
    }
    if !options.dry_run
        && let Err(e) = file::write(dir, feed.file_name, &feed.text)
    {
        let error = format!("cannot write the feed: {}", e.kind());
        return fail(outcome, feed.name, error);
    }
    outcome.written += 1;
    true
}

fn fail(outcome: &mut Outcome, name: &str, error: String) -> bool {
    outcome.failures.push(FeedFailure {
        name: name.to_string(),
        error,
    });
    false
}

/// The events of an existing feed file of projects `carried` (a project not read completely
/// this run keeps them as they are).
fn carried_events(path: &Path, carried: &BTreeSet<String>) -> io::Result<Vec<EventText>> {
    let mut events = Vec::new();
    if carried.is_empty() {
        return Ok(events);
    }
    file::for_each_event(path, |block| {
        if block.project.as_ref().is_some_and(|p| carried.contains(p)) {
            events.push(block.event);
        }
    })?;
    Ok(events)
}

/// Why an existing feed file goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Removal {
    /// The old name of a rotated or revoked feed: the operator asked (no guard).
    Retired,
    /// Its subject is gone, or it is an old copy of a live feed seen by a whole run.
    Stale,
}

/// Whether an existing feed file of this workspace that no wanted feed has at its name goes,
/// and why (issue 20, point 1). `written` holds the feeds this run wrote (or found unchanged).
fn removal(
    head: &Head,
    retired: bool,
    truth: &Truth,
    written: &BTreeSet<FeedId>,
) -> Option<Removal> {
    let stale = match &head.feed {
        // Another name of a feed this run wrote: an old one.
        Some(feed) if written.contains(feed) => retired || truth.whole(),
        // A feed this run did not write: only when its subject is gone.
        Some(feed) => truth.gone(feed),
        // Written before feeds said which they are: only a whole run may tell.
        None => retired || truth.whole(),
    };
    match (stale, retired) {
        (false, _) => None,
        (true, true) => Some(Removal::Retired),
        (true, false) => Some(Removal::Stale),
    }
}

/// The feed target of a `sync`: every wanted feed compared with its file and written when it
/// differs, one at a time; then, when every write succeeded, the files no longer wanted that
/// [`removal`] lets go, under the deletion guard. Plan lines go to `out`.
pub fn write_all(
    dir: &mut FeedDirectory,
    source: &Source,
    truth: &Truth,
    options: Options,
    out: &mut dyn Write,
) -> Result<Outcome, DirectoryError> {
    let workspace = source.workspace.as_str();
    let namer = dir.namer();
    let files: BTreeMap<String, Found> = dir.feed_files()?.into_iter().collect();
    let ours: BTreeMap<&str, &Head> = files
        .iter()
        .filter_map(|(name, found)| match found {
            Found::Calendar(head) if head.is_ours(workspace) => Some((name.as_str(), head)),
            _ => None,
        })
        .collect();
    let mut outcome = Outcome::default();
    let mut wanted_names = BTreeSet::new();
    let mut written = BTreeSet::new();
    let existing = Existing {
        dir: &dir.path,
        files: &files,
        ours: &ours,
    };
    for wanted in wanted_feeds(source) {
        let file_name = namer.file_name(&wanted.feed);
        wanted_names.insert(file_name.clone());
        if write_wanted(
            existing,
            source,
            &wanted,
            &file_name,
            options,
            out,
            &mut outcome,
        ) {
            written.insert(wanted.feed);
        }
    }
    let candidates: Vec<(&str, &Head)> = ours
        .iter()
        .filter(|(n, _)| truth.may_remove && !wanted_names.contains(**n))
        .map(|(n, h)| (*n, *h))
        .collect();
    let removals = removals(
        dir,
        candidates,
        ours.len(),
        truth,
        &written,
        options,
        &mut outcome,
    );
    let removed = remove(&dir.path, removals, options, out, &mut outcome);
    if options.text {
        for kept in &outcome.kept {
            let _ = writeln!(out, "! feeds: {}", render::escape_controls(kept));
        }
    }
    if !options.dry_run {
        // A retired name is remembered while an old file has it: not once removed, and not
        // when a feed is (again) written under it.
        let present: BTreeSet<String> = files
            .keys()
            .filter(|n| !removed.contains(*n) && !wanted_names.contains(*n))
            .cloned()
            .collect();
        dir.forget_retired(&present);
        dir.save()?;
    }
    Ok(outcome)
}

/// The directory as a run found it.
#[derive(Clone, Copy)]
struct Existing<'a> {
    dir: &'a Path,
    files: &'a BTreeMap<String, Found>,
    /// The feed files of this workspace, by name.
    ours: &'a BTreeMap<&'a str, &'a Head>,
}

/// One wanted feed of a `sync`: its events (with those carried over from its file for
/// projects not read completely), compared and written. Whether it holds what the run wants.
fn write_wanted(
    existing: Existing<'_>,
    source: &Source,
    wanted: &Wanted,
    file_name: &str,
    options: Options,
    out: &mut dyn Write,
    outcome: &mut Outcome,
) -> bool {
    // Carried events come from the feed's file: at its name, else under an old name (a
    // rotation or revocation not yet written out).
    let from = if existing.ours.contains_key(file_name) {
        Some(file_name)
    } else {
        existing
            .ours
            .iter()
            .find(|(_, head)| head.feed.as_ref() == Some(&wanted.feed))
            .map(|(name, _)| *name)
    };
    let carried = match from {
        Some(from) => match carried_events(&existing.dir.join(from), &wanted.carried) {
            Ok(carried) => carried,
            Err(e) => {
                let error = format!("cannot read the feed: {}", e.kind());
                return fail(outcome, &wanted.name, error);
            }
        },
        None => Vec::new(),
    };
    let mut events: Vec<&EventText> = events_for(source, &wanted.feed)
        .into_iter()
        .map(|e| &e.event)
        .chain(&carried)
        .collect();
    events.sort_by(|a, b| a.key.cmp(&b.key));
    let feed = Put {
        kind: wanted.feed.kind.name(),
        name: &wanted.name,
        file_name,
        text: FeedText {
            head: file::head(&wanted.name, &source.workspace, Some(&wanted.feed)),
            events,
        },
    };
    let found = existing.files.get(file_name);
    put(
        existing.dir,
        &source.workspace,
        found,
        feed,
        options,
        out,
        outcome,
    )
}

/// Which of `candidates` (files of this workspace no wanted feed has at its name) go, and why:
/// [`removal`] for each, then none at all after a failed write, no stale one when Plane listed
/// no project, and no stale one above the deletion guard (`owned`: this workspace's files).
fn removals<'a>(
    dir: &FeedDirectory,
    candidates: Vec<(&'a str, &'a Head)>,
    owned: usize,
    truth: &Truth,
    written: &BTreeSet<FeedId>,
    options: Options,
    outcome: &mut Outcome,
) -> Vec<(&'a str, &'a Head, Removal)> {
    let mut stale = Vec::new();
    let mut retired = Vec::new();
    for (name, head) in candidates {
        match removal(head, dir.is_retired(name), truth, written) {
            Some(Removal::Retired) => retired.push((name, head, Removal::Retired)),
            Some(Removal::Stale) => stale.push((name, head, Removal::Stale)),
            None => {}
        }
    }
    if !outcome.failures.is_empty() && stale.len() + retired.len() > 0 {
        outcome.kept.push(format!(
            "a feed could not be written, so none of the {} feeds no longer wanted is removed this run (the next run finishes the job)",
            stale.len() + retired.len()
        ));
        return Vec::new();
    }
    if truth.projects.is_none() && !stale.is_empty() {
        outcome.kept.push(format!(
            "Plane listed no project, so the {} feeds no longer wanted are kept",
            stale.len()
        ));
        stale.clear();
    }
    if !stale.is_empty()
        && plan::too_many_deletions(options.guard, stale.len(), owned)
        && !options.guard.force
    {
        outcome.kept.push(format!(
            "{} of the {owned} feeds of this workspace are no longer wanted, more than --max-delete {} or --max-delete-percent {}: kept (check Plane, then --force-delete removes them)",
            stale.len(),
            options.guard.max_delete,
            options.guard.max_percent
        ));
        outcome.refused = true;
        stale.clear();
    }
    retired.extend(stale);
    retired
}

/// Removes `removals` (prints them; a dry run only counts them). The names that are gone.
fn remove(
    dir: &Path,
    removals: Vec<(&str, &Head, Removal)>,
    options: Options,
    out: &mut dyn Write,
    outcome: &mut Outcome,
) -> BTreeSet<String> {
    let mut removed = BTreeSet::new();
    for (name, head, why) in removals {
        let label = head.name.clone().unwrap_or_default();
        if options.text {
            let kind = file::kind_name(head.feed.as_ref());
            let line = removal_line(kind, &label, why == Removal::Retired);
            let _ = out.write_all(line.as_bytes());
        }
        if options.dry_run {
            outcome.removed += 1;
            continue;
        }
        match std::fs::remove_file(dir.join(name)) {
            Ok(()) => {
                outcome.removed += 1;
                removed.insert(name.to_string());
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                removed.insert(name.to_string());
            }
            Err(e) => {
                let error = format!("cannot remove the old feed: {}", e.kind());
                fail(outcome, &label, error);
            }
        }
    }
    removed
}

/// One issue's event, put into or taken out of the feeds (a webhook run): `event` is the new
/// VEVENT (`None` when the issue has no date any more, or is gone), `into` the feeds that
/// want it (its project, the workspace, its assignees) with their calendar names.
#[derive(Clone, Debug)]
pub struct Patch {
    pub uid: String,
    pub event: Option<Component>,
    pub into: Vec<(FeedId, String)>,
}

/// Patches the directory for one issue: every feed of this workspace that holds `patch.uid`
/// loses that VEVENT, and every feed of `patch.into` gets the new one (a missing one is
/// created, unless there is nothing to put in it). Only the feeds touched are read event by
/// event; the others are searched for the UID's line. A patch never removes a feed.
pub fn patch(
    dir: &mut FeedDirectory,
    workspace: &str,
    patch: &Patch,
    options: Options,
    out: &mut dyn Write,
) -> Result<Outcome, DirectoryError> {
    let namer = dir.namer();
    let files: BTreeMap<String, Found> = dir.feed_files()?.into_iter().collect();
    let into: BTreeMap<String, &(FeedId, String)> = patch
        .into
        .iter()
        .map(|wanted| (namer.file_name(&wanted.0), wanted))
        .collect();
    let uid_line = format!("UID:{}", crate::mapping::ics::escape_text(&patch.uid));
    let mut outcome = Outcome::default();
    let new = patch.event.as_ref().map(EventText::of);
    for (name, found) in files.iter().filter(|(n, _)| !into.contains_key(*n)) {
        let Found::Calendar(head) = found else {
            continue;
        };
        let holds = head.is_ours(workspace)
            && file::contains(&dir.path.join(name), uid_line.as_bytes()).unwrap_or(false);
        if holds {
            let label = head.name.clone().unwrap_or_default();
            patch_one(
                dir,
                workspace,
                name,
                head.feed.as_ref(),
                &label,
                found,
                &patch.uid,
                None,
                options,
                out,
                &mut outcome,
            );
        }
    }
    for (name, (feed, label)) in &into {
        let found = files.get(name);
        if found.is_none() && new.is_none() {
            continue;
        }
        patch_one(
            dir,
            workspace,
            name,
            Some(feed),
            label,
            found.unwrap_or(&Found::Other),
            &patch.uid,
            new.as_ref(),
            options,
            out,
            &mut outcome,
        );
    }
    Ok(outcome)
}

/// One feed of a patch: its events with `uid`'s replaced by `new` (or dropped).
#[allow(clippy::too_many_arguments)]
fn patch_one(
    dir: &FeedDirectory,
    workspace: &str,
    name: &str,
    feed: Option<&FeedId>,
    label: &str,
    found: &Found,
    uid: &str,
    new: Option<&EventText>,
    options: Options,
    out: &mut dyn Write,
    outcome: &mut Outcome,
) {
    let path = dir.path.join(name);
    let exists = std::fs::symlink_metadata(&path).is_ok();
    let mut events = Vec::new();
    if exists && matches!(found, Found::Calendar(head) if head.is_ours(workspace)) {
        let read = file::for_each_event(&path, |block| {
            if block.uid != uid {
                events.push(block.event);
            }
        });
        if let Err(e) = read {
            fail(
                outcome,
                label,
                format!("cannot read the feed: {}", e.kind()),
            );
            return;
        }
    }
    let mut refs: Vec<&EventText> = events.iter().chain(new).collect();
    refs.sort_by(|a, b| a.key.cmp(&b.key));
    let text = FeedText {
        head: file::head(label, workspace, feed),
        events: refs,
    };
    let found = exists.then_some(found);
    put(
        &dir.path,
        workspace,
        found,
        Put {
            kind: file::kind_name(feed),
            name: label,
            file_name: name,
            text,
        },
        options,
        out,
        outcome,
    );
}

/// Calls `each` with the UID and project mark of every event in every feed of this workspace
/// (to find the events whose issue left Plane's lists, and where a deleted issue was).
pub fn for_each_existing_event(
    dir: &FeedDirectory,
    workspace: &str,
    mut each: impl FnMut(&str, Option<&str>) -> bool,
) -> Result<(), DirectoryError> {
    for (name, found) in dir.feed_files()? {
        if !matches!(&found, Found::Calendar(head) if head.is_ours(workspace)) {
            continue;
        }
        let mut go_on = true;
        file::for_each_event(&dir.path.join(&name), |block| {
            if go_on {
                go_on = each(&block.uid, block.project.as_deref());
            }
        })
        .map_err(|e| {
            DirectoryError::Io(format!("cannot read a feed of CALPLANEBOT_FEED_DIR: {e}"))
        })?;
        if !go_on {
            break;
        }
    }
    Ok(())
}

/// The project mark of the event with this UID, from any feed of this workspace: where a
/// deleted issue (whose delivery names no project) was.
pub fn project_of(
    dir: &FeedDirectory,
    workspace: &str,
    uid: &str,
) -> Result<Option<String>, DirectoryError> {
    let mut found = None;
    for_each_existing_event(dir, workspace, |event_uid, project| {
        if event_uid == uid {
            found = project.map(str::to_string);
        }
        found.is_none()
    })?;
    Ok(found)
}

// The plan's lines and summary (feeds are named by kind and calendar name, never by file).

/// One line of the feed target's plan: `+` a new feed, `~` a changed one (a diff follows: see
/// [`feed_diff`]). Feeds are named by kind and calendar name, never by file name: a file name
/// is a bearer secret.
fn change_line(sign: char, kind: &str, name: &str, events: usize) -> String {
    format!(
        "{sign} feed {kind} \"{}\" ({events} event{})\n",
        crate::support::text::escape_controls(name),
        if events == 1 { "" } else { "s" }
    )
}

/// `-` a feed removed: its subject is gone, or it is the old name of a rotated or revoked feed.
fn removal_line(kind: &str, name: &str, retired: bool) -> String {
    let why = if retired {
        " (old URL of a rotated or revoked feed)"
    } else {
        ""
    };
    format!(
        "- feed {kind} \"{}\"{why}\n",
        crate::support::text::escape_controls(name)
    )
}

/// The feed target's one summary line.
pub fn summary_line(outcome: &Outcome, dry_run: bool) -> String {
    if dry_run {
        format!(
            "feeds, dry run: would write {}, remove {}; {} unchanged (nothing written)",
            outcome.written, outcome.removed, outcome.unchanged
        )
    } else {
        format!(
            "feeds: {} written, {} removed, {} unchanged, {} failed",
            outcome.written,
            outcome.removed,
            outcome.unchanged,
            outcome.failures.len()
        )
    }
}

#[cfg(test)]
mod tests;
