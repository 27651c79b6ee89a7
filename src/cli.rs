//! The command line (clap derive): the doc comments below are the `--help` text.
//!
//! Every option also reads an environment variable (design.md, "Command line"); secrets never
//! show their values in `--help`. `commands::main` dispatches what was parsed here.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::exit::HELP_TABLE;

/// Mirror every Plane issue that has a due date into CalDAV calendars as all-day events.
///
/// Plane is the only source of truth: calplanebot creates, updates and deletes the events it
/// owns (one calendar per project, `Plane: <project>`) and never touches any other event.
#[derive(Debug, Parser)]
#[command(name = "calplanebot", version, after_help = HELP_TABLE, propagate_version = true)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    #[command(flatten)]
    pub connection: ConnectionArgs,

    #[command(flatten)]
    pub behaviour: BehaviourArgs,

    /// More log output on stderr (-v: debug, -vv: trace). RUST_LOG overrides it.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    /// Less log output on stderr (-q: warnings and errors only, -qq: errors only).
    #[arg(short, long, action = clap::ArgAction::Count, global = true, conflicts_with = "verbose")]
    pub quiet: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch the dated issues, compare with the calendars, print the plan and apply it.
    #[command(after_help = HELP_TABLE)]
    Sync(SyncArgs),
    /// Reconcile what one Plane webhook delivery (read from stdin) is about: one issue, or one
    /// project. Run by the `webhook` shim (see README); a delivery whose signature does not
    /// check out against PLANE_WEBHOOK_SECRET is rejected.
    #[command(after_help = HELP_TABLE)]
    Webhook(WebhookArgs),
    /// Check the configuration, the Plane token and workspace, and the CalDAV server (reachable,
    /// credentials, discovery, a usable calendar home or calendar); writes nothing. Exit 0 only
    /// when every check passes.
    #[command(after_help = HELP_TABLE)]
    Check,
    /// List every subscription feed (CALPLANEBOT_FEED_DIR) to hand out: kind, name, events, and
    /// its https:// and webcal:// URLs. Reads Plane, writes nothing. The URLs are secrets:
    /// whoever has one reads that calendar. With an option, changes who writes the directory
    /// or which URLs the next `sync` writes (see README, "Subscription feeds").
    #[command(after_help = HELP_TABLE)]
    Feeds {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,

        /// Give one feed a new, unguessable URL: member:EMAIL_OR_ID, project:IDENTIFIER_OR_ID
        /// or workspace. The next `sync` writes it under the new name and removes the old file;
        /// every other URL stays. Repeatable.
        #[arg(long, value_name = "FEED", conflicts_with_all = ["rotate_secret", "take_over"])]
        revoke: Vec<String>,

        /// Accept the configured CALPLANEBOT_FEED_SECRET as the directory's new secret: the
        /// next `sync` writes every feed under its new URL, then removes the old files (every
        /// subscription must be renewed).
        #[arg(long)]
        rotate_secret: bool,

        /// Make this configuration the writer of CALPLANEBOT_FEED_DIR (after its Plane URL,
        /// workspace, key or content settings changed on purpose).
        #[arg(long)]
        take_over: bool,
    },
    /// Print a shell completion script (bash, zsh, fish, elvish or powershell) to stdout.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) to stdout, e.g. `calplanebot man > calplanebot.1`.
    Man,
}

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Print the plan (with a diff for each update) and write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Sync only this project (its identifier such as WEB, or its UUID). Repeatable.
    #[arg(long = "project", value_name = "IDENT_OR_ID")]
    pub projects: Vec<String>,

    /// Output format of the plan and the summary on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    /// Apply deletions even when the deletion guard would refuse them.
    #[arg(long)]
    pub force_delete: bool,

    /// With --dry-run: exit with status 7 when the plan has changes (like `git diff
    /// --exit-code`), for CI jobs that watch for drift.
    #[arg(long, requires = "dry_run")]
    pub exit_code: bool,

    /// Write the run's metrics for the node-exporter textfile collector to this file
    /// (atomically; the consecutive-failure counter is read back from it).
    #[arg(long, env = "CALPLANEBOT_METRICS_FILE", value_name = "PATH")]
    pub metrics_file: Option<PathBuf>,

    #[command(flatten)]
    pub guard: GuardArgs,
}

