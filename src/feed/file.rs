//! One feed file, read and written a piece at a time: its head (the calendar's properties and
//! the marks that say whose it is), its events as text blocks, the comparison of what a run
//! wants against the bytes on disk, and the atomic write.
//!
//! Nothing here holds a whole feed parsed: a feed is a head, a list of borrowed event texts and
//! a footer ([`FeedText`]); an existing file is compared against it in chunks and read back
//! event by event ([`for_each_event`]), so a run keeps one copy of each event's text whatever
//! the number of feeds that carry it (issue 20, point 8).

use std::fs::{File, OpenOptions};
use std::io::{self, BufRead as _, BufReader, Read as _};
use std::os::unix::fs::OpenOptionsExt as _;
use std::path::Path;

use super::{FeedId, Kind};
use crate::mapping::event::{self, PROJECT_MARK, WORKSPACE_MARK};
use crate::mapping::ics::{self, Component, Property};
use crate::support::atomic_file::{self, Temp};

/// How often a subscriber should fetch a feed (RFC 7986 §5.7; `X-PUBLISHED-TTL` for Outlook).
const REFRESH: &str = "PT15M";
/// The mark that names a feed's kind and id in its head: `X-CALPLANEBOT-FEED:{kind}:{id}`.
pub const FEED_MARK: &str = "X-CALPLANEBOT-FEED";
/// Largest feed file read (a workspace of 100,000 issues is ~100 MiB; more is not a file
/// calplanebot wrote). Reads stream, so this bounds time, not memory.
pub const MAX_FILE: u64 = 512 * 1024 * 1024;
/// Largest head read: the calendar's properties before its first event.
const MAX_HEAD: u64 = 64 * 1024;
/// The end of every feed.
pub const FOOTER: &str = "END:VCALENDAR\r\n";
/// Temp files of a write in progress: a dot name without the feed's bearer name, which the
/// README's web server snippets never serve.
pub const TEMP_PREFIX: &str = ".calplanebot-tmp-";

/// Whether `name` has the form of a feed file name calplanebot writes: `{32 hex}.ics`.
pub fn is_feed_file_name(name: &str) -> bool {
    name.strip_suffix(".ics").is_some_and(|token| {
        token.len() == 32
            && token
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// Whether `name` is one of calplanebot's temp files (`.calplanebot-tmp-{16 hex}`).
pub fn is_temp_name(name: &str) -> bool {
    name.strip_prefix(TEMP_PREFIX).is_some_and(|rest| {
        rest.len() == 16
            && rest
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    })
}

/// The head of a feed (design.md, "Feeds"): the calendar's properties, without its events and
/// without the footer.
pub fn head(name: &str, workspace: &str, feed: Option<&FeedId>) -> String {
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
    if let Some(feed) = feed {
        calendar.properties.push(text(FEED_MARK, &feed.mark()));
    }
    let mut out = calendar.to_ics();
    out.truncate(out.len() - FOOTER.len());
    out
}

/// One event as a feed carries it: its text (`BEGIN:VEVENT` … `END:VEVENT`, CRLF, folded) and
/// what it is sorted by, (DTSTART, UID) as written, so the same events give the same bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventText {
    pub key: (String, String),
    pub text: String,
}

impl EventText {
    /// The text of a VEVENT built by the mapping.
    pub fn of(vevent: &Component) -> EventText {
        let value = |p: &str| vevent.property(p).map(|p| p.value().to_string());
        EventText {
            key: (
                value("DTSTART").unwrap_or_default(),
                value("UID").unwrap_or_default(),
            ),
            text: vevent.to_ics(),
        }
    }
}

/// A feed as a run wants it: a head, its events in order, and the footer.
pub struct FeedText<'a> {
    pub head: String,
    pub events: Vec<&'a EventText>,
}

impl FeedText<'_> {
    fn pieces(&self) -> impl Iterator<Item = &[u8]> {
        std::iter::once(self.head.as_bytes())
            .chain(self.events.iter().map(|e| e.text.as_bytes()))
            .chain(std::iter::once(FOOTER.as_bytes()))
    }

    /// Its length in bytes.
    pub fn size(&self) -> u64 {
        self.pieces().map(|p| p.len() as u64).sum()
    }

    /// The whole text (for a diff: one feed at a time).
    pub fn to_text(&self) -> String {
        let mut out = String::with_capacity(self.size() as usize);
        for piece in self.pieces() {
            out.push_str(&String::from_utf8_lossy(piece));
        }
        out
    }
}

/// What is at a feed file's name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// A regular file with a VCALENDAR head (which may carry another workspace's mark).
    Calendar(Head),
    /// Something calplanebot did not write: not iCalendar, too large, a symlink, a directory.
    Other,
}

