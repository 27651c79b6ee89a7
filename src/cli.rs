//! The command line (clap derive): the doc comments below are the `--help` text.
//!
//! Every option also reads an environment variable (design.md, "Command line"); secrets never
//! show their values in `--help`. `commands::main` dispatches what was parsed here.
//!
//! Help is a map (issue 21): `calplanebot --help` shows the commands and where settings come
//! from, not the ~40 global settings; each command's `--help` shows its own options first, then
//! the settings under the headings of [`heading`], in that order ([`command`] puts them there,
//! since clap lists headings in the order their first option was added, and the global
//! settings are added to each command last); `calplanebot config` (or `help config`) prints
//! the whole table, generated from these definitions.

use std::path::PathBuf;

use clap::{Args, CommandFactory as _, Parser, Subcommand, ValueEnum};

use crate::exit::HELP_TABLE;

/// The headings the settings are grouped under in each command's `--help`, in this order after
/// the command's own options. Required settings say so in their text: `(required)`, or when
/// they are required.
pub mod heading {
    pub const PLANE: &str = "Plane";
    pub const CALDAV: &str = "CalDAV";
    pub const FEEDS: &str = "Subscription feeds";
    pub const EVENTS: &str = "Events";
    pub const SAFETY: &str = "Safety";
    pub const NETWORK: &str = "Network and cache";
    pub const OUTPUT: &str = "Output";

    /// All of them, in the order shown.
    pub const ORDER: [&str; 7] = [PLANE, CALDAV, FEEDS, EVENTS, SAFETY, NETWORK, OUTPUT];
}

/// What `calplanebot --help` says about settings, after the commands and options.
const SETTINGS_HELP: &str = "\
Settings:
  Every setting is an environment variable and a flag (flags win); a secret can
  come from a file instead (PLANE_API_TOKEN_FILE, CALDAV_PASSWORD_FILE, ...).
  A first run needs six: PLANE_BASE_URL, PLANE_API_TOKEN, PLANE_WORKSPACE_SLUG,
  CALDAV_URL, CALDAV_USERNAME and CALDAV_PASSWORD (for subscription feeds only,
  CALPLANEBOT_FEED_DIR and CALPLANEBOT_FEED_SECRET instead of the CALDAV_* ones).
  Then run `calplanebot check`, then `calplanebot sync --dry-run`.
    calplanebot help config     every setting: variable, flag, default, meaning
    calplanebot help <COMMAND>  one command's options and settings, grouped";

