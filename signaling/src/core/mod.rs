//! Signaling's session core: state and rules without I/O. Nothing here owns a socket, a task or
//! a clock: callers pass `now` in and act on what comes out (participants whose reconnection
//! window lapsed, sockets whose client stopped pinging, timers that fell due). The async shell
//! (`app.rs`, `rpc/socket.rs`) does the sending and the engine work.

pub mod deadlines;
pub mod holds;
pub mod lifecycle;
pub mod ping;
pub mod roster;

pub use deadlines::Deadlines;
pub use holds::{Hold, Holds};
pub use lifecycle::{Departure, Notice, Unpublished};
pub use ping::PingWatch;
pub use roster::{Attached, Roster};
