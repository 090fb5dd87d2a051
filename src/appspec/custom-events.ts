import { basename } from 'node:path';
import { AppSpecError, type AppSpecProblem } from '../report/errors.js';
import { DEFAULT_LIFECYCLE_EVENTS, SCRIPTABLE_EVENTS } from './events.js';
import { rubyInspect } from './ruby-inspect.js';
import type { AppSpec } from './types.js';

const BUILTIN_EVENTS = ['DownloadBundle', 'Install'];

/**
 * The lifecycle-event checks of a local run's Install (AWS's, before its files are installed): every event the
 * appspec has scripts for must be one the run knows (`allPossibleEvents`), and every custom event
 * the run was asked for must have scripts in the appspec. Messages are AWS's ArgumentErrors.
 *
 * `hookMappingEvents` are the events the run maps to hooks; a local run maps all of its events
 * except DownloadBundle and Install.
 */
export function checkLifecycleEvents(
  spec: AppSpec,
  allPossibleEvents: string[],
  hookMappingEvents: string[] = allPossibleEvents.filter((event) => !BUILTIN_EVENTS.includes(event)),
): void {
  const file = basename(spec.path);
  const appspecEvents = Object.keys(spec.hooks);
  const possible = new Set(allPossibleEvents);

  const unknown = unique([...appspecEvents, ...hookMappingEvents]).filter((event) => !possible.has(event));
  if (unknown.length > 0) {
    throw new AppSpecError([
      {
        message: `${file} file contains unknown lifecycle events: ${rubyInspect(unknown)}`,
        hint: `run these events by naming them in --events, or rename them to one of ${SCRIPTABLE_EVENTS.join(', ')}`,
      },
    ]);
  }

  const missing = customEventsWithoutScripts(spec.hooks, allPossibleEvents, file);
  if (missing.length > 0) throw new AppSpecError(missing);
}

/** The events of `--events` that are not lifecycle events: a local run's custom events. */
export function customEventsOf(events: readonly string[] | undefined): string[] {
  const defaults = new Set<string>(DEFAULT_LIFECYCLE_EVENTS);
  return unique((events ?? []).filter((event) => !defaults.has(event)));
}

/** Custom events the run was asked for that have no scripts in the appspec (`file` is its name, for the message). */
export function customEventsWithoutScripts(hooks: AppSpec['hooks'], events: readonly string[], file: string): AppSpecProblem[] {
  const known = new Set<string>([...Object.keys(hooks), ...SCRIPTABLE_EVENTS]);
  const missing = customEventsOf(events).filter((event) => !known.has(event));
  if (missing.length === 0) return [];
  return [
    {
      message: `You specified a lifecycle event which is not a default one and doesn't exist in your ${file} file: ${missing.join(',')}`,
      hint: `add scripts for ${missing.join(', ')} under hooks in ${file}, or leave ${missing.length === 1 ? 'it' : 'them'} out of --events`,
    },
  ];
}

function unique(names: readonly string[]): string[] {
  return [...new Set(names)];
}
