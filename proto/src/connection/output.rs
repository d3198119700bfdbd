//! Building packets: handshake flights and data packets.

use super::sent::SentPacket;
use super::{Connection, State, Transmit, TransmitError};
use crate::crypto::{CryptoProvider, TAGLEN};
use crate::frame::ack::encode_ack_one;
use crate::frame::{CloseFrame, Frame, encode_ack};
use crate::packet::{SHORT_HEADER_MAX, ShortHeader, encoded_pn_len};
use crate::storage::ByteStore;
use crate::time::Instant;

use crate::frame::cbor::{head_len, put_head};

/// Writes a shortest-form CBOR head; the caller sized `out` for it.
#[inline(always)]
fn head(out: &mut [u8], major: u8, v: u64) -> usize {
    put_head(out, major, v).expect("room for the CBOR head")
}

/// Bytes of a MESSAGE frame around `len` data bytes.
fn message_overhead(channel: u32, offset: u64, len: usize) -> usize {
    // array(5), type 3, channel, offset, fin, bstr head
    1 + 1 + head_len(u64::from(channel)) + head_len(offset) + 1 + head_len(len as u64)
}

/// Most data bytes a MESSAGE frame fits in `space`.
#[inline]
fn max_message_data(channel: u32, offset: u64, space: usize) -> usize {
    let fixed = 1 + 1 + head_len(u64::from(channel)) + head_len(offset) + 1;
    let Some(rest) = space.checked_sub(fixed) else {
        return 0;
    };
    max_bstr_data(rest)
}

/// Most data bytes a byte string (head and data) fits in `rest` bytes:
/// the largest `d` with `head_len(d) + d <= rest`. A wider head pays only
/// once `rest` exceeds the narrower width's largest length plus the wider
/// head (`cap + next`); below that the narrower one gives `rest - head`,
/// capped at its largest length.
#[inline]
fn max_bstr_data(rest: usize) -> usize {
    let (h, cap) = if rest <= 23 + 2 {
        (1, 23)
    } else if rest <= 0xff + 3 {
        (2, 0xff)
    } else if rest <= 0xffff + 5 {
        (3, 0xffff)
    } else if rest as u64 <= 0xffff_ffff + 9 {
        (5, 0xffff_ffff)
    } else {
        (9, usize::MAX)
    };
    rest.saturating_sub(h).min(cap)
}