/// The deletion guard's limits (shared by `sync` and `webhook`).
#[derive(Debug, Args)]
pub struct GuardArgs {
    /// Deletion guard: refuse all deletions of a run that would delete more than this many
    /// events, in total or in one calendar.
    #[arg(
        long,
        env = "CALPLANEBOT_MAX_DELETE",
        value_name = "N",
        default_value_t = 20
    )]
    pub max_delete: usize,

    /// Deletion guard: refuse all deletions of a run that would delete more than this share of
    /// the events calplanebot owns, in total or in one calendar (when more than 3 events).
    #[arg(
        long,
        env = "CALPLANEBOT_MAX_DELETE_PERCENT",
        value_name = "PERCENT",
        default_value_t = 50,
        value_parser = clap::value_parser!(u8).range(0..=100)
    )]
    pub max_delete_percent: u8,
}

/// `calplanebot webhook`: one delivery on stdin.
#[derive(Debug, Args)]
pub struct WebhookArgs {
    /// The delivery's X-Plane-Signature header (lowercase hex HMAC-SHA256 of the body).
    #[arg(long, env = "PLANE_WEBHOOK_SIGNATURE", value_name = "HEX")]
    pub signature: Option<String>,

    /// The delivery's X-Plane-Delivery header, for the log only.
    #[arg(long, env = "PLANE_WEBHOOK_DELIVERY", value_name = "ID")]
    pub delivery: Option<String>,

    /// UNSAFE: act on deliveries without checking their signature when PLANE_WEBHOOK_SECRET is
    /// not set (anyone who can reach the webhook can then trigger runs). Without it, a run with
    /// no secret rejects every delivery (exit 6).
    #[arg(
        long,
        env = "CALPLANEBOT_WEBHOOK_UNSIGNED",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    pub allow_unsigned: bool,

    /// Print the plan (with a diff for each update) and write nothing.
    #[arg(long)]
    pub dry_run: bool,

    /// Output format of the plan and the summary on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,

    #[command(flatten)]
    pub guard: GuardArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

/// Where Plane and the CalDAV server are, and the credentials for both.
#[derive(Debug, Args)]
pub struct ConnectionArgs {
    /// Plane API origin, e.g. https://api.plane.so or https://plane.example.com
    #[arg(long, env = "PLANE_BASE_URL", value_name = "URL", global = true)]
    pub plane_base_url: Option<String>,

    /// Origin for issue links in events [default: PLANE_BASE_URL]
    #[arg(long, env = "PLANE_WEB_URL", value_name = "URL", global = true)]
    pub plane_web_url: Option<String>,

