//! Binding beyond loopback: refused by default (LOCAL_NOT_LOOPBACK); with `allow_remote`
//! (FORGE_ALLOW_REMOTE=1) allowed (with a warning on stderr), the key still required,
//! address-literal Host headers accepted and DNS names still refused; and no CORS headers for
//! any origin.

use forge_local::{LocalBackend, LocalConfig};
use std::net::{Ipv4Addr, SocketAddr};

fn config(home: &std::path::Path, allow_remote: bool) -> LocalConfig {
    LocalConfig {
        home: Some(home.to_path_buf()),
        api_key: Some("remote-test-key".into()),
        bind: Some(SocketAddr::from((Ipv4Addr::UNSPECIFIED, 0))),
        allow_remote,
        stop_sandboxes_on_exit: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn non_loopback_bind_needs_the_opt_in_then_keeps_key_and_host_checks() {
    let home = tempfile::tempdir().unwrap();
    match LocalBackend::start(config(home.path(), false)).await {
        Ok(_) => panic!("a non-loopback bind was accepted without FORGE_ALLOW_REMOTE"),
        Err(e) => assert_eq!(e.code(), "LOCAL_NOT_LOOPBACK"),
    }
    let backend = LocalBackend::start(config(home.path(), true))
        .await
        .expect("allowed");
    let port = backend.addr().port();
    let http = reqwest::Client::new();
    let url = format!("http://127.0.0.1:{port}/api/sandbox");
    let with = |host: &str, key: Option<&str>| {
        let mut r = http.get(&url).header("Host", host);
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        r.send()
    };
    assert_eq!(
        with(&format!("10.1.2.3:{port}"), Some("remote-test-key"))
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(
        with(&format!("10.1.2.3:{port}"), None)
            .await
            .unwrap()
            .status(),
        401
    );
    assert_eq!(
        with("attacker.example.com", Some("remote-test-key"))
            .await
            .unwrap()
            .status(),
        403
    );
    // No CORS: a page on another origin gets no Access-Control-* header, preflight or not.
    for method in [reqwest::Method::OPTIONS, reqwest::Method::GET] {
        let r = http
            .request(method, &url)
            .header("Host", format!("127.0.0.1:{port}"))
            .header("Origin", "https://attacker.example.com")
            .header("Access-Control-Request-Method", "POST")
            .bearer_auth("remote-test-key")
            .send()
            .await
            .unwrap();
        assert!(
            r.headers()
                .keys()
                .all(|k| !k.as_str().starts_with("access-control-")),
            "{:?}",
            r.headers()
        );
    }
    backend.shutdown().await;
}
