// The native targets, as data: each Rust triple with napi-rs's platform name (the npm/<platform>
// package and the `daytona.<platform>.node` file) and what its binary must be (file format and
// machine), for scripts/build-all.mjs and scripts/check-artifacts.mjs. package.json
// `napi.targets` says which of these are built and shipped.

/** The oldest glibc the linux-gnu binaries run on (every GLIBC_ version they need is ≤ this). */
export const GLIBC_FLOOR = '2.17'

export const TARGETS = [
  { triple: 'x86_64-unknown-linux-gnu', platform: 'linux-x64-gnu', os: 'linux', abi: 'gnu', format: 'ELF', machine: 'x86_64' },
  { triple: 'aarch64-unknown-linux-gnu', platform: 'linux-arm64-gnu', os: 'linux', abi: 'gnu', format: 'ELF', machine: 'aarch64' },
  { triple: 'x86_64-unknown-linux-musl', platform: 'linux-x64-musl', os: 'linux', abi: 'musl', format: 'ELF', machine: 'x86_64' },
  { triple: 'aarch64-unknown-linux-musl', platform: 'linux-arm64-musl', os: 'linux', abi: 'musl', format: 'ELF', machine: 'aarch64' },
  { triple: 'x86_64-apple-darwin', platform: 'darwin-x64', os: 'macos', abi: null, format: 'Mach-O', machine: 'x86_64' },
  { triple: 'aarch64-apple-darwin', platform: 'darwin-arm64', os: 'macos', abi: null, format: 'Mach-O', machine: 'aarch64' },
  // MinGW-w64 ABI; it loads in the official (MSVC-built) node.exe too (scripts/build-all.mjs).
  { triple: 'x86_64-pc-windows-gnu', platform: 'win32-x64-gnu', os: 'windows', abi: 'gnu', format: 'PE', machine: 'x86_64' },
]