    /// Plane API key. Prefer PLANE_API_TOKEN_FILE: a command-line value is visible to other
    /// local users.
    #[arg(
        long,
        env = "PLANE_API_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        global = true
    )]
    pub plane_api_token: Option<String>,

    /// File holding the Plane API key (e.g. a systemd credential).
    #[arg(long, env = "PLANE_API_TOKEN_FILE", value_name = "PATH", global = true)]
    pub plane_api_token_file: Option<PathBuf>,

    /// Plane workspace slug (the first path segment of the workspace's URLs).
    #[arg(long, env = "PLANE_WORKSPACE_SLUG", value_name = "SLUG", global = true)]
    pub plane_workspace_slug: Option<String>,

    /// HMAC secret of the Plane webhook.
    #[arg(
        long,
        env = "PLANE_WEBHOOK_SECRET",
        hide_env_values = true,
        value_name = "SECRET",
        global = true
    )]
    pub plane_webhook_secret: Option<String>,

    /// File holding the HMAC secret of the Plane webhook.
    #[arg(
        long,
        env = "PLANE_WEBHOOK_SECRET_FILE",
        value_name = "PATH",
        global = true
    )]
    pub plane_webhook_secret_file: Option<PathBuf>,

    /// CalDAV URL: the server, /.well-known/caldav, the principal, the calendar home, or one
    /// calendar (which means single-calendar mode).
    #[arg(long, env = "CALDAV_URL", value_name = "URL", global = true)]
    pub caldav_url: Option<String>,

    /// CalDAV user name.
    #[arg(long, env = "CALDAV_USERNAME", value_name = "NAME", global = true)]
    pub caldav_username: Option<String>,

    /// CalDAV password. Prefer CALDAV_PASSWORD_FILE: a command-line value is visible to other
    /// local users.
    #[arg(
        long,
        env = "CALDAV_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD",
        global = true
    )]
    pub caldav_password: Option<String>,

    /// File holding the CalDAV password (e.g. a systemd credential).
    #[arg(long, env = "CALDAV_PASSWORD_FILE", value_name = "PATH", global = true)]
    pub caldav_password_file: Option<PathBuf>,

    /// Single-calendar mode: put every project into this one existing calendar.
    #[arg(long, env = "CALDAV_CALENDAR_URL", value_name = "URL", global = true)]
    pub caldav_calendar_url: Option<String>,

    /// Trust only the CA certificates in this PEM file for the CalDAV server (a private CA or
    /// a self-signed certificate). Default (or empty): the system trust store.
    #[arg(long, env = "CALDAV_CA_FILE", value_name = "PATH", global = true)]
    pub caldav_ca_file: Option<String>,

    /// Also write subscription feeds (.ics files for Google Calendar, Outlook, Apple Calendar,
    /// Thunderbird) into this directory, which a web server serves. With it, the CalDAV
    /// settings are optional: without CALDAV_URL a run writes feeds only.
    #[arg(long, env = "CALPLANEBOT_FEED_DIR", value_name = "DIR", global = true)]
    pub feed_dir: Option<PathBuf>,

    /// Secret the feed file names are derived from (unguessable URLs; a new secret revokes
    /// every URL). Required with --feed-dir.
    #[arg(
        long,
        env = "CALPLANEBOT_FEED_SECRET",
        hide_env_values = true,
        value_name = "SECRET",
        global = true
    )]
    pub feed_secret: Option<String>,

    /// File holding the feed secret (e.g. a systemd credential).
    #[arg(
        long,
        env = "CALPLANEBOT_FEED_SECRET_FILE",
        value_name = "PATH",
        global = true
    )]
    pub feed_secret_file: Option<PathBuf>,

    /// The https:// URL the feed directory is served at, for `calplanebot feeds`.
    #[arg(
        long,
        env = "CALPLANEBOT_FEED_BASE_URL",
        value_name = "URL",
        global = true
    )]
    pub feed_base_url: Option<String>,
}

