//! The transport seam (src/fetch.rs): a client built on another `Fetch` sends every request
//! through it (JSON calls, a streamed multipart upload, a multipart download), against the
//! embedded backend over real HTTP; and a transport failure's kind decides the retry and the
//! typed error as it does for reqwest's. This is the path the WebAssembly build takes, where
//! the `Fetch` is JavaScript's.

use crate::common;

use common::{bounded, Backend};
use forge_daytona::fetch::{Fetch, FetchError, FetchErrorKind, Request, Response};
use forge_daytona::{
    CallOptions, Client, CreateParams, DaytonaConfig, RetryConfig, UploadItem, UploadSource,
};
use futures_util::future::BoxFuture;
use std::sync::{Arc, Mutex};
use std::time::Duration;

fn opts() -> CallOptions {
    CallOptions::new().with_timeout(Duration::from_mins(1))
}

/// Sends through reqwest and records `METHOD /path` of each request.
struct Recording {
    inner: forge_daytona::fetch::Reqwest,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Fetch for Recording {
    fn fetch(&self, req: Request) -> BoxFuture<'static, Result<Response, FetchError>> {
        let path = url::Url::parse(&req.url)
            .map(|u| u.path().to_string())
            .unwrap_or_default();
        self.seen
            .lock()
            .unwrap()
            .push(format!("{} {path}", req.method));
        self.inner.fetch(req)
    }
}

#[tokio::test]
async fn every_request_goes_through_the_given_fetch() {
    bounded(async {
        let b = Backend::start().await;
        let seen = Arc::new(Mutex::new(Vec::new()));
        let fetch = Recording {
            inner: forge_daytona::fetch::Reqwest::new().unwrap(),
            seen: seen.clone(),
        };
        let config = DaytonaConfig::new()
            .with_api_key(b.backend.api_key())
            .with_api_url(b.backend.api_url())
            .validate()
            .unwrap();
        let client = Client::with_fetch(config, Arc::new(fetch)).unwrap();

        let s = client
            .create(&CreateParams::default(), &opts())
            .await
            .unwrap();
        let fs = client.toolbox(&s).await.unwrap().fs();
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("disk.txt");
        std::fs::write(&local, "from disk\n").unwrap();
        fs.upload(
            vec![
                UploadItem {
                    source: UploadSource::from("whole bytes\n"),
                    destination: "seam/bytes.txt".into(),
                },
                UploadItem {
                    source: UploadSource::File(local),
                    destination: "seam/disk.txt".into(),
                },
            ],
            &opts(),
        )
        .await
        .unwrap();
        assert_eq!(
            &fs.download("seam/bytes.txt", &opts()).await.unwrap()[..],
            b"whole bytes\n"
        );
        assert_eq!(
            &fs.download("seam/disk.txt", &opts()).await.unwrap()[..],
            b"from disk\n"
        );
        assert_eq!(client.get(&s.id).await.unwrap().id, s.id);

        let seen = seen.lock().unwrap().clone();
        let count = |needle: &str| seen.iter().filter(|r| r.contains(needle)).count();
        assert_eq!(
            seen.iter().filter(|r| *r == "POST /api/sandbox").count(),
            1,
            "{seen:?}"
        );
        assert_eq!(count("/files/bulk-upload"), 1, "{seen:?}");
        assert_eq!(count("/files/bulk-download"), 2, "{seen:?}");
        assert!(
            count(&format!("GET /api/sandbox/{}", s.id)) >= 1,
            "{seen:?}"
        );
        b.stop().await;
    })
    .await;
}

/// Fails every request with `kind`, counting the tries.
struct Failing {
    kind: FetchErrorKind,
    tries: Arc<Mutex<u32>>,
}

impl Fetch for Failing {
    fn fetch(&self, _req: Request) -> BoxFuture<'static, Result<Response, FetchError>> {
        *self.tries.lock().unwrap() += 1;
        let kind = self.kind;
        Box::pin(async move { Err(FetchError::new(kind, "cannot connect: connection refused")) })
    }
}

/// A create through a `Fetch` that always fails with `kind`: its error and how many tries it made.
async fn create_failing_with(kind: FetchErrorKind) -> (forge_daytona::Error, u32) {
    let config = DaytonaConfig::new()
        .with_api_key("k-seam-test")
        .with_api_url("http://127.0.0.1:9/api")
        .with_retry(RetryConfig {
            max_attempts: 3,
            initial_backoff_ms: 1,
            max_backoff_ms: 1,
        })
        .validate()
        .unwrap();
    let tries = Arc::new(Mutex::new(0));
    let fetch = Failing {
        kind,
        tries: tries.clone(),
    };
    let client = Client::with_fetch(config, Arc::new(fetch)).unwrap();
    let e = client
        .create(&CreateParams::default(), &opts())
        .await
        .unwrap_err();
    let n = *tries.lock().unwrap();
    (e, n)
}

#[tokio::test]
async fn a_transport_failure_is_typed_and_retried_by_its_kind() {
    // Nothing was sent: even a create (not idempotent) is tried again.
    let (e, tries) = create_failing_with(FetchErrorKind::Connect).await;
    assert_eq!(e.code(), "DAYTONA_CONNECTION");
    assert!(e.to_string().contains("connection refused"), "{e}");
    assert_eq!(tries, 3);
    // Failed after sending: a create is not repeated (it may have happened).
    let (e, tries) = create_failing_with(FetchErrorKind::Other).await;
    assert_eq!(e.code(), "DAYTONA_CONNECTION");
    assert_eq!(tries, 1);
}
