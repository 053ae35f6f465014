//! The configuration file of the webhook plugin, such as `plugins/webhook/webhook.yaml`:
//! its format, and the checks that run when it loads. Every problem of every endpoint is
//! reported at once, each with the file, the endpoint and the fix.

use std::path::Path;
use std::time::Duration;

use indexmap::IndexMap;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;
use serde_json::Value;
use tend_plugin_api::yaml::{YamlError, parse_yaml};
use tend_plugin_api::{ActionSpec, ParamSpec, check_actions};

use crate::template::{BodyRenderer, BodyTemplate, UrlTemplate, check_url};

/// Bytes of a response body kept in the outcome when an endpoint sets no
/// `response_limit_bytes`.
pub const DEFAULT_RESPONSE_LIMIT: usize = 16 * 1024;

/// Maximum `response_limit_bytes`. The response lands in the journal, so this bounds one
/// journal entry.
pub const MAX_RESPONSE_LIMIT: usize = 1024 * 1024;

/// Maximum `retries` of an endpoint.
pub const MAX_RETRIES: u32 = 10;

/// Milliseconds before the first retry when an endpoint sets no `retry_backoff_ms`. Each
/// further retry waits twice as long as the one before.
pub const DEFAULT_RETRY_BACKOFF_MS: u64 = 500;

/// Headers that the HTTP client sets from the request itself.
const RESERVED_HEADERS: [&str; 4] = ["host", "content-length", "transfer-encoding", "connection"];

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigFile {
    #[serde(default)]
    endpoints: Vec<EndpointFile>,
}

/// One endpoint as written in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct EndpointFile {
    name: String,
    label: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    url_env: Option<String>,
    #[serde(default = "default_method")]
    method: String,
    #[serde(default)]
    headers: IndexMap<String, String>,
    #[serde(default)]
    secret_headers: IndexMap<String, SecretHeader>,
    #[serde(default)]
    body: Option<Value>,
    #[serde(default)]
    params: IndexMap<String, ParamSpec>,
    timeout_seconds: u64,
    #[serde(default)]
    request_timeout_seconds: Option<u64>,
    #[serde(default)]
    success_statuses: Option<Vec<u16>>,
    #[serde(default)]
    retries: u32,
    #[serde(default)]
    retry_backoff_ms: Option<u64>,
    #[serde(default)]
    response_limit_bytes: Option<usize>,
    #[serde(default)]
    follow_redirects: bool,
    #[serde(default)]
    roles: Vec<String>,
    #[serde(default)]
    needs_approval: bool,
    #[serde(default)]
    idempotent: bool,
}

fn default_method() -> String {
    String::from("POST")
}

/// A header whose value comes from an environment variable of the Tend server.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecretHeader {
    /// Name of the environment variable that contains the value.
    pub env: String,
    /// Text put before the variable's value, such as `Bearer `.
    #[serde(default)]
    pub prefix: String,
}

/// Source of an endpoint's URL.
#[derive(Debug, Clone)]
pub(crate) enum UrlSource {
    /// A URL template from the file.
    Template(UrlTemplate),
    /// The name of an environment variable that contains the whole URL, for webhook URLs
    /// that carry a token. It is read at each run, and never shown.
    Env(String),
}

/// HTTP methods an endpoint may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Method {
    Post,
    Put,
    Patch,
}

impl Method {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
        }
    }

    pub(crate) fn to_reqwest(self) -> reqwest::Method {
        match self {
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Patch => reqwest::Method::PATCH,
        }
    }
}

/// One endpoint, checked and ready to call.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub spec: ActionSpec,
    pub url: UrlSource,
    pub method: Method,
    /// Fixed headers, including `Content-Type`.
    pub headers: HeaderMap,
    pub secret_headers: Vec<(HeaderName, SecretHeader)>,
    pub body: Option<BodyTemplate>,
    pub request_timeout: Duration,
    /// Statuses that count as success; empty means any 2xx status.
    pub success_statuses: Vec<u16>,
    pub retries: u32,
    pub retry_backoff: Duration,
    pub response_limit: usize,
    pub follow_redirects: bool,
}

impl Endpoint {
    pub(crate) fn is_success(&self, status: u16) -> bool {
        if self.success_statuses.is_empty() {
            (200..300).contains(&status)
        } else {
            self.success_statuses.contains(&status)
        }
    }

