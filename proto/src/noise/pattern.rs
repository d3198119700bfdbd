//! Handshake patterns as token tables (Noise specification §7, §9).

use super::NoiseError;

/// One token of a handshake message pattern.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Token {
    /// Send or receive an ephemeral public key.
    E,
    /// Send or receive a static public key.
    S,
    /// DH between both ephemerals.
    EE,
    /// DH between the initiator's ephemeral and the responder's static.
    ES,
    /// DH between the initiator's static and the responder's ephemeral.
    SE,
    /// DH between both statics.
    SS,
    /// Mix in the next pre-shared key.
    Psk,
}

/// Most messages in any supported pattern (X1X1 and friends have four).
pub const MAX_MESSAGES: usize = 4;
/// Most tokens in one message, psk tokens included.
pub const MAX_TOKENS: usize = 8;
/// Most pre-shared keys one pattern can use (psk0 to psk4).
pub const MAX_PSKS: usize = 5;

use Token::*;

/// A base pattern: pre-messages and message patterns, before modifiers.
struct Base {
    name: &'static str,
    pre_i: &'static [Token],
    pre_r: &'static [Token],
    msgs: &'static [&'static [Token]],
}

const fn b(
    name: &'static str,
    pre_i: &'static [Token],
    pre_r: &'static [Token],
    msgs: &'static [&'static [Token]],
) -> Base {
    Base {
        name,
        pre_i,
        pre_r,
        msgs,
    }
}

/// Every Curve25519 pattern of the Noise specification: one-way (§7.4),
/// fundamental interactive (§7.5) and deferred (§7.6).
#[rustfmt::skip]
const BASES: &[Base] = &[
    b("N", &[], &[S], &[&[E, ES]]),
    b("K", &[S], &[S], &[&[E, ES, SS]]),
    b("X", &[], &[S], &[&[E, ES, S, SS]]),
    b("NN", &[], &[], &[&[E], &[E, EE]]),
    b("NK", &[], &[S], &[&[E, ES], &[E, EE]]),
    b("NX", &[], &[], &[&[E], &[E, EE, S, ES]]),
    b("XN", &[], &[], &[&[E], &[E, EE], &[S, SE]]),
    b("XK", &[], &[S], &[&[E, ES], &[E, EE], &[S, SE]]),
    b("XX", &[], &[], &[&[E], &[E, EE, S, ES], &[S, SE]]),
    b("KN", &[S], &[], &[&[E], &[E, EE, SE]]),
    b("KK", &[S], &[S], &[&[E, ES, SS], &[E, EE, SE]]),
    b("KX", &[S], &[], &[&[E], &[E, EE, SE, S, ES]]),
    b("IN", &[], &[], &[&[E, S], &[E, EE, SE]]),
    b("IK", &[], &[S], &[&[E, ES, S, SS], &[E, EE, SE]]),
    b("IX", &[], &[], &[&[E, S], &[E, EE, SE, S, ES]]),
    b("NK1", &[], &[S], &[&[E], &[E, EE, ES]]),
    b("NX1", &[], &[], &[&[E], &[E, EE, S], &[ES]]),
    b("X1N", &[], &[], &[&[E], &[E, EE], &[S], &[SE]]),
    b("X1K", &[], &[S], &[&[E, ES], &[E, EE], &[S], &[SE]]),
    b("XK1", &[], &[S], &[&[E], &[E, EE, ES], &[S, SE]]),
    b("X1K1", &[], &[S], &[&[E], &[E, EE, ES], &[S], &[SE]]),
    b("X1X", &[], &[], &[&[E], &[E, EE, S, ES], &[S], &[SE]]),
    b("XX1", &[], &[], &[&[E], &[E, EE, S], &[ES, S, SE]]),
    b("X1X1", &[], &[], &[&[E], &[E, EE, S], &[ES, S], &[SE]]),
    b("K1N", &[S], &[], &[&[E], &[E, EE], &[SE]]),
    b("K1K", &[S], &[S], &[&[E, ES], &[E, EE], &[SE]]),
    b("KK1", &[S], &[S], &[&[E], &[E, EE, SE, ES]]),
    b("K1K1", &[S], &[S], &[&[E], &[E, EE, ES], &[SE]]),
    b("K1X", &[S], &[], &[&[E], &[E, EE, S, ES], &[SE]]),
    b("KX1", &[S], &[], &[&[E], &[E, EE, SE, S], &[ES]]),
    b("K1X1", &[S], &[], &[&[E], &[E, EE, S], &[SE, ES]]),
    b("I1N", &[], &[], &[&[E, S], &[E, EE], &[SE]]),
    b("I1K", &[], &[S], &[&[E, ES, S], &[E, EE], &[SE]]),
    b("IK1", &[], &[S], &[&[E, S], &[E, EE, SE, ES]]),
    b("I1K1", &[], &[S], &[&[E, S], &[E, EE, ES], &[SE]]),
    b("I1X", &[], &[], &[&[E, S], &[E, EE, S, ES], &[SE]]),
    b("IX1", &[], &[], &[&[E, S], &[E, EE, SE, S], &[ES]]),
    b("I1X1", &[], &[], &[&[E, S], &[E, EE, S], &[SE, ES]]),
];

