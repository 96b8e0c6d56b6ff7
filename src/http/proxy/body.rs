//! Bodies crossing the proxy, streamed frame by frame with their limits:
//! the visitor's request body, cut off past `[limits.http]
//! max_body_bytes` even when it came without a `Content-Length`, and the
//! backend's response body, cut off when it sends nothing for `[proxy]
//! idle_timeout_secs`. Neither is ever gathered in memory.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use crate::http::body::BodyError;

/// The visitor's body ran past the limit.
#[derive(Debug, thiserror::Error)]
#[error("request body over the {0}-byte limit")]
pub struct TooLarge(pub u64);

/// The backend's body stalled.
#[derive(Debug, thiserror::Error)]
#[error("the backend sent nothing for {0:?}")]
pub struct Stalled(pub Duration);

/// A request body that fails once more than `limit` bytes came, and says
/// so through `tripped` (the client's error may not carry the cause).
pub struct Capped<B> {
    inner: B,
    left: u64,
    limit: u64,
    tripped: Arc<AtomicBool>,
}

impl<B> Capped<B> {
    pub fn new(inner: B, limit: u64, tripped: Arc<AtomicBool>) -> Capped<B> {
        Capped {
            inner,
            left: limit,
            limit,
            tripped,
        }
    }
}

impl<B> HttpBody for Capped<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BodyError>,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                let len = frame.data_ref().map_or(0, |d| d.len() as u64);
                if len > this.left {
                    this.tripped.store(true, Ordering::Relaxed);
                    return Poll::Ready(Some(Err(Box::new(TooLarge(this.limit)))));
                }
                this.left -= len;
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A response body that fails when no frame comes for `limit`.
pub struct Idle<B> {
    inner: B,
    limit: Duration,
    timer: Pin<Box<Sleep>>,
}

impl<B> Idle<B> {
    pub fn new(inner: B, limit: Duration) -> Idle<B> {
        Idle {
            inner,
            limit,
            timer: Box::pin(tokio::time::sleep(limit)),
        }
    }
}

impl<B> HttpBody for Idle<B>
where
    B: HttpBody<Data = Bytes> + Unpin,
    B::Error: Into<BodyError>,
{
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                this.timer.as_mut().reset(Instant::now() + this.limit);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(e.into()))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.timer.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(Box::new(Stalled(this.limit))))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::convert::Infallible;

    use http_body_util::BodyExt;

    use super::*;

    /// Frames given in advance; `silent` ones never end.
    struct Chunks {
        frames: VecDeque<Bytes>,
        silent: bool,
    }

    impl HttpBody for Chunks {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            match self.frames.pop_front() {
                Some(bytes) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
                None if self.silent => Poll::Pending,
                None => Poll::Ready(None),
            }
        }
    }

    fn chunks(parts: &[&'static str], silent: bool) -> Chunks {
        Chunks {
            frames: parts
                .iter()
                .map(|p| Bytes::from_static(p.as_bytes()))
                .collect(),
            silent,
        }
    }

    #[tokio::test]
    async fn a_body_past_the_limit_fails_and_trips() {
        let tripped = Arc::new(AtomicBool::new(false));
        let fits = Capped::new(chunks(&["12", "345"], false), 5, tripped.clone());
        assert_eq!(fits.collect().await.unwrap().to_bytes(), "12345");
        assert!(!tripped.load(Ordering::Relaxed));
        let over = Capped::new(chunks(&["abc", "abc", "abc"], false), 8, tripped.clone());
        let err = over.collect().await.err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("request body over the 8-byte limit"));
        assert!(tripped.load(Ordering::Relaxed));
    }

    #[tokio::test]
    async fn a_silent_backend_body_fails() {
        let body = Idle::new(chunks(&["first"], true), Duration::from_millis(20));
        let err = body.collect().await.err().map(|e| e.to_string());
        assert_eq!(err.as_deref(), Some("the backend sent nothing for 20ms"));
        let done = Idle::new(chunks(&["a", "b"], false), Duration::from_secs(1));
        assert_eq!(done.collect().await.unwrap().to_bytes(), "ab");
    }
}
