// The package's CommonJS entry (hand-written; binding.js is napi-rs's generated loader, which
// picks the native binary for this platform, or the WebAssembly fallback). Three additions:
// - the WebAssembly build gets its HTTP transport (wasm-fetch.js) installed;
// - on Windows x64 the win32-x64-gnu binary loads in the official node.exe (windowsGnuBinary);
// - when nothing loads, the error says which platform this is, which packages exist, and the
//   WebAssembly fallback's status (loader-error.js), not napi-rs's optional-dependencies text.
// The last line re-exports binding.js so that Node's CommonJS → ESM export detection (index.mjs
// `export * from './index.js'`) still sees every name binding.js exports.
'use strict'

/** Loads binding.js once (Node caches it), or throws the explained error. */
function load() {
  try {
    return requireBinding()
  } catch (error) {
    throw require('./loader-error.js').noBindingError(error, require('./package.json'))
  }
}

/**
 * binding.js, loaded with two of its environment switches adjusted while it loads (it reads
 * them once, at load), then put back:
 * - NAPI_RS_FORCE_WASI=1 means the WebAssembly build and nothing else, as the README says. The
 *   generated loader knows only 'true' (WASI first, the native binary as a silent fallback) and
 *   'error' (WASI only) and treats '1' like unset, so a run asked to test the WASI build would
 *   test the native one. '1' is read as 'error'.
 * - On Windows x64 the win32-x64-gnu binary is handed over as NAPI_RS_NATIVE_LIBRARY_PATH (the
 *   loader's own override) unless that is set already; see windowsGnuBinary.
 */
function requireBinding() {
  const force = process.env.NAPI_RS_FORCE_WASI
  const switches = {
    NAPI_RS_FORCE_WASI: force === '1' ? 'error' : undefined,
    NAPI_RS_NATIVE_LIBRARY_PATH: windowsGnuBinary(),
  }
  const saved = {}
  for (const [name, value] of Object.entries(switches)) {
    if (value === undefined) continue
    saved[name] = process.env[name]
    process.env[name] = value
  }
  try {
    return require('./binding.js')
  } finally {
    for (const [name, value] of Object.entries(saved)) {
      if (value === undefined) delete process.env[name]
      else process.env[name] = value
    }
  }
}

/**
 * The win32-x64-gnu binary (next to this file or its package), on Windows x64, for any Node.
 * napi-rs's loader picks a `-gnu` binary only on a MinGW-built Node (process.config's
 * shlib_suffix 'dll.a' or node_target_type 'shared_library'), as if every gnu addon linked
 * against MinGW's libnode.dll, and the `-msvc` one on the official node.exe. This one links
 * against nothing of Node's: napi-sys's `dyn-symbols` looks every napi function up in the
 * process that loads it (scripts/build-all.mjs), so it loads in the official node.exe as well,
 * and no `-msvc` binary is built (README, Platforms). Undefined elsewhere, when none is
 * installed, or when the user set NAPI_RS_NATIVE_LIBRARY_PATH.
 */
function windowsGnuBinary() {
  if (process.platform !== 'win32' || process.arch !== 'x64' || process.env.NAPI_RS_NATIVE_LIBRARY_PATH) return undefined
  const { napi } = require('./package.json')
  for (const candidate of [`./${napi.binaryName}.win32-x64-gnu.node`, `${napi.packageName}-win32-x64-gnu`]) {
    try {
      return require.resolve(candidate)
    } catch {}
  }
  return undefined
}

const binding = load()
// The WebAssembly build sends its HTTP through JavaScript (wasm-fetch.js); the native one has
// no such export.
if (typeof binding.__installFetch === 'function') binding.__installFetch(require('./wasm-fetch.js').wasmFetch)
module.exports = require('./binding.js')
