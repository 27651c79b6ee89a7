//! Issue 20, point 10 ("Serving them for real"): README.md's nginx and Caddy configurations, run
//! with the real servers of Debian 12 (nginx 1.22, Caddy 2.6) the way an operator who copies
//! them runs them, against a feed directory the real `calplanebot sync` wrote.
//!
//! The configurations are read from README.md at test time — the fenced block after each
//! `<!-- tests/serving.rs: … -->` line — so the README and this test cannot drift apart; the
//! testbed (testbed/src/nginx.rs, caddy.rs) swaps only the ports, the certificate and the feed
//! directory for its own. The directory holds, besides the feeds, what the README says must not
//! be served: calplanebot's record, lock and temporary files (made here, not left to the
//! binary), a note, `.ics` names that are not feed names, a subdirectory; and it has a mode like
//! the README's 2771, which others (nginx's worker when the test runs as root) may traverse but
//! not list.
//!
//! What each server must do (a failure lists every point missed, with the server's log):
//! - every feed `calplanebot feeds` lists, at the path of its URL (so `CALPLANEBOT_FEED_BASE_URL`
//!   as the README spells it out is the served path): 200, the file's bytes,
//!   `text/calendar; charset=utf-8`, `Cache-Control: max-age=300`, an `ETag`, and the site's
//!   `Strict-Transport-Security` (the `add_header` pitfall); 304 to `If-None-Match`; with
//!   `Accept-Encoding: gzip`, a gzip body (decoded by the `gzip` command) of the same bytes,
//!   and 304 to its own `ETag` too;
//! - every other name, `/plane/` (no listing) and `/`: 404, without `text/calendar` or
//!   `Cache-Control`, with no feed in the body;
//! - plain HTTP: a redirect (301 or 308) to the same path over HTTPS.
//!
//! nginx or Caddy missing fails the test with a message: scripts/test installs both.

mod support;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use calplanebot_testbed::caddy::CaddySite;
use calplanebot_testbed::feed_server::FeedResponse;
use calplanebot_testbed::https_site::{SITE_NAME, SiteClient};
use calplanebot_testbed::nginx::NginxSite;
use calplanebot_testbed::plane_sim::{PlaneSim, Seed};
use serde_json::json;

/// At least 32 characters, as a feed secret must be.
const SECRET: &str = "feed-secret-for-tests-0123456789abcdef";

/// The names in the directory that are not feeds, each a file with its content; `sub/` is a
/// directory. The record is made only if the binary did not write one.
const STRANGERS: [(&str, &str); 7] = [
    ("notes.txt", "where the feeds are\n"),
    (
        ".calplanebot-feeds.json",
        "{\"writer\": \"fingerprints only\"}\n",
    ),
    (".calplanebot.lock", ""),
    (".calplanebot-tmp-0123456789abcdef", "BEGIN:VCALENDAR\r\n"),
    (
        "UPPERCASE0123456789ABCDEF0123456.ics",
        "BEGIN:VCALENDAR\r\n",
    ),
    ("0123.ics", "BEGIN:VCALENDAR\r\n"),
    (
        "sub/0123456789abcdef0123456789abcdef.ics",
        "BEGIN:VCALENDAR\r\n",
    ),
];

/// A workspace with enough dated issues, with descriptions, for feeds of a realistic size.
fn seed() -> serde_json::Value {
    let users = [
        ("00000000-0000-4000-8000-0000000000a1", "alice"),
        ("00000000-0000-4000-8000-0000000000b2", "bob"),
        ("00000000-0000-4000-8000-0000000000c3", "carol"),
    ];
    let mut issues = Vec::new();
    for n in 0..24 {
        let (project, assignee) = (["WEB", "OPS"][n % 2], users[n % 3].0);
        let topic = ["login", "backup", "search"][n % 3];
        let priority = ["urgent", "high", "medium", "low"][n % 4];
        issues.push(json!({
            "project": project,
            "name": format!("Work item {n}: review the {topic} rollout"),
            "description_html": format!(
                "<p>Step {n} of the plan.</p><ul><li><p>check the logs</p></li><li><p>tell the team</p></li></ul>"
            ),
            "start_date": format!("2026-12-{:02}", n + 1),
            "target_date": format!("2026-12-{:02}", n + 3),
            "priority": priority,
            "assignees": [assignee],
        }));
    }
    json!({
        "workspace": "acme",
        "users": users.iter().map(|(id, name)| json!({
            "id": id, "first_name": name, "last_name": "A",
            "email": format!("{name}@acme.test"), "display_name": name,
        })).collect::<Vec<_>>(),
        "projects": [
            {"identifier": "WEB", "name": "Website"},
            {"identifier": "OPS", "name": "Operations"}
        ],
        "issues": issues,
    })
}

