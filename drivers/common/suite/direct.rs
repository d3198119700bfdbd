//! Handles work on the endpoint's shared state from their own tasks, on
//! every runtime: many tasks sending and receiving on one connection at
//! once, sends blocked on flow control and woken by credit, and cancelled
//! waits that lose nothing.

use crate::suite::{
    Endpoint, Net, Runtime, SERVER_KEY, client, fill, poll_across_a_yield, server, timeout,
};
use bytes::Bytes;
use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake};
use std::time::Duration;
use tern_driver::{Config, Connection, SendError, code, public_key};

/// This file's `#[test]`s on runtime `$rt`.
macro_rules! tests {
    ($rt:ty) => {
        $crate::suite::tests!($rt, direct:
            run_threaded many_tasks_send_and_receive_on_one_connection,
            run_threaded concurrent_senders_keep_their_own_order,
            run a_blocked_send_is_woken_by_credit,
            run a_blocked_send_is_not_overtaken_on_its_channel,
            run a_cancelled_first_sender_lets_the_next_one_go,
            run cancelled_blocked_calls_lose_nothing,
            run_threaded handles_work_from_another_executor,
        );
    };
}
pub(crate) use tests;

/// A server and a client connected to it, with `config` on both sides:
/// the server, the client, the client's connection, the server's.
async fn pair<R: Runtime>(config: Config) -> (R::Endpoint, R::Endpoint, Connection, Connection) {
    let server = server::<R>(Net::Udp, config.clone());
    let client = client::<R>(Net::Udp, config);
    let conn = client
        .connect(server.local_addr(), public_key(&SERVER_KEY))
        .await
        .unwrap();
    let sc = server.accept().await.unwrap();
    (server, client, conn, sc)
}

/// Small windows, so that a sender fills them quickly.
fn small() -> Config {
    Config {
        channel_window: 4 * 1024,
        connection_window: 8 * 1024,
        max_message_size: 2 * 1024,
        ..Config::service()
    }
}

/// `senders` tasks each sending `each` messages of `size` bytes, tagged
/// with the sender and the message's number, on channel `channel(sender)`.
fn spawn_senders<R: Runtime>(
    conn: &Connection,
    senders: u32,
    each: u32,
    size: usize,
    channel: fn(u32) -> u32,
) -> Vec<R::Task<()>> {
    (0..senders)
        .map(|s| {
            let c = conn.clone();
            R::spawn(async move {
                for i in 0..each {
                    let mut m = vec![0u8; size];
                    m[..4].copy_from_slice(&s.to_be_bytes());
                    m[4..8].copy_from_slice(&i.to_be_bytes());
                    c.send(channel(s), m).await.unwrap();
                }
            })
        })
        .collect()
}

/// The sender and number of a message from [`spawn_senders`].
fn tag(m: &[u8]) -> (u32, u32) {
    let word = |k: usize| u32::from_be_bytes(m[k..k + 4].try_into().unwrap());
    (word(0), word(4))
}

/// Eight tasks send on four channels of one connection while eight tasks
/// receive from it, on a multi-threaded runtime with small windows (so
/// senders keep blocking and being woken): every message arrives exactly
/// once, and each sender's messages arrive in order on its channel.
pub async fn many_tasks_send_and_receive_on_one_connection<R: Runtime>() {
    let (_server, _client, conn, sc) = pair::<R>(small()).await;
    const SENDERS: u32 = 8;
    const EACH: u32 = 200;
    // Two senders per channel: order is per sender.
    let senders = spawn_senders::<R>(&conn, SENDERS, EACH, 300, |s| s % 4);
    // The receivers hand what they take to this task.
    let taken = Arc::new(Mutex::new(Vec::new()));
    let mut receivers = Vec::new();
    for _ in 0..8 {
        let c = sc.clone();
        let taken = taken.clone();
        receivers.push(R::spawn(async move {
            while let Ok((ch, m)) = c.recv().await {
                taken.lock().unwrap().push((ch, m));
            }
        }));
    }
    let mut seen = HashSet::new();
    let mut next = vec![0u32; SENDERS as usize];
    while seen.len() < (SENDERS * EACH) as usize {
        let batch = std::mem::take(&mut *taken.lock().unwrap());
        if batch.is_empty() {
            R::sleep(Duration::from_millis(2)).await;
        }
        for (ch, m) in batch {
            let (s, i) = tag(&m);
            assert_eq!(ch, s % 4, "message on its sender's channel");
            assert!(seen.insert((s, i)), "message {s}/{i} twice");
            next[s as usize] = next[s as usize].max(i + 1);
        }
    }
    for s in senders {
        s.await;
    }
    // Receivers race each other, so the order in which they hand
    // messages on is not the order they took them; but every message
    // came, and each sender's last message too.
    assert!(next.iter().all(|&n| n == EACH), "{next:?}");
    drop(receivers); // cancelled
    conn.close(code::NO_ERROR, "").await.unwrap();
}

