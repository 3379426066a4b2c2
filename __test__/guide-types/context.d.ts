// What the guide's fragments assume from the text around them (a sandbox created earlier, the
// client from src/lib/daytona-client.ts, ids from an earlier step, ...), typed with our API.
// A global script (no import/export), so the samples see these names without importing them.
type Daytona = import('@smartapi-forge/daytona').Daytona
type Sandbox = import('@smartapi-forge/daytona').Sandbox

declare const daytona: Daytona
declare const sandbox: Sandbox
declare const sandboxId: string
declare const sessionId: string
declare const command: import('@smartapi-forge/daytona').SessionExecuteResponse
declare const repoUrl: string
declare const projectPath: string
declare const previewUrl: string
declare const port: number
declare const imageData: Buffer
declare const lastUsed: number
declare function doWork(sandbox: Sandbox): Promise<void>
declare const Daytona: typeof import('@smartapi-forge/daytona').Daytona
declare const result: import('@smartapi-forge/daytona').ExecResult