/// Mirror every Plane issue that has a due date into CalDAV calendars as all-day events.
///
/// Plane is the only source of truth: calplanebot creates, updates and deletes the events it
/// owns (one calendar per project, `Plane: <project>`) and never touches any other event.
#[derive(Debug, Parser)]
#[command(
    name = "calplanebot",
    version,
    propagate_version = true,
    help_template = "{before-help}{about-with-newline}\n{usage-heading} {usage}\n\nCommands:\n{subcommands}{after-help}"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    #[command(flatten)]
    pub connection: ConnectionArgs,

    #[command(flatten)]
    pub behaviour: BehaviourArgs,

    /// More log output on stderr (-v: debug, -vv: trace). RUST_LOG overrides it.
    #[arg(short, long, action = clap::ArgAction::Count, global = true, help_heading = heading::OUTPUT)]
    pub verbose: u8,

    /// Less log output on stderr (-q: warnings and errors only, -qq: errors only).
    #[arg(
        short,
        long,
        action = clap::ArgAction::Count,
        global = true,
        conflicts_with = "verbose",
        help_heading = heading::OUTPUT
    )]
    pub quiet: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Fetch the dated issues, compare with the calendars, print the plan and apply it.
    #[command(after_help = HELP_TABLE)]
    Sync(SyncArgs),
    /// Reconcile what one Plane webhook delivery (on stdin) is about.
    ///
    /// One issue, or one project. Run by the `webhook` shim (see README); a delivery whose
    /// signature does not check out against PLANE_WEBHOOK_SECRET is rejected.
    #[command(after_help = HELP_TABLE)]
    Webhook(WebhookArgs),
    /// Check the configuration, Plane, the CalDAV server and the feed directory; writes nothing.
    ///
    /// The configuration line lists every missing or invalid setting; then the Plane token and
    /// workspace, the CalDAV server (reachable, credentials, discovery, a usable calendar home
    /// or calendar) and the feed directory. Exit 0 only when every check passes.
    #[command(after_help = HELP_TABLE)]
    Check,
    /// List the subscription feeds to hand out, with their URLs; or change who writes them.
    ///
    /// Every feed of CALPLANEBOT_FEED_DIR: kind, name, events, and its https:// and webcal://
    /// URLs. Reads Plane, writes nothing. The URLs are secrets:
    /// whoever has one reads that calendar. With an option, changes who writes the directory
    /// or which URLs the next `sync` writes (see README, "Subscription feeds").
    #[command(after_help = HELP_TABLE)]
    Feeds {
        /// Output format.
        #[arg(long, value_enum, default_value_t = Format::Text, help_heading = heading::OUTPUT)]
        format: Format,

        /// Give one feed a new, unguessable URL: member:EMAIL_OR_ID, project:IDENTIFIER_OR_ID
        /// or workspace. The next `sync` writes it under the new name and removes the old file;
        /// every other URL stays. Repeatable.
        #[arg(
            long,
            value_name = "FEED",
            conflicts_with_all = ["rotate_secret", "take_over"],
            help_heading = "Feed URLs"
        )]
        revoke: Vec<String>,

        /// Accept the configured CALPLANEBOT_FEED_SECRET as the directory's new secret: the
        /// next `sync` writes every feed under its new URL, then removes the old files (every
        /// subscription must be renewed).
        #[arg(long, help_heading = "Feed URLs")]
        rotate_secret: bool,

        /// Make this configuration the writer of CALPLANEBOT_FEED_DIR (after its Plane URL,
        /// workspace, key or content settings changed on purpose).
        #[arg(long, help_heading = "Feed URLs")]
        take_over: bool,
    },
    /// Print every setting: variable, flag, default and meaning.
    ///
    /// Grouped under the headings of each command's --help; `calplanebot config` and
    /// `calplanebot help config` print the same table.
    #[command(help_template = "{about-with-newline}\n{usage-heading} {usage}{after-help}")]
    Config,
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
    #[arg(long, help_heading = "Sync")]
    pub dry_run: bool,

    /// Sync only this project (its identifier such as WEB, or its UUID). Repeatable.
    #[arg(long = "project", value_name = "IDENT_OR_ID", help_heading = "Sync")]
    pub projects: Vec<String>,

    /// With --dry-run: exit with status 7 when the plan has changes (like `git diff
    /// --exit-code`), for CI jobs that watch for drift.
    #[arg(long, requires = "dry_run", help_heading = "Sync")]
    pub exit_code: bool,

    /// Output format of the plan and the summary on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text, help_heading = heading::OUTPUT)]
    pub format: Format,

    /// Write the run's metrics for the node-exporter textfile collector to this file
    /// (atomically; the consecutive-failure counter is read back from it).
    #[arg(
        long,
        env = "CALPLANEBOT_METRICS_FILE",
        value_name = "PATH",
        help_heading = heading::OUTPUT
    )]
    pub metrics_file: Option<PathBuf>,

    /// Apply deletions even when the deletion guard would refuse them (a flag only, so it
    /// cannot be left set in an environment file).
    #[arg(long, help_heading = heading::SAFETY)]
    pub force_delete: bool,

    #[command(flatten)]
    pub guard: GuardArgs,
}

/// The deletion guard's limits (shared by `sync` and `webhook`).
#[derive(Debug, Args)]
pub struct GuardArgs {
    /// Deletion guard: refuse all deletions of a run that would delete more than this many
    /// events (or feeds), in total or in one calendar.
    #[arg(
        long,
        env = "CALPLANEBOT_MAX_DELETE",
        value_name = "N",
        default_value_t = 20,
        help_heading = heading::SAFETY
    )]
    pub max_delete: usize,

    /// Deletion guard: refuse all deletions of a run that would delete more than this share of
    /// the events (or feeds) calplanebot owns, in total or in one calendar (when more than 3).
    #[arg(
        long,
        env = "CALPLANEBOT_MAX_DELETE_PERCENT",
        value_name = "PERCENT",
        default_value_t = 50,
        value_parser = clap::value_parser!(u8).range(0..=100),
        help_heading = heading::SAFETY
    )]
    pub max_delete_percent: u8,
}

