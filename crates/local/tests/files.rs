//! File routes over real HTTP: everyday use, multipart transfer, and confinement attacks
//! (`../`, absolute paths, planted symlinks) on every file endpoint.

use crate::common;

use common::upload;
use reqwest::Method;
use serde_json::{json, Value};
use std::os::unix::fs::PermissionsExt;

/// Splits a multipart body into (name, filename, bytes) parts; also says whether the
/// closing boundary was there.
fn parts(body: &[u8], boundary: &str) -> (Vec<(String, String, Vec<u8>)>, bool) {
    let delim = format!("--{boundary}");
    let mut out = Vec::new();
    let mut rest = body;
    let find = |hay: &[u8], needle: &[u8]| hay.windows(needle.len()).position(|w| w == needle);
    let mut closed = false;
    while let Some(i) = find(rest, delim.as_bytes()) {
        rest = &rest[i + delim.len()..];
        if rest.starts_with(b"--") {
            closed = true;
            break;
        }
        let head_end = find(rest, b"\r\n\r\n").unwrap();
        let head = String::from_utf8_lossy(&rest[..head_end]).to_string();
        let len: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("Content-Length: "))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let name = head
            .split("name=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string();
        let filename = head
            .split("filename=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .to_string();
        let data = rest[head_end + 4..head_end + 4 + len].to_vec();
        out.push((name, filename, data));
        rest = &rest[head_end + 4 + len..];
    }
    (out, closed)
}

#[tokio::test]
async fn everyday_file_operations() {
    let env = common::start().await;
    let id = env.sandbox().await;
    let (s, v) = upload(
        &env,
        &id,
        &[
            ("/home/daytona/project/hello.txt", b"hello world\n".to_vec()),
            ("project/sub/b.txt", b"second hello\nno\n".to_vec()),
        ],
    )
    .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["files"][1]["bytes"], 16);

    let (s, v) = env
        .json(Method::GET, &env.tb(&id, "/files?path=project"), None)
        .await;
    assert_eq!(s, 200);
    let names: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["hello.txt", "sub"]);
    assert_eq!(v[1]["isDir"], true);
    let (_, v) = env
        .json(
            Method::GET,
            &env.tb(&id, "/files?path=project&depth=2"),
            None,
        )
        .await;
    let paths: Vec<&str> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        paths,
        [
            "/home/daytona/project/hello.txt",
            "/home/daytona/project/sub",
            "/home/daytona/project/sub/b.txt"
        ]
    );
    let (s, _) = env
        .json(
            Method::GET,
            &env.tb(&id, "/files?path=project/hello.txt"),
            None,
        )
        .await;
    assert_eq!(s, 400);
    assert!(v[1]["mode"].as_str().unwrap().starts_with('d'));

    let (_, v) = env
        .json(
            Method::GET,
            &env.tb(&id, "/files/info?path=/home/daytona/project/hello.txt"),
            None,
        )
        .await;
    assert_eq!(v["size"], 12);
    assert_eq!(v["name"], "hello.txt");
    assert!(v["modTime"].as_str().unwrap().ends_with("UTC"));

    let (_, v) = env
        .json(
            Method::GET,
            &env.tb(&id, "/files/find?path=project&pattern=hello"),
            None,
        )
        .await;
    let mut found: Vec<(String, u64)> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["file"].as_str().unwrap().to_string(),
                m["line"].as_u64().unwrap(),
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("/home/daytona/project/hello.txt".to_string(), 1),
            ("/home/daytona/project/sub/b.txt".to_string(), 1)
        ]
    );
    let (_, v) = env
        .json(
            Method::GET,
            &env.tb(&id, "/files/search?path=project&pattern=*.txt"),
            None,
        )
        .await;
    assert_eq!(v["files"].as_array().unwrap().len(), 2);

    let (_, v) = env
        .json(
            Method::POST,
            &env.tb(&id, "/files/replace"),
            Some(json!({"files": ["project/hello.txt", "missing.txt"], "pattern": "world", "newValue": "forge"})),
        )
        .await;
    assert_eq!(v[0]["success"], true);
    assert_eq!(v[1]["success"], false);
    let res = env
        .req(
            Method::GET,
            &env.tb(&id, "/files/download?path=project/hello.txt"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.bytes().await.unwrap().as_ref(), b"hello forge\n");

    let (s, _) = env
        .json(
            Method::POST,
            &env.tb(
                &id,
                "/files/permissions?path=project/hello.txt&mode=600&owner=daytona&group=daytona",
            ),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let mode = std::fs::metadata(env.root(&id).join("home/daytona/project/hello.txt"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);

    let (s, _) = env
        .json(
            Method::POST,
            &env.tb(&id, "/files/folder?path=made/deep&mode=700"),
            None,
        )
        .await;
    assert_eq!(s, 201);
    assert!(env.root(&id).join("home/daytona/made/deep").is_dir());

    let (s, _) = env
        .json(
            Method::POST,
            &env.tb(
                &id,
                "/files/move?source=project/hello.txt&destination=project/moved.txt",
            ),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert!(env
        .root(&id)
        .join("home/daytona/project/moved.txt")
        .is_file());

    // bulk download: one file part, one error part, closing boundary
    let res = env
        .req(Method::POST, &env.tb(&id, "/files/bulk-download"))
        .json(&json!({"paths": ["project/moved.txt", "/nope.txt"]}))
        .send()
        .await
        .unwrap();
    let ct = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.contains("boundary=DAYTONA-FILE-BOUNDARY"));
    let body = res.bytes().await.unwrap();
    let (ps, closed) = parts(&body, "DAYTONA-FILE-BOUNDARY");
    assert!(closed);
    assert_eq!(ps.len(), 2);
    assert_eq!(
        (ps[0].0.as_str(), ps[0].1.as_str()),
        ("file", "project/moved.txt")
    );
    assert_eq!(ps[0].2, b"hello forge\n");
    assert_eq!((ps[1].0.as_str(), ps[1].1.as_str()), ("error", "/nope.txt"));
    let err: Value = serde_json::from_slice(&ps[1].2).unwrap();
    assert_eq!(err["code"], "FILE_NOT_FOUND");
    let (s, v) = env
        .json(
            Method::POST,
            &env.tb(&id, "/files/bulk-download"),
            Some(json!({"paths": []})),
        )
        .await;
    assert_eq!(s, 400);
    assert!(v["error"].is_string());

    // delete: a folder needs recursive
    let (s, _) = env
        .json(Method::DELETE, &env.tb(&id, "/files?path=project"), None)
        .await;
    assert_eq!(s, 400);
    let (s, _) = env
        .json(
            Method::DELETE,
            &env.tb(&id, "/files?path=project&recursive=true"),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let (s, v) = env
        .json(Method::GET, &env.tb(&id, "/files/info?path=project"), None)
        .await;
    assert_eq!((s, v["code"].as_str()), (404, Some("FILE_NOT_FOUND")));
}

#[tokio::test]
async fn large_upload_and_download_stream_through() {
    let env = common::start().await;
    let id = env.sandbox().await;
    let big: Vec<u8> = (0..(24 * 1024 * 1024u32))
        .map(|i| (i % 251) as u8)
        .collect();
    let (s, v) = upload(&env, &id, &[("big.bin", big.clone())]).await;
    assert_eq!(s, 200, "{v}");
    let res = env
        .req(Method::POST, &env.tb(&id, "/files/bulk-download"))
        .json(&json!({"paths": ["big.bin"]}))
        .send()
        .await
        .unwrap();
    let body = res.bytes().await.unwrap();
    let (ps, closed) = parts(&body, "DAYTONA-FILE-BOUNDARY");
    assert!(closed);
    assert!(ps[0].2 == big);
}

struct Outside {
    _dir: tempfile::TempDir,
    dir: std::path::PathBuf,
    secret: std::path::PathBuf,
}

impl Outside {
    fn new() -> Outside {
        let d = tempfile::tempdir().unwrap();
        let dir = std::fs::canonicalize(d.path()).unwrap();
        let secret = dir.join("secret.txt");
        std::fs::write(&secret, "TOP SECRET\n").unwrap();
        std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o640)).unwrap();
        Outside {
            _dir: d,
            dir,
            secret,
        }
    }
    fn intact(&self, what: &str) {
        assert_eq!(
            std::fs::read_to_string(&self.secret).unwrap(),
            "TOP SECRET\n",
            "{what}"
        );
        let mode = std::fs::metadata(&self.secret)
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o640, "{what}");
        let names: Vec<String> = std::fs::read_dir(&self.dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["secret.txt"], "{what}");
    }
}

