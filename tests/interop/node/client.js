'use strict'
// A real grenache-nodejs-http PeerRPCClient driven by grenache-lab's interop tests.
// Usage: node client.js --grape URL --service NAME --op request|map --payload JSON [--compress]
// Prints one JSON line: {"ok": true, "data": ...} or {"ok": false, "error": "..."}.
const Link = require('grenache-nodejs-link')
const { PeerRPCClient } = require('grenache-nodejs-http')

function arg (name, dflt) {
  const i = process.argv.indexOf('--' + name)
  return i >= 0 ? process.argv[i + 1] : dflt
}

const link = new Link({ grape: arg('grape', 'http://127.0.0.1:30001'), requestTimeout: 2500 })
link.start()
const peer = new PeerRPCClient(link, {})
peer.init()

const service = arg('service', 'rpc_test')
const payload = JSON.parse(arg('payload', '"hello"'))
const opts = { timeout: parseInt(arg('timeout', '5000'), 10), compress: process.argv.includes('--compress') }
const op = arg('op', 'request')

function done (err, data) {
  const out = err ? { ok: false, error: err.message } : { ok: true, data }
  process.stdout.write(JSON.stringify(out) + '\n')
  peer.stop()
  link.stop()
  process.exit(0)
}

if (op === 'map') peer.map(service, payload, opts, done)
else peer.request(service, payload, opts, done)
