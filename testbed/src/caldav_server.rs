//! One API over the real CalDAV servers the integration tests run against, so every test can
//! run once per server ([`ServerKind::ALL`]) without caring which one it talks to.
//!
//! The servers differ where real deployments differ, and the tests are meant to see it:
//! Radicale speaks plain HTTP/1.0 on `127.0.0.1` with the calendar home at the principal
//! (`/alice/`); Xandikos speaks HTTPS with its own self-signed certificate (a private CA as far
//! as a client is concerned) and HTTP Basic, keeps connections alive and has the home at
//! `/alice/calendars/` (see `shared/caldav.md`).

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::radicale::Radicale;
use crate::xandikos::Xandikos;

/// Which server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ServerKind {
    Radicale,
    Xandikos,
}

impl ServerKind {
    /// Every server the tests run against.
    pub const ALL: [ServerKind; 2] = [ServerKind::Radicale, ServerKind::Xandikos];

    /// `"radicale"` or `"xandikos"`: for test names, messages and file names.
    pub fn name(self) -> &'static str {
        match self {
            ServerKind::Radicale => "radicale",
            ServerKind::Xandikos => "xandikos",
        }
    }
}

impl std::fmt::Display for ServerKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The TLS identity of a server that speaks HTTPS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server's certificate (PEM). It is self-signed, so it is also the CA a client must
    /// trust — the only one, to prove the client does not fall back to public roots.
    pub cert_pem: PathBuf,
    /// The certificate's private key (PEM; PKCS#1 for Xandikos). The TLS proxy presents the
    /// same identity with it.
    pub key_pem: PathBuf,
    /// The DNS name in the certificate: `"localhost"`. URLs use it as their host.
    pub server_name: String,
}

/// A running CalDAV server of either kind, with one user `alice`.
#[derive(Debug)]
pub enum CalDavServer {
    Radicale(Radicale),
    Xandikos(Xandikos),
}

impl CalDavServer {
    /// Installs the server if needed (one shared `.venv`) and starts a fresh instance with
    /// default settings, returning once it answers an authenticated request.
    pub fn start(kind: ServerKind) -> io::Result<CalDavServer> {
        Ok(match kind {
            ServerKind::Radicale => CalDavServer::Radicale(Radicale::start()?),
            ServerKind::Xandikos => CalDavServer::Xandikos(Xandikos::start()?),
        })
    }

    pub fn kind(&self) -> ServerKind {
        match self {
            CalDavServer::Radicale(_) => ServerKind::Radicale,
            CalDavServer::Xandikos(_) => ServerKind::Xandikos,
        }
    }

    /// The origin without a trailing slash: `http://127.0.0.1:PORT` (Radicale) or
    /// `https://localhost:PORT` (Xandikos).
    pub fn url(&self) -> String {
        match self {
            CalDavServer::Radicale(server) => server.url(),
            CalDavServer::Xandikos(server) => server.url(),
        }
    }

    /// Where the server listens (always on `127.0.0.1`): the upstream for a proxy.
    pub fn addr(&self) -> SocketAddr {
        match self {
            CalDavServer::Radicale(server) => server.addr(),
            CalDavServer::Xandikos(server) => server.addr(),
        }
    }

    /// `"alice"`.
    pub fn username(&self) -> &str {
        match self {
            CalDavServer::Radicale(server) => server.username(),
            CalDavServer::Xandikos(server) => server.username(),
        }
    }

    /// Alice's password, different for every instance.
    pub fn password(&self) -> &str {
        match self {
            CalDavServer::Radicale(server) => server.password(),
            CalDavServer::Xandikos(server) => server.password(),
        }
    }

    /// `"/alice/"` on both servers.
    pub fn principal_href(&self) -> String {
        match self {
            CalDavServer::Radicale(server) => format!("/{}/", server.username()),
            CalDavServer::Xandikos(server) => server.principal_href(),
        }
    }

    /// Alice's calendar home: `"/alice/"` (Radicale) or `"/alice/calendars/"` (Xandikos). It
    /// exists and holds no calendar when the server has started.
    pub fn home_href(&self) -> String {
        match self {
            CalDavServer::Radicale(_) => self.principal_href(),
            CalDavServer::Xandikos(server) => server.home_href(),
        }
    }

    /// The TLS identity when the server speaks HTTPS (Xandikos), `None` for plain HTTP.
    pub fn tls(&self) -> Option<&TlsFiles> {
        match self {
            CalDavServer::Radicale(_) => None,
            CalDavServer::Xandikos(server) => Some(server.tls()),
        }
    }

    /// The instance's private temporary directory, removed when the server is dropped (kept if
    /// the thread panics): tests may put lock, cache and metrics files inside.
    pub fn scratch_dir(&self) -> &Path {
        match self {
            CalDavServer::Radicale(server) => server.dir(),
            CalDavServer::Xandikos(server) => server.dir(),
        }
    }

    /// The file the server's stdout and stderr go to.
    pub fn log_path(&self) -> PathBuf {
        match self {
            CalDavServer::Radicale(server) => server.log_path(),
            CalDavServer::Xandikos(server) => server.log_path(),
        }
    }

    /// Whether the server process is running (it may have died on its own).
    pub fn is_running(&mut self) -> bool {
        match self {
            CalDavServer::Radicale(server) => server.is_running(),
            CalDavServer::Xandikos(server) => server.is_running(),
        }
    }

    /// Stops the server; its port then refuses connections. Data is kept for [`restart`].
    ///
    /// [`restart`]: CalDavServer::restart
    pub fn stop(&mut self) {
        match self {
            CalDavServer::Radicale(server) => server.stop(),
            CalDavServer::Xandikos(server) => server.stop(),
        }
    }

    /// Starts the server again on the same port with the same data, credentials and
    /// certificate, returning once it answers.
    pub fn restart(&mut self) -> io::Result<()> {
        match self {
            CalDavServer::Radicale(server) => server.restart(),
            CalDavServer::Xandikos(server) => server.restart(),
        }
    }
}

/// A ureq TLS configuration that trusts `certificate` and nothing else (no public roots).
pub fn trusting_only(certificate: &ureq::tls::Certificate<'static>) -> ureq::tls::TlsConfig {
    ureq::tls::TlsConfig::builder()
        .root_certs(ureq::tls::RootCerts::new_with_certs(std::slice::from_ref(
            certificate,
        )))
        .build()
}
