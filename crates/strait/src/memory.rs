//! Giving freed memory back to the system. glibc keeps what is freed in its arenas, and pages
//! freed between live allocations stay resident: librdkafka passes every record through
//! buffers of its own, so a process copying records among long-lived tables (the conflict
//! views) kept far more than it used. `malloc_trim` returns those pages.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// How often a running service gives freed memory back.
const TRIM_EVERY: Duration = Duration::from_secs(10);

/// Return the allocator's free pages to the system (glibc only; elsewhere nothing).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
pub(crate) fn give_back_freed() {
    // SAFETY: `malloc_trim` only releases free memory of the allocator's arenas.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub(crate) fn give_back_freed() {}

/// [`give_back_freed`] every [`TRIM_EVERY`] until `cancel` fires (off the async threads: it
/// walks the arenas).
pub(crate) async fn keep_giving_back(cancel: CancellationToken) {
    while crate::stop::pause(&cancel, TRIM_EVERY).await {
        let _ = tokio::task::spawn_blocking(give_back_freed).await;
    }
}
