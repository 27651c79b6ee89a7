//! The feed directory as one configuration's: who writes it, with which secret, which feeds
//! were given new names, and one writer at a time (issue 20, points 3, 4, 6 and 7).
//!
//! A feed URL is a promise to a subscriber, so the directory keeps a record,
//! `.calplanebot-feeds.json`, beside the feeds (it must survive a deleted cache and be shared by
//! a second host that writes the same directory). Web servers may serve dotfiles, so the record
//! holds nothing that helps without the secret:
//! - the writer: salted SHA-256 fingerprints of the Plane URL, the workspace, the Plane API key
//!   and the content settings (`--span`, `--assignee`, `PLANE_WEB_URL`). Another configuration
//!   is refused before anything is written; `calplanebot feeds --take-over` hands the directory
//!   over on purpose;
//! - the secret: an HMAC under the secret itself, which tells a new secret (refused until
//!   `calplanebot feeds --rotate-secret`) without revealing anything the feed names do not;
//! - revocations: a random nonce per revoked feed, filed under an HMAC of the feed's identity,
//!   so nobody without the secret can tell which feed it is;
//! - retired file names, as SHA-256 hashes: the old names of rotated and revoked feeds, which
//!   the next complete write removes.
//!
//! Every run that writes the directory holds `.calplanebot.lock` inside it (sync and webhook
//! alike), and removes the temp files a crashed run left (`.calplanebot-tmp-*`, older than
//! [`TEMP_AGE`]).

use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use hmac::{Hmac, Mac as _};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::file::{self, Found};
use super::{FeedId, Namer};
use crate::config::Secret;
use crate::exit::Status;
use crate::support::lock::{self, RunLock};

/// The directory's record (a dotfile: the README's snippets never serve it).
pub const RECORD: &str = ".calplanebot-feeds.json";
/// The lock every writer of the directory holds.
pub const LOCK: &str = ".calplanebot.lock";
/// A temp file older than this was left by a run that died: no write takes so long.
pub const TEMP_AGE: Duration = Duration::from_secs(10 * 60);
/// Largest record read.
const MAX_RECORD: u64 = 16 * 1024 * 1024;
const FORMAT: &str = "calplanebot-feed-directory";
const VERSION: u32 = 1;

/// Who writes a feed directory: what decides the feeds' content and names, not where the run
/// comes from (CalDAV settings and the host are not part of it).
#[derive(Clone, Debug)]
pub struct Identity {
    pub plane_url: String,
    pub workspace: String,
    pub plane_key: Secret,
    /// The content settings, as one canonical text.
    pub content: String,
}

impl Identity {
    /// Who `config` is as the writer of a feed directory. CalDAV settings are not part of it.
    pub fn of(config: &crate::config::Config) -> Identity {
        let mut assignees: Vec<String> = config
            .assignees
            .iter()
            .map(|a| a.trim().to_lowercase())
            .collect();
        assignees.sort();
        Identity {
            plane_url: config.plane_base_url.clone(),
            workspace: config.workspace_slug.clone(),
            plane_key: config.plane_token.clone(),
            content: format!(
                "span={:?}\nassignees={}\nweb={}",
                config.span,
                assignees.join(","),
                config.plane_web_url
            ),
        }
    }
}

/// Why the directory cannot be used by this run.
#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    /// Another writer, another secret, an unreadable record: the operator must act.
    #[error("{0}")]
    Refused(String),
    /// Another run holds the directory's lock.
    #[error("{0}")]
    Busy(String),
    /// The directory cannot be read or written.
    #[error("{0}")]
    Io(String),
}

impl DirectoryError {
    pub fn status(&self) -> Status {
        match self {
            DirectoryError::Refused(_) => Status::Usage,
            DirectoryError::Busy(_) => Status::LockBusy,
            DirectoryError::Io(_) => Status::PartialFailure,
        }
    }
}

