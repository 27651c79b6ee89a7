//! The calendar-location cache: which calendar holds each project's events, as the last run
//! found it. It only saves requests (a webhook run needs no discovery); it is never a source
//! of truth. Every full `sync` rewrites it, a run that meets a failure drops the entry it used,
//! and a cache that is missing, unreadable, for another configuration or pointing at another
//! server is ignored.
//!
//! It also remembers the page size Plane accepted when Plane refused the default (see
//! `plane::PlaneClient::per_page`), so that later runs do not repeat the refused request. A
//! feeds-only configuration has a cache too, for this alone (with empty CalDAV fields).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::{CalDav, Config};
use crate::{caldav, plane};

/// Largest cache file read; a real one holds one URL per project.
const MAX_SIZE: u64 = 4 * 1024 * 1024;
const VERSION: u32 = 1;

/// What the cache file holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
struct Contents {
    version: u32,
    /// The configuration it was written for (the file name is only a hash of it).
    caldav_url: String,
    caldav_username: String,
    workspace: String,
    /// Project id → calendar URL.
    calendars: BTreeMap<String, String>,
    /// `CALDAV_URL` turned out to be a calendar: single-calendar mode into this URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    single_calendar: Option<String>,
    /// The `PLANE_BASE_URL` that `plane_per_page` was learned from.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    plane_url: String,
    /// The page size that Plane accepts, once it refused `plane::PER_PAGE`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    plane_per_page: Option<u32>,
}

/// The cache of one configuration.
#[derive(Debug)]
pub struct CalendarCache {
    path: Option<PathBuf>,
    contents: Contents,
    dirty: bool,
}

impl CalendarCache {
    /// The calendar-location cache of this configuration.
    pub fn of(config: &Config, caldav: &CalDav) -> CalendarCache {
        match &config.cache_file {
            Some(path) => log::debug!("calendar cache: {}", path.display()),
            None => log::debug!("no calendar cache (CALPLANEBOT_CACHE_DIR is empty)"),
        }
        CalendarCache::load(
            config.cache_file.as_deref(),
            &caldav.url,
            &caldav.username,
            &config.workspace_slug,
        )
    }

    /// Reads the cache at `path` for this configuration; anything unusable gives an empty one.
    pub fn load(
        path: Option<&Path>,
        caldav_url: &str,
        caldav_username: &str,
        workspace: &str,
    ) -> CalendarCache {
        let empty = Contents {
            version: VERSION,
            caldav_url: caldav_url.to_string(),
            caldav_username: caldav_username.to_string(),
            workspace: workspace.to_string(),
            calendars: BTreeMap::new(),
            single_calendar: None,
            plane_url: String::new(),
            plane_per_page: None,
        };
        let contents = match path.map(|p| (p, read(p))) {
            Some((_, Ok(None))) | None => empty,
            Some((path, Ok(Some(found)))) => match check(found, &empty) {
                Ok(contents) => contents,
                Err(why) => {
                    log::warn!("ignoring the cache {}: {why}", path.display());
                    empty
                }
            },
            Some((path, Err(why))) => {
                log::warn!("ignoring the cache {}: {why}", path.display());
                empty
            }
        };
        CalendarCache {
            path: path.map(Path::to_path_buf),
            contents,
            dirty: false,
        }
    }

    /// The calendar that held `project`'s events at the last run.
    pub fn calendar(&self, project: &str) -> Option<&str> {
        self.contents.calendars.get(project).map(String::as_str)
    }

    /// Every calendar in the cache, each once.
    pub fn calendars(&self) -> Vec<String> {
        let mut all: Vec<String> = self.contents.calendars.values().cloned().collect();
        all.sort();
        all.dedup();
        all
    }

    pub fn set(&mut self, project: &str, calendar: &str) {
        if self.calendar(project) != Some(calendar) {
            self.contents
                .calendars
                .insert(project.to_string(), calendar.to_string());
            self.dirty = true;
        }
    }

    pub fn remove(&mut self, project: &str) {
        if self.contents.calendars.remove(project).is_some() {
            self.dirty = true;
        }
    }

    /// Forgets every entry (a full sync starts from what it found itself).
    pub fn clear(&mut self) {
        if !self.contents.calendars.is_empty() || self.contents.single_calendar.is_some() {
            self.contents.calendars.clear();
            self.contents.single_calendar = None;
            self.dirty = true;
        }
    }

