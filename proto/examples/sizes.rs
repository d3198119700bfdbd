//! Prints the RAM cost of the connection types.
fn main() {
    println!(
        "ConstrainedConnection: {} bytes",
        core::mem::size_of::<tern::ConstrainedConnection>()
    );
    println!(
        "ConstrainedEndpoint<4>: {} bytes",
        core::mem::size_of::<tern::ConstrainedEndpoint<4>>()
    );
    #[cfg(feature = "alloc")]
    println!(
        "ServiceConnection (inline part): {} bytes",
        core::mem::size_of::<tern::ServiceConnection>()
    );
}
