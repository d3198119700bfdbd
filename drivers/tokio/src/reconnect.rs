//! A client that keeps one connection up: when it ends it connects again,
//! with exponential backoff and jitter, reporting every attempt.
//!
//! Built on the public [`Endpoint`] and [`Connection`] API: a supervisor
//! task connects, watches the connection (every
//! [`check_interval`](ReconnectConfig::check_interval), and at once when an
//! application call sees it end), and on a transport, timeout or
//! peer-close error waits and connects again. Application calls use the
//! current connection or fail with a typed [`ReconnectError`]; nothing is
//! buffered while reconnecting.

use crate::{Connection, Credentials, Endpoint, Error, SendError};
use bytes::Bytes;
use rand::rngs::{StdRng, SysRng};
use rand::{Rng, SeedableRng};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{Notify, broadcast, watch};
use tokio::task::JoinHandle;
use tracing::{debug, info, warn};

/// How a [`ReconnectingClient`] retries.
///
/// The wait before attempt `n` of an outage (`n` ≥ 1; the very first
/// connection at start does not wait) is `initial * multiplier^(n-1)`,
/// capped at `max`, then shortened by a random fraction of at most
/// `jitter`, so that many clients of one server do not retry in step.
/// Each attempt is bounded by the connection's handshake timeout.
#[derive(Clone, Debug)]
pub struct ReconnectConfig {
    /// The wait before the first attempt after a disconnect.
    pub initial: Duration,
    /// The longest wait.
    pub max: Duration,
    /// Growth of the wait per failed attempt (at least 1).
    pub multiplier: f64,
    /// Largest fraction (0 to 1) taken off each wait at random.
    pub jitter: f64,
    /// Failed attempts in a row after which the client gives up; `None`
    /// retries forever.
    pub max_attempts: Option<u32>,
    /// How often the supervisor checks that the connection still lives
    /// (application calls that see it end wake it at once).
    pub check_interval: Duration,
}

impl Default for ReconnectConfig {
    fn default() -> Self {
        ReconnectConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            multiplier: 2.0,
            jitter: 0.2,
            max_attempts: None,
            check_interval: Duration::from_millis(250),
        }
    }
}

impl ReconnectConfig {
    /// The wait before attempt `n` (≥ 1) of an outage without jitter.
    pub fn base_delay(&self, n: u32) -> Duration {
        let m = self.multiplier.max(1.0);
        let f = m.powi(n.saturating_sub(1).min(1024) as i32);
        let d = self.initial.as_secs_f64() * f;
        if d.is_finite() && d < self.max.as_secs_f64() {
            Duration::from_secs_f64(d)
        } else {
            self.max
        }
    }

    fn delay(&self, n: u32, rng: &mut impl Rng) -> Duration {
        let base = self.base_delay(n);
        let j = self.jitter.clamp(0.0, 1.0);
        // A uniform fraction in [0, 1).
        let u = (rng.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        base.mul_f64(1.0 - j * u)
    }
}

/// What the client reports, in order, on [`ReconnectingClient::events`].
#[derive(Clone, Debug)]
pub enum ReconnectEvent {
    /// Waiting `delay` before attempt `attempt`.
    Waiting {
        /// The attempt that follows (1 for the first of an outage).
        attempt: u32,
        /// How long.
        delay: Duration,
    },
    /// Attempt `attempt` of this outage started.
    Connecting {
        /// 1 for the first.
        attempt: u32,
    },
    /// Attempt `attempt` failed with `error`.
    AttemptFailed {
        /// The attempt.
        attempt: u32,
        /// Why (handshake timeout, handshake failure, ...).
        error: Error,
    },
    /// Connected on attempt `attempt`.
    Connected {
        /// The attempt that succeeded.
        attempt: u32,
    },
    /// The connection ended with `error`; reconnecting.
    Disconnected {
        /// Why it ended.
        error: Error,
    },
    /// No more attempts: the client stays down.
    GaveUp {
        /// Attempts made in the last outage.
        attempts: u32,
        /// The last attempt's error.
        error: Error,
    },
}

/// Where the client is, on [`ReconnectingClient::state`].
#[derive(Clone, Debug)]
pub enum ReconnectState {
    /// Attempt `attempt` of an outage is under way or about to start.
    Connecting {
        /// 1 for the first.
        attempt: u32,
    },
    /// Up, on this connection.
    Connected(Connection),
    /// Gave up after the configured attempts (or a setup error).
    GaveUp(Error),
    /// Closed by the application.
    Closed,
}

/// Why a call on a [`ReconnectingClient`] did not go through.
#[derive(Clone, Debug, thiserror::Error)]
pub enum ReconnectError {
    /// No connection now: attempt `attempt` of a reconnect is under way.
    /// Nothing was sent or queued; try again after
    /// [`wait_connected`](ReconnectingClient::wait_connected).
    #[error("reconnecting (attempt {attempt})")]
    Reconnecting {
        /// The attempt under way.
        attempt: u32,
    },
    /// The connection the call used ended with this error; a reconnect
    /// has started.
    #[error("connection lost: {0}")]
    Disconnected(Error),
    /// The client gave up reconnecting; this was the last error.
    #[error("gave up reconnecting: {0}")]
    GaveUp(Error),
    /// The application closed the client.
    #[error("client closed")]
    Closed,
    /// The send failed on a live connection (message too large, empty,
    /// invalid channel, datagram queue full).
    #[error(transparent)]
    Send(SendError),
}

/// What to connect with.
#[derive(Clone)]
enum Target {
    Key([u8; 32]),
    Creds(Box<Credentials>),
}

struct Shared {
    state: watch::Sender<ReconnectState>,
    events: broadcast::Sender<ReconnectEvent>,
    /// The first receiver, made before the supervisor started, so no
    /// event is missed.
    first_events: Mutex<Option<broadcast::Receiver<ReconnectEvent>>>,
    /// An application call saw the connection end.
    lost: Notify,
}

impl Shared {
    fn emit(&self, e: ReconnectEvent) {
        let _ = self.events.send(e);
    }
}

/// A client connection that reconnects by itself; see the
/// [module docs](self).
///
/// ```no_run
/// # async fn f() -> Result<(), Box<dyn std::error::Error>> {
/// use tern_tokio::{Config, Endpoint, ReconnectConfig, ReconnectingClient};
/// let ep = Endpoint::client("0.0.0.0:0".parse()?, Config::service())?;
/// let server_key = [0u8; 32]; // the server's static public key
/// let client = ReconnectingClient::new(ep, "192.0.2.1:4433".parse()?, server_key,
///     ReconnectConfig::default());
/// client.wait_connected().await?;
/// client.send(0, &b"hello"[..]).await?;
/// # Ok(()) }
/// ```
pub struct ReconnectingClient {
    shared: Arc<Shared>,
    task: JoinHandle<()>,
}

impl Drop for ReconnectingClient {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl ReconnectingClient {
    /// Keeps a connection from `endpoint` to the server at `server` whose
    /// static public key is `server_public_key` (as
    /// [`Endpoint::connect`]). Starts connecting at once, in a task of the
    /// current tokio runtime.
    pub fn new(
        endpoint: Endpoint,
        server: SocketAddr,
        server_public_key: [u8; 32],
        config: ReconnectConfig,
    ) -> Self {
        Self::start(endpoint, server, Target::Key(server_public_key), config)
    }

