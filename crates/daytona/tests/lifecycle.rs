//! The client against the embedded backend over real HTTP: lifecycle, listing, exec, unknown
//! ids, keys.

use crate::common;

use common::{bounded, Backend};
use forge_daytona::wire::SandboxState;
use forge_daytona::{CallOptions, CreateParams, ExecOptions, ListQuery, WorkspaceClass};
use std::time::Duration;

fn opts() -> CallOptions {
    CallOptions::new().with_timeout(Duration::from_mins(1))
}

#[tokio::test]
async fn lifecycle_create_get_stop_start_archive_delete() {
    bounded(async {
        let b = Backend::start().await;
        let c = &b.client;
        let params = CreateParams {
            image: Some("node:22-bookworm".into()),
            workspace_class: Some(WorkspaceClass::Medium),
            public: Some(true),
            env: [("NODE_ENV".to_string(), "development".to_string())].into(),
            labels: [("project".to_string(), "lifecycle".to_string())].into(),
            ..Default::default()
        };
        let s = c.create(&params, &opts()).await.unwrap();
        assert_eq!(s.state, SandboxState::Started);
        assert_eq!(
            s.labels.get("project").map(String::as_str),
            Some("lifecycle")
        );
        assert_eq!(
            s.labels
                .get(forge_daytona::LANGUAGE_LABEL)
                .map(String::as_str),
            Some("typescript")
        );

        let again = c.get(&s.id).await.unwrap();
        assert_eq!(again.id, s.id);

        let tb = c.toolbox(&s).await.unwrap();
        let r = tb
            .process()
            .execute(
                "mkdir -p workspace && echo $NODE_ENV",
                &ExecOptions::default(),
                &opts(),
            )
            .await
            .unwrap();
        assert_eq!((r.exit_code, r.result.trim()), (0, "development"));

        let stopped = c.stop(&s.id, false, &opts()).await.unwrap();
        assert_eq!(stopped.state, SandboxState::Stopped);
        let started = c.start(&s.id, &opts()).await.unwrap();
        assert_eq!(started.state, SandboxState::Started);

        let preview = c.preview_url(&s.id, 3000).await.unwrap();
        assert!(preview.url.starts_with("http"), "{}", preview.url);
        assert!(!preview.token.is_empty() && !format!("{preview:?}").contains(&preview.token));

        c.stop(&s.id, false, &opts()).await.unwrap();
        let archived = c.archive(&s.id, &opts()).await.unwrap();
        assert_eq!(archived.state, SandboxState::Archived);

        c.delete(&s.id, true, &opts()).await.unwrap();
        assert_eq!(c.get(&s.id).await.unwrap_err().code(), "DAYTONA_NOT_FOUND");
        b.stop().await;
    })
    .await;
}

#[tokio::test]
async fn list_pages_and_label_filter() {
    bounded(async {
        let b = Backend::start().await;
        let c = &b.client;
        for i in 0..5 {
            let p = CreateParams {
                name: Some(format!("paged-{i}")),
                labels: [("group".to_string(), "paged".to_string())].into(),
                ..Default::default()
            };
            c.create(&p, &opts()).await.unwrap();
        }
        let other = CreateParams {
            labels: [("group".to_string(), "other".to_string())].into(),
            ..Default::default()
        };
        c.create(&other, &opts()).await.unwrap();

        let q = ListQuery {
            labels: Some([("group".to_string(), "paged".to_string())].into()),
            limit: Some(2),
            ..Default::default()
        };
        let first = c.list(&q, &opts()).await.unwrap();
        assert_eq!(first.items.len(), 2);
        assert!(first.next_cursor.is_some());
        let all = c.list_all(&q, &opts()).await.unwrap();
        assert_eq!(all.len(), 5);
        let mut ids: Vec<_> = all.iter().map(|s| s.id.clone()).collect();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), 5, "no sandbox twice across pages");
        assert!(all
            .iter()
            .all(|s| s.labels.get("group").map(String::as_str) == Some("paged")));

        let everything = c.list_all(&ListQuery::default(), &opts()).await.unwrap();
        assert_eq!(everything.len(), 6);
        b.stop().await;
    })
    .await;
}

