//! The listing snapshot: what the last runs found in each calendar (its ctag and sync-token,
//! and every event calplanebot owns there, with its ETag and stored text), so a run in which
//! nothing changed asks the server one question instead of reading every event again.
//!
//! It only saves requests; it is never a source of truth. A calendar is taken from the snapshot
//! only while the server reports the very ctag or sync-token it was recorded with; a calendar
//! that changed is read with `sync-collection` (RFC 6578) from the recorded token, or listed in
//! full. Every calendar is listed in full again at least once per `CALPLANEBOT_FULL_LISTING_EVERY`
//! (and the calendar home discovered again). A snapshot that is missing, unreadable, of another
//! format, version or configuration, or that names a URL outside the server or an event outside
//! its calendar, is ignored as a whole. Deleting it changes only the cost of the next run.
//!
//! Every write calplanebot makes is conditional on the ETag the snapshot holds, so a stale
//! snapshot costs a 412 and a re-read, never a lost edit.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::caldav::{self, StoredEvent};

/// What the file says it is, so no other JSON is ever taken for a snapshot.
const FORMAT: &str = "calplanebot listing snapshot";
const VERSION: u32 = 1;
/// Largest snapshot read: 200,000 events of 2 KiB each.
const MAX_SIZE: u64 = 512 * 1024 * 1024;

/// What the snapshot file holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Contents {
    format: String,
    version: u32,
    /// The configuration it was taken for.
    caldav_url: String,
    caldav_username: String,
    calendar_url: String,
    workspace: String,
    /// Where discovery led, and when.
    #[serde(default)]
    layout: Option<RecordedLayout>,
    /// Calendar URL → what the last run found there.
    #[serde(default)]
    calendars: BTreeMap<String, CalendarRecord>,
}

/// Where discovery from `CALDAV_URL` led.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedLayout {
    /// The calendar home (one calendar per project), or `None` for single-calendar mode.
    pub home: Option<String>,
    /// `CALDAV_URL` is a calendar: single-calendar mode into this URL.
    pub single: Option<String>,
    /// When discovery found it (Unix seconds).
    pub discovered_at: i64,
}

/// One calendar as calplanebot last saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CalendarRecord {
    /// The validators the server reported for the state `events` describes.
    pub ctag: Option<String>,
    pub sync_token: Option<String>,
    /// When the full listing this record descends from was made (Unix seconds).
    pub listed_at: i64,
    /// The events calplanebot may own there, at the state of the validators.
    pub events: Vec<RecordedEvent>,
    /// calplanebot's own writes after that state, each with what the server answered: the
    /// next run expects exactly these in the server's change report.
    #[serde(default)]
    pub pending: Vec<PendingWrite>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedEvent {
    pub url: String,
    pub etag: String,
    pub data: String,
}

/// A write of this run: the event now stored at `url` (`Some` ETag and text), or its deletion.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingWrite {
    pub url: String,
    pub etag: Option<String>,
    pub data: Option<String>,
}

/// The validators a server reports for a calendar now.
#[derive(Clone, Copy, Debug, Default)]
pub struct Validators<'a> {
    pub ctag: Option<&'a str>,
    pub sync_token: Option<&'a str>,
}

/// How a calendar is read this run.
#[derive(Debug, PartialEq, Eq)]
pub enum Listing<'a> {
    /// The server reports the recorded validators: the record is the calendar's state.
    Unchanged(&'a CalendarRecord),
    /// Changed since the recorded sync-token: ask for the changes since it.
    Changes(&'a CalendarRecord, &'a str),
    /// No usable record: list in full.
    Full,
}

/// Decides how to read a calendar from its record (if any, and not due for a full listing)
/// and the validators the server reports now. A validator that only one side has decides
/// nothing; one that differs means a change; at least one must be equal to skip the calendar.
pub fn choose<'a>(record: Option<&'a CalendarRecord>, now: Validators<'_>) -> Listing<'a> {
    let Some(record) = record else {
        return Listing::Full;
    };
    let same = |a: Option<&str>, b: Option<&str>| match (a, b) {
        (Some(a), Some(b)) => Some(a == b),
        _ => None,
    };
    let token = same(record.sync_token.as_deref(), now.sync_token);
    let ctag = same(record.ctag.as_deref(), now.ctag);
    let equal = token != Some(false) && ctag != Some(false);
    if record.pending.is_empty() && equal && (token == Some(true) || ctag == Some(true)) {
        return Listing::Unchanged(record);
    }
    match (&record.sync_token, now.sync_token) {
        (Some(from), Some(_)) => Listing::Changes(record, from),
        _ => Listing::Full,
    }
}

