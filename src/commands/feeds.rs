//! `calplanebot feeds`: every subscription feed of the configuration, with the URLs an operator
//! hands out. It reads Plane as a `sync` does and writes nothing; the event counts are what
//! the next `sync` writes for the projects it reads completely.
//!
//! This is the one place that prints feed file names: they are bearer secrets, so they go to
//! stdout for the operator, never to the log.

use std::io::Write as _;

use serde::Serialize;

use crate::cli::Format;
use crate::commands::sync::{self, Selection};
use crate::config::Config;
use crate::exit::Status;
use crate::feed;
use crate::reconcile::render::{Report, escape_controls};

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

pub fn run(config: &Config, format: Format) -> Status {
    let Some(settings) = &config.feeds else {
        log::error!(
            "no feeds are configured: set CALPLANEBOT_FEED_DIR and CALPLANEBOT_FEED_SECRET (see the README, \"Subscription feeds\")"
        );
        return Status::Usage;
    };
    let plane = sync::plane_client(config);
    let mut report = Report::default();
    let fetched = match sync::fetch(&Selection::All, &plane, &mut report) {
        Ok(fetched) => fetched,
        Err(abort) => {
            log::error!("{abort}");
            return abort.status();
        }
    };
    let source = match sync::feed_source(config, &plane, &fetched) {
        Ok(source) => source,
        Err(error) => {
            log::error!("{error}");
            return sync::Abort::from(error).status();
        }
    };
    let listed: Vec<Listed> = feed::desired_feeds(&source, &settings.secret)
        .into_iter()
        .map(|f| {
            let file = f.file_name();
            let url = settings
                .base_url
                .as_ref()
                .map(|base| format!("{base}/{file}"));
            let webcal = url.as_ref().map(|url| webcal(url));
            Listed {
                kind: f.kind,
                name: f.name,
                events: f.events.len(),
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
                    feed.kind.name(),
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
