//! tern-smol over TCP: the drivers' shared TCP tests
//! (`drivers/common/suite/tcp.rs`) on smol.

mod runtime;
#[path = "../../common/suite/mod.rs"]
mod suite;
#[path = "../../common/suite/tcp.rs"]
mod tcp;

tcp::tests!(runtime::Smol);
