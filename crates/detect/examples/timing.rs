//! `cargo run --release -p forge-detect --example timing -- PATH [RUNS]`: median time of one
//! detection in this process (no napi, no process start). PATH is a folder (`detect_dir`) or a
//! fixture JSON file (`detect_files` on its `files` map).

fn main() {
    let mut args = std::env::args().skip(1);
    let path = args.next().unwrap_or_else(|| ".".into());
    let runs: usize = args.next().and_then(|r| r.parse().ok()).unwrap_or(200);
    let opts = forge_detect::DetectOptions::default();
    let files: Option<Vec<(String, String)>> = std::path::Path::new(&path)
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"))
        .then(|| {
            let v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&path).unwrap_or_default())
                    .unwrap_or_default();
            v["files"]
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, c)| (k.clone(), c.as_str().unwrap_or_default().to_string()))
                        .collect()
                })
                .unwrap_or_default()
        });
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = std::time::Instant::now();
        let d = match &files {
            Some(f) => {
                forge_detect::detect_files(f.iter().map(|(p, c)| (p.as_str(), c.as_str())), &opts)
            }
            None => forge_detect::detect_dir(&path, &opts),
        };
        times.push(t.elapsed());
        std::hint::black_box(d.ok());
    }
    times.sort();
    println!("{path}: median {:?}, min {:?}", times[runs / 2], times[0]);
}
