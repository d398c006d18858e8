//! The captured kurento-client 7.3.0 frames (`shared/reference/kurento-traces/`) as fixtures:
//! every frame parses with the shared wire types and serialises back to the same JSON.

use kms_client::wire::envelope::{Frame, OnEvent};
use kms_client::wire::Method;
use serde_json::Value;
use std::path::PathBuf;

fn traces_dir() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let candidates = [
        here.join("fixtures/kurento-traces"),
        here.join("../../shared/reference/kurento-traces"),
    ];
    candidates
        .iter()
        .find(|p| p.is_dir())
        .cloned()
        .unwrap_or_else(|| candidates[0].clone())
}

#[test]
fn every_captured_frame_round_trips() -> anyhow::Result<()> {
    let dir = traces_dir();
    let mut counted = (0, 0, 0);
    for entry in std::fs::read_dir(&dir)? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default()
            .to_string();
        if !name.ends_with(".log") || name.ends_with(".app.log") {
            continue;
        }
        for line in std::fs::read_to_string(&path)?.lines() {
            let Some(json_at) = line.find('{') else {
                continue;
            };
            let head = &line[..json_at];
            let text = &line[json_at..];
            let original: Value = serde_json::from_str(text)?;
            if head.contains("<=EV") {
                let ev: OnEvent = serde_json::from_str(text)?;
                assert_eq!(serde_json::to_value(&ev)?, original, "{name}: {text}");
                counted.2 += 1;
            } else if head.contains("=>") {
                let Ok(Frame::Request(req)) = Frame::parse(text) else {
                    panic!("{name}: not a request: {text}")
                };
                let m = Method::parse(&req.method, req.params.clone())
                    .map_err(|e| anyhow::anyhow!("{name}: {text}: {}", e.message))?;
                assert_eq!(m.name(), req.method);
                assert_eq!(
                    m.params(),
                    req.params
                        .filter(|p| p.as_object().is_none_or(|o| !o.is_empty())),
                    "{name}: {text}"
                );
                counted.0 += 1;
            } else if head.contains("<=") {
                let Ok(Frame::Response(r)) = Frame::parse(text) else {
                    panic!("{name}: not a response: {text}")
                };
                assert_eq!(serde_json::to_value(&r)?, original, "{name}: {text}");
                counted.1 += 1;
            }
        }
    }
    assert!(
        counted.0 >= 40 && counted.1 >= 40 && counted.2 >= 2,
        "too few frames read from {}: {counted:?}",
        dir.display()
    );
    Ok(())
}
