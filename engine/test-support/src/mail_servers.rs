//! The Postfix and Dovecot test servers that `scripts/ensure-mailserver.sh` starts on
//! 127.0.0.1: send a raw message over SMTP, and read a user's folder over IMAP.
//!
//! Every address of example.com, example.org and example.net is a Dovecot user with one
//! password, so each test takes addresses of its own from [`MailServers::address`] and
//! never sees the mail of another test.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use rand::Rng as _;
use rand::distributions::Alphanumeric;
use tend_imap::{AfterProcessing, Connection, Security, Settings};
use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};
use tokio::net::TcpStream;

/// Set to 1 by `scripts/test.sh`: the mail server tests then fail, instead of skipping,
/// when the servers do not run.
pub const REQUIRE_ENV: &str = "TEND_REQUIRE_MAIL_SERVERS";

/// Pause between two looks at a folder while waiting for messages.
const WAIT_STEP: Duration = Duration::from_millis(200);

/// Ports, password and CA file of the running test servers, from the environment that
/// `scripts/ensure-mailserver.sh` prints, with its defaults.
#[derive(Debug, Clone)]
pub struct MailServers {
    pub smtp_port: u16,
    pub imap_port: u16,
    pub imaps_port: u16,
    pub password: String,
    /// PEM file of the CA that signed Dovecot's certificate.
    pub ca_file: PathBuf,
}

fn env_port(name: &str, default: u16) -> anyhow::Result<u16> {
    match std::env::var(name) {
        Ok(text) => text
            .parse()
            .with_context(|| format!("{name}={text} is not a port number")),
        Err(_) => Ok(default),
    }
}

impl MailServers {
    /// Returns the servers when they accept connections. When they do not, fails under
    /// `TEND_REQUIRE_MAIL_SERVERS=1`, and otherwise prints why `test` is skipped and
    /// returns `None`.
    pub async fn find(test: &str) -> anyhow::Result<Option<MailServers>> {
        let servers = MailServers {
            smtp_port: env_port("TEND_TEST_SMTP_PORT", 2525)?,
            imap_port: env_port("TEND_TEST_IMAP_PORT", 1143)?,
            imaps_port: env_port("TEND_TEST_IMAPS_PORT", 1993)?,
            password: std::env::var("TEND_TEST_MAIL_PASSWORD")
                .unwrap_or_else(|_| "tend-test-password".to_owned()),
            ca_file: std::env::var_os("TEND_TEST_MAIL_CA").map_or_else(
                || PathBuf::from("/var/lib/tend-test-mail/tls/ca.crt"),
                PathBuf::from,
            ),
        };
        let mut missing = Vec::new();
        for (name, port) in [("SMTP", servers.smtp_port), ("IMAP", servers.imap_port)] {
            if TcpStream::connect(("127.0.0.1", port)).await.is_err() {
                missing.push(format!("{name} on 127.0.0.1:{port}"));
            }
        }
        if !servers.ca_file.is_file() {
            missing.push(format!("the CA file {}", servers.ca_file.display()));
        }
        if missing.is_empty() {
            return Ok(Some(servers));
        }
        let reason = format!(
            "{} not found: run scripts/ensure-mailserver.sh",
            missing.join(" and ")
        );
        anyhow::ensure!(
            std::env::var(REQUIRE_ENV).as_deref() != Ok("1"),
            "{reason} ({REQUIRE_ENV}=1 makes this a failure)"
        );
        eprintln!("skipped {test}: {reason}");
        Ok(None)
    }

    /// Returns a new address `LOCAL-RANDOM@DOMAIN`, a mailbox no other test uses.
    pub fn address(&self, local: &str, domain: &str) -> String {
        let random: String = rand::thread_rng()
            .sample_iter(&Alphanumeric)
            .take(12)
            .map(|c| char::from(c).to_ascii_lowercase())
            .collect();
        format!("{local}-{random}@{domain}")
    }

    /// Sends `raw` from `from` to `to` through Postfix.
    pub async fn send(&self, from: &str, to: &[&str], raw: &[u8]) -> anyhow::Result<()> {
        self.send_many(from, to, &[raw.to_vec()]).await
    }

