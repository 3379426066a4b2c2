// A zero-dependency dev server: listens on $PORT (the pipeline sets it) and serves one page.
const http = require('node:http')

const port = Number(process.env.PORT || 3000)
const started = new Date().toISOString()

http
  .createServer((req, res) => {
    if (req.url === '/health') {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ ok: true, started }))
      return
    }
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' })
    res.end(`<!doctype html>
<html>
  <head><title>hello-app</title></head>
  <body>
    <h1>Hello from a sandbox</h1>
    <p>Node ${process.version}, started ${started}.</p>
  </body>
</html>
`)
  })
  .listen(port, () => console.log(`  Local:   http://localhost:${port}/`))
