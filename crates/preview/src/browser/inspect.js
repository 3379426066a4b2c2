// Evaluated in the preview page once it settled: what it rendered, and any framework error
// overlay it shows. Resolves to a JSON string (read by crate::browser::page::Inspection).
// It first lets the page run the tasks already queued (a render, an effect that throws): the
// check waits for the renderer to get there, however busy the machine, not for a fixed time.
new Promise((queued) => setTimeout(queued, 0)).then(() => {
  // Framework overlays: [element, selector inside its shadow root that means "an error is
  // shown" (null: the element alone means it), selectors of the message, in order of preference].
  const overlays = [
    ['vite-error-overlay', null, ['.message-body', '.message', 'pre']],
    ['nextjs-portal', '[data-nextjs-dialog], [data-nextjs-dialog-overlay]',
      ['#nextjs__container_errors_desc', '[data-nextjs-dialog-header] + *', '[data-nextjs-dialog-content]', '[data-nextjs-dialog]']],
  ];
  let overlay = null;
  for (const [tag, shown, texts] of overlays) {
    for (const host of document.querySelectorAll(tag)) {
      const root = host.shadowRoot || host;
      if (shown && !root.querySelector(shown)) continue;
      let text = '';
      for (const sel of texts) {
        const el = root.querySelector(sel);
        if (el && el.textContent.trim()) { text = el.textContent.trim(); break; }
      }
      overlay = { tag, text: text || (root.textContent || '').trim() };
      break;
    }
    if (overlay) break;
  }
  const body = document.body;
  const text = body ? (body.innerText || '').trim() : '';
  const visible = (el) => {
    const r = el.getBoundingClientRect();
    return r.width > 1 && r.height > 1;
  };
  const media = body
    ? [...body.querySelectorAll('img, svg, canvas, video, iframe, object, embed, input, textarea, select, button')]
        .filter(visible).length
    : 0;
  return JSON.stringify({ title: document.title || '', textLength: text.length, media, overlay });
})
