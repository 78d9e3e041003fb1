//! Socket tokens: what a readiness event from the poller belongs to.
//!
//! An attempt's socket carries its race id and attempt id in the token
//! itself, so a race in flight costs no map entry and an event costs no
//! lookup. Established connections (and, in theory, attempts whose ids do
//! not fit) get a token with [`MAPPED`] set, looked up in a map.

use super::conn::ConnCore;
use crate::engine::AttemptId;
use mio::Token;
use std::collections::HashMap;
use std::sync::Weak;

/// Bits of an attempt token that hold the attempt id.
const ATTEMPT_BITS: u32 = 16;
/// Set in tokens that are looked up in the map.
const MAPPED: usize = 1 << (usize::BITS - 1);

/// What a watched socket is: what its token belongs to.
#[derive(Clone, Debug)]
pub(crate) enum Watched {
    /// A racing attempt.
    Attempt { race: u64, attempt: AttemptId },
    /// An established connection, watched for errors and hang-ups.
    Established(Weak<ConnCore>),
    /// A DNS exchange's UDP socket to one of its servers (see
    /// src/runtime/dns_loop.rs).
    Dns { exchange: u64, server: usize },
}

/// The loop's socket tokens. Race ids start at 1, so attempt tokens never
/// collide with the fixed tokens below `1 << ATTEMPT_BITS` (the Waker's,
/// the timer's).
#[derive(Debug, Default)]
pub(crate) struct SocketTokens {
    mapped: HashMap<Token, Watched>,
    next: usize,
}

impl SocketTokens {
    fn map(&mut self, target: Watched) -> Token {
        let token = Token(MAPPED | self.next);
        self.next = (self.next + 1) & !MAPPED;
        self.mapped.insert(token, target);
        token
    }

    /// The token of attempt `attempt` of race `race`.
    pub(crate) fn attempt(&mut self, race: u64, attempt: AttemptId) -> Token {
        let fits = race > 0 && race < 1 << (usize::BITS - 1 - ATTEMPT_BITS) && attempt < 1 << ATTEMPT_BITS;
        if fits {
            Token(((race as usize) << ATTEMPT_BITS) | attempt)
        } else {
            self.map(Watched::Attempt { race, attempt })
        }
    }

    /// A token for an established connection.
    pub(crate) fn established(&mut self, conn: Weak<ConnCore>) -> Token {
        self.map(Watched::Established(conn))
    }

    /// A token for a DNS exchange's socket to server `server`.
    pub(crate) fn dns(&mut self, exchange: u64, server: usize) -> Token {
        self.map(Watched::Dns { exchange, server })
    }

    /// What `token` belongs to; `None` for a forgotten mapped token.
    pub(crate) fn get(&self, token: Token) -> Option<Watched> {
        if token.0 & MAPPED != 0 {
            return self.mapped.get(&token).cloned();
        }
        Some(Watched::Attempt { race: (token.0 >> ATTEMPT_BITS) as u64, attempt: token.0 & ((1 << ATTEMPT_BITS) - 1) })
    }

    /// Forget `token` (no-op for an attempt token, which is not stored).
    pub(crate) fn forget(&mut self, token: Token) {
        if token.0 & MAPPED != 0 {
            self.mapped.remove(&token);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attempt_tokens_carry_race_and_attempt() {
        let mut t = SocketTokens::default();
        let tok = t.attempt(7, 3);
        assert!(tok.0 >= 1 << ATTEMPT_BITS, "clear of the fixed tokens");
        assert!(matches!(t.get(tok), Some(Watched::Attempt { race: 7, attempt: 3 })));
        assert!(t.mapped.is_empty());
        t.forget(tok);
        assert!(matches!(t.get(tok), Some(Watched::Attempt { race: 7, attempt: 3 })));
    }

    #[test]
    fn ids_that_do_not_fit_are_mapped() {
        let mut t = SocketTokens::default();
        let tok = t.attempt(7, 1 << ATTEMPT_BITS);
        assert!(matches!(t.get(tok), Some(Watched::Attempt { race: 7, attempt }) if attempt == 1 << ATTEMPT_BITS));
        let big = t.attempt(u64::MAX, 0);
        assert!(matches!(t.get(big), Some(Watched::Attempt { race: u64::MAX, attempt: 0 })));
        t.forget(tok);
        t.forget(big);
        assert!(t.get(tok).is_none() && t.mapped.is_empty());
    }

    #[test]
    fn established_tokens_are_mapped_and_forgotten() {
        let mut t = SocketTokens::default();
        let tok = t.established(Weak::new());
        assert!(matches!(t.get(tok), Some(Watched::Established(_))));
        t.forget(tok);
        assert!(t.get(tok).is_none());
        let dns = t.dns(4, 1);
        assert_ne!(dns, tok);
        assert!(matches!(t.get(dns), Some(Watched::Dns { exchange: 4, server: 1 })));
    }
}
