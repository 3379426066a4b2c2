// What to say when no binding loads (used by index.js). napi-rs's generated loader (binding.js)
// ends, on a platform with no binary, in "Cannot find native binding. npm has a bug related to
// optional dependencies ...", which is wrong advice on a platform no binary is built for. This
// says what a user needs instead: this platform, arch and C library; the binary package that
// would match and whether it exists; every package that does exist; and the WebAssembly
// fallback (@smartapi-forge/daytona-wasm32-wasi): installed or not, and why it did not load.
// The generated loader's error stays as `cause`.
'use strict'

const WASI_PACKAGE = '@smartapi-forge/daytona-wasm32-wasi'

// napi-rs's names for Rust's target parts: `<platform>-<arch>[-<abi>]`, as npm/ is laid out.
const ARCH = { x86_64: 'x64', aarch64: 'arm64', i686: 'ia32', armv7: 'arm', riscv64gc: 'riscv64' }
const OS = { linux: 'linux', darwin: 'darwin', windows: 'win32', freebsd: 'freebsd', android: 'android' }

// Packages that load on a platform whose name is not theirs: the win32-x64-gnu binary in the
// official (MSVC-built) node.exe too (index.js, windowsGnuBinary).
const LOADS_ON = { 'win32-x64': ['win32-x64-gnu'] }

/** `x86_64-unknown-linux-gnu` → `linux-x64-gnu`; `wasm32-wasip1-threads` → null (not native). */
function platformOf(triple) {
  const parts = triple.split('-')
  const arch = ARCH[parts[0]]
  const os = OS[parts[2] === 'apple' ? 'darwin' : parts[2]] ?? OS[parts[1] === 'apple' ? 'darwin' : '']
  if (!arch || !os) return null
  const abi = os === 'darwin' ? null : parts[3] === 'msvc' || parts[3] === 'gnu' || parts[3] === 'musl' ? parts[3] : null
  return [os, arch, abi].filter(Boolean).join('-')
}

/** glibc, musl, or null off Linux (as the generated loader decides, through process.report). */
function libcOf() {
  if (process.platform !== 'linux') return null
  try {
    const report = process.report.getReport()
    if (report.header && report.header.glibcVersionRuntime) return 'glibc'
    if ((report.sharedObjects || []).some((f) => f.includes('musl'))) return 'musl'
  } catch {}
  return 'glibc'
}

/** The first line of an error's message. */
const firstLine = (e) => String((e && e.message) || e).split('\n')[0]

/** Whether the WebAssembly fallback is installed, and if so why it did not load. */
function wasiStatus() {
  let path
  try {
    path = require.resolve(WASI_PACKAGE)
  } catch {
    return { installed: false, text: `${WASI_PACKAGE} is not installed (\`npm install ${WASI_PACKAGE}\`; it needs Node >= 20.17 with WebAssembly threads)` }
  }
  try {
    require(path)
    return { installed: true, loaded: true, text: `${WASI_PACKAGE} is installed and loads` }
  } catch (e) {
    return { installed: true, loaded: false, error: firstLine(e), text: `${WASI_PACKAGE} is installed but failed to load: ${firstLine(e)}` }
  }
}

/**
 * The error to throw instead of `cause` (the generated loader's). Names this platform, the
 * packages that exist (package.json `napi.targets`, the same list `npm/` holds), whether the
 * matching one is installed, and the WASI fallback's status.
 */
function noBindingError(cause, pkg) {
  const libc = libcOf()
  const here = [process.platform, process.arch, libc === 'glibc' ? 'gnu' : libc].filter(Boolean).join('-')
  const scope = pkg.napi && pkg.napi.packageName ? pkg.napi.packageName : pkg.name
  const natives = ((pkg.napi && pkg.napi.targets) || []).map(platformOf).filter(Boolean)
  const packages = natives.map((p) => `${scope}-${p}`)
  const candidates = natives.filter((p) => p === here || (LOADS_ON[here] || []).includes(p))
  const wasi = wasiStatus()
  const lines = [
    `@smartapi-forge/daytona: no binding loads on ${process.platform} ${process.arch}${libc ? ` (${libc})` : ''}, Node ${process.version}.`,
  ]
  // index.js reads NAPI_RS_FORCE_WASI=1 as 'error' (WASI only), as the README says.
  const force = process.env.NAPI_RS_FORCE_WASI
  const wasiOnly = force === 'error' || force === '1' || Boolean(process.env.NAPI_RS_WASI_FLAVOR)
  if (wasiOnly) {
    // The generated loader tried no native binary: say so rather than call one missing.
    lines.push(`NAPI_RS_FORCE_WASI=${force === '1' ? '1' : 'error'} (or NAPI_RS_WASI_FLAVOR) allows the WebAssembly build only. Native packages: ${packages.join(', ')}.`)
  } else if (candidates.length === 0) {
    lines.push(`No native binary is built for ${here}. Native packages: ${packages.join(', ')}.`)
  } else {
    const names = candidates.map((p) => `${scope}-${p}`)
    const reasons = messages(cause).filter((m) => names.some((n) => m.includes(n)))
    const broken = reasons.find((m) => !m.includes('Cannot find module'))
    lines.push(
      broken
        ? `The native binary for this platform, ${names.join(' or ')}, is installed but failed to load: ${broken.split('\n')[0]}`
        : `The native binary for this platform, ${names.join(' or ')}, is not installed. npm leaves out an optional ` +
            `dependency when a lock file made elsewhere lacks it: \`npm install ${names.join(' ')}\`, or remove ` +
            `node_modules and package-lock.json and \`npm install\` again.`,
      `Native packages: ${packages.join(', ')}.`,
    )
  }
  lines.push(
    `WebAssembly fallback (loaded when no native binary matches, or with NAPI_RS_FORCE_WASI=1): ${wasi.text}.`,
  )
  const error = new Error(lines.join('\n'))
  error.code = 'DAYTONA_NO_BINDING'
  error.platform = process.platform
  error.arch = process.arch
  error.libc = libc
  error.packages = packages
  error.wasi = { package: WASI_PACKAGE, installed: wasi.installed, loaded: Boolean(wasi.loaded), error: wasi.error }
  error.cause = cause
  return error
}

/** The messages of the generated loader's chained errors (each attempt it made). */
function messages(e) {
  const out = []
  for (let c = e; c; c = c.cause) out.push(String(c.message || c))
  return out
}

module.exports = { noBindingError, platformOf, WASI_PACKAGE }