    /// Describes the statuses that count as success, such as `2xx` or `200, 204`.
    pub(crate) fn expected_statuses(&self) -> String {
        if self.success_statuses.is_empty() {
            String::from("2xx")
        } else {
            self.success_statuses
                .iter()
                .map(u16::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
    }

    /// Names of the environment variables the endpoint reads.
    pub(crate) fn env_names(&self) -> impl Iterator<Item = &str> {
        let url = match &self.url {
            UrlSource::Env(name) => Some(name.as_str()),
            UrlSource::Template(_) => None,
        };
        url.into_iter().chain(
            self.secret_headers
                .iter()
                .map(|(_, secret)| secret.env.as_str()),
        )
    }
}

pub use tend_plugin_api::ConfigError;

/// Reads and checks a configuration file. `file` names the file in messages.
pub(crate) fn parse_config(
    file: &Path,
    text: &str,
) -> Result<(Vec<Endpoint>, BodyRenderer), ConfigError> {
    let file_name = file.display();
    let parsed: ConfigFile = parse_yaml(text).map_err(|error| ConfigError {
        file: file.to_path_buf(),
        problems: vec![describe_yaml_error(file, text, &error)],
    })?;

    let mut renderer = BodyRenderer::new();
    let mut problems = Vec::new();
    let mut endpoints = Vec::new();
    for endpoint in parsed.endpoints {
        let at = format!("{file_name}: endpoint `{}`", endpoint.name);
        let mut own = Vec::new();
        let checked = check_endpoint(endpoint, &mut renderer, &mut own);
        problems.extend(own.into_iter().map(|problem| format!("{at}: {problem}")));
        endpoints.extend(checked);
    }

    let specs: Vec<ActionSpec> = endpoints.iter().map(|e| e.spec.clone()).collect();
    problems.extend(
        check_actions(&specs)
            .into_iter()
            .map(|problem| format!("{file_name}: {problem}")),
    );

    if problems.is_empty() {
        Ok((endpoints, renderer))
    } else {
        Err(ConfigError {
            file: file.to_path_buf(),
            problems,
        })
    }
}

/// Places a parse error: file, line and column, and the endpoint by its name when the
/// error lies inside one.
fn describe_yaml_error(file: &Path, text: &str, error: &YamlError) -> String {
    let mut place = file.display().to_string();
    if let (Some(line), Some(column)) = (error.line, error.column) {
        place.push_str(&format!(":{line}:{column}"));
    }
    let endpoint = error.index_in("endpoints").map(|index| {
        let name = serde_norway::from_str::<serde_norway::Value>(text)
            .ok()
            .and_then(|value| {
                let name = value.get("endpoints")?.get(index)?.get("name")?.as_str()?;
                Some(name.to_owned())
            });
        match name {
            Some(name) => format!("endpoint `{name}` (number {})", index + 1),
            None => format!("endpoint number {}", index + 1),
        }
    });
    let field = if error.path.is_empty() {
        String::new()
    } else {
        format!("field `{}`: ", error.path)
    };
    match endpoint {
        Some(endpoint) => format!("{place}: {endpoint}: {field}{}", error.message),
        None => format!("{place}: {field}{}", error.message),
    }
}

/// Checks one endpoint and builds it. Returns `None` when a problem leaves nothing to
/// build, with the problem pushed.
fn check_endpoint(
    file: EndpointFile,
    renderer: &mut BodyRenderer,
    problems: &mut Vec<String>,
) -> Option<Endpoint> {
    let param_names: Vec<&str> = file.params.keys().map(String::as_str).collect();

    let url = match (&file.url, &file.url_env) {
        (Some(_), Some(_)) => {
            problems.push(String::from(
                "both `url` and `url_env` are set. Keep one: `url` for a URL written here, `url_env` for a URL read from an environment variable",
            ));
            None
        }
        (None, None) => {
            problems.push(String::from(
                "the endpoint has no URL. Set `url`, or `url_env` with the name of an environment variable that holds the URL",
            ));
            None
        }
        (Some(source), None) => match UrlTemplate::parse(source, &param_names) {
            Ok(template) => Some(UrlSource::Template(template)),
            Err(found) => {
                problems.extend(found.into_iter().map(|p| format!("url `{source}`: {p}")));
                None
            }
        },
        (None, Some(name)) => {
            check_env_name("url_env", name, problems);
            Some(UrlSource::Env(name.clone()))
        }
    };

    let method = match file.method.as_str() {
        "POST" => Some(Method::Post),
        "PUT" => Some(Method::Put),
        "PATCH" => Some(Method::Patch),
        other => {
            problems.push(format!(
                "method `{other}` is not supported. Use POST, PUT or PATCH, in capitals"
            ));
            None
        }
    };

    let headers = check_headers(&file, problems);
    let mut secret_headers = Vec::new();
    for (name, secret) in &file.secret_headers {
        if let Some(header) = check_header_name(name, problems) {
            if headers.contains_key(&header) {
                problems.push(format!(
                    "header `{name}` is set in both `headers` and `secret_headers`. Keep one"
                ));
            }
            check_env_name(&format!("secret_headers.{name}.env"), &secret.env, problems);
            if HeaderValue::from_str(&secret.prefix).is_err() {
                problems.push(format!(
                    "the prefix {:?} of secret header `{name}` contains a line break or control character. Remove it",
                    secret.prefix
                ));
            }
            secret_headers.push((header, secret.clone()));
        }
    }

    let body = match &file.body {
        Some(body) => match renderer.compile(body, &param_names) {
            Ok(body) => Some(body),
            Err(found) => {
                problems.extend(found);
                None
            }
        },
        None => None,
    };

    check_numbers(&file, problems);

    let spec = ActionSpec {
        name: file.name,
        label: file.label,
        description: file.description,
        params: file.params,
        timeout_seconds: file.timeout_seconds,
        roles: file.roles,
        needs_approval: file.needs_approval,
        idempotent: file.idempotent,
    };
    let request_timeout = file.request_timeout_seconds.unwrap_or(spec.timeout_seconds);
    Some(Endpoint {
        url: url?,
        method: method?,
        headers,
        secret_headers,
        body,
        request_timeout: Duration::from_secs(request_timeout),
        success_statuses: file.success_statuses.unwrap_or_default(),
        retries: file.retries,
        retry_backoff: Duration::from_millis(
            file.retry_backoff_ms.unwrap_or(DEFAULT_RETRY_BACKOFF_MS),
        ),
        response_limit: file.response_limit_bytes.unwrap_or(DEFAULT_RESPONSE_LIMIT),
        follow_redirects: file.follow_redirects,
        spec,
    })
}

/// Checks the fixed headers and returns them with `Content-Type: application/json` added
/// when the file sets no content type.
fn check_headers(file: &EndpointFile, problems: &mut Vec<String>) -> HeaderMap {
    let mut headers = HeaderMap::new();
    for (name, value) in &file.headers {
        let Some(header) = check_header_name(name, problems) else {
            continue;
        };
        if value.contains("{{") {
            problems.push(format!(
                "header `{name}` contains a template, but header values are sent as written. Remove the template"
            ));
        }
        match HeaderValue::from_str(value) {
            Ok(value) => {
                headers.insert(header, value);
            }
            Err(_) => problems.push(format!(
                "the value {value:?} of header `{name}` contains a line break or control character. Remove it"
            )),
        }
    }
    if !headers.contains_key(reqwest::header::CONTENT_TYPE) {
        headers.insert(
            reqwest::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
    }
    headers
}

fn check_header_name(name: &str, problems: &mut Vec<String>) -> Option<HeaderName> {
    let Ok(header) = HeaderName::from_bytes(name.as_bytes()) else {
        problems.push(format!(
            "`{name}` is not a valid header name. Use letters, digits and `-`, as in X-Api-Key"
        ));
        return None;
    };
    if RESERVED_HEADERS.contains(&header.as_str()) {
        problems.push(format!(
            "header `{name}` is set by the HTTP client from the request. Remove it"
        ));
        return None;
    }
    Some(header)
}

fn check_env_name(field: &str, name: &str, problems: &mut Vec<String>) {
    let mut chars = name.chars();
    let starts_well = chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !starts_well || !chars.all(|c| c.is_ascii_alphanumeric() || c == '_') {
        problems.push(format!(
            "`{field}` is `{name}`, which is not an environment variable name. Use letters, digits and underscores, not starting with a digit, as in TEND_CHAT_WEBHOOK_URL"
        ));
    }
}

fn check_numbers(file: &EndpointFile, problems: &mut Vec<String>) {
    if let Some(request_timeout) = file.request_timeout_seconds {
        if request_timeout == 0 {
            problems.push(String::from(
                "request_timeout_seconds is 0. Set at least 1, or remove it to use timeout_seconds",
            ));
        } else if request_timeout > file.timeout_seconds {
            problems.push(format!(
                "request_timeout_seconds {request_timeout} is longer than timeout_seconds {}, which stops the whole run first. Lower it, or raise timeout_seconds",
                file.timeout_seconds
            ));
        }
    }
    if let Some(statuses) = &file.success_statuses {
        if statuses.is_empty() {
            problems.push(String::from(
                "success_statuses is empty, so no call could succeed. List statuses such as [200, 204], or remove it to accept any 2xx status",
            ));
        }
        for status in statuses {
            if !(100..=599).contains(status) {
                problems.push(format!(
                    "success status {status} is not an HTTP status. Use numbers from 100 to 599"
                ));
            }
        }
    }
    if file.retries > MAX_RETRIES {
        problems.push(format!(
            "retries {} is more than the maximum of {MAX_RETRIES}. Lower it",
            file.retries
        ));
    }
    if file.retry_backoff_ms == Some(0) {
        problems.push(format!(
            "retry_backoff_ms is 0, so retries would follow at once. Set a delay such as {DEFAULT_RETRY_BACKOFF_MS}, or remove it for that default"
        ));
    }
    match file.response_limit_bytes {
        Some(0) => problems.push(format!(
            "response_limit_bytes is 0, which keeps no response. Set a limit such as {DEFAULT_RESPONSE_LIMIT}, or remove it for that default"
        )),
        Some(limit) if limit > MAX_RESPONSE_LIMIT => problems.push(format!(
            "response_limit_bytes {limit} is larger than the maximum of {MAX_RESPONSE_LIMIT}. Lower it"
        )),
        _ => {}
    }
}

/// Checks a URL read from an environment variable at run time. Its text is never part of
/// the message, because such URLs often carry a token.
pub(crate) fn check_env_url(name: &str, text: &str) -> Result<reqwest::Url, String> {
    check_url(text).map_err(|problems| {
        let reason = if text.parse::<reqwest::Url>().is_err() {
            String::from("it is not a valid URL")
        } else {
            problems.join(", ").replace(text, "the URL")
        };
        format!("the environment variable {name} does not hold a usable http or https URL: {reason}. Fix the variable and restart Tend")
    })
}
