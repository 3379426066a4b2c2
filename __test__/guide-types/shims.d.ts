// Minimal declarations of the outside modules the guide's samples import (not installed here):
// only what the samples use, typed closely enough that a wrong use of OUR API still fails.

declare module 'vite' {
  export function defineConfig<T extends object>(config: T): T
}

declare module 'next' {
  export interface NextConfig {
    serverExternalPackages?: string[]
    webpack?: (config: any, context: { isServer: boolean }) => any
  }
}

declare module 'next/server' {
  export class NextRequest extends Request {}
  export class NextResponse<T = unknown> extends Response {
    static json<T>(body: T, init?: ResponseInit): NextResponse<T>
  }
}

// `@/lib/supabase/server`: a Supabase server client; rows are untyped, as without generated types.
declare module '@/lib/supabase/server' {
  interface Query extends PromiseLike<{ data: any; error: { message: string } | null }> {
    select(columns?: string): Query
    update(values: Record<string, unknown>): Query
    eq(column: string, value: unknown): Query
    single(): Query
  }
  export function createClient(): Promise<{ from(table: string): Query }>
}

declare module 'inngest' {
  type Jsonify<T> = T extends { toJSON(): infer J } ? J : T extends object ? { [K in keyof T]: Jsonify<T[K]> } : T
  export interface StepTools {
    /** Production serialises a step's result as JSON; so does this type. */
    run<T>(id: string, fn: () => T | Promise<T>): Promise<Jsonify<Awaited<T>>>
  }
  export interface FunctionContext {
    event: { name: string; data: any }
    step: StepTools
  }
  export class Inngest {
    constructor(options: { id: string })
    createFunction<R>(
      options: { id: string; retries?: number; concurrency?: { limit: number } },
      trigger: { event: string },
      handler: (ctx: FunctionContext) => Promise<R>,
    ): unknown
  }
}

declare module 'react' {
  export function useState<S>(initial: S): [S, (next: S | ((prev: S) => S)) => void]
  export function useCallback<T extends (...args: any[]) => any>(fn: T, deps: readonly unknown[]): T
  export function useEffect(effect: () => void | (() => void), deps?: readonly unknown[]): void
}