/// What a change report means for a record: the events known without a request, and the
/// hrefs to read again.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Merged {
    /// Events whose state is known (recorded and not changed, or our own write that the
    /// server reports with the ETag it gave us), by decoded path.
    pub known: Vec<StoredEvent>,
    /// Changed members to read again (hrefs as the server spelled them).
    pub to_read: Vec<String>,
}

/// Applies a change report (`changed`: href and ETag of each added or changed member;
/// `removed`: hrefs of removed members; all hrefs as the server spelled them, already checked
/// to lie inside the calendar) to `record`. `None` when the report contradicts the record: one of our pending
/// writes is missing from it, or reported with another ETag and not re-read — then the
/// calendar is listed in full.
pub fn merge_changes(
    record: &CalendarRecord,
    changed: &[(String, Option<String>)],
    removed: &[String],
) -> Option<Merged> {
    let key = |href: &str| caldav::xml::href_path(href);
    let pending: HashMap<String, &PendingWrite> =
        record.pending.iter().map(|p| (key(&p.url), p)).collect();
    // Each of our writes must be in the report, as we made it or changed again since (then it
    // is read again); a report without it contradicts what we know.
    let reported: HashSet<String> = changed
        .iter()
        .map(|(href, _)| key(href))
        .chain(removed.iter().map(|href| key(href)))
        .collect();
    if pending.keys().any(|path| !reported.contains(path)) {
        return None;
    }
    // The recorded events, less those our writes replaced: those are known only from the report.
    let mut known: HashMap<String, StoredEvent> = record
        .events
        .iter()
        .filter(|e| !pending.contains_key(&key(&e.url)))
        .map(|e| {
            (
                key(&e.url),
                StoredEvent {
                    url: e.url.clone(),
                    etag: Some(e.etag.clone()),
                    data: e.data.clone(),
                },
            )
        })
        .collect();
    for href in removed {
        known.remove(&key(href));
    }
    let mut to_read = Vec::new();
    for (href, etag) in changed {
        let path = key(href);
        let ours = pending.get(&path).and_then(|p| match (&p.etag, &p.data) {
            (Some(ours), Some(data)) if Some(ours) == etag.as_ref() => Some((&p.url, data)),
            _ => None,
        });
        if let Some((url, data)) = ours {
            known.insert(
                path,
                StoredEvent {
                    url: url.clone(),
                    etag: etag.clone(),
                    data: data.clone(),
                },
            );
            continue;
        }
        let unchanged = etag.is_some()
            && known
                .get(&path)
                .is_some_and(|e| e.etag.as_deref() == etag.as_deref());
        if !unchanged {
            known.remove(&path);
            to_read.push(href.clone());
        }
    }
    let mut known: Vec<StoredEvent> = known.into_values().collect();
    known.sort_by(|a, b| a.url.cmp(&b.url));
    Some(Merged { known, to_read })
}

/// The snapshot of one configuration, as read at the start of a run.
#[derive(Debug)]
pub struct Snapshot {
    path: Option<PathBuf>,
    contents: Contents,
    /// Records older than this are not used (a full listing is due).
    every: Duration,
    /// The run's clock (Unix seconds).
    now: i64,
    dirty: bool,
}

/// The configuration a snapshot belongs to.
#[derive(Clone, Copy, Debug)]
pub struct Owner<'a> {
    pub caldav_url: &'a str,
    pub caldav_username: &'a str,
    pub calendar_url: Option<&'a str>,
    pub workspace: &'a str,
}

