'use client'

import { useState } from 'react'

/** Splits a server-sent event stream into `{ event, data }` (whole events only; the rest waits). */
function parseEvents(buffer) {
  const blocks = buffer.split('\n\n')
  const rest = blocks.pop()
  const events = blocks.map((block) => {
    const field = (name) =>
      block
        .split('\n')
        .filter((l) => l.startsWith(`${name}: `))
        .map((l) => l.slice(name.length + 2))
        .join('\n')
    return { event: field('event'), data: JSON.parse(field('data')) }
  })
  return { events, rest }
}

/** The pipeline live: its steps, the install's and the dev server's output, then the preview. */
export function StreamPreview() {
  const [steps, setSteps] = useState([])
  const [lines, setLines] = useState([])
  const [outcome, setOutcome] = useState(null)
  const [running, setRunning] = useState(false)

  async function start(form) {
    setSteps([])
    setLines([])
    setOutcome(null)
    setRunning(true)
    try {
      const res = await fetch('/api/preview/stream', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(Object.fromEntries(form)),
      })
      if (!res.ok) return setOutcome({ error: (await res.json()).error })
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader()
      let buffer = ''
      for (;;) {
        const { value, done } = await reader.read()
        if (done) break
        const { events, rest } = parseEvents(buffer + value)
        buffer = rest
        for (const { event, data } of events) {
          if (event === 'progress') setSteps((s) => [...s, `${data.step} ${data.status}${data.message ? `: ${data.message}` : ''}`])
          else if (event === 'log') setLines((l) => [...l, `[${data.step}] ${data.line}`])
          else if (event === 'result') setOutcome({ result: data })
          else if (event === 'error') setOutcome({ error: data })
        }
      }
    } finally {
      setRunning(false)
    }
  }

  return (
    <section>
      <h2>Preview, live</h2>
      <form action={start}>
        <input name="repoUrl" placeholder="https://github.com/owner/repo" required />
        <input name="branch" placeholder="branch (optional)" />
        <input name="token" type="password" placeholder="GitHub token (optional)" />
        <button type="submit" disabled={running}>
          Preview live
        </button>
      </form>
      <ol id="live-steps">
        {steps.map((s, i) => (
          <li key={i}>{s}</li>
        ))}
      </ol>
      <pre id="live-log">{lines.join('\n')}</pre>
      {outcome?.result && (
        <p>
          Ready: <a href={outcome.result.previewUrl}>{outcome.result.previewUrl}</a>
        </p>
      )}
      {outcome?.error && (
        <p role="alert">
          {outcome.error.step ? `${outcome.error.step} failed: ` : ''}
          {outcome.error.message}
        </p>
      )}
    </section>
  )
}
