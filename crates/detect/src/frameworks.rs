//! The frameworks table: every framework is data (how to recognise it, what beats it, how
//! to start it so that it listens on 0.0.0.0 on a chosen port). The matcher in
//! [`crate::matcher`] reads it; nothing about a specific framework lives in code.
//!
//! Precedence is never table order. It is, in this order:
//! 1. explicit `supersedes` (a meta-framework over the Vite flavour it is built on, Nuxt over
//!    Nitro, Waku over Hono, …), applied transitively;
//! 2. [`Kind`]: a framework beats a bare build tool, which beats a server library, which
//!    beats tooling (Storybook), which beats the plain-Node / static fallbacks;
//! 3. more matched signals;
//! 4. only then table order, and the result carries an `AMBIGUOUS_FRAMEWORK` warning.

/// Broad class of a table entry; the second precedence rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// Fallbacks: a plain Node server, a static folder.
    Runtime = 0,
    /// Tools that run next to an app (Storybook): only the answer when nothing else is.
    Tooling = 1,
    /// Server libraries (Express, Hono, …): started through the project's own script.
    Server = 2,
    /// Bundlers with a dev server (bare Vite, Parcel).
    BuildTool = 3,
    /// App frameworks and meta-frameworks.
    Framework = 4,
}

/// One detection signal, evaluated against a package folder.
#[derive(Debug, Clone, Copy)]
pub enum Cond {
    /// The package (dependencies or devDependencies) depends on this name.
    Dep(&'static str),
    /// The dependency's range starts below this major version.
    DepMajorBelow(&'static str, u32),
    /// A file exists; `*` is allowed in the last segment (`vite.config.*`).
    File(&'static str),
    /// A matching file contains this text.
    FileContains(&'static str, &'static str),
    /// A `dev`/`start` script runs a server process (node, tsx, nodemon, bun, serve, …).
    ServerScript,
    /// An entry file (`server.*`, `index.*`, `app.*`, `main.*`, also under `src/`) imports
    /// this module.
    EntryImports(&'static str),
}

/// How to start the dev server.
#[derive(Debug, Clone, Copy)]
pub enum Dev {
    /// The framework's own binary. `args` is the default subcommand; when the project's
    /// `dev`/`start` script is a single call of `bin` (or one of `alt_bins`), its arguments
    /// are kept instead (minus host/port flags, whose port is read as a pin). `flags` are then
    /// appended. Placeholders: `{host}`, `{port}`, `{allowedHost}` (first preview host),
    /// `{allowedHosts}` (comma-joined), `{docsDir}`, `{entry}`.
    Bin {
        bin: &'static str,
        alt_bins: &'static [&'static str],
        args: &'static str,
        flags: &'static str,
    },
    /// No framework binary that takes a port: the project's own script (the first of
    /// `scripts` that exists) is the only way in; the port goes through `PORT`.
    Script { scripts: &'static [&'static str] },
    /// Plain files: served by Python's http.server.
    Static,
}

/// One framework.
#[derive(Debug, Clone, Copy)]
pub struct Framework {
    pub id: &'static str,
    pub name: &'static str,
    pub kind: Kind,
    /// All must match.
    pub every: &'static [Cond],
    /// At least one must match (when not empty).
    pub some: &'static [Cond],
    /// None may match.
    pub none: &'static [Cond],
    /// Ids this one removes when both match; `vite-*` names a prefix.
    pub supersedes: &'static [&'static str],
    /// Dependencies whose version is reported, first present wins.
    pub version_of: &'static [&'static str],
    pub dev: Dev,
    /// Env for the dev process (placeholders as in [`Dev::Bin`]).
    pub env: &'static [(&'static str, &'static str)],
    /// The framework's own default port.
    pub port: u16,
    /// An older default port: `(dependency, below this major, port)`.
    pub old_port: Option<(&'static str, u32, u16)>,
    pub build: Option<&'static str>,
    /// Something a user must know (shown as evidence).
    pub note: Option<&'static str>,
}

use Cond::{Dep, File, FileContains, ServerScript};

const VITE_FLAGS: &str = "--host {host} --port {port} --strictPort";
/// Vite (6.0.9+) adds this to `server.allowedHosts`, so the preview host is not answered
/// with 403 "Blocked request"; Vite 8 splits it on commas (older versions take one value).
const VITE_ENV: &[(&str, &str)] = &[("__VITE_ADDITIONAL_SERVER_ALLOWED_HOSTS", "{allowedHosts}")];
/// Env for servers started through the project's own script.
const SERVER_ENV: &[(&str, &str)] = &[("PORT", "{port}"), ("HOST", "{host}")];
const VITE_ALL: &[&str] = &["vite", "vite-*"];

const fn fw(id: &'static str, name: &'static str, kind: Kind, dev: Dev, port: u16) -> Framework {
    Framework {
        id,
        name,
        kind,
        every: &[],
        some: &[],
        none: &[],
        supersedes: &[],
        version_of: &[],
        dev,
        env: &[],
        port,
        old_port: None,
        build: None,
        note: None,
    }
}

const fn bin(bin: &'static str, args: &'static str, flags: &'static str) -> Dev {
    Dev::Bin {
        bin,
        alt_bins: &[],
        args,
        flags,
    }
}

const fn vite(args: &'static str) -> Dev {
    bin("vite", args, VITE_FLAGS)
}

const SERVER_SCRIPTS: Dev = Dev::Script {
    scripts: &["dev", "start:dev", "develop", "serve", "start"],
};

/// A server library: its dependency, and an entry file importing it as a stronger signal.
const fn server(id: &'static str, name: &'static str, dep: &'static [Cond]) -> Framework {
    Framework {
        every: dep,
        env: SERVER_ENV,
        ..fw(id, name, Kind::Server, SERVER_SCRIPTS, 3000)
    }
}

/// A Vite app flavour (React, Vue, …): Vite plus one of `some`.
const fn vite_flavour(
    id: &'static str,
    name: &'static str,
    some: &'static [Cond],
    version: &'static [&'static str],
) -> Framework {
    Framework {
        every: &[Dep("vite")],
        some,
        supersedes: &["vite"],
        version_of: version,
        env: VITE_ENV,
        old_port: Some(("vite", 3, 3000)),
        build: Some("vite build"),
        ..fw(id, name, Kind::Framework, vite(""), 5173)
    }
}

