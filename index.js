// The package's CommonJS entry (hand-written; binding.js is napi-rs's generated loader, which
// picks the native binary for this platform, or the WebAssembly fallback). Two additions:
// - Windows x64: the generated loader tries the -gnu package only under a MinGW Node; when
//   the -msvc one is absent and a -gnu one is installed, it is tried too (untested on Windows:
//   no Windows binary is built yet, see the README's Platforms);
// - the WebAssembly build gets its HTTP transport (wasm-fetch.js) installed;
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
    const gnu = process.platform === 'win32' && process.arch === 'x64' && resolveOrNull('@smartapi-forge/daytona-win32-x64-gnu')
    if (gnu && !process.env.NAPI_RS_NATIVE_LIBRARY_PATH) {
      process.env.NAPI_RS_NATIVE_LIBRARY_PATH = gnu
      try {
        return requireBinding()
      } catch (e) {
        e.cause = error
        error = e
      } finally {
        delete process.env.NAPI_RS_NATIVE_LIBRARY_PATH
      }
    }
    throw require('./loader-error.js').noBindingError(error, require('./package.json'))
  }
}

/**
 * binding.js, with NAPI_RS_FORCE_WASI=1 meaning the WebAssembly build and nothing else, as the
 * README says. The generated loader knows only 'true' (WASI first, the native binary as a
 * silent fallback) and 'error' (WASI only) and treats '1' like unset, so a run asked to test
 * the WASI build would test the native one. '1' is read as 'error' while binding.js loads (it
 * reads the variable once, at load), then put back.
 */
function requireBinding() {
  const force = process.env.NAPI_RS_FORCE_WASI
  if (force === '1') process.env.NAPI_RS_FORCE_WASI = 'error'
  try {
    return require('./binding.js')
  } finally {
    if (force === '1') process.env.NAPI_RS_FORCE_WASI = force
  }
}

function resolveOrNull(name) {
  try {
    return require.resolve(name)
  } catch {
    return null
  }
}

const binding = load()
// The WebAssembly build sends its HTTP through JavaScript (wasm-fetch.js); the native one has
// no such export.
if (typeof binding.__installFetch === 'function') binding.__installFetch(require('./wasm-fetch.js').wasmFetch)
module.exports = require('./binding.js')
