//! One run of an endpoint: render the URL, headers and body, send the request with
//! retries, read the response up to its limit, and build the outcome.

use std::error::Error as _;
use std::time::{Duration, Instant};

use reqwest::header::{HeaderMap, HeaderValue, LOCATION};
use reqwest::redirect::Policy;
use reqwest::{Client, Response, Url};
use serde_json::{Value, json};
use tend_plugin_api::{
    ActionOutcome, ActionRequest, CancellationToken, PluginError, validate_params,
};

use crate::EnvSource;
use crate::config::{Endpoint, UrlSource, check_env_url};
use crate::template::BodyRenderer;

/// Redirects followed at most when an endpoint sets `follow_redirects`.
const MAX_REDIRECTS: usize = 5;

/// Maximum wait between two tries, however many retries an endpoint allows.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Text that replaces each secret value in an outcome.
const REDACTED: &str = "[redacted]";

/// Builds the HTTP client of an endpoint. Redirects are not followed, or followed only to
/// the same scheme, host and port when the endpoint allows it.
pub(crate) fn build_client(endpoint: &Endpoint) -> reqwest::Result<Client> {
    let policy = if endpoint.follow_redirects {
        Policy::custom(|attempt| {
            let same_origin = attempt
                .previous()
                .first()
                .is_some_and(|first| first.origin() == attempt.url().origin());
            if attempt.previous().len() > MAX_REDIRECTS {
                attempt.error(format!("more than {MAX_REDIRECTS} redirects"))
            } else if same_origin {
                attempt.follow()
            } else {
                attempt.stop()
            }
        })
    } else {
        Policy::none()
    };
    Client::builder().redirect(policy).build()
}

/// An endpoint with what one run needs to call it.
pub(crate) struct Call<'a> {
    pub endpoint: &'a Endpoint,
    pub client: &'a Client,
    pub renderer: &'a BodyRenderer,
    pub env: &'a EnvSource,
}

/// A request ready to send.
struct Prepared {
    url: Url,
    /// The URL as the outcome shows it: the URL itself, or `$NAME` for a URL read from
    /// environment variable NAME.
    shown_url: String,
    headers: HeaderMap,
    body: Option<Vec<u8>>,
}

/// The part of a response body that was read.
struct ResponseBody {
    text: String,
    bytes: usize,
    cut: bool,
    /// Reason reading stopped before the end, other than the limit.
    error: Option<String>,
}

