//! How both servers accept connections: `TCP_NODELAY` (small JSON-RPC frames back to back must
//! not wait for delayed ACKs), and no room for slow clients: a connection that sends nothing
//! within the header timeout is closed (hyper's own header timeout only starts with the first
//! byte), and a request's headers must be complete within it.

use axum_server::accept::Accept;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::time::Duration;
use tokio::net::TcpStream;

/// Wraps another acceptor (plain or TLS): sets `TCP_NODELAY` and waits at most `first_byte`
/// for the client to say anything.
#[derive(Clone)]
pub struct SlowClientAcceptor<A> {
    inner: A,
    first_byte: Duration,
}

impl<A> SlowClientAcceptor<A> {
    pub fn new(inner: A, first_byte: Duration) -> Self {
        Self { inner, first_byte }
    }
}

type Accepted<T, S> = Pin<Box<dyn Future<Output = io::Result<(T, S)>> + Send>>;

impl<A, S> Accept<TcpStream, S> for SlowClientAcceptor<A>
where
    A: Accept<TcpStream, S> + Clone + Send + Sync + 'static,
    A::Future: Send,
    S: Send + 'static,
{
    type Stream = A::Stream;
    type Service = A::Service;
    type Future = Accepted<A::Stream, A::Service>;

    fn accept(&self, stream: TcpStream, service: S) -> Self::Future {
        let (inner, wait) = (self.inner.clone(), self.first_byte);
        Box::pin(async move {
            stream.set_nodelay(true)?;
            let mut byte = [0u8; 1];
            match tokio::time::timeout(wait, stream.peek(&mut byte)).await {
                Ok(Ok(n)) if n > 0 => inner.accept(stream, service).await,
                Ok(Err(e)) => Err(e),
                _ => Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "client sent nothing",
                )),
            }
        })
    }
}

/// Headers must be complete within `header_timeout` of their first byte.
pub fn limit_slow_clients(
    builder: &mut hyper_util::server::conn::auto::Builder<hyper_util::rt::TokioExecutor>,
    header_timeout: Duration,
) {
    builder
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout);
}
