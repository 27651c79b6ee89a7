//! HTTP plumbing shared by the Plane and CalDAV clients: one ureq 3 agent configuration and
//! one way to send a request and read its whole answer.
//!
//! The agent is set up for WebDAV (caldav.md, "ureq 3 traps"): non-standard methods allowed,
//! every status returned as a response, no automatic redirects (ureq would re-send a PROPFIND as
//! a bodiless GET without credentials), and no `Expect: 100-continue` (Radicale never answers it).

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use ureq::http;

/// How long a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// The longest one request may take from start to the last byte of its answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

pub fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .allow_non_standard_methods(true)
        .user_agent(concat!("calplanebot/", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(CONNECT_TIMEOUT))
        .timeout_global(Some(REQUEST_TIMEOUT))
        .build()
        .new_agent()
}

/// A complete answer: the body has been read to the end, so the connection can be reused.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }
}

/// Sends `request` and reads at most `limit` bytes of the answer (a longer answer is an error,
/// so a hostile or broken server cannot make us buffer without bound).
pub fn send(
    agent: &ureq::Agent,
    request: http::Request<Vec<u8>>,
    limit: u64,
) -> Result<Reply, ureq::Error> {
    let response = agent.run(request)?;
    let status = response.status().as_u16();
    let (parts, body) = response.into_parts();
    let body = body.into_with_config().limit(limit).read_to_vec()?;
    Ok(Reply {
        status,
        headers: parts.headers,
        body,
    })
}

/// Counts requests sent, for the run summary and the benchmarks.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}
