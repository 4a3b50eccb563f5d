/**
 * What racing operations answer: what a local file system answers too, and
 * ESTALE, the documented answer of an operation on a name another node has
 * just removed or replaced (docs/failure-behaviour.md; NFS answers the same).
 */
export const RACE_ERRNOS: ReadonlySet<string> = new Set(['ENOENT', 'EEXIST', 'ENOTDIR', 'EISDIR', 'ENOTEMPTY', 'EINVAL', 'ELOOP', 'ESTALE']);
