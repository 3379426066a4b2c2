// The guide's Example 3, health route: app/api/sandbox/health/[projectId]/route.ts
import { NextResponse } from 'next/server'
import { projectHealth } from '../../../../../lib/previews.js'

export const runtime = 'nodejs'
export const dynamic = 'force-dynamic'

export async function GET(request, { params }) {
  try {
    const { projectId } = await params
    return NextResponse.json(await projectHealth(projectId))
  } catch (error) {
    console.error('Health check error:', error.code, error.message)
    return NextResponse.json({ isAlive: false }, { status: 500 })
  }
}
