//! HTTP plumbing shared by the Plane and CalDAV clients: one ureq 3 agent configuration and
//! one way to send a request and read its whole answer.
//!
//! The agent is set up for WebDAV (caldav.md, "ureq 3 traps"): non-standard methods allowed,
//! every status returned as a response, no automatic redirects (ureq would re-send a PROPFIND as
//! a bodiless GET without credentials), and no `Expect: 100-continue` (Radicale never answers it).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use ureq::http;

/// Timeouts and retries, for both servers, and whether plain HTTP may carry credentials.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Network {
    pub timeout: Duration,
    pub connect_timeout: Duration,
    pub retries: u32,
    pub retry_delay: Duration,
    /// `--allow-insecure-http`: plain `http://` to a host that is not loopback may carry
    /// credentials. The configured URLs are checked once here ([`Config::from_args`]); the
    /// CalDAV client applies the same rule to every URL a request goes to, since a server can
    /// hand back URLs of its own (a redirect, an href).
    pub allow_insecure_http: bool,
}

impl Default for Network {
    fn default() -> Network {
        Network {
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            retries: 3,
            retry_delay: Duration::from_millis(500),
            allow_insecure_http: false,
        }
    }
}

/// The longest wait between two attempts (a server's `Retry-After` may ask for more, up to
/// [`MAX_RETRY_AFTER`]).
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// The longest `Retry-After` honoured; a longer one is cut to this.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