/// How a run behaves towards servers and other runs: timeouts, retries, the lock.
#[derive(Debug, Args)]
pub struct BehaviourArgs {
    /// Longest time one request may take, from connecting to the last byte of the answer.
    #[arg(
        long,
        env = "CALPLANEBOT_TIMEOUT",
        value_name = "SECS",
        default_value_t = 30.0,
        global = true
    )]
    pub timeout: f64,

    /// Longest time a connection attempt may take.
    #[arg(
        long,
        env = "CALPLANEBOT_CONNECT_TIMEOUT",
        value_name = "SECS",
        default_value_t = 10.0,
        global = true
    )]
    pub connect_timeout: f64,

    /// How often a failed request that is safe to repeat is retried (connection errors,
    /// timeouts, HTTP 5xx and 429).
    #[arg(
        long,
        env = "CALPLANEBOT_RETRIES",
        value_name = "N",
        default_value_t = 3,
        global = true
    )]
    pub retries: u32,

    /// First wait before a retry; it doubles on each retry (with jitter, at most 30 s), and a
    /// server's Retry-After takes precedence.
    #[arg(
        long,
        env = "CALPLANEBOT_RETRY_DELAY",
        value_name = "SECS",
        default_value_t = 0.5,
        global = true
    )]
    pub retry_delay: f64,

    /// Lock file that keeps two runs of one configuration apart
    /// [default: $RUNTIME_DIRECTORY, else $XDG_RUNTIME_DIR, else the cache directory; see README]
    #[arg(
        long,
        env = "CALPLANEBOT_LOCK_FILE",
        value_name = "PATH",
        global = true
    )]
    pub lock_file: Option<PathBuf>,

    /// Directory of the small cache of calendar locations that lets a webhook run skip
    /// discovery; an empty value turns the cache off
    /// [default: $CACHE_DIRECTORY, else $XDG_CACHE_HOME/calplanebot, else ~/.cache/calplanebot]
    #[arg(long, env = "CALPLANEBOT_CACHE_DIR", value_name = "DIR", global = true)]
    pub cache_dir: Option<String>,

    /// How long a run waits for another run's lock before it exits with status 4.
    #[arg(
        long,
        env = "CALPLANEBOT_LOCK_WAIT",
        value_name = "SECS",
        default_value_t = 60.0,
        global = true
    )]
    pub lock_wait: f64,

    /// How many CalDAV writes (PUT, DELETE) may be in flight at once, each on its own pooled
    /// keep-alive connection; 1 writes one after the other.
    #[arg(
        long,
        env = "CALPLANEBOT_CONCURRENCY",
        value_name = "N",
        default_value_t = 4,
        value_parser = clap::value_parser!(u16).range(1..=32),
        global = true
    )]
    pub concurrency: u16,

    /// How often a run lists every calendar in full (and discovers the calendar home again)
    /// instead of trusting the listing snapshot where the server reports no change: `90s`,
    /// `30m`, `1h`, `1d`, or seconds; `0` lists in full every run and keeps no snapshot.
    #[arg(
        long,
        env = "CALPLANEBOT_FULL_LISTING_EVERY",
        value_name = "DURATION",
        default_value = "1h",
        value_parser = parse_every,
        global = true
    )]
    pub full_listing_every: std::time::Duration,

    /// Which days an issue's event covers: `due`, its due date; `start-to-due`, from its start
    /// date to its due date inclusive when it has a start date on or before the due date
    /// (else its due date). Feeds follow the same setting.
    #[arg(
        long,
        env = "CALPLANEBOT_SPAN",
        value_enum,
        value_name = "SPAN",
        default_value_t = SpanArg::Due,
        global = true
    )]
    pub span: SpanArg,

    /// Who gets an assignee view: `me` (the API key's user), an e-mail address, a display
    /// name or a member UUID; repeatable (comma-separated in the variable). Each person gets
    /// one calendar of the dated work items assigned to them across the synced projects,
    /// `plane-member-{id}/` in the calendar home; in single-calendar mode all of them together
    /// go into that calendar. Without it: one calendar per project (the team view).
    #[arg(
        long = "assignee",
        env = "CALPLANEBOT_ASSIGNEE",
        value_name = "WHO",
        value_delimiter = ',',
        global = true
    )]
    pub assignees: Vec<String>,

    /// The name of each assignee view's calendar in the calendar home (single-calendar mode
    /// keeps the calendar's own name) [default: "Plane: {display name}"].
    #[arg(
        long,
        env = "CALPLANEBOT_CALENDAR_NAME",
        value_name = "NAME",
        global = true
    )]
    pub calendar_name: Option<String>,

    /// Allow sending credentials over plain http:// to a host that is not loopback.
    #[arg(
        long,
        env = "CALPLANEBOT_ALLOW_INSECURE_HTTP",
        global = true,
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::FalseyValueParser::new()
    )]
    pub allow_insecure_http: bool,
}

/// The man page: clap_mangen's sections plus an ENVIRONMENT section listing every variable
/// (clap_mangen does not show `env`), in the order of `--help`.
pub fn man_page(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let command = <Cli as clap::CommandFactory>::command();
    let man = clap_mangen::Man::new(command.clone());
    man.render_title(out)?;
    man.render_name_section(out)?;
    man.render_synopsis_section(out)?;
    man.render_description_section(out)?;
    man.render_options_section(out)?;
    man.render_subcommands_section(out)?;
    writeln!(out, ".SH ENVIRONMENT")?;
    let mut seen = std::collections::BTreeSet::new();
    let arguments = command
        .get_arguments()
        .chain(command.get_subcommands().flat_map(|c| c.get_arguments()));
    for argument in arguments {
        let Some(variable) = argument.get_env().and_then(|v| v.to_str()) else {
            continue;
        };
        if !seen.insert(variable.to_string()) {
            continue;
        }
        let help = argument
            .get_help()
            .map(|h| h.to_string())
            .unwrap_or_default();
        let flag = argument
            .get_long()
            .map(|l| format!(" (\\fB\\-\\-{}\\fR)", l.replace('-', "\\-")))
            .unwrap_or_default();
        writeln!(
            out,
            ".TP\n\\fB{}\\fR{flag}\n{}",
            roff_text(variable),
            roff_text(&help)
        )?;
    }
    writeln!(
        out,
        ".TP\n\\fBRUST_LOG\\fR\nLog filter on stderr (overrides \\fB\\-v\\fR and \\fB\\-q\\fR)."
    )?;
    man.render_extra_section(out)?;
    man.render_version_section(out)
}

