//! `domainAllowList` through the client, against the embedded backend's containers: a sandbox
//! created with it reaches the listed name (plain HTTP, and HTTPS with a full TLS handshake
//! through the backend's SNI proxy, the server's certificate checked by curl) and nothing else;
//! `update_network_settings` changes and lifts it on the running sandbox; a bad list is a typed
//! error naming `domainAllowList`, sent nowhere.
//!
//! The servers standing for the names run on this machine's loopback; the backend's proxies
//! are told where (`egress_hosts`, the configuration a local mirror uses, which no sandbox can
//! change). That is the only way a test reaches them: the proxies refuse names that *resolve*
//! to loopback, and this machine has no other network.

use crate::common::{bounded, Backend};
use forge_daytona::{CallOptions, CreateParams, ExecOptions, NetworkSettings, UploadSource};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::rustls;

/// A server on 127.0.0.1 answering every request with its name, counting them.
async fn site(name: &'static str) -> (SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = hits.clone();
    let app = axum::Router::new().fallback(move || {
        counted.fetch_add(1, Ordering::SeqCst);
        async move { name }
    });
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, hits)
}

/// A self-signed certificate for `name` (PEM certificate, PEM key), made by this machine's
/// `openssl`.
fn certificate(dir: &std::path::Path, name: &str) -> (Vec<u8>, Vec<u8>) {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    let out = std::process::Command::new("openssl")
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt"])
        .args(["ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .arg("-keyout")
        .arg(&key)
        .arg("-out")
        .arg(&cert)
        .args(["-subj", &format!("/CN={name}")])
        .args(["-addext", &format!("subjectAltName=DNS:{name}")])
        .output()
        .expect("openssl runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (std::fs::read(cert).unwrap(), std::fs::read(key).unwrap())
}

/// A TLS server on 127.0.0.1 with that certificate: it completes the handshake and answers an
/// HTTP request with the server name the client asked for.
async fn tls_site(cert: &[u8], key: &[u8]) -> SocketAddr {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let certs = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .unwrap();
    let key = PrivateKeyDer::from_pem_slice(key).unwrap();
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(certs, key)
    .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((conn, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(conn).await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 4096];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
                        _ => return,
                    }
                }
                let body = format!("tls {}", tls.get_ref().1.server_name().unwrap_or("-"));
                let reply = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = tls.write_all(reply.as_bytes()).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_domain_allow_list_is_created_changed_and_lifted_through_the_client() {
    bounded(async {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = certificate(dir.path(), "allowed.test");
        let tls = tls_site(&cert, &key).await;
        let (allowed, _) = site("allowed").await;
        let (other, other_hits) = site("other").await;
        let b = Backend::start_with(|c| {
            for (name, port, to) in [
                ("allowed.test", 80, allowed),
                ("allowed.test", 443, tls),
                ("other.test", 80, other),
            ] {
                c.egress_hosts.insert((name.into(), port), to);
            }
        })
        .await;
        if b.backend.isolation().level != "container" {
            eprintln!("skipped: sandboxes are not containers here");
            return;
        }
        let (c, o) = (&b.client, CallOptions::new());

        // Bad lists are refused by the client, naming the field, before anything is sent.
        let many: Vec<String> = (0..65).map(|i| format!("n{i}.test")).collect();
        for bad in [
            vec!["http://x.test/".to_string()],
            vec!["a.test,b.test".into()],
            vec!["*".into()],
            many,
        ] {
            let params = CreateParams {
                domain_allow_list: Some(bad.clone()),
                ..Default::default()
            };
            let e = c.create(&params, &o).await.unwrap_err();
            assert_eq!(e.code(), "DAYTONA_INVALID_ARGUMENT", "{bad:?}: {e}");
            assert!(e.to_string().contains("domainAllowList"), "{e}");
        }
        let none = c.list(&forge_daytona::ListQuery::default(), &o).await;
        assert!(none.unwrap().items.is_empty(), "nothing was created");

        let s = c
            .create(
                &CreateParams {
                    domain_allow_list: Some(vec!["Allowed.test.".into()]),
                    ..Default::default()
                },
                &o,
            )
            .await
            .unwrap();
        assert_eq!(s.domain_allow_list.as_deref(), Some("allowed.test"));
        let tb = c.toolbox(&s).await.unwrap();
        tb.fs()
            .upload_file(
                UploadSource::Bytes(cert.clone().into()),
                "/home/daytona/ca.pem",
                &o,
            )
            .await
            .unwrap();
        let sh = |cmd: &'static str| {
            let tb = tb.clone();
            async move {
                let r = tb
                    .process()
                    .exec(cmd, &ExecOptions::default(), &CallOptions::new())
                    .await
                    .unwrap();
                r.stdout.trim_end().to_owned()
            }
        };

        // The listed name: plain HTTP, and HTTPS with the certificate checked against the name.
        assert_eq!(sh("curl -s -m 20 http://allowed.test/").await, "allowed");
        assert_eq!(
            sh("curl -sS -m 20 --cacert ca.pem https://allowed.test/ 2>&1").await,
            "tls allowed.test"
        );
        // Anything else: not resolved, not reached by name or through the allowed name.
        assert_eq!(
            sh("getent hosts other.test || echo unresolved").await,
            "unresolved"
        );
        assert!(
            sh("curl -s -m 20 -H 'Host: other.test' http://allowed.test/")
                .await
                .contains("other.test is not in this sandbox's domainAllowList")
        );
        assert_eq!(other_hits.load(Ordering::SeqCst), 0);

        // Changed on the running sandbox, then lifted.
        let set = |list: Vec<&str>| NetworkSettings {
            domain_allow_list: Some(list.into_iter().map(str::to_owned).collect()),
            ..Default::default()
        };
        let changed = c
            .update_network_settings(&s.id, &set(vec!["other.test"]), &o)
            .await
            .unwrap();
        assert_eq!(changed.domain_allow_list.as_deref(), Some("other.test"));
        assert_eq!(sh("curl -s -m 20 http://other.test/").await, "other");
        assert_eq!(
            sh("getent hosts allowed.test || echo unresolved").await,
            "unresolved"
        );
        let e = c
            .update_network_settings(&s.id, &set(vec!["bad name"]), &o)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "DAYTONA_INVALID_ARGUMENT", "{e}");
        assert!(e.to_string().contains("domainAllowList"), "{e}");
        let e = c
            .update_network_settings(&s.id, &NetworkSettings::default(), &o)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "DAYTONA_INVALID_ARGUMENT", "{e}");
        let lifted = c
            .update_network_settings(&s.id, &set(vec![]), &o)
            .await
            .unwrap();
        assert_eq!(lifted.domain_allow_list, None);
    })
    .await;
}
