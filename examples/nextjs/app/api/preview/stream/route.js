import { previewEvents } from '../../../../lib/previews.js'
import { previewBody } from '../../../../lib/request.js'

const encoder = new TextEncoder()
/** One server-sent event. */
const sse = ({ event, data }) => encoder.encode(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)

/**
 * POST { repoUrl, token?, branch? } → `text/event-stream`: `progress` and `log` events while
 * the pipeline runs, then `result` ({ projectId, previewUrl, ... }) or `error`. A POST (read
 * with `fetch`, not `EventSource`) so that the GitHub token travels in the body, never in a URL.
 *
 * The stream is pulled: the next event is taken from the pipeline only when the browser has
 * read the previous one, so a slow connection slows the pipeline's log reading instead of
 * filling the server's memory. A browser that goes away cancels the stream, which cancels the
 * pipeline and deletes its sandbox.
 */
export async function POST(request) {
  const { body, error } = await previewBody(request)
  if (error) return error
  const events = previewEvents(body)
  const stream = new ReadableStream(
    {
      async pull(controller) {
        const { value, done } = await events.next()
        if (done) controller.close()
        else controller.enqueue(sse(value))
      },
      async cancel() {
        await events.return()
      },
    },
    { highWaterMark: 0 },
  )
  return new Response(stream, {
    headers: { 'content-type': 'text/event-stream', 'cache-control': 'no-cache, no-transform', 'x-accel-buffering': 'no' },
  })
}
