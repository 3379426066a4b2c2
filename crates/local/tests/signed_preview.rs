//! Signed preview URLs over real HTTP: no header needed, bound to one sandbox and one port,
//! ended by expiry and by the expire call, the token never forwarded to the dev server.

use crate::common;

use reqwest::Method;
use serde_json::Value;
use std::time::Duration;

/// `GET …/signed-preview-url` of (sandbox, port), asserting a 200.
async fn signed(env: &common::Env, id: &str, port: u16, expires: Option<u64>) -> Value {
    let q = expires.map_or(String::new(), |s| format!("?expiresInSeconds={s}"));
    let (status, v) = env
        .json(
            Method::GET,
            &env.api(&format!("/sandbox/{id}/ports/{port}/signed-preview-url{q}")),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    v
}

/// The plain preview URL of (sandbox, port).
async fn preview(env: &common::Env, id: &str, port: u16) -> String {
    let (_, v) = env
        .json(
            Method::GET,
            &env.api(&format!("/sandbox/{id}/ports/{port}/preview-url")),
            None,
        )
        .await;
    v["url"].as_str().unwrap().to_string()
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_mins(1))
        .build()
        .unwrap()
}

async fn get(url: &str, cookie: Option<&str>) -> (u16, String) {
    let mut r = http().get(url);
    if let Some(c) = cookie {
        r = r.header("cookie", c);
    }
    let res = r.send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap_or_default())
}

#[tokio::test]
async fn a_signed_url_opens_its_own_preview_only_and_never_reaches_the_dev_server() {
    let env = common::start().await;
    let a = env.sandbox().await;
    let b = env.sandbox().await;
    env.serve(&a, 3000).await;
    env.serve(&a, 3001).await;
    env.serve(&b, 3000).await;

    let link = signed(&env, &a, 3000, Some(3600)).await;
    assert_eq!(link["sandboxId"], a.as_str());
    assert_eq!(link["port"], 3000);
    let token = link["token"].as_str().unwrap().to_string();
    let url = link["url"].as_str().unwrap().to_string();
    assert!(
        url.starts_with("http://127.0.0.1:") && url.ends_with('/'),
        "{url}"
    );
    assert!(url.contains(&token));

    // No header, no cookie: through, and the dev server sees neither the token nor the prefix.
    let res = http().get(&url).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with(&format!("daytona-sandbox-auth-{a}-3000=")))
        .expect("a cookie for this port");
    assert_eq!(res.text().await.unwrap(), "hello leaked=false query=");
    assert_eq!(get(&format!("{url}whoami"), None).await, (200, a.clone()));
    let res = http()
        .get(format!("{url}headers"))
        .header("referer", &url)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let seen = res.text().await.unwrap();
    assert!(
        !seen.contains(&token),
        "the token reached the dev server: {seen}"
    );
    assert!(
        seen.contains("\"referer\""),
        "the referer is kept, cleaned: {seen}"
    );

    // The cookie it set opens this port's own paths (a page's absolute links), not another's.
    let pair = cookie.split(';').next().unwrap().to_string();
    let base = preview(&env, &a, 3000).await;
    assert_eq!(
        get(&format!("{base}/whoami"), Some(&pair)).await,
        (200, a.clone())
    );
    let other_port = preview(&env, &a, 3001).await;
    let moved = pair.replace("-3000=", "-3001=");
    assert_eq!(
        get(&format!("{other_port}/whoami"), Some(&moved)).await.0,
        307
    );

    // Another port of the same sandbox, another sandbox's preview: refused.
    let path = format!("/_daytona_signed/{token}/whoami");
    assert_eq!(get(&format!("{other_port}{path}"), None).await.0, 401);
    let b_base = preview(&env, &b, 3000).await;
    assert_eq!(get(&format!("{b_base}{path}"), None).await.0, 401);
    let b_cookie = format!("daytona-sandbox-auth-{b}-3000={token}");
    assert_eq!(
        get(&format!("{b_base}/whoami"), Some(&b_cookie)).await.0,
        307
    );
    // Expiring it through sandbox B's route leaves it alone.
    let (s, _) = env
        .json(
            Method::POST,
            &env.api(&format!(
                "/sandbox/{b}/ports/3000/signed-preview-url/{token}/expire"
            )),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(get(&url, None).await.0, 200);

    // Expired by its owner: neither the URL nor its cookie opens anything.
    let (s, v) = env
        .json(
            Method::POST,
            &env.api(&format!(
                "/sandbox/{a}/ports/3000/signed-preview-url/{token}/expire"
            )),
            None,
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(get(&url, None).await.0, 401);
    assert_eq!(get(&format!("{base}/whoami"), Some(&pair)).await.0, 307);
    // The plain preview and its token still work.
    let (_, plain) = env
        .json(
            Method::GET,
            &env.api(&format!("/sandbox/{a}/ports/3000/preview-url")),
            None,
        )
        .await;
    let res = http()
        .get(&base)
        .header("x-daytona-preview-token", plain["token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
}

#[tokio::test]
async fn a_signed_url_expires_and_its_lifetime_is_checked() {
    let env = common::start().await;
    let id = env.sandbox().await;
    env.serve(&id, 3000).await;
    for bad in ["0", "86401", "-1", "x"] {
        let (s, v) = env
            .json(
                Method::GET,
                &env.api(&format!(
                    "/sandbox/{id}/ports/3000/signed-preview-url?expiresInSeconds={bad}"
                )),
                None,
            )
            .await;
        assert_eq!(s, 400, "{bad}: {v}");
    }
    let (s, _) = env
        .json(
            Method::GET,
            &env.api("/sandbox/nope/ports/3000/signed-preview-url"),
            None,
        )
        .await;
    assert_eq!(s, 404);
    signed(&env, &id, 3000, Some(86_400)).await;
    signed(&env, &id, 3000, None).await;

    // One second: wait (bounded) until the listener refuses it.
    let link = signed(&env, &id, 3000, Some(1)).await;
    let url = link["url"].as_str().unwrap();
    let mut last = 0;
    for _ in 0..600 {
        last = get(url, None).await.0;
        if last == 401 {
            break;
        }
        assert_eq!(last, 200, "before it expires it opens the preview");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(last, 401, "the signed URL never expired");
}