/// The agent for one server. Connections are pooled and kept alive where the server allows.
/// QUIRK: Radicale's built-in server speaks HTTP/1.0 and closes every connection; ureq then
/// opens a new one per request, which costs a TCP handshake but nothing else.
///
/// TLS certificates are checked against the system trust store
/// (rustls-platform-verifier, which honours `SSL_CERT_FILE` and `SSL_CERT_DIR`), or only
/// against `roots` when given (`CALDAV_CA_FILE`).
pub fn agent(network: &Network, roots: Option<&[Vec<u8>]>) -> ureq::Agent {
    use ureq::tls::{Certificate, RootCerts, TlsConfig};
    let roots = match roots {
        Some(ders) => RootCerts::new_with_certs(
            &ders
                .iter()
                .map(|der| Certificate::from_der(der).to_owned())
                .collect::<Vec<_>>(),
        ),
        None => RootCerts::PlatformVerifier,
    };
    ureq::Agent::config_builder()
        .tls_config(TlsConfig::builder().root_certs(roots).build())
        .http_status_as_error(false)
        .max_redirects(0)
        .allow_non_standard_methods(true)
        .user_agent(concat!("calplanebot/", env!("CARGO_PKG_VERSION")))
        .timeout_connect(Some(network.connect_timeout))
        .timeout_global(Some(network.timeout))
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

/// A request that got no complete answer.
#[derive(Debug, thiserror::Error)]
#[error("{source}")]
pub struct SendError {
    pub source: ureq::Error,
    /// The status line and headers had arrived: the server is reachable, its answer broke off
    /// (or was too large). False when it never answered at all.
    pub answered: bool,
}

impl SendError {
    /// The server could not be reached or did not answer at all: after all attempts, the run
    /// gives up on it. An answer that broke off only fails that request.
    pub fn is_unreachable(&self) -> bool {
        !self.answered && is_transient_error(&self.source)
    }
}

/// Sends `request` and reads at most `limit` bytes of the answer (a longer answer is an error,
/// so a hostile or broken server cannot make us buffer without bound).
pub fn send(
    agent: &ureq::Agent,
    request: http::Request<Vec<u8>>,
    limit: u64,
) -> Result<Reply, SendError> {
    let response = agent.run(request).map_err(|source| SendError {
        source,
        answered: false,
    })?;
    let status = response.status().as_u16();
    let (parts, body) = response.into_parts();
    let body = body
        .into_with_config()
        .limit(limit)
        .read_to_vec()
        .map_err(|source| SendError {
            source,
            answered: true,
        })?;
    Ok(Reply {
        status,
        headers: parts.headers,
        body,
    })
}

/// Statuses worth another attempt: the server is busy, restarting or overloaded. QUIRK: 423
/// Locked is what Xandikos answers while another client writes into the same calendar.
pub fn is_transient_status(status: u16) -> bool {
    matches!(status, 408 | 423 | 429 | 500 | 502 | 503 | 504)
}

/// Errors worth another attempt: the connection failed, broke or timed out.
pub fn is_transient_error(error: &ureq::Error) -> bool {
    !is_certificate_error(error)
        && matches!(
            error,
            ureq::Error::Io(_)
                | ureq::Error::Timeout(_)
                | ureq::Error::ConnectionFailed
                | ureq::Error::HostNotFound
                | ureq::Error::Protocol(_)
                | ureq::Error::Decompress(..)
        )
}

/// The server's TLS certificate could not be verified (unknown issuer, wrong name, expired):
/// retrying cannot help, and the operator has to act.
pub fn is_certificate_error(error: &ureq::Error) -> bool {
    match error {
        ureq::Error::Rustls(e) => is_certificate_problem(e),
        ureq::Error::Io(e) => e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .is_some_and(is_certificate_problem),
        _ => false,
    }
}

fn is_certificate_problem(error: &rustls::Error) -> bool {
    match error {
        rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented => true,
        // rustls-platform-verifier found no CA certificate on the system at all.
        rustls::Error::General(message) => message.contains("CA certificates"),
        _ => false,
    }
}

/// Statuses that, after all attempts, mean the server (or the gateway in front of it) is down.
pub fn is_unavailable_status(status: u16) -> bool {
    matches!(status, 502..=504)
}

/// `Retry-After` in seconds (RFC 9110 §10.2.3; the HTTP-date form is not used by Plane or the
/// CalDAV servers seen, and is ignored).
pub fn retry_after(reply: &Reply) -> Option<Duration> {
    reply
        .header("Retry-After")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(|s| Duration::from_secs(s).min(MAX_RETRY_AFTER))
}

/// How a client retries: capped exponential backoff with full jitter, after
/// <https://aws.amazon.com/blogs/architecture/exponential-backoff-and-jitter/>.
#[derive(Debug)]
pub struct Retry {
    pub retries: u32,
    pub base: Duration,
    /// The wait after a 429 that names no `Retry-After` (Plane once sent none).
    pub default_rate_limit_wait: Duration,
    seed: AtomicU64,
}

impl Retry {
    pub fn new(network: &Network, default_rate_limit_wait: Duration) -> Retry {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Retry {
            retries: network.retries,
            base: network.retry_delay,
            default_rate_limit_wait,
            seed: AtomicU64::new(nanos | 1),
        }
    }

    /// The wait before attempt `attempt + 1` (attempt counts from 0).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let ceiling = self
            .base
            .saturating_mul(1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX))
            .min(MAX_BACKOFF);
        // xorshift64: jitter needs no cryptographic randomness.
        let mut x = self.seed.load(Ordering::Relaxed);
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.seed.store(x, Ordering::Relaxed);
        let share = (x >> 11) as f64 / (1u64 << 53) as f64;
        // Half fixed, half random: never (almost) zero, never above the ceiling.
        ceiling.mul_f64(0.5 + share / 2.0)
    }

    /// The wait before retrying after `reply`, honouring `Retry-After`.
    pub fn wait_after(&self, reply: &Reply, attempt: u32) -> Duration {
        match (retry_after(reply), reply.status) {
            (Some(wait), _) => wait,
            (None, 429) => self.default_rate_limit_wait,
            (None, _) => self.backoff(attempt),
        }
    }

    /// Sends the request `build` makes (once per attempt) until it gets an answer that is not
    /// transient, or the attempts run out. Only for requests that are safe to repeat: reads,
    /// and writes under a precondition (a repeated conditional write that already took effect
    /// answers 412 or 404, which the caller handles).
    pub fn send(
        &self,
        agent: &ureq::Agent,
        build: &dyn Fn() -> http::Request<Vec<u8>>,
        limit: u64,
        counter: &Counter,
        what: &dyn std::fmt::Display,
    ) -> Result<Reply, SendError> {
        self.send_observed(agent, build, limit, counter, what, &|_| {})
    }

    /// [`Retry::send`], showing `observe` every attempt's answer (`None`: no answer) before
    /// anything waits: how a client paces several threads by what each of them hears.
    pub fn send_observed(
        &self,
        agent: &ureq::Agent,
        build: &dyn Fn() -> http::Request<Vec<u8>>,
        limit: u64,
        counter: &Counter,
        what: &dyn std::fmt::Display,
        observe: &dyn Fn(Option<&Reply>),
    ) -> Result<Reply, SendError> {
        let mut attempt = 0;
        loop {
            counter.add();
            let outcome = send(agent, build(), limit);
            observe(outcome.as_ref().ok());
            let wait = match &outcome {
                Ok(reply) if is_transient_status(reply.status) && attempt < self.retries => {
                    let wait = self.wait_after(reply, attempt);
                    log::warn!(
                        "{what}: HTTP {}; retrying in {:.1} s ({} of {})",
                        reply.status,
                        wait.as_secs_f64(),
                        attempt + 1,
                        self.retries
                    );
                    wait
                }
                Err(error) if is_transient_error(&error.source) && attempt < self.retries => {
                    let wait = self.backoff(attempt);
                    log::warn!(
                        "{what}: {error}; retrying in {:.1} s ({} of {})",
                        wait.as_secs_f64(),
                        attempt + 1,
                        self.retries
                    );
                    wait
                }
                _ => return outcome,
            };
            std::thread::sleep(wait);
            attempt += 1;
        }
    }
}

