//! The port a dev server announces, on the exact lines of reference §4.

use forge_preview::{announced_port, port_from_log, strip_ansi};

#[test]
fn every_framework_line() {
    let cases: [(&str, u16); 8] = [
        ("  ➜  Local:   http://localhost:5173/\n  ➜  Network: use --host to expose\n", 5173),
        ("  ➜  Local:   http://localhost:4200/", 4200),
        ("** Angular Live Development Server is listening on localhost:4200, open your browser on http://localhost:4200/ **", 4200),
        ("   ▲ Next.js 16.4.6\n   - Local:         http://localhost:3000\n   - Network:       http://10.0.0.5:3000\n\n ✓ Starting...\n ✓ Ready in 850ms\n", 3000),
        (" astro  v6.0.5 ready in 412 ms\n\n┃ Local    http://localhost:4321/\n┃ Network  use --host to expose\n", 4321),
        ("  ➜ Local:    http://localhost:3000/\n  ➜ Network:  use --host to expose\n", 3000),
        ("- ready started server on 0.0.0.0:3000, url: http://localhost:3000", 3000),
        ("Server listening on port 8080", 8080),
    ];
    for (log, port) in cases {
        assert_eq!(port_from_log(log), Some(port), "{log}");
        assert!(announced_port(log).unwrap().strong, "{log}");
    }
}

#[test]
fn vite_with_real_colours_after_moving_off_a_busy_port() {
    // What vite 8 writes to a terminal when 5173 is taken (picocolors codes, the port in bold
    // inside the cyan URL).
    let log = "Port 5173 is in use, trying another one...\n\n  \x1b[32m\x1b[1mVITE\x1b[22m v8.3.8\x1b[39m  \x1b[2mready in \x1b[0m\x1b[1m312\x1b[22m\x1b[2m\x1b[0m ms\x1b[22m\n\n  \x1b[32m➜\x1b[39m  \x1b[1mLocal\x1b[22m:   \x1b[36mhttp://localhost:\x1b[1m5174\x1b[22m/\x1b[39m\n  \x1b[32m➜\x1b[39m  \x1b[1mNetwork\x1b[22m\x1b[2m: use \x1b[22m\x1b[1m--host\x1b[22m\x1b[2m to expose\x1b[22m\n";
    assert!(
        !log.contains("localhost:5174"),
        "the digits are coloured apart"
    );
    assert!(strip_ansi(log).contains("Local:   http://localhost:5174/"));
    assert_eq!(port_from_log(log), Some(5174));
}

#[test]
fn the_last_announcement_wins_and_urls_are_a_weak_fallback() {
    let restarted = "  ➜  Local:   http://localhost:5173/\nserver restarted.\n  ➜  Local:   http://localhost:5175/\n";
    assert_eq!(port_from_log(restarted), Some(5175));
    let fallback = "App running at http://127.0.0.1:8000/ (press CTRL+C to quit)";
    let a = announced_port(fallback).unwrap();
    assert_eq!((a.port, a.strong), (8000, false));
    assert_eq!(
        port_from_log("Serving HTTP on 0.0.0.0 port 8000 (http://0.0.0.0:8000/) ..."),
        Some(8000)
    );
    assert_eq!(port_from_log("Compiled successfully.\nnothing else"), None);
    assert_eq!(port_from_log(""), None);
}