/// `calplanebot webhook`: one delivery on stdin.
#[derive(Debug, Args)]
pub struct WebhookArgs {
    /// The delivery's X-Plane-Signature header (lowercase hex HMAC-SHA256 of the body).
    #[arg(
        long,
        env = "PLANE_WEBHOOK_SIGNATURE",
        value_name = "HEX",
        help_heading = "Webhook"
    )]
    pub signature: Option<String>,

    /// The delivery's X-Plane-Delivery header, for the log only.
    #[arg(
        long,
        env = "PLANE_WEBHOOK_DELIVERY",
        value_name = "ID",
        help_heading = "Webhook"
    )]
    pub delivery: Option<String>,

    /// Print the plan (with a diff for each update) and write nothing.
    #[arg(long, help_heading = "Webhook")]
    pub dry_run: bool,

    /// UNSAFE: act on deliveries without checking their signature when PLANE_WEBHOOK_SECRET is
    /// not set (anyone who can reach the webhook can then trigger runs). Without it, a run with
    /// no secret rejects every delivery (exit 6).
    #[arg(
        long,
        env = "CALPLANEBOT_WEBHOOK_UNSIGNED",
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::FalseyValueParser::new(),
        help_heading = heading::SAFETY
    )]
    pub allow_unsigned: bool,

    /// Output format of the plan and the summary on stdout.
    #[arg(long, value_enum, default_value_t = Format::Text, help_heading = heading::OUTPUT)]
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
    /// Plane API origin (required), e.g. https://api.plane.so or https://plane.example.com.
    #[arg(
        long,
        env = "PLANE_BASE_URL",
        value_name = "URL",
        global = true,
        help_heading = heading::PLANE
    )]
    pub plane_base_url: Option<String>,

    /// Origin for issue links in events (Plane Cloud: https://app.plane.so)
    /// [default: PLANE_BASE_URL]
    #[arg(
        long,
        env = "PLANE_WEB_URL",
        value_name = "URL",
        global = true,
        help_heading = heading::PLANE
    )]
    pub plane_web_url: Option<String>,

    /// Plane API key (required, here or in PLANE_API_TOKEN_FILE), from Profile settings →
    /// Personal access tokens. Prefer the file: a value on the command line is visible to other
    /// local users.
    #[arg(
        long,
        env = "PLANE_API_TOKEN",
        hide_env_values = true,
        value_name = "TOKEN",
        global = true,
        help_heading = heading::PLANE
    )]
    pub plane_api_token: Option<String>,

    /// File holding the Plane API key (e.g. a systemd credential).
    #[arg(
        long,
        env = "PLANE_API_TOKEN_FILE",
        value_name = "PATH",
        global = true,
        help_heading = heading::PLANE
    )]
    pub plane_api_token_file: Option<PathBuf>,

    /// Plane workspace slug (required): the first path segment of the workspace's URLs.
    #[arg(
        long,
        env = "PLANE_WORKSPACE_SLUG",
        value_name = "SLUG",
        global = true,
        help_heading = heading::PLANE
    )]
    pub plane_workspace_slug: Option<String>,

    /// HMAC secret of the Plane webhook, which `calplanebot webhook` checks every delivery
    /// against (without it, `webhook` rejects every delivery).
    #[arg(
        long,
        env = "PLANE_WEBHOOK_SECRET",
        hide_env_values = true,
        value_name = "SECRET",
        global = true,
        help_heading = heading::PLANE
    )]
    pub plane_webhook_secret: Option<String>,

    /// File holding the HMAC secret of the Plane webhook.
    #[arg(
        long,
        env = "PLANE_WEBHOOK_SECRET_FILE",
        value_name = "PATH",
        global = true,
        help_heading = heading::PLANE
    )]
    pub plane_webhook_secret_file: Option<PathBuf>,

    /// Any URL of the CalDAV service (required unless feeds only): the server,
    /// /.well-known/caldav, the principal, the calendar home, or one calendar (which means
    /// single-calendar mode). README, "Finding your CALDAV_URL", lists common services.
    #[arg(
        long,
        env = "CALDAV_URL",
        value_name = "URL",
        global = true,
        help_heading = heading::CALDAV
    )]
    pub caldav_url: Option<String>,

    /// CalDAV user name (required unless feeds only), for Basic or Digest authentication.
    #[arg(
        long,
        env = "CALDAV_USERNAME",
        value_name = "NAME",
        global = true,
        help_heading = heading::CALDAV
    )]
    pub caldav_username: Option<String>,

    /// CalDAV password or app password (required unless feeds only, here or in
    /// CALDAV_PASSWORD_FILE). Prefer the file: a value on the command line is visible to other
    /// local users.
    #[arg(
        long,
        env = "CALDAV_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD",
        global = true,
        help_heading = heading::CALDAV
    )]
    pub caldav_password: Option<String>,

    /// File holding the CalDAV password (e.g. a systemd credential).
    #[arg(
        long,
        env = "CALDAV_PASSWORD_FILE",
        value_name = "PATH",
        global = true,
        help_heading = heading::CALDAV
    )]
    pub caldav_password_file: Option<PathBuf>,

    /// Single-calendar mode: put every project into this one existing calendar.
    #[arg(
        long,
        env = "CALDAV_CALENDAR_URL",
        value_name = "URL",
        global = true,
        help_heading = heading::CALDAV
    )]
    pub caldav_calendar_url: Option<String>,

    /// Trust only the CA certificates in this PEM file for the CalDAV server (a private CA or
    /// a self-signed certificate). Default (or empty): the system trust store.
    #[arg(
        long,
        env = "CALDAV_CA_FILE",
        value_name = "PATH",
        global = true,
        help_heading = heading::CALDAV
    )]
    pub caldav_ca_file: Option<String>,

    /// Also write subscription feeds (.ics files for Google Calendar, Outlook, Apple Calendar,
    /// Thunderbird) into this existing directory, which a web server serves. With it, the
    /// CalDAV settings are optional: without CALDAV_URL a run writes feeds only.
    #[arg(
        long,
        env = "CALPLANEBOT_FEED_DIR",
        value_name = "DIR",
        global = true,
        help_heading = heading::FEEDS
    )]
    pub feed_dir: Option<PathBuf>,

    /// Secret the feed file names are derived from (required with --feed-dir, here or in
    /// CALPLANEBOT_FEED_SECRET_FILE): at least 32 characters, `openssl rand -hex 32`; another
    /// secret than the directory's is refused until `feeds --rotate-secret`.
    #[arg(
        long,
        env = "CALPLANEBOT_FEED_SECRET",
        hide_env_values = true,
        value_name = "SECRET",
        global = true,
        help_heading = heading::FEEDS
    )]
    pub feed_secret: Option<String>,

    /// File holding the feed secret (e.g. a systemd credential).
    #[arg(
        long,
        env = "CALPLANEBOT_FEED_SECRET_FILE",
        value_name = "PATH",
        global = true,
        help_heading = heading::FEEDS
    )]
    pub feed_secret_file: Option<PathBuf>,

    /// The https:// URL the feed directory is served at, for `calplanebot feeds`.
    #[arg(
        long,
        env = "CALPLANEBOT_FEED_BASE_URL",
        value_name = "URL",
        global = true,
        help_heading = heading::FEEDS
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
        global = true,
        help_heading = heading::NETWORK
    )]
    pub timeout: f64,

    /// Longest time a connection attempt may take.
    #[arg(
        long,
        env = "CALPLANEBOT_CONNECT_TIMEOUT",
        value_name = "SECS",
        default_value_t = 10.0,
        global = true,
        help_heading = heading::NETWORK
    )]
    pub connect_timeout: f64,

    /// How often a failed request that is safe to repeat is retried (connection errors,
    /// timeouts, HTTP 408, 423, 429, 500, 502, 503 and 504).
    #[arg(
        long,
        env = "CALPLANEBOT_RETRIES",
        value_name = "N",
        default_value_t = 3,
        global = true,
        help_heading = heading::NETWORK
    )]
    pub retries: u32,

    /// First wait before a retry; it doubles on each retry (with jitter, at most 30 s), and a
    /// server's Retry-After takes precedence.
    #[arg(
        long,
        env = "CALPLANEBOT_RETRY_DELAY",
        value_name = "SECS",
        default_value_t = 0.5,
        global = true,
        help_heading = heading::NETWORK
    )]
    pub retry_delay: f64,

    /// Lock file that keeps two runs of one configuration apart
    /// [default: $RUNTIME_DIRECTORY, else $XDG_RUNTIME_DIR, else the cache directory; see README]
    #[arg(
        long,
        env = "CALPLANEBOT_LOCK_FILE",
        value_name = "PATH",
        global = true,
        help_heading = heading::SAFETY
    )]
    pub lock_file: Option<PathBuf>,

    /// Directory of the calendar-location cache (a run skips discovery) and of the listing
    /// snapshot (a run skips reading the calendars the server reports unchanged); an empty
    /// value keeps neither: every run discovers and lists every calendar in full
    /// [default: $CACHE_DIRECTORY, else $XDG_CACHE_HOME/calplanebot, else ~/.cache/calplanebot]
    #[arg(
        long,
        env = "CALPLANEBOT_CACHE_DIR",
        value_name = "DIR",
        global = true,
        help_heading = heading::NETWORK
    )]
    pub cache_dir: Option<String>,

    /// How long a run waits for another run's lock before it exits with status 4.
    #[arg(
        long,
        env = "CALPLANEBOT_LOCK_WAIT",
        value_name = "SECS",
        default_value_t = 60.0,
        global = true,
        help_heading = heading::SAFETY
    )]
    pub lock_wait: f64,

    /// How many calendars are read and written at the same time, each over its own pooled
    /// keep-alive connection; writes into one calendar go one after the other, and 1 does
    /// everything in turn. With the listing snapshot, a run in which nothing changed reads no
    /// calendar at all.
    #[arg(
        long,
        env = "CALPLANEBOT_CONCURRENCY",
        value_name = "N",
        default_value_t = 4,
        value_parser = clap::value_parser!(u16).range(1..=32),
        global = true,
        help_heading = heading::NETWORK
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
        global = true,
        help_heading = heading::NETWORK
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
        global = true,
        help_heading = heading::EVENTS
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
        global = true,
        help_heading = heading::EVENTS
    )]
    pub assignees: Vec<String>,

    /// The name of each assignee view's calendar in the calendar home (single-calendar mode
    /// keeps the calendar's own name) [default: "Plane: {display name}"].
    #[arg(
        long,
        env = "CALPLANEBOT_CALENDAR_NAME",
        value_name = "NAME",
        global = true,
        help_heading = heading::EVENTS
    )]
    pub calendar_name: Option<String>,

    /// Allow sending credentials over plain http:// to a host that is not loopback.
    #[arg(
        long,
        env = "CALPLANEBOT_ALLOW_INSECURE_HTTP",
        global = true,
        action = clap::ArgAction::SetTrue,
        value_parser = clap::builder::FalseyValueParser::new(),
        help_heading = heading::SAFETY
    )]
    pub allow_insecure_http: bool,
}

