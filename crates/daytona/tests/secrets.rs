//! Secrets (issue 8): `format!("{:?}")` and `Display` of every config, client, handle and error
//! a user may print never contain the API key, the JWT or a git password, including errors of
//! real failing calls (wrong key, wrong git password, unreachable hosts, bad URLs).

use crate::common;

use common::bounded;
use forge_daytona::{
    Auth, CallOptions, Client, CloneParams, CreateParams, DaytonaConfig, Error, GitCredentials,
    RetryConfig,
};
use forge_testkit::{create_repo, GitHttpServer};
use std::time::Duration;

const KEY: &str = "sk-RUST-SECRET-key-5b1e";
const JWT: &str = "eyJ.RUST-SECRET-jwt.9c2";
const GIT: &str = "ghp_RUST_SECRET_git_77a0";

fn assert_clean(what: &str, text: &str) {
    for s in [KEY, JWT, GIT, "RUST-SECRET", "RUST_SECRET"] {
        assert!(!text.contains(s), "{what} contains a secret: {text}");
    }
}

fn assert_error_clean(what: &str, e: &Error) {
    assert_clean(what, &format!("{e} {e:?} {:?}", e.api()));
}

fn opts() -> CallOptions {
    CallOptions::new().with_timeout(Duration::from_mins(1))
}

#[test]
fn configs_and_clients_debug_without_secrets() {
    let key = DaytonaConfig::new()
        .with_api_key(KEY)
        .with_api_url("http://127.0.0.1:9/api");
    let jwt = DaytonaConfig::new()
        .with_jwt(JWT, "org-1")
        .with_api_url("http://127.0.0.1:9/api");
    for c in [&key, &jwt] {
        assert_clean("DaytonaConfig", &format!("{c:?} {c:#?}"));
        let r = c.clone().validate().unwrap();
        assert_clean("ResolvedConfig", &format!("{r:?} {:?}", r.auth));
        let client = Client::from_resolved(r).unwrap();
        assert_clean("Client", &format!("{client:?} {client:#?}"));
    }
    assert_clean(
        "Auth",
        &format!(
            "{:?}",
            Auth::Jwt {
                token: JWT.into(),
                organization_id: "o".into()
            }
        ),
    );
    let creds = GitCredentials {
        username: Some("u".into()),
        password: Some(GIT.into()),
    };
    assert_clean("GitCredentials", &format!("{creds:?}"));
    let clone = CloneParams {
        url: format!("https://x:{GIT}@example.com/r.git"),
        path: "p".into(),
        password: Some(GIT.into()),
        ..Default::default()
    };
    assert_clean("CloneParams", &format!("{clone:?}"));
}

#[test]
fn config_errors_without_secrets() {
    for url in [
        format!("ftp://x:{KEY}@127.0.0.1/api"),
        format!("not a url {KEY}"),
        format!("http://{KEY}@/api"),
    ] {
        let e = DaytonaConfig::new()
            .with_api_key(KEY)
            .with_api_url(url.clone())
            .validate()
            .unwrap_err();
        assert_error_clean(&format!("bad apiUrl {url}"), &e);
    }
    let e = DaytonaConfig::new()
        .with_jwt(JWT, "")
        .validate()
        .unwrap_err();
    assert_error_clean("jwt without org", &e);
    let e = DaytonaConfig::new()
        .with_api_key(format!("{KEY}\n"))
        .validate()
        .and_then(Client::from_resolved)
        .unwrap_err();
    assert_error_clean("key with a newline", &e);
}

