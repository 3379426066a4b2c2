//! The README's detection tables are what `forge_detect::rules_doc::markdown` renders from the
//! tables detection runs on. `FORGE_UPDATE_README=1` rewrites the section instead of failing.

const START: &str = "<!-- detection:start -->\n";
const END: &str = "<!-- detection:end -->";

#[test]
fn readme_detection_tables_match_the_code() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../README.md");
    let readme = std::fs::read_to_string(&path).expect("README.md beside the workspace");
    let (Some(a), Some(b)) = (readme.find(START), readme.find(END)) else {
        panic!("README.md has no {START:?} … {END:?} section");
    };
    let current = &readme[a + START.len()..b];
    let wanted = forge_detect::rules_doc::markdown();
    if std::env::var_os("FORGE_UPDATE_README").is_some() {
        let updated = format!("{}{wanted}{}", &readme[..a + START.len()], &readme[b..]);
        std::fs::write(&path, updated).unwrap();
        return;
    }
    assert!(
        current == wanted,
        "README.md's detection section is stale: run `FORGE_UPDATE_README=1 cargo test -p forge-detect readme`"
    );
}
