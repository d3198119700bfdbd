//! Two hundred clients at once on one server over loopback on smol,
//! every message accounted for (`drivers/common/suite/load.rs`).

#[path = "../../common/suite/load.rs"]
mod load;
mod runtime;
#[path = "../../common/suite/mod.rs"]
mod suite;

load::test!(
    runtime::Smol,
    two_hundred_clients_every_message_accounted_for
);