impl<B: ByteStore, const CH: usize, const SENT: usize, P: CryptoProvider + Clone + Default>
    Connection<B, CH, SENT, P>
{
    /// Writes the next packet to send into `buf` and says where it goes.
    /// Call until it returns `Ok(None)`. `buf` must hold
    /// [`max_packet_size`](Self::max_packet_size) bytes; a shorter one is an
    /// error that changes nothing.
    // Inlined into the caller: most polls are the last one after an input,
    // with nothing to send, and that answer costs a few loads here instead
    // of a call that sets up the whole packet builder.
    #[inline]
    pub fn poll_transmit(
        &mut self,
        now: Instant,
        buf: &mut [u8],
    ) -> Result<Option<Transmit>, TransmitError> {
        let mtu = self.max_packet_size();
        if buf.len() < mtu {
            return Err(TransmitError::BufferTooSmall { needed: mtu });
        }
        if self.nothing_to_send() {
            // The full path agrees (and, answering `None` there, changes
            // nothing): checked in every debug build and test.
            debug_assert!(self.poll_transmit_inner(now, &mut buf[..mtu]).is_none());
            return Ok(None);
        }
        Ok(self.poll_transmit_inner(now, &mut buf[..mtu]))
    }

    /// Whether `poll_transmit` has nothing to send whatever the time: no
    /// handshake flight, and either no keys or peer yet, or no
    /// acknowledgement owed, nothing that elicits one and no CLOSE. (An
    /// acknowledgement owed waits for its time, so it is not answered
    /// here.) Exact for what it answers: `build_data_packet` returns
    /// `None` for each of these, before it changes anything.
    #[inline]
    fn nothing_to_send(&self) -> bool {
        if self.flight_pending {
            return false;
        }
        match self.state {
            State::Closed | State::Handshaking => return true,
            _ => {}
        }
        if self.tx_key.is_none() || !self.confirmed {
            return true;
        }
        self.ack_eliciting_unacked == 0
            && !self.ack_only_pending
            && !self.close_pending
            && !self.has_eliciting_work()
    }

    #[inline(never)]
    fn poll_transmit_inner(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        let t = match self.state {
            State::Closed => None,
            _ if self.flight_pending => {
                self.flight_pending = false;
                // Anti-amplification: until the client proves its address
                // (its first authenticated packet), a server sends at most
                // three times the bytes it received from it.
                if self.side == super::Side::Server && !self.confirmed {
                    let sent = u64::from(self.unvalidated_tx) + u64::from(self.flight_len);
                    if sent > 3 * u64::from(self.unvalidated_rx) {
                        return None;
                    }
                    self.unvalidated_tx = u32::try_from(sent).unwrap_or(u32::MAX);
                }
                let len = usize::from(self.flight_len);
                buf[..len].copy_from_slice(&self.flight[..len]);
                Some(Transmit {
                    destination: self.peer,
                    len,
                })
            }
            State::Handshaking => None,
            _ => self.build_data_packet(now, buf),
        };
        if let Some(t) = t {
            self.stats.tx_packets += 1;
            self.stats.tx_bytes += t.len as u64;
        }
        t
    }

    fn ack_due(&self, now: Instant) -> bool {
        self.ack_at.is_some_and(|t| t <= now) || self.ack_only_pending
    }

    fn build_data_packet(&mut self, now: Instant, buf: &mut [u8]) -> Option<Transmit> {
        // Until the peer proves it has the keys (its first packet), it
        // could not read ours: send nothing yet.
        if self.tx_key.is_none() || !self.confirmed {
            return None;
        }
        let draining = self.state == State::Draining;
        if draining && !self.ack_only_pending {
            return None;
        }
        let probe = self.probes_pending > 0;
        let cwnd_ok = !self.sent.is_full()
            && (probe
                || (self.cc.can_send(buf.len())
                    && self.sent.eliciting() < self.config.max_in_flight as usize));
        let want_ack = self.ack_eliciting_unacked > 0 || self.ack_only_pending;
        let work = cwnd_ok && self.has_eliciting_work();
        let others = !draining && (work || self.close_pending);
        let send_ack = !self.rx_pns.is_empty() && want_ack && (self.ack_due(now) || others);
        // Nothing to write (the common answer to the last poll after each
        // input): say so before building anything. Every frame below needs
        // one of these; `has_eliciting_work` covers what the eliciting ones
        // need.
        let closing_probe = probe && self.state == State::Closing;
        if !send_ack && (draining || !(work || self.close_pending || closing_probe)) {
            return None;
        }
        let pn = self.next_pn;
        let pn_len = encoded_pn_len(pn, self.largest_acked);
        let header = ShortHeader {
            key_phase: false,
            receiver: self.remote_id,
            pn_truncated: (pn & 0xff_ffff) as u32,
            pn_len: pn_len as u8,
        };
        let hlen = header.encode(buf);
        debug_assert!(hlen <= SHORT_HEADER_MAX);
        let end = buf.len() - TAGLEN;
        let mut pos = hlen;
        let mut sp = SentPacket::new(pn, now);

        // 1. ACK, when due, or to ride along with anything else.
        if send_ack {
            let delay = now
                .as_micros()
                .saturating_sub(self.largest_rx_at.as_micros());
            let written = match self.rx_pns.first() {
                // One range (packets in order): written directly.
                Some((s, e)) if self.rx_pns.len() == 1 => {
                    encode_ack_one(delay, s, e - 1, &mut buf[pos..end])
                }
                _ => {
                    let ranges = self.rx_pns.iter().rev().map(|(s, e)| (s, e - 1));
                    encode_ack(delay, ranges, 32, &mut buf[pos..end])
                }
            };
            if let Ok(n) = written {
                pos += n;
                sp.ack_largest = self.rx_pns.last().map(|(_, e)| e - 1);
                self.ack_eliciting_unacked = 0;
                self.ack_at = None;
                self.ack_only_pending = false;
            }
        }
        if !draining {
            // 2. CLOSE, if the packet can be tracked: an untracked one
            // would count as lost at once and queue the CLOSE again, and
            // `poll_transmit` would never return `None`. A full table frees
            // up as acknowledgements or losses arrive, and `close_at` ends
            // the connection anyway. While closing, every probe carries
            // the CLOSE (not only the first of the pair): it is all there
            // is to say, and a silent peer learns of the close only from
            // these copies before `close_at`.
            if (self.close_pending || closing_probe) && !self.sent.is_full() {
                let f = Frame::Close(CloseFrame {
                    code: self.close_code,
                    reason: self.close_reason.as_str(),
                });
                if let Ok(n) = f.encode(&mut buf[pos..end]) {
                    pos += n;
                    sp.close = true;
                    sp.ack_eliciting = true;
                    self.close_pending = false;
                }
            }
            if cwnd_ok && matches!(self.state, State::Established | State::Flushing) {
                pos = self.write_control(&mut sp, buf, pos, end);
                pos = self.write_datagrams(&mut sp, buf, pos, end);
                pos = self.write_channel_data(&mut sp, buf, pos, end, now);
            }
            if cwnd_ok
                && (self.ping_pending || probe)
                && !sp.ack_eliciting
                && end - pos >= 2
                && let Ok(n) = Frame::Ping.encode(&mut buf[pos..end])
            {
                pos += n;
                sp.ack_eliciting = true;
            }
            if sp.ack_eliciting {
                self.ping_pending = false;
                self.probes_pending = self.probes_pending.saturating_sub(1);
            }
        }
        if pos == hlen {
            return None;
        }
        let tx = self.tx_key.as_mut()?;
        let (hdr, body) = buf.split_at_mut(hlen);
        let len = tx.encrypt_with_nonce(pn, hdr, body, pos - hlen).ok()?;
        let total = hlen + len;
        self.next_pn += 1;
        sp.size = total as u16;
        if sp.ack_eliciting {
            sp.in_flight = true;
            self.cc.on_sent(total);
            self.last_eliciting_sent = Some(now);
        }
        if (sp.ack_eliciting || sp.ack_largest.is_some()) && !self.sent.push(sp) && sp.in_flight {
            // No room to track it (only possible for a probe when every
            // slot holds an ack-eliciting packet): treat it as lost at once
            // so what it carried is queued again rather than forgotten.
            self.cc.on_discarded(total);
            self.on_packet_lost(&sp);
        }
        // Held back by its own limits (a channel refused a message and
        // waits for `Writable`) with this one packet in flight, the sender
        // would wait for the peer's delayed acknowledgement (max_ack_delay)
        // before it can send again. A PING in the next packet is the peer's
        // second ack-eliciting packet, which it acknowledges at once
        // (spec/reliability.md §2.5).
        if sp.ack_eliciting
            && self.sent.eliciting() == 1
            && self.channels.iter().any(|c| c.want_writable)
        {
            self.ping_pending = true;
        }
        Some(Transmit {
            destination: self.peer,
            len: total,
        })
    }

    #[inline]
    fn has_eliciting_work(&self) -> bool {
        self.ping_pending
            || self.probes_pending > 0
            || self.max_data_pending
            || self.data_blocked_pending
            || self.dgram_tx.count > 0
            || self.channels.iter().any(|c| {
                c.credit_pending
                    || c.blocked_pending
                    || c.send.has_pending(self.tx_max_data - self.tx_data)
            })
    }

    fn write_control(
        &mut self,
        sp: &mut SentPacket,
        buf: &mut [u8],
        mut pos: usize,
        end: usize,
    ) -> usize {
        if self.max_data_pending
            && let Ok(n) = Frame::MaxData(self.rx_max_data).encode(&mut buf[pos..end])
        {
            pos += n;
            sp.max_data = true;
            sp.ack_eliciting = true;
            self.max_data_pending = false;
        }
        if self.data_blocked_pending
            && let Ok(n) = Frame::DataBlocked(self.tx_max_data).encode(&mut buf[pos..end])
        {
            pos += n;
            self.blocked_sent_at = self.tx_max_data;
            sp.ack_eliciting = true;
            self.data_blocked_pending = false;
        }
        for (i, ch) in self.channels.iter_mut().enumerate() {
            if ch.credit_pending {
                let f = Frame::MaxChannelData {
                    channel: ch.id,
                    max: ch.recv.max_data(),
                };
                if let Ok(n) = f.encode(&mut buf[pos..end]) {
                    pos += n;
                    sp.credit_channels |= 1 << (i % 64);
                    sp.ack_eliciting = true;
                    ch.credit_pending = false;
                }
            }
            if ch.blocked_pending {
                let f = Frame::ChannelBlocked {
                    channel: ch.id,
                    limit: ch.send.max_data(),
                };
                if let Ok(n) = f.encode(&mut buf[pos..end]) {
                    pos += n;
                    sp.ack_eliciting = true;
                    ch.blocked_pending = false;
                    ch.blocked_sent_at = ch.send.max_data();
                }
            }
        }
        pos
    }

    fn write_datagrams(
        &mut self,
        sp: &mut SentPacket,
        buf: &mut [u8],
        mut pos: usize,
        end: usize,
    ) -> usize {
        while let Some(len) = self.dgram_tx.front_len() {
            // [4, bstr]: array head, type, bstr head.
            let overhead = 2 + head_len(len as u64);
            if end - pos < overhead + len {
                break;
            }
            pos += head(&mut buf[pos..], 4, 2);
            pos += head(&mut buf[pos..], 0, 4);
            pos += head(&mut buf[pos..], 2, len as u64);
            self.dgram_tx.pop_into(&mut buf[pos..pos + len]);
            pos += len;
            sp.ack_eliciting = true;
        }
        pos
    }

    fn write_channel_data(
        &mut self,
        sp: &mut SentPacket,
        buf: &mut [u8],
        mut pos: usize,
        end: usize,
        now: Instant,
    ) -> usize {
        let n = self.channels.len();
        if n == 0 {
            return pos;
        }
        // `rr` is at most `n` unless channels went away: no division per turn.
        let start = if self.rr < n { self.rr } else { self.rr % n };
        let mut any_new = false;
        let mut i = start;
        for _ in 0..n {
            loop {
                let ch = &mut self.channels[i];
                let id = ch.id;
                let space = end - pos;
                let Some(next_off) = ch.send.peek_offset() else {
                    break;
                };
                let max = max_message_data(id, next_off, space);
                let credit = self.tx_max_data.saturating_sub(self.tx_data);
                let Some((off, len, fin, is_new)) = ch.send.next_range(max, credit) else {
                    break;
                };
                if !sp.add_range(id, off, off + len as u64) {
                    // No room to record it: give it back and stop.
                    ch.send.on_lost(off, off + len as u64);
                    if is_new {
                        // on_lost re-queued it as lost data: account as sent.
                        self.tx_data += len as u64;
                    }
                    return pos;
                }
                // array(5) [3, channel, offset, fin, bytes]: the first two
                // are one byte each (the heads `put_head` writes for them).
                buf[pos..pos + 2].copy_from_slice(&[0x85, 0x03]);
                pos += 2;
                pos += head(&mut buf[pos..], 0, u64::from(id));
                pos += head(&mut buf[pos..], 0, off);
                buf[pos] = if fin { 0xf5 } else { 0xf4 };
                pos += 1;
                pos += head(&mut buf[pos..], 2, len as u64);
                ch.send.read(off, &mut buf[pos..pos + len]);
                pos += len;
                debug_assert!(message_overhead(id, off, len) + len <= space);
                sp.ack_eliciting = true;
                if is_new {
                    self.tx_data += len as u64;
                    any_new = true;
                } else {
                    self.stats.retransmissions += 1;
                }
                if end - pos < 16 {
                    self.rr = i + 1;
                    if any_new && self.progress_at.is_none() {
                        self.progress_at = Some(now);
                    }
                    return pos;
                }
            }
            i += 1;
            if i == n {
                i = 0;
            }
        }
        self.rr = start + 1;
        if any_new && self.progress_at.is_none() {
            self.progress_at = Some(now);
        }
        pos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The closed form agrees with trying every head width (the way it
    /// was computed before), around every width boundary and beyond.
    #[test]
    fn max_bstr_data_takes_the_best_head_width() {
        fn by_trying(rest: usize) -> usize {
            let mut best = 0u64;
            for (h, cap) in [
                (1usize, 23u64),
                (2, 0xff),
                (3, 0xffff),
                (5, 0xffff_ffff),
                (9, u64::MAX),
            ] {
                if let Some(d) = rest.checked_sub(h) {
                    best = best.max((d as u64).min(cap));
                }
            }
            usize::try_from(best).unwrap_or(usize::MAX)
        }
        let mut cases: std::vec::Vec<usize> = (0..70_000).collect();
        for edge in [0xffff_ffffusize, 0x1_0000_0000, usize::MAX - 20] {
            cases.extend(edge.saturating_sub(12)..=edge.saturating_add(12).min(usize::MAX - 1));
        }
        cases.push(usize::MAX);
        for rest in cases {
            let d = max_bstr_data(rest);
            assert_eq!(d, by_trying(rest), "rest {rest}");
            assert!(d == 0 || head_len(d as u64) + d <= rest, "rest {rest}");
        }
    }

    #[test]
    fn message_frames_fill_exactly() {
        for space in 8..3000usize {
            let d = max_message_data(5, 1000, space);
            if d > 0 {
                assert!(
                    message_overhead(5, 1000, d) + d <= space,
                    "space {space} data {d}"
                );
                assert!(
                    message_overhead(5, 1000, d + 1) + d + 1 > space
                        || head_len(d as u64 + 1) > head_len(d as u64)
                );
            }
        }
    }
}
