//! The preview proxy: token enforcement, 502 when nothing listens, streaming, WebSocket pass-through.

mod common;

use axum::extract::ws::{Message as WsMessage, WebSocketUpgrade};
use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// A dev server stand-in on a free port: `/` says hello (and echoes the Host and any token
/// header it got), `/stream` answers in chunks, `/ws` echoes WebSocket text.
async fn upstream() -> u16 {
    let app = axum::Router::new()
        .route(
            "/",
            axum::routing::get(
                |headers: axum::http::HeaderMap, uri: axum::http::Uri| async move {
                    let leaked = headers.contains_key("x-daytona-preview-token")
                        || uri
                            .query()
                            .unwrap_or("")
                            .contains("DAYTONA_SANDBOX_AUTH_KEY");
                    format!("hello leaked={leaked} query={}", uri.query().unwrap_or(""))
                },
            ),
        )
        .route(
            "/stream",
            axum::routing::get(|| async {
                let chunks =
                    futures_util::stream::iter((0..5).map(|i| {
                        Ok::<_, std::io::Error>(bytes::Bytes::from(format!("chunk{i};")))
                    }))
                    .then(|c| async move {
                        tokio::time::sleep(Duration::from_millis(20)).await;
                        c
                    });
                axum::body::Body::from_stream(chunks)
            }),
        )
        .route(
            "/ws",
            axum::routing::get(|ws: WebSocketUpgrade| async move {
                ws.on_upgrade(|mut socket| async move {
                    while let Some(Ok(WsMessage::Text(t))) = socket.recv().await {
                        if socket
                            .send(WsMessage::Text(format!("echo:{t}").into()))
                            .await
                            .is_err()
                        {
                            break;
                        }
                    }
                })
            }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    port
}

#[tokio::test]
async fn private_previews_need_the_token_and_pass_everything_through() {
    let env = common::start().await;
    let id = env.sandbox().await;
    let port = upstream().await;
    let (_, link) = env
        .json(
            Method::GET,
            &env.api(&format!("/sandbox/{id}/ports/{port}/preview-url")),
            None,
        )
        .await;
    let url = link["url"].as_str().unwrap().to_string();
    let token = link["token"].as_str().unwrap().to_string();
    let (_, again) = env
        .json(
            Method::GET,
            &env.api(&format!("/sandbox/{id}/ports/{port}/preview-url")),
            None,
        )
        .await;
    assert_eq!(
        again["url"].as_str(),
        Some(url.as_str()),
        "one listener per sandbox port"
    );

    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    // no token, wrong token: 307 to the auth URL
    for t in [None, Some("wrong")] {
        let mut r = http.get(&url);
        if let Some(t) = t {
            r = r.header("X-Daytona-Preview-Token", t);
        }
        let res = r.send().await.unwrap();
        assert_eq!(res.status().as_u16(), 307);
        assert!(res.headers().contains_key("location"));
    }
    // header token: through, and the token is not forwarded
    let res = http
        .get(&url)
        .header("X-Daytona-Preview-Token", &token)
        .header("X-Daytona-Skip-Preview-Warning", "true")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(res.text().await.unwrap(), "hello leaked=false query=");
    // query token: through, stripped, and a cookie for the next requests
    let res = http
        .get(format!("{url}/?a=1&DAYTONA_SANDBOX_AUTH_KEY={token}&b=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let cookie = res.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert_eq!(
        res.text().await.unwrap(),
        "hello leaked=false query=a=1&b=2"
    );
    let res = http
        .get(&url)
        .header("Cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    // the API key works too
    let res = http.get(&url).bearer_auth("test-key").send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);

    // streamed bodies arrive whole
    let res = http
        .get(format!("{url}/stream"))
        .header("X-Daytona-Preview-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.text().await.unwrap(),
        "chunk0;chunk1;chunk2;chunk3;chunk4;"
    );

    // WebSocket (HMR) passes through
    let mut req = format!("{}/ws", url.replace("http://", "ws://"))
        .into_client_request()
        .unwrap();
    req.headers_mut()
        .insert("X-Daytona-Preview-Token", token.parse().unwrap());
    let (mut ws, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async(req),
    )
    .await
    .unwrap()
    .unwrap();
    ws.send(Message::Text("ping".into())).await.unwrap();
    let got = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got, Message::Text("echo:ping".into()));

    // nothing listening: 502
    let dead = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead_port = dead.local_addr().unwrap().port();
    drop(dead);
    let (_, link) = env
        .json(
            Method::GET,
            &env.api(&format!("/sandbox/{id}/ports/{dead_port}/preview-url")),
            None,
        )
        .await;
    let res = http
        .get(link["url"].as_str().unwrap())
        .header("X-Daytona-Preview-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 502);

    // a stopped sandbox: 502; after start the same URL works with the new token
    env.json(Method::POST, &env.api(&format!("/sandbox/{id}/stop")), None)
        .await;
    let res = http
        .get(&url)
        .header("X-Daytona-Preview-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 502);
    env.json(
        Method::POST,
        &env.api(&format!("/sandbox/{id}/start")),
        None,
    )
    .await;
    let (_, link) = env
        .json(
            Method::GET,
            &env.api(&format!("/sandbox/{id}/ports/{port}/preview-url")),
            None,
        )
        .await;
    assert_eq!(link["url"].as_str(), Some(url.as_str()));
    assert_ne!(
        link["token"].as_str(),
        Some(token.as_str()),
        "a new token after a restart"
    );
    let res = http
        .get(&url)
        .header("X-Daytona-Preview-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status().as_u16(),
        307,
        "the old token no longer opens it"
    );
    let res = http
        .get(&url)
        .header("X-Daytona-Preview-Token", link["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);

    // delete closes the listener
    env.json(Method::DELETE, &env.api(&format!("/sandbox/{id}")), None)
        .await;
    assert!(http.get(&url).send().await.is_err());
}

#[tokio::test]
async fn public_previews_need_no_token() {
    let env = common::start().await;
    let v = env.create(json!({"public": true, "env": {}})).await;
    let id = v["id"].as_str().unwrap();
    let port = upstream().await;
    let (_, link) = env
        .json(
            Method::GET,
            &env.api(&format!("/sandbox/{id}/ports/{port}/preview-url")),
            None,
        )
        .await;
    let res = reqwest::get(link["url"].as_str().unwrap()).await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.text().await.unwrap().starts_with("hello"));
}