/// A directory of the test under the system temp dir (which every user may traverse, as the
/// web server's worker must), removed on drop unless the test failed.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let dir = std::env::temp_dir().join(format!(
            "calplanebot-serving-{test}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("keeping {}", self.0.display());
        } else {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

/// The fenced block after the line `<!-- tests/serving.rs: {name} -->` in README.md, without
/// its fences.
fn readme_block(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md");
    let readme = std::fs::read_to_string(&path).unwrap();
    let marker = format!("<!-- tests/serving.rs: {name} -->");
    assert_eq!(
        readme.matches(&marker).count(),
        1,
        "README.md: one line {marker:?} wanted, before the block this test runs"
    );
    let after = &readme[readme.find(&marker).unwrap() + marker.len()..];
    let mut lines = after.lines().skip_while(|line| line.trim().is_empty());
    let fence = lines.next().unwrap_or_default();
    assert!(
        fence.starts_with("```"),
        "README.md: {marker} is not followed by a fenced block but by {fence:?}"
    );
    let block: Vec<&str> = lines.take_while(|line| *line != "```").collect();
    block.join("\n") + "\n"
}

/// `CALPLANEBOT_FEED_BASE_URL` as README.md spells it out, and the path it stands for.
fn readme_base_url() -> (String, String) {
    let block = readme_block("base URL");
    let url = block
        .trim()
        .strip_prefix("CALPLANEBOT_FEED_BASE_URL=")
        .unwrap_or_else(|| panic!("README.md's base URL block: {block:?}"))
        .to_string();
    let path = url
        .strip_prefix(&format!("https://{SITE_NAME}"))
        .unwrap_or_else(|| panic!("{url}: not an https:// URL of {SITE_NAME}"))
        .to_string();
    (url, path)
}

/// One feed as `calplanebot feeds --format json` lists it: its file and its URL.
struct Listed {
    file: String,
    url: String,
}

/// Runs the binary with feeds only (no CalDAV settings), against the simulator.
fn run(sim: &PlaneSim, scratch: &Path, feed_dir: &Path, base_url: &str, args: &[&str]) -> String {
    let child = Command::new(env!("CARGO_BIN_EXE_calplanebot"))
        .args(args)
        .env_clear()
        .env("PLANE_BASE_URL", sim.base_url())
        .env("PLANE_API_TOKEN", sim.token())
        .env("PLANE_WORKSPACE_SLUG", sim.workspace_slug())
        .env("CALPLANEBOT_LOCK_FILE", scratch.join("run.lock"))
        .env("CALPLANEBOT_CACHE_DIR", scratch.join("cache"))
        .env("CALPLANEBOT_FEED_DIR", feed_dir)
        .env("CALPLANEBOT_FEED_SECRET", SECRET)
        .env("CALPLANEBOT_FEED_BASE_URL", base_url)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary runs");
    let run = support::finish(child, &args.join(" "));
    assert_eq!(
        run.code,
        0,
        "calplanebot {}: {}",
        args.join(" "),
        run.stderr
    );
    run.stdout
}

/// A feed directory as a deployment has it: written by `calplanebot sync`, plus the names
/// that must not be served ([`STRANGERS`]), mode 0711. Returns the directory and its feeds.
fn written_feed_dir(scratch: &Scratch, base_url: &str) -> (PathBuf, Vec<Listed>) {
    let sim = PlaneSim::start(Seed::from_json(&seed().to_string()).unwrap()).unwrap();
    let dir = scratch.0.join("feeds");
    std::fs::create_dir_all(&dir).unwrap();
    run(&sim, &scratch.0, &dir, base_url, &["sync"]);
    let listed: serde_json::Value = serde_json::from_str(&run(
        &sim,
        &scratch.0,
        &dir,
        base_url,
        &["feeds", "--format", "json"],
    ))
    .unwrap();
    let feeds: Vec<Listed> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|feed| Listed {
            file: feed["file"].as_str().unwrap().to_string(),
            url: feed["url"].as_str().unwrap().to_string(),
        })
        .collect();
    // 2 projects, 3 members, the workspace.
    assert_eq!(feeds.len(), 6, "the feeds listed");
    for (name, content) in STRANGERS {
        let path = dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        if !path.exists() {
            std::fs::write(&path, content).unwrap();
        }
    }
    // Like the README's 2771 for "others": enter, open a name, list nothing.
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o711)).unwrap();
    (dir, feeds)
}

