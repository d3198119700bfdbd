//! What can go wrong, each with the exit code scripts rely on.

use std::fmt;

/// A failure of a command; see `tern --help` for the exit codes.
#[derive(Debug)]
pub enum CliError {
    /// Something the command checked did not hold (exit 1).
    Failed(String),
    /// Bad arguments that the parser could not catch (exit 2).
    Usage(String),
    /// A key file problem (exit 3).
    Key(String),
    /// No connection to the server (exit 4).
    Connect(String),
    /// Other I/O (exit 5).
    Io(String),
}

impl CliError {
    /// The process exit code.
    pub fn exit_code(&self) -> u8 {
        match self {
            CliError::Failed(_) => 1,
            CliError::Usage(_) => 2,
            CliError::Key(_) => 3,
            CliError::Connect(_) => 4,
            CliError::Io(_) => 5,
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CliError::Failed(m)
            | CliError::Usage(m)
            | CliError::Key(m)
            | CliError::Connect(m)
            | CliError::Io(m) => f.write_str(m),
        }
    }
}

/// Explains why a connection could not be made or ended early.
pub fn connect_error(to: &str, e: &tern_tokio::Error) -> CliError {
    use tern_tokio::{ConnectionError as C, Error as E};
    let m = match e {
        E::Closed(C::HandshakeTimeout) => format!(
            "no answer from {to} within the handshake timeout \
             (is `tern serve` running there, and is --server-key its public key?)"
        ),
        E::Closed(C::HandshakeFailed(why)) => {
            format!("handshake with {to} failed: {why} (wrong --server-key?)")
        }
        E::Closed(C::VersionMismatch { ours, theirs }) => {
            format!("{to} speaks Tern version {theirs}, this tern speaks {ours}")
        }
        E::Setup(why) => format!("cannot connect to {to}: {why}"),
        e => format!("connection to {to} failed: {e}"),
    };
    CliError::Connect(m)
}
