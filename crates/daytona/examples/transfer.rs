//! Transfer benchmark (not a test): uploads a file from disk through this client (streamed
//! multipart `files/bulk-upload`) and downloads it back to disk (streamed), then does the same
//! with `curl`, and prints throughput, the ratio to curl and this process's peak RSS growth.
//!
//! ```text
//! cargo run --release --example transfer -p forge-daytona -- [--mib 1024] [--dir /tmp]
//! ```
//!
//! Backend: `DAYTONA_API_URL` + `DAYTONA_API_KEY` when both are set; otherwise the embedded
//! backend (`forge-local`) in a child process (this same binary with `--serve`), so its memory
//! is not counted as the client's. Peak RSS is `VmHWM` from `/proc/self/status`, reset before
//! each transfer through `/proc/self/clear_refs`, so each figure is that transfer's own peak.

use forge_daytona::{CallOptions, Client, CreateParams, DaytonaConfig, UploadSource};
use std::io::{BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

type Res<T> = Result<T, Box<dyn std::error::Error>>;

const REMOTE: &str = "bench-transfer.bin";
const MIB: u64 = 1024 * 1024;

fn main() -> Res<()> {
    let args: Vec<String> = std::env::args().collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    if args.get(1).map(String::as_str) == Some("--serve") {
        return rt.block_on(serve(args.get(2).cloned().unwrap_or_default()));
    }
    let mut mib = 1024u64;
    let mut dir = std::env::temp_dir();
    let mut it = args.iter().skip(1);
    while let Some(a) = it.next() {
        match a.as_str() {
            "--mib" => mib = it.next().ok_or("--mib N")?.parse()?,
            "--dir" => dir = PathBuf::from(it.next().ok_or("--dir PATH")?),
            other => return Err(format!("unknown argument {other}").into()),
        }
    }
    let work = dir.join(format!("forge-transfer-{}", std::process::id()));
    std::fs::create_dir_all(&work)?;
    let result = rt.block_on(run(mib, &work));
    let _ = std::fs::remove_dir_all(&work);
    result
}

/// The child process: the embedded backend, printing its URL and key, until stdin closes.
async fn serve(home: String) -> Res<()> {
    let backend = forge_local::LocalBackend::start(forge_local::LocalConfig {
        home: Some(PathBuf::from(home)),
        stop_sandboxes_on_exit: true,
        ..Default::default()
    })
    .await?;
    println!("{}\n{}", backend.api_url(), backend.api_key());
    std::io::stdout().flush()?;
    tokio::task::spawn_blocking(|| {
        let mut sink = Vec::new();
        let _ = std::io::stdin().read_to_end(&mut sink);
    })
    .await?;
    backend.shutdown().await;
    Ok(())
}

struct Child(std::process::Child);

impl Drop for Child {
    fn drop(&mut self) {
        drop(self.0.stdin.take());
        let _ = self.0.wait();
    }
}

fn status_kib(field: &str) -> u64 {
    let s = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    s.lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Resets `VmHWM` to the current RSS and returns it (KiB).
fn reset_peak() -> u64 {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    status_kib("VmRSS:")
}

/// CPU seconds of (this process, its waited-for children) so far, from `/proc/self/stat`
/// (clock ticks of 10 ms, the Linux default).
fn cpu() -> (f64, f64) {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let rest = s.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<f64> = rest
        .split_whitespace()
        .map(|x| x.parse().unwrap_or(0.0))
        .collect();
    // After the name: state is field 3, so utime (14) .. cstime (17) are at 11..=14 here.
    let tick = |i: usize| f.get(i).copied().unwrap_or(0.0) / 100.0;
    (tick(11) + tick(12), tick(13) + tick(14))
}

fn mib_s(bytes: u64, d: Duration) -> f64 {
    bytes as f64 / MIB as f64 / d.as_secs_f64()
}

/// A file of `mib` MiB of pseudo-random bytes (not compressible, not all zeros).
fn make_file(path: &Path, mib: u64) -> Res<()> {
    let mut block = vec![0u8; MIB as usize];
    let mut x = 0x9E37_79B9_7F4A_7C15u64;
    for b in &mut block {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *b = x as u8;
    }
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    for i in 0..mib {
        block[..8].copy_from_slice(&i.to_le_bytes());
        f.write_all(&block)?;
    }
    f.into_inner()
        .map_err(std::io::IntoInnerError::into_error)?
        .sync_all()?;
    Ok(())
}

fn same_file(a: &Path, b: &Path) -> Res<bool> {
    let (mut fa, mut fb) = (std::fs::File::open(a)?, std::fs::File::open(b)?);
    if fa.metadata()?.len() != fb.metadata()?.len() {
        return Ok(false);
    }
    let (mut ba, mut bb) = (vec![0u8; MIB as usize], vec![0u8; MIB as usize]);
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            return Ok(true);
        }
        fb.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

fn curl(args: &[&str]) -> Res<Duration> {
    let t = Instant::now();
    let out = Command::new("curl")
        .args(["-sS", "--fail", "-o"])
        .args(args)
        .stdin(Stdio::null())
        .output()?;
    if !out.status.success() {
        return Err(format!("curl failed: {}", String::from_utf8_lossy(&out.stderr)).into());
    }
    Ok(t.elapsed())
}

async fn run(mib: u64, work: &Path) -> Res<()> {
    let (url, key, _child) = if let (Ok(u), Ok(k)) = (
        std::env::var("DAYTONA_API_URL"),
        std::env::var("DAYTONA_API_KEY"),
    ) {
        (u, k, None)
    } else {
        let home = work.join("home");
        std::fs::create_dir_all(&home)?;
        let mut c = Command::new(std::env::current_exe()?)
            .arg("--serve")
            .arg(&home)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()?;
        let mut lines = std::io::BufReader::new(c.stdout.take().ok_or("no stdout")?).lines();
        let u = lines.next().ok_or("backend ended")??;
        let k = lines.next().ok_or("backend ended")??;
        (u, k, Some(Child(c)))
    };
    let client = Client::new(DaytonaConfig::new().with_api_key(&key).with_api_url(&url))?;
    let opts = CallOptions::new().with_timeout(Duration::from_mins(30));
    let sandbox = client.create(&CreateParams::default(), &opts).await?;
    let tb = client.toolbox(&sandbox).await?;
    let fs = tb.fs();
    let src = work.join("source.bin");
    let back = work.join("back.bin");
    let by_curl = work.join("curl.bin");
    println!(
        "backend {url}; writing a {mib} MiB file in {}",
        work.display()
    );
    make_file(&src, mib)?;
    let bytes = mib * MIB;
    // Warm-up (connection pool, first-request paths) with a small file.
    fs.upload_file(UploadSource::Bytes(vec![1u8; 4096].into()), "warm", &opts)
        .await?;

    // curl, same backend, same file. The key goes in a 0600 header file, not in argv.
    let hdr = work.join("auth.hdr");
    {
        use std::os::unix::fs::OpenOptionsExt;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&hdr)?;
        writeln!(f, "Authorization: Bearer {key}")?;
    }
    let h = format!("@{}", hdr.display());
    let base = tb.base_url().trim_end_matches('/');
    // Uploads alternate, curl first, twice each; the best of each counts (the first write of
    // a 1 GiB file and page-cache writeback otherwise favour whoever goes second).
    let curl_upload = || {
        curl(&[
            "/dev/null",
            "-H",
            &h,
            "-F",
            &format!("files[0].path={REMOTE}"),
            "-F",
            &format!("files[0].file=@{}", src.display()),
            &format!("{base}/files/bulk-upload"),
        ])
    };
    let (mut up, mut curl_up) = (Duration::MAX, Duration::MAX);
    let (mut up_rss, mut up_cpu, mut curl_up_cpu) = (0u64, 0f64, 0f64);
    for _ in 0..2 {
        let c = cpu();
        let took = curl_upload()?;
        if took < curl_up {
            (curl_up, curl_up_cpu) = (took, cpu().1 - c.1);
        }
        let base_rss = reset_peak();
        let c = cpu();
        let t = Instant::now();
        fs.upload_file(UploadSource::File(src.clone()), REMOTE, &opts)
            .await?;
        let took = t.elapsed();
        if took < up {
            (up, up_cpu) = (took, cpu().0 - c.0);
        }
        up_rss = up_rss.max(status_kib("VmHWM:").saturating_sub(base_rss));
    }
    let c1 = cpu();

    let base_rss2 = reset_peak();
    let t = Instant::now();
    let n = fs.download_to_file(REMOTE, &back, &opts).await?;
    let down = t.elapsed();
    let c2 = cpu();
    let down_rss = status_kib("VmHWM:").saturating_sub(base_rss2);
    if n != bytes || !same_file(&src, &back)? {
        return Err("downloaded file differs from the source".into());
    }
    std::fs::remove_file(&back)?;

    let c_mid = cpu();
    let curl_down = curl(&[
        by_curl.to_str().ok_or("path")?,
        "-H",
        &h,
        &format!("{base}/files/download?path={REMOTE}"),
    ])?;
    // The client fsyncs a download before renaming it into place; the same for curl's file.
    let t = Instant::now();
    std::fs::File::open(&by_curl)?.sync_all()?;
    let curl_fsync = t.elapsed();
    let c3 = cpu();
    if !same_file(&src, &by_curl)? {
        return Err("curl's download differs from the source".into());
    }
    std::fs::remove_file(&by_curl)?;
    // The same route as the client's download (multipart answer), to tell server from client.
    let t = Instant::now();
    curl(&[
        work.join("bulk.out").to_str().ok_or("path")?,
        "-H",
        &h,
        "-H",
        "Content-Type: application/json",
        "-d",
        &format!("{{\"paths\":[\"{REMOTE}\"]}}"),
        &format!("{base}/files/bulk-download"),
    ])?;
    let curl_bulk = t.elapsed();
    let c_bulk = cpu();
    let _ = client.delete(sandbox.id.as_str(), false, &opts).await;

    let row = |name: &str, ours: Duration, theirs: Duration, rss: u64, cpu: (f64, f64)| {
        println!(
            "{name:<20} client {:>6.1} MiB/s ({:>5.2} s, CPU {:>4.2} s, peak RSS +{:>5.1} MiB)   \
             curl {:>6.1} MiB/s ({:>5.2} s, CPU {:>4.2} s)   ratio {:>3.0}%",
            mib_s(bytes, ours),
            ours.as_secs_f64(),
            cpu.0,
            rss as f64 / 1024.0,
            mib_s(bytes, theirs),
            theirs.as_secs_f64(),
            cpu.1,
            100.0 * theirs.as_secs_f64() / ours.as_secs_f64(),
        );
    };
    println!("{mib} MiB, one run (ratio = curl time / client time):");
    row("upload", up, curl_up, up_rss, (up_cpu, curl_up_cpu));
    row(
        "download",
        down,
        curl_down,
        down_rss,
        (c2.0 - c1.0, c3.1 - c_mid.1),
    );
    row(
        "download (curl bulk)",
        down,
        curl_bulk,
        down_rss,
        (c2.0 - c1.0, c_bulk.1 - c3.1),
    );
    row(
        "download (fsync)",
        down,
        curl_down + curl_fsync,
        down_rss,
        (c2.0 - c1.0, c3.1 - c_mid.1),
    );
    Ok(())
}
