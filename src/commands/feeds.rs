//! `calplanebot feeds`: every subscription feed of the configuration, with the URLs an operator
//! hands out; and the deliberate changes of the feed directory that no run makes by itself:
//! `--revoke` (one feed gets a new URL), `--rotate-secret` (every feed does, under the new
//! secret) and `--take-over` (this configuration becomes the directory's writer).
//!
//! Listing reads Plane as a `sync` does and writes nothing; the event counts are what the next
//! `sync` writes for the projects it reads completely. This is the one place that prints feed
//! file names: they are bearer secrets, so they go to stdout for the operator, never to the
//! log.

use std::io::Write as _;

use serde::Serialize;

use crate::cli::Format;
use crate::config::Config;
use crate::engine::{self, options::Selection, run};
use crate::exit::Status;
use crate::feed::{self, FeedDirectory, FeedId, Kind};
use crate::plane::PlaneError;
use crate::reconcile::render::{Report, escape_controls};
use crate::reconcile::views;

/// What `feeds` was asked to change.
#[derive(Clone, Debug, Default)]
pub struct Changes {
    pub revoke: Vec<String>,
    pub rotate_secret: bool,
    pub take_over: bool,
}

/// One feed, as listed.
#[derive(Debug, Serialize)]
struct Listed {
    kind: feed::Kind,
    name: String,
    events: usize,
    file: String,
    url: Option<String>,
    webcal: Option<String>,
}

pub fn run(config: &Config, format: Format, changes: &Changes) -> Status {
    if config.feeds.is_none() {
        log::error!(
            "no feeds are configured: set CALPLANEBOT_FEED_DIR and CALPLANEBOT_FEED_SECRET (see the README, \"Subscription feeds\")"
        );
        return Status::Usage;
    }
    if !changes.revoke.is_empty() {
        revoke(config, &changes.revoke)
    } else if changes.rotate_secret || changes.take_over {
        hand_over(config, changes)
    } else {
        list(config, format)
    }
}

/// `--rotate-secret` and `--take-over`: the directory's record takes this configuration's
/// secret or identity (under the directory's lock); the next `sync` does the rest.
fn hand_over(config: &Config, changes: &Changes) -> Status {
    let access = feed::Access {
        write: true,
        new_secret: changes.rotate_secret,
        new_writer: changes.take_over,
    };
    let dir = match engine::feed_target::open_feed_dir_with(config, access) {
        Ok(Some(dir)) => dir,
        Ok(None) => return Status::Usage,
        Err(status) => return status,
    };
    let mut stdout = std::io::stdout().lock();
    if changes.take_over {
        let _ = writeln!(
            stdout,
            "{}",
            if dir.handed_over {
                "CALPLANEBOT_FEED_DIR is now written by this configuration"
            } else {
                "CALPLANEBOT_FEED_DIR was already written by this configuration: nothing to take over"
            }
        );
    }
    if changes.rotate_secret {
        let _ = writeln!(
            stdout,
            "{}",
            if dir.rotated {
                "CALPLANEBOT_FEED_SECRET is the feed directory's new secret: the next `calplanebot sync` writes every feed under its new URL and then removes the old files; hand out the new URLs (`calplanebot feeds`)"
            } else {
                "CALPLANEBOT_FEED_SECRET is already the feed directory's secret: nothing to rotate"
            }
        );
    }
    Status::Success
}

/// `--revoke FEED...`: every FEED is resolved first (against Plane's projects and members
/// lists); an unknown or ambiguous one changes nothing. Then each gets a new name in the
/// directory's record; the next `sync` writes it there and removes the old file.
fn revoke(config: &Config, specs: &[String]) -> Status {
    let plane = run::plane_client(config);
    let mut feeds = Vec::new();
    for spec in specs {
        match resolve(config, &plane, spec) {
            Ok(feed) => feeds.push(feed),
            Err(Resolve::Usage(message)) => {
                log::error!("--revoke {spec:?}: {message}; nothing was changed");
                return Status::Usage;
            }
            Err(Resolve::Plane(error)) => {
                log::error!("--revoke {spec:?}: {error}; nothing was changed");
                return engine::options::Abort::from(error).status();
            }
        }
    }
    let mut dir = match engine::feed_target::open_feed_dir(config, false) {
        Ok(Some(dir)) => dir,
        Ok(None) => return Status::Usage,
        Err(status) => return status,
    };
    for (feed, _) in &feeds {
        if let Err(error) = dir.revoke(feed) {
            log::error!("{error}; nothing was changed");
            return error.status();
        }
    }
    if let Err(error) = dir.save() {
        log::error!("{error}; nothing was changed");
        return error.status();
    }
    let mut stdout = std::io::stdout().lock();
    for (feed, name) in &feeds {
        let _ = writeln!(
            stdout,
            "revoked the {} feed \"{}\": the next `calplanebot sync` writes it under a new URL (`calplanebot feeds` shows it) and removes the old file",
            feed.kind.name(),
            escape_controls(name)
        );
    }
    Status::Success
}

enum Resolve {
    Usage(String),
    Plane(PlaneError),
}

impl From<PlaneError> for Resolve {
    fn from(error: PlaneError) -> Resolve {
        Resolve::Plane(error)
    }
}

