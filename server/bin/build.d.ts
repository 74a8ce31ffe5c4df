// Types of build.js, for the TypeScript that imports it (the test runner, the benchmarks).
export declare const SERVER_ROOT: string;
export declare const SOURCE_DIR: string;
export declare const DIST_DIR: string;
/** True when server/dist exists and was built from the sources as they are now. */
export declare function isFresh(): boolean;
/** Builds server/dist now (unless `force` is false and it is fresh), waiting for a build under way. */
export declare function build(options?: { force?: boolean }): Promise<'built' | 'fresh'>;
/** Builds server/dist when it is missing or stale: 'dist' when it is usable, 'source' when not. */
export declare function ensureBuilt(): Promise<'dist' | 'source'>;
