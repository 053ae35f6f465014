use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

// An explicit `about`: a bare `about` would print the crate description, which describes
// the crate to its developers instead of the program to its users.
#[derive(Debug, Parser)]
#[command(
    name = "tend",
    version,
    about = "Tend: IT service management processes as code"
)]
pub struct Cli {
    /// Log more: -v debug, -vv trace. The default level is info for `serve` and warn for
    /// the other commands; `RUST_LOG` overrides both.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Start the server: REST API, web console and health check.
    Serve(ServeArgs),
    /// Check a definitions directory and print every error.
    Validate(DirArgs),
    /// Run the test cases beside every rule script.
    TestRules(DirArgs),
    /// Manage users: add, list, set a password, disable and enable.
    #[command(subcommand)]
    User(UserCommand),
    /// Manage API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Check the journal's hash chains.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Import labelled helpdesk tickets (CSV) through the incident command path.
    ImportTickets(ImportArgs),
    /// Import inventory documents into the CMDB: FusionInventory/GLPI agent XML (plain or
    /// zlib), GLPI agent JSON or `lshw -json` output.
    ImportInventory(ImportInventoryArgs),
    /// Replay a ServiceNow incident event log (CSV) through the incident definition.
    ReplayLog(ReplayArgs),
    /// Print a process's state machine as a Mermaid state diagram.
    Graph(GraphArgs),
    /// Run a record through a sequence of commands and print every effect; writes nothing.
    Simulate(SimulateArgs),
    /// Ask a running server to reload its definitions directory.
    Reload(ReloadArgs),
    /// Move open records from older definition versions to the current one.
    MigrateRecords(MigrateArgs),
    /// Run the journals of stored records through a changed definition set and report
    /// where their path would differ; writes nothing.
    Replay(JournalReplayArgs),
    /// Compute business time with a calendar of the definitions directory.
    #[command(subcommand)]
    Calendar(CalendarCommand),
    /// Show when the scheduled jobs of the definitions directory run.
    #[command(subcommand)]
    Schedule(ScheduleCommand),
    /// Take one raw message on standard input, as an MTA's pipe delivers it, and exit with
    /// a sysexits code: 0 when stored (processed or quarantined), 65 when the mailbox
    /// rejects it (the MTA bounces it with the reason), 75 when the database is
    /// unreachable, so that the MTA tries again.
    MailGateway(MailGatewayArgs),
    /// Look at and retry inbound mail that was kept aside.
    #[command(subcommand)]
    Mail(MailCommand),
    /// Check the CMDB against what discovery reports.
    #[command(subcommand)]
    Cmdb(CmdbCommand),
}

#[derive(Debug, Subcommand)]
pub enum CmdbCommand {
    /// List CIs not seen by discovery, people-owned attributes that agents report
    /// differently, CIs with no relationship and recent import conflicts.
    Audit(CmdbAuditArgs),
}

#[derive(Debug, Args)]
pub struct CmdbAuditArgs {
    /// Days without a sighting after which a discovered CI is stale [default: the
    /// `stale_after_days` of workflows/cmdb/audit.yaml].
    #[arg(long)]
    pub stale_days: Option<u32>,
    /// Most CIs listed per kind of finding.
    #[arg(long, default_value_t = 200)]
    pub limit: u64,
    /// Open one task per kind of finding (once a day) in the audit's task process.
    #[arg(long)]
    pub open_tasks: bool,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub definitions: DefinitionArgs,
}

#[derive(Debug, Args)]
pub struct MailGatewayArgs {
    /// Mailbox of workflows/mailboxes/ that the message was delivered to.
    #[arg(long)]
    pub mailbox: String,
    /// Seconds to wait for the database (or the server, with --url) before exiting with
    /// 75, so that the MTA delivers the message again later.
    #[arg(long, default_value_t = 30)]
    pub connect_timeout: u64,
    /// Hand the message to a running `tend serve` at this URL (such as
    /// http://127.0.0.1:8080) instead of opening the database. Each message then costs one
    /// HTTP request instead of loading the definitions, which is faster on a busy mailbox.
    #[arg(long, env = "TEND_URL")]
    pub url: Option<String>,
    /// File with the API token of a `mail_gateway` user, for --url. The token can also be
    /// given in the environment as TEND_MAIL_TOKEN.
    #[arg(long, requires = "url")]
    pub token_file: Option<std::path::PathBuf>,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub definitions: DefinitionArgs,
}