/// The command line as parsed and shown: the derive's definition with the global settings
/// added to each command here (clap would add them last when it builds the command), every
/// command's options in heading order, `--help` and `--version` under Output, the top-level
/// help's options and settings text, and the settings table in `calplanebot help config`.
///
/// Everything is arranged before clap builds the command: a built command looks its options
/// up by position, so moving one afterwards would hand its value to another.
pub fn command() -> clap::Command {
    let command = with_help_and_version(Cli::command());
    let globals: Vec<clap::Arg> = command
        .get_arguments()
        .filter(|arg| arg.is_global_set())
        .cloned()
        .collect();
    let command = command.mut_subcommands(|mut sub| {
        for global in &globals {
            if !sub
                .get_arguments()
                .any(|arg| arg.get_id() == global.get_id())
            {
                sub = sub.arg(global.clone());
            }
        }
        order_by_heading(with_help_and_version(sub).next_line_help(true))
    });
    let table = settings_table(&command);
    let options = top_level_options(&command);
    command
        .after_help(format!("{options}\n\n{SETTINGS_HELP}\n\n{HELP_TABLE}"))
        .mut_subcommand("config", |config| config.after_help(table))
}

/// `-h, --help` and `-V, --version` as clap makes them, but under Output (clap adds its own
/// last, under no heading).
fn with_help_and_version(command: clap::Command) -> clap::Command {
    command
        .disable_help_flag(true)
        .disable_version_flag(true)
        .arg(
            clap::Arg::new("help")
                .short('h')
                .long("help")
                .action(clap::ArgAction::Help)
                .help("Print help")
                .help_heading(heading::OUTPUT),
        )
        .arg(
            clap::Arg::new("version")
                .short('V')
                .long("version")
                .action(clap::ArgAction::Version)
                .help("Print version")
                .help_heading(heading::OUTPUT),
        )
}

