//! The file routes see a sandbox's volumes where its commands do: a file uploaded into a
//! mounted volume is in the volume (another sandbox mounting it reads it), a `subpath` mount
//! serves that folder, and a link in the volume never points a mount out of it.

use crate::common;

use reqwest::Method;
use serde_json::{json, Value};

async fn sh(env: &common::Env, id: &str, command: &str) -> String {
    let (s, v) = env.exec(id, json!({ "command": command })).await;
    assert_eq!(
        (s, v["exitCode"].as_i64()),
        (200, Some(0)),
        "{command}: {v}"
    );
    v["result"].as_str().unwrap_or_default().to_string()
}

async fn download(env: &common::Env, id: &str, path: &str) -> (u16, String) {
    let res = env
        .req(Method::GET, &env.tb(id, "/files/download"))
        .query(&[("path", path)])
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap_or_default())
}

async fn mounting(env: &common::Env, volume: &Value, at: &str, subpath: Option<&str>) -> String {
    let mut mount = json!({ "volumeId": volume["id"], "mountPath": at });
    if let Some(s) = subpath {
        mount["subpath"] = json!(s);
    }
    let v = env.create(json!({ "volumes": [mount] })).await;
    v["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn file_routes_read_and_write_the_mounted_volume() {
    let env = common::start().await;
    let (s, vol) = env
        .json(
            Method::POST,
            &env.api("/volumes"),
            Some(json!({"name": "files"})),
        )
        .await;
    assert_eq!(s, 200, "{vol}");
    let a = mounting(&env, &vol, "/home/daytona/shared", None).await;
    let b = mounting(&env, &vol, "/mnt/data", None).await;

    // Uploaded through A's file routes: in the volume, for B's commands and file routes.
    let (s, v) = common::upload(
        &env,
        &a,
        &[(
            "/home/daytona/shared/sub/note.txt",
            b"from a's upload".to_vec(),
        )],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        sh(&env, &b, "cat /mnt/data/sub/note.txt").await,
        "from a's upload"
    );
    assert_eq!(
        download(&env, &b, "/mnt/data/sub/note.txt").await,
        (200, "from a's upload".into())
    );
    // Written by B's command: A's file routes read it; relative paths work too.
    sh(&env, &b, "echo from b > /mnt/data/back.txt").await;
    assert_eq!(
        download(&env, &a, "shared/back.txt").await,
        (200, "from b\n".into())
    );
    // The mount point itself cannot be moved or deleted.
    let res = env
        .req(Method::DELETE, &env.tb(&a, "/files"))
        .query(&[("path", "/home/daytona/shared"), ("recursive", "true")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 400);
    assert_eq!(sh(&env, &b, "cat /mnt/data/back.txt").await, "from b\n");

    // A subpath mount serves that folder of the volume.
    let c = mounting(&env, &vol, "/home/daytona/sub", Some("sub")).await;
    assert_eq!(
        download(&env, &c, "/home/daytona/sub/note.txt").await,
        (200, "from a's upload".into())
    );

    // A link the sandbox made in the volume does not take a subpath mount's file routes out
    // of the volume. (The container's own mount still follows it: a known limit, see the
    // README's volume row.)
    sh(&env, &a, "ln -s /etc /home/daytona/shared/link").await;
    let d = env
        .json(
            Method::POST,
            &env.api("/sandbox"),
            Some(json!({"volumes": [{"volumeId": vol["id"], "mountPath": "/home/daytona/l", "subpath": "link"}]})),
        )
        .await;
    if d.0 == 200 {
        let d = d.1["id"].as_str().unwrap().to_string();
        let (s, body) = download(&env, &d, "/home/daytona/l/hostname").await;
        assert_ne!(
            s, 200,
            "the host's /etc through a link in the volume: {body}"
        );
    }
}
