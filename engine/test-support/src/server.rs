//! A Tend server on a free port of 127.0.0.1 over a fresh database, with the definitions
//! and rules of this repository.
//!
//! [`TestServer::in_process`] serves `tend_api` on a task of the test's runtime with the
//! real store and rule host: fast, and the store is at hand. [`TestServer::binary`] starts
//! the real `tend serve` as a child process and is killed when the server is dropped.
//! Both wait until `/healthz` returns 200 before they return.
//!
//! Child servers can also crash and restart: [`TestServer::kill`] stops one with SIGKILL and
//! returns its database, on which [`TestServer::binary_on_shared`] starts the next one.
//! Several child servers may serve one database at once, as the nodes of a cluster do.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use tend_api::{AppState, Commands, Engine};
use tend_domain::Role;
use tend_scripting::RuleHost;
use tend_workflow::DefinitionSet;
use tokio::io::{AsyncBufReadExt as _, BufReader};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::binary::{run_tend, tend_binary, tend_command};
use crate::client::ApiClient;
use crate::database::{Backend, TestDatabase};
use crate::repo_root;

/// Password of every user that tests add; the server only stores its hash.
pub const TEST_PASSWORD: &str = "correct horse battery staple";

/// How long a server may take to return 200 on `/healthz` after it starts.
const STARTUP_TIMEOUT: Duration = Duration::from_secs(60);

/// Pause between two readiness probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(25);

/// The line `tend serve` prints once it listens, before the address.
const LISTENING_PREFIX: &str = "Tend is listening on http://";

/// The line `tend serve` prints on first start, before the admin's one-time password.
const ADMIN_PASSWORD_PREFIX: &str = "Created the first user `admin` with password: ";

/// A running server and the database it serves.
pub struct TestServer {
    base_url: String,
    // Declared before `database` so that the server stops before its database is dropped.
    mode: Mode,
    // Shared by the servers on one database, so the last server dropped drops the database.
    database: Arc<TestDatabase>,
}

enum Mode {
    InProcess {
        commands: Commands,
        shutdown: Option<oneshot::Sender<()>>,
        task: JoinHandle<std::io::Result<()>>,
    },
    Binary {
        child: tokio::process::Child,
        admin_password: Option<String>,
        log: PathBuf,
    },
}

/// A user that a test added, with an API token and a client that sends it.
#[derive(Debug, Clone)]
pub struct TestUser {
    pub name: String,
    pub password: String,
    pub token: String,
    pub client: ApiClient,
}

/// Loads the process definitions and rules of this repository, as `tend serve` does.
pub fn load_definitions() -> anyhow::Result<(DefinitionSet, Arc<RuleHost>)> {
    let root = repo_root();
    let host = Arc::new(RuleHost::new(&root));
    let set = tend_workflow::load_dir(&root, host.as_ref()).map_err(|error| {
        anyhow::anyhow!(
            "the definitions in {} failed to load:\n{error}",
            root.display()
        )
    })?;
    Ok((set, host))
}

impl TestServer {
    /// Serves the API in this process over a fresh database of `backend`.
    pub async fn in_process(backend: Backend) -> anyhow::Result<TestServer> {
        let database = TestDatabase::create(backend).await?;
        TestServer::in_process_on(database).await
    }

    /// Serves the API in this process over `database`.
    pub async fn in_process_on(database: TestDatabase) -> anyhow::Result<TestServer> {
        TestServer::in_process_with(database, tend_plugin_api::PluginRegistry::new()).await
    }

    /// Serves the API in this process over `database`, with `plugins` for records to run.
    pub async fn in_process_with(
        database: TestDatabase,
        plugins: tend_plugin_api::PluginRegistry,
    ) -> anyhow::Result<TestServer> {
        let (set, host) = load_definitions()?;
        let store = database.connect().await?;
        let commands = Commands::new(store, Arc::new(Engine::new(set, host))).with_plugins(plugins);
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .context("failed to listen on a free port of 127.0.0.1")?;
        let address = listener.local_addr()?;
        let (shutdown, stop) = oneshot::channel::<()>();
        let state = AppState::new(commands.clone(), false);
        let task = tokio::spawn(tend_api::serve(listener, state, async move {
            // A dropped sender stops the server too.
            let _ = stop.await;
        }));
        let mut server = TestServer {
            base_url: format!("http://{address}"),
            mode: Mode::InProcess {
                commands,
                shutdown: Some(shutdown),
                task,
            },
            database: Arc::new(database),
        };
        server.wait_until_ready().await?;
        Ok(server)
    }

    /// Starts `tend serve` over a fresh database of `backend`.
    pub async fn binary(backend: Backend) -> anyhow::Result<TestServer> {
        let database = TestDatabase::create(backend).await?;
        TestServer::binary_on(database).await
    }

