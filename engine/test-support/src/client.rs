//! An HTTP client for the REST API that carries a user's API token.

use anyhow::Context as _;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde_json::Value;

/// A client of one server, authenticated with an API token or anonymous.
#[derive(Debug, Clone)]
pub struct ApiClient {
    http: reqwest::Client,
    base_url: String,
    token: Option<String>,
}

/// A response with its body read: JSON when the body parses, otherwise `Value::Null`.
#[derive(Debug, Clone)]
pub struct Reply {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Reply {
    /// Returns the `error.code` of an API error body.
    pub fn error_code(&self) -> Option<&str> {
        self.body["error"]["code"].as_str()
    }

    /// Returns the `error.field` of an API error body.
    pub fn error_field(&self) -> Option<&str> {
        self.body["error"]["field"].as_str()
    }

    /// Returns `self` when the status is `expected`, otherwise an error that shows the body.
    pub fn expect_status(self, expected: StatusCode) -> anyhow::Result<Reply> {
        anyhow::ensure!(
            self.status == expected,
            "expected status {expected}, got {}: {}",
            self.status,
            self.text
        );
        Ok(self)
    }
}

impl ApiClient {
    /// Creates a client of the server at `base_url` (such as `http://127.0.0.1:4000`), sending
    /// `Authorization: Bearer TOKEN` when `token` is given.
    pub fn new(base_url: impl Into<String>, token: Option<String>) -> ApiClient {
        ApiClient {
            http: reqwest::Client::new(),
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            token,
        }
    }

    /// Returns a client of the same server with another token, or none.
    pub fn with_token(&self, token: Option<String>) -> ApiClient {
        ApiClient {
            http: self.http.clone(),
            base_url: self.base_url.clone(),
            token,
        }
    }

    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Returns the absolute URL of `path`, which starts with `/`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// Starts a request with the token set. Add headers or a body, then pass it to
    /// [`ApiClient::send`].
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        let request = self.http.request(method, self.url(path));
        match &self.token {
            Some(token) => request.bearer_auth(token),
            None => request,
        }
    }

    /// Sends `request` and reads its body.
    pub async fn send(&self, request: RequestBuilder) -> anyhow::Result<Reply> {
        let response = request
            .send()
            .await
            .context("the request failed before a response")?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response
            .text()
            .await
            .context("failed to read the response body")?;
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Ok(Reply {
            status,
            headers,
            body,
            text,
        })
    }

    pub async fn get(&self, path: &str) -> anyhow::Result<Reply> {
        self.send(self.request(Method::GET, path)).await
    }

    pub async fn post(&self, path: &str, body: &Value) -> anyhow::Result<Reply> {
        self.send(self.request(Method::POST, path).json(body)).await
    }

    pub async fn patch(&self, path: &str, body: &Value) -> anyhow::Result<Reply> {
        self.send(self.request(Method::PATCH, path).json(body))
            .await
    }

    pub async fn delete(&self, path: &str) -> anyhow::Result<Reply> {
        self.send(self.request(Method::DELETE, path)).await
    }
}
