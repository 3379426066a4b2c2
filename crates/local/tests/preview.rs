//! The preview proxy: token enforcement, 502 when nothing listens, streaming, WebSocket pass-through.

use crate::common;

use futures_util::{SinkExt, StreamExt};
use reqwest::Method;
use serde_json::json;
use std::time::Duration;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::Message;

/// A port number for a dev server in a sandbox (any: each sandbox has all ports to itself).
const PORT: u16 = 3000;

/// A decoy on this machine: the port of a preview must never reach it.
async fn decoy() -> u16 {
    let app = axum::Router::new().fallback(|| async { "decoy" });
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
    let port = PORT;
    env.serve(&id, port).await;
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
    let got = tokio::time::timeout(Duration::from_mins(1), ws.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(got, Message::Text("echo:ping".into()));

    // nothing of the sandbox listening: 502, even with a server of this machine on that port
    let dead_port = decoy().await;
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
    env.lifecycle(&id, "stop").await;
    let res = http
        .get(&url)
        .header("X-Daytona-Preview-Token", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 502);
    env.lifecycle(&id, "start").await;
    env.serve(&id, port).await;
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
    let port = PORT;
    env.serve(id, port).await;
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
