//! tern-smol over UDP: the drivers' shared UDP tests
//! (`drivers/common/suite/udp.rs`) on smol.

mod runtime;
#[path = "../../common/suite/mod.rs"]
mod suite;
#[path = "../../common/suite/udp.rs"]
mod udp;

udp::tests!(runtime::Smol);
