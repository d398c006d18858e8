//! `videoData {height, width, videoActive, audioActive}`: validated and acknowledged (only Pro
//! features consume it).

use serde_json::{Map, Value};

use super::wire::{param, RpcError};
use super::Ctx;

pub fn handle(ctx: &mut Ctx<'_>, p: &Map<String, Value>) -> Result<Value, RpcError> {
    ctx.me("videoData")?;
    let _: i64 = param("videoData", p, "height")?;
    let _: i64 = param("videoData", p, "width")?;
    let _: bool = param("videoData", p, "videoActive")?;
    let _: bool = param("videoData", p, "audioActive")?;
    Ok(super::empty())
}