    /// Starts `tend serve --listen 127.0.0.1:0` over `database`, reads the address (and the
    /// admin password on a first start) from its standard output, and writes its log to
    /// `tend-serve.log` in the data directory.
    pub async fn binary_on(database: TestDatabase) -> anyhow::Result<TestServer> {
        TestServer::binary_with(database, &[]).await
    }

    /// Like [`TestServer::binary_on`], with `extra` arguments after those of `serve`.
    pub async fn binary_with(database: TestDatabase, extra: &[&str]) -> anyhow::Result<TestServer> {
        TestServer::binary_with_definitions(database, &repo_root(), extra).await
    }

    /// Like [`TestServer::binary_with`], serving the definitions in `definitions` (a
    /// directory with `workflows/` and `rules/`) instead of those of this repository.
    pub async fn binary_with_definitions(
        database: TestDatabase,
        definitions: &std::path::Path,
        extra: &[&str],
    ) -> anyhow::Result<TestServer> {
        TestServer::binary_on_shared(Arc::new(database), definitions, extra).await
    }

    /// Like [`TestServer::binary_with_definitions`], over a database that other servers may
    /// serve too: one that [`TestServer::kill`] or [`TestServer::shared_database`] returned.
    /// The first server on a database logs to `tend-serve.log` in its data directory, the
    /// next ones to `tend-serve-2.log`, `tend-serve-3.log` and so on.
    pub async fn binary_on_shared(
        database: Arc<TestDatabase>,
        definitions: &std::path::Path,
        extra: &[&str],
    ) -> anyhow::Result<TestServer> {
        let binary = tend_binary()?;
        let (log, log_file) = create_log(database.data_dir())?;
        let mut command = tend_command(&binary);
        command
            .args(["serve", "--listen", "127.0.0.1:0", "--definitions"])
            .arg(definitions)
            .args(database.store_args())
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log_file))
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("failed to start {} serve", binary.display()))?;
        let stdout = child
            .stdout
            .take()
            .context("the server has no standard output")?;
        let mut lines = BufReader::new(stdout).lines();

        let mut admin_password = None;
        let deadline = Instant::now() + STARTUP_TIMEOUT;
        let address = loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            let line = match tokio::time::timeout(remaining, lines.next_line()).await {
                Ok(Ok(Some(line))) => line,
                Ok(Ok(None)) | Ok(Err(_)) => {
                    let status = child.wait().await?;
                    anyhow::bail!(
                        "tend serve exited ({status}) before it listened; its log:\n{}",
                        read_log(&log)
                    );
                }
                Err(_) => anyhow::bail!(
                    "tend serve printed no listening address within {STARTUP_TIMEOUT:?}; its log:\n{}",
                    read_log(&log)
                ),
            };
            if let Some(password) = line.strip_prefix(ADMIN_PASSWORD_PREFIX) {
                admin_password = Some(password.trim().to_owned());
            }
            if let Some(rest) = line.strip_prefix(LISTENING_PREFIX) {
                let address = rest.split('/').next().unwrap_or_default().to_owned();
                break address;
            }
        };
        // Keep reading, so that a full pipe does not block the server's later output.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });

        let mut server = TestServer {
            base_url: format!("http://{address}"),
            mode: Mode::Binary {
                child,
                admin_password,
                log,
            },
            database,
        };
        server.wait_until_ready().await?;
        Ok(server)
    }

    /// Polls `/healthz` until it returns 200, failing early when a child server exits.
    async fn wait_until_ready(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let url = format!("{}/healthz", self.base_url);
        let started = Instant::now();
        loop {
            let last = match client.get(&url).send().await {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) => format!("status {}", response.status()),
                Err(error) => error.to_string(),
            };
            match &mut self.mode {
                Mode::Binary { child, log, .. } => {
                    if let Some(status) = child.try_wait()? {
                        anyhow::bail!(
                            "tend serve exited ({status}) during start-up; its log:\n{}",
                            read_log(log)
                        );
                    }
                }
                Mode::InProcess { task, .. } => {
                    anyhow::ensure!(
                        !task.is_finished(),
                        "the in-process server stopped during start-up"
                    );
                }
            }
            anyhow::ensure!(
                started.elapsed() < STARTUP_TIMEOUT,
                "{url} was not ready within {STARTUP_TIMEOUT:?}; last answer: {last}"
            );
            tokio::time::sleep(PROBE_INTERVAL).await;
        }
    }

    /// Returns the server's URL without a trailing slash, such as `http://127.0.0.1:40123`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    pub fn backend(&self) -> Backend {
        self.database.backend()
    }

    pub fn database(&self) -> &TestDatabase {
        &self.database
    }

    /// Returns the database, for another server to serve at the same time.
    pub fn shared_database(&self) -> Arc<TestDatabase> {
        Arc::clone(&self.database)
    }

    /// Stops a child server with SIGKILL, as a crash or `kill -9` would: it gets no chance
    /// to finish a write or clean up. Waits until the process has exited and returns its
    /// database, for [`TestServer::binary_on_shared`] to restart on.
    pub async fn kill(mut self) -> anyhow::Result<Arc<TestDatabase>> {
        let Mode::Binary { child, log, .. } = &mut self.mode else {
            anyhow::bail!("only a child server can be killed; this one runs in the test process");
        };
        // `kill` sends SIGKILL and reaps the process.
        child
            .kill()
            .await
            .with_context(|| format!("failed to kill tend serve; its log:\n{}", read_log(log)))?;
        Ok(Arc::clone(&self.database))
    }

    /// Returns the command path of an in-process server, with its store, or `None` for a
    /// child process.
    pub fn commands(&self) -> Option<&Commands> {
        match &self.mode {
            Mode::InProcess { commands, .. } => Some(commands),
            Mode::Binary { .. } => None,
        }
    }

    /// Returns the one-time password of `admin` that a child server printed on its first start.
    pub fn admin_password(&self) -> Option<&str> {
        match &self.mode {
            Mode::Binary { admin_password, .. } => admin_password.as_deref(),
            Mode::InProcess { .. } => None,
        }
    }

    /// Creates a client that sends no token.
    pub fn anonymous(&self) -> ApiClient {
        ApiClient::new(self.base_url.clone(), None)
    }

    /// Creates a client that sends `token`.
    pub fn client(&self, token: &str) -> ApiClient {
        ApiClient::new(self.base_url.clone(), Some(token.to_owned()))
    }

    /// Adds a user with `roles` and the password [`TEST_PASSWORD`], and creates an API
    /// token for it: through the store for an in-process server, through `tend user add`
    /// and `tend token create` for a child server.
    pub async fn add_user(&self, name: &str, roles: &[Role]) -> anyhow::Result<TestUser> {
        let token = match &self.mode {
            Mode::InProcess { commands, .. } => {
                commands
                    .store
                    .add_user(name, None, roles, TEST_PASSWORD)
                    .await
                    .with_context(|| format!("failed to add the user {name}"))?;
                commands
                    .store
                    .create_token(name, "tests")
                    .await
                    .with_context(|| format!("failed to create a token for {name}"))?
            }
            Mode::Binary { .. } => self.add_user_through_cli(name, roles).await?,
        };
        Ok(TestUser {
            name: name.to_owned(),
            password: TEST_PASSWORD.to_owned(),
            client: self.client(&token),
            token,
        })
    }

    async fn add_user_through_cli(&self, name: &str, roles: &[Role]) -> anyhow::Result<String> {
        let mut args: Vec<std::ffi::OsString> = vec!["user".into(), "add".into(), name.into()];
        for role in roles {
            args.push("--role".into());
            args.push(role.as_str().into());
        }
        args.push("--password-stdin".into());
        args.extend(self.database.store_args());
        run_tend(args, Some(&format!("{TEST_PASSWORD}\n")))
            .await?
            .expect_success()?;

        let mut args: Vec<std::ffi::OsString> = vec!["token".into(), "create".into(), name.into()];
        args.extend(self.database.store_args());
        let output = run_tend(args, None).await?.expect_success()?;
        let token = output.stdout.trim().to_owned();
        anyhow::ensure!(
            token.starts_with(tend_store::TOKEN_PREFIX) && !token.contains(char::is_whitespace),
            "`tend token create {name}` printed no token:\n{output}"
        );
        Ok(token)
    }

    /// Returns the log of a child server so far (empty for an in-process server).
    pub fn log(&self) -> String {
        match &self.mode {
            Mode::Binary { log, .. } => read_log(log),
            Mode::InProcess { .. } => String::new(),
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        match &mut self.mode {
            Mode::InProcess { shutdown, task, .. } => {
                if let Some(shutdown) = shutdown.take() {
                    let _ = shutdown.send(());
                }
                task.abort();
            }
            Mode::Binary { child, .. } => {
                // SIGKILL: the test is over, and a graceful stop would only cost time.
                let _ = child.start_kill();
            }
        }
    }
}

/// Creates the log of a new child server in `data_dir`: `tend-serve.log`, or the first of
/// `tend-serve-2.log`, `tend-serve-3.log`, ... that does not exist yet, so that servers on
/// one database, at once or one after the other, keep their own logs.
fn create_log(data_dir: &std::path::Path) -> anyhow::Result<(PathBuf, std::fs::File)> {
    for n in 1..1000 {
        let name = if n == 1 {
            "tend-serve.log".to_owned()
        } else {
            format!("tend-serve-{n}.log")
        };
        let path = data_dir.join(name);
        match std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
        {
            Ok(file) => return Ok((path, file)),
            Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(error) => {
                return Err(error).with_context(|| {
                    format!("failed to create the server log {}", path.display())
                });
            }
        }
    }
    anyhow::bail!(
        "{} already contains 999 server logs: start fewer servers on one database",
        data_dir.display()
    )
}

fn read_log(path: &std::path::Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|error| format!("(failed to read {}: {error})", path.display()))
}
