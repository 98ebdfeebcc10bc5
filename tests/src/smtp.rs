//! A real SMTP server for the mail tests: aiosmtpd (from PyPI, pinned, installed on first use)
//! writing every message it takes into a Maildir that the test reads back with `mail-parser`.
//! It can be stopped mid-run and started again on the same port.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use mail_parser::{HeaderValue, MessageParser};

use crate::python;

/// aiosmtpd's release the tests pin.
const VERSION: &str = "1.4.6";

/// The virtual environment holding aiosmtpd; installed once even when tests start together.
fn aiosmtpd() -> PathBuf {
    static INSTALLED: OnceLock<PathBuf> = OnceLock::new();
    static INSTALLING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(|e| e.into_inner());
    INSTALLED
        .get_or_init(|| python::environment("aiosmtpd", VERSION, "aiosmtpd").join("bin/aiosmtpd"))
        .clone()
}

/// One message as the server took it.
#[derive(Debug, Clone)]
pub struct Delivered {
    /// The envelope's recipients (`RCPT TO`), as the server saw them.
    pub envelope_to: Vec<String>,
    /// The envelope's sender (`MAIL FROM`).
    pub envelope_from: String,
    pub from: String,
    pub to: Vec<String>,
    pub subject: String,
    pub message_id: String,
    pub in_reply_to: Vec<String>,
    pub references: Vec<String>,
    /// Every header, as (name, raw value).
    pub headers: Vec<(String, String)>,
    pub text: Option<String>,
    pub html: Option<String>,
    pub raw: Vec<u8>,
}

impl Delivered {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim())
    }
}

fn ids(value: &HeaderValue<'_>) -> Vec<String> {
    match value {
        HeaderValue::Text(text) => vec![format!("<{text}>")],
        HeaderValue::TextList(list) => list.iter().map(|t| format!("<{t}>")).collect(),
        _ => vec![],
    }
}

fn parse(raw: Vec<u8>) -> Delivered {
    let message = MessageParser::default()
        .parse(&raw)
        .expect("the server stored a message");
    let addresses = |list: Option<&mail_parser::Address<'_>>| -> Vec<String> {
        list.map(|a| {
            a.iter()
                .filter_map(|addr| addr.address().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
    };
    let headers: Vec<(String, String)> = message
        .headers_raw()
        .map(|(name, value)| (name.to_string(), value.to_string()))
        .collect();
    let raw_header = |name: &str| {
        headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.trim().to_string())
            .unwrap_or_default()
    };
    Delivered {
        envelope_to: raw_header("X-RcptTo")
            .split(',')
            .map(|a| a.trim().to_string())
            .filter(|a| !a.is_empty())
            .collect(),
        envelope_from: raw_header("X-MailFrom"),
        from: addresses(message.from()).join(", "),
        to: addresses(message.to()),
        subject: message.subject().unwrap_or_default().to_string(),
        message_id: message
            .message_id()
            .map(|id| format!("<{id}>"))
            .unwrap_or_default(),
        in_reply_to: ids(message.in_reply_to()),
        references: ids(message.references()),
        text: message.body_text(0).map(|t| t.to_string()),
        html: message.body_html(0).map(|t| t.to_string()),
        headers,
        raw,
    }
}

/// The server; stopped when dropped.
pub struct SmtpServer {
    pub port: u16,
    maildir: PathBuf,
    child: Option<Child>,
}

impl SmtpServer {
    /// Starts a server on a free loopback port with an empty Maildir.
    pub async fn start() -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let maildir = python::target_dir()
            .join("maildirs")
            .join(format!("{port}-{}", uuid::Uuid::new_v4()));
        // aiosmtpd's Maildir handler makes the directory (with new/, cur/, tmp/) itself.
        std::fs::create_dir_all(maildir.parent().expect("a parent")).expect("maildirs");
        let mut server = Self {
            port,
            maildir,
            child: None,
        };
        server.resume().await;
        server
    }

    /// `DOCKET_SMTP_URL` for this server.
    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Starts (again) on the same port, keeping what it took before.
    pub async fn resume(&mut self) {
        assert!(self.child.is_none(), "the SMTP server is running already");
        let executable = tokio::task::spawn_blocking(aiosmtpd)
            .await
            .expect("aiosmtpd is installed");
        let child = Command::new(executable)
            .args(["-n", "-l", &format!("127.0.0.1:{}", self.port)])
            .args(["-c", "aiosmtpd.handlers.Mailbox"])
            .arg(&self.maildir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("aiosmtpd starts");
        self.child = Some(child);
        for _ in 0..200 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("aiosmtpd did not listen on {} within 10 s", self.port);
    }

    /// Stops the server (SIGKILL): connections are refused until it is resumed.
    pub async fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Every message taken so far, in the order they arrived.
    pub fn messages(&self) -> Vec<Delivered> {
        let Ok(entries) = std::fs::read_dir(self.maildir.join("new")) else {
            return vec![];
        };
        let mut files: Vec<(std::time::SystemTime, String, PathBuf)> = entries
            .filter_map(Result::ok)
            .map(|e| {
                let modified = e
                    .metadata()
                    .and_then(|m| m.modified())
                    .unwrap_or(std::time::UNIX_EPOCH);
                (
                    modified,
                    e.file_name().to_string_lossy().into_owned(),
                    e.path(),
                )
            })
            .collect();
        files.sort();
        files
            .into_iter()
            .filter_map(|(_, _, path)| std::fs::read(path).ok())
            .map(parse)
            .collect()
    }

    /// How many messages it has taken (without reading them).
    pub fn count(&self) -> usize {
        std::fs::read_dir(self.maildir.join("new"))
            .map(|entries| entries.count())
            .unwrap_or(0)
    }

    /// Waits until at least `count` messages have arrived (at most `within`), and returns all.
    pub async fn wait_for(&self, count: usize, within: Duration) -> Vec<Delivered> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let messages = self.messages();
            if messages.len() >= count || tokio::time::Instant::now() >= deadline {
                return messages;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for SmtpServer {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_dir_all(&self.maildir);
    }
}