impl Snapshot {
    /// Reads the snapshot at `path` for this configuration; anything unusable gives an empty
    /// one, and `every` = 0 (always list in full) neither reads nor writes one.
    pub fn load(path: Option<&Path>, owner: Owner<'_>, every: Duration) -> Snapshot {
        let now = chrono::Utc::now().timestamp();
        let path = path.filter(|_| !every.is_zero());
        let empty = Contents {
            format: FORMAT.to_string(),
            version: VERSION,
            caldav_url: owner.caldav_url.to_string(),
            caldav_username: owner.caldav_username.to_string(),
            calendar_url: owner.calendar_url.unwrap_or_default().to_string(),
            workspace: owner.workspace.to_string(),
            layout: None,
            calendars: BTreeMap::new(),
        };
        let contents = match path.map(|p| (p, read(p))) {
            Some((_, Ok(None))) | None => empty,
            Some((path, Ok(Some(found)))) => match check(found, &empty) {
                Ok(contents) => contents,
                Err(why) => {
                    log::warn!(
                        "ignoring the listing snapshot {}: {why}; every calendar is listed in full",
                        path.display()
                    );
                    empty
                }
            },
            Some((path, Err(why))) => {
                log::warn!(
                    "ignoring the listing snapshot {}: {why}; every calendar is listed in full",
                    path.display()
                );
                empty
            }
        };
        Snapshot {
            path: path.map(Path::to_path_buf),
            contents,
            every,
            now,
            dirty: false,
        }
    }

    /// The run's clock, for the records it makes.
    pub fn now(&self) -> i64 {
        self.now
    }

    fn fresh(&self, at: i64) -> bool {
        !self.every.is_zero()
            && at <= self.now
            && u64::try_from(self.now - at).is_ok_and(|age| age < self.every.as_secs())
    }

    /// Where discovery led, unless a new discovery is due.
    pub fn layout(&self) -> Option<&RecordedLayout> {
        self.contents
            .layout
            .as_ref()
            .filter(|l| self.fresh(l.discovered_at))
    }

    pub fn set_layout(&mut self, home: Option<&str>, single: Option<&str>, discovered_at: i64) {
        let layout = RecordedLayout {
            home: home.map(str::to_string),
            single: single.map(str::to_string),
            discovered_at,
        };
        if self.contents.layout.as_ref() != Some(&layout) {
            self.contents.layout = Some(layout);
            self.dirty = true;
        }
    }

    /// Forgets where discovery led (the recorded home did not answer).
    pub fn forget_layout(&mut self) {
        if self.contents.layout.take().is_some() {
            self.dirty = true;
        }
    }

    /// The record of `calendar`, unless a full listing of it is due.
    pub fn calendar(&self, calendar: &str) -> Option<&CalendarRecord> {
        self.contents
            .calendars
            .get(calendar)
            .filter(|r| self.fresh(r.listed_at))
    }

    pub fn record(&mut self, calendar: &str, record: CalendarRecord) {
        if self.contents.calendars.get(calendar) != Some(&record) {
            self.contents.calendars.insert(calendar.to_string(), record);
            self.dirty = true;
        }
    }

    /// Forgets a calendar: the next run lists it in full.
    pub fn forget(&mut self, calendar: &str) {
        if self.contents.calendars.remove(calendar).is_some() {
            self.dirty = true;
        }
    }

    /// Forgets every calendar not in `keep` (a full run saw all there are).
    pub fn retain(&mut self, keep: &dyn Fn(&str) -> bool) {
        let before = self.contents.calendars.len();
        self.contents.calendars.retain(|url, _| keep(url));
        if self.contents.calendars.len() != before {
            self.dirty = true;
        }
    }

    /// Writes the snapshot if it changed, atomically. A failure is only a warning.
    pub fn save(&mut self) {
        crate::support::atomic_file::save_json(
            self.path.as_deref(),
            &self.contents,
            &mut self.dirty,
            "listing snapshot",
            "the next run lists every calendar in full",
        );
    }
}

fn read(path: &Path) -> Result<Option<Contents>, String> {
    crate::support::atomic_file::read_json(path, MAX_SIZE, "a calplanebot listing snapshot")
}

