/**
 * What a test set up and must take down, collected as it goes and run after it, last first, so
 * that a client closes before its server and a failed assertion leaks nothing:
 *
 * ```ts
 * const cleanup = new CleanupSteps();
 * afterEach(() => cleanup.run());
 * ```
 *
 * Plain (no vitest import), so that the bench and examples can keep importing this package.
 */
export class CleanupSteps {
  readonly #steps: (() => unknown)[] = [];

  /** Adds `step` to the next {@link run}. */
  defer(step: () => unknown): void {
    this.#steps.push(step);
  }

  /** Runs the steps added since the last run, last first, each awaited. */
  async run(): Promise<void> {
    for (const step of this.#steps.splice(0).reverse()) await step();
  }
}
