import { Daytona } from '@smartapi-forge/daytona'

// One client per server process, created on first use (not at import: `next build` loads
// route modules without the run-time environment). Without options it follows the
// environment: DAYTONA_API_KEY (+ DAYTONA_API_URL, DAYTONA_TARGET) for Daytona, or
// FORGE_BACKEND=local for the embedded backend.
export function daytona() {
  globalThis.__forgeDaytona ??= new Daytona()
  return globalThis.__forgeDaytona
}
