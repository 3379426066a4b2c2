//! An idempotent create on the Daytona wire, against a scripted control plane (the embedded
//! backend's runs are in forge-preview's `idempotent_steps`): what it asks (`GET /sandbox`
//! with the key's label as the `labels` filter, a `POST` carrying the label and the key's
//! name), and a sandbox of the key left in `error` — which the embedded backend does not make
//! on demand — deleted and replaced rather than handed out or left to block the retry.

use crate::common;

use common::{bounded, json, sandbox_json, Scripted};
use forge_daytona::idempotency::key_label;
use forge_daytona::{CallOptions, CreateParams, IDEMPOTENCY_LABEL};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[tokio::test]
async fn a_broken_sandbox_of_the_key_is_replaced_and_the_new_one_carries_the_label() {
    bounded(async {
        let label = key_label("evt-1:create-sandbox").unwrap();
        let broken = {
            let mut s = sandbox_json("sbx-broken", "error", "http://x/toolbox");
            s["labels"] = serde_json::json!({ IDEMPOTENCY_LABEL: label });
            s
        };
        let deleted = Arc::new(AtomicBool::new(false));
        let d = deleted.clone();
        let srv = Scripted::start(
            move |req, _| match (req.method.as_str(), req.path.as_str()) {
                ("GET", "/api/sandbox") if d.load(Ordering::SeqCst) => {
                    json(200, serde_json::json!({ "items": [] }))
                }
                ("GET", "/api/sandbox") => {
                    json(200, serde_json::json!({ "items": [broken.clone()] }))
                }
                ("DELETE", "/api/sandbox/sbx-broken") => {
                    d.store(true, Ordering::SeqCst);
                    json(200, serde_json::json!({}))
                }
                ("GET", "/api/sandbox/sbx-broken") => json(
                    404,
                    serde_json::json!({ "statusCode": 404, "message": "not found" }),
                ),
                ("POST", "/api/sandbox") => {
                    let body: serde_json::Value = serde_json::from_slice(&req.body).unwrap();
                    let mut s = sandbox_json("sbx-new", "started", "http://x/toolbox");
                    s["labels"] = body["labels"].clone();
                    s["name"] = body["name"].clone();
                    json(200, s)
                }
                _ => json(
                    404,
                    serde_json::json!({ "statusCode": 404, "message": "unexpected" }),
                ),
            },
        )
        .await;
        let params = CreateParams {
            idempotency_key: Some("evt-1:create-sandbox".into()),
            ..Default::default()
        };
        let made = srv
            .client("k")
            .create(&params, &CallOptions::new())
            .await
            .unwrap();
        assert_eq!(made.id, "sbx-new");
        assert!(deleted.load(Ordering::SeqCst), "the broken one was deleted");
        assert_eq!(made.labels.get(IDEMPOTENCY_LABEL), Some(&label));
        assert_eq!(made.name, format!("forge-{label}"));

        let seen = srv.seen.lock().unwrap().clone();
        let lists: Vec<_> = seen
            .iter()
            .filter(|s| s.method == "GET" && s.path == "/api/sandbox")
            .collect();
        assert!(lists.len() >= 2, "looked before and after deleting");
        for l in lists {
            let filter = l.query.iter().find(|(k, _)| k == "labels").map(|(_, v)| v);
            let filter: serde_json::Value = serde_json::from_str(filter.unwrap()).unwrap();
            assert_eq!(filter, serde_json::json!({ IDEMPOTENCY_LABEL: label }));
        }
        let posts = seen.iter().filter(|s| s.method == "POST").count();
        assert_eq!(posts, 1, "one sandbox made");
    })
    .await;
}