/// What an existing feed file's head says.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Head {
    /// `X-CALPLANEBOT-WORKSPACE`, unescaped.
    pub workspace: Option<String>,
    /// `X-CALPLANEBOT-FEED` (files written before issue 20 have none).
    pub feed: Option<FeedId>,
    /// `X-WR-CALNAME`, unescaped.
    pub name: Option<String>,
}

impl Head {
    /// Whether this is a feed of `workspace`: the one check of the workspace mark.
    pub fn is_ours(&self, workspace: &str) -> bool {
        self.workspace.as_deref() == Some(workspace)
    }
}

/// What is at `path`: `None` when nothing is (or it vanished meanwhile, which is no error).
pub fn inspect(path: &Path) -> io::Result<Option<Found>> {
    let meta = match std::fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    if !meta.is_file() || meta.len() > MAX_FILE {
        return Ok(Some(Found::Other));
    }
    let file = match open_regular(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut head = Head::default();
    let mut first = true;
    let mut result = Ok(());
    each_line(BufReader::new(file.take(MAX_HEAD)), |line| {
        let Ok(property) = Property::parse_line(line.to_string()) else {
            result = Err(());
            return false;
        };
        if first {
            first = false;
            if !(property.name() == "BEGIN" && property.value().eq_ignore_ascii_case("VCALENDAR")) {
                result = Err(());
                return false;
            }
            return true;
        }
        let value = || ics::unescape_text(property.value());
        match property.name() {
            "BEGIN" | "END" => return false,
            WORKSPACE_MARK => head.workspace = Some(value()),
            FEED_MARK => head.feed = FeedId::from_mark(&value()),
            "X-WR-CALNAME" => head.name = Some(value()),
            _ => {}
        }
        true
    })?;
    Ok(Some(match (result, first) {
        (Ok(()), false) => Found::Calendar(head),
        _ => Found::Other,
    }))
}

/// Opens a regular file for reading without following a symlink planted at its name.
fn open_regular(path: &Path) -> io::Result<File> {
    OpenOptions::new()
        .read(true)
        .custom_flags(libc_o_nofollow())
        .open(path)
}

/// `O_NOFOLLOW` on Linux (the only platform calplanebot is built for).
const fn libc_o_nofollow() -> i32 {
    0o400000
}

/// Calls `line` with each unfolded content line of `reader` (CRLF or LF, RFC 5545 §3.1), until
/// it returns `false` or the input ends. Lines that are not UTF-8 are passed lossily.
fn each_line(mut reader: impl io::BufRead, mut line: impl FnMut(&str) -> bool) -> io::Result<()> {
    let mut logical: Vec<u8> = Vec::new();
    let mut physical: Vec<u8> = Vec::new();
    loop {
        physical.clear();
        let read = reader.read_until(b'\n', &mut physical)?;
        let ended = read == 0;
        let text = physical.strip_suffix(b"\n").unwrap_or(&physical);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        if !ended && matches!(text.first(), Some(b' ' | b'\t')) {
            logical.extend_from_slice(&text[1..]);
            continue;
        }
        if !logical.is_empty() && !line(&String::from_utf8_lossy(&logical)) {
            return Ok(());
        }
        logical.clear();
        if ended {
            return Ok(());
        }
        logical.extend_from_slice(text);
    }
}

/// One event of an existing feed file: its text as the file holds it (line ends made CRLF),
/// and what it says of itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Block {
    pub event: EventText,
    /// UID, unescaped.
    pub uid: String,
    /// `X-CALPLANEBOT-PROJECT`, unescaped.
    pub project: Option<String>,
}

