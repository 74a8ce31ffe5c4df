/** What the stand-ins process serves and the verify benchmark configures: one shared setup. */
export const BENCH_APP_ID = 'app_bench_keel';
export const BENCH_ACTION = 'bench';
export const BENCH_PASSPORT_KEY = 'bench-passport-key';
export const BENCH_SCORER_ID = '1';
export const BENCH_BRIGHTID_APP = 'keel-bench';
