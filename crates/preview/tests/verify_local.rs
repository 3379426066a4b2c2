//! `verify_preview` end to end on the embedded backend: real sandboxes, real dev-server
//! processes started in a session, the real preview proxy and log WebSocket.

use crate::common;

use common::bounded;
use forge_daytona::{CallOptions, Client, CreateParams, DaytonaConfig, Toolbox, UploadItem};
use forge_local::{LocalBackend, LocalConfig};
use forge_preview::{verify_preview, DevProcess, Prober, Reason, VerifyOptions, VerifyReport};
use std::time::Duration;

/// A stand-in dev server: waits `delay` ms, listens on `port`, prints Vite's coloured "Local:"
/// line (after a "Port … is in use" line when `busy` is given) and quits after a minute
/// whatever happens, so that no test leaves it behind. `MODE=next-error`: every page is a
/// Next.js dev error document (500).
const SERVER_JS: &str = r#"
const http = require('http');
const [port, delay, busy] = process.argv.slice(2).map(Number);
setTimeout(() => process.exit(0), 60000);
if (busy) console.log(`Port ${busy} is in use, trying another one...`);
setTimeout(() => {
  http.createServer((req, res) => {
    res.setHeader('content-type', 'text/html');
    if (process.env.MODE === 'bare-500') {
      console.error(new Error('DATABASE_URL is not set').stack);
      res.statusCode = 500;
      res.end('Internal Server Error');
      return;
    }
    if (process.env.MODE === 'next-error') {
      res.statusCode = 500;
      res.end('<!DOCTYPE html><html id="__next_error__"><body><template data-next-error-message="Module not found: Can&#x27;t resolve &#x27;./Missing&#x27;" data-next-error-digest="1"></template></body></html>');
      return;
    }
    res.end('<!doctype html><html><body><h1>hello from the dev server</h1></body></html>');
  }).listen(port, '127.0.0.1', () =>
    console.log(`\n  \x1b[32m➜\x1b[39m  \x1b[1mLocal\x1b[22m:   \x1b[36mhttp://localhost:\x1b[1m${port}\x1b[22m/\x1b[39m`));
}, delay);
"#;

struct Env {
    _home: tempfile::TempDir,
    _backend: LocalBackend,
    client: Client,
    id: String,
    tb: Toolbox,
}

async fn env() -> Env {
    let home = tempfile::tempdir().unwrap();
    let backend = LocalBackend::start(LocalConfig {
        home: Some(home.path().to_path_buf()),
        stop_sandboxes_on_exit: true,
        ..Default::default()
    })
    .await
    .unwrap();
    let client = Client::new(
        DaytonaConfig::new()
            .with_api_key(backend.api_key())
            .with_api_url(backend.api_url()),
    )
    .unwrap();
    let sandbox = client
        .create(&CreateParams::default(), &CallOptions::new())
        .await
        .unwrap();
    let tb = client.toolbox(&sandbox).await.unwrap();
    tb.fs()
        .upload(
            vec![UploadItem {
                source: SERVER_JS.into(),
                destination: "server.js".into(),
            }],
            &CallOptions::new(),
        )
        .await
        .unwrap();
    tb.process().create_session("dev").await.unwrap();
    Env {
        _home: home,
        _backend: backend,
        client,
        id: sandbox.id,
        tb,
    }
}

impl Env {
    async fn start(&self, command: &str) -> DevProcess {
        let r = self
            .tb
            .process()
            .execute_session_command("dev", command, true, &CallOptions::new())
            .await
            .unwrap();
        DevProcess {
            session_id: "dev".into(),
            command_id: r.cmd_id,
        }
    }
    async fn verify(
        &self,
        dev: Option<&DevProcess>,
        port: u16,
        deadline: Duration,
    ) -> VerifyReport {
        let opts = VerifyOptions {
            port,
            deadline,
            ..VerifyOptions::default()
        };
        verify_preview(&self.client, &self.id, &self.tb, dev, &opts)
            .await
            .unwrap()
    }
    async fn stop(&self) {
        let _ = self.tb.process().delete_session("dev").await;
    }
}

