//! Steps run again (a workflow engine's retry) repeat no side effect, on the embedded backend
//! over real HTTP: a create with an idempotency key returns the sandbox it made (also when
//! calls race), `cleanup` deletes what a key made, a clone recognises its own clone and nothing
//! else, an install whose lockfile and `node_modules` are unchanged is skipped, and a dev
//! server started again on a port replaces the one before.

use crate::common::bounded;
use forge_daytona::{CallOptions, Cleanup, Client, CreateParams, ExecOptions, ListQuery};
use forge_local::{LocalBackend, LocalConfig};
use forge_preview::pipeline::{
    clone_repository, create_sandbox, install_dependencies, start_dev_server, verify_preview,
    CloneInput, InstallInput, LogSink, StartInput, VerifyInput,
};
use forge_wire::StringMap;

const USER: &str = "x-access-token";
const TOKEN: &str = "ghp_idempotent_steps_token";

struct Env {
    _home: tempfile::TempDir,
    repos: tempfile::TempDir,
    _backend: LocalBackend,
    git: forge_testkit::GitHttpServer,
    client: Client,
}

/// The backend (its sandboxes may reach the git server's port) and a git server with two
/// repositories: `app.git` (a package.json and a tiny server) and `other.git`.
async fn env() -> Env {
    let repos = tempfile::tempdir().unwrap();
    forge_testkit::create_repo(
        repos.path(),
        "app.git",
        "main",
        &[
            ("package.json", r#"{"name":"app","version":"1.0.0"}"#),
            ("package-lock.json", r#"{"lockfileVersion":3}"#),
        ],
    )
    .unwrap();
    forge_testkit::create_repo(
        repos.path(),
        "other.git",
        "main",
        &[("README.md", "other\n")],
    )
    .unwrap();
    let git = forge_testkit::GitHttpServer::start(repos.path(), USER, TOKEN)
        .await
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let backend = LocalBackend::start(LocalConfig {
        home: Some(home.path().to_path_buf()),
        stop_sandboxes_on_exit: true,
        host_ports: vec![git.addr().port()],
        ..Default::default()
    })
    .await
    .unwrap();
    let client = Client::new(
        forge_daytona::DaytonaConfig::new()
            .with_api_key(backend.api_key())
            .with_api_url(backend.api_url()),
    )
    .unwrap();
    Env {
        _home: home,
        repos,
        _backend: backend,
        git,
        client,
    }
}

impl Env {
    /// A new sandbox (no key).
    async fn sandbox(&self) -> String {
        self.client
            .create(&CreateParams::default(), &CallOptions::new())
            .await
            .unwrap()
            .id
    }

    /// A clone of `repo` (served here) into sandbox `id`'s default folder.
    fn clone_of(&self, id: &str, repo: &str) -> CloneInput {
        CloneInput {
            sandbox_id: id.to_owned(),
            repo_url: self.git.url(repo),
            token: Some(TOKEN.into()),
            ..Default::default()
        }
    }
}

fn keyed(key: &str) -> CreateParams {
    CreateParams {
        idempotency_key: Some(key.into()),
        ..Default::default()
    }
}

/// The ids of the sandboxes made under `key`.
async fn made_under(client: &Client, key: &str) -> Vec<String> {
    let labels = StringMap::from_iter([(
        forge_daytona::IDEMPOTENCY_LABEL.to_owned(),
        forge_daytona::idempotency::key_label(key).unwrap(),
    )]);
    let query = ListQuery {
        labels: Some(labels),
        ..Default::default()
    };
    client
        .list_all(&query, &CallOptions::new())
        .await
        .unwrap()
        .into_iter()
        .map(|s| s.id)
        .collect()
}

async fn sh(client: &Client, id: &str, command: &str) -> String {
    let tb = client.toolbox_for(id).await.unwrap();
    let r = tb
        .process()
        .execute(command, &ExecOptions::default(), &CallOptions::new())
        .await
        .unwrap();
    assert_eq!(r.exit_code, 0, "{command}: {}", r.result);
    r.result.trim().to_owned()
}

#[tokio::test]
async fn a_create_with_a_key_returns_the_sandbox_it_made_and_cleanup_deletes_it() {
    bounded(async {
        let e = env().await;
        let call = CallOptions::new();
        let first = create_sandbox(&e.client, &keyed("run-1:create"), &call)
            .await
            .unwrap();
        let again = create_sandbox(&e.client, &keyed("run-1:create"), &call)
            .await
            .unwrap();
        assert_eq!(
            again.sandbox_id, first.sandbox_id,
            "the retry gets the same sandbox"
        );
        assert_eq!(again.state, "started");
        let other = create_sandbox(&e.client, &keyed("run-2:create"), &call)
            .await
            .unwrap();
        assert_ne!(
            other.sandbox_id, first.sandbox_id,
            "two keys never share a sandbox"
        );
        assert_eq!(
            made_under(&e.client, "run-1:create").await,
            vec![first.sandbox_id.clone()]
        );

        // A stopped sandbox of the key is started again, not replaced.
        e.client
            .stop(&first.sandbox_id, false, &call)
            .await
            .unwrap();
        let started = create_sandbox(&e.client, &keyed("run-1:create"), &call)
            .await
            .unwrap();
        assert_eq!(started.sandbox_id, first.sandbox_id);
        assert_eq!(started.state, "started");

        // A name given with the key is kept; a name taken by a sandbox of no key is a conflict.
        e.client
            .create(
                &CreateParams {
                    name: Some("taken".into()),
                    ..Default::default()
                },
                &call,
            )
            .await
            .unwrap();
        let clash = CreateParams {
            name: Some("taken".into()),
            ..keyed("run-3:create")
        };
        let err = e.client.create(&clash, &call).await.unwrap_err();
        assert_eq!(err.code(), "DAYTONA_CONFLICT", "{err}");

        // cleanup: what the key made, nothing else; an empty filter is refused.
        let deleted = e
            .client
            .cleanup(
                &Cleanup {
                    key: Some("run-1:create".into()),
                    ..Default::default()
                },
                &call,
            )
            .await
            .unwrap();
        assert_eq!(deleted, vec![first.sandbox_id.clone()]);
        assert!(made_under(&e.client, "run-1:create").await.is_empty());
        assert_eq!(
            made_under(&e.client, "run-2:create").await,
            vec![other.sandbox_id.clone()]
        );
        let err = e
            .client
            .cleanup(&Cleanup::default(), &call)
            .await
            .unwrap_err();
        assert_eq!(err.code(), "DAYTONA_INVALID_ARGUMENT", "{err}");
        // By labels: the caller's own.
        let labelled = CreateParams {
            labels: StringMap::from_iter([("project".to_owned(), "p-9".to_owned())]),
            ..keyed("run-4:create")
        };
        let p9 = create_sandbox(&e.client, &labelled, &call).await.unwrap();
        let deleted = e
            .client
            .cleanup(
                &Cleanup {
                    labels: StringMap::from_iter([("project".to_owned(), "p-9".to_owned())]),
                    ..Default::default()
                },
                &call,
            )
            .await
            .unwrap();
        assert_eq!(deleted, vec![p9.sandbox_id]);
        // A key whose sandbox was cleaned up makes a new one.
        let fresh = create_sandbox(&e.client, &keyed("run-1:create"), &call)
            .await
            .unwrap();
        assert_ne!(fresh.sandbox_id, first.sandbox_id);
    })
    .await;
}

#[tokio::test]
async fn concurrent_creates_with_one_key_make_one_sandbox() {
    bounded(async {
        let e = env().await;
        let params = keyed("run-race:create");
        let call = CallOptions::new();
        let all = futures_util::future::join_all(
            (0..4).map(|_| create_sandbox(&e.client, &params, &call)),
        )
        .await;
        let ids: Vec<String> = all.into_iter().map(|r| r.unwrap().sandbox_id).collect();
        assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
        assert_eq!(
            made_under(&e.client, "run-race:create").await,
            vec![ids[0].clone()]
        );
        assert_eq!(
            e.client
                .list_all(&ListQuery::default(), &call)
                .await
                .unwrap()
                .len(),
            1
        );
    })
    .await;
}

#[tokio::test]
async fn a_clone_run_again_recognises_its_own_clone_and_nothing_else() {
    bounded(async {
        let e = env().await;
        let call = CallOptions::new();
        let id = e.sandbox().await;
        let input = e.clone_of(&id, "app.git");
        let first = clone_repository(&e.client, &input, &call).await.unwrap();
        // A file the first clone's folder gains: a second clone would not have it.
        sh(
            &e.client,
            &id,
            "touch workspace/project/.made-after-the-clone",
        )
        .await;
        let again = clone_repository(&e.client, &input, &call).await.unwrap();
        assert_eq!(again, first, "the first run's result");
        sh(
            &e.client,
            &id,
            "test -f workspace/project/.made-after-the-clone",
        )
        .await;

        // Another repository, or another branch, at that folder is still an error.
        for other in [
            CloneInput {
                repo_url: e.git.url("other.git"),
                ..input.clone()
            },
            CloneInput {
                branch: Some("main".into()),
                ..input.clone()
            },
        ] {
            let err = clone_repository(&e.client, &other, &call)
                .await
                .unwrap_err();
            assert_eq!(err.code(), "DAYTONA_BAD_REQUEST", "{err}");
        }
        // And nothing recorded holds the token.
        let records = sh(&e.client, &id, "cat .forge/steps/clone/*.json").await;
        assert!(records.contains("app.git"), "{records}");
        assert!(!records.contains(TOKEN), "{records}");
    })
    .await;
}

#[tokio::test]
async fn an_interrupted_clone_of_ours_is_made_again_and_a_folder_of_no_clone_is_left_alone() {
    bounded(async {
        let e = env().await;
        let call = CallOptions::new();
        let id = e.sandbox().await;
        let url = e.git.url("app.git");
        // What a clone cut short leaves: the step's record of it (written before cloning, as
        // the clone step's module documents) and a partial folder.
        let record = format!(
            ".forge/steps/clone/{}.json",
            forge_daytona::idempotency::key_label("workspace/project").unwrap()
        );
        let tb = e.client.toolbox_for(&id).await.unwrap();
        tb.fs()
            .upload(
                vec![
                    forge_daytona::UploadItem {
                        source: serde_json::to_vec(&serde_json::json!({
                            "repo": url, "branch": null, "commitId": null, "result": null
                        }))
                        .unwrap()
                        .into(),
                        destination: record,
                    },
                    forge_daytona::UploadItem {
                        source: b"partial".to_vec().into(),
                        destination: "workspace/project/.git/partial".into(),
                    },
                ],
                &call,
            )
            .await
            .unwrap();
        let input = e.clone_of(&id, "app.git");
        clone_repository(&e.client, &input, &call).await.unwrap();
        sh(
            &e.client,
            &id,
            "test -f workspace/project/package.json && test ! -e workspace/project/.git/partial",
        )
        .await;

        // A folder the step has no record of is the user's: cloning there is an error, and
        // the folder is untouched.
        sh(
            &e.client,
            &id,
            "mkdir -p workspace/mine && echo keep > workspace/mine/file",
        )
        .await;
        let err = clone_repository(
            &e.client,
            &CloneInput {
                path: Some("workspace/mine".into()),
                ..input.clone()
            },
            &call,
        )
        .await
        .unwrap_err();
        assert_eq!(err.code(), "DAYTONA_BAD_REQUEST", "{err}");
        assert_eq!(sh(&e.client, &id, "cat workspace/mine/file").await, "keep");
    })
    .await;
}

/// An "install" that counts its runs (in `../runs`) and makes a `node_modules`.
const INSTALL: &str =
    "echo run >> ../runs && mkdir -p node_modules/dep && echo 'module.exports = 1' > node_modules/dep/index.js";

/// Runs `input`'s install again in sandbox `id`, whose install ran once: it must be skipped
/// (the command not run again, the note saying why). The result.
async fn install_again_is_skipped(
    e: &Env,
    id: &str,
    input: &InstallInput,
) -> forge_preview::pipeline::Installed {
    let again = install_dependencies(&e.client, input, &LogSink::none(), &CallOptions::new())
        .await
        .unwrap();
    assert_eq!(
        sh(&e.client, id, "wc -l < workspace/runs").await,
        "1",
        "the install did not run again"
    );
    assert_eq!(
        again.notes.last().map(String::as_str),
        Some(forge_preview::pipeline::steps::install::ALREADY_INSTALLED)
    );
    again
}

#[tokio::test]
async fn an_install_run_again_is_skipped_until_the_lockfile_or_node_modules_change() {
    bounded(async {
        let e = env().await;
        let call = CallOptions::new();
        let id = e.sandbox().await;
        let clone = e.clone_of(&id, "app.git");
        clone_repository(&e.client, &clone, &call).await.unwrap();
        let input = InstallInput {
            sandbox_id: id.clone(),
            command: Some(INSTALL.into()),
            ..Default::default()
        };
        let runs = || sh(&e.client, &id, "wc -l < workspace/runs");
        let first = install_dependencies(&e.client, &input, &LogSink::none(), &call)
            .await
            .unwrap();
        assert_eq!(runs().await, "1");
        let again = install_again_is_skipped(&e, &id, &input).await;
        assert_eq!(
            (&again.command, &again.log_tail, again.elapsed_ms),
            (&first.command, &first.log_tail, first.elapsed_ms),
            "the first run's result"
        );

        // A changed lockfile installs again; so does a node_modules that lost a package.
        sh(
            &e.client,
            &id,
            r#"echo '{"lockfileVersion":3,"packages":{}}' > workspace/project/package-lock.json"#,
        )
        .await;
        install_dependencies(&e.client, &input, &LogSink::none(), &call)
            .await
            .unwrap();
        assert_eq!(runs().await, "2");
        sh(&e.client, &id, "rm -rf workspace/project/node_modules/dep").await;
        install_dependencies(&e.client, &input, &LogSink::none(), &call)
            .await
            .unwrap();
        assert_eq!(runs().await, "3");
        // Another command is another install.
        let other = InstallInput {
            command: Some(format!("{INSTALL} && true")),
            ..input.clone()
        };
        install_dependencies(&e.client, &other, &LogSink::none(), &call)
            .await
            .unwrap();
        assert_eq!(runs().await, "4");
    })
    .await;
}

/// A dev server that says which session it is (`$TAG`) and quits after two minutes.
const SERVER: &str = "node -e \"setTimeout(() => process.exit(0), 120000); require('http').createServer((q, s) => s.end('dev server ' + process.env.TAG)).listen(process.env.PORT)\"";

#[tokio::test]
async fn a_dev_server_started_again_on_a_port_replaces_the_one_before() {
    bounded(async {
        let e = env().await;
        let call = CallOptions::new();
        let id = e.sandbox().await;
        let port = 4173;
        let start = |tag: &str| StartInput {
            sandbox_id: id.clone(),
            path: Some(".".into()),
            command: Some(SERVER.into()),
            port: Some(port),
            env_vars: Some([("TAG".to_owned(), tag.to_owned())].into()),
            ..Default::default()
        };
        let first = start_dev_server(&e.client, &start("one"), &LogSink::none(), &call)
            .await
            .unwrap();
        let verify = |s: &forge_preview::pipeline::Started| VerifyInput {
            sandbox_id: id.clone(),
            port,
            session_id: Some(s.session_id.clone()),
            command_id: Some(s.command_id.clone()),
            timeout_ms: Some(30_000),
            ..Default::default()
        };
        let v1 = verify_preview(&e.client, &verify(&first), &LogSink::none(), &call).await.unwrap();
        assert!(v1.report.ok, "{:?}", v1.report);

        let second = start_dev_server(&e.client, &start("two"), &LogSink::none(), &call)
            .await
            .unwrap();
        assert_ne!(second.session_id, first.session_id);
        let v2 = verify_preview(&e.client, &verify(&second), &LogSink::none(), &call).await.unwrap();
        assert!(v2.report.ok, "{:?}", v2.report);
        // One dev server runs, and it is the one the result names.
        let running = sh(
            &e.client,
            &id,
            r"for p in /proc/[0-9]*; do tr '\0' ' ' < $p/cmdline 2>/dev/null; echo; done | grep -c '^node -e setTimeout' || true",
        )
        .await;
        assert_eq!(running, "1");
        let tb = e.client.toolbox_for(&id).await.unwrap();
        let sessions: Vec<String> = tb
            .process()
            .list_sessions()
            .await
            .unwrap()
            .into_iter()
            .map(|s| s.session_id)
            .collect();
        assert!(sessions.contains(&second.session_id), "{sessions:?}");
        assert!(!sessions.contains(&first.session_id), "{sessions:?}");
        let body = sh(
            &e.client,
            &id,
            &format!("node -e \"fetch('http://127.0.0.1:{port}/').then(r => r.text()).then(console.log)\""),
        )
        .await;
        assert_eq!(body, "dev server two");
    })
    .await;
}

/// Two clones of one commit look alike to tools that check files by time (webpack's dev
/// snapshots, and so a restored `.next/cache`): every file and folder of the checkout has
/// the commit's time, not the clone's.
#[tokio::test]
async fn a_clone_gives_every_file_and_folder_the_commits_time() {
    bounded(async {
        let e = env().await;
        // A commit made in 2020 (1577934245): a clone's own time cannot be it.
        let work = tempfile::tempdir().unwrap();
        let git = |args: &[&str]| {
            let out = std::process::Command::new("git")
                .args(args)
                .current_dir(work.path())
                .env("GIT_AUTHOR_DATE", "2020-01-02T03:04:05Z")
                .env("GIT_COMMITTER_DATE", "2020-01-02T03:04:05Z")
                .output()
                .unwrap();
            assert!(out.status.success(), "git {args:?}: {out:?}");
        };
        std::fs::create_dir_all(work.path().join("app/nested")).unwrap();
        std::fs::write(work.path().join("package.json"), "{}").unwrap();
        std::fs::write(work.path().join("app/nested/page.js"), "export default 1").unwrap();
        std::os::unix::fs::symlink("/etc/hostname", work.path().join("link")).unwrap();
        git(&["init", "-q", "-b", "main"]);
        git(&["add", "-A"]);
        git(&["-c", "user.name=t", "-c", "user.email=t@e", "commit", "-qm", "old"]);
        let bare = e.repos.path().join("dated.git");
        git(&["clone", "-q", "--bare", ".", &bare.to_string_lossy()]);

        let call = CallOptions::new();
        let mut seen = Vec::new();
        for _ in 0..2 {
            let id = e.sandbox().await;
            clone_repository(&e.client, &e.clone_of(&id, "dated.git"), &call)
                .await
                .unwrap();
            seen.push(
                sh(
                    &e.client,
                    &id,
                    "cd workspace/project && find . -name .git -prune -o -printf '%Ts %y %p\\n' | sort",
                )
                .await,
            );
        }
        assert_eq!(
            seen[0],
            "1577934245 d .\n1577934245 d ./app\n1577934245 d ./app/nested\n\
             1577934245 f ./app/nested/page.js\n1577934245 f ./package.json\n1577934245 l ./link"
        );
        assert_eq!(seen[0], seen[1]);
        // The link's target is untouched (it is the sandbox's /etc/hostname).
        let id = e.sandbox().await;
        assert_ne!(sh(&e.client, &id, "stat -c %Y /etc/hostname").await, "1577934245");
    })
    .await;
}

/// The pipeline does not wait for its steps' bookkeeping (the install's record is kept while
/// the dev server starts; the commit's times and the clone's record are made together), yet
/// leaves what the steps leave on their own: after `clone_and_preview` the checkout has the
/// commit's times and a retry of the install step finds the pipeline's install and does not
/// run the command again.
#[tokio::test]
async fn after_the_pipeline_a_retried_install_finds_its_record_and_the_checkout_has_the_commits_time(
) {
    bounded(async {
        let e = env().await;
        let call = CallOptions::new();
        let port = 4174;
        let req = forge_preview::pipeline::PreviewRequest {
            clone: CloneInput {
                repo_url: e.git.url("app.git"),
                token: Some(TOKEN.into()),
                ..Default::default()
            },
            install_command: Some(INSTALL.into()),
            dev_command: Some(SERVER.into()),
            port: Some(port),
            env_vars: [("TAG".to_owned(), "pipeline".to_owned())].into(),
            dependency_cache: Some(false),
            verify_timeout: Some(std::time::Duration::from_mins(1)),
            ..Default::default()
        };
        let r = forge_preview::pipeline::clone_and_preview(
            &e.client,
            &CreateParams::default(),
            &req,
            &|_| {},
            &call,
        )
        .await
        .unwrap();
        assert!(r.verify.ok, "{:?}", r.verify);
        let id = r.sandbox_id;
        assert_eq!(sh(&e.client, &id, "wc -l < workspace/runs").await, "1");
        let input = InstallInput {
            sandbox_id: id.clone(),
            command: Some(INSTALL.into()),
            ..Default::default()
        };
        install_again_is_skipped(&e, &id, &input).await;
        let times = sh(
            &e.client,
            &id,
            "cd workspace/project && git log -1 --format=%ct && stat -c %Y package.json package-lock.json | sort -u",
        )
        .await;
        let mut lines = times.lines();
        let commit = lines.next().unwrap();
        assert_eq!(lines.collect::<Vec<_>>(), [commit], "{times}");
    })
    .await;
}
