//! End to end: the safety rules of the feed directory (issue 20) — who may write there, what a
//! partial run may remove, secrets and their rotation, revoking one feed, files that are not
//! ours, a full disk and the deletion guard — checked with the real `calplanebot`, the Plane
//! simulator, a real lighttpd serving the directory and, where CalDAV is involved, both servers.

#[macro_use]
mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, SystemTime};

use calplanebot_testbed::feed_server::FeedServer;
use calplanebot_testbed::plane_sim::{Fault, FaultRule};
use serde_json::json;
use support::{Env, Run, ServerKind, prop, props};

const ALICE: &str = "00000000-0000-4000-8000-0000000000a1";
const BOB: &str = "00000000-0000-4000-8000-0000000000b2";
const CAROL: &str = "00000000-0000-4000-8000-0000000000c3";
const DAVE: &str = "00000000-0000-4000-8000-0000000000d4";

/// The feed secret of every run unless a test says otherwise (at least 32 characters).
const SECRET: &str = support::FEED_SECRET;
/// The secret a rotation moves to.
const NEW_SECRET: &str = "rotated-feed-secret-fedcba9876543210";
/// The directory record and the lock of a feed directory.
const RECORD: &str = ".calplanebot-feeds.json";
const LOCK: &str = ".calplanebot.lock";
const TEMP_PREFIX: &str = ".calplanebot-tmp-";
/// A name of the feed-file shape that is no feed's.
const UNMARKED: &str = "0123456789abcdef0123456789abcdef.ics";
const UNMARKED_TEXT: &str = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//someone else//EN\r\n\
    X-WR-CALNAME:Holidays\r\nBEGIN:VEVENT\r\nUID:holiday-1@example.com\r\n\
    DTSTAMP:20260101T000000Z\r\nDTSTART;VALUE=DATE:20261225\r\nSUMMARY:Christmas\r\n\
    END:VEVENT\r\nEND:VCALENDAR\r\n";
const NOTES: &str = "notes.txt";

/// alice owns the key; carol's dated issues are all in OPS; dave has none. Seven feeds: two
/// projects, four members, the workspace.
fn seed() -> serde_json::Value {
    json!({
        "workspace": "acme",
        "users": [
            {"id": ALICE, "first_name": "Alice", "last_name": "A", "email": "alice@acme.test", "display_name": "alice"},
            {"id": BOB, "first_name": "Bob", "last_name": "B", "email": "bob@acme.test", "display_name": "bob"},
            {"id": CAROL, "first_name": "Carol", "last_name": "C", "email": "carol@acme.test", "display_name": "carol"},
            {"id": DAVE, "first_name": "Dave", "last_name": "D", "email": "dave@acme.test", "display_name": "dave"}
        ],
        "projects": [
            {"identifier": "WEB", "name": "Website"},
            {"identifier": "OPS", "name": "Operations"}
        ],
        "issues": [
            {"project": "WEB", "name": "Launch", "target_date": "2026-12-01", "start_date": "2026-11-20", "assignees": [ALICE, BOB]},
            {"project": "WEB", "name": "Docs", "target_date": "2026-12-03", "assignees": [ALICE]},
            {"project": "OPS", "name": "Rotate keys", "target_date": "2026-12-05", "assignees": [BOB, CAROL]},
            {"project": "OPS", "name": "Backup check", "target_date": "2026-12-06", "assignees": [CAROL]}
        ]
    })
}

/// The calendar names of the seed's seven feeds.
const ALL_FEEDS: [&str; 7] = [
    "Plane: Operations",
    "Plane: Website",
    "Plane: acme",
    "Plane: alice",
    "Plane: bob",
    "Plane: carol",
    "Plane: dave",
];

/// The feed directory of a test, created empty.
fn feed_dir(env: &Env) -> PathBuf {
    let dir = env.scratch("feeds");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The command of a run with feeds in `dir`: [`Env::feeds_command`].
fn command(env: &Env, dir: &Path, caldav: bool, args: &[&str], extra: &[(&str, &str)]) -> Command {
    env.feeds_command(dir, caldav, args, extra)
}

/// Runs the binary as [`command`] sets it up.
fn run(env: &Env, dir: &Path, caldav: bool, args: &[&str], extra: &[(&str, &str)]) -> Run {
    env.run_feeds(dir, caldav, args, extra)
}

/// A feeds-only `sync` with `args` and `extra` variables.
fn sync(env: &Env, dir: &Path, args: &[&str], extra: &[(&str, &str)]) -> Run {
    let mut all = vec!["sync"];
    all.extend_from_slice(args);
    run(env, dir, false, &all, extra)
}

/// Runs `calplanebot webhook`, feeds only, on the signed delivery Plane would send now.
fn deliver(env: &Env, dir: &Path, event: &str, action: &str, id: &str) -> Run {
    let delivery = env
        .sim
        .webhook_delivery(event, action, id, support::WEBHOOK_SECRET);
    let signature = delivery.header("X-Plane-Signature").unwrap().to_string();
    let mut child = command(
        env,
        dir,
        false,
        &["webhook"],
        &[
            ("PLANE_WEBHOOK_SECRET", support::WEBHOOK_SECRET),
            ("PLANE_WEBHOOK_SIGNATURE", signature.as_str()),
        ],
    )
    .stdin(std::process::Stdio::piped())
    .spawn()
    .expect("the binary runs");
    {
        use std::io::Write as _;
        let mut stdin = child.stdin.take().expect("stdin");
        stdin
            .write_all(&delivery.body)
            .expect("the body is written");
    }
    support::finish(child, &format!("webhook {event} {action}"))
}

/// What the tests watch of a file: its bytes (empty for a directory or a symlink) and mtime.
#[derive(Clone, PartialEq, Eq)]
struct Stamp {
    bytes: Vec<u8>,
    mtime: SystemTime,
}

/// Short enough to read in a failed comparison: the calendar name, the size, the mtime.
impl std::fmt::Debug for Stamp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = String::from_utf8_lossy(&self.bytes);
        let name = prop(&text, "X-WR-CALNAME")
            .unwrap_or_else(|| text.lines().next().unwrap_or_default().to_string());
        let mtime = self
            .mtime
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        write!(f, "{name:?} ({} bytes, mtime {mtime:?})", self.bytes.len())
    }
}