    /// Sends each message of `messages` from `from` to `to` through Postfix, in one
    /// SMTP session.
    pub async fn send_many(
        &self,
        from: &str,
        to: &[&str],
        messages: &[Vec<u8>],
    ) -> anyhow::Result<()> {
        let stream = TcpStream::connect(("127.0.0.1", self.smtp_port))
            .await
            .with_context(|| {
                format!("cannot connect to Postfix on 127.0.0.1:{}", self.smtp_port)
            })?;
        let (read, mut write) = stream.into_split();
        let mut replies = BufReader::new(read);
        smtp_reply(&mut replies, 220).await?;
        smtp_command(&mut write, &mut replies, "EHLO tend-tests", 250).await?;
        for raw in messages {
            smtp_command(
                &mut write,
                &mut replies,
                &format!("MAIL FROM:<{from}>"),
                250,
            )
            .await?;
            for recipient in to {
                smtp_command(
                    &mut write,
                    &mut replies,
                    &format!("RCPT TO:<{recipient}>"),
                    250,
                )
                .await?;
            }
            smtp_command(&mut write, &mut replies, "DATA", 354).await?;
            write.write_all(&dot_stuffed(raw)).await?;
            smtp_command(&mut write, &mut replies, ".", 250).await?;
        }
        smtp_command(&mut write, &mut replies, "QUIT", 221).await?;
        Ok(())
    }

    /// IMAP settings of `user` on Dovecot's STARTTLS port, trusting the test CA.
    /// Processed messages go to `Processed`, as in the mailbox files of the tests.
    pub fn imap_settings(&self, user: &str, folder: &str) -> Settings {
        Settings {
            host: "127.0.0.1".to_owned(),
            port: self.imap_port,
            security: Security::Starttls,
            username: user.to_owned(),
            password: self.password.clone(),
            ca_file: Some(self.ca_file.clone()),
            folder: folder.to_owned(),
            after_processing: AfterProcessing::MoveTo("Processed".to_owned()),
        }
    }

    /// Returns the raw messages of `user`'s `folder`, oldest first, without setting
    /// `\Seen`; none when the folder does not exist.
    pub async fn messages(&self, user: &str, folder: &str) -> anyhow::Result<Vec<Vec<u8>>> {
        let mut settings = self.imap_settings(user, folder);
        // A keyword that no message has: the listing then creates no folder and lists
        // every message.
        settings.after_processing = AfterProcessing::Flag("TendTestNeverSet".to_owned());
        let mut connection = match Connection::open(&settings).await {
            Ok(connection) => connection,
            Err(tend_imap::Error::Folder { .. }) => return Ok(Vec::new()),
            Err(error) => {
                return Err(error).with_context(|| format!("cannot open {folder} of {user}"));
            }
        };
        let messages = connection.all_messages().await?;
        connection.logout().await;
        Ok(messages.into_iter().map(|(_, raw)| raw).collect())
    }

    /// Waits until `user`'s `folder` has at least `count` messages and returns them; fails
    /// after `timeout` with the number found.
    pub async fn wait_for_messages(
        &self,
        user: &str,
        folder: &str,
        count: usize,
        timeout: Duration,
    ) -> anyhow::Result<Vec<Vec<u8>>> {
        let started = Instant::now();
        loop {
            let messages = self.messages(user, folder).await?;
            if messages.len() >= count {
                return Ok(messages);
            }
            anyhow::ensure!(
                started.elapsed() < timeout,
                "{folder} of {user} has {} messages after {timeout:?}; expected {count}",
                messages.len()
            );
            tokio::time::sleep(WAIT_STEP).await;
        }
    }
}

/// Converts line ends to CRLF, doubles a leading dot and appends the final dot line's
/// line end, as SMTP's DATA needs (RFC 5321, section 4.5.2).
fn dot_stuffed(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len() + 64);
    for line in raw.split(|byte| *byte == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.first() == Some(&b'.') {
            out.push(b'.');
        }
        out.extend_from_slice(line);
        out.extend_from_slice(b"\r\n");
    }
    if raw.ends_with(b"\n") {
        out.truncate(out.len() - 2);
    }
    out
}

async fn smtp_command(
    write: &mut tokio::net::tcp::OwnedWriteHalf,
    replies: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    command: &str,
    expected: u16,
) -> anyhow::Result<()> {
    write.write_all(format!("{command}\r\n").as_bytes()).await?;
    smtp_reply(replies, expected)
        .await
        .with_context(|| format!("SMTP command `{command}`"))
}

/// Reads one (possibly multi-line) SMTP reply and checks its code.
async fn smtp_reply(
    replies: &mut BufReader<tokio::net::tcp::OwnedReadHalf>,
    expected: u16,
) -> anyhow::Result<()> {
    let mut text = String::new();
    loop {
        let mut line = String::new();
        anyhow::ensure!(
            replies.read_line(&mut line).await? > 0,
            "Postfix closed the connection; it sent: {text}"
        );
        text.push_str(&line);
        // A multi-line reply continues while the code is followed by `-`.
        if line.as_bytes().get(3) != Some(&b'-') {
            break;
        }
    }
    let code: u16 = text.get(..3).unwrap_or_default().parse().unwrap_or(0);
    anyhow::ensure!(
        code == expected,
        "Postfix replied `{}`; expected {expected}",
        text.trim_end()
    );
    Ok(())
}
