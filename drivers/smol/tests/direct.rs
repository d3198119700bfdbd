//! tern-smol: handles on the endpoint's shared state from their own tasks,
//! the drivers' shared tests (`drivers/common/suite/direct.rs`) on smol.

#[path = "../../common/suite/direct.rs"]
mod direct;
mod runtime;
#[path = "../../common/suite/mod.rs"]
mod suite;

direct::tests!(runtime::Smol);
