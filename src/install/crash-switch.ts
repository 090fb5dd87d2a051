/**
 * For the crash-consistency tests only: `CODEDEPLOY_AGENT_TEST_CRASH=install:<n>` (or `recovery:<n>`)
 * in the agent's environment makes the process SIGKILL itself right after its n-th change to the host
 * during Install (or during the recovery of an interrupted Install); `install:commit` right after the
 * commit record is on disk. It lets a test stop the agent at an exact point of 40,000, which a signal
 * from outside cannot. Only whoever starts the agent sets its environment: nothing in a revision, an
 * appspec or the service's answers can turn it on.
 */
const setting = parse(process.env.CODEDEPLOY_AGENT_TEST_CRASH);
let count = 0;

function parse(text: string | undefined): { phase: 'install' | 'recovery'; at: number | 'commit' } | undefined {
  const match = /^(install|recovery):(\d+|commit)$/.exec(text ?? '');
  if (!match) return undefined;
  return { phase: match[1] as 'install' | 'recovery', at: match[2] === 'commit' ? 'commit' : Number(match[2]) };
}

/** One change to the host is complete; `point` names a change the switch can also be set to. */
export function changeMade(phase: 'install' | 'recovery', point?: 'commit'): void {
  if (setting?.phase !== phase) return;
  count++;
  if (setting.at === count || (point !== undefined && setting.at === point)) process.kill(process.pid, 'SIGKILL');
}
