//! The Plane snapshot: what the last runs read of each project — every work item's fingerprint
//! (`plane::fingerprint`: its change time, dates and state) and the dated issues as they were
//! mapped — so that a run asks each project the cheap probe and reads in full only a project
//! in which something changed.
//!
//! It only saves Plane's work; it is never a source of truth. A project is taken from the
//! snapshot only when the probe finds exactly the recorded work items with exactly their
//! recorded fingerprints. Every project is read in full again at least once per
//! `CALPLANEBOT_FULL_LISTING_EVERY` (one setting for both snapshots): what Plane changes without
//! touching a work item (a state, label or member renamed) shows then, and at once through the
//! webhook. A snapshot that is missing, unreadable, of another format, version, Plane,
//! workspace or API key, or that does not hold together, is ignored as a whole. Deleting it
//! changes only the cost of the next run.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::Secret;
use crate::plane::{Issue, ProjectIssues};

/// What the file says it is, so no other JSON is ever taken for a Plane snapshot.
const FORMAT: &str = "calplanebot plane snapshot";
const VERSION: u32 = 1;
/// Largest snapshot read: 100,000 work items with long descriptions.
const MAX_SIZE: u64 = 256 * 1024 * 1024;

/// What the snapshot file holds.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
struct Contents {
    format: String,
    version: u32,
    /// The configuration it was taken for: another Plane, workspace or key (which may see
    /// other work items) finds nothing here.
    plane_url: String,
    workspace: String,
    /// SHA-256 of the API key (keys are random: the hash reveals nothing).
    key_hash: String,
    /// Project id → what the last read found there.
    #[serde(default)]
    projects: BTreeMap<String, ProjectRecord>,
}

/// One project as calplanebot last read it in full (and kept true by webhook runs since).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ProjectRecord {
    /// When the full read this record descends from was made (Unix seconds).
    pub read_at: i64,
    /// Each listed work item's fingerprint, by id, dated or not.
    pub fingerprints: BTreeMap<String, String>,
    /// The dated ones, as read.
    pub issues: Vec<Issue>,
}

impl ProjectRecord {
    /// The project's issues as a full read gives them, for a probe that found no change.
    pub fn into_issues(self) -> ProjectIssues {
        let dated: HashSet<&str> = self.issues.iter().map(|i| i.id.as_str()).collect();
        let undated = self
            .fingerprints
            .keys()
            .filter(|id| !dated.contains(id.as_str()))
            .cloned()
            .collect();
        ProjectIssues {
            listed: self.fingerprints.len(),
            fingerprints: self.fingerprints,
            issues: self.issues,
            undated,
            ..ProjectIssues::default()
        }
    }
}

/// Whose snapshot it is.
#[derive(Clone, Copy)]
pub struct Owner<'a> {
    pub plane_url: &'a str,
    pub workspace: &'a str,
    pub key: &'a Secret,
}

#[derive(Debug)]
pub struct PlaneSnapshot {
    path: Option<PathBuf>,
    contents: Contents,
    every: Duration,
    now: i64,
    dirty: bool,
}

impl PlaneSnapshot {
    /// Reads the snapshot at `path` (none without a cache directory, or when `every` is 0:
    /// every run reads every project in full and keeps nothing).
    pub fn load(path: Option<&Path>, owner: Owner<'_>, every: Duration) -> PlaneSnapshot {
        let now = chrono::Utc::now().timestamp();
        let path = path.filter(|_| !every.is_zero());
        let empty = Contents {
            format: FORMAT.to_string(),
            version: VERSION,
            plane_url: owner.plane_url.to_string(),
            workspace: owner.workspace.to_string(),
            key_hash: key_hash(owner.key),
            projects: BTreeMap::new(),
        };
        let contents = match path.map(|p| (p, read(p).and_then(|c| check(c, &empty)))) {
            None | Some((_, Ok(None))) => empty,
            Some((_, Ok(Some(found)))) => found,
            Some((path, Err(why))) => {
                log::warn!(
                    "ignoring the Plane snapshot {}: {why}; every project is read in full",
                    path.display()
                );
                empty
            }
        };
        PlaneSnapshot {
            path: path.map(Path::to_path_buf),
            contents,
            every,
            now,
            dirty: false,
        }
    }