    /// The calendar `CALDAV_URL` named at the last run, if it named a calendar.
    pub fn single_calendar(&self) -> Option<&str> {
        self.contents.single_calendar.as_deref()
    }

    pub fn set_single_calendar(&mut self, url: Option<&str>) {
        if self.single_calendar() != url {
            self.contents.single_calendar = url.map(str::to_string);
            self.dirty = true;
        }
    }

    /// The page size the Plane at `plane_url` accepted at an earlier run: `None` unless the
    /// cache says so for this very URL, and with one of the two sizes calplanebot asks for
    /// (`plane::PER_PAGE`, `plane::FALLBACK_PER_PAGE`); any other value is ignored.
    pub fn plane_per_page(&self, plane_url: &str) -> Option<u32> {
        self.contents
            .plane_per_page
            .filter(|n| [plane::PER_PAGE, plane::FALLBACK_PER_PAGE].contains(n))
            .filter(|_| self.contents.plane_url == plane_url)
    }

    pub fn set_plane_per_page(&mut self, plane_url: &str, per_page: u32) {
        if (
            self.contents.plane_url.as_str(),
            self.contents.plane_per_page,
        ) != (plane_url, Some(per_page))
        {
            self.contents.plane_url = plane_url.to_string();
            self.contents.plane_per_page = Some(per_page);
            self.dirty = true;
        }
    }

    /// Writes the cache if it changed, atomically (`atomic_file`). A failure is only a warning: the cache saves requests,
    /// nothing more.
    pub fn save(&mut self) {
        let Some(path) = &self.path else { return };
        if !self.dirty {
            return;
        }
        match write(path, &self.contents) {
            Ok(()) => self.dirty = false,
            Err(error) => log::warn!("cannot write the cache {}: {error}", path.display()),
        }
    }
}

fn read(path: &Path) -> Result<Option<Contents>, String> {
    crate::support::atomic_file::read_json(path, MAX_SIZE, "a calplanebot cache")
}

/// A cache is used only for the configuration that wrote it, and only with URLs on the
/// CalDAV server's own origin: a planted file must not send our credentials elsewhere.
fn check(found: Contents, expected: &Contents) -> Result<Contents, String> {
    if found.version != VERSION {
        return Err(format!("version {} is not {VERSION}", found.version));
    }
    if (&found.caldav_url, &found.caldav_username, &found.workspace)
        != (
            &expected.caldav_url,
            &expected.caldav_username,
            &expected.workspace,
        )
    {
        return Err("written for another configuration".into());
    }
    let origin = caldav::origin_of(&expected.caldav_url);
    for project in found.calendars.keys() {
        if !crate::support::text::is_uuid(project) {
            return Err(format!("{project:?} is not a project id"));
        }
    }
    for url in found.calendars.values().chain(&found.single_calendar) {
        if caldav::origin_of(url) != origin || !url.ends_with('/') {
            return Err(format!("{url:?} is not a calendar on {origin}"));
        }
    }
    Ok(found)
}

