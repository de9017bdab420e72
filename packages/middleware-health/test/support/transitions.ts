import type { HealthTransition, ServingStatusName } from '../../src/index.js';

/** Records a health watcher's transitions and lets a test wait for one. */
export interface TransitionRecorder {
  transitions: HealthTransition[];
  onChange(transition: HealthTransition): void;
  /** The first transition to `to` at index `from` or later, with the time it was seen. */
  until(to: ServingStatusName, from?: number): Promise<HealthTransition & { seenAt: number }>;
}

export function recordTransitions(): TransitionRecorder {
  const transitions: (HealthTransition & { seenAt: number })[] = [];
  const waiters = new Set<() => void>();
  return {
    transitions,
    onChange(transition) {
      transitions.push({ ...transition, seenAt: performance.now() });
      for (const wake of [...waiters]) wake();
    },
    until(to, from = 0) {
      return new Promise((resolve) => {
        const look = () => {
          const found = transitions.slice(from).find((t) => t.to === to);
          if (found) {
            waiters.delete(look);
            resolve(found);
          }
        };
        waiters.add(look);
        look();
      });
    },
  };
}
