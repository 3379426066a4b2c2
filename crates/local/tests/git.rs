//! Git routes against a real smart-HTTP server (testkit: `git http-backend` behind basic auth).

use crate::common;

use reqwest::Method;
use serde_json::json;

const USER: &str = "alice";
const TOKEN: &str = "tok-s3cret-123456";

fn git_out(dir: &std::path::Path, args: &[&str]) -> String {
    // The sandbox's files belong to its user: git on this machine must be told they are safe.
    let out = std::process::Command::new("git")
        .args(["-c", "safe.directory=*"])
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Every file under `dir` (recursively) that contains `needle`.
fn files_containing(dir: &std::path::Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let ft = e.file_type().unwrap();
            if ft.is_dir() {
                stack.push(e.path());
            } else if ft.is_file() {
                let bytes = std::fs::read(e.path()).unwrap_or_default();
                if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    hits.push(e.path().display().to_string());
                }
            }
        }
    }
    hits
}

#[tokio::test]
async fn clone_status_branches_commit_push_pull_with_credentials() {
    let repos = tempfile::tempdir().unwrap();
    let bare = forge_testkit::create_repo(
        repos.path(),
        "app.git",
        "main",
        &[("README.md", "hello\n"), ("src/a.txt", "a\n")],
    )
    .unwrap();
    forge_testkit::add_commit(&bare, "dev", &[("dev.txt", "dev\n")], "dev 1").unwrap();
    forge_testkit::add_commit(&bare, "dev", &[("dev.txt", "dev2\n")], "dev 2").unwrap();
    let server = forge_testkit::GitHttpServer::start(repos.path(), USER, TOKEN)
        .await
        .unwrap();
    // The git server is on this machine's loopback: the sandbox may reach that port only.
    let env = common::start_with(|c| c.host_ports = vec![server.addr().port()]).await;
    let id = env.sandbox().await;
    let url = server.url("app.git");
    let tb = |p: &str| env.tb(&id, p);

    // wrong password: auth error, no secret in the answer
    let (s, v) = env
        .json(
            Method::POST,
            &tb("/git/clone"),
            Some(
                json!({"url": url, "path": "bad", "username": USER, "password": "wrong-pass-999"}),
            ),
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (401, Some("GIT_AUTH_FAILED")),
        "{v}"
    );
    assert!(!v.to_string().contains("wrong-pass-999"));
    // no credentials at all
    let (s, v) = env
        .json(
            Method::POST,
            &tb("/git/clone"),
            Some(json!({"url": url, "path": "bad2"})),
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (401, Some("GIT_AUTH_FAILED")),
        "{v}"
    );
    // unknown repository
    let (s, v) = env
        .json(Method::POST, &tb("/git/clone"), Some(json!({"url": server.url("nope.git"), "path": "bad3", "username": USER, "password": TOKEN})))
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (404, Some("GIT_REPO_NOT_FOUND")),
        "{v}"
    );
    assert!(!v.to_string().contains(TOKEN));

    // clone with credentials in the fields
    let (s, v) = env
        .json(Method::POST, &tb("/git/clone"), Some(json!({"url": url, "path": "workspace/repo", "branch": "main", "username": USER, "password": TOKEN})))
        .await;
    assert_eq!(s, 200, "{v}");
    let repo = env.root(&id).join("home/daytona/workspace/repo");
    assert_eq!(
        std::fs::read_to_string(repo.join("README.md")).unwrap(),
        "hello\n"
    );
    assert!(
        files_containing(&repo.join(".git"), TOKEN).is_empty(),
        "token stored in .git"
    );
    let (_, v) = env
        .exec(
            &id,
            json!({"command": "git remote -v", "cwd": "workspace/repo"}),
        )
        .await;
    assert!(!v["result"].as_str().unwrap().contains(TOKEN));
    assert!(v["result"].as_str().unwrap().contains(&url));

    // guide-style URL with the token inside; branch + depth
    let server_user_url = url.replace("http://", &format!("http://{USER}:{TOKEN}@"));
    let (s, v) = env
        .json(
            Method::POST,
            &tb("/git/clone"),
            Some(json!({"url": server_user_url, "path": "shallow", "branch": "dev", "depth": 1})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let shallow = env.root(&id).join("home/daytona/shallow");
    assert_eq!(git_out(&shallow, &["rev-list", "--count", "HEAD"]), "1");
    assert_eq!(
        std::fs::read_to_string(shallow.join("dev.txt")).unwrap(),
        "dev2\n"
    );
    assert!(files_containing(&shallow.join(".git"), TOKEN).is_empty());
    let (_, v) = env
        .json(Method::GET, &tb("/git/remotes?path=shallow"), None)
        .await;
    assert_eq!(v["remotes"][0]["url"], url);

    // status after edits
    std::fs::write(repo.join("README.md"), "changed\n").unwrap();
    std::fs::write(repo.join("new.txt"), "new\n").unwrap();
    let (s, st) = env
        .json(Method::GET, &tb("/git/status?path=workspace/repo"), None)
        .await;
    assert_eq!(s, 200, "{st}");
    assert_eq!(st["currentBranch"], "main");
    let files = st["fileStatus"].as_array().unwrap();
    assert!(files
        .iter()
        .any(|f| f["name"] == "README.md" && f["worktree"] == "Modified"));
    assert!(files
        .iter()
        .any(|f| f["name"] == "new.txt" && f["worktree"] == "Untracked"));

    // branches
    let p = "workspace/repo";
    let (s, _) = env
        .json(
            Method::POST,
            &tb("/git/branches"),
            Some(json!({"path": p, "name": "feature"})),
        )
        .await;
    assert_eq!(s, 201);
    let (_, b) = env
        .json(Method::GET, &tb(&format!("/git/branches?path={p}")), None)
        .await;
    assert!(b["branches"]
        .as_array()
        .unwrap()
        .iter()
        .any(|x| x == "feature"));
    assert_eq!(b["current"], "feature");
    let (s, v) = env
        .json(
            Method::POST,
            &tb("/git/branches"),
            Some(json!({"path": p, "name": "feature"})),
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (409, Some("GIT_BRANCH_EXISTS")),
        "{v}"
    );
    let (s, _) = env
        .json(
            Method::POST,
            &tb("/git/checkout"),
            Some(json!({"path": p, "branch": "main"})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, v) = env
        .json(
            Method::POST,
            &tb("/git/checkout"),
            Some(json!({"path": p, "branch": "nope"})),
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (404, Some("GIT_BRANCH_NOT_FOUND")),
        "{v}"
    );
    let (s, _) = env
        .json(
            Method::DELETE,
            &tb("/git/branches"),
            Some(json!({"path": p, "name": "feature"})),
        )
        .await;
    assert_eq!(s, 204);
    let (s, v) = env
        .json(
            Method::DELETE,
            &tb("/git/branches"),
            Some(json!({"path": p, "name": "feature"})),
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (404, Some("GIT_BRANCH_NOT_FOUND")),
        "{v}"
    );
    let (s, _) = env
        .json(
            Method::POST,
            &tb("/git/branches"),
            Some(json!({"path": p, "name": "--evil"})),
        )
        .await;
    assert_eq!(s, 400);

    // add, commit, push
    let (s, _) = env
        .json(
            Method::POST,
            &tb("/git/add"),
            Some(json!({"path": p, "files": ["."]})),
        )
        .await;
    assert_eq!(s, 200);
    let (s, c) = env
        .json(
            Method::POST,
            &tb("/git/commit"),
            Some(
                json!({"path": p, "message": "edit", "author": "Bob", "email": "bob@example.com"}),
            ),
        )
        .await;
    assert_eq!(s, 200, "{c}");
    let hash = c["hash"].as_str().unwrap().to_string();
    assert_eq!(hash.len(), 40);
    assert_eq!(
        git_out(&repo, &["log", "-1", "--format=%an <%ae>"]),
        "Bob <bob@example.com>"
    );
    let (s, v) = env
        .json(Method::POST, &tb("/git/push"), Some(json!({"path": p})))
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (401, Some("GIT_AUTH_FAILED")),
        "{v}"
    );
    let (s, v) = env
        .json(
            Method::POST,
            &tb("/git/push"),
            Some(json!({"path": p, "username": USER, "password": TOKEN})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(git_out(&bare, &["rev-parse", "main"]), hash);

    // pull what someone else pushed
    forge_testkit::add_commit(&bare, "main", &[("other.txt", "other\n")], "other").unwrap();
    let (s, v) = env
        .json(
            Method::POST,
            &tb("/git/pull"),
            Some(json!({"path": p, "username": USER, "password": TOKEN})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(
        std::fs::read_to_string(repo.join("other.txt")).unwrap(),
        "other\n"
    );
    assert!(files_containing(&repo.join(".git"), TOKEN).is_empty());

    // rejected push: remote moved on, local diverged
    forge_testkit::add_commit(&bare, "main", &[("x.txt", "x\n")], "remote only").unwrap();
    std::fs::write(repo.join("y.txt"), "y\n").unwrap();
    env.json(
        Method::POST,
        &tb("/git/add"),
        Some(json!({"path": p, "files": ["y.txt"]})),
    )
    .await;
    env.json(
        Method::POST,
        &tb("/git/commit"),
        Some(json!({"path": p, "message": "local", "author": "Bob", "email": "b@e"})),
    )
    .await;
    let (s, v) = env
        .json(
            Method::POST,
            &tb("/git/push"),
            Some(json!({"path": p, "username": USER, "password": TOKEN})),
        )
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (409, Some("GIT_PUSH_REJECTED")),
        "{v}"
    );
    assert!(!v.to_string().contains(TOKEN));

    // cloning onto an existing folder fails with the sandbox path, not the host path
    let (s, v) = env
        .json(
            Method::POST,
            &tb("/git/clone"),
            Some(
                json!({"url": url, "path": "workspace/repo", "username": USER, "password": TOKEN}),
            ),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let msg = v["message"].as_str().unwrap();
    assert!(msg.contains("'/home/daytona/workspace/repo'"), "{msg}");
    assert!(!msg.contains(env.home.path().to_str().unwrap()), "{msg}");

    let (s, v) = env
        .json(Method::GET, &tb("/git/status?path=not-a-repo"), None)
        .await;
    assert_eq!(
        (s, v["code"].as_str()),
        (404, Some("GIT_REPO_NOT_FOUND")),
        "{v}"
    );
    server.shutdown().await;
}

#[tokio::test]
async fn init_config_reset_restore_and_history() {
    let env = common::start().await;
    let id = env.sandbox().await;
    let tb = |p: &str| env.tb(&id, p);
    let (s, v) = env
        .json(
            Method::POST,
            &tb("/git/init"),
            Some(json!({"path": "fresh", "initial_branch": "trunk"})),
        )
        .await;
    assert_eq!(s, 201, "{v}");
    let repo = env.root(&id).join("home/daytona/fresh");
    assert_eq!(
        git_out(&repo, &["symbolic-ref", "--short", "HEAD"]),
        "trunk"
    );

    // global config lives in the sandbox's home, not this user's
    let (s, _) = env
        .json(
            Method::POST,
            &tb("/git/config/user"),
            Some(json!({"name": "Sandy", "email": "s@x.io"})),
        )
        .await;
    assert_eq!(s, 200);
    assert!(
        std::fs::read_to_string(env.root(&id).join("home/daytona/.gitconfig"))
            .unwrap()
            .contains("Sandy")
    );
    let (_, v) = env
        .json(Method::GET, &tb("/git/config?key=user.name"), None)
        .await;
    assert_eq!(v["value"], "Sandy");
    let (_, v) = env
        .json(Method::GET, &tb("/git/config?key=user.nothing"), None)
        .await;
    assert!(v["value"].is_null());
    let (s, _) = env
        .json(Method::POST, &tb("/git/config"), Some(json!({"key": "core.autocrlf", "value": "false", "scope": "local", "path": "fresh"})))
        .await;
    assert_eq!(s, 200);
    let (s, _) = env
        .json(
            Method::POST,
            &tb("/git/config"),
            Some(json!({"key": "a.b", "value": "c", "scope": "system"})),
        )
        .await;
    assert_eq!(s, 400);

    std::fs::write(repo.join("a.txt"), "one\n").unwrap();
    env.json(
        Method::POST,
        &tb("/git/add"),
        Some(json!({"path": "fresh", "files": ["a.txt"]})),
    )
    .await;
    let (s, c1) = env
        .json(
            Method::POST,
            &tb("/git/commit"),
            Some(json!({"path": "fresh", "message": "first", "author": "", "email": ""})),
        )
        .await;
    assert_eq!(s, 200, "{c1}");
    assert_eq!(git_out(&repo, &["log", "-1", "--format=%an"]), "daytona");
    std::fs::write(repo.join("a.txt"), "two\n").unwrap();
    let (s, _) = env
        .json(
            Method::POST,
            &tb("/git/restore"),
            Some(json!({"path": "fresh", "files": ["a.txt"]})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        std::fs::read_to_string(repo.join("a.txt")).unwrap(),
        "one\n"
    );
    std::fs::write(repo.join("a.txt"), "three\n").unwrap();
    env.json(
        Method::POST,
        &tb("/git/add"),
        Some(json!({"path": "fresh", "files": ["."]})),
    )
    .await;
    env.json(
        Method::POST,
        &tb("/git/commit"),
        Some(json!({"path": "fresh", "message": "second", "author": "A", "email": "a@b"})),
    )
    .await;
    let (_, h) = env
        .json(Method::GET, &tb("/git/history?path=fresh"), None)
        .await;
    let h = h.as_array().unwrap();
    assert_eq!(h.len(), 2);
    assert_eq!(h[0]["message"], "second");
    assert_eq!(h[1]["hash"], c1["hash"]);
    let (s, _) = env
        .json(
            Method::POST,
            &tb("/git/reset"),
            Some(json!({"path": "fresh", "mode": "hard", "target": c1["hash"]})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(
        std::fs::read_to_string(repo.join("a.txt")).unwrap(),
        "one\n"
    );
    let (s, _) = env
        .json(
            Method::POST,
            &tb("/git/reset"),
            Some(json!({"path": "fresh", "mode": "bogus"})),
        )
        .await;
    assert_eq!(s, 400);
}

/// Live (non-zombie) processes whose command line contains `needle`.
fn procs_mentioning(needle: &str) -> Vec<String> {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|p| {
            let stat = std::fs::read_to_string(format!("/proc/{p}/stat")).ok()?;
            let state = stat.rsplit(") ").next()?.chars().next()?;
            let cmd = std::fs::read(format!("/proc/{p}/cmdline")).ok()?;
            let cmd = String::from_utf8_lossy(&cmd).replace('\0', " ");
            (state != 'Z' && cmd.contains(needle)).then(|| format!("{p} {cmd}"))
        })
        .collect()
}

#[tokio::test]
async fn a_clone_whose_client_goes_away_is_killed() {
    // A git server that accepts connections and never answers: the clone hangs.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = silent.local_addr().unwrap().port();
    let env = common::start_with(|c| c.host_ports = vec![port]).await;
    let id = env.sandbox().await;
    let held = tokio::spawn(async move {
        let mut conns = Vec::new();
        while let Ok((c, _)) = silent.accept().await {
            conns.push(c);
        }
    });
    let marker = format!("forge-clone-gone-{}", std::process::id());
    let url = format!("http://127.0.0.1:{port}/{marker}.git");
    let request = env
        .req(Method::POST, &env.tb(&id, "/git/clone"))
        .json(&json!({"url": url, "path": "hang"}))
        .send();
    let client = tokio::spawn(request);
    // Waited for, not timed: the bounds only end a test that would wait forever (a loaded
    // full run took more than 5 s to see git go).
    let bound = std::time::Duration::from_secs(90);
    let until = std::time::Instant::now() + bound;
    while procs_mentioning(&marker).is_empty() {
        assert!(std::time::Instant::now() < until, "git clone never started");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    // The client goes away (an aborted call): its connection closes.
    client.abort();
    let _ = client.await;
    let until = std::time::Instant::now() + bound;
    loop {
        let left = procs_mentioning(&marker);
        if left.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < until,
            "git still running {} s after its client went away: {left:?}",
            bound.as_secs()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    held.abort();
}
