//! A deadline on request bodies: the whole body must arrive within
//! `--body-timeout-secs` of the request's headers, or reading it fails and the request
//! is answered 408 (`negotiate::read_body`). actix-web's own timeout covers only the
//! headers (`client_request_timeout`); without this, a client that trickles a body a
//! byte at a time would hold its connection and its handler forever.
//!
//! The middleware wraps the payload of every request that has one, so every reader of
//! a body is covered. When the deadline passes, the wrapper keeps the connection's
//! payload alive a few seconds more: actix-http then closes the connection after the
//! answer instead of draining a chunked body the client may never finish.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use actix_web::{Error, HttpMessage};
use futures_util::{Stream, StreamExt};

/// The error a body read gets past its deadline (inside a `PayloadError::Io`).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the request body was not received within {0} seconds")]
pub struct BodyTimedOut(pub u64);

/// How long the payload of a timed-out body is kept (see the module's comment): longer
/// than it takes to send the answer.
const HOLD_AFTER_TIMEOUT: Duration = Duration::from_secs(5);

/// The middleware: gives the request's body, if it has one, its deadline.
pub async fn body_deadline(
    timeout: Duration,
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let payload = req.take_payload();
    if matches!(payload, Payload::None) {
        req.set_payload(payload);
    } else {
        let stream = Deadline {
            inner: Some(payload),
            sleep: Box::pin(tokio::time::sleep(timeout)),
            secs: timeout.as_secs(),
        };
        req.set_payload(Payload::Stream {
            payload: Box::pin(stream),
        });
    }
    next.call(req).await
}

/// A payload that fails once its deadline has passed.
struct Deadline {
    inner: Option<Payload>,
    sleep: Pin<Box<tokio::time::Sleep>>,
    secs: u64,
}

impl Stream for Deadline {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        // what has arrived is read first, so a body on time is never cut
        if let Poll::Ready(item) = inner.poll_next_unpin(cx) {
            return Poll::Ready(item);
        }
        if this.sleep.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        if let Some(inner) = this.inner.take() {
            actix_web::rt::spawn(async move {
                tokio::time::sleep(HOLD_AFTER_TIMEOUT).await;
                drop(inner);
            });
        }
        Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            BodyTimedOut(this.secs),
        )))))
    }
}

/// The seconds of the deadline a body read failed on, when that is why it failed.
pub fn timed_out(e: &PayloadError) -> Option<u64> {
    match e {
        PayloadError::Io(io) => io
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<BodyTimedOut>())
            .map(|t| t.0),
        _ => None,
    }
}