/// `bytes` decoded by the `gzip` command (`None` if it refuses them: not gzip).
fn gunzip(bytes: &[u8]) -> Option<Vec<u8>> {
    let mut child = Command::new("gzip")
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("gzip runs");
    let mut stdin = child.stdin.take().unwrap();
    let input = bytes.to_vec();
    let writer = std::thread::spawn(move || stdin.write_all(&input));
    let output = child.wait_with_output().unwrap();
    let _ = writer.join();
    output.status.success().then_some(output.stdout)
}

/// What one answer must be; each miss is pushed onto `failures`.
struct Expect<'a> {
    failures: &'a mut Vec<String>,
}

impl Expect<'_> {
    fn that(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.failures.push(what());
        }
    }

    fn header(&mut self, target: &str, reply: &FeedResponse, name: &str, wanted: Option<&str>) {
        let got = reply.header(name);
        self.that(got == wanted, || {
            format!("{target}: {name}: {got:?}, {wanted:?} wanted")
        });
    }
}

/// Every check of the module doc on one running site.
fn check_site(client: &SiteClient, dir: &Path, feeds: &[Listed], base_path: &str) -> Vec<String> {
    let mut failures = Vec::new();
    let mut expect = Expect {
        failures: &mut failures,
    };
    let get = |path: &str, headers: &[(&str, &str)]| {
        client
            .get(path, headers)
            .unwrap_or_else(|e| panic!("GET {}: {e}", client.https_url(path)))
    };
    let hsts = "max-age=31536000";
    let mut sizes = (0, 0);

    for feed in feeds {
        let path = feed
            .url
            .strip_prefix(&format!("https://{SITE_NAME}"))
            .unwrap_or_else(|| panic!("listed URL {}", feed.url));
        let target = format!("GET {path}");
        expect.that(path == format!("{base_path}/{}", feed.file), || {
            format!("listed URL {} is not {base_path}/{}", feed.url, feed.file)
        });
        let bytes = std::fs::read(dir.join(&feed.file)).unwrap();

        let reply = get(path, &[]);
        expect.that(reply.status == 200, || format!("{target}: {reply:?}"));
        expect.that(reply.body == bytes, || {
            format!("{target}: not the file's bytes")
        });
        expect.header(
            &target,
            &reply,
            "content-type",
            Some("text/calendar; charset=utf-8"),
        );
        expect.header(&target, &reply, "strict-transport-security", Some(hsts));
        expect.header(&target, &reply, "content-encoding", None);
        let cache = reply.header("cache-control").unwrap_or_default();
        expect.that(cache.contains("max-age=300"), || {
            format!("{target}: Cache-Control {cache:?}, max-age=300 wanted")
        });
        let Some(etag) = reply.header("etag") else {
            expect.that(false, || format!("{target}: no ETag"));
            continue;
        };
        let unchanged = get(path, &[("If-None-Match", etag)]);
        let conditional = format!("{target} If-None-Match: {etag}");
        expect.that(unchanged.status == 304, || {
            format!("{conditional}: {}, 304 wanted", unchanged.status)
        });
        expect.header(
            &conditional,
            &unchanged,
            "strict-transport-security",
            Some(hsts),
        );

        let gzip = [("Accept-Encoding", "gzip")];
        let zipped = get(path, &gzip);
        let target = format!("{target} Accept-Encoding: gzip");
        expect.that(zipped.status == 200, || {
            format!("{target}: {}", zipped.status)
        });
        expect.header(&target, &zipped, "content-encoding", Some("gzip"));
        expect.header(
            &target,
            &zipped,
            "content-type",
            Some("text/calendar; charset=utf-8"),
        );
        let vary = zipped.header("vary").unwrap_or_default();
        expect.that(
            vary.to_ascii_lowercase().contains("accept-encoding"),
            || format!("{target}: Vary {vary:?}, Accept-Encoding wanted"),
        );
        expect.that(gunzip(&zipped.body).as_deref() == Some(&bytes[..]), || {
            format!("{target}: the body is not the file's bytes gzipped")
        });
        sizes = (sizes.0 + bytes.len(), sizes.1 + zipped.body.len());
        if let Some(zipped_etag) = zipped.header("etag") {
            let unchanged = get(path, &[gzip[0], ("If-None-Match", zipped_etag)]);
            expect.that(unchanged.status == 304, || {
                format!("{target} If-None-Match {zipped_etag}: {}", unchanged.status)
            });
        }
    }
    eprintln!(
        "{} feed bytes, {} gzipped: {:.1}× smaller",
        sizes.0,
        sizes.1,
        sizes.0 as f64 / sizes.1.max(1) as f64
    );

    let first = &feeds[0].file;
    let mut others: Vec<String> = STRANGERS
        .iter()
        .map(|(name, _)| format!("{base_path}/{name}"))
        .collect();
    others.extend([
        format!("{base_path}/sub"),
        format!("{base_path}/sub/"),
        format!("{base_path}/"),
        base_path.to_string(),
        "/".to_string(),
        format!(
            "{base_path}/{}",
            first.to_ascii_uppercase().replace(".ICS", ".ics")
        ),
        format!("{base_path}/{first}/"),
        format!("/{first}"),
        // A feed's name, but no such file (a removed or revoked feed).
        format!("{base_path}/ffffffffffffffffffffffffffffffff.ics"),
        format!("{base_path}/%2Ecalplanebot-feeds.json"),
    ]);
    for path in &others {
        let target = format!("GET {path}");
        let reply = get(path, &[]);
        expect.that(reply.status == 404, || {
            format!("{target}: {}, 404 wanted", reply.status)
        });
        let content_type = reply.header("content-type").unwrap_or_default();
        expect.that(!content_type.contains("text/calendar"), || {
            format!("{target}: Content-Type {content_type:?} on what is not a feed")
        });
        expect.header(&target, &reply, "cache-control", None);
        let body = String::from_utf8_lossy(&reply.body);
        expect.that(
            !body.contains("BEGIN:VCALENDAR") && !feeds.iter().any(|f| body.contains(&f.file)),
            || format!("{target}: the body shows a feed or a feed's name: {body}"),
        );
    }

    for path in [format!("{base_path}/{first}"), "/".to_string()] {
        let target = format!("GET http://{SITE_NAME}{path}");
        let reply = client
            .get_plain(&path, &[])
            .unwrap_or_else(|e| panic!("{target}: {e}"));
        expect.that([301, 308].contains(&reply.status), || {
            format!("{target}: {}, a redirect wanted", reply.status)
        });
        let location = reply.header("location").unwrap_or_default();
        expect.that(
            location.starts_with(&format!("https://{SITE_NAME}")) && location.ends_with(&path),
            || format!("{target}: Location {location:?}, https://{SITE_NAME}…{path} wanted"),
        );
    }
    failures
}