/// Text for a roff paragraph: backslashes and hyphens escaped, no line starting a request.
fn roff_text(text: &str) -> String {
    text.replace('\\', "\\e")
        .replace('-', "\\-")
        .lines()
        .map(|line| {
            if line.starts_with('.') || line.starts_with('\'') {
                format!("\\&{line}")
            } else {
                line.to_string()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Logs go to stderr. `RUST_LOG` overrides `-v`/`-q`, but the HTTP crates stay at `warn`
/// whatever it says: at trace level ureq would log the Authorization header (caldav.md).
pub fn init_logging(verbose: u8, quiet: u8) {
    let default = match (verbose, quiet) {
        (0, 0) => "info",
        (1, _) => "debug",
        (v, _) if v >= 2 => "trace",
        (_, 1) => "warn",
        _ => "error",
    };
    let mut builder = env_logger::Builder::new();
    builder.parse_filters(default);
    if let Ok(filters) = std::env::var("RUST_LOG") {
        builder.parse_filters(&filters);
    }
    for noisy in ["ureq", "ureq_proto", "rustls"] {
        builder.filter_module(noisy, log::LevelFilter::Warn);
    }
    let destination = log_destination();
    crate::support::progress::enable(destination == LogDestination::Terminal && quiet == 0);
    builder.write_style(match destination {
        // The journal colours lines itself; files and pipes get no escape codes.
        LogDestination::Journal | LogDestination::Other => env_logger::WriteStyle::Never,
        LogDestination::Terminal => env_logger::WriteStyle::Auto,
    });
    // Lines carry their time only in a file or a pipe (cron, a log file): the journal stamps
    // them itself, and a person watching a terminal wants short lines. Every message goes
    // through `escape_controls`: names and server messages come from Plane and CalDAV servers,
    // and must not drive the terminal or forge log lines.
    let stamped = destination == LogDestination::Other;
    builder.format(move |buf, record| {
        use std::io::Write as _;
        let style = buf.default_level_style(record.level());
        let message = record.args().to_string();
        let message = crate::reconcile::render::escape_controls(&message);
        if stamped {
            let time = buf.timestamp_seconds();
            writeln!(
                buf,
                "[{time} {style}{:<5}{style:#}] {message}",
                record.level()
            )
        } else {
            writeln!(buf, "[{style}{:<5}{style:#}] {message}", record.level())
        }
    });
    let _ = builder.try_init();
}

#[derive(Debug, PartialEq, Eq)]
enum LogDestination {
    Journal,
    Terminal,
    Other,
}

/// Where stderr goes. systemd sets `JOURNAL_STREAM` to the `device:inode` of the journal
/// stream it connected; it counts only if stderr is still that stream (a child whose stderr
/// was redirected inherits the variable).
fn log_destination() -> LogDestination {
    use std::io::IsTerminal as _;
    use std::os::unix::fs::MetadataExt as _;
    let stderr = std::io::stderr();
    if let Some((device, inode)) = std::env::var("JOURNAL_STREAM").ok().and_then(|v| {
        v.split_once(':')
            .map(|(d, i)| (d.to_string(), i.to_string()))
    }) && let (Ok(device), Ok(inode)) = (device.parse::<u64>(), inode.parse::<u64>())
        && let Ok(fd) = std::os::fd::AsFd::as_fd(&stderr).try_clone_to_owned()
        && let Ok(meta) = std::fs::File::from(fd).metadata()
        && meta.dev() == device
        && meta.ino() == inode
    {
        return LogDestination::Journal;
    }
    if stderr.is_terminal() {
        LogDestination::Terminal
    } else {
        LogDestination::Other
    }
}

/// The values of `--span`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum SpanArg {
    Due,
    StartToDue,
}

/// `90s`, `30m`, `1h`, `1d`, or a whole number of seconds.
fn parse_every(text: &str) -> Result<std::time::Duration, String> {
    let text = text.trim();
    let (number, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, "s"),
    };
    let scale = match unit.trim() {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("{text:?}: expected e.g. 90s, 30m, 1h, 1d or 0")),
    };
    number
        .parse::<u64>()
        .ok()
        .and_then(|n| n.checked_mul(scale))
        .filter(|&secs| secs <= 365 * 86_400)
        .map(std::time::Duration::from_secs)
        .ok_or_else(|| format!("{text:?}: expected e.g. 90s, 30m, 1h, 1d or 0 (at most a year)"))
}
