//! git against the embedded backend and a real git smart-HTTP server behind basic auth
//! (forge-testkit), both on 127.0.0.1.

use crate::common;

use common::{bounded, Backend};
use forge_daytona::{
    CallOptions, CloneParams, CreateParams, ExecOptions, GitCredentials, UploadSource,
};
use forge_testkit::{add_commit, create_repo, GitHttpServer};
use std::time::Duration;

const TOKEN: &str = "s3cr3t-token-4f7a";

fn opts() -> CallOptions {
    CallOptions::new().with_timeout(Duration::from_secs(90))
}

fn bare_rev(bare: &std::path::Path, rev: &str) -> String {
    let out = std::process::Command::new("git")
        .arg("--git-dir")
        .arg(bare)
        .args(["rev-parse", rev])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test]
async fn clone_status_branches_commit_push_pull_fetch() {
    bounded(async {
        let root = tempfile::tempdir().unwrap();
        let bare = create_repo(
            root.path(),
            "app.git",
            "main",
            &[("README.md", "hello\n"), ("src/a.txt", "a\n")],
        )
        .unwrap();
        add_commit(&bare, "dev", &[("dev.txt", "dev\n")], "dev work").unwrap();
        let server = GitHttpServer::start(root.path(), "forge", TOKEN)
            .await
            .unwrap();
        let plain_url = server.url("app.git");
        let url_with_token = plain_url.replacen("http://", &format!("http://forge:{TOKEN}@"), 1);
        let b = Backend::start_reaching(&[server.addr().port()]).await;
        let s = b
            .client
            .create(&CreateParams::default(), &opts())
            .await
            .unwrap();
        let tb = b.client.toolbox(&s).await.unwrap();
        let (git, fs, p) = (tb.git(), tb.fs(), tb.process());
        let creds = GitCredentials {
            username: Some("forge".into()),
            password: Some(TOKEN.into()),
        };

        // A guide-style URL: its credentials go into the request fields, not into .git/config.
        git.clone_repo(
            &CloneParams {
                url: url_with_token.clone(),
                path: "repo".into(),
                branch: Some("main".into()),
                ..Default::default()
            },
            &opts(),
        )
        .await
        .unwrap();
        let config = fs.download("repo/.git/config", &opts()).await.unwrap();
        assert!(
            !String::from_utf8_lossy(&config).contains(TOKEN),
            "token stored in .git/config"
        );
        let remotes = p
            .execute("git -C repo remote -v", &ExecOptions::default(), &opts())
            .await
            .unwrap();
        assert!(
            !remotes.result.contains(TOKEN) && remotes.result.contains("origin"),
            "{}",
            remotes.result
        );

        // Branch and depth.
        git.clone_repo(
            &CloneParams {
                url: plain_url.clone(),
                path: "shallow".into(),
                branch: Some("dev".into()),
                depth: Some(1),
                username: creds.username.clone(),
                password: creds.password.clone(),
                ..Default::default()
            },
            &opts(),
        )
        .await
        .unwrap();
        assert_eq!(git.status("shallow").await.unwrap().current_branch, "dev");
        let count = p
            .execute(
                "git -C shallow rev-list --count HEAD",
                &ExecOptions::default(),
                &opts(),
            )
            .await
            .unwrap();
        assert_eq!(count.result.trim(), "1");

        // Status after edits.
        fs.upload_file(UploadSource::from("changed\n"), "repo/README.md", &opts())
            .await
            .unwrap();
        fs.upload_file(UploadSource::from("new\n"), "repo/new.txt", &opts())
            .await
            .unwrap();
        let st = git.status("repo").await.unwrap();
        assert_eq!(st.current_branch, "main");
        let names: Vec<&str> = st.file_status.iter().map(|f| f.name.as_str()).collect();
        assert!(
            names.contains(&"README.md") && names.contains(&"new.txt"),
            "{names:?}"
        );

        // Branches, commit, amend, push.
        git.create_branch("repo", "feature").await.unwrap();
        git.checkout_branch("repo", "feature").await.unwrap();
        let br = git.branches("repo").await.unwrap();
        assert!(
            br.branches.iter().any(|b| b == "feature") && br.branches.iter().any(|b| b == "main"),
            "{br:?}"
        );
        git.add("repo", &[".".into()]).await.unwrap();
        let sha = git
            .commit("repo", "edit readme", "Forge Bot", "bot@example.com", false)
            .await
            .unwrap();
        assert_eq!(sha.len(), 40, "{sha}");
        let amended = git
            .commit_amend("repo", Some("edit readme (it's amended)"), None)
            .await
            .unwrap();
        assert_eq!(amended.len(), 40);
        assert_ne!(amended, sha);
        let msg = p
            .execute(
                "git -C repo log -1 --format=%s",
                &ExecOptions::default(),
                &opts(),
            )
            .await
            .unwrap();
        assert_eq!(msg.result.trim(), "edit readme (it's amended)");
        git.push("repo", &creds, Some("feature"), Some("origin"))
            .await
            .unwrap();
        assert_eq!(bare_rev(&bare, "feature"), amended);

        // A wrong password: a typed error, and no secret in it.
        let wrong = GitCredentials {
            username: Some("forge".into()),
            password: Some("wrong-pass-9z".into()),
        };
        let e = git
            .push("repo", &wrong, Some("feature"), Some("origin"))
            .await
            .unwrap_err();
        let text = format!("{e} {e:?}");
        assert!(
            !text.contains(TOKEN) && !text.contains("wrong-pass-9z"),
            "{text}"
        );

        // Pull and fetch with credentials.
        git.checkout_branch("repo", "main").await.unwrap();
        p.execute(
            "git -C repo checkout -- . && git -C repo clean -fdq",
            &ExecOptions::default(),
            &opts(),
        )
        .await
        .ok();
        let upstream = add_commit(
            &bare,
            "main",
            &[("pulled.txt", "pulled\n")],
            "upstream change",
        )
        .unwrap();
        git.pull("repo", &creds, None, None).await.unwrap();
        assert_eq!(
            &fs.download("repo/pulled.txt", &opts()).await.unwrap()[..],
            b"pulled\n"
        );
        let dev = add_commit(&bare, "dev", &[("more.txt", "more\n")], "more dev").unwrap();
        git.fetch("repo", Some("origin"), &creds, &opts())
            .await
            .unwrap();
        let fetched = p
            .execute(
                "git -C repo rev-parse origin/dev",
                &ExecOptions::default(),
                &opts(),
            )
            .await
            .unwrap();
        assert_eq!(fetched.result.trim(), dev);
        let head = p
            .execute(
                "git -C repo rev-parse HEAD",
                &ExecOptions::default(),
                &opts(),
            )
            .await
            .unwrap();
        assert_eq!(head.result.trim(), upstream);
        let e = git
            .fetch("repo", Some("origin"), &wrong, &opts())
            .await
            .unwrap_err();
        assert!(!format!("{e} {e:?}").contains("wrong-pass-9z"));
        let config = fs.download("repo/.git/config", &opts()).await.unwrap();
        assert!(!String::from_utf8_lossy(&config).contains(TOKEN));

        // Delete a branch, remotes.
        git.delete_branch("repo", "feature").await.unwrap();
        assert!(!git
            .branches("repo")
            .await
            .unwrap()
            .branches
            .iter()
            .any(|b| b == "feature"));
        git.add_remote("repo", "upstream", &plain_url, false, false)
            .await
            .unwrap();
        let remotes = git.remotes("repo").await.unwrap();
        assert!(
            remotes.iter().any(|r| r.name == "upstream")
                && remotes.iter().all(|r| !r.url.contains(TOKEN))
        );
        let e = git
            .add_remote("repo", "bad", &url_with_token, false, false)
            .await
            .unwrap_err();
        assert_eq!(e.code(), "DAYTONA_INVALID_ARGUMENT");
        assert!(!e.to_string().contains(TOKEN));

        server.shutdown().await;
        b.stop().await;
    })
    .await;
}
