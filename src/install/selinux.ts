import type { SelinuxContext } from '../appspec/types.js';

/** `semanage fcontext -a [-s user] -t type [-r range] <path>` as argv: no shell sees the appspec's values (§10.4). */
export function semanageAddArguments(context: SelinuxContext, path: string): string[] {
  return [
    'fcontext',
    '-a',
    ...(context.user !== undefined ? ['-s', context.user] : []),
    '-t',
    context.type,
    // Optional: the anchor crashed on a context without range (§10.11).
    ...(context.range !== undefined ? ['-r', context.range] : []),
    path,
  ];
}
