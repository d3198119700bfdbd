//! The self-reconnecting client: it comes back by itself when a server
//! restarts on the same port, and gives up within a bound when none does.

use std::net::SocketAddr;
use std::time::Duration;
use tern_tokio::{
    Config, Endpoint, EndpointConfig, Error, ReconnectConfig, ReconnectError, ReconnectEvent,
    ReconnectingClient, public_key,
};
use tokio::sync::broadcast;
use tokio::task::JoinHandle;
use tokio::time::{Instant, timeout};

const SERVER_KEY: [u8; 32] = [0x33; 32];

/// A client config whose failed attempts end quickly.
fn client_config() -> Config {
    Config {
        handshake_timeout: Duration::from_millis(300),
        ..Config::service()
    }
}

/// An echo server on `addr`; retries the bind while the old socket on
/// that port is still being released.
async fn echo_server(addr: SocketAddr) -> (Endpoint, JoinHandle<()>) {
    let deadline = Instant::now() + Duration::from_secs(5);
    let server = loop {
        match Endpoint::bind(addr, EndpointConfig::server(Config::service(), SERVER_KEY)) {
            Ok(s) => break s,
            Err(e) if Instant::now() < deadline => {
                eprintln!("bind {addr}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => panic!("bind {addr}: {e}"),
        }
    };
    let s2 = server.clone();
    let task = tokio::spawn(async move {
        while let Some(conn) = s2.accept().await {
            tokio::spawn(async move {
                while let Ok((ch, m)) = conn.recv().await {
                    let _ = conn.send(ch, m).await;
                }
            });
        }
    });
    (server, task)
}

async fn echo(client: &ReconnectingClient, msg: &str) {
    client.send(0, msg.as_bytes().to_vec()).await.unwrap();
    let (ch, got) = client.recv().await.unwrap();
    assert_eq!((ch, &got[..]), (0, msg.as_bytes()));
}

fn drain(rx: &mut broadcast::Receiver<ReconnectEvent>) -> Vec<ReconnectEvent> {
    let mut v = Vec::new();
    while let Ok(e) = rx.try_recv() {
        v.push(e);
    }
    v
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_to_a_server_restarted_on_the_same_port() {
    timeout(Duration::from_secs(60), async {
        let (server, task) = echo_server("127.0.0.1:0".parse().unwrap()).await;
        let addr = server.local_addr();
        let ep = Endpoint::client("127.0.0.1:0".parse().unwrap(), client_config()).unwrap();
        let rc = ReconnectConfig {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(400),
            multiplier: 2.0,
            jitter: 0.2,
            max_attempts: None,
            check_interval: Duration::from_millis(50),
        };
        let client = ReconnectingClient::new(ep, addr, public_key(&SERVER_KEY), rc);
        let mut events = client.events();
        client.wait_connected().await.unwrap();
        echo(&client, "before").await;

        // The server goes away (its CLOSE reaches the client), and stays
        // away for a while: the client keeps trying.
        server.shutdown().await;
        task.abort();
        drop(server);
        let down = Instant::now();
        loop {
            match client.send(0, &b"while down"[..]).await {
                Err(ReconnectError::Reconnecting { .. }) => break,
                Err(ReconnectError::Disconnected(_)) | Ok(()) => {}
                Err(e) => panic!("unexpected {e:?}"),
            }
            assert!(down.elapsed() < Duration::from_secs(10), "never noticed");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        tokio::time::sleep(Duration::from_millis(800)).await;

        // A new server on the same port: the client comes back by itself.
        let (server, _task) = echo_server(addr).await;
        client.wait_connected().await.unwrap();
        echo(&client, "after").await;

        let ev = drain(&mut events);
        eprintln!("{ev:#?}");
        assert!(matches!(ev[0], ReconnectEvent::Connecting { attempt: 1 }));
        assert!(matches!(ev[1], ReconnectEvent::Connected { attempt: 1 }));
        let ReconnectEvent::Disconnected { error } = &ev[2] else {
            panic!("{:?}", ev[2]);
        };
        assert!(
            matches!(
                error,
                Error::Closed(tern::ConnectionError::PeerClosed { .. })
            ),
            "{error:?}"
        );
        // Then attempts 1, 2, 3, ... in order, each after a wait longer
        // than the last, until one connects.
        let mut next = 1;
        let mut last_delay = Duration::ZERO;
        let mut connected = false;
        for e in &ev[3..] {
            match e {
                ReconnectEvent::Waiting { attempt, delay } => {
                    assert_eq!(*attempt, next);
                    assert!(*delay > last_delay, "{delay:?} after {last_delay:?}");
                    last_delay = *delay;
                }
                ReconnectEvent::Connecting { attempt } => assert_eq!(*attempt, next),
                ReconnectEvent::AttemptFailed { attempt, .. } => {
                    assert_eq!(*attempt, next);
                    next += 1;
                }
                ReconnectEvent::Connected { attempt } => {
                    assert_eq!(*attempt, next);
                    connected = true;
                }
                e => panic!("unexpected {e:?}"),
            }
        }
        assert!(connected);
        assert!(next >= 2, "the server was down for several attempts");
        client.close(0, "done").await.unwrap();
        assert!(matches!(client.connection(), Err(ReconnectError::Closed)));
        server.shutdown().await;
    })
    .await
    .expect("bounded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_up_after_max_attempts_when_the_server_never_comes_back() {
    // A port with nothing on it.
    let addr = std::net::UdpSocket::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let ep = Endpoint::client("127.0.0.1:0".parse().unwrap(), client_config()).unwrap();
    let rc = ReconnectConfig {
        initial: Duration::from_millis(40),
        max: Duration::from_secs(1),
        multiplier: 2.0,
        jitter: 0.2,
        max_attempts: Some(4),
        check_interval: Duration::from_millis(50),
    };
    let client = ReconnectingClient::new(ep, addr, public_key(&SERVER_KEY), rc);
    let mut events = client.events();
    let start = Instant::now();
    let r = timeout(Duration::from_secs(20), client.wait_connected())
        .await
        .expect("gives up within the bound");
    // 4 handshake timeouts of 0.3 s and waits of at most 40+80+160 ms.
    let took = start.elapsed();
    assert!(took < Duration::from_secs(10), "{took:?}");
    let Err(ReconnectError::GaveUp(Error::Closed(tern::ConnectionError::HandshakeTimeout))) = r
    else {
        panic!("{r:?}");
    };
    assert!(matches!(
        client.send(0, &b"x"[..]).await,
        Err(ReconnectError::GaveUp(_))
    ));

    let ev = drain(&mut events);
    let mut it = ev.iter();
    let mut last_delay = Duration::ZERO;
    for n in 1..=4u32 {
        if n > 1 {
            let Some(ReconnectEvent::Waiting { attempt, delay }) = it.next() else {
                panic!("{ev:?}");
            };
            assert_eq!(*attempt, n);
            assert!(*delay > last_delay, "{delay:?} after {last_delay:?}");
            last_delay = *delay;
        }
        assert!(matches!(it.next(), Some(ReconnectEvent::Connecting { attempt }) if *attempt == n));
        assert!(
            matches!(it.next(), Some(ReconnectEvent::AttemptFailed { attempt, .. }) if *attempt == n)
        );
    }
    assert!(matches!(
        it.next(),
        Some(ReconnectEvent::GaveUp { attempts: 4, .. })
    ));
    assert!(it.next().is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_a_server_crash_noticed_by_the_idle_timeout() {
    timeout(Duration::from_secs(60), async {
        // The first server runs on a runtime of its own, dropped at once
        // to crash it: no CLOSE is sent, the socket just goes away.
        let (addr_tx, addr_rx) = tokio::sync::oneshot::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let crashed = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async {
                let (server, _task) = echo_server("127.0.0.1:0".parse().unwrap()).await;
                addr_tx.send(server.local_addr()).unwrap();
                let _ = stop_rx.await;
            });
            // `rt` drops here: every task, the socket with them.
        });
        let addr = addr_rx.await.unwrap();
        let config = Config {
            idle_timeout: Duration::from_millis(800),
            keepalive: Some(Duration::from_millis(200)),
            ..client_config()
        };
        let ep = Endpoint::client("127.0.0.1:0".parse().unwrap(), config).unwrap();
        let rc = ReconnectConfig {
            initial: Duration::from_millis(50),
            max: Duration::from_millis(300),
            check_interval: Duration::from_millis(50),
            ..ReconnectConfig::default()
        };
        let client = ReconnectingClient::new(ep, addr, public_key(&SERVER_KEY), rc);
        let mut events = client.events();
        client.wait_connected().await.unwrap();
        echo(&client, "before").await;

        stop_tx.send(()).unwrap();
        crashed.join().unwrap();
        let mut state = client.state();
        state
            .wait_for(|s| matches!(s, tern_tokio::ReconnectState::Connecting { .. }))
            .await
            .unwrap();
        let (_server, _task) = echo_server(addr).await;
        client.wait_connected().await.unwrap();
        echo(&client, "after").await;

        let ev = drain(&mut events);
        let lost = ev
            .iter()
            .find_map(|e| match e {
                ReconnectEvent::Disconnected { error } => Some(error),
                _ => None,
            })
            .expect("a Disconnected event");
        assert!(
            matches!(
                lost,
                Error::Closed(tern::ConnectionError::IdleTimeout)
                    | Error::Closed(tern::ConnectionError::DeliveryTimeout)
            ),
            "{lost:?}"
        );
        assert!(matches!(ev.last(), Some(ReconnectEvent::Connected { .. })));
    })
    .await
    .expect("bounded");
}
