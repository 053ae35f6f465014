//! The IMAP side of the mail intake. It connects (plain, STARTTLS or TLS with rustls) and
//! logs in, lists the messages of a folder that are not processed yet, and fetches one
//! without setting `\Seen`. It marks a message processed (moves it or sets a keyword) and
//! waits for new mail with IDLE.
//!
//! The crate knows nothing of the store: the caller hands each fetched message to the
//! intake and marks it processed only after the intake committed it, so that a crash in
//! between leaves the message in the folder for the next pass.

mod stream;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use async_imap::extensions::idle::IdleResponse;
use async_imap::types::UnsolicitedResponse;
use futures_util::TryStreamExt as _;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

pub use stream::Stream;

/// Maximum wait for the TCP connection, the TLS handshake and the greeting.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// Maximum time one IDLE command runs before it is renewed. RFC 2177 lets a server log
/// out a client after 30 minutes of inactivity, so IDLE is renewed well before.
pub const IDLE_RENEWAL: Duration = Duration::from_secs(25 * 60);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Security {
    None,
    Starttls,
    Tls,
}

/// Action taken on a message once its transaction committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterProcessing {
    /// Move it to this folder, created at login when missing.
    MoveTo(String),
    /// Set this keyword on it and leave it in place.
    Flag(String),
}

/// One IMAP account and folder, with the password already read.
#[derive(Clone)]
pub struct Settings {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub username: String,
    pub password: String,
    /// PEM file of a certificate authority trusted besides the public ones.
    pub ca_file: Option<PathBuf>,
    pub folder: String,
    pub after_processing: AfterProcessing,
}

impl std::fmt::Debug for Settings {
    // The password is left out, so that a logged `Settings` does not leak it.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Settings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("security", &self.security)
            .field("username", &self.username)
            .field("ca_file", &self.ca_file)
            .field("folder", &self.folder)
            .field("after_processing", &self.after_processing)
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot connect to {host}:{port}: {reason}")]
    Connect {
        host: String,
        port: u16,
        reason: String,
    },
    #[error("the TLS connection to {host}:{port} failed: {reason}")]
    Tls {
        host: String,
        port: u16,
        reason: String,
    },
    #[error("cannot read the CA file {path}: {reason}")]
    CaFile { path: PathBuf, reason: String },
    #[error("the server did not accept STARTTLS: {0}")]
    Starttls(String),
    #[error("the login of `{username}` failed: {reason}")]
    Login { username: String, reason: String },
    #[error("cannot open folder `{folder}`: {reason}")]
    Folder { folder: String, reason: String },
    #[error("the server rejected {command}: {reason}")]
    Command {
        command: &'static str,
        reason: String,
    },
    #[error("the IMAP connection failed: {0}")]
    Protocol(#[from] async_imap::error::Error),
}

impl Error {
    /// Returns whether trying again later may succeed without a change of the settings: a lost
    /// or refused connection may, a rejected login or a bad CA file does not.
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Connect { .. } | Error::Protocol(_) => true,
            Error::Tls { .. }
            | Error::CaFile { .. }
            | Error::Starttls(_)
            | Error::Login { .. }
            | Error::Folder { .. }
            | Error::Command { .. } => false,
        }
    }
}

/// Why [`Connection::wait_for_mail`] returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wake {
    /// The server reported a change of the folder.
    Changed,
    /// The wait ran out.
    TimedOut,
}

/// A logged-in session with the folder selected.
pub struct Connection {
    session: async_imap::Session<Stream>,
    settings: Settings,
    idle: bool,
    move_command: bool,
    uid_expunge: bool,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("settings", &self.settings)
            .field("idle", &self.idle)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects, secures the connection as `settings.security` sets, logs in, creates
    /// the folder of processed messages when it is missing and selects the folder.
    pub async fn open(settings: &Settings) -> Result<Connection, Error> {
        let mut session = login(settings).await?;
        let capabilities = session.capabilities().await?;
        let idle = capabilities.has_str("IDLE");
        let move_command = capabilities.has_str("MOVE");
        let uid_expunge = capabilities.has_str("UIDPLUS");
        if let AfterProcessing::MoveTo(folder) = &settings.after_processing {
            ensure_folder(&mut session, folder).await?;
        }
        session
            .select(&settings.folder)
            .await
            .map_err(|error| Error::Folder {
                folder: settings.folder.clone(),
                reason: reason(error),
            })?;
        Ok(Connection {
            session,
            settings: settings.clone(),
            idle,
            move_command,
            uid_expunge,
        })
    }