    /// Like [`new`](Self::new) with every key given (as
    /// [`Endpoint::connect_with`]).
    pub fn with_credentials(
        endpoint: Endpoint,
        server: SocketAddr,
        creds: Credentials,
        config: ReconnectConfig,
    ) -> Self {
        Self::start(endpoint, server, Target::Creds(Box::new(creds)), config)
    }

    fn start(ep: Endpoint, server: SocketAddr, target: Target, config: ReconnectConfig) -> Self {
        let (events, first) = broadcast::channel(256);
        let shared = Arc::new(Shared {
            state: watch::Sender::new(ReconnectState::Connecting { attempt: 1 }),
            events,
            first_events: Mutex::new(Some(first)),
            lost: Notify::new(),
        });
        let task = tokio::spawn(supervise(ep, server, target, config, shared.clone()));
        ReconnectingClient { shared, task }
    }

    /// The events, in order, from the start for the first caller and from
    /// now on for later ones. Bounded: a receiver that falls more than 256
    /// events behind loses the oldest (`RecvError::Lagged`).
    pub fn events(&self) -> broadcast::Receiver<ReconnectEvent> {
        let first = self
            .shared
            .first_events
            .lock()
            .ok()
            .and_then(|mut f| f.take());
        first.unwrap_or_else(|| self.shared.events.subscribe())
    }

    /// The current state, to watch for changes.
    pub fn state(&self) -> watch::Receiver<ReconnectState> {
        self.shared.state.subscribe()
    }

    /// The current connection, or why there is none.
    pub fn connection(&self) -> Result<Connection, ReconnectError> {
        match &*self.shared.state.borrow() {
            ReconnectState::Connected(c) => Ok(c.clone()),
            ReconnectState::Connecting { attempt } => {
                Err(ReconnectError::Reconnecting { attempt: *attempt })
            }
            ReconnectState::GaveUp(e) => Err(ReconnectError::GaveUp(e.clone())),
            ReconnectState::Closed => Err(ReconnectError::Closed),
        }
    }

    /// Waits until connected (returning the connection), given up or
    /// closed.
    pub async fn wait_connected(&self) -> Result<Connection, ReconnectError> {
        let mut rx = self.shared.state.subscribe();
        loop {
            match self.connection() {
                Err(ReconnectError::Reconnecting { .. }) => {}
                r => return r,
            }
            if rx.changed().await.is_err() {
                return Err(ReconnectError::Closed);
            }
        }
    }

    fn lost(&self, e: Error) -> ReconnectError {
        self.shared.lost.notify_one();
        ReconnectError::Disconnected(e)
    }

    /// [`Connection::send`] on the current connection.
    pub async fn send(&self, channel: u32, msg: impl AsRef<[u8]>) -> Result<(), ReconnectError> {
        let c = self.connection()?;
        c.send(channel, msg).await.map_err(|e| match e {
            SendError::Closed(e) => self.lost(e),
            e => ReconnectError::Send(e),
        })
    }

