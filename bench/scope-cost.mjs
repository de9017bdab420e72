// Cost per await of a call scope: an await loop in a process that never enters an
// AsyncLocalStorage, and in one that runs it inside an entered store. Alternating processes.
import { AsyncLocalStorage } from 'node:async_hooks';

const entered = process.argv[2] === 'entered';
const N = 300_000;
async function loop() {
  for (let i = 0; i < N; i++) await null;
}
const runs = [];
for (let r = 0; r < 9; r++) {
  const t = process.hrtime.bigint();
  if (entered) await new AsyncLocalStorage().run({ r }, loop);
  else await loop();
  runs.push(Number(process.hrtime.bigint() - t) / N);
}
runs.sort((a, b) => a - b);
console.log(runs[4].toFixed(1));