    /// Returns whether the server offers IDLE.
    pub fn supports_idle(&self) -> bool {
        self.idle
    }

    /// Returns the UIDs of the folder's messages that are not processed yet, oldest
    /// first: every message not marked deleted, less those with the keyword when
    /// processed messages are flagged.
    pub async fn unprocessed(&mut self) -> Result<Vec<u32>, Error> {
        let query = match &self.settings.after_processing {
            AfterProcessing::MoveTo(_) => "UNDELETED".to_owned(),
            AfterProcessing::Flag(keyword) => format!("UNDELETED UNKEYWORD {keyword}"),
        };
        let mut uids: Vec<u32> = self
            .session
            .uid_search(&query)
            .await
            .map_err(|error| Error::Command {
                command: "UID SEARCH",
                reason: reason(error),
            })?
            .into_iter()
            .collect();
        uids.sort_unstable();
        Ok(uids)
    }

    /// Fetches the raw message with `BODY.PEEK[]`, which leaves its `\Seen` flag as it
    /// is. Returns `None` when the message is gone (another client moved or deleted it).
    pub async fn fetch(&mut self, uid: u32) -> Result<Option<Vec<u8>>, Error> {
        let fetches: Vec<_> = self
            .session
            .uid_fetch(uid.to_string(), "BODY.PEEK[]")
            .await?
            .try_collect()
            .await?;
        Ok(fetches
            .iter()
            .find(|fetch| fetch.uid == Some(uid))
            .and_then(|fetch| fetch.body())
            .map(<[u8]>::to_vec))
    }

    /// Marks the message processed: moves it (with MOVE, or with COPY, `\Deleted` and UID
    /// EXPUNGE where the server has no MOVE) or sets the keyword.
    pub async fn mark_processed(&mut self, uid: u32) -> Result<(), Error> {
        let uid_text = uid.to_string();
        match self.settings.after_processing.clone() {
            AfterProcessing::MoveTo(folder) if self.move_command => self
                .session
                .uid_mv(&uid_text, &folder)
                .await
                .map_err(|error| Error::Command {
                    command: "UID MOVE",
                    reason: reason(error),
                }),
            AfterProcessing::MoveTo(folder) => {
                self.session
                    .uid_copy(&uid_text, &folder)
                    .await
                    .map_err(|error| Error::Command {
                        command: "UID COPY",
                        reason: reason(error),
                    })?;
                self.store_flags(&uid_text, "\\Deleted").await?;
                if self.uid_expunge {
                    let _: Vec<_> = self
                        .session
                        .uid_expunge(&uid_text)
                        .await?
                        .try_collect()
                        .await?;
                }
                // NOTE: without UIDPLUS the copy stays in the folder marked \Deleted
                // until another client expunges it; `unprocessed` skips it meanwhile.
                Ok(())
            }
            AfterProcessing::Flag(keyword) => self.store_flags(&uid_text, &keyword).await,
        }
    }

    async fn store_flags(&mut self, uid: &str, flags: &str) -> Result<(), Error> {
        let _: Vec<_> = self
            .session
            .uid_store(uid, format!("+FLAGS.SILENT ({flags})"))
            .await
            .map_err(|error| Error::Command {
                command: "UID STORE",
                reason: reason(error),
            })?
            .try_collect()
            .await?;
        Ok(())
    }

    /// Returns whether the server reported new messages since the last call, in the
    /// responses to other commands; such a report does not wake a later IDLE.
    pub fn drain_new_mail_reports(&mut self) -> bool {
        let mut changed = false;
        while let Ok(response) = self.session.unsolicited_responses.try_recv() {
            if matches!(
                response,
                UnsolicitedResponse::Exists(_) | UnsolicitedResponse::Recent(_)
            ) {
                changed = true;
            }
        }
        changed
    }

