//! Packet-number truncation on the wire (RFC 9000 §17.1, Appendix A).

/// Bytes needed to send `pn` so the peer, whose largest acknowledged packet
/// from us is `largest_acked`, can recover it: enough to cover twice the
/// distance, at least 1 and at most 3 bytes.
pub fn encoded_pn_len(pn: u64, largest_acked: Option<u64>) -> usize {
    let range = match largest_acked {
        Some(a) => pn.saturating_sub(a).saturating_mul(2),
        None => pn.saturating_add(1).saturating_mul(2),
    };
    if range < 1 << 8 {
        1
    } else if range < 1 << 16 {
        2
    } else {
        3
    }
}

/// Recovers a full packet number from its `len`-byte truncation `truncated`,
/// given the largest packet number received so far (RFC 9000 A.3).
#[inline]
pub fn decode_packet_number(largest: Option<u64>, truncated: u64, len: usize) -> u64 {
    let expected = largest.map_or(0, |l| l.saturating_add(1));
    let win = 1u64 << (8 * len as u32);
    let hwin = win / 2;
    let mask = win - 1;
    let candidate = (expected & !mask) | truncated;
    if candidate.saturating_add(hwin) <= expected && candidate < u64::MAX - win {
        candidate + win
    } else if candidate > expected.saturating_add(hwin) && candidate >= win {
        candidate - win
    } else {
        candidate
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn rfc9000_example() {
        // RFC 9000 A.3: largest 0xa82f30ea, 2-byte truncated 0x9b32.
        assert_eq!(
            decode_packet_number(Some(0xa82f_30ea), 0x9b32, 2),
            0xa82f_9b32
        );
    }

    proptest! {
        /// Whatever the sender picks as length, the receiver recovers the
        /// packet number as long as its largest received is not far behind
        /// the sender's largest acknowledged.
        #[test]
        fn round_trip(acked in 0u64..1 << 40, ahead in 1u64..60000, rx_lag in 0u64..60000) {
            let pn = acked + ahead;
            let len = encoded_pn_len(pn, Some(acked));
            let truncated = pn & ((1u64 << (8 * len)) - 1);
            // The receiver has seen at least up to `acked`, maybe more.
            let largest = acked + rx_lag.min(ahead - 1);
            prop_assert_eq!(decode_packet_number(Some(largest), truncated, len), pn);
        }
    }
}
