//! ServerManager (`manager_ServerManager`): server info and real process load.

use kms_client::wire::complex::server_info;
use kms_client::wire::{ErrorCode, RpcError};
use serde_json::Value;
use std::time::Duration;

use super::Invocation;
use crate::rpc::{value, Handled};
use crate::sysinfo;

/// Our version string (never `openvidu/mediasoup-controller…`, which would switch OpenVidu's mode).
pub const VERSION: &str = concat!("rtcpool-media-engine/", env!("CARGO_PKG_VERSION"));

pub async fn invoke(inv: &Invocation<'_>, op: &str) -> Option<Handled> {
    let r = match op {
        "getInfo" => Ok(value(info())),
        "getCpuCount" => Ok(value(sysinfo::cpu_count())),
        "getUsedCpu" => match inv.arg::<u64>("interval") {
            Ok(ms) if ms <= 60_000 => Ok(value(
                sysinfo::used_cpu(Duration::from_millis(ms.max(1))).await,
            )),
            Ok(ms) => Err(RpcError::new(
                ErrorCode::MarshallError,
                format!("interval {ms} ms is over 60000"),
            )),
            Err(e) => Err(e),
        },
        "getUsedMemory" => Ok(value(sysinfo::rss_kib())),
        "getPipelines" => {
            let ids: Vec<String> = inv
                .engine
                .state
                .lock()
                .objects
                .pipelines()
                .into_iter()
                .map(|p| p.0)
                .collect();
            Ok(value(ids))
        }
        "getSessions" => {
            let ids: Vec<String> = inv
                .engine
                .state
                .lock()
                .sessions
                .ids()
                .into_iter()
                .map(|s| s.0)
                .collect();
            Ok(value(ids))
        }
        "getMetadata" => Ok(value("")),
        "getKmd" => inv
            .arg::<String>("moduleName")
            .and_then(|m| match m.as_str() {
                "core" | "elements" | "filters" => {
                    Ok(value(format!("{{\"name\":\"{m}\",\"version\":\"7.3.0\"}}")))
                }
                _ => Err(RpcError::new(
                    ErrorCode::KmdNotFound,
                    format!("Module '{m}' not found"),
                )),
            }),
        _ => return None,
    };
    Some(r)
}

pub fn info() -> Value {
    let mut v = server_info(VERSION, env!("CARGO_PKG_VERSION"));
    // No transaction support, so the capability is not advertised.
    v["capabilities"] = Value::Array(Vec::new());
    v
}