/// Moves the options of each heading of [`heading::ORDER`] to the end, heading by heading:
/// clap shows headings in the order their first option was added.
fn order_by_heading(mut command: clap::Command) -> clap::Command {
    for heading in heading::ORDER {
        let ids: Vec<clap::Id> = command
            .get_arguments()
            .filter(|arg| arg.get_help_heading() == Some(heading))
            .map(|arg| arg.get_id().clone())
            .collect();
        for id in ids {
            command = command.mut_arg(id, |arg| arg);
        }
    }
    command
}

/// The top level's own options (-v, -q, -h, -V), one line each: its help shows no settings.
fn top_level_options(command: &clap::Command) -> String {
    let options: Vec<(String, String)> = command
        .get_arguments()
        .filter(|arg| arg.get_env().is_none() && !arg.is_hide_set())
        .map(|arg| {
            let names = match (arg.get_short(), arg.get_long()) {
                (Some(short), Some(long)) => format!("-{short}, --{long}"),
                (None, Some(long)) => format!("    --{long}"),
                (Some(short), None) => format!("-{short}"),
                (None, None) => arg.get_id().to_string(),
            };
            let help = arg.get_help().map(|h| h.to_string()).unwrap_or_default();
            (names, help)
        })
        .collect();
    let width = options.iter().map(|(n, _)| n.len()).max().unwrap_or(0);
    let mut text = String::from("Options:");
    for (names, help) in options {
        text.push_str(&format!("\n  {names:width$}  {help}"));
    }
    text
}