#[derive(Debug, Args)]
pub struct MailPollArgs {
    /// Mailbox of workflows/mailboxes/ whose `imap:` section names the folder.
    #[arg(long)]
    pub mailbox: String,
    /// Take the folder's unprocessed messages once, print what became of each and exit;
    /// without it the command polls until stopped, as `tend serve` does.
    #[arg(long)]
    pub once: bool,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub definitions: DefinitionArgs,
}

#[derive(Debug, Subcommand)]
pub enum MailCommand {
    /// Fetch a mailbox's messages from its IMAP folder (its `imap:` section).
    Poll(MailPollArgs),
    /// List the quarantined messages, and those stored but never processed, newest first.
    Quarantine {
        /// Most messages listed.
        #[arg(long, default_value_t = 100)]
        limit: u64,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Process a quarantined or rejected message again, for example after its mailbox was
    /// fixed; the sender's rate limit does not apply.
    Retry {
        /// Id of the stored message, as `tend mail quarantine` lists it.
        id: i64,
        #[command(flatten)]
        store: StoreArgs,
        #[command(flatten)]
        definitions: DefinitionArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum ScheduleCommand {
    /// Print the next runs of a scheduled job, one RFC 3339 instant a line, with the
    /// job's UTC offset.
    Next(ScheduleNextArgs),
}

#[derive(Debug, Args)]
pub struct ScheduleNextArgs {
    /// Name of a scheduled job of workflows/schedules/.
    pub name: String,
    /// Instant after which runs are listed, in RFC 3339; now when left out.
    #[arg(long)]
    pub after: Option<String>,
    /// How many runs to list.
    #[arg(long, default_value_t = 5)]
    pub count: usize,
    #[command(flatten)]
    pub definitions: DefinitionArgs,
}

#[derive(Debug, Subcommand)]
pub enum CalendarCommand {
    /// Print the instant at which a business duration from a start has passed, in RFC 3339
    /// with the calendar's UTC offset.
    Due(CalendarDueArgs),
    /// Print the business time between two instants.
    Elapsed(CalendarElapsedArgs),
}

#[derive(Debug, Args)]
pub struct CalendarDueArgs {
    /// Name of a calendar of workflows/calendars/, e.g. business-hours.
    #[arg(long)]
    pub calendar: String,
    /// Start instant in RFC 3339, e.g. 2026-12-04T16:00:00+01:00.
    #[arg(long)]
    pub start: String,
    /// Business duration: a number and a unit m, h, d or w, e.g. 4h.
    #[arg(long)]
    pub duration: String,
    /// A period not counted, as START/END in RFC 3339; repeat for several.
    #[arg(long = "pause")]
    pub pauses: Vec<String>,
    #[command(flatten)]
    pub definitions: DefinitionArgs,
}

#[derive(Debug, Args)]
pub struct CalendarElapsedArgs {
    /// Name of a calendar of workflows/calendars/, e.g. business-hours.
    #[arg(long)]
    pub calendar: String,
    /// Start instant in RFC 3339.
    #[arg(long)]
    pub from: String,
    /// End instant in RFC 3339.
    #[arg(long)]
    pub to: String,
    #[command(flatten)]
    pub definitions: DefinitionArgs,
}

/// Location of the data.
#[derive(Debug, Clone, Args)]
pub struct StoreArgs {
    /// Directory of the embedded SQLite database.
    #[arg(long, env = "TEND_DATA_DIR", default_value = "./tend-data")]
    pub data_dir: PathBuf,
    /// Database URL (`postgres://...` or `sqlite://...`); overrides --data-dir.
    #[arg(long, env = "TEND_DATABASE_URL")]
    pub database_url: Option<String>,
}

impl StoreArgs {
    pub fn url(&self) -> String {
        match &self.database_url {
            Some(url) => url.clone(),
            None => tend_store::Store::sqlite_url(&self.data_dir),
        }
    }
}

#[derive(Debug, Clone, Args)]
pub struct DefinitionArgs {
    /// Directory that contains workflows/ and rules/.
    #[arg(long, env = "TEND_DEFINITIONS", default_value = ".")]
    pub definitions: PathBuf,
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, env = "TEND_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub definitions: DefinitionArgs,
    /// Mark session cookies `Secure` (serve behind HTTPS).
    #[arg(long, env = "TEND_SECURE_COOKIES")]
    pub secure_cookies: bool,
    /// Seconds between audit checkpoints of every record's journal head; 0 turns them off.
    /// A checkpoint lets `tend audit verify` detect deleted records and cut journals.
    #[arg(long, env = "TEND_CHECKPOINT_SECONDS", default_value_t = 3600)]
    pub checkpoint_seconds: u64,
    /// Seconds between passes that fire the timers now due (SLA thresholds, automatic
    /// transitions, approval deadlines) and resume follow-on work of stopped servers; 0
    /// turns them off.
    #[arg(long, env = "TEND_TIMER_SECONDS", default_value_t = 30)]
    pub timer_seconds: u64,
    /// Seconds between passes that run the cron schedules now due
    /// (workflows/schedules/); 0 turns the schedules off. A due time more than twice this
    /// interval (and at least a minute) ago counts as missed.
    #[arg(long, env = "TEND_SCHEDULE_SECONDS", default_value_t = 30)]
    pub schedule_seconds: u64,
    /// Plugin action runs this node runs at once; 0 leaves queued runs to other nodes.
    #[arg(long, env = "TEND_ACTION_WORKERS", default_value_t = 4)]
    pub action_workers: usize,
    /// Directory of the plugins: the configuration of each built-in plugin
    /// (`script/allowed.yaml`, `recovery/recovery.yaml`, `deployment/deployment.yaml`,
    /// `webhook/webhook.yaml`, `remote/remote.yaml`) and the `*/plugin.yaml` manifests of
    /// external plugins. Defaults to `plugins` in the definitions directory.
    #[arg(long, env = "TEND_PLUGINS_DIR")]
    pub plugins_dir: Option<PathBuf>,
    /// Do not reload the definitions when files under workflows/ or rules/ change; reload
    /// with `tend reload` instead.
    #[arg(long, env = "TEND_NO_WATCH")]
    pub no_watch: bool,
    /// SMTP server that notifications are sent through: smtp://host:port (plain),
    /// smtp://host:port?tls=required (STARTTLS) or smtps://host:port (TLS), with
    /// user:password@ before the host for authentication. Without it, notifications stay
    /// queued.
    #[arg(long, env = "TEND_SMTP_URL")]
    pub smtp_url: Option<String>,
    /// Base URL of the web console as people reach it, for the links in notifications.
    /// Defaults to http:// and the listen address.
    #[arg(long, env = "TEND_CONSOLE_URL")]
    pub console_url: Option<String>,
    /// Seconds between passes that send the queued notifications now due.
    #[arg(long, env = "TEND_MAIL_SECONDS", default_value_t = 2)]
    pub mail_seconds: u64,
    /// Do not fetch mail from the IMAP folders of the mailboxes' `imap:` sections.
    #[arg(long, env = "TEND_NO_IMAP")]
    pub no_imap: bool,
}

#[derive(Debug, Args)]
pub struct DirArgs {
    /// Definitions directory: the one that contains workflows/ and rules/.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct SimulateArgs {
    /// Process of the record, e.g. incident.
    pub process: String,
    /// YAML file with the starting record: title, description, fields and optionally the
    /// creating actor (name, roles).
    #[arg(long)]
    pub record: PathBuf,
    /// YAML list of commands, each with `command:` (transition, update, comment or reply)
    /// and its arguments, optionally `actor:` and `after:` (time that passes first, e.g. 2d).
    /// A step `approval: approve` or `approval: reject` (with `reason:`) ends the pending
    /// approval round.
    #[arg(long)]
    pub steps: PathBuf,
    #[command(flatten)]
    pub definitions: DefinitionArgs,
}

#[derive(Debug, Args)]
pub struct GraphArgs {
    /// Process to draw, e.g. incident.
    pub process: String,
    #[command(flatten)]
    pub definitions: DefinitionArgs,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; the password is read from standard input.
    Add {
        /// Login name: 1 to 100 characters without spaces or colons.
        name: String,
        /// Role: requester, technician, process_owner, admin, mail_gateway or alert_source (repeat for
        /// several).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// Email address of the user.
        #[arg(long)]
        email: Option<String>,
        /// Read the password (at least 8 characters) from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// List every user with roles, email and whether the account is active.
    List {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Replace a user's password with one read from standard input, for example to recover
    /// a lost admin password.
    SetPassword {
        /// Login name of the user.
        name: String,
        /// Read the new password (at least 8 characters) from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Disable a user: login, sessions and API tokens are refused until it is enabled again.
    Disable {
        /// Login name of the user.
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Enable a disabled user again.
    Enable {
        /// Login name of the user.
        name: String,
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Set how a user gets notifications: their language and whether they hear of their
    /// own changes.
    Notifications {
        /// Login name of the user.
        name: String,
        /// Language of the user's notifications, such as `fr` or `de-CH`, used when a
        /// template has a variant for it; `default` clears it.
        #[arg(long)]
        locale: Option<String>,
        /// Whether the user gets notifications about changes they made themselves.
        #[arg(long)]
        own_changes: Option<bool>,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for a user and print it once.
    Create {
        /// Login name of the user the token acts for.
        name: String,
        /// Label that names what the token is for.
        #[arg(long, default_value = "cli")]
        label: String,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute every record's hash chain and compare with the last checkpoint.
    Verify {
        #[command(flatten)]
        store: StoreArgs,
    },
    /// Record a checkpoint of every record's journal head.
    Checkpoint {
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// CSV with columns title, body, category, urgency, impact (extra columns are ignored).
    pub file: PathBuf,
    /// YAML that maps the file's label codes to Tend values (example: docs/import/).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Number of tickets created at the same time.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub definitions: DefinitionArgs,
}

#[derive(Debug, Args)]
pub struct ImportInventoryArgs {
    /// Inventory files, or `-` for standard input.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Show what the import would change without writing anything.
    #[arg(long)]
    pub dry_run: bool,
    /// Print the full report of each file as JSON instead of a summary.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub definitions: DefinitionArgs,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// ServiceNow incident event log CSV (one row per update).
    pub file: PathBuf,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub definitions: DefinitionArgs,
}

#[derive(Debug, Args)]
pub struct ReloadArgs {
    /// Base URL of the running server (plain HTTP).
    #[arg(long, env = "TEND_SERVER", default_value = "http://127.0.0.1:8080")]
    pub server: String,
    /// API token of a process owner or admin (`tend token create NAME`).
    #[arg(long, env = "TEND_TOKEN", hide_env_values = true)]
    pub token: String,
}

#[derive(Debug, Args)]
pub struct MigrateArgs {
    /// Move only records of this process, e.g. incident.
    #[arg(long)]
    pub process: Option<String>,
    /// Report what would move and what does not fit, and write nothing.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub store: StoreArgs,
    #[command(flatten)]
    pub definitions: DefinitionArgs,
}

#[derive(Debug, Args)]
pub struct JournalReplayArgs {
    /// Directory with the changed definitions: the one that contains workflows/ and rules/.
    #[arg(long)]
    pub definitions: PathBuf,
    /// Replay only records of this process, e.g. incident.
    #[arg(long)]
    pub process: Option<String>,
    /// Replay at most this many records, oldest first.
    #[arg(long)]
    pub limit: Option<u64>,
    #[command(flatten)]
    pub store: StoreArgs,
}
