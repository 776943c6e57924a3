'use strict'
// The real grenache-nodejs-link driven by grenache-lab's interop tests: one call, one answer.
// Usage: node link.js --grape URL --op announce|lookup|put|get --data JSON
//   announce: data [name, port]; lookup: data name; put: data {"v": ...}; get: data hexkey
// Prints one JSON line: {"ok": true, "data": ...} or {"ok": false, "error": "..."}.
const Link = require('grenache-nodejs-link')

function arg (name, dflt) {
  const i = process.argv.indexOf('--' + name)
  return i >= 0 ? process.argv[i + 1] : dflt
}

const link = new Link({ grape: arg('grape', 'http://127.0.0.1:30001'), requestTimeout: 2500 })
link.start()

const op = arg('op', 'lookup')
const data = JSON.parse(arg('data', '"rpc_test"'))

function done (err, res) {
  const out = err ? { ok: false, error: err.message } : { ok: true, data: res === undefined ? null : res }
  process.stdout.write(JSON.stringify(out) + '\n')
  link.stop()
  process.exit(0)
}

if (op === 'announce') link.announce(data[0], data[1], {}, done)
else if (op === 'lookup') link.lookup(data, {}, done)
else if (op === 'put') link.put(data, done)
else if (op === 'get') link.get(data, done)
else done(new Error('unknown op ' + op))