/// A fixed-capacity list of tokens.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tokens {
    items: [Token; MAX_TOKENS],
    len: u8,
}

impl Tokens {
    const EMPTY: Tokens = Tokens {
        items: [Token::E; MAX_TOKENS],
        len: 0,
    };

    fn from_slice(tokens: &[Token]) -> Tokens {
        let mut t = Tokens::EMPTY;
        for &tok in tokens {
            t.push(tok);
        }
        t
    }

    fn push(&mut self, tok: Token) {
        // Base patterns have at most five tokens and at most two psk tokens
        // can land in one message, so this never exceeds MAX_TOKENS.
        self.items[usize::from(self.len)] = tok;
        self.len += 1;
    }

    fn insert_front(&mut self, tok: Token) {
        let len = usize::from(self.len);
        self.items.copy_within(0..len, 1);
        self.items[0] = tok;
        self.len += 1;
    }

    /// The tokens as a slice.
    pub fn as_slice(&self) -> &[Token] {
        &self.items[..usize::from(self.len)]
    }
}

/// A handshake pattern with its modifiers applied: what each side sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HandshakePattern {
    base: &'static str,
    pre_initiator: Tokens,
    pre_responder: Tokens,
    messages: [Tokens; MAX_MESSAGES],
    n_messages: u8,
    psk_mask: u8,
}

impl HandshakePattern {
    /// Parses a pattern with modifiers, such as `IK`, `XXpsk3` or
    /// `NNpsk0+psk2`. Only `pskN` modifiers are supported; `fallback` and
    /// unknown patterns are typed errors.
    pub fn parse(s: &str) -> Result<HandshakePattern, NoiseError> {
        let split = s.find(|c: char| c.is_ascii_lowercase()).unwrap_or(s.len());
        let (base_name, mods) = s.split_at(split);
        let base = BASES
            .iter()
            .find(|p| p.name == base_name)
            .ok_or(NoiseError::UnsupportedPattern)?;
        let mut p = HandshakePattern {
            base: base.name,
            pre_initiator: Tokens::from_slice(base.pre_i),
            pre_responder: Tokens::from_slice(base.pre_r),
            messages: [Tokens::EMPTY; MAX_MESSAGES],
            n_messages: base.msgs.len() as u8,
            psk_mask: 0,
        };
        for (slot, msg) in p.messages.iter_mut().zip(base.msgs) {
            *slot = Tokens::from_slice(msg);
        }
        if !mods.is_empty() {
            for m in mods.split('+') {
                let n = m
                    .strip_prefix("psk")
                    .ok_or(NoiseError::UnsupportedModifier)?;
                let n: usize = match n.as_bytes() {
                    [d @ b'0'..=b'9'] => usize::from(d - b'0'),
                    _ => return Err(NoiseError::UnsupportedModifier),
                };
                if n > base.msgs.len() || p.psk_mask & (1 << n) != 0 {
                    return Err(NoiseError::UnsupportedModifier);
                }
                p.psk_mask |= 1 << n;
            }
            // Insert in message order so several modifiers compose the same
            // way whatever order they were written in.
            for n in 0..=base.msgs.len() {
                if p.psk_mask & (1 << n) == 0 {
                    continue;
                }
                if n == 0 {
                    p.messages[0].insert_front(Token::Psk);
                } else {
                    p.messages[n - 1].push(Token::Psk);
                }
            }
        }
        Ok(p)
    }

