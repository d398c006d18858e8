//! Kurento-protocol client for rtcpool's engine and for a real Kurento Media Server, plus the
//! Kurento wire types shared with the engine ([`wire`]).
//!
//! | concept | file |
//! |---|---|
//! | wire format (frames, methods, errors, ids, classes, events) | `wire/` |
//! | the client handle, options, errors, connection states | `client.rs` |
//! | the connection task: framing, ids, pings, timeouts, reconnect + resume | `connection.rs` |
//! | opening the socket: ws:// and wss:// (rustls), credentials from the URI (also public: signaling's node-to-node sockets) | `transport.rs` |
//! | typed objects (`MediaPipeline`, `WebRtcEndpoint`, `PassThrough`, `ServerManager`) | `objects.rs` |
//! | event subscriptions and typed event payloads | `events.rs` |
//! | a socket's outgoing queue bounded in bytes (used by both servers) | `outbox.rs` |
//! | engine URIs with the secret as user-info: redaction, credentials | `uri.rs` |

mod client;
mod connection;
mod events;
mod objects;
pub mod outbox;
mod transport;
pub mod uri;
pub mod wire;

pub use client::{ClientError, ClientOptions, ConnectionEvent, ConnectionState, KurentoClient};
pub use events::{KmsEvent, Subscription};
pub use objects::{MediaPipeline, MediaType, PassThrough, ServerManager, WebRtcEndpoint};
pub use transport::{open_with_headers as open_socket, Ws};
