//! Channels: independent, ordered, reliable message streams.
//!
//! A channel carries messages as one byte stream per direction, the messages
//! laid end to end; MESSAGE frames carry a byte range of that stream and
//! mark where messages end. The sender keeps bytes until they are
//! acknowledged; the receiver reassembles by offset and hands out whole
//! messages in order. Both sides' memory is one ring buffer of the channel
//! window (on the heap, a smaller ring that grows up to it with use).

mod recv;
mod send;

pub use recv::{RecvChannel, RecvError, recv_store_len};
pub use send::{SendBlocked, SendChannel};
