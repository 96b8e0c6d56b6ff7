//! A connection whose writes time out: a client that stops reading leaves
//! a response stuck in the socket buffer, holding the connection (and its
//! slot) forever. Once a write has waited `limit` without the client
//! taking a byte, the write fails with `TimedOut` and the connection is
//! dropped (and counted).

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::limits::{Counters, Limited};

/// `inner` with a limit on how long a write may make no progress.
pub struct SendTimeout<S> {
    inner: S,
    limit: Duration,
    /// Armed while a write is pending; cleared by any progress.
    stalled_since: Option<Pin<Box<Sleep>>>,
    /// Where a connection given up on is counted.
    counters: Arc<Counters>,
}

impl<S> SendTimeout<S> {
    pub fn new(inner: S, limit: Duration, counters: Arc<Counters>) -> SendTimeout<S> {
        SendTimeout {
            inner,
            limit,
            stalled_since: None,
            counters,
        }
    }

    /// Turns a pending write into an error once the deadline passed.
    fn pending<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let limit = self.limit;
        let deadline = self
            .stalled_since
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(Instant::now() + limit)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => {
                self.counters.count(Limited::HttpTimeout);
                Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "the client read nothing for the send timeout",
                )))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for SendTimeout<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for SendTimeout<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write(cx, buf) {
            Poll::Pending => self.pending(cx),
            ready => {
                self.stalled_since = None;
                ready
            }
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match Pin::new(&mut self.inner).poll_write_vectored(cx, bufs) {
            Poll::Pending => self.pending(cx),
            ready => {
                self.stalled_since = None;
                ready
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.inner).poll_flush(cx) {
            Poll::Pending => self.pending(cx),
            ready => {
                self.stalled_since = None;
                ready
            }
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test]
    async fn a_write_nobody_reads_fails_after_the_limit() {
        // A pipe with a small buffer whose reader never reads.
        let (writer, _reader) = tokio::io::duplex(64);
        let mut conn = SendTimeout::new(writer, Duration::from_millis(100), Arc::default());
        let result = conn.write_all(&[0u8; 4096]).await;
        let kind = result.err().map(|e| e.kind());
        assert_eq!(kind, Some(io::ErrorKind::TimedOut));
    }

    #[tokio::test]
    async fn a_reading_client_is_not_cut_off() {
        let (writer, mut reader) = tokio::io::duplex(64);
        let mut conn = SendTimeout::new(writer, Duration::from_secs(30), Arc::default());
        let drain = tokio::spawn(async move {
            let mut sink = Vec::new();
            let _ = tokio::io::AsyncReadExt::read_to_end(&mut reader, &mut sink).await;
            sink.len()
        });
        conn.write_all(&[1u8; 4096])
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        drop(conn);
        assert_eq!(drain.await.unwrap_or(0), 4096);
    }
}
