//! The sandboxes' timers, with the API's meaning: `autoStopInterval` (minutes without activity
//! before a started sandbox is stopped; 0: never), `autoPauseInterval` (likewise, paused),
//! `autoArchiveInterval` (minutes stopped before it is archived), `autoDeleteInterval`
//! (minutes stopped before it is deleted; 0: at once; negative: never), and the TTL
//! (`autoDestroyAt`: deleted then). Activity is any toolbox call. One task per backend checks
//! them every few seconds; a minute is `LocalConfig::lifecycle_minute` (60 s, shorter only in
//! tests).

use crate::store::Record;
use crate::Shared;
use forge_wire::SandboxState;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// `now + minutes` as RFC 3339 (real minutes: a TTL is wall-clock time).
pub fn after_minutes(minutes: f64) -> String {
    let at = SystemTime::now() + Duration::from_secs_f64(minutes.max(0.0) * 60.0);
    humantime::format_rfc3339_millis(at).to_string()
}

fn seconds(t: &str) -> Option<f64> {
    humantime::parse_rfc3339_weak(t.trim_end_matches('Z'))
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map(|d| d.as_secs_f64())
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// What a sandbox's timers ask for now.
#[derive(Debug, PartialEq)]
pub enum Due {
    Stop,
    Pause,
    Archive,
    Delete,
}

/// The action due for `rec` at `now` (seconds), a minute being `minute`.
pub fn due(rec: &Record, now: f64, minute: f64) -> Option<Due> {
    let s = &rec.sandbox;
    if s.auto_destroy_at
        .as_deref()
        .and_then(seconds)
        .is_some_and(|t| now >= t)
    {
        return Some(Due::Delete);
    }
    let idle = now
        - s.last_activity_at
            .as_deref()
            .and_then(seconds)
            .unwrap_or(now);
    let minutes = |v: Option<f64>| v.unwrap_or(0.0);
    match s.state {
        SandboxState::Started => {
            let stop = minutes(s.auto_stop_interval);
            let pause = minutes(s.auto_pause_interval);
            if stop > 0.0 && idle >= stop * minute {
                return Some(Due::Stop);
            }
            if pause > 0.0 && idle >= pause * minute {
                return Some(Due::Pause);
            }
            None
        }
        SandboxState::Stopped => {
            let since = now - rec.stopped_at.as_deref().and_then(seconds).unwrap_or(now);
            let delete = s.auto_delete_interval.unwrap_or(-1.0);
            if delete >= 0.0 && since >= delete * minute {
                return Some(Due::Delete);
            }
            let archive = minutes(s.auto_archive_interval);
            if archive > 0.0 && since >= archive * minute {
                return Some(Due::Archive);
            }
            None
        }
        _ => None,
    }
}

/// Checks every sandbox's timers until the backend stops.
pub async fn run(state: std::sync::Weak<crate::AppState>, minute: Duration) {
    let tick = (minute / 4).clamp(Duration::from_millis(100), Duration::from_secs(10));
    loop {
        tokio::time::sleep(tick).await;
        let Some(state) = state.upgrade() else { return };
        check(&state, minute.as_secs_f64()).await;
    }
}

async fn check(state: &Shared, minute: f64) {
    let t = now();
    for rec in state.store.all().await {
        let Some(action) = due(&rec, t, minute) else {
            continue;
        };
        let id = rec.sandbox.id.clone();
        tracing::info!("sandbox {id}: {action:?} (its timers)");
        let result = match action {
            Due::Stop => crate::api::stop_sandbox(state, &id, false).await.map(drop),
            Due::Pause => crate::api::pause_sandbox(state, &id).await.map(drop),
            Due::Archive => crate::api::archive_sandbox(state, &id).await.map(drop),
            Due::Delete => crate::api::delete_sandbox(state, &id).await.map(drop),
        };
        if let Err(e) = result {
            tracing::warn!("sandbox {id}: {action:?} failed: {}", e.message);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(state: SandboxState, stop: f64, delete: f64, archive: f64) -> Record {
        let mut r: Record = serde_json::from_value(serde_json::json!({
            "sandbox": {"id": "x", "state": "started"},
            "preview_token": "t",
        }))
        .unwrap();
        r.sandbox.state = state;
        r.sandbox.auto_stop_interval = Some(stop);
        r.sandbox.auto_delete_interval = Some(delete);
        r.sandbox.auto_archive_interval = Some(archive);
        r.sandbox.last_activity_at = Some("2026-01-01T00:00:00Z".into());
        r.stopped_at = Some("2026-01-01T00:00:00Z".into());
        r
    }

    #[test]
    fn timers_have_the_apis_meaning() {
        let t0 = seconds("2026-01-01T00:00:00Z").unwrap();
        let m = 60.0;
        assert_eq!(
            due(
                &rec(SandboxState::Started, 15.0, -1.0, 0.0),
                t0 + 14.0 * m,
                m
            ),
            None
        );
        assert_eq!(
            due(
                &rec(SandboxState::Started, 15.0, -1.0, 0.0),
                t0 + 15.0 * m,
                m
            ),
            Some(Due::Stop)
        );
        assert_eq!(
            due(&rec(SandboxState::Started, 0.0, -1.0, 0.0), t0 + 1e6, m),
            None
        );
        // Stopped: deleted at once with 0, archived after its interval, kept with -1.
        assert_eq!(
            due(&rec(SandboxState::Stopped, 15.0, 0.0, 60.0), t0, m),
            Some(Due::Delete)
        );
        assert_eq!(
            due(
                &rec(SandboxState::Stopped, 15.0, -1.0, 60.0),
                t0 + 60.0 * m,
                m
            ),
            Some(Due::Archive)
        );
        assert_eq!(
            due(&rec(SandboxState::Stopped, 15.0, -1.0, 60.0), t0 + m, m),
            None
        );
        let mut ttl = rec(SandboxState::Started, 0.0, -1.0, 0.0);
        ttl.sandbox.auto_destroy_at = Some("2026-01-01T00:10:00Z".into());
        assert_eq!(due(&ttl, t0 + 601.0, m), Some(Due::Delete));
    }
}
