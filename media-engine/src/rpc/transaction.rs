//! `transaction`: not implemented (40006), which the protocol allows; `getInfo` therefore does
//! not advertise the `transactions` capability.

use kms_client::wire::{ErrorCode, RpcError};

use super::Handled;

pub fn handle() -> Handled {
    Err(RpcError::new(
        ErrorCode::NotImplemented,
        "Transactions are not implemented",
    ))
}
