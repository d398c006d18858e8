//! What signaling owns on its engines, and keeping it that way.
//!
//! - Every pipeline we create is tagged with this process's instance id and its session
//!   ([`tag`]); `App::pipelines` maps our live pipelines to their sessions.
//! - Signaling never becomes a holder of anyone else's objects: health sampling reads no
//!   pipeline (`pool/health.rs`), and reconciliation gives back (`unref`) what it had to read.
//! - After every (re)connection to an engine ([`reconcile`]): our own pipelines that no live
//!   session claims (their session moved or closed while the engine was away) are released at
//!   once; pipelines another (dead) signaling process left are released when nobody reclaimed
//!   them within `POOL_ORPHAN_GRACE_MS` (in a cluster: unless their session belongs to another
//!   node, alive or to be adopted); a live session whose pipeline is gone is re-homed.
//! - An object a live session uses that disappears behind our back (released by another
//!   client, destroyed by an engine fault: the `ServerManager`'s `ObjectDestroyed`) re-homes
//!   that session exactly as an engine loss does ([`object_destroyed`]).

use kms_client::{KurentoClient, MediaPipeline};
use std::collections::HashSet;
use std::sync::{Arc, Weak};
use std::time::Duration;
use tokio::sync::mpsc;

use crate::app::App;
use crate::pool::PoolEvent;

/// Tag key naming the signaling instance that created a pipeline.
pub const OWNER_TAG: &str = "rtcpool.owner";
/// Tag key naming the session a pipeline carries.
pub const SESSION_TAG: &str = "rtcpool.session";

/// Marks a new pipeline as ours (failures are logged: an untagged pipeline is simply never
/// swept by a later signaling process, and the engine's session timeout still frees it).
pub async fn tag(pipeline: &MediaPipeline, instance: &str, session_id: &str) {
    let (a, b) = futures::join!(
        pipeline.add_tag(OWNER_TAG, instance),
        pipeline.add_tag(SESSION_TAG, session_id)
    );
    if let Err(e) = a.and(b) {
        tracing::warn!(pipeline = %pipeline.id(), %e, "cannot tag pipeline");
    }
}

/// Follows the pool's events for the lifetime of the app.
pub async fn follow_pool(app: Weak<App>, mut events: mpsc::Receiver<PoolEvent>) {
    // Engines reported crashed, so that their return is reported too.
    let mut crashed = std::collections::BTreeSet::new();
    while let Some(ev) = events.recv().await {
        let Some(app) = app.upgrade() else { return };
        match ev {
            PoolEvent::Lost(engine) => {
                if let Some(s) = app.pool.get(&engine).map(|e| e.snapshot()) {
                    crashed.insert(engine.clone());
                    let f = crate::webhook::events::node(&s, true);
                    app.webhook.emit("nodeCrashed", None, f);
                }
                app.rehome_engine(&engine).await
            }
            PoolEvent::Connected(engine) => {
                if crashed.remove(&engine) {
                    if let Some(s) = app.pool.get(&engine).map(|e| e.snapshot()) {
                        let f = crate::webhook::events::node(&s, false);
                        app.webhook.emit("nodeRecovered", None, f);
                    }
                }
                // Reconciliation makes a round trip per pipeline: not on this loop.
                tokio::spawn(async move { reconcile(&app, &engine).await });
            }
            PoolEvent::Destroyed { engine, object } => {
                // Most destroyed objects are not ours (or were released by us): decided without
                // waiting; the rest wait for their session's media owner off this loop.
                let pipeline = object.split('/').next().unwrap_or(&object);
                if app.pipelines.lock().contains_key(pipeline) {
                    tokio::spawn(async move { object_destroyed(&app, &engine, &object).await });
                }
            }
        }
    }
}

/// An object was destroyed on `engine`: if one of our live sessions used it, the session moves.
pub async fn object_destroyed(app: &Arc<App>, engine: &str, object: &str) {
    let pipeline = object.split('/').next().unwrap_or(object);
    let Some(session) = app.pipelines.lock().get(pipeline).cloned() else {
        return;
    };
    let engine_alive = app.pool.get(engine).is_some_and(|e| e.snapshot().connected);
    // Our own releases remove the object from the session's media before they complete, so
    // only objects that vanished behind our back still match here.
    let (engine, object) = (engine.to_string(), object.to_string());
    app.rehome_session(&session, "nodeCrashed", engine_alive, move |m| {
        m.engine_id == engine && m.uses(&object)
    })
    .await;
}