    /// Waits up to `longest` for a change of the folder: with IDLE when the server
    /// offers it (renewed every [`IDLE_RENEWAL`]), else by sleeping. Consumes the
    /// connection and returns it, because IDLE takes the session over while it runs.
    pub async fn wait_for_mail(mut self, longest: Duration) -> Result<(Connection, Wake), Error> {
        if !self.idle {
            tokio::time::sleep(longest).await;
            return Ok((self, Wake::TimedOut));
        }
        let deadline = tokio::time::Instant::now() + longest;
        loop {
            let left = deadline.saturating_duration_since(tokio::time::Instant::now());
            if left.is_zero() {
                return Ok((self, Wake::TimedOut));
            }
            let mut handle = self.session.idle();
            handle.init().await?;
            let (response, stop) = handle.wait_with_timeout(IDLE_RENEWAL);
            // The server's "still here" keepalives restart the library's own timeout,
            // so the wait is bounded here as well; dropping `stop` ends the IDLE wait.
            let response = {
                tokio::pin!(response);
                tokio::select! {
                    response = &mut response => response?,
                    () = tokio::time::sleep(left.min(IDLE_RENEWAL)) => {
                        drop(stop);
                        response.await?
                    }
                }
            };
            self.session = handle.done().await?;
            match response {
                IdleResponse::NewData(_) => return Ok((self, Wake::Changed)),
                IdleResponse::Timeout | IdleResponse::ManualInterrupt => {}
            }
        }
    }

    /// Sends NOOP, which fails on a lost connection.
    pub async fn noop(&mut self) -> Result<(), Error> {
        self.session.noop().await?;
        Ok(())
    }

    /// Logs out; errors are ignored because the connection is dropped either way.
    pub async fn logout(mut self) {
        if let Err(error) = self.session.logout().await {
            tracing::debug!(%error, "IMAP logout failed");
        }
    }

    /// Returns every message of the folder as (UID, raw message), oldest first, without
    /// setting `\Seen`. For tests and tools that look at a mailbox.
    pub async fn all_messages(&mut self) -> Result<Vec<(u32, Vec<u8>)>, Error> {
        let mut messages = Vec::new();
        for uid in self.unprocessed().await? {
            if let Some(raw) = self.fetch(uid).await? {
                messages.push((uid, raw));
            }
        }
        Ok(messages)
    }
}

/// Connects and logs in, without selecting a folder.
async fn login(settings: &Settings) -> Result<async_imap::Session<Stream>, Error> {
    let connect_error = |reason: String| Error::Connect {
        host: settings.host.clone(),
        port: settings.port,
        reason,
    };
    let tcp = tokio::time::timeout(
        CONNECT_TIMEOUT,
        TcpStream::connect((settings.host.as_str(), settings.port)),
    )
    .await
    .map_err(|_| {
        connect_error(format!(
            "timed out after {} seconds",
            CONNECT_TIMEOUT.as_secs()
        ))
    })?
    .map_err(|error| connect_error(error.to_string()))?;
    let stream = match settings.security {
        Security::None | Security::Starttls => Stream::Plain(tcp),
        Security::Tls => Stream::Tls(Box::new(tls_handshake(settings, tcp).await?)),
    };
    let mut client = async_imap::Client::new(stream);
    let greeting = tokio::time::timeout(CONNECT_TIMEOUT, client.read_response())
        .await
        .map_err(|_| connect_error("the server sent no greeting".to_owned()))?
        .map_err(|error| connect_error(error.to_string()))?;
    if greeting.is_none() {
        return Err(connect_error(
            "the server closed the connection before its greeting".to_owned(),
        ));
    }
    if settings.security == Security::Starttls {
        client
            .run_command_and_check_ok("STARTTLS", None)
            .await
            .map_err(|error| Error::Starttls(reason(error)))?;
        let Stream::Plain(tcp) = client.into_inner() else {
            unreachable!("the stream before STARTTLS is plain");
        };
        // The server sends no second greeting after STARTTLS.
        client =
            async_imap::Client::new(Stream::Tls(Box::new(tls_handshake(settings, tcp).await?)));
    }
    client
        .login(&settings.username, &settings.password)
        .await
        .map_err(|(error, _)| Error::Login {
            username: settings.username.clone(),
            reason: reason(error),
        })
}