/// How a run uses the directory.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Access {
    /// Takes the lock, records a new directory, removes stale temp files (else: a dry run or a
    /// listing, which only checks).
    pub write: bool,
    /// `feeds --rotate-secret`: a secret other than the recorded one becomes the directory's.
    pub new_secret: bool,
    /// `feeds --take-over`: this configuration becomes the directory's writer.
    pub new_writer: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Fingerprints {
    plane_url: String,
    workspace: String,
    plane_key: String,
    content: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
struct Record {
    format: String,
    version: u32,
    salt: String,
    writer: Fingerprints,
    secret: String,
    #[serde(default)]
    revoked: BTreeMap<String, String>,
    #[serde(default)]
    retired: BTreeSet<String>,
}

/// The feed directory of a run, checked against its record (and locked, for a writer).
pub struct FeedDirectory {
    pub path: PathBuf,
    workspace: String,
    secret: Secret,
    /// `None`: no record yet and this run does not write one (a dry run on a new directory).
    record: Option<Record>,
    dirty: bool,
    _lock: Option<RunLock>,
    /// This opening made the configured secret the directory's (`--rotate-secret`).
    pub rotated: bool,
    /// This opening made this configuration the directory's writer (`--take-over`).
    pub handed_over: bool,
}

impl FeedDirectory {
    /// Opens `path` for a run of `identity` with `secret`: takes its lock when writing, then
    /// checks the record. A directory without a record becomes this configuration's (written at
    /// once when `access.write`).
    pub fn open(
        path: &Path,
        identity: &Identity,
        secret: &Secret,
        access: Access,
        lock_wait: Duration,
    ) -> Result<FeedDirectory, DirectoryError> {
        let lock = if access.write {
            Some(
                lock::acquire(&path.join(LOCK), lock_wait).map_err(|e| match e {
                    lock::LockError::Busy { waited, .. } => DirectoryError::Busy(format!(
                        "another calplanebot run is writing CALPLANEBOT_FEED_DIR ({}) (waited {waited:.0} s)",
                        path.display()
                    )),
                    lock::LockError::Io { source, .. } => DirectoryError::Io(format!(
                        "cannot lock CALPLANEBOT_FEED_DIR ({}): {source}",
                        path.display()
                    )),
                })?,
            )
        } else {
            None
        };
        let mut directory = FeedDirectory {
            path: path.to_path_buf(),
            workspace: identity.workspace.clone(),
            secret: secret.clone(),
            record: read_record(path)?,
            dirty: false,
            _lock: lock,
            rotated: false,
            handed_over: false,
        };
        match directory.record.clone() {
            None if access.write => {
                log::info!(
                    "CALPLANEBOT_FEED_DIR has no record yet: recording this configuration as its writer"
                );
                let salt = random_hex(16)?;
                directory.record = Some(Record {
                    format: FORMAT.into(),
                    version: VERSION,
                    writer: fingerprints(&salt, identity),
                    secret: verifier(secret, &salt),
                    salt,
                    revoked: BTreeMap::new(),
                    retired: BTreeSet::new(),
                });
                directory.dirty = true;
                if access.new_secret {
                    // `--rotate-secret` on a directory written before it kept a record (an
                    // upgrade with a secret now too short): every feed of the workspace there
                    // is under an old name.
                    directory.retire_every_feed()?;
                    directory.rotated = true;
                }
            }
            None => {}
            Some(record) => directory.check(record, identity, access)?,
        }
        if access.write {
            directory.save()?;
            directory.remove_stale_temps();
        }
        Ok(directory)
    }

    /// Compares the record with this run's configuration; accepts a new secret or a new writer
    /// when `access` says so.
    fn check(
        &mut self,
        mut record: Record,
        identity: &Identity,
        access: Access,
    ) -> Result<(), DirectoryError> {
        let dir = self.path.display();
        let writer = fingerprints(&record.salt, identity);
        let differ: Vec<&str> = [
            (
                record.writer.plane_url != writer.plane_url,
                "the Plane URL (PLANE_BASE_URL)",
            ),
            (
                record.writer.workspace != writer.workspace,
                "the workspace (PLANE_WORKSPACE_SLUG)",
            ),
            (
                record.writer.plane_key != writer.plane_key,
                "the Plane API key (PLANE_API_TOKEN)",
            ),
            (
                record.writer.content != writer.content,
                "the content settings (CALPLANEBOT_SPAN, CALPLANEBOT_ASSIGNEE, PLANE_WEB_URL)",
            ),
        ]
        .into_iter()
        .filter_map(|(differs, name)| differs.then_some(name))
        .collect();
        let new_secret = record.secret != verifier(&self.secret, &record.salt);
        let mut problems = Vec::new();
        if !differ.is_empty() && !access.new_writer {
            problems.push(format!(
                "CALPLANEBOT_FEED_DIR ({dir}) is written by another configuration, which differs from this one in {}. Two configurations must not write one feed directory (give this one its own CALPLANEBOT_FEED_DIR); to hand the directory over to this configuration on purpose, run `calplanebot feeds --take-over`",
                differ.join(", ")
            ));
        }
        if new_secret && !access.new_secret {
            problems.push(format!(
                "CALPLANEBOT_FEED_SECRET is not the secret CALPLANEBOT_FEED_DIR ({dir}) was written with (a typo, or a regenerated secret file?): a new secret gives every feed a new URL and breaks every subscription. To do that on purpose, run `calplanebot feeds --rotate-secret` with the new secret, then `calplanebot sync`"
            ));
        }
        if !problems.is_empty() {
            return Err(DirectoryError::Refused(problems.join("; ")));
        }
        if !differ.is_empty() {
            log::info!(
                "CALPLANEBOT_FEED_DIR is handed over to this configuration (it differed in {})",
                differ.join(", ")
            );
            record.writer = writer;
            self.dirty = true;
            self.handed_over = true;
        }
        if new_secret {
            // Every feed of the workspace there now gets a new name: the old ones are retired,
            // and the revocations (nonces under the old secret) are moot.
            record.revoked.clear();
            record.secret = verifier(&self.secret, &record.salt);
            self.record = Some(record);
            self.retire_every_feed()?;
            self.dirty = true;
            self.rotated = true;
            return Ok(());
        }
        self.record = Some(record);
        Ok(())
    }

    /// Retires the name of every feed file of this workspace in the directory now.
    fn retire_every_feed(&mut self) -> Result<(), DirectoryError> {
        let names: Vec<String> = self
            .feed_files()?
            .into_iter()
            .filter_map(|(name, found)| {
                matches!(&found, Found::Calendar(head) if head.is_ours(&self.workspace))
                    .then_some(name)
            })
            .collect();
        if let Some(record) = self.record.as_mut() {
            record.retired.extend(names.iter().map(|n| name_hash(n)));
            self.dirty = true;
        }
        Ok(())
    }

    /// How this directory names feeds: the secret, and the revocations recorded.
    pub fn namer(&self) -> Namer {
        let revoked = self
            .record
            .as_ref()
            .map(|r| r.revoked.clone())
            .unwrap_or_default();
        Namer::new(self.secret.clone(), &self.workspace).with_revoked(revoked)
    }

    /// Whether `name` is the old name of a rotated or revoked feed.
    pub fn is_retired(&self, name: &str) -> bool {
        self.record
            .as_ref()
            .is_some_and(|r| r.retired.contains(&name_hash(name)))
    }

    /// Gives `feed` a new, unguessable name: a fresh nonce, and its current name retired.
    pub fn revoke(&mut self, feed: &FeedId) -> Result<(), DirectoryError> {
        let namer = self.namer();
        let old = namer.file_name(feed);
        let key = namer.revocation_key(feed);
        let nonce = random_hex(16)?;
        let Some(record) = self.record.as_mut() else {
            return Err(DirectoryError::Io(
                "the feed directory has no record (a dry run)".into(),
            ));
        };
        record.retired.insert(name_hash(&old));
        record.revoked.insert(key, nonce);
        self.dirty = true;
        Ok(())
    }

    /// Forgets the retired names no file of `present` has any more (`present`: the old files
    /// still there, without the names this run wrote).
    pub fn forget_retired(&mut self, present: &BTreeSet<String>) {
        let hashes: BTreeSet<String> = present.iter().map(|n| name_hash(n)).collect();
        if let Some(record) = self.record.as_mut() {
            let before = record.retired.len();
            record.retired.retain(|h| hashes.contains(h));
            self.dirty |= record.retired.len() != before;
        }
    }

    /// Writes the record when it changed (atomically, mode 0644: it reveals nothing).
    pub fn save(&mut self) -> Result<(), DirectoryError> {
        let Some(record) = self.record.as_ref().filter(|_| self.dirty) else {
            return Ok(());
        };
        let json = serde_json::to_vec_pretty(record).expect("the record serializes");
        file::write_pieces(&self.path, RECORD, std::iter::once(json.as_slice()), 0o644).map_err(
            |e| {
                DirectoryError::Io(format!(
                    "cannot write the record of CALPLANEBOT_FEED_DIR ({}): {e}",
                    self.path.display()
                ))
            },
        )?;
        self.dirty = false;
        Ok(())
    }

    /// Every entry with a feed file's name, and what is there (entries that vanish meanwhile
    /// are left out).
    pub fn feed_files(&self) -> Result<Vec<(String, Found)>, DirectoryError> {
        let io = |e: io::Error| {
            DirectoryError::Io(format!(
                "cannot read CALPLANEBOT_FEED_DIR ({}): {e}",
                self.path.display()
            ))
        };
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&self.path).map_err(io)? {
            let entry = entry.map_err(io)?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            if !file::is_feed_file_name(&name) {
                continue;
            }
            if let Some(found) = file::inspect(&entry.path()).map_err(io)? {
                out.push((name, found));
            }
        }
        out.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(out)
    }

    /// Removes the temp files of runs that died (older than [`TEMP_AGE`]); best effort.
    fn remove_stale_temps(&self) {
        let Ok(entries) = std::fs::read_dir(&self.path) else {
            return;
        };
        let now = SystemTime::now();
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str().filter(|n| file::is_temp_name(n)) else {
                continue;
            };
            let old = entry
                .metadata()
                .ok()
                .filter(|m| m.is_file())
                .and_then(|m| m.modified().ok())
                .and_then(|t| now.duration_since(t).ok())
                .is_some_and(|age| age > TEMP_AGE);
            if old {
                match std::fs::remove_file(entry.path()) {
                    Ok(()) => log::info!(
                        "removed {name}, left in CALPLANEBOT_FEED_DIR by a run that stopped while writing"
                    ),
                    Err(e) => log::warn!("cannot remove {name} from CALPLANEBOT_FEED_DIR: {e}"),
                }
            }
        }
    }
}

