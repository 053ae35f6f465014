//! The webhook plugin calls HTTP endpoints that an administrator lists in a YAML file,
//! such as `plugins/webhook/webhook.yaml`. Each endpoint is one action: a URL, a method,
//! headers and a JSON body template over the run's record, parameters, actor and run id.
//!
//! Ticket text cannot change where a call goes or what shape its body has:
//!
//! - The URL's scheme, host and port are fixed text; values in its path and query are
//!   percent-encoded (see [`template`]).
//! - The body is a JSON tree whose string leaves are templates, and `serde_json` escapes
//!   each rendered leaf, so a title such as `"}, "admin": true, {"` stays one string.
//! - Secrets (a URL or header value read from an environment variable) never reach the
//!   outcome: the URL is shown by its variable's name, and each secret value is replaced
//!   by `[redacted]` in the summary, output and data, including the response body and
//!   error messages.
//!
//! A call is retried after a connection error or a 5xx status, up to the endpoint's
//! `retries`, waiting `retry_backoff_ms` and then twice as long before each further try.
//! Redirects are not followed unless the endpoint sets `follow_redirects`, and then only
//! to the same scheme, host and port.

mod call;
mod config;
mod template;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use tend_plugin_api::{
    ActionOutcome, ActionRequest, ActionSpec, CancellationToken, Plugin, PluginError,
};

pub use config::{
    ConfigError, DEFAULT_RESPONSE_LIMIT, DEFAULT_RETRY_BACKOFF_MS, MAX_RESPONSE_LIMIT, MAX_RETRIES,
};
use config::{Endpoint, parse_config};
use template::BodyRenderer;

/// Reads an environment variable by name. The plugin reads the server's environment; tests
/// give their own.
pub type EnvSource = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// The webhook plugin, loaded from its configuration file.
#[derive(Clone)]
pub struct WebhookPlugin {
    file: PathBuf,
    endpoints: Vec<Endpoint>,
    specs: Vec<ActionSpec>,
    renderer: Arc<BodyRenderer>,
    clients: Vec<reqwest::Client>,
    env: EnvSource,
}

impl std::fmt::Debug for WebhookPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookPlugin")
            .field("file", &self.file)
            .field(
                "endpoints",
                &self.specs.iter().map(|s| &s.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl WebhookPlugin {
    /// Name of the plugin in the registry and in requests.
    pub const NAME: &'static str = "webhook";

    /// Loads the configuration file at `file`.
    pub fn load(file: impl AsRef<Path>) -> Result<Self, ConfigError> {
        let file = file.as_ref();
        let text = std::fs::read_to_string(file).map_err(|error| ConfigError {
            file: file.to_path_buf(),
            problems: vec![format!(
                "{}: could not read the webhook plugin's configuration: {error}. Check the path, or create the file with an `endpoints:` list",
                file.display()
            )],
        })?;
        Self::from_yaml(file, &text)
    }

    /// Loads a configuration from its text; `file` names it in messages.
    pub fn from_yaml(file: impl AsRef<Path>, text: &str) -> Result<Self, ConfigError> {
        let file = file.as_ref();
        let (endpoints, renderer) = parse_config(file, text)?;
        let mut clients = Vec::new();
        for endpoint in &endpoints {
            let client = call::build_client(endpoint).map_err(|error| ConfigError {
                file: file.to_path_buf(),
                problems: vec![format!(
                    "{}: endpoint `{}`: the HTTP client could not be set up: {error}",
                    file.display(),
                    endpoint.spec.name
                )],
            })?;
            clients.push(client);
        }
        let specs = endpoints.iter().map(|e| e.spec.clone()).collect();
        Ok(WebhookPlugin {
            file: file.to_path_buf(),
            endpoints,
            specs,
            renderer: Arc::new(renderer),
            clients,
            env: Arc::new(|name| std::env::var(name).ok()),
        })
    }

    /// Replaces where the plugin reads environment variables, for tests.
    pub fn with_env(mut self, env: EnvSource) -> Self {
        self.env = env;
        self
    }

    /// Path of the configuration file the plugin was loaded from.
    pub fn file(&self) -> &Path {
        &self.file
    }

    /// Lists the environment variables that endpoints read and that are not set, one
    /// sentence each, so a server can warn at start instead of when a run fails.
    pub fn missing_env(&self) -> Vec<String> {
        let mut missing = Vec::new();
        for endpoint in &self.endpoints {
            for name in endpoint.env_names() {
                if (self.env)(name).is_none() {
                    missing.push(format!(
                        "{}: endpoint `{}` reads environment variable {name}, which is not set",
                        self.file.display(),
                        endpoint.spec.name
                    ));
                }
            }
        }
        missing
    }
}

#[async_trait::async_trait]
impl Plugin for WebhookPlugin {
    fn name(&self) -> &str {
        Self::NAME
    }

    fn description(&self) -> &str {
        "Calls HTTP endpoints with a JSON body built from the record"
    }

    fn actions(&self) -> &[ActionSpec] {
        &self.specs
    }

    async fn run(
        &self,
        request: ActionRequest,
        cancel: CancellationToken,
    ) -> Result<ActionOutcome, PluginError> {
        let index = self
            .endpoints
            .iter()
            .position(|endpoint| endpoint.spec.name == request.action)
            .ok_or_else(|| PluginError::UnknownAction {
                plugin: Self::NAME.to_owned(),
                action: request.action.clone(),
            })?;
        let call = call::Call {
            endpoint: &self.endpoints[index],
            client: &self.clients[index],
            renderer: &self.renderer,
            env: &self.env,
        };
        call.run(request, cancel).await
    }
}
