//! `fs` against the embedded backend over real HTTP.

use crate::common;

use common::{bounded, Backend};
use forge_daytona::{CallOptions, CreateParams, Permissions, UploadItem, UploadSource};
use std::time::Duration;

fn opts() -> CallOptions {
    CallOptions::new().with_timeout(Duration::from_mins(1))
}

#[tokio::test]
async fn files_round_trip() {
    bounded(async {
        let b = Backend::start().await;
        let fs = b.toolbox().await.fs();

        fs.create_folder("project/deep", "755").await.unwrap();
        fs.upload_file(
            UploadSource::from("hello world\n"),
            "project/hello.txt",
            &opts(),
        )
        .await
        .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let local = dir.path().join("local.txt");
        std::fs::write(&local, "from disk\n").unwrap();
        let reader: Box<dyn tokio::io::AsyncRead + Send + Sync + Unpin> =
            Box::new(std::io::Cursor::new(b"from a reader\n".to_vec()));
        fs.upload(
            vec![
                UploadItem {
                    source: UploadSource::File(local.clone()),
                    destination: "project/sub/disk.txt".into(),
                },
                UploadItem {
                    source: UploadSource::Reader(reader),
                    destination: "project/reader.txt".into(),
                },
            ],
            &opts(),
        )
        .await
        .unwrap();

        let mut names: Vec<String> = fs
            .list("project")
            .await
            .unwrap()
            .into_iter()
            .map(|f| f.name)
            .collect();
        names.sort();
        assert_eq!(names, ["deep", "hello.txt", "reader.txt", "sub"]);
        let info = fs.info("project/hello.txt").await.unwrap();
        assert_eq!((info.size, info.is_dir), (12, false));

        assert_eq!(
            &fs.download("project/sub/disk.txt", &opts()).await.unwrap()[..],
            b"from disk\n"
        );
        let target = dir.path().join("down.txt");
        let n = fs
            .download_to_file("project/reader.txt", &target, &opts())
            .await
            .unwrap();
        assert_eq!(n, 14);
        assert_eq!(std::fs::read(&target).unwrap(), b"from a reader\n");

        let many = fs
            .download_many(
                &["project/hello.txt".into(), "project/missing.txt".into()],
                &opts(),
            )
            .await
            .unwrap();
        assert_eq!(many[0].content.as_deref(), Some(&b"hello world\n"[..]));
        let e = many[1].error.as_ref().expect("missing file has an error");
        assert_eq!(e.code(), "DAYTONA_NOT_FOUND", "{e}");
        let e = fs
            .download("project/missing.txt", &opts())
            .await
            .unwrap_err();
        assert_eq!(e.code(), "DAYTONA_NOT_FOUND");
        let e = fs
            .download_to_file("project/missing.txt", &dir.path().join("m"), &opts())
            .await
            .unwrap_err();
        assert_eq!(e.code(), "DAYTONA_NOT_FOUND");
        assert!(!dir.path().join("m").exists() && !dir.path().join("m.part").exists());

        let found = fs.find("project", "hello").await.unwrap();
        assert!(
            found
                .iter()
                .any(|m| m.file.ends_with("hello.txt") && m.line == 1),
            "{found:?}"
        );
        let named = fs.search("project", "*.txt").await.unwrap();
        assert_eq!(named.len(), 3, "{named:?}");

        fs.replace_in_file("project/hello.txt", "world", "there")
            .await
            .unwrap();
        assert_eq!(
            &fs.download("project/hello.txt", &opts()).await.unwrap()[..],
            b"hello there\n"
        );

        fs.chmod("project/hello.txt", "600").await.unwrap();
        assert!(fs
            .info("project/hello.txt")
            .await
            .unwrap()
            .permissions
            .ends_with("600"));
        fs.set_permissions(
            "project/hello.txt",
            &Permissions {
                mode: Some("644".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();

        fs.move_files("project/hello.txt", "project/moved.txt")
            .await
            .unwrap();
        assert_eq!(
            fs.info("project/hello.txt").await.unwrap_err().code(),
            "DAYTONA_NOT_FOUND"
        );

        fs.delete("project/moved.txt", false).await.unwrap();
        let e = fs.delete("project/sub", false).await.unwrap_err();
        assert_eq!(e.code(), "DAYTONA_BAD_REQUEST", "{e}");
        let results = fs
            .delete_many(&["project/sub".into(), "project/nope".into()])
            .await;
        assert!(results[0].error.is_none());
        assert_eq!(
            results[1].error.as_ref().map(forge_daytona::Error::code),
            Some("DAYTONA_NOT_FOUND")
        );
        assert!(fs.create_folder("x", "75a").await.is_err());
        b.stop().await;
    })
    .await;
}

#[tokio::test]
async fn large_file_streams_both_ways() {
    bounded(async {
        let b = Backend::start().await;
        let fs = b.toolbox().await.fs();
        let dir = tempfile::tempdir().unwrap();
        let src = dir.path().join("big.bin");
        let data: Vec<u8> = (0..24 * 1024 * 1024u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        std::fs::write(&src, &data).unwrap();
        fs.upload_file(UploadSource::File(src), "big.bin", &opts())
            .await
            .unwrap();
        assert_eq!(fs.info("big.bin").await.unwrap().size, data.len() as u64);
        let dst = dir.path().join("back.bin");
        let n = fs.download_to_file("big.bin", &dst, &opts()).await.unwrap();
        assert_eq!(n, data.len() as u64);
        assert!(std::fs::read(&dst).unwrap() == data);
        b.stop().await;
    })
    .await;
}

/// A downloaded body not yet taken counts against the client's reading budget (4 MiB): while a
/// 4 MiB body is held, another download waits with its body unread; once the first is taken,
/// the other finishes. Both bodies arrive whole.
#[tokio::test]
async fn a_body_not_yet_taken_holds_back_other_downloads() {
    bounded(async {
        let b = Backend::start().await;
        let fs = b.toolbox().await.fs();
        let big: Vec<u8> = (0..4 * 1024 * 1024u32).map(|i| (i % 251) as u8).collect();
        fs.upload_file(UploadSource::Bytes(big.clone().into()), "big.bin", &opts())
            .await
            .unwrap();
        fs.upload_file(UploadSource::from("small"), "small.txt", &opts())
            .await
            .unwrap();

        let held = fs.download_body("big.bin", &opts()).await.unwrap();
        let other = {
            let fs = fs.clone();
            tokio::spawn(async move { fs.download("small.txt", &opts()).await })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !other.is_finished(),
            "a download went past a held 4 MiB body"
        );
        let taken = held.into_bytes();
        let small = tokio::time::timeout(Duration::from_secs(30), other)
            .await
            .expect("the waiting download finishes once the body is taken")
            .unwrap()
            .unwrap();
        assert_eq!(&small[..], b"small");
        assert!(taken[..] == big[..]);
        b.stop().await;
    })
    .await;
}

/// Not a test: `FORGE_TRANSFER_MIB=512 cargo test --release -p forge-daytona --test main --
/// --ignored --nocapture toolbox_fs::transfer_figures` prints throughput of a streamed upload and
/// download through the client (the benchmark in bench/ compares with curl).
#[tokio::test]
#[ignore = "slow: run by hand"]
async fn transfer_figures() {
    let mib: usize = std::env::var("FORGE_TRANSFER_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256);
    let b = Backend::start().await;
    let s = b
        .client
        .create(&CreateParams::default(), &opts())
        .await
        .unwrap();
    let fs = b.client.toolbox(&s).await.unwrap().fs();
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("big.bin");
    {
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(&src).unwrap());
        let block: Vec<u8> = (0..1024 * 1024u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
            .collect();
        for _ in 0..mib {
            f.write_all(&block).unwrap();
        }
    }
    let t = std::time::Instant::now();
    fs.upload_file(UploadSource::File(src), "big.bin", &CallOptions::default())
        .await
        .unwrap();
    let up = t.elapsed();
    let t = std::time::Instant::now();
    fs.download_to_file(
        "big.bin",
        &dir.path().join("back.bin"),
        &CallOptions::default(),
    )
    .await
    .unwrap();
    let down = t.elapsed();
    eprintln!(
        "{mib} MiB: upload {:.0} MiB/s, download {:.0} MiB/s",
        mib as f64 / up.as_secs_f64(),
        mib as f64 / down.as_secs_f64()
    );
    b.stop().await;
}
