import { Daytona } from '@smartapi-forge/daytona'

// One client per process. Without options it follows the environment: DAYTONA_API_KEY (and
// DAYTONA_API_URL / DAYTONA_TARGET) for Daytona cloud or a self-hosted Daytona, or
// FORGE_BACKEND=local for the embedded backend (what the test uses).
export const daytona = new Daytona()
