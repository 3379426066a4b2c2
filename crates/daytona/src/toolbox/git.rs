//! `sandbox.git` (daytona-wire.md §6). Credentials travel in the request fields, never in a
//! URL git would store. `commit_amend` and `fetch`, which the API lacks, run `git` through
//! `process/execute` with every user value shell-quoted and credentials passed as
//! environment variables read by a one-off credential helper.

use super::process::ExecOptions;
use super::Toolbox;
use crate::call::CallOptions;
use crate::error::{scrub, ApiError, Error, Result};
use crate::fetch::Method;
use crate::retry::RetryClass;
use crate::shell::quote;
use forge_wire::{
    GitAddRemoteRequest, GitAddRequest, GitBranchRequest, GitCheckoutRequest, GitCloneRequest,
    GitCommitRequest, GitCommitResponse, GitRemote, GitStatus, GitSyncRequest, ListBranchResponse,
    ListRemotesResponse,
};

/// What to clone. A URL like `https://x-access-token:TOKEN@host/...` has its credentials
/// moved into `username` / `password`.
#[derive(Clone, Default, PartialEq)]
pub struct CloneParams {
    pub url: String,
    pub path: String,
    pub branch: Option<String>,
    pub commit_id: Option<String>,
    pub depth: Option<u32>,
    pub username: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for CloneParams {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CloneParams")
            .field("url", &scrub(&self.url, &[]))
            .field("path", &self.path)
            .field("branch", &self.branch)
            .field("commit_id", &self.commit_id)
            .field("depth", &self.depth)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Credentials for push / pull / fetch.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct GitCredentials {
    pub username: Option<String>,
    pub password: Option<String>,
}

impl std::fmt::Debug for GitCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitCredentials")
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Splits `user:password@` out of an http(s) URL. Returns `(clean url, user, password)`.
pub fn split_credentials(raw: &str) -> Result<(String, Option<String>, Option<String>)> {
    let Ok(mut u) = url::Url::parse(raw) else {
        return Ok((raw.to_string(), None, None));
    };
    if !matches!(u.scheme(), "http" | "https")
        || (u.username().is_empty() && u.password().is_none())
    {
        return Ok((raw.to_string(), None, None));
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let user = Some(decode(u.username())).filter(|s| !s.is_empty());
    let pass = u.password().map(decode);
    u.set_username("")
        .and_then(|()| u.set_password(None))
        .map_err(|()| {
            Error::InvalidArgument("cannot remove credentials from the clone URL".into())
        })?;
    // A lone token in the user slot (`https://TOKEN@github.com/...`) is a password.
    let (user, pass) = match (user, pass) {
        (Some(u), None) => (Some("x-access-token".to_string()), Some(u)),
        other => other,
    };
    Ok((u.to_string(), user, pass))
}

fn require_path(p: &str) -> Result<()> {
    if p.trim().is_empty() {
        return Err(Error::InvalidArgument(
            "repository path must not be empty".into(),
        ));
    }
    Ok(())
}

/// The git sub-handle of a [`Toolbox`].
#[derive(Clone, Debug)]
pub struct Git {
    pub(crate) tb: Toolbox,
}

impl Git {
    /// This handle with a deadline / cancel token for its calls without their own options.
    pub fn with_options(&self, opts: CallOptions) -> Git {
        Git {
            tb: self.tb.with_options(opts),
        }
    }

    /// `GET {route}?path=` returning JSON.
    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        route: &str,
        what: &'static str,
        path: &str,
    ) -> Result<T> {
        require_path(path)?;
        let req = self.tb.req(Method::GET, route, what).query("path", path);
        self.tb
            .transport()
            .json(req, &self.tb.default_deadline())
            .await
    }

    async fn post(
        &self,
        path: &str,
        what: &'static str,
        body: &impl serde::Serialize,
        secret: Option<&String>,
    ) -> Result<()> {
        let req = self
            .tb
            .req(Method::POST, path, what)
            .json(body)?
            .secret(secret);
        self.tb
            .transport()
            .empty(req, &self.tb.default_deadline())
            .await
    }

    /// `POST /git/clone`.
    pub async fn clone_repo(&self, p: &CloneParams, opts: &CallOptions) -> Result<()> {
        require_path(&p.path)?;
        let (url, url_user, url_pass) = split_credentials(&p.url)?;
        let body = GitCloneRequest {
            url,
            path: p.path.clone(),
            branch: p.branch.clone(),
            commit_id: p.commit_id.clone(),
            username: p.username.clone().or(url_user),
            password: p.password.clone().or(url_pass),
            insecure_skip_tls: None,
            depth: p.depth,
        };
        let req = self
            .tb
            .req(Method::POST, "/git/clone", "git clone")
            .json(&body)?
            .secret(body.password.as_ref());
        self.tb
            .transport()
            .empty(req, &self.tb.deadline(opts))
            .await
    }

    /// `GET /git/status?path=`.
    pub async fn status(&self, path: &str) -> Result<GitStatus> {
        self.get("/git/status", "git status", path).await
    }

    /// `GET /git/branches?path=`.
    pub async fn branches(&self, path: &str) -> Result<ListBranchResponse> {
        self.get("/git/branches", "git branches", path).await
    }

    /// `POST /git/branches`.
    pub async fn create_branch(&self, path: &str, name: &str) -> Result<()> {
        require_path(path)?;
        let body = GitBranchRequest {
            path: path.into(),
            name: name.into(),
        };
        self.post("/git/branches", "git create branch", &body, None)
            .await
    }

    /// `POST /git/checkout`.
    pub async fn checkout_branch(&self, path: &str, branch: &str) -> Result<()> {
        require_path(path)?;
        let body = GitCheckoutRequest {
            path: path.into(),
            branch: branch.into(),
        };
        self.post("/git/checkout", "git checkout", &body, None)
            .await
    }

    /// `DELETE /git/branches` with a JSON body.
    pub async fn delete_branch(&self, path: &str, name: &str) -> Result<()> {
        require_path(path)?;
        let body = GitBranchRequest {
            path: path.into(),
            name: name.into(),
        };
        let req = self
            .tb
            .req(Method::DELETE, "/git/branches", "git delete branch")
            .json(&body)?;
        self.tb
            .transport()
            .empty(req, &self.tb.default_deadline())
            .await
    }

    /// `POST /git/add` (`["."]` adds everything).
    pub async fn add(&self, path: &str, files: &[String]) -> Result<()> {
        require_path(path)?;
        let body = GitAddRequest {
            path: path.into(),
            files: files.to_vec(),
        };
        self.post("/git/add", "git add", &body, None).await
    }

    /// `POST /git/commit` → the new commit's sha. Sent once.
    pub async fn commit(
        &self,
        path: &str,
        message: &str,
        author: &str,
        email: &str,
        allow_empty: bool,
    ) -> Result<String> {
        require_path(path)?;
        let body = GitCommitRequest {
            path: path.into(),
            message: message.into(),
            author: author.into(),
            email: email.into(),
            allow_empty: allow_empty.then_some(true),
        };
        let req = self
            .tb
            .req(Method::POST, "/git/commit", "git commit")
            .json(&body)?
            .class(RetryClass::Once);
        let r: GitCommitResponse = self
            .tb
            .transport()
            .json(req, &self.tb.default_deadline())
            .await?;
        Ok(r.hash)
    }

    /// `POST /git/push`.
    pub async fn push(
        &self,
        path: &str,
        creds: &GitCredentials,
        branch: Option<&str>,
        remote: Option<&str>,
    ) -> Result<()> {
        require_path(path)?;
        let body = Self::sync_body(path, creds, branch, remote);
        self.post("/git/push", "git push", &body, creds.password.as_ref())
            .await
    }

    /// `POST /git/pull`.
    pub async fn pull(
        &self,
        path: &str,
        creds: &GitCredentials,
        branch: Option<&str>,
        remote: Option<&str>,
    ) -> Result<()> {
        require_path(path)?;
        let body = Self::sync_body(path, creds, branch, remote);
        self.post("/git/pull", "git pull", &body, creds.password.as_ref())
            .await
    }

    fn sync_body(
        path: &str,
        creds: &GitCredentials,
        branch: Option<&str>,
        remote: Option<&str>,
    ) -> GitSyncRequest {
        GitSyncRequest {
            path: path.into(),
            username: creds.username.clone(),
            password: creds.password.clone(),
            branch: branch.map(str::to_owned),
            remote: remote.map(str::to_owned),
            set_upstream: None,
        }
    }

    /// `POST /git/remotes` (a remote URL with credentials is refused: it would be stored).
    pub async fn add_remote(
        &self,
        path: &str,
        name: &str,
        url: &str,
        fetch: bool,
        overwrite: bool,
    ) -> Result<()> {
        require_path(path)?;
        let (clean, user, pass) = split_credentials(url)?;
        if user.is_some() || pass.is_some() {
            return Err(Error::InvalidArgument(format!(
                "a remote URL must not carry credentials (they would be stored in .git/config): {clean}"
            )));
        }
        let body = GitAddRemoteRequest {
            path: path.into(),
            name: name.into(),
            url: clean,
            fetch: fetch.then_some(true),
            overwrite: overwrite.then_some(true),
        };
        self.post("/git/remotes", "git add remote", &body, None)
            .await
    }

    /// `GET /git/remotes?path=`.
    pub async fn remotes(&self, path: &str) -> Result<Vec<GitRemote>> {
        let r: ListRemotesResponse = self.get("/git/remotes", "git remotes", path).await?;
        Ok(r.remotes)
    }

    /// Runs `git -C <path> <args...>` with quoted arguments; fails on a non-zero exit.
    async fn run_git(
        &self,
        path: &str,
        args: &[String],
        creds: &GitCredentials,
        identity: Option<(&str, &str)>,
        opts: &CallOptions,
    ) -> Result<String> {
        let repo = quote(path)?;
        // The committer: the given identity, else the configured one, else the last commit's
        // author (git refuses to commit or amend without one).
        let mut cmd = match identity {
            Some((name, email)) => format!(
                "GIT_COMMITTER_NAME={} GIT_COMMITTER_EMAIL={} git -C {repo}",
                quote(name)?,
                quote(email)?
            ),
            None => format!(
                "GIT_COMMITTER_NAME=\"$(git -C {repo} config user.name || git -C {repo} log -1 --format=%an)\" \
                 GIT_COMMITTER_EMAIL=\"$(git -C {repo} config user.email || git -C {repo} log -1 --format=%ae)\" \
                 git -C {repo}"
            ),
        };
        let mut o = ExecOptions::default();
        if creds.password.is_some() || creds.username.is_some() {
            // The helper reads the variables at run time: no secret in the command line,
            // in .git/config or in any file.
            o.env.insert(
                "FORGE_GIT_USERNAME".into(),
                creds
                    .username
                    .clone()
                    .unwrap_or_else(|| "x-access-token".into()),
            );
            o.env.insert(
                "FORGE_GIT_PASSWORD".into(),
                creds.password.clone().unwrap_or_default(),
            );
            let helper = r#"!f() { echo "username=${FORGE_GIT_USERNAME}"; echo "password=${FORGE_GIT_PASSWORD}"; }; f"#;
            cmd.push_str(&format!(
                " -c credential.helper= -c {}",
                quote(&format!("credential.helper={helper}"))?
            ));
        }
        for a in args {
            cmd.push(' ');
            cmd.push_str(&quote(a)?);
        }
        let r = self.tb.process().execute(&cmd, &o, opts).await?;
        if r.exit_code != 0 {
            let mut secrets = self.tb.transport().secrets().to_vec();
            secrets.extend(creds.password.iter().cloned());
            let message = scrub(r.result.trim(), &secrets);
            let lower = message.to_ascii_lowercase();
            let code = if lower.contains("authentication failed")
                || lower.contains("could not read username")
            {
                "GIT_AUTH_FAILED"
            } else {
                "GIT_COMMAND_FAILED"
            };
            let api = ApiError {
                status: 0,
                message: format!(
                    "git {} failed (exit {}): {message}",
                    args.first().map_or("", String::as_str),
                    r.exit_code
                ),
                code: Some(code.into()),
                source: Some("FORGE".into()),
            };
            return Err(if code == "GIT_AUTH_FAILED" {
                Error::GitAuth(api)
            } else {
                Error::BadRequest(api)
            });
        }
        Ok(r.result)
    }

    /// Amends the last commit (the API has no endpoint): `git commit --amend`, with a new
    /// message or `--no-edit`, and a new author when given. Returns the new sha.
    pub async fn commit_amend(
        &self,
        path: &str,
        message: Option<&str>,
        author: Option<(&str, &str)>,
    ) -> Result<String> {
        require_path(path)?;
        let mut args: Vec<String> = vec!["commit".into(), "--amend".into()];
        match message {
            Some(m) => args.extend(["-m".into(), m.to_string()]),
            None => args.push("--no-edit".into()),
        }
        if let Some((name, email)) = author {
            // `--author` alone: git refuses it together with `--reset-author`.
            args.extend(["--author".into(), format!("{name} <{email}>")]);
        }
        let opts = self.tb.opts.clone();
        self.run_git(path, &args, &GitCredentials::default(), author, &opts)
            .await?;
        let sha = self
            .run_git(
                path,
                &["rev-parse".into(), "HEAD".into()],
                &GitCredentials::default(),
                None,
                &opts,
            )
            .await?;
        Ok(sha.trim().to_string())
    }

    /// `git fetch [remote]` (the API has no endpoint), credentials through the helper.
    pub async fn fetch(
        &self,
        path: &str,
        remote: Option<&str>,
        creds: &GitCredentials,
        opts: &CallOptions,
    ) -> Result<()> {
        require_path(path)?;
        let mut args = vec!["fetch".to_string()];
        if let Some(r) = remote {
            if r.starts_with('-') {
                return Err(Error::InvalidArgument(format!("not a remote name: {r:?}")));
            }
            args.push(r.to_string());
        }
        self.run_git(path, &args, creds, None, opts)
            .await
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_url_credentials() {
        let (u, user, pass) =
            split_credentials("https://x-access-token:ghp_S3cr%40t@github.com/o/r.git").unwrap();
        assert_eq!(u, "https://github.com/o/r.git");
        assert_eq!(user.as_deref(), Some("x-access-token"));
        assert_eq!(pass.as_deref(), Some("ghp_S3cr@t"));
        let (u, user, pass) = split_credentials("https://ghp_tok@github.com/o/r").unwrap();
        assert_eq!(u, "https://github.com/o/r");
        assert_eq!(
            (user.as_deref(), pass.as_deref()),
            (Some("x-access-token"), Some("ghp_tok"))
        );
        let (u, user, _) = split_credentials("git@github.com:o/r.git").unwrap();
        assert_eq!((u.as_str(), user), ("git@github.com:o/r.git", None));
        let p = CloneParams {
            url: "https://a:tok123@h/x".into(),
            password: Some("pw-secret".into()),
            ..Default::default()
        };
        let d = format!("{p:?}");
        assert!(!d.contains("tok123") && !d.contains("pw-secret"), "{d}");
    }
}
