//! Fixture tests: every `tests/fixtures/*.json` holds `{about, files: {path: content},
//! expect}`. Each fixture is written to a temporary folder and detected twice, through the
//! local-folder source (the real walker) and through the in-memory source; both answers must
//! be equal and match `expect`. The fixtures are written from each framework's documented
//! facts (the package.json its generator writes, its config files, its lockfile names).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use forge_detect::{
    detect_files, detect_source, frameworks::FRAMEWORKS, DetectOptions, LocalSource, WalkLimits,
};
use serde_json::Value;

fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}

fn load() -> Vec<(String, Value)> {
    let mut out: Vec<(String, Value)> = std::fs::read_dir(fixtures_dir())
        .expect("fixtures folder")
        .filter_map(std::result::Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| {
            let name = e.path().file_stem().unwrap().to_string_lossy().to_string();
            let v: Value = serde_json::from_slice(&std::fs::read(e.path()).unwrap())
                .unwrap_or_else(|err| panic!("{name}: {err}"));
            (name, v)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

fn write_tree(root: &Path, files: &serde_json::Map<String, Value>) {
    let _ = std::fs::remove_dir_all(root);
    std::fs::create_dir_all(root).unwrap();
    for (path, content) in files {
        let p = root.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, content.as_str().unwrap_or_default()).unwrap();
    }
}

fn check(name: &str, d: &Value, expect: &Value, errors: &mut Vec<String>) {
    let mut eq = |what: &str, got: &Value, want: &Value| {
        if got != want {
            errors.push(format!("{name}: {what} = {got}, expected {want}"));
        }
    };
    for (key, want) in expect.as_object().unwrap() {
        match key.as_str() {
            "framework" => eq(
                key,
                d.pointer("/framework/id").unwrap_or(&Value::Null),
                want,
            ),
            "version" => eq(
                key,
                d.pointer("/framework/version").unwrap_or(&Value::Null),
                want,
            ),
            "pm" => eq(key, &d["packageManager"]["name"], want),
            "pmVersion" => eq(key, &d["packageManager"]["version"], want),
            "pmSource" => eq(key, &d["packageManager"]["source"], want),
            "pmFetch" => eq(key, &d["packageManager"]["fetchSpec"], want),
            "tools" => eq(key, &d["monorepo"]["tools"], want),
            "env" => {
                for (k, v) in want.as_object().unwrap() {
                    eq(
                        &format!("env.{k}"),
                        d["env"].get(k).unwrap_or(&Value::Null),
                        v,
                    );
                }
            }
            "apps" => {
                let got: Vec<Value> = d["apps"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|a| a["root"].clone())
                    .collect();
                eq(key, &Value::Array(got), want);
            }
            "appPorts" => {
                for (root, port) in want.as_object().unwrap() {
                    let app = d["apps"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|a| a["root"] == *root);
                    eq(
                        &format!("apps[{root}].port"),
                        app.map_or(&Value::Null, |a| &a["port"]),
                        port,
                    );
                }
            }
            "warning" | "noWarning" => {
                let codes: BTreeSet<&str> = d["warnings"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|w| w["code"].as_str())
                    .collect();
                let has = codes.contains(want.as_str().unwrap());
                if has != (key == "warning") {
                    eq(
                        &format!("warning {want} present; warnings {codes:?}"),
                        &Value::Bool(has),
                        &Value::Bool(key == "warning"),
                    );
                }
            }
            "options" => {}
            k => eq(k, &d[k], want),
        }
    }
}

#[test]
fn fixtures_match_their_expectations_through_both_sources() {
    let base = std::env::temp_dir().join(format!("forge-detect-fixtures-{}", std::process::id()));
    let mut errors = Vec::new();
    let all = load();
    assert!(
        all.len() >= 60,
        "expected many fixtures, found {}",
        all.len()
    );
    for (name, fx) in &all {
        let files = fx["files"].as_object().unwrap();
        let expect = &fx["expect"];
        let opts = DetectOptions {
            root: expect
                .pointer("/options/root")
                .and_then(Value::as_str)
                .map(str::to_string),
            ..Default::default()
        };
        let dir = base.join(name);
        write_tree(&dir, files);
        let local = detect_source(&LocalSource::new(&dir), "", WalkLimits::default(), &opts)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let mem = detect_files(
            files
                .iter()
                .map(|(p, c)| (p.clone(), c.as_str().unwrap_or_default().to_string())),
            &opts,
        )
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        let local = serde_json::to_value(&local).unwrap();
        let mem = serde_json::to_value(&mem).unwrap();
        if local != mem {
            errors.push(format!(
                "{name}: local and in-memory answers differ:\nlocal {local:#}\nmemory {mem:#}"
            ));
        }
        check(name, &local, expect, &mut errors);
    }
    let _ = std::fs::remove_dir_all(&base);
    assert!(
        errors.is_empty(),
        "{} fixture mismatches:\n{}",
        errors.len(),
        errors.join("\n")
    );
}

#[test]
fn every_framework_in_the_table_has_a_fixture() {
    let covered: BTreeSet<String> = load()
        .iter()
        .filter_map(|(_, f)| {
            f.pointer("/expect/framework")
                .and_then(Value::as_str)
                .map(str::to_string)
        })
        .collect();
    let missing: Vec<&str> = FRAMEWORKS
        .iter()
        .map(|f| f.id)
        .filter(|id| !covered.contains(*id))
        .collect();
    assert!(
        missing.is_empty(),
        "frameworks without a fixture: {missing:?}"
    );
    assert!(
        FRAMEWORKS.len() >= 40,
        "the table has {} entries",
        FRAMEWORKS.len()
    );
}