/// A free port on 127.0.0.1 inside 3000–9999, the range Daytona's port check accepts (so the
/// in-sandbox port condition is exercised too).
fn free_port() -> u16 {
    for _ in 0..200 {
        let p = 3000 + fastrand::u16(0..7000);
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_ok() {
            return p;
        }
    }
    panic!("no free port in 3000-9999");
}

#[tokio::test]
async fn a_server_that_comes_up_is_verified_with_two_oks() {
    bounded(async {
        let e = env().await;
        let port = free_port();
        let dev = e.start(&format!("node server.js {port} 400")).await;
        let r = e.verify(Some(&dev), port, Duration::from_secs(30)).await;
        e.stop().await;
        assert!(r.ok, "{r:?}");
        assert_eq!(r.reason, Reason::Ok);
        assert_eq!(r.port, port);
        assert_eq!(r.status, Some(200));
        assert!(r.attempts >= 2, "{r:?}");
        assert!(r.time_to_first_ok_ms.is_some());
        assert_eq!(r.url, e.client.preview_url(&e.id, port).await.unwrap().url);
        assert!(
            r.log_tail
                .iter()
                .any(|l| l.contains(&format!("Local:   http://localhost:{port}/"))),
            "{:?}",
            r.log_tail
        );
        let json = serde_json::to_value(&r).unwrap();
        for key in [
            "ok",
            "url",
            "status",
            "reason",
            "attempts",
            "elapsedMs",
            "timeToFirstOkMs",
            "logTail",
            "port",
            "excerpt",
        ] {
            assert!(json.get(key).is_some(), "{key} missing in {json}");
        }
        assert_eq!(json["reason"], "OK");
    })
    .await;
}

#[tokio::test]
async fn an_already_running_server_is_verified_from_the_first_probe() {
    bounded(async {
        let e = env().await;
        let port = free_port();
        let dev = e.start(&format!("node server.js {port} 0")).await;
        let first = e.verify(Some(&dev), port, Duration::from_secs(30)).await;
        assert!(first.ok, "{first:?}");
        let r = e.verify(Some(&dev), port, Duration::from_secs(30)).await;
        e.stop().await;
        assert!(r.ok, "{r:?}");
        assert_eq!(r.attempts, 2, "two probes, both OK: {r:?}");
        assert!(r.time_to_first_ok_ms.is_some());
        assert!(r.settle_ms().is_some());
    })
    .await;
}

#[tokio::test]
async fn a_dev_process_that_exits_at_once_stops_verification_with_its_log() {
    bounded(async {
        let e = env().await;
        let port = free_port();
        let dev = e
            .start("echo 'Error: Cannot find module \"vite\"' >&2; echo 'npm ERR! code 1'; exit 3")
            .await;
        let r = e.verify(Some(&dev), port, Duration::from_mins(1)).await;
        e.stop().await;
        assert!(!r.ok);
        assert_eq!(r.reason, Reason::ProcessExited, "{r:?}");
        assert!(r.excerpt.as_deref().unwrap().contains("code 3"), "{r:?}");
        assert!(
            r.log_tail
                .iter()
                .any(|l| l.contains("Cannot find module \"vite\"")),
            "{:?}",
            r.log_tail
        );
        assert!(
            r.log_tail.iter().any(|l| l.contains("npm ERR! code 1")),
            "{:?}",
            r.log_tail
        );
        assert_eq!(
            serde_json::to_value(&r).unwrap()["reason"],
            "PROCESS_EXITED"
        );
    })
    .await;
}

/// An app that throws as it starts, under `node --watch` (which then waits for a change).
const CRASHING_JS: &str = "console.log('starting');\nrequire('./missing-routes');\n";

#[tokio::test]
async fn an_app_that_crashes_under_a_watcher_is_reported_as_the_crash_with_its_error() {
    bounded(async {
        let e = env().await;
        e.tb.fs()
            .upload(
                vec![UploadItem {
                    source: CRASHING_JS.into(),
                    destination: "crash.js".into(),
                }],
                &CallOptions::new(),
            )
            .await
            .unwrap();
        let port = free_port();
        let dev = e.start("node --watch crash.js").await;
        let r = e.verify(Some(&dev), port, Duration::from_mins(1)).await;
        // The watcher still runs: only the log can tell.
        let cmd =
            e.tb.process()
                .get_session_command("dev", &dev.command_id)
                .await
                .unwrap();
        e.stop().await;
        assert_eq!(cmd.exit_code, None, "node --watch was still running");
        assert!(!r.ok);
        assert_eq!(r.reason, Reason::Crashed, "{r:?}");
        let excerpt = r.excerpt.as_deref().unwrap();
        assert!(
            excerpt.contains("Cannot find module './missing-routes'")
                && excerpt.contains("crash.js:2"),
            "{excerpt}"
        );
        assert_eq!(serde_json::to_value(&r).unwrap()["reason"], "CRASHED");
    })
    .await;
}