#[tokio::test]
async fn execute_with_cwd_env_and_timeout() {
    bounded(async {
        let b = Backend::start().await;
        let c = &b.client;
        let s = c.create(&CreateParams::default(), &opts()).await.unwrap();
        let p = c.toolbox(&s).await.unwrap().process();
        p.execute("mkdir -p workspace/sub", &ExecOptions::default(), &opts())
            .await
            .unwrap();

        let o = ExecOptions {
            cwd: Some("workspace".into()),
            env: [("EXTRA".to_string(), "it's 1".to_string())].into(),
            timeout: Some(Duration::from_secs(30)),
        };
        let r = p
            .execute("pwd; echo \"$EXTRA\"; echo err >&2; exit 3", &o, &opts())
            .await
            .unwrap();
        assert_eq!(r.exit_code, 3);
        let lines: Vec<&str> = r.result.lines().collect();
        assert!(lines[0].ends_with("/workspace"), "{lines:?}");
        assert!(
            lines.contains(&"it's 1") && lines.contains(&"err"),
            "{lines:?}"
        );

        // A command past its timeout is killed: a typed timeout, and no process left.
        let marker = format!("sleep 30.{}", std::process::id() % 1000 + 1000);
        let o = ExecOptions {
            timeout: Some(Duration::from_secs(1)),
            ..Default::default()
        };
        let e = p.execute(&marker, &o, &opts()).await.unwrap_err();
        assert_eq!(e.code(), "DAYTONA_TIMEOUT", "{e}");
        let ps = std::process::Command::new("ps")
            .args(["-eo", "args"])
            .output()
            .unwrap();
        let ps = String::from_utf8_lossy(&ps.stdout);
        assert!(
            !ps.lines().any(|l| l.trim() == marker),
            "left behind: {marker}"
        );

        // exec: stdout and stderr apart (built on a session; skipped where sessions are not served yet).
        match p
            .exec(
                "echo out; echo err >&2; exit 4",
                &ExecOptions::default(),
                &opts(),
            )
            .await
        {
            Ok(r) => {
                assert_eq!(
                    (r.stdout.as_str(), r.stderr.as_str(), r.exit_code),
                    ("out\n", "err\n", 4)
                );
            }
            Err(e) => assert_eq!(e.code(), "DAYTONA_NOT_FOUND", "{e}"),
        }
        b.stop().await;
    })
    .await;
}

#[tokio::test]
async fn unknown_ids_are_not_found() {
    bounded(async {
        let b = Backend::start().await;
        let c = &b.client;
        let id = "no-such-sandbox";
        assert_eq!(c.get(id).await.unwrap_err().code(), "DAYTONA_NOT_FOUND");
        assert_eq!(
            c.start(id, &opts()).await.unwrap_err().code(),
            "DAYTONA_NOT_FOUND"
        );
        assert_eq!(
            c.stop(id, false, &opts()).await.unwrap_err().code(),
            "DAYTONA_NOT_FOUND"
        );
        assert_eq!(
            c.archive(id, &opts()).await.unwrap_err().code(),
            "DAYTONA_NOT_FOUND"
        );
        assert_eq!(
            c.delete(id, false, &opts()).await.unwrap_err().code(),
            "DAYTONA_NOT_FOUND"
        );
        assert_eq!(
            c.preview_url(id, 3000).await.unwrap_err().code(),
            "DAYTONA_NOT_FOUND"
        );
        assert_eq!(
            c.toolbox_for(id).await.unwrap_err().code(),
            "DAYTONA_NOT_FOUND"
        );
        let e = c.get("").await.unwrap_err();
        assert_eq!(e.code(), "DAYTONA_INVALID_ARGUMENT");
        b.stop().await;
    })
    .await;
}