/// Brings what `engine` holds in line with what we own (see the module doc).
pub async fn reconcile(app: &Arc<App>, engine_id: &str) {
    let Some(engine) = app.pool.get(engine_id) else {
        return;
    };
    let Some(client) = engine.client() else {
        return;
    };
    let Ok(present) = client.server_manager().get_pipelines().await else {
        return;
    };
    let mut foreign_orphans = Vec::new();
    for id in &present {
        let pipeline = MediaPipeline::from_id(client.clone(), id.clone());
        let claimed = app.pipelines.lock().contains_key(id);
        if claimed {
            // Ours and live: our session already holds it, reading changes nothing.
            if let Ok(children) = pipeline.get_children().await {
                engine.elements_found(children);
            }
            continue;
        }
        let (tags, children) = futures::join!(pipeline.get_tags(), pipeline.get_children());
        engine.elements_found(children.unwrap_or_default());
        let tags = tags.unwrap_or_default();
        let tag = |key: &str| tags.iter().find(|(k, _)| k == key).map(|(_, v)| v.clone());
        let (owner, session) = (tag(OWNER_TAG), tag(SESSION_TAG));
        match owner {
            Some(o) if o == app.instance => {
                // Checked again: a join in flight may have claimed it since.
                if !app.pipelines.lock().contains_key(id) {
                    tracing::info!(engine = %engine_id, pipeline = %id, "releasing a stale pipeline of ours (its session moved or closed)");
                    let _ = pipeline.release().await;
                }
            }
            Some(other) => {
                tracing::info!(engine = %engine_id, pipeline = %id, owner = %other, "pipeline left by another signaling process");
                let _ = pipeline.unref().await;
                foreign_orphans.push((id.clone(), session.unwrap_or_default()));
            }
            None => {
                let _ = pipeline.unref().await;
            }
        }
    }
    // Live sessions whose pipeline vanished while we were away.
    let present: HashSet<&String> = present.iter().collect();
    let missing: Vec<(String, String)> = app
        .pipelines
        .lock()
        .iter()
        .filter(|(p, _)| !present.contains(p))
        .map(|(p, s)| (p.clone(), s.clone()))
        .collect();
    for (pipeline, session) in missing {
        let engine = engine_id.to_string();
        app.rehome_session(&session, "nodeCrashed", true, move |m| {
            m.engine_id == engine && m.pipeline.id() == pipeline
        })
        .await;
    }
    if !foreign_orphans.is_empty() {
        let grace = Duration::from_millis(app.settings.pool_orphan_grace_ms);
        let (app, engine_id) = (Arc::downgrade(app), engine_id.to_string());
        tokio::spawn(async move {
            tokio::time::sleep(grace).await;
            let Some(app) = app.upgrade() else { return };
            release_unclaimed(&app, &engine_id, foreign_orphans).await;
        });
    }
}

/// Releases the `orphans` (pipeline, session) still on the engine that nobody reclaimed. In a
/// cluster a pipeline whose session another node owns (or will adopt) is not an orphan.
async fn release_unclaimed(app: &App, engine_id: &str, orphans: Vec<(String, String)>) {
    let Some(client) = app.pool.get(engine_id).and_then(|e| e.client()) else {
        return;
    };
    let Ok(present) = client.server_manager().get_pipelines().await else {
        return;
    };
    for (id, session) in orphans.into_iter().filter(|(p, _)| present.contains(p)) {
        if app.pipelines.lock().contains_key(&id) {
            continue;
        }
        if app.cluster.enabled() {
            match app.cluster.route_session(&session).await {
                // Nobody has the session (or it is ours and not on this pipeline): an orphan.
                Ok(crate::cluster::Route::Local) => {}
                _ => continue,
            }
        }
        tracing::info!(engine = %engine_id, pipeline = %id, "releasing an unclaimed orphan pipeline");
        release(&client, &id).await;
    }
}

async fn release(client: &KurentoClient, id: &str) {
    let _ = MediaPipeline::from_id(client.clone(), id.to_string())
        .release()
        .await;
}
