use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// Tend: IT service management processes as code.
#[derive(Debug, Parser)]
#[command(name = "tend", version, about)]
pub struct Cli {
    /// Log more (repeat for even more); `RUST_LOG` overrides this.
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
    /// Manage users.
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
    /// Replay a ServiceNow incident event log (CSV) through the incident definition.
    ReplayLog(ReplayArgs),
}

/// Where the data lives.
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
    /// Directory that holds workflows/ and rules/.
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
}

#[derive(Debug, Args)]
pub struct DirArgs {
    /// Directory that holds workflows/ and rules/.
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user; the password is read from standard input.
    Add {
        name: String,
        /// Role: requester, technician, process_owner or admin (repeat for several).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        #[arg(long)]
        email: Option<String>,
        /// Read the password from the first line of standard input.
        #[arg(long, required = true)]
        password_stdin: bool,
        #[command(flatten)]
        store: StoreArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create an API token for a user and print it once.
    Create {
        name: String,
        /// A label that says what the token is for.
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
    /// YAML that maps the file's label codes to Tend values (see docs/import).
    #[arg(long)]
    pub labels: Option<PathBuf>,
    /// Commands in flight at once.
    #[arg(long, default_value_t = 16)]
    pub concurrency: usize,
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