    /// [`Connection::recv`] on the current connection.
    pub async fn recv(&self) -> Result<(u32, Bytes), ReconnectError> {
        let c = self.connection()?;
        c.recv().await.map_err(|e| self.lost(e))
    }

    /// Stops reconnecting and closes the current connection gracefully
    /// (as [`Connection::close`]).
    pub async fn close(&self, code: u32, reason: &str) -> Result<(), ReconnectError> {
        self.task.abort();
        let old = self.shared.state.send_replace(ReconnectState::Closed);
        if let ReconnectState::Connected(c) = old {
            c.close(code, reason)
                .await
                .map_err(ReconnectError::Disconnected)?;
        }
        Ok(())
    }
}

/// Errors no retry can cure.
fn permanent(e: &Error) -> bool {
    matches!(e, Error::Setup(_) | Error::EndpointClosed)
}

async fn supervise(
    ep: Endpoint,
    server: SocketAddr,
    target: Target,
    config: ReconnectConfig,
    shared: Arc<Shared>,
) {
    let mut rng = match StdRng::try_from_rng(&mut SysRng) {
        Ok(r) => r,
        Err(_) => StdRng::seed_from_u64(u64::from(server.port())),
    };
    let mut n = 0u32;
    let mut startup = true;
    loop {
        n += 1;
        shared
            .state
            .send_replace(ReconnectState::Connecting { attempt: n });
        if !(startup && n == 1) {
            let delay = config.delay(n, &mut rng);
            debug!(%server, attempt = n, ?delay, "waiting to reconnect");
            shared.emit(ReconnectEvent::Waiting { attempt: n, delay });
            tokio::time::sleep(delay).await;
        }
        info!(%server, attempt = n, "connecting");
        shared.emit(ReconnectEvent::Connecting { attempt: n });
        let r = match &target {
            Target::Key(k) => ep.connect(server, *k).await,
            Target::Creds(c) => ep.connect_with(server, (**c).clone()).await,
        };
        match r {
            Ok(conn) => {
                info!(%server, attempt = n, "connected");
                shared.emit(ReconnectEvent::Connected { attempt: n });
                shared
                    .state
                    .send_replace(ReconnectState::Connected(conn.clone()));
                let error = watch_connection(&conn, &shared, config.check_interval).await;
                drop(conn);
                warn!(%server, %error, "disconnected; reconnecting");
                shared.emit(ReconnectEvent::Disconnected {
                    error: error.clone(),
                });
                if permanent(&error) {
                    return give_up(&shared, n, error);
                }
                n = 0;
                startup = false;
            }
            Err(error) => {
                warn!(%server, attempt = n, %error, "connect attempt failed");
                shared.emit(ReconnectEvent::AttemptFailed {
                    attempt: n,
                    error: error.clone(),
                });
                if permanent(&error) || config.max_attempts.is_some_and(|m| n >= m) {
                    return give_up(&shared, n, error);
                }
            }
        }
    }
}

fn give_up(shared: &Shared, attempts: u32, error: Error) {
    warn!(attempts, %error, "giving up reconnecting");
    shared.emit(ReconnectEvent::GaveUp {
        attempts,
        error: error.clone(),
    });
    shared.state.send_replace(ReconnectState::GaveUp(error));
}

/// Waits until `conn` ends and returns why.
async fn watch_connection(conn: &Connection, shared: &Shared, every: Duration) -> Error {
    loop {
        tokio::select! {
            () = shared.lost.notified() => {}
            () = tokio::time::sleep(every) => {}
        }
        match conn.stats().await {
            Ok(s) if !s.ended => {}
            Ok(_) => {
                // Ended: every call now returns the reason; opening a
                // channel changes nothing on an ended connection.
                return match conn.open_channel().await {
                    Err(SendError::Closed(e)) => e,
                    _ => Error::EndpointClosed,
                };
            }
            Err(e) => return e,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_by_the_multiplier_up_to_the_cap_with_bounded_jitter() {
        let c = ReconnectConfig {
            initial: Duration::from_millis(100),
            max: Duration::from_millis(1000),
            multiplier: 2.0,
            jitter: 0.25,
            ..ReconnectConfig::default()
        };
        let want = [100, 200, 400, 800, 1000, 1000];
        let mut rng = StdRng::seed_from_u64(1);
        for (n, ms) in (1..).zip(want) {
            assert_eq!(c.base_delay(n), Duration::from_millis(ms));
            for _ in 0..100 {
                let d = c.delay(n, &mut rng);
                assert!(d <= Duration::from_millis(ms), "{n}: {d:?}");
                assert!(d >= Duration::from_millis(ms) * 3 / 4, "{n}: {d:?}");
            }
        }
        assert_eq!(c.base_delay(u32::MAX), Duration::from_millis(1000));
        let flat = ReconnectConfig {
            multiplier: 0.5,
            jitter: 0.0,
            ..c
        };
        assert_eq!(flat.delay(5, &mut rng), Duration::from_millis(100));
    }
}