#[tokio::test]
async fn confinement_holds_on_every_file_endpoint() {
    let env = common::start().await;
    let id = env.sandbox().await;
    let out = Outside::new();
    let home = env.root(&id).join("home/daytona");
    let plant = || {
        for (target, name) in [
            (out.dir.clone(), "dirlink"),
            (out.secret.clone(), "filelink"),
            ("../../../../../../../../../../../..".into(), "uplink"),
        ] {
            let link = home.join(name);
            if std::fs::symlink_metadata(&link).is_ok_and(|m| !m.file_type().is_symlink()) {
                let _ = std::fs::remove_file(&link);
                let _ = std::fs::remove_dir_all(&link);
            }
            if std::fs::symlink_metadata(&link).is_err() {
                std::os::unix::fs::symlink(&target, &link).unwrap();
            }
        }
    };
    let dir = out.dir.to_string_lossy().to_string();
    let rel_up = format!("../../../../../../../../../../../..{dir}");
    let attacks_dir = vec![
        rel_up.clone(),
        dir.clone(),
        "dirlink".to_string(),
        format!("uplink{dir}"),
        format!("/home/daytona/dirlink/../dirlink"),
    ];
    let attacks_file: Vec<String> = attacks_dir
        .iter()
        .map(|d| format!("{d}/secret.txt"))
        .chain(["filelink".to_string()])
        .collect();
    let enc = |s: &str| {
        s.replace('%', "%25")
            .replace('&', "%26")
            .replace('#', "%23")
    };

    for a in &attacks_dir {
        plant();
        let (s, v) = env
            .json(
                Method::GET,
                &env.tb(&id, &format!("/files?path={}", enc(a))),
                None,
            )
            .await;
        assert!(!v.to_string().contains("secret.txt"), "list {a}: {s} {v}");
        let (_, v) = env
            .json(
                Method::GET,
                &env.tb(&id, &format!("/files/find?path={}&pattern=SECRET", enc(a))),
                None,
            )
            .await;
        assert!(!v.to_string().contains("TOP SECRET"), "find {a}: {v}");
        let (_, v) = env
            .json(
                Method::GET,
                &env.tb(&id, &format!("/files/search?path={}&pattern=*", enc(a))),
                None,
            )
            .await;
        assert!(!v.to_string().contains("secret.txt"), "search {a}: {v}");
        env.json(
            Method::POST,
            &env.tb(
                &id,
                &format!("/files/folder?path={}/newdir&mode=755", enc(a)),
            ),
            None,
        )
        .await;
        out.intact(&format!("folder {a}"));
        env.json(
            Method::DELETE,
            &env.tb(&id, &format!("/files?path={}&recursive=true", enc(a))),
            None,
        )
        .await;
        out.intact(&format!("delete dir {a}"));
        upload(&env, &id, &[(&format!("{a}/planted.txt"), b"x".to_vec())]).await;
        out.intact(&format!("upload into {a}"));
        env.json(
            Method::POST,
            &env.tb(
                &id,
                &format!(
                    "/files/move?source=made.txt&destination={}/moved.txt",
                    enc(a)
                ),
            ),
            None,
        )
        .await;
        out.intact(&format!("move into {a}"));
    }
    for a in &attacks_file {
        plant();
        let (_, v) = env
            .json(
                Method::GET,
                &env.tb(&id, &format!("/files/info?path={}", enc(a))),
                None,
            )
            .await;
        assert_ne!(v["size"], 11, "info {a}: {v}");
        let res = env
            .req(
                Method::GET,
                &env.tb(&id, &format!("/files/download?path={}", enc(a))),
            )
            .send()
            .await
            .unwrap();
        let body = res.bytes().await.unwrap();
        assert!(
            !String::from_utf8_lossy(&body).contains("TOP SECRET"),
            "download {a}"
        );
        let res = env
            .req(Method::POST, &env.tb(&id, "/files/bulk-download"))
            .json(&json!({"paths": [a]}))
            .send()
            .await
            .unwrap();
        let body = res.bytes().await.unwrap();
        assert!(
            !String::from_utf8_lossy(&body).contains("TOP SECRET"),
            "bulk-download {a}"
        );
        env.json(
            Method::POST,
            &env.tb(&id, "/files/replace"),
            Some(json!({"files": [a], "pattern": "TOP", "newValue": "NOT"})),
        )
        .await;
        env.json(
            Method::POST,
            &env.tb(&id, &format!("/files/permissions?path={}&mode=777", enc(a))),
            None,
        )
        .await;
        env.json(
            Method::DELETE,
            &env.tb(&id, &format!("/files?path={}", enc(a))),
            None,
        )
        .await;
        upload(&env, &id, &[(a.as_str(), b"overwritten".to_vec())]).await;
        std::fs::write(home.join("made.txt"), "m").unwrap();
        env.json(
            Method::POST,
            &env.tb(
                &id,
                &format!("/files/move?source={}&destination=stolen.txt", enc(a)),
            ),
            None,
        )
        .await;
        out.intact(&format!("file ops on {a}"));
        let _ = std::fs::remove_file(home.join("stolen.txt"));
    }
    // a command's cwd resolves the same way: an escaping cwd stays inside the sandbox, and
    // the command sees sandbox paths only
    let (_, v) = env
        .exec(&id, json!({"command": "pwd", "cwd": rel_up}))
        .await;
    let pwd = v["result"].as_str().unwrap_or("");
    assert!(
        !pwd.contains(env.home.path().to_str().unwrap())
            && (pwd.starts_with('/') || v["exitCode"] != 0),
        "{v}"
    );
}

