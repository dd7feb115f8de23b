//! A wait polled only when its signal woke it.
//!
//! A live connection, and each of its subscriptions, selects on a few rare signals (the
//! server shutting down, the caller's rights ending) every time it sends a frame. Polling
//! such a wait again is not free: tokio's `watch`, `Notify` and `broadcast` take the lock of
//! the signal to leave the waker there again, and that signal (the shutdown, the rights
//! feed) is one for every connection of the process, so at 100,000 frames/s the two cores
//! contend for its lock. `FuturesUnordered` polls only a future whose own waker was woken,
//! so a wait that is not due costs a frame nothing beyond an atomic check.

use std::future::Future;
use std::task::{Context, Poll};

use futures_util::StreamExt;
use futures_util::future::BoxFuture;
use futures_util::stream::FuturesUnordered;

/// One wait at a time; its output once, then pending until another is set.
pub struct Woken<T>(FuturesUnordered<BoxFuture<'static, T>>);

impl<T> Woken<T> {
    pub fn new(wait: impl Future<Output = T> + Send + 'static) -> Woken<T> {
        let mut woken = Woken(FuturesUnordered::new());
        woken.set(wait);
        woken
    }

    /// Replaces the wait.
    pub fn set(&mut self, wait: impl Future<Output = T> + Send + 'static) {
        self.0.clear();
        self.0.push(Box::pin(wait));
    }

    /// The wait's output, when it woke and is done.
    pub fn poll_done(&mut self, cx: &mut Context<'_>) -> Poll<T> {
        match self.0.poll_next_unpin(cx) {
            Poll::Ready(Some(output)) => Poll::Ready(output),
            // Done before: nothing left to wake anyone.
            Poll::Ready(None) | Poll::Pending => Poll::Pending,
        }
    }

    /// Resolves with the wait's output (pending forever once it was taken).
    pub async fn done(&mut self) -> T {
        std::future::poll_fn(|cx| self.poll_done(cx)).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use futures_util::task::noop_waker_ref;

    use super::*;

    #[tokio::test]
    async fn a_wait_is_polled_again_only_once_woken() {
        let (tell, mut told) = tokio::sync::watch::channel(0);
        let polls = Arc::new(AtomicUsize::new(0));
        let counted = polls.clone();
        let mut wait = Box::pin(async move {
            let _ = told.changed().await;
            *told.borrow()
        });
        let mut woken = Woken::new(std::future::poll_fn(move |cx| {
            counted.fetch_add(1, Ordering::Relaxed);
            wait.as_mut().poll(cx)
        }));
        let mut cx = Context::from_waker(noop_waker_ref());
        for _ in 0..10 {
            assert!(woken.poll_done(&mut cx).is_pending());
        }
        assert_eq!(polls.load(Ordering::Relaxed), 1, "polled once until woken");
        tell.send_replace(7);
        assert_eq!(woken.done().await, 7);
        assert!(woken.poll_done(&mut cx).is_pending(), "done once");
        woken.set(async { 8 });
        assert_eq!(woken.done().await, 8);
    }
}