/// What the tests watch of a directory: each `*.ics` entry and `notes.txt`.
type Files = BTreeMap<String, Stamp>;

fn files(dir: &Path) -> Files {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.ends_with(".ics") || name == NOTES
        })
        .map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let meta = std::fs::symlink_metadata(e.path()).unwrap();
            let bytes = if meta.is_file() {
                std::fs::read(e.path()).unwrap()
            } else {
                Vec::new()
            };
            let mtime = meta.modified().unwrap();
            (name, Stamp { bytes, mtime })
        })
        .collect()
}

/// Every name in the directory, whatever it is.
fn names(dir: &Path) -> BTreeSet<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// `files` without `name`.
fn without(mut files: Files, name: &str) -> Files {
    files.remove(name);
    files
}

/// The feed files of the directory by calendar name → file name.
fn feed_files(dir: &Path) -> BTreeMap<String, String> {
    files(dir)
        .into_iter()
        .filter(|(name, _)| name.ends_with(".ics") && name != UNMARKED)
        .filter_map(|(name, stamp)| {
            let text = String::from_utf8(stamp.bytes).ok()?;
            if !text.contains("X-CALPLANEBOT-WORKSPACE:acme") {
                return None;
            }
            Some((prop(&text, "X-WR-CALNAME")?, name))
        })
        .collect()
}

/// The file of the feed named `calendar` (e.g. "Plane: alice").
fn file_of(dir: &Path, calendar: &str) -> String {
    feed_files(dir)
        .remove(calendar)
        .unwrap_or_else(|| panic!("no feed {calendar:?} in {:?}", feed_files(dir)))
}

/// A feed's events as a reader compares them: sorted UIDs and sorted SUMMARYs.
fn events(ics: &[u8]) -> (Vec<String>, Vec<String>) {
    let text = String::from_utf8_lossy(ics);
    let sorted = |name: &str| {
        let mut all: Vec<String> = props(&text, name)
            .into_iter()
            .map(|(_, v)| support::unescape(&v))
            .collect();
        all.sort();
        all
    };
    (sorted("UID"), sorted("SUMMARY"))
}

/// One row of `calplanebot feeds --format json`.
#[derive(Debug, Clone, PartialEq)]
struct Listed {
    kind: String,
    name: String,
    file: String,
    url: String,
}

/// `calplanebot feeds --format json` with the URLs under `base_url`, by calendar name.
fn listing(env: &Env, dir: &Path, base_url: &str, secret: &str) -> BTreeMap<String, Listed> {
    let listed = run(
        env,
        dir,
        false,
        &["feeds", "--format", "json"],
        &[
            ("CALPLANEBOT_FEED_BASE_URL", base_url),
            ("CALPLANEBOT_FEED_SECRET", secret),
        ],
    );
    assert_eq!(listed.code, 0, "{}", listed.stderr);
    let rows: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    rows.as_array()
        .unwrap()
        .iter()
        .map(|row| {
            let text = |field: &str| row[field].as_str().unwrap_or_default().to_string();
            let listed = Listed {
                kind: text("kind"),
                name: text("name"),
                file: text("file"),
                url: text("url"),
            };
            (listed.name.clone(), listed)
        })
        .collect()
}

/// `GET url` over the feed server: (status, body).
fn get(server: &FeedServer, url: &str) -> (u16, Vec<u8>) {
    let file = url
        .strip_prefix(&format!("{}/", server.base_url()))
        .unwrap_or_else(|| panic!("{url} is not under {}", server.base_url()));
    let reply = server.get(file, &[]).expect("lighttpd answers");
    (reply.status, reply.body)
}

/// Every file of `watched` is served with status 200 and exactly its bytes.
fn assert_served(server: &FeedServer, watched: &Files) {
    for (name, Stamp { bytes, .. }) in watched {
        let reply = server.get(name, &[]).expect("lighttpd answers");
        assert_eq!(reply.status, 200, "{name} is served");
        assert_eq!(&reply.body, bytes, "{name} is served as it is on disk");
    }
}

/// The member feeds of `watched`: those whose calendar name is a person's.
fn member_feeds(watched: &Files) -> Files {
    watched
        .iter()
        .filter(|(_, stamp)| {
            let text = String::from_utf8_lossy(&stamp.bytes);
            ["alice", "bob", "carol", "dave"]
                .iter()
                .any(|who| prop(&text, "X-WR-CALNAME").as_deref() == Some(&format!("Plane: {who}")))
        })
        .map(|(name, value)| (name.clone(), value.clone()))
        .collect()
}

