//! Private mount views (bwrap): a sandbox's commands cannot see other sandboxes' folders or
//! the backend's home, but keep their own folder, this machine's tools and the port shim.
//! One test function, because it sets `FORGE_ISOLATION` for its second half.

mod common;

use reqwest::Method;
use serde_json::json;

/// Runs `command` in sandbox `id` with `sh -c`; answers (exit code, output).
async fn sh(env: &common::Env, id: &str, command: &str) -> (i64, String) {
    let (s, v) = env
        .exec(
            id,
            json!({"command": format!("sh -c '{command}'"), "timeout": 60}),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    (
        v["exitCode"].as_i64().unwrap_or(-100),
        v["result"].as_str().unwrap_or_default().to_string(),
    )
}

/// Runs JavaScript `code` in sandbox `id` through code-run; answers its output (exit code 0).
async fn node(env: &common::Env, id: &str, code: &str) -> String {
    let (s, v) = env
        .json(
            Method::POST,
            &env.tb(id, "/process/code-run"),
            Some(json!({"code": code, "language": "javascript", "timeout": 60})),
        )
        .await;
    assert_eq!((s, v["exitCode"].as_i64()), (200, Some(0)), "{v}");
    v["result"].as_str().unwrap_or_default().to_string()
}

fn sandbox_dir(env: &common::Env, id: &str) -> std::path::PathBuf {
    env.backend.home().join("sandboxes").join(id)
}

/// Sandbox `b` gets a file holding `secret`; answers its host path.
fn plant_secret(env: &common::Env, b: &str, secret: &str) -> std::path::PathBuf {
    let file = env.root(b).join("home/daytona/secret.txt");
    std::fs::write(&file, secret).unwrap();
    file
}

#[tokio::test]
async fn a_sandbox_sees_only_its_own_folder_when_bwrap_is_here() {
    let on_path = std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join("bwrap").is_file()));
    assert!(
        on_path,
        "bwrap is not installed: the embedded backend's isolation cannot be tested. \
         Install Debian's bubblewrap (apt-get install -y bubblewrap); .ci/run does."
    );
    std::env::remove_var("FORGE_ISOLATION");

    let env = common::start().await;
    let a = env.sandbox().await;
    let b = env.sandbox().await;
    let home = env.backend.home().to_path_buf();
    let secret_b = plant_secret(&env, &b, "secret-of-b");
    let dir_b = sandbox_dir(&env, &b);

    // B's folder, its files and its record are not there for A, by their host paths.
    let (code, out) = sh(&env, &a, &format!("ls {}", dir_b.display())).await;
    assert_ne!(code, 0, "{out}");
    let (code, out) = sh(&env, &a, &format!("cat {}", secret_b.display())).await;
    assert_ne!(code, 0, "{out}");
    assert!(!out.contains("secret-of-b"), "{out}");
    let (code, out) = sh(&env, &a, &format!("cat {}/sandbox.json", dir_b.display())).await;
    assert_ne!(code, 0, "{out}");
    // The home holds only A's own folder and the port shim; the spare sandboxes are hidden.
    let (code, out) = sh(&env, &a, &format!("ls -A {}/sandboxes", home.display())).await;
    assert_eq!((code, out.trim()), (0, a.as_str()));
    let (code, out) = sh(&env, &a, &format!("ls -A {}", home.display())).await;
    assert_eq!(code, 0, "{out}");
    for name in out.split_whitespace() {
        assert!(
            ["sandboxes", "libforgeports.so"].contains(&name),
            "{name} visible in {out}"
        );
    }
    // Unmounting the view is refused (CAP_SYS_ADMIN is dropped), even for root.
    let (_, out) = sh(
        &env,
        &a,
        &format!(
            "umount {h} 2>/dev/null; umount -l {h} 2>/dev/null; ls -A {h}/sandboxes",
            h = home.display()
        ),
    )
    .await;
    assert_eq!(out.trim(), a);
    // Nor can it enter this machine's mount namespace.
    let (_, out) = sh(
        &env,
        &a,
        &format!(
            "nsenter --mount=/proc/1/ns/mnt ls -A {}/sandboxes 2>&1",
            home.display()
        ),
    )
    .await;
    assert!(!out.contains(&b), "{out}");

    // A's own files: readable and writable, by relative and host paths; the host sees them.
    let own = env.root(&a).join("home/daytona/own.txt");
    let (code, out) = sh(
        &env,
        &a,
        &format!("echo mine > own.txt && cat {}", own.display()),
    )
    .await;
    assert_eq!((code, out.trim()), (0, "mine"));
    assert_eq!(std::fs::read_to_string(&own).unwrap().trim(), "mine");
    // This machine's tools still work: node (code-run) and git.
    let out = node(
        &env,
        &a,
        "console.log(require('fs').readFileSync('own.txt', 'utf8').trim(), typeof process.version)",
    )
    .await;
    assert_eq!(out, "mine string\n");
    let (code, out) = sh(&env, &a, "git --version").await;
    assert_eq!(code, 0, "{out}");
    // The ports folder of the shim is A's own and writable (a listener publishes into it).
    let out = node(
        &env,
        &a,
        "const s = require('net').createServer().listen(4321, () => { console.log(s.address().port); s.close() })",
    )
    .await;
    assert_eq!(out, "4321\n");
    assert!(sandbox_dir(&env, &a).join("ports/4321").exists());
    env.backend.shutdown().await;

    // FORGE_ISOLATION=off: the same command reads the other sandbox's file (the difference).
    std::env::set_var("FORGE_ISOLATION", "off");
    let open = common::start().await;
    std::env::remove_var("FORGE_ISOLATION");
    let c = open.sandbox().await;
    let d = open.sandbox().await;
    let secret_d = plant_secret(&open, &d, "secret-of-d");
    let (code, out) = sh(&open, &c, &format!("cat {}", secret_d.display())).await;
    assert_eq!((code, out.as_str()), (0, "secret-of-d"));
    let (code, out) = sh(
        &open,
        &c,
        &format!("ls {}/sandboxes", open.backend.home().display()),
    )
    .await;
    assert_eq!(code, 0, "{out}");
    assert!(out.contains(&d), "{out}");
    open.backend.shutdown().await;
}
