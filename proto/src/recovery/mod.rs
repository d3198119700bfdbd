//! Loss recovery and congestion control (RFC 9002 style).

mod congestion;
pub(crate) mod rtt;

pub use congestion::NewReno;
pub use rtt::{GRANULARITY, MAX_PTO, MAX_RTT, RttEstimator};