fn output(run: &Run) -> String {
    format!("{}\n{}", run.stdout, run.stderr)
}

fn assert_mentions(run: &Run, words: &[&str]) {
    let text = output(run);
    for word in words {
        assert!(text.contains(word), "{word:?} not in\n{text}");
    }
}

/// Removes whatever is at `path`: a file, a symlink or an empty directory.
fn clear(path: &Path) {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.is_dir() => std::fs::remove_dir(path).unwrap(),
        Ok(_) => std::fs::remove_file(path).unwrap(),
        Err(e) => panic!("{}: {e}", path.display()),
    }
}

/// Lets the clock move on, so that a rewritten file would show a new mtime.
fn tick() {
    std::thread::sleep(Duration::from_millis(20));
}

#[test]
fn with_a_guest_key_a_project_run_a_project_webhook_and_a_failed_walk_keep_every_member_feed() {
    let env = Env::start(ServerKind::Radicale, seed());
    // The key's owner is a Guest: Plane refuses it the members list.
    env.sim.with_world(|w| w.users[0].role = Some(5));
    let dir = feed_dir(&env);
    let first = sync(&env, &dir, &[], &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let server = FeedServer::start(&dir).expect("lighttpd serves the feeds");
    let members = member_feeds(&files(&dir));
    let calendars: BTreeSet<String> = feed_files(&dir)
        .into_iter()
        .filter(|(_, file)| members.contains_key(file))
        .map(|(name, _)| name)
        .collect();
    // dave has no issue, so without the list he has no feed; carol's issues are all in OPS.
    assert_eq!(
        calendars.into_iter().collect::<Vec<_>>(),
        ["Plane: alice", "Plane: bob", "Plane: carol"]
    );
    let all = names(&dir);

    // Only WEB is read: carol (OPS only) and the OPS events of bob stay as they are.
    tick();
    let partial = sync(&env, &dir, &["--project", "WEB"], &[]);
    assert_eq!(partial.code, 0, "{}", partial.stderr);
    assert_eq!(member_feeds(&files(&dir)), members, "--project WEB");
    assert_eq!(names(&dir), all, "--project WEB removes no file");
    assert_served(&server, &members);

    // A project webhook reads WEB only, too.
    let web = env.project_id("WEB");
    let webhook = deliver(&env, &dir, "project", "updated", &web);
    assert_eq!(webhook.code, 0, "{}", webhook.stderr);
    assert_eq!(member_feeds(&files(&dir)), members, "project webhook");
    assert_eq!(names(&dir), all, "a webhook removes no file");
    assert_served(&server, &members);

    // OPS's walk fails: the run reads WEB only, and fails.
    let ops = env.project_id("OPS");
    env.sim.inject_fault(
        FaultRule::new(
            &format!("/projects/{ops}/work-items/"),
            Fault::server_error(),
        )
        .times(100),
    );
    let failed = sync(&env, &dir, &["--retries", "0"], &[]);
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert_eq!(member_feeds(&files(&dir)), members, "OPS failed");
    assert_eq!(names(&dir), all, "a failed run removes no file");
    assert_served(&server, &members);
}

#[test]
fn with_the_members_list_a_project_run_keeps_a_departed_members_feed_and_a_full_sync_removes_it() {
    let env = Env::start(ServerKind::Radicale, seed());
    let dir = feed_dir(&env);
    let first = sync(&env, &dir, &[], &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(
        feed_files(&dir).into_keys().collect::<Vec<_>>(),
        ALL_FEEDS,
        "every member has a feed, dave's empty"
    );
    let dave = file_of(&dir, "Plane: dave");
    let before = files(&dir);

    // dave leaves the workspace.
    env.sim.with_world(|w| w.users.retain(|u| u.id != DAVE));
    tick();
    let partial = sync(&env, &dir, &["--project", "WEB"], &[]);
    assert_eq!(partial.code, 0, "{}", partial.stderr);
    assert!(partial.stdout.contains("0 removed"), "{}", partial.stdout);
    assert_eq!(files(&dir), before, "--project removes no member feed");

    let full = sync(&env, &dir, &[], &[]);
    assert_eq!(full.code, 0, "{}", full.stderr);
    assert!(full.stdout.contains("1 removed"), "{}", full.stdout);
    assert!(!dir.join(&dave).exists(), "dave's feed is removed");
    assert_eq!(files(&dir), without(before, &dave), "nothing else changed");
}

/// A tmpfs mounted for one test; unmounted on drop (also when the test panics).
struct Tmpfs {
    path: PathBuf,
    sudo: bool,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (mount's syntax: `256k`) at `path`, as root or through
    /// `sudo -n`; panics with what to do when neither works.
    fn mount(path: &Path, size: &str) -> Tmpfs {
        std::fs::create_dir_all(path).unwrap();
        let options = format!("size={size},mode=0755");
        let attempt = |sudo: bool| {
            let mut command = if sudo {
                let mut c = Command::new("sudo");
                c.args(["-n", "mount"]);
                c
            } else {
                Command::new("mount")
            };
            command
                .args(["-t", "tmpfs", "-o", &options, "tmpfs"])
                .arg(path)
                .output()
        };
        let direct = attempt(false);
        if direct.as_ref().is_ok_and(|o| o.status.success()) {
            return Tmpfs {
                path: path.to_path_buf(),
                sudo: false,
            };
        }
        let with_sudo = attempt(true);
        if with_sudo.as_ref().is_ok_and(|o| o.status.success()) {
            return Tmpfs {
                path: path.to_path_buf(),
                sudo: true,
            };
        }
        let said = |r: &std::io::Result<std::process::Output>| match r {
            Ok(o) => String::from_utf8_lossy(&o.stderr).trim().to_string(),
            Err(e) => e.to_string(),
        };
        panic!(
            "this test needs a small tmpfs: run it as root or with passwordless sudo \
             (mount: {}; sudo -n mount: {})",
            said(&direct),
            said(&with_sudo)
        );
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let umount = |lazy: bool| {
            let mut command = if self.sudo {
                let mut c = Command::new("sudo");
                c.args(["-n", "umount"]);
                c
            } else {
                Command::new("umount")
            };
            if lazy {
                command.arg("-l");
            }
            command.arg(&self.path).status().is_ok_and(|s| s.success())
        };
        if !umount(false) && !umount(true) {
            eprintln!("could not unmount the tmpfs at {}", self.path.display());
        }
    }
}

/// Writes `path` until the file system is full (ENOSPC); returns the bytes written.
fn fill(path: &Path) -> u64 {
    use std::io::Write as _;
    let mut file = std::fs::File::create(path).unwrap();
    let chunk = vec![0u8; 64 * 1024];
    let mut written = 0u64;
    loop {
        match file.write(&chunk) {
            Ok(0) => break,
            Ok(n) => written += n as u64,
            Err(e) if e.raw_os_error() == Some(28) => break,
            Err(e) => panic!("filling {}: {e}", path.display()),
        }
    }
    written
}

#[test]
fn a_full_disk_fails_the_run_keeps_every_old_file_and_the_next_run_finishes_the_rotation() {
    let env = Env::start(ServerKind::Radicale, seed());
    let mount = Tmpfs::mount(&env.scratch("small-disk"), "256k");
    let dir = mount.path.clone();
    let first = sync(&env, &dir, &[], &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let old = files(&dir);
    assert_eq!(old.len(), 7, "{:?}", old.keys());

    // The disk fills up; a few pages are left, enough for the small record of a rotation and
    // far too few for seven new feed files (a file takes at least one 4 KiB page).
    let filler = dir.join("filler.bin");
    let written = fill(&filler);
    let file = std::fs::OpenOptions::new()
        .write(true)
        .open(&filler)
        .unwrap();
    file.set_len(written.saturating_sub(12 * 1024)).unwrap();
    drop(file);
    let new_secret = [("CALPLANEBOT_FEED_SECRET", NEW_SECRET)];
    let rotated = run(
        &env,
        &dir,
        false,
        &["feeds", "--rotate-secret"],
        &new_secret,
    );
    assert_eq!(rotated.code, 0, "{}", rotated.stderr);
    assert_eq!(files(&dir), old, "a rotation writes no feed file");

    tick();
    let full = sync(&env, &dir, &[], &new_secret);
    assert_eq!(full.code, 1, "{}", full.stderr);
    let now = files(&dir);
    for (name, value) in &old {
        assert_eq!(now.get(name), Some(value), "{name} is kept as it was");
    }

    // Room again: the next run writes what is missing and removes the retired files.
    std::fs::remove_file(&filler).unwrap();
    let next = sync(&env, &dir, &[], &new_secret);
    assert_eq!(next.code, 0, "{}", next.stderr);
    let new = files(&dir);
    assert_eq!(new.len(), old.len(), "{:?}", new.keys());
    assert!(
        new.keys().all(|name| !old.contains_key(name)),
        "every feed has a new name: {:?} vs {:?}",
        new.keys(),
        old.keys()
    );
    assert_eq!(feed_files(&dir).into_keys().collect::<Vec<_>>(), ALL_FEEDS);
    let expected: BTreeSet<String> = new
        .keys()
        .cloned()
        .chain([RECORD.to_string(), LOCK.to_string()])
        .collect();
    assert_eq!(names(&dir), expected, "no temp file, nothing else");
}

on_both_servers!(another_configuration_is_refused_before_any_write);
/// One writer per directory: another `--assignee`, another Plane key and another `--span` are
/// refused before any write, to the feeds or to CalDAV; the same Plane settings with CalDAV
/// added still write.
fn another_configuration_is_refused_before_any_write(server: ServerKind) {
    let env = Env::start(server, seed());
    let dir = feed_dir(&env);
    let first = sync(&env, &dir, &[], &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let before = files(&dir);
    let record = std::fs::read(dir.join(RECORD)).expect("the first run writes the record");
    tick();

    let refused = |run: &Run, setting: &str| {
        assert_eq!(run.code, 2, "{}", output(run));
        assert_mentions(run, &["CALPLANEBOT_FEED_DIR", "--take-over"]);
        assert!(
            output(run).to_lowercase().contains(setting),
            "{setting:?} not named in\n{}",
            output(run)
        );
        assert_eq!(files(&dir), before, "nothing written");
        assert_eq!(std::fs::read(dir.join(RECORD)).unwrap(), record);
        assert_eq!(env.writes(), 0, "no CalDAV write: {:?}", env.proxy.counts());
    };
    let assignee = [("CALPLANEBOT_ASSIGNEE", "alice@acme.test")];
    refused(&run(&env, &dir, true, &["sync"], &assignee), "assignee");
    let span = [("CALPLANEBOT_SPAN", "start-to-due")];
    refused(&run(&env, &dir, true, &["sync"], &span), "span");
    refused(
        &run(&env, &dir, true, &["sync", "--dry-run"], &span),
        "span",
    );
    // Another valid key of the same workspace (the operator made a new one in Plane).
    let key = env.sim.token();
    env.sim
        .with_world(|w| w.token = "plane_api_fedcba9876543210fedcba9876543210".into());
    refused(&run(&env, &dir, true, &["sync"], &[]), "key");
    refused(&run(&env, &dir, false, &["sync"], &[]), "key");
    env.sim.with_world(|w| w.token = key);

    // The writing configuration with CalDAV added: the calendars fill, the feeds stay.
    let both = run(&env, &dir, true, &["sync"], &[]);
    assert_eq!(both.code, 0, "{}", both.stderr);
    assert!(env.writes() > 0, "CalDAV is written");
    assert!(env.event("WEB", "Launch").is_some());
    assert!(both.stdout.contains("feeds: 0 written"), "{}", both.stdout);
    assert_eq!(files(&dir), before);
}

#[test]
fn two_runs_started_at_once_leave_a_consistent_directory() {
    use calplanebot_testbed::feed_readers::read_with_both;
    let env = Env::start(ServerKind::Radicale, seed());
    let dir = feed_dir(&env);
    assert_eq!(sync(&env, &dir, &[], &[]).code, 0);
    // Both runs have something to write.
    let docs = env.issue_id("Docs");
    env.sim
        .with_world(|w| w.issue_mut(&docs).name = "Docs, revised".into());
    // Two hosts sharing the directory: each its own run lock and cache.
    let spawn = |host: &str| {
        let lock = env.scratch(&format!("{host}.lock")).display().to_string();
        let cache = env.scratch(&format!("{host}-cache")).display().to_string();
        command(
            &env,
            &dir,
            false,
            &["sync"],
            &[
                ("CALPLANEBOT_LOCK_FILE", lock.as_str()),
                ("CALPLANEBOT_CACHE_DIR", cache.as_str()),
            ],
        )
        .spawn()
        .expect("the binary runs")
    };
    let (a, b) = (spawn("host-a"), spawn("host-b"));
    let mut codes = [
        support::finish(a, "sync on host a").code,
        support::finish(b, "sync on host b").code,
    ];
    codes.sort();
    assert!(codes == [0, 0] || codes == [0, 4], "{codes:?}");

    tick();
    let before = files(&dir);
    let third = sync(&env, &dir, &[], &[]);
    assert_eq!(third.code, 0, "{}", third.stderr);
    assert!(
        third.stdout.contains("feeds: 0 written, 0 removed"),
        "{}",
        third.stdout
    );
    assert_eq!(files(&dir), before);
    assert_eq!(feed_files(&dir).into_keys().collect::<Vec<_>>(), ALL_FEEDS);
    assert!(
        names(&dir).iter().all(|n| !n.starts_with(TEMP_PREFIX)),
        "{:?}",
        names(&dir)
    );
    let server = FeedServer::start(&dir).expect("lighttpd serves the feeds");
    for name in before.keys() {
        for feed in read_with_both(&server.url(name)).expect("both parsers read it") {
            assert_eq!(feed.http_status, 200, "{name}");
            assert_eq!(
                feed.calendar.x_calplanebot_workspace.as_deref(),
                Some("acme")
            );
        }
    }
    assert!(
        String::from_utf8_lossy(&before[&file_of(&dir, "Plane: alice")].bytes)
            .contains("Docs\\, revised"),
        "the change is in"
    );
}

#[test]
fn a_new_secret_needs_a_rotation_and_the_rotation_moves_every_url() {
    let env = Env::start(ServerKind::Radicale, seed());
    let dir = feed_dir(&env);
    let server = FeedServer::start(&dir).expect("lighttpd serves the feeds");
    let base = format!("{}/", server.base_url());
    assert_eq!(sync(&env, &dir, &[], &[]).code, 0);
    let old = listing(&env, &dir, &base, SECRET);
    assert_eq!(old.len(), 7, "{old:?}");
    let before = files(&dir);
    tick();

    let new_secret = [("CALPLANEBOT_FEED_SECRET", NEW_SECRET)];
    let refused = sync(&env, &dir, &[], &new_secret);
    assert_eq!(refused.code, 2, "{}", refused.stdout);
    assert_mentions(&refused, &["CALPLANEBOT_FEED_SECRET", "--rotate-secret"]);
    assert_eq!(files(&dir), before, "nothing written");

    let rotated = run(
        &env,
        &dir,
        false,
        &["feeds", "--rotate-secret"],
        &new_secret,
    );
    assert_eq!(rotated.code, 0, "{}", rotated.stderr);
    assert_eq!(files(&dir), before, "a rotation writes no feed file");
    let synced = sync(&env, &dir, &[], &new_secret);
    assert_eq!(synced.code, 0, "{}", synced.stderr);
    assert!(
        synced.stdout.contains("feeds: 7 written"),
        "{}",
        synced.stdout
    );

    let new = listing(&env, &dir, &base, NEW_SECRET);
    assert_eq!(
        new.keys().collect::<Vec<_>>(),
        old.keys().collect::<Vec<_>>()
    );
    for (name, was) in &old {
        let now = &new[name];
        assert_ne!(now.url, was.url, "{name} has a new URL");
        assert_eq!(get(&server, &was.url).0, 404, "{name}'s old URL");
        let (status, body) = get(&server, &now.url);
        assert_eq!(status, 200, "{name}'s new URL");
        assert_eq!(events(&body), events(&before[&was.file].bytes), "{name}");
    }
    // The old secret is the stale one now.
    let stale = sync(&env, &dir, &[], &[]);
    assert_eq!(stale.code, 2, "{}", stale.stdout);
    assert_mentions(&stale, &["CALPLANEBOT_FEED_SECRET"]);
}

#[test]
fn a_feed_secret_shorter_than_32_characters_is_refused() {
    let env = Env::start(ServerKind::Radicale, seed());
    let dir = feed_dir(&env);
    let thirty_two = "0123456789abcdef0123456789abcdef";
    for short in ["x", &thirty_two[..31]] {
        let refused = sync(&env, &dir, &[], &[("CALPLANEBOT_FEED_SECRET", short)]);
        assert_eq!(refused.code, 2, "{}", refused.stdout);
        assert_mentions(
            &refused,
            &["CALPLANEBOT_FEED_SECRET", "openssl rand -hex 32"],
        );
        assert!(names(&dir).is_empty(), "nothing written: {:?}", names(&dir));
    }

    // Through a file: one trailing newline is dropped before counting.
    let from_file = |secret: &str| {
        let path = env.scratch("feed-secret");
        std::fs::write(&path, format!("{secret}\n")).unwrap();
        let path = path.display().to_string();
        let mut command = command(
            &env,
            &dir,
            false,
            &["sync"],
            &[("CALPLANEBOT_FEED_SECRET_FILE", path.as_str())],
        );
        command.env_remove("CALPLANEBOT_FEED_SECRET");
        support::finish(
            command.spawn().expect("the binary runs"),
            "sync (secret file)",
        )
    };
    let refused = from_file(&thirty_two[..31]);
    assert_eq!(refused.code, 2, "{}", refused.stdout);
    assert_mentions(
        &refused,
        &["CALPLANEBOT_FEED_SECRET", "openssl rand -hex 32"],
    );
    assert!(names(&dir).is_empty(), "nothing written: {:?}", names(&dir));

    let accepted = sync(&env, &dir, &[], &[("CALPLANEBOT_FEED_SECRET", thirty_two)]);
    assert_eq!(accepted.code, 0, "{}", accepted.stderr);
    assert_eq!(feed_files(&dir).len(), 7);
    let accepted = from_file(thirty_two);
    assert_eq!(accepted.code, 0, "{}", accepted.stderr);
}

#[test]
fn revoking_a_member_a_project_and_the_workspace_moves_only_that_feed() {
    let env = Env::start(ServerKind::Radicale, seed());
    let dir = feed_dir(&env);
    std::fs::write(dir.join(NOTES), "the team's notes\n").unwrap();
    let server = FeedServer::start(&dir).expect("lighttpd serves the feeds");
    let base = format!("{}/", server.base_url());
    assert_eq!(sync(&env, &dir, &[], &[]).code, 0);

    let web = env.project_id("WEB");
    for (spec, calendar, mark) in [
        (
            "member:alice@acme.test",
            "Plane: alice",
            format!("member:{ALICE}"),
        ),
        ("project:WEB", "Plane: Website", format!("project:{web}")),
        ("workspace", "Plane: acme", "workspace:acme".to_string()),
    ] {
        let old = listing(&env, &dir, &base, SECRET)[calendar].clone();
        let before = files(&dir);
        let (status, served) = get(&server, &old.url);
        assert_eq!(status, 200, "{calendar} before");
        tick();
        let revoked = run(&env, &dir, false, &["feeds", "--revoke", spec], &[]);
        assert_eq!(revoked.code, 0, "{}", revoked.stderr);
        assert_eq!(files(&dir), before, "--revoke writes no feed file");
        let synced = sync(&env, &dir, &[], &[]);
        assert_eq!(synced.code, 0, "{}", synced.stderr);

        let new = listing(&env, &dir, &base, SECRET)[calendar].clone();
        assert_eq!(new.kind, old.kind);
        assert_ne!(new.file, old.file, "{spec}: a new name");
        assert_eq!(get(&server, &old.url).0, 404, "{spec}: the old URL");
        let (status, body) = get(&server, &new.url);
        assert_eq!(status, 200, "{spec}: the new URL");
        assert_eq!(events(&body), events(&served), "{spec}: the same events");
        assert_eq!(
            prop(&String::from_utf8_lossy(&body), "X-CALPLANEBOT-FEED"),
            Some(mark),
            "{spec}: the feed says which it is"
        );
        assert_eq!(
            without(files(&dir), &new.file),
            without(before, &old.file),
            "{spec}: every other file as it was"
        );
    }

    // A webhook patches alice's new file and creates nothing under her old name.
    let alice = listing(&env, &dir, &base, SECRET)["Plane: alice"].clone();
    let all = names(&dir);
    let docs = env.issue_id("Docs");
    env.sim
        .with_world(|w| w.issue_mut(&docs).name = "Docs for launch".into());
    let webhook = deliver(&env, &dir, "issue", "updated", &docs);
    assert_eq!(webhook.code, 0, "{}", webhook.stderr);
    assert_eq!(names(&dir), all, "no file appears");
    let (_, summaries) = events(&std::fs::read(dir.join(&alice.file)).unwrap());
    assert!(
        summaries.iter().any(|s| s.ends_with("] Docs for launch")),
        "{summaries:?}"
    );

    // A sync, and a sync without the cache, keep the new names.
    let urls: BTreeMap<String, String> = listing(&env, &dir, &base, SECRET)
        .into_iter()
        .map(|(name, listed)| (name, listed.url))
        .collect();
    let synced = sync(&env, &dir, &[], &[]);
    assert_eq!(synced.code, 0, "{}", synced.stderr);
    assert_eq!(names(&dir), all);
    match std::fs::remove_dir_all(env.scratch("cache")) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => panic!("removing the cache: {e}"),
        _ => {}
    }
    let synced = sync(&env, &dir, &[], &[]);
    assert_eq!(synced.code, 0, "{}", synced.stderr);
    assert_eq!(names(&dir), all);
    // A second host: its own run lock and cache.
    let lock = env.scratch("host-b.lock").display().to_string();
    let cache = env.scratch("host-b-cache").display().to_string();
    let other_host = [
        ("CALPLANEBOT_LOCK_FILE", lock.as_str()),
        ("CALPLANEBOT_CACHE_DIR", cache.as_str()),
    ];
    let synced = sync(&env, &dir, &[], &other_host);
    assert_eq!(synced.code, 0, "{}", synced.stderr);
    assert_eq!(names(&dir), all);
    let listed: BTreeMap<String, String> = listing(&env, &dir, &base, SECRET)
        .into_iter()
        .map(|(name, listed)| (name, listed.url))
        .collect();
    assert_eq!(listed, urls, "the revocations survive the cache");

    // An unknown member or project changes nothing.
    let before = files(&dir);
    let record = std::fs::read(dir.join(RECORD)).unwrap();
    for spec in ["member:nobody@x.test", "project:NOPE"] {
        let unknown = run(&env, &dir, false, &["feeds", "--revoke", spec], &[]);
        assert_eq!(unknown.code, 2, "{spec}: {}", output(&unknown));
        assert_eq!(files(&dir), before, "{spec}");
        assert_eq!(std::fs::read(dir.join(RECORD)).unwrap(), record, "{spec}");
    }
}

#[test]
fn a_file_at_a_feed_name_that_is_not_ours_is_left_alone_and_fails_the_run() {
    let env = Env::start(ServerKind::Radicale, seed());
    let dir = feed_dir(&env);
    std::fs::write(dir.join(NOTES), "the team's notes\n").unwrap();
    std::fs::write(dir.join(UNMARKED), UNMARKED_TEXT).unwrap();
    let bystanders = |files: &Files| -> Files {
        files
            .iter()
            .filter(|(name, _)| *name == NOTES || *name == UNMARKED)
            .map(|(n, v)| (n.clone(), v.clone()))
            .collect()
    };
    let others = bystanders(&files(&dir));
    let first = sync(&env, &dir, &[], &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    assert_eq!(bystanders(&files(&dir)), others);
    let alice = file_of(&dir, "Plane: alice");
    let ours = files(&dir);

    let at_alice = dir.join(&alice);
    let other_workspace = UNMARKED_TEXT.replace(
        "X-WR-CALNAME:Holidays\r\n",
        "X-WR-CALNAME:Plane: alice\r\nX-CALPLANEBOT-WORKSPACE:globex\r\n",
    );
    for what in [
        "a text file",
        "another workspace's feed",
        "a directory",
        "a symlink",
    ] {
        clear(&at_alice);
        match what {
            "a text file" => std::fs::write(&at_alice, "call the plumber\n").unwrap(),
            "another workspace's feed" => std::fs::write(&at_alice, &other_workspace).unwrap(),
            "a directory" => std::fs::create_dir(&at_alice).unwrap(),
            _ => std::os::unix::fs::symlink(NOTES, &at_alice).unwrap(),
        }
        let there = files(&dir);
        tick();
        let failed = sync(&env, &dir, &[], &[]);
        assert_eq!(failed.code, 1, "{what}: {}", output(&failed));
        assert!(
            output(&failed).to_lowercase().contains("move"),
            "{what}: no hint in\n{}",
            output(&failed)
        );
        assert_eq!(files(&dir), there, "{what}: every file as it was");
        match what {
            "a directory" => assert!(at_alice.is_dir(), "{what} is left"),
            "a symlink" => assert!(at_alice.is_symlink(), "{what} is left"),
            _ => assert!(at_alice.is_file(), "{what} is left"),
        }
    }

    // The file moved away, the next run writes alice's feed again.
    clear(&at_alice);
    let next = sync(&env, &dir, &[], &[]);
    assert_eq!(next.code, 0, "{}", next.stderr);
    assert_eq!(file_of(&dir, "Plane: alice"), alice);
    assert_eq!(
        files(&dir).into_keys().collect::<Vec<_>>(),
        ours.into_keys().collect::<Vec<_>>()
    );
    assert_eq!(bystanders(&files(&dir)), others);
}

#[test]
fn a_stale_temp_file_is_removed_and_a_fresh_one_and_other_files_are_left_alone() {
    let env = Env::start(ServerKind::Radicale, seed());
    let dir = feed_dir(&env);
    std::fs::write(dir.join(NOTES), "the team's notes\n").unwrap();
    std::fs::write(dir.join(UNMARKED), UNMARKED_TEXT).unwrap();
    assert_eq!(sync(&env, &dir, &[], &[]).code, 0);
    let two_hours_ago = SystemTime::now() - Duration::from_secs(2 * 3600);
    let put = |name: &str, mtime: Option<SystemTime>| {
        let path = dir.join(name);
        std::fs::write(&path, "half a feed").unwrap();
        if let Some(mtime) = mtime {
            std::fs::File::options()
                .write(true)
                .open(&path)
                .and_then(|f| f.set_modified(mtime))
                .unwrap();
        }
    };
    let stale = format!("{TEMP_PREFIX}0123456789abcdef");
    let fresh = format!("{TEMP_PREFIX}fedcba9876543210");
    // Old, but not of the temp pattern: not ours.
    let lookalike = format!("{TEMP_PREFIX}report.txt");
    put(&stale, Some(two_hours_ago));
    put(&fresh, None);
    put(&lookalike, Some(two_hours_ago));
    let before = files(&dir);
    tick();

    let synced = sync(&env, &dir, &[], &[]);
    assert_eq!(synced.code, 0, "{}", synced.stderr);
    assert!(!dir.join(&stale).exists(), "the stale temp file is removed");
    for kept in [&fresh, &lookalike] {
        assert_eq!(
            std::fs::read_to_string(dir.join(kept)).unwrap(),
            "half a feed",
            "{kept} is left alone"
        );
    }
    assert_eq!(files(&dir), before, "no other file changed");
    assert_eq!(
        std::fs::read_to_string(dir.join(UNMARKED)).unwrap(),
        UNMARKED_TEXT
    );
}

/// Six projects with a dated issue each, one person: eight feeds.
fn six_projects_seed() -> serde_json::Value {
    let projects: Vec<_> = ["P1", "P2", "P3", "P4", "P5", "P6"]
        .iter()
        .map(|p| json!({"identifier": p, "name": format!("Project {p}")}))
        .collect();
    let issues: Vec<_> = ["P1", "P2", "P3", "P4", "P5", "P6"]
        .iter()
        .map(|p| json!({"project": p, "name": format!("Task of {p}"), "target_date": "2026-12-10", "assignees": [ALICE]}))
        .collect();
    json!({
        "workspace": "acme",
        "users": [
            {"id": ALICE, "first_name": "Alice", "last_name": "A", "email": "alice@acme.test", "display_name": "alice"}
        ],
        "projects": projects,
        "issues": issues
    })
}

#[test]
fn five_project_feeds_of_eight_going_at_once_are_kept_until_forced() {
    let env = Env::start(ServerKind::Radicale, six_projects_seed());
    let dir = feed_dir(&env);
    let first = sync(&env, &dir, &[], &[]);
    assert_eq!(first.code, 0, "{}", first.stderr);
    let by_name = feed_files(&dir);
    assert_eq!(by_name.len(), 8, "{by_name:?}");
    let going: Vec<String> = ["P2", "P3", "P4", "P5", "P6"]
        .iter()
        .map(|p| by_name[&format!("Plane: Project {p}")].clone())
        .collect();

    // Five projects are deleted in Plane (with their issues): 5 of 8 feed files would go, which
    // is more than 50 % (and more than 3), though far below the count limit.
    env.sim.with_world(|w| {
        let gone: Vec<String> = w
            .projects
            .iter()
            .filter(|p| p.identifier != "P1")
            .map(|p| p.id.clone())
            .collect();
        w.projects.retain(|p| !gone.contains(&p.id));
        w.issues.retain(|i| !gone.contains(&i.project));
    });
    let before = files(&dir);
    tick();
    let guarded = sync(&env, &dir, &["--max-delete", "100"], &[]);
    assert_eq!(guarded.code, 3, "{}", output(&guarded));
    assert!(
        guarded
            .stdout
            .lines()
            .any(|l| l.starts_with('!') && l.contains("feed")),
        "{}",
        guarded.stdout
    );
    let now = files(&dir);
    for file in &going {
        assert_eq!(now.get(file), before.get(file), "kept as it was");
    }

    let forced = sync(&env, &dir, &["--max-delete", "100", "--force-delete"], &[]);
    assert_eq!(forced.code, 0, "{}", output(&forced));
    assert!(forced.stdout.contains("5 removed"), "{}", forced.stdout);
    let left = feed_files(&dir);
    assert_eq!(
        left.into_keys().collect::<Vec<_>>(),
        ["Plane: Project P1", "Plane: acme", "Plane: alice"]
    );
    assert!(going.iter().all(|file| !dir.join(file).exists()));
}