/// Remembers that a server stopped answering, so a run gives up on it after one request has
/// used all its attempts instead of waiting out every remaining request.
#[derive(Debug, Default)]
pub struct Breaker(AtomicBool);

impl Breaker {
    pub fn trip(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_open(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn retry(base_ms: u64) -> Retry {
        let network = Network {
            retry_delay: Duration::from_millis(base_ms),
            ..Network::default()
        };
        Retry::new(&network, Duration::from_secs(60))
    }

    fn reply(status: u16, retry_after: Option<&str>) -> Reply {
        let mut headers = http::HeaderMap::new();
        if let Some(value) = retry_after {
            headers.insert("Retry-After", value.parse().unwrap());
        }
        Reply {
            status,
            headers,
            body: Vec::new(),
        }
    }

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        let retry = retry(100);
        for attempt in 0..12 {
            let ceiling = Duration::from_millis(100 * (1 << attempt)).min(MAX_BACKOFF);
            let wait = retry.backoff(attempt);
            assert!(
                wait >= ceiling / 2 && wait <= ceiling,
                "{attempt}: {wait:?}"
            );
        }
        let waits: std::collections::HashSet<_> = (0..20).map(|_| retry.backoff(3)).collect();
        assert!(waits.len() > 1, "jitter varies the waits");
    }

    #[test]
    fn retry_after_wins_and_a_bare_429_waits_the_default() {
        let retry = retry(100);
        assert_eq!(
            retry.wait_after(&reply(503, Some("7")), 0),
            Duration::from_secs(7)
        );
        assert_eq!(
            retry.wait_after(&reply(429, Some("99999")), 0),
            MAX_RETRY_AFTER
        );
        assert_eq!(
            retry.wait_after(&reply(429, None), 0),
            Duration::from_secs(60)
        );
        assert!(retry.wait_after(&reply(500, Some("soon")), 0) <= Duration::from_millis(100));
    }

    #[test]
    fn only_transient_statuses_are_retried() {
        for status in [408, 429, 500, 502, 503, 504] {
            assert!(is_transient_status(status), "{status}");
        }
        for status in [200, 207, 400, 401, 403, 404, 409, 412, 501, 507] {
            assert!(!is_transient_status(status), "{status}");
        }
        assert!(!is_transient_error(&ureq::Error::BodyExceedsLimit(1)));
        assert!(is_transient_error(&ureq::Error::ConnectionFailed));
    }
}
