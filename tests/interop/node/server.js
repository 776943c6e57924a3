'use strict'
// A real grenache-nodejs-http PeerRPCServer for grenache-lab's interop tests.
// Usage: node server.js --grape http://127.0.0.1:30001 --service rpc_test --port 0 --mode echo
// Prints one JSON line {"ready": true, "port": N} once it listens and has announced.
const Link = require('grenache-nodejs-link')
const { PeerRPCServer } = require('grenache-nodejs-http')

function arg (name, dflt) {
  const i = process.argv.indexOf('--' + name)
  return i >= 0 ? process.argv[i + 1] : dflt
}

const grape = arg('grape', 'http://127.0.0.1:30001')
const service = arg('service', 'rpc_test')
const mode = arg('mode', 'echo')
const port = parseInt(arg('port', '0'), 10) || (20000 + Math.floor(Math.random() * 20000))

const link = new Link({ grape, requestTimeout: 2500 })
link.start()
const peer = new PeerRPCServer(link, { timeout: 300000 })
peer.init()
const transport = peer.transport('server')
transport.listen(port)

transport.on('request', (rid, key, payload, handler) => {
  if (mode === 'error') return handler.reply(new Error('ERR_NODE_WORKER_FAILED'), null)
  if (mode === 'null') return handler.reply(null, null)
  handler.reply(null, { worker: 'node', echo: payload })
})

let announced = false
function announce () {
  link.announce(service, transport.port, {}, (err) => {
    if (!err && !announced) {
      announced = true
      process.stdout.write(JSON.stringify({ ready: true, port: transport.port }) + '\n')
    }
  })
}
announce()
const timer = setInterval(announce, 500)

function stop () {
  clearInterval(timer)
  transport.stop()
  link.stop()
  process.exit(0)
}
process.on('SIGTERM', stop)
process.on('SIGINT', stop)
