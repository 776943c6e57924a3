'use strict'
// Stand-in for the two helpers grenache-nodejs-base imports from
// @bitfinex/lib-js-util-base (a git-hosted package this machine cannot reach).

function shuffle (list) {
  const out = Array.from(list || [])
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    const tmp = out[i]
    out[i] = out[j]
    out[j] = tmp
  }
  return out
}

function sample (list) {
  if (!list || list.length === 0) return undefined
  return list[Math.floor(Math.random() * list.length)]
}

module.exports = { sample, shuffle }