/// Every setting (every option with an environment variable, of every command) under its
/// heading: variable, flag, default, the commands that read it when not all do, and its help.
/// `calplanebot config` prints it; `calplanebot help config` shows it.
pub fn settings_table(command: &clap::Command) -> String {
    // (heading, variable, flag, default, commands, help), each setting once.
    let mut settings: Vec<(String, String, String, String, Vec<String>, String)> = Vec::new();
    let commands = std::iter::once(command).chain(command.get_subcommands());
    for (index, cmd) in commands.enumerate() {
        for arg in cmd.get_arguments() {
            let Some(variable) = arg.get_env().and_then(|v| v.to_str()) else {
                continue;
            };
            if let Some(seen) = settings.iter_mut().find(|s| s.1 == variable) {
                if index > 0 && !arg.is_global_set() {
                    seen.4.push(cmd.get_name().to_string());
                }
                continue;
            }
            let flag = match (arg.get_long(), arg.get_value_names()) {
                (Some(long), Some([value, ..])) if arg.get_action().takes_values() => {
                    format!("--{long} <{value}>")
                }
                (Some(long), _) => format!("--{long}"),
                (None, _) => String::new(),
            };
            let default = if !arg.get_action().takes_values() {
                String::new() // a flag's default is "not given"
            } else {
                arg.get_default_values()
                    .iter()
                    .map(|v| v.to_string_lossy())
                    .collect::<Vec<_>>()
                    .join(",")
            };
            let commands = if index > 0 && !arg.is_global_set() {
                vec![cmd.get_name().to_string()]
            } else {
                Vec::new()
            };
            settings.push((
                arg.get_help_heading().unwrap_or("Other").to_string(),
                variable.to_string(),
                flag,
                default,
                commands,
                arg.get_help().map(|h| h.to_string()).unwrap_or_default(),
            ));
        }
    }
    settings.push((
        heading::OUTPUT.to_string(),
        "RUST_LOG".to_string(),
        "-v, -q".to_string(),
        String::new(),
        Vec::new(),
        "Log filter on stderr, e.g. `debug` or `calplanebot=trace` (overrides -v and -q); the \
         HTTP crates stay at warn whatever it says."
            .to_string(),
    ));
    let mut headings: Vec<String> = heading::ORDER.iter().map(|h| h.to_string()).collect();
    // A command's own headings (Webhook) before Output, which ends the table as it ends --help.
    for setting in &settings {
        if !headings.contains(&setting.0) {
            headings.insert(headings.len() - 1, setting.0.clone());
        }
    }
    let mut text = wrap(
        "Every setting is an environment variable and a flag (flags win); a secret can come \
         from a file instead (its _FILE variable). `(required)` marks what a run needs; a \
         first run needs six (see `calplanebot --help`).",
        0,
        92,
    );
    for heading in headings {
        let mut rows = settings.iter().filter(|s| s.0 == heading).peekable();
        if rows.peek().is_none() {
            continue;
        }
        text.push_str(&format!("\n{heading}:\n"));
        for (_, variable, flag, default, commands, help) in rows {
            let mut line = format!("  {variable}  {flag}");
            if !default.is_empty() {
                line.push_str(&format!("  [default: {default}]"));
            }
            if !commands.is_empty() {
                line.push_str(&format!("  ({} only)", commands.join(", ")));
            }
            text.push_str(&line);
            text.push('\n');
            text.push_str(&wrap(help, 6, 92));
        }
    }
    text
}