/// The table.
pub static FRAMEWORKS: &[Framework] = &[
    Framework {
        every: &[Dep("next")],
        supersedes: &["vite-react", "create-react-app", "express"],
        version_of: &["next"],
        build: Some("next build"),
        ..fw("nextjs", "Next.js", Kind::Framework, bin("next", "dev", "-H {host} -p {port}"), 3000)
    },
    Framework {
        some: &[Dep("nuxt"), Dep("nuxt3"), Dep("nuxt-edge"), Dep("nuxt-nightly")],
        supersedes: &["vite", "vite-*", "nitro", "h3", "vue-cli"],
        version_of: &["nuxt", "nuxt3", "nuxt-edge", "nuxt-nightly"],
        env: VITE_ENV,
        build: Some("nuxt build"),
        ..fw("nuxt", "Nuxt", Kind::Framework, Dev::Bin { bin: "nuxt", alt_bins: &["nuxi"], args: "dev", flags: "--host {host} --port {port}" }, 3000)
    },
    Framework {
        every: &[Dep("@remix-run/dev"), FileContains("vite.config.*", "@remix-run/dev")],
        supersedes: &["vite", "vite-*", "remix-classic", "express"],
        version_of: &["@remix-run/dev"],
        env: VITE_ENV,
        build: Some("remix vite:build"),
        ..fw("remix", "Remix (Vite)", Kind::Framework, bin("remix", "vite:dev", VITE_FLAGS), 5173)
    },
    Framework {
        every: &[Dep("@remix-run/dev")],
        some: &[File("remix.config.*"), Dep("@remix-run/react")],
        // A classic app may have Vite (and React) for its tests: remix.config.js decides.
        supersedes: &["vite", "vite-*", "express"],
        version_of: &["@remix-run/dev"],
        env: &[("PORT", "{port}")],
        build: Some("remix build"),
        note: Some("classic Remix compiler: the app server takes its port from PORT"),
        ..fw("remix-classic", "Remix (classic compiler)", Kind::Framework, bin("remix", "dev", ""), 3000)
    },
    Framework {
        some: &[Dep("@react-router/dev"), File("react-router.config.*")],
        supersedes: &["vite", "vite-*", "remix", "remix-classic", "express"],
        version_of: &["@react-router/dev", "react-router"],
        env: VITE_ENV,
        build: Some("react-router build"),
        ..fw("react-router", "React Router (framework mode)", Kind::Framework, bin("react-router", "dev", VITE_FLAGS), 5173)
    },
    Framework {
        every: &[Dep("@sveltejs/kit")],
        supersedes: VITE_ALL,
        version_of: &["@sveltejs/kit"],
        env: VITE_ENV,
        build: Some("vite build"),
        ..fw("sveltekit", "SvelteKit", Kind::Framework, vite("dev"), 5173)
    },
    Framework {
        every: &[Dep("astro")],
        supersedes: VITE_ALL,
        version_of: &["astro"],
        // ASTRO_DEV_BACKGROUND=1 keeps Astro 7's `astro dev` in the foreground when it thinks
        // an agent runs it (it is what Astro sets on its own background child).
        env: &[("__VITE_ADDITIONAL_SERVER_ALLOWED_HOSTS", "{allowedHosts}"), ("ASTRO_DEV_BACKGROUND", "1")],
        old_port: Some(("astro", 3, 3000)),
        build: Some("astro build"),
        ..fw("astro", "Astro", Kind::Framework, bin("astro", "dev", "--host {host} --port {port}"), 4321)
    },
    Framework {
        some: &[Dep("@angular/cli"), Dep("@angular-devkit/build-angular"), Dep("@angular/build")],
        version_of: &["@angular/core", "@angular/cli"],
        env: VITE_ENV,
        build: Some("ng build"),
        ..fw("angular", "Angular", Kind::Framework, bin("ng", "serve", "--host {host} --port {port} --allowed-hosts={allowedHost}"), 4200)
    },
    Framework {
        every: &[Dep("@analogjs/platform")],
        supersedes: &["vite", "vite-*", "angular"],
        version_of: &["@analogjs/platform"],
        env: VITE_ENV,
        build: Some("vite build"),
        ..fw("analog", "Analog", Kind::Framework, vite(""), 5173)
    },
    Framework {
        every: &[Dep("gatsby")],
        version_of: &["gatsby"],
        build: Some("gatsby build"),
        ..fw("gatsby", "Gatsby", Kind::Framework, bin("gatsby", "develop", "-H {host} -p {port}"), 8000)
    },
    Framework {
        every: &[Dep("@docusaurus/core")],
        version_of: &["@docusaurus/core"],
        env: &[("BROWSER", "none")],
        build: Some("docusaurus build"),
        ..fw("docusaurus", "Docusaurus", Kind::Framework, bin("docusaurus", "start", "--host {host} --port {port} --no-open"), 3000)
    },
    Framework {
        every: &[Dep("vitepress")],
        supersedes: VITE_ALL,
        version_of: &["vitepress"],
        env: VITE_ENV,
        build: Some("vitepress build {docsDir}"),
        ..fw("vitepress", "VitePress", Kind::Framework, bin("vitepress", "dev {docsDir}", "--host {host} --port {port} --strictPort"), 5173)
    },
    Framework {
        every: &[Dep("vuepress")],
        supersedes: VITE_ALL,
        version_of: &["vuepress"],
        env: VITE_ENV,
        build: Some("vuepress build {docsDir}"),
        ..fw("vuepress", "VuePress", Kind::Framework, bin("vuepress", "dev {docsDir}", "--host {host} --port {port}"), 8080)
    },
    Framework {
        every: &[Dep("@vue/cli-service")],
        supersedes: &["vite-vue"],
        version_of: &["@vue/cli-service"],
        build: Some("vue-cli-service build"),
        note: Some("Vue CLI has no flag or env for allowed hosts: a preview host needs devServer.allowedHosts = 'all' in vue.config.js"),
        ..fw("vue-cli", "Vue CLI", Kind::Framework, bin("vue-cli-service", "serve", "--host {host} --port {port}"), 8080)
    },
    vite_flavour("vite-react", "Vite (React)", &[Dep("react"), Dep("@vitejs/plugin-react"), Dep("@vitejs/plugin-react-swc")], &["vite"]),
    vite_flavour("vite-vue", "Vite (Vue)", &[Dep("vue"), Dep("@vitejs/plugin-vue")], &["vite"]),
    Framework {
        supersedes: &["vite", "vite-react"],
        ..vite_flavour("vite-preact", "Vite (Preact)", &[Dep("preact"), Dep("@preact/preset-vite")], &["vite"])
    },
    vite_flavour("vite-lit", "Vite (Lit)", &[Dep("lit")], &["vite"]),
    vite_flavour("vite-solid", "Vite (Solid)", &[Dep("solid-js"), Dep("vite-plugin-solid")], &["vite"]),
    vite_flavour("vite-svelte", "Vite (Svelte)", &[Dep("svelte"), Dep("@sveltejs/vite-plugin-svelte")], &["vite"]),
    Framework {
        every: &[Dep("vite")],
        version_of: &["vite"],
        env: VITE_ENV,
        old_port: Some(("vite", 3, 3000)),
        build: Some("vite build"),
        ..fw("vite", "Vite", Kind::BuildTool, vite(""), 5173)
    },
    Framework {
        every: &[Dep("@solidjs/start"), Dep("vinxi")],
        supersedes: VITE_ALL,
        version_of: &["@solidjs/start"],
        env: VITE_ENV,
        build: Some("vinxi build"),
        ..fw("solidstart", "SolidStart (vinxi)", Kind::Framework, bin("vinxi", "dev", "--host {host} --port {port}"), 3000)
    },
    Framework {
        every: &[Dep("@solidjs/start")],
        none: &[Dep("vinxi")],
        supersedes: VITE_ALL,
        version_of: &["@solidjs/start"],
        env: VITE_ENV,
        build: Some("vite build"),
        ..fw("solidstart-vite", "SolidStart (Vite)", Kind::Framework, vite("dev"), 5173)
    },
    Framework {
        some: &[Dep("@builder.io/qwik-city"), Dep("@qwik.dev/router")],
        supersedes: &["vite", "vite-*", "qwik"],
        version_of: &["@builder.io/qwik-city", "@qwik.dev/router"],
        env: VITE_ENV,
        build: Some("qwik build"),
        ..fw("qwik-city", "Qwik City", Kind::Framework, vite("--mode ssr"), 5173)
    },
    Framework {
        some: &[Dep("@builder.io/qwik"), Dep("@qwik.dev/core")],
        supersedes: VITE_ALL,
        version_of: &["@builder.io/qwik", "@qwik.dev/core"],
        env: VITE_ENV,
        build: Some("qwik build"),
        note: Some("Qwik without City: started as the project's own script says (a `csr: true` app has no SSR mode)"),
        ..fw("qwik", "Qwik", Kind::Framework, vite(""), 5173)
    },
    Framework {
        some: &[Dep("@tanstack/react-start"), Dep("@tanstack/solid-start"), Dep("@tanstack/start")],
        every: &[Dep("vinxi")],
        supersedes: &["vite", "vite-*", "tanstack-router"],
        version_of: &["@tanstack/react-start", "@tanstack/solid-start", "@tanstack/start"],
        env: VITE_ENV,
        build: Some("vinxi build"),
        ..fw("tanstack-start-vinxi", "TanStack Start (vinxi)", Kind::Framework, bin("vinxi", "dev", "--host {host} --port {port}"), 3000)
    },
    Framework {
        some: &[Dep("@tanstack/react-start"), Dep("@tanstack/solid-start"), Dep("@tanstack/start")],
        none: &[Dep("vinxi")],
        supersedes: &["vite", "vite-*", "tanstack-router"],
        version_of: &["@tanstack/react-start", "@tanstack/solid-start", "@tanstack/start"],
        env: VITE_ENV,
        build: Some("vite build"),
        ..fw("tanstack-start", "TanStack Start", Kind::Framework, vite("dev"), 3000)
    },
    Framework {
        every: &[Dep("vite")],
        some: &[Dep("@tanstack/react-router"), Dep("@tanstack/solid-router")],
        supersedes: VITE_ALL,
        version_of: &["@tanstack/react-router", "@tanstack/solid-router"],
        env: VITE_ENV,
        build: Some("vite build"),
        ..fw("tanstack-router", "TanStack Router", Kind::Framework, vite(""), 3000)
    },
    Framework {
        every: &[Dep("waku")],
        supersedes: &["vite", "vite-*", "hono"],
        version_of: &["waku"],
        env: VITE_ENV,
        build: Some("waku build"),
        ..fw("waku", "Waku", Kind::Framework, bin("waku", "dev", "--host {host} --port {port}"), 3000)
    },
    Framework {
        some: &[Dep("vike"), Dep("vite-plugin-ssr")],
        supersedes: &["vite", "vite-*", "express", "hono", "fastify"],
        version_of: &["vike", "vite-plugin-ssr"],
        env: VITE_ENV,
        build: Some("vike build"),
        ..fw("vike", "Vike", Kind::Framework, Dev::Bin { bin: "vike", alt_bins: &["vite"], args: "dev", flags: "--host {host} --port {port}" }, 3000)
    },
    Framework {
        some: &[Dep("ember-cli"), Dep("ember-source")],
        none: &[Dep("@embroider/vite")],
        version_of: &["ember-source", "ember-cli"],
        build: Some("ember build"),
        ..fw("ember", "Ember", Kind::Framework, bin("ember", "serve", "--host {host} --port {port}"), 4200)
    },
    Framework {
        every: &[Dep("@embroider/vite")],
        supersedes: &["vite", "vite-*", "ember"],
        version_of: &["ember-source", "ember-cli"],
        env: VITE_ENV,
        build: Some("vite build"),
        note: Some("ember-cli 7 app (Embroider + Vite): started with Vite; Embroider defaults to port 4200"),
        ..fw("ember-vite", "Ember (Vite)", Kind::Framework, vite(""), 4200)
    },
    Framework {
        every: &[Dep("react-scripts")],
        version_of: &["react-scripts"],
        // CRA takes host and port only from env; BROWSER=none stops it opening a browser,
        // the host check is off so the preview host is served, WDS_SOCKET_PORT=0 makes the
        // HMR socket use the page's own port (443 behind the preview proxy).
        env: &[("HOST", "{host}"), ("PORT", "{port}"), ("BROWSER", "none"), ("DANGEROUSLY_DISABLE_HOST_CHECK", "true"), ("WDS_SOCKET_PORT", "0")],
        build: Some("react-scripts build"),
        ..fw("create-react-app", "Create React App", Kind::Framework, Dev::Bin { bin: "react-scripts", alt_bins: &["craco", "react-app-rewired"], args: "start", flags: "" }, 3000)
    },
    Framework {
        every: &[Dep("preact-cli")],
        version_of: &["preact-cli"],
        build: Some("preact build"),
        ..fw("preact-cli", "Preact CLI", Kind::Framework, bin("preact", "watch", "--host {host} --port {port}"), 8080)
    },
    Framework {
        every: &[Dep("webpack-dev-server"), Cond::DepMajorBelow("webpack-dev-server", 4)],
        version_of: &["webpack"],
        build: Some("webpack --mode production"),
        note: Some("webpack-dev-server 3 checks the Host header: --disable-host-check lets the preview host through"),
        ..fw("webpack-dev-server-3", "webpack (dev server 3)", Kind::BuildTool, Dev::Bin { bin: "webpack-dev-server", alt_bins: &["webpack"], args: "", flags: "--host {host} --port {port} --disable-host-check" }, 8080)
    },
    Framework {
        every: &[Dep("webpack-dev-server")],
        none: &[Cond::DepMajorBelow("webpack-dev-server", 4)],
        version_of: &["webpack"],
        build: Some("webpack --mode production"),
        ..fw("webpack", "webpack (dev server)", Kind::BuildTool, Dev::Bin { bin: "webpack", alt_bins: &["webpack-dev-server"], args: "serve", flags: "--host {host} --port {port} --allowed-hosts all" }, 8080)
    },
    Framework {
        some: &[Dep("parcel"), Dep("parcel-bundler")],
        version_of: &["parcel", "parcel-bundler"],
        build: Some("parcel build {entry}"),
        ..fw("parcel", "Parcel", Kind::BuildTool, bin("parcel", "{entry}", "--host {host} --port {port}"), 1234)
    },
    // From Vercel's and Netlify's framework tables, with each CLI's documented host/port flags.
    Framework {
        every: &[Dep("blitz")],
        supersedes: &["nextjs"],
        version_of: &["blitz"],
        build: Some("blitz build"),
        ..fw("blitzjs", "Blitz.js", Kind::Framework, bin("blitz", "dev", "-H {host} -p {port}"), 3000)
    },
    Framework {
        every: &[Dep("hexo")],
        version_of: &["hexo"],
        build: Some("hexo generate"),
        note: Some("`hexo server` comes from the hexo-server package (Hexo's starter has it)"),
        ..fw("hexo", "Hexo", Kind::Framework, bin("hexo", "server", "-i {host} -p {port}"), 4000)
    },
    Framework {
        every: &[Dep("gridsome")],
        version_of: &["gridsome"],
        build: Some("gridsome build"),
        ..fw("gridsome", "Gridsome", Kind::Framework, bin("gridsome", "develop", "--host {host} --port {port}"), 8080)
    },
    Framework {
        some: &[Dep("umi"), Dep("@umijs/max")],
        version_of: &["umi", "@umijs/max"],
        env: SERVER_ENV,
        build: Some("umi build"),
        ..fw("umijs", "UmiJS", Kind::Framework, Dev::Bin { bin: "umi", alt_bins: &["max"], args: "dev", flags: "" }, 8000)
    },
    Framework {
        every: &[Dep("@stencil/core")],
        version_of: &["@stencil/core"],
        build: Some("stencil build"),
        note: Some("Stencil's dev server listens on all interfaces by default"),
        ..fw("stencil", "Stencil", Kind::Framework, bin("stencil", "build --dev --watch --serve", "--port {port}"), 3333)
    },
    Framework {
        every: &[Dep("sanity")],
        supersedes: &["vite", "vite-*"],
        version_of: &["sanity"],
        build: Some("sanity build"),
        ..fw("sanity", "Sanity Studio", Kind::Framework, bin("sanity", "dev", "--host {host} --port {port}"), 3333)
    },
    Framework {
        some: &[Dep("@quasar/app-vite"), Dep("@quasar/app-webpack"), Dep("@quasar/app")],
        supersedes: &["vite", "vite-*", "vue-cli"],
        version_of: &["quasar", "@quasar/app-vite", "@quasar/app-webpack"],
        env: VITE_ENV,
        build: Some("quasar build"),
        ..fw("quasar", "Quasar", Kind::Framework, bin("quasar", "dev", "--hostname {host} --port {port}"), 9000)
    },
    Framework {
        every: &[Dep("wmr")],
        supersedes: &["vite-preact"],
        version_of: &["wmr"],
        build: Some("wmr build"),
        ..fw("wmr", "WMR", Kind::Framework, bin("wmr", "", "--host {host} --port {port}"), 8080)
    },
    Framework {
        every: &[Dep("polymer-cli")],
        version_of: &["polymer-cli"],
        build: Some("polymer build"),
        ..fw("polymer", "Polymer", Kind::Framework, bin("polymer", "serve", "--hostname {host} --port {port}"), 8081)
    },
    Framework {
        every: &[Dep("@11ty/eleventy")],
        version_of: &["@11ty/eleventy"],
        build: Some("eleventy"),
        note: Some("Eleventy's dev server listens on all interfaces; it has no host flag"),
        ..fw("eleventy", "Eleventy", Kind::Framework, Dev::Bin { bin: "eleventy", alt_bins: &["@11ty/eleventy"], args: "--serve", flags: "--port {port}" }, 8080)
    },
    Framework {
        some: &[Dep("storybook"), Dep("@storybook/cli"), Dep("@storybook/react"), Dep("@storybook/vue3"), File(".storybook/main.*")],
        version_of: &["storybook", "@storybook/react", "@storybook/vue3"],
        env: VITE_ENV,
        build: Some("storybook build"),
        ..fw("storybook", "Storybook", Kind::Tooling, Dev::Bin { bin: "storybook", alt_bins: &["start-storybook"], args: "dev", flags: "--host {host} -p {port} --ci --no-open" }, 6006)
    },
    Framework {
        every: &[Dep("expo")],
        supersedes: &["vite-react"],
        version_of: &["expo"],
        build: Some("expo export -p web"),
        note: Some("Expo web runs on Metro; the Metro server listens on all interfaces"),
        ..fw("expo", "Expo (web)", Kind::Framework, bin("expo", "start --web", "--port {port}"), 8081)
    },
    Framework {
        some: &[Dep("@redwoodjs/core"), File("redwood.toml")],
        supersedes: &["vite", "vite-*", "storybook"],
        version_of: &["@redwoodjs/core"],
        env: VITE_ENV,
        build: Some("rw build"),
        ..fw("redwoodjs", "RedwoodJS", Kind::Framework, Dev::Bin { bin: "rw", alt_bins: &["redwood"], args: "dev", flags: "--fwd=\"--host={host} --port={port} --open=false\"" }, 8910)
    },
    Framework {
        some: &[Dep("nitropack"), Dep("nitro")],
        supersedes: &["vite", "h3"],
        version_of: &["nitropack", "nitro"],
        build: Some("nitro build"),
        ..fw("nitro", "Nitro", Kind::Framework, Dev::Bin { bin: "nitro", alt_bins: &["nitropack"], args: "dev", flags: "--host {host} --port {port}" }, 3000)
    },
    Framework {
        supersedes: &["express", "fastify"],
        version_of: &["@nestjs/core"],
        ..server("nestjs", "NestJS", &[Dep("@nestjs/core")])
    },
    Framework {
        version_of: &["hono"],
        ..server("hono", "Hono", &[Dep("hono")])
    },
    Framework {
        version_of: &["express"],
        ..server("express", "Express", &[Dep("express")])
    },
    Framework {
        version_of: &["fastify"],
        // fastify-cli reads these; a hand-written listen() must pass host itself.
        env: &[("PORT", "{port}"), ("HOST", "{host}"), ("FASTIFY_ADDRESS", "{host}"), ("FASTIFY_PORT", "{port}")],
        ..server("fastify", "Fastify", &[Dep("fastify")])
    },
    Framework {
        version_of: &["koa"],
        ..server("koa", "Koa", &[Dep("koa")])
    },
    Framework {
        version_of: &["h3"],
        ..server("h3", "H3", &[Dep("h3")])
    },
    Framework {
        version_of: &["elysia"],
        ..server("elysia", "Elysia", &[Dep("elysia")])
    },
    Framework {
        every: &[File("package.json")],
        // A library's index.js is not a server: index.js / app.js count only when they listen.
        some: &[
            ServerScript,
            File("server.js"),
            File("server.mjs"),
            File("server.cjs"),
            File("server.ts"),
            FileContains("index.js", ".listen("),
            FileContains("app.js", ".listen("),
        ],
        supersedes: &["static"],
        env: SERVER_ENV,
        ..fw("node", "Node.js", Kind::Runtime, SERVER_SCRIPTS, 3000)
    },
    Framework {
        some: &[File("index.html"), File("public/index.html")],
        none: &[Cond::File("package.json")],
        ..fw("static", "Static HTML", Kind::Runtime, Dev::Static, 8080)
    },
];

/// Looks a framework up by id.
pub fn by_id(id: &str) -> Option<&'static Framework> {
    FRAMEWORKS.iter().find(|f| f.id == id)
}

/// True when a `supersedes` entry names `id` (exactly, or as a `prefix-*`).
pub(crate) fn names(entry: &str, id: &str) -> bool {
    match entry.strip_suffix('*') {
        Some(prefix) => id.starts_with(prefix),
        None => entry == id,
    }
}
