//! Environment that a dependency needs, as data: at install (download-only postinstalls a
//! preview never uses, skipped by the switches their packages document) and in the dev server
//! (old toolchains on a new Node, telemetry round trips, validation that needs secrets).
//!
//! A row applies when the app (or, for the install, any package the install covers) depends on
//! `dep`, below `below_major` when given. Each row says why, and the answer's evidence repeats
//! it.

use std::collections::BTreeMap;

use crate::manifest::{major, Manifest};

/// When the variable is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// The install command (`installEnv`).
    Install,
    /// The dev server and the build (`env`).
    Dev,
}

/// One row of [`DEP_ENV`].
#[derive(Debug, Clone, Copy)]
pub struct DepEnv {
    pub dep: &'static str,
    /// Applies only when the dependency's range starts below this major.
    pub below_major: Option<u32>,
    pub phase: Phase,
    pub var: &'static str,
    pub value: &'static str,
    pub why: &'static str,
}

const fn install(
    dep: &'static str,
    var: &'static str,
    value: &'static str,
    why: &'static str,
) -> DepEnv {
    DepEnv {
        dep,
        below_major: None,
        phase: Phase::Install,
        var,
        value,
        why,
    }
}

const fn dev(
    dep: &'static str,
    var: &'static str,
    value: &'static str,
    why: &'static str,
) -> DepEnv {
    DepEnv {
        dep,
        below_major: None,
        phase: Phase::Dev,
        var,
        value,
        why,
    }
}

/// `NODE_OPTIONS=--openssl-legacy-provider` for a webpack 4 toolchain: webpack 4 hashes with
/// MD4, which OpenSSL 3 (Node ≥ 17) refuses with `ERR_OSSL_EVP_UNSUPPORTED`.
const fn webpack4(dep: &'static str, below: u32) -> DepEnv {
    DepEnv {
        dep,
        below_major: Some(below),
        phase: Phase::Dev,
        var: "NODE_OPTIONS",
        value: "--openssl-legacy-provider",
        why: "a webpack 4 toolchain hashes with MD4, which Node 17+ refuses (ERR_OSSL_EVP_UNSUPPORTED) without OpenSSL's legacy provider",
    }
}

const PLAYWRIGHT: &str = "Playwright downloads its browsers at install; a preview never runs them";

/// The table.
pub static DEP_ENV: &[DepEnv] = &[
    install(
        "cypress",
        "CYPRESS_INSTALL_BINARY",
        "0",
        "Cypress downloads its test runner (~500 MB) at install; a preview never runs it",
    ),
    install(
        "playwright",
        "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD",
        "1",
        PLAYWRIGHT,
    ),
    install(
        "@playwright/test",
        "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD",
        "1",
        PLAYWRIGHT,
    ),
    install(
        "playwright-chromium",
        "PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD",
        "1",
        PLAYWRIGHT,
    ),
    install(
        "puppeteer",
        "PUPPETEER_SKIP_DOWNLOAD",
        "true",
        "Puppeteer (19+) downloads Chrome at install; a preview never runs it",
    ),
    install(
        "puppeteer",
        "PUPPETEER_SKIP_CHROMIUM_DOWNLOAD",
        "true",
        "Puppeteer (before 19) downloads Chromium at install; a preview never runs it",
    ),
    install(
        "electron",
        "ELECTRON_SKIP_BINARY_DOWNLOAD",
        "1",
        "Electron downloads its binary at install; a web preview never runs it",
    ),
    install(
        "chromedriver",
        "CHROMEDRIVER_SKIP_DOWNLOAD",
        "true",
        "chromedriver downloads a driver binary at install; a preview never runs it",
    ),
    install(
        "geckodriver",
        "GECKODRIVER_SKIP_DOWNLOAD",
        "true",
        "geckodriver downloads a driver binary at install; a preview never runs it",
    ),
    install(
        "@sentry/cli",
        "SENTRYCLI_SKIP_DOWNLOAD",
        "1",
        "@sentry/cli downloads its binary at install; only release uploads use it",
    ),
    install(
        "husky",
        "HUSKY",
        "0",
        "husky installs git hooks at install; a preview never commits",
    ),
    webpack4("react-scripts", 5),
    webpack4("webpack", 5),
    webpack4("@vue/cli-service", 5),
    webpack4("gatsby", 3),
    webpack4("next", 11),
    webpack4("nuxt", 3),
    webpack4("vuepress", 2),
    webpack4("preact-cli", 4),
    webpack4("@angular-devkit/build-angular", 12),
    webpack4("gridsome", 1),
    dev(
        "@t3-oss/env-nextjs",
        "SKIP_ENV_VALIDATION",
        "1",
        "T3 env validation is skipped so the app starts without its secrets",
    ),
    dev(
        "@t3-oss/env-core",
        "SKIP_ENV_VALIDATION",
        "1",
        "T3 env validation is skipped so the app starts without its secrets",
    ),
    dev(
        "next",
        "NEXT_TELEMETRY_DISABLED",
        "1",
        "no telemetry round trip from a sandbox",
    ),
    dev(
        "nuxt",
        "NUXT_TELEMETRY_DISABLED",
        "1",
        "no telemetry prompt or round trip from a sandbox",
    ),
    dev(
        "astro",
        "ASTRO_TELEMETRY_DISABLED",
        "1",
        "no telemetry round trip from a sandbox",
    ),
    dev(
        "gatsby",
        "GATSBY_TELEMETRY_DISABLED",
        "1",
        "no telemetry round trip from a sandbox",
    ),
    dev(
        "@angular/cli",
        "NG_CLI_ANALYTICS",
        "false",
        "the Angular CLI would ask whether to share analytics and wait for an answer",
    ),
    dev(
        "nx",
        "NX_DAEMON",
        "false",
        "Nx's daemon would outlive the dev command",
    ),
    dev(
        "nx",
        "NX_NO_CLOUD",
        "true",
        "no Nx Cloud round trip from a sandbox",
    ),
    dev(
        "turbo",
        "TURBO_TELEMETRY_DISABLED",
        "1",
        "no telemetry round trip from a sandbox",
    ),
];

/// The variables of `phase` that `manifests` call for, with one evidence line each.
pub(crate) fn for_phase(
    phase: Phase,
    manifests: &[&Manifest],
) -> (BTreeMap<String, String>, Vec<String>) {
    let mut env = BTreeMap::new();
    let mut evidence = Vec::new();
    for row in DEP_ENV.iter().filter(|r| r.phase == phase) {
        let hit = manifests.iter().any(|m| {
            m.deps.get(row.dep).is_some_and(|range| {
                row.below_major
                    .is_none_or(|below| major(range).is_some_and(|m| m < below))
            })
        });
        if hit && !env.contains_key(row.var) {
            env.insert(row.var.to_string(), row.value.to_string());
            evidence.push(format!(
                "{}={} ({}): {}",
                row.var, row.value, row.dep, row.why
            ));
        }
    }
    (env, evidence)
}