#[tokio::test]
async fn wrong_or_missing_key_is_auth() {
    bounded(async {
        let b = Backend::start().await;
        let wrong = b.client_with_key("wrong-key-123");
        let e = wrong.get("x").await.unwrap_err();
        assert_eq!((e.code(), e.status()), ("DAYTONA_AUTH", Some(401)));
        assert!(!e.to_string().contains("wrong-key-123"));
        let e = wrong
            .create(&CreateParams::default(), &opts())
            .await
            .unwrap_err();
        assert_eq!(e.code(), "DAYTONA_AUTH");

        // The toolbox too refuses a wrong key.
        let s = b
            .client
            .create(&CreateParams::default(), &opts())
            .await
            .unwrap();
        let tb = wrong.toolbox(&s).await.unwrap();
        let e = tb
            .process()
            .execute("true", &ExecOptions::default(), &opts())
            .await
            .unwrap_err();
        assert_eq!(e.code(), "DAYTONA_AUTH");

        // No key at all is refused before anything is sent.
        let e = forge_daytona::DaytonaConfig::new()
            .with_api_url(b.backend.api_url())
            .validate()
            .unwrap_err();
        assert_eq!(e.code(), "DAYTONA_AUTH");
        b.stop().await;
    })
    .await;
}

/// The sandbox timers with the API's meaning of 0 and negative minutes, recover refused for a
/// sandbox that is not in `error`, and list sort / order.
#[tokio::test]
async fn timers_recover_and_list_order() {
    use forge_daytona::{Interval, ListOrder, ListSort};
    bounded(async {
        let b = Backend::start().await;
        let c = &b.client;
        let suite = format!("timers-{}", std::process::id());
        let mut made = Vec::new();
        for name in ["b", "a", "c"] {
            let params = CreateParams {
                name: Some(format!("{suite}-{name}")),
                labels: [("suite".to_string(), suite.clone())].into(),
                ..Default::default()
            };
            made.push(c.create(&params, &opts()).await.unwrap());
        }
        let s = &made[0];
        let o = opts();
        let set = |i, m| c.set_interval(&s.id, i, m, &o);
        let got = set(Interval::AutoStop, 30).await.unwrap();
        assert_eq!(got.auto_stop_interval, Some(30.0));
        let got = set(Interval::AutoArchive, 0).await.unwrap();
        assert_eq!(
            got.auto_archive_interval,
            Some(30.0 * 24.0 * 60.0),
            "0 is the maximum"
        );
        let got = set(Interval::AutoDelete, -1).await.unwrap();
        assert_eq!(got.auto_delete_interval, Some(-1.0), "negative: never");
        let e = set(Interval::AutoStop, -1).await.unwrap_err();
        assert_eq!(e.code(), "DAYTONA_INVALID_ARGUMENT");

        let e = c.recover(&s.id, &opts()).await.unwrap_err();
        assert_eq!(e.status(), Some(400), "{e}");

        let names = |q: ListQuery| async move {
            c.list_all(&q, &opts())
                .await
                .unwrap()
                .into_iter()
                .map(|s| s.name.rsplit('-').next().unwrap().to_string())
                .collect::<Vec<_>>()
        };
        let query = |sort, order| ListQuery {
            labels: Some([("suite".to_string(), suite.clone())].into()),
            sort,
            order,
            limit: Some(1),
            ..Default::default()
        };
        assert_eq!(
            names(query(Some(ListSort::Name), Some(ListOrder::Asc))).await,
            ["a", "b", "c"]
        );
        assert_eq!(
            names(query(Some(ListSort::Name), Some(ListOrder::Desc))).await,
            ["c", "b", "a"]
        );
        // The default: the most recently active first (each create was after the one before).
        let newest_first = names(query(None, None)).await;
        let oldest_first = names(query(Some(ListSort::CreatedAt), Some(ListOrder::Asc))).await;
        assert_eq!(oldest_first, ["b", "a", "c"]);
        assert_eq!(newest_first, ["c", "a", "b"]);
        assert!(ListSort::parse("color").is_err());
        for s in made {
            c.delete(&s.id, false, &opts()).await.unwrap();
        }
    })
    .await;
}
