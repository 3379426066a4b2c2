// The package's CommonJS entry (hand-written; binding.js is napi-rs's generated loader, which
// picks the native binary for this platform, or the WebAssembly fallback). Two additions:
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

const binding = load()
// The WebAssembly build sends its HTTP through JavaScript (wasm-fetch.js); the native one has
// no such export.
if (typeof binding.__installFetch === 'function') binding.__installFetch(require('./wasm-fetch.js').wasmFetch)
module.exports = require('./binding.js')
