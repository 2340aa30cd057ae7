// An egress proxy in a process of its own, for tests that measure what the proxy itself holds or spends:
// run with --expose-gc under child_process.fork. It opens one channel allowing 127.0.0.1 (every
// port) and says { socketPath }; to 'measure' it collects garbage and says { arrayBuffers, rss }
// (bytes); to 'cpu' it says { cpu } (the microseconds of CPU time it has used so far, user and
// system); to 'close' it closes the proxy and exits.
import { EgressProxy } from './proxy.ts';
import { parseEgressRule } from './egress-rule.ts';

const rule = parseEgressRule('127.0.0.1/32:*');
if (typeof rule === 'string') throw new TypeError(rule);
// No refusal budget to speak of: the records test measures a channel past 100000 refusals.
const proxy = new EgressProxy({ hostAddresses: () => [], maxConnectionsPerChannel: 1024, refusalsPerSecond: 1_000_000_000, refusalBurst: 1_000_000_000 });
const channel = await proxy.openChannel([rule]);
const collect = (globalThis as { gc?: () => void }).gc;
if (collect === undefined) throw new TypeError('run with --expose-gc');

process.on('message', (message) => {
  if (message === 'measure') {
    collect();
    const { arrayBuffers, rss } = process.memoryUsage();
    process.send?.({ arrayBuffers, rss });
  } else if (message === 'cpu') {
    const { user, system } = process.cpuUsage();
    process.send?.({ cpu: user + system });
  } else if (message === 'close') {
    void proxy.close().then(() => process.disconnect());
  }
});
process.send?.({ socketPath: channel.socketPath });
