//! The glob of the backend's `files/search` (crates/local/src/glob.rs, compiled in as it is):
//! never panics, refuses what passes its caps, and agrees with a memoised reference matcher on
//! the patterns both understand (`*`, `?` and literal characters). Every match is bounded by
//! (pattern × name) steps, so a slow input here is a finding too (libFuzzer's -timeout).
#![no_main]

#[path = "../../crates/local/src/glob.rs"]
#[allow(dead_code)]
mod glob;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;

#[derive(Arbitrary, Debug)]
struct Input {
    pattern: String,
    names: Vec<String>,
}

/// `*`, `?` and literals, by dynamic programming over (pattern, name) positions.
fn reference(p: &[char], n: &[char]) -> bool {
    let mut memo = vec![vec![None; n.len() + 1]; p.len() + 1];
    fn go(p: &[char], n: &[char], i: usize, j: usize, m: &mut Vec<Vec<Option<bool>>>) -> bool {
        if let Some(v) = m[i][j] {
            return v;
        }
        let v = match p.get(i) {
            None => j == n.len(),
            Some('*') => go(p, n, i + 1, j, m) || (j < n.len() && go(p, n, i, j + 1, m)),
            Some('?') => j < n.len() && go(p, n, i + 1, j + 1, m),
            Some(c) => j < n.len() && n[j] == *c && go(p, n, i + 1, j + 1, m),
        };
        m[i][j] = Some(v);
        v
    }
    go(p, n, 0, 0, &mut memo)
}

fuzz_target!(|input: Input| {
    let Ok(g) = glob::Glob::new(&input.pattern) else {
        return;
    };
    let simple = !input.pattern.contains(['[', '\\']);
    let pat: Vec<char> = input.pattern.chars().collect();
    for name in input.names.iter().take(16) {
        let got = g.matches(name);
        if simple {
            let n: Vec<char> = name.chars().collect();
            assert_eq!(got, reference(&pat, &n), "{:?} vs {name:?}", input.pattern);
        }
    }
});
