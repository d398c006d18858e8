//! OpenVidu identifier formats (reference §1.8): `ses_` + U + a9, `tok_` + U + a15, `con_` + U + a9,
//! `str_CAM_` + U + a3 + `_` + connectionId; `media_` + U + a7 for engines.

use rand::Rng;

const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

fn random(prefix: &str, n: usize) -> String {
    let mut rng = rand::rng();
    let mut s = String::with_capacity(prefix.len() + n + 1);
    s.push_str(prefix);
    s.push(char::from(b'A' + rng.random_range(0..26u8)));
    for _ in 0..n {
        s.push(char::from(ALNUM[rng.random_range(0..ALNUM.len())]));
    }
    s
}

pub fn session_id() -> String {
    random("ses_", 9)
}

pub fn token_id() -> String {
    random("tok_", 15)
}

pub fn connection_id() -> String {
    random("con_", 9)
}

/// A random secret for a local engine (32 alphanumerics, ~190 bits).
pub fn secret() -> String {
    random("", 31)
}

/// This signaling process's identity, tagged on everything it creates on engines.
pub fn instance_id() -> String {
    random("sig_", 11)
}

/// Derived from the engine's URI (without its secret), so every node of a cluster calls the
/// same engine by the same id (`PATCH`/`DELETE /media-nodes/{id}` on any node).
pub fn engine_id(uri: &str) -> String {
    // FNV-1a: stable across processes and builds.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in kms_client::uri::redact(uri).trim_end_matches('/').bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut s = String::from("media_");
    s.push(char::from(b'A' + (h % 26) as u8));
    h /= 26;
    for _ in 0..7 {
        s.push(char::from(ALNUM[(h % ALNUM.len() as u64) as usize]));
        h /= ALNUM.len() as u64;
    }
    s
}

/// `str_<CAM|SCR|CUS|MIC>_<U a3>_<connectionId>`.
pub fn stream_id(type_of_video: Option<&str>, has_video: bool, connection_id: &str) -> String {
    let kind = if !has_video {
        "MIC".to_string()
    } else {
        type_of_video
            .unwrap_or("CAMERA")
            .chars()
            .take(3)
            .collect::<String>()
            .to_ascii_uppercase()
    };
    format!("{}_{connection_id}", random(&format!("str_{kind}_"), 3))
}

/// Custom session ids: `[a-zA-Z0-9_-]{1,256}` (OpenVidu's characters; the length keeps ids usable
/// in URLs).
pub fn valid_custom_session_id(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= crate::limits::CUSTOM_SESSION_ID
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The publisher's connection id inside a stream id (from the last `con_`).
pub fn connection_of_stream(stream_id: &str) -> Option<&str> {
    stream_id.rfind("con_").map(|i| &stream_id[i..])
}

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        let s = session_id();
        assert!(s.starts_with("ses_") && s.len() == 14 && s.as_bytes()[4].is_ascii_uppercase());
        assert_eq!(token_id().len(), 20);
        let c = connection_id();
        let st = stream_id(Some("CAMERA"), true, &c);
        assert!(st.starts_with("str_CAM_") && st.ends_with(&c), "{st}");
        assert_eq!(connection_of_stream(&st), Some(c.as_str()));
        assert!(stream_id(None, false, &c).starts_with("str_MIC_"));
        assert!(valid_custom_session_id("my-Room_1") && !valid_custom_session_id("a b"));
    }
}
