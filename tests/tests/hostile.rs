//! Seeded hostile input on all three surfaces — REST, the browser WebSocket `/openvidu` and the
//! engine WebSocket `/kurento` — at least 1,000 generated inputs each, while a sentinel session
//! carries media. Asserted: every answer is a well-formed error (or result) with the right code,
//! the sentinel's media keeps flowing (packets counted), no process logs a panic, and each
//! process's memory stays bounded. The seed is printed; `HOSTILE_SEED=N` replays a run.

use futures::{SinkExt, StreamExt};
use rtcpool_tests::bot::{ws_url, Bot};
use rtcpool_tests::harness::{http_request, rss_kib, EngineProcess, SignalingProcess, SECRET};
use serde_json::{json, Map, Value};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

const PER_SURFACE: usize = 2000;
const ENGINE_SECRET: &str = "hostile-test-secret";

/// SplitMix64: small, seedable, good enough to pick inputs.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// `known` half the time, junk otherwise.
fn or_junk(r: &mut Rng, known: String) -> String {
    if r.chance(50) {
        known
    } else {
        junk_string(r)
    }
}

/// Strings a careless or hostile client sends.
fn junk_string(r: &mut Rng) -> String {
    match r.below(12) {
        0 => String::new(),
        1 => "x".repeat(1 + r.below(300_000)),
        2 => "\u{0}\u{7}\u{1b}[2J\u{202e}".into(),
        3 => "%s%n%x{}{0}$(id)`id`'; DROP TABLE s;--".into(),
        4 => "../../../../etc/passwd".into(),
        5 => "ses_AAAAAAAAA".into(),
        6 => "con_Zzzzzzzzz".into(),
        7 => "str_CAM_Abc_con_Zzzzzzzzz".into(),
        8 => "😀".repeat(1 + r.below(1000)),
        9 => format!("{}", r.next()),
        10 => "a".repeat(1 + r.below(300)),
        _ => "null".into(),
    }
}

fn junk_value(r: &mut Rng, depth: usize) -> Value {
    match r.below(if depth > 3 { 6 } else { 9 }) {
        0 => Value::Null,
        1 => Value::Bool(r.chance(50)),
        2 => json!(r.next()),
        3 => json!(-1e300),
        4 => json!(-(r.below(1000) as i64)),
        5 => Value::String(junk_string(r)),
        6 => Value::Array((0..r.below(5)).map(|_| junk_value(r, depth + 1)).collect()),
        7 => {
            let mut m = Map::new();
            for _ in 0..r.below(5) {
                let k = r
                    .pick(&["sdpOffer", "candidate", "id", "to", "data", "a", ""])
                    .to_string();
                m.insert(k, junk_value(r, depth + 1));
            }
            Value::Object(m)
        }
        _ => Value::String(junk_sdp(r)),
    }
}

/// SDP that is garbage, nearly valid, or valid-looking with hostile values.
fn junk_sdp(r: &mut Rng) -> String {
    let base = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n";
    match r.below(8) {
        0 => "garbage".into(),
        1 => base.into(),
        2 => format!("{base}m=video 9 UDP/TLS/RTP/SAVPF 96\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=rtpmap:96 VP8/90000\r\na=sendonly\r\n"),
        3 => format!("{base}m=video 65536 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:a\r\na=ice-pwd:b\r\na=fingerprint:sha-256 ZZ\r\na=setup:actpass\r\na=mid:0\r\na=rtpmap:96 VP8/90000\r\n"),
        4 => format!("{base}{}", "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:x\r\n".repeat(1 + r.below(300))),
        5 => format!("{base}m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=ice-ufrag:{}\r\na=ice-pwd:{}\r\na=fingerprint:sha-256 {}\r\na=setup:active\r\na=mid:0\r\na=rtpmap:96 VP8/90000\r\na=extmap:300 urn:x\r\na=ssrc:4294967295 cname:{}\r\n", junk_string(r), "p".repeat(r.below(5000)), "AB:".repeat(40), junk_string(r)),
        6 => "v=0\r\n".repeat(1 + r.below(2000)),
        _ => junk_string(r),
    }
}

