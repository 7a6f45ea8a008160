'use strict';
// tests/clients/node/clock.js — the test kit's virtual clock as the client suites use it
// (POST /admin/clock/freeze | advance | unfreeze, docs/testing-with-anvil.md). Each suite
// hands in its own clockCall(what, body), which sends the request, checks the status and
// resolves with the clock's reading ({"mode", "now_ms", "offset_ms"}).

function clockHelpers(clockCall) {
  return {
    // Moves the frozen clock on by s seconds: every deadline on the way fires, in order.
    advance(s) {
      return clockCall('advance', { seconds: s });
    },
    // Runs fn(readingAtFreeze) with the clock frozen; unfreezes whatever happens (the clock
    // keeps the time it gained), so fn can check how far the clock moved.
    async frozen(fn) {
      const at = (await clockCall('freeze')).now_ms;
      try {
        await fn(at);
      } finally {
        await clockCall('unfreeze');
      }
    },
    // Time for a request just sent on another connection to reach the server. Only the
    // order of arrival depends on it: no deadline runs on the wall clock while it is frozen.
    reachServer() {
      return new Promise(function (resolve) {
        setTimeout(resolve, 50);
      });
    },
  };
}

module.exports = { clockHelpers };
