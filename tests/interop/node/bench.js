'use strict'
// Closed-loop load from the real Node PeerRPCClient: C requests in flight for D seconds.
// Usage: node bench.js --grape URL --service NAME --concurrency 32 --seconds 5 --payload-bytes 64
// Prints one JSON line: {"requests", "errors", "seconds", "rps", "p50_ms", "p99_ms"}.
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
const concurrency = parseInt(arg('concurrency', '32'), 10)
const seconds = parseFloat(arg('seconds', '5'))
const warmup = parseFloat(arg('warmup', '1'))
const payload = { pad: 'x'.repeat(parseInt(arg('payload-bytes', '64'), 10)) }

const lat = []
let errors = 0
let measuring = false
let stopping = false
let t0 = 0

function quantile (sorted, q) {
  if (sorted.length === 0) return null
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]
}

function loop () {
  if (stopping) return
  const start = process.hrtime.bigint()
  peer.request(service, payload, { timeout: 10000 }, (err) => {
    const ms = Number(process.hrtime.bigint() - start) / 1e6
    if (measuring) {
      if (err) errors++
      else lat.push(ms)
    }
    loop()
  })
}

// Look the service up once so the first requests do not pay for discovery.
link.lookup(service, {}, (err) => {
  if (err) {
    process.stdout.write(JSON.stringify({ error: err.message }) + '\n')
    process.exit(1)
  }
  for (let i = 0; i < concurrency; i++) loop()
  setTimeout(() => {
    measuring = true
    t0 = process.hrtime.bigint()
    setTimeout(() => {
      measuring = false
      stopping = true
      const secs = Number(process.hrtime.bigint() - t0) / 1e9
      lat.sort((a, b) => a - b)
      process.stdout.write(JSON.stringify({
        requests: lat.length,
        errors,
        seconds: secs,
        rps: lat.length / secs,
        p50_ms: quantile(lat, 0.5),
        p99_ms: quantile(lat, 0.99)
      }) + '\n')
      process.exit(0)
    }, seconds * 1000)
  }, warmup * 1000)
})
