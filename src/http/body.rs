//! Response bodies: nothing, bytes, or a stream. File bodies are `Bytes`,
//! either read once (small files) or slices of a mapping of the object
//! (large files), so hyper writes them without copying them through a
//! buffer. A proxied backend's body is a stream, passed on frame by frame
//! so a large response never sits in memory.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::combinators::UnsyncBoxBody;
use hyper::body::{Frame, SizeHint};

/// Why a streamed body stopped early.
pub type BodyError = Box<dyn std::error::Error + Send + Sync>;

/// The body of every response the server sends.
#[derive(Debug)]
pub enum Body {
    Empty,
    Full(Option<Bytes>),
    /// Frames passed on as they arrive (a proxied backend's answer).
    Stream(UnsyncBoxBody<Bytes, BodyError>),
}

impl Body {
    /// A body of `bytes`.
    pub fn full(bytes: impl Into<Bytes>) -> Body {
        Body::Full(Some(bytes.into()))
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match self.get_mut() {
            Body::Empty => Poll::Ready(None),
            Body::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            Body::Stream(stream) => Pin::new(stream).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Body::Empty => true,
            Body::Full(bytes) => bytes.is_none(),
            Body::Stream(stream) => stream.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Empty => SizeHint::with_exact(0),
            Body::Full(bytes) => SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64)),
            Body::Stream(stream) => stream.size_hint(),
        }
    }
}
