//! The client's reader of multipart answers (bulk download: multer plus our part matching,
//! error-part parsing and the one-part fast path's head parser) on arbitrary bytes cut into
//! arbitrary pieces, as a hostile or broken server may send: never panics, and when it
//! answers, it answers once per path asked.
#![no_main]

use arbitrary::Arbitrary;
use forge_daytona::toolbox::fs::{parse_download_answer, parse_single_part_head};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

const BOUNDARY: &str = "DAYTONA-FILE-BOUNDARY";

#[derive(Arbitrary, Debug)]
struct Input {
    body: Vec<u8>,
    piece: u16,
    paths: Vec<String>,
}

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    })
}

fuzz_target!(|input: Input| {
    let paths: Vec<String> = input.paths.into_iter().take(8).collect();
    let piece = usize::from(input.piece).max(1);
    if let Ok(results) =
        runtime().block_on(parse_download_answer(&input.body, piece, BOUNDARY, &paths))
    {
        assert_eq!(results.len(), paths.len());
    }
    if let Some((at, _len)) = parse_single_part_head(&input.body, BOUNDARY) {
        assert!(at <= input.body.len());
    }
});