fn junk_candidate(r: &mut Rng) -> Value {
    let c = match r.below(5) {
        0 => "candidate:1 1 udp 2122260223 127.0.0.1 9 typ host".to_string(),
        1 => "candidate:1 1 udp 99999999999 999.1.1.1 -5 typ relay raddr x rport y".into(),
        2 => format!("candidate:{}", junk_string(r)),
        3 => "a=end-of-candidates".into(),
        _ => junk_string(r),
    };
    json!({"candidate": c, "sdpMid": junk_value(r, 3), "sdpMLineIndex": junk_value(r, 3)})
}

/// A whole frame: invalid JSON, non-objects, deep nesting, or JSON-RPC with junk in it.
fn junk_frame(
    r: &mut Rng,
    methods: &[&str],
    params: impl Fn(&mut Rng, &str) -> Value,
) -> (String, FrameKind) {
    match r.below(20) {
        0 => ("{\"jsonrpc\":\"2.0\",\"method\":".into(), FrameKind::ParseError),
        1 => ("[1,2,3]".into(), FrameKind::NotAnObject),
        2 => (format!("{}1{}", "[".repeat(5000), "]".repeat(5000)), FrameKind::NotAnObject),
        3 => (junk_string(r), FrameKind::Garbage),
        4 => (json!({"jsonrpc": "2.0", "id": r.below(1000)}).to_string(), FrameKind::InvalidRequest),
        5 => (
            json!({"jsonrpc": "2.0", "method": junk_string(r), "id": r.below(1_000_000), "params": {}}).to_string(),
            FrameKind::Request,
        ),
        6 => (json!({"jsonrpc": "2.0", "method": r.pick(methods)}).to_string(), FrameKind::Notification),
        7 => {
            let id = r.pick(&[json!("str-id"), json!(1.5), json!({"o": 1}), json!([1])]).clone();
            (json!({"jsonrpc": "2.0", "method": r.pick(methods), "id": id}).to_string(), FrameKind::OddId)
        }
        _ => {
            let m = *r.pick(methods);
            let id = r.below(1_000_000);
            (json!({"jsonrpc": "2.0", "method": m, "id": id, "params": params(r, m)}).to_string(), FrameKind::Request)
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FrameKind {
    ParseError,
    NotAnObject,
    Garbage,
    InvalidRequest,
    Request,
    Notification,
    OddId,
}

/// Checks one answer frame against what was sent; returns a description of what is wrong.
fn check_answer(
    kind: FrameKind,
    sent_id: Option<&Value>,
    answer: &Value,
    known: impl Fn(i64) -> bool,
) -> Result<(), String> {
    let ok_shape = answer.get("result").is_some() != answer.get("error").is_some();
    if !ok_shape {
        return Err(format!("neither result nor error (or both): {answer}"));
    }
    if let Some(e) = answer.get("error") {
        let Some(code) = e["code"].as_i64() else {
            return Err(format!("error without integer code: {answer}"));
        };
        if !e["message"].is_string() {
            return Err(format!("error without message: {answer}"));
        }
        if !known(code) {
            return Err(format!("unexpected code {code}: {answer}"));
        }
        let expected = match kind {
            FrameKind::ParseError => Some(-32700),
            FrameKind::InvalidRequest => Some(-32600),
            _ => None,
        };
        if expected.is_some_and(|c| c != code) {
            return Err(format!("{kind:?} answered {code}: {answer}"));
        }
    }
    if let Some(id) = sent_id {
        if &answer["id"] != id {
            return Err(format!("answer id {} for request {id}", answer["id"]));
        }
    }
    Ok(())
}

async fn media_count(p: &rtcpool_tests::peer::TestPeer) -> u64 {
    p.stats.video() + p.stats.audio()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_input_on_every_surface_harms_nobody() -> anyhow::Result<()> {
    let seed = std::env::var("HOSTILE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    eprintln!("hostile input seed: {seed} (replay with HOSTILE_SEED={seed})");
    let mut rng = Rng(seed);
    let engine = EngineProcess::start_logged(ENGINE_SECRET).await?;
    let engine_uri = format!("ws://rtcpool:{ENGINE_SECRET}@{}/kurento", engine.addr);
    let sig = SignalingProcess::start(&[engine_uri], &[]).await?;

    // The sentinel: one publisher, one subscriber, media counted throughout.
    let (tx, ty) = (
        sig.token("sentinel", "PUBLISHER").await?,
        sig.token("sentinel", "PUBLISHER").await?,
    );
    let mut x = Bot::open(&tx).await?;
    x.start_pinging();
    x.join(&tx, "x").await?;
    let mut y = Bot::open(&ty).await?;
    y.start_pinging();
    y.join(&ty, "y").await?;
    let (px, sx) = x.publish().await?;
    let send = px.start_sending(25, 1000, 10);
    let y_gets_x = y.subscribe(&sx).await?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while media_count(&y_gets_x).await < 30 {
        anyhow::ensure!(Instant::now() < deadline, "sentinel media did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss0 = (rss_kib(sig.pid()), rss_kib(engine.pid()));
    let sentinel = (x.connection_id.clone(), sx.clone());

    let started = Instant::now();
    let rest = rest_surface(&mut rng, sig.addr, &sentinel).await?;
    let rest_time = started.elapsed();
    let before = media_count(&y_gets_x).await;
    let browser = browser_surface(&mut rng, &sig, &sentinel).await?;
    let browser_time = started.elapsed() - rest_time;
    let kurento = kurento_surface(&mut rng, engine.addr).await?;
    let kurento_time = started.elapsed() - rest_time - browser_time;

    // The sentinel's media kept flowing through all of it.
    let during = media_count(&y_gets_x).await - before;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let after = media_count(&y_gets_x).await;
    assert!(
        during > 100,
        "sentinel media stalled during the attack: {during} packets"
    );
    assert!(after > before + during, "sentinel media stopped");
    let (_, s) = sig
        .http("GET", "/openvidu/api/sessions/sentinel", None)
        .await?;
    assert_eq!(s["connections"]["numberOfElements"], 2, "{s}");
    send.cancel();
    let rss1 = (rss_kib(sig.pid()), rss_kib(engine.pid()));
    let grown = |a: u64, b: u64| b.saturating_sub(a) as f64 / 1024.0;
    let (gs, ge) = (grown(rss0.0, rss1.0), grown(rss0.1, rss1.1));
    eprintln!(
        "hostile: REST {rest} inputs in {rest_time:?}, /openvidu {browser} in {browser_time:?}, /kurento {kurento} in {kurento_time:?}; sentinel received {during} packets meanwhile; RSS signaling {} → {} KiB (+{gs:.1} MB), engine {} → {} KiB (+{ge:.1} MB)",
        rss0.0, rss1.0, rss0.1, rss1.1
    );
    assert!(rest >= PER_SURFACE && browser >= PER_SURFACE && kurento >= PER_SURFACE);
    assert!(
        gs < 100.0 && ge < 150.0,
        "memory grew: signaling +{gs:.1} MB, engine +{ge:.1} MB"
    );
    for (who, log) in [("signaling", sig.stderr()), ("engine", engine.stderr())] {
        assert!(
            !log.contains("panicked"),
            "{who} panicked (seed {seed}):\n{log}"
        );
    }
    x.call("leaveRoom", json!({})).await?;
    y.call("leaveRoom", json!({})).await?;
    Ok(())
}

/// REST: every route, every auth variant, junk ids and bodies. 5xx never (501 is recording).
async fn rest_surface(
    r: &mut Rng,
    addr: SocketAddr,
    sentinel: &(String, String),
) -> anyhow::Result<usize> {
    let routes = [
        "/openvidu/api/sessions",
        "/openvidu/api/sessions/{id}",
        "/openvidu/api/sessions/{id}/connection",
        "/openvidu/api/sessions/{id}/connection/{id}",
        "/openvidu/api/sessions/{id}/stream/{id}",
        "/openvidu/api/signal",
        "/openvidu/api/tokens",
        "/openvidu/api/recordings",
        "/openvidu/api/recordings/start",
        "/openvidu/api/media-nodes",
        "/openvidu/api/media-nodes/{id}",
        "/openvidu/api/config",
        "/openvidu/api/config/{id}",
        "/metrics",
        "/health",
        "/demo/token",
        "/{id}",
    ];
    let methods = ["GET", "POST", "PATCH", "DELETE", "PUT"];
    let mut n = 0;
    for _ in 0..PER_SURFACE {
        let method = *r.pick(&methods);
        let route = *r.pick(&routes);
        let auth_ok = r.chance(70);
        let id = if !auth_ok && r.chance(30) {
            // The sentinel's real ids, only without valid credentials: must change nothing.
            r.pick(&[
                "sentinel".to_string(),
                sentinel.0.clone(),
                sentinel.1.clone(),
            ])
            .clone()
        } else {
            let s = junk_string(r);
            let s: String = s
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                .take(2000)
                .collect();
            if s.is_empty() {
                "x".into()
            } else {
                s
            }
        };
        let path = route.replace("{id}", &id);
        let body = match r.below(4) {
            0 => None,
            1 => Some(junk_value(r, 0)),
            2 => Some(
                json!({"customSessionId": junk_value(r, 2), "data": junk_value(r, 2), "role": junk_value(r, 2), "session": junk_value(r, 2), "to": junk_value(r, 2), "uri": junk_value(r, 2), "weight": junk_value(r, 2), "status": junk_value(r, 2), "mediaNode": junk_value(r, 2)}),
            ),
            _ => Some(
                json!({"session": "sentinel", "to": [sentinel.0], "data": "x".repeat(r.below(100_000))}),
            ),
        };
        // Destructive calls with valid credentials never touch the sentinel (ids above are junk
        // then, and signals to it only carry data).
        let auth = if auth_ok {
            Some(("OPENVIDUAPP", SECRET))
        } else {
            *r.pick(&[
                None,
                Some(("OPENVIDUAPP", "wrong")),
                Some(("admin", SECRET)),
                Some(("", "")),
            ])
        };
        let (status, v) = http_request(addr, method, &path, body.as_ref(), auth).await?;
        n += 1;
        assert!(status != 0, "{method} {path}: no answer");
        assert!(
            status < 500 || status == 501,
            "{method} {path}: {status} {v}"
        );
        let api =
            path.starts_with("/openvidu/api") && !path.ends_with("/config/openvidu-publicurl");
        if (api || path == "/metrics") && auth != Some(("OPENVIDUAPP", SECRET)) {
            // 405 (a method the route does not have) reveals nothing either.
            assert!(
                status == 401 || status == 405,
                "{method} {path} without valid credentials: {status}"
            );
        }
        if api && status >= 400 && status != 405 && !v.is_null() {
            assert_eq!(
                v["status"],
                json!(status),
                "{method} {path}: error body {v}"
            );
            assert!(v["message"].is_string(), "{method} {path}: {v}");
        }
    }
    Ok(n)
}

/// The browser protocol: joined and anonymous sockets, every method with junk, out of order.
async fn browser_surface(
    r: &mut Rng,
    sig: &SignalingProcess,
    sentinel: &(String, String),
) -> anyhow::Result<usize> {
    let methods = [
        "ping",
        "connect",
        "joinRoom",
        "leaveRoom",
        "publishVideo",
        "unpublishVideo",
        "receiveVideoFrom",
        "unsubscribeFromVideo",
        "onIceCandidate",
        "sendMessage",
        "streamPropertyChanged",
        "forceDisconnect",
        "forceUnpublish",
        "reconnectStream",
        "videoData",
        "echo",
        "applyFilter",
        "prepareReceiveVideoFrom",
        "subscribeToSpeechToText",
    ];
    let codes = [
        -32700, -32600, -32601, -32602, -1, 999, 996, 997, 803, 302, 303, 204, 203, 202, 106, 105,
        102, 401, 405, 406, 600, 601, 40007,
    ];
    let sentinel = sentinel.clone();
    let params = move |r: &mut Rng, m: &str| -> Value {
        let mut p = match r.below(3) {
            0 => junk_value(r, 0),
            _ => json!({}),
        };
        if let Value::Object(o) = &mut p {
            match m {
                "publishVideo" | "receiveVideoFrom" | "reconnectStream" => {
                    o.insert("sdpOffer".into(), Value::String(junk_sdp(r)));
                    o.insert("sdpString".into(), Value::String(junk_sdp(r)));
                    o.insert("hasAudio".into(), junk_value(r, 3));
                    o.insert("hasVideo".into(), json!(true));
                    o.insert("doLoopback".into(), json!(false));
                    o.insert("sender".into(), json!(or_junk(r, sentinel.1.clone())));
                    o.insert("stream".into(), json!(or_junk(r, sentinel.1.clone())));
                }
                "onIceCandidate" => {
                    if let Value::Object(c) = junk_candidate(r) {
                        o.extend(c);
                    }
                    o.insert("endpointName".into(), json!(or_junk(r, sentinel.0.clone())));
                }
                "sendMessage" => {
                    let msg = json!({"to": if r.chance(50) { json!([sentinel.0]) } else { junk_value(r, 2) }, "data": junk_value(r, 3), "type": junk_value(r, 3)});
                    o.insert(
                        "message".into(),
                        json!(if r.chance(80) {
                            msg.to_string()
                        } else {
                            junk_string(r)
                        }),
                    );
                }
                "forceDisconnect" | "forceUnpublish" | "unsubscribeFromVideo" => {
                    o.insert("connectionId".into(), json!(sentinel.0));
                    o.insert("streamId".into(), json!(sentinel.1));
                    o.insert("sender".into(), json!(sentinel.1));
                }
                "joinRoom" => {
                    o.insert("token".into(), junk_value(r, 3));
                    o.insert("session".into(), json!(or_junk(r, "sentinel".to_string())));
                    o.insert("platform".into(), junk_value(r, 3));
                    o.insert("metadata".into(), junk_value(r, 3));
                }
                _ => {
                    o.insert(junk_string(r).chars().take(20).collect(), junk_value(r, 1));
                }
            }
        }
        p
    };
    let mut n = 0;
    let mut sockets = 0;
    while n < PER_SURFACE {
        // Half the sockets join a throwaway session (as PUBLISHER: no powers over others).
        let token = sig.token("hostile", "PUBLISHER").await?;
        let (mut ws, _) = tokio_tungstenite::connect_async(ws_url(&token)?).await?;
        sockets += 1;
        if r.chance(50) {
            let join = json!({"jsonrpc":"2.0","id":0,"method":"joinRoom","params":{"token": token, "session":"hostile","platform":"x","metadata":"","secret":""}});
            ws.send(Message::Text(join.to_string().into())).await?;
            let a = next_json(&mut ws).await?.unwrap_or(Value::Null);
            anyhow::ensure!(a.get("result").is_some(), "join: {a}");
        }
        let surface = Surface {
            max_frame: 256 * 1024,
            known: &|c| codes.contains(&c),
            // Odd ids are still ids: the answer carries them back.
            answers_id: &|k| {
                matches!(
                    k,
                    FrameKind::Request | FrameKind::InvalidRequest | FrameKind::OddId
                )
            },
            as_kind: &|k| k,
        };
        for _ in 0..60 {
            let (text, kind) = if r.chance(3) {
                ("x".repeat(300 * 1024), FrameKind::Garbage)
            } else {
                junk_frame(r, &methods, &params)
            };
            n += 1;
            match exchange(&mut ws, r, &text, kind, &surface).await? {
                Step::Next => {}
                Step::Closed => break,
                // Left: start over on a fresh socket.
                Step::Answered(a) if a.get("result").is_some() && text.contains("leaveRoom") => {
                    break
                }
                Step::Answered(_) => {}
            }
        }
        let _ = ws.close(None).await;
    }
    eprintln!("/openvidu: {n} frames over {sockets} sockets");
    Ok(n)
}

/// The engine: bad credentials, then junk Kurento calls on its own objects and foreign ids,
/// adversarial SDP and candidates, out-of-order negotiation.
async fn kurento_surface(r: &mut Rng, addr: SocketAddr) -> anyhow::Result<usize> {
    let url = format!("ws://{addr}/kurento");
    let mut n = 0;
    // Credentials: every variant but the right one is refused before the upgrade.
    for _ in 0..50 {
        let mut req = url.as_str().into_client_request()?;
        let bad = r.pick(&[
            "",
            "Basic",
            "Basic !!!",
            "Basic cnRjcG9vbDp3cm9uZw==",
            "Bearer x",
            "Basic OmhvcnN0aWxl",
        ]);
        if !bad.is_empty() {
            req.headers_mut().insert("authorization", bad.parse()?);
        }
        match tokio_tungstenite::connect_async(req).await {
            Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => {
                assert_eq!(resp.status(), 401)
            }
            other => anyhow::bail!(
                "credentials {bad:?} were not refused: {:?}",
                other.map(|_| ())
            ),
        }
        n += 1;
    }
    let methods = [
        "ping",
        "connect",
        "describe",
        "create",
        "invoke",
        "subscribe",
        "unsubscribe",
        "release",
        "keepAlive",
        "closeSession",
        "ref",
        "unref",
        "transaction",
    ];
    let auth_url = format!("ws://rtcpool:{ENGINE_SECRET}@{addr}/kurento");
    while n < PER_SURFACE + 50 {
        let c = rtcpool_tests::harness::client(&auth_url).await?;
        // Own objects to aim at (released with the session at the end).
        let p = c.create_pipeline().await?;
        let ep = p.create_webrtc_endpoint().await?;
        let pt = p.create_pass_through().await?;
        c.close().await;
        let ids = vec![
            p.id().to_string(),
            ep.id().to_string(),
            pt.id().to_string(),
            "manager_ServerManager".to_string(),
            format!("{}/{}", p.id(), uuid::Uuid::new_v4()),
        ];
        let mut req = url.as_str().into_client_request()?;
        let basic = {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.encode(format!("rtcpool:{ENGINE_SECRET}"))
        };
        req.headers_mut()
            .insert("authorization", format!("Basic {basic}").parse()?);
        let (mut ws, _) = tokio_tungstenite::connect_async(req).await?;
        let ids2 = ids.clone();
        let params = move |r: &mut Rng, m: &str| -> Value {
            let object = json!(if r.chance(80) {
                r.pick(&ids2).clone()
            } else {
                junk_string(r)
            });
            match (m, r.below(6)) {
                ("invoke", _) => {
                    let op = *r.pick(&[
                        "processOffer",
                        "processAnswer",
                        "generateOffer",
                        "addIceCandidate",
                        "gatherCandidates",
                        "connect",
                        "disconnect",
                        "getChildren",
                        "getTags",
                        "addTag",
                        "setName",
                        "getUsedCpu",
                        "getPipelines",
                        "getSessions",
                        "setMaxVideoRecvBandwidth",
                        "getStats",
                        "nope",
                    ]);
                    let op_params = match op {
                        "processOffer" | "processAnswer" => {
                            json!({"offer": junk_sdp(r), "answer": junk_sdp(r)})
                        }
                        "addIceCandidate" => json!({"candidate": junk_candidate(r)}),
                        "connect" | "disconnect" => {
                            json!({"sink": r.pick(&ids2), "mediaType": junk_value(r, 3)})
                        }
                        "getUsedCpu" => json!({"interval": r.below(50)}),
                        _ => junk_value(r, 1),
                    };
                    json!({"object": object, "operation": op, "operationParams": op_params})
                }
                ("create", k) => {
                    json!({"type": r.pick(&["MediaPipeline", "WebRtcEndpoint", "PassThrough", "PlayerEndpoint", ""]), "constructorParams": if k < 3 { json!({"mediaPipeline": r.pick(&ids2)}) } else { junk_value(r, 1) }})
                }
                ("release" | "describe" | "ref" | "unref", _) => json!({"object": object}),
                ("subscribe", _) => {
                    json!({"object": object, "type": r.pick(&["ObjectCreated", "IceCandidateFound", "Bogus", ""])})
                }
                ("closeSession", _) => json!({"release": false}),
                ("connect" | "keepAlive", _) => json!({"sessionId": junk_string(r)}),
                (_, 0) => junk_value(r, 0),
                _ => json!({"object": object}),
            }
        };
        let surface = Surface {
            max_frame: 1 << 20,
            known: &|c| kms_client::wire::ErrorCode::from_code(c).is_some(),
            answers_id: &|k| k == FrameKind::Request,
            // The engine answers non-object JSON and odd ids like KMS, as an invalid request or
            // a parse error: both well-formed errors.
            as_kind: &|k| match k {
                FrameKind::NotAnObject | FrameKind::Garbage | FrameKind::OddId => {
                    FrameKind::Garbage
                }
                k => k,
            },
        };
        for _ in 0..60 {
            let (text, kind) = if r.chance(2) {
                ("x".repeat((1 << 20) + 100 * 1024), FrameKind::Garbage)
            } else {
                junk_frame(r, &methods, &params)
            };
            n += 1;
            if let Step::Closed = exchange(&mut ws, r, &text, kind, &surface).await? {
                break;
            }
        }
        let _ = ws.close(None).await;
        // Everything this client made goes with its session.
        let c = rtcpool_tests::harness::client(&auth_url).await?;
        let _ = kms_client::MediaPipeline::from_id(c.clone(), p.id().to_string())
            .release()
            .await;
        c.close().await;
    }
    Ok(n - 50)
}

/// How one surface answers.
struct Surface<'a> {
    /// Frames larger than this close the socket with 1009.
    max_frame: usize,
    known: &'a dyn Fn(i64) -> bool,
    /// Which kinds of frame get an answer carrying the request's id.
    answers_id: &'a dyn Fn(FrameKind) -> bool,
    /// How the surface classifies a kind of frame (for the expected code).
    as_kind: &'a dyn Fn(FrameKind) -> FrameKind,
}

enum Step {
    /// Nothing to read back (a notification).
    Next,
    /// The socket was closed (as it must be after an oversized frame) or could not be written.
    Closed,
    Answered(Value),
}

/// Sends one frame (as text or, sometimes, binary) and checks what comes back.
async fn exchange(
    ws: &mut Ws,
    r: &mut Rng,
    text: &str,
    kind: FrameKind,
    s: &Surface<'_>,
) -> anyhow::Result<Step> {
    let sent_id = serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v.get("id").cloned());
    let msg = if r.chance(5) {
        Message::Binary(text.as_bytes().to_vec().into())
    } else {
        Message::Text(text.to_string().into())
    };
    if ws.send(msg).await.is_err() {
        return Ok(Step::Closed);
    }
    let shown: String = text.chars().take(300).collect();
    if text.len() > s.max_frame {
        anyhow::ensure!(
            closed_for_size(ws).await,
            "oversized frame not closed with 1009"
        );
        return Ok(Step::Closed);
    }
    if kind == FrameKind::Notification {
        return Ok(Step::Next);
    }
    let Some(a) = next_json(ws).await? else {
        anyhow::bail!("no answer to {shown}");
    };
    let expected_id = if (s.answers_id)(kind) {
        sent_id.as_ref()
    } else {
        None
    };
    if let Err(why) = check_answer((s.as_kind)(kind), expected_id, &a, s.known) {
        anyhow::bail!("{why}\n  sent: {shown}");
    }
    Ok(Step::Answered(a))
}

type Ws =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The next answer (notifications skipped); `None` if the socket closed or stayed silent.
async fn next_json(ws: &mut Ws) -> anyhow::Result<Option<Value>> {
    loop {
        match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
            Ok(Some(Ok(Message::Text(t)))) => {
                let v: Value = serde_json::from_str(&t)?;
                if v.get("method").is_some() && v.get("id").is_none() {
                    continue;
                }
                return Ok(Some(v));
            }
            Ok(Some(Ok(_))) => continue,
            _ => return Ok(None),
        }
    }
}

/// Whether the server closed the socket after an oversized frame: with 1009, or with a reset
/// when it closed while the frame was still arriving (the close frame is then lost in flight).
async fn closed_for_size(ws: &mut Ws) -> bool {
    use tokio_tungstenite::tungstenite::Error;
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ws.next()).await {
            Ok(Some(Ok(Message::Close(f)))) => return f.is_some_and(|f| u16::from(f.code) == 1009),
            Ok(Some(Ok(_))) => continue,
            Ok(Some(Err(Error::Io(e)))) => return e.kind() == std::io::ErrorKind::ConnectionReset,
            _ => return false,
        }
    }
}