/// One receiver, several senders on one channel from different tasks:
/// each sender's messages arrive in its order.
pub async fn concurrent_senders_keep_their_own_order<R: Runtime>() {
    let (_server, _client, conn, sc) = pair::<R>(small()).await;
    const SENDERS: u32 = 4;
    const EACH: u32 = 300;
    let tasks = spawn_senders::<R>(&conn, SENDERS, EACH, 500, |_| 0);
    let mut next = [0u32; SENDERS as usize];
    for _ in 0..SENDERS * EACH {
        let m = sc.recv_on(0).await.unwrap();
        let (s, i) = tag(&m);
        let s = s as usize;
        assert_eq!(i, next[s], "sender {s} out of order");
        next[s] += 1;
    }
    for t in tasks {
        t.await;
    }
}

/// A send blocked on a full window stays blocked while nobody reads, and
/// is woken as soon as the reader frees room (credit comes back).
pub async fn a_blocked_send_is_woken_by_credit<R: Runtime>() {
    let (_server, _client, conn, sc) = pair::<R>(small()).await;
    // Fill the channel's window.
    let queued = fill_channel::<R>(&conn).await;
    assert!(queued >= 2, "the window took {queued}");
    // This one (as large as those that no longer fit) waits...
    let c2 = conn.clone();
    let blocked = R::spawn(async move { c2.send(0, vec![8u8; 1000]).await });
    R::sleep(Duration::from_millis(300)).await;
    assert!(!R::is_finished(&blocked), "send did not wait for credit");
    // ...until the reader takes the queued messages.
    for _ in 0..queued {
        assert_eq!(sc.recv_on(0).await.unwrap(), Bytes::from(vec![7u8; 1000]));
    }
    timeout::<R, _>(Duration::from_secs(5), blocked)
        .await
        .expect("the blocked send was never woken")
        .unwrap();
    assert_eq!(sc.recv_on(0).await.unwrap(), Bytes::from(vec![8u8; 1000]));
}

/// Fills channel 0 of `conn` with 1000-byte messages until one waits
/// (the window of `small()` then has 96 bytes free); how many went.
async fn fill_channel<R: Runtime>(conn: &Connection) -> u32 {
    fill::<R>(conn, 0, Duration::from_millis(200), |_| vec![7u8; 1000]).await
}

type SendTask<R> = <R as Runtime>::Task<Result<(), SendError>>;

/// Fills channel 0, then starts a 2000-byte send (it waits for room) and,
/// once that one waits, a 5-byte send that would fit in what is left;
/// the 1000-byte messages queued and the two tasks.
async fn large_then_small<R: Runtime>(conn: &Connection) -> (u32, SendTask<R>, SendTask<R>) {
    let queued = fill_channel::<R>(conn).await;
    let c = conn.clone();
    let large = R::spawn(async move { c.send(0, vec![8u8; 2000]).await });
    R::sleep(Duration::from_millis(100)).await;
    let c = conn.clone();
    let small = R::spawn(async move { c.send(0, &b"small"[..]).await });
    (queued, large, small)
}

/// Senders on one channel go first come, first served: a small message
/// that would fit in what is left of the window waits behind a large one
/// that was blocked before it, and arrives after it.
pub async fn a_blocked_send_is_not_overtaken_on_its_channel<R: Runtime>() {
    let (_server, _client, conn, sc) = pair::<R>(small()).await;
    let (queued, large, small) = large_then_small::<R>(&conn).await;
    // Another channel is not held up by channel 0's queue.
    timeout::<R, _>(Duration::from_secs(5), conn.send(1, &b"other"[..]))
        .await
        .expect("a send on another channel waited")
        .unwrap();
    R::sleep(Duration::from_millis(200)).await;
    assert!(
        !R::is_finished(&large),
        "the large send did not wait for room"
    );
    assert!(
        !R::is_finished(&small),
        "the small send overtook the large one"
    );
    assert_eq!(&sc.recv_on(1).await.unwrap()[..], b"other");
    for _ in 0..queued {
        assert_eq!(sc.recv_on(0).await.unwrap(), Bytes::from(vec![7u8; 1000]));
    }
    for t in [large, small] {
        timeout::<R, _>(Duration::from_secs(5), t)
            .await
            .expect("a blocked send was never woken")
            .unwrap();
    }
    assert_eq!(sc.recv_on(0).await.unwrap(), Bytes::from(vec![8u8; 2000]));
    assert_eq!(&sc.recv_on(0).await.unwrap()[..], b"small");
}

