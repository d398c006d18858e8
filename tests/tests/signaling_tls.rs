//! With a certificate configured, signaling serves HTTPS (and so WSS) through rustls, and tokens
//! start with `wss://`. The certificate is a throw-away one made by openssl (harness).

use std::time::Duration;

#[tokio::test]
async fn certificate_switches_to_https_and_wss_tokens() -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("rtcpool-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let (_, cert, key) = rtcpool_tests::harness::make_certificates(&dir)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let settings = rtcpool_config::SignalingSettings {
        server_port: port,
        certificate_path: Some(cert),
        private_key_path: Some(key),
        kms_uris: Some(vec!["ws://127.0.0.1:9/kurento".into()]),
        ..Default::default()
    };
    let stop = tokio_util::sync::CancellationToken::new();
    let task = tokio::spawn(signaling::run(
        listener,
        settings,
        vec![("ws://127.0.0.1:9/kurento".into(), 1, Default::default())],
        stop.clone(),
    ));
    // tokio's process API: a blocking curl would starve the server on this runtime.
    async fn curl(args: &[&str]) -> anyhow::Result<String> {
        let out = tokio::process::Command::new("curl")
            .args(["-sk", "--max-time", "5", "-u", "OPENVIDUAPP:MY_SECRET"])
            .args(args)
            .output()
            .await?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }
    let base = format!("https://127.0.0.1:{port}/openvidu/api");
    let mut up = String::new();
    for _ in 0..100 {
        up = curl(&[&format!("{base}/config/openvidu-version")]).await?;
        if up == "2.32.2" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(up, "2.32.2");
    curl(&[
        "-X",
        "POST",
        "-H",
        "content-type: application/json",
        "-d",
        "{\"customSessionId\":\"t\"}",
        &format!("{base}/sessions"),
    ])
    .await?;
    let c: serde_json::Value = serde_json::from_str(
        &curl(&["-X", "POST", &format!("{base}/sessions/t/connection")]).await?,
    )?;
    assert!(
        c["token"].as_str().is_some_and(
            |t| t.starts_with(&format!("wss://127.0.0.1:{port}?sessionId=t&token=tok_"))
        ),
        "{c}"
    );
    // Plain HTTP is not served on the TLS port.
    let plain = tokio::process::Command::new("curl")
        .args([
            "-s",
            "--max-time",
            "3",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            &format!("http://127.0.0.1:{port}/health"),
        ])
        .output()
        .await?;
    assert_ne!(String::from_utf8_lossy(&plain.stdout), "200");
    stop.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(10), task).await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