/// Calls `each` with every top-level VEVENT of the feed file at `path`, one at a time. A file
/// that vanished reads as empty; one larger than [`MAX_FILE`] is an error.
pub fn for_each_event(path: &Path, mut each: impl FnMut(Block)) -> io::Result<()> {
    let file = match open_regular(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    if file.metadata()?.len() > MAX_FILE {
        return Err(io::Error::other(format!("larger than {MAX_FILE} bytes")));
    }
    let mut reader = BufReader::new(file.take(MAX_FILE));
    let mut depth = 0usize;
    let mut text = String::new();
    let mut logical = String::new();
    let mut physical = Vec::new();
    let mut fields: (
        Option<String>,
        Option<String>,
        Option<String>,
        Option<String>,
    ) = Default::default();
    loop {
        physical.clear();
        let ended = reader.read_until(b'\n', &mut physical)? == 0;
        let line = String::from_utf8_lossy(&physical);
        let line = line.trim_end_matches('\n').trim_end_matches('\r');
        let continued = !ended && (line.starts_with(' ') || line.starts_with('\t'));
        if continued {
            logical.push_str(&line[1..]);
        } else if !logical.is_empty() {
            // A logical line is complete: what does it do? Only the few names read here are
            // parsed (a feed has hundreds of thousands of lines).
            let line = std::mem::take(&mut logical);
            let property = ["BEGIN", "END", "DTSTART", "UID", PROJECT_MARK]
                .iter()
                .any(|name| {
                    line.get(..name.len())
                        .is_some_and(|head| head.eq_ignore_ascii_case(name))
                })
                .then(|| Property::parse_line(line).ok())
                .flatten();
            let (name, value) = property
                .as_ref()
                .map_or(("", ""), |p| (p.name(), p.value()));
            match name {
                "BEGIN" => depth += 1,
                "END" if depth == 2 && value.eq_ignore_ascii_case("VEVENT") => {
                    depth -= 1;
                    let (dtstart, uid, raw_uid, project) = std::mem::take(&mut fields);
                    each(Block {
                        event: EventText {
                            key: (dtstart.unwrap_or_default(), raw_uid.unwrap_or_default()),
                            text: std::mem::take(&mut text),
                        },
                        uid: uid.unwrap_or_default(),
                        project,
                    });
                }
                "END" => depth = depth.saturating_sub(1),
                "DTSTART" if depth == 2 => fields.0 = Some(value.to_string()),
                "UID" if depth == 2 => {
                    fields.1 = Some(ics::unescape_text(value));
                    fields.2 = Some(value.to_string());
                }
                PROJECT_MARK if depth == 2 => fields.3 = Some(ics::unescape_text(value)),
                _ => {}
            }
            if depth < 2 {
                text.clear();
            }
        }
        if ended {
            return Ok(());
        }
        if !continued {
            logical.push_str(line);
        }
        // Inside an event (or at its BEGIN line): keep the physical line.
        if depth >= 2 || line.eq_ignore_ascii_case("BEGIN:VEVENT") && depth == 1 {
            text.push_str(line);
            text.push_str("\r\n");
        }
    }
}

/// Whether the file at `path` holds exactly `feed`'s bytes: its length first, then chunk by
/// chunk, never the whole file at once.
pub fn holds(path: &Path, feed: &FeedText<'_>) -> io::Result<bool> {
    let file = match open_regular(path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if file.metadata()?.len() != feed.size() {
        return Ok(false);
    }
    let mut reader = BufReader::with_capacity(64 * 1024, file);
    let mut buffer = vec![0u8; 64 * 1024];
    for piece in feed.pieces() {
        let mut rest = piece;
        while !rest.is_empty() {
            let take = rest.len().min(buffer.len());
            if reader.read_exact(&mut buffer[..take]).is_err() || buffer[..take] != rest[..take] {
                return Ok(false);
            }
            rest = &rest[take..];
        }
    }
    Ok(reader.fill_buf()?.is_empty())
}

/// The file at `path` as text, read whole (for a diff, one feed at a time), capped.
pub fn read_text(path: &Path) -> io::Result<String> {
    match crate::support::atomic_file::read(path, MAX_FILE) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes.unwrap_or_default()).into_owned()),
        Err(e) => Err(io::Error::other(e)),
    }
}

/// Whether the file at `path` contains `needle` (a UID line, which is never folded), read in
/// chunks.
pub fn contains(path: &Path, needle: &[u8]) -> io::Result<bool> {
    let mut file = match open_regular(path) {
        Ok(file) => file.take(MAX_FILE),
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e),
    };
    if needle.is_empty() {
        return Ok(false);
    }
    let mut window: Vec<u8> = Vec::with_capacity(64 * 1024 + needle.len());
    let mut chunk = vec![0u8; 64 * 1024];
    loop {
        let read = file.read(&mut chunk)?;
        if read == 0 {
            return Ok(false);
        }
        window.extend_from_slice(&chunk[..read]);
        if window.windows(needle.len()).any(|w| w == needle) {
            return Ok(true);
        }
        let keep = window.len().min(needle.len() - 1);
        window.drain(..window.len() - keep);
    }
}

/// Replaces the file `name` in `dir` with `feed`, atomically: a temp file without the feed's
/// name, created with `O_EXCL`, written piece by piece, fsynced, renamed; mode 0644.
pub fn write(dir: &Path, name: &str, feed: &FeedText<'_>) -> io::Result<()> {
    write_pieces(dir, name, feed.pieces(), 0o644)
}

/// Replaces the file `name` in `dir` with the bytes of `pieces` (see [`write`]).
pub fn write_pieces<'p>(
    dir: &Path,
    name: &str,
    pieces: impl Iterator<Item = &'p [u8]>,
    mode: u32,
) -> io::Result<()> {
    atomic_file::write_pieces(&dir.join(name), Temp::Named(TEMP_PREFIX), mode, pieces)
}