    /// The base pattern's name, without modifiers.
    pub fn base_name(&self) -> &'static str {
        self.base
    }

    /// Tokens of the initiator's pre-message.
    pub fn pre_initiator(&self) -> &[Token] {
        self.pre_initiator.as_slice()
    }

    /// Tokens of the responder's pre-message.
    pub fn pre_responder(&self) -> &[Token] {
        self.pre_responder.as_slice()
    }

    /// The message patterns, in order (initiator first, then alternating).
    pub fn messages(&self) -> &[Tokens] {
        &self.messages[..usize::from(self.n_messages)]
    }

    /// Whether this is a one-way pattern (N, K, X and their psk variants).
    pub fn is_one_way(&self) -> bool {
        self.n_messages == 1
    }

    /// Number of pre-shared keys the pattern uses.
    pub fn psk_count(&self) -> usize {
        self.psk_mask.count_ones() as usize
    }

    /// Whether any psk modifier is present (which makes `e` tokens also
    /// call MixKey).
    pub fn has_psk(&self) -> bool {
        self.psk_mask != 0
    }

    /// Whether the initiator needs its own static key.
    pub fn initiator_needs_static(&self) -> bool {
        self.pre_initiator().contains(&S) || self.sent_by(true).any(|t| t == S)
    }

    /// Whether the responder needs its own static key.
    pub fn responder_needs_static(&self) -> bool {
        self.pre_responder().contains(&S) || self.sent_by(false).any(|t| t == S)
    }

    /// Whether the initiator must know the responder's static key up front.
    pub fn initiator_knows_remote(&self) -> bool {
        self.pre_responder().contains(&S)
    }

    /// Whether the responder must know the initiator's static key up front.
    pub fn responder_knows_remote(&self) -> bool {
        self.pre_initiator().contains(&S)
    }

    fn sent_by(&self, initiator: bool) -> impl Iterator<Item = Token> + '_ {
        self.messages()
            .iter()
            .enumerate()
            .filter(move |(i, _)| (i % 2 == 0) == initiator)
            .flat_map(|(_, m)| m.as_slice().iter().copied())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn psk_modifiers_insert_where_the_spec_says() {
        let p = HandshakePattern::parse("NNpsk0+psk2").unwrap();
        assert_eq!(p.messages()[0].as_slice(), &[Psk, E]);
        assert_eq!(p.messages()[1].as_slice(), &[E, EE, Psk]);
        let p = HandshakePattern::parse("XXpsk3").unwrap();
        assert_eq!(p.messages()[2].as_slice(), &[S, SE, Psk]);
        assert_eq!(p.psk_count(), 1);
        // Order of modifiers does not change the result.
        assert_eq!(
            HandshakePattern::parse("IKpsk2+psk0").unwrap(),
            HandshakePattern::parse("IKpsk0+psk2").unwrap()
        );
    }

    #[test]
    fn every_base_pattern_parses_with_every_psk_position() {
        for base in BASES {
            let p = HandshakePattern::parse(base.name).unwrap();
            assert_eq!(p.messages().len(), base.msgs.len());
            let mut all = std::string::String::from(base.name);
            for n in 0..=base.msgs.len() {
                all.push_str(if n == 0 { "psk0" } else { "+psk" });
                if n > 0 {
                    all.push(char::from(b'0' + n as u8));
                }
            }
            let p = HandshakePattern::parse(all.as_str()).unwrap();
            assert_eq!(p.psk_count(), base.msgs.len() + 1);
        }
    }

    #[test]
    fn bad_names_are_typed_errors() {
        for bad in [
            "",
            "ZZ",
            "nn",
            "XXpsk",
            "XXpsk9",
            "XXpsk4",
            "XXpsk1+psk1",
            "XXfallback",
            "XXpsk12",
            "NN+",
        ] {
            assert!(HandshakePattern::parse(bad).is_err(), "{bad}");
        }
    }
}
