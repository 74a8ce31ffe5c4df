/** `all` serves the API and runs the workers; `api` and `worker` split them across replicas. */
export const ROLES = ['all', 'api', 'worker'] as const;
export type Role = (typeof ROLES)[number];