/// The kind of a feed for the plan's text: `feed` when the file does not say.
pub fn kind_name(feed: Option<&FeedId>) -> &'static str {
    feed.map_or("feed", |f| Kind::name(f.kind))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "calplanebot-feedfile-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn event(uid: &str, day: &str, project: &str) -> EventText {
        let mut vevent = Component::new("VEVENT");
        vevent.properties = vec![
            Property::new("UID", &[], uid),
            Property::new("DTSTART", &[("VALUE", "DATE")], day),
            Property::new("SUMMARY", &[], &"long summary ".repeat(12)),
            Property::new(PROJECT_MARK, &[], project),
        ];
        EventText::of(&vevent)
    }

    #[test]
    fn a_written_feed_reads_back_event_by_event_and_compares_equal_only_to_itself() {
        let dir = scratch("roundtrip");
        let id = FeedId::project("p1");
        let (a, b) = (
            event("u-a", "20261201", "p1"),
            event("u,b", "20261202", "p2"),
        );
        let feed = FeedText {
            head: head("Plane: Web, site", "acme", Some(&id)),
            events: vec![&a, &b],
        };
        write(&dir, "f.ics", &feed).unwrap();
        assert!(holds(&dir.join("f.ics"), &feed).unwrap());
        let other = FeedText {
            head: head("Plane: Web, site", "acme", Some(&id)),
            events: vec![&a],
        };
        assert!(!holds(&dir.join("f.ics"), &other).unwrap());
        assert_eq!(
            std::fs::read_to_string(dir.join("f.ics")).unwrap(),
            feed.to_text()
        );
        let mut blocks = Vec::new();
        for_each_event(&dir.join("f.ics"), |b| blocks.push(b)).unwrap();
        assert_eq!(blocks.len(), 2);
        assert_eq!(blocks[0].event, a, "the block is the text as written");
        assert_eq!(blocks[1].uid, "u,b");
        assert_eq!(blocks[1].project.as_deref(), Some("p2"));
        let Some(Found::Calendar(found)) = inspect(&dir.join("f.ics")).unwrap() else {
            panic!("a calendar");
        };
        assert!(found.is_ours("acme") && !found.is_ours("globex"));
        assert_eq!(found.feed, Some(id));
        assert_eq!(found.name.as_deref(), Some("Plane: Web, site"));
        assert!(contains(&dir.join("f.ics"), b"UID:u-a").unwrap());
        assert!(!contains(&dir.join("f.ics"), b"UID:u-c").unwrap());
        // No temp file is left, and none carries the feed's name.
        let names: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["f.ics"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn what_is_not_a_calendar_file_is_other_and_a_missing_one_is_none() {
        let dir = scratch("inspect");
        std::fs::write(dir.join("text.ics"), "hello\n").unwrap();
        std::fs::write(dir.join("card.ics"), "BEGIN:VCARD\r\nEND:VCARD\r\n").unwrap();
        std::fs::create_dir(dir.join("sub.ics")).unwrap();
        std::os::unix::fs::symlink(dir.join("text.ics"), dir.join("link.ics")).unwrap();
        for name in ["text.ics", "card.ics", "sub.ics", "link.ics"] {
            assert_eq!(
                inspect(&dir.join(name)).unwrap(),
                Some(Found::Other),
                "{name}"
            );
        }
        assert_eq!(inspect(&dir.join("none.ics")).unwrap(), None);
        let mut n = 0;
        for_each_event(&dir.join("none.ics"), |_| n += 1).unwrap();
        assert_eq!(n, 0, "a vanished file reads as empty");
        // LF line ends and folded lines are read as well.
        std::fs::write(
            dir.join("lf.ics"),
            "BEGIN:VCALENDAR\nX-CALPLANEBOT-WORKSPACE:ac\n me\nBEGIN:VEVENT\nUID:x\nEND:VEVENT\nEND:VCALENDAR\n",
        )
        .unwrap();
        let Some(Found::Calendar(head)) = inspect(&dir.join("lf.ics")).unwrap() else {
            panic!()
        };
        assert!(head.is_ours("acme") && head.feed.is_none());
        let mut uids = Vec::new();
        for_each_event(&dir.join("lf.ics"), |b| uids.push(b.uid)).unwrap();
        assert_eq!(uids, ["x"]);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn names_of_feeds_and_of_temp_files() {
        assert!(is_feed_file_name("0123456789abcdef0123456789abcdef.ics"));
        for name in [
            "a.ics",
            "0123456789ABCDEF0123456789ABCDEF.ics",
            "0123456789abcdef0123456789abcde.ics",
        ] {
            assert!(!is_feed_file_name(name), "{name}");
        }
        assert!(is_temp_name(".calplanebot-tmp-0123456789abcdef"));
        assert!(!is_temp_name(".calplanebot-tmp-0123"));
        assert!(!is_temp_name("x.ics.0123456789abcdef.tmp"));
    }
}
