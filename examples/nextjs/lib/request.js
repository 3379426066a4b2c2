import { NextResponse } from 'next/server'

/**
 * The `{ repoUrl, token?, branch? }` body of a preview request: `{ body }`, or `{ error }`, a
 * 400 answer saying what is wrong.
 */
export async function previewBody(request) {
  let body
  try {
    body = await request.json()
  } catch {
    return { error: NextResponse.json({ error: { code: 'BAD_REQUEST', message: 'JSON body expected' } }, { status: 400 }) }
  }
  if (typeof body?.repoUrl !== 'string' || !body.repoUrl) {
    return { error: NextResponse.json({ error: { code: 'BAD_REQUEST', message: 'repoUrl is required' } }, { status: 400 }) }
  }
  return { body }
}
