//! Benchmark hook: time from a dev server's first good answer through the preview proxy to
//! `verify_preview` returning ok (issue goal: median under 150 ms), on the embedded backend.
//!
//! Each run starts a stand-in dev server (node, listening after `DELAY_MS`) in a session,
//! then runs, side by side, `verify_preview` and a watcher that GETs the preview URL every
//! 2 ms and notes its first 200. Prints one JSON line: the samples and their median.
//!
//! `cargo run -p forge-preview --example verify_bench -- [runs=15] [delay_ms=300]`

use forge_daytona::{CallOptions, Client, CreateParams, DaytonaConfig, UploadItem};
use forge_local::{LocalBackend, LocalConfig};
use forge_preview::{verify_preview, DevProcess, VerifyOptions};
use std::time::{Duration, Instant};

const SERVER_JS: &str = r"
const [port, delay] = process.argv.slice(2).map(Number);
setTimeout(() => process.exit(0), 60000);
setTimeout(() => require('http').createServer((q, s) => s.end('<h1>ok</h1>'))
  .listen(port, '127.0.0.1', () => console.log(`  ➜  Local:   http://localhost:${port}/`)), delay);
";

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(15);
    let delay: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(300);
    let home = tempfile::tempdir()?;
    let backend = LocalBackend::start(LocalConfig {
        home: Some(home.path().to_path_buf()),
        stop_sandboxes_on_exit: true,
        ..Default::default()
    })
    .await?;
    let client = Client::new(
        DaytonaConfig::new()
            .with_api_key(backend.api_key())
            .with_api_url(backend.api_url()),
    )?;
    let sandbox = client
        .create(&CreateParams::default(), &CallOptions::new())
        .await?;
    let tb = client.toolbox(&sandbox).await?;
    let upload = UploadItem {
        source: SERVER_JS.into(),
        destination: "server.js".into(),
    };
    tb.fs().upload(vec![upload], &CallOptions::new()).await?;
    let watcher = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let mut samples = Vec::new();
    for run in 0..runs {
        let port = 3000 + (run as u16 * 7 + std::process::id() as u16 % 1000) % 6000;
        let session = format!("bench{run}");
        tb.process().create_session(&session).await?;
        let cmd = tb
            .process()
            .execute_session_command(
                &session,
                &format!("node server.js {port} {delay}"),
                true,
                &CallOptions::new(),
            )
            .await?;
        let link = client.preview_url(&sandbox.id, port).await?;
        let dev = DevProcess {
            session_id: session.clone(),
            command_id: cmd.cmd_id,
        };
        let opts = VerifyOptions {
            port,
            deadline: Duration::from_secs(30),
            ..VerifyOptions::default()
        };
        let first_good = async {
            loop {
                let ok = watcher
                    .get(&link.url)
                    .header("X-Daytona-Preview-Token", &link.token)
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ok {
                    return Instant::now();
                }
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        };
        let verified = async {
            let r = verify_preview(&client, &sandbox.id, &tb, Some(&dev), &opts).await;
            (Instant::now(), r)
        };
        let (good_at, (done_at, report)) = tokio::join!(first_good, verified);
        let report = report?;
        if report.ok {
            samples.push(done_at.saturating_duration_since(good_at).as_secs_f64() * 1000.0);
        } else {
            eprintln!("run {run}: not ok: {}", serde_json::to_string(&report)?);
        }
        let _ = tb.process().delete_session(&session).await;
    }
    let mut sorted = samples.clone();
    sorted.sort_by(f64::total_cmp);
    let median = sorted.get(sorted.len() / 2).copied();
    println!(
        "{}",
        serde_json::json!({
            "bench": "first good answer -> verify ok",
            "runs": runs,
            "delayMs": delay,
            "medianMs": median,
            "samplesMs": samples,
        })
    );
    Ok(())
}