    /// The record of a project, unless it is due for a full read.
    pub fn record(&self, project_id: &str) -> Option<&ProjectRecord> {
        self.contents
            .projects
            .get(project_id)
            .filter(|r| self.fresh(r.read_at))
    }

    fn fresh(&self, at: i64) -> bool {
        self.path.is_some()
            && at <= self.now
            && u64::try_from(self.now - at).is_ok_and(|age| age < self.every.as_secs())
    }

    /// Records a project read in full now, taking its issues; a read that was not complete (an
    /// error, an item that could not be read) is not recorded, so the next run reads it in
    /// full again, and is handed back (`Some`). Without a snapshot file nothing is kept but the
    /// issues, for [`PlaneSnapshot::take`].
    pub fn put(&mut self, project_id: &str, issues: ProjectIssues) -> Option<ProjectIssues> {
        if !issues.complete() || !issues.unreadable.is_empty() {
            self.forget(project_id);
            return Some(issues);
        }
        let record = ProjectRecord {
            read_at: self.now,
            fingerprints: issues.fingerprints,
            issues: issues.issues,
        };
        self.contents
            .projects
            .insert(project_id.to_string(), record);
        self.dirty = true;
        None
    }

    /// Takes a project's issues out of the snapshot (after it was saved).
    pub fn take(&mut self, project_id: &str) -> Option<ProjectIssues> {
        self.contents
            .projects
            .remove(project_id)
            .map(ProjectRecord::into_issues)
    }

    pub fn forget(&mut self, project_id: &str) {
        if self.contents.projects.remove(project_id).is_some() {
            self.dirty = true;
        }
    }

    /// Drops the records of projects no longer listed.
    pub fn retain(&mut self, keep: impl Fn(&str) -> bool) {
        let before = self.contents.projects.len();
        self.contents.projects.retain(|id, _| keep(id));
        self.dirty |= self.contents.projects.len() != before;
    }

    /// What a webhook run read of one work item by id: its fingerprint and its issue (`None`
    /// when it has no date), or, with no fingerprint, that it is gone (404). The project's
    /// record stays as old as its last full read.
    pub fn patch(
        &mut self,
        project_id: &str,
        id: &str,
        fingerprint: Option<&str>,
        issue: Option<&Issue>,
    ) {
        let Some(record) = self.contents.projects.get_mut(project_id) else {
            return;
        };
        record.issues.retain(|i| i.id != id);
        match fingerprint {
            Some(print) => {
                record
                    .fingerprints
                    .insert(id.to_string(), print.to_string());
                record.issues.extend(issue.cloned());
            }
            None => {
                record.fingerprints.remove(id);
            }
        }
        self.dirty = true;
    }

    pub fn save(&mut self) {
        crate::support::atomic_file::save_json(
            self.path.as_deref(),
            &self.contents,
            &mut self.dirty,
            "Plane snapshot",
            "the next run reads every project in full",
        );
    }
}

