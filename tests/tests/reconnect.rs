//! kms-client reconnection: a dropped socket resumes the same session with its objects intact;
//! an engine restart is reported as a lost session (objects gone).

use kms_client::wire::ErrorCode;
use kms_client::{ConnectionEvent, MediaPipeline};
use rtcpool_tests::harness::{client, test_settings, LocalEngine};
use std::time::Duration;

async fn next_event(
    rx: &mut tokio::sync::broadcast::Receiver<ConnectionEvent>,
) -> anyhow::Result<ConnectionEvent> {
    Ok(tokio::time::timeout(Duration::from_secs(10), rx.recv()).await??)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropped_socket_resumes_same_session_and_restart_reports_loss() -> anyhow::Result<()> {
    let engine = LocalEngine::start().await?;
    let addr = engine.addr;
    let kms = client(&engine.url()).await?;
    let pipeline = kms.create_pipeline().await?;
    let ep = pipeline.create_webrtc_endpoint().await?;
    ep.set_name("kept").await?;
    let session = kms.session_id();
    assert!(session.is_some());
    let mut events = kms.connection_events();

    // 1. The socket drops; the client reconnects and the server resumes the same session.
    kms.drop_connection().await;
    assert_eq!(
        next_event(&mut events).await?,
        ConnectionEvent::Disconnected
    );
    let ConnectionEvent::Reconnected {
        same_session,
        server_id,
    } = next_event(&mut events).await?
    else {
        anyhow::bail!("expected Reconnected");
    };
    assert!(same_session);
    assert!(!server_id.is_empty());
    assert_eq!(kms.session_id(), session);
    assert_eq!(ep.get_name().await?, "kept");
    assert_eq!(pipeline.get_children().await?, vec![ep.id().to_string()]);

    // 2. The engine restarts on the same port: the session is unknown there (40007), so the
    //    client reports the loss and starts a fresh session; old handles are dead.
    engine.shutdown().await;
    assert_eq!(
        next_event(&mut events).await?,
        ConnectionEvent::Disconnected
    );
    let again = LocalEngine::start_with(test_settings(addr)).await?;
    let ConnectionEvent::Reconnected {
        same_session,
        server_id: new_server,
    } = next_event(&mut events).await?
    else {
        anyhow::bail!("expected Reconnected");
    };
    assert!(!same_session);
    assert_ne!(new_server, server_id);
    assert_ne!(kms.session_id(), session);
    let err = ep.get_name().await.err().and_then(|e| e.code());
    assert_eq!(err, Some(ErrorCode::MediaObjectNotFound.code()));
    // The client is fully usable on the new server.
    let fresh: MediaPipeline = kms.create_pipeline().await?;
    fresh.release().await?;
    kms.close().await;
    again.shutdown().await;
    Ok(())
}

#[tokio::test]
async fn objects_of_a_vanished_client_are_released_after_the_window() -> anyhow::Result<()> {
    let mut settings = test_settings("127.0.0.1:0".parse()?);
    settings.session_timeout_secs = 1;
    let engine = LocalEngine::start_with(settings).await?;
    let kms = client(&engine.url()).await?;
    let p = kms.create_pipeline().await?;
    p.create_pass_through().await?;
    let h = rtcpool_tests::harness::health(engine.addr).await?;
    assert_eq!(h["elements"], 1);
    kms.close().await;
    let h = rtcpool_tests::harness::wait_health(engine.addr, Duration::from_secs(5), |h| {
        h["pipelines"] == 0
    })
    .await?;
    assert_eq!(
        (
            h["pipelines"].as_u64(),
            h["elements"].as_u64(),
            h["sessions"].as_u64()
        ),
        (Some(0), Some(0), Some(0)),
        "{h}"
    );
    engine.shutdown().await;
    Ok(())
}
