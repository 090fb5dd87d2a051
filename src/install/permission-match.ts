import { resolve } from 'node:path';
import type { Permission } from '../appspec/types.js';

/**
 * Which installed paths a permission applies to (AWS's `linux_permission_info.rb`): paths
 * strictly under `object`; pattern `**` takes every descendant, any other pattern and every `except`
 * glob are matched against the rest of the path, which must then be a direct child's name. The object
 * itself never matches.
 */
export function permissionMatcher(permission: Pick<Permission, 'object' | 'pattern' | 'except'>, cwd: string): (path: string) => boolean {
  const objectPath = resolve(cwd, permission.object);
  const base = objectPath.endsWith('/') ? objectPath : `${objectPath}/`;
  const pattern = permission.pattern === '**' ? undefined : globToRegExp(permission.pattern);
  const excepts = permission.except.map(globToRegExp);
  return (path: string) => {
    const candidate = path.endsWith('/') && path !== '/' ? path.slice(0, -1) : path;
    if (!candidate.startsWith(base)) return false;
    const rest = candidate.slice(base.length);
    if (pattern !== undefined && !simpleGlobMatches(rest, pattern)) return false;
    return !excepts.some((except) => simpleGlobMatches(rest, except));
  };
}

/** AWS's `matches_simple_glob`: no `/` in the name, `*` is any run of characters, the rest literal. */
export function globMatches(name: string, glob: string): boolean {
  return simpleGlobMatches(name, globToRegExp(glob));
}

function simpleGlobMatches(name: string, glob: RegExp): boolean {
  return !name.includes('/') && glob.test(name);
}

function globToRegExp(glob: string): RegExp {
  const body = glob
    .split('*')
    .map((literal) => literal.replace(/[\\^$.|?+()[\]{}]/g, '\\$&'))
    .join('[^]*');
  return new RegExp(`^${body}$`, 'u');
}