#[tokio::test]
async fn errors_of_failing_calls_without_secrets() {
    bounded(async {
        let repos = tempfile::tempdir().unwrap();
        create_repo(repos.path(), "r.git", "main", &[("a", "a\n")]).unwrap();
        let server = GitHttpServer::start(repos.path(), "git", GIT)
            .await
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let backend = forge_local::LocalBackend::start(forge_local::LocalConfig {
            home: Some(dir.path().to_path_buf()),
            api_key: Some(KEY.into()),
            stop_sandboxes_on_exit: true,
            host_ports: vec![server.addr().port()],
            ..Default::default()
        })
        .await
        .unwrap();
        let client = |key: &str, url: &str| {
            Client::from_resolved(
                DaytonaConfig::new()
                    .with_api_key(key)
                    .with_api_url(url)
                    .with_retry(RetryConfig::none())
                    .validate()
                    .unwrap(),
            )
            .unwrap()
        };
        let good = client(KEY, &backend.api_url());
        let wrong = client(&format!("{KEY}-wrong"), &backend.api_url());
        let e = wrong
            .list(&forge_daytona::ListQuery::default(), &opts())
            .await
            .unwrap_err();
        assert_eq!(e.code(), "DAYTONA_AUTH");
        assert_error_clean("wrong key", &e);
        let e = wrong
            .create(&CreateParams::default(), &opts())
            .await
            .unwrap_err();
        assert_error_clean("wrong key create", &e);
        let dead = client(KEY, &format!("http://u:{KEY}@127.0.0.1:9/api"));
        let e = dead.get("x").await.unwrap_err();
        assert_eq!(e.code(), "DAYTONA_CONNECTION");
        assert_error_clean("dead host", &e);
        assert_clean("dead client", &format!("{dead:?}"));

        let e = good.get("no-such").await.unwrap_err();
        assert_error_clean("unknown id", &e);
        let s = good
            .create(&CreateParams::default(), &opts())
            .await
            .unwrap();
        let tb = good.toolbox(&s).await.unwrap();
        assert_clean("Toolbox", &format!("{tb:?} {:?}", tb.fs()));
        let e = tb.fs().download("/nope", &opts()).await.unwrap_err();
        assert_error_clean("missing file", &e);

        let url = server.url("r.git");
        let wrong_pw = CloneParams {
            url: url.clone(),
            path: "workspace/denied".into(),
            username: Some("git".into()),
            password: Some(format!("{GIT}-wrong")),
            ..Default::default()
        };
        let e = tb.git().clone_repo(&wrong_pw, &opts()).await.unwrap_err();
        assert_error_clean("wrong git password", &e);
        let in_url = CloneParams {
            url: url.replacen("http://", &format!("http://git:{GIT}-wrong@"), 1),
            path: "workspace/denied2".into(),
            ..Default::default()
        };
        let e = tb.git().clone_repo(&in_url, &opts()).await.unwrap_err();
        assert_error_clean("wrong git password in URL", &e);
        let ok = CloneParams {
            url: url.clone(),
            path: "workspace/ok".into(),
            username: Some("git".into()),
            password: Some(GIT.into()),
            ..Default::default()
        };
        tb.git().clone_repo(&ok, &opts()).await.unwrap();
        let creds = GitCredentials {
            username: Some("git".into()),
            password: Some(format!("{GIT}-wrong")),
        };
        let e = tb
            .git()
            .push("workspace/ok", &creds, Some("main"), None)
            .await
            .unwrap_err();
        assert_error_clean("push with a wrong password", &e);
        let e = tb
            .git()
            .fetch("workspace/ok", None, &creds, &opts())
            .await
            .unwrap_err();
        assert_error_clean("fetch with a wrong password", &e);
        let e = tb
            .git()
            .add_remote(
                "workspace/ok",
                "leaky",
                &url.replacen("http://", &format!("http://git:{GIT}@"), 1),
                false,
                false,
            )
            .await;
        if let Err(e) = e {
            assert_error_clean("add_remote with credentials", &e);
        }
        server.shutdown().await;
        backend.shutdown().await;
    })
    .await;
}

/// A wrong apiUrl pointing at a server that echoes the request (headers included), in a
/// body that is not the JSON expected (200) and in error bodies (400, 500): the errors quote
/// the body without the key.
#[tokio::test]
async fn echoed_headers_are_scrubbed_from_errors() {
    use axum::response::IntoResponse;
    bounded(async {
        let server = common::Scripted::start(|seen, n| {
            // The key at varied offsets, some across the 120- and 500-character cuts of the quote.
            let auth = seen
                .headers
                .get("authorization")
                .cloned()
                .unwrap_or_default();
            let echo = format!(
                "{}{auth} {:?}",
                "x".repeat([87, 467, 95, 90, 470, 300, 85, 460, 80][n % 9]),
                seen.headers
            );
            let status = [200u16, 400, 500][n % 3];
            (
                axum::http::StatusCode::from_u16(status).unwrap(),
                format!("echo: {echo}"),
            )
                .into_response()
        })
        .await;
        let client = server.client_with(KEY, RetryConfig::none());
        for _ in 0..9 {
            let e = client.get("x").await.unwrap_err();
            assert_error_clean("echoing server", &e);
        }
        // The key was really sent (and so really echoed).
        assert!(server.seen.lock().unwrap()[0].headers["authorization"].contains(KEY));
    })
    .await;
}