/// Fails with every miss and the server's log.
fn report(server: &str, failures: &[String], log: &str) {
    assert!(
        failures.is_empty(),
        "{server} with README.md's configuration:\n  {}\n--- {server}'s log:\n{log}",
        failures.join("\n  ")
    );
}

#[test]
fn nginx_with_the_readme_configuration_serves_the_feeds_and_nothing_else() {
    let scratch = Scratch::new("nginx");
    let (base_url, base_path) = readme_base_url();
    let (dir, feeds) = written_feed_dir(&scratch, &base_url);
    let site = NginxSite::start(&readme_block("nginx"), &dir)
        .unwrap_or_else(|e| panic!("nginx does not start with README.md's configuration: {e}"));
    let failures = check_site(site.client(), &dir, &feeds, &base_path);
    report("nginx", &failures, &site.log());
}

#[test]
fn caddy_with_the_readme_configuration_serves_the_feeds_and_nothing_else() {
    let scratch = Scratch::new("caddy");
    let (base_url, base_path) = readme_base_url();
    let (dir, feeds) = written_feed_dir(&scratch, &base_url);
    let site = CaddySite::start(&readme_block("caddy"), &dir)
        .unwrap_or_else(|e| panic!("Caddy does not start with README.md's configuration: {e}"));
    let mut failures = check_site(site.client(), &dir, &feeds, &base_path);
    // Caddy warns of a Caddyfile that `caddy fmt` would change: the README's block is the
    // one an operator copies, so it is kept as `caddy fmt` writes it.
    if site.log().contains("is not formatted") {
        failures.push("README.md's Caddy block is not as `caddy fmt` writes it".to_string());
    }
    report("Caddy", &failures, &site.log());
}