#[tokio::test]
async fn an_error_then_silence_while_nothing_listens_is_a_crash() {
    bounded(async {
        let e = env().await;
        let port = free_port();
        // No watcher line: the error, then a process that stays alive and never listens.
        let dev = e
            .start("node -e \"console.error(new Error('database unreachable').stack); setInterval(() => {}, 1000)\"")
            .await;
        let r = e.verify(Some(&dev), port, Duration::from_mins(1)).await;
        e.stop().await;
        assert_eq!(r.reason, Reason::Crashed, "{r:?}");
        assert!(
            r.excerpt.as_deref().unwrap().starts_with("Error: database unreachable"),
            "{r:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn a_server_left_behind_by_a_dev_command_that_exited_is_never_verified() {
    bounded(async {
        let e = env().await;
        let port = free_port();
        // The command starts a server in the background (holding the command's output open)
        // and exits once it answers: whatever answers on the port afterwards is not a running
        // dev process's.
        let dev = e
            .start(&format!(
                "(node server.js {port} 0 &); until curl -sf http://127.0.0.1:{port}/ >/dev/null; do sleep 0.1; done; exit 0"
            ))
            .await;
        loop {
            let c = e
                .tb
                .process()
                .get_session_command("dev", &dev.command_id)
                .await
                .unwrap();
            if c.exit_code.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let r = e.verify(Some(&dev), port, Duration::from_secs(30)).await;
        e.stop().await;
        assert!(!r.ok, "{r:?}");
        assert_eq!(r.reason, Reason::ProcessExited, "{r:?}");
    })
    .await;
}

#[tokio::test]
async fn a_decoy_listening_before_the_start_is_refused_and_never_verified() {
    bounded(async {
        let e = env().await;
        let port = free_port();
        // A decoy in another session (as an install script could leave one), listening first.
        e.tb.process().create_session("decoy").await.unwrap();
        e.tb.process()
            .execute_session_command(
                "decoy",
                &format!("node server.js {port} 0"),
                true,
                &CallOptions::new(),
            )
            .await
            .unwrap();
        let decoy = e.verify(None, port, Duration::from_secs(30)).await;
        assert!(decoy.ok, "the decoy answers: {decoy:?}");
        let input = forge_preview::pipeline::StartInput {
            sandbox_id: e.id.clone(),
            path: Some(e.tb.work_dir().await.unwrap()),
            command: Some(format!("node server.js {port} 0")),
            port: Some(port),
            ..Default::default()
        };
        let err = forge_preview::pipeline::start_dev_server(
            &e.client,
            &input,
            &forge_preview::pipeline::LogSink::none(),
            &CallOptions::new(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), "PREVIEW_PORT_IN_USE", "{err}");
        assert!(err.to_string().contains(&format!("port {port}")), "{err}");

        // With the decoy gone the same start works, and what is verified is its server.
        e.tb.process().delete_session("decoy").await.unwrap();
        let started = forge_preview::pipeline::start_dev_server(
            &e.client,
            &input,
            &forge_preview::pipeline::LogSink::none(),
            &CallOptions::new(),
        )
        .await
        .unwrap();
        let dev = DevProcess {
            session_id: started.session_id.clone(),
            command_id: started.command_id.clone(),
        };
        let r = e.verify(Some(&dev), port, Duration::from_secs(30)).await;
        let _ = e.tb.process().delete_session(&started.session_id).await;
        assert!(r.ok, "{r:?}");
    })
    .await;
}

#[tokio::test]
async fn the_port_the_log_announces_wins_over_the_requested_one() {
    bounded(async {
        let e = env().await;
        let requested = free_port();
        let mut actual = free_port();
        while actual == requested {
            actual = free_port();
        }
        let dev = e
            .start(&format!("node server.js {actual} 200 {requested}"))
            .await;
        let r = e
            .verify(Some(&dev), requested, Duration::from_secs(30))
            .await;
        e.stop().await;
        assert!(r.ok, "{r:?}");
        assert_eq!(r.port, actual);
        assert_eq!(
            r.url,
            e.client.preview_url(&e.id, actual).await.unwrap().url
        );
        assert!(r
            .log_tail
            .iter()
            .any(|l| l.contains(&format!("Port {requested} is in use"))));
    })
    .await;
}

#[tokio::test]
async fn nothing_listening_until_the_deadline_is_a_timeout() {
    bounded(async {
        let e = env().await;
        let port = free_port();
        let r = e.verify(None, port, Duration::from_millis(1500)).await;
        assert!(!r.ok);
        assert_eq!(r.reason, Reason::Timeout);
        assert_eq!(r.last_probe, Some(Reason::NotListening));
        assert!(r.log_tail.is_empty());
    })
    .await;
}

#[tokio::test]
async fn a_framework_error_stops_verification_with_its_message() {
    bounded(async {
        let e = env().await;
        let port = free_port();
        let dev = e
            .start(&format!("MODE=next-error node server.js {port} 0"))
            .await;
        let r = e.verify(Some(&dev), port, Duration::from_secs(30)).await;
        e.stop().await;
        assert!(!r.ok);
        assert_eq!(
            (r.reason, r.status),
            (Reason::FrameworkError, Some(500)),
            "{r:?}"
        );
        assert_eq!(
            r.excerpt.as_deref(),
            Some("Module not found: Can't resolve './Missing'")
        );
    })
    .await;
}

#[tokio::test]
async fn a_page_that_says_only_internal_server_error_is_explained_by_the_log() {
    bounded(async {
        let e = env().await;
        let port = free_port();
        let dev = e
            .start(&format!("MODE=bare-500 node server.js {port} 0"))
            .await;
        let r = e.verify(Some(&dev), port, Duration::from_secs(30)).await;
        e.stop().await;
        assert_eq!(
            (r.reason, r.status),
            (Reason::FrameworkError, Some(500)),
            "{r:?}"
        );
        assert!(
            r.excerpt
                .as_deref()
                .is_some_and(|x| x.starts_with("Error: DATABASE_URL is not set")),
            "{r:?}"
        );
    })
    .await;
}

#[tokio::test]
async fn the_embedded_proxy_answers_are_classified() {
    bounded(async {
        let e = env().await;
        let port = free_port();
        let link = e.client.preview_url(&e.id, port).await.unwrap();
        let probe = |token: Option<String>| {
            let url = format!("{}/", link.url.trim_end_matches('/'));
            async move {
                Prober::new()
                    .unwrap()
                    .with_token(token.as_deref())
                    .probe(&url, Duration::from_secs(30), true)
                    .await
            }
        };
        // Nothing listens yet: the proxy's 502.
        let p = probe(Some(link.token.clone())).await;
        assert_eq!(p.reason, Reason::NotListening, "{p:?}");
        let dev = e.start(&format!("node server.js {port} 0")).await;
        let up = e.verify(Some(&dev), port, Duration::from_secs(30)).await;
        assert!(up.ok, "{up:?}");
        // A private sandbox with a wrong token: the proxy's 307 to its auth page.
        assert!(
            !e.client.get(&e.id).await.unwrap().public,
            "sandboxes are private by default"
        );
        let p = probe(Some("wrong-token".into())).await;
        assert_eq!(
            (p.reason, p.status),
            (Reason::AuthRedirect, Some(307)),
            "{p:?}"
        );
        let p = probe(None).await;
        assert_eq!(p.reason, Reason::AuthRedirect, "{p:?}");
        e.stop().await;
        // A stopped sandbox: verification stops at once with the sandbox's state.
        e.client
            .stop(&e.id, false, &CallOptions::new())
            .await
            .unwrap();
        let r = e.verify(None, port, Duration::from_secs(30)).await;
        assert_eq!(r.reason, Reason::SandboxNotStarted, "{r:?}");
    })
    .await;
}