/// The record of `path`, `None` when there is none.
fn read_record(path: &Path) -> Result<Option<Record>, DirectoryError> {
    let unreadable = |why: String| {
        DirectoryError::Refused(format!(
            "the record of CALPLANEBOT_FEED_DIR ({}/{RECORD}) cannot be read ({why}): calplanebot does not know who writes this directory. Remove that file to make this configuration its writer",
            path.display()
        ))
    };
    let bytes = match crate::support::atomic_file::read(&path.join(RECORD), MAX_RECORD) {
        Ok(Some(bytes)) => bytes,
        Ok(None) => return Ok(None),
        Err(e) => return Err(unreadable(e)),
    };
    let record: Record = serde_json::from_slice(&bytes).map_err(|e| unreadable(e.to_string()))?;
    if record.format != FORMAT || record.version != VERSION {
        return Err(unreadable(format!(
            "format {:?} version {}, this calplanebot writes {FORMAT:?} version {VERSION}",
            record.format, record.version
        )));
    }
    Ok(Some(record))
}

fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update((part.len() as u64).to_be_bytes());
        hash.update(part);
    }
    hex(&hash.finalize())
}

fn fingerprints(salt: &str, identity: &Identity) -> Fingerprints {
    let print = |label: &str, value: &str| {
        sha256_hex(&[salt.as_bytes(), label.as_bytes(), value.as_bytes()])
    };
    Fingerprints {
        plane_url: print("plane-url", identity.plane_url.trim_end_matches('/')),
        workspace: print("workspace", &identity.workspace),
        plane_key: print("plane-key", identity.plane_key.expose()),
        content: print("content", &identity.content),
    }
}

