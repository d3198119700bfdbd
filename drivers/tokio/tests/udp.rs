//! tern-tokio over UDP: the drivers' shared UDP tests
//! (`drivers/common/suite/udp.rs`) on tokio.

mod runtime;
#[path = "../../common/suite/mod.rs"]
mod suite;
#[path = "../../common/suite/udp.rs"]
mod udp;

udp::tests!(runtime::Tokio);

/// Only on tokio: the server lives in a runtime of its own, so it can
/// vanish without a word, like a crashed process (smol's endpoints all
/// run on its one global executor; both runtimes have the shared
/// `a_server_gone_silent_ends_in_idle_timeout`, a relay gone silent).
#[test]
fn a_crashed_server_ends_in_idle_timeout() {
    use suite::{Net, SERVER_KEY, client, config, echo, server};
    use tern_tokio::public_key;

    suite::run::<runtime::Tokio>(async {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.spawn(async move {
            let server = server::<runtime::Tokio>(Net::Udp, config());
            addr_tx.send(server.local_addr()).unwrap();
            while let Some(c) = server.accept().await {
                tokio::spawn(echo::<runtime::Tokio>(c));
            }
        });
        let addr = addr_rx.recv().unwrap();
        let client = client::<runtime::Tokio>(Net::Udp, config());
        let conn = client.connect(addr, public_key(&SERVER_KEY)).await.unwrap();
        conn.send(0, &b"ping"[..]).await.unwrap();
        assert_eq!(&conn.recv().await.unwrap().1[..], b"ping");

        rt.shutdown_background();
        suite::ends_in_idle_timeout(&conn).await;
    });
}
