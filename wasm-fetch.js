// The WebAssembly build's HTTP transport (docs/wasm.md; the Rust side is src/wasm_fetch.rs).
// WASI gives the addon no sockets, so each request of the client, its toolboxes and the preview
// probe comes here and goes out through Node's `fetch` (undici). index.js installs it once, when
// the WebAssembly build is the binding that loaded. Never follows redirects (the client's retry
// policy and the preview probe decide what a 3xx means); never puts the URL in an error.
'use strict'

// undici's causes of a failed connection: nothing was sent, so the client may retry any request.
const CONNECT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT'])

/** One request: `{ method, url, headers: [name, value][], body?: Uint8Array }`. */
async function wasmFetch({ method, url, headers, body }) {
  let response
  try {
    // The body views the WebAssembly memory, a SharedArrayBuffer, which fetch refuses: copied.
    response = await fetch(url, { method, headers, body: body ? new Uint8Array(body) : undefined, redirect: 'manual' })
  } catch (e) {
    return failure(e)
  }
  try {
    const bytes = new Uint8Array(await response.arrayBuffer())
    return { status: response.status, headers: [...response.headers], body: Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength) }
  } catch (e) {
    return failure(e)
  }
}

/** A failure below HTTP, as its kind and a message without the URL. */
function failure(e) {
  const code = e?.cause?.code ?? e?.code
  const kind = CONNECT.has(code) ? 'connect' : code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' ? 'timeout' : 'other'
  const cause = e?.cause?.message ? `: ${String(e.cause.message).replace(/\s*\S+:\/\/\S+/g, '')}` : ''
  return { status: 0, headers: [], error: kind, message: `${e?.message ?? e}${cause}` }
}

module.exports = { wasmFetch }