/// A sender that gives up at the head of its channel's queue hands its
/// turn to the next one, which goes at once if its message fits.
pub async fn a_cancelled_first_sender_lets_the_next_one_go<R: Runtime>() {
    let (_server, _client, conn, sc) = pair::<R>(small()).await;
    let (queued, large, small) = large_then_small::<R>(&conn).await;
    R::sleep(Duration::from_millis(100)).await;
    assert!(
        !R::is_finished(&small),
        "the small send overtook the large one"
    );
    drop(large); // cancelled
    timeout::<R, _>(Duration::from_secs(5), small)
        .await
        .expect("the next sender was not woken when the first gave up")
        .unwrap();
    for _ in 0..queued {
        assert_eq!(sc.recv_on(0).await.unwrap(), Bytes::from(vec![7u8; 1000]));
    }
    assert_eq!(&sc.recv_on(0).await.unwrap()[..], b"small");
}

/// Dropping a blocked send loses only that message (it is never sent);
/// dropping a waiting receive loses nothing; neither blocks later calls.
pub async fn cancelled_blocked_calls_lose_nothing<R: Runtime>() {
    let (_server, _client, conn, sc) = pair::<R>(small()).await;
    // A receive waiting on an empty connection, cancelled.
    assert!(
        timeout::<R, _>(Duration::from_millis(50), sc.recv())
            .await
            .is_err()
    );
    let queued = fill::<R>(&conn, 1, Duration::from_millis(200), |n| {
        n.to_be_bytes().repeat(250)
    })
    .await;
    // The send that timed out above was cancelled while blocked: its
    // message must never arrive. Many more cancelled ones, too.
    for _ in 0..20 {
        assert!(
            timeout::<R, _>(Duration::from_millis(5), conn.send(1, vec![0xee; 1000]))
                .await
                .is_err()
        );
    }
    // Receives cancelled at random points, mixed with whole ones.
    let mut got = 0u32;
    let mut k = 0u32;
    while got < queued {
        k += 1;
        let r = if k.is_multiple_of(3) {
            poll_across_a_yield(sc.recv()).await
        } else {
            Some(sc.recv().await)
        };
        if let Some(r) = r {
            let (ch, m) = r.unwrap();
            assert_eq!(ch, 1);
            assert_eq!(
                m,
                Bytes::from(got.to_be_bytes().repeat(250)),
                "message {got}"
            );
            got += 1;
        }
    }
    conn.send(1, &b"after"[..]).await.unwrap();
    let (_, m) = sc.recv().await.unwrap();
    assert_eq!(&m[..], b"after", "a cancelled send's message arrived");
}

/// Handles used from a thread that is not the endpoint's runtime at all
/// (a plain blocking executor): the endpoint's task is woken by the
/// handles' work and the handles by its events.
pub async fn handles_work_from_another_executor<R: Runtime>() {
    let (server, client, conn, sc) = pair::<R>(Config::service()).await;
    let echo = R::spawn(async move {
        while let Ok((ch, m)) = sc.recv().await {
            if sc.send(ch, m).await.is_err() {
                break;
            }
        }
    });
    let done = std::thread::spawn(move || {
        plain_block_on(async {
            for i in 0..200u32 {
                conn.send(2, i.to_be_bytes().to_vec()).await.unwrap();
                let (ch, m) = conn.recv().await.unwrap();
                assert_eq!((ch, &m[..]), (2, &i.to_be_bytes()[..]));
            }
            conn.close(code::NO_ERROR, "").await.unwrap();
        })
    });
    // Joined from a blocking thread, so that the runtime goes on.
    R::unblock(move || done.join()).await.unwrap();
    echo.await;
    drop((server, client));
}

/// A minimal `block_on` (no runtime): parks the thread until woken.
fn plain_block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Arc::new(Unpark(std::thread::current())).into();
    let mut cx = Context::from_waker(&waker);
    let mut f = std::pin::pin!(f);
    loop {
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park(),
        }
    }
}
