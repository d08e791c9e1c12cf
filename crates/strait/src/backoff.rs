//! The one backoff of every retry loop (a flow's setup steps, the checkpoint job, heartbeats,
//! lag snapshots): exponential from a first wait, capped; each retry loop makes a new one. No
//! jitter: each loop retries one cluster for one process, so there is no herd to spread out, and
//! a fixed sequence keeps logs and tests readable.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Waits between attempts: `first`, then doubling, never above `max`.
#[derive(Clone, Debug)]
pub(crate) struct Backoff {
    max: Duration,
    next: Duration,
}

impl Backoff {
    /// 0.5 s doubling to 30 s: a cluster back within a second is seen within a second, one away
    /// for an hour costs two attempts a minute.
    pub(crate) fn standard() -> Self {
        Self::new(Duration::from_millis(500), Duration::from_secs(30))
    }

    pub(crate) fn new(first: Duration, max: Duration) -> Self {
        Self {
            max,
            next: first.min(max),
        }
    }

    /// The wait before the next attempt; the one after is twice as long (up to the cap).
    pub(crate) fn next_wait(&mut self) -> Duration {
        let d = self.next;
        self.next = self.next.saturating_mul(2).min(self.max);
        d
    }

    /// Sleep the next wait, or less if `cancel` fires: false when cancelled.
    pub(crate) async fn wait(&mut self, cancel: &CancellationToken) -> bool {
        crate::stop::pause(cancel, self.next_wait()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doubles_up_to_the_cap() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(3));
        let waits: Vec<u64> = (0..5).map(|_| b.next_wait().as_millis() as u64).collect();
        assert_eq!(waits, [500, 1000, 2000, 3000, 3000]);
        let mut s = Backoff::standard();
        let last = (0..20).map(|_| s.next_wait()).last().unwrap();
        assert_eq!(last, Duration::from_secs(30));
    }

    #[test]
    fn a_first_wait_above_the_cap_is_capped() {
        let mut b = Backoff::new(Duration::from_secs(10), Duration::from_secs(1));
        assert_eq!(b.next_wait(), Duration::from_secs(1));
        assert_eq!(b.next_wait(), Duration::from_secs(1));
    }

    #[tokio::test(start_paused = true)]
    async fn waiting_ends_at_once_when_cancelled() {
        let cancel = CancellationToken::new();
        let mut b = Backoff::new(Duration::from_secs(60), Duration::from_secs(60));
        let c = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            c.cancel();
        });
        let t = tokio::time::Instant::now();
        assert!(!b.wait(&cancel).await);
        assert!(t.elapsed() < Duration::from_secs(2));
        assert!(!b.wait(&cancel).await, "a cancelled token stays cancelled");
    }
}