impl Call<'_> {
    pub(crate) async fn run(
        &self,
        request: ActionRequest,
        cancel: CancellationToken,
    ) -> Result<ActionOutcome, PluginError> {
        let endpoint = self.endpoint;
        let name = &endpoint.spec.name;
        let params = validate_params(&endpoint.spec, &request.params)
            .map_err(|errors| PluginError::Failed(errors.to_string()))?;
        let data = json!({
            "record": request.record,
            "params": params,
            "actor": request.actor,
            "run_id": request.run_id,
        });

        let mut secrets = Secrets::default();
        let prepared = match self.prepare(&data, &mut secrets) {
            Ok(prepared) => prepared,
            Err(problem) => {
                let outcome = ActionOutcome::failed(format!("{name}: not sent: {problem}"), "");
                return Ok(secrets.redact_outcome(outcome));
            }
        };
        let outcome = self
            .send(request.run_id, &prepared, &secrets, &cancel)
            .await?;
        Ok(secrets.redact_outcome(outcome))
    }

    /// Renders the URL, headers and body of a run.
    fn prepare(&self, data: &Value, secrets: &mut Secrets) -> Result<Prepared, String> {
        let endpoint = self.endpoint;
        let (url, shown_url) = match &endpoint.url {
            UrlSource::Template(template) => {
                let url = template.render(data)?;
                let shown = url.to_string();
                (url, shown)
            }
            UrlSource::Env(name) => {
                let text = self.secret(name, "the URL")?;
                secrets.add(&text);
                (check_env_url(name, &text)?, format!("${name}"))
            }
        };

        let mut headers = endpoint.headers.clone();
        for (header, secret) in &endpoint.secret_headers {
            let value = self.secret(&secret.env, &format!("header `{header}`"))?;
            secrets.add(&value);
            let mut value = HeaderValue::from_str(&format!("{}{value}", secret.prefix)).map_err(|_| {
                format!(
                    "the environment variable {} for header `{header}` contains a line break or control character, which a header cannot carry. Fix the variable and restart Tend",
                    secret.env
                )
            })?;
            value.set_sensitive(true);
            headers.insert(header.clone(), value);
        }

        let body =
            match &endpoint.body {
                Some(template) => {
                    let value = self.renderer.render(template, data)?;
                    Some(serde_json::to_vec(&value).map_err(|error| {
                        format!("the body could not be written as JSON: {error}")
                    })?)
                }
                None => None,
            };

        Ok(Prepared {
            url,
            shown_url,
            headers,
            body,
        })
    }

    /// Reads a secret from the environment; an empty value counts as not set.
    fn secret(&self, name: &str, purpose: &str) -> Result<String, String> {
        match (self.env)(name) {
            Some(value) if !value.is_empty() => Ok(value),
            Some(_) => Err(format!(
                "the environment variable {name} for {purpose} is empty. Set it in Tend's environment and restart Tend"
            )),
            None => Err(format!(
                "the environment variable {name} for {purpose} is not set. Set it in Tend's environment and restart Tend"
            )),
        }
    }

    /// Sends the request, retrying after connection errors and 5xx statuses.
    async fn send(
        &self,
        run_id: i64,
        prepared: &Prepared,
        secrets: &Secrets,
        cancel: &CancellationToken,
    ) -> Result<ActionOutcome, PluginError> {
        let endpoint = self.endpoint;
        let started = Instant::now();
        let mut tries: Vec<Value> = Vec::new();
        let head = format!(
            "{}: {} {}",
            endpoint.spec.name,
            endpoint.method.as_str(),
            prepared.shown_url
        );

        loop {
            let attempt = u32::try_from(tries.len()).unwrap_or(u32::MAX) + 1;
            let mut builder = self
                .client
                .request(endpoint.method.to_reqwest(), prepared.url.clone())
                .headers(prepared.headers.clone())
                .timeout(endpoint.request_timeout);
            if let Some(body) = &prepared.body {
                builder = builder.body(body.clone());
            }
            let sent = tokio::select! {
                biased;
                () = cancel.cancelled() => return Err(PluginError::Cancelled),
                sent = builder.send() => sent,
            };
            let may_retry = attempt <= endpoint.retries;

            let response = match sent {
                Ok(response) if response.status().is_server_error() && may_retry => {
                    let status = response.status();
                    tries.push(json!({"status": status.as_u16()}));
                    drop(response);
                    self.wait_before_retry(run_id, attempt, &status.to_string(), cancel)
                        .await?;
                    continue;
                }
                Ok(response) => response,
                Err(error) => {
                    let reason = secrets.redact(&describe_error(&error));
                    tries.push(json!({"error": reason}));
                    if error.is_connect() && may_retry {
                        self.wait_before_retry(run_id, attempt, &reason, cancel)
                            .await?;
                        continue;
                    }
                    let summary = if error.is_timeout() {
                        format!(
                            "{head} got no answer within {} s",
                            endpoint.request_timeout.as_secs()
                        )
                    } else if error.is_connect() {
                        format!("{head} could not connect: {reason}")
                    } else {
                        format!("{head} failed: {reason}")
                    };
                    let mut outcome =
                        ActionOutcome::failed(with_attempts(summary, tries.len()), "");
                    outcome.data = data(endpoint, prepared, None, &tries, started, None);
                    return Ok(outcome);
                }
            };

            let status = response.status();
            tries.push(json!({"status": status.as_u16()}));
            let location = response
                .headers()
                .get(LOCATION)
                .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned());
            let body = read_body(response, endpoint.response_limit, cancel).await?;

            let succeeded = endpoint.is_success(status.as_u16());
            let mut summary = format!("{head} answered {status}");
            if !succeeded {
                summary.push_str(&format!(
                    ", but only {} counts as success",
                    endpoint.expected_statuses()
                ));
                if let (true, Some(location)) = (status.is_redirection(), &location) {
                    summary.push_str(&if endpoint.follow_redirects {
                        format!(
                            ". It redirects to {location}, which is on another host and is not followed. Call that URL directly"
                        )
                    } else {
                        format!(
                            ". It redirects to {location}, which is not followed. Call that URL directly, or set follow_redirects to follow redirects on the same host"
                        )
                    });
                }
            }
            let summary = with_attempts(summary, tries.len());
            let mut outcome = if succeeded {
                ActionOutcome::succeeded(summary, body.with_note())
            } else {
                ActionOutcome::failed(summary, body.with_note())
            };
            outcome.data = data(
                endpoint,
                prepared,
                Some(status.as_u16()),
                &tries,
                started,
                Some(&body),
            );
            return Ok(outcome);
        }
    }

    /// Waits before the next try, doubling the endpoint's backoff with each retry.
    async fn wait_before_retry(
        &self,
        run_id: i64,
        attempt: u32,
        reason: &str,
        cancel: &CancellationToken,
    ) -> Result<(), PluginError> {
        let endpoint = self.endpoint;
        let factor = 1u32 << (attempt - 1).min(16);
        let delay = endpoint
            .retry_backoff
            .saturating_mul(factor)
            .min(MAX_BACKOFF);
        tracing::info!(
            run.id = run_id,
            action = %endpoint.spec.name,
            attempt,
            "webhook try {attempt} of {} failed ({reason}); retrying in {} ms",
            endpoint.retries + 1,
            delay.as_millis()
        );
        tokio::select! {
            biased;
            () = cancel.cancelled() => Err(PluginError::Cancelled),
            () = tokio::time::sleep(delay) => Ok(()),
        }
    }
}