/// A snapshot is used only by the configuration that wrote it, and only when every URL in it
/// is a calendar on the CalDAV server's own origin and every event lies directly inside its
/// calendar: a planted or damaged file must neither send credentials elsewhere nor make a
/// write land outside the calendar it is planned for.
fn check(found: Contents, expected: &Contents) -> Result<Contents, String> {
    if found.format != FORMAT {
        return Err("not a calplanebot listing snapshot".into());
    }
    if found.version != VERSION {
        return Err(format!("version {} is not {VERSION}", found.version));
    }
    if (
        &found.caldav_url,
        &found.caldav_username,
        &found.calendar_url,
        &found.workspace,
    ) != (
        &expected.caldav_url,
        &expected.caldav_username,
        &expected.calendar_url,
        &expected.workspace,
    ) {
        return Err("written for another configuration".into());
    }
    let origin = caldav::origin_of(if expected.calendar_url.is_empty() {
        &expected.caldav_url
    } else {
        &expected.calendar_url
    });
    let on_server = |url: &str| caldav::origin_of(url) == origin && url.ends_with('/');
    if let Some(layout) = &found.layout {
        for url in layout.home.iter().chain(&layout.single) {
            if !on_server(url) {
                return Err(format!("{url:?} is not a collection on {origin}"));
            }
        }
    }
    for (calendar, record) in &found.calendars {
        if !on_server(calendar) {
            return Err(format!("{calendar:?} is not a calendar on {origin}"));
        }
        let urls = record
            .events
            .iter()
            .map(|e| &e.url)
            .chain(record.pending.iter().map(|p| &p.url));
        for url in urls {
            if caldav::origin_of(url) != origin || !caldav::is_member_of(calendar, url) {
                return Err(format!(
                    "the event {url:?} is not in the calendar {calendar:?}"
                ));
            }
        }
        if record
            .pending
            .iter()
            .any(|p| p.etag.is_some() != p.data.is_some())
        {
            return Err(format!("a damaged write record in {calendar:?}"));
        }
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAL: &str = "https://dav.example/bot/plane-x/";

    fn event(name: &str, etag: &str) -> RecordedEvent {
        RecordedEvent {
            url: format!("{CAL}{name}"),
            etag: etag.into(),
            data: format!("data of {name} at {etag}"),
        }
    }

    fn record(token: Option<&str>, ctag: Option<&str>) -> CalendarRecord {
        CalendarRecord {
            ctag: ctag.map(str::to_string),
            sync_token: token.map(str::to_string),
            listed_at: 0,
            events: vec![event("a.ics", "\"1\""), event("b.ics", "\"2\"")],
            pending: Vec::new(),
        }
    }

    fn now<'a>(token: Option<&'a str>, ctag: Option<&'a str>) -> Validators<'a> {
        Validators {
            ctag,
            sync_token: token,
        }
    }

    #[test]
    fn a_calendar_is_skipped_only_when_a_validator_is_equal_and_none_differs() {
        let both = record(Some("t1"), Some("c1"));
        assert_eq!(
            choose(Some(&both), now(Some("t1"), Some("c1"))),
            Listing::Unchanged(&both)
        );
        assert_eq!(
            choose(Some(&both), now(Some("t1"), None)),
            Listing::Unchanged(&both)
        );
        // One validator differs: changed, whatever the other says.
        assert_eq!(
            choose(Some(&both), now(Some("t1"), Some("c2"))),
            Listing::Changes(&both, "t1")
        );
        assert_eq!(
            choose(Some(&both), now(Some("t2"), Some("c1"))),
            Listing::Changes(&both, "t1")
        );
        // A ctag-only server: equal ctag skips, another ctag lists in full.
        let ctag_only = record(None, Some("c1"));
        assert_eq!(
            choose(Some(&ctag_only), now(None, Some("c1"))),
            Listing::Unchanged(&ctag_only)
        );
        assert_eq!(
            choose(Some(&ctag_only), now(None, Some("c2"))),
            Listing::Full
        );
        // Nothing to compare: full.
        assert_eq!(choose(Some(&both), now(None, None)), Listing::Full);
        assert_eq!(choose(None, now(Some("t1"), Some("c1"))), Listing::Full);
        // The server lost its token support: full.
        assert_eq!(choose(Some(&both), now(None, Some("c9"))), Listing::Full);
    }

    #[test]
    fn our_pending_writes_are_never_taken_as_the_state_without_the_servers_word() {
        let mut written = record(Some("t1"), Some("c1"));
        written.pending.push(PendingWrite {
            url: format!("{CAL}c.ics"),
            etag: Some("\"3\"".into()),
            data: Some("ours".into()),
        });
        // Even with equal validators (a server that did not bump them), the writes must be
        // confirmed by a change report.
        assert_eq!(
            choose(Some(&written), now(Some("t1"), Some("c1"))),
            Listing::Changes(&written, "t1")
        );
        let ctag_only = CalendarRecord {
            sync_token: None,
            ..written.clone()
        };
        assert_eq!(
            choose(Some(&ctag_only), now(None, Some("c1"))),
            Listing::Full
        );
    }

    fn urls(events: &[StoredEvent]) -> Vec<(&str, Option<&str>)> {
        events
            .iter()
            .map(|e| (e.url.as_str(), e.etag.as_deref()))
            .collect()
    }

    #[test]
    fn a_change_report_reads_only_what_someone_else_changed() {
        let mut base = record(Some("t1"), None);
        base.pending = vec![
            PendingWrite {
                url: format!("{CAL}c.ics"),
                etag: Some("\"3\"".into()),
                data: Some("ours c".into()),
            },
            PendingWrite {
                url: format!("{CAL}b.ics"),
                etag: None,
                data: None,
            },
        ];
        let changed = vec![
            // Our own create, as we made it: known without a request.
            ("/bot/plane-x/c.ics".to_string(), Some("\"3\"".to_string())),
            // Someone edited a.ics: read again.
            ("/bot/plane-x/a.ics".to_string(), Some("\"9\"".to_string())),
            // A new foreign member: read (the caller decides whether it is ours).
            (
                "/bot/plane-x/x%40y.ics".to_string(),
                Some("\"5\"".to_string()),
            ),
        ];
        let removed = vec!["/bot/plane-x/b.ics".to_string()];
        let merged = merge_changes(&base, &changed, &removed).expect("consistent");
        assert_eq!(
            urls(&merged.known),
            vec![(format!("{CAL}c.ics").as_str(), Some("\"3\""))]
        );
        assert_eq!(merged.known[0].data, "ours c");
        assert_eq!(
            merged.to_read,
            vec!["/bot/plane-x/a.ics", "/bot/plane-x/x%40y.ics"]
        );
    }

    #[test]
    fn a_change_report_that_disagrees_with_our_writes_means_a_full_listing() {
        let mut base = record(Some("t1"), None);
        base.pending = vec![PendingWrite {
            url: format!("{CAL}c.ics"),
            etag: Some("\"3\"".into()),
            data: Some("ours c".into()),
        }];
        // Our write is not in the report at all.
        assert_eq!(merge_changes(&base, &[], &[]), None);
        // Reported with another ETag: someone changed it after us; it is read again, which is
        // as good as a listing of it.
        let other = vec![("/bot/plane-x/c.ics".to_string(), Some("\"4\"".to_string()))];
        let merged = merge_changes(&base, &other, &[]).expect("re-read");
        assert_eq!(merged.to_read, vec!["/bot/plane-x/c.ics"]);
        assert!(merged.known.iter().all(|e| !e.url.ends_with("c.ics")));
    }

    #[test]
    fn an_unchanged_etag_in_a_report_costs_no_read() {
        let base = record(Some("t1"), None);
        let changed = vec![("/bot/plane-x/a.ics".to_string(), Some("\"1\"".to_string()))];
        let merged = merge_changes(&base, &changed, &[]).unwrap();
        assert!(merged.to_read.is_empty());
        assert_eq!(merged.known.len(), 2);
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "calplanebot-snapshot-test-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    const OWNER: Owner<'static> = Owner {
        caldav_url: "https://dav.example/",
        caldav_username: "bot",
        calendar_url: None,
        workspace: "acme",
    };

    fn hour() -> Duration {
        Duration::from_secs(3600)
    }

    #[test]
    fn what_is_saved_is_loaded_back_and_ages_out() {
        let dir = temp_dir("roundtrip");
        let path = dir.join("listing.json");
        let mut snapshot = Snapshot::load(Some(&path), OWNER, hour());
        let mut fresh = record(Some("t1"), Some("c1"));
        fresh.listed_at = snapshot.now();
        snapshot.record(CAL, fresh.clone());
        let mut old = record(Some("t1"), None);
        old.events.clear();
        old.listed_at = snapshot.now() - 3600;
        snapshot.record("https://dav.example/bot/plane-y/", old);
        snapshot.set_layout(Some("https://dav.example/bot/"), None, snapshot.now());
        snapshot.save();
        let again = Snapshot::load(Some(&path), OWNER, hour());
        assert_eq!(again.calendar(CAL), Some(&fresh));
        assert_eq!(
            again.calendar("https://dav.example/bot/plane-y/"),
            None,
            "due"
        );
        assert_eq!(
            again.layout().and_then(|l| l.home.as_deref()),
            Some("https://dav.example/bot/")
        );
        // Every = 0: nothing is read.
        let off = Snapshot::load(Some(&path), OWNER, Duration::ZERO);
        assert_eq!(off.calendar(CAL), None);
        assert!(off.layout().is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_damaged_foreign_or_forged_snapshot_is_ignored_as_a_whole() {
        let dir = temp_dir("forged");
        let path = dir.join("listing.json");
        let mut snapshot = Snapshot::load(Some(&path), OWNER, hour());
        let mut good = record(Some("t1"), None);
        good.listed_at = snapshot.now();
        snapshot.record(CAL, good);
        snapshot.save();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(
            Snapshot::load(Some(&path), OWNER, hour())
                .calendar(CAL)
                .is_some()
        );

        let mut cases: Vec<(String, String)> = vec![
            ("garbage".into(), "not json at all".into()),
            ("truncated".into(), text[..text.len() / 2].to_string()),
            ("empty".into(), String::new()),
            (
                "another workspace".into(),
                text.replace("\"acme\"", "\"other\""),
            ),
            (
                "another format".into(),
                text.replace(FORMAT, "something else"),
            ),
            (
                "another version".into(),
                text.replace("\"version\":1", "\"version\":2"),
            ),
            (
                "an event outside its calendar".into(),
                text.replacen("/bot/plane-x/a.ics", "/bot/other/a.ics", 1),
            ),
            (
                "an event in a sub-collection".into(),
                text.replacen("/bot/plane-x/a.ics", "/bot/plane-x/sub/a.ics", 1),
            ),
            (
                "an event on another host".into(),
                text.replacen(
                    "https://dav.example/bot/plane-x/a.ics",
                    "https://evil.example/bot/plane-x/a.ics",
                    1,
                ),
            ),
            (
                "a calendar on another host".into(),
                text.replace(
                    "https://dav.example/bot/plane-x/",
                    "https://evil.example/bot/plane-x/",
                ),
            ),
        ];
        cases.push(("a tiny valid JSON".into(), "{}".into()));
        for (what, body) in cases {
            assert_ne!(body, text, "{what}: the case changes the file");
            std::fs::write(&path, &body).unwrap();
            let loaded = Snapshot::load(Some(&path), OWNER, hour());
            assert_eq!(loaded.calendar(CAL), None, "{what}");
            assert_eq!(
                loaded.calendar("https://evil.example/bot/plane-x/"),
                None,
                "{what}"
            );
        }
        // Another CalDAV URL or user: ignored.
        std::fs::write(&path, &text).unwrap();
        let moved = Owner {
            caldav_url: "https://dav2.example/",
            ..OWNER
        };
        assert_eq!(
            Snapshot::load(Some(&path), moved, hour()).calendar(CAL),
            None
        );
        let user = Owner {
            caldav_username: "eve",
            ..OWNER
        };
        assert_eq!(
            Snapshot::load(Some(&path), user, hour()).calendar(CAL),
            None
        );
        std::fs::remove_dir_all(dir).unwrap();
    }
}
