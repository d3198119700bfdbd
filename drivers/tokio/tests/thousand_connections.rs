//! A thousand concurrent connections on one server endpoint over loopback on tokio,
//! every message accounted for (`drivers/common/suite/load.rs`).

#[path = "../../common/suite/load.rs"]
mod load;
mod runtime;
#[path = "../../common/suite/mod.rs"]
mod suite;

load::test!(
    runtime::Tokio,
    a_thousand_concurrent_connections_on_one_server
);
