//! One shutdown signal shared by every long-lived task.
//!
//! The node owns the sender; listeners and connection tasks hold a
//! `Shutdown` and stop accepting or finish their current request when it
//! fires, so Ctrl-C or SIGTERM ends the process cleanly.

use tokio::sync::watch;

/// Fires the shutdown signal when `trigger` is called or it is dropped.
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// A handle that resolves once shutdown has begun.
#[derive(Debug, Clone)]
pub struct Shutdown(watch::Receiver<bool>);

/// A connected trigger and handle.
pub fn channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl ShutdownTrigger {
    /// Starts shutting down.
    pub fn trigger(&self) {
        self.0.send_replace(true);
    }
}

impl Shutdown {
    /// Resolves when shutdown begins (at once if it already has).
    pub async fn wait(&mut self) {
        // An error means the trigger is gone, which also means shut down.
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    /// Whether shutdown has begun.
    pub fn is_shutdown(&self) -> bool {
        *self.0.borrow()
    }
}