fn with_attempts(summary: String, attempts: usize) -> String {
    if attempts > 1 {
        format!("{summary} (after {attempts} attempts)")
    } else {
        summary
    }
}

fn data(
    endpoint: &Endpoint,
    prepared: &Prepared,
    status: Option<u16>,
    tries: &[Value],
    started: Instant,
    body: Option<&ResponseBody>,
) -> Value {
    json!({
        "method": endpoint.method.as_str(),
        "url": prepared.shown_url,
        "status": status,
        "attempts": tries,
        "duration_ms": u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        "response_bytes": body.map_or(0, |body| body.bytes),
        "response_cut": body.is_some_and(|body| body.cut),
    })
}

/// Reads a response body up to `limit` bytes, and stops reading there.
async fn read_body(
    mut response: Response,
    limit: usize,
    cancel: &CancellationToken,
) -> Result<ResponseBody, PluginError> {
    let mut buffer = Vec::new();
    let mut cut = false;
    let mut error = None;
    loop {
        let chunk = tokio::select! {
            biased;
            () = cancel.cancelled() => return Err(PluginError::Cancelled),
            chunk = response.chunk() => chunk,
        };
        match chunk {
            Ok(Some(bytes)) => {
                let room = limit - buffer.len();
                if bytes.len() > room {
                    buffer.extend_from_slice(&bytes[..room]);
                    cut = true;
                    break;
                }
                buffer.extend_from_slice(&bytes);
            }
            Ok(None) => break,
            Err(read_error) => {
                error = Some(describe_error(&read_error));
                break;
            }
        }
    }
    Ok(ResponseBody {
        text: String::from_utf8_lossy(&buffer).into_owned(),
        bytes: buffer.len(),
        cut,
        error,
    })
}

impl ResponseBody {
    /// Returns the text, followed by a note on why it ends early if it does.
    fn with_note(&self) -> String {
        let mut text = self.text.clone();
        let note = if self.cut {
            Some(format!(
                "[response cut: only the first {} bytes were kept]",
                self.bytes
            ))
        } else {
            self.error
                .as_ref()
                .map(|error| format!("[response not read to the end: {error}]"))
        };
        if let Some(note) = note {
            if !text.is_empty() && !text.ends_with('\n') {
                text.push('\n');
            }
            text.push_str(&note);
        }
        text
    }
}

/// Describes an HTTP client error by its causes, such as `client error (Connect): tcp
/// connect error: Connection refused (os error 111)`. The client's own text, "error
/// sending request for url (...)", is left out when there are causes, because it repeats
/// the URL, which may be secret.
fn describe_error(error: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut current = error.source();
    while let Some(cause) = current {
        parts.push(cause.to_string());
        current = cause.source();
    }
    if parts.is_empty() {
        let text = error.to_string();
        let without_url = match text.split_once(" for url (") {
            Some((before, _)) => before.to_owned(),
            None => text,
        };
        parts.push(without_url);
    }
    parts.join(": ")
}

/// Secret values read for one run, replaced by `[redacted]` wherever they would show.
#[derive(Default)]
struct Secrets(Vec<String>);

impl Secrets {
    fn add(&mut self, value: &str) {
        if !value.is_empty() && !self.0.iter().any(|known| known == value) {
            self.0.push(value.to_owned());
            // Longer secrets first, so a secret that contains another is replaced whole.
            self.0.sort_by_key(|known| std::cmp::Reverse(known.len()));
        }
    }

    fn redact(&self, text: &str) -> String {
        let mut text = text.to_owned();
        for secret in &self.0 {
            if text.contains(secret.as_str()) {
                text = text.replace(secret.as_str(), REDACTED);
            }
        }
        text
    }

    fn redact_value(&self, value: &mut Value) {
        match value {
            Value::String(text) => *text = self.redact(text),
            Value::Array(items) => items.iter_mut().for_each(|item| self.redact_value(item)),
            Value::Object(map) => map.values_mut().for_each(|item| self.redact_value(item)),
            _ => {}
        }
    }

    fn redact_outcome(&self, mut outcome: ActionOutcome) -> ActionOutcome {
        if self.0.is_empty() {
            return outcome;
        }
        outcome.summary = self.redact(&outcome.summary);
        outcome.output = self.redact(&outcome.output);
        self.redact_value(&mut outcome.data);
        outcome
    }
}