/// `text` as lines of at most `width` columns, each indented by `indent` spaces.
fn wrap(text: &str, indent: usize, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && indent + line.len() + 1 + word.len() > width {
            out.push_str(&format!("{:indent$}{line}\n", ""));
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        out.push_str(&format!("{:indent$}{line}\n", ""));
    }
    out
}

/// The man page: clap_mangen's sections plus an ENVIRONMENT section listing every variable
/// (clap_mangen does not show `env`), in the order of `--help`.
pub fn man_page(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    let command = command();
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
        let message = crate::support::text::escape_controls(&message);
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

#[cfg(test)]
mod tests {
    use clap::FromArgMatches as _;

    use super::*;

    fn parse(args: &[&str]) -> Cli {
        let matches = command()
            .try_get_matches_from(std::iter::once("calplanebot").chain(args.iter().copied()))
            .unwrap();
        Cli::from_arg_matches(&matches).unwrap()
    }

    #[test]
    fn the_arranged_command_is_valid() {
        command().debug_assert();
    }

    /// Arranging the options must not change what they parse into: a built command looks its
    /// options up by position, and moving one after the build once handed --metrics-file's
    /// value to --plane-web-url.
    #[test]
    fn every_option_lands_in_its_own_field_before_or_after_the_command() {
        let cli = parse(&[
            "--plane-web-url",
            "https://web.example.com",
            "sync",
            "--metrics-file",
            "/tmp/m.prom",
            "--dry-run",
            "--max-delete",
            "7",
            "--caldav-url",
            "https://dav.example.com/",
            "-v",
            "--span",
            "start-to-due",
        ]);
        let Command::Sync(sync) = &cli.command else {
            panic!("{:?}", cli.command)
        };
        assert_eq!(sync.metrics_file.as_deref(), Some("/tmp/m.prom".as_ref()));
        assert!(sync.dry_run && !sync.force_delete);
        assert_eq!(sync.guard.max_delete, 7);
        assert_eq!(
            cli.connection.plane_web_url.as_deref(),
            Some("https://web.example.com")
        );
        assert_eq!(
            cli.connection.caldav_url.as_deref(),
            Some("https://dav.example.com/")
        );
        assert_eq!(cli.verbose, 1);
        assert_eq!(cli.behaviour.span, SpanArg::StartToDue);
        assert!(matches!(parse(&["config"]).command, Command::Config));
    }

    #[test]
    fn wrap_breaks_at_the_width_and_indents() {
        assert_eq!(wrap("aaa bbb ccc", 2, 9), "  aaa bbb\n  ccc\n");
        assert_eq!(wrap("", 2, 9), "");
    }
}