/// Which feed `member:EMAIL_OR_ID`, `project:IDENTIFIER_OR_ID` or `workspace` names, with its
/// calendar name.
fn resolve(
    config: &Config,
    plane: &crate::plane::PlaneClient,
    spec: &str,
) -> Result<(FeedId, String), Resolve> {
    let (kind, which) = spec.split_once(':').unwrap_or((spec, ""));
    let which = which.trim();
    match kind.trim().to_ascii_lowercase().as_str() {
        "workspace" if which.is_empty() || which == config.workspace_slug => Ok((
            FeedId::workspace(&config.workspace_slug),
            feed::calendar_name(&config.workspace_slug),
        )),
        "project" if !which.is_empty() => {
            let projects = plane.projects()?.projects;
            let found: Vec<_> = projects
                .iter()
                .filter(|p| {
                    p.id.eq_ignore_ascii_case(which) || p.identifier.eq_ignore_ascii_case(which)
                })
                .collect();
            match found.as_slice() {
                [project] => Ok((
                    FeedId::project(&project.id),
                    feed::calendar_name(&project.name),
                )),
                [] => Err(Resolve::Usage(format!(
                    "no syncable project of the workspace has the identifier or id {which:?}"
                ))),
                _ => Err(Resolve::Usage(format!(
                    "{which:?} names several projects: give the project's UUID"
                ))),
            }
        }
        "member" if !which.is_empty() => {
            let me = if views::is_me(which) {
                Some(plane.me()?)
            } else {
                None
            };
            let members = match plane.workspace_members() {
                Ok(members) => Some(members),
                Err(PlaneError::Forbidden { .. }) => None,
                Err(error) => return Err(error.into()),
            };
            let directory = views::Directory {
                me: me.as_ref(),
                members: members.as_deref(),
                seen: &[],
            };
            let member = views::resolve(&[which.to_string()], directory)
                .map_err(Resolve::Usage)?
                .pop()
                .ok_or_else(|| Resolve::Usage("names nobody".into()))?;
            let label = members
                .iter()
                .flatten()
                .find(|m| m.id == member.id)
                .map_or(member.display_name.clone(), |m| m.label().to_string());
            Ok((FeedId::member(&member.id), feed::calendar_name(&label)))
        }
        _ => Err(Resolve::Usage(
            "give member:EMAIL_OR_ID, project:IDENTIFIER_OR_ID or workspace".into(),
        )),
    }
}

/// The feeds and their URLs, as the next `sync` writes them.
fn list(config: &Config, format: Format) -> Status {
    let Some(settings) = &config.feeds else {
        return Status::Usage;
    };
    // Checked like a dry run: another writer or secret would list URLs that do not exist.
    let dir: FeedDirectory = match engine::feed_target::open_feed_dir(config, true) {
        Ok(Some(dir)) => dir,
        Ok(None) => return Status::Usage,
        Err(status) => return status,
    };
    let namer = dir.namer();
    let plane = run::plane_client(config);
    let mut report = Report::default();
    // The Plane snapshot saves the full reads of unchanged projects; this command never writes it.
    let fetched = match engine::source::fetch(
        &Selection::All,
        &plane,
        run::load_plane_snapshot(config),
        false,
        config.concurrency,
        &mut report,
    ) {
        Ok(fetched) => fetched,
        Err(abort) => {
            log::error!("{abort}");
            return abort.status();
        }
    };
    let source = match engine::feed_target::feed_source(config, &plane, &fetched) {
        Ok((source, _)) => source,
        Err(error) => {
            log::error!("{error}");
            return engine::options::Abort::from(error).status();
        }
    };
    let listed: Vec<Listed> = feed::wanted_feeds(&source)
        .into_iter()
        .map(|wanted| {
            let file = namer.file_name(&wanted.feed);
            let url = settings
                .base_url
                .as_ref()
                .map(|base| format!("{base}/{file}"));
            let webcal = url.as_ref().map(|url| webcal(url));
            Listed {
                kind: wanted.feed.kind,
                events: feed::events_for(&source, &wanted.feed).len(),
                name: wanted.name,
                file,
                url,
                webcal,
            }
        })
        .collect();
    let mut stdout = std::io::stdout().lock();
    let written = match format {
        Format::Json => serde_json::to_string_pretty(&listed)
            .map(|json| json + "\n")
            .map_err(std::io::Error::other)
            .and_then(|json| stdout.write_all(json.as_bytes())),
        Format::Text => {
            let mut text = String::new();
            for feed in &listed {
                text.push_str(&format!(
                    "{:<9} {} ({} event{})\n",
                    Kind::name(feed.kind),
                    escape_controls(&feed.name),
                    feed.events,
                    if feed.events == 1 { "" } else { "s" }
                ));
                match (&feed.url, &feed.webcal) {
                    (Some(url), Some(webcal)) => {
                        text.push_str(&format!("          {url}\n          {webcal}\n"));
                    }
                    _ => text.push_str(&format!(
                        "          {} (set CALPLANEBOT_FEED_BASE_URL for its URL)\n",
                        feed.file
                    )),
                }
            }
            if !fetched.projects.iter().all(|(_, issues)| issues.complete()) {
                text.push_str(
                    "(some projects could not be read completely: their counts are low)\n",
                );
            }
            stdout.write_all(text.as_bytes())
        }
    };
    match written {
        Ok(()) if report.errors.is_empty() => Status::Success,
        Ok(()) => Status::PartialFailure,
        Err(error) => {
            log::error!("cannot write the list: {error}");
            Status::PartialFailure
        }
    }
}

/// The `webcal://` form of an `http(s)://` URL (what Apple Calendar and Outlook open).
fn webcal(url: &str) -> String {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .unwrap_or(url);
    format!("webcal://{rest}")
}

#[cfg(test)]
mod tests {
    use super::webcal;

    #[test]
    fn webcal_urls_replace_the_scheme() {
        assert_eq!(
            webcal("https://cal.example.com/f/0a.ics"),
            "webcal://cal.example.com/f/0a.ics"
        );
        assert_eq!(
            webcal("http://127.0.0.1:8080/x.ics"),
            "webcal://127.0.0.1:8080/x.ics"
        );
    }
}