fn write(path: &Path, contents: &Contents) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec_pretty(contents).map_err(std::io::Error::other)?;
    bytes.push(b'\n');
    crate::support::atomic_file::write(path, &bytes, 0o644)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROJECT: &str = "8063616e-4508-4635-b20d-f71dd7c779d3";

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "calplanebot-cache-test-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn load(path: &Path) -> CalendarCache {
        CalendarCache::load(Some(path), "https://dav.example/", "bot", "acme")
    }

    #[test]
    fn what_is_saved_is_loaded_back() {
        let dir = temp_dir("roundtrip");
        let path = dir.join("sub").join("calendars.json");
        let mut cache = load(&path);
        assert_eq!(cache.calendar(PROJECT), None);
        cache.set(PROJECT, "https://dav.example/bot/plane-x/");
        cache.save();
        let again = load(&path);
        assert_eq!(
            again.calendar(PROJECT),
            Some("https://dav.example/bot/plane-x/")
        );
        assert_eq!(again.calendars(), vec!["https://dav.example/bot/plane-x/"]);
        let leftovers: Vec<_> = std::fs::read_dir(dir.join("sub"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "no temp file is left: {leftovers:?}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_cache_of_another_configuration_or_server_is_ignored() {
        let dir = temp_dir("foreign");
        let path = dir.join("calendars.json");
        let mut cache = load(&path);
        cache.set(PROJECT, "https://dav.example/bot/plane-x/");
        cache.save();
        let other_user = CalendarCache::load(Some(&path), "https://dav.example/", "eve", "acme");
        assert_eq!(other_user.calendar(PROJECT), None);

        let planted = serde_json::json!({
            "version": 1, "caldav_url": "https://dav.example/", "caldav_username": "bot",
            "workspace": "acme", "calendars": {PROJECT: "https://evil.example/steal/"}
        });
        std::fs::write(&path, planted.to_string()).unwrap();
        assert_eq!(load(&path).calendar(PROJECT), None);

        for garbage in ["", "{", "[1,2]", "{\"version\": 99}"] {
            std::fs::write(&path, garbage).unwrap();
            assert_eq!(load(&path).calendar(PROJECT), None, "{garbage:?}");
        }
        std::fs::write(&path, vec![b' '; (MAX_SIZE + 10) as usize]).unwrap();
        assert_eq!(load(&path).calendar(PROJECT), None);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_plane_page_size_is_remembered_for_its_plane_only() {
        let dir = temp_dir("per-page");
        let path = dir.join("calendars.json");
        let plane = "https://plane.example";
        let mut cache = load(&path);
        assert_eq!(cache.plane_per_page(plane), None);
        cache.set_plane_per_page(plane, 100);
        cache.clear();
        cache.save();
        let mut again = load(&path);
        assert_eq!(again.plane_per_page(plane), Some(100), "clear() keeps it");
        assert_eq!(again.plane_per_page("https://other.example"), None);
        // Setting what is already there writes nothing.
        again.set_plane_per_page(plane, 100);
        assert!(!again.dirty);

        // Only the two sizes calplanebot asks for are taken from the file.
        let written = |per_page: serde_json::Value| {
            let file = serde_json::json!({
                "version": 1, "caldav_url": "https://dav.example/", "caldav_username": "bot",
                "workspace": "acme", "calendars": {},
                "plane_url": plane, "plane_per_page": per_page
            });
            std::fs::write(&path, file.to_string()).unwrap();
            load(&path).plane_per_page(plane)
        };
        assert_eq!(written(1000.into()), Some(1000));
        for ignored in [0, 50, 101, 5000] {
            assert_eq!(written(ignored.into()), None, "{ignored}");
        }
        // A value of the wrong type makes the file unreadable as a whole, as any other field.
        assert_eq!(written("100".into()), None);
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_cache_written_before_the_plane_fields_still_loads() {
        let dir = temp_dir("old");
        let path = dir.join("calendars.json");
        let old = serde_json::json!({
            "version": 1, "caldav_url": "https://dav.example/", "caldav_username": "bot",
            "workspace": "acme", "calendars": {PROJECT: "https://dav.example/bot/plane-x/"}
        });
        std::fs::write(&path, old.to_string()).unwrap();
        let cache = load(&path);
        assert_eq!(
            cache.calendar(PROJECT),
            Some("https://dav.example/bot/plane-x/")
        );
        assert_eq!(cache.plane_per_page(""), None);
        // Without a remembered page size, the file keeps its old shape.
        let mut cache = cache;
        cache.set(PROJECT, "https://dav.example/bot/plane-y/");
        cache.save();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.contains("plane_"), "{text}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn no_path_means_no_cache_and_no_file() {
        let mut cache = CalendarCache::load(None, "https://dav.example/", "bot", "acme");
        cache.set(PROJECT, "https://dav.example/bot/plane-x/");
        cache.save();
        assert_eq!(
            cache.calendar(PROJECT),
            Some("https://dav.example/bot/plane-x/")
        );
    }

    #[test]
    fn an_unwritable_cache_is_only_a_warning() {
        let dir = temp_dir("unwritable");
        let blocker = dir.join("file");
        std::fs::write(&blocker, "x").unwrap();
        let mut cache = load(&blocker.join("calendars.json"));
        cache.set(PROJECT, "https://dav.example/bot/plane-x/");
        cache.save();
        assert!(cache.dirty, "still unsaved");
        std::fs::remove_dir_all(dir).unwrap();
    }
}
