//! Engine URIs may carry the engine's secret as user-info (`ws://rtcpool:S@host:8888/kurento`).
//! Everything shown to people (logs, API answers, metrics, config errors) uses [`redact`];
//! only the connection itself uses [`credentials`].

/// The URI without its user-info: `ws://host:8888/kurento`.
pub fn redact(uri: &str) -> String {
    match split(uri) {
        Some((scheme, _, rest)) => format!("{scheme}://{rest}"),
        None => uri.to_string(),
    }
}

/// The URI without user-info, and the `(user, password)` it carried (percent-decoded).
pub fn credentials(uri: &str) -> (String, Option<(String, String)>) {
    match split(uri) {
        Some((scheme, info, rest)) => {
            let (user, pass) = info.split_once(':').unwrap_or((info, ""));
            (
                format!("{scheme}://{rest}"),
                Some((percent_decode(user), percent_decode(pass))),
            )
        }
        None => (uri.to_string(), None),
    }
}

/// `(scheme, user-info, rest)` when the authority has user-info.
fn split(uri: &str) -> Option<(&str, &str, &str)> {
    let (scheme, after) = uri.split_once("://")?;
    let authority_end = after.find(['/', '?', '#']).unwrap_or(after.len());
    let at = after[..authority_end].rfind('@')?;
    Some((scheme, &after[..at], &after[at + 1..]))
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_info_is_split_off_and_decoded() {
        let u = "ws://rtcpool:s%3Acr%40t@10.0.0.5:8888/kurento?x=a@b";
        assert_eq!(redact(u), "ws://10.0.0.5:8888/kurento?x=a@b");
        let (clean, cred) = credentials(u);
        assert_eq!(clean, "ws://10.0.0.5:8888/kurento?x=a@b");
        assert_eq!(cred, Some(("rtcpool".into(), "s:cr@t".into())));
        assert_eq!(redact("wss://h/kurento"), "wss://h/kurento");
        assert_eq!(credentials("ws://h:1/k?u=a@b").1, None);
        assert_eq!(
            credentials("ws://:pw@h").1,
            Some((String::new(), "pw".into()))
        );
    }
}
