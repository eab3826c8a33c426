//! The whole request body must arrive within the listener's `read_timeout`, as Prometheus's
//! `--web.read-timeout` bounds it: a client trickling a body a byte at a time would otherwise
//! hold one of `max_connections` slots for as long as it likes.

use axum::body::{Body, Bytes};
use axum::extract::Request;
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::Sleep;

#[derive(Debug, thiserror::Error)]
#[error("request body not received within read_timeout ({0:?})")]
pub struct ReadTimeout(Duration);

struct DeadlineBody {
    inner: Body,
    deadline: Pin<Box<Sleep>>,
    timeout: Duration,
}

impl HttpBody for DeadlineBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        if let Poll::Ready(frame) = Pin::new(&mut this.inner).poll_frame(cx) {
            return Poll::Ready(frame);
        }
        if this.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(axum::Error::new(ReadTimeout(this.timeout)))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Puts a deadline, `timeout` from now, on reading the request's body. Bodiless requests (most
/// GETs) are left as they are.
pub fn limit(req: Request, timeout: Duration) -> Request {
    if req.body().is_end_stream() {
        return req;
    }
    req.map(|inner| {
        Body::new(DeadlineBody { inner, deadline: Box::pin(tokio::time::sleep(timeout)), timeout })
    })
}