fn key_hash(key: &Secret) -> String {
    let digest = Sha256::digest(format!("calplanebot plane key\n{}", key.expose()).as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn read(path: &Path) -> Result<Option<Contents>, String> {
    crate::support::atomic_file::read_json(path, MAX_SIZE, "a calplanebot Plane snapshot")
}

/// A snapshot is used only by the configuration that wrote it, and only when it holds together:
/// every record's ids are work item ids, every dated issue is one of its project's listed
/// items and belongs to that project.
fn check(found: Option<Contents>, expected: &Contents) -> Result<Option<Contents>, String> {
    let Some(found) = found else {
        return Ok(None);
    };
    if found.format != FORMAT {
        return Err("not a calplanebot Plane snapshot".into());
    }
    if found.version != VERSION {
        return Err(format!("version {} is not {VERSION}", found.version));
    }
    if (&found.plane_url, &found.workspace, &found.key_hash)
        != (&expected.plane_url, &expected.workspace, &expected.key_hash)
    {
        return Err("written for another Plane, workspace or API key".into());
    }
    for (project, record) in &found.projects {
        let uuid = crate::support::text::is_uuid;
        if !uuid(project) || !record.fingerprints.keys().all(|id| uuid(id)) {
            return Err(format!("a damaged record of project {project:?}"));
        }
        let sound = |issue: &Issue| {
            issue.project_id == *project && record.fingerprints.contains_key(&issue.id)
        };
        if !record.issues.iter().all(sound) {
            return Err(format!("a damaged record of project {project:?}"));
        }
    }
    Ok(Some(found))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROJECT: &str = "a4367ae3-a39b-43ce-a396-f41e50d80049";
    const ITEM: &str = "a95b7742-3c46-4143-b4fc-0e04f6d1c781";
    const OTHER: &str = "0b4f3ce0-5d43-4bd9-8a51-ba1bd4a4a5d5";

    fn issue(id: &str) -> Issue {
        Issue {
            id: id.into(),
            project_id: PROJECT.into(),
            sequence_id: 1,
            name: "Ship".into(),
            description_html: "<p></p>".into(),
            priority: crate::plane::Priority::None,
            state: None,
            labels: vec![],
            assignees: vec![],
            target_date: chrono::NaiveDate::from_ymd_opt(2027, 1, 2).unwrap(),
            start_date: None,
            updated_at: None,
        }
    }

    fn read_issues() -> ProjectIssues {
        ProjectIssues {
            listed: 2,
            fingerprints: [(ITEM.into(), "a".into()), (OTHER.into(), "b".into())].into(),
            issues: vec![issue(ITEM)],
            undated: [OTHER.to_string()].into(),
            ..ProjectIssues::default()
        }
    }

    fn key() -> Secret {
        Secret::new("plane_api_0123456789abcdef")
    }

    fn owner(key: &Secret) -> Owner<'_> {
        Owner {
            plane_url: "https://plane.example",
            workspace: "acme",
            key,
        }
    }

    fn saved(dir: &Path) -> PathBuf {
        let path = dir.join("plane.json");
        let key = key();
        let mut snapshot = PlaneSnapshot::load(Some(&path), owner(&key), Duration::from_secs(3600));
        assert!(snapshot.put(PROJECT, read_issues()).is_none());
        snapshot.save();
        path
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "calplanebot-plane-snapshot-{name}-{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn a_record_gives_back_the_issues_it_was_made_of() {
        let dir = temp_dir("roundtrip");
        let path = saved(&dir);
        let key = key();
        let snapshot = PlaneSnapshot::load(Some(&path), owner(&key), Duration::from_secs(3600));
        let record = snapshot.record(PROJECT).expect("a fresh record");
        let issues = record.clone().into_issues();
        assert_eq!(issues.listed, 2);
        assert_eq!(issues.issues, vec![issue(ITEM)]);
        assert_eq!(issues.undated, read_issues().undated);
        assert_eq!(issues.fingerprints, read_issues().fingerprints);
        assert!(issues.complete());
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn another_key_workspace_or_a_damaged_file_finds_nothing() {
        let dir = temp_dir("owner");
        let path = saved(&dir);
        let other = Secret::new("plane_api_fedcba9876543210");
        let snapshot = PlaneSnapshot::load(Some(&path), owner(&other), Duration::from_secs(3600));
        assert!(snapshot.record(PROJECT).is_none(), "another key");
        let key = key();
        let elsewhere = Owner {
            workspace: "other",
            ..owner(&key)
        };
        let snapshot = PlaneSnapshot::load(Some(&path), elsewhere, Duration::from_secs(3600));
        assert!(snapshot.record(PROJECT).is_none(), "another workspace");

        let text = std::fs::read_to_string(&path).unwrap();
        for damaged in [
            text[..text.len() / 2].to_string(),
            text.replace(PROJECT, "not-a-uuid"),
            text.replace(&format!("\"{OTHER}\":"), "\"x\":"),
            text.replace("\"version\":1", "\"version\":2"),
            "[]".to_string(),
        ] {
            std::fs::write(&path, &damaged).unwrap();
            let snapshot = PlaneSnapshot::load(Some(&path), owner(&key), Duration::from_secs(3600));
            assert!(snapshot.record(PROJECT).is_none(), "{damaged}");
        }
    }

    #[test]
    fn an_issue_of_another_project_or_unlisted_makes_the_record_unusable() {
        let dir = temp_dir("sound");
        let path = saved(&dir);
        let text = std::fs::read_to_string(&path).unwrap();
        let moved = text.replace(
            &format!("\"project_id\":\"{PROJECT}\""),
            &format!("\"project_id\":\"{OTHER}\""),
        );
        assert_ne!(moved, text);
        std::fs::write(&path, moved).unwrap();
        let key = key();
        let snapshot = PlaneSnapshot::load(Some(&path), owner(&key), Duration::from_secs(3600));
        assert!(snapshot.record(PROJECT).is_none());
    }

    #[test]
    fn an_old_or_future_record_is_due_for_a_full_read_and_zero_keeps_nothing() {
        let dir = temp_dir("age");
        let path = saved(&dir);
        let key = key();
        let text = std::fs::read_to_string(&path).unwrap();
        let now = chrono::Utc::now().timestamp();
        let read_at = |at: i64| {
            let re = text.find("\"read_at\":").unwrap() + "\"read_at\":".len();
            let end = re + text[re..].find(',').unwrap();
            format!("{}{at}{}", &text[..re], &text[end..])
        };
        std::fs::write(&path, read_at(now - 7200)).unwrap();
        let snapshot = PlaneSnapshot::load(Some(&path), owner(&key), Duration::from_secs(3600));
        assert!(snapshot.record(PROJECT).is_none(), "older than the period");
        std::fs::write(&path, read_at(now + 7200)).unwrap();
        let snapshot = PlaneSnapshot::load(Some(&path), owner(&key), Duration::from_secs(3600));
        assert!(snapshot.record(PROJECT).is_none(), "from the future");
        std::fs::write(&path, read_at(now - 60)).unwrap();
        let snapshot = PlaneSnapshot::load(Some(&path), owner(&key), Duration::from_secs(3600));
        assert!(snapshot.record(PROJECT).is_some(), "a minute old");
        let snapshot = PlaneSnapshot::load(Some(&path), owner(&key), Duration::ZERO);
        assert!(snapshot.record(PROJECT).is_none(), "turned off");
    }

    #[test]
    fn an_incomplete_read_is_not_recorded() {
        let dir = temp_dir("incomplete");
        let path = saved(&dir);
        let key = key();
        let mut snapshot = PlaneSnapshot::load(Some(&path), owner(&key), Duration::from_secs(3600));
        let mut partial = read_issues();
        partial.unreadable.push((Some(OTHER.into()), "bad".into()));
        let kept = snapshot.put(PROJECT, partial).expect("not recorded");
        assert_eq!(kept.unreadable.len(), 1, "handed back as it was");
        assert!(snapshot.record(PROJECT).is_none());
    }

    #[test]
    fn a_webhook_patch_keeps_the_record_true() {
        let dir = temp_dir("patch");
        let path = saved(&dir);
        let key = key();
        let mut snapshot = PlaneSnapshot::load(Some(&path), owner(&key), Duration::from_secs(3600));
        // OTHER gets a date; ITEM is deleted.
        snapshot.patch(PROJECT, OTHER, Some("c"), Some(&issue(OTHER)));
        snapshot.patch(PROJECT, ITEM, None, None);
        let record = snapshot.record(PROJECT).unwrap();
        assert_eq!(
            record.fingerprints,
            BTreeMap::from([(OTHER.to_string(), "c".to_string())])
        );
        assert_eq!(record.issues, vec![issue(OTHER)]);
        // An undated patch drops the issue and keeps the fingerprint.
        snapshot.patch(PROJECT, OTHER, Some("d"), None);
        let issues = snapshot.take(PROJECT).unwrap();
        assert!(issues.issues.is_empty());
        assert!(issues.undated.contains(OTHER));
    }
}