#[tokio::test]
async fn hostile_paths_are_refused_cleanly() {
    let env = common::start().await;
    let id = env.sandbox().await;
    let (s, v) = env
        .json(Method::GET, &env.tb(&id, "/files/info?path=a%00b"), None)
        .await;
    assert_eq!((s, v["code"].as_str()), (400, Some("INVALID_FILE_PATH")));
    let home = env.root(&id).join("home/daytona");
    std::os::unix::fs::symlink("loop2", home.join("loop1")).unwrap();
    std::os::unix::fs::symlink("loop1", home.join("loop2")).unwrap();
    let (s, _) = env
        .json(
            Method::GET,
            &env.tb(&id, "/files/download?path=loop1"),
            None,
        )
        .await;
    assert_eq!(s, 400);
    let long = "a/".repeat(5000);
    let (s, _) = env
        .json(
            Method::GET,
            &env.tb(&id, &format!("/files/info?path={long}")),
            None,
        )
        .await;
    assert!(s == 404 || s == 400 || s == 414 || s == 431, "{s}");
    let (s, _) = env
        .json(
            Method::DELETE,
            &env.tb(&id, "/files?path=/&recursive=true"),
            None,
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = env
        .json(
            Method::DELETE,
            &env.tb(&id, "/files?path=../../..&recursive=true"),
            None,
        )
        .await;
    assert_eq!(s, 400);
    assert!(home.is_dir());
}

/// The file routes see what the sandbox's user sees: this machine's toolchain and `/etc`
/// read-only, with the sandbox's own `passwd` on top, and nothing the user may not read
/// (`/etc/shadow`), though the backend itself could.
#[tokio::test]
async fn the_machines_files_are_served_as_the_sandbox_sees_them() {
    let env = common::start().await;
    let id = env.sandbox().await;
    let get = |path: &str| {
        env.req(
            Method::GET,
            &env.tb(&id, &format!("/files/download?path={path}")),
        )
        .send()
    };
    let res = get("/etc/passwd").await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert!(res.text().await.unwrap().contains("daytona:x:1000:1000"));
    let res = get("/usr/bin/env").await.unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let res = get("/etc/shadow").await.unwrap();
    assert_eq!(res.status().as_u16(), 403, "{}", res.text().await.unwrap());
    // Nothing can be written there.
    let (s, v) = common::upload(&env, &id, &[("/usr/bin/planted", b"x".to_vec())]).await;
    assert_ne!(s, 200, "{v}");
    assert!(!std::path::Path::new("/usr/bin/planted").exists());
    let (s, _) = env
        .json(
            Method::DELETE,
            &env.tb(&id, "/files?path=/usr/bin/env"),
            None,
        )
        .await;
    assert_eq!(s, 403);
    assert!(std::path::Path::new("/usr/bin/env").exists());
}

#[tokio::test]
async fn an_upload_through_a_symlink_writes_where_it_points() {
    let env = common::start().await;
    let id = env.sandbox().await;
    let home = env.root(&id).join("home/daytona");
    std::fs::create_dir_all(home.join("sub")).unwrap();
    // A dangling link, as `ln -s sub/target.txt lnk` inside would make.
    std::os::unix::fs::symlink("sub/target.txt", home.join("lnk")).unwrap();
    let (s, v) = common::upload(&env, &id, &[("/home/daytona/lnk", b"through".to_vec())]).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        std::fs::read_to_string(home.join("sub/target.txt")).unwrap(),
        "through"
    );
    assert!(std::fs::symlink_metadata(home.join("lnk"))
        .unwrap()
        .file_type()
        .is_symlink());
    // A move's destination link is replaced, not followed.
    std::fs::write(home.join("a.txt"), "a").unwrap();
    let (s, _) = env
        .json(
            reqwest::Method::POST,
            &env.tb(&id, "/files/move?source=a.txt&destination=lnk"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(std::fs::read_to_string(home.join("lnk")).unwrap(), "a");
    assert_eq!(
        std::fs::read_to_string(home.join("sub/target.txt")).unwrap(),
        "through"
    );
}
