//! Times known within bounds. Conflict detection compares instants taken on different clocks
//! (producers' in each region, strait's at each delivery); once moved onto one reference clock
//! each is only known within the error of that move, and a comparison must be able to say "I
//! cannot tell" instead of guessing.

use serde::{Deserialize, Serialize};

/// An instant in milliseconds since the epoch on the reference clock, known to lie in
/// `lo..=hi`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Span {
    /// The earliest it can be.
    pub lo: i64,
    /// The latest it can be.
    pub hi: i64,
}

/// The answer to a comparison of two [`Span`]s.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tri {
    /// True whatever the instants are within their bounds.
    Yes,
    /// False whatever the instants are within their bounds.
    No,
    /// True for some instants within the bounds and false for others.
    Unsure,
}

impl Span {
    /// An instant known exactly.
    pub fn exact(at: i64) -> Self {
        Self { lo: at, hi: at }
    }

    /// `at` give or take `error` (a negative error counts as none).
    pub fn around(at: i64, error: i64) -> Self {
        let e = error.max(0);
        Self {
            lo: at.saturating_sub(e),
            hi: at.saturating_add(e),
        }
    }

    /// The instants from `a` to `b`, in either order.
    pub fn between(a: i64, b: i64) -> Self {
        Self {
            lo: a.min(b),
            hi: a.max(b),
        }
    }

    /// Moved by `by` milliseconds (from one clock onto another).
    pub fn shift(self, by: i64) -> Self {
        Self {
            lo: self.lo.saturating_add(by),
            hi: self.hi.saturating_add(by),
        }
    }

    /// Wider by `error` on both sides.
    pub fn widen(self, error: i64) -> Self {
        let e = error.max(0);
        Self {
            lo: self.lo.saturating_sub(e),
            hi: self.hi.saturating_add(e),
        }
    }

    /// Whether this instant is at or before `other`.
    pub fn at_or_before(self, other: Span) -> Tri {
        if self.hi <= other.lo {
            Tri::Yes
        } else if self.lo > other.hi {
            Tri::No
        } else {
            Tri::Unsure
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// `at_or_before` says Yes or No only when every choice of instants agrees.
        #[test]
        fn a_sure_answer_holds_for_every_instant_in_the_bounds(
            a in -50i64..50, ae in 0i64..20, b in -50i64..50, be in 0i64..20,
        ) {
            let (x, y) = (Span::around(a, ae), Span::around(b, be));
            let mut seen = (false, false);
            for i in x.lo..=x.hi {
                for j in y.lo..=y.hi {
                    if i <= j { seen.0 = true } else { seen.1 = true }
                }
            }
            let expected = match seen {
                (true, false) => Tri::Yes,
                (false, true) => Tri::No,
                _ => Tri::Unsure,
            };
            prop_assert_eq!(x.at_or_before(y), expected);
        }
    }

    #[test]
    fn between_orders_its_ends() {
        assert_eq!(Span::between(5, 2), Span { lo: 2, hi: 5 });
        assert_eq!(Span::exact(3).widen(-1), Span::exact(3));
        assert_eq!(Span::exact(3).shift(-4), Span::exact(-1));
    }
}
