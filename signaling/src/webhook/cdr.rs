//! OpenVidu's CDR: every lifecycle event, one JSON line each (`{"<event>": {…fields}}`), appended
//! to `OPENVIDU_CDR_PATH/CDR.<yyyy-MM-dd>_<HH-mm-ss of start>.log` (a new file each day, as
//! OpenVidu's rolling appender). Written by one task from a bounded queue, so a slow disk never
//! slows a session; lines that do not fit are dropped and counted.

use serde_json::{Map, Value};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::io::AsyncWriteExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::WebhookStats;

/// The CDR line of a webhook body: its `event` becomes the key of the rest.
pub fn line(body: &Value) -> String {
    let mut fields = body.as_object().cloned().unwrap_or_default();
    let event = fields
        .remove("event")
        .and_then(|e| e.as_str().map(str::to_string))
        .unwrap_or_default();
    let mut m = Map::new();
    m.insert(event, Value::Object(fields));
    Value::Object(m).to_string()
}

/// `CDR.<date>_<start>.log` for an event at `now_ms` of a process started at `start_ms` (UTC).
pub fn file_name(now_ms: u64, start_ms: u64) -> String {
    let (date, _) = utc(now_ms);
    let (_, time) = utc(start_ms);
    format!("CDR.{date}_{time}.log")
}

/// (`yyyy-MM-dd`, `HH-mm-ss`) of a Unix time in milliseconds, UTC.
fn utc(ms: u64) -> (String, String) {
    let t = time::OffsetDateTime::from_unix_timestamp((ms / 1000) as i64)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    (
        format!("{:04}-{:02}-{:02}", t.year(), u8::from(t.month()), t.day()),
        format!("{:02}-{:02}-{:02}", t.hour(), t.minute(), t.second()),
    )
}

/// Starts the writer; None (logged) when the directory cannot be made.
pub fn start(
    dir: PathBuf,
    queue: usize,
    stats: Arc<WebhookStats>,
    cancel: CancellationToken,
) -> Option<mpsc::Sender<Value>> {
    if let Err(e) = std::fs::create_dir_all(&dir) {
        tracing::error!(dir = %dir.display(), %e, "cannot create the CDR directory; CDR is off");
        return None;
    }
    let (tx, mut rx) = mpsc::channel::<Value>(queue);
    let start_ms = crate::ids::now_ms();
    tokio::spawn(async move {
        loop {
            let body = tokio::select! {
                b = rx.recv() => match b { Some(b) => b, None => return },
                _ = cancel.cancelled() => return,
            };
            let now = body
                .get("timestamp")
                .and_then(Value::as_u64)
                .unwrap_or(start_ms);
            let path = dir.join(file_name(now, start_ms));
            let written = async {
                let mut f = tokio::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)
                    .await?;
                f.write_all(format!("{}\n", line(&body)).as_bytes()).await
            }
            .await;
            if let Err(e) = written {
                stats.cdr_failed.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(path = %path.display(), %e, "CDR line not written");
            }
        }
    });
    Some(tx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn lines_and_file_names_are_openvidus() {
        let body = json!({"event": "sessionCreated", "sessionId": "s", "timestamp": 1});
        let l: Value = serde_json::from_str(&line(&body)).unwrap_or_default();
        assert_eq!(
            l,
            json!({"sessionCreated": {"sessionId": "s", "timestamp": 1}})
        );
        // 2026-11-28 13:20:05 UTC and a start at 2026-11-27 23:59:59 UTC.
        assert_eq!(
            file_name(1_795_872_005_000, 1_795_823_999_000),
            "CDR.2026-11-28_23-59-59.log"
        );
        assert_eq!(utc(0), ("1970-01-01".into(), "00-00-00".into()));
        assert_eq!(utc(951_782_400_000).0, "2000-02-29");
    }
}