/// HMAC-SHA256(secret, "calplanebot-feed-secret:{salt}"): as hard to turn back into the secret
/// as the feed names themselves.
fn verifier(secret: &Secret, salt: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.expose().as_bytes())
        .expect("HMAC takes a key of any length");
    mac.update(format!("calplanebot-feed-secret:{salt}").as_bytes());
    hex(&mac.finalize().into_bytes())
}

fn name_hash(name: &str) -> String {
    sha256_hex(&[b"feed-file-name", name.as_bytes()])
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `n` random bytes from the kernel, as hex.
fn random_hex(n: usize) -> Result<String, DirectoryError> {
    super::random_hex(n).map_err(|e| DirectoryError::Io(format!("cannot read random bytes: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::feed::Kind;

    fn scratch(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("calplanebot-feeddir-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn identity() -> Identity {
        Identity {
            plane_url: "https://plane.example.com".into(),
            workspace: "acme".into(),
            plane_key: Secret::new("plane_api_0123456789abcdef0123456789abcdef"),
            content: "span=due".into(),
        }
    }

    fn secret(s: &str) -> Secret {
        Secret::new(format!("{s:-<40}"))
    }

    const WRITE: Access = Access {
        write: true,
        new_secret: false,
        new_writer: false,
    };

    #[test]
    fn the_first_writer_is_recorded_and_every_other_refused_until_handed_over() {
        let dir = scratch("writer");
        let first =
            FeedDirectory::open(&dir, &identity(), &secret("a"), WRITE, Duration::ZERO).unwrap();
        drop(first);
        let record = std::fs::read_to_string(dir.join(RECORD)).unwrap();
        for secret_text in ["plane_api_0123456789abcdef", "plane.example.com", "aaaa"] {
            assert!(!record.contains(secret_text), "{record}");
        }
        // The same configuration, again (another host, other CalDAV settings: not part of it).
        assert!(
            FeedDirectory::open(&dir, &identity(), &secret("a"), WRITE, Duration::ZERO).is_ok()
        );
        let mut other_key = identity();
        other_key.plane_key = Secret::new("plane_api_ffff");
        let mut other_span = identity();
        other_span.content = "span=start-to-due".into();
        for (other, names) in [
            (other_key, "PLANE_API_TOKEN"),
            (other_span, "CALPLANEBOT_SPAN"),
        ] {
            let error = FeedDirectory::open(&dir, &other, &secret("a"), WRITE, Duration::ZERO)
                .err()
                .unwrap();
            assert_eq!(error.status(), Status::Usage);
            let text = error.to_string();
            assert!(
                text.contains(names) && text.contains("CALPLANEBOT_FEED_DIR"),
                "{text}"
            );
            assert!(text.contains("--take-over"), "{text}");
            // Handed over on purpose, it is the writer from then on.
            let take = Access {
                new_writer: true,
                ..WRITE
            };
            FeedDirectory::open(&dir, &other, &secret("a"), take, Duration::ZERO).unwrap();
            FeedDirectory::open(&dir, &other, &secret("a"), WRITE, Duration::ZERO).unwrap();
            FeedDirectory::open(&dir, &identity(), &secret("a"), take, Duration::ZERO).unwrap();
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_new_secret_is_refused_until_rotated_and_then_retires_every_feed_of_the_workspace() {
        let dir = scratch("secret");
        FeedDirectory::open(&dir, &identity(), &secret("a"), WRITE, Duration::ZERO).unwrap();
        let ours = "0123456789abcdef0123456789abcdef.ics";
        let theirs = "fedcba9876543210fedcba9876543210.ics";
        std::fs::write(
            dir.join(ours),
            "BEGIN:VCALENDAR\r\nX-CALPLANEBOT-WORKSPACE:acme\r\nEND:VCALENDAR\r\n",
        )
        .unwrap();
        std::fs::write(
            dir.join(theirs),
            "BEGIN:VCALENDAR\r\nX-CALPLANEBOT-WORKSPACE:globex\r\nEND:VCALENDAR\r\n",
        )
        .unwrap();
        let before = std::fs::read(dir.join(RECORD)).unwrap();
        let error = FeedDirectory::open(&dir, &identity(), &secret("b"), WRITE, Duration::ZERO)
            .err()
            .unwrap();
        assert!(
            error.to_string().contains("CALPLANEBOT_FEED_SECRET"),
            "{error}"
        );
        assert!(error.to_string().contains("--rotate-secret"), "{error}");
        assert_eq!(std::fs::read(dir.join(RECORD)).unwrap(), before);
        let rotate = Access {
            new_secret: true,
            ..WRITE
        };
        let rotated =
            FeedDirectory::open(&dir, &identity(), &secret("b"), rotate, Duration::ZERO).unwrap();
        assert!(rotated.is_retired(ours) && !rotated.is_retired(theirs));
        drop(rotated);
        let mut again =
            FeedDirectory::open(&dir, &identity(), &secret("b"), WRITE, Duration::ZERO).unwrap();
        assert!(again.is_retired(ours));
        again.forget_retired(&BTreeSet::new());
        again.save().unwrap();
        assert!(!again.is_retired(ours));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn rotating_on_a_directory_without_a_record_retires_the_feeds_already_there() {
        // An upgrade: feeds written before the record existed, under a secret now too short.
        let dir = scratch("upgrade");
        let old = "0123456789abcdef0123456789abcdef.ics";
        std::fs::write(
            dir.join(old),
            "BEGIN:VCALENDAR\r\nX-CALPLANEBOT-WORKSPACE:acme\r\nEND:VCALENDAR\r\n",
        )
        .unwrap();
        let rotate = Access {
            new_secret: true,
            ..WRITE
        };
        let directory =
            FeedDirectory::open(&dir, &identity(), &secret("new"), rotate, Duration::ZERO).unwrap();
        assert!(directory.rotated && directory.is_retired(old));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_revoked_feed_gets_a_new_name_that_survives_and_retires_the_old_one() {
        let dir = scratch("revoke");
        let feed = FeedId::new(Kind::Member, "00000000-0000-4000-8000-0000000000a1");
        let other = FeedId::workspace("acme");
        let mut directory =
            FeedDirectory::open(&dir, &identity(), &secret("a"), WRITE, Duration::ZERO).unwrap();
        let (old, other_name) = (
            directory.namer().file_name(&feed),
            directory.namer().file_name(&other),
        );
        directory.revoke(&feed).unwrap();
        directory.save().unwrap();
        let new = directory.namer().file_name(&feed);
        assert_ne!(old, new);
        assert!(file::is_feed_file_name(&new));
        assert!(directory.is_retired(&old) && !directory.is_retired(&new));
        assert_eq!(directory.namer().file_name(&other), other_name);
        drop(directory);
        let record = std::fs::read_to_string(dir.join(RECORD)).unwrap();
        assert!(!record.contains("0000000000a1") && !record.contains(&old[..32]));
        let reopened =
            FeedDirectory::open(&dir, &identity(), &secret("a"), WRITE, Duration::ZERO).unwrap();
        assert_eq!(reopened.namer().file_name(&feed), new);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn one_writer_at_a_time_and_stale_temp_files_go() {
        let dir = scratch("lock");
        let held =
            FeedDirectory::open(&dir, &identity(), &secret("a"), WRITE, Duration::ZERO).unwrap();
        let busy = FeedDirectory::open(
            &dir,
            &identity(),
            &secret("a"),
            WRITE,
            Duration::from_millis(200),
        )
        .err()
        .unwrap();
        assert_eq!(busy.status(), Status::LockBusy);
        // A dry run only reads.
        assert!(
            FeedDirectory::open(
                &dir,
                &identity(),
                &secret("a"),
                Access::default(),
                Duration::ZERO
            )
            .is_ok()
        );
        drop(held);
        let old = dir.join(".calplanebot-tmp-0123456789abcdef");
        let fresh = dir.join(".calplanebot-tmp-fedcba9876543210");
        std::fs::write(&old, "x").unwrap();
        std::fs::write(&fresh, "x").unwrap();
        std::fs::File::options()
            .write(true)
            .open(&old)
            .unwrap()
            .set_modified(SystemTime::now() - Duration::from_secs(7200))
            .unwrap();
        std::fs::write(dir.join("notes.txt"), "mine").unwrap();
        FeedDirectory::open(&dir, &identity(), &secret("a"), WRITE, Duration::ZERO).unwrap();
        assert!(!old.exists() && fresh.exists() && dir.join("notes.txt").exists());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_damaged_record_is_refused_with_a_way_out() {
        let dir = scratch("damaged");
        std::fs::write(dir.join(RECORD), "{not json").unwrap();
        let error = FeedDirectory::open(&dir, &identity(), &secret("a"), WRITE, Duration::ZERO)
            .err()
            .unwrap();
        assert_eq!(error.status(), Status::Usage);
        assert!(error.to_string().contains(RECORD), "{error}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
