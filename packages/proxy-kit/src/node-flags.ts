/**
 * The V8 flags proxy-kit runs with; the `proxy-kit` bin's first line passes them (keep the two
 * the same: a test compares them). Run the CLI some other way (`node dist/cli.js`, a container's
 * command) and pass them yourself.
 *
 * `--max-semi-space-size=4` caps V8's young generation at 4 MiB per semi-space (Node 24's default
 * lets it grow to 16 MiB at this allocation rate). A proxy's garbage is short-lived frames and
 * buffers: in one closed-loop run of 8 × 16 streams through one worker the peak RSS went from
 * ~220 MB to ~85 MB, and CPU per call fell too (a young generation that fits the caches).
 */
export const PROXY_KIT_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=4'];