async fn tls_handshake(
    settings: &Settings,
    tcp: TcpStream,
) -> Result<tokio_rustls::client::TlsStream<TcpStream>, Error> {
    let tls_error = |reason: String| Error::Tls {
        host: settings.host.clone(),
        port: settings.port,
        reason,
    };
    let config = tls_config(settings.ca_file.as_ref())?;
    let name = ServerName::try_from(settings.host.clone()).map_err(|error| {
        tls_error(format!(
            "`{}` is not a valid server name: {error}",
            settings.host
        ))
    })?;
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    tokio::time::timeout(CONNECT_TIMEOUT, connector.connect(name, tcp))
        .await
        .map_err(|_| tls_error("the handshake timed out".to_owned()))?
        .map_err(|error| tls_error(error.to_string()))
}

/// Builds a rustls configuration with the ring provider that trusts the public
/// certificate authorities (webpki-roots) and those of `ca_file`.
fn tls_config(ca_file: Option<&PathBuf>) -> Result<rustls::ClientConfig, Error> {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = ca_file {
        let ca_error = |reason: String| Error::CaFile {
            path: path.clone(),
            reason,
        };
        let certificates: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(path)
            .map_err(|error| ca_error(error.to_string()))?
            .collect::<Result<_, _>>()
            .map_err(|error| ca_error(error.to_string()))?;
        if certificates.is_empty() {
            return Err(ca_error(
                "it contains no PEM certificate (-----BEGIN CERTIFICATE-----)".to_owned(),
            ));
        }
        for certificate in certificates {
            roots
                .add(certificate)
                .map_err(|error| ca_error(error.to_string()))?;
        }
    }
    // rustls 0.23.48 deprecates the ring provider because it lacks post-quantum key
    // exchange. It is kept because the workspace builds rustls with ring only, and
    // aws-lc-rs would add a C and CMake build.
    #[allow(deprecated)]
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|error| Error::Tls {
            host: String::new(),
            port: 0,
            reason: error.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(config)
}

/// Creates `folder` unless it exists already.
async fn ensure_folder(
    session: &mut async_imap::Session<Stream>,
    folder: &str,
) -> Result<(), Error> {
    let exists = session.status(folder, "(MESSAGES)").await.is_ok();
    if exists {
        return Ok(());
    }
    session.create(folder).await.map_err(|error| Error::Folder {
        folder: folder.to_owned(),
        reason: format!("it is missing and could not be created: {}", reason(error)),
    })
}

/// Returns the server's text of a NO or BAD response, else the error.
fn reason(error: async_imap::error::Error) -> String {
    match error {
        async_imap::error::Error::No(text) | async_imap::error::Error::Bad(text) => {
            // async-imap 0.12 words the response as `code: .., info: Some("TEXT")`.
            match text.split_once("info: Some(\"") {
                Some((_, rest)) => rest.trim_end_matches(")").trim_end_matches('"').to_owned(),
                None => text,
            }
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_keeps_server_text() {
        let error = async_imap::error::Error::No(
            "code: None, info: Some(\"[AUTHENTICATIONFAILED] Authentication failed.\")".into(),
        );
        assert_eq!(
            reason(error),
            "[AUTHENTICATIONFAILED] Authentication failed."
        );
        let plain = async_imap::error::Error::Bad("Unknown command".into());
        assert_eq!(reason(plain), "Unknown command");
    }

    #[test]
    fn ca_file_errors_name_the_file() {
        let missing = PathBuf::from("/nonexistent/tend-ca.pem");
        let error = tls_config(Some(&missing)).expect_err("a missing CA file fails");
        assert!(
            matches!(&error, Error::CaFile { path, .. } if *path == missing),
            "{error}"
        );
        assert!(!error.is_transient());

        let directory = std::env::temp_dir().join(format!("tend-imap-ca-{}", std::process::id()));
        std::fs::create_dir_all(&directory).expect("the temporary directory is writable");
        let empty = directory.join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("the file is written");
        let error = tls_config(Some(&empty)).expect_err("a file without certificates fails");
        assert!(error.to_string().contains("no PEM certificate"), "{error}");
        std::fs::remove_dir_all(&directory).expect("the temporary directory is removed");
    }
}
