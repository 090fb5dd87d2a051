import type { SelinuxContext } from '../appspec/types.js';

/** `semanage fcontext -a [-s user] -t type [-r range] <path>` as argv: no shell sees the appspec's values (AWS's agent built a shell string). */
export function semanageAddArguments(context: SelinuxContext, path: string): string[] {
  return [
    'fcontext',
    '-a',
    ...(context.user !== undefined ? ['-s', context.user] : []),
    '-t',
    context.type,
    // Optional: AWS's agent crashed on a context without range.
    ...(context.range !== undefined ? ['-r', context.range] : []),
    path,
  ];
}
